#include "stats/depth_curves.hpp"

#include <cmath>
#include <stdexcept>

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

}  // namespace lmtopo::stats
