#include "model/byte_level.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cstdint>

#include "core/error.hpp"

namespace lmtopo::model {

const char* const kGpt2SplitPattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {
std::string utf8_of(std::uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}
}  // namespace

const std::vector<std::string>& byte_symbols() {
  static const std::vector<std::string> table = [] {
    std::vector<int> bs, cs;
    for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
    for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
    for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
    cs = bs;
    int n = 0;
    for (int b = 0; b < 256; ++b)
      if (std::find(bs.begin(), bs.end(), b) == bs.end()) {
        bs.push_back(b);
        cs.push_back(256 + n++);
      }
    std::vector<std::string> t(256);
    for (std::size_t i = 0; i < bs.size(); ++i) t[static_cast<std::size_t>(bs[i])] = utf8_of(static_cast<std::uint32_t>(cs[i]));
    return t;
  }();
  return table;
}

SplitRegex::SplitRegex(const std::string& pattern, const std::string& where) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                                   &err, &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw InputError(where + ": cannot compile the pre-tokenizer regex: " + reinterpret_cast<char*>(msg));
  }
  code_ = code;
  data_ = pcre2_match_data_create_from_pattern(code, nullptr);
}

SplitRegex::~SplitRegex() {
  pcre2_match_data_free(static_cast<pcre2_match_data*>(data_));
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

void SplitRegex::split(const std::string& text, std::vector<std::string>& out) const {
  auto* code = static_cast<pcre2_code*>(code_);
  auto* data = static_cast<pcre2_match_data*>(data_);
  std::size_t pos = 0, last = 0;
  while (pos <= text.size()) {
    const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos, 0, data, nullptr);
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data);
    if (ov[0] > last) out.push_back(text.substr(last, ov[0] - last));
    if (ov[1] > ov[0]) out.push_back(text.substr(ov[0], ov[1] - ov[0]));
    last = ov[1];
    pos = ov[1] > ov[0] ? ov[1] : ov[1] + 1;
  }
  if (last < text.size()) out.push_back(text.substr(last));
}

}  // namespace lmtopo::model
