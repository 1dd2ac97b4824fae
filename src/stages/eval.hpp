// The eval stage: per-token negative log-likelihood and perplexity of a model on a JSONL of prompts,
// with interventions (FFN units set or shifted, a residual vector added, blocks skipped), rank-parallel
// into one eval/1 file written collectively (docs/hdf5-layout.md).
#pragma once
#include <mpi.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/transformer.hpp"

namespace lmtopo::stages {

struct EvalOptions {
  std::string model_dir;
  std::string architecture;
  std::string prompts;
  std::string output;
  std::string dtype = "float32";  // weights: float32 | bfloat16
  std::string device = "cpu";
  std::string special_tokens = "post_processor";
  int batch = 16;
  int threads = 0;
  model::Interventions interventions;
  nlohmann::json config;
};

struct EvalSummary {
  long long prompts = 0, scored_tokens = 0;
  double mean_nll = 0, perplexity = 0;
  double seconds = 0;  // the forward passes on the slowest rank (model load and writing excluded)
};

EvalSummary run_eval(const EvalOptions& options, MPI_Comm comm);

}  // namespace lmtopo::stages
