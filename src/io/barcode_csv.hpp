// Published zigzag barcodes in the CSV layout of paper 1's release: header `dimension,birth,death`,
// one bar a line, 1-based positions of the intersection zigzag (death = 2L: alive to the end); and
// either that or a zigzag output read with its number of layers.
#pragma once
#include <string>
#include <vector>

#include "topology/layer_summaries.hpp"

namespace lmtopo::io {

std::vector<topology::PositionBar> read_position_bars_csv(const std::string& path);

// A barcode with its number of layers L: from a CSV as above, or from a `lmtopo zigzag` output (.h5 or
// .hdf5, layer-summaries/1: /bars/position, L in its num_layers attribute).
struct BarcodeFile {
  std::vector<topology::PositionBar> bars;
  int num_layers = 0;
};

// `layers` > 0 gives L; 0 takes it from a zigzag output, or reads it from a CSV's bars: the last
// layer's complex is not empty (every prompt is a vertex of every layer), so some H0 bar is alive at
// the last position 2L-1 and dies at 2L, and no bar dies later. Without H0 bars nothing in a CSV pins L
// down (a largest death of 2L-2 looks the same as one of 2L), so L must be given. InputError naming
// the file otherwise, and when a bar dies after 2L.
BarcodeFile read_barcode_file(const std::string& path, int layers = 0);

// Whether read_barcode_file takes `path` for a zigzag output (.h5 or .hdf5) rather than a CSV.
bool is_hdf5_path(const std::string& path);

}  // namespace lmtopo::io
