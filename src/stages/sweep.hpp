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
  bool null = true;  // prompt-permutation null beside every pairwise metric
  unsigned long long seed = 0;
  std::string output;
  std::vector<std::string> petsc_options;
  bool benchmark = false;  // print where the time went (per phase, slowest rank)
};

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
