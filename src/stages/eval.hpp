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
  long long per_language = 0;  // > 0: only the first N prompts of each language (file order)
  model::Interventions interventions;
  nlohmann::json config;
};

struct LanguageScore {
  std::string language;
  long long scored_tokens = 0;
  double mean_nll = 0, perplexity = 0;
};

struct EvalSummary {
  long long prompts = 0, scored_tokens = 0;
  double mean_nll = 0, perplexity = 0;
  double seconds = 0;  // the forward passes on the slowest rank (model load and writing excluded)
  std::vector<LanguageScore> languages;  // in order of first appearance
};

EvalSummary run_eval(const EvalOptions& options, MPI_Comm comm);

// One of several evaluations of the same model and prompts: its interventions and eval/1 file.
struct EvalCondition {
  std::string name;
  model::Interventions interventions;
  std::string output;
};

// Every condition in turn with one model load and one tokenization (the job stage's conditions, e.g.
// a pruning experiment); `options.interventions` and `options.output` are not used. Each file
// records its condition's name (root attribute condition) and interventions.
std::vector<EvalSummary> run_eval_conditions(const EvalOptions& options, const std::vector<EvalCondition>& conditions, MPI_Comm comm);

// Their table: per condition and language (then "all") the scored tokens, mean NLL, perplexity and
// delta_nll, the mean NLL minus the first condition's. Row i starts with leads[i] (its own cells, each
// followed by a comma) under `lead_header` (the same columns' names).
std::string perplexity_table(const std::string& lead_header, const std::vector<std::string>& leads, const std::vector<EvalSummary>& scores);

}  // namespace lmtopo::stages
