// tokenizer.json, then encoding a fixed multilingual text with whatever loaded.
#include "fuzz_common.hpp"
#include "model/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = fuzz::write_input("tokenizer.json", data, size);
  return fuzz::expect_parse_or_input_error([&] {
    const auto tok = lmtopo::model::Tokenizer::load(path);
    const auto ids = tok->encode("Hello, world! Grüße — привет 你好 <|endoftext|> 123");
    (void)tok->decode(ids);
  });
}
