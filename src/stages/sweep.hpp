// The sweep stage: similarity of representations across layers, languages and checkpoints (CKA,
// mutual k-NN, paired cosine / angular distance / block influence, retrieval, LRDS/SADS, TwoNN) for
// one hook, with prompt-permutation nulls, distributed over the ranks with PETSc; a sweep/1 HDF5
// file plus a tidy CSV beside it.
#pragma once
#include <mpi.h>

#include <string>
#include <vector>

namespace lmtopo::stages {

struct SweepOptions {
  std::vector<std::string> activations;  // activations/1 files: one for layer/language sweeps, >= 2 for checkpoints or models
  std::vector<std::string> labels;       // one per file (checkpoint labels); default: file stem
  std::string hook;
  std::vector<std::string> pairs{"layer_layer"};  // layer_layer | language_language | checkpoint_checkpoint | model_model
  int depth_bins = 11;                            // model_model: normalised depths 0, 1/(T-1), ..., 1
  std::vector<std::string> metrics{"cka_linear_unbiased"};  // see metric_names()
  int knn = 10;
  std::string gram_precision = "float64";  // of the CKA Gram products: float64 (PETSc) or float32 (BLAS sgemm)
  std::string cka_method = "auto";         // CKA from centred Grams or feature cross-products (geometry::choose_cka_method)
  bool null = true;  // prompt-permutation null beside every pairwise metric
  int bootstrap = 0;         // percentile-bootstrap draws over prompts for every metric (0: no intervals)
  double confidence = 0.95;  // the intervals' level
  std::vector<std::string> bootstrap_metrics;  // the metrics that get intervals (empty: every metric)
  unsigned long long seed = 0;
  std::string output;
  std::vector<std::string> petsc_options;
  bool benchmark = false;  // print where the time went (per phase, slowest rank)
  // checkpoint_checkpoint in blocks, one array task each (SweepBlock): with block_size B > 0 the
  // checkpoints form groups of B in file order and this run owns the pairs between group
  // block_row and group block_col (both orientations; block_row <= block_col). Only those groups'
  // files are read; the arrays keep the full [points, C, C] shape, NaN outside the block.
  int block_size = 0;
  int block_row = 0, block_col = 0;
};

// The groups of a blocked checkpoint x checkpoint sweep over `checkpoints` files with groups of
// `block_size`, and whether this block owns the pair (a, b) of file indices.
struct SweepBlock {
  int block_size = 0;  // 0: one block, every pair
  int row = 0, col = 0;
  static int groups(std::size_t checkpoints, int block_size);
  int group_of(std::size_t checkpoint) const;  // 0 without blocks
  bool reads(std::size_t checkpoint) const;    // its group is row or col (every file without blocks)
  bool owns(std::size_t a, std::size_t b) const;
};

// Assembles the blocks of one blocked checkpoint x checkpoint sweep (sweep/1 files written with
// block_size > 0 covering every block I <= J once) into one sweep/1 file and its CSV, as an
// unblocked run would write them. Rank 0 reads; the output is written collectively.
void merge_sweep_blocks(const std::vector<std::string>& blocks, const std::string& output, MPI_Comm comm);

const std::vector<std::string>& sweep_metric_names();
const std::vector<std::string>& sweep_pair_names();

struct SweepSummary {
  std::vector<std::string> written;  // "pairs/metric" datasets
  std::vector<std::string> skipped;  // "pairs/metric: why"
  long long prompts = 0;
  int points = 0;
};

SweepSummary run_sweep(const SweepOptions& options, MPI_Comm comm);

}  // namespace lmtopo::stages
