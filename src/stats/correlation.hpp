// Correlations of two curves and their uncertainty (issue 15; docs/aggregate.md): Pearson, Spearman
// (average ranks for ties, as scipy.stats.spearmanr), a percentile bootstrap over replicate curves
// (the zigzag's disjoint prompt subsets) and a permutation test that shuffles one curve's layers.
// Plain arrays; seeded draws.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace lmtopo::stats {

// NaN where either curve is constant (no correlation is defined); sizes must match (>= 2).
double pearson(const std::vector<double>& a, const std::vector<double>& b);
double spearman(const std::vector<double>& a, const std::vector<double>& b);

// Ranks 1..n, ties sharing the mean of the ranks they span.
std::vector<double> average_ranks(const std::vector<double>& x);

// numpy.quantile's default (linear between order statistics) of a non-empty sample.
double quantile(std::vector<double> values, double q);

struct Interval {
  double low = 0, high = 0;
};

// Percentile bootstrap (level e.g. 0.95) of pearson(mean of a's replicates, mean of b's replicates),
// resampling each side's replicates with replacement, `draws` times (seed). `a` is [na, G] row-major,
// `b` [nb, G]; both na, nb >= 2. Draws whose correlation is undefined are skipped; NaN bounds if all are.
Interval bootstrap_pearson(const std::vector<double>& a, std::size_t na, const std::vector<double>& b, std::size_t nb,
                           std::size_t draws, double level, std::uint64_t seed);

// Layer-shuffle null: the share (1 + count) / (1 + draws) of draws in which pearson(a_grid, resampled
// shuffled b) is at least the observed r, b's per-layer values permuted before resampling to `grid`.
double layer_shuffle_p_value(const std::vector<double>& a_on_grid, const std::vector<double>& b_per_layer,
                             const std::vector<double>& grid, double observed, std::size_t draws, std::uint64_t seed);

}  // namespace lmtopo::stats
