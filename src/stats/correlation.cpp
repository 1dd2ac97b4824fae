#include "stats/correlation.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>

#include "core/permutation.hpp"
#include "stats/depth_curves.hpp"

namespace lmtopo::stats {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<double> mean_of_rows(const std::vector<double>& rows, const std::vector<std::size_t>& pick, std::size_t G) {
  std::vector<double> m(G, 0.0);
  for (std::size_t r : pick)
    for (std::size_t g = 0; g < G; ++g) m[g] += rows[r * G + g];
  for (double& v : m) v /= static_cast<double>(pick.size());
  return m;
}

// n indices drawn with replacement; `rng() % n` rather than a distribution, whose algorithm the
// standard leaves to the library, so that the draws are the same on every platform.
std::vector<std::size_t> resample(std::size_t n, std::mt19937_64& rng) {
  std::vector<std::size_t> out(n);
  for (auto& i : out) i = static_cast<std::size_t>(rng() % n);
  return out;
}

}  // namespace

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size() || a.size() < 2) throw std::invalid_argument("pearson: two curves of the same length >= 2");
  // A constant curve has no correlation; tested exactly, since its mean need not be its value in floating
  // point and the centred sums would then be rounding noise.
  const auto constant = [](const std::vector<double>& x) { return std::all_of(x.begin(), x.end(), [&](double v) { return v == x[0]; }); };
  if (constant(a) || constant(b)) return kNaN;
  const double n = static_cast<double>(a.size());
  const double ma = std::accumulate(a.begin(), a.end(), 0.0) / n, mb = std::accumulate(b.begin(), b.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  if (saa == 0 || sbb == 0) return kNaN;
  return std::clamp(sab / std::sqrt(saa * sbb), -1.0, 1.0);
}

std::vector<double> average_ranks(const std::vector<double>& x) {
  std::vector<std::size_t> order(x.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) { return x[i] < x[j]; });
  std::vector<double> rank(x.size());
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j + 1 < order.size() && x[order[j + 1]] == x[order[i]]) ++j;
    const double mean_rank = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (std::size_t k = i; k <= j; ++k) rank[order[k]] = mean_rank;
    i = j + 1;
  }
  return rank;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) { return pearson(average_ranks(a), average_ranks(b)); }

double quantile(std::vector<double> values, double q) {
  if (values.empty()) throw std::invalid_argument("quantile of an empty sample");
  std::sort(values.begin(), values.end());
  const double h = q * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (h - static_cast<double>(lo)) * (values[hi] - values[lo]);
}

Interval bootstrap_pearson(const std::vector<double>& a, std::size_t na, const std::vector<double>& b, std::size_t nb,
                           std::size_t draws, double level, std::uint64_t seed) {
  if (na < 2 || nb < 2 || a.size() % na != 0 || b.size() != (a.size() / na) * nb)
    throw std::invalid_argument("bootstrap_pearson: at least two replicate curves of one length on each side");
  const std::size_t G = a.size() / na;
  std::mt19937_64 rng(seed);
  std::vector<double> rs;
  for (std::size_t d = 0; d < draws; ++d) {
    const auto pa = resample(na, rng);
    const auto pb = resample(nb, rng);
    const double r = pearson(mean_of_rows(a, pa, G), mean_of_rows(b, pb, G));
    if (!std::isnan(r)) rs.push_back(r);
  }
  if (rs.empty()) return {kNaN, kNaN};
  return {quantile(rs, (1 - level) / 2), quantile(rs, 1 - (1 - level) / 2)};
}

double layer_shuffle_p_value(const std::vector<double>& a_on_grid, const std::vector<double>& b_per_layer,
                             const std::vector<double>& grid, double observed, std::size_t draws, std::uint64_t seed) {
  if (std::isnan(observed)) return kNaN;
  std::vector<double> shuffled(b_per_layer.size());
  std::size_t at_least = 0;
  for (std::size_t d = 0; d < draws; ++d) {
    const auto perm = core::permutation(b_per_layer.size(), seed * 1000003ull + d);
    for (std::size_t l = 0; l < perm.size(); ++l) shuffled[l] = b_per_layer[perm[l]];
    const double r = pearson(a_on_grid, resample_to_depth(shuffled, grid));
    if (!std::isnan(r) && r >= observed) ++at_least;
  }
  return static_cast<double>(1 + at_least) / static_cast<double>(1 + draws);
}

}  // namespace lmtopo::stats
