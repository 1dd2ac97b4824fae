// safetensors checkpoints (single file or sharded with model.safetensors.index.json), memory-mapped
// and validated: JSON header, dtype (F32, F16, BF16; I32 for index tensors), shapes matching byte ranges, ranges inside the
// file and not overlapping. Corrupt input -> InputError naming the file (and tensor).
#pragma once
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.hpp"

namespace lmtopo::io {

enum class TensorDType { f32, f16, bf16, i32 };  // i32: index tensors (unit positions), not weights
std::size_t dtype_size(TensorDType t);
std::string dtype_label(TensorDType t);  // "F32", "F16", "BF16", "I32"

struct TensorView {
  std::string name;
  std::string file;
  TensorDType dtype = TensorDType::f32;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;  // into the memory map; valid while the SafetensorsFile lives
  std::size_t bytes = 0;
  std::int64_t numel() const;
};

// A tensor's values as float32 (F16 and BF16 widened exactly).
std::vector<float> tensor_as_float(const TensorView& t);

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }

 private:
  std::string path_;
  MappedFile file_;
  std::map<std::string, TensorView> tensors_;
};

// All tensors of a checkpoint folder: model.safetensors, or the shards listed in
// model.safetensors.index.json (every listed tensor must be found in its shard).
class Checkpoint {
 public:
  explicit Checkpoint(const std::string& dir);
  const TensorView& tensor(const std::string& name) const;  // InputError naming the folder if missing
  bool has(const std::string& name) const { return index_.count(name) > 0; }
  std::vector<std::string> names() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> index_;
};

struct TensorToWrite {
  std::string name;
  TensorDType dtype = TensorDType::f32;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;
};

// Writes a safetensors file (through a temporary name and a rename), header metadata {"format": "pt"}
// plus `metadata` (string values).
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// The same, one tensor at a time for checkpoints larger than memory: the tensors' `data` is not read;
// `write_data(i, out)` must write exactly tensor i's bytes to `out`, and is called in order.
void write_safetensors_streamed(const std::string& path, const std::vector<TensorToWrite>& tensors,
                                const std::map<std::string, std::string>& metadata,
                                const std::function<void(std::size_t, std::ostream&)>& write_data);

}  // namespace lmtopo::io
