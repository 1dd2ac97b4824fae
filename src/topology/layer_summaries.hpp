// Layer summaries of an intersection-zigzag barcode (science.md section 1): effective persistence
// image, Betti curves, PHSim, persistence similarity, inter-layer persistence and pruning scores.
// Plain arrays in and out; row-major matrices.
#pragma once
#include <string>
#include <vector>

namespace lmtopo::topology {

// A bar in 1-based positions of the intersection zigzag K_0 ⊇ K_0∩K_1 ⊆ K_1 ... (2L-1 positions);
// death = 2L means alive to the end.
struct PositionBar {
  int dim = 0;
  int birth = 0;
  int death = 0;
};

// Effective layer of a 1-based position: ceil(s/2) with s = position - 1 (an intersection counts as
// the next layer).
inline int effective_layer(int position) { return position / 2; }

// A bar in effective layers: born at layer `birth`, alive up to layer death-1; death = L means alive
// at the last layer.
struct LayerBar {
  int dim = 0;
  int birth = 0;
  int death = 0;
};

// Converts position bars to layer bars of dimension `dim`, dropping those whose effective birth and
// death coincide. Throws std::invalid_argument for positions outside 1..2L.
std::vector<LayerBar> to_layer_bars(const std::vector<PositionBar>& bars, int num_layers, int dim);

// The exponents of the inter-layer persistence average Z̄_α reported by default.
const std::vector<double>& default_alphas();

struct LayerSummaries {
  int num_layers = 0;                 // L: point clouds (layers) of the zigzag
  int dim = 0;                        // homology dimension
  std::vector<long> image;            // (L+1)x(L+1), image[d*(L+1)+b]: bars with birth b, death d
  std::vector<long> betti;            // L: bars alive at layer l
  std::vector<long> phsim;            // LxL: bars alive on every layer between l1 and l2
  std::vector<double> similarity;     // LxL: S(l1,l2) = PHSim(l1,l2)/β(l1), 0 where β(l1) = 0
  std::vector<double> avg_similarity; // L: S̄(l) = (1/L) Σ_l' PHSim(l,l')/β(l') (terms with β = 0 are 0)
  std::vector<double> alphas;         // exponents of inter_layer
  std::vector<double> inter_layer;    // |alphas| x L: Z̄_α(l)
  std::vector<double> births_by_birth;  // L: bars born at l / all bars (paper's formula)
  std::vector<double> births_by_death;  // L+1: bars dying at l / all bars (notebook's reading)
};

LayerSummaries summarize_layers(const std::vector<LayerBar>& bars, int num_layers, int dim,
                                const std::vector<double>& alphas = default_alphas());

// Pruning candidates: layers l <= L-2 whose score is >= threshold * max(score over all layers).
std::vector<int> pruning_candidates(const std::vector<double>& score, double threshold);

// Increasing layers as runs, "20-27" or "3-5<separator>9" ("" when empty).
std::string layer_ranges(const std::vector<int>& layers, const std::string& separator);

}  // namespace lmtopo::topology
