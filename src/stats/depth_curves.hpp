// Per-layer curves on a common relative-depth axis, so that models of different depths can be set side
// by side (issue 15; docs/aggregate.md): layer l of L sits at depth l / (L - 1), and a curve is read
// at the grid's depths by linear interpolation between its two nearest layers. Plain arrays.
#pragma once
#include <cstddef>
#include <vector>

namespace lmtopo::stats {

// `points` evenly spaced depths 0, 1/(points-1), ..., 1 (points >= 2).
std::vector<double> depth_grid(std::size_t points);

// The per-layer values (L >= 2) at each depth of `grid` (each in [0, 1]), linearly interpolated.
std::vector<double> resample_to_depth(const std::vector<double>& per_layer, const std::vector<double>& grid);

// A per-layer-pair matrix m (L x L, row-major; L >= 2) at the depth pair (row_depth, col_depth), bilinear
// between its four nearest layer pairs (the curves' rule in each direction).
double matrix_at_depth(const std::vector<double>& m, std::size_t L, double row_depth, double col_depth);

// m on grid x grid (G x G, row-major).
std::vector<double> resample_matrix_to_depth(const std::vector<double>& m, std::size_t L, const std::vector<double>& grid);

// The band of m at `offset` above the diagonal: m(t, t + offset) at each depth t of the grid, NaN where
// t + offset lies beyond the last layer.
std::vector<double> band_at_offset(const std::vector<double>& m, std::size_t L, const std::vector<double>& grid, double offset);

// Relative depth of layer `layer` of `layers`.
inline double layer_depth(std::size_t layer, std::size_t layers) {
  return static_cast<double>(layer) / static_cast<double>(layers - 1);
}

}  // namespace lmtopo::stats
