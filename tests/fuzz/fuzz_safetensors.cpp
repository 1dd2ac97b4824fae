// safetensors header and byte ranges.
#include "fuzz_common.hpp"
#include "io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = fuzz::write_input("model.safetensors", data, size);
  return fuzz::expect_parse_or_input_error([&] {
    lmtopo::io::SafetensorsFile file(path);
    for (const auto& [name, view] : file.tensors()) (void)view.numel();
  });
}
