// The key_linguistic study of the neurons stage (stages/neurons.hpp).
#include "stages/neurons.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <sstream>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "io/h5store.hpp"
#include "io/work_manifest.hpp"
#include "model/interventions.hpp"
#include "mpi/collective.hpp"
#include "mpi/large_count.hpp"
#include "neurons/key_linguistic.hpp"
#include "stages/neurons_common.hpp"
#include "stages/prompt_batches.hpp"

namespace lmtopo::stages {
namespace {

using neurons_common::csv_base;
using neurons_common::csv_field;
using neurons_common::RootWriter;
using neurons_common::sum_over_ranks;

// Languages in order of first appearance; each language's last ceil(held_out x n) prompts (file order)
// are held out for the ablation, the rest are analysed. In a parallel corpus whose languages list the
// same groups in the same order, the held-out sentences are translations of each other.
struct PromptSplit {
  std::vector<std::string> languages;
  std::vector<int> language_of;                 // per prompt
  std::vector<std::size_t> analysis, held_out;  // prompt indices, file order
};

PromptSplit split_prompts(const std::vector<io::CorpusRecord>& prompts, const std::string& path, double held_out) {
  PromptSplit s;
  std::map<std::string, int> index;
  std::vector<std::vector<std::size_t>> members;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].lang.empty()) throw InputError(path + ": prompt '" + prompts[i].id + "': lang: needed by the key_linguistic study");
    auto [it, added] = index.emplace(prompts[i].lang, static_cast<int>(s.languages.size()));
    if (added) {
      s.languages.push_back(prompts[i].lang);
      members.emplace_back();
    }
    s.language_of.push_back(it->second);
    members[static_cast<std::size_t>(it->second)].push_back(i);
  }
  if (s.languages.size() < 2) throw InputError(path + ": lang: the key_linguistic study compares languages; found only '" + s.languages[0] + "'");
  std::vector<bool> held(prompts.size(), false);
  for (std::size_t l = 0; l < members.size(); ++l) {
    const auto n = members[l].size();
    const auto k = static_cast<std::size_t>(std::ceil(held_out * static_cast<double>(n)));
    if (n < k + 2 || (held_out > 0 && k == n))
      throw InputError(path + ": language '" + s.languages[l] + "': " + std::to_string(n) + " prompt(s); the study needs at least 2 to analyse" +
                       (held_out > 0 ? " and 1 held out (--held-out " + std::to_string(held_out) + ")" : ""));
    for (std::size_t j = n - k; j < n; ++j) held[members[l][j]] = true;
  }
  for (std::size_t i = 0; i < prompts.size(); ++i) (held[i] ? s.held_out : s.analysis).push_back(i);
  return s;
}

std::vector<std::vector<std::int64_t>> pick(const std::vector<std::vector<std::int64_t>>& tokens, const std::vector<std::size_t>& which) {
  std::vector<std::vector<std::int64_t>> out;
  for (auto i : which) out.push_back(tokens[i]);
  return out;
}

// Perplexity per language of the prompts under `iv` (NaN-free: every language has a scored token).
std::vector<double> perplexity_by_language(model::Transformer& net, const std::vector<std::vector<std::int64_t>>& tokens,
                                           const std::vector<int>& language, std::size_t languages, std::size_t batch,
                                           const model::Interventions& iv, MPI_Comm comm) {
  const BatchShare share = share_batches(tokens, batch, mpi::rank(comm), mpi::size(comm));
  std::vector<double> sum(languages, 0.0), count(languages, 0.0);
  mpi::on_all(comm, [&] {
    for (const auto& members : share.batches) {
      const model::Batch b = right_padded_batch(tokens, members, std::max<std::int64_t>(0, net.config().pad_id));
      const auto nll = net.next_token_nll(b, iv);
      for (std::size_t j = 0; j < members.size(); ++j) {
        const auto l = static_cast<std::size_t>(language[members[j]]);
        for (std::size_t t = 1; t < tokens[members[j]].size(); ++t) sum[l] += nll[j * static_cast<std::size_t>(b.seq) + t];
        count[l] += static_cast<double>(tokens[members[j]].size() - 1);
      }
    }
  });
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, sum.data(), static_cast<int>(languages), MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, count.data(), static_cast<int>(languages), MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  std::vector<double> ppl(languages);
  for (std::size_t l = 0; l < languages; ++l) ppl[l] = std::exp(sum[l] / count[l]);
  return ppl;
}

// Per block and language: shares, z-scores, key units.
struct KeyNeurons {
  std::size_t layers = 0, languages = 0, units = 0;
  std::vector<double> mean_cosine;                          // [layers, languages]
  std::vector<float> share, z;                              // [layers, languages, units]
  std::vector<std::vector<std::vector<std::int64_t>>> keys;  // [layer][language] -> units
  std::vector<float> unit_mean;                             // [layers, units]: over all analysed prompts
};

