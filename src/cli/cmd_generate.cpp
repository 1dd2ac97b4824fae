// `lmtopo generate`: continuations of prompts, greedy or seeded sampling, with interventions.
#include <iomanip>
#include <iostream>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "model/interventions.hpp"
#include "mpi/collective.hpp"
#include "stages/generate.hpp"

namespace lmtopo::cli {
namespace {

int run_generate_cmd(const po::variables_map& vm, const std::vector<std::string>&) {
  require_options(vm, {"model", "prompts", "output"});
  stages::GenerateOptions o;
  o.model_dir = vm["model"].as<std::string>();
  o.prompts = vm["prompts"].as<std::string>();
  o.output = vm["output"].as<std::string>();
  o.max_new_tokens = vm["max-new-tokens"].as<int>();
  o.batch = vm["batch"].as<int>();
  o.temperature = vm["temperature"].as<double>();
  o.seed = vm["seed"].as<std::uint64_t>();
  o.stop_at_eos = !vm.count("no-eos-stop");
  o.kv_cache = !vm.count("no-kv-cache");
  o.threads = vm["threads"].as<int>();
  o.device = vm["device"].as<std::string>();
  o.special_tokens = vm["special-tokens"].as<std::string>();
  o.architecture = vm["architecture"].as<std::string>();
  o.interventions = interventions_from_options(vm);
  if (vm.count("hook")) o.hooks = vm["hook"].as<std::vector<std::string>>();
  if (vm.count("states-output")) o.states_output = vm["states-output"].as<std::string>();
  o.config = {{"model", o.model_dir}, {"prompts", o.prompts}, {"max_new_tokens", o.max_new_tokens}, {"batch", o.batch}, {"temperature", o.temperature},
              {"seed", o.seed}, {"stop_at_eos", o.stop_at_eos}, {"kv_cache", o.kv_cache}, {"threads", o.threads}, {"device", o.device},
              {"special_tokens", o.special_tokens}, {"architecture", o.architecture}, {"dtype", "float32"},
              {"hooks", o.hooks}};
#ifdef LMTOPO_TORCH_HELPER
  const auto s = stages::run_generate(o, MPI_COMM_WORLD);
#else
  stages::GenerateSummary s;  // not reached: main() hands `generate` to lmtopo-torch
  throw RuntimeFailure("generate runs in lmtopo-torch");
#endif
  if (mpi::rank() == 0)
    std::cout << "generate: " << s.prompts << " prompts, " << s.generated_tokens << " tokens in " << std::fixed << std::setprecision(2)
              << s.seconds << " s (" << std::setprecision(1) << (s.seconds > 0 ? static_cast<double>(s.generated_tokens) / s.seconds : 0.0)
              << " tokens/s) -> " << o.output << "\n";
  return 0;
}

}  // namespace

Command make_generate_command() {
  Command c;
  c.name = "generate";
  c.summary = "continuations of prompts (greedy or seeded sampling) with interventions, rank-parallel";
  c.usage = "[mpirun -n P] lmtopo generate --model DIR --prompts FILE.jsonl [--max-new-tokens 32] [--temperature T --seed S] "
            "[--skip-blocks ...] [--ffn-set L:U=V] [--interventions FILE.json] [--hook H --states-output S.h5] -o OUT.jsonl";
  c.description =
      "Continues every prompt (tokenized as extract does) by up to --max-new-tokens tokens: the argmax of the "
      "last position's logits (the first of equal ones), or with --temperature T > 0 a draw from softmax(logits/T) "
      "by a generator seeded with (--seed, prompt index), so the draws do not depend on the rank count. Stops after "
      "the model's EOS token unless --no-eos-stop. The interventions of eval apply at every position of every step. "
      "Prompts are decoded --batch at a time (batches formed as extract forms them, left-padded, each row's positions "
      "counted from its first token as transformers' generate numbers them); each step runs only the newest tokens, "
      "attending to a key/value cache of the ones before; --no-kv-cache recomputes the whole sequences instead (a "
      "check; quadratic cost). The greedy ids are those of transformers' generate(do_sample=False) on each prompt "
      "alone (up to float rounding between batch shapes, which can flip a near tie). Rank 0 writes OUT.jsonl, one line a prompt in "
      "file order: id, lang, prompt_ids, generated_ids, text (decoded without special tokens), and OUT.jsonl.provenance.json "
      "(schema generation/1, lmtopo version, git SHA and dirty flag, the effective config, interventions, created_by). "
      "With --hook H (repeatable) and --states-output S.h5, every generated token's states at H are captured as it is "
      "generated: each point at the position the token was generated from (the prompt's last token for the first "
      "token, then each generated token in turn), into a generation-states/1 file: /states/H [points, tokens, width] "
      "and /tokens/{prompt,step,position,token_id}, written collectively. They are held in memory until written "
      "(points x width x 4 bytes a token).";
  c.add_options = [](po::options_description& d) {
    d.add_options()("model", po::value<std::string>(), "checkpoint folder (Hugging Face layout)")(
        "prompts", po::value<std::string>(), "JSONL prompts (text, optional id, lang, group)")(
        "max-new-tokens", po::value<int>()->default_value(32), "tokens to generate at most per prompt")(
        "batch", po::value<int>()->default_value(8), "prompts decoded together (left-padded)")(
        "temperature", po::value<double>()->default_value(0.0), "0: greedy; > 0: sampling at this temperature")(
        "seed", po::value<std::uint64_t>()->default_value(0), "sampling seed")(
        "no-eos-stop", "keep generating after the EOS token")(
        "no-kv-cache", "recompute the whole sequence at every step instead of caching keys and values");
    add_intervention_options(d);
    d.add_options()("hook", po::value<std::vector<std::string>>(),
                    "capture this hook's states at every generated token (repeatable): post_attention_layernorm, "
                    "block_output, block_input, attn_output, mlp_act")(
        "states-output", po::value<std::string>(), "generation-states/1 HDF5 file for the --hook states")(
        "output,o", po::value<std::string>(), "JSONL file to write");
    add_runtime_options(d);
  };
  c.run = run_generate_cmd;
  return c;
}

}  // namespace lmtopo::cli
