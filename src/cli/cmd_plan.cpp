// `lmtopo plan JOB.yaml`: the work items per stage and their sizes, without computing anything.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/command.hpp"
#include "core/jobspec.hpp"
#include "geometry/sweep_memory.hpp"
#include "mpi/collective.hpp"
#ifdef LMTOPO_TORCH_HELPER
#include "stages/pipeline.hpp"
#endif

namespace fs = std::filesystem;

namespace lmtopo::cli {
namespace {

struct ModelShape {
  long long layers = -1, hidden = -1, intermediate = -1;
};

// Reads the sizes a plan needs from config.json (Hugging Face names of the four families).
ModelShape shape_of(const std::string& dir) {
  ModelShape s;
  std::ifstream in(fs::path(dir) / "config.json");
  if (!in) return s;
  nlohmann::json c;
  try {
    c = nlohmann::json::parse(in);
  } catch (...) {
    return s;
  }
  for (const char* k : {"num_hidden_layers", "n_layer"})
    if (c.contains(k)) s.layers = c[k].get<long long>();
  for (const char* k : {"hidden_size", "n_embd"})
    if (c.contains(k)) s.hidden = c[k].get<long long>();
  for (const char* k : {"intermediate_size", "n_inner"})
    if (c.contains(k) && c[k].is_number()) s.intermediate = c[k].get<long long>();
  if (s.intermediate < 0 && s.hidden > 0) s.intermediate = 4 * s.hidden;
  return s;
}

// A checkpoint's sizes: its config.json, or for a model this study trains (not written yet) its train
// section.
ModelShape shape_of(const core::ModelSpec& m, const std::string& dir) {
  ModelShape s = shape_of(dir);
  if (s.layers > 0 || !m.from_train) return s;
  s.layers = m.train["layers"].get<long long>();
  s.hidden = m.train["hidden"].get<long long>();
  s.intermediate = m.train["intermediate"].get<long long>();
  return s;
}

long long hook_width(const ModelShape& s, const std::string& hook) { return hook == "mlp_act" ? s.intermediate : s.hidden; }
long long hook_points(const ModelShape& s, const std::string& hook) {
  return hook == "mlp_act" || hook == "attn_output" || hook == "block_input" ? s.layers : s.layers + 1;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  std::ostringstream out;
  out << std::fixed << std::setprecision(u ? 1 : 0) << b << " " << units[u];
  return out.str();
}

// Per pair type, the largest sweep work item's memory per rank (geometry/sweep_memory.hpp) over the
// study's models and hooks, with its main terms.
void print_sweep_memory(const core::JobSpec& spec, double n_prompts, double ranks, double ranks_per_node) {
  const auto& sw = spec.config["sweep"];
  const auto has = [](const nlohmann::json& list, const char* v) { return std::find(list.begin(), list.end(), v) != list.end(); };
  geometry::SweepShape base;
  base.prompts = n_prompts;
  base.languages = static_cast<double>(spec.data.languages.size());
  base.ranks = ranks;
  base.null = sw["null"].get<bool>();
  base.float32_products = sw["gram_precision"] == "float32";
  base.cka = has(sw["metrics"], "cka_linear_biased") || has(sw["metrics"], "cka_linear_unbiased");
  base.neighbours = has(sw["metrics"], "mutual_knn") || has(sw["metrics"], "retrieval") || has(sw["metrics"], "lrds") ||
                    has(sw["metrics"], "sads") || has(sw["metrics"], "twonn");
  base.bootstrap = sw["bootstrap"].get<int>();
  const auto& chosen = sw["bootstrap_metrics"];
  base.bootstrap_cka = base.cka && (chosen.empty() || has(chosen, "cka_linear_biased") || has(chosen, "cka_linear_unbiased"));
  const int block = sw["checkpoint_block"].get<int>();
  // cka_method auto's memory budget as if the ranks ran on nodes like this one (half its memory per rank on a node).
  const double gram_budget = geometry::physical_memory_bytes() / 2 / std::max(1.0, ranks_per_node);
  for (const auto& pairs : sw["pairs"]) {
    geometry::MemoryEstimate worst;
    std::string where;
    bool features = false;
    for (const auto& m : spec.models) {
      const auto checkpoints = core::trained_checkpoints(spec, m);
      if (checkpoints.empty()) continue;
      const auto shape = shape_of(m, checkpoints.back().dir);
      if (shape.layers <= 0) continue;
      for (const auto& hook : spec.config["extract"]["hooks"]) {
        auto s = base;
        s.points = static_cast<double>(hook_points(shape, hook));
        s.width = static_cast<double>(hook_width(shape, hook));
        s.checkpoints = pairs == "model_model" ? static_cast<double>(spec.models.size())
                        : block > 0           ? std::min<double>(static_cast<double>(checkpoints.size()), 2.0 * block)
                                              : static_cast<double>(checkpoints.size());
        s.cka_features = s.cka && geometry::sweep_item_cka_features(pairs, s, sw["cka_method"], gram_budget);
        const auto e = geometry::sweep_item_memory(pairs, s);
        if (e.bytes > worst.bytes) worst = e, where = m.name + "/" + hook.get<std::string>(), features = s.cka_features;
      }
    }
    if (where.empty()) continue;
    std::cout << "  memory per rank, " << pairs.get<std::string>() << " (largest item, " << where << ", " << ranks << " rank(s)"
              << (base.cka ? std::string(", CKA by ") + (features ? "feature cross-products" : "centred Grams") : std::string())
              << "): about " << human_bytes(worst.bytes) << " =";
    for (std::size_t i = 0; i < worst.terms.size(); ++i)
      std::cout << (i ? " +" : "") << " " << human_bytes(worst.terms[i].second) << " " << worst.terms[i].first;
    std::cout << "\n";
  }
}

int run_plan(const po::variables_map& vm, const std::vector<std::string>&) {
  if (mpi::rank() != 0) return 0;
  const auto spec = core::load_job_spec(vm["job"].as<std::string>());
  const auto& cfg = spec.config;
  long long ranks = vm["ranks"].as<int>();
  if (ranks <= 0) ranks = cfg.contains("slurm") ? cfg["slurm"]["nodes"].get<long long>() * cfg["slurm"]["tasks_per_node"].get<long long>() : 1;
  const long long n_prompts = spec.data.prompts * static_cast<long long>(spec.data.languages.size());
  std::cout << "study " << spec.study << " -> " << spec.output << "\n"
            << "prompts: " << spec.data.prompts << " x " << spec.data.languages.size() << " language(s) = " << n_prompts
            << " (" << spec.data.source << ")\n"
            << "ranks per work item: " << ranks << " (prompts per rank: " << (n_prompts + ranks - 1) / ranks << ")\n\n";
  std::size_t n_checkpoints = 0;
  for (const auto& m : spec.models) n_checkpoints += core::trained_checkpoints(spec, m).size();

  std::cout << "stage prepare: 1 item (checkpoint manifest over " << n_checkpoints << " checkpoint(s), corpus)\n";
  if (cfg.contains("train")) {
    int trained = 0;
    std::ostringstream each;
    for (const auto& m : spec.models) {
      if (!m.from_train) continue;
      ++trained;
      each << (trained > 1 ? ", " : "") << m.name << " (" << m.train["steps"] << " steps, "
           << core::trained_checkpoints(spec, m).size() << " checkpoints"
           << (m.train.contains("spatial") ? ", spatial alpha " + m.train["spatial"]["alpha"].dump() : std::string()) << ")";
    }
    std::cout << "stage train: " << trained << " item(s) (models with from_train): " << each.str()
              << "; checkpoints at 0, powers of two, every save_every and the last step\n";
  }
  if (cfg.contains("extract")) {
    const auto& ex = cfg["extract"];
    const double bytes_per_value = ex["dtype"] == "bfloat16" ? 2 : 4;
    std::cout << "stage extract: " << n_checkpoints << " item(s), one per checkpoint\n";
    for (const auto& m : spec.models)
      for (const auto& c : core::trained_checkpoints(spec, m)) {
        const auto s = shape_of(m, c.dir);
        double bytes = 0;
        bool known = s.layers > 0 && s.hidden > 0;
        for (const auto& h : ex["hooks"])
          bytes += static_cast<double>(hook_points(s, h)) * static_cast<double>(n_prompts) * static_cast<double>(hook_width(s, h)) * bytes_per_value;
        std::cout << "  " << m.name << "/" << c.label << ": "
                  << (known ? human_bytes(bytes) + " of activations (" + std::to_string(s.layers) + " blocks, hidden " +
                                  std::to_string(s.hidden) + ")"
                            : std::string("size unknown (no readable config.json)"))
                  << "\n";
      }
  }
  if (cfg.contains("zigzag")) {
    const auto& z = cfg["zigzag"];
    const long long hooks = cfg.contains("extract") ? static_cast<long long>(cfg["extract"]["hooks"].size()) : 1;
    std::cout << "stage zigzag: " << n_checkpoints * static_cast<std::size_t>(hooks)
              << " item(s) (checkpoint x hook; " << z["subsets"] << " prompt subset(s) each), k = " << z["k"]
              << ", max simplex dim " << z["max_dim"] << ", reducer " << z["reducer"].get<std::string>() << "\n";
  }
  if (cfg.contains("sweep")) {
    std::cout << "stage sweep: pairs " << cfg["sweep"]["pairs"].dump() << ", metrics " << cfg["sweep"]["metrics"].dump();
    if (cfg["sweep"]["checkpoint_block"].get<int>() > 0)
      std::cout << ", checkpoint_checkpoint in blocks of " << cfg["sweep"]["checkpoint_block"] << " checkpoints";
    std::cout << "\n";
    const double per_node = cfg.contains("slurm") ? std::min<double>(static_cast<double>(ranks), cfg["slurm"]["tasks_per_node"].get<double>())
                                                  : static_cast<double>(ranks);
    print_sweep_memory(spec, static_cast<double>(n_prompts), static_cast<double>(ranks), per_node);
  }
#ifdef LMTOPO_TORCH_HELPER
  // The work item ids (what --item-id takes), for the stages whose items are known before running.
  for (const auto& stage : stages::pipeline_stages(spec)) {
    if (stage == "prepare" || stage == "train") continue;
    const auto ids = stages::stage_items(spec, stage);
    std::cout << "items " << stage << " (" << ids.size() << "):";
    for (std::size_t i = 0; i < ids.size(); ++i) std::cout << "\n  " << i << "  " << ids[i];
    std::cout << "\n";
  }
#endif
  if (cfg.contains("neurons")) std::cout << "stage neurons: studies " << cfg["neurons"]["studies"].dump() << "\n";
  if (cfg.contains("eval")) {
    std::cout << "stage eval: conditions";
    for (const auto& c : cfg["eval"]["conditions"]) std::cout << " " << c["name"].get<std::string>();
    std::cout << " (one model load per checkpoint)\n";
  }
  if (cfg.contains("prune"))
    std::cout << "stage prune: one item per model at its last checkpoint; S̄ thresholds " << cfg["prune"]["thresholds"].dump()
              << " against angular distance, block influence and " << cfg["prune"]["random_draws"] << " random draw(s)\n";
  if (cfg.contains("aggregate")) std::cout << "stage aggregate: one item per hook\n";
  return 0;
}

}  // namespace

Command make_plan_command() {
  Command c;
  c.name = "plan";
  c.summary = "print the work items per stage and their sizes, computing nothing";
  c.usage = "lmtopo plan JOB.yaml [--ranks N]";
  c.description =
      "Validates the spec, resolves the checkpoints and prints, per stage, the work items a run or a SLURM "
      "submission would create, with the activation bytes per checkpoint (from each checkpoint's config.json) "
      "the prompts per rank, and for the sweep the memory per rank of each pair type's largest work item with its terms "
      "(docs/methods.md, Similarity sweeps: memory per rank).";
  c.add_options = [](po::options_description& d) {
    d.add_options()("job", po::value<std::string>()->required(), "job spec (positional)")(
        "ranks", po::value<int>()->default_value(0), "ranks per work item; 0 = slurm.nodes x slurm.tasks_per_node, or 1");
  };
  c.positionals = {{"job", 1}};
  c.run = run_plan;
  return c;
}

}  // namespace lmtopo::cli
