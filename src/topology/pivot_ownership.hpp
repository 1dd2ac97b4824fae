// Which rank owns a row and the column of the same index in the distributed reducer, shared by the
// reducer and by the distributed cone-matrix build (which sends every column straight to its owner).
#pragma once
#include <algorithm>

#include "topology/boundary_matrix.hpp"

namespace lmtopo::topology {

// Which rank owns a row (and the column of the same index): rows are dealt out in chunks of `chunk`
// consecutive indices, round robin. The reduction's work concentrates in a narrow band of pivots
// (docs/benchmarks.md), so contiguous blocks leave one rank with nearly all of it; chunks much
// smaller than the band spread it over every rank, at the cost of columns crossing ranks often.
class PivotOwnership {
 public:
  // A chunk beyond n is n (one chunk: every index on rank 0); so no index arithmetic exceeds P·n.
  PivotOwnership(Index n, int ranks, Index chunk) : n_(n), ranks_(ranks), chunk_(std::clamp<Index>(chunk, 1, std::max<Index>(n, 1))) {}
  int owner(Index row) const { return static_cast<int>((row / chunk_) % ranks_); }
  Index local(Index row) const { return (row / chunk_) / ranks_ * chunk_ + row % chunk_; }
  Index global(int rank, Index local) const { return ((local / chunk_) * ranks_ + rank) * chunk_ + local % chunk_; }
  Index local_count(int rank) const {
    Index count = 0;
    for (Index first = static_cast<Index>(rank) * chunk_; first < n_; first += static_cast<Index>(ranks_) * chunk_)
      count += std::min(chunk_, n_ - first);
    return count;
  }
  // Calls f(j) for every index owned by `rank`, increasing.
  template <class F>
  void for_each_owned(int rank, F&& f) const {
    for (Index first = static_cast<Index>(rank) * chunk_; first < n_; first += static_cast<Index>(ranks_) * chunk_)
      for (Index j = first; j < std::min(n_, first + chunk_); ++j) f(j);
  }

 private:
  Index n_;
  int ranks_;
  Index chunk_;
};

}  // namespace lmtopo::topology
