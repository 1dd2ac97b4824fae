// The spatial-organisation measurements of TopoLM (science.md §5) on a sheet (spatial/sheet.hpp):
// per-unit Welch t between two stimulus groups with Benjamini-Hochberg FDR, Moran's I of the t-map
// with queen contiguity (row-standardised weights, as PySAL's esda.Moran by default) with its
// normal-approximation moments and a permutation p-value, the correlation of unit responses against
// grid distance, and clusters of significant units by region growing.
#pragma once
#include <cstdint>
#include <vector>

#include "spatial/sheet.hpp"

namespace lmtopo::spatial {

// a: [na, units], b: [nb, units] row-major (na, nb >= 2). Per unit Welch's t (mean a - mean b over the
// unequal-variance standard error), its Welch-Satterthwaite degrees of freedom and two-sided p-value
// (scipy.stats.ttest_ind(equal_var=False)); a unit constant in both groups gets t = 0, p = 1.
struct WelchResult {
  std::vector<double> t, df, p;
};
WelchResult welch_t(const std::vector<double>& a, std::size_t na, const std::vector<double>& b, std::size_t nb, std::size_t units);

// Benjamini-Hochberg adjusted p-values (scipy.stats.false_discovery_control(method="bh")).
std::vector<double> bh_adjust(const std::vector<double>& p);

struct MoranResult {
  double i = 0;           // Moran's I
  double expected = 0;    // E[I] = -1/(n-1)
  double variance = 0;    // Var[I] under normality
  double z = 0, p_norm = 0;  // (I - E[I]) / sd, two-sided normal p-value
  double p_sim = 0;       // permutation p-value, one-sided in the direction of I (as esda's p_sim)
};
// values: per unit. Units without neighbours (islands) keep a zero row (they add nothing to S0).
MoranResult morans_i(const std::vector<double>& values, const std::vector<std::vector<int>>& neighbours, int permutations,
                     std::uint64_t seed);

// Mean Pearson correlation over the pairs of units whose grid distance rounds to each integer
// 1..max_distance (responses: [n, units] row-major); NaN for an empty bin. Index 0 is distance 1.
std::vector<double> correlation_by_distance(const std::vector<double>& responses, std::size_t n, const Sheet& sheet, int max_distance);

// Connected components (queen contiguity) of the units with q < alpha and the same sign of t; the
// sizes, largest first.
std::vector<int> significant_clusters(const std::vector<double>& t, const std::vector<double>& q, double alpha,
                                      const std::vector<std::vector<int>>& neighbours);

}  // namespace lmtopo::spatial
