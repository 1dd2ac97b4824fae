// Chunk reduction. Phase 1 (parallel): chunk c owns columns [begin_c, end_c); it reduces each of
// its columns only with earlier columns of the same chunk whose pivot is in the chunk. A column
// whose pivot lands inside its own chunk and is unclaimed there is final: no column of an earlier
// chunk can have that pivot, since a column's pivot is below its own index. Phase 2 (serial): the
// remaining columns, already partly reduced by legal left-to-right additions, finish with the
// standard algorithm over all final columns. Clearing is applied per dimension in both phases.
#include <algorithm>
#include <thread>

#include "topology/reducers.hpp"
#include "topology/z2_column.hpp"

namespace lmtopo::topology {

std::vector<PersistencePair> reduce_chunk(const BoundaryMatrix& matrix, int threads) {
  const Index n = matrix.num_columns();
  const auto nu = static_cast<std::size_t>(n);
  const Index chunks = std::max<Index>(1, std::min<Index>(threads > 0 ? threads : 1, n));
  const Index width = chunks > 0 ? (n + chunks - 1) / std::max<Index>(chunks, 1) : 0;

  std::vector<std::vector<Index>> reduced(nu);
  std::vector<Index> column_of_pivot(nu, -1);
  std::vector<char> cleared(nu, 0);
  std::vector<char> finished(nu, 0);

  for (int d = matrix.max_dim(); d >= 1; --d) {
    // Phase 1: each chunk touches only column_of_pivot/cleared entries inside its own range, and
    // reads only its own columns, so the threads need no locks.
    auto local_phase = [&](Index c) {
      const Index begin = c * width;
      const Index end = std::min(n, begin + width);
      PivotColumn work(n);
      for (Index j = begin; j < end; ++j) {
        const auto ju = static_cast<std::size_t>(j);
        if (matrix.dim(j) != d || cleared[ju]) continue;
        work.add(matrix.column(j));
        while (!work.empty() && work.pivot() >= begin) {
          const Index k = column_of_pivot[static_cast<std::size_t>(work.pivot())];
          if (k < 0) break;
          work.add(reduced[static_cast<std::size_t>(k)]);
        }
        auto& col = reduced[ju];
        work.take(col);
        if (col.empty()) {
          finished[ju] = 1;
          release_column(col);
        } else if (col.back() >= begin) {
          column_of_pivot[static_cast<std::size_t>(col.back())] = j;
          cleared[static_cast<std::size_t>(col.back())] = 1;
          finished[ju] = 1;
        }
      }
    };
    std::vector<std::thread> pool;
    for (Index c = 1; c < chunks; ++c) pool.emplace_back(local_phase, c);
    local_phase(0);
    for (auto& t : pool) t.join();

    // Phase 2: the columns whose pivot left their chunk, in filtration order.
    PivotColumn work(n);
    for (Index j = 0; j < n; ++j) {
      const auto ju = static_cast<std::size_t>(j);
      if (matrix.dim(j) != d || cleared[ju] || finished[ju]) continue;
      auto& col = reduced[ju];
      work.add(col);
      while (!work.empty()) {
        const Index k = column_of_pivot[static_cast<std::size_t>(work.pivot())];
        if (k < 0) break;
        work.add(reduced[static_cast<std::size_t>(k)]);
      }
      work.take(col);
      if (col.empty()) {
        release_column(col);
      } else {
        column_of_pivot[static_cast<std::size_t>(col.back())] = j;
        cleared[static_cast<std::size_t>(col.back())] = 1;
      }
      finished[ju] = 1;
    }
  }

  std::vector<PersistencePair> pairs;
  for (Index i = 0; i < n; ++i)
    if (column_of_pivot[static_cast<std::size_t>(i)] >= 0)
      pairs.push_back({i, column_of_pivot[static_cast<std::size_t>(i)]});
  return pairs;
}

}  // namespace lmtopo::topology
