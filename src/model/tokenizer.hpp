// Hugging Face tokenizer.json, byte-level BPE (GPT-2, GPT-NeoX/Pythia, Llama-3 style): added/special
// tokens matched first, optional NFC normalizer, ByteLevel pre-tokenizer (GPT-2 split regex) or a
// Split(Regex) + ByteLevel sequence, BPE merges by rank. No libtorch here.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lmtopo::model {

class Tokenizer {
 public:
  // Reads DIR/tokenizer.json (or the file itself). Unsupported components -> InputError naming the
  // field and listing what is supported.
  static std::unique_ptr<Tokenizer> load(const std::string& path);
  virtual ~Tokenizer() = default;
  // Token ids of `text`; no BOS/EOS is added (the post-processor is not applied).
  virtual std::vector<std::int64_t> encode(const std::string& text) const = 0;
  // Id of a token string (e.g. "<|endoftext|>"), or -1.
  virtual std::int64_t token_id(const std::string& token) const = 0;
  virtual std::int64_t vocab_size() const = 0;
};

}  // namespace lmtopo::model
