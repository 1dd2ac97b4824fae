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
  template <class Vector>
  void take(Vector& out) {
    out.clear();
    append_to(out);
  }

  // Appends the entries to `out` (increasing order) and leaves the column empty: one walk down the
  // tree from the root, visiting only non-zero words, instead of a pivot search and a toggle per entry.
  template <class Vector>
  void append_to(Vector& out) {
    drain(levels_.size() - 1, 0, out);
  }

 private:
  template <class Vector>
  void drain(std::size_t level, std::size_t word, Vector& out) {
    std::uint64_t bits = levels_[level][word];
    levels_[level][word] = 0;
    while (bits != 0) {
      const auto child = word * 64 + static_cast<std::size_t>(__builtin_ctzll(bits));
      bits &= bits - 1;
      if (level == 0) {
        out.push_back(static_cast<typename Vector::value_type>(child));
      } else {
        drain(level - 1, child, out);
      }
    }
  }

  std::vector<std::vector<std::uint64_t>> levels_;
};

// The rows of a column held in a ColumnStore.
struct StoredRows {
  const std::uint32_t* first;
  const std::uint32_t* last;
  const std::uint32_t* begin() const { return first; }
  const std::uint32_t* end() const { return last; }
};

// Reduced columns kept by their pivot row: each column's length and rows in an arena of 32-bit
// words, in the order they were stored, and one 64-bit slot (block, offset) per pivot row. Finding
// the column at a pivot is one random access, its length sits in the cache line of its first rows,
// and its rows lie near those of the columns stored just before it: the twist reduction of a cone
// matrix runs about 1.5x faster than with a heap vector per column, in half the memory
// (docs/benchmarks.md). The arena grows by 4 MiB blocks, never by copying. Rows must be below 2^32.
class ColumnStore {
 public:
  // Pivots in [first_row, first_row + rows): a rank's block of the distributed reducer.
  explicit ColumnStore(Index rows, Index first_row = 0)
      : first_row_(first_row), slots_(static_cast<std::size_t>(rows), kEmpty) {}

  bool holds(Index pivot) const { return slot(pivot) != kEmpty; }
  StoredRows column(Index pivot) const {
    const std::uint64_t slot = this->slot(pivot);
    const std::uint32_t* at = blocks_[slot >> 32].data() + (slot & 0xffffffffu);
    return {at + 1, at + 1 + at[0]};
  }
  // Hints that column(pivot) will be read soon: its slot (first stage), or the first rows of the column
  // the slot names (second stage, once the slot is cached). A follower of a known sequence of pivots
  // (the row-split reducer) hides the two dependent cache misses of each addition this way.
  void prefetch_slot(Index pivot) const { __builtin_prefetch(&slots_[static_cast<std::size_t>(pivot - first_row_)]); }
  void prefetch_column(Index pivot) const {
    const std::uint64_t slot = this->slot(pivot);
    if (slot != kEmpty) __builtin_prefetch(blocks_[slot >> 32].data() + (slot & 0xffffffffu));
  }
  // Forgets every stored column and returns the arena's memory. A reduction calls it between
  // dimensions: a dimension's columns have their pivots among the rows of the dimension below, so no
  // later dimension can reach the columns stored before (the peak is the largest dimension's store,
  // not the sum of all).
  void clear() {
    std::vector<std::vector<std::uint32_t>>().swap(blocks_);
    std::fill(slots_.begin(), slots_.end(), kEmpty);
  }
  // Moves the (non-empty) working column in as the column stored at its pivot; returns the pivot.
  Index store(PivotColumn& work) {
    const Index pivot = work.pivot();
    work.take(scratch_);
    store_rows(pivot, scratch_);
    return pivot;
  }
  // Stores `rows` (increasing, ending at `pivot`) as the column at `pivot`; a column stored there
  // before is replaced (its words stay in the arena unused).
  template <class Rows>
  void store_rows(Index pivot, const Rows& rows) {
    const std::size_t words = rows.size() + 1;
    if (blocks_.empty() || blocks_.back().capacity() - blocks_.back().size() < words) {
      blocks_.emplace_back();
      blocks_.back().reserve(std::max(kBlockWords, words));
    }
    auto& block = blocks_.back();
    slot(pivot) = (static_cast<std::uint64_t>(blocks_.size() - 1) << 32) | block.size();
    block.push_back(static_cast<std::uint32_t>(rows.size()));
    block.insert(block.end(), rows.begin(), rows.end());
  }

 private:
  std::uint64_t slot(Index pivot) const { return slots_[static_cast<std::size_t>(pivot - first_row_)]; }
  std::uint64_t& slot(Index pivot) { return slots_[static_cast<std::size_t>(pivot - first_row_)]; }
  static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
  static constexpr std::size_t kBlockWords = std::size_t{1} << 20;
  Index first_row_;
  std::vector<std::uint64_t> slots_;
  std::vector<std::vector<std::uint32_t>> blocks_;
  std::vector<std::uint32_t> scratch_;
};

}  // namespace lmtopo::topology
