// Which rank owns a row and the column of the same index in the distributed reducer, shared by the
// reducer and by the distributed cone-matrix build (which sends every column straight to its owner).
#pragma once
#include <algorithm>
#include <stdexcept>
#include <vector>

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
  // One block per rank at the given bounds (P + 1 of them, 0 first and n last, non-decreasing): rank r
  // owns [bounds[r], bounds[r + 1]). For blocks sized by where a step's pivots lie.
  PivotOwnership(Index n, std::vector<Index> bounds)
      : n_(n), ranks_(static_cast<int>(bounds.size()) - 1), chunk_(std::max<Index>(n, 1)), bounds_(std::move(bounds)) {
    if (ranks_ < 1 || bounds_.front() != 0 || bounds_.back() != n || !std::is_sorted(bounds_.begin(), bounds_.end()))
      throw std::logic_error("PivotOwnership: P + 1 non-decreasing bounds from 0 to n expected");
  }
  int owner(Index row) const {
    if (!bounds_.empty()) return static_cast<int>(std::upper_bound(bounds_.begin() + 1, bounds_.end() - 1, row) - (bounds_.begin() + 1));
    return static_cast<int>((row / chunk_) % ranks_);
  }
  Index local(Index row) const {
    if (!bounds_.empty()) return row - bounds_[static_cast<std::size_t>(owner(row))];
    return (row / chunk_) / ranks_ * chunk_ + row % chunk_;
  }
  Index global(int rank, Index local) const {
    if (!bounds_.empty()) return bounds_[static_cast<std::size_t>(rank)] + local;
    return ((local / chunk_) * ranks_ + rank) * chunk_ + local % chunk_;
  }
  Index local_count(int rank) const {
    if (!bounds_.empty()) return bounds_[static_cast<std::size_t>(rank) + 1] - bounds_[static_cast<std::size_t>(rank)];
    Index count = 0;
    for (Index first = static_cast<Index>(rank) * chunk_; first < n_; first += static_cast<Index>(ranks_) * chunk_)
      count += std::min(chunk_, n_ - first);
    return count;
  }
  // Calls f(j) for every index owned by `rank`, increasing.
  template <class F>
  void for_each_owned(int rank, F&& f) const {
    if (!bounds_.empty()) {
      for (Index j = bounds_[static_cast<std::size_t>(rank)]; j < bounds_[static_cast<std::size_t>(rank) + 1]; ++j) f(j);
      return;
    }
    for (Index first = static_cast<Index>(rank) * chunk_; first < n_; first += static_cast<Index>(ranks_) * chunk_)
      for (Index j = first; j < std::min(n_, first + chunk_); ++j) f(j);
  }

 private:
  Index n_;
  int ranks_;
  Index chunk_;
  std::vector<Index> bounds_;  // empty: chunks dealt round robin
};

}  // namespace lmtopo::topology
