#include "stages/prepare.hpp"

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "core/error.hpp"
#include "core/hashing.hpp"
#include "io/checkpoint_manifest.hpp"
#include "io/corpus.hpp"
#include "io/h5store.hpp"
#include "io/work_manifest.hpp"
#include "mpi/collective.hpp"

namespace fs = std::filesystem;

namespace lmtopo::stages {
namespace {

constexpr char kFieldSep = '\x1f';
constexpr char kRecordSep = '\x1e';

std::string serialize_keys(const std::vector<io::MessageKey>& keys) {
  std::string out;
  for (const auto& [d, m] : keys) out += d + kFieldSep + m + kRecordSep;
  return out;
}

std::vector<io::MessageKey> parse_keys(const std::string& text) {
  std::vector<io::MessageKey> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto sep = text.find(kFieldSep, pos), end = text.find(kRecordSep, pos);
    out.push_back({text.substr(pos, sep - pos), text.substr(sep + 1, end - sep - 1)});
    pos = end + 1;
  }
  return out;
}

// Gathers one string per rank on rank 0 (empty list elsewhere).
std::vector<std::string> gather_strings(MPI_Comm comm, const std::string& mine) {
  const std::vector<char> chars(mine.begin(), mine.end());
  const auto all = mpi::gather_to_root(comm, chars, MPI_CHAR);
  std::vector<int> lens = mpi::gather_to_root(comm, std::vector<int>{static_cast<int>(mine.size())}, MPI_INT);
  std::vector<std::string> out;
  std::size_t pos = 0;
  for (int len : lens) {
    out.emplace_back(all.begin() + static_cast<std::ptrdiff_t>(pos), all.begin() + static_cast<std::ptrdiff_t>(pos) + len);
    pos += static_cast<std::size_t>(len);
  }
  return out;
}

// Checkpoint manifest: weight files hashed round-robin over the ranks, gathered on rank 0.
std::string write_checkpoint_manifest(const core::JobSpec& spec, MPI_Comm comm, long long& duplicates) {
  std::vector<io::CheckpointDigest> cps;
  std::vector<std::pair<std::size_t, std::string>> files;  // (checkpoint index, path)
  mpi::on_all(comm, [&] {
    for (const auto& m : spec.models)
      for (const auto& c : m.checkpoints) {
        io::CheckpointDigest d;
        d.model = m.name;
        d.label = c.label;
        d.dir = c.dir;
        d.step = c.step;
        for (const auto& f : io::weight_files(c.dir)) files.push_back({cps.size(), f});
        cps.push_back(d);
      }
  });
  const int rank = mpi::rank(comm), size = mpi::size(comm);
  std::string mine;
  mpi::on_all(comm, [&] {
    for (std::size_t i = static_cast<std::size_t>(rank); i < files.size(); i += static_cast<std::size_t>(size))
      mine += std::to_string(i) + kFieldSep + core::sha256_file(files[i].second) + kRecordSep;
  });
  const auto gathered = gather_strings(comm, mine);
  const std::string path = (fs::path(spec.output) / "manifest" / "checkpoints.json").string();
  mpi::on_root(comm, [&] {
    std::vector<std::string> sha(files.size());
    for (const auto& part : gathered)
      for (const auto& [idx, hash] : parse_keys(part)) sha[std::stoul(idx)] = hash;
    for (std::size_t i = 0; i < files.size(); ++i)
      cps[files[i].first].files.push_back({fs::path(files[i].second).filename().string(), sha[i]});
    const auto manifest = io::checkpoint_manifest_json(cps);
    duplicates = 0;
    for (const auto& c : cps)
      if (!c.duplicate_of.empty()) {
        ++duplicates;
        std::cerr << "lmtopo: WARNING: checkpoint " << c.model << "/" << c.label << " is byte-identical to "
                  << c.duplicate_of << "; it will be processed once and linked\n";
      }
    nlohmann::json doc;
    doc["schema"] = "checkpoint-manifest/1";
    doc["checkpoints"] = manifest;
    io::write_file_atomically(path, doc.dump(2) + "\n");
  });
  long long d = duplicates;
  if (mpi::initialized()) mpi::check(MPI_Bcast(&d, 1, MPI_LONG_LONG, 0, comm), "MPI_Bcast");
  duplicates = d;
  return path;
}

struct LanguageRows {
  std::vector<std::string> text, lang, id, domain;
  std::vector<long long> group;
  std::size_t max_bytes = 1;
  void add(const io::CorpusRecord& r) {
    text.push_back(r.text);
    lang.push_back(r.lang);
    id.push_back(r.id);
    domain.push_back(r.domain);
    group.push_back(r.group);
    for (const auto* s : {&r.text, &r.lang, &r.id, &r.domain}) max_bytes = std::max(max_bytes, s->size());
  }
};

// The corpus rows this rank writes: language j (rows [j*N, (j+1)*N)) belongs to rank j % P.
std::vector<std::pair<std::size_t, LanguageRows>> gettext_rows(const core::JobSpec& spec, MPI_Comm comm,
                                                                 long long& per_language) {
  const auto& d = spec.data;
  const int rank = mpi::rank(comm), size = mpi::size(comm);
  std::vector<std::pair<std::size_t, std::map<io::MessageKey, std::string>>> mine;
  std::vector<std::string> notes;
  mpi::on_all(comm, [&] {
    for (std::size_t j = 0; j < d.languages.size(); ++j) {
      const auto& lang = d.languages[j];
      if (lang != "en" && io::count_catalogs(d.path, d.domains, lang) == 0)
        throw InputError(spec.file + ": data.languages[" + std::to_string(j) + "]: no catalogs of the listed domains for '" +
                         lang + "' under " + d.path);
      if (static_cast<int>(j % static_cast<std::size_t>(size)) != rank) continue;
      mine.push_back({j, io::usable_messages(d.path, d.domains, lang, d.min_chars, d.max_chars, notes)});
    }
  });
  for (const auto& n : notes) std::cerr << "lmtopo: note: " << n << "\n";
  // Rank 0 intersects the usable keys of all languages and broadcasts the selection.
  std::string keys_text;
  for (const auto& [j, m] : mine) {
    if (d.languages[j] == "en") continue;
    std::vector<io::MessageKey> keys;
    for (const auto& kv : m) keys.push_back(kv.first);
    keys_text += serialize_keys(keys) + '\x1d';
  }
  const auto gathered = gather_strings(comm, keys_text);
  std::string selected_text;
  mpi::on_root(comm, [&] {
    std::vector<std::vector<io::MessageKey>> keys_per_language;
    for (const auto& part : gathered) {
      std::size_t pos = 0;
      while (pos < part.size()) {
        const auto end = part.find('\x1d', pos);
        keys_per_language.push_back(parse_keys(part.substr(pos, end - pos)));
        pos = end + 1;
      }
    }
    if (keys_per_language.empty())
      throw InputError(spec.file + ": data.languages: expected at least one language other than en (translations "
                       "come from the catalogs of the others)");
    try {
      selected_text = serialize_keys(io::select_aligned(keys_per_language, d.seed, d.prompts, d.min_chars, d.max_chars));
    } catch (const InputError& e) {
      throw InputError(spec.file + ": " + e.what());
    }
  });
  const auto selected = parse_keys(mpi::broadcast_string(comm, selected_text));
  per_language = static_cast<long long>(selected.size());
  std::vector<std::pair<std::size_t, LanguageRows>> out;
  for (const auto& [j, usable] : mine) {
    LanguageRows rows;
    const auto& lang = d.languages[j];
    for (std::size_t g = 0; g < selected.size(); ++g) {
      io::CorpusRecord r;
      r.lang = lang;
      r.domain = selected[g].first;
      r.group = static_cast<long long>(g);
      r.id = io::gettext_record_id(selected[g], lang);
      r.text = lang == "en" ? selected[g].second : usable.at(selected[g]);
      rows.add(r);
    }
    out.push_back({j, std::move(rows)});
  }
  return out;
}

// A JSONL corpus: the records of each requested language, the first `prompts` by
// sha256(seed:id); each rank writes the languages it owns.
std::vector<std::pair<std::size_t, LanguageRows>> jsonl_rows(const core::JobSpec& spec, MPI_Comm comm,
                                                               long long& per_language) {
  const auto& d = spec.data;
  const int rank = mpi::rank(comm), size = mpi::size(comm);
  std::vector<io::CorpusRecord> all;
  mpi::on_all(comm, [&] { all = io::read_jsonl_corpus(d.path); });
  std::vector<std::vector<std::pair<std::string, io::CorpusRecord>>> by_lang(d.languages.size());
  for (const auto& r : all)
    for (std::size_t j = 0; j < d.languages.size(); ++j)
      if (r.lang == d.languages[j]) by_lang[j].push_back({core::sha256_hex(std::to_string(d.seed) + ":" + r.id), r});
  for (std::size_t j = 0; j < d.languages.size(); ++j) {
    if (by_lang[j].empty())
      throw InputError(spec.file + ": data.languages[" + std::to_string(j) + "]: no records of language '" + d.languages[j] +
                       "' in " + d.path + " (expected at least data.prompts = " + std::to_string(d.prompts) + ")");
    if (static_cast<long long>(by_lang[j].size()) < d.prompts)
      throw InputError(spec.file + ": data.prompts: expected at most " + std::to_string(by_lang[j].size()) +
                       " (records of language '" + d.languages[j] + "' in " + d.path + "), got " + std::to_string(d.prompts));
  }
  per_language = d.prompts;
  std::vector<std::pair<std::size_t, LanguageRows>> out;
  for (std::size_t j = static_cast<std::size_t>(rank); j < d.languages.size(); j += static_cast<std::size_t>(size)) {
    auto& v = by_lang[j];
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    LanguageRows rows;
    for (long long i = 0; i < d.prompts; ++i) rows.add(v[static_cast<std::size_t>(i)].second);
    out.push_back({j, std::move(rows)});
  }
  return out;
}

}  // namespace

