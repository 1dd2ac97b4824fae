// `lmtopo extract`: hidden states of a model folder for a JSONL of prompts (design.md contract 6).
#include <iostream>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "core/provenance.hpp"
#include "mpi/collective.hpp"
#ifdef LMTOPO_TORCH_HELPER
#include "stages/extract.hpp"
#else
#include "stages/extract.hpp"  // options and summary types only
#endif

namespace lmtopo::cli {
namespace {

int run_extract_cmd(const po::variables_map& vm, const std::vector<std::string>&) {
  if (vm.count("job")) return run_job_stage(vm, "extract");
  require_options(vm, {"model", "prompts", "output"});
  stages::ExtractOptions o;
  o.model_dir = vm["model"].as<std::string>();
  o.prompts = vm["prompts"].as<std::string>();
  o.output = vm["output"].as<std::string>();
  o.hooks = vm.count("hook") ? vm["hook"].as<std::vector<std::string>>() : std::vector<std::string>{"post_attention_layernorm"};
  o.pool = vm["pool"].as<std::string>();
  o.dtype = vm["dtype"].as<std::string>();
  o.batch = vm["batch"].as<int>();
  o.threads = vm["threads"].as<int>();
  o.device = vm["device"].as<std::string>();
  o.ffn_mean = vm.count("ffn-mean") > 0;
  if (vm.count("ffn-tokens")) o.ffn_token_prompts = vm["ffn-tokens"].as<std::vector<std::string>>();
  o.special_tokens = vm["special-tokens"].as<std::string>();
  if (vm.count("add-bos")) {
    if (!vm["special-tokens"].defaulted() && o.special_tokens != "bos")
      throw InputError("--add-bos: contradicts --special-tokens " + o.special_tokens);
    o.special_tokens = "bos";
  }
  o.architecture = vm["architecture"].as<std::string>();
  o.config = {{"model", o.model_dir}, {"prompts", o.prompts}, {"hooks", o.hooks},     {"pool", o.pool},
              {"dtype", o.dtype},     {"batch", o.batch}, {"threads", o.threads}, {"special_tokens", o.special_tokens}, {"architecture", o.architecture},
              {"device", o.device},   {"ffn_mean", o.ffn_mean}, {"ffn_token_prompts", o.ffn_token_prompts}};
#ifdef LMTOPO_TORCH_HELPER
  const auto s = stages::run_extract(o, MPI_COMM_WORLD);
#else
  stages::ExtractSummary s;  // not reached: main() hands `extract` to lmtopo-torch
  throw RuntimeFailure("extract runs in lmtopo-torch");
#endif
  if (mpi::rank() == 0) {
    std::cout << "extract: " << s.prompts << " prompts (" << s.tokens << " tokens), " << s.points
              << " points per hook, prompts per rank:";
    for (auto c : s.prompts_per_rank) std::cout << " " << c;
    std::cout << " -> " << o.output << "\n";
  }
  return 0;
}

}  // namespace

Command make_extract_command() {
  Command c;
  c.name = "extract";
  c.summary = "hidden states of a checkpoint for a set of prompts, rank-parallel, into parallel HDF5";
  c.usage = "[mpirun -n P] lmtopo extract JOB.yaml [--item K] [--force]\n   or: [mpirun -n P] lmtopo extract --model DIR --prompts FILE.jsonl --hook NAME [--hook NAME ...] "
            "[--pool last|mean] [--dtype float32|bfloat16] [--batch N] [--special-tokens post_processor|none|bos] -o OUT.h5";
  c.description =
      "Loads a Hugging Face checkpoint folder (config.json, model.safetensors or a sharded index, tokenizer.json; "
      "gpt_neox, llama, mistral, qwen2, olmo, gpt2, bloom), tokenizes the prompts (JSONL lines with `text` and optionally `id`, `lang`, `group`) "
      "with the special tokens the tokenizer's post-processor adds (transformers' default, e.g. Llama's BOS; "
      "--special-tokens none adds none, bos only the model's BOS; recorded as the attribute special_tokens), runs the forward passes with the requested hooks and writes an activations/1 file: "
      "/activations/<hook> [n_points, n_prompts, hidden] with attributes points (module path of each point), "
      "pooling, hook, dtype, and /prompts/{id,lang,group,n_tokens}. Hooks: post_attention_layernorm (L+1 points: "
      "each block's MLP-branch norm output, then the final norm), block_output (L+1: embeddings, then each block's "
      "residual output), block_input, attn_output, mlp_act (L each). Pooling: the last non-pad token or the mean "
      "over non-pad tokens. Prompts are taken in windows of 4 x --batch in file order (fewer batches per window, one at least, while "
      "that would make fewer than 16 windows), sorted by length within a window and cut into batches of --batch (little padding); the ranks take contiguous runs of windows balanced "
      "by token count, so every batch is computed the same way at any rank count: the file is bit-identical at any rank count when the threads per rank are equal (--threads), and "
      "within float32 rounding (1e-5 relative) otherwise, because BLAS kernels may order sums differently at "
      "another thread count. The threads of every rank are recorded in created_by.threads_per_rank.";
  c.add_options = [](po::options_description& d) {
    add_job_stage_options(d, "extract every checkpoint of the study");
    d.add_options()("model", po::value<std::string>(), "checkpoint folder (Hugging Face layout)")(
        "prompts", po::value<std::string>(), "JSONL prompts, or a corpus.h5 written by prepare")(
        "hook", po::value<std::vector<std::string>>(), "hook name, repeatable (default post_attention_layernorm)")(
        "pool", po::value<std::string>()->default_value("last"), "last or mean (over non-pad tokens)")(
        "dtype", po::value<std::string>()->default_value("float32"), "float32 or bfloat16 (weights and stored activations)")(
        "batch", po::value<int>()->default_value(16), "prompts per forward pass")(
        "add-bos", "the same as --special-tokens bos (older name)")(
        "ffn-mean", "also write /ffn/mean: the FFN units (mlp_act) mean-pooled over each prompt's tokens")(
        "ffn-tokens", po::value<std::vector<std::string>>(),
        "prompt id, repeatable: also write every token's FFN units of these prompts (/ffn/tokens/*)")(
        "output,o", po::value<std::string>(), "activations/1 file to write");
    add_runtime_options(d);
  };
  c.positionals = {{"job", 1}};
  c.run = run_extract_cmd;
  return c;
}

}  // namespace lmtopo::cli
