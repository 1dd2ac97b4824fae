// GGUF header, metadata values, tensor infos and ranges, and the dequantizers on every decodable
// tensor. Seed: tests/fuzz/seeds/gguf/tiny_llama.gguf, written with gguf-py (one block, Q8_0, Q4_0,
// Q4_1, F16, BF16 and F32 tensors, a byte-level BPE vocabulary).
#include <vector>

#include "fuzz_common.hpp"
#include "io/ggml_quant.hpp"
#include "io/gguf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = fuzz::write_input("model.gguf", data, size);
  return fuzz::expect_parse_or_input_error([&] {
    lmtopo::io::GgufFile file(path);
    std::vector<float> values;
    for (const auto& t : file.tensors()) {
      const auto* traits = lmtopo::io::ggml_type_traits(t.type);
      if (!traits->decodable || t.numel() > (1 << 20)) continue;
      values.resize(static_cast<std::size_t>(t.numel()));
      lmtopo::io::ggml_dequantize(t.type, t.data, t.numel(), values.data());
    }
  });
}
