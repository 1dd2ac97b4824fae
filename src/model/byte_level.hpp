// Byte-level BPE building blocks shared by the tokenizer and the tokenizer trainer: GPT-2's
// byte -> printable-character table and PCRE2-backed pre-tokenizer splits. No libtorch here.
#pragma once
#include <string>
#include <vector>

namespace lmtopo::model {

// GPT-2's pre-tokenizer split (tokenizers' ByteLevel with use_regex).
extern const char* const kGpt2SplitPattern;

// The UTF-8 symbol of each byte value (GPT-2's reversible table).
const std::vector<std::string>& byte_symbols();

// A Unicode regex (PCRE2, UTF + UCP) that splits text into its matches and, isolated, the gaps.
class SplitRegex {
 public:
  SplitRegex(const std::string& pattern, const std::string& where);  // InputError if it does not compile
  ~SplitRegex();
  SplitRegex(const SplitRegex&) = delete;
  SplitRegex& operator=(const SplitRegex&) = delete;
  void split(const std::string& text, std::vector<std::string>& out) const;

 private:
  void* code_ = nullptr;  // pcre2_code*
  void* data_ = nullptr;  // pcre2_match_data*
};

}  // namespace lmtopo::model
