#include "spatial/sheet.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "core/permutation.hpp"

namespace lmtopo::spatial {

int sheet_side(int units) {
  int side = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(units))));
  while (side * side < units) ++side;  // sqrt's rounding
  while (side > 1 && (side - 1) * (side - 1) >= units) --side;
  return side;
}

Sheet seeded_sheet(int units, std::uint64_t seed) {
  if (units < 1) throw std::invalid_argument("seeded_sheet: a sheet needs at least one unit");
  Sheet s;
  s.side = sheet_side(units);
  const auto p = core::permutation(static_cast<std::size_t>(s.side) * static_cast<std::size_t>(s.side), seed);
  for (int u = 0; u < units; ++u) s.cell.push_back(static_cast<int>(p[static_cast<std::size_t>(u)]));
  return s;
}

std::uint64_t sheet_seed(std::uint64_t seed, std::size_t sheet, std::size_t block) { return seed * 1000003ull + sheet * 1009ull + block; }

std::vector<std::vector<int>> queen_neighbours(const Sheet& s) {
  std::vector<int> unit_at(static_cast<std::size_t>(s.side) * static_cast<std::size_t>(s.side), -1);
  for (int u = 0; u < s.units(); ++u) unit_at[static_cast<std::size_t>(s.cell[static_cast<std::size_t>(u)])] = u;
  std::vector<std::vector<int>> out(static_cast<std::size_t>(s.units()));
  for (int u = 0; u < s.units(); ++u) {
    for (int dr = -1; dr <= 1; ++dr)
      for (int dc = -1; dc <= 1; ++dc) {
        const int r = s.row(u) + dr, c = s.column(u) + dc;
        if ((dr == 0 && dc == 0) || r < 0 || c < 0 || r >= s.side || c >= s.side) continue;
        if (const int v = unit_at[static_cast<std::size_t>(r * s.side + c)]; v >= 0) out[static_cast<std::size_t>(u)].push_back(v);
      }
    std::sort(out[static_cast<std::size_t>(u)].begin(), out[static_cast<std::size_t>(u)].end());
  }
  return out;
}

double grid_distance(const Sheet& s, int a, int b) {
  return std::hypot(static_cast<double>(s.row(a) - s.row(b)), static_cast<double>(s.column(a) - s.column(b)));
}

Sheet sheet_from_cells(int side, std::vector<int> cells) {
  if (side < 1) throw std::invalid_argument("sheet_from_cells: side must be positive");
  std::vector<char> taken(static_cast<std::size_t>(side) * static_cast<std::size_t>(side), 0);
  for (int c : cells) {
    if (c < 0 || static_cast<std::size_t>(c) >= taken.size())
      throw std::invalid_argument("cell " + std::to_string(c) + " is outside the " + std::to_string(side) + "x" + std::to_string(side) + " grid");
    if (taken[static_cast<std::size_t>(c)]++) throw std::invalid_argument("two units share cell " + std::to_string(c));
  }
  Sheet s;
  s.side = side;
  s.cell = std::move(cells);
  return s;
}

std::vector<int> units_in_window(const Sheet& s, int top, int left, int size) {
  std::vector<int> out;
  for (int u = 0; u < s.units(); ++u)
    if (s.row(u) >= top && s.row(u) < top + size && s.column(u) >= left && s.column(u) < left + size) out.push_back(u);
  return out;
}

}  // namespace lmtopo::spatial
