#include "topology/intersection_zigzag.hpp"

#include <algorithm>
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

ZigzagStream intersection_zigzag(const std::vector<std::vector<Simplex>>& layers) {
  ZigzagStream z;
  const int L = static_cast<int>(layers.size());
  z.num_layers = L;
  if (L == 0) return z;
  // Every (simplex, layer) occurrence sorted by simplex, then layer: each run of equal simplices is
  // one distinct simplex with the layers it is in. A sort of pointers instead of a tree of vectors
  // (about a third of the memory and time at 10^6 simplices).
  struct Occurrence {
    const Simplex* simplex;
    int layer;
  };
  std::vector<Occurrence> occurrences;
  std::size_t total = 0;
  for (const auto& layer : layers) total += layer.size();
  occurrences.reserve(total);
  for (int l = 0; l < L; ++l)
    for (const auto& s : layers[static_cast<std::size_t>(l)]) occurrences.push_back({&s, l});
  std::sort(occurrences.begin(), occurrences.end(), [](const Occurrence& a, const Occurrence& b) {
    const int c = compare_simplices(*a.simplex, *b.simplex);
    return c != 0 ? c < 0 : a.layer < b.layer;
  });

  const int last = 2 * L - 1;
  // (time, deletion?0:1, dimension key, simplex order, insert, simplex)
  struct Event {
    int time;
    int phase;     // 0 = deletion, 1 = insertion
    int dim_key;   // deletions: -dim (highest first); insertions: dim
    std::size_t order;
    const Simplex* simplex;
  };
  std::vector<Event> events;
  std::vector<char> p(static_cast<std::size_t>(L));
  std::size_t order = 0;
  for (std::size_t first = 0; first < occurrences.size(); ++order) {
    const Simplex& s = *occurrences[first].simplex;
    std::fill(p.begin(), p.end(), 0);
    std::size_t next = first;
    for (; next < occurrences.size() && compare_simplices(*occurrences[next].simplex, s) == 0; ++next)
      p[static_cast<std::size_t>(occurrences[next].layer)] = 1;
    first = next;
    auto present_at = [&](int t) {  // t = 1..2L-1
      if (t % 2 == 1) return p[static_cast<std::size_t>((t - 1) / 2)] != 0;
      const int l = t / 2 - 1;
      return p[static_cast<std::size_t>(l)] && p[static_cast<std::size_t>(l + 1)];
    };
    const int dim = static_cast<int>(s.size()) - 1;
    for (int t = 1; t <= last; ++t) {
      if (!present_at(t) || (t > 1 && present_at(t - 1))) continue;
      int b = t;
      while (b + 1 <= last && present_at(b + 1)) ++b;
      events.push_back({t, 1, dim, order, &s});
      events.push_back({b + 1, 0, -dim, order, &s});
    }
  }
  std::vector<Occurrence>().swap(occurrences);
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return std::tie(a.time, a.phase, a.dim_key, a.order) < std::tie(b.time, b.phase, b.dim_key, b.order);
  });
  std::size_t vertices = 0;
  for (const auto& e : events) vertices += e.simplex->size();
  z.ops.reserve(events.size(), vertices);
  z.time.reserve(events.size());
  for (const auto& e : events) {
    z.ops.push_back(e.phase == 1, e.simplex->data(), e.simplex->data() + e.simplex->size());
    z.time.push_back(e.time);
  }
  return z;
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
