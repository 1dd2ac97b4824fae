#include "stages/prompt_batches.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace lmtopo::stages {
namespace {

// Splits global batches into contiguous per-rank ranges with about equal token counts.
std::vector<std::size_t> balanced_batch_starts(const std::vector<long long>& batch_tokens, int ranks) {
  long long total = 0;
  for (auto t : batch_tokens) total += t;
  std::vector<std::size_t> starts(static_cast<std::size_t>(ranks) + 1, batch_tokens.size());
  starts[0] = 0;
  long long acc = 0;
  std::size_t b = 0;
  for (int r = 1; r < ranks; ++r) {
    const long long target = total * r / ranks;
    while (b < batch_tokens.size() && acc + batch_tokens[b] / 2 < target) acc += batch_tokens[b++];
    starts[static_cast<std::size_t>(r)] = b;
  }
  return starts;
}

}  // namespace

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

BatchShare share_batches(const std::vector<std::vector<std::int64_t>>& tokens, std::size_t batch, int rank, int ranks) {
  const std::size_t n = tokens.size();
  std::vector<long long> batch_tokens((n + batch - 1) / batch, 0);
  for (std::size_t i = 0; i < n; ++i) batch_tokens[i / batch] += static_cast<long long>(tokens[i].size());
  const auto starts = balanced_batch_starts(batch_tokens, ranks);
  BatchShare s;
  for (int r = 0; r < ranks; ++r) {
    const std::size_t lo = std::min(n, starts[static_cast<std::size_t>(r)] * batch);
    const std::size_t hi = std::min(n, starts[static_cast<std::size_t>(r) + 1] * batch);
    s.prompts_per_rank.push_back(hi - lo);
    if (r == rank) s.lo = lo, s.hi = hi;
  }
  return s;
}

model::Batch right_padded_batch(const std::vector<std::vector<std::int64_t>>& tokens, std::size_t b0, std::size_t b1,
                                std::int64_t pad) {
  model::Batch batch;
  batch.batch = static_cast<std::int64_t>(b1 - b0);
  for (std::size_t i = b0; i < b1; ++i) batch.seq = std::max<std::int64_t>(batch.seq, static_cast<std::int64_t>(tokens[i].size()));
  for (std::size_t i = b0; i < b1; ++i)
    for (std::int64_t t = 0; t < batch.seq; ++t) {
      const bool real = t < static_cast<std::int64_t>(tokens[i].size());
      batch.ids.push_back(real ? tokens[i][static_cast<std::size_t>(t)] : pad);
      batch.mask.push_back(real ? 1 : 0);
    }
  return batch;
}

}  // namespace lmtopo::stages
