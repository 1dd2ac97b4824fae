#include "stages/generate.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <random>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "core/provenance.hpp"
#include "io/corpus.hpp"
#include "io/h5store.hpp"
#include "io/work_manifest.hpp"
#include "model/interventions.hpp"
#include "model/tokenizer.hpp"
#include "mpi/collective.hpp"
#include "stages/decoding.hpp"
#include "stages/prompt_batches.hpp"

namespace lmtopo::stages {
namespace {

// The states of every generated token (in prompt order, then step), written collectively: each rank its
// prompts' tokens, [points, tokens, width] per hook.
void write_states(const GenerateOptions& o, const PromptsAndModel& loaded, const std::vector<long long>& counts,
                  const std::vector<std::vector<std::vector<float>>>& states_of, const std::vector<std::vector<std::int64_t>>& generated,
                  const BatchShare& share, MPI_Comm comm) {
  const auto& c = loaded.net->config();
  std::uint64_t before = 0, total = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (i < share.lo) before += static_cast<std::uint64_t>(counts[i]);
    total += static_cast<std::uint64_t>(counts[i]);
  }
  std::vector<long long> prompt, step, position, token_id;
  for (std::size_t i = share.lo; i < share.hi; ++i)
    for (long long k = 0; k < counts[i]; ++k) {
      prompt.push_back(static_cast<long long>(i));
      step.push_back(k);
      position.push_back(static_cast<long long>(loaded.tokens[i].size()) - 1 + k);
      token_id.push_back(generated[i][static_cast<std::size_t>(k)]);
    }
  const std::uint64_t mine = prompt.size();
  io::H5Output out(o.states_output, comm, "generation-states/1", o.config);
  out.set_attribute("/", "interventions", model::interventions_to_json(o.interventions).dump());
  out.set_attribute("/", "special_tokens", o.special_tokens);
  io::RootWriter w{out, mpi::rank(comm) == 0};
  std::vector<std::string> ids, langs;
  for (const auto& p : loaded.prompts) {
    ids.push_back(p.id);
    langs.push_back(p.lang);
  }
  w.strings("/prompts/id", ids);
  w.strings("/prompts/lang", langs);
  for (const auto& [name, v] : std::map<std::string, const std::vector<long long>*>{
           {"/tokens/prompt", &prompt}, {"/tokens/step", &step}, {"/tokens/position", &position}, {"/tokens/token_id", &token_id}}) {
    out.create_numeric(name, io::DType::i64, {total}, false);
    out.write_rows(name, before, mine, v->data());
  }
  for (std::size_t h = 0; h < o.hooks.size(); ++h) {
    const auto points = loaded.net->point_names(o.hooks[h]);
    const std::size_t P = points.size(), W = static_cast<std::size_t>(model::hook_width(c, o.hooks[h]));
    std::vector<float> slab(P * mine * W);  // [points, my tokens, width] from each prompt's [token][point][width]
    std::size_t t = 0;
    for (std::size_t i = share.lo; i < share.hi; ++i)
      for (long long k = 0; k < counts[i]; ++k, ++t)
        for (std::size_t p = 0; p < P; ++p) {
          const float* v = states_of[i][h].data() + (static_cast<std::size_t>(k) * P + p) * W;
          std::copy(v, v + W, slab.begin() + static_cast<std::ptrdiff_t>((p * mine + t) * W));
        }
    const std::string name = "/states/" + o.hooks[h];
    out.create_numeric(name, io::DType::f32, {P, total, W}, false);
    out.write_slab(name, 1, before, mine, slab.data());
    out.set_attribute(name, "points", points);
    out.set_attribute(name, "hook", o.hooks[h]);
  }
  out.commit();
}

}  // namespace

GenerateSummary run_generate(const GenerateOptions& o, MPI_Comm comm) {
  mpi::ensure_initialized();
  const int rank = mpi::rank(comm), size = mpi::size(comm);
  if (o.batch < 1) throw InputError("--batch: expected at least 1, got " + std::to_string(o.batch));
  if (o.max_new_tokens < 1) throw InputError("--max-new-tokens: expected at least 1, got " + std::to_string(o.max_new_tokens));
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature)) throw InputError("--temperature: expected a number >= 0");
  if (!o.hooks.empty() && o.states_output.empty()) throw InputError("--hook: needs --states-output FILE.h5 for the captured states");
  if (o.hooks.empty() && !o.states_output.empty()) throw InputError("--states-output: needs at least one --hook to capture");
  PromptsAndModel loaded;
  mpi::on_all(comm, [&] {
    loaded = load_prompts_and_model(o.prompts, {o.model_dir, o.architecture, o.device, model::WeightDType::float32, o.threads},
                                    o.special_tokens);
    loaded.net->next_token_nll(right_padded_batch(loaded.tokens, {0}, 0), o.interventions);  // interventions checked on every rank
    for (const auto& h : o.hooks) (void)loaded.net->point_names(h);                          // and the hooks
  });
  const auto& prompts = loaded.prompts;
  const auto& tokens = loaded.tokens;
  auto& net = loaded.net;
  const auto& tok = loaded.tokenizer;
  const std::size_t n = prompts.size();
  const BatchShare share = share_batches(tokens, static_cast<std::size_t>(o.batch), rank, size);
  const DecodeOptions decode{o.max_new_tokens, o.temperature, o.stop_at_eos, o.kv_cache, o.interventions};
  std::vector<long long> counts(n, 0);
  std::vector<std::vector<std::int64_t>> generated(n);
  std::vector<std::vector<std::vector<float>>> states_of(n);  // [prompt][hook]: [token][point][width]
  core::Progress progress(rank == share.reporter, "generate " + o.model_dir, share.hi - share.lo, "prompts", "tokens");
  const auto started = std::chrono::steady_clock::now();
  mpi::on_all(comm, [&] {
    for (const auto& members : share.batches) {
      std::vector<std::mt19937_64> rngs;
      for (auto i : members) rngs.emplace_back(o.seed * 1000003ull + i);  // per prompt: draws independent of batching
      CapturedStates states{o.hooks, {}, {}, {}};
      auto continuations = continue_batch(*net, tokens, members, decode, rngs, o.hooks.empty() ? nullptr : &states);
      std::uint64_t made = 0;
      for (std::size_t row = 0; row < members.size(); ++row) {
        made += continuations[row].size();
        counts[members[row]] = static_cast<long long>(continuations[row].size());
        generated[members[row]] = std::move(continuations[row]);
        if (!o.hooks.empty()) states_of[members[row]] = std::move(states.rows[row]);
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
  if (!o.hooks.empty()) write_states(o, loaded, counts, states_of, generated, share, comm);
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
