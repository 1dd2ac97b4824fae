// Simplex-wise zigzag filtrations and their barcodes via one cone reduction (FastZigzag,
// Dey & Hou 2022; science.md section 2).
#pragma once
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
ConeMatrix build_cone_matrix(const std::vector<ZigzagOp>& ops);

// Maps persistence pairs of the cone matrix to zigzag bars (sorted by dim, birth, death). Bars born
// after the last operation are discarded; deaths are clamped to m.
std::vector<ZigzagBar> read_out_bars(const ConeMatrix& cone, const std::vector<PersistencePair>& pairs);

}  // namespace lmtopo::topology
