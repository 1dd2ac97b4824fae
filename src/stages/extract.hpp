// The extract stage: hidden states of one checkpoint for a set of prompts, rank-parallel, into one
// activations/1 file written collectively.
#pragma once
#include <mpi.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lmtopo::stages {

struct ExtractOptions {
  std::string model_dir;
  std::string architecture;  // overrides config.json's model_type when set
  std::string prompts;       // JSONL: text, optional id, lang, group
  std::vector<std::string> hooks{"post_attention_layernorm"};
  std::string pool = "last";      // last | mean
  std::string dtype = "float32";  // float32 | bfloat16 (of the stored activations)
  std::string device = "cpu";     // cpu | cuda (this rank's GPU) | cuda:N
  int batch = 16;
  int threads = 0;  // compute threads per rank (libtorch, OpenBLAS); 0: the CPUs of the rank's binding
  // Special tokens around each prompt: post_processor (what the tokenizer's post-processor adds, as
  // transformers does by default), none, or bos (only the model's BOS token, the older --add-bos).
  std::string special_tokens = "post_processor";
  // FFN activations for the neuron studies, beside the hooks: mlp_act mean-pooled over every prompt's
  // tokens (/ffn/mean), and every token of the chosen prompts (/ffn/tokens/*).
  bool ffn_mean = false;
  std::vector<std::string> ffn_token_prompts;  // prompt ids
  std::string output;
  nlohmann::json config;  // recorded as the effective config
};

struct ExtractSummary {
  long long prompts = 0;
  long long tokens = 0;
  int points = 0;
  std::vector<long long> prompts_per_rank;
};

ExtractSummary run_extract(const ExtractOptions& options, MPI_Comm comm);

}  // namespace lmtopo::stages