KeyNeurons find_key_neurons(const std::vector<float>& pooled, std::size_t prompts, std::size_t layers, std::size_t units,
                            const std::vector<int>& language, std::size_t languages, double threshold) {
  KeyNeurons k{layers, languages, units, {}, {}, {}, {}, std::vector<float>(layers * units, 0.0f)};
  std::vector<float> layer_rows(prompts * units);
  for (std::size_t layer = 0; layer < layers; ++layer) {
    for (std::size_t p = 0; p < prompts; ++p)
      for (std::size_t u = 0; u < units; ++u) {
        const float v = pooled[(p * layers + layer) * units + u];
        if (!std::isfinite(v)) throw InputError("mlp_act of block " + std::to_string(layer) + " is not finite (NaN or inf activations; corrupt weights?)");
        layer_rows[p * units + u] = v;
        k.unit_mean[layer * units + u] += v / static_cast<float>(prompts);
      }
    neurons::CosineShares shares;
    try {
      shares = neurons::cosine_shares(layer_rows.data(), static_cast<std::int64_t>(prompts), static_cast<std::int64_t>(units), language,
                                      static_cast<int>(languages));
    } catch (const std::invalid_argument& e) {
      throw InputError("key_linguistic, block " + std::to_string(layer) + ": " + e.what());
    }
    const auto z = neurons::zscores_across_languages(shares);
    k.mean_cosine.insert(k.mean_cosine.end(), shares.mean_cosine.begin(), shares.mean_cosine.end());
    k.share.insert(k.share.end(), shares.share.begin(), shares.share.end());
    k.z.insert(k.z.end(), z.begin(), z.end());
    k.keys.push_back(neurons::key_units(z, static_cast<int>(languages), static_cast<std::int64_t>(units), threshold));
  }
  return k;
}

// The ablation of `units[layer]` at every block: 0, or each unit's mean over the analysed prompts.
model::Interventions ablation(const std::vector<std::vector<std::int64_t>>& units, const KeyNeurons& k, bool to_mean) {
  model::Interventions iv;
  for (std::size_t layer = 0; layer < units.size(); ++layer)
    for (auto u : units[layer])
      iv.ffn_set[static_cast<int>(layer)].push_back({u, to_mean ? k.unit_mean[layer * k.units + static_cast<std::size_t>(u)] : 0.0f});
  return iv;
}

struct AblationResult {
  std::vector<double> base;     // [evaluated]
  std::vector<double> ablated;  // [ablated, evaluated]
  std::vector<double> control;  // [draws, ablated, evaluated]
  std::vector<long long> units; // [ablated]: units set, all blocks
};

AblationResult ablate(model::Transformer& net, const std::vector<std::vector<std::int64_t>>& tokens, const std::vector<int>& language,
                      const KeyNeurons& k, const NeuronsOptions& o, MPI_Comm comm) {
  const std::size_t Lg = k.languages, batch = static_cast<std::size_t>(o.batch);
  const bool to_mean = o.ablation == "mean";
  AblationResult r;
  core::Progress progress(mpi::rank(comm) == 0, "key_linguistic ablation " + o.model_dir,
                          1 + Lg * (1 + static_cast<std::size_t>(o.control_draws)), "evaluations", "");
  r.base = perplexity_by_language(net, tokens, language, Lg, batch, {}, comm);
  progress.advance(1, 0);
  for (std::size_t l = 0; l < Lg; ++l) {
    std::vector<std::vector<std::int64_t>> keys;
    long long total = 0;
    for (std::size_t layer = 0; layer < k.layers; ++layer) {
      keys.push_back(k.keys[layer][l]);
      total += static_cast<long long>(keys.back().size());
    }
    r.units.push_back(total);
    // No key unit anywhere: the ablation is no intervention, its perplexities the base ones.
    const auto ppl = total == 0 ? r.base : perplexity_by_language(net, tokens, language, Lg, batch, ablation(keys, k, to_mean), comm);
    r.ablated.insert(r.ablated.end(), ppl.begin(), ppl.end());
    progress.advance(1, 0);
  }
  r.control.assign(static_cast<std::size_t>(o.control_draws) * Lg * Lg, 0.0);
  for (std::size_t d = 0; d < static_cast<std::size_t>(o.control_draws); ++d)
    for (std::size_t l = 0; l < Lg; ++l) {
      std::vector<std::vector<std::int64_t>> drawn;
      for (std::size_t layer = 0; layer < k.layers; ++layer)
        drawn.push_back(neurons::random_units(static_cast<std::int64_t>(k.units), k.keys[layer][l].size(),
                                              ((o.seed * 1000003ull + l) * 1000003ull + d) * 1000003ull + layer));
      const auto ppl = r.units[l] == 0 ? r.base : perplexity_by_language(net, tokens, language, Lg, batch, ablation(drawn, k, to_mean), comm);
      std::copy(ppl.begin(), ppl.end(), r.control.begin() + static_cast<std::ptrdiff_t>((d * Lg + l) * Lg));
      progress.advance(1, 0);
    }
  progress.finish();
  return r;
}

