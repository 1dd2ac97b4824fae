#include "neurons/key_linguistic.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>

namespace lmtopo::neurons {

CosineShares cosine_shares(const float* vectors, std::int64_t sentences, std::int64_t units, const std::vector<int>& language,
                           int languages) {
  if (static_cast<std::int64_t>(language.size()) != sentences) throw std::invalid_argument("one language index per sentence expected");
  CosineShares out;
  out.languages = languages;
  out.units = units;
  const auto U = static_cast<std::size_t>(units), L = static_cast<std::size_t>(languages);
  std::vector<double> sum(L * U, 0.0), sum_sq(L * U, 0.0);
  std::vector<long long> count(L, 0);
  std::vector<double> n(U);
  for (std::int64_t s = 0; s < sentences; ++s) {
    const float* a = vectors + s * units;
    double norm = 0;
    for (std::size_t u = 0; u < U; ++u) norm += static_cast<double>(a[u]) * a[u];
    norm = std::sqrt(norm);
    if (!(norm > 0) || !std::isfinite(norm))
      throw std::invalid_argument("sentence row " + std::to_string(s) + ": its vector is zero or not finite (cosine undefined)");
    const auto l = static_cast<std::size_t>(language[static_cast<std::size_t>(s)]);
    ++count[l];
    for (std::size_t u = 0; u < U; ++u) {
      const double v = a[u] / norm;
      sum[l * U + u] += v;
      sum_sq[l * U + u] += v * v;
    }
  }
  out.mean_cosine.assign(L, 0.0);
  out.share.assign(L * U, 0.0);
  for (std::size_t l = 0; l < L; ++l) {
    if (count[l] < 2) throw std::invalid_argument("language " + std::to_string(l) + ": " + std::to_string(count[l]) + " sentence(s), at least 2 needed");
    const double pairs = static_cast<double>(count[l]) * static_cast<double>(count[l] - 1);
    for (std::size_t u = 0; u < U; ++u) {
      const double c = (sum[l * U + u] * sum[l * U + u] - sum_sq[l * U + u]) / pairs;
      out.share[l * U + u] = c;
      out.mean_cosine[l] += c;
    }
    if (!(out.mean_cosine[l] > 0))
      throw std::invalid_argument("language " + std::to_string(l) + ": mean pairwise cosine " + std::to_string(out.mean_cosine[l]) +
                                  " is not positive (shares undefined)");
    for (std::size_t u = 0; u < U; ++u) out.share[l * U + u] /= out.mean_cosine[l];
  }
  return out;
}

std::vector<double> zscores_across_languages(const CosineShares& s) {
  const auto U = static_cast<std::size_t>(s.units), L = static_cast<std::size_t>(s.languages);
  std::vector<double> z(L * U, 0.0);
  for (std::size_t u = 0; u < U; ++u) {
    double mean = 0, var = 0;
    for (std::size_t l = 0; l < L; ++l) mean += s.share[l * U + u];
    mean /= static_cast<double>(L);
    for (std::size_t l = 0; l < L; ++l) var += (s.share[l * U + u] - mean) * (s.share[l * U + u] - mean);
    const double sd = std::sqrt(var / static_cast<double>(L));
    // A spread at rounding level is no spread: equal shares (e.g. a dead unit) get z = 0.
    if (!(sd > 1e-12 * std::max(1.0, std::abs(mean)))) continue;
    for (std::size_t l = 0; l < L; ++l) z[l * U + u] = (s.share[l * U + u] - mean) / sd;
  }
  return z;
}

std::vector<std::vector<std::int64_t>> key_units(const std::vector<double>& z, int languages, std::int64_t units, double threshold) {
  std::vector<std::vector<std::int64_t>> keys(static_cast<std::size_t>(languages));
  for (std::size_t l = 0; l < keys.size(); ++l)
    for (std::int64_t u = 0; u < units; ++u)
      if (z[l * static_cast<std::size_t>(units) + static_cast<std::size_t>(u)] > threshold) keys[l].push_back(u);
  return keys;
}

std::vector<std::int64_t> random_units(std::int64_t units, std::size_t count, std::uint64_t seed) {
  if (static_cast<std::int64_t>(count) > units) throw std::invalid_argument("more random units asked for than there are");
  std::vector<std::int64_t> all(static_cast<std::size_t>(units));
  std::iota(all.begin(), all.end(), 0);
  std::mt19937_64 rng(seed);
  // A partial Fisher-Yates shuffle: the first `count` entries are a uniform sample without replacement.
  for (std::size_t i = 0; i < count; ++i) {
    std::uniform_int_distribution<std::size_t> pick(i, all.size() - 1);
    std::swap(all[i], all[pick(rng)]);
  }
  all.resize(count);
  std::sort(all.begin(), all.end());
  return all;
}

AblationDeltas ablation_deltas(const std::vector<double>& base, const std::vector<double>& ablated, const std::vector<double>& control,
                               std::size_t draws) {
  const std::size_t L = base.size(), cells = L * L;
  if (ablated.size() != cells || control.size() != draws * cells) throw std::invalid_argument("ablation tables of inconsistent sizes");
  AblationDeltas d{std::vector<double>(cells), std::vector<double>(cells, 0.0), std::vector<double>(cells, 0.0)};
  for (std::size_t i = 0; i < cells; ++i) {
    const double b = base[i % L];
    d.delta[i] = ablated[i] - b;
    for (std::size_t k = 0; k < draws; ++k) d.control_mean[i] += (control[k * cells + i] - b) / static_cast<double>(draws);
    if (draws < 2) continue;
    double ss = 0;
    for (std::size_t k = 0; k < draws; ++k) ss += (control[k * cells + i] - b - d.control_mean[i]) * (control[k * cells + i] - b - d.control_mean[i]);
    d.control_sd[i] = std::sqrt(ss / static_cast<double>(draws - 1));
  }
  return d;
}

}  // namespace lmtopo::neurons
