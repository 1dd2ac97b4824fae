#include "spatial/stimuli.hpp"

#include <sstream>
#include <stdexcept>
#include <vector>

#include "core/permutation.hpp"

namespace lmtopo::spatial {

ContrastGroup parse_contrast_group(const std::string& text) {
  const auto colon = text.find(':');
  ContrastGroup g{text.substr(0, colon), colon != std::string::npos};
  if (g.language.empty()) throw std::invalid_argument("'" + text + "' names no language");
  if (g.scrambled && text.substr(colon + 1) != "scrambled")
    throw std::invalid_argument("'" + text + "': expected a language or LANGUAGE:scrambled");
  return g;
}

std::string scrambled_words(const std::string& text, std::uint64_t seed) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  const auto order = core::permutation(words.size(), seed);
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) out += (i ? " " : "") + words[order[i]];
  return out;
}

std::size_t word_count(const std::string& text) {
  std::istringstream in(text);
  std::size_t n = 0;
  for (std::string w; in >> w;) ++n;
  return n;
}

}  // namespace lmtopo::spatial
