// `lmtopo zigzag`: zigzag persistence across the layers of one hook of an activations file.
#include <iostream>
#include <sstream>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "mpi/collective.hpp"
#include "stages/zigzag.hpp"
#include "topology/reducers.hpp"

namespace lmtopo::cli {
namespace {

std::vector<int> parse_dims(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      std::size_t pos = 0;
      out.push_back(std::stoi(item, &pos));
      if (pos != item.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw InputError("--dims: expected comma-separated integers, got '" + text + "'");
    }
  }
  if (out.empty()) throw InputError("--dims: expected at least one dimension");
  return out;
}

int run_zigzag_cmd(const po::variables_map& vm, const std::vector<std::string>&) {
  if (vm.count("job")) return run_job_stage(vm, "zigzag");
  require_options(vm, {"activations", "hook", "output"});
  stages::ZigzagOptions o;
  o.activations = vm["activations"].as<std::string>();
  o.hook = vm["hook"].as<std::string>();
  o.output = vm["output"].as<std::string>();
  o.k = vm["k"].as<int>();
  o.max_dim = vm["max-dim"].as<int>();
  o.homology_dims = parse_dims(vm["dims"].as<std::string>());
  o.metric = vm["metric"].as<std::string>();
  o.knn_precision = vm["knn-precision"].as<std::string>();
  o.knn_device = vm["knn-device"].as<std::string>();
  o.reducer = vm["reducer"].as<std::string>();
  o.threads = vm["threads"].as<int>();
  o.dualize = dualize_option(vm);
  o.column_order = column_order_option(vm, o.reducer);
  o.step_methods = step_methods_option(vm, o.reducer);
  o.mem_limit_gib = vm["mem-limit"].as<double>();
  o.benchmark = vm.count("benchmark") > 0;
  if (vm.count("fzz-output")) o.fzz_output = vm["fzz-output"].as<std::string>();
  o.subsets = vm["subsets"].as<int>();
  o.subset_size = vm["subset-size"].as<long long>();
  o.subset_seed = vm["subset-seed"].as<unsigned long long>();
  o.null_draws = vm["null-draws"].as<int>();
  o.null_seed = vm["null-seed"].as<unsigned long long>();
  const auto& names = topology::reducer_names();
  if (std::find(names.begin(), names.end(), o.reducer) == names.end())
    throw InputError("--reducer: expected twist, chunk or distributed, got '" + o.reducer + "'");
  const auto s = stages::run_zigzag(o, MPI_COMM_WORLD);
  if (mpi::rank() == 0) {
    std::cout << "zigzag: " << s.num_layers << " layers x " << s.num_points << " points; simplices per layer:";
    for (auto c : s.simplices_per_layer) std::cout << " " << c;
    std::cout << "\nzigzag: " << s.num_ops << " operations, " << s.num_bars << " bars -> " << o.output << "\n";
  }
  return 0;
}

}  // namespace

Command make_zigzag_command() {
  Command c;
  c.name = "zigzag";
  c.summary = "zigzag persistence of k-NN flag complexes across the layers of one hook";
  c.usage = "[mpirun -n P] lmtopo zigzag JOB.yaml [--item K] [--force]\n   or: [mpirun -n P] lmtopo zigzag --activations FILE.h5 --hook NAME -o OUT.h5 [-k 4] [--max-dim 2] [--dims 0,1]";
  c.description =
      "Reads /activations/<hook> [n_points(layers), n_prompts, hidden] of an activations/1 file; per layer builds "
      "the exact k-NN graph of the prompts (Euclidean or cosine, ties by index), symmetrised by OR, and its flag "
      "complex up to --max-dim; forms the intersection zigzag K_0 ⊇ K_0∩K_1 ⊆ K_1 … (science.md §1), computes "
      "its barcode with the FastZigzag cone matrix and the named reducer, and writes a layer-summaries/1 file: "
      "bars in op and position coordinates and, per homology dimension, the persistence image, Betti curve, "
      "PHSim, S, S̄, Z̄_α and births' frequencies. Ranks split the layers (k-NN and complexes) and, with "
      "--reducer distributed, the boundary matrix. The job-spec form runs the study's work items (checkpoint x hook) on "
      "the extract outputs.";
  c.add_options = [](po::options_description& d) {
    add_job_stage_options(d, "every checkpoint and hook of the study");
    d.add_options()("activations", po::value<std::string>(), "activations/1 HDF5 file")(
        "hook", po::value<std::string>(), "hook name: the dataset /activations/<hook>")(
        "output,o", po::value<std::string>(), "layer-summaries/1 file to write")(
        "k,k", po::value<int>()->default_value(4), "neighbours of the k-NN graph")(
        "max-dim", po::value<int>()->default_value(2), "largest simplex dimension of the flag complexes")(
        "dims", po::value<std::string>()->default_value("0,1"), "homology dimensions to summarise, each < --max-dim")(
        "metric", po::value<std::string>()->default_value("euclidean"), "euclidean or cosine")(
        "knn-precision", po::value<std::string>()->default_value("mixed"),
        "k-NN filtering GEMM: mixed (float32, then exact float64 re-measurement of the candidates) or float64; the same neighbours")(
        "knn-device", po::value<std::string>()->default_value("cpu"),
        "where the k-NN's GEMM runs: cpu (BLAS) or cuda (cuBLAS, builds with nvcc); the same neighbours")(
        "reducer", po::value<std::string>()->default_value("distributed"), "twist, chunk or distributed")(
        "threads", po::value<int>()->default_value(2),
        "threads of the chunk reducer and, with --knn-device cuda, of the k-NN's candidate selection")(
        "dualize", po::value<std::string>()->default_value("auto"),
        kDualizeHelp)(
        "column-order", po::value<std::string>()->default_value("auto"), kColumnOrderHelp)(
        "speculate-runs", po::value<long long>()->default_value(0), kSpeculateRunsHelp)("row-split", kRowSplitHelp)("no-row-loans", kNoRowLoansHelp)(
        "mem-limit", po::value<double>()->default_value(8.0),
        "GiB; refuse a layer whose flag complex may exceed it (bound from vertex degrees)")(
        "benchmark", "print the reducer's per-rank table")(
        "fzz-output", po::value<std::string>(), "also write subset 0's zigzag filtration there in FastZigzag's format (for `lmtopo barcode` or other tools)")(
        "subsets", po::value<int>()->default_value(1), "disjoint random prompt subsets, each its own zigzag (mean ± std)")(
        "subset-size", po::value<long long>()->default_value(0), "prompts per subset (0: all prompts / --subsets)")(
        "subset-seed", po::value<unsigned long long>()->default_value(0), "seed of the subsets' permutation")(
        "null-draws", po::value<int>()->default_value(0), "permuted-prompts null: zigzags of subset 0 with every layer's prompts permuted independently (/null)")(
        "null-seed", po::value<unsigned long long>()->default_value(0), "seed of the null's permutations");
  };
  c.positionals = {{"job", 1}};
  c.run = run_zigzag_cmd;
  return c;
}

}  // namespace lmtopo::cli
