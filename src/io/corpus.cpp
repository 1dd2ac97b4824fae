#include "io/corpus.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"
#include "core/utf8.hpp"
#include "core/hashing.hpp"
#include "io/gettext_catalog.hpp"
#include "io/h5store.hpp"

namespace fs = std::filesystem;

namespace lmtopo::io {
namespace {

// Returns the number of code points, or -1 for invalid UTF-8.
long long utf8_code_points(const std::string& s) {
  long long count = 0;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) return -1;
    for (std::size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return -1;
    i += len;
    ++count;
  }
  return count;
}

std::string catalog_path(const std::string& root, const std::string& lang, const std::string& domain) {
  return (fs::path(root) / lang / "LC_MESSAGES" / (domain + ".mo")).string();
}

}  // namespace

bool usable_text(const std::string& text, long long min_chars, long long max_chars) {
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return false;
    if (ch == '%' || ch == '{' || ch == '}' || ch == '<' || ch == '>' || ch == '\\' || ch == '`') return false;
  }
  if (text.find(' ') == std::string::npos) return false;
  const long long n = utf8_code_points(text);
  return n >= min_chars && n <= max_chars;
}

int count_catalogs(const std::string& locale_root, const std::vector<std::string>& domains, const std::string& lang) {
  int n = 0;
  for (const auto& d : domains) n += fs::exists(catalog_path(locale_root, lang, d)) ? 1 : 0;
  return n;
}

std::map<MessageKey, std::string> usable_messages(const std::string& locale_root,
                                                  const std::vector<std::string>& domains, const std::string& lang,
                                                  long long min_chars, long long max_chars,
                                                  std::vector<std::string>& notes) {
  std::map<MessageKey, std::string> out;
  if (lang == "en") return out;  // the source language has no catalogs: see select_aligned
  for (const auto& domain : domains) {
    const std::string path = catalog_path(locale_root, lang, domain);
    if (!fs::exists(path)) continue;
    const Catalog cat = read_mo(path);
    if (cat.charset != "utf-8") {
      notes.push_back(path + ": charset '" + cat.charset + "' is not UTF-8; skipped");
      continue;
    }
    for (const auto& e : cat.entries) {
      if (e.has_context || e.is_plural || e.msgstr.empty()) continue;
      if (!usable_text(e.msgid, min_chars, max_chars) || !usable_text(e.msgstr, min_chars, max_chars)) continue;
      out[{domain, e.msgid}] = e.msgstr;
    }
  }
  return out;
}

std::vector<MessageKey> select_aligned(const std::vector<std::vector<MessageKey>>& usable_per_language,
                                       long long seed, long long count, long long min_chars, long long max_chars) {
  std::vector<MessageKey> common;
  bool first = true;
  for (auto keys : usable_per_language) {
    std::sort(keys.begin(), keys.end());
    if (first) {
      common = keys;
      first = false;
      continue;
    }
    std::vector<MessageKey> next;
    std::set_intersection(common.begin(), common.end(), keys.begin(), keys.end(), std::back_inserter(next));
    common.swap(next);
  }
  // One key per msgid: sorted by (domain, msgid), so the first seen is the alphabetically first domain.
  std::map<std::string, MessageKey> by_msgid;
  for (const auto& k : common)
    if (usable_text(k.second, min_chars, max_chars)) {
      auto it = by_msgid.find(k.second);
      if (it == by_msgid.end() || k.first < it->second.first) by_msgid[k.second] = k;
    }
  std::vector<std::pair<std::string, MessageKey>> ranked;
  for (const auto& [msgid, key] : by_msgid)
    ranked.push_back({core::sha256_hex(std::to_string(seed) + ":" + key.first + ":" + key.second), key});
  std::sort(ranked.begin(), ranked.end());
  if (static_cast<long long>(ranked.size()) < count)
    throw InputError("data.prompts: expected at most " + std::to_string(ranked.size()) +
                     " (the aligned messages available for these languages and domains), got " + std::to_string(count));
  std::vector<MessageKey> out;
  for (long long i = 0; i < count; ++i) out.push_back(ranked[static_cast<std::size_t>(i)].second);
  return out;
}

std::string gettext_record_id(const MessageKey& key, const std::string& lang) {
  return key.first + ":" + core::sha256_hex(key.second).substr(0, 12) + ":" + lang;
}

std::vector<CorpusRecord> read_jsonl_corpus(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open the JSONL corpus");
  std::vector<CorpusRecord> out;
  std::string line;
  long long line_no = 0;
  std::set<std::string> ids;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    if (const auto bad = core::first_invalid_utf8(line); bad != std::string::npos)
      throw InputError(where + "the line is not valid UTF-8 (byte " + std::to_string(bad) + " of the line)");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {  // parse_error, or out_of_range for a number overflow
      throw InputError(where + "expected one JSON object per line");
    }
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
      throw InputError(where + "text: expected a string field 'text'");
    CorpusRecord r;
    r.text = j["text"].get<std::string>();
    if (utf8_code_points(r.text) < 0) throw InputError(where + "text: expected valid UTF-8");
    if (j.contains("lang") && !j["lang"].is_string()) throw InputError(where + "lang: expected a string");
    if (j.contains("group") && !j["group"].is_number_integer()) throw InputError(where + "group: expected an integer");
    if (j.contains("id") && !j["id"].is_string() && !j["id"].is_number_integer())
      throw InputError(where + "id: expected a string or an integer");
    r.lang = j.contains("lang") ? j["lang"].get<std::string>() : "und";
    r.group = j.contains("group") ? j["group"].get<long long>() : line_no - 1;
    r.id = j.contains("id") ? (j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump()) : std::to_string(line_no - 1);
    if (!ids.insert(r.id).second) throw InputError(where + "id: duplicate id '" + r.id + "'");
    r.domain = "jsonl";
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<CorpusRecord> read_corpus_records(const std::string& path) {
  if (path.size() < 3 || path.compare(path.size() - 3, 3, ".h5") != 0) return read_jsonl_corpus(path);
  H5Input in(path);
  const auto text = in.read_strings("/corpus/text"), lang = in.read_strings("/corpus/lang"), id = in.read_strings("/corpus/id");
  const auto domain = in.read_strings("/corpus/domain");
  const auto group = in.read_i64("/corpus/group");
  std::vector<CorpusRecord> out(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) out[i] = {id[i], lang[i], text[i], domain[i], group[i]};
  return out;
}

}  // namespace lmtopo::io
