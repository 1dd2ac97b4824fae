// Simplex-wise zigzag filtrations and their barcodes via one cone reduction (FastZigzag,
// Dey & Hou 2022; science.md section 2).
#pragma once
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "topology/boundary_matrix.hpp"

namespace lmtopo::topology {

using Vertex = std::uint32_t;
using Simplex = std::vector<Vertex>;  // sorted, distinct vertices; dimension = size - 1

struct ZigzagOp {
  bool insert = true;
  Simplex simplex;
};

// A read-only run of a simplex's sorted vertices inside a ZigzagOpList.
struct SimplexView {
  const Vertex* first = nullptr;
  const Vertex* last = nullptr;
  const Vertex* begin() const { return first; }
  const Vertex* end() const { return last; }
  std::size_t size() const { return static_cast<std::size_t>(last - first); }
  Vertex operator[](std::size_t i) const { return first[i]; }
};

// Packs a simplex's vertices, without the one at position `skip` (kNoSkip: all), two to a 64-bit
// word into `words` (zeroed, long enough): the fixed-width keys of the simplex tables. The padding
// cannot be mistaken for a vertex, since every vertex after a simplex's first is > 0.
constexpr std::size_t kNoSkip = static_cast<std::size_t>(-1);
inline void pack_vertices(SimplexView s, std::size_t skip, std::uint64_t* words) {
  std::size_t j = 0;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (i != skip) {
      words[j / 2] |= static_cast<std::uint64_t>(s[i]) << (32 * (j % 2));
      ++j;
    }
}

// A simplex-wise zigzag in three flat arrays (kinds, offsets, all vertices): one allocation each
// instead of one per operation, which is what the parser and the cone builder need at 10^7 operations.
class ZigzagOpList {
 public:
  ZigzagOpList() = default;
  explicit ZigzagOpList(const std::vector<ZigzagOp>& ops);

  void reserve(std::size_t ops, std::size_t vertices);
  // `first..last` must be the simplex's vertices in increasing order (checked by build_cone_matrix).
  void push_back(bool insert, const Vertex* first, const Vertex* last);
  void push_back(const ZigzagOp& op) { push_back(op.insert, op.simplex.data(), op.simplex.data() + op.simplex.size()); }

  std::size_t size() const { return insert_.size(); }
  bool empty() const { return insert_.empty(); }
  bool is_insert(std::size_t i) const { return insert_[i] != 0; }
  SimplexView simplex(std::size_t i) const {
    return {vertices_.data() + offsets_[i], vertices_.data() + offsets_[i + 1]};
  }
  std::size_t max_simplex_size() const { return max_size_; }
  std::size_t num_vertex_entries() const { return vertices_.size(); }

 private:
  std::vector<std::uint8_t> insert_;
  std::vector<std::uint64_t> offsets_{0};
  std::vector<Vertex> vertices_;
  std::size_t max_size_ = 0;
};

// A closed interval [birth, death] of 1-based operation indices in homology dimension `dim`:
// the class exists in the complexes after operations birth..death (K_i = complex after op i).
struct ZigzagBar {
  int dim = 0;
  Index birth = 0;
  Index death = 0;
  bool operator==(const ZigzagBar& o) const { return dim == o.dim && birth == o.birth && death == o.death; }
  bool operator<(const ZigzagBar& o) const {
    if (dim != o.dim) return dim < o.dim;
    if (birth != o.birth) return birth < o.birth;
    return death < o.death;
  }
};

inline std::ostream& operator<<(std::ostream& out, const ZigzagBar& b) {
  return out << "(" << b.dim << ": " << b.birth << ", " << b.death << ")";
}

// Raised for a sequence that is not a simplex-wise zigzag; `op_index` is 0-based.
struct InvalidZigzag {
  Index op_index;
  std::string reason;
};

// The cone boundary matrix of a zigzag with the bookkeeping needed to read bars back.
struct ConeMatrix {
  BoundaryMatrix matrix;        // 2n+1 columns: apex, n insertion cells, n cone cells
  std::vector<Index> add_op;    // add_op[i]: 0-based op index of the i-th insertion
  std::vector<Index> del_op;    // del_op[i]: op index of the i-th (possibly virtual, >= m) deletion
  Index num_ops = 0;            // m
};

// Builds the cone matrix; throws InvalidZigzag for an invalid sequence (inserting a present simplex
// or one whose facets are absent, deleting an absent simplex or one with a coface present).
// Simplices are looked up in a flat hash table keyed by their vertices packed into a fixed-size
// array when every simplex has at most 8 vertices (a vector key otherwise).
ConeMatrix build_cone_matrix(const ZigzagOpList& ops);
ConeMatrix build_cone_matrix(const std::vector<ZigzagOp>& ops);

// The bar of one pair of the cone matrix (creator c < destroyer e, n insertions), from the creator's
// dimension and the operations the two columns stand for (an insertion's for a column <= n, the
// deletion's for a cone column, >= m for a virtual one). Its dim is < 0 when the pair gives no bar;
// read_out_bars also drops bars born after the last operation and clamps deaths to m.
ZigzagBar bar_of_cone_pair(Index c, Index e, Index n, int dim_c, Index op_c, Index op_e);

// "{v0,v1,...}", as the error messages write a simplex.
std::string describe_simplex(SimplexView s);

// Maps persistence pairs of the cone matrix to zigzag bars (sorted by dim, birth, death). Bars born
// after the last operation are discarded; deaths are clamped to m.
std::vector<ZigzagBar> read_out_bars(const ConeMatrix& cone, const std::vector<PersistencePair>& pairs);

}  // namespace lmtopo::topology
