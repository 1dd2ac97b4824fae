// Where a model's S̄ curve peaks and where it stays high (paper 1's phases; issue 15,
// docs/aggregate.md): per curve the argmax layer and its relative depth, and per threshold the pruning
// candidates (layers l <= L-2 with S̄(l) >= thr * max, as topology::pruning_candidates) with the relative
// depths of the first and last; over a model's checkpoints, the first after which the argmax stays
// within a tolerance of the final checkpoint's. Plain arrays.
#pragma once
#include <cstddef>
#include <vector>

namespace lmtopo::stats {

struct Band {
  double threshold = 0;
  std::vector<int> layers;                  // the candidates, increasing
  double first_depth = 0, last_depth = 0;   // NaN when there are none
};

struct Phase {
  int argmax_layer = 0;  // the first layer of the maximum
  double argmax_depth = 0;
  std::vector<Band> bands;
};

Phase phase_of(const std::vector<double>& score, const std::vector<double>& thresholds);

// `argmax_layers` in checkpoint (training) order: the first index i such that every later entry, i
// included, is within `tolerance` layers of the last one.
std::size_t settled_from(const std::vector<int>& argmax_layers, int tolerance);

}  // namespace lmtopo::stats
