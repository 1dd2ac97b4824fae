#include "io/unit_positions.hpp"

#include <cstring>
#include <filesystem>

#include "core/error.hpp"
#include "io/safetensors.hpp"

namespace fs = std::filesystem;

namespace lmtopo::io {

void write_unit_positions(const std::string& dir, const std::map<std::string, SheetPositions>& sheets) {
  std::vector<TensorToWrite> tensors;
  std::vector<std::int32_t> sides;
  sides.reserve(sheets.size());  // stable addresses for the tensors' data
  std::string names;
  for (const auto& [hook, p] : sheets) {
    sides.push_back(p.side);
    tensors.push_back({hook, TensorDType::i32, {static_cast<std::int64_t>(p.blocks), static_cast<std::int64_t>(p.units)}, p.cells.data()});
    tensors.push_back({hook + ".side", TensorDType::i32, {1}, &sides.back()});
    names += (names.empty() ? "" : ",") + hook;
  }
  write_safetensors((fs::path(dir) / kUnitPositionsFile).string(), tensors, {{"lmtopo", "unit-positions/1"}, {"sheets", names}});
}

namespace {

const TensorView& i32_tensor(const SafetensorsFile& f, const std::string& path, const std::string& name, std::size_t rank) {
  const auto it = f.tensors().find(name);
  if (it == f.tensors().end()) throw InputError(path + ": tensor " + name + ": missing");
  if (it->second.dtype != TensorDType::i32 || it->second.shape.size() != rank)
    throw InputError(path + ": tensor " + name + ": expected I32 of rank " + std::to_string(rank));
  return it->second;
}

std::vector<int> int_values(const TensorView& t) {
  std::vector<int> out(static_cast<std::size_t>(t.numel()));
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::int32_t v;
    std::memcpy(&v, static_cast<const unsigned char*>(t.data) + 4 * i, 4);
    out[i] = v;
  }
  return out;
}

}  // namespace

std::map<std::string, SheetPositions> read_unit_positions(const std::string& dir) {
  const std::string path = (fs::path(dir) / kUnitPositionsFile).string();
  std::map<std::string, SheetPositions> out;
  if (!fs::exists(path)) return out;
  const SafetensorsFile f(path);
  for (const auto& [name, view] : f.tensors()) {
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".side") == 0) continue;
    const auto& cells = i32_tensor(f, path, name, 2);
    SheetPositions p;
    p.side = int_values(i32_tensor(f, path, name + ".side", 1)).at(0);
    p.blocks = static_cast<std::size_t>(cells.shape[0]);
    p.units = static_cast<std::size_t>(cells.shape[1]);
    p.cells = int_values(cells);
    if (p.side < 1 || static_cast<std::size_t>(p.side) * static_cast<std::size_t>(p.side) < p.units)
      throw InputError(path + ": tensor " + name + ".side: a " + std::to_string(p.side) + "x" + std::to_string(p.side) + " grid cannot hold " +
                       std::to_string(p.units) + " units");
    for (int c : p.cells)
      if (c < 0 || c >= p.side * p.side) throw InputError(path + ": tensor " + name + ": cell " + std::to_string(c) + " is off the grid");
    out[name] = std::move(p);
  }
  return out;
}

}  // namespace lmtopo::io
