// The generate stage: continuations of prompts, greedy or sampled with a seed, with interventions at
// every position, rank-parallel; rank 0 writes one JSONL line a prompt, in file order, and beside it
// OUT.provenance.json (schema generation/1, lmtopo version, git SHA and dirty flag, the effective
// config, created_by with every rank's threads).
// Each step runs the whole sequence again (no KV cache yet): the ids are those of transformers'
// generate() on the same prompt, at a cost quadratic in the generated length.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "model/transformer.hpp"

namespace lmtopo::stages {

struct GenerateOptions {
  std::string model_dir;
  std::string architecture;
  std::string prompts;
  std::string output;  // JSONL
  std::string special_tokens = "post_processor";
  std::string device = "cpu";
  int threads = 0;
  int max_new_tokens = 32;
  double temperature = 0;  // 0: greedy (argmax, the first of equal logits); > 0: sampling
  std::uint64_t seed = 0;  // sampling: prompt i draws from a generator seeded with (seed, i)
  bool stop_at_eos = true;
  model::Interventions interventions;
  nlohmann::json config;  // recorded as the effective config
};

struct GenerateSummary {
  long long prompts = 0, generated_tokens = 0;
};

GenerateSummary run_generate(const GenerateOptions& options, MPI_Comm comm);

}  // namespace lmtopo::stages
