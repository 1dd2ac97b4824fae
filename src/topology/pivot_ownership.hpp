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
  PivotOwnership(Index n, std::vector<Index> bounds) : PivotOwnership(n, bounds, ranks_in_order(bounds.size())) {}
  // Intervals [starts[k], starts[k + 1]) owned by owners[k] (starts: 0 first and n last,
  // non-decreasing; every rank 0..P-1 named at least once, P = the largest owner + 1). A rank's local
  // indices run through its intervals in increasing order. For bands of work that one block per rank
  // cannot split, as the upper-first order's two phases (docs/methods.md, "Reducers").
  PivotOwnership(Index n, std::vector<Index> starts, std::vector<int> owners)
      : n_(n), chunk_(std::max<Index>(n, 1)), starts_(std::move(starts)), owners_(std::move(owners)) {
    if (starts_.size() < 2 || owners_.size() + 1 != starts_.size() || starts_.front() != 0 || starts_.back() != n ||
        !std::is_sorted(starts_.begin(), starts_.end()) || *std::min_element(owners_.begin(), owners_.end()) < 0)
      throw std::logic_error("PivotOwnership: intervals from 0 to n, one owner each, expected");
    ranks_ = *std::max_element(owners_.begin(), owners_.end()) + 1;
    first_local_.assign(owners_.size(), 0);
    intervals_of_.assign(static_cast<std::size_t>(ranks_), {});
    std::vector<Index> count(static_cast<std::size_t>(ranks_), 0);
    for (std::size_t k = 0; k < owners_.size(); ++k) {
      const auto r = static_cast<std::size_t>(owners_[k]);
      first_local_[k] = count[r];
      count[r] += starts_[k + 1] - starts_[k];
      intervals_of_[r].push_back(k);
    }
  }

  int owner(Index row) const { return intervals() ? owners_[interval(row)] : static_cast<int>((row / chunk_) % ranks_); }
  Index local(Index row) const {
    if (intervals()) {
      const std::size_t k = interval(row);
      return first_local_[k] + row - starts_[k];
    }
    return (row / chunk_) / ranks_ * chunk_ + row % chunk_;
  }
  Index global(int rank, Index local) const {
    if (intervals()) {
      const auto& mine = intervals_of_[static_cast<std::size_t>(rank)];
      // The last of this rank's intervals that starts at or before `local` in its local numbering.
      const auto at = std::upper_bound(mine.begin(), mine.end(), local, [&](Index l, std::size_t k) { return l < first_local_[k]; });
      const std::size_t k = *(at - 1);
      return starts_[k] + local - first_local_[k];
    }
    return ((local / chunk_) * ranks_ + rank) * chunk_ + local % chunk_;
  }
  Index local_count(int rank) const {
    Index count = 0;
    for_each_range(rank, [&](Index first, Index last) { count += last - first; });
    return count;
  }
  // Interval mode: the intervals' starts (and n) and owners; empty otherwise.
  const std::vector<Index>& starts() const { return starts_; }
  const std::vector<int>& owners() const { return owners_; }
  // f(first, last) for each range of indices `rank` owns, increasing (its local indices in order).
  template <class F>
  void for_each_range(int rank, F&& f) const {
    if (intervals()) {
      for (const std::size_t k : intervals_of_[static_cast<std::size_t>(rank)]) f(starts_[k], starts_[k + 1]);
      return;
    }
    for (Index first = static_cast<Index>(rank) * chunk_; first < n_; first += static_cast<Index>(ranks_) * chunk_)
      f(first, std::min(n_, first + chunk_));
  }
  // Calls f(j) for every index owned by `rank`, increasing.
  template <class F>
  void for_each_owned(int rank, F&& f) const {
    for_each_range(rank, [&](Index first, Index last) {
      for (Index j = first; j < last; ++j) f(j);
    });
  }

 private:
  static std::vector<int> ranks_in_order(std::size_t bounds) {
    std::vector<int> owners(bounds > 0 ? bounds - 1 : 0);
    for (std::size_t r = 0; r < owners.size(); ++r) owners[r] = static_cast<int>(r);
    return owners.empty() ? std::vector<int>{-1} : owners;  // -1: refused by the checks
  }
  bool intervals() const { return !starts_.empty(); }
  std::size_t interval(Index row) const {
    return static_cast<std::size_t>(std::upper_bound(starts_.begin() + 1, starts_.end() - 1, row) - (starts_.begin() + 1));
  }
  Index n_;
  int ranks_ = 1;
  Index chunk_;
  // Interval mode (starts_ not empty): interval k is [starts_[k], starts_[k + 1]), owned by
  // owners_[k], its first row being local index first_local_[k] there; intervals_of_[r]: rank r's.
  std::vector<Index> starts_;
  std::vector<int> owners_;
  std::vector<Index> first_local_;
  std::vector<std::vector<std::size_t>> intervals_of_;
};

}  // namespace lmtopo::topology