void write_prompts(RootWriter& w, const PromptSplit& split, const std::vector<io::CorpusRecord>& prompts,
                   const std::vector<std::vector<std::int64_t>>& tokens) {
  std::vector<std::string> ids, langs;
  std::vector<long long> groups, ntok, held(prompts.size(), 0);
  for (auto i : split.held_out) held[i] = 1;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    ids.push_back(prompts[i].id);
    langs.push_back(prompts[i].lang);
    groups.push_back(prompts[i].group);
    ntok.push_back(static_cast<long long>(tokens[i].size()));
  }
  w.strings("/languages/name", split.languages);
  w.strings("/prompts/id", ids);
  w.strings("/prompts/lang", langs);
  w.numbers("/prompts/group", io::DType::i64, {ids.size()}, groups.data());
  w.numbers("/prompts/n_tokens", io::DType::i64, {ids.size()}, ntok.data());
  w.numbers("/prompts/held_out", io::DType::i64, {ids.size()}, held.data());
}

// The key_linguistic group; returns its CSV table.
std::string write_key_neurons(RootWriter& w, const KeyNeurons& k, const std::vector<std::string>& languages) {
  const std::size_t Lg = k.languages;
  w.numbers("/key_linguistic/mean_cosine", io::DType::f64, {k.layers, Lg}, k.mean_cosine.data());
  w.numbers("/key_linguistic/share", io::DType::f32, {k.layers, Lg, k.units}, k.share.data());
  w.numbers("/key_linguistic/z", io::DType::f32, {k.layers, Lg, k.units}, k.z.data());
  std::vector<long long> counts, key_layer, key_lang, key_unit;
  std::vector<double> key_z;
  std::ostringstream csv;
  csv << "layer,language,key_units,mean_cosine\n";
  for (std::size_t layer = 0; layer < k.layers; ++layer)
    for (std::size_t l = 0; l < Lg; ++l) {
      counts.push_back(static_cast<long long>(k.keys[layer][l].size()));
      csv << layer << "," << csv_field(languages[l]) << "," << counts.back() << "," << k.mean_cosine[layer * Lg + l] << "\n";
      for (auto u : k.keys[layer][l]) {
        key_layer.push_back(static_cast<long long>(layer));
        key_lang.push_back(static_cast<long long>(l));
        key_unit.push_back(u);
        key_z.push_back(k.z[(layer * Lg + l) * k.units + static_cast<std::size_t>(u)]);
      }
    }
  w.numbers("/key_linguistic/count", io::DType::i64, {k.layers, Lg}, counts.data());
  w.numbers("/key_linguistic/units/layer", io::DType::i64, {key_layer.size()}, key_layer.data());
  w.numbers("/key_linguistic/units/language", io::DType::i64, {key_lang.size()}, key_lang.data());
  w.numbers("/key_linguistic/units/unit", io::DType::i64, {key_unit.size()}, key_unit.data());
  w.numbers("/key_linguistic/units/z", io::DType::f64, {key_z.size()}, key_z.data());
  return csv.str();
}

// The ablation group; returns its CSV table.
std::string write_ablation(RootWriter& w, const AblationResult& a, const std::vector<std::string>& languages, std::size_t draws) {
  const std::size_t Lg = languages.size();
  const auto d = neurons::ablation_deltas(a.base, a.ablated, a.control, draws);
  w.numbers("/ablation/perplexity_base", io::DType::f64, {Lg}, a.base.data());
  w.numbers("/ablation/perplexity", io::DType::f64, {Lg, Lg}, a.ablated.data());
  w.numbers("/ablation/delta", io::DType::f64, {Lg, Lg}, d.delta.data());
  w.numbers("/ablation/ablated_units", io::DType::i64, {Lg}, a.units.data());
  w.numbers("/ablation/control_perplexity", io::DType::f64, {draws, Lg, Lg}, a.control.data());
  w.numbers("/ablation/control_delta_mean", io::DType::f64, {Lg, Lg}, d.control_mean.data());
  w.numbers("/ablation/control_delta_sd", io::DType::f64, {Lg, Lg}, d.control_sd.data());
  std::ostringstream csv;
  csv.precision(10);
  csv << "ablated,evaluated,ablated_units,perplexity_base,perplexity_ablated,delta,control_delta_mean,control_delta_sd\n";
  for (std::size_t i = 0; i < Lg * Lg; ++i)
    csv << csv_field(languages[i / Lg]) << "," << csv_field(languages[i % Lg]) << "," << a.units[i / Lg] << "," << a.base[i % Lg] << ","
        << a.ablated[i] << "," << d.delta[i] << "," << d.control_mean[i] << "," << d.control_sd[i] << "\n";
  return csv.str();
}

