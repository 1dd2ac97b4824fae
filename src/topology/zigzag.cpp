#include "topology/zigzag.hpp"

#include <algorithm>
#include <unordered_map>

namespace lmtopo::topology {
namespace {

struct SimplexHash {
  std::size_t operator()(const Simplex& s) const noexcept {
    std::uint64_t h = 1469598103934665603ull;  // FNV-1a over the vertex ids
    for (Vertex v : s) {
      h ^= v;
      h *= 1099511628211ull;
    }
    return static_cast<std::size_t>(h);
  }
};

struct PresentCell {
  Index cell;            // column index of the present copy (1..n)
  Index coface_count;    // present simplices having this one as a facet
};

std::string describe(const Simplex& s) {
  std::string out = "{";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "}";
}

}  // namespace

ConeMatrix build_cone_matrix(const std::vector<ZigzagOp>& ops) {
  ConeMatrix cone;
  cone.num_ops = static_cast<Index>(ops.size());
  std::unordered_map<Simplex, PresentCell, SimplexHash> present;

  // Up part: the apex, then one fresh cell per insertion whose boundary is the present copies of
  // its facets. The cone columns come after all insertions, so the up columns are built here and
  // kept in a side list until the number of insertions is known.
  std::vector<int> cell_dim{0};
  std::vector<std::vector<Index>> cell_boundary{{}};
  std::vector<Index> deleted_cells;  // deletion order: cell column per deletion
  Simplex facet;
  for (Index op = 0; op < cone.num_ops; ++op) {
    const ZigzagOp& z = ops[static_cast<std::size_t>(op)];
    const Simplex& s = z.simplex;
    if (s.empty()) throw InvalidZigzag{op, "empty simplex"};
    for (std::size_t i = 1; i < s.size(); ++i)
      if (s[i - 1] >= s[i]) throw InvalidZigzag{op, "vertices of " + describe(s) + " are not distinct"};
    if (z.insert) {
      if (present.count(s)) throw InvalidZigzag{op, "inserting " + describe(s) + " which is already present"};
      std::vector<Index> boundary;
      if (s.size() > 1) {
        for (std::size_t skip = 0; skip < s.size(); ++skip) {
          facet.clear();
          for (std::size_t i = 0; i < s.size(); ++i)
            if (i != skip) facet.push_back(s[i]);
          auto it = present.find(facet);
          if (it == present.end())
            throw InvalidZigzag{op, "inserting " + describe(s) + " before its face " + describe(facet)};
          boundary.push_back(it->second.cell);
        }
        for (std::size_t skip = 0; skip < s.size(); ++skip) {
          facet.clear();
          for (std::size_t i = 0; i < s.size(); ++i)
            if (i != skip) facet.push_back(s[i]);
          ++present[facet].coface_count;
        }
      }
      std::sort(boundary.begin(), boundary.end());
      const auto cell = static_cast<Index>(cell_dim.size());
      cell_dim.push_back(static_cast<int>(s.size()) - 1);
      cell_boundary.push_back(std::move(boundary));
      present.emplace(s, PresentCell{cell, 0});
      cone.add_op.push_back(op);
    } else {
      auto it = present.find(s);
      if (it == present.end()) throw InvalidZigzag{op, "deleting " + describe(s) + " which is not present"};
      if (it->second.coface_count > 0)
        throw InvalidZigzag{op, "deleting " + describe(s) + " while a coface of it is present"};
      deleted_cells.push_back(it->second.cell);
      cone.del_op.push_back(op);
      present.erase(it);
      if (s.size() > 1) {
        for (std::size_t skip = 0; skip < s.size(); ++skip) {
          facet.clear();
          for (std::size_t i = 0; i < s.size(); ++i)
            if (i != skip) facet.push_back(s[i]);
          --present[facet].coface_count;
        }
      }
    }
  }

  // Virtual deletions of what is still present: decreasing dimension, later insertions first, so
  // cofaces always go before faces.
  std::vector<Index> remaining;
  remaining.reserve(present.size());
  for (const auto& kv : present) remaining.push_back(kv.second.cell);
  std::sort(remaining.begin(), remaining.end(), [&](Index a, Index b) {
    const int da = cell_dim[static_cast<std::size_t>(a)], db = cell_dim[static_cast<std::size_t>(b)];
    return da != db ? da > db : a > b;
  });
  Index virtual_op = cone.num_ops;
  for (Index cell : remaining) {
    deleted_cells.push_back(cell);
    cone.del_op.push_back(virtual_op++);
  }

  const auto n = static_cast<Index>(cone.add_op.size());
  // Cone cell of the k-th deletion sits at column 2n - k (the deletion list in reverse).
  std::vector<Index> cone_column_of_cell(static_cast<std::size_t>(n) + 1, -1);
  for (Index k = 0; k < n; ++k) cone_column_of_cell[static_cast<std::size_t>(deleted_cells[static_cast<std::size_t>(k)])] = 2 * n - k;

  for (Index c = 0; c <= n; ++c)
    cone.matrix.append_column(cell_dim[static_cast<std::size_t>(c)], cell_boundary[static_cast<std::size_t>(c)]);
  std::vector<Index> boundary;
  for (Index e = n + 1; e <= 2 * n; ++e) {
    const Index cell = deleted_cells[static_cast<std::size_t>(2 * n - e)];
    const auto& up = cell_boundary[static_cast<std::size_t>(cell)];
    boundary.clear();
    if (up.empty()) boundary.push_back(0);  // a vertex: boundary of the cone edge is v + apex
    boundary.push_back(cell);
    for (Index f : up) boundary.push_back(cone_column_of_cell[static_cast<std::size_t>(f)]);
    std::sort(boundary.begin(), boundary.end());
    cone.matrix.append_column(cell_dim[static_cast<std::size_t>(cell)] + 1, boundary);
  }
  return cone;
}

std::vector<ZigzagBar> read_out_bars(const ConeMatrix& cone, const std::vector<PersistencePair>& pairs) {
  const auto n = static_cast<Index>(cone.add_op.size());
  const Index m = cone.num_ops;
  auto add = [&](Index i) { return cone.add_op[static_cast<std::size_t>(i)]; };
  auto del = [&](Index i) { return cone.del_op[static_cast<std::size_t>(i)]; };
  std::vector<ZigzagBar> bars;
  for (const auto& pr : pairs) {
    const Index c = pr.creator, e = pr.destroyer;
    const int p = cone.matrix.dim(c);
    ZigzagBar bar;
    if (e <= n) {
      bar = {p, add(c - 1) + 1, add(e - 1)};
    } else if (c <= n) {
      const Index b = add(c - 1), d = del(2 * n - e);
      bar = b < d ? ZigzagBar{p, b + 1, d} : ZigzagBar{p - 1, d + 1, b};
    } else {
      bar = {p - 1, del(2 * n - e) + 1, del(2 * n - c)};
    }
    if (bar.dim < 0 || bar.birth > m) continue;
    bar.death = std::min(bar.death, m);
    bars.push_back(bar);
  }
  std::sort(bars.begin(), bars.end());
  return bars;
}

}  // namespace lmtopo::topology
