#include "stages/prompt_batches.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace lmtopo::stages {
namespace {

// Splits `units` (with token counts) into contiguous per-rank runs of about equal token counts.
std::vector<std::size_t> balanced_starts(const std::vector<long long>& unit_tokens, int ranks) {
  long long total = 0;
  for (auto t : unit_tokens) total += t;
  std::vector<std::size_t> starts(static_cast<std::size_t>(ranks) + 1, unit_tokens.size());
  starts[0] = 0;
  long long acc = 0;
  std::size_t u = 0;
  for (int r = 1; r < ranks; ++r) {
    const long long target = total * r / ranks;
    while (u < unit_tokens.size() && acc + unit_tokens[u] / 2 < target) acc += unit_tokens[u++];
    starts[static_cast<std::size_t>(r)] = u;
  }
  return starts;
}

// The batches of the window [w0, w1): its prompts stably sorted by length, cut every `batch`.
std::vector<std::vector<std::size_t>> window_batches(const std::vector<std::vector<std::int64_t>>& tokens, std::size_t w0,
                                                     std::size_t w1, std::size_t batch) {
  std::vector<std::size_t> order(w1 - w0);
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = w0 + i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return tokens[a].size() < tokens[b].size(); });
  std::vector<std::vector<std::size_t>> out;
  for (std::size_t b = 0; b < order.size(); b += batch)
    out.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(b), order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), b + batch)));
  return out;
}

}  // namespace

PromptsAndModel load_prompts_and_model(const std::string& prompts_path, const ModelChoice& m, const std::string& special_tokens) {
  if (m.threads < 0) throw InputError("--threads: expected 0 (the rank's CPUs) or a positive count");
  model::configure_compute_threads(m.threads);
  PromptsAndModel p;
  p.prompts = io::read_corpus_records(prompts_path);
  if (p.prompts.empty()) throw InputError(prompts_path + ": no prompts");
  p.tokenizer = model::Tokenizer::load(m.dir);
  p.net = model::Transformer::load(m.dir, m.dtype, m.architecture, m.device);
  p.tokens = tokenize_prompts(p.prompts, prompts_path, *p.tokenizer, p.net->config(), special_tokens);
  return p;
}

std::vector<std::vector<std::int64_t>> tokenize_prompts(const std::vector<io::CorpusRecord>& prompts,
                                                        const std::string& prompts_path, const model::Tokenizer& tokenizer,
                                                        const model::ModelConfig& config, const std::string& special_tokens) {
  if (special_tokens != "post_processor" && special_tokens != "none" && special_tokens != "bos")
    throw InputError("--special-tokens: expected post_processor, none or bos, got '" + special_tokens + "'");
  if (special_tokens == "bos" && config.bos_id < 0)
    throw InputError(config.dir + "/config.json: bos_token_id: needed for --special-tokens bos (--add-bos)");
  std::vector<std::vector<std::int64_t>> tokens;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const std::string where = prompts_path + ":" + std::to_string(i + 1) + ": prompt '" + prompts[i].id + "'";
    auto ids = tokenizer.encode(prompts[i].text);
    if (special_tokens == "post_processor") ids = tokenizer.add_special_tokens(ids);
    if (special_tokens == "bos") ids.insert(ids.begin(), config.bos_id);
    if (ids.empty()) throw InputError(where + " has no tokens");
    if (config.max_positions > 0 && ids.size() > static_cast<std::size_t>(config.max_positions))  // learned positions
      throw InputError(where + " has " + std::to_string(ids.size()) + " tokens, more than the model's n_positions " +
                       std::to_string(config.max_positions));
    tokens.push_back(std::move(ids));
  }
  return tokens;
}

std::size_t sort_window(std::size_t prompts, std::size_t batch) {
  const std::size_t batches_per_window = std::clamp<std::size_t>(prompts / (batch * kMinWindows), 1, kSortWindowBatches);
  return batch * batches_per_window;
}

BatchShare share_batches(const std::vector<std::vector<std::int64_t>>& tokens, std::size_t batch, int rank, int ranks) {
  const std::size_t n = tokens.size(), window = sort_window(n, batch);
  std::vector<long long> window_tokens((n + window - 1) / window, 0);
  for (std::size_t i = 0; i < n; ++i) window_tokens[i / window] += static_cast<long long>(tokens[i].size());
  const auto starts = balanced_starts(window_tokens, ranks);
  BatchShare s;
  for (int r = 0; r < ranks; ++r) {
    const std::size_t lo = std::min(n, starts[static_cast<std::size_t>(r)] * window);
    const std::size_t hi = std::min(n, starts[static_cast<std::size_t>(r) + 1] * window);
    s.prompts_per_rank.push_back(hi - lo);
    if (r != rank) continue;
    s.lo = lo, s.hi = hi;
    for (std::size_t w0 = lo; w0 < hi; w0 += window)
      for (auto& b : window_batches(tokens, w0, std::min(hi, w0 + window), batch)) s.batches.push_back(std::move(b));
  }
  s.reporter = static_cast<int>(std::max_element(s.prompts_per_rank.begin(), s.prompts_per_rank.end()) - s.prompts_per_rank.begin());
  return s;
}

model::Batch right_padded_batch(const std::vector<std::vector<std::int64_t>>& tokens, const std::vector<std::size_t>& prompts,
                                std::int64_t pad) {
  model::Batch batch;
  batch.batch = static_cast<std::int64_t>(prompts.size());
  for (auto i : prompts) batch.seq = std::max<std::int64_t>(batch.seq, static_cast<std::int64_t>(tokens[i].size()));
  for (auto i : prompts)
    for (std::int64_t t = 0; t < batch.seq; ++t) {
      const bool real = t < static_cast<std::int64_t>(tokens[i].size());
      batch.ids.push_back(real ? tokens[i][static_cast<std::size_t>(t)] : pad);
      batch.mask.push_back(real ? 1 : 0);
    }
  return batch;
}

model::Batch left_padded_batch(const std::vector<std::vector<std::int64_t>>& sequences, std::int64_t pad) {
  model::Batch batch;
  batch.batch = static_cast<std::int64_t>(sequences.size());
  for (const auto& s : sequences) batch.seq = std::max<std::int64_t>(batch.seq, static_cast<std::int64_t>(s.size()));
  for (const auto& s : sequences) {
    const std::int64_t pads = batch.seq - static_cast<std::int64_t>(s.size());
    for (std::int64_t t = 0; t < batch.seq; ++t) {
      const bool real = t >= pads;
      batch.ids.push_back(real ? s[static_cast<std::size_t>(t - pads)] : pad);
      batch.mask.push_back(real ? 1 : 0);
      batch.positions.push_back(real ? t - pads : 0);
    }
  }
  return batch;
}

}  // namespace lmtopo::stages
