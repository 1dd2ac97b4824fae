#include "io/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/error.hpp"
#include "io/ggml_quant.hpp"

namespace fs = std::filesystem;

namespace lmtopo::io {

std::size_t dtype_size(TensorDType t) { return t == TensorDType::f32 || t == TensorDType::i32 ? 4 : 2; }
std::string dtype_label(TensorDType t) {
  switch (t) {
    case TensorDType::f32: return "F32";
    case TensorDType::f16: return "F16";
    case TensorDType::bf16: return "BF16";
    case TensorDType::i32: return "I32";
  }
  return "F32";
}

std::int64_t TensorView::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::vector<float> tensor_as_float(const TensorView& t) {
  const auto n = static_cast<std::size_t>(t.numel());
  std::vector<float> out(n);
  const auto* bytes = static_cast<const unsigned char*>(t.data);
  auto u16 = [&](std::size_t i) { return static_cast<std::uint16_t>(bytes[2 * i] | (bytes[2 * i + 1] << 8)); };
  if (t.dtype == TensorDType::f32) std::memcpy(out.data(), t.data, n * sizeof(float));  // little-endian, as the format
  if (t.dtype == TensorDType::f16)
    for (std::size_t i = 0; i < n; ++i) out[i] = half_to_float(u16(i));
  if (t.dtype == TensorDType::bf16)
    for (std::size_t i = 0; i < n; ++i) out[i] = bfloat16_to_float(u16(i));
  if (t.dtype == TensorDType::i32)
    for (std::size_t i = 0; i < n; ++i) {
      std::int32_t v;
      std::memcpy(&v, bytes + 4 * i, 4);
      out[i] = static_cast<float>(v);
    }
  return out;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path), file_(path, "safetensors file") {
  if (file_.size() < 8) throw InputError(path + ": truncated safetensors file (no header length)");
  const std::size_t size = file_.size();
  const auto* bytes = file_.data();
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > size - 8) throw InputError(path + ": corrupt safetensors header length " + std::to_string(header_len));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(bytes + 8), header_len));
  } catch (const nlohmann::json::exception&) {  // parse_error, or out_of_range for a number overflow
    throw InputError(path + ": corrupt safetensors header (not JSON)");
  }
  if (!header.is_object()) throw InputError(path + ": corrupt safetensors header (expected an object)");
  const std::size_t base = 8 + header_len, data_size = size - base;
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string where = path + ": tensor " + it.key() + ": ";
    const auto& t = it.value();
    if (!t.is_object() || !t.contains("dtype") || !t.contains("shape") || !t.contains("data_offsets"))
      throw InputError(where + "expected dtype, shape and data_offsets");
    TensorView v;
    v.name = it.key();
    v.file = path;
    const std::string dt = t["dtype"].is_string() ? t["dtype"].get<std::string>() : "";
    if (dt == "F32") v.dtype = TensorDType::f32;
    else if (dt == "F16") v.dtype = TensorDType::f16;
    else if (dt == "BF16") v.dtype = TensorDType::bf16;
    else if (dt == "I32") v.dtype = TensorDType::i32;
    else throw InputError(where + "unsupported dtype '" + dt + "' (expected F32, F16, BF16 or I32)");
    std::uint64_t elements = 1;  // checked for overflow before numel() multiplies in int64
    for (const auto& d : t["shape"]) {
      if (!d.is_number_unsigned() || d.get<std::uint64_t>() > (1ULL << 40)) throw InputError(where + "invalid shape");
      const auto n = d.get<std::uint64_t>();
      if (n > 0 && elements > (1ULL << 62) / n) throw InputError(where + "shape too large");
      elements *= n;
      v.shape.push_back(static_cast<std::int64_t>(n));
    }
    const auto& off = t["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw InputError(where + "invalid data_offsets");
    const auto b = off[0].get<std::size_t>(), e = off[1].get<std::size_t>();
    if (b > e || e > data_size) throw InputError(where + "data_offsets outside the file (truncated?)");
    v.bytes = e - b;
    if (static_cast<std::size_t>(v.numel()) * dtype_size(v.dtype) != v.bytes)
      throw InputError(where + "shape and data_offsets disagree");
    v.data = bytes + base + b;
    ranges.push_back({b, e});
    tensors_[v.name] = v;
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) throw InputError(path + ": corrupt safetensors file (tensors overlap)");
}