nlohmann::json prepare_config(const core::JobSpec& spec) {
  nlohmann::json c;
  c["data"] = core::work_item_section(spec, "data");
  c["models"] = core::work_item_section(spec, "models");
  // The resolved checkpoint list too: a new stepN/ folder under a template directory makes prepare
  // (hashes, duplicate flags) stale, so a nightly run picks it up.
  c["checkpoints"] = nlohmann::json::array();
  for (const auto& m : spec.models)
    for (const auto& ck : m.checkpoints) c["checkpoints"].push_back({m.name, ck.label, ck.dir});
  return c;
}

PrepareSummary run_prepare(const core::JobSpec& spec, MPI_Comm comm, bool force) {
  PrepareSummary summary;
  io::WorkManifest manifest(spec.output);
  const std::string hash = core::config_hash(prepare_config(spec));
  summary.corpus_path = (fs::path(spec.output) / "corpus.h5").string();
  summary.checkpoints_path = (fs::path(spec.output) / "manifest" / "checkpoints.json").string();
  bool complete = false;
  mpi::on_root(comm, [&] { complete = !force && manifest.is_complete("prepare", "corpus", hash); });
  int flag = complete ? 1 : 0;
  if (mpi::initialized()) mpi::check(MPI_Bcast(&flag, 1, MPI_INT, 0, comm), "MPI_Bcast");
  if (flag) {
    summary.skipped = true;
    return summary;
  }
  mpi::on_root(comm, [&] { fs::create_directories(spec.output); });

  write_checkpoint_manifest(spec, comm, summary.duplicates);

  long long per_language = 0;
  const auto rows = spec.data.source == "gettext" ? gettext_rows(spec, comm, per_language)
                                                  : jsonl_rows(spec, comm, per_language);
  const std::size_t nl = spec.data.languages.size();
  const auto total = static_cast<std::uint64_t>(per_language) * nl;
  std::size_t width = 1;
  for (const auto& [j, r] : rows) width = std::max(width, r.max_bytes);

  nlohmann::json effective = spec.config;
  io::H5Output out(summary.corpus_path, comm, "corpus/1", effective);
  for (const char* name : {"/corpus/text", "/corpus/lang", "/corpus/id", "/corpus/domain"})
    out.create_strings(name, total, width, /*deflate=*/true);
  out.create_numeric("/corpus/group", io::DType::i64, {total}, /*deflate=*/true);
  nlohmann::json counts;
  for (const auto& l : spec.data.languages) counts[l] = per_language;
  out.set_attribute("/corpus/text", "language_counts", counts.dump());

  // One collective write per round of languages; a rank without a language this round writes
  // nothing but still takes part.
  const std::size_t size = static_cast<std::size_t>(mpi::size(comm));
  const std::size_t rounds = (nl + size - 1) / size;
  for (std::size_t t = 0; t < rounds; ++t) {
    const LanguageRows* r = nullptr;
    std::size_t j = 0;
    for (const auto& [lang_index, lr] : rows)
      if (lang_index / size == t) r = &lr, j = lang_index;
    const std::uint64_t row0 = static_cast<std::uint64_t>(j) * static_cast<std::uint64_t>(per_language);
    static const std::vector<std::string> none;
    out.write_string_rows("/corpus/text", row0, r ? r->text : none);
    out.write_string_rows("/corpus/lang", row0, r ? r->lang : none);
    out.write_string_rows("/corpus/id", row0, r ? r->id : none);
    out.write_string_rows("/corpus/domain", row0, r ? r->domain : none);
    out.write_rows("/corpus/group", row0, r ? r->group.size() : 0, r ? r->group.data() : nullptr);
  }
  const std::string sha = out.commit();
  summary.records = static_cast<long long>(total);

  mpi::on_root(comm, [&] {
    manifest.record_complete("prepare", "corpus", hash,
                             {manifest.output_record(summary.corpus_path, sha), manifest.output_record(summary.checkpoints_path)});
  });
  return summary;
}

}  // namespace lmtopo::stages
