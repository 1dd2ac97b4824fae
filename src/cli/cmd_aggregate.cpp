// `lmtopo aggregate`: many models' and checkpoints' barcodes on one relative-depth axis, compared.
#include <iostream>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "mpi/collective.hpp"
#include "stages/aggregate.hpp"

namespace lmtopo::cli {
namespace {

// MODEL[@STEP]=FILE, given to `option`.
stages::SeriesInput series_input(const std::string& text, const std::string& option) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    throw InputError(option + ": expected MODEL[@STEP]=FILE, got '" + text + "'");
  stages::SeriesInput s;
  s.path = text.substr(eq + 1);
  s.model = text.substr(0, eq);
  const auto at = s.model.find('@');
  if (at != std::string::npos) {
    const std::string step = s.model.substr(at + 1);
    std::size_t used = 0;
    try {
      s.step = std::stoll(step, &used);
    } catch (const std::logic_error&) {
      used = 0;
    }
    if (step.empty() || used != step.size() || s.step < 0) throw InputError(option + ": '" + step + "' in '" + text + "' is not a step (an integer >= 0)");
    s.model = s.model.substr(0, at);
  }
  if (s.model.empty()) throw InputError(option + ": no model name in '" + text + "'");
  return s;
}

int run_aggregate_cmd(const po::variables_map& vm, const std::vector<std::string>&) {
  if (vm.count("job")) return run_job_stage(vm, "aggregate");
  require_options(vm, {"input", "output"});
  stages::AggregateOptions o;
  for (const auto& text : vm["input"].as<std::vector<std::string>>()) o.series.push_back(series_input(text, "--input"));
  if (vm.count("neurons"))
    for (const auto& text : vm["neurons"].as<std::vector<std::string>>()) o.neurons.push_back(series_input(text, "--neurons"));
  if (vm.count("sweep"))
    for (const auto& text : vm["sweep"].as<std::vector<std::string>>()) o.sweeps.push_back(series_input(text, "--sweep"));
  if (vm.count("checkpoint-sweep"))
    for (const auto& text : vm["checkpoint-sweep"].as<std::vector<std::string>>()) o.checkpoint_sweeps.push_back(series_input(text, "--checkpoint-sweep"));
  o.dim = vm["dim"].as<int>();
  if (vm.count("curve-dims"))
    o.curve_dims = converted_items<int>(vm["curve-dims"].as<std::string>(), "--curve-dims", [](const std::string& x, std::size_t& n) { return std::stoi(x, &n); });
  o.grid = static_cast<std::size_t>(std::max(0, vm["grid"].as<int>()));
  if (vm["grid"].as<int>() < 2) throw InputError("--grid: expected at least 2 depth points");
  o.thresholds = converted_items<double>(vm["thresholds"].as<std::string>(), "--thresholds", [](const std::string& x, std::size_t& n) { return std::stod(x, &n); });
  const int bootstrap = vm["bootstrap"].as<int>(), permutations = vm["permutations"].as<int>();
  if (bootstrap < 0) throw InputError("--bootstrap: expected a number of draws >= 0");
  if (permutations < 1) throw InputError("--permutations: expected a number of draws >= 1");
  o.bootstrap = static_cast<std::size_t>(bootstrap);
  o.permutations = static_cast<std::size_t>(permutations);
  o.alpha = vm["alpha"].as<double>();
  o.tolerance = vm["tolerance"].as<int>();
  o.seed = vm["seed"].as<std::uint64_t>();
  o.output = vm["output"].as<std::string>();
  nlohmann::json inputs = nlohmann::json::array();
  for (const auto& s : o.series) inputs.push_back({{"model", s.model}, {"step", s.step}, {"path", s.path}});
  const auto listed = [](const std::vector<stages::SeriesInput>& v) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : v) out.push_back({{"model", s.model}, {"step", s.step}, {"path", s.path}});
    return out;
  };
  o.config = {{"inputs", inputs}, {"neurons", listed(o.neurons)}, {"sweeps", listed(o.sweeps)}, {"checkpoint_sweeps", listed(o.checkpoint_sweeps)}, {"dim", o.dim}, {"curve_dims", o.curve_dims}, {"grid", o.grid}, {"thresholds", o.thresholds}, {"bootstrap", o.bootstrap},
              {"permutations", o.permutations}, {"alpha", o.alpha}, {"tolerance", o.tolerance}, {"seed", o.seed}};
  const auto s = stages::run_aggregate(o, MPI_COMM_WORLD);
  if (mpi::rank() == 0)
    std::cout << "aggregate: " << s.series << " barcode(s) of " << s.models << " model(s); " << s.pairs << " model pair(s), " << s.shared
              << " with a shared S̄ curve -> " << o.output << "\n";
  return 0;
}

}  // namespace

