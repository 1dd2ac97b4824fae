#include "topology/zigzag.hpp"

#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <array>
#include <string>

namespace lmtopo::topology {

ZigzagOpList::ZigzagOpList(const std::vector<ZigzagOp>& ops) {
  std::size_t vertices = 0;
  for (const auto& op : ops) vertices += op.simplex.size();
  reserve(ops.size(), vertices);
  for (const auto& op : ops) push_back(op);
}

void ZigzagOpList::reserve(std::size_t ops, std::size_t vertices) {
  insert_.reserve(ops);
  offsets_.reserve(ops + 1);
  vertices_.reserve(vertices);
}

void ZigzagOpList::push_back(bool insert, const Vertex* first, const Vertex* last) {
  insert_.push_back(insert ? 1 : 0);
  vertices_.insert(vertices_.end(), first, last);
  offsets_.push_back(vertices_.size());
  max_size_ = std::max(max_size_, static_cast<std::size_t>(last - first));
}

std::string describe_simplex(SimplexView s) {
  std::string out = "{";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "}";
}

namespace {

struct PresentCell {
  Index cell;          // column index of the present copy (1..n)
  Index coface_count;  // present simplices having this one as a facet
};

// Hash keys of a simplex, or of its facet without vertex `skip`. Up to N vertices are packed two to
// a 64-bit word, zero-padded: the padding cannot be mistaken for a vertex, since every vertex after a
// simplex's first is > 0. Compared word by word (std::array's == calls memcmp, half the build's time).
template <std::size_t N>
struct ArrayKey {
  static constexpr std::size_t kWords = N / 2;
  struct type {
    std::array<std::uint64_t, kWords> words;
    bool operator==(const type& o) const {
      bool equal = true;
      for (std::size_t w = 0; w < kWords; ++w) equal &= words[w] == o.words[w];
      return equal;
    }
    template <typename H>
    friend H AbslHashValue(H h, const type& k) {
      return H::combine_contiguous(std::move(h), k.words.data(), kWords);
    }
  };
  static type of(SimplexView s, std::size_t skip = kNoSkip) {
    type key{};
    pack_vertices(s, skip, key.words.data());
    return key;
  }
};

struct VectorKey {
  using type = std::vector<Vertex>;
  static type of(SimplexView s, std::size_t skip = kNoSkip) {
    type key;
    key.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i)
      if (i != skip) key.push_back(s[i]);
    return key;
  }
};

std::string describe(SimplexView s) { return describe_simplex(s); }

// The up part: the apex, then one fresh cell per insertion whose boundary is the present copies of
// its facets, appended to `cone.matrix` as they come. Returns the cell of every deletion, real ones
// in order, then the virtual deletions of what is still present at the end.
template <class Key>
std::vector<Index> build_up_part(const ZigzagOpList& ops, ConeMatrix& cone) {
  absl::flat_hash_map<typename Key::type, PresentCell> present;
  std::vector<Index> deleted_cells;
  std::vector<Index> boundary;
  std::vector<PresentCell*> facets;
  cone.matrix.append_column(0, boundary);  // the apex
  for (Index op = 0; op < cone.num_ops; ++op) {
    const SimplexView s = ops.simplex(static_cast<std::size_t>(op));
    if (s.size() == 0) throw InvalidZigzag{op, "empty simplex"};
    for (std::size_t i = 1; i < s.size(); ++i)
      if (s[i - 1] >= s[i]) throw InvalidZigzag{op, "vertices of " + describe(s) + " are not distinct"};
    if (ops.is_insert(static_cast<std::size_t>(op))) {
      const Index cell = cone.matrix.num_columns();
      if (!present.try_emplace(Key::of(s), PresentCell{cell, 0}).second)
        throw InvalidZigzag{op, "inserting " + describe(s) + " which is already present"};
      boundary.clear();
      facets.clear();
      for (std::size_t skip = 0; s.size() > 1 && skip < s.size(); ++skip) {
        auto it = present.find(Key::of(s, skip));  // no insertion before `facets` is used: pointers stay valid
        if (it == present.end()) {
          std::vector<Vertex> facet(s.begin(), s.end());
          facet.erase(facet.begin() + static_cast<std::ptrdiff_t>(skip));
          throw InvalidZigzag{op, "inserting " + describe(s) + " before its face " +
                                      describe({facet.data(), facet.data() + facet.size()})};
        }
        boundary.push_back(it->second.cell);
        facets.push_back(&it->second);
      }
      for (PresentCell* f : facets) ++f->coface_count;
      std::sort(boundary.begin(), boundary.end());
      cone.matrix.append_column(static_cast<int>(s.size()) - 1, boundary);
      cone.add_op.push_back(op);
    } else {
      auto it = present.find(Key::of(s));
      if (it == present.end()) throw InvalidZigzag{op, "deleting " + describe(s) + " which is not present"};
      if (it->second.coface_count > 0)
        throw InvalidZigzag{op, "deleting " + describe(s) + " while a coface of it is present"};
      deleted_cells.push_back(it->second.cell);
      cone.del_op.push_back(op);
      present.erase(it);
      for (std::size_t skip = 0; s.size() > 1 && skip < s.size(); ++skip) --present.find(Key::of(s, skip))->second.coface_count;
    }
  }
  // Virtual deletions of what is still present: decreasing dimension, later insertions first, so
  // cofaces always go before faces.
  std::vector<Index> remaining;
  remaining.reserve(present.size());
  for (const auto& kv : present) remaining.push_back(kv.second.cell);
  present = {};
  std::sort(remaining.begin(), remaining.end(), [&](Index a, Index b) {
    const int da = cone.matrix.dim(a), db = cone.matrix.dim(b);
    return da != db ? da > db : a > b;
  });
  Index virtual_op = cone.num_ops;
  for (Index cell : remaining) {
    deleted_cells.push_back(cell);
    cone.del_op.push_back(virtual_op++);
  }
  return deleted_cells;
}

// The cone part: the k-th deletion's cone cell sits at column 2n - k (the deletion list in reverse);
// its boundary is the cell itself and the cone cells of its facets (a vertex's: the apex).
void append_cone_part(const std::vector<Index>& deleted_cells, ConeMatrix& cone) {
  const auto n = static_cast<Index>(cone.add_op.size());
  std::vector<Index> cone_column_of_cell(static_cast<std::size_t>(n) + 1, -1);
  for (Index k = 0; k < n; ++k) cone_column_of_cell[static_cast<std::size_t>(deleted_cells[static_cast<std::size_t>(k)])] = 2 * n - k;
  std::vector<Index> boundary;
  for (Index e = n + 1; e <= 2 * n; ++e) {
    const Index cell = deleted_cells[static_cast<std::size_t>(2 * n - e)];
    boundary.clear();
    const ColumnView up = cone.matrix.column(cell);
    if (up.empty()) boundary.push_back(0);
    boundary.push_back(cell);
    for (Index f : up) boundary.push_back(cone_column_of_cell[static_cast<std::size_t>(f)]);
    std::sort(boundary.begin(), boundary.end());
    cone.matrix.append_column(cone.matrix.dim(cell) + 1, boundary);
  }
}

template <class Key>
ConeMatrix build_cone(const ZigzagOpList& ops) {
  ConeMatrix cone;
  cone.num_ops = static_cast<Index>(ops.size());
  // Exact sizes, so that the matrix is allocated once: n insertions, each with as many boundary
  // entries as vertices (none for a vertex); a cone column has one more, or two for a vertex's.
  Index n = 0, up_entries = 0, vertex_insertions = 0;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (!ops.is_insert(i)) continue;
    if (2 * ++n + 1 > kMaxColumns)
      throw InvalidZigzag{static_cast<Index>(i), "more than " + std::to_string((kMaxColumns - 1) / 2) +
                                                  " insertions: the cone matrix would exceed 2^32 - 1 columns"};
    const auto size = static_cast<Index>(ops.simplex(i).size());
    if (size > 1) up_entries += size;
    else ++vertex_insertions;
  }
  cone.matrix.reserve(2 * n + 1, 2 * up_entries + n + vertex_insertions);
  cone.add_op.reserve(static_cast<std::size_t>(n));
  cone.del_op.reserve(static_cast<std::size_t>(n));
  const std::vector<Index> deleted_cells = build_up_part<Key>(ops, cone);
  append_cone_part(deleted_cells, cone);
  return cone;
}

}  // namespace

