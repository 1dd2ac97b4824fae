#include "model/tokenizer.hpp"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/error.hpp"
#include "model/byte_level.hpp"

namespace lmtopo::model {
namespace {

class BpeTokenizer final : public Tokenizer {
 public:
  BpeTokenizer(const nlohmann::json& j, const std::string& path) : bytes_(byte_symbols()) {
    auto unsupported = [&](const std::string& field, const nlohmann::json& v, const std::string& supported) {
      return InputError(path + ": " + field + ": unsupported " + v.dump() + " (supported: " + supported + ")");
    };
    const auto& model = j.at("model");
    if (model.value("type", "") != "BPE") throw unsupported("model.type", model.value("type", nlohmann::json()), "BPE");
    if (model.contains("byte_fallback") && model["byte_fallback"].is_boolean() && model["byte_fallback"].get<bool>())
      throw unsupported("model.byte_fallback", true, "false (SentencePiece-style BPE is not implemented yet)");
    ignore_merges_ = model.value("ignore_merges", false);
    for (auto it = model.at("vocab").begin(); it != model.at("vocab").end(); ++it) vocab_[it.key()] = it.value().get<std::int64_t>();
    int rank = 0;
    for (const auto& m : model.at("merges")) {
      std::string a, b;
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const auto sp = s.find(' ');
        if (sp == std::string::npos) throw InputError(path + ": model.merges: malformed merge '" + s + "'");
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else {
        a = m.at(0).get<std::string>();
        b = m.at(1).get<std::string>();
      }
      ranks_.emplace(a + '\x01' + b, rank++);
    }
    if (j.contains("added_tokens"))
      for (const auto& t : j["added_tokens"]) {
        added_.push_back({t.at("content").get<std::string>(), t.at("id").get<std::int64_t>()});
        vocab_[added_.back().first] = added_.back().second;
      }
    std::sort(added_.begin(), added_.end(), [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });

    const auto& norm = j.contains("normalizer") ? j["normalizer"] : nlohmann::json();
    if (!norm.is_null()) {
      if (norm.value("type", "") != "NFC") throw unsupported("normalizer", norm.value("type", nlohmann::json()), "null, NFC");
      nfc_ = true;
    }
    const auto& pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : nlohmann::json();
    std::vector<nlohmann::json> steps;
    if (pre.is_object() && pre.value("type", "") == "Sequence") {
      for (const auto& p : pre.at("pretokenizers")) steps.push_back(p);
    } else if (pre.is_object()) {
      steps.push_back(pre);
    }
    bool byte_level = false;
    for (const auto& s : steps) {
      const std::string type = s.value("type", "");
      if (type == "ByteLevel") {
        byte_level = true;
        add_prefix_space_ = s.value("add_prefix_space", false);
        if (s.value("use_regex", true)) regexes_.push_back(std::make_unique<SplitRegex>(kGpt2SplitPattern, path));
      } else if (type == "Split") {
        if (s.value("behavior", "") != "Isolated" || s.value("invert", false))
          throw unsupported("pre_tokenizer.Split.behavior", s.value("behavior", nlohmann::json()), "Isolated, not inverted");
        const auto& pat = s.at("pattern");
        if (!pat.contains("Regex")) throw unsupported("pre_tokenizer.Split.pattern", pat, "{\"Regex\": ...}");
        regexes_.push_back(std::make_unique<SplitRegex>(pat["Regex"].get<std::string>(), path));
      } else {
        throw unsupported("pre_tokenizer.type", type, "ByteLevel, Split(Regex, Isolated), Sequence of those");
      }
    }
    if (!byte_level) throw unsupported("pre_tokenizer", pre, "a ByteLevel pre-tokenizer (byte-level BPE)");
  }

  std::vector<std::int64_t> encode(const std::string& text) const override {
    std::vector<std::int64_t> ids;
    // Added tokens are matched on the raw text, longest first at the leftmost position.
    std::size_t start = 0, pos = 0;
    while (pos <= text.size()) {
      const std::pair<std::string, std::int64_t>* hit = nullptr;
      if (pos < text.size())
        for (const auto& a : added_)
          if (!a.first.empty() && text.compare(pos, a.first.size(), a.first) == 0) {
            hit = &a;
            break;
          }
      if (!hit && pos < text.size()) {
        ++pos;
        continue;
      }
      encode_segment(text.substr(start, pos - start), ids);
      if (!hit) break;
      ids.push_back(hit->second);
      pos += hit->first.size();
      start = pos;
    }
    return ids;
  }

