// A Z/2 boundary matrix in compressed column form: the policy every reducer reads.
// Columns are in filtration order; each column lists its nonzero row indices in increasing order.
#pragma once
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

namespace lmtopo::topology {

using Index = std::int64_t;
// A stored row index: 32 bits, half the memory and memory traffic of an Index, so a matrix has at
// most 2^32 - 1 columns (a zigzag of about 2·10^9 insertions).
using Row = std::uint32_t;
constexpr Index kMaxColumns = static_cast<Index>(std::numeric_limits<Row>::max());

struct ColumnView {
  const Row* first;
  const Row* last;
  const Row* begin() const { return first; }
  const Row* end() const { return last; }
  bool empty() const { return first == last; }
  std::size_t size() const { return static_cast<std::size_t>(last - first); }
};

class BoundaryMatrix {
 public:
  BoundaryMatrix() { offsets_.push_back(0); }

  // Takes whole arrays: column j has dimension dims[j] and rows entries[offsets[j]..offsets[j+1]),
  // checked as append_column checks them.
  BoundaryMatrix(std::vector<int> dims, std::vector<Index> offsets, std::vector<Row> entries)
      : dims_(std::move(dims)), offsets_(std::move(offsets)), entries_(std::move(entries)) {
    if (offsets_.size() != dims_.size() + 1 || offsets_.front() != 0 ||
        offsets_.back() != static_cast<Index>(entries_.size()) || num_columns() > kMaxColumns)
      throw std::logic_error("boundary matrix arrays do not match");
    for (Index j = 0; j < num_columns(); ++j) {
      Index previous = -1;
      for (Index r : column(j)) {
        if (r <= previous || r >= j) throw std::logic_error("boundary column not sorted or not a face");
        previous = r;
      }
    }
  }

  // Appends a column; `rows` must be strictly increasing and below the new column's index.
  template <class Range>
  Index append_column(int dim, const Range& rows) {
    const Index j = num_columns();
    if (j >= kMaxColumns) throw std::length_error("boundary matrix: more than 2^32 - 1 columns");
    Index previous = -1;
    for (Index r : rows) {
      if (r <= previous || r >= j) throw std::logic_error("boundary column not sorted or not a face");
      entries_.push_back(static_cast<Row>(r));
      previous = r;
    }
    dims_.push_back(dim);
    offsets_.push_back(static_cast<Index>(entries_.size()));
    return j;
  }

  // Capacity for `columns` columns with `entries` entries in all (one allocation each).
  void reserve(Index columns, Index entries) {
    dims_.reserve(static_cast<std::size_t>(columns));
    offsets_.reserve(static_cast<std::size_t>(columns) + 1);
    entries_.reserve(static_cast<std::size_t>(entries));
  }

  // Frees the rows and keeps the dimensions (all a zigzag's bar read-out needs): column() must not
  // be called afterwards.
  void release_rows() {
    std::vector<Index>().swap(offsets_);
    std::vector<Row>().swap(entries_);
  }

  Index num_columns() const { return static_cast<Index>(dims_.size()); }
  Index num_entries() const { return static_cast<Index>(entries_.size()); }
  int dim(Index j) const { return dims_[static_cast<std::size_t>(j)]; }
  const std::vector<int>& dims() const { return dims_; }
  int max_dim() const {
    int m = 0;
    for (int d : dims_) m = d > m ? d : m;
    return m;
  }
  ColumnView column(Index j) const {
    const auto* base = entries_.data();
    return {base + offsets_[static_cast<std::size_t>(j)], base + offsets_[static_cast<std::size_t>(j) + 1]};
  }

 private:
  std::vector<int> dims_;
  std::vector<Index> offsets_;
  std::vector<Row> entries_;
};

// The anti-transpose of `matrix` (PHAT's and DIPHA's "dualize"): cell i becomes cell n-1-i, its
// column lists the cells whose boundary contains it (its coboundary), and its dimension is
// max_dim - dim(i). Reducing it yields the persistent cohomology pairs, which are the homology pairs
// with both ends mapped back by i -> n-1-i (de Silva, Morozov, Vejdemo-Johansson 2011). The columns
// of dimension `leave_out` (if any) contribute no rows: the hybrid reduction finds their pairs in
// the matrix itself (columns_of_dim). Nor do the cells marked in `compressed` (if given): cells
// that are creators of pairs with a leave_out column, whose rows the anti-transpose can do without
// (compression, reduce_distributed.cpp's reduce_named).
inline BoundaryMatrix anti_transpose(const BoundaryMatrix& matrix, int leave_out = -1,
                                     const std::vector<bool>* compressed = nullptr) {
  const Index n = matrix.num_columns();
  const int top = matrix.max_dim();
  auto kept = [&](Index j) {
    return matrix.dim(j) != leave_out && !(compressed && (*compressed)[static_cast<std::size_t>(j)]);
  };
  std::vector<Index> offsets(static_cast<std::size_t>(n) + 1, 0);
  for (Index j = 0; j < n; ++j)
    if (kept(j))
      for (Index i : matrix.column(j)) ++offsets[static_cast<std::size_t>(n - 1 - i) + 1];
  for (std::size_t c = 1; c < offsets.size(); ++c) offsets[c] += offsets[c - 1];
  std::vector<Row> rows(static_cast<std::size_t>(offsets.back()));
  {
    std::vector<Index> fill(offsets.begin(), offsets.end() - 1);
    // Visiting original columns from last to first writes each dual column's rows n-1-j increasing.
    for (Index j = n; j-- > 0;)
      if (kept(j))
        for (Index i : matrix.column(j))
          rows[static_cast<std::size_t>(fill[static_cast<std::size_t>(n - 1 - i)]++)] = static_cast<Row>(n - 1 - j);
  }
  std::vector<int> dims(static_cast<std::size_t>(n));
  for (Index c = 0; c < n; ++c) dims[static_cast<std::size_t>(c)] = top - matrix.dim(n - 1 - c);
  return BoundaryMatrix(std::move(dims), std::move(offsets), std::move(rows));
}

// `matrix` with the rows of its columns of dimension `dim` only (every column keeps its dimension;
// the others are empty).
inline BoundaryMatrix columns_of_dim(const BoundaryMatrix& matrix, int dim) {
  const Index n = matrix.num_columns();
  std::vector<Index> offsets(static_cast<std::size_t>(n) + 1, 0);
  for (Index j = 0; j < n; ++j)
    offsets[static_cast<std::size_t>(j) + 1] =
        offsets[static_cast<std::size_t>(j)] + (matrix.dim(j) == dim ? static_cast<Index>(matrix.column(j).size()) : 0);
  std::vector<Row> rows;
  rows.reserve(static_cast<std::size_t>(offsets.back()));
  for (Index j = 0; j < n; ++j)
    if (matrix.dim(j) == dim) rows.insert(rows.end(), matrix.column(j).begin(), matrix.column(j).end());
  return BoundaryMatrix(matrix.dims(), std::move(offsets), std::move(rows));
}

// One persistence pair of a reduced matrix: `creator` is the pivot row, `destroyer` the column.
struct PersistencePair {
  Index creator;
  Index destroyer;
  bool operator==(const PersistencePair& o) const { return creator == o.creator && destroyer == o.destroyer; }
  bool operator<(const PersistencePair& o) const {
    return creator != o.creator ? creator < o.creator : destroyer < o.destroyer;
  }
};

}  // namespace lmtopo::topology
