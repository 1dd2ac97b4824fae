// The zigzag stage: per-layer k-NN flag complexes of one hook's point clouds, the intersection
// zigzag, its barcode by a named reducer, and the layer summaries, into a layer-summaries/1 file.
#pragma once
#include <mpi.h>

#include <string>
#include <vector>

#include "topology/reducers.hpp"

namespace lmtopo::stages {

struct ZigzagOptions {
  std::string activations;  // activations/1 file
  std::string hook;
  std::string output;
  int k = 4;
  int max_dim = 2;
  std::vector<int> homology_dims{0, 1};
  std::string metric = "euclidean";
  // The exact k-NN's filtering GEMM (topology/knn.hpp): its precision (mixed: float32 GEMM + exact
  // float64 re-measurement; float64: the baseline) and where it runs (cpu: BLAS; cuda: cuBLAS).
  // Neither changes the neighbours.
  std::string knn_precision = "mixed";
  std::string knn_device = "cpu";
  std::string reducer = "distributed";
  // "true": reduce the anti-transpose (cohomology; the same pairs), "false": the boundary matrix,
  // "auto": topology::resolve_dualize's measured rule on the cone matrix's size.
  std::string dualize = "auto";
  // The distributed reducer's column order (topology::column_order_for): a name, a list per
  // dimension, or "auto"; the CLI checks it (cli::column_order_option).
  std::string column_order = "auto";
  // How the distributed reducer takes the steps in index order, and whether its upper-first steps
  // lend rows (cli::step_methods_option).
  topology::StepMethods step_methods;
  int threads = 2;
  double mem_limit_gib = 8.0;
  bool benchmark = false;
  // When set, subset 0's zigzag filtration is also written there in FastZigzag's format, to reduce
  // it with another tool or with `lmtopo barcode` (rank 0 writes it; with the distributed reducer it
  // takes each rank's operations in turn).
  std::string fzz_output;
  // Disjoint prompt subsets (paper 1's protocol, e.g. 16 x 500): `subsets` random disjoint sets of
  // `subset_size` prompts (0: n / subsets), drawn by a seeded permutation; each gets its own zigzag.
  // subsets = 1 and subset_size = 0: all prompts, in file order.
  int subsets = 1;
  long long subset_size = 0;
  unsigned long long subset_seed = 0;
  // Permuted-prompts null (aggregate's first null): `null_draws` more zigzags of subset 0's prompts in
  // which every layer's rows are permuted independently (seeded), so that a vertex is a different
  // prompt in each layer and the layer-to-layer correspondence of points is broken.
  int null_draws = 0;
  unsigned long long null_seed = 0;
};

struct ZigzagSummary {
  int num_layers = 0;
  long long num_points = 0;
  long long num_ops = 0;
  long long num_bars = 0;
  std::vector<long long> simplices_per_layer;
};

ZigzagSummary run_zigzag(const ZigzagOptions& options, MPI_Comm comm);

}  // namespace lmtopo::stages
