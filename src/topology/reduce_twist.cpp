#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>

#include "topology/reducers.hpp"
#include "topology/z2_column.hpp"

namespace lmtopo::topology {

std::vector<PersistencePair> reduce_twist(const BoundaryMatrix& matrix) {
  const Index n = matrix.num_columns();
  if (n > static_cast<Index>(std::numeric_limits<std::uint32_t>::max()))
    throw std::length_error("reduce_twist: more than 2^32-1 columns (the column store keeps 32-bit rows)");
  ColumnStore reduced(n);
  std::vector<char> cleared(static_cast<std::size_t>(n), 0);
  std::vector<PersistencePair> pairs;
  PivotColumn work(n);

  for (int d = matrix.max_dim(); d >= 1; --d) {
    for (Index j = 0; j < n; ++j) {
      if (matrix.dim(j) != d || cleared[static_cast<std::size_t>(j)]) continue;
      work.add(matrix.column(j));
      while (!work.empty() && reduced.holds(work.pivot())) work.add(reduced.column(work.pivot()));
      if (work.empty()) continue;
      const Index low = reduced.store(work);
      cleared[static_cast<std::size_t>(low)] = 1;  // column `low` reduces to zero: skip it later
      pairs.push_back({low, j});
    }
    reduced.clear();
  }
  std::sort(pairs.begin(), pairs.end());
  return pairs;
}

}  // namespace lmtopo::topology