// neurons/1, committed before the CSV tables beside it (rank 0) are written.
void write_outputs(const NeuronsOptions& o, const PromptSplit& split, const std::vector<io::CorpusRecord>& prompts,
                   const std::vector<std::vector<std::int64_t>>& tokens, const KeyNeurons& k, const AblationResult& a, MPI_Comm comm) {
  io::H5Output out(o.output, comm, "neurons/1", o.config);
  out.set_attribute("/", "study", o.study);
  out.set_attribute("/", "hook", std::string("mlp_act"));
  out.set_attribute("/", "pooling", std::string("mean"));
  out.set_attribute("/", "special_tokens", o.special_tokens);
  out.set_attribute("/", "ablation", o.ablation);
  RootWriter w{out, mpi::rank(comm) == 0};
  write_prompts(w, split, prompts, tokens);
  const std::string key_csv = write_key_neurons(w, k, split.languages);
  const std::string ablation_csv = a.base.empty() ? "" : write_ablation(w, a, split.languages, static_cast<std::size_t>(o.control_draws));
  out.commit();
  mpi::on_root(comm, [&] {
    io::write_file_atomically(csv_base(o.output) + ".key_neurons.csv", key_csv);
    if (!a.base.empty()) io::write_file_atomically(csv_base(o.output) + ".ablation.csv", ablation_csv);
  });
}

}  // namespace

NeuronsSummary neurons_common::run_key_linguistic(const NeuronsOptions& o, MPI_Comm comm) {
  if (!(o.threshold > 0) || !std::isfinite(o.threshold)) throw InputError("--threshold: expected a positive z-score");
  if (!(o.held_out >= 0 && o.held_out <= 0.9)) throw InputError("--held-out: expected a share in [0, 0.9]");
  if (o.ablation != "zero" && o.ablation != "mean") throw InputError("--ablation: expected zero or mean, got '" + o.ablation + "'");
  PromptsAndModel own;
  const PromptsAndModel* loaded = nullptr;
  PromptSplit split;
  mpi::on_all(comm, [&] {
    loaded = &neurons_common::study_inputs(o, own);
    split = split_prompts(loaded->prompts, o.prompts, o.held_out);
    for (auto i : split.held_out)
      if (loaded->tokens[i].size() < 2)
        throw InputError(o.prompts + ": prompt '" + loaded->prompts[i].id + "': held out for the ablation but has " +
                         std::to_string(loaded->tokens[i].size()) + " token(s); nothing to score");
  });
  auto& net = *loaded->net;
  const auto& c = net.config();
  const auto L = static_cast<std::size_t>(c.num_layers), U = static_cast<std::size_t>(c.intermediate);
  std::vector<int> analysis_lang, held_lang;
  for (auto i : split.analysis) analysis_lang.push_back(split.language_of[i]);
  for (auto i : split.held_out) held_lang.push_back(split.language_of[i]);
  const auto t0 = std::chrono::steady_clock::now();
  const auto pooled = neurons_common::mean_pooled(net, pick(loaded->tokens, split.analysis), static_cast<std::size_t>(o.batch), "mlp_act", "key_linguistic mlp_act " + o.model_dir, comm);
  KeyNeurons k;
  mpi::on_all(comm, [&] {
    try {
      k = find_key_neurons(pooled, split.analysis.size(), L, U, analysis_lang, split.languages.size(), o.threshold);
    } catch (const InputError& e) {
      throw InputError(o.model_dir + ": " + e.what());
    }
  });
  const auto t1 = std::chrono::steady_clock::now();
  AblationResult a;
  if (!split.held_out.empty()) a = ablate(net, pick(loaded->tokens, split.held_out), held_lang, k, o, comm);
  const auto t2 = std::chrono::steady_clock::now();
  write_outputs(o, split, loaded->prompts, loaded->tokens, k, a, comm);
  NeuronsSummary s{static_cast<int>(L), static_cast<int>(split.languages.size()), static_cast<long long>(split.analysis.size()),
                   static_cast<long long>(split.held_out.size()), 0, std::chrono::duration<double>(t1 - t0).count(),
                   std::chrono::duration<double>(t2 - t1).count()};
  for (const auto& per_layer : k.keys)
    for (const auto& units : per_layer) s.key_units += static_cast<long long>(units.size());
  return s;
}

}  // namespace lmtopo::stages
