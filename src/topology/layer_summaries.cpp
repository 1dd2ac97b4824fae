#include "topology/layer_summaries.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace lmtopo::topology {

std::vector<LayerBar> to_layer_bars(const std::vector<PositionBar>& bars, int num_layers, int dim) {
  std::vector<LayerBar> out;
  const int last = 2 * num_layers;
  for (const auto& b : bars) {
    if (b.dim != dim) continue;
    if (b.birth < 1 || b.birth > last - 1 || b.death < 1 || b.death > last || b.death < b.birth)
      throw std::invalid_argument("bar [" + std::to_string(b.birth) + ", " + std::to_string(b.death) +
                                  "] is outside the positions 1.." + std::to_string(last) + " of " +
                                  std::to_string(num_layers) + " layers");
    LayerBar lb{b.dim, effective_layer(b.birth), effective_layer(b.death)};
    if (lb.birth != lb.death) out.push_back(lb);
  }
  return out;
}

const std::vector<double>& default_alphas() {
  static const std::vector<double> alphas = {-1.0, 0.0, 0.5, 1.0, 2.0};
  return alphas;
}

LayerSummaries summarize_layers(const std::vector<LayerBar>& bars, int num_layers, int dim,
                                const std::vector<double>& alphas) {
  if (num_layers < 1) throw std::invalid_argument("summaries need at least one layer");
  const int L = num_layers;
  const auto Lu = static_cast<std::size_t>(L);
  LayerSummaries s;
  s.num_layers = L;
  s.dim = dim;
  s.alphas = alphas;
  s.image.assign((Lu + 1) * (Lu + 1), 0);
  for (const auto& b : bars) {
    if (b.birth < 0 || b.death > L || b.birth >= b.death)
      throw std::invalid_argument("layer bar out of range");
    s.image[static_cast<std::size_t>(b.death) * (Lu + 1) + static_cast<std::size_t>(b.birth)] += 1;
  }
  auto img = [&](int d, int b) { return s.image[static_cast<std::size_t>(d) * (Lu + 1) + static_cast<std::size_t>(b)]; };

  // PHSim(l1,l2) = Σ_{b <= min, d > max} image[d][b]; β(l) = PHSim(l,l).
  s.phsim.assign(Lu * Lu, 0);
  for (int l1 = 0; l1 < L; ++l1)
    for (int l2 = l1; l2 < L; ++l2) {
      long count = 0;
      for (int d = l2 + 1; d <= L; ++d)
        for (int b = 0; b <= l1; ++b) count += img(d, b);
      s.phsim[static_cast<std::size_t>(l1) * Lu + static_cast<std::size_t>(l2)] = count;
      s.phsim[static_cast<std::size_t>(l2) * Lu + static_cast<std::size_t>(l1)] = count;
    }
  auto phsim = [&](int a, int b) { return static_cast<double>(s.phsim[static_cast<std::size_t>(a) * Lu + static_cast<std::size_t>(b)]); };
  s.betti.resize(Lu);
  for (int l = 0; l < L; ++l) s.betti[static_cast<std::size_t>(l)] = s.phsim[static_cast<std::size_t>(l) * Lu + static_cast<std::size_t>(l)];
  auto beta = [&](int l) { return static_cast<double>(s.betti[static_cast<std::size_t>(l)]); };

  s.similarity.assign(Lu * Lu, 0.0);
  s.avg_similarity.assign(Lu, 0.0);
  for (int l1 = 0; l1 < L; ++l1) {
    double sum = 0;
    for (int l2 = 0; l2 < L; ++l2) {
      if (beta(l1) > 0) s.similarity[static_cast<std::size_t>(l1) * Lu + static_cast<std::size_t>(l2)] = phsim(l1, l2) / beta(l1);
      if (beta(l2) > 0) sum += phsim(l1, l2) / beta(l2);
    }
    s.avg_similarity[static_cast<std::size_t>(l1)] = sum / L;
  }

  // Z̄_α(l) = Σ_i w_i Z(l,i) / Σ_i w_i with w_i = |l-i|^α; the diagonal weight is 1e-10 for α < 0,
  // 1 for α = 0 and 0 for α > 0. Z(l,i) = S(l,i).
  s.inter_layer.assign(alphas.size() * Lu, 0.0);
  for (std::size_t a = 0; a < alphas.size(); ++a) {
    const double alpha = alphas[a];
    for (int l = 0; l < L; ++l) {
      double num = 0, den = 0;
      for (int i = 0; i < L; ++i) {
        double w;
        if (i == l) w = alpha < 0 ? 1e-10 : (alpha == 0 ? 1.0 : 0.0);
        else w = std::pow(std::abs(l - i), alpha);
        num += w * s.similarity[static_cast<std::size_t>(l) * Lu + static_cast<std::size_t>(i)];
        den += w;
      }
      s.inter_layer[a * Lu + static_cast<std::size_t>(l)] = den > 0 ? num / den : 0.0;
    }
  }

  s.births_by_birth.assign(Lu, 0.0);
  s.births_by_death.assign(Lu + 1, 0.0);
  if (!bars.empty()) {
    for (const auto& b : bars) {
      s.births_by_birth[static_cast<std::size_t>(b.birth)] += 1;
      s.births_by_death[static_cast<std::size_t>(b.death)] += 1;
    }
    const double total = static_cast<double>(bars.size());
    for (auto& v : s.births_by_birth) v /= total;
    for (auto& v : s.births_by_death) v /= total;
  }
  return s;
}

std::vector<int> pruning_candidates(const std::vector<double>& score, double threshold) {
  std::vector<int> out;
  if (score.empty()) return out;
  const double best = *std::max_element(score.begin(), score.end());
  if (!(best > 0)) return out;
  for (std::size_t l = 0; l + 1 < score.size(); ++l)
    if (score[l] >= threshold * best) out.push_back(static_cast<int>(l));
  return out;
}

std::string layer_ranges(const std::vector<int>& layers, const std::string& separator) {
  std::string out;
  for (std::size_t i = 0; i < layers.size();) {
    std::size_t j = i;
    while (j + 1 < layers.size() && layers[j + 1] == layers[j] + 1) ++j;
    out += (out.empty() ? "" : separator) + std::to_string(layers[i]) + (j > i ? "-" + std::to_string(layers[j]) : "");
    i = j + 1;
  }
  return out;
}

}  // namespace lmtopo::topology
