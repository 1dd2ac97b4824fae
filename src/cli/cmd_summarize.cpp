// `lmtopo summarize`: layer summaries and pruning candidates from a published or computed barcode.
#include <algorithm>
#include <iomanip>
#include <iostream>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "io/barcode_csv.hpp"
#include "io/h5store.hpp"
#include "mpi/collective.hpp"
#include "topology/layer_summaries.hpp"

namespace lmtopo::cli {
namespace {

std::string ranges(const std::vector<int>& layers) {
  std::string out;
  for (std::size_t i = 0; i < layers.size();) {
    std::size_t j = i;
    while (j + 1 < layers.size() && layers[j + 1] == layers[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += std::to_string(layers[i]);
    if (j > i) out += "-" + std::to_string(layers[j]);
    i = j + 1;
  }
  return out.empty() ? "none" : out;
}

// L from --layers, or from the barcode itself: the last layer's complex is not empty (every prompt is
// a vertex of every layer), so some H0 bar is alive at the last position 2L-1 and dies at 2L, and no
// bar dies later. Without H0 bars nothing in the file pins L down (a largest death of 2L-2 looks the
// same as one of 2L), so L must be given.
int number_of_layers(const po::variables_map& vm, const std::vector<topology::PositionBar>& bars, const std::string& input) {
  int L = vm["layers"].as<int>();
  if (L == 0) L = vm["num-layers"].as<int>();
  int max_death = 0, max_h0_death = 0;
  for (const auto& b : bars) {
    max_death = std::max(max_death, b.death);
    if (b.dim == 0) max_h0_death = std::max(max_h0_death, b.death);
  }
  if (L == 0) {
    if (max_h0_death == 0)
      throw InputError(input + ": dimension: no H0 bars, so the number of layers cannot be read from the file; pass --layers L");
    if (max_h0_death % 2 != 0 || max_h0_death < max_death)
      throw InputError(input + ": death: the longest H0 bar dies at " + std::to_string(max_h0_death) + " and the latest bar at " +
                       std::to_string(max_death) + ", not both at 2L as an intersection zigzag ends; pass --layers L");
    L = max_h0_death / 2;
  }
  if (L < 2) throw InputError("--layers: expected at least 2, got " + std::to_string(L));
  if (max_death > 2 * L)
    throw InputError(input + ": death: a bar dies at position " + std::to_string(max_death) + ", after 2L = " +
                     std::to_string(2 * L) + " (L = " + std::to_string(L) + ")");
  return L;
}

bool is_hdf5(const std::string& path) {
  const auto dot = path.rfind('.');
  return dot != std::string::npos && (path.substr(dot) == ".h5" || path.substr(dot) == ".hdf5");
}

// The bars of a `lmtopo zigzag` output (layer-summaries/1: /bars/position, L in @num_layers).
std::vector<topology::PositionBar> read_position_bars_h5(const std::string& path, int& layers) {
  const io::H5Input in(path);
  if (!in.has_attribute("/", "lmtopo_schema") || in.string_attribute("/", "lmtopo_schema") != "layer-summaries/1")
    throw InputError(path + ": lmtopo_schema: expected a layer-summaries/1 file (the output of lmtopo zigzag)");
  const auto flat = in.read_i64("/bars/position");
  std::vector<topology::PositionBar> bars;
  for (std::size_t i = 0; i + 2 < flat.size(); i += 3)
    bars.push_back({static_cast<int>(flat[i]), static_cast<int>(flat[i + 1]), static_cast<int>(flat[i + 2])});
  layers = std::stoi(in.string_attribute("/", "num_layers"));
  return bars;
}

int run_summarize(const po::variables_map& vm, const std::vector<std::string>&) {
  if (mpi::rank() != 0) return 0;
  const std::string input = vm["input"].as<std::string>();
  int file_layers = 0;
  const auto bars = is_hdf5(input) ? read_position_bars_h5(input, file_layers) : io::read_position_bars_csv(input);
  const int L = file_layers > 0 && vm["layers"].as<int>() == 0 && vm["num-layers"].as<int>() == 0
                    ? file_layers
                    : number_of_layers(vm, bars, input);
  const int dim = vm["dim"].as<int>();
  const std::string score_name = vm["score"].as<std::string>();
  std::vector<topology::LayerBar> layer_bars;
  try {
    layer_bars = topology::to_layer_bars(bars, L, dim);
  } catch (const std::invalid_argument& e) {
    throw InputError(input + ": " + e.what());
  }
  const auto s = topology::summarize_layers(layer_bars, L, dim);
  std::vector<double> score;
  if (score_name == "avg-similarity") {
    score = s.avg_similarity;
  } else {
    // inter-layer:ALPHA, ALPHA one of the reported exponents.
    const std::string prefix = "inter-layer:";
    std::size_t a = s.alphas.size();
    if (score_name.rfind(prefix, 0) == 0) {
      try {
        const double alpha = std::stod(score_name.substr(prefix.size()));
        for (std::size_t i = 0; i < s.alphas.size(); ++i)
          if (s.alphas[i] == alpha) a = i;
      } catch (const std::exception&) {
      }
    }
    if (a == s.alphas.size())
      throw InputError("--score: expected avg-similarity or inter-layer:<alpha> with alpha in -1, 0, 0.5, 1, 2, got '" +
                       score_name + "'");
    score.assign(s.inter_layer.begin() + static_cast<std::ptrdiff_t>(a * static_cast<std::size_t>(L)),
                 s.inter_layer.begin() + static_cast<std::ptrdiff_t>((a + 1) * static_cast<std::size_t>(L)));
  }
  std::cout << "# " << input << ": H" << dim << ", L = " << L << " layers, " << layer_bars.size()
            << " bars with distinct effective birth and death\n";
  std::cout << "layer  betti  avg_similarity  score\n";
  for (int l = 0; l < L; ++l)
    std::cout << std::setw(5) << l << std::setw(7) << s.betti[static_cast<std::size_t>(l)] << std::setw(16)
              << std::fixed << std::setprecision(6) << s.avg_similarity[static_cast<std::size_t>(l)] << std::setw(11)
              << score[static_cast<std::size_t>(l)] << "\n";
  const auto best = std::max_element(score.begin(), score.end()) - score.begin();
  std::cout << "argmax " << best << "\n";
  for (double thr : {0.9, 0.8})
    std::cout << "candidates@" << std::setprecision(1) << thr << " " << ranges(topology::pruning_candidates(score, thr))
              << "\n";
  return 0;
}

}  // namespace

Command make_summarize_command() {
  Command c;
  c.name = "summarize";
  c.summary = "layer summaries and pruning candidates of an intersection-zigzag barcode (CSV or zigzag output)";
  c.usage = "lmtopo summarize BARS.csv|ZIGZAG.h5 [--layers L] [--dim 1] [--score avg-similarity|inter-layer:ALPHA]";
  c.description =
      "Reads bars in 1-based intersection-zigzag positions (header `dimension,birth,death`, as released with "
      "paper 1), or the bars of a `lmtopo zigzag` output (.h5, layer-summaries/1; L from its num_layers), maps them to effective layers (ceil((position-1)/2), dropping bars with equal effective birth "
      "and death) and prints per layer the Betti number, the v1 average similarity S̄ and the chosen pruning "
      "score, its argmax and the pruning candidates l <= L-2 with score >= thr * max for thr = 0.9 and 0.8.";
  c.add_options = [](po::options_description& d) {
    d.add_options()("input", po::value<std::string>()->required(), "barcode CSV or zigzag output .h5 (positional)")(
        "layers", po::value<int>()->default_value(0),
        "L, the number of point clouds; 0 reads it from the file: the longest H0 bar of an intersection zigzag dies at "
        "2L (refused when the file has no H0 bars)")(
        "num-layers", po::value<int>()->default_value(0), "the same as --layers (older name)")(
        "dim", po::value<int>()->default_value(1), "homology dimension to summarise")(
        "score", po::value<std::string>()->default_value("avg-similarity"),
        "pruning score: avg-similarity (S̄, v1) or inter-layer:ALPHA (Z̄_α, ALPHA one of -1.0 0.0 0.5 1.0 2.0)");
  };
  c.positionals = {{"input", 1}};
  c.run = run_summarize;
  return c;
}

}  // namespace lmtopo::cli
