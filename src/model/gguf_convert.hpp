// GGUF (llama.cpp) -> the Hugging Face folder lmtopo and transformers read:
//   model.safetensors   every tensor dequantized to float32, Hugging Face names and layout
//                       (llama.cpp's convert permutes the rows of q/k for its rotary layout: undone);
//   config.json         from the llama.* metadata (tie_word_embeddings: true when there is no output.weight);
//   tokenizer.json      byte-level BPE from tokenizer.ggml.* (vocabulary, merges, special tokens, the
//                       pre-tokenizer named by tokenizer.ggml.pre, BOS/EOS as add_bos/add_eos_token say);
//   tokenizer_config.json, and lmtopo_convert.json (source file, its SHA-256, types, lmtopo version).
// Everything in the file is either converted or refused by name: a metadata key, tensor or tokenizer
// setting lmtopo does not implement is an InputError, never dropped. The folder appears complete or
// not at all (written beside it and renamed).
#pragma once
#include <cstdint>
#include <map>
#include <string>

namespace lmtopo::model {

struct ConvertResult {
  std::string out_dir;
  bool up_to_date = false;                    // the folder already held this file's conversion
  std::int64_t parameters = 0;                // values written
  std::map<std::string, int> source_types;    // ggml type name -> tensors
};

ConvertResult convert_gguf(const std::string& gguf_path, const std::string& out_dir);

}  // namespace lmtopo::model
