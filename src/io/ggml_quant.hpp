// ggml tensor types (ggml.h's enum ggml_type, by number as stored in GGUF files): block sizes of the
// common ones, so that a file's layout can be checked, and decoding of the ones lmtopo converts.
// Block formats (ggml-common.h): Q4_0 = f16 scale d + 32 4-bit q, value (q - 8) d; Q4_1 = f16 d,
// f16 min m + 32 4-bit q, value q d + m; Q8_0 = f16 d + 32 int8 q, value q d. In a 4-bit block, byte j
// holds value j in its low nibble and value j + 16 in its high nibble.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace lmtopo::io {

enum class GgmlType : std::uint32_t { f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q8_0 = 8, bf16 = 30 };

struct GgmlTypeTraits {
  const char* name;      // "Q4_1"
  int block_values;      // values per block
  int block_bytes;       // bytes per block
  bool decodable;        // lmtopo can dequantize it
};

// nullptr for a type number lmtopo does not know.
const GgmlTypeTraits* ggml_type_traits(std::uint32_t type);
// "Q4_1", or "type N" for an unknown number.
std::string ggml_type_name(std::uint32_t type);
// The decodable types, for messages: "F32, F16, BF16, Q4_0, Q4_1, Q8_0".
std::string ggml_decodable_types();
// Decodes `n` values (a multiple of the block size) of a decodable type into float32.
void ggml_dequantize(std::uint32_t type, const void* data, std::int64_t n, float* out);

float half_to_float(std::uint16_t bits);
float bfloat16_to_float(std::uint16_t bits);

}  // namespace lmtopo::io
