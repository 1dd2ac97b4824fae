#include "model/tokenizer.hpp"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>

#include "core/error.hpp"
#include "core/utf8.hpp"
#include "model/byte_level.hpp"

namespace lmtopo::model {
namespace {

const std::string kMetaspace = "\xE2\x96\x81";  // U+2581, SentencePiece's word boundary

using core::utf8_step;

std::string lossy_utf8(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    bool valid;
    const std::size_t n = utf8_step(s, i, valid);
    out += valid ? s.substr(i, n) : "\xEF\xBF\xBD";
    i += n;
  }
  return out;
}

std::vector<std::string> utf8_chars(const std::string& s) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.size();) {
    bool valid;
    const std::size_t n = utf8_step(s, i, valid);
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
}

std::string nfc(const std::string& text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) throw RuntimeFailure("ICU: no NFC normalizer");
  icu::UnicodeString normalized = n->normalize(icu::UnicodeString::fromUTF8(text), status);
  if (U_FAILURE(status)) throw InputError("text is not valid UTF-8 for NFC normalisation");
  std::string out;
  normalized.toUTF8String(out);
  return out;
}

// A piece of text on its way through the pre-tokenizers; `at_start`: it begins at byte 0 of the
// input (Metaspace's prepend_scheme "first").
struct Piece {
  std::string text;
  bool at_start;
};

// A token id from the file: an integer in [0, 2^40] (nlohmann converts a float silently, and a large
// one is undefined behaviour).
std::int64_t token_id_of(const nlohmann::json& v, const std::string& path, const std::string& field) {
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > (1LL << 40))
    throw InputError(path + ": " + field + ": expected a non-negative integer token id, got " + v.dump());
  return v.get<std::int64_t>();
}

class BpeTokenizer final : public Tokenizer {
 public:
  BpeTokenizer(const nlohmann::json& j, const std::string& path) : path_(path) {
    auto unsupported = [&](const std::string& field, const nlohmann::json& v, const std::string& supported) {
      return InputError(path + ": " + field + ": unsupported " + v.dump() + " (supported: " + supported + ")");
    };
    const auto& model = j.at("model");
    if (model.value("type", "") != "BPE") throw unsupported("model.type", model.value("type", nlohmann::json()), "BPE");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (model.contains(key) && !model[key].is_null() && !model[key].get<std::string>().empty())
        throw unsupported(std::string("model.") + key, model[key], "null");
    if (model.contains("dropout") && model["dropout"].is_number() && model["dropout"].get<double>() > 0)
      throw unsupported("model.dropout", model["dropout"], "null (deterministic encoding)");
    byte_fallback_ = model.value("byte_fallback", false);
    ignore_merges_ = model.value("ignore_merges", false);
    fuse_unk_ = model.value("fuse_unk", false);
    for (auto it = model.at("vocab").begin(); it != model.at("vocab").end(); ++it) vocab_[it.key()] = token_id_of(it.value(), path, "model.vocab");
    if (model.contains("unk_token") && model["unk_token"].is_string()) {
      const auto u = vocab_.find(model["unk_token"].get<std::string>());
      if (u == vocab_.end()) throw InputError(path + ": model.unk_token: '" + model["unk_token"].get<std::string>() + "' is not in the vocabulary");
      unk_id_ = u->second;
    }
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
      const auto ia = vocab_.find(a), ib = vocab_.find(b), iab = vocab_.find(a + b);
      if (ia == vocab_.end() || ib == vocab_.end() || iab == vocab_.end())
        throw InputError(path + ": model.merges: merge '" + a + " " + b + "' uses or makes a token missing from the vocabulary");
      merges_.emplace(pair_key(ia->second, ib->second), Merge{rank++, iab->second});
    }
    if (j.contains("added_tokens"))
      for (const auto& t : j["added_tokens"]) {
        added_.push_back({t.at("content").get<std::string>(), token_id_of(t.at("id"), path, "added_tokens.id")});
        vocab_[added_.back().first] = added_.back().second;
        if (t.value("special", false)) special_.insert({added_.back().second, true});
      }
    std::sort(added_.begin(), added_.end(), [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });
    for (const auto& [token, id] : vocab_) tokens_[id] = token;

