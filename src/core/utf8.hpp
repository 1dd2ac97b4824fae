// UTF-8 well-formedness (Unicode 15, table 3-7: no overlongs, surrogates or code points past
// U+10FFFF), shared by the tokenizer and the readers of user text.
#pragma once
#include <cstddef>
#include <string>

namespace lmtopo::core {

// Length of the UTF-8 sequence starting at byte i of s; `valid` false for an ill-formed one, whose
// returned length is that of its maximal well-formed prefix (at least 1), as U+FFFD substitution counts.
std::size_t utf8_step(const std::string& s, std::size_t i, bool& valid);

// Byte offset of the first byte of `text` that is not part of well-formed UTF-8, or npos.
std::size_t first_invalid_utf8(const std::string& text);

}  // namespace lmtopo::core
