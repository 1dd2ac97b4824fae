#include "topology/intersection_zigzag.hpp"

#include <algorithm>
#include <iterator>
#include <stdexcept>
#include <tuple>

namespace lmtopo::topology {

namespace {

// Dimension first, then the vertices lexicographically: the order of simplices within one time.
int compare_simplices(const Simplex& a, const Simplex& b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

}  // namespace

namespace {

using SortedLayer = std::vector<const Simplex*>;

SortedLayer sorted_layer(const std::vector<Simplex>* layer) {
  SortedLayer out;
  if (!layer) return out;
  out.reserve(layer->size());
  for (const auto& s : *layer) out.push_back(&s);
  std::sort(out.begin(), out.end(), [](const Simplex* a, const Simplex* b) { return compare_simplices(*a, *b) < 0; });
  return out;
}

// The simplices of `a` not in `b` (both sorted by dimension, then lexicographically), in that order.
SortedLayer difference(const SortedLayer& a, const SortedLayer& b) {
  SortedLayer out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out),
                      [](const Simplex* x, const Simplex* y) { return compare_simplices(*x, *y) < 0; });
  return out;
}

void append(ZigzagStream& z, const SortedLayer& simplices, bool insert, int time) {
  for (const Simplex* s : simplices) {
    z.ops.push_back(insert, s->data(), s->data() + s->size());
    z.time.push_back(time);
  }
}

}  // namespace

ZigzagStream intersection_zigzag_segment(const std::vector<Simplex>* before, const std::vector<const std::vector<Simplex>*>& own,
                                         const std::vector<Simplex>* after, int first_layer, int num_layers) {
  ZigzagStream z;
  z.num_layers = num_layers;
  SortedLayer previous = sorted_layer(before), current = own.empty() ? SortedLayer{} : sorted_layer(own.front());
  for (std::size_t i = 0; i < own.size(); ++i) {
    const int l = first_layer + static_cast<int>(i);
    SortedLayer next = sorted_layer(i + 1 < own.size() ? own[i + 1] : after);
    // Time 2l+1: K_l \ K_{l-1} inserted, lowest dimension first.
    append(z, difference(current, previous), true, 2 * l + 1);
    // Time 2l+2: K_l \ K_{l+1} deleted, highest dimension first (lexicographic within one).
    SortedLayer gone = difference(current, next);
    std::stable_sort(gone.begin(), gone.end(), [](const Simplex* a, const Simplex* b) { return a->size() > b->size(); });
    append(z, gone, false, 2 * l + 2);
    previous = std::move(current);
    current = std::move(next);
  }
  return z;
}

ZigzagStream intersection_zigzag(const std::vector<std::vector<Simplex>>& layers) {
  std::vector<const std::vector<Simplex>*> all;
  for (const auto& layer : layers) all.push_back(&layer);
  return intersection_zigzag_segment(nullptr, all, nullptr, 0, static_cast<int>(layers.size()));
}

std::vector<PositionBar> bars_in_positions(const std::vector<ZigzagBar>& bars, const ZigzagStream& stream,
                                           std::vector<ZigzagBar>* kept) {
  if (kept) kept->clear();
  std::vector<PositionBar> out;
  const auto m = static_cast<Index>(stream.ops.size());
  for (const auto& b : bars) {
    if (b.birth < 1 || b.birth > m || b.death < b.birth || b.death > m) throw std::logic_error("bar outside the op range");
    const int birth = stream.time[static_cast<std::size_t>(b.birth - 1)];
    const int death = b.death < m ? stream.time[static_cast<std::size_t>(b.death)] : 2 * stream.num_layers;
    if (birth == death) continue;
    out.push_back({b.dim, birth, death});
    if (kept) kept->push_back(b);
  }
  return out;
}

}  // namespace lmtopo::topology
