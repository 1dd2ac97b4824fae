#include "io/barcode_csv.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "io/h5store.hpp"

namespace lmtopo::io {

std::vector<topology::PositionBar> read_position_bars_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open the barcode CSV");
  std::string line;
  long line_no = 0;
  std::vector<topology::PositionBar> bars;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line_no == 1) {
      if (line != "dimension,birth,death")
        throw InputError(path + ":1: expected the header 'dimension,birth,death', got '" + line + "'");
      continue;
    }
    std::istringstream fields(line);
    std::string a, b, c, extra;
    if (!std::getline(fields, a, ',') || !std::getline(fields, b, ',') || !std::getline(fields, c, ',') ||
        std::getline(fields, extra, ','))
      throw InputError(path + ":" + std::to_string(line_no) + ": expected three comma-separated integers");
    try {
      std::size_t pa = 0, pb = 0, pc = 0;
      topology::PositionBar bar{std::stoi(a, &pa), std::stoi(b, &pb), std::stoi(c, &pc)};
      if (pa != a.size() || pb != b.size() || pc != c.size()) throw std::invalid_argument("trailing");
      if (bar.dim < 0 || bar.birth < 1 || bar.death < bar.birth)
        throw InputError(path + ":" + std::to_string(line_no) +
                         ": expected dimension >= 0 and 1 <= birth <= death");
      bars.push_back(bar);
    } catch (const InputError&) {
      throw;
    } catch (const std::exception&) {
      throw InputError(path + ":" + std::to_string(line_no) + ": expected three comma-separated integers, got '" +
                       line + "'");
    }
  }
  return bars;
}

namespace {

int number_of_layers(int given, const std::vector<topology::PositionBar>& bars, const std::string& path) {
  int L = given, max_death = 0, max_h0_death = 0;
  for (const auto& b : bars) {
    max_death = std::max(max_death, b.death);
    if (b.dim == 0) max_h0_death = std::max(max_h0_death, b.death);
  }
  if (L == 0) {
    if (max_h0_death == 0)
      throw InputError(path + ": dimension: no H0 bars, so the number of layers cannot be read from the file; pass --layers L");
    if (max_h0_death % 2 != 0 || max_h0_death < max_death)
      throw InputError(path + ": death: the longest H0 bar dies at " + std::to_string(max_h0_death) + " and the latest bar at " +
                       std::to_string(max_death) + ", not both at 2L as an intersection zigzag ends; pass --layers L");
    L = max_h0_death / 2;
  }
  if (L < 2) throw InputError("--layers: expected at least 2, got " + std::to_string(L));
  if (max_death > 2 * L)
    throw InputError(path + ": death: a bar dies at position " + std::to_string(max_death) + ", after 2L = " + std::to_string(2 * L) +
                     " (L = " + std::to_string(L) + ")");
  return L;
}

std::vector<topology::PositionBar> read_position_bars_h5(const std::string& path, int& layers) {
  const H5Input in(path);
  if (!in.has_attribute("/", "lmtopo_schema") || in.string_attribute("/", "lmtopo_schema") != "layer-summaries/1")
    throw InputError(path + ": lmtopo_schema: expected a layer-summaries/1 file (the output of lmtopo zigzag)");
  const auto flat = in.read_i64("/bars/position");
  std::vector<topology::PositionBar> bars;
  for (std::size_t i = 0; i + 2 < flat.size(); i += 3)
    bars.push_back({static_cast<int>(flat[i]), static_cast<int>(flat[i + 1]), static_cast<int>(flat[i + 2])});
  layers = std::stoi(in.string_attribute("/", "num_layers"));
  return bars;
}

}  // namespace

bool is_hdf5_path(const std::string& path) {
  const auto dot = path.rfind('.');
  return dot != std::string::npos && (path.substr(dot) == ".h5" || path.substr(dot) == ".hdf5");
}

BarcodeFile read_barcode_file(const std::string& path, int layers) {
  BarcodeFile f;
  int file_layers = 0;
  f.bars = is_hdf5_path(path) ? read_position_bars_h5(path, file_layers) : read_position_bars_csv(path);
  f.num_layers = number_of_layers(layers > 0 ? layers : file_layers, f.bars, path);
  return f;
}

}  // namespace lmtopo::io