Command make_aggregate_command() {
  Command c;
  c.name = "aggregate";
  c.summary = "barcodes of many models and checkpoints on one relative-depth axis: S̄ and Betti curves, phases, universality against nulls";
  c.usage = "lmtopo aggregate JOB.yaml [--item K] [--force]\n   or: lmtopo aggregate --input MODEL[@STEP]=BARS.csv|ZIGZAG.h5 [--input ...] [--dim 1] [--grid 101] [--thresholds 0.9,0.8] "
            "[--bootstrap 1000] [--permutations 1000] [--seed S] [--neurons MODEL[@STEP]=N.h5 ...] [--sweep MODEL[@STEP]=S.h5 ...] "
            "[--checkpoint-sweep MODEL=C.h5 ...] -o AGG.h5";
  c.description =
      "docs/aggregate.md. Each --input is one barcode: a `lmtopo zigzag` output or a CSV of intersection-zigzag bars "
      "(paper 1's release layout), labelled with its model and, for a checkpoint, its training step. Per barcode the "
      "layer summaries of homology dimension --dim (S̄, v1, and the Betti curve), resampled to --grid relative depths "
      "(layer l of L at l/(L-1), linear between layers), with the sd over the zigzag's prompt subsets when it ran on "
      "several; the persistence similarity S(l1, l2) = PHSim(l1, l2)/β(l1) on grid x grid (bilinear) and its bands "
      "S(t, t + 0.1 | 0.25 | 0.5) (AGG.bands.csv); the phases: the argmax of S̄ and, per threshold, the pruning candidates l <= L-2 with S̄(l) >= thr * max "
      "and their depths; per model, the first checkpoint from which the argmax stays within --tolerance layers of the "
      "final one's. For each pair of models (their final checkpoints): Pearson and Spearman correlation of the S̄ curves "
      "on the grid, a 95% bootstrap interval over the prompt subsets (--bootstrap draws, when both have subsets), the "
      "permuted-prompts null when both zigzags ran null draws (zigzag --null-draws: the largest correlation with the "
      "other's null curves), else the layer-shuffle null (the second curve's layers permuted, --permutations draws; "
      "beaten when p < --alpha), and the step-0 null (each model's step-0 checkpoint against the other's final one, "
      "when given). shared = 1 when both nulls are beaten (the correlation and its interval's lower end above them), "
      "0 when one is not, -1 when there is no step-0 checkpoint to decide. Writes AGG.h5 (aggregate/1) and AGG.curves.csv, AGG.phases.csv, "
      "AGG.universality.csv; with --neurons, each key_linguistic file's key units (summed over languages) and mean pairwise "
      "cosine (averaged over them) per block on the same axis, in /neurons and AGG.neurons.csv: the checkpoint series of "
      "cross-lingual alignment. With --sweep (a per-checkpoint sweep output), its SADS, LRDS and TwoNN intrinsic dimension per "
      "point on the same axis (/sweeps, AGG.sweeps.csv; NaN for a metric the sweep did not compute); with --checkpoint-sweep "
      "(a model's checkpoint x checkpoint sweep with cka_linear_unbiased), each checkpoint's CKA with the model's last one per "
      "point (/cka_final, AGG.cka_final.csv). The job-spec form runs one item per extracted hook over every model's checkpoints (their "
      "zigzag outputs, which must be complete and current; likewise their sweeps and key_linguistic outputs when the study "
      "has them) and the section's imported barcodes, into "
      "OUTPUT/aggregate/<hook>.h5.";
  c.add_options = [](po::options_description& d) {
    add_job_stage_options(d, "every hook of the study");
    d.add_options()("input", po::value<std::vector<std::string>>()->composing(), "MODEL[@STEP]=FILE: a barcode (repeat for each)")(
        "neurons", po::value<std::vector<std::string>>()->composing(),
        "MODEL[@STEP]=FILE: a key_linguistic neurons output (repeat): key units and mean cosine per block on the depth axis")(
        "sweep", po::value<std::vector<std::string>>()->composing(),
        "MODEL[@STEP]=FILE: a per-checkpoint sweep output (repeat): SADS, LRDS, TwoNN per point on the depth axis")(
        "checkpoint-sweep", po::value<std::vector<std::string>>()->composing(),
        "MODEL=FILE: a checkpoint x checkpoint sweep (repeat): CKA of each checkpoint with the last per point")(
        "dim", po::value<int>()->default_value(1), "homology dimension of S̄ and Betti")(
        "curve-dims", po::value<std::string>(),
        "comma-separated homology dimensions (e.g. 0,1,2): S̄ and Betti of each on the depth grid besides --dim's "
        "(/curves/by_dim, OUT.dims.csv); a dimension without bars has Betti 0 and S̄ 0")(
        "grid", po::value<int>()->default_value(101), "relative-depth points")(
        "thresholds", po::value<std::string>()->default_value("0.9,0.8"), "pruning-candidate thresholds (fractions of max S̄)")(
        "bootstrap", po::value<int>()->default_value(1000), "bootstrap draws over the prompt subsets (0: none)")(
        "permutations", po::value<int>()->default_value(1000), "layer-shuffle null draws")(
        "alpha", po::value<double>()->default_value(0.05), "the layer-shuffle null is beaten when p < alpha")(
        "tolerance", po::value<int>()->default_value(1), "layers within which the argmax counts as settled over training")(
        "seed", po::value<std::uint64_t>()->default_value(0), "seed of the bootstrap and the permutations")(
        "output,o", po::value<std::string>(), "HDF5 file to write (aggregate/1)");
  };
  c.positionals = {{"job", 1}};
  c.run = run_aggregate_cmd;
  return c;
}

}  // namespace lmtopo::cli
