// The repetition study of the neurons stage (stages/neurons.hpp; maths in neurons/repetition.hpp).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <sstream>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "io/work_manifest.hpp"
#include "mpi/collective.hpp"
#include "neurons/key_linguistic.hpp"
#include "neurons/repetition.hpp"
#include "stages/decoding.hpp"
#include "stages/neurons_common.hpp"
#include "stages/prompt_batches.hpp"

namespace lmtopo::stages::neurons_common {
namespace {

using Clock = std::chrono::steady_clock;
using Ids = std::vector<std::int64_t>;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void check_options(const RepetitionOptions& r) {
  auto at_least = [](long long v, long long min, const char* option) {
    if (v < min) throw InputError(std::string(option) + ": expected at least " + std::to_string(min) + ", got " + std::to_string(v));
  };
  at_least(r.texts, 1, "--texts");
  at_least(r.prefix_tokens, 1, "--prefix-tokens");
  at_least(r.new_tokens, 1, "--new-tokens");
  at_least(r.ngram, 1, "--ngram");
  at_least(r.min_occurrences, 2, "--min-occurrences");
  at_least(r.window, r.ngram * 1LL, "--window (at least --ngram)");
  at_least(r.span, 1, "--span");
  at_least(r.min_second, r.span, "--min-second (at least --span)");
  at_least(r.top_k, 0, "--top-k");
  if (!std::isfinite(r.activate_value)) throw InputError("--activate-value: expected a finite number");
}

// Prefixes: windows of prefix_tokens consecutive tokens of a prompt drawn uniformly among those long
// enough, at an offset drawn uniformly; the same on every rank.
struct Prefixes {
  std::vector<Ids> ids;
  std::vector<long long> source, offset;
};

Prefixes sample_prefixes(const std::vector<Ids>& tokens, const RepetitionOptions& r, std::uint64_t seed, const std::string& path) {
  std::vector<std::size_t> long_enough;
  for (std::size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i].size() >= static_cast<std::size_t>(r.prefix_tokens)) long_enough.push_back(i);
  if (long_enough.empty())
    throw InputError(path + ": no prompt has " + std::to_string(r.prefix_tokens) + " tokens to sample a prefix from (--prefix-tokens)");
  std::mt19937_64 rng(seed);
  Prefixes p;
  for (int t = 0; t < r.texts; ++t) {
    const std::size_t i = long_enough[std::uniform_int_distribution<std::size_t>(0, long_enough.size() - 1)(rng)];
    const std::size_t at = std::uniform_int_distribution<std::size_t>(0, tokens[i].size() - static_cast<std::size_t>(r.prefix_tokens))(rng);
    p.ids.emplace_back(tokens[i].begin() + static_cast<std::ptrdiff_t>(at), tokens[i].begin() + static_cast<std::ptrdiff_t>(at + r.prefix_tokens));
    p.source.push_back(static_cast<long long>(i));
    p.offset.push_back(static_cast<long long>(at));
  }
  return p;
}

// Every prefix continued greedily under `iv` (each rank decodes its share of batches), prefix included,
// on every rank.
std::vector<Ids> continue_all(model::Transformer& net, const std::vector<Ids>& prefixes, const NeuronsOptions& o, const model::Interventions& iv,
                              const std::string& label, long long& generated, MPI_Comm comm) {
  const BatchShare share = share_batches(prefixes, static_cast<std::size_t>(o.batch), mpi::rank(comm), mpi::size(comm));
  const DecodeOptions decode{o.repetition.new_tokens, 0.0, false, true, iv};
  const std::size_t width = static_cast<std::size_t>(o.repetition.prefix_tokens + o.repetition.new_tokens);
  std::vector<long long> flat(prefixes.size() * width, 0), length(prefixes.size(), 0);
  core::Progress progress(mpi::rank(comm) == share.reporter, label, share.hi - share.lo, "texts", "tokens");
  mpi::on_all(comm, [&] {
    std::vector<std::mt19937_64> unused;
    for (const auto& members : share.batches) {
      unused.resize(members.size());
      const auto continued = continue_batch(net, prefixes, members, decode, unused);
      std::uint64_t made = 0;
      for (std::size_t j = 0; j < members.size(); ++j) {
        Ids text = prefixes[members[j]];
        text.insert(text.end(), continued[j].begin(), continued[j].end());
        std::copy(text.begin(), text.end(), flat.begin() + static_cast<std::ptrdiff_t>(members[j] * width));
        length[members[j]] = static_cast<long long>(text.size());
        made += continued[j].size();
      }
      progress.advance(members.size(), made);
    }
  });
  progress.finish();
  sum_over_ranks(flat, comm);
  sum_over_ranks(length, comm);
  std::vector<Ids> texts;
  for (std::size_t i = 0; i < prefixes.size(); ++i) {
    texts.emplace_back(flat.begin() + static_cast<std::ptrdiff_t>(i * width), flat.begin() + static_cast<std::ptrdiff_t>(i * width + length[i]));
    generated += length[i] - static_cast<long long>(prefixes[i].size());
  }
  return texts;
}

neurons::RepetitionRule rule_of(const RepetitionOptions& r) { return {r.ngram, r.min_occurrences, r.window}; }

bool kept(const neurons::Repetition& f, std::size_t length, const RepetitionOptions& r) {
  return f.found && f.second >= r.min_second && f.second + r.span <= static_cast<std::int64_t>(length);
}

// Mean over the kept texts of each unit's activation rise at the repetition, [layers, units].
std::vector<double> mean_rise(model::Transformer& net, const std::vector<Ids>& texts, const std::vector<neurons::Repetition>& found,
                              const std::vector<std::size_t>& keep, const NeuronsOptions& o, MPI_Comm comm) {
  const auto L = static_cast<std::size_t>(net.config().num_layers), U = static_cast<std::size_t>(net.config().intermediate);
  std::vector<Ids> kept_texts;
  for (auto i : keep) kept_texts.push_back(texts[i]);
  const BatchShare share = share_batches(kept_texts, static_cast<std::size_t>(o.batch), mpi::rank(comm), mpi::size(comm));
  std::vector<double> sum(L * U, 0.0);
  core::Progress progress(mpi::rank(comm) == share.reporter, "repetition mlp_act " + o.model_dir, share.hi - share.lo, "texts", "tokens");
  mpi::on_all(comm, [&] {
    for (const auto& members : share.batches) {
      const model::Batch b = right_padded_batch(kept_texts, members, 0);
      const auto r = net.forward_requests(b, {{"mlp_act", model::Pooling::none, "mlp_act"}}).at("mlp_act");  // [L, b, T, U]
      std::uint64_t tokens = 0;
      for (std::size_t j = 0; j < members.size(); ++j) {
        const auto second = found[keep[members[j]]].second;
        for (std::size_t layer = 0; layer < L; ++layer) {
          const float* acts = r.values.data() + (layer * members.size() + j) * static_cast<std::size_t>(b.seq) * U;
          const auto rise = neurons::activation_rise(acts, b.seq, static_cast<std::int64_t>(U), second, o.repetition.span);
          for (std::size_t u = 0; u < U; ++u) {
            if (!std::isfinite(rise[u])) throw InputError(o.model_dir + ": mlp_act of block " + std::to_string(layer) + " is not finite (NaN or inf activations; corrupt weights?)");
            sum[layer * U + u] += rise[u];
          }
        }
        tokens += kept_texts[members[j]].size();
      }
      progress.advance(members.size(), tokens);
    }
  });
  progress.finish();
  sum_over_ranks(sum, comm);
  for (auto& s : sum) s /= static_cast<double>(keep.size());
  return sum;
}

// A condition of the intervention phase: which units (per block) and what is done to them.
struct Condition {
  std::string name;
  long long draw = -1;
  std::vector<std::vector<std::int64_t>> units;  // [block] -> units
  bool activate = false;
};

model::Interventions interventions_of(const Condition& c, double activate_value) {
  model::Interventions iv;
  for (std::size_t layer = 0; layer < c.units.size(); ++layer)
    for (auto u : c.units[layer]) {
      auto& edits = c.activate ? iv.ffn_add[static_cast<int>(layer)] : iv.ffn_set[static_cast<int>(layer)];
      edits.push_back({u, c.activate ? static_cast<float>(activate_value) : 0.0f});
    }
  return iv;
}

std::vector<Condition> conditions(const std::vector<std::vector<std::int64_t>>& top, std::int64_t units, const NeuronsOptions& o) {
  std::vector<Condition> out{{"deactivate", -1, top, false}, {"activate", -1, top, true}};
  for (int d = 0; d < o.control_draws; ++d) {
    std::vector<std::vector<std::int64_t>> drawn;
    for (std::size_t layer = 0; layer < top.size(); ++layer)
      drawn.push_back(neurons::random_units(units, top[layer].size(), ((o.seed * 1000003ull + 7) * 1000003ull + static_cast<std::uint64_t>(d)) * 1000003ull + layer));
    out.push_back({"random_deactivate", d, drawn, false});
    out.push_back({"random_activate", d, drawn, true});
  }
  return out;
}

struct Results {
  Prefixes prefixes;
  std::vector<Ids> texts;
  std::vector<neurons::Repetition> found;
  std::vector<long long> kept;
  std::vector<double> rise;  // [layers, units]
  std::vector<std::int64_t> top;  // flat indices layer * units + unit, largest rise first
  std::vector<std::string> condition;
  std::vector<long long> draw;
  std::vector<long long> condition_units;  // [condition, K]: flat indices of the units acted on (-1: none)
  std::vector<std::vector<neurons::Repetition>> condition_found;  // [condition][text]
};

void write_texts(RootWriter& w, const Results& r) {
  const std::size_t N = r.texts.size();
  std::size_t width = 0;
  for (const auto& t : r.texts) width = std::max(width, t.size());
  std::vector<long long> ids(N * width, -1), length, first, second, period, occurrences;
  for (std::size_t i = 0; i < N; ++i) {
    std::copy(r.texts[i].begin(), r.texts[i].end(), ids.begin() + static_cast<std::ptrdiff_t>(i * width));
    length.push_back(static_cast<long long>(r.texts[i].size()));
    first.push_back(r.found[i].first);
    second.push_back(r.found[i].second);
    period.push_back(r.found[i].period);
    occurrences.push_back(r.found[i].occurrences);
  }
  w.numbers("/repetition/texts/source", io::DType::i64, {N}, r.prefixes.source.data());
  w.numbers("/repetition/texts/offset", io::DType::i64, {N}, r.prefixes.offset.data());
  w.numbers("/repetition/texts/length", io::DType::i64, {N}, length.data());
  w.numbers("/repetition/texts/ids", io::DType::i64, {N, width}, ids.data());
  w.numbers("/repetition/texts/first", io::DType::i64, {N}, first.data());
  w.numbers("/repetition/texts/second", io::DType::i64, {N}, second.data());
  w.numbers("/repetition/texts/period", io::DType::i64, {N}, period.data());
  w.numbers("/repetition/texts/occurrences", io::DType::i64, {N}, occurrences.data());
  w.numbers("/repetition/texts/kept", io::DType::i64, {N}, r.kept.data());
}

// The units and conditions; returns the two CSV tables.
std::pair<std::string, std::string> write_results(RootWriter& w, const Results& r, std::size_t layers, std::size_t units) {
  std::vector<long long> layer_count(layers, 0), top_layer, top_unit;
  std::vector<double> top_rise;
  std::ostringstream neurons_csv, rate_csv;
  neurons_csv.precision(10);
  rate_csv.precision(10);
  neurons_csv << "rank,layer,unit,delta\n";
  for (std::size_t k = 0; k < r.top.size(); ++k) {
    const auto flat = static_cast<std::size_t>(r.top[k]);
    top_layer.push_back(static_cast<long long>(flat / units));
    top_unit.push_back(static_cast<long long>(flat % units));
    top_rise.push_back(r.rise[flat]);
    ++layer_count[flat / units];
    neurons_csv << k << "," << top_layer.back() << "," << top_unit.back() << "," << top_rise.back() << "\n";
  }
  w.numbers("/repetition/delta", io::DType::f64, {layers, units}, r.rise.data());
  w.numbers("/repetition/layer_count", io::DType::i64, {layers}, layer_count.data());
  w.numbers("/repetition/units/layer", io::DType::i64, {top_layer.size()}, top_layer.data());
  w.numbers("/repetition/units/unit", io::DType::i64, {top_unit.size()}, top_unit.data());
  w.numbers("/repetition/units/delta", io::DType::f64, {top_rise.size()}, top_rise.data());
  const std::size_t C = r.condition.size(), N = r.texts.size();
  std::vector<long long> repeated, second(C * N);
  std::vector<double> rate, mean_second;
  rate_csv << "condition,draw,texts,repeated,rate,mean_second\n";
  for (std::size_t c = 0; c < C; ++c) {
    const auto s = neurons::repetition_rate(r.condition_found[c]);
    repeated.push_back(static_cast<long long>(s.repeated));
    rate.push_back(s.rate);
    mean_second.push_back(s.mean_second);
    for (std::size_t i = 0; i < N; ++i) second[c * N + i] = r.condition_found[c][i].second;
    rate_csv << r.condition[c] << "," << r.draw[c] << "," << s.texts << "," << s.repeated << "," << s.rate << ","
             << (std::isnan(s.mean_second) ? std::string("") : std::to_string(s.mean_second)) << "\n";
  }
  w.strings("/repetition/conditions/name", r.condition);
  w.numbers("/repetition/conditions/draw", io::DType::i64, {C}, r.draw.data());
  w.numbers("/repetition/conditions/repeated", io::DType::i64, {C}, repeated.data());
  w.numbers("/repetition/conditions/rate", io::DType::f64, {C}, rate.data());
  w.numbers("/repetition/conditions/mean_second", io::DType::f64, {C}, mean_second.data());
  w.numbers("/repetition/conditions/second", io::DType::i64, {C, N}, second.data());
  w.numbers("/repetition/conditions/units", io::DType::i64, {C, r.top.size()}, r.condition_units.data());
  return {neurons_csv.str(), rate_csv.str()};
}

void write_outputs(const NeuronsOptions& o, const Results& r, std::size_t layers, std::size_t units, MPI_Comm comm) {
  io::H5Output out(o.output, comm, "neurons/1", o.config);
  const auto& p = o.repetition;
  out.set_attribute("/", "study", o.study);
  out.set_attribute("/", "hook", std::string("mlp_act"));
  out.set_attribute("/", "special_tokens", o.special_tokens);
  for (const auto& [name, value] : {std::pair<const char*, long long>{"ngram", p.ngram}, {"min_occurrences", p.min_occurrences},
                                    {"window", p.window}, {"min_second", p.min_second}, {"span", p.span},
                                    {"top_k", static_cast<long long>(r.top.size())}})
    out.set_attribute("/", name, value);
  out.set_attribute("/", "activate_value", p.activate_value);
  RootWriter w{out, mpi::rank(comm) == 0};
  write_texts(w, r);
  const auto [neurons_csv, rate_csv] = write_results(w, r, layers, units);
  out.commit();
  mpi::on_root(comm, [&, &neurons_csv = neurons_csv, &rate_csv = rate_csv] {
    io::write_file_atomically(csv_base(o.output) + ".repetition_neurons.csv", neurons_csv);
    io::write_file_atomically(csv_base(o.output) + ".repetition_rate.csv", rate_csv);
  });
}

std::size_t top_k_of(const RepetitionOptions& r, std::size_t all_units) {
  if (r.top_k > static_cast<long long>(all_units))
    throw InputError("--top-k: " + std::to_string(r.top_k) + " exceeds the model's " + std::to_string(all_units) + " FFN units (blocks x units)");
  return r.top_k > 0 ? static_cast<std::size_t>(r.top_k) : std::max<std::size_t>(1, static_cast<std::size_t>(std::llround(0.005 * static_cast<double>(all_units))));
}

}  // namespace

