// A Z/2 boundary matrix in compressed column form: the policy every reducer reads.
// Columns are in filtration order; each column lists its nonzero row indices in increasing order.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

namespace lmtopo::topology {

using Index = std::int64_t;

struct ColumnView {
  const Index* first;
  const Index* last;
  const Index* begin() const { return first; }
  const Index* end() const { return last; }
  bool empty() const { return first == last; }
  std::size_t size() const { return static_cast<std::size_t>(last - first); }
};

class BoundaryMatrix {
 public:
  BoundaryMatrix() { offsets_.push_back(0); }

  // Appends a column; `rows` must be strictly increasing and below the new column's index.
  template <class Range>
  Index append_column(int dim, const Range& rows) {
    const Index j = num_columns();
    Index previous = -1;
    for (Index r : rows) {
      if (r <= previous || r >= j) throw std::logic_error("boundary column not sorted or not a face");
      entries_.push_back(r);
      previous = r;
    }
    dims_.push_back(dim);
    offsets_.push_back(static_cast<Index>(entries_.size()));
    return j;
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
  std::vector<Index> entries_;
};

// The anti-transpose of `matrix` (PHAT's and DIPHA's "dualize"): cell i becomes cell n-1-i, its
// column lists the cells whose boundary contains it (its coboundary), and its dimension is
// max_dim - dim(i). Reducing it yields the persistent cohomology pairs, which are the homology pairs
// with both ends mapped back by i -> n-1-i (de Silva, Morozov, Vejdemo-Johansson 2011).
inline BoundaryMatrix anti_transpose(const BoundaryMatrix& matrix) {
  const Index n = matrix.num_columns();
  const int top = matrix.max_dim();
  std::vector<Index> counts(static_cast<std::size_t>(n) + 1, 0);
  for (Index j = 0; j < n; ++j)
    for (Index i : matrix.column(j)) ++counts[static_cast<std::size_t>(n - 1 - i) + 1];
  for (std::size_t c = 1; c < counts.size(); ++c) counts[c] += counts[c - 1];
  std::vector<Index> rows(static_cast<std::size_t>(counts.back()));
  std::vector<Index> fill(counts.begin(), counts.end() - 1);
  // Visiting original columns from last to first writes each dual column's rows n-1-j increasing.
  for (Index j = n; j-- > 0;)
    for (Index i : matrix.column(j)) rows[static_cast<std::size_t>(fill[static_cast<std::size_t>(n - 1 - i)]++)] = n - 1 - j;
  BoundaryMatrix dual;
  const Index* base = rows.data();
  for (Index c = 0; c < n; ++c)
    dual.append_column(top - matrix.dim(n - 1 - c), ColumnView{base + counts[static_cast<std::size_t>(c)],
                                                               base + counts[static_cast<std::size_t>(c) + 1]});
  return dual;
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