  std::int64_t token_id(const std::string& token) const override {
    auto it = vocab_.find(token);
    return it == vocab_.end() ? -1 : it->second;
  }

  std::int64_t vocab_size() const override {
    std::int64_t m = -1;
    for (const auto& kv : vocab_) m = std::max(m, kv.second);
    return m + 1;
  }

 private:
  void encode_segment(const std::string& raw, std::vector<std::int64_t>& ids) const {
    if (raw.empty()) return;
    std::string text = raw;
    if (nfc_) {
      UErrorCode status = U_ZERO_ERROR;
      const icu::Normalizer2* n = icu::Normalizer2::getNFCInstance(status);
      if (U_FAILURE(status)) throw RuntimeFailure("ICU: no NFC normalizer");
      icu::UnicodeString normalized = n->normalize(icu::UnicodeString::fromUTF8(text), status);
      if (U_FAILURE(status)) throw InputError("text is not valid UTF-8 for NFC normalisation");
      text.clear();
      normalized.toUTF8String(text);
    }
    if (add_prefix_space_ && text[0] != ' ') text = " " + text;
    std::vector<std::string> pieces{text}, next;
    for (const auto& re : regexes_) {
      next.clear();
      for (const auto& p : pieces) re->split(p, next);
      pieces.swap(next);
    }
    for (const auto& p : pieces) bpe_word(p, ids);
  }

  void bpe_word(const std::string& piece, std::vector<std::int64_t>& ids) const {
    auto cached = cache_.find(piece);
    if (cached != cache_.end()) {
      ids.insert(ids.end(), cached->second.begin(), cached->second.end());
      return;
    }
    std::string mapped;
    std::vector<std::string> symbols;
    for (unsigned char c : piece) {
      symbols.push_back(bytes_[c]);
      mapped += bytes_[c];
    }
    std::vector<std::int64_t> out;
    if (ignore_merges_ && vocab_.count(mapped)) {
      out.push_back(vocab_.at(mapped));
    } else {
      while (symbols.size() > 1) {
        int best = std::numeric_limits<int>::max();
        std::size_t at = 0;
        for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
          auto r = ranks_.find(symbols[i] + '\x01' + symbols[i + 1]);
          if (r != ranks_.end() && r->second < best) best = r->second, at = i;
        }
        if (best == std::numeric_limits<int>::max()) break;
        // Merge every non-overlapping occurrence of the best pair, left to right.
        const std::string a = symbols[at], b = symbols[at + 1];
        std::vector<std::string> merged;
        for (std::size_t i = 0; i < symbols.size();) {
          if (i + 1 < symbols.size() && symbols[i] == a && symbols[i + 1] == b) {
            merged.push_back(a + b);
            i += 2;
          } else {
            merged.push_back(symbols[i++]);
          }
        }
        symbols.swap(merged);
      }
      for (const auto& s : symbols) {
        auto it = vocab_.find(s);
        if (it == vocab_.end()) throw InputError("token '" + s + "' produced by the merges is not in the vocabulary");
        out.push_back(it->second);
      }
    }
    ids.insert(ids.end(), out.begin(), out.end());
    if (cache_.size() < 200000) cache_.emplace(piece, std::move(out));
  }

  std::vector<std::string> bytes_;
  std::unordered_map<std::string, std::int64_t> vocab_;
  std::unordered_map<std::string, int> ranks_;
  std::vector<std::pair<std::string, std::int64_t>> added_;
  std::vector<std::unique_ptr<SplitRegex>> regexes_;
  bool nfc_ = false;
  bool add_prefix_space_ = false;
  bool ignore_merges_ = false;
  mutable std::unordered_map<std::string, std::vector<std::int64_t>> cache_;
};

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& path_in) {
  std::string path = path_in;
  if (std::filesystem::is_directory(path)) path = (std::filesystem::path(path) / "tokenizer.json").string();
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open the tokenizer");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error&) {
    throw InputError(path + ": corrupt tokenizer.json (not JSON)");
  }
  try {
    return std::make_unique<BpeTokenizer>(j, path);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": malformed tokenizer.json: " + e.what());
  }
}

}  // namespace lmtopo::model
