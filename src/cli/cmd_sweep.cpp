// `lmtopo sweep`: similarity sweeps across layers, languages and checkpoints of one hook.
#include <iostream>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "mpi/collective.hpp"
#include "stages/sweep.hpp"

namespace lmtopo::cli {
namespace {

int run_sweep_cmd(const po::variables_map& vm, const std::vector<std::string>& passthrough) {
  if (vm.count("job")) return run_job_stage(vm, "sweep");
#if !defined(LMTOPO_TORCH_HELPER) && !defined(LMTOPO_PETSC_HELPER)
  (void)passthrough;
  throw RuntimeFailure("sweep runs in lmtopo-petsc");  // not reached: main() hands `sweep` to lmtopo-petsc
#else
  if (vm.count("merge")) {
    require_options(vm, {"output"});
    const auto blocks = vm["merge"].as<std::vector<std::string>>();
    stages::merge_sweep_blocks(blocks, vm["output"].as<std::string>(), MPI_COMM_WORLD);
    if (mpi::rank() == 0)
      std::cout << "sweep: merged " << blocks.size() << " blocks -> " << vm["output"].as<std::string>() << "\n";
    return 0;
  }
  require_options(vm, {"activations", "hook", "output"});
  stages::SweepOptions o;
  o.activations = vm["activations"].as<std::vector<std::string>>();
  if (vm.count("label")) o.labels = vm["label"].as<std::vector<std::string>>();
  o.hook = vm["hook"].as<std::string>();
  o.output = vm["output"].as<std::string>();
  o.pairs = comma_separated(vm["pairs"].as<std::vector<std::string>>());
  o.metrics = comma_separated(vm["metric"].as<std::vector<std::string>>());
  o.knn = vm["knn"].as<int>();
  o.gram_precision = vm["gram-precision"].as<std::string>();
  o.cka_method = vm["cka-method"].as<std::string>();
  o.depth_bins = vm["depth-bins"].as<int>();
  o.null = vm.count("no-null") == 0;
  o.seed = vm["seed"].as<unsigned long long>();
  o.bootstrap = vm["bootstrap"].as<int>();
  o.confidence = vm["confidence"].as<double>();
  if (vm.count("bootstrap-metric")) o.bootstrap_metrics = comma_separated(vm["bootstrap-metric"].as<std::vector<std::string>>());
  o.petsc_options = passthrough;
  o.benchmark = vm.count("benchmark") > 0;
  o.block_size = vm["block-size"].as<int>();
  if (vm.count("block")) {
    const auto ij = comma_separated({vm["block"].as<std::string>()});
    try {
      if (ij.size() != 2) throw std::invalid_argument("two numbers");
      o.block_row = std::stoi(ij[0]);
      o.block_col = std::stoi(ij[1]);
    } catch (const std::exception&) {
      throw InputError("--block: expected I,J (two group indices), got '" + vm["block"].as<std::string>() + "'");
    }
    if (o.block_size == 0) throw InputError("--block: needs --block-size");
  }
  const auto s = stages::run_sweep(o, MPI_COMM_WORLD);
  if (mpi::rank() == 0) {
    std::cout << "sweep: " << s.points << " points x " << s.prompts << " prompts; wrote";
    for (const auto& w : s.written) std::cout << " " << w;
    std::cout << " -> " << o.output << "\n";
    for (const auto& k : s.skipped) std::cout << "sweep: skipped " << k << "\n";
  }
  return 0;
#endif
}

}  // namespace

Command make_sweep_command() {
  Command c;
  c.name = "sweep";
  c.summary = "similarity sweeps (CKA, mutual k-NN, cosine, retrieval, LRDS/SADS, TwoNN) across layers, languages, checkpoints";
  c.usage =
      "[mpirun -n P] lmtopo sweep JOB.yaml [--item K] [--force]\n   or: [mpirun -n P] lmtopo sweep --activations FILE.h5 "
      "[--activations FILE.h5 ...] --hook NAME --pairs layer_layer|language_language|checkpoint_checkpoint --metric NAME "
      "[--metric NAME ...] -o OUT.h5 [--block-size B --block I,J] [-- PETSc options]\n"
      "   or: [mpirun -n P] lmtopo sweep --merge BLOCK.h5 [--merge BLOCK.h5 ...] -o OUT.h5";
  c.description =
      "Reads /activations/<hook> [points, prompts, width] of activations/1 files and compares representations: "
      "layer_layer (every pair of points of one file), language_language (per point, the languages' parallel "
      "sentences aligned by group; prompts of groups missing from a language are left out) and checkpoint_checkpoint "
      "(per point, every pair of files, which must share prompts) and model_model (one file per model, any widths "
      "and depths: at each normalised depth t = j/(T-1) the point round(t (points - 1)) of every model; CKA and "
      "mutual k-NN). Metrics: cka_linear_biased, cka_linear_unbiased, "
      "cosine, angular_distance, block_influence, mutual_knn (pairwise); retrieval (top-1 and top-5), lrds, sads "
      "(languages); twonn (per representation). Each pairwise metric gets a prompt-permutation null <metric>_null "
      "unless --no-null. Ranks split the rows of every Gram and similarity matrix: representations are PETSc "
      "MATMPIDENSE matrices and the products are PETSc's (options after `--` reach PETSc, e.g. -mat_type densecuda "
      "with a CUDA PETSc). Writes a sweep/1 file and a tidy CSV beside it (OUT.csv: pairs, metric, point, row, "
      "column, value, null). Metrics that do not apply to a pair type are listed as skipped. "
      "A checkpoint_checkpoint sweep too large for one task splits into blocks: with --block-size B the checkpoints "
      "form groups of B in file order and --block I,J (I <= J) computes only the pairs between groups I and J, "
      "reading only their files; the arrays keep the full shape with NaN outside the block and the CSV lists the "
      "block's pairs. --merge assembles every block I <= J into the file an unblocked run writes.";
  c.add_options = [](po::options_description& d) {
    add_job_stage_options(d, "every sweep item of the study");
    d.add_options()("activations", po::value<std::vector<std::string>>(), "activations/1 file, repeatable (checkpoints in order)")(
        "label", po::value<std::vector<std::string>>(), "label of each --activations file (default: file stem)")(
        "hook", po::value<std::string>(), "hook name: the dataset /activations/<hook>")(
        "pairs", po::value<std::vector<std::string>>()->default_value({"layer_layer"}, "layer_layer"),
        "layer_layer, language_language, checkpoint_checkpoint or model_model (repeatable or comma-separated)")(
        "metric", po::value<std::vector<std::string>>()->default_value({"cka_linear_unbiased"}, "cka_linear_unbiased"),
        "metric name (repeatable or comma-separated)")(
        "knn", po::value<int>()->default_value(10), "k of mutual_knn")(
        "gram-precision", po::value<std::string>()->default_value("float64"),
        "CKA Gram products: float64 (PETSc, ranks agree to 1e-10) or float32 (BLAS sgemm, twice the rate, CKA to ~1e-6)")(
        "cka-method", po::value<std::string>()->default_value("auto"),
        "CKA from the centred n x n Gram matrices (gram) or from the d x d cross-products of the column-centred "
        "representations (features: no n x n matrix, the same values); auto: features when they need fewer flops or "
        "the Grams would exceed half the node's memory per rank (recorded as cka_method on the CKA datasets)")(
        "depth-bins", po::value<int>()->default_value(11), "model_model: normalised depths 0, 1/(T-1), ..., 1")(
        "no-null", "skip the prompt-permutation nulls")(
        "seed", po::value<unsigned long long>()->default_value(0), "seed of the null's permutation and of the bootstrap draws")(
        "bootstrap", po::value<int>()->default_value(0),
        "percentile-bootstrap draws over prompts (language_language: over parallel sentences) for every metric: "
        "<metric>_ci [..., 2] and ci_low, ci_high in the CSV (0: none)")(
        "confidence", po::value<double>()->default_value(0.95, "0.95"), "level of the bootstrap intervals")(
        "bootstrap-metric", po::value<std::vector<std::string>>(),
        "only these metrics get intervals (repeatable or comma-separated; default: every --metric). CKA's costs about B "
        "sweeps; the others little")(
        "benchmark", "print seconds per phase (reading, Gram products, centring, inner products, similarity products)")(
        "output,o", po::value<std::string>(), "sweep/1 file to write (the CSV goes beside it)")(
        "block-size", po::value<int>()->default_value(0), "checkpoint_checkpoint: checkpoints per group (0: no blocks)")(
        "block", po::value<std::string>(), "checkpoint_checkpoint: the block I,J of groups to compute (0-based, I <= J)")(
        "merge", po::value<std::vector<std::string>>(), "block files of one blocked sweep to assemble into -o (repeatable)");
  };
  c.positionals = {{"job", 1}};
  c.passthrough_use = "PETSc options";
  c.run = run_sweep_cmd;
  return c;
}

}  // namespace lmtopo::cli
