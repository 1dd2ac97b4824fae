#include "io/ggml_quant.hpp"

#include <cstring>
#include <map>
#include <stdexcept>

namespace lmtopo::io {
namespace {

const std::map<std::uint32_t, GgmlTypeTraits>& traits_table() {
  static const std::map<std::uint32_t, GgmlTypeTraits> table = {
      {0, {"F32", 1, 4, true}},       {1, {"F16", 1, 2, true}},       {2, {"Q4_0", 32, 18, true}},
      {3, {"Q4_1", 32, 20, true}},    {6, {"Q5_0", 32, 22, false}},   {7, {"Q5_1", 32, 24, false}},
      {8, {"Q8_0", 32, 34, true}},    {9, {"Q8_1", 32, 36, false}},   {10, {"Q2_K", 256, 84, false}},
      {11, {"Q3_K", 256, 110, false}}, {12, {"Q4_K", 256, 144, false}}, {13, {"Q5_K", 256, 176, false}},
      {14, {"Q6_K", 256, 210, false}}, {15, {"Q8_K", 256, 292, false}}, {24, {"I8", 1, 1, false}},
      {25, {"I16", 1, 2, false}},     {26, {"I32", 1, 4, false}},     {27, {"I64", 1, 8, false}},
      {28, {"F64", 1, 8, false}},     {30, {"BF16", 1, 2, true}},
  };
  return table;
}

std::uint16_t load_u16(const unsigned char* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }

// 32 values from 16 bytes of nibbles: value j = low nibble of byte j, value j + 16 = high nibble.
template <typename Value>
void decode_nibbles(const unsigned char* qs, Value value, float* out) {
  for (int j = 0; j < 16; ++j) {
    out[j] = value(qs[j] & 0x0F);
    out[j + 16] = value(qs[j] >> 4);
  }
}

}  // namespace

const GgmlTypeTraits* ggml_type_traits(std::uint32_t type) {
  const auto it = traits_table().find(type);
  return it == traits_table().end() ? nullptr : &it->second;
}

std::string ggml_type_name(std::uint32_t type) {
  const auto* t = ggml_type_traits(type);
  return t ? t->name : "type " + std::to_string(type);
}

std::string ggml_decodable_types() {
  std::string names;
  for (const auto& [num, t] : traits_table())
    if (t.decodable) names += (names.empty() ? "" : ", ") + std::string(t.name);
  return names;
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000) << 16;
  std::uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf, nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    exp = 113;
    while (!(mant & 0x400)) mant <<= 1, --exp;
    bits = sign | (exp << 23) | ((mant & 0x3FF) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bfloat16_to_float(std::uint16_t b) {
  const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

void ggml_dequantize(std::uint32_t type, const void* data, std::int64_t n, float* out) {
  const auto* p = static_cast<const unsigned char*>(data);
  const auto* traits = ggml_type_traits(type);
  if (!traits || !traits->decodable || n % traits->block_values != 0)
    throw std::logic_error("ggml_dequantize: " + ggml_type_name(type) + " x " + std::to_string(n));
  const std::int64_t blocks = n / traits->block_values;
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::f32:
      std::memcpy(out, p, static_cast<std::size_t>(n) * 4);
      return;
    case GgmlType::f16:
      for (std::int64_t i = 0; i < n; ++i) out[i] = half_to_float(load_u16(p + 2 * i));
      return;
    case GgmlType::bf16:
      for (std::int64_t i = 0; i < n; ++i) out[i] = bfloat16_to_float(load_u16(p + 2 * i));
      return;
    case GgmlType::q4_0:
      for (std::int64_t b = 0; b < blocks; ++b, p += 18, out += 32) {
        const float d = half_to_float(load_u16(p));
        decode_nibbles(p + 2, [d](int q) { return static_cast<float>(q - 8) * d; }, out);
      }
      return;
    case GgmlType::q4_1:
      for (std::int64_t b = 0; b < blocks; ++b, p += 20, out += 32) {
        const float d = half_to_float(load_u16(p)), m = half_to_float(load_u16(p + 2));
        decode_nibbles(p + 4, [d, m](int q) { return static_cast<float>(q) * d + m; }, out);
      }
      return;
    case GgmlType::q8_0:
      for (std::int64_t b = 0; b < blocks; ++b, p += 34, out += 32) {
        const float d = half_to_float(load_u16(p));
        for (int j = 0; j < 32; ++j) out[j] = static_cast<float>(static_cast<std::int8_t>(p[2 + j])) * d;
      }
      return;
  }
}

}  // namespace lmtopo::io
