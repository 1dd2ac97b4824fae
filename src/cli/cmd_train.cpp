// `lmtopo train`: a small GPT-NeoX-layout model trained on a corpus, with Hugging Face checkpoints.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "io/corpus.hpp"
#include "mpi/collective.hpp"
#ifdef LMTOPO_TORCH_HELPER
#include "train/trainer.hpp"
#endif

namespace lmtopo::cli {
namespace {


#ifdef LMTOPO_TORCH_HELPER
// --spatial-alpha turns TopoLM's spatial loss on; the other --spatial-* options need it.
train::SpatialTrainingOptions spatial_options(const po::variables_map& vm) {
  train::SpatialTrainingOptions s;
  s.enabled = vm.count("spatial-alpha") > 0;
  for (const char* k : {"spatial-sheets", "spatial-neighbourhoods", "spatial-window", "spatial-seed"})
    if (!s.enabled && !vm[k].defaulted()) throw InputError(std::string("--") + k + ": needs --spatial-alpha (spatial training)");
  if (!s.enabled) return s;
  s.alpha = vm["spatial-alpha"].as<double>();
  s.sheets = comma_separated({vm["spatial-sheets"].as<std::string>()});
  s.neighbourhoods = vm["spatial-neighbourhoods"].as<int>();
  s.window = vm["spatial-window"].as<int>();
  s.seed = vm["spatial-seed"].as<unsigned long long>();
  train::check_spatial_training(s, "--spatial-");
  return s;
}
#endif

int run_train_cmd(const po::variables_map& vm, const std::vector<std::string>&) {
  if (vm.count("job")) return run_job_stage(vm, "train");
  require_options(vm, {"corpus", "output"});
#ifdef LMTOPO_TORCH_HELPER
  train::TrainOptions o;
  const int every = vm["heldout-every"].as<int>();
  if (every < 2) throw InputError("--heldout-every: expected at least 2, got " + std::to_string(every));
  std::vector<std::string> texts;
  for (const auto& r : io::read_corpus_records(vm["corpus"].as<std::string>())) texts.push_back(r.text);
  train::split_heldout(o, texts, static_cast<std::size_t>(every));
  o.vocab_size = vm["vocab-size"].as<int>();
  o.layers = vm["layers"].as<int>();
  o.hidden = vm["hidden"].as<int>();
  o.heads = vm["heads"].as<int>();
  o.intermediate = vm["intermediate"].as<int>();
  o.seq_len = vm["seq-len"].as<int>();
  o.steps = vm["steps"].as<int>();
  o.batch = vm["batch"].as<int>();
  o.lr = vm["lr"].as<double>();
  o.warmup = vm["warmup"].as<int>();
  o.seed = vm["seed"].as<unsigned long long>();
  o.output_dir = vm["output"].as<std::string>();
  o.save_steps = train::checkpoint_schedule(o.steps, vm["save-every"].as<int>());
  o.spatial = spatial_options(vm);
  for (const char* k : {"vocab-size", "layers", "hidden", "heads", "intermediate", "seq-len", "steps", "batch"})
    if (vm[k].as<int>() < 1) throw InputError(std::string("--") + k + ": expected a positive value");
  o.config = {{"corpus", vm["corpus"].as<std::string>()}, {"vocab_size", o.vocab_size}, {"layers", o.layers},
              {"hidden", o.hidden}, {"heads", o.heads}, {"intermediate", o.intermediate}, {"seq_len", o.seq_len},
              {"steps", o.steps}, {"batch", o.batch}, {"lr", o.lr}, {"warmup", o.warmup}, {"seed", o.seed},
              {"heldout_every", every}, {"save_steps", o.save_steps}};
  if (o.spatial.enabled)
    o.config["spatial"] = {{"alpha", o.spatial.alpha}, {"sheets", o.spatial.sheets}, {"neighbourhoods", o.spatial.neighbourhoods},
                           {"window", o.spatial.window}, {"seed", o.spatial.seed}};
  const auto r = train::train_model(o, MPI_COMM_WORLD);
  if (mpi::rank() == 0) {
    std::cout << "train: " << o.steps << " steps, loss " << (r.loss.empty() ? 0 : r.loss.front()) << " -> "
              << (r.loss.empty() ? 0 : r.loss.back()) << "; held-out loss at the checkpoints:";
    for (std::size_t i = 0; i < r.saved_steps.size(); ++i) std::cout << " step" << r.saved_steps[i] << "=" << r.heldout_loss[i];
    std::vector<double> sec(r.seconds.begin() + std::min<std::ptrdiff_t>(2, static_cast<std::ptrdiff_t>(r.seconds.size())), r.seconds.end());
    std::sort(sec.begin(), sec.end());  // the median after the first two (warm-up) steps
    std::cout << "\ntrain: median " << (sec.empty() ? 0.0 : sec[sec.size() / 2]) << " s/step"
              << (o.spatial.enabled ? " (spatial loss, alpha " + std::to_string(o.spatial.alpha) + ")" : std::string()) << "\n";
    std::cout << "train: checkpoints in " << o.output_dir << ", log " << r.log_path << "\n";
  }
  return 0;
#else
  (void)vm;
  throw RuntimeFailure("train runs in lmtopo-torch");
#endif
}

}  // namespace

Command make_train_command() {
  Command c;
  c.name = "train";
  c.summary = "train a small GPT-NeoX-layout model (and its BPE tokenizer) and save HF checkpoints";
  c.positionals = {{"job", 1}};
  c.usage = "[mpirun -n P] lmtopo train JOB.yaml [--item K]\n   or: [mpirun -n P] lmtopo train --corpus corpus.h5|FILE.jsonl -o DIR [--layers 2 --hidden 64 ...]";
  c.description =
      "Trains a byte-level BPE tokenizer on the training texts, then a GPT-NeoX-layout model (parallel residual, "
      "partial rotary) with AdamW (betas 0.9/0.95), linear warm-up and cosine decay to 10%, gradient clipping at "
      "1.0, on windows of --seq-len tokens of the EOS-joined texts. Every --heldout-every-th text is held out. "
      "Data-parallel over the ranks (gradients all-reduced; the global batch is split, so the loss curve does not "
      "depend on the rank count beyond rounding). Saves DIR/step<N>/ (config.json, model.safetensors, "
      "tokenizer.json) at steps 0, powers of two, every --save-every steps and the last, and DIR/train_log.h5 "
      "(train-log/1). With --spatial-alpha (TopoLM, science.md section 5) the units of each --spatial-sheets hook of every "
      "block get frozen seeded positions on a side x side grid (side = ceil(sqrt(width))), saved in every checkpoint as "
      "unit_positions.safetensors, and the loss adds alpha x SL, SL = 1/2 (1 - corr(r_ij, 1/(1+d_ij))) over the unit pairs of "
      "--spatial-neighbourhoods random --spatial-window windows per sheet, r_ij the Pearson correlation over all tokens of the "
      "global batch (moments all-reduced, so the curve does not depend on the rank count); the log keeps cross_entropy and "
      "spatial_loss per step.";
  c.add_options = [](po::options_description& d) {
    add_job_stage_options(d, "train every from_train model");
    d.add_options()("corpus", po::value<std::string>(), "corpus.h5 from prepare, or JSONL with text")(
        "output,o", po::value<std::string>(), "output directory for step<N>/ checkpoints")(
        "vocab-size", po::value<int>()->default_value(512), "tokenizer vocabulary (2 special + 256 bytes + merges)")(
        "layers", po::value<int>()->default_value(2), "transformer blocks")(
        "hidden", po::value<int>()->default_value(64), "hidden size")(
        "heads", po::value<int>()->default_value(4), "attention heads")(
        "intermediate", po::value<int>()->default_value(256), "FFN width")(
        "seq-len", po::value<int>()->default_value(64), "tokens per training window")(
        "steps", po::value<int>()->default_value(200), "optimizer steps")(
        "batch", po::value<int>()->default_value(16), "global batch (windows per step), divisible by the ranks")(
        "lr", po::value<double>()->default_value(3e-3), "peak learning rate")(
        "warmup", po::value<int>()->default_value(20), "linear warm-up steps")(
        "seed", po::value<unsigned long long>()->default_value(0), "seed of initialisation and data order")(
        "heldout-every", po::value<int>()->default_value(10), "hold out every N-th text")(
        "save-every", po::value<int>()->default_value(0), "also save every N steps (0: only 0, powers of two, last)")(
        "spatial-alpha", po::value<double>(), "TopoLM: train with CE + alpha x spatial loss (0: the control, SL logged only)")(
        "spatial-sheets", po::value<std::string>()->default_value("attn_output,mlp_act"), "sheets with unit positions (attn_output, mlp_act)")(
        "spatial-neighbourhoods", po::value<int>()->default_value(5), "neighbourhoods sampled per sheet per step")(
        "spatial-window", po::value<int>()->default_value(9), "neighbourhood size: window x window cells")(
        "spatial-seed", po::value<unsigned long long>()->default_value(0), "seed of unit placement and neighbourhood sampling");
  };
  c.run = run_train_cmd;
  return c;
}

}  // namespace lmtopo::cli
