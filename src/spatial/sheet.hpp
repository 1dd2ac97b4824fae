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

// The placement seed of sheet `sheet` (an index into a list of hooks) at block `block`: every sheet of
// every block is placed independently, as TopoLM freezes one random placement per sheet.
std::uint64_t sheet_seed(std::uint64_t seed, std::size_t sheet, std::size_t block);

// Queen contiguity among the units: for each unit, the units in the 8 cells around its own (empty
// cells have no unit), increasing.
std::vector<std::vector<int>> queen_neighbours(const Sheet& sheet);

// Euclidean distance between two units' cells.
double grid_distance(const Sheet& sheet, int a, int b);

// A sheet from stored cells (a checkpoint's unit positions); std::invalid_argument unless every
// cell is in [0, side^2) and no two units share one.
Sheet sheet_from_cells(int side, std::vector<int> cells);

// The units whose cells lie in the size x size window whose top-left cell is (top, left), by unit
// index; the window is clipped to the grid.
std::vector<int> units_in_window(const Sheet& sheet, int top, int left, int size);

}  // namespace lmtopo::spatial
