// Prompts / corpus JSONL (design.md contract 6).
#include "fuzz_common.hpp"
#include "io/corpus.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = fuzz::write_input("prompts.jsonl", data, size);
  return fuzz::expect_parse_or_input_error([&] { (void)lmtopo::io::read_jsonl_corpus(path); });
}
