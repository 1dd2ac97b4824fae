// Published zigzag barcodes in the CSV layout of paper 1's release: header `dimension,birth,death`,
// one bar a line, 1-based positions of the intersection zigzag (death = 2L: alive to the end).
#pragma once
#include <string>
#include <vector>

#include "topology/layer_summaries.hpp"

namespace lmtopo::io {

std::vector<topology::PositionBar> read_position_bars_csv(const std::string& path);

}  // namespace lmtopo::io
