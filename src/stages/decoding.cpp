#include "stages/decoding.hpp"

#include <algorithm>
#include <cmath>
#include <map>

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

// Each running row's states at its newest position ([points, B, width] per hook) appended to its rows.
void keep_newest_states(const std::map<std::string, model::HookResult>& results, const std::vector<bool>& stopped, CapturedStates& s) {
  s.points.resize(s.hooks.size());
  s.width.resize(s.hooks.size());
  for (std::size_t h = 0; h < s.hooks.size(); ++h) {
    const auto& r = results.at(s.hooks[h]);
    const std::int64_t points = r.shape[0], rows = r.shape[1], width = r.shape[2];
    s.points[h] = r.points;
    s.width[h] = width;
    for (std::int64_t row = 0; row < rows; ++row) {
      if (stopped[static_cast<std::size_t>(row)]) continue;
      auto& out = s.rows[static_cast<std::size_t>(row)][h];
      for (std::int64_t p = 0; p < points; ++p) {
        const float* v = r.values.data() + static_cast<std::size_t>((p * rows + row) * width);
        out.insert(out.end(), v, v + width);
      }
    }
  }
}

}  // namespace

std::vector<std::vector<std::int64_t>> continue_batch(model::Transformer& net, const std::vector<std::vector<std::int64_t>>& tokens,
                                                      const std::vector<std::size_t>& members, const DecodeOptions& o,
                                                      std::vector<std::mt19937_64>& rngs, CapturedStates* states) {
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
  // Left padding puts every row's newest token in the last column: "last" pooling is its state.
  std::vector<model::Transformer::HookRequest> requests;
  if (states) {
    for (const auto& h : states->hooks) requests.push_back({h, model::Pooling::last, h});
    states->rows.assign(members.size(), std::vector<std::vector<float>>(states->hooks.size()));
  }
  for (int step = 0; step < o.max_new_tokens && std::count(stopped.begin(), stopped.end(), false) > 0; ++step) {
    const auto results = net.forward_requests(batch, requests, true, o.interventions, cache.get());
    const auto& r = results.at("logits");  // [B, T, vocab]
    if (states) keep_newest_states(results, stopped, *states);
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
