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
  std::vector<Index> scratch;

  for (int d = matrix.max_dim(); d >= 1; --d) {
    for (Index j = 0; j < n; ++j) {
      const auto ju = static_cast<std::size_t>(j);
      if (matrix.dim(j) != d || cleared[ju]) continue;
      auto& col = reduced[ju];
      const ColumnView boundary = matrix.column(j);
      col.assign(boundary.begin(), boundary.end());
      while (!col.empty()) {
        const Index k = column_of_pivot[static_cast<std::size_t>(col.back())];
        if (k < 0) break;
        add_column(col, reduced[static_cast<std::size_t>(k)], scratch);
      }
      if (col.empty()) {
        release_column(col);
        continue;
      }
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
