// The intersection zigzag of per-layer complexes (science.md section 1):
// K_0 ⊇ K_0∩K_1 ⊆ K_1 ⊇ … ⊆ K_{L-1}, 2L-1 positions (1-based; odd = layer, even = intersection),
// as a simplex-wise operation stream that ends empty, and the map from op intervals to positions.
#pragma once
#include <vector>

#include "topology/layer_summaries.hpp"
#include "topology/zigzag.hpp"

namespace lmtopo::topology {

struct ZigzagStream {
  int num_layers = 0;
  ZigzagOpList ops;
  std::vector<int> time;  // position of each op: insertion at the run's first position a,
                          // deletion at b+1 (2L when the run reaches the last position)
};

// `layers[l]` lists the simplices of K_l (closed under faces). Within one time, deletions come first
// (highest dimension first), then insertions (lowest dimension first); ties keep the order of the
// simplices sorted by dimension and then lexicographically.
ZigzagStream intersection_zigzag(const std::vector<std::vector<Simplex>>& layers);

// The part of that stream made by layers first_layer.. (`own`, consecutive) of `num_layers`: the
// insertions of times 2l+1 and deletions of times 2l+2 for each own layer l, which need the layer
// before the first (`before`; null for layer 0) and the one after the last (`after`; null past the
// last layer). The streams of consecutive blocks of layers, concatenated, are the whole stream
// (what lets each rank make its own operations).
ZigzagStream intersection_zigzag_segment(const std::vector<Simplex>* before, const std::vector<const std::vector<Simplex>*>& own,
                                         const std::vector<Simplex>* after, int first_layer, int num_layers);

// Maps op-interval bars to positions: birth = time(op b), death = time(op d+1); bars whose birth and
// death positions are equal are dropped. `kept`, when given, receives the op bars that were kept, in
// the same order as the result.
std::vector<PositionBar> bars_in_positions(const std::vector<ZigzagBar>& bars, const ZigzagStream& stream,
                                           std::vector<ZigzagBar>* kept = nullptr);

}  // namespace lmtopo::topology
