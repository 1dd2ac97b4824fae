// GGUF files (llama.cpp's format, versions 2 and 3), memory-mapped and validated: magic, version,
// every metadata key and value inside the file, tensor infos (name, dims, ggml type, offset) with their
// byte ranges inside the data section and aligned. Corrupt input -> InputError naming the file and the
// key or tensor. Metadata values are read into JSON (integers, floats, booleans, strings, arrays).
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/mapped_file.hpp"

namespace lmtopo::io {

struct GgufTensor {
  std::string name;
  std::uint32_t type = 0;           // the ggml type number as stored (may be one lmtopo cannot decode)
  std::vector<std::int64_t> dims;   // ggml order: dims[0] is the contiguous (fastest) dimension
  const void* data = nullptr;       // into the memory map; valid while the GgufFile lives
  std::size_t bytes = 0;
  std::int64_t numel() const;
};

class GgufFile {
 public:
  explicit GgufFile(const std::string& path);
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  std::uint32_t version() const { return version_; }
  const nlohmann::json& metadata() const { return metadata_; }  // key -> value
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find(const std::string& name) const;       // nullptr when absent

 private:
  std::string path_;
  MappedFile file_;
  std::uint32_t version_ = 0;
  nlohmann::json metadata_ = nlohmann::json::object();
  std::vector<GgufTensor> tensors_;
  std::map<std::string, std::size_t> by_name_;
};

}  // namespace lmtopo::io
