// `lmtopo summarize`: layer summaries and pruning candidates from a published or computed barcode.
#include <algorithm>
#include <iomanip>
#include <iostream>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "io/barcode_csv.hpp"
#include "mpi/collective.hpp"
#include "topology/layer_summaries.hpp"

namespace lmtopo::cli {
namespace {

std::string ranges(const std::vector<int>& layers) {
  const std::string out = topology::layer_ranges(layers, ",");
  return out.empty() ? "none" : out;
}

int run_summarize(const po::variables_map& vm, const std::vector<std::string>&) {
  if (mpi::rank() != 0) return 0;
  const std::string input = vm["input"].as<std::string>();
  const int given = vm["layers"].as<int>() ? vm["layers"].as<int>() : vm["num-layers"].as<int>();
  const io::BarcodeFile file = io::read_barcode_file(input, given);
  const auto& bars = file.bars;
  const int L = file.num_layers;
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
