#include "geometry/bootstrap.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>

#include "core/error.hpp"
#include "geometry/similarity.hpp"

namespace lmtopo::geometry {

BootstrapDraws::BootstrapDraws(std::size_t units, std::size_t draws, unsigned long long seed)
    : units_(units), draws_(draws), index_(units * draws) {
  if (units == 0 || units > 0xffffffffULL) throw std::invalid_argument("bootstrap: between 1 and 2^32 - 1 units");
  std::mt19937_64 rng(seed);
  for (auto& i : index_) i = static_cast<std::uint32_t>(rng() % units);
}

std::vector<double> BootstrapDraws::multiplicities(std::size_t b) const {
  std::vector<double> w(units_, 0.0);
  const std::uint32_t* d = draw(b);
  for (std::size_t k = 0; k < units_; ++k) w[d[k]] += 1;
  return w;
}

std::array<double, 2> percentile_interval(std::vector<double> v, double level) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (v.empty() || std::any_of(v.begin(), v.end(), [](double x) { return !std::isfinite(x); })) return {nan, nan};
  std::sort(v.begin(), v.end());
  auto quantile = [&](double q) {
    const double h = q * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(h));
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (h - static_cast<double>(lo)) * (v[hi] - v[lo]);
  };
  return {quantile((1 - level) / 2), quantile((1 + level) / 2)};
}

double resampled_mean(const std::vector<double>& per_unit, const std::uint32_t* draw, std::size_t units) {
  double sum = 0;
  for (std::size_t k = 0; k < units; ++k) sum += per_unit[draw[k]];
  return sum / static_cast<double>(units);
}

void add_sentence_pair_sums(const double* s_rows, std::size_t row0, std::size_t rows, SentencePairSums& sums) {
  const std::size_t G = sums.sentences, n = G * sums.languages;
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t i = row0 + r, a = i / G, g = i % G;
    for (std::size_t j = 0; j < n; ++j) {
      const std::size_t b = j / G, h = j % G;
      (a == b ? sums.same : sums.cross)[g * G + h] += s_rows[r * n + j];
    }
  }
}

std::array<double, 2> resampled_lrds_sads(const SentencePairSums& s, const std::vector<double>& w) {
  const std::size_t G = s.sentences;
  const double L = static_cast<double>(s.languages);
  double same = 0, other = 0, translation = 0, pairs = 0, self = 0;
  double total_w = 0;
  for (std::size_t g = 0; g < G; ++g) total_w += w[g];
  for (std::size_t g = 0; g < G; ++g) {
    if (w[g] == 0) continue;
    double same_g = 0, other_g = 0;
    for (std::size_t h = 0; h < G; ++h) {
      if (h == g || w[h] == 0) continue;
      same_g += w[h] * s.same[g * G + h];
      other_g += w[h] * s.cross[g * G + h];
    }
    same += w[g] * same_g;
    other += w[g] * other_g;
    translation += w[g] * w[g] * s.cross[g * G + g];
    pairs += w[g] * (total_w - w[g]);  // sentence pairs g != h, weighted
    self += w[g] * w[g];
  }
  const double n_same = L * pairs, n_other = L * (L - 1) * pairs, n_translation = L * (L - 1) * self;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (!(n_same > 0) || !(n_other > 0) || !(n_translation > 0)) return {nan, nan};
  return {same / n_same - other / n_other, translation / n_translation - other / n_other};
}

double resampled_twonn(const std::vector<double>& ratio_rows, const std::uint32_t* draw, std::size_t units) {
  std::vector<double> mu;
  mu.reserve(units);
  for (std::size_t k = 0; k < units; ++k)
    if (!std::isnan(ratio_rows[draw[k]])) mu.push_back(ratio_rows[draw[k]]);
  try {
    return twonn_fit(std::move(mu));
  } catch (const InputError&) {
    return std::numeric_limits<double>::quiet_NaN();
  }
}

}  // namespace lmtopo::geometry
