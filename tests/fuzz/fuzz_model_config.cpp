// Hugging Face config.json, for every architecture.
#include "fuzz_common.hpp"
#include "model/model_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::write_input("config.json", data, size);
  return fuzz::expect_parse_or_input_error([&] {
    const auto c = lmtopo::model::read_model_config(fuzz::scratch().string());
    for (const auto& hook : lmtopo::model::portable_hooks()) (void)lmtopo::model::hook_point_names(c, hook);
  });
}