Checkpoint::Checkpoint(const std::string& dir) : dir_(dir) {
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single = fs::path(dir) / "model.safetensors";
  if (fs::exists(index)) {
    nlohmann::json j;
    try {
      std::ifstream in(index);
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception&) {  // parse_error, or out_of_range for a number overflow
      throw InputError(index.string() + ": corrupt index (not JSON)");
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      throw InputError(index.string() + ": expected a weight_map object");
    std::map<std::string, SafetensorsFile*> by_file;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      const std::string shard = it.value().get<std::string>();
      if (!by_file.count(shard)) {
        const fs::path p = fs::path(dir) / shard;
        if (!fs::exists(p)) throw InputError(index.string() + ": shard " + shard + " listed for " + it.key() + " is missing");
        files_.push_back(std::make_unique<SafetensorsFile>(p.string()));
        by_file[shard] = files_.back().get();
      }
      const auto& ts = by_file[shard]->tensors();
      auto t = ts.find(it.key());
      if (t == ts.end()) throw InputError(index.string() + ": tensor " + it.key() + " is not in shard " + shard);
      index_[it.key()] = &t->second;
    }
  } else if (fs::exists(single)) {
    files_.push_back(std::make_unique<SafetensorsFile>(single.string()));
    for (const auto& [name, v] : files_.back()->tensors()) index_[name] = &v;
  } else {
    throw InputError(dir + ": no model.safetensors or model.safetensors.index.json");
  }
}

const TensorView& Checkpoint::tensor(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end())
    throw InputError(dir_ + ": missing tensor " + name + " (needed by the architecture and the sizes in config.json)");
  return *it->second;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& kv : index_) out.push_back(kv.first);
  return out;
}

}  // namespace lmtopo::io

namespace lmtopo::io {

void write_safetensors_streamed(const std::string& path, const std::vector<TensorToWrite>& tensors,
                                const std::map<std::string, std::string>& metadata,
                                const std::function<void(std::size_t, std::ostream&)>& write_data) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  for (const auto& [k, v] : metadata) header["__metadata__"][k] = v;
  std::size_t offset = 0;
  for (const auto& t : tensors) {
    std::size_t bytes = dtype_size(t.dtype);
    for (auto d : t.shape) bytes *= static_cast<std::size_t>(d);
    header[t.name] = {{"dtype", dtype_label(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the tensor data 8-byte aligned
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw RuntimeFailure(tmp + ": cannot write");
    std::uint64_t len = text.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((len >> (8 * i)) & 0xff));
    out << text;
    const auto data_start = out.tellp();
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      write_data(i, out);
      const auto end = header[tensors[i].name]["data_offsets"][1].get<std::streamoff>();
      if (out && out.tellp() - data_start != end)
        throw std::logic_error("write_safetensors_streamed: wrong byte count for " + tensors[i].name);
    }
    out.flush();
    if (!out) throw RuntimeFailure(tmp + ": write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw RuntimeFailure(path + ": cannot rename from " + tmp);
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  write_safetensors_streamed(path, tensors, metadata, [&](std::size_t i, std::ostream& out) {
    std::size_t bytes = dtype_size(tensors[i].dtype);
    for (auto d : tensors[i].shape) bytes *= static_cast<std::size_t>(d);
    out.write(static_cast<const char*>(tensors[i].data), static_cast<std::streamsize>(bytes));
  });
}

}  // namespace lmtopo::io
