// A whole file memory-mapped read-only, unmapped on destruction (the safetensors and GGUF readers).
#pragma once
#include <cstddef>
#include <string>

namespace lmtopo::io {

class MappedFile {
 public:
  // `what` names the kind of file in errors ("safetensors file"): InputError when it cannot be opened
  // or stat'ed, RuntimeFailure when mmap fails. An empty file has size 0 and no data.
  MappedFile(const std::string& path, const std::string& what);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const unsigned char* data() const { return static_cast<const unsigned char*>(map_); }
  std::size_t size() const { return size_; }

 private:
  void* map_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace lmtopo::io
