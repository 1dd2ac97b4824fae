#include "stages/eval.hpp"

#include <chrono>
#include <cmath>
#include <map>
#include <sstream>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "io/corpus.hpp"
#include "io/h5store.hpp"
#include "model/interventions.hpp"
#include "model/tokenizer.hpp"
#include "mpi/collective.hpp"
#include "stages/prompt_batches.hpp"

namespace lmtopo::stages {
namespace {

// This rank's scored tokens, in prompt order.
struct ScoredTokens {
  std::vector<float> nll;
  std::vector<long long> prompt, position, token_id;
};

double perplexity_of(double nll_sum, long long scored) { return scored > 0 ? std::exp(nll_sum / static_cast<double>(scored)) : NAN; }

void write_prompt_table(io::H5Output& out, const std::vector<io::CorpusRecord>& prompts, const std::vector<std::vector<std::int64_t>>& tokens,
                        const std::vector<double>& nll_sum, const std::vector<long long>& scored, std::size_t lo, std::size_t hi) {
  const std::size_t n = prompts.size(), count = hi - lo;
  std::vector<std::string> ids, langs;
  std::vector<long long> groups, ntok, my_scored;
  std::vector<double> sums, means, ppl;
  std::size_t width = 1;
  for (std::size_t i = lo; i < hi; ++i) {
    ids.push_back(prompts[i].id);
    langs.push_back(prompts[i].lang);
    groups.push_back(prompts[i].group);
    ntok.push_back(static_cast<long long>(tokens[i].size()));
    my_scored.push_back(scored[i]);
    sums.push_back(nll_sum[i]);
    means.push_back(scored[i] > 0 ? nll_sum[i] / static_cast<double>(scored[i]) : NAN);
    ppl.push_back(perplexity_of(nll_sum[i], scored[i]));
    width = std::max({width, ids.back().size(), langs.back().size()});
  }
  out.create_strings("/prompts/id", n, width, false);
  out.create_strings("/prompts/lang", n, width, false);
  out.write_string_rows("/prompts/id", lo, ids);
  out.write_string_rows("/prompts/lang", lo, langs);
  for (const auto& [name, v] : std::map<std::string, const std::vector<long long>*>{
           {"/prompts/group", &groups}, {"/prompts/n_tokens", &ntok}, {"/nll/scored", &my_scored}}) {
    out.create_numeric(name, io::DType::i64, {n}, false);
    out.write_rows(name, lo, count, v->data());
  }
  for (const auto& [name, v] : std::map<std::string, const std::vector<double>*>{
           {"/nll/sum", &sums}, {"/nll/mean", &means}, {"/nll/perplexity", &ppl}}) {
    out.create_numeric(name, io::DType::f64, {n}, false);
    out.write_rows(name, lo, count, v->data());
  }
}

// Token-weighted per language (in order of first appearance) and over everything; rank 0 writes.
void write_language_table(io::H5Output& out, const std::vector<io::CorpusRecord>& prompts, const std::vector<double>& nll_sum,
                          const std::vector<long long>& scored, bool writer, EvalSummary& s) {
  std::vector<std::string> names;
  std::map<std::string, std::pair<double, long long>> by_lang;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    if (!by_lang.count(prompts[i].lang)) names.push_back(prompts[i].lang);
    by_lang[prompts[i].lang].first += nll_sum[i];
    by_lang[prompts[i].lang].second += scored[i];
    s.scored_tokens += scored[i];
    s.mean_nll += nll_sum[i];
  }
  s.perplexity = perplexity_of(s.mean_nll, s.scored_tokens);
  s.mean_nll = s.scored_tokens > 0 ? s.mean_nll / static_cast<double>(s.scored_tokens) : NAN;
  std::vector<long long> lang_scored;
  std::vector<double> lang_mean, lang_ppl;
  std::size_t width = 1;
  for (const auto& l : names) {
    const auto [sum, k] = by_lang[l];
    lang_scored.push_back(k);
    lang_mean.push_back(k > 0 ? sum / static_cast<double>(k) : NAN);
    lang_ppl.push_back(perplexity_of(sum, k));
    s.languages.push_back({l, k, lang_mean.back(), lang_ppl.back()});
    width = std::max(width, l.size());
  }
  const std::uint64_t rows = writer ? names.size() : 0;
  out.create_strings("/languages/name", names.size(), width, false);
  out.write_string_rows("/languages/name", 0, writer ? names : std::vector<std::string>{});
  out.create_numeric("/languages/scored", io::DType::i64, {names.size()}, false);
  out.write_rows("/languages/scored", 0, rows, lang_scored.data());
  out.create_numeric("/languages/mean_nll", io::DType::f64, {names.size()}, false);
  out.write_rows("/languages/mean_nll", 0, rows, lang_mean.data());
  out.create_numeric("/languages/perplexity", io::DType::f64, {names.size()}, false);
  out.write_rows("/languages/perplexity", 0, rows, lang_ppl.data());
  const long long all_scored[1] = {s.scored_tokens};
  const double all_mean[1] = {s.mean_nll}, all_ppl[1] = {s.perplexity};
  out.create_numeric("/overall/scored", io::DType::i64, {1}, false);
  out.write_rows("/overall/scored", 0, writer ? 1 : 0, all_scored);
  out.create_numeric("/overall/mean_nll", io::DType::f64, {1}, false);
  out.write_rows("/overall/mean_nll", 0, writer ? 1 : 0, all_mean);
  out.create_numeric("/overall/perplexity", io::DType::f64, {1}, false);
  out.write_rows("/overall/perplexity", 0, writer ? 1 : 0, all_ppl);
}

void write_token_table(io::H5Output& out, const ScoredTokens& mine, const std::vector<long long>& scored, std::size_t lo) {
  std::uint64_t before = 0, total = 0;
  for (std::size_t i = 0; i < scored.size(); ++i) {
    if (i < lo) before += static_cast<std::uint64_t>(scored[i]);
    total += static_cast<std::uint64_t>(scored[i]);
  }
  const std::uint64_t count = mine.nll.size();
  out.create_numeric("/tokens/nll", io::DType::f32, {total}, false);
  out.write_rows("/tokens/nll", before, count, mine.nll.data());
  for (const auto& [name, v] : std::map<std::string, const std::vector<long long>*>{
           {"/tokens/prompt", &mine.prompt}, {"/tokens/position", &mine.position}, {"/tokens/token_id", &mine.token_id}}) {
    out.create_numeric(name, io::DType::i64, {total}, false);
    out.write_rows(name, before, count, v->data());
  }
}

// Keeps the first `n` prompts of each language, in file order.
void keep_first_per_language(PromptsAndModel& loaded, long long n) {
  std::map<std::string, long long> seen;
  std::vector<io::CorpusRecord> prompts;
  std::vector<std::vector<std::int64_t>> tokens;
  for (std::size_t i = 0; i < loaded.prompts.size(); ++i)
    if (seen[loaded.prompts[i].lang]++ < n) {
      prompts.push_back(loaded.prompts[i]);
      tokens.push_back(loaded.tokens[i]);
    }
  loaded.prompts = std::move(prompts);
  loaded.tokens = std::move(tokens);
}

// Scores every prompt of this rank's share under `c`'s interventions and writes c.output.
EvalSummary evaluate_condition(const EvalOptions& o, const EvalCondition& c, PromptsAndModel& loaded, const BatchShare& share,
                               MPI_Comm comm) {
  const int rank = mpi::rank(comm), size = mpi::size(comm);
  const auto& prompts = loaded.prompts;
  const auto& tokens = loaded.tokens;
  auto& net = loaded.net;
  const std::size_t n = prompts.size();
  std::vector<double> nll_sum(n, 0.0);
  std::vector<long long> scored(n, 0);
  ScoredTokens mine;
  // The rank with the largest share reports it; the shares are balanced by tokens, so its ETA is the job's.
  core::Progress progress(rank == share.reporter,
                          "eval " + o.model_dir + (c.name.empty() ? "" : " [" + c.name + "]") +
                              (size > 1 ? " (rank " + std::to_string(share.reporter) + " of " + std::to_string(size) + ")" : ""),
                          share.hi - share.lo, "prompts", "tokens");
  std::map<std::size_t, std::vector<float>> nll_of;  // prompt of mine -> its scored tokens' NLL
  const auto started = std::chrono::steady_clock::now();
  mpi::on_all(comm, [&] {
    for (const auto& members : share.batches) {
      const model::Batch batch = right_padded_batch(tokens, members, std::max<long long>(0, net->config().pad_id));
      const auto nll = net->next_token_nll(batch, c.interventions);
      long long batch_tokens = 0;
      for (std::size_t j = 0; j < members.size(); ++j) {
        const std::size_t i = members[j];
        auto& values = nll_of[i];
        for (std::size_t t = 1; t < tokens[i].size(); ++t) {
          const float v = nll[j * static_cast<std::size_t>(batch.seq) + t];
          if (!std::isfinite(v)) throw InputError(o.model_dir + ": non-finite log-likelihood for prompt '" + prompts[i].id + "' (corrupt weights?)");
          nll_sum[i] += v;
          values.push_back(v);
        }
        scored[i] = static_cast<long long>(tokens[i].size()) - 1;
        batch_tokens += static_cast<long long>(tokens[i].size());
      }
      progress.advance(members.size(), static_cast<std::uint64_t>(batch_tokens));
    }
  });
  for (const auto& [i, values] : nll_of)  // prompt order
    for (std::size_t t = 0; t < values.size(); ++t) {
      mine.nll.push_back(values[t]);
      mine.prompt.push_back(static_cast<long long>(i));
      mine.position.push_back(static_cast<long long>(t + 1));
      mine.token_id.push_back(tokens[i][t + 1]);
    }
  progress.finish();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, comm), "MPI_Allreduce");
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, nll_sum.data(), static_cast<int>(n), MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, scored.data(), static_cast<int>(n), MPI_LONG_LONG, MPI_SUM, comm), "MPI_Allreduce");

  io::H5Output out(c.output, comm, "eval/1", o.config);
  out.set_attribute("/", "interventions", model::interventions_to_json(c.interventions).dump());
  if (!c.name.empty()) out.set_attribute("/", "condition", c.name);
  out.set_attribute("/", "special_tokens", o.special_tokens);
  out.set_attribute("/", "weights_dtype", o.dtype);
  out.set_attribute("/", "log_base", std::string("e"));
  EvalSummary s;
  s.prompts = static_cast<long long>(n);
  s.seconds = seconds;
  write_prompt_table(out, prompts, tokens, nll_sum, scored, share.lo, share.hi);
  write_language_table(out, prompts, nll_sum, scored, rank == 0, s);
  write_token_table(out, mine, scored, share.lo);
  out.commit();
  return s;
}

}  // namespace

