// TopoLM's cortical sheets (science.md §5): the units of a layer placed on a side x side grid
// (side = ceil(sqrt(units))), unit u in cell permutation(seed)[u] — a seeded random placement, frozen
// with the checkpoint. Cells are numbered row-major; a grid larger than the layer leaves cells empty.
#pragma once
#include <cstdint>
#include <vector>

namespace lmtopo::spatial {

struct Sheet {
  int side = 0;
  std::vector<int> cell;  // per unit: its cell, row * side + column

  int units() const { return static_cast<int>(cell.size()); }
  int row(int unit) const { return cell[static_cast<std::size_t>(unit)] / side; }
  int column(int unit) const { return cell[static_cast<std::size_t>(unit)] % side; }
};

// The grid's side for `units` units: ceil(sqrt(units)).
int sheet_side(int units);
Sheet seeded_sheet(int units, std::uint64_t seed);

// Queen contiguity among the units: for each unit, the units in the 8 cells around its own (empty
// cells have no unit), increasing.
std::vector<std::vector<int>> queen_neighbours(const Sheet& sheet);

// Euclidean distance between two units' cells.
double grid_distance(const Sheet& sheet, int a, int b);

}  // namespace lmtopo::spatial
