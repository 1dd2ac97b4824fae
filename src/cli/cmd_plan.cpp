// `lmtopo plan JOB.yaml`: the work items per stage and their sizes, without computing anything.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/command.hpp"
#include "core/jobspec.hpp"
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

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  std::ostringstream out;
  out << std::fixed << std::setprecision(u ? 1 : 0) << b << " " << units[u];
  return out.str();
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
  for (const auto& m : spec.models) n_checkpoints += m.checkpoints.size();

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
      for (const auto& c : m.checkpoints) {
        const auto s = shape_of(c.dir);
        double bytes = 0;
        bool known = s.layers > 0 && s.hidden > 0;
        for (const auto& h : ex["hooks"]) {
          const long long width = h == "mlp_act" ? s.intermediate : s.hidden;
          const long long points = h == "mlp_act" || h == "attn_output" || h == "block_input" ? s.layers : s.layers + 1;
          bytes += static_cast<double>(points) * static_cast<double>(n_prompts) * static_cast<double>(width) * bytes_per_value;
        }
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
      "and the prompts per rank.";
  c.add_options = [](po::options_description& d) {
    d.add_options()("job", po::value<std::string>()->required(), "job spec (positional)")(
        "ranks", po::value<int>()->default_value(0), "ranks per work item; 0 = slurm.nodes x slurm.tasks_per_node, or 1");
  };
  c.positionals = {{"job", 1}};
  c.run = run_plan;
  return c;
}

}  // namespace lmtopo::cli
