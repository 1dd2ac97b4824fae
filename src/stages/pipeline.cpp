#include "stages/pipeline.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <iostream>

#include "core/error.hpp"
#include "io/h5store.hpp"
#include "io/work_manifest.hpp"
#include "mpi/collective.hpp"
#include "core/hashing.hpp"
#include "model/interventions.hpp"
#include "stages/aggregate.hpp"
#include "stages/eval.hpp"
#include "stages/prune.hpp"
#include "stages/extract.hpp"
#include "stages/prepare.hpp"
#include "stages/sweep.hpp"
#include "stages/neurons.hpp"
#include "stages/prompt_batches.hpp"
#include "stages/zigzag.hpp"
#include "train/trainer.hpp"

namespace fs = std::filesystem;

namespace lmtopo::stages {
namespace {

bool sweep_has(const core::JobSpec& spec, const std::string& pairs) {
  if (!spec.has_stage("sweep")) return false;
  for (const auto& p : spec.config["sweep"]["pairs"])
    if (p == pairs) return true;
  return false;
}
bool sweeps_within_checkpoint(const core::JobSpec& spec) {
  return sweep_has(spec, "layer_layer") || sweep_has(spec, "language_language");
}
bool sweeps_across_checkpoints(const core::JobSpec& spec) { return sweep_has(spec, "checkpoint_checkpoint"); }

struct Item {
  std::string id;
  std::string model;
  core::CheckpointRef checkpoint;
  std::string hook;
  int block_row = -1, block_col = -1;  // checkpoint_checkpoint in blocks (sweep.checkpoint_block > 0)
};

int checkpoint_block(const core::JobSpec& spec) {
  return spec.has_stage("sweep") ? spec.config["sweep"]["checkpoint_block"].get<int>() : 0;
}

std::vector<Item> items_of(const core::JobSpec& spec, const std::string& stage) {
  std::vector<Item> out;
  if (stage == "prepare") return {{"corpus", "", {}, ""}};
  if (stage == "train") {
    for (const auto& m : spec.models)
      if (m.from_train) out.push_back({m.name, m.name, {}, ""});
    return out;
  }
  if (stage == "prune") {  // one item per model, at its last checkpoint
    for (const auto& m : spec.models)
      out.push_back({m.name, m.name, core::trained_checkpoints(spec, m).back(), spec.config["prune"]["hook"]});
    return out;
  }
  if (stage == "aggregate") {  // one item per hook, over every model and checkpoint
    for (const auto& h : spec.config["extract"]["hooks"]) out.push_back({h.get<std::string>(), "", {}, h.get<std::string>()});
    return out;
  }
  for (const auto& m : spec.models)
    for (const auto& c : core::trained_checkpoints(spec, m)) {
      if (stage == "extract" || stage == "neurons" || stage == "eval") out.push_back({m.name + "/" + c.label, m.name, c, ""});
      if (stage == "zigzag")
        for (const auto& h : spec.config["extract"]["hooks"])
          out.push_back({m.name + "/" + c.label + "/" + h.get<std::string>(), m.name, c, h.get<std::string>()});
      if (stage == "sweep" && sweeps_within_checkpoint(spec))
        for (const auto& h : spec.config["extract"]["hooks"])
          out.push_back({m.name + "/" + c.label + "/" + h.get<std::string>(), m.name, c, h.get<std::string>()});
    }
  // checkpoint_checkpoint: one item per model and hook over all the model's checkpoints, or one per
  // block of checkpoint groups I <= J when sweep.checkpoint_block > 0.
  if (stage == "sweep" && sweeps_across_checkpoints(spec))
    for (const auto& m : spec.models)
      for (const auto& h : spec.config["extract"]["hooks"]) {
        const std::string base = m.name + "/checkpoints/" + h.get<std::string>();
        const int b = checkpoint_block(spec);
        if (b == 0) {
          out.push_back({base, m.name, {}, h.get<std::string>()});
          continue;
        }
        const int groups = SweepBlock::groups(core::trained_checkpoints(spec, m).size(), b);
        for (int i = 0; i < groups; ++i)
          for (int j = i; j < groups; ++j)
            out.push_back({base + "/block-" + std::to_string(i) + "-" + std::to_string(j), m.name, {}, h.get<std::string>(), i, j});
      }
  // model_model: one item per hook over every model's last checkpoint.
  if (stage == "sweep" && sweep_has(spec, "model_model"))
    for (const auto& h : spec.config["extract"]["hooks"])
      out.push_back({"models/" + h.get<std::string>(), "", {}, h.get<std::string>()});
  return out;
}

std::string activations_path(const core::JobSpec& spec, const Item& it) {
  return (fs::path(spec.output) / "activations" / it.model / (it.checkpoint.label + ".h5")).string();
}

// Whether the neurons stage runs key_linguistic (aggregate then takes its outputs too).
bool has_key_linguistic(const core::JobSpec& spec) {
  if (!spec.has_stage("neurons")) return false;
  const auto& studies = spec.config["neurons"]["studies"];
  return std::find(studies.begin(), studies.end(), "key_linguistic") != studies.end();
}

// The zigzag and the per-checkpoint sweep item a prune item reads (the same id in both stages).
Item prune_input(const Item& it) {
  return {it.model + "/" + it.checkpoint.label + "/" + it.hook, it.model, it.checkpoint, it.hook};
}

// What an item's result depends on; a change makes the item stale.
nlohmann::json item_config(const core::JobSpec& spec, const std::string& stage, const Item& it) {
  // The sections as written (not the defaults-applied config): see core::work_item_section.
  const auto section = [&](const char* name) { return core::work_item_section(spec, name); };
  nlohmann::json c = {{"stage", stage}, {"item", it.id}, {"data", section("data")}};
  if (stage == "train") {
    c["train"] = section("train");
    for (const auto& m : spec.written["models"])  // the model's own overrides, as written
      if (m["name"] == it.model && m.contains("train")) c["model_train"] = m["train"];
  }
  if (stage == "extract" || stage == "zigzag") {
    c["extract"] = section("extract");
    c["checkpoint"] = it.checkpoint.dir;
  }
  if (stage == "zigzag") {
    c["zigzag"] = section("zigzag");
    // How the barcode is computed, not what it is: every reducer, primal or dualized, gives the same
    // pairs and every k-NN precision/device the same neighbours (tests check both), so changing
    // these (e.g. moving a study to GPU nodes) does not make finished items stale.
    for (const char* key : {"reducer", "dualize", "threads", "knn_precision", "knn_device"}) c["zigzag"].erase(key);
  }
  if (stage == "neurons") {
    c["neurons"] = section("neurons");
    c["checkpoint"] = it.checkpoint.dir;
  }
  if (stage == "eval") {  // and each interventions file by content
    c["eval"] = section("eval");
    c["checkpoint"] = it.checkpoint.dir;
    for (const auto& cond : spec.config["eval"]["conditions"])
      if (cond.contains("interventions")) c["interventions_files"][cond["name"].get<std::string>()] = core::sha256_file(cond["interventions"]);
  }
  if (stage == "prune") {  // and the zigzag and sweep items it reads, by their own configuration
    c["prune"] = section("prune");
    c["checkpoint"] = it.checkpoint.dir;
    const Item in = prune_input(it);
    for (const char* input : {"zigzag", "sweep"}) c[std::string(input) + "_item"] = core::config_hash(item_config(spec, input, in));
  }
  if (stage == "aggregate") {
    // Its inputs: every zigzag item of the hook by its own configuration (a changed or added
    // checkpoint makes the aggregate stale), and the imported barcodes by content.
    c["aggregate"] = section("aggregate");
    for (const auto& z : items_of(spec, "zigzag"))
      if (z.hook == it.hook) c["zigzag_items"][z.id] = core::config_hash(item_config(spec, "zigzag", z));
    if (has_key_linguistic(spec))
      for (const auto& n : items_of(spec, "neurons")) c["neurons_items"][n.id] = core::config_hash(item_config(spec, "neurons", n));
    if (spec.has_stage("sweep"))
      for (const auto& w : items_of(spec, "sweep"))
        if (w.hook == it.hook && !w.model.empty()) c["sweep_items"][w.id] = core::config_hash(item_config(spec, "sweep", w));
    for (const auto& b : spec.config["aggregate"]["barcodes"]) c["barcodes"][b["model"].get<std::string>()] = core::sha256_file(b["path"]);
  }
  if (stage == "sweep") {
    c["extract"] = section("extract");
    c["sweep"] = section("sweep");
    if (it.model.empty()) {
      for (const auto& m : spec.models) c["checkpoints"].push_back(core::trained_checkpoints(spec, m).back().dir);
    } else if (it.checkpoint.dir.empty()) {
      // A block depends only on the checkpoints of its two groups: when a nightly run appends
      // checkpoints, blocks between unchanged groups stay complete (the merge places them).
      const SweepBlock block{it.block_row >= 0 ? checkpoint_block(spec) : 0, std::max(0, it.block_row),
                             std::max(0, it.block_col)};
      for (const auto& m : spec.models)
        if (m.name == it.model) {
          const auto checkpoints = core::trained_checkpoints(spec, m);
          for (std::size_t i = 0; i < checkpoints.size(); ++i)
            if (block.reads(i)) c["checkpoints"].push_back(checkpoints[i].dir);
        }
    } else {
      c["checkpoint"] = it.checkpoint.dir;
    }
  }
  return c;
}

// A neurons study's HDF5 file: key_linguistic's keeps the checkpoint's name, the others add theirs.
std::string neurons_output(const core::JobSpec& spec, const Item& it, const std::string& study) {
  const std::string base = (fs::path(spec.output) / "neurons" / it.model / it.checkpoint.label).string();
  return base + (study == "key_linguistic" ? "" : "." + study) + ".h5";
}

// eval: one eval/1 file per condition in a folder per checkpoint, and the checkpoint's perplexity table.
std::vector<std::string> eval_outputs(const core::JobSpec& spec, const Item& it) {
  const fs::path base = fs::path(spec.output) / "eval" / it.model / it.checkpoint.label;
  std::vector<std::string> out;
  for (const auto& c : spec.config["eval"]["conditions"]) out.push_back((base / (c["name"].get<std::string>() + ".h5")).string());
  out.push_back(base.string() + ".perplexity.csv");
  return out;
}

// Output files of an item (where run_item writes them).
std::vector<std::string> item_outputs(const core::JobSpec& spec, const std::string& stage, const Item& it) {
  if (stage == "extract") return {activations_path(spec, it)};
  if (stage == "eval") return eval_outputs(spec, it);
  if (stage == "prune") return {(fs::path(spec.output) / "prune" / (it.model + ".csv")).string()};  // and a file per condition
  if (stage == "aggregate") {
    const std::string base = (fs::path(spec.output) / "aggregate" / it.hook).string();
    std::vector<std::string> out{base + ".h5", base + ".curves.csv", base + ".phases.csv", base + ".universality.csv"};
    if (has_key_linguistic(spec)) out.push_back(base + ".neurons.csv");
    if (spec.has_stage("sweep") && sweeps_within_checkpoint(spec)) out.push_back(base + ".sweeps.csv");
    if (spec.has_stage("sweep") && sweeps_across_checkpoints(spec)) out.push_back(base + ".cka_final.csv");
    return out;
  }
  if (stage == "neurons") {
    std::vector<std::string> out;
    for (const auto& study : spec.config["neurons"]["studies"]) {
      const std::string h5 = neurons_output(spec, it, study), base = h5.substr(0, h5.size() - 3);
      out.push_back(h5);
      if (study == "key_linguistic") out.push_back(base + ".key_neurons.csv");
      if (study == "key_linguistic" && spec.config["neurons"]["held_out"].get<double>() > 0) out.push_back(base + ".ablation.csv");
      if (study == "repetition") out.insert(out.end(), {base + ".repetition_neurons.csv", base + ".repetition_rate.csv"});
      if (study == "sensitive_directions") out.insert(out.end(), {base + ".sensitivity.csv", base + ".crossing.csv"});
      if (study == "spatial") out.push_back(base + ".moran.csv");
    }
    return out;
  }
  if (stage == "sweep") {
    const fs::path base = it.model.empty() ? fs::path(spec.output) / "sweep" / "models"
                                           : fs::path(spec.output) / "sweep" / it.model / (it.checkpoint.dir.empty() ? "checkpoints" : it.checkpoint.label);
    const std::string stem = it.hook + (it.block_row < 0 ? "" : ".block-" + std::to_string(it.block_row) + "-" + std::to_string(it.block_col));
    return {(base / (stem + ".h5")).string(), (base / (stem + ".csv")).string()};
  }
  return {(fs::path(spec.output) / "zigzag" / it.model / it.checkpoint.label / (it.hook + ".h5")).string()};
}

// prepare's checkpoint manifest: "model/label" of each checkpoint -> "model/label" of the first
// byte-identical one (absent when unique or when prepare has not run).
std::map<std::string, std::string> duplicate_checkpoints(const core::JobSpec& spec) {
  std::map<std::string, std::string> out;
  const fs::path path = fs::path(spec.output) / "manifest" / "checkpoints.json";
  if (!fs::exists(path)) return out;
  std::ifstream in(path);
  const auto doc = nlohmann::json::parse(in, nullptr, false);
  if (doc.is_discarded() || !doc.contains("checkpoints")) throw InputError(path.string() + ": corrupt checkpoint manifest (rerun prepare --force)");
  for (const auto& c : doc["checkpoints"])
    if (c.contains("duplicate_of") && c["duplicate_of"].is_string())
      out[c["model"].get<std::string>() + "/" + c["checkpoint"].get<std::string>()] = c["duplicate_of"].get<std::string>();
  return out;
}

// A checkpoint byte-identical to an earlier one reuses that one's finished outputs: each file is
// hard-linked (copied where links are impossible) instead of recomputed. Returns the outputs, or
// nothing when the original item is not complete yet (then the item is computed as usual).
std::optional<std::vector<std::string>> link_duplicate(const core::JobSpec& spec, const std::string& stage, const Item& it,
                                                       const std::vector<Item>& items,
                                                       const std::map<std::string, std::string>& duplicates,
                                                       const io::WorkManifest& manifest, std::string& original_id) {
  if ((stage != "extract" && stage != "zigzag" && stage != "sweep" && stage != "neurons" && stage != "eval") || it.checkpoint.dir.empty())
    return std::nullopt;
  const auto dup = duplicates.find(it.model + "/" + it.checkpoint.label);
  if (dup == duplicates.end()) return std::nullopt;
  for (const auto& o : items) {
    if (o.model + "/" + o.checkpoint.label != dup->second || o.hook != it.hook) continue;
    if (!manifest.is_complete(stage, o.id, core::config_hash(item_config(spec, stage, o)))) return std::nullopt;
    const auto from = item_outputs(spec, stage, o), to = item_outputs(spec, stage, it);
    for (std::size_t i = 0; i < from.size(); ++i) {
      fs::create_directories(fs::path(to[i]).parent_path());
      const std::string tmp = to[i] + ".partial";
      fs::remove(tmp);
      std::error_code ec;
      fs::create_hard_link(from[i], tmp, ec);
      if (ec) fs::copy_file(from[i], tmp, fs::copy_options::overwrite_existing);
      fs::rename(tmp, to[i]);
    }
    original_id = o.id;
    return to;
  }
  return std::nullopt;
}

// Each study of the section in turn, into its own file (the first file of each study's outputs).
std::vector<std::string> run_neurons_item(const core::JobSpec& spec, const Item& it, const std::string& corpus, MPI_Comm comm) {
  const auto& n = spec.config["neurons"];
  const auto outputs = item_outputs(spec, "neurons", it);
  mpi::on_root(comm, [&] { fs::create_directories(fs::path(outputs[0]).parent_path()); });
  std::string architecture;
  for (const auto& m : spec.models)
    if (m.name == it.model) architecture = m.architecture;
  // One model load and tokenization for every study of the item.
  PromptsAndModel loaded;
  mpi::on_all(comm, [&] {
    loaded = load_prompts_and_model(corpus,
                                    {it.checkpoint.dir, architecture, n["device"].get<std::string>(),
                                     model::WeightDType::float32, n["threads"].get<int>()},
                                    n["special_tokens"].get<std::string>());
  });
  for (const auto& study : n["studies"]) {
    NeuronsOptions o;
    o.study = study.get<std::string>();
    o.model_dir = it.checkpoint.dir;
    o.prompts = corpus;
    o.output = neurons_output(spec, it, o.study);
    o.threshold = n["threshold"];
    o.held_out = n["held_out"];
    o.ablation = n["ablation"];
    o.control_draws = n["control_draws"];
    o.seed = n["seed"];
    o.batch = n["batch"];
    o.threads = n["threads"];
    o.device = n["device"];
    o.special_tokens = n["special_tokens"];
    const auto& r = n["repetition"];
    o.repetition = {r["texts"], r["prefix_tokens"], r["new_tokens"], r["ngram"], r["min_occurrences"], r["window"],
                    r["min_second"], r["span"], r["top_k"], r["activate_value"]};
    const auto& sd = n["sensitive_directions"];
    o.sensitive = {sd["blocks"].get<std::vector<int>>(), sd["lengths"].get<std::vector<double>>(), sd["families"].get<std::vector<std::string>>(),
                   sd["ridge"], sd["kl_threshold"], {}, sd["sae_tensor"]};
    if (sd["sae_decoders"].contains(it.model) && o.study == "sensitive_directions")
      o.sensitive.sae_decoders = sd["sae_decoders"][it.model].get<std::vector<std::string>>();
    if (o.study == "spatial") {
      const auto& sp = n["spatial"];
      o.spatial = {sp["contrast"].get<std::vector<std::string>>(), sp.value("sheets", std::vector<std::string>{"attn_output", "mlp_act"}),
                   sp.value("permutations", 999), sp.value("alpha", 0.05), sp.value("sheet_seed", std::uint64_t{0}), sp.value("max_distance", 8)};
    }
    o.config = spec.config;
    o.architecture = architecture;
    o.loaded = &loaded;
    run_neurons(o, comm);
  }
  return outputs;
}

// Every condition of the eval section on one checkpoint (one model load), then the perplexity table:
// per condition and language (and "all"), scored tokens, mean NLL, perplexity and the mean NLL's
// difference from the first condition's.
std::vector<std::string> run_eval_item(const core::JobSpec& spec, const Item& it, const std::string& corpus, MPI_Comm comm) {
  const auto& e = spec.config["eval"];
  const auto outputs = item_outputs(spec, "eval", it);
  EvalOptions o;
  o.model_dir = it.checkpoint.dir;
  o.prompts = corpus;
  o.batch = e["batch"];
  o.threads = e["threads"];
  o.dtype = e["dtype"];
  o.device = e["device"];
  o.special_tokens = e["special_tokens"];
  o.config = spec.config;
  for (const auto& m : spec.models)
    if (m.name == it.model) o.architecture = m.architecture;
  std::vector<EvalCondition> conditions;
  for (std::size_t i = 0; i < e["conditions"].size(); ++i) {
    const auto& c = e["conditions"][i];
    const std::string field = spec.file + ": eval.conditions[" + std::to_string(i) + "]";
    EvalCondition cond{c["name"], {}, outputs[i]};
    if (c.contains("interventions")) cond.interventions = model::read_interventions_file(c["interventions"]);
    if (c.contains("skip_blocks")) model::add_skip_blocks(cond.interventions, c["skip_blocks"], field + ".skip_blocks");
    for (const char* kind : {"ffn_set", "ffn_add"})
      for (const auto& edit : c.value(kind, nlohmann::json::array()))
        model::add_ffn_edit(cond.interventions, edit, std::string(kind) == "ffn_set", field + "." + kind);
    conditions.push_back(std::move(cond));
  }
  mpi::on_root(comm, [&] { fs::create_directories(fs::path(outputs[0]).parent_path()); });
  const auto scores = run_eval_conditions(o, conditions, comm);
  mpi::on_root(comm, [&] {
    std::vector<std::string> leads;
    for (const auto& c : conditions) leads.push_back(c.name + ",");
    io::write_file_atomically(outputs.back(), perplexity_table("condition,", leads, scores));
  });
  return outputs;
}

// The pruning experiment at a model's last checkpoint, from its complete and current zigzag and sweep
// items (a missing or stale one is refused by name).
std::vector<std::string> run_prune_item(const core::JobSpec& spec, const Item& it, const std::string& corpus, MPI_Comm comm) {
  const auto& p = spec.config["prune"];
  const Item in = prune_input(it);
  int ready = 1;
  std::string missing;
  mpi::on_root(comm, [&] {
    io::WorkManifest manifest(spec.output);
    for (const char* stage : {"zigzag", "sweep"})
      if (ready && !manifest.is_complete(stage, in.id, core::config_hash(item_config(spec, stage, in)))) {
        ready = 0;
        missing = stage;
      }
  });
  mpi::check(MPI_Bcast(&ready, 1, MPI_INT, 0, comm), "MPI_Bcast");
  if (!ready)
    throw InputError(spec.file + ": prune item " + it.id + " needs " + (missing.empty() ? "zigzag and sweep" : missing) + " item " + in.id +
                     ", which is not complete or is stale (run that stage first)");
  PruneOptions o;
  o.zigzag = item_outputs(spec, "zigzag", in)[0];
  o.sweep = item_outputs(spec, "sweep", in)[0];
  o.dim = p["dim"];
  o.thresholds = p["thresholds"].get<std::vector<double>>();
  o.random_draws = p["random_draws"];
  o.seed = p["seed"];
  o.eval.model_dir = it.checkpoint.dir;
  o.eval.prompts = corpus;
  o.eval.batch = p["batch"];
  o.eval.per_language = p["prompts_per_language"];
  o.eval.threads = p["threads"];
  o.eval.device = p["device"];
  o.eval.special_tokens = p["special_tokens"];
  o.eval.config = spec.config;
  for (const auto& m : spec.models)
    if (m.name == it.model) o.eval.architecture = m.architecture;
  o.table = item_outputs(spec, "prune", it)[0];
  o.output_dir = (fs::path(spec.output) / "prune" / it.model).string();
  return run_prune(o, comm);
}

// A checkpoint's training step for aggregate: known from a template, else read from a "stepN" label,
// else its place in the model's checkpoint list (the list is in training order).
long long training_step(const core::CheckpointRef& c, std::size_t index) {
  if (c.step >= 0) return c.step;
  std::size_t used = 0;
  if (c.label.rfind("step", 0) == 0 && c.label.size() > 4) {
    try {
      const long long s = std::stoll(c.label.substr(4), &used);
      if (used == c.label.size() - 4 && s >= 0) return s;
    } catch (const std::logic_error&) {
    }
  }
  return static_cast<long long>(index);
}

// The study's sweeps of the aggregate item's hook for model `m` (complete and current, else refused by
// name): each checkpoint's per-point metrics and the checkpoint x checkpoint CKA (merged when blocked).
void add_aggregate_sweeps(const core::JobSpec& spec, const Item& it, const core::ModelSpec& m, const io::WorkManifest& manifest,
                          AggregateOptions& o) {
  if (!spec.has_stage("sweep")) return;
  const auto require = [&](const Item& w) {
    if (!manifest.is_complete("sweep", w.id, core::config_hash(item_config(spec, "sweep", w))))
      throw InputError(spec.file + ": aggregate item " + it.id + " needs sweep item " + w.id + ", which is not complete or is stale (run the sweep stage first)");
  };
  const auto checkpoints = core::trained_checkpoints(spec, m);
  if (sweeps_within_checkpoint(spec))
    for (std::size_t i = 0; i < checkpoints.size(); ++i) {
      const Item w{m.name + "/" + checkpoints[i].label + "/" + it.hook, m.name, checkpoints[i], it.hook};
      require(w);
      o.sweeps.push_back({m.name, training_step(checkpoints[i], i), item_outputs(spec, "sweep", w)[0], 0});
    }
  if (!sweeps_across_checkpoints(spec)) return;
  for (const auto& w : items_of(spec, "sweep"))
    if (w.model == m.name && w.hook == it.hook && w.checkpoint.dir.empty()) require(w);  // the whole item, or every block
  const Item whole{m.name + "/checkpoints/" + it.hook, m.name, {}, it.hook};
  const std::string merged = item_outputs(spec, "sweep", whole)[0];
  if (!fs::exists(merged)) throw InputError(spec.file + ": aggregate item " + it.id + " needs " + merged + " (the merged checkpoint sweep; rerun the sweep stage)");
  o.checkpoint_sweeps.push_back({m.name, -1, merged, 0});
}

// One hook's aggregate: every model's checkpoints (their zigzag outputs, complete and current; a
// missing or stale one is refused by name) and the imported barcodes.
std::vector<std::string> run_aggregate_item(const core::JobSpec& spec, const Item& it, MPI_Comm comm) {
  const auto& a = spec.config["aggregate"];
  AggregateOptions o;
  io::WorkManifest manifest(spec.output);
  for (const auto& m : spec.models) {
    const auto checkpoints = core::trained_checkpoints(spec, m);
    for (std::size_t i = 0; i < checkpoints.size(); ++i) {
      const Item z{m.name + "/" + checkpoints[i].label + "/" + it.hook, m.name, checkpoints[i], it.hook};
      if (!manifest.is_complete("zigzag", z.id, core::config_hash(item_config(spec, "zigzag", z))))
        throw InputError(spec.file + ": aggregate item " + it.id + " needs zigzag item " + z.id +
                         ", which is not complete or is stale (run the zigzag stage first)");
      o.series.push_back({m.name, training_step(checkpoints[i], i), item_outputs(spec, "zigzag", z)[0], 0});
      if (!has_key_linguistic(spec)) continue;
      const Item n{m.name + "/" + checkpoints[i].label, m.name, checkpoints[i], ""};
      if (!manifest.is_complete("neurons", n.id, core::config_hash(item_config(spec, "neurons", n))))
        throw InputError(spec.file + ": aggregate item " + it.id + " needs neurons item " + n.id +
                         ", which is not complete or is stale (run the neurons stage first)");
      o.neurons.push_back({m.name, training_step(checkpoints[i], i), neurons_output(spec, n, "key_linguistic"), 0});
    }
    add_aggregate_sweeps(spec, it, m, manifest, o);
  }
  for (const auto& b : a["barcodes"])
    o.series.push_back({b["model"], b.value("step", -1LL), b["path"], b.value("layers", 0)});
  o.dim = a["dim"];
  o.curve_dims = a["curve_dims"].get<std::vector<int>>();
  o.grid = a["grid"];
  o.thresholds = a["pruning_thresholds"].get<std::vector<double>>();
  o.bootstrap = a["bootstrap"];
  o.permutations = a["permutations"];
  o.alpha = a["alpha"];
  o.tolerance = a["tolerance"];
  o.seed = a["seed"];
  o.output = item_outputs(spec, "aggregate", it)[0];
  o.config = spec.config;
  mpi::on_root(comm, [&] { fs::create_directories(fs::path(o.output).parent_path()); });
  run_aggregate(o, comm);
  return item_outputs(spec, "aggregate", it);
}

const core::ModelSpec& model_of(const core::JobSpec& spec, const std::string& name) {
  for (const auto& m : spec.models)
    if (m.name == name) return m;
  throw std::logic_error("no model " + name + " in the spec");
}

train::SpatialTrainingOptions spatial_training(const nlohmann::json& train) {
  train::SpatialTrainingOptions s;
  if (!train.contains("spatial")) return s;
  const auto& j = train["spatial"];
  s.enabled = true;
  s.alpha = j["alpha"];
  s.sheets = j["sheets"].get<std::vector<std::string>>();
  s.neighbourhoods = j["neighbourhoods"];
  s.window = j["window"];
  s.seed = j["seed"];
  return s;
}

std::vector<std::string> run_item(const core::JobSpec& spec, const std::string& stage, const Item& it, MPI_Comm comm) {
  const auto& cfg = spec.config;
  const std::string corpus = (fs::path(spec.output) / "corpus.h5").string();
  if (stage == "extract" || stage == "train" || stage == "neurons" || stage == "eval" || stage == "prune")
    if (!fs::exists(corpus)) throw InputError(spec.file + ": " + stage + " needs the prepare stage's " + corpus);
  if (stage == "train") {
    const auto& t = model_of(spec, it.model).train;
    train::TrainOptions o;
    train::split_heldout(o, io::H5Input(corpus).read_strings("/corpus/text"), t["heldout_every"].get<std::size_t>());
    o.vocab_size = t["vocab_size"];
    o.layers = t["layers"];
    o.hidden = t["hidden"];
    o.heads = t["heads"];
    o.intermediate = t["intermediate"];
    o.seq_len = t["seq_len"];
    o.steps = t["steps"];
    o.batch = t["batch"];
    o.lr = t["lr"];
    o.warmup = t["warmup"];
    o.seed = t["seed"];
    o.save_steps = train::checkpoint_schedule(o.steps, t["save_every"]);
    o.output_dir = (fs::path(spec.output) / "checkpoints" / it.model).string();
    o.spatial = spatial_training(t);
    o.config = cfg;
    o.config["train"] = t;  // this model's effective training options
    const auto r = train::train_model(o, comm);
    std::vector<std::string> outputs{r.log_path};
    for (int s : r.saved_steps) outputs.push_back((fs::path(o.output_dir) / ("step" + std::to_string(s)) / "model.safetensors").string());
    return outputs;
  }
  if (stage == "extract") {
    const auto& e = cfg["extract"];
    ExtractOptions o;
    o.model_dir = it.checkpoint.dir;
    o.prompts = corpus;
    o.hooks = e["hooks"].get<std::vector<std::string>>();
    o.pool = e["pool"];
    o.dtype = e["dtype"];
    o.batch = e["batch"];
    o.threads = e["threads"];
    o.device = e["device"];
    o.ffn_mean = e["ffn_mean"];
    o.ffn_token_prompts = e["ffn_token_prompts"].get<std::vector<std::string>>();
    o.special_tokens = e["add_bos"].get<bool>() ? "bos" : e["special_tokens"].get<std::string>();
    o.output = activations_path(spec, it);
    o.config = cfg;
    for (const auto& m : spec.models)
      if (m.name == it.model) o.architecture = m.architecture;
    mpi::on_root(comm, [&] { fs::create_directories(fs::path(o.output).parent_path()); });
    run_extract(o, comm);
    return {o.output};
  }
  if (stage == "neurons") return run_neurons_item(spec, it, corpus, comm);
  if (stage == "eval") return run_eval_item(spec, it, corpus, comm);
  if (stage == "prune") return run_prune_item(spec, it, corpus, comm);
  if (stage == "aggregate") return run_aggregate_item(spec, it, comm);
  if (stage == "sweep") {
    const auto& w = cfg["sweep"];
    SweepOptions o;
    o.hook = it.hook;
    o.knn = w["knn"];
    o.gram_precision = w["gram_precision"];
    o.cka_method = w["cka_method"];
    o.null = w["null"];
    o.seed = w["seed"];
    o.bootstrap = w["bootstrap"];
    o.confidence = w["confidence"];
    o.bootstrap_metrics = w["bootstrap_metrics"].get<std::vector<std::string>>();
    o.metrics = w["metrics"].get<std::vector<std::string>>();
    o.output = item_outputs(spec, "sweep", it)[0];
    o.depth_bins = w["depth_bins"];
    if (it.model.empty()) {
      o.pairs = {"model_model"};
      for (const auto& m : spec.models) {
        const auto ck = core::trained_checkpoints(spec, m).back();
        Item one{m.name + "/" + ck.label, m.name, ck, ""};
        o.activations.push_back(activations_path(spec, one));
        o.labels.push_back(m.name);
      }
    } else if (it.checkpoint.dir.empty()) {
      o.pairs = {"checkpoint_checkpoint"};
      if (it.block_row >= 0) {
        o.block_size = checkpoint_block(spec);
        o.block_row = it.block_row;
        o.block_col = it.block_col;
      }
      for (const auto& m : spec.models)
        if (m.name == it.model)
          for (const auto& ck : core::trained_checkpoints(spec, m)) {
            Item one{it.model + "/" + ck.label, it.model, ck, ""};
            o.activations.push_back(activations_path(spec, one));
            o.labels.push_back(ck.label);
          }
    } else {
      o.pairs.clear();
      for (const auto& p : w["pairs"])
        if (p != "checkpoint_checkpoint" && p != "model_model") o.pairs.push_back(p);
      o.activations = {activations_path(spec, it)};
      o.labels = {it.checkpoint.label};
    }
    for (const auto& a : o.activations)
      if (!fs::exists(a)) throw InputError(spec.file + ": sweep item " + it.id + " needs the extract output " + a);
    mpi::on_root(comm, [&] { fs::create_directories(fs::path(o.output).parent_path()); });
    run_sweep(o, comm);
    return item_outputs(spec, "sweep", it);
  }
  const auto& z = cfg["zigzag"];
  ZigzagOptions o;
  o.activations = activations_path(spec, it);
  if (!fs::exists(o.activations))
    throw InputError(spec.file + ": zigzag item " + it.id + " needs the extract output " + o.activations);
  o.hook = it.hook;
  o.k = z["k"];
  o.max_dim = z["max_dim"];
  o.homology_dims = z["homology_dims"].get<std::vector<int>>();
  o.metric = z["metric"];
  o.knn_precision = z["knn_precision"];
  o.knn_device = z["knn_device"];
  o.threads = z["threads"];
  o.reducer = z["reducer"];
  o.dualize = z["dualize"].is_boolean() ? (z["dualize"].get<bool>() ? "true" : "false") : z["dualize"].get<std::string>();
  o.subsets = z["subsets"];
  o.subset_size = z["subset_size"];
  o.subset_seed = z["subset_seed"];
  o.null_draws = z["null_draws"];
  o.null_seed = z["null_seed"];
  o.output = item_outputs(spec, "zigzag", it)[0];
  mpi::on_root(comm, [&] { fs::create_directories(fs::path(o.output).parent_path()); });
  run_zigzag(o, comm);
  return {o.output};
}

}  // namespace

std::vector<std::string> pipeline_stages(const core::JobSpec& spec) {
  std::vector<std::string> out{"prepare"};
  for (const auto& m : spec.models)
    if (m.from_train) {
      out.push_back("train");
      break;
    }
  if (spec.has_stage("extract")) out.push_back("extract");
  if (spec.has_stage("zigzag") && spec.has_stage("extract")) out.push_back("zigzag");
  if (spec.has_stage("sweep") && spec.has_stage("extract")) out.push_back("sweep");
  if (spec.has_stage("neurons")) out.push_back("neurons");
  if (spec.has_stage("eval")) out.push_back("eval");
  if (spec.has_stage("prune")) out.push_back("prune");
  if (spec.has_stage("aggregate")) out.push_back("aggregate");
  return out;
}

std::vector<std::string> stage_items(const core::JobSpec& spec, const std::string& stage) {
  std::vector<std::string> out;
  for (const auto& it : items_of(spec, stage)) out.push_back(it.id);
  return out;
}

std::vector<ItemState> stage_item_states(const core::JobSpec& spec, const std::string& stage) {
  io::WorkManifest manifest(spec.output);
  if (stage == "prepare") return {{"corpus", manifest.state("prepare", "corpus", core::config_hash(prepare_config(spec)))}};
  std::vector<ItemState> out;
  for (const auto& it : items_of(spec, stage))
    out.push_back({it.id, manifest.state(stage, it.id, core::config_hash(item_config(spec, stage, it)))});
  return out;
}

namespace {

// A blocked checkpoint x checkpoint sweep is assembled by whichever task finds every block of its
// (model, hook) complete and the merged file missing or older than a block: the last array task to
// finish, or any later run (so a merge killed half-way is redone). An exclusive flock on
// <merged>.lock keeps two tasks finishing together from writing it at once.
void merge_finished_sweep_blocks(const core::JobSpec& spec, const std::vector<Item>& items, io::WorkManifest& manifest,
                                 MPI_Comm comm) {
  std::map<std::string, std::vector<const Item*>> by_target;
  for (const auto& it : items)
    if (it.block_row >= 0) by_target[it.model + "\n" + it.hook].push_back(&it);
  for (const auto& [key, blocks] : by_target) {
    const Item& any = *blocks.front();
    const Item whole{any.model + "/checkpoints/" + any.hook, any.model, {}, any.hook};
    const std::string target = item_outputs(spec, "sweep", whole)[0];
    std::vector<std::string> files;  // on every rank: merge_sweep_blocks is collective
    for (const Item* b : blocks) files.push_back(item_outputs(spec, "sweep", *b)[0]);
    int merge = 1;
    int lock_fd = -1;
    mpi::on_root(comm, [&] {
      auto newest = fs::file_time_type::min();
      for (std::size_t i = 0; i < blocks.size() && merge; ++i) {
        const std::string hash = core::config_hash(item_config(spec, "sweep", *blocks[i]));
        if (!manifest.is_complete("sweep", blocks[i]->id, hash) || !fs::exists(files[i])) merge = 0;
        else newest = std::max(newest, fs::last_write_time(files[i]));
      }
      if (merge && fs::exists(target) && fs::last_write_time(target) >= newest) merge = 0;
      if (merge) {
        lock_fd = ::open((target + ".lock").c_str(), O_CREAT | O_RDWR, 0644);
        if (lock_fd >= 0 && ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
          ::close(lock_fd);
          lock_fd = -1;
          merge = 0;  // another task is merging these blocks now
        }
      }
    });
    mpi::check(MPI_Bcast(&merge, 1, MPI_INT, 0, comm), "MPI_Bcast");
    if (merge) {
      merge_sweep_blocks(files, target, comm);
      mpi::on_root(comm, [&] { std::cout << "sweep: merged " << files.size() << " blocks -> " << target << "\n"; });
    }
    mpi::on_root(comm, [&] {
      if (lock_fd >= 0) {
        ::flock(lock_fd, LOCK_UN);
        ::close(lock_fd);
      }
    });
  }
}

// SLURM's pre-timeout signal reaches the batch script, which creates LMTOPO_STOP_FILE: any rank that
// sees it makes all stop (an all-reduce, so the ranks never disagree about the next item).
bool stop_requested(MPI_Comm comm) {
  const char* path = std::getenv("LMTOPO_STOP_FILE");
  int mine = (path && *path && fs::exists(path)) ? 1 : 0, any = 0;
  mpi::check(MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm), "MPI_Allreduce");
  return any != 0;
}

}  // namespace

