#include "stats/pruning.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "core/permutation.hpp"

namespace lmtopo::stats {

std::vector<int> angular_distance_blocks(const std::vector<double>& distance, int points, int n) {
  if (static_cast<long long>(distance.size()) != static_cast<long long>(points) * points)
    throw std::invalid_argument("angular_distance_blocks: distance is not points x points");
  if (n <= 0 || n >= points) return {};
  int best = 0;
  for (int l = 1; l + n < points; ++l)
    if (distance[static_cast<std::size_t>(l * points + l + n)] < distance[static_cast<std::size_t>(best * points + best + n)]) best = l;
  std::vector<int> out(static_cast<std::size_t>(n));
  std::iota(out.begin(), out.end(), best);
  return out;
}

std::vector<int> block_influence_blocks(const std::vector<double>& influence, int n) {
  std::vector<int> order(influence.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return influence[static_cast<std::size_t>(a)] < influence[static_cast<std::size_t>(b)]; });
  order.resize(std::min(order.size(), static_cast<std::size_t>(std::max(0, n))));
  std::sort(order.begin(), order.end());
  return order;
}

std::vector<int> random_blocks(int blocks, int n, std::uint64_t seed) {
  const auto p = core::permutation(static_cast<std::size_t>(blocks), seed);
  std::vector<int> out;
  for (int k = 0; k < std::min(n, blocks); ++k) out.push_back(static_cast<int>(p[static_cast<std::size_t>(k)]));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace lmtopo::stats
