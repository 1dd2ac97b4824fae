#include "stages/prune.hpp"

#include <filesystem>
#include <iostream>
#include <set>
#include <sstream>

#include "core/error.hpp"
#include "io/h5store.hpp"
#include "io/work_manifest.hpp"
#include "mpi/collective.hpp"
#include "stats/pruning.hpp"
#include "topology/layer_summaries.hpp"

namespace lmtopo::stages {
namespace fs = std::filesystem;
namespace {

struct Choice {
  std::string method;  // none, sbar, angular_distance, block_influence, random
  double threshold = 0;
  std::vector<int> blocks;
  std::string name;
};

std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// The blocks each rule removes, from the S̄ curve and the layer x layer sweep of the same hook.
std::vector<Choice> choices(const PruneOptions& o) {
  const io::H5Input zigzag(o.zigzag), sweep(o.sweep);
  const std::string sbar_name = "/summaries/h" + std::to_string(o.dim) + "/avg_similarity";
  if (!zigzag.has_dataset(sbar_name)) throw InputError(o.zigzag + ": " + sbar_name + " is missing (is dimension " + std::to_string(o.dim) + " computed?)");
  const auto sbar = zigzag.read_f64(sbar_name);
  const int points = static_cast<int>(sbar.size());
  for (const char* m : {"/layer_layer/angular_distance", "/layer_layer/block_influence"})
    if (!sweep.has_dataset(m)) throw InputError(o.sweep + ": " + m + " is missing (sweep.metrics must list it)");
  const auto angular = sweep.read_f64("/layer_layer/angular_distance"), influence_matrix = sweep.read_f64("/layer_layer/block_influence");
  if (static_cast<int>(angular.size()) != points * points)
    throw InputError(o.sweep + ": layer_layer is " + std::to_string(angular.size()) + " values, the zigzag has " + std::to_string(points) + " layers");
  std::vector<double> influence;  // block b: point b -> point b + 1
  for (int b = 0; b + 1 < points; ++b) influence.push_back(influence_matrix[static_cast<std::size_t>(b * points + b + 1)]);
  std::vector<Choice> out{{"none", 0, {}, "base"}};
  std::set<int> sizes;
  for (double t : o.thresholds) {
    const auto blocks = topology::pruning_candidates(sbar, t);
    if (blocks.empty()) continue;
    out.push_back({"sbar", t, blocks, "sbar_" + number(t)});
    sizes.insert(static_cast<int>(blocks.size()));
  }
  for (int n : sizes) {
    const std::string tag = "_n" + std::to_string(n);
    out.push_back({"angular_distance", 0, stats::angular_distance_blocks(angular, points, n), "angular_distance" + tag});
    out.push_back({"block_influence", 0, stats::block_influence_blocks(influence, n), "block_influence" + tag});
    for (int k = 0; k < o.random_draws; ++k)
      out.push_back({"random", 0, stats::random_blocks(points - 1, n, o.seed + 1000003ull * static_cast<std::uint64_t>(k) + static_cast<std::uint64_t>(n)),
                     "random" + tag + "_" + std::to_string(k)});
  }
  return out;
}

std::string table_text(const std::vector<Choice>& choices, const std::vector<EvalSummary>& scores) {
  std::vector<std::string> leads;
  for (const auto& c : choices)
    leads.push_back(c.method + "," + (c.method == "sbar" ? number(c.threshold) : "") + "," + std::to_string(c.blocks.size()) + "," +
                    topology::layer_ranges(c.blocks, " ") + "," + c.name + ",");
  return perplexity_table("method,threshold,n,blocks,condition,", leads, scores);
}

}  // namespace

std::vector<std::string> run_prune(const PruneOptions& o, MPI_Comm comm) {
  std::vector<Choice> chosen;
  mpi::on_all(comm, [&] { chosen = choices(o); });  // every rank reads the two small inputs
  std::vector<EvalCondition> conditions;
  std::vector<std::string> outputs;
  for (const auto& c : chosen) {
    model::Interventions iv;
    iv.skip_blocks = c.blocks;
    outputs.push_back((fs::path(o.output_dir) / (c.name + ".h5")).string());
    conditions.push_back({c.name, iv, outputs.back()});
  }
  mpi::on_root(comm, [&] { fs::create_directories(o.output_dir); });
  const auto scores = run_eval_conditions(o.eval, conditions, comm);
  mpi::on_root(comm, [&] { io::write_file_atomically(o.table, table_text(chosen, scores)); });
  outputs.push_back(o.table);
  return outputs;
}

}  // namespace lmtopo::stages
