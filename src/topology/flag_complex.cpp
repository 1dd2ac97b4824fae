#include "topology/flag_complex.hpp"

#include <algorithm>
#include <iterator>
#include <limits>

namespace lmtopo::topology {
namespace {

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  return a > std::numeric_limits<std::uint64_t>::max() - b ? std::numeric_limits<std::uint64_t>::max() : a + b;
}

std::uint64_t binomial(std::uint64_t n, int k) {
  if (k < 0 || static_cast<std::uint64_t>(k) > n) return 0;
  long double r = 1;
  for (int i = 1; i <= k; ++i) r = r * static_cast<long double>(n - static_cast<std::uint64_t>(k) + static_cast<std::uint64_t>(i)) / i;
  return r >= static_cast<long double>(std::numeric_limits<std::uint64_t>::max()) ? std::numeric_limits<std::uint64_t>::max()
                                                                                   : static_cast<std::uint64_t>(r + 0.5L);
}

void extend(Simplex& clique, const std::vector<std::uint32_t>& candidates,
            const std::vector<std::vector<std::uint32_t>>& adjacency, int max_dim, std::vector<Simplex>& out) {
  out.push_back(clique);
  if (static_cast<int>(clique.size()) > max_dim) return;
  std::vector<std::uint32_t> next;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const std::uint32_t v = candidates[i];
    next.clear();
    const auto& nb = adjacency[v];
    std::set_intersection(candidates.begin() + static_cast<std::ptrdiff_t>(i) + 1, candidates.end(), nb.begin(), nb.end(),
                          std::back_inserter(next));
    clique.push_back(v);
    extend(clique, next, adjacency, max_dim, out);
    clique.pop_back();
  }
}

}  // namespace

std::uint64_t flag_complex_size_bound(const std::vector<std::vector<std::uint32_t>>& adjacency, int max_dim) {
  std::uint64_t total = 0;
  for (std::size_t v = 0; v < adjacency.size(); ++v) {
    const auto& nb = adjacency[v];
    const auto up = static_cast<std::uint64_t>(nb.end() - std::upper_bound(nb.begin(), nb.end(), static_cast<std::uint32_t>(v)));
    for (int p = 0; p <= max_dim; ++p) total = saturating_add(total, binomial(up, p));
  }
  return total;
}

std::vector<Simplex> flag_complex(const std::vector<std::vector<std::uint32_t>>& adjacency, int max_dim) {
  std::vector<Simplex> out;
  Simplex clique;
  for (std::size_t v = 0; v < adjacency.size(); ++v) {
    const auto& nb = adjacency[v];
    const std::vector<std::uint32_t> up(std::upper_bound(nb.begin(), nb.end(), static_cast<std::uint32_t>(v)), nb.end());
    clique.assign(1, static_cast<Vertex>(v));
    extend(clique, up, adjacency, max_dim, out);
  }
  std::sort(out.begin(), out.end(), [](const Simplex& a, const Simplex& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  return out;
}

}  // namespace lmtopo::topology
