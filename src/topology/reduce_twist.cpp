#include <algorithm>

#include "topology/reducers.hpp"
#include "topology/z2_column.hpp"

namespace lmtopo::topology {

std::vector<PersistencePair> reduce_twist(const BoundaryMatrix& matrix) {
  const Index n = matrix.num_columns();
  std::vector<std::vector<Index>> reduced(static_cast<std::size_t>(n));
  std::vector<Index> column_of_pivot(static_cast<std::size_t>(n), -1);
  std::vector<char> cleared(static_cast<std::size_t>(n), 0);
  std::vector<PersistencePair> pairs;
  PivotColumn work(n);

  for (int d = matrix.max_dim(); d >= 1; --d) {
    for (Index j = 0; j < n; ++j) {
      const auto ju = static_cast<std::size_t>(j);
      if (matrix.dim(j) != d || cleared[ju]) continue;
      work.add(matrix.column(j));
      while (!work.empty()) {
        const Index k = column_of_pivot[static_cast<std::size_t>(work.pivot())];
        if (k < 0) break;
        work.add(reduced[static_cast<std::size_t>(k)]);
      }
      if (work.empty()) continue;
      auto& col = reduced[ju];
      work.take(col);
      const Index low = col.back();
      column_of_pivot[static_cast<std::size_t>(low)] = j;
      cleared[static_cast<std::size_t>(low)] = 1;  // column `low` reduces to zero: skip it later
      pairs.push_back({low, j});
    }
  }
  std::sort(pairs.begin(), pairs.end());
  return pairs;
}

}  // namespace lmtopo::topology
