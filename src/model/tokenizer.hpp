// Hugging Face tokenizer.json with a BPE model, in the two forms decoder-only LMs ship:
//  - byte-level BPE (GPT-2, GPT-NeoX/Pythia, BLOOM, Llama 3): ByteLevel pre-tokenizer (GPT-2 split
//    regex) or Split(Regex) + ByteLevel, optional NFC;
//  - SentencePiece-style BPE (Llama 2, Mistral): Metaspace pre-tokenizer, or the legacy
//    Prepend("▁") + Replace(" ", "▁") normalizers, character symbols with byte fallback (<0xNN>)
//    and an unknown token.
// Added/special tokens are matched first on the raw text. Decoding follows the file's decoder
// (ByteLevel, Metaspace, or a Sequence of Replace/ByteFallback/Fuse/Strip). No libtorch here.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/utf8.hpp"

namespace lmtopo::model {

class Tokenizer {
 public:
  // Reads DIR/tokenizer.json (or the file itself). Unsupported components -> InputError naming the
  // field and listing what is supported.
  static std::unique_ptr<Tokenizer> load(const std::string& path);
  virtual ~Tokenizer() = default;
  // Token ids of `text` (UTF-8; invalid UTF-8 -> InputError with the byte offset); no BOS/EOS is
  // added (the post-processor is not applied).
  virtual std::vector<std::int64_t> encode(const std::string& text) const = 0;
  // `ids` with what the file's post-processor adds to a single sequence, as transformers does by
  // default (add_special_tokens=True): TemplateProcessing's `single` template, RobertaProcessing and
  // BertProcessing (cls ... sep), ByteLevel (nothing), a Sequence of these, or none. Another
  // post-processor -> InputError naming it.
  virtual std::vector<std::int64_t> add_special_tokens(const std::vector<std::int64_t>& ids) const = 0;
  // Text of `ids` through the file's decoder; special added tokens dropped when asked. Ids outside
  // the vocabulary -> InputError.
  virtual std::string decode(const std::vector<std::int64_t>& ids, bool skip_special_tokens = false) const = 0;
  // Id of a token string (e.g. "<|endoftext|>"), or -1.
  virtual std::int64_t token_id(const std::string& token) const = 0;
  virtual std::int64_t vocab_size() const = 0;
};

using core::first_invalid_utf8;

}  // namespace lmtopo::model