NeuronsSummary run_repetition(const NeuronsOptions& o, MPI_Comm comm) {
  const auto& p = o.repetition;
  check_options(p);
  PromptsAndModel own;
  const PromptsAndModel* loaded = nullptr;
  Results r;
  mpi::on_all(comm, [&] {
    loaded = &neurons_common::study_inputs(o, own);
    r.prefixes = sample_prefixes(loaded->tokens, p, o.seed, o.prompts);
  });
  auto& net = *loaded->net;
  const auto L = static_cast<std::size_t>(net.config().num_layers), U = static_cast<std::size_t>(net.config().intermediate);
  const std::size_t K = top_k_of(p, L * U);
  NeuronsSummary s;
  s.layers = static_cast<int>(L);
  s.texts = p.texts;
  s.top_k = static_cast<long long>(K);
  auto t = Clock::now();
  r.texts = continue_all(net, r.prefixes.ids, o, {}, "repetition texts " + o.model_dir, s.generated_tokens, comm);
  s.generation_seconds = seconds_since(t);
  std::vector<std::size_t> keep;
  for (std::size_t i = 0; i < r.texts.size(); ++i) {
    r.found.push_back(neurons::find_repetition(r.texts[i], rule_of(p)));
    r.kept.push_back(kept(r.found.back(), r.texts[i].size(), p) ? 1 : 0);
    if (r.kept.back()) keep.push_back(i);
  }
  if (keep.empty())
    throw InputError(o.model_dir + ": none of the " + std::to_string(r.texts.size()) + " continuations repeats a " + std::to_string(p.ngram) + "-gram " +
                     std::to_string(p.min_occurrences) + " times within " + std::to_string(p.window) + " tokens with its second occurrence at " +
                     std::to_string(p.min_second) + " or later and " + std::to_string(p.span) + " tokens after it (--new-tokens, --min-second, --ngram)");
  s.kept_texts = static_cast<long long>(keep.size());
  t = Clock::now();
  r.rise = mean_rise(net, r.texts, r.found, keep, o, comm);
  r.top = neurons::top_k(r.rise, K);
  s.rise_seconds = seconds_since(t);
  std::vector<std::vector<std::int64_t>> top(L);
  for (auto flat : r.top) top[static_cast<std::size_t>(flat) / U].push_back(static_cast<std::int64_t>(static_cast<std::size_t>(flat) % U));
  for (auto& units : top) std::sort(units.begin(), units.end());
  t = Clock::now();
  r.condition = {"none"};
  r.draw = {-1};
  r.condition_units.assign(K, -1);
  r.condition_found.emplace_back();
  for (const auto& text : r.texts) r.condition_found.back().push_back(neurons::find_repetition(text, rule_of(p)));
  for (const auto& c : conditions(top, static_cast<std::int64_t>(U), o)) {
    const auto texts = continue_all(net, r.prefixes.ids, o, interventions_of(c, p.activate_value),
                                    "repetition " + c.name + (c.draw >= 0 ? " " + std::to_string(c.draw) : "") + " " + o.model_dir, s.generated_tokens, comm);
    r.condition.push_back(c.name);
    r.draw.push_back(c.draw);
    for (std::size_t layer = 0; layer < L; ++layer)
      for (auto u : c.units[layer]) r.condition_units.push_back(static_cast<long long>(layer * U) + u);
    r.condition_found.emplace_back();
    for (const auto& text : texts) r.condition_found.back().push_back(neurons::find_repetition(text, rule_of(p)));
  }
  s.intervention_seconds = seconds_since(t);
  s.base_rate = neurons::repetition_rate(r.condition_found[0]).rate;
  s.deactivated_rate = neurons::repetition_rate(r.condition_found[1]).rate;
  s.activated_rate = neurons::repetition_rate(r.condition_found[2]).rate;
  write_outputs(o, r, L, U, comm);
  return s;
}

}  // namespace lmtopo::stages::neurons_common
