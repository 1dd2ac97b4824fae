#include "stages/generate.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "core/provenance.hpp"
#include "io/corpus.hpp"
#include "io/work_manifest.hpp"
#include "model/interventions.hpp"
#include "model/tokenizer.hpp"
#include "mpi/collective.hpp"
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

// Continues the prompts `members` together, left-padded so that each row's newest token is in the last
// column, numbered from its first real token. A row stops at EOS or at the model's learned positions;
// until every row has, stopped rows run along (their tokens are ignored).
std::vector<std::vector<std::int64_t>> continue_batch(model::Transformer& net, const std::vector<std::vector<std::int64_t>>& tokens,
                                                      const std::vector<std::size_t>& members, const GenerateOptions& o,
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

}  // namespace

GenerateSummary run_generate(const GenerateOptions& o, MPI_Comm comm) {
  mpi::ensure_initialized();
  const int rank = mpi::rank(comm), size = mpi::size(comm);
  if (o.batch < 1) throw InputError("--batch: expected at least 1, got " + std::to_string(o.batch));
  if (o.max_new_tokens < 1) throw InputError("--max-new-tokens: expected at least 1, got " + std::to_string(o.max_new_tokens));
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature)) throw InputError("--temperature: expected a number >= 0");
  PromptsAndModel loaded;
  mpi::on_all(comm, [&] {
    loaded = load_prompts_and_model(o.prompts, {o.model_dir, o.architecture, o.device, model::WeightDType::float32, o.threads},
                                    o.special_tokens);
    loaded.net->next_token_nll(right_padded_batch(loaded.tokens, {0}, 0), o.interventions);  // interventions checked on every rank
  });
  const auto& prompts = loaded.prompts;
  const auto& tokens = loaded.tokens;
  auto& net = loaded.net;
  const auto& tok = loaded.tokenizer;
  const std::size_t n = prompts.size();
  const BatchShare share = share_batches(tokens, static_cast<std::size_t>(o.batch), rank, size);
  std::vector<long long> counts(n, 0);
  std::vector<std::vector<std::int64_t>> generated(n);
  core::Progress progress(rank == share.reporter, "generate " + o.model_dir, share.hi - share.lo, "prompts", "tokens");
  const auto started = std::chrono::steady_clock::now();
  mpi::on_all(comm, [&] {
    for (const auto& members : share.batches) {
      std::vector<std::mt19937_64> rngs;
      for (auto i : members) rngs.emplace_back(o.seed * 1000003ull + i);  // per prompt: draws independent of batching
      auto continuations = continue_batch(*net, tokens, members, o, rngs);
      std::uint64_t made = 0;
      for (std::size_t row = 0; row < members.size(); ++row) {
        made += continuations[row].size();
        counts[members[row]] = static_cast<long long>(continuations[row].size());
        generated[members[row]] = std::move(continuations[row]);
      }
      progress.advance(members.size(), made);
    }
  });
  progress.finish();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, comm), "MPI_Allreduce");
  // Every rank's ids to rank 0, which decodes and writes the file (temporary name + rename).
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, counts.data(), static_cast<int>(n), MPI_LONG_LONG, MPI_SUM, comm), "MPI_Allreduce");
  std::vector<std::int64_t> mine, all;
  for (std::size_t i = share.lo; i < share.hi; ++i) mine.insert(mine.end(), generated[i].begin(), generated[i].end());
  all = mpi::gather_to_root(comm, mine, MPI_INT64_T);
  GenerateSummary s;
  s.prompts = static_cast<long long>(n);
  s.seconds = seconds;
  for (auto c : counts) s.generated_tokens += c;
  std::vector<int> threads(static_cast<std::size_t>(size));
  const int my_threads = core::compute_threads();
  mpi::check(MPI_Allgather(&my_threads, 1, MPI_INT, threads.data(), 1, MPI_INT, comm), "MPI_Allgather");
  mpi::on_root(comm, [&] {
    nlohmann::json created = core::created_by(size);
    created["threads_per_rank"] = threads;
    const nlohmann::json provenance = {{"lmtopo_schema", "generation/1"}, {"lmtopo_version", core::lmtopo_version()},
                                       {"git_sha", core::git_sha()}, {"git_dirty", core::git_dirty()}, {"config", o.config},
                                       {"interventions", model::interventions_to_json(o.interventions)}, {"created_by", created}};
    io::write_file_atomically(o.output + ".provenance.json", provenance.dump(2) + "\n");
    std::string text;
    std::size_t at = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const std::vector<std::int64_t> ids(all.begin() + static_cast<std::ptrdiff_t>(at), all.begin() + static_cast<std::ptrdiff_t>(at + counts[i]));
      at += static_cast<std::size_t>(counts[i]);
      nlohmann::json line = {{"id", prompts[i].id}, {"lang", prompts[i].lang}, {"prompt_ids", tokens[i]},
                             {"generated_ids", ids}, {"text", tok->decode(ids, true)}};
      text += line.dump() + "\n";
    }
    io::write_file_atomically(o.output, text);
  });
  return s;
}

}  // namespace lmtopo::stages
