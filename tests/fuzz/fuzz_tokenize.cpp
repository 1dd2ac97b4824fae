// Tokenization of arbitrary bytes with a valid tokenizer (LMTOPO_FUZZ_TOKENIZER, the seed tokenizer.json):
// invalid UTF-8 is an InputError naming the byte, anything else encodes and decodes.
#include <cstdlib>

#include "fuzz_common.hpp"
#include "model/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto tok = [] {
    const char* path = std::getenv("LMTOPO_FUZZ_TOKENIZER");
    if (!path) {
      std::fprintf(stderr, "set LMTOPO_FUZZ_TOKENIZER to a tokenizer.json\n");
      std::exit(2);
    }
    return lmtopo::model::Tokenizer::load(path);
  }();
  return fuzz::expect_parse_or_input_error([&] {
    const auto ids = tok->encode(std::string(reinterpret_cast<const char*>(data), size));
    (void)tok->decode(ids);
  });
}
