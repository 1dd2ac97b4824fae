// Column arithmetic over Z/2: the working column of every reducer.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "topology/boundary_matrix.hpp"

namespace lmtopo::topology {

// Releases the storage of a column that is known to stay zero.
inline void release_column(std::vector<Index>& column) { std::vector<Index>().swap(column); }

}  // namespace lmtopo::topology

namespace lmtopo::topology {

// The column being reduced, kept as a 64-ary bit tree over all row indices (PHAT's bit-tree pivot
// column): adding a stored column costs O(len · log64 n) instead of a merge over both columns, and
// the pivot (largest row) is found in O(log64 n). Long chains of additions into one growing column,
// which zigzag cone matrices produce, are where this matters.
class PivotColumn {
 public:
  explicit PivotColumn(Index num_rows) {
    std::size_t words = (static_cast<std::size_t>(std::max<Index>(num_rows, 1)) + 63) / 64;
    do {
      levels_.emplace_back(words, 0);
      words = (words + 63) / 64;
    } while (levels_.back().size() > 1);
  }

  bool empty() const { return levels_.back()[0] == 0; }

  // Largest row index present; the column must not be empty.
  Index pivot() const {
    std::size_t word = 0;
    for (std::size_t level = levels_.size(); level-- > 0;) {
      const std::uint64_t bits = levels_[level][word];
      word = word * 64 + static_cast<std::size_t>(63 - __builtin_clzll(bits));
    }
    return static_cast<Index>(word);
  }

  void toggle(Index row) {
    auto index = static_cast<std::size_t>(row);
    for (auto& level : levels_) {
      std::uint64_t& w = level[index / 64];
      const bool was_zero = w == 0;
      w ^= std::uint64_t{1} << (index % 64);
      // The parent's bit records "this word is non-zero": it changes only when the word goes to or
      // from zero.
      if (!(was_zero || w == 0)) return;
      index /= 64;
    }
  }

  template <class Range>
  void add(const Range& rows) {
    for (Index r : rows) toggle(r);
  }

  // Moves the entries into `out` (increasing order) and leaves the column empty.
  void take(std::vector<Index>& out) {
    out.clear();
    while (!empty()) {
      const Index p = pivot();
      out.push_back(p);
      toggle(p);
    }
    std::reverse(out.begin(), out.end());
  }

 private:
  std::vector<std::vector<std::uint64_t>> levels_;
};

}  // namespace lmtopo::topology
