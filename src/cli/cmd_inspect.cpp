// `lmtopo inspect FILE.h5`: schema, provenance and datasets of an output.
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "io/h5_layout.hpp"
#include "io/h5store.hpp"
#include "io/safetensors.hpp"
#include "io/unit_positions.hpp"
#include "model/model_config.hpp"
#include "mpi/collective.hpp"

namespace lmtopo::cli {
namespace {

// A checkpoint folder: architecture, sizes, parameters by dtype (from the safetensors headers) and the
// module path of every point of every portable hook.
int inspect_model(const std::string& dir) {
  const auto c = model::read_model_config(dir);
  const io::Checkpoint ckpt(dir);
  std::map<std::string, long long> params_by_dtype;
  long long total = 0;
  for (const auto& name : ckpt.names()) {
    const auto& t = ckpt.tensor(name);
    params_by_dtype[io::dtype_label(t.dtype)] += t.numel();
    total += t.numel();
  }
  std::cout << dir << "\n  architecture: " << c.model_type << "\n  blocks: " << c.num_layers << ", hidden " << c.hidden
            << ", heads " << c.heads << " (kv " << c.kv_heads << "), FFN " << c.intermediate << ", vocab " << c.vocab
            << "\n  parameters: " << total << " (";
  bool first = true;
  for (const auto& [dtype, n] : params_by_dtype) std::cout << (first ? "" : ", ") << dtype << " " << n, first = false;
  std::cout << ")\n  tokenizer.json: " << (std::filesystem::exists(std::filesystem::path(dir) / "tokenizer.json") ? "yes" : "missing")
            << "\n  hooks:\n";
  for (const auto& h : model::portable_hooks()) {
    const auto points = model::hook_point_names(c, h);
    std::cout << "    " << h << " (" << points.size() << " points): " << points.front() << " ... " << points.back() << "\n";
  }
  const auto positions = io::read_unit_positions(dir);
  if (!positions.empty()) std::cout << "  unit positions (" << io::kUnitPositionsFile << ", spatially trained):\n";
  for (const auto& [hook, p] : positions)
    std::cout << "    " << hook << ": " << p.blocks << " blocks x " << p.units << " units on a " << p.side << "x" << p.side << " grid\n";
  return 0;
}

int run_inspect(const po::variables_map& vm, const std::vector<std::string>&) {
  if (mpi::rank() != 0) return 0;
  const std::string path = vm["path"].as<std::string>();
  if (std::filesystem::is_directory(path)) return inspect_model(path);
  io::H5Input in(path);
  const auto attrs = in.root_attributes();
  std::cout << path << "\n";
  for (const auto& [k, v] : attrs) {
    if (k == "config_json" && !vm.count("config")) {
      std::cout << "  @" << k << ": (" << v.size() << " bytes; --config to print)\n";
      continue;
    }
    if ((k == "created_by" || k == "config_json") && !v.empty() && v[0] == '{') {
      std::cout << "  @" << k << ": " << nlohmann::json::parse(v).dump(2) << "\n";
      continue;
    }
    std::cout << "  @" << k << ": " << v << "\n";
  }
  for (const auto& d : in.datasets()) {
    std::cout << "  " << d.path << "  " << d.dtype << " [";
    for (std::size_t i = 0; i < d.shape.size(); ++i) std::cout << (i ? ", " : "") << d.shape[i];
    std::cout << "]\n";
    for (const auto& [k, v] : d.attributes) {
      std::string shown = v;
      for (auto& ch : shown)
        if (ch == '\n') ch = ' ';
      if (shown.size() > 100) shown = shown.substr(0, 97) + "...";
      std::cout << "      @" << k << ": " << shown << "\n";
    }
  }
  if (attrs.count("lmtopo_schema")) {
    try {
      const auto e = io::check_layout(path);
      std::cout << "  layout: " << (e ? "INVALID at " + e->where + ": " + e->message : "valid") << "\n";
    } catch (const std::exception& ex) {
      std::cout << "  layout: " << ex.what() << "\n";
    }
  }
  return 0;
}

}  // namespace

Command make_inspect_command() {
  Command c;
  c.name = "inspect";
  c.summary = "summarise an output file (schema, provenance, datasets) or a checkpoint folder";
  c.usage = "lmtopo inspect FILE.h5 [--config]\n   or: lmtopo inspect CHECKPOINT_DIR";
  c.description =
      "Prints the root attributes (schema version, lmtopo version, git SHA and dirty flag, created_by), every "
      "dataset with dtype, shape and attributes, and whether the file matches the layout schema of its kind. For a checkpoint folder (Hugging Face layout): "
      "the architecture, sizes, parameter count by dtype (from the safetensors headers, nothing is loaded) and "
      "the module paths of the points of every portable hook.";
  c.add_options = [](po::options_description& d) {
    d.add_options()("path", po::value<std::string>()->required(), "HDF5 file or checkpoint folder (positional)")(
        "config", "also print the effective config recorded in the file");
  };
  c.positionals = {{"path", 1}};
  c.run = run_inspect;
  return c;
}

}  // namespace lmtopo::cli
