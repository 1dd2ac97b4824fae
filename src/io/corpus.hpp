// Multilingual parallel corpora. From gettext catalogs: for every (domain, msgid) the translations
// in each language, cleaned and aligned; the selection is deterministic given a seed and does not
// depend on the rank count or the C++ library (messages are ranked by sha256). The rules are in
// docs/methods.md; tests/python/test_corpus.py re-implements them with polib.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace lmtopo::io {

using MessageKey = std::pair<std::string, std::string>;  // (domain, msgid)

struct CorpusRecord {
  std::string id;
  std::string lang;
  std::string text;
  std::string domain;
  long long group = 0;
};

// The cleaning rule for one text: valid UTF-8, no control characters, none of the characters that
// mark format strings or markup (% { } < > \ `), at least one space (a phrase, not a token), and
// between min_chars and max_chars Unicode code points.
bool usable_text(const std::string& text, long long min_chars, long long max_chars);

// Usable messages of one language: key -> translation. "en" is the source language: its text is
// the msgid, drawn from the catalogs of the other languages (so every message whose msgid is
// usable). Skips entries with context or plural forms, empty translations, and catalogs whose
// charset is not UTF-8 (noted in `notes`).
std::map<MessageKey, std::string> usable_messages(const std::string& locale_root,
                                                  const std::vector<std::string>& domains, const std::string& lang,
                                                  long long min_chars, long long max_chars,
                                                  std::vector<std::string>& notes);

// Number of catalogs of `lang` among `domains` under `locale_root`.
int count_catalogs(const std::string& locale_root, const std::vector<std::string>& domains, const std::string& lang);

// Given the usable keys of every non-English language, the aligned selection: keys usable in all
// languages with a usable msgid, one per msgid (the alphabetically first domain), ranked by
// sha256("<seed>:<domain>:<msgid>") and cut to `count`. Throws InputError naming data.prompts if
// fewer are available.
std::vector<MessageKey> select_aligned(const std::vector<std::vector<MessageKey>>& usable_per_language,
                                       long long seed, long long count, long long min_chars, long long max_chars);

// Record id of a gettext message in a language: <domain>:<sha256(msgid)[:12]>:<lang>.
std::string gettext_record_id(const MessageKey& key, const std::string& lang);

// A user corpus: JSONL lines with `text` and optionally `id`, `lang`, `group`. Throws InputError
// naming the line for malformed JSON or a missing text.
std::vector<CorpusRecord> read_jsonl_corpus(const std::string& path);

// Records of a JSONL corpus, or of the corpus.h5 that `prepare` writes (by the .h5 suffix).
std::vector<CorpusRecord> read_corpus_records(const std::string& path);

}  // namespace lmtopo::io