    parse_normalizer(j.contains("normalizer") ? j["normalizer"] : nlohmann::json(), unsupported);
    parse_pre_tokenizer(j.contains("pre_tokenizer") ? j["pre_tokenizer"] : nlohmann::json(), unsupported);
    parse_decoder(j.contains("decoder") ? j["decoder"] : nlohmann::json(), unsupported);
    parse_post_processor(j.contains("post_processor") ? j["post_processor"] : nlohmann::json());
    // A byte-level vocabulary may lack the symbols of bytes its training text never had (SmolLM2's
    // lacks 21, e.g. 0x04 and 0xC0): `tokenizers` loads such a file, and so does lmtopo; a text that
    // needs a missing symbol takes the byte fallback or the unknown token, as in bpe_word.
  }

  std::vector<std::int64_t> encode(const std::string& text) const override {
    if (const auto bad = first_invalid_utf8(text); bad != std::string::npos)
      throw InputError("text is not valid UTF-8 (byte " + std::to_string(bad) + ")");
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
      encode_segment(text.substr(start, pos - start), start == 0, ids);
      if (!hit) break;
      ids.push_back(hit->second);
      pos += hit->first.size();
      start = pos;
    }
    return ids;
  }

  std::string decode(const std::vector<std::int64_t>& ids, bool skip_special_tokens) const override {
    std::vector<std::string> tokens;
    for (const auto id : ids) {
      const auto t = tokens_.find(id);
      if (t == tokens_.end()) throw InputError("decode: token id " + std::to_string(id) + " is not in the vocabulary of " + path_);
      if (skip_special_tokens && special_.count(id)) continue;
      tokens.push_back(t->second);
    }
    if (decoders_.empty()) {  // tokenizers joins with spaces when there is no decoder
      std::string out;
      for (std::size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
      return out;
    }
    for (const auto& d : decoders_) tokens = apply_decoder(d, tokens);
    std::string out;
    for (const auto& t : tokens) out += t;
    return out;
  }

  std::int64_t token_id(const std::string& token) const override {
    auto it = vocab_.find(token);
    return it == vocab_.end() ? -1 : it->second;
  }

  std::int64_t vocab_size() const override { return tokens_.empty() ? 0 : tokens_.rbegin()->first + 1; }

 private:
  struct Merge {
    int rank;
    std::int64_t result;
  };
  struct NormalizeStep {
    enum Kind { nfc, prepend, replace } kind;
    std::string a, b;  // prepend: a; replace: a -> b
  };
  struct PreStep {
    enum Kind { byte_level, split, metaspace } kind;
    std::shared_ptr<SplitRegex> regex;  // byte_level (use_regex) and split
    bool prefix_space = false;          // byte_level add_prefix_space
    std::string replacement;            // metaspace
    std::string prepend_scheme;         // metaspace: always | first | never
    bool split_words = true;            // metaspace split
  };
  struct DecodeStep {
    enum Kind { byte_level, metaspace, replace, byte_fallback, fuse, strip } kind;
    std::string a, b;              // replace: a -> b; metaspace: a = replacement, b = prepend scheme; strip: a = content
    std::size_t start = 0, stop = 0;  // strip
  };

  static std::uint64_t pair_key(std::int64_t a, std::int64_t b) {
    return (static_cast<std::uint64_t>(a) << 32) ^ static_cast<std::uint64_t>(b);
  }

  // The steps of a component: the members of a {"type": "Sequence", list_key: [...]}, or itself.
  static std::vector<nlohmann::json> steps_of(const nlohmann::json& component, const char* list_key) {
    std::vector<nlohmann::json> steps;
    if (component.is_object() && component.value("type", "") == "Sequence") {
      for (const auto& c : component.at(list_key)) steps.push_back(c);
    } else if (component.is_object()) {
      steps.push_back(component);
    }
    return steps;
  }

  template <typename Unsupported>
  void parse_normalizer(const nlohmann::json& norm, Unsupported unsupported) {
    for (const auto& n : steps_of(norm, "normalizers")) {
      const std::string type = n.value("type", "");
      if (type == "NFC") {
        normalize_.push_back({NormalizeStep::nfc, "", ""});
      } else if (type == "Prepend") {
        normalize_.push_back({NormalizeStep::prepend, n.at("prepend").get<std::string>(), ""});
      } else if (type == "Replace" && n.at("pattern").contains("String")) {
        normalize_.push_back({NormalizeStep::replace, n["pattern"]["String"].get<std::string>(), n.at("content").get<std::string>()});
      } else {
        throw unsupported("normalizer", n, "null, NFC, Prepend, Replace(String), Sequence of those");
      }
    }
  }

  template <typename Unsupported>
  void parse_pre_tokenizer(const nlohmann::json& pre, Unsupported unsupported) {
    bool metaspace = false;
    for (const auto& s : steps_of(pre, "pretokenizers")) {
      const std::string type = s.value("type", "");
      PreStep p;
      if (type == "ByteLevel") {
        p.kind = PreStep::byte_level;
        byte_level_ = true;
        p.prefix_space = s.value("add_prefix_space", false);
        if (s.value("use_regex", true)) p.regex = std::make_shared<SplitRegex>(kGpt2SplitPattern, path_);
      } else if (type == "Split") {
        if (s.value("behavior", "") != "Isolated" || s.value("invert", false))
          throw unsupported("pre_tokenizer.Split.behavior", s.value("behavior", nlohmann::json()), "Isolated, not inverted");
        const auto& pat = s.at("pattern");
        if (!pat.contains("Regex")) throw unsupported("pre_tokenizer.Split.pattern", pat, "{\"Regex\": ...}");
        p.kind = PreStep::split;
        p.regex = std::make_shared<SplitRegex>(pat["Regex"].get<std::string>(), path_);
      } else if (type == "Digits") {
        // tokenizers splits at Rust's char::is_numeric (Unicode Nd, Nl, No = \p{N}): each numeric
        // character isolated, or runs of them (Contiguous) when individual_digits is false.
        p.kind = PreStep::split;
        p.regex = std::make_shared<SplitRegex>(s.value("individual_digits", false) ? "\\p{N}" : "\\p{N}+", path_);
      } else if (type == "Metaspace") {
        p.kind = PreStep::metaspace;
        metaspace = true;
        p.replacement = s.value("replacement", kMetaspace);
        // tokenizers < 0.19 wrote add_prefix_space; later files prepend_scheme.
        p.prepend_scheme = s.contains("prepend_scheme") ? s["prepend_scheme"].get<std::string>()
                                                        : (s.value("add_prefix_space", true) ? "always" : "never");
        if (p.prepend_scheme != "always" && p.prepend_scheme != "first" && p.prepend_scheme != "never")
          throw unsupported("pre_tokenizer.Metaspace.prepend_scheme", s["prepend_scheme"], "always, first, never");
        p.split_words = s.value("split", true);
      } else {
        throw unsupported("pre_tokenizer.type", type, "ByteLevel, Split(Regex, Isolated), Digits, Metaspace, Sequence of those");
      }
      pre_.push_back(std::move(p));
    }
    const bool sentencepiece_normalizer = std::any_of(normalize_.begin(), normalize_.end(), [](const NormalizeStep& n) {
      return n.kind == NormalizeStep::replace && n.b == kMetaspace;
    });
    if (!byte_level_ && !metaspace && !sentencepiece_normalizer)
      throw unsupported("pre_tokenizer", pre,
                        "ByteLevel (byte-level BPE), Metaspace or the Prepend/Replace(\" \", \"\u2581\") normalizers "
                        "(SentencePiece-style BPE)");
  }

  std::vector<std::int64_t> add_special_tokens(const std::vector<std::int64_t>& ids) const override {
    if (!post_processor_error_.empty()) throw InputError(path_ + ": " + post_processor_error_);
    std::vector<std::int64_t> out = special_prefix_;
    out.insert(out.end(), ids.begin(), ids.end());
    out.insert(out.end(), special_suffix_.begin(), special_suffix_.end());
    return out;
  }

  // What the post-processor adds around a single sequence. Processors nest: a Sequence applies each to
  // the previous one's output. An unsupported one is recorded, and an error only if it is used.
  void parse_post_processor(const nlohmann::json& p) {
    if (p.is_null()) return;
    const std::string type = p.value("type", "");
    auto id_of = [&](const nlohmann::json& pair, const char* field) {
      if (!pair.is_array() || pair.size() != 2) throw InputError(path_ + ": post_processor." + field + ": expected [token, id]");
      return token_id_of(pair[1], path_, std::string("post_processor.") + field);
    };
    if (type == "ByteLevel") return;  // adjusts offsets only
    if (type == "Sequence") {
      for (const auto& q : p.at("processors")) parse_post_processor(q);
      return;
    }
    std::vector<std::int64_t> prefix, suffix;
    if (type == "TemplateProcessing") {
      bool seen_sequence = false;
      for (const auto& piece : p.at("single")) {
        if (piece.contains("Sequence")) {
          seen_sequence = true;
          continue;
        }
        const std::string token = piece.at("SpecialToken").at("id").get<std::string>();
        if (!p.contains("special_tokens") || !p["special_tokens"].contains(token))
          throw InputError(path_ + ": post_processor.single: special token '" + token + "' is not in special_tokens");
        for (const auto& id : p["special_tokens"][token].at("ids")) (seen_sequence ? suffix : prefix).push_back(token_id_of(id, path_, "post_processor.special_tokens"));
      }
    } else if (type == "RobertaProcessing" || type == "BertProcessing") {
      prefix.push_back(id_of(p.at("cls"), "cls"));
      suffix.push_back(id_of(p.at("sep"), "sep"));
    } else {
      post_processor_error_ = "post_processor.type: unsupported '" + type +
                              "' (supported: TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel, Sequence); "
                              "use --special-tokens none or bos";
      return;
    }
    special_prefix_.insert(special_prefix_.begin(), prefix.begin(), prefix.end());
    special_suffix_.insert(special_suffix_.end(), suffix.begin(), suffix.end());
  }

  template <typename Unsupported>
  void parse_decoder(const nlohmann::json& dec, Unsupported unsupported) {
    for (const auto& d : steps_of(dec, "decoders")) {
      const std::string type = d.value("type", "");
      DecodeStep s;
      if (type == "ByteLevel") {
        s.kind = DecodeStep::byte_level;
      } else if (type == "Metaspace") {
        s.kind = DecodeStep::metaspace;
        s.a = d.value("replacement", kMetaspace);
        s.b = d.contains("prepend_scheme") ? d["prepend_scheme"].get<std::string>() : (d.value("add_prefix_space", true) ? "always" : "never");
      } else if (type == "Replace" && d.at("pattern").contains("String")) {
        s.kind = DecodeStep::replace;
        s.a = d["pattern"]["String"].get<std::string>();
        s.b = d.at("content").get<std::string>();
      } else if (type == "ByteFallback") {
        s.kind = DecodeStep::byte_fallback;
      } else if (type == "Fuse") {
        s.kind = DecodeStep::fuse;
      } else if (type == "Strip") {
        s.kind = DecodeStep::strip;
        s.a = d.at("content").get<std::string>();
        s.start = d.value("start", std::size_t{0});
        s.stop = d.value("stop", std::size_t{0});
      } else {
        throw unsupported("decoder", d, "ByteLevel, Metaspace, Replace(String), ByteFallback, Fuse, Strip, Sequence of those");
      }
      decoders_.push_back(std::move(s));
    }
  }

  void encode_segment(const std::string& raw, bool at_start, std::vector<std::int64_t>& ids) const {
    std::string text = raw;
    for (const auto& n : normalize_) {
      if (n.kind == NormalizeStep::nfc) text = nfc(text);
      else if (n.kind == NormalizeStep::prepend && !text.empty()) text = n.a + text;
      else if (n.kind == NormalizeStep::replace) replace_all(text, n.a, n.b);
    }
    if (text.empty()) return;
    std::vector<Piece> pieces{{text, at_start}}, next;
    for (const auto& p : pre_) {
      next.clear();
      for (auto& piece : pieces) pre_tokenize(p, piece, next);
      pieces.swap(next);
    }
    for (const auto& p : pieces)
      if (!p.text.empty()) bpe_word(p.text, ids);
  }

  static void pre_tokenize(const PreStep& p, Piece& piece, std::vector<Piece>& out) {
    if (p.kind == PreStep::metaspace) {
      replace_all(piece.text, " ", p.replacement);
      const bool starts = piece.text.compare(0, p.replacement.size(), p.replacement) == 0;
      if (!starts && (p.prepend_scheme == "always" || (p.prepend_scheme == "first" && piece.at_start)))
        piece.text = p.replacement + piece.text;
      if (!p.split_words) {
        out.push_back(piece);
        return;
      }
      // Split before every replacement character (tokenizers' MergedWithNext).
      std::size_t from = 0;
      for (std::size_t at = piece.text.find(p.replacement, 1); at != std::string::npos; at = piece.text.find(p.replacement, at + 1)) {
        out.push_back({piece.text.substr(from, at - from), piece.at_start && from == 0});
        from = at;
      }
      out.push_back({piece.text.substr(from), piece.at_start && from == 0});
      return;
    }
    std::string text = piece.text;
    if (p.kind == PreStep::byte_level && p.prefix_space && text[0] != ' ') text = " " + text;
    if (!p.regex) {
      out.push_back({text, piece.at_start});
      return;
    }
    std::vector<std::string> parts;
    p.regex->split(text, parts);
    for (std::size_t i = 0; i < parts.size(); ++i) out.push_back({parts[i], piece.at_start && i == 0});
  }

  // BPE on one pre-token: symbols are byte-level characters or Unicode characters (with byte
  // fallback or the unknown token); then merges by rank, leftmost first among equal ranks, as a
  // priority queue over a linked list of symbols (tokenizers' Word::merge_all).
  void bpe_word(const std::string& piece, std::vector<std::int64_t>& ids) const {
    auto cached = cache_.find(piece);
    if (cached != cache_.end()) {
      ids.insert(ids.end(), cached->second.begin(), cached->second.end());
      return;
    }
    std::string mapped;
    std::vector<std::string> chars;
    if (byte_level_) {
      const auto& table = byte_symbols();
      for (unsigned char c : piece) {
        chars.push_back(table[c]);
        mapped += table[c];
      }
    } else {
      chars = utf8_chars(piece);
      mapped = piece;
    }
    std::vector<std::int64_t> out;
    if (ignore_merges_ && vocab_.count(mapped)) {
      out.push_back(vocab_.at(mapped));
    } else {
      std::vector<std::int64_t> symbols;
      bool previous_unknown = false;  // fuse_unk: a run of unknown characters is one unk token
      for (const auto& ch : chars) {
        if (auto it = vocab_.find(ch); it != vocab_.end()) {
          symbols.push_back(it->second);
          previous_unknown = false;
          continue;
        }
        if (byte_fallback_) {
          std::vector<std::int64_t> bytes;
          for (unsigned char c : ch) {
            char name[8];
            std::snprintf(name, sizeof name, "<0x%02X>", c);
            if (auto b = vocab_.find(name); b != vocab_.end()) bytes.push_back(b->second);
          }
          if (bytes.size() == ch.size()) {
            symbols.insert(symbols.end(), bytes.begin(), bytes.end());
            previous_unknown = false;
            continue;
          }
        }
        if (unk_id_ < 0) {
          // `tokenizers` drops such a character silently; lmtopo refuses rather than change the text.
          std::string what = "character '" + ch + "'";
          if (byte_level_) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02X", byte_of_symbol().at(ch));
            what = "byte " + std::string(hex) + " (byte-level symbol '" + ch + "')";
          }
          throw InputError(path_ + ": " + what + " is not in the vocabulary and the tokenizer has no " +
                           (byte_fallback_ ? "byte token for it or unk_token" : "unk_token or byte_fallback"));
        }
        if (!(fuse_unk_ && previous_unknown)) symbols.push_back(unk_id_);
        previous_unknown = true;
      }
      merge_all(symbols);
      out = std::move(symbols);
    }
    ids.insert(ids.end(), out.begin(), out.end());
    if (cache_.size() < 200000) cache_.emplace(piece, std::move(out));
  }

  void merge_all(std::vector<std::int64_t>& symbols) const {
    const std::size_t n = symbols.size();
    if (n < 2) return;
    std::vector<std::int64_t> prev(n), next(n);
    std::vector<bool> alive(n, true);
    for (std::size_t i = 0; i < n; ++i) {
      prev[i] = static_cast<std::int64_t>(i) - 1;
      next[i] = i + 1 < n ? static_cast<std::int64_t>(i + 1) : -1;
    }
    struct Candidate {
      int rank;
      std::size_t pos;
      std::int64_t result;
      bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
    auto consider = [&](std::size_t left) {
      if (next[left] < 0) return;
      const auto m = merges_.find(pair_key(symbols[left], symbols[static_cast<std::size_t>(next[left])]));
      if (m != merges_.end()) queue.push({m->second.rank, left, m->second.result});
    };
    for (std::size_t i = 0; i + 1 < n; ++i) consider(i);
    while (!queue.empty()) {
      const Candidate c = queue.top();
      queue.pop();
      if (!alive[c.pos] || next[c.pos] < 0) continue;
      const auto right = static_cast<std::size_t>(next[c.pos]);
      const auto m = merges_.find(pair_key(symbols[c.pos], symbols[right]));
      if (m == merges_.end() || m->second.result != c.result) continue;  // a stale entry
      symbols[c.pos] = c.result;
      alive[right] = false;
      next[c.pos] = next[right];
      if (next[right] >= 0) prev[static_cast<std::size_t>(next[right])] = static_cast<std::int64_t>(c.pos);
      if (prev[c.pos] >= 0) consider(static_cast<std::size_t>(prev[c.pos]));
      consider(c.pos);
    }
    std::vector<std::int64_t> kept;
    for (std::size_t i = 0; i < n; ++i)
      if (alive[i]) kept.push_back(symbols[i]);
    symbols.swap(kept);
  }

  std::vector<std::string> apply_decoder(const DecodeStep& d, const std::vector<std::string>& tokens) const {
    std::vector<std::string> out;
    switch (d.kind) {
      case DecodeStep::byte_level: {
        // Each token's characters back to bytes (a token with characters outside the table, e.g.
        // an added token, contributes its own UTF-8), then one lossy UTF-8 decode of the whole.
        std::string bytes;
        for (const auto& t : tokens) {
          std::string mapped;
          bool all = true;
          for (const auto& ch : utf8_chars(t)) {
            const auto b = byte_of_symbol().find(ch);
            if (b == byte_of_symbol().end()) {
              all = false;
              break;
            }
            mapped += static_cast<char>(b->second);
          }
          bytes += all ? mapped : t;
        }
        out.push_back(lossy_utf8(bytes));
        break;
      }
      case DecodeStep::metaspace:
        for (std::size_t i = 0; i < tokens.size(); ++i) {
          std::string t = tokens[i];
          replace_all(t, d.a, i == 0 && d.b != "never" ? "" : " ");
          out.push_back(t);
        }
        break;
      case DecodeStep::replace:
        for (auto t : tokens) {
          replace_all(t, d.a, d.b);
          out.push_back(t);
        }
        break;
      case DecodeStep::byte_fallback: {
        // Runs of <0xNN> tokens become their bytes when those form UTF-8, else one U+FFFD per byte.
        std::string run;
        std::size_t run_len = 0;
        auto flush = [&] {
          if (!run_len) return;
          if (first_invalid_utf8(run) == std::string::npos) {
            out.push_back(run);
          } else {
            for (std::size_t k = 0; k < run_len; ++k) out.push_back("\xEF\xBF\xBD");
          }
          run.clear();
          run_len = 0;
        };
        for (const auto& t : tokens) {
          if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && std::isxdigit(static_cast<unsigned char>(t[3])) &&
              std::isxdigit(static_cast<unsigned char>(t[4]))) {
            run += static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16));
            ++run_len;
          } else {
            flush();
            out.push_back(t);
          }
        }
        flush();
        break;
      }
      case DecodeStep::fuse: {
        std::string all;
        for (const auto& t : tokens) all += t;
        out.push_back(all);
        break;
      }
      case DecodeStep::strip:
        for (const auto& t : tokens) {
          auto chars = utf8_chars(t);
          std::size_t begin = 0, end = chars.size();
          for (std::size_t k = 0; k < d.start && begin < end && chars[begin] == d.a; ++k) ++begin;
          for (std::size_t k = 0; k < d.stop && end > begin && chars[end - 1] == d.a; ++k) --end;
          std::string s;
          for (std::size_t k = begin; k < end; ++k) s += chars[k];
          out.push_back(s);
        }
        break;
    }
    return out;
  }

  static const std::map<std::string, unsigned char>& byte_of_symbol() {
    static const std::map<std::string, unsigned char> table = [] {
      std::map<std::string, unsigned char> m;
      const auto& sym = byte_symbols();
      for (std::size_t b = 0; b < sym.size(); ++b) m[sym[b]] = static_cast<unsigned char>(b);
      return m;
    }();
    return table;
  }

  std::string path_;
  std::unordered_map<std::string, std::int64_t> vocab_;
  std::map<std::int64_t, std::string> tokens_;
  std::map<std::int64_t, bool> special_;
  std::unordered_map<std::uint64_t, Merge> merges_;
  std::vector<std::pair<std::string, std::int64_t>> added_;
  std::vector<NormalizeStep> normalize_;
  std::vector<PreStep> pre_;
  std::vector<DecodeStep> decoders_;
  bool byte_level_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  bool fuse_unk_ = false;
  std::int64_t unk_id_ = -1;
  std::vector<std::int64_t> special_prefix_, special_suffix_;
  std::string post_processor_error_;
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
  } catch (const nlohmann::json::exception&) {  // parse_error, or out_of_range for a number overflow
    throw InputError(path + ": corrupt tokenizer.json (not JSON)");
  }
  try {
    return std::make_unique<BpeTokenizer>(j, path);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": malformed tokenizer.json: " + e.what());
  }
}

}  // namespace lmtopo::model
