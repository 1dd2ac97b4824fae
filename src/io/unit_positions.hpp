// A trained model's unit positions on its cortical sheets (TopoLM, `lmtopo train` with spatial
// training): CHECKPOINT/unit_positions.safetensors, one I32 tensor <hook> [blocks, units] of cells
// (row * side + column) and one I32 tensor <hook>.side [1] per sheet hook, metadata
// {"lmtopo": "unit-positions/1", "sheets": "attn_output,mlp_act"}. The spatial study reads it.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace lmtopo::io {

struct SheetPositions {
  int side = 0;
  std::size_t blocks = 0, units = 0;
  std::vector<int> cells;  // [blocks, units] row-major
};

inline constexpr const char* kUnitPositionsFile = "unit_positions.safetensors";

void write_unit_positions(const std::string& checkpoint_dir, const std::map<std::string, SheetPositions>& sheets);

// The positions in CHECKPOINT/unit_positions.safetensors, or an empty map when the file is absent.
// A corrupt file (wrong dtype or shape, a cell off the grid) -> InputError naming file and tensor.
std::map<std::string, SheetPositions> read_unit_positions(const std::string& checkpoint_dir);

}  // namespace lmtopo::io
