#include "stats/depth_curves.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>

namespace lmtopo::stats {

std::vector<double> depth_grid(std::size_t points) {
  if (points < 2) throw std::invalid_argument("a depth grid needs at least 2 points");
  std::vector<double> grid(points);
  for (std::size_t g = 0; g < points; ++g) grid[g] = static_cast<double>(g) / static_cast<double>(points - 1);
  grid.back() = 1.0;
  return grid;
}

std::vector<double> resample_to_depth(const std::vector<double>& per_layer, const std::vector<double>& grid) {
  const std::size_t L = per_layer.size();
  if (L < 2) throw std::invalid_argument("a curve needs at least 2 layers to be resampled");
  std::vector<double> out;
  out.reserve(grid.size());
  for (double depth : grid) {
    if (!(depth >= 0.0 && depth <= 1.0)) throw std::invalid_argument("depths must lie in [0, 1]");
    const double x = depth * static_cast<double>(L - 1);
    const auto lo = std::min(static_cast<std::size_t>(std::floor(x)), L - 2);
    const double t = x - static_cast<double>(lo);
    out.push_back(per_layer[lo] + t * (per_layer[lo + 1] - per_layer[lo]));
  }
  return out;
}

namespace {

// The lower layer of the pair that brackets `depth` and the weight of the upper one.
std::pair<std::size_t, double> bracket(double depth, std::size_t L) {
  if (!(depth >= 0.0 && depth <= 1.0)) throw std::invalid_argument("depths must lie in [0, 1]");
  const double x = depth * static_cast<double>(L - 1);
  const auto lo = std::min(static_cast<std::size_t>(std::floor(x)), L - 2);
  return {lo, x - static_cast<double>(lo)};
}

}  // namespace

double matrix_at_depth(const std::vector<double>& m, std::size_t L, double row_depth, double col_depth) {
  if (L < 2 || m.size() != L * L) throw std::invalid_argument("a layer-pair matrix needs L >= 2 and L x L values");
  const auto [r, tr] = bracket(row_depth, L);
  const auto [c, tc] = bracket(col_depth, L);
  auto at = [&](std::size_t i, std::size_t j) { return m[i * L + j]; };
  const double top = at(r, c) + tc * (at(r, c + 1) - at(r, c));
  const double bottom = at(r + 1, c) + tc * (at(r + 1, c + 1) - at(r + 1, c));
  return top + tr * (bottom - top);
}

std::vector<double> resample_matrix_to_depth(const std::vector<double>& m, std::size_t L, const std::vector<double>& grid) {
  std::vector<double> out;
  out.reserve(grid.size() * grid.size());
  for (double row : grid)
    for (double col : grid) out.push_back(matrix_at_depth(m, L, row, col));
  return out;
}

std::vector<double> band_at_offset(const std::vector<double>& m, std::size_t L, const std::vector<double>& grid, double offset) {
  std::vector<double> out;
  out.reserve(grid.size());
  for (double t : grid) {
    const double u = t + offset;
    // Depths that exceed 1 by rounding alone (0.9 + 0.1) are the last layer.
    out.push_back(u > 1.0 + 1e-12 ? std::numeric_limits<double>::quiet_NaN() : matrix_at_depth(m, L, t, std::min(u, 1.0)));
  }
  return out;
}

}  // namespace lmtopo::stats