ConeMatrix build_cone_matrix(const ZigzagOpList& ops) {
  const std::size_t width = ops.max_simplex_size();
  if (width <= 2) return build_cone<ArrayKey<2>>(ops);
  if (width <= 4) return build_cone<ArrayKey<4>>(ops);
  if (width <= 8) return build_cone<ArrayKey<8>>(ops);
  return build_cone<VectorKey>(ops);
}

ConeMatrix build_cone_matrix(const std::vector<ZigzagOp>& ops) { return build_cone_matrix(ZigzagOpList(ops)); }

ZigzagBar bar_of_cone_pair(Index c, Index e, Index n, int dim_c, Index op_c, Index op_e) {
  const int p = dim_c;
  if (e <= n) return {p, op_c + 1, op_e};
  if (c <= n) return op_c < op_e ? ZigzagBar{p, op_c + 1, op_e} : ZigzagBar{p - 1, op_e + 1, op_c};
  return {p - 1, op_e + 1, op_c};
}

std::vector<ZigzagBar> read_out_bars(const ConeMatrix& cone, const std::vector<PersistencePair>& pairs) {
  const auto n = static_cast<Index>(cone.add_op.size());
  const Index m = cone.num_ops;
  // The operation column j stands for: the j-th insertion's, or for a cone column the deletion's.
  auto op_of = [&](Index j) {
    return j <= n ? cone.add_op[static_cast<std::size_t>(j - 1)] : cone.del_op[static_cast<std::size_t>(2 * n - j)];
  };
  std::vector<ZigzagBar> bars;
  for (const auto& pr : pairs) {
    const Index c = pr.creator, e = pr.destroyer;
    ZigzagBar bar = bar_of_cone_pair(c, e, n, cone.matrix.dim(c), op_of(c), op_of(e));
    if (bar.dim < 0 || bar.birth > m) continue;
    bar.death = std::min(bar.death, m);
    bars.push_back(bar);
  }
  std::sort(bars.begin(), bars.end());
  return bars;
}

}  // namespace lmtopo::topology
