// Exact k-nearest-neighbour graphs of point clouds, blocked so that large clouds stream through
// BLAS (dgemm on tiles): 10,000 points of dimension 4,096 need a few hundred MiB at a time.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lmtopo::topology {

enum class Metric { euclidean, cosine };
Metric metric_from_name(const std::string& name);  // throws std::invalid_argument

// Directed k-NN lists (no self): out[i] holds the k nearest points of i, nearest first. Distances
// are computed in double precision; ties are broken by the smaller index. For cosine, distance =
// 1 - cos; a zero vector is at distance 1 from everything. `points` is row-major [n, dim] float32.
// Throws std::invalid_argument for k >= n or non-finite input (naming the point).
std::vector<std::vector<std::uint32_t>> knn_lists(const float* points, std::size_t n, std::size_t dim, std::size_t k,
                                                  Metric metric, std::size_t block_rows = 1024);

// The symmetrised (OR) graph: sorted neighbour lists with an edge if either point lists the other.
std::vector<std::vector<std::uint32_t>> symmetrize_or(const std::vector<std::vector<std::uint32_t>>& directed);

}  // namespace lmtopo::topology
