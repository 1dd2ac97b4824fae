// `lmtopo eval`: next-token negative log-likelihood and perplexity of a model, with interventions.
#include <iomanip>
#include <iostream>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "model/interventions.hpp"
#include "mpi/collective.hpp"
#include "stages/eval.hpp"

namespace lmtopo::cli {
namespace {

int run_eval_cmd(const po::variables_map& vm, const std::vector<std::string>&) {
  if (vm.count("job")) return run_job_stage(vm, "eval");
  require_options(vm, {"model", "prompts", "output"});
  stages::EvalOptions o;
  o.model_dir = vm["model"].as<std::string>();
  o.prompts = vm["prompts"].as<std::string>();
  o.output = vm["output"].as<std::string>();
  o.dtype = vm["dtype"].as<std::string>();
  o.batch = vm["batch"].as<int>();
  o.threads = vm["threads"].as<int>();
  o.device = vm["device"].as<std::string>();
  o.special_tokens = vm["special-tokens"].as<std::string>();
  o.architecture = vm["architecture"].as<std::string>();
  o.interventions = interventions_from_options(vm);
  o.config = {{"model", o.model_dir}, {"prompts", o.prompts}, {"dtype", o.dtype}, {"batch", o.batch}, {"threads", o.threads},
              {"device", o.device}, {"special_tokens", o.special_tokens}, {"architecture", o.architecture},
              {"interventions", model::interventions_to_json(o.interventions)}};
#ifdef LMTOPO_TORCH_HELPER
  const auto s = stages::run_eval(o, MPI_COMM_WORLD);
#else
  stages::EvalSummary s;  // not reached: main() hands `eval` to lmtopo-torch
  throw RuntimeFailure("eval runs in lmtopo-torch");
#endif
  if (mpi::rank() == 0)
    std::cout << "eval: " << s.prompts << " prompts, " << s.scored_tokens << " scored tokens, mean NLL " << std::setprecision(6)
              << s.mean_nll << " nats, perplexity " << s.perplexity << ", " << std::setprecision(3) << s.seconds << " s -> " << o.output << "\n";
  return 0;
}

}  // namespace

Command make_eval_command() {
  Command c;
  c.name = "eval";
  c.summary = "next-token NLL and perplexity of a checkpoint on prompts, with interventions, rank-parallel";
  c.usage = "[mpirun -n P] lmtopo eval JOB.yaml [--item K] [--force]\n   or: [mpirun -n P] lmtopo eval --model DIR --prompts FILE.jsonl [--skip-blocks 20-27] [--ffn-set L:U=V ...] "
            "[--ffn-add L:U=V ...] [--interventions FILE.json] -o OUT.h5";
  c.description =
      "Scores every token of every prompt after the first: its negative log-likelihood (natural log, from the "
      "float32 log-softmax of the logits) given the tokens before it, as transformers' causal-LM loss does. Prompts "
      "are tokenized and batched as extract does (special tokens from the tokenizer's post-processor by default) "
      "and the ranks take runs of batches balanced by tokens. Interventions apply at every position: "
      "--skip-blocks drops blocks (layer-pruning evaluation), --ffn-set/--ffn-add set or shift an FFN unit "
      "(mlp_act) of a block, and --interventions FILE.json gives any of ffn_set, ffn_add, residual_add (a vector "
      "added to the residual stream before a block) and skip_blocks (the command-line ones are added to it). "
      "Writes an eval/1 file: per prompt /nll/{sum,scored,mean,perplexity}, per language /languages/* "
      "(token-weighted), /overall/*, and every scored token /tokens/{nll,prompt,position,token_id}; the "
      "interventions as the root attribute interventions (JSON). The job-spec form runs the spec's eval section: one item "
      "per checkpoint, every condition with one model load (docs/models.md).";
  c.add_options = [](po::options_description& d) {
    add_job_stage_options(d, "every checkpoint of the study under each eval condition");
    d.add_options()("model", po::value<std::string>(), "checkpoint folder (Hugging Face layout)")(
        "prompts", po::value<std::string>(), "JSONL prompts (text, optional id, lang, group)");
    add_intervention_options(d);
    d.add_options()(
        "dtype", po::value<std::string>()->default_value("float32"), "weights: float32 or bfloat16")(
        "batch", po::value<int>()->default_value(16), "prompts per forward pass")(
        "output,o", po::value<std::string>(), "eval/1 file to write");
    add_runtime_options(d);
  };
  c.positionals = {{"job", 1}};
  c.run = run_eval_cmd;
  return c;
}

}  // namespace lmtopo::cli
