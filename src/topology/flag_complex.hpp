// Flag (clique) complexes of graphs, truncated at a maximum simplex dimension, with an up-front
// size bound for the memory guard.
#pragma once
#include <cstdint>
#include <vector>

#include "topology/zigzag.hpp"

namespace lmtopo::topology {

// Upper bound on the number of simplices of the flag complex up to `max_dim`: Σ_v Σ_p C(d⁺(v), p)
// with d⁺(v) the neighbours of v with larger index (exact for p <= 1). Saturates at UINT64_MAX.
std::uint64_t flag_complex_size_bound(const std::vector<std::vector<std::uint32_t>>& adjacency, int max_dim);

// All cliques with at most max_dim + 1 vertices, each sorted, the list ordered by dimension and then
// lexicographically. `adjacency` holds sorted neighbour lists of a simple undirected graph.
std::vector<Simplex> flag_complex(const std::vector<std::vector<std::uint32_t>>& adjacency, int max_dim);

}  // namespace lmtopo::topology
