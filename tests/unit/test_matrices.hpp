// Random test inputs shared by the unit and MPI tests: valid zigzags (faces before cofaces,
// deletions only without cofaces) and their cone matrices, and random simplicial filtrations.
#pragma once
#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "topology/boundary_matrix.hpp"
#include "topology/zigzag.hpp"

namespace lmtopo::test_inputs {

// A random valid simplex-wise zigzag on `vertices` vertices with simplices up to `max_dim`.
inline std::vector<topology::ZigzagOp> random_zigzag(std::mt19937& rng, int vertices, int max_dim, int steps,
                                                     double delete_probability) {
  using topology::Simplex;
  std::set<Simplex> present;
  std::vector<topology::ZigzagOp> ops;
  std::uniform_real_distribution<double> coin(0, 1);
  for (int step = 0; step < steps; ++step) {
    if (coin(rng) < delete_probability && !present.empty()) {
      // Delete a random maximal simplex (one without cofaces).
      std::vector<Simplex> maximal;
      for (const auto& s : present) {
        bool has_coface = false;
        for (const auto& t : present)
          if (t.size() == s.size() + 1 && std::includes(t.begin(), t.end(), s.begin(), s.end())) has_coface = true;
        if (!has_coface) maximal.push_back(s);
      }
      const auto& victim = maximal[std::uniform_int_distribution<std::size_t>(0, maximal.size() - 1)(rng)];
      ops.push_back({false, victim});
      present.erase(victim);
      continue;
    }
    // Insert a random absent simplex whose facets are all present.
    const int dim = std::uniform_int_distribution<int>(0, max_dim)(rng);
    Simplex s;
    std::vector<topology::Vertex> pool(static_cast<std::size_t>(vertices));
    for (int v = 0; v < vertices; ++v) pool[static_cast<std::size_t>(v)] = static_cast<topology::Vertex>(v);
    std::shuffle(pool.begin(), pool.end(), rng);
    s.assign(pool.begin(), pool.begin() + dim + 1);
    std::sort(s.begin(), s.end());
    if (present.count(s)) continue;
    bool faces_ok = true;
    if (s.size() > 1)
      for (std::size_t skip = 0; skip < s.size(); ++skip) {
        Simplex f;
        for (std::size_t i = 0; i < s.size(); ++i)
          if (i != skip) f.push_back(s[i]);
        faces_ok = faces_ok && present.count(f);
      }
    if (!faces_ok) continue;
    ops.push_back({true, s});
    present.insert(s);
  }
  return ops;
}

// A random simplicial filtration (insertions only) as a boundary matrix.
inline topology::BoundaryMatrix random_filtration_matrix(std::mt19937& rng, int vertices, int max_dim, int steps) {
  const auto ops = random_zigzag(rng, vertices, max_dim, steps, 0.0);
  std::map<topology::Simplex, topology::Index> index;
  topology::BoundaryMatrix m;
  for (const auto& op : ops) {
    std::vector<topology::Index> rows;
    if (op.simplex.size() > 1)
      for (std::size_t skip = 0; skip < op.simplex.size(); ++skip) {
        topology::Simplex f;
        for (std::size_t i = 0; i < op.simplex.size(); ++i)
          if (i != skip) f.push_back(op.simplex[i]);
        rows.push_back(index.at(f));
      }
    std::sort(rows.begin(), rows.end());
    index[op.simplex] = m.append_column(static_cast<int>(op.simplex.size()) - 1, rows);
  }
  return m;
}

}  // namespace lmtopo::test_inputs