std::vector<EvalSummary> run_eval_conditions(const EvalOptions& o, const std::vector<EvalCondition>& conditions, MPI_Comm comm) {
  mpi::ensure_initialized();
  const int rank = mpi::rank(comm), size = mpi::size(comm);
  if (o.dtype != "float32" && o.dtype != "bfloat16") throw InputError("--dtype: expected float32 or bfloat16, got '" + o.dtype + "'");
  if (o.batch < 1) throw InputError("--batch: expected at least 1, got " + std::to_string(o.batch));
  PromptsAndModel loaded;
  mpi::on_all(comm, [&] {
    loaded = load_prompts_and_model(o.prompts, {o.model_dir, o.architecture, o.device,
                                                o.dtype == "bfloat16" ? model::WeightDType::bfloat16 : model::WeightDType::float32, o.threads},
                                    o.special_tokens);
    if (o.per_language > 0) keep_first_per_language(loaded, o.per_language);
    for (const auto& c : conditions)  // interventions checked on every rank before any work
      loaded.net->next_token_nll(right_padded_batch(loaded.tokens, {0}, 0), c.interventions);
  });
  const BatchShare share = share_batches(loaded.tokens, static_cast<std::size_t>(o.batch), rank, size);
  std::vector<EvalSummary> out;
  for (const auto& c : conditions) out.push_back(evaluate_condition(o, c, loaded, share, comm));
  return out;
}

std::string perplexity_table(const std::string& lead_header, const std::vector<std::string>& leads, const std::vector<EvalSummary>& scores) {
  std::ostringstream csv;
  csv.precision(10);
  csv << lead_header << "language,scored_tokens,mean_nll,perplexity,delta_nll\n";
  const auto& base = scores.front();
  for (std::size_t i = 0; i < scores.size(); ++i) {
    for (std::size_t l = 0; l < scores[i].languages.size(); ++l) {
      const auto& s = scores[i].languages[l];
      csv << leads[i] << s.language << "," << s.scored_tokens << "," << s.mean_nll << "," << s.perplexity << "," << s.mean_nll - base.languages[l].mean_nll
          << "\n";
    }
    csv << leads[i] << "all," << scores[i].scored_tokens << "," << scores[i].mean_nll << "," << scores[i].perplexity << ","
        << scores[i].mean_nll - base.mean_nll << "\n";
  }
  return csv.str();
}

EvalSummary run_eval(const EvalOptions& o, MPI_Comm comm) { return run_eval_conditions(o, {{"", o.interventions, o.output}}, comm).front(); }

}  // namespace lmtopo::stages
