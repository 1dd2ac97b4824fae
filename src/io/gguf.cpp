#include "io/gguf.hpp"

#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "core/utf8.hpp"
#include "io/ggml_quant.hpp"

namespace lmtopo::io {
namespace {

// GGUF value types (gguf.h's enum gguf_type).
enum ValueType : std::uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9,
  u64 = 10, i64 = 11, f64 = 12
};

constexpr std::uint64_t kMaxCount = 1u << 24;  // tensors or keys: far above any real model
constexpr int kMaxDims = 4;                     // GGML_MAX_DIMS

// A bounds-checked little-endian reader over the mapped file; every failure names the file and what
// was being read.
class Cursor {
 public:
  Cursor(const unsigned char* data, std::size_t size, const std::string& path) : p_(data), size_(size), path_(path) {}

  template <typename T>
  T scalar(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  std::string text(const std::string& what) {
    const auto n = scalar<std::uint64_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(p_ + at_), static_cast<std::size_t>(n));
    at_ += static_cast<std::size_t>(n);
    if (core::first_invalid_utf8(s) != std::string::npos) fail(what + ": string is not valid UTF-8");
    return s;
  }
  // A count whose elements take at least `min_bytes` each: refused if the rest of the file cannot hold them.
  std::uint64_t count(const std::string& what, std::size_t min_bytes) {
    const auto n = scalar<std::uint64_t>(what);
    if (n > (size_ - at_) / std::max<std::size_t>(min_bytes, 1)) fail(what + ": count " + std::to_string(n) + " exceeds the file");
    return n;
  }
  std::size_t offset() const { return at_; }
  [[noreturn]] void fail(const std::string& msg) const { throw InputError(path_ + ": " + msg); }

 private:
  void need(std::uint64_t n, const std::string& what) const {
    if (n > size_ - at_) fail(what + ": truncated GGUF file");
  }
  const unsigned char* p_;
  std::size_t size_, at_ = 0;
  const std::string& path_;
};

nlohmann::json read_value(Cursor& c, std::uint32_t type, const std::string& key, int depth) {
  switch (type) {
    case u8: return c.scalar<std::uint8_t>(key);
    case i8: return c.scalar<std::int8_t>(key);
    case u16: return c.scalar<std::uint16_t>(key);
    case i16: return c.scalar<std::int16_t>(key);
    case u32: return c.scalar<std::uint32_t>(key);
    case i32: return c.scalar<std::int32_t>(key);
    case f32: return c.scalar<float>(key);
    case u64: return c.scalar<std::uint64_t>(key);
    case i64: return c.scalar<std::int64_t>(key);
    case f64: return c.scalar<double>(key);
    case boolean: {
      const auto b = c.scalar<std::uint8_t>(key);
      if (b > 1) c.fail(key + ": boolean value " + std::to_string(b));
      return b == 1;
    }
    case string: return c.text(key);
    case array: {
      if (depth > 2) c.fail(key + ": arrays nested too deeply");
      const auto elem = c.scalar<std::uint32_t>(key + " (array type)");
      const auto n = c.count(key + " (array length)", 1);
      nlohmann::json out = nlohmann::json::array();
      for (std::uint64_t i = 0; i < n; ++i) out.push_back(read_value(c, elem, key, depth + 1));
      return out;
    }
    default: c.fail(key + ": unknown value type " + std::to_string(type));
  }
}

}  // namespace

std::int64_t GgufTensor::numel() const {
  std::int64_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

GgufFile::GgufFile(const std::string& path) : path_(path), file_(path, "GGUF file") {
  if (file_.size() == 0) throw InputError(path + ": empty GGUF file");
  const auto* bytes = file_.data();
  const std::size_t size = file_.size();
  Cursor c(bytes, size, path_);
  if (size < 4 || std::memcmp(bytes, "GGUF", 4) != 0) c.fail("not a GGUF file (magic)");
  c.scalar<std::uint32_t>("magic");
  version_ = c.scalar<std::uint32_t>("version");
  if (version_ != 2 && version_ != 3) c.fail("GGUF version " + std::to_string(version_) + " is not supported (2, 3)");
  const auto n_tensors = c.scalar<std::uint64_t>("tensor_count");
  const auto n_keys = c.scalar<std::uint64_t>("kv_count");
  if (n_tensors > kMaxCount || n_keys > kMaxCount) c.fail("implausible tensor_count or kv_count");
  for (std::uint64_t i = 0; i < n_keys; ++i) {
    const std::string key = c.text("metadata key " + std::to_string(i));
    if (metadata_.contains(key)) c.fail(key + ": duplicate metadata key");
    const auto type = c.scalar<std::uint32_t>(key + " (type)");
    metadata_[key] = read_value(c, type, key, 0);
  }
  std::uint64_t alignment = 32;
  if (metadata_.contains("general.alignment")) {
    const auto& a = metadata_["general.alignment"];
    if (!a.is_number_unsigned() || a.get<std::uint64_t>() == 0 || (a.get<std::uint64_t>() & (a.get<std::uint64_t>() - 1)))
      c.fail("general.alignment: expected a power of two");
    alignment = a.get<std::uint64_t>();
  }
  std::vector<std::uint64_t> offsets;
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    t.name = c.text("tensor info " + std::to_string(i));
    const std::string where = "tensor " + t.name;
    if (by_name_.count(t.name)) c.fail(where + ": duplicate tensor name");
    const auto n_dims = c.scalar<std::uint32_t>(where + " (n_dims)");
    if (n_dims == 0 || n_dims > kMaxDims) c.fail(where + ": n_dims " + std::to_string(n_dims) + " (expected 1 to 4)");
    std::uint64_t elements = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const auto n = c.scalar<std::uint64_t>(where + " (dims)");
      if (n == 0 || n > (1ULL << 40) || elements > (1ULL << 50) / n) c.fail(where + ": invalid or too large dims");
      elements *= n;
      t.dims.push_back(static_cast<std::int64_t>(n));
    }
    t.type = c.scalar<std::uint32_t>(where + " (type)");
    const auto* traits = ggml_type_traits(t.type);
    if (!traits) c.fail(where + ": unknown ggml type " + std::to_string(t.type));
    if (t.dims[0] % traits->block_values != 0)
      c.fail(where + ": first dimension " + std::to_string(t.dims[0]) + " is not a multiple of the " + traits->name + " block");
    t.bytes = static_cast<std::size_t>(elements / static_cast<std::uint64_t>(traits->block_values)) *
              static_cast<std::size_t>(traits->block_bytes);
    offsets.push_back(c.scalar<std::uint64_t>(where + " (offset)"));
    if (offsets.back() % alignment != 0) c.fail(where + ": offset not aligned to " + std::to_string(alignment));
    by_name_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  const std::size_t data_start = (c.offset() + alignment - 1) / alignment * alignment;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    auto& t = tensors_[i];
    if (data_start > size || offsets[i] > size - data_start || t.bytes > size - data_start - offsets[i])
      c.fail("tensor " + t.name + ": data outside the file (truncated?)");
    t.data = bytes + data_start + offsets[i];
    ranges.push_back({offsets[i], offsets[i] + t.bytes});
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) c.fail("corrupt GGUF file (tensor data overlap)");
}

const GgufTensor* GgufFile::find(const std::string& name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace lmtopo::io
