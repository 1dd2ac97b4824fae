// The prune stage (paper 1's layer-pruning experiment) at one checkpoint: S̄'s candidate blocks at
// each threshold against the same number of blocks chosen by angular distance, by block influence and
// at random (stats/pruning.hpp), every choice evaluated with its blocks skipped (one model load).
#pragma once
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "stages/eval.hpp"

namespace lmtopo::stages {

struct PruneOptions {
  std::string zigzag;  // layer-summaries/1 of the hook at the checkpoint: /summaries/h<dim>/avg_similarity
  std::string sweep;   // sweep/1 of the hook at the checkpoint: /layer_layer/{angular_distance,block_influence}
  int dim = 1;
  std::vector<double> thresholds{0.9, 0.8};
  int random_draws = 3;
  std::uint64_t seed = 0;
  EvalOptions eval;        // model, prompts (the corpus), batch, threads, ...; interventions and output unused
  std::string output_dir;  // one eval/1 file per condition
  std::string table;       // CSV: method, threshold, n, blocks, condition, language, ..., delta_nll
};

// Returns every file written (the table last).
std::vector<std::string> run_prune(const PruneOptions& options, MPI_Comm comm);

}  // namespace lmtopo::stages
