// Exact k-nearest-neighbour graphs of point clouds, blocked so that large clouds stream through a
// GEMM: 10,000 points of dimension 4,096 need a few hundred MiB at a time.
//
// Filter and refine. A block of rows of the Gram matrix of the prepared points (centred for
// Euclidean, unit rows for cosine) gives approximate distances d~ with a rigorous error bound E per
// pair (Higham's dot-product bound for any summation order, plus the rounding of the preparation).
// With U the k-th smallest of d~ + E in a row, every true neighbour has d~ - E <= U; those candidates
// are re-measured exactly and sorted. So the GEMM's precision (float32 by default, float64 as the
// baseline) and where it runs (BLAS, or cuBLAS in knn_cuda.hpp) change the speed, never the answer.
//
// The exact distance, the one neighbours are ranked by: Euclidean, the sum of squared coordinate
// differences in float64 (the differences of float32 inputs are exact in float64); cosine,
// 1 - sum(x^ y^) in float64 with x^ = x / |x|, and 1 between a zero vector and anything. Ties are
// broken by the smaller index. The sums run in one fixed order, so equal points give equal
// distances and the result is deterministic.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lmtopo::topology {

enum class Metric { euclidean, cosine };
Metric metric_from_name(const std::string& name);  // throws std::invalid_argument

// The precision of the filtering GEMM.
enum class KnnPrecision { mixed, float64 };
KnnPrecision knn_precision_from_name(const std::string& name);  // "mixed" | "float64"; throws std::invalid_argument
const char* knn_precision_name(KnnPrecision p);

// What a run did, for --benchmark reports: candidates re-measured per row is the price of the filter.
struct KnnStats {
  std::uint64_t rows = 0;
  std::uint64_t candidates = 0;   // exact distances computed (>= k per row)
  double gemm_seconds = 0;        // Gram blocks (including host/device copies)
  double select_seconds = 0;      // bounds, candidate selection, exact re-measurement, sorting
};

struct KnnOptions {
  Metric metric = Metric::euclidean;
  KnnPrecision precision = KnnPrecision::mixed;
  std::size_t block_rows = 1024;
  std::size_t threads = 1;    // threads of the candidate selection (the GEMM's threads are BLAS's)
  KnnStats* stats = nullptr;  // filled when given
};

// A source of Gram rows of the prepared points: load() once, then rows() per block. The BLAS sources
// are in knn.cpp; the cuBLAS one in knn_cuda.cu.
template <typename Real>
class GramRowSource {
 public:
  virtual ~GramRowSource() = default;
  // x: row-major [n, dim] prepared points, valid until the k-NN call returns.
  virtual void load(const Real* x, std::size_t n, std::size_t dim) = 0;
  // out: row-major [count, n] = x[r0 : r0 + count] * x^T.
  virtual void rows(std::size_t r0, std::size_t count, Real* out) = 0;
};

// Directed k-NN lists (no self): out[i] holds the k nearest points of i, nearest first. `points` is
// row-major [n, dim] float32. Throws std::invalid_argument for k >= n or non-finite input (naming
// the point). Uses BLAS (sgemm for mixed, dgemm for float64).
std::vector<std::vector<std::uint32_t>> knn_lists(const float* points, std::size_t n, std::size_t dim, std::size_t k,
                                                  const KnnOptions& options = {});

// The same with the Gram rows from `source` (its precision decides the bound); options.precision is
// ignored. Instantiated for float and double.
template <typename Real>
std::vector<std::vector<std::uint32_t>> knn_lists_with(GramRowSource<Real>& source, const float* points, std::size_t n,
                                                       std::size_t dim, std::size_t k, const KnnOptions& options);

// The symmetrised (OR) graph: sorted neighbour lists with an edge if either point lists the other.
std::vector<std::vector<std::uint32_t>> symmetrize_or(const std::vector<std::vector<std::uint32_t>>& directed);

}  // namespace lmtopo::topology
