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
