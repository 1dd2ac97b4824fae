// The stimulus groups of the spatial study's contrast (TopoLM's localizers contrast sentences with
// their words in random order): a language's prompts as written, or as scrambled word lists.
#pragma once
#include <cstdint>
#include <string>

namespace lmtopo::spatial {

struct ContrastGroup {
  std::string language;
  bool scrambled = false;
};

// "en" or "en:scrambled"; std::invalid_argument for anything else.
ContrastGroup parse_contrast_group(const std::string& text);

// The text's whitespace-delimited words in a seeded random order, joined by single spaces (a text of
// fewer than two words comes back as its words joined alike).
std::string scrambled_words(const std::string& text, std::uint64_t seed);

// The text's whitespace-delimited words.
std::size_t word_count(const std::string& text);

}  // namespace lmtopo::spatial
