// Test tool: src/spatial's statistics on a JSON request from stdin, as JSON on stdout, for the
// cross-checks against PySAL (esda, libpysal) and scipy in tests/python/test_spatial.py.
//   {"units": U, "seed": S, "values": [...U], "permutations": P}            -> sheet, neighbours, Moran's I
//   {"a": [[...U], ...], "b": [[...U], ...], "alpha": A, "units": U, "seed": S} -> Welch t, BH q, clusters
//   {"responses": [[...U], ...], "units": U, "seed": S, "max_distance": D}  -> correlation by distance
#include <iostream>
#include <nlohmann/json.hpp>

#include "spatial/sheet.hpp"
#include "spatial/statistics.hpp"

using nlohmann::json;
using namespace lmtopo::spatial;

namespace {

std::vector<double> flat(const json& rows, std::size_t& n) {
  std::vector<double> out;
  n = rows.size();
  for (const auto& r : rows)
    for (const auto& v : r) out.push_back(v.get<double>());
  return out;
}

}  // namespace

int main() {
  const json in = json::parse(std::cin);
  const Sheet sheet = seeded_sheet(in["units"].get<int>(), in["seed"].get<std::uint64_t>());
  const auto neighbours = queen_neighbours(sheet);
  json out = {{"side", sheet.side}, {"cell", sheet.cell}, {"neighbours", neighbours}};
  if (in.contains("values")) {
    const auto m = morans_i(in["values"].get<std::vector<double>>(), neighbours, in["permutations"].get<int>(), in["seed"].get<std::uint64_t>());
    out["moran"] = {{"i", m.i}, {"expected", m.expected}, {"variance", m.variance}, {"z", m.z}, {"p_norm", m.p_norm}, {"p_sim", m.p_sim}};
  }
  if (in.contains("a")) {
    std::size_t na = 0, nb = 0;
    const auto a = flat(in["a"], na), b = flat(in["b"], nb);
    const auto w = welch_t(a, na, b, nb, static_cast<std::size_t>(sheet.units()));
    const auto q = bh_adjust(w.p);
    out["welch"] = {{"t", w.t}, {"df", w.df}, {"p", w.p}, {"q", q}};
    out["clusters"] = significant_clusters(w.t, q, in["alpha"].get<double>(), neighbours);
  }
  if (in.contains("responses")) {
    std::size_t n = 0;
    const auto r = flat(in["responses"], n);
    out["by_distance"] = correlation_by_distance(r, n, sheet, in["max_distance"].get<int>());
  }
  std::cout << out.dump() << "\n";
  return 0;
}
