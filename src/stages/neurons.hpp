// The neurons stage. Study `key_linguistic` (science.md §4): FFN units (mlp_act, mean-pooled over each
// sentence's tokens) of every block on the analysis share of a parallel corpus -> per block and
// language the units' shares of the mean pairwise cosine, their z-scores across languages and the key
// units (neurons/key_linguistic.hpp); then, on the held-out share, the per-language perplexity with
// each language's key units ablated (set to 0, or to the unit's mean over all analysis sentences)
// against the same number of random units per block (control_draws seeded draws) and against no
// ablation. Rank-parallel (prompts split by batches as extract splits them); writes neurons/1 HDF5
// (schemas/hdf5/neurons.json) and two CSV tables beside it.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace lmtopo::stages {

struct NeuronsOptions {
  std::string study = "key_linguistic";
  std::string model_dir, architecture, prompts;
  std::string output;  // .h5; the CSV tables are OUT without .h5 + .key_neurons.csv / .ablation.csv
  std::string special_tokens = "post_processor";
  std::string device = "cpu";
  int threads = 0;
  int batch = 16;
  double threshold = 2.0;   // key if z > threshold
  double held_out = 0.25;   // share of each language's prompts (its last ones in file order) for the ablation; 0: none
  std::string ablation = "zero";  // zero | mean
  int control_draws = 5;
  std::uint64_t seed = 0;
  nlohmann::json config;
};

struct NeuronsSummary {
  int layers = 0, languages = 0;
  long long analysis_prompts = 0, held_out_prompts = 0, key_units = 0;
  double activation_seconds = 0, ablation_seconds = 0;  // the two phases, wall time on rank 0
};

NeuronsSummary run_neurons(const NeuronsOptions& options, MPI_Comm comm);

}  // namespace lmtopo::stages
