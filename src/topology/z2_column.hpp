// Column arithmetic over Z/2: the working column of every reducer.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <vector>

#include "topology/boundary_matrix.hpp"

namespace lmtopo::topology {

// Releases the storage of a column that is known to stay zero.
inline void release_column(std::vector<Index>& column) { std::vector<Index>().swap(column); }

}  // namespace lmtopo::topology

namespace lmtopo::topology {

// The rows of a column held in a ColumnStore: the gaps between consecutive rows (the first row's
// from 0), each in 16 bits, or as kWideGap followed by the gap in 32 bits when it does not fit.
// (LEB128 varints took about 1.4 bytes a row instead of 2, and made a reduction 6-10% slower: the
// continuation bit's branch mispredicts; the escape is rare and predicted.)
struct StoredRows {
  const std::uint8_t* first;
  const std::uint8_t* last;
  // Calls f(row) for every row, increasing.
  template <class F>
  void for_each(F&& f) const {
    std::uint32_t row = 0;
    for (const std::uint8_t* p = first; p != last;) {
      std::uint16_t gap;
      std::memcpy(&gap, p, 2);
      p += 2;
      if (gap != kWideGap) {
        row += gap;
      } else {
        std::uint32_t wide;
        std::memcpy(&wide, p, 4);
        p += 4;
        row += wide;
      }
      f(row);
    }
  }
  static constexpr std::uint16_t kWideGap = 0xffff;  // the gap follows in 32 bits
};

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
  void add(const StoredRows& rows) {
    rows.for_each([this](std::uint32_t r) { toggle(r); });
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

// Reduced columns kept by their pivot row: each column's byte count and gap-coded rows (StoredRows)
// in an arena of bytes, in the order they were stored, and one 64-bit slot (block, offset) per pivot
// row. Finding the column at a pivot is one random access, its length sits in the cache line of its
// first rows, and its rows lie near those of the columns stored just before it: the twist reduction
// of a cone matrix runs about 1.5x faster than with a heap vector per column (docs/benchmarks.md).
// A cone matrix's reduced columns have close rows: their gaps take 2 bytes a row instead of a row's
// 4, and the store is what a large reduction's peak memory is made of. The arena grows by 4 MiB
// blocks, never by copying. Rows must be below 2^32.
class ColumnStore {
 public:
  // Pivots in [first_row, first_row + rows): a rank's block of the distributed reducer.
  explicit ColumnStore(Index rows, Index first_row = 0)
      : first_row_(first_row), slots_(static_cast<std::size_t>(rows), kEmpty) {}

  bool holds(Index pivot) const { return slot(pivot) != kEmpty; }
  StoredRows column(Index pivot) const {
    const std::uint8_t* at = address(slot(pivot));
    return {at + kHeader, at + kHeader + byte_count(at)};
  }
  // Hints that column(pivot) will be read soon: its slot (first stage), or the first rows of the column
  // the slot names (second stage, once the slot is cached). A follower of a known sequence of pivots
  // (the row-split reducer) hides the two dependent cache misses of each addition this way.
  void prefetch_slot(Index pivot) const { __builtin_prefetch(&slots_[static_cast<std::size_t>(pivot - first_row_)]); }
  void prefetch_column(Index pivot) const {
    const std::uint64_t slot = this->slot(pivot);
    if (slot != kEmpty) __builtin_prefetch(address(slot));
  }
  // Forgets every stored column and returns the arena's memory. A reduction calls it between
  // dimensions: a dimension's columns have their pivots among the rows of the dimension below, so no
  // later dimension can reach the columns stored before (the peak is the largest dimension's store,
  // not the sum of all).
  void clear() {
    std::vector<std::unique_ptr<std::uint8_t[]>>().swap(blocks_);
    block_used_ = block_size_ = 0;
    std::fill(slots_.begin(), slots_.end(), kEmpty);
  }
  // Moves the (non-empty) working column in as the column stored at its pivot; returns the pivot.
  Index store(PivotColumn& work) {
    const Index pivot = work.pivot();
    work.take(scratch_);
    store_rows(pivot, scratch_);
    return pivot;
  }
  // Stores `rows` (increasing, ending at `pivot`) as the column at `pivot`. A column stored there
  // before is replaced: overwritten in place when it took at least as many bytes, else its bytes stay
  // in the arena unused and the new one is appended.
  template <class Rows>
  void store_rows(Index pivot, const Rows& rows) {
    const std::uint32_t bytes = encode(rows);
    std::uint64_t& slot = this->slot(pivot);
    if (slot != kEmpty && byte_count(address(slot)) >= bytes) {
      write(address(slot), bytes);
      return;
    }
    if (block_size_ - block_used_ < kHeader + bytes) {
      block_size_ = std::max(kBlockBytes, kHeader + bytes);
      blocks_.emplace_back(new std::uint8_t[block_size_]);  // uninitialised: pages are touched as used
      block_used_ = 0;
    }
    slot = (static_cast<std::uint64_t>(blocks_.size() - 1) << 32) | block_used_;
    write(blocks_.back().get() + block_used_, bytes);
    block_used_ += kHeader + bytes;
  }

 private:
  std::uint64_t slot(Index pivot) const { return slots_[static_cast<std::size_t>(pivot - first_row_)]; }
  std::uint64_t& slot(Index pivot) { return slots_[static_cast<std::size_t>(pivot - first_row_)]; }
  std::uint8_t* address(std::uint64_t slot) const { return blocks_[slot >> 32].get() + (slot & 0xffffffffu); }
  static std::uint32_t byte_count(const std::uint8_t* at) {
    std::uint32_t bytes;
    std::memcpy(&bytes, at, kHeader);
    return bytes;
  }
  // The rows' gaps (StoredRows' coding) into encoded_; returns their byte count.
  template <class Rows>
  std::uint32_t encode(const Rows& rows) {
    // A column's bytes and header are counted in 32 bits: at most 6 bytes a row.
    if (rows.size() > (std::numeric_limits<std::uint32_t>::max() - kHeader) / 6)
      throw std::length_error("ColumnStore: a reduced column of more than 715,827,881 rows");
    if (encoded_.size() < 6 * rows.size()) encoded_.resize(6 * rows.size());
    std::uint8_t* out = encoded_.data();
    std::uint32_t previous = 0;
    for (const auto row : rows) {
      const std::uint32_t gap = static_cast<std::uint32_t>(row) - previous;
      previous = static_cast<std::uint32_t>(row);
      if (gap < StoredRows::kWideGap) {
        const auto narrow = static_cast<std::uint16_t>(gap);
        std::memcpy(out, &narrow, 2);
        out += 2;
      } else {
        std::memcpy(out, &StoredRows::kWideGap, 2);
        std::memcpy(out + 2, &gap, 4);
        out += 6;
      }
    }
    return static_cast<std::uint32_t>(out - encoded_.data());
  }
  void write(std::uint8_t* at, std::uint32_t bytes) const {
    std::memcpy(at, &bytes, kHeader);
    std::memcpy(at + kHeader, encoded_.data(), bytes);
  }
  static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
  static constexpr std::uint32_t kHeader = sizeof(std::uint32_t);
  static constexpr std::uint32_t kBlockBytes = std::uint32_t{1} << 22;
  Index first_row_;
  std::vector<std::uint64_t> slots_;
  std::vector<std::unique_ptr<std::uint8_t[]>> blocks_;
  std::uint32_t block_used_ = 0;
  std::uint32_t block_size_ = 0;
  std::vector<std::uint32_t> scratch_;
  std::vector<std::uint8_t> encoded_;
};

}  // namespace lmtopo::topology
