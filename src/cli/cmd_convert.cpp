// `lmtopo convert MODEL.gguf -o DIR`: a llama.cpp GGUF file to the Hugging Face folder lmtopo reads.
#include <iostream>

#include "cli/command.hpp"
#include "model/gguf_convert.hpp"
#include "mpi/collective.hpp"

namespace lmtopo::cli {
namespace {

int run_convert(const po::variables_map& vm, const std::vector<std::string>&) {
  if (mpi::rank() != 0) return 0;
  const auto r = model::convert_gguf(vm["gguf"].as<std::string>(), vm["output"].as<std::string>());
  if (r.up_to_date) {
    std::cout << r.out_dir << ": up to date (already converted from this file)\n";
    return 0;
  }
  std::cout << r.out_dir << ": " << r.parameters << " parameters as float32 from";
  for (const auto& [type, n] : r.source_types) std::cout << " " << n << " " << type;
  std::cout << " tensors\n";
  return 0;
}

}  // namespace

Command make_convert_command() {
  Command c;
  c.name = "convert";
  c.summary = "convert a llama.cpp GGUF model to a Hugging Face checkpoint folder";
  c.usage = "lmtopo convert MODEL.gguf -o DIR";
  c.description =
      "Reads a GGUF file (versions 2 and 3) of the llama architecture with a byte-level BPE tokenizer "
      "(tokenizer.ggml.model gpt2; pre-tokenizers gpt-2 and smollm) and writes DIR with model.safetensors "
      "(every tensor dequantized to float32 from F32, F16, BF16, Q4_0, Q4_1 or Q8_0; q/k rows restored from "
      "llama.cpp's rotary order), config.json (tie_word_embeddings true when the file has no output.weight), "
      "tokenizer.json, tokenizer_config.json and lmtopo_convert.json (source path and SHA-256, tensor types, "
      "lmtopo version). A metadata key, tensor or tokenizer setting lmtopo does not implement is refused by "
      "name (exit 2). DIR appears complete or not at all; rerunning on the same file is a no-op, and an "
      "existing DIR from anything else is refused.";
  c.add_options = [](po::options_description& d) {
    d.add_options()("gguf", po::value<std::string>()->required(), "GGUF file (positional)")(
        "output,o", po::value<std::string>()->required(), "checkpoint folder to create");
  };
  c.positionals = {{"gguf", 1}};
  c.run = run_convert;
  return c;
}

}  // namespace lmtopo::cli
