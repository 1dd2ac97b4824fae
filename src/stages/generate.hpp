// The generate stage: continuations of prompts, greedy or sampled with a seed, with interventions at
// every position, rank-parallel; rank 0 writes one JSONL line a prompt, in file order, and beside it
// OUT.provenance.json (schema generation/1, lmtopo version, git SHA and dirty flag, the effective
// config, created_by with every rank's threads).
// Prompts are decoded in batches (left-padded, each row's positions counted from its first token, as
// transformers' generate() does); each step runs only the newest tokens against a key/value cache of
// the ones before (kv_cache false: the whole sequences again, for checking). The greedy ids are those
// of transformers' generate() on each prompt alone, up to float rounding between batch shapes.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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
  int batch = 8;  // prompts decoded together (left-padded, batches as extract forms them)
  double temperature = 0;  // 0: greedy (argmax, the first of equal logits); > 0: sampling
  std::uint64_t seed = 0;  // sampling: prompt i draws from a generator seeded with (seed, i)
  bool stop_at_eos = true;
  bool kv_cache = true;
  model::Interventions interventions;
  // Per-token hook capture: for every generated token, each hook's points at the position it was
  // generated from, into states_output (generation-states/1, docs/hdf5-layout.md).
  std::vector<std::string> hooks;
  std::string states_output;
  nlohmann::json config;  // recorded as the effective config
};

struct GenerateSummary {
  long long prompts = 0, generated_tokens = 0;
  double seconds = 0;  // the generation itself on the slowest rank (model load and writing excluded)
};

GenerateSummary run_generate(const GenerateOptions& options, MPI_Comm comm);

}  // namespace lmtopo::stages
