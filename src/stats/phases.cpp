#include "stats/phases.hpp"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <stdexcept>

#include "stats/depth_curves.hpp"
#include "topology/layer_summaries.hpp"

namespace lmtopo::stats {

Phase phase_of(const std::vector<double>& score, const std::vector<double>& thresholds) {
  if (score.size() < 2) throw std::invalid_argument("a phase needs a curve of at least 2 layers");
  Phase p;
  p.argmax_layer = static_cast<int>(std::max_element(score.begin(), score.end()) - score.begin());
  p.argmax_depth = layer_depth(static_cast<std::size_t>(p.argmax_layer), score.size());
  for (double thr : thresholds) {
    Band b;
    b.threshold = thr;
    b.layers = topology::pruning_candidates(score, thr);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    b.first_depth = b.layers.empty() ? nan : layer_depth(static_cast<std::size_t>(b.layers.front()), score.size());
    b.last_depth = b.layers.empty() ? nan : layer_depth(static_cast<std::size_t>(b.layers.back()), score.size());
    p.bands.push_back(std::move(b));
  }
  return p;
}

std::size_t settled_from(const std::vector<int>& argmax_layers, int tolerance) {
  if (argmax_layers.empty()) throw std::invalid_argument("settled_from: no checkpoints");
  std::size_t i = argmax_layers.size() - 1;
  while (i > 0 && std::abs(argmax_layers[i - 1] - argmax_layers.back()) <= tolerance) --i;
  return i;
}

}  // namespace lmtopo::stats
