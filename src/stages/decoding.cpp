#include "stages/decoding.hpp"

#include <algorithm>
#include <cmath>

#include "stages/prompt_batches.hpp"

namespace lmtopo::stages {
namespace {

// The next token from the last position's logits: argmax, or a draw from softmax(logits / T).
std::int64_t next_token(const float* logits, std::int64_t vocab, double temperature, std::mt19937_64& rng) {
  if (temperature <= 0) return std::max_element(logits, logits + vocab) - logits;
  const float top = *std::max_element(logits, logits + vocab);
  std::vector<double> weights(static_cast<std::size_t>(vocab));
  for (std::int64_t v = 0; v < vocab; ++v) weights[static_cast<std::size_t>(v)] = std::exp((logits[v] - top) / temperature);
  std::discrete_distribution<std::int64_t> pick(weights.begin(), weights.end());
  return pick(rng);
}

}  // namespace

std::vector<std::vector<std::int64_t>> continue_batch(model::Transformer& net, const std::vector<std::vector<std::int64_t>>& tokens,
                                                      const std::vector<std::size_t>& members, const DecodeOptions& o,
                                                      std::vector<std::mt19937_64>& rngs) {
  const auto& c = net.config();
  const std::int64_t pad = std::max<std::int64_t>(0, c.pad_id);
  std::vector<std::vector<std::int64_t>> sequences, out(members.size());
  for (auto i : members) sequences.push_back(tokens[i]);
  auto at_limit = [&](std::size_t r) { return c.max_positions > 0 && sequences[r].size() >= static_cast<std::size_t>(c.max_positions); };
  std::vector<bool> stopped(members.size());
  for (std::size_t r = 0; r < members.size(); ++r) stopped[r] = at_limit(r);
  // With the cache, the first step runs the prompts and every later one only the newest tokens.
  const auto cache = o.kv_cache ? net.new_decoding_cache() : nullptr;
  model::Batch batch = left_padded_batch(sequences, pad);
  for (int step = 0; step < o.max_new_tokens && std::count(stopped.begin(), stopped.end(), false) > 0; ++step) {
    const auto r = net.forward_requests(batch, {}, true, o.interventions, cache.get()).at("logits");  // [B, T, vocab]
    const std::int64_t T = r.shape[1], vocab = r.shape[2];
    model::Batch next{batch.batch, 1, {}, std::vector<std::int64_t>(members.size(), 1), {}};
    for (std::size_t row = 0; row < members.size(); ++row) {
      if (!stopped[row]) {
        const float* last = r.values.data() + (static_cast<std::size_t>(row) * static_cast<std::size_t>(T) + static_cast<std::size_t>(T - 1)) *
                                                  static_cast<std::size_t>(vocab);
        const std::int64_t token = next_token(last, vocab, o.temperature, rngs[row]);
        out[row].push_back(token);
        sequences[row].push_back(token);
        stopped[row] = (o.stop_at_eos && token == c.eos_id) || at_limit(row);
      }
      next.ids.push_back(stopped[row] ? pad : sequences[row].back());
      next.positions.push_back(stopped[row] ? 0 : static_cast<std::int64_t>(sequences[row].size()) - 1);
    }
    batch = cache ? std::move(next) : left_padded_batch(sequences, pad);
  }
  return out;
}

}  // namespace lmtopo::stages