StageReport run_stage(const core::JobSpec& spec, const std::string& stage, int item, bool force, MPI_Comm comm,
                      const std::string& item_id) {
  StageReport report;
  mpi::ensure_initialized();
  if (stop_requested(comm)) {
    report.stopped = true;
    return report;
  }
  if (stage == "prepare") {
    const auto s = run_prepare(spec, comm, force);
    (s.skipped ? report.skipped : report.done) = 1;
    return report;
  }
  const auto items = items_of(spec, stage);
  if (!item_id.empty()) {
    const auto at = std::find_if(items.begin(), items.end(), [&](const Item& i) { return i.id == item_id; });
    if (at == items.end())
      throw InputError("--item-id: stage " + stage + " has no item '" + item_id + "' (run `lmtopo plan` to list them)");
    item = static_cast<int>(at - items.begin());
  }
  if (item >= static_cast<int>(items.size()))
    throw InputError("--item: stage " + stage + " has " + std::to_string(items.size()) + " item(s), got " + std::to_string(item));
  io::WorkManifest manifest(spec.output);
  std::map<std::string, std::string> duplicates;
  mpi::on_root(comm, [&] { duplicates = duplicate_checkpoints(spec); });
  for (std::size_t k = 0; k < items.size(); ++k) {
    if (item >= 0 && static_cast<int>(k) != item) continue;
    if (k > 0 && item < 0 && stop_requested(comm)) {
      report.stopped = true;
      break;
    }
    const Item& it = items[k];
    const std::string hash = core::config_hash(item_config(spec, stage, it));
    int complete = 0;
    mpi::on_root(comm, [&] { complete = !force && manifest.is_complete(stage, it.id, hash) ? 1 : 0; });
    mpi::check(MPI_Bcast(&complete, 1, MPI_INT, 0, comm), "MPI_Bcast");
    if (complete) {
      ++report.skipped;
      continue;
    }
    int linked = 0;
    std::vector<std::string> outputs;
    std::string original;
    mpi::on_root(comm, [&] {
      if (auto l = link_duplicate(spec, stage, it, items, duplicates, manifest, original)) {
        outputs = *l;
        linked = 1;
      }
    });
    mpi::check(MPI_Bcast(&linked, 1, MPI_INT, 0, comm), "MPI_Bcast");
    if (const char* slow = std::getenv("LMTOPO_TEST_ITEM_SECONDS"))  // test hook: items that take a while
      std::this_thread::sleep_for(std::chrono::duration<double>(std::atof(slow)));
    if (!linked) outputs = run_item(spec, stage, it, comm);
    mpi::on_root(comm, [&] {
      std::vector<io::OutputRecord> records;
      for (const auto& p : outputs) records.push_back(manifest.output_record(p));
      manifest.record_complete(stage, it.id, hash, records);
      if (linked)
        std::cout << stage << ": " << it.id << " linked to " << original << " (byte-identical checkpoint)\n";
      else
        std::cout << stage << ": " << it.id << " done\n";
    });
    ++(linked ? report.linked : report.done);
  }
  if (stage == "sweep" && checkpoint_block(spec) > 0) merge_finished_sweep_blocks(spec, items, manifest, comm);
  return report;
}

}  // namespace lmtopo::stages
