// The sensitive_directions study of the neurons stage (stages/neurons.hpp; maths in
// neurons/sensitive_directions.hpp).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <sstream>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "io/safetensors.hpp"
#include "io/work_manifest.hpp"
#include "mpi/collective.hpp"
#include "neurons/sensitive_directions.hpp"
#include "stages/neurons_common.hpp"
#include "stages/prompt_batches.hpp"

namespace lmtopo::stages::neurons_common {
namespace {

using Ids = std::vector<std::int64_t>;
constexpr double kQuantiles[] = {0.1, 0.25, 0.5, 0.75, 0.9};
constexpr std::size_t kNumQuantiles = sizeof(kQuantiles) / sizeof(kQuantiles[0]);

std::vector<int> checked_blocks(const SensitiveOptions& s, int layers) {
  const std::set<std::string> known{"random", "towards_other", "gaussian", "sae"};
  if (s.families.empty()) throw InputError("--families: expected at least one of random, towards_other, gaussian, sae");
  for (const auto& f : s.families)
    if (!known.count(f)) throw InputError("--families: unknown family '" + f + "' (expected random, towards_other, gaussian, sae)");
  if (std::set<std::string>(s.families.begin(), s.families.end()).size() != s.families.size()) throw InputError("--families: a family is listed twice");
  if (s.lengths.empty()) throw InputError("--lengths: expected at least one length");
  for (std::size_t i = 0; i < s.lengths.size(); ++i)
    if (!(s.lengths[i] >= 0) || !std::isfinite(s.lengths[i]) || (i > 0 && !(s.lengths[i] > s.lengths[i - 1])))
      throw InputError("--lengths: expected finite lengths >= 0 in increasing order");
  if (!(s.ridge >= 0) || !std::isfinite(s.ridge)) throw InputError("--ridge: expected a number >= 0");
  if (!(s.kl_threshold > 0) || !std::isfinite(s.kl_threshold)) throw InputError("--kl-threshold: expected a positive number");
  std::vector<int> blocks = s.blocks.empty() ? std::vector<int>{layers / 2} : s.blocks;
  for (int b : blocks)
    if (b < 0 || b >= layers) throw InputError("--blocks: block " + std::to_string(b) + " outside 0.." + std::to_string(layers - 1));
  if (std::set<int>(blocks.begin(), blocks.end()).size() != blocks.size()) throw InputError("--blocks: a block is listed twice");
  const bool sae = std::count(s.families.begin(), s.families.end(), "sae") > 0;
  if (sae && s.sae_decoders.size() != blocks.size())
    throw InputError("--sae-decoders: family sae needs one decoder per studied block (" + std::to_string(blocks.size()) + "), got " +
                     std::to_string(s.sae_decoders.size()));
  if (!sae && !s.sae_decoders.empty()) throw InputError("--sae-decoders: given, but --families does not list sae");
  return blocks;
}

// An SAE decoder [features, hidden] as float, read from `path` (safetensors: F32, F16 or BF16), and the
// indices of its non-zero rows (dead features have none to point along).
struct SaeDecoder {
  std::vector<float> rows;
  std::vector<std::size_t> live;
};

SaeDecoder read_sae_decoder(const std::string& path, const std::string& tensor, std::size_t H) {
  const io::SafetensorsFile file(path);
  const auto it = file.tensors().find(tensor);
  if (it == file.tensors().end()) throw InputError(path + ": no tensor '" + tensor + "' (--sae-tensor)");
  const io::TensorView& t = it->second;
  if (t.shape.size() != 2 || static_cast<std::size_t>(t.shape[1]) != H)
    throw InputError(path + ": " + tensor + ": expected shape [features, " + std::to_string(H) + "] (the model's hidden size)" +
                     (t.shape.size() == 2 && static_cast<std::size_t>(t.shape[0]) == H ? ", got [hidden, features]: transpose it" : ""));
  if (t.dtype == io::TensorDType::i32) throw InputError(path + ": " + tensor + ": dtype I32; expected F32, F16 or BF16");
  SaeDecoder d{io::tensor_as_float(t), {}};
  const std::size_t F = static_cast<std::size_t>(t.shape[0]);
  for (std::size_t f = 0; f < F; ++f) {
    double sq = 0;
    for (std::size_t h = 0; h < H; ++h) {
      const float v = d.rows[f * H + h];
      if (!std::isfinite(v)) throw InputError(path + ": " + tensor + ": row " + std::to_string(f) + " is not finite (NaN or inf)");
      sq += static_cast<double>(v) * v;
    }
    if (sq > 0) d.live.push_back(f);
  }
  if (d.live.empty()) throw InputError(path + ": " + tensor + ": every row is zero");
  return d;
}

// Each prompt's residual stream before each studied block at its last token, and the moments of every
// token's there (for the Gaussian fit), on every rank.
struct BlockActivations {
  std::vector<double> last;       // [blocks, prompts, hidden]
  std::vector<double> sum;        // [blocks, hidden]
  std::vector<double> sum_outer;  // [blocks, hidden, hidden]
  double tokens = 0;
};

BlockActivations block_activations(model::Transformer& net, const std::vector<Ids>& tokens, const std::vector<int>& blocks,
                                   const NeuronsOptions& o, MPI_Comm comm) {
  const auto H = static_cast<std::size_t>(net.config().hidden), P = tokens.size(), nb = blocks.size();
  BlockActivations a{std::vector<double>(nb * P * H, 0.0), std::vector<double>(nb * H, 0.0), std::vector<double>(nb * H * H, 0.0), 0};
  const BatchShare share = share_batches(tokens, static_cast<std::size_t>(o.batch), mpi::rank(comm), mpi::size(comm));
  core::Progress progress(mpi::rank(comm) == share.reporter, "sensitive_directions block_input " + o.model_dir, share.hi - share.lo, "prompts", "tokens");
  mpi::on_all(comm, [&] {
    for (const auto& members : share.batches) {
      const model::Batch b = right_padded_batch(tokens, members, 0);
      const auto r = net.forward_requests(b, {{"block_input", model::Pooling::none, "block_input"}}).at("block_input");  // [layers, B, T, H]
      const auto T = static_cast<std::size_t>(b.seq);
      std::uint64_t seen = 0;
      for (std::size_t k = 0; k < nb; ++k)
        for (std::size_t j = 0; j < members.size(); ++j) {
          const std::size_t n = tokens[members[j]].size();
          const float* rows = r.values.data() + ((static_cast<std::size_t>(blocks[k]) * members.size() + j) * T) * H;
          for (std::size_t i = 0; i < H * n; ++i)
            if (!std::isfinite(rows[i])) throw InputError(o.model_dir + ": the residual stream before block " + std::to_string(blocks[k]) + " is not finite (NaN or inf; corrupt weights?)");
          neurons::accumulate_moments(rows, static_cast<std::int64_t>(n), static_cast<std::int64_t>(H), a.sum.data() + k * H, a.sum_outer.data() + k * H * H);
          std::copy(rows + (n - 1) * H, rows + n * H, a.last.begin() + static_cast<std::ptrdiff_t>((k * P + members[j]) * H));
          if (k == 0) {
            a.tokens += static_cast<double>(n);
            seen += n;
          }
        }
      progress.advance(members.size(), seen);
    }
  });
  progress.finish();
  sum_over_ranks(a.last, comm);
  sum_over_ranks(a.sum, comm);
  sum_over_ranks(a.sum_outer, comm);
  std::vector<double> count{a.tokens};
  sum_over_ranks(count, comm);
  a.tokens = count[0];
  for (std::size_t k = 0; k < nb; ++k) {
    std::vector<double> m(a.sum_outer.begin() + static_cast<std::ptrdiff_t>(k * H * H), a.sum_outer.begin() + static_cast<std::ptrdiff_t>((k + 1) * H * H));
    neurons::symmetric_from_upper(m, static_cast<std::int64_t>(H));
    std::copy(m.begin(), m.end(), a.sum_outer.begin() + static_cast<std::ptrdiff_t>(k * H * H));
  }
  return a;
}

// Unit directions [blocks, families, prompts, hidden], the same on every rank; `other[k * P + p]` is the
// prompt whose activation towards_other points to at block k; fits[k] the Gaussian of block k (when
// asked for).
struct Directions {
  std::vector<float> unit;
  std::vector<long long> other;        // [blocks, prompts]
  std::vector<long long> sae_feature;  // [blocks, prompts]: the decoder row of family sae
  std::vector<neurons::GaussianFit> fits;
};

std::uint64_t mix(std::uint64_t seed, std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  return ((seed * 1000003ull + a) * 1000003ull + b) * 1000003ull + c;
}

// Another prompt drawn uniformly (seeded) among those whose activation at block k differs from p's
// (prompts ending in the same token share it at block 0); -1 if none does in 64 draws.
long long other_prompt(const std::vector<double>& last, std::size_t k, std::size_t p, std::size_t P, std::size_t H, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const double* x = last.data() + (k * P + p) * H;
  for (int attempt = 0; attempt < 64; ++attempt) {
    const auto pick = std::uniform_int_distribution<std::size_t>(0, P - 2)(rng);
    const std::size_t o = pick >= p ? pick + 1 : pick;
    const double* y = last.data() + (k * P + o) * H;
    if (!std::equal(x, x + H, y)) return static_cast<long long>(o);
  }
  return -1;
}

Directions directions(const BlockActivations& a, const std::vector<int>& blocks, std::size_t P, std::size_t H, const NeuronsOptions& o) {
  const auto& fam = o.sensitive.families;
  Directions d{std::vector<float>(blocks.size() * fam.size() * P * H), std::vector<long long>(blocks.size() * P, -1),
               std::vector<long long>(blocks.size() * P, -1), {}};
  const bool towards = std::count(fam.begin(), fam.end(), "towards_other") > 0;
  if (towards && P < 2) throw InputError(o.prompts + ": towards_other needs at least 2 prompts");
  for (std::size_t k = 0; k < blocks.size(); ++k) {
    SaeDecoder sae;
    if (!o.sensitive.sae_decoders.empty()) sae = read_sae_decoder(o.sensitive.sae_decoders[k], o.sensitive.sae_tensor, H);
    if (std::count(fam.begin(), fam.end(), "gaussian")) {
      const std::vector<double> sum(a.sum.begin() + static_cast<std::ptrdiff_t>(k * H), a.sum.begin() + static_cast<std::ptrdiff_t>((k + 1) * H));
      const std::vector<double> outer(a.sum_outer.begin() + static_cast<std::ptrdiff_t>(k * H * H), a.sum_outer.begin() + static_cast<std::ptrdiff_t>((k + 1) * H * H));
      try {
        d.fits.push_back(neurons::fit_gaussian(sum, outer, a.tokens, static_cast<std::int64_t>(H), o.sensitive.ridge));
      } catch (const std::invalid_argument& e) {
        throw InputError(o.model_dir + ": block " + std::to_string(blocks[k]) + ": " + e.what() + " (--ridge)");
      }
    }
    for (std::size_t f = 0; f < fam.size(); ++f)
      for (std::size_t p = 0; p < P; ++p) {
        std::mt19937_64 rng(mix(o.seed, static_cast<std::uint64_t>(blocks[k]), f, p));
        std::vector<double> u(H);
        if (fam[f] == "random") u = neurons::isotropic_direction(static_cast<std::int64_t>(H), rng);
        if (fam[f] == "gaussian") u = neurons::gaussian_difference(d.fits.back(), rng);
        if (fam[f] == "towards_other") {
          d.other[k * P + p] = other_prompt(a.last, k, p, P, H, mix(o.seed, 17, static_cast<std::uint64_t>(blocks[k]), p));
          if (d.other[k * P + p] < 0)
            throw InputError(o.prompts + ": prompt row " + std::to_string(p) + ": towards_other found no prompt with another activation at block " +
                             std::to_string(blocks[k]) + " in 64 draws");
          for (std::size_t i = 0; i < H; ++i) u[i] = a.last[(k * P + static_cast<std::size_t>(d.other[k * P + p])) * H + i] - a.last[(k * P + p) * H + i];
        }
        if (fam[f] == "sae") {
          const std::size_t row = sae.live[std::uniform_int_distribution<std::size_t>(0, sae.live.size() - 1)(rng)];
          d.sae_feature[k * P + p] = static_cast<long long>(row);
          for (std::size_t i = 0; i < H; ++i) u[i] = sae.rows[row * H + i];
        }
        double norm = 0;
        for (double x : u) norm += x * x;
        norm = std::sqrt(norm);
        if (!(norm > 0))
          throw InputError(o.prompts + ": prompt row " + std::to_string(p) + ": its " + fam[f] + " direction at block " + std::to_string(blocks[k]) +
                           " is zero");
        for (std::size_t i = 0; i < H; ++i) d.unit[((k * fam.size() + f) * P + p) * H + i] = static_cast<float>(u[i] / norm);
      }
  }
  return d;
}

// KL [blocks, families, prompts, lengths]: each rank its prompts' (by batches), summed over the ranks.
std::vector<double> sensitivity(model::Transformer& net, const std::vector<Ids>& tokens, const std::vector<int>& blocks, const Directions& d,
                                const NeuronsOptions& o, long long& rows_run, MPI_Comm comm) {
  const auto& s = o.sensitive;
  const std::size_t P = tokens.size(), H = static_cast<std::size_t>(net.config().hidden), nf = s.families.size(), nl = s.lengths.size();
  std::vector<double> kl(blocks.size() * nf * P * nl, 0.0);
  const BatchShare share = share_batches(tokens, static_cast<std::size_t>(o.batch), mpi::rank(comm), mpi::size(comm));
  core::Progress progress(mpi::rank(comm) == share.reporter, "sensitive_directions perturbations " + o.model_dir, share.hi - share.lo, "prompts", "forward rows");
  mpi::on_all(comm, [&] {
    for (const auto& members : share.batches) {
      const model::Batch clean_batch = right_padded_batch(tokens, members, 0);
      const auto clean = net.forward_requests(clean_batch, {}, true).at("logits");  // [m, T, vocab]
      const auto V = static_cast<std::size_t>(clean.shape[2]);
      auto clean_last = [&](std::size_t j) {
        return clean.values.data() + (j * static_cast<std::size_t>(clean_batch.seq) + tokens[members[j]].size() - 1) * V;
      };
      // Rows (member, length) of one block and family, run `batch` rows at a time.
      std::vector<std::pair<std::size_t, std::size_t>> rows;
      for (std::size_t j = 0; j < members.size(); ++j)
        for (std::size_t l = 0; l < nl; ++l) rows.push_back({j, l});
      std::uint64_t run_here = 0;
      for (std::size_t k = 0; k < blocks.size(); ++k)
        for (std::size_t f = 0; f < nf; ++f)
          for (std::size_t at = 0; at < rows.size(); at += static_cast<std::size_t>(o.batch)) {
            const std::size_t n = std::min(rows.size() - at, static_cast<std::size_t>(o.batch));
            std::vector<std::size_t> prompt_of;
            model::RowResidualEdit edit;
            for (std::size_t r = at; r < at + n; ++r) {
              const auto [j, l] = rows[r];
              const std::size_t p = members[j];
              prompt_of.push_back(p);
              edit.position.push_back(static_cast<std::int64_t>(tokens[p].size()) - 1);
              const float* u = d.unit.data() + ((k * nf + f) * P + p) * H;
              for (std::size_t i = 0; i < H; ++i) edit.vectors.push_back(static_cast<float>(s.lengths[l] * u[i]));
            }
            model::Interventions iv;
            iv.residual_add_at[blocks[k]] = std::move(edit);
            const model::Batch b = right_padded_batch(tokens, prompt_of, 0);
            const auto logits = net.forward_requests(b, {}, true, iv).at("logits");
            for (std::size_t r = 0; r < n; ++r) {
              const auto [j, l] = rows[at + r];
              const std::size_t p = members[j];
              const float* perturbed = logits.values.data() + (r * static_cast<std::size_t>(b.seq) + tokens[p].size() - 1) * V;
              kl[((k * nf + f) * P + p) * nl + l] = neurons::kl_from_logits(clean_last(j), perturbed, static_cast<std::int64_t>(V));
            }
            run_here += n;
          }
      rows_run += static_cast<long long>(run_here);
      progress.advance(members.size(), run_here);
    }
  });
  progress.finish();
  sum_over_ranks(kl, comm);
  return kl;
}

struct Curves {
  std::vector<double> mean;       // [blocks, families, lengths]
  std::vector<double> quantiles;  // [blocks, families, quantiles, lengths]
  std::vector<double> crossing;   // [blocks, families]
};

Curves summarise(const std::vector<double>& kl, std::size_t nb, std::size_t nf, std::size_t P, const SensitiveOptions& s) {
  const std::size_t nl = s.lengths.size();
  Curves c;
  for (std::size_t k = 0; k < nb * nf; ++k) {
    std::vector<double> curve;
    std::vector<std::vector<double>> at(nl);
    for (std::size_t p = 0; p < P; ++p)
      for (std::size_t l = 0; l < nl; ++l) at[l].push_back(kl[(k * P + p) * nl + l]);
    for (std::size_t l = 0; l < nl; ++l) {
      double sum = 0;
      for (double v : at[l]) sum += v;
      curve.push_back(sum / static_cast<double>(P));
    }
    c.mean.insert(c.mean.end(), curve.begin(), curve.end());
    for (double q : kQuantiles)
      for (std::size_t l = 0; l < nl; ++l) c.quantiles.push_back(neurons::quantile(at[l], q));
    c.crossing.push_back(neurons::crossing_length(s.lengths, curve, s.kl_threshold));
  }
  return c;
}

std::string number(double v) { return io::csv_number(v); }

void write_outputs(const NeuronsOptions& o, const std::vector<io::CorpusRecord>& prompts, const std::vector<Ids>& tokens, const std::vector<int>& blocks,
                   const BlockActivations& a, const Directions& d, const std::vector<double>& kl, const Curves& c, std::size_t H, MPI_Comm comm) {
  const auto& s = o.sensitive;
  const std::size_t nb = blocks.size(), nf = s.families.size(), nl = s.lengths.size(), P = tokens.size();
  io::H5Output out(o.output, comm, "neurons/1", o.config);
  out.set_attribute("/", "study", o.study);
  out.set_attribute("/", "hook", std::string("block_input"));
  out.set_attribute("/", "special_tokens", o.special_tokens);
  out.set_attribute("/", "position", std::string("last"));
  out.set_attribute("/", "kl_threshold", s.kl_threshold);
  out.set_attribute("/", "ridge", s.ridge);
  RootWriter w{out, mpi::rank(comm) == 0};
  std::vector<std::string> ids;
  std::vector<long long> ntok, position, block_ids(blocks.begin(), blocks.end());
  std::vector<double> norm(nb * P), quantile_levels(std::begin(kQuantiles), std::end(kQuantiles));
  for (std::size_t p = 0; p < P; ++p) {
    ids.push_back(prompts[p].id);
    ntok.push_back(static_cast<long long>(tokens[p].size()));
    position.push_back(ntok.back() - 1);
  }
  for (std::size_t i = 0; i < nb * P; ++i) {
    double sq = 0;
    for (std::size_t h = 0; h < H; ++h) sq += a.last[i * H + h] * a.last[i * H + h];
    norm[i] = std::sqrt(sq);
  }
  w.strings("/prompts/id", ids);
  w.numbers("/prompts/n_tokens", io::DType::i64, {P}, ntok.data());
  w.numbers("/sensitive/blocks", io::DType::i64, {nb}, block_ids.data());
  w.strings("/sensitive/families", s.families);
  w.numbers("/sensitive/lengths", io::DType::f64, {nl}, s.lengths.data());
  w.numbers("/sensitive/quantile_levels", io::DType::f64, {kNumQuantiles}, quantile_levels.data());
  w.numbers("/sensitive/position", io::DType::i64, {P}, position.data());
  w.numbers("/sensitive/other", io::DType::i64, {nb, P}, d.other.data());
  if (!s.sae_decoders.empty()) {
    w.numbers("/sensitive/sae/feature", io::DType::i64, {nb, P}, d.sae_feature.data());
    w.strings("/sensitive/sae/decoder", s.sae_decoders);
  }
  w.numbers("/sensitive/residual_norm", io::DType::f64, {nb, P}, norm.data());
  w.numbers("/sensitive/directions", io::DType::f32, {nb, nf, P, H}, d.unit.data());
  w.numbers("/sensitive/kl", io::DType::f64, {nb, nf, P, nl}, kl.data());
  w.numbers("/sensitive/kl_mean", io::DType::f64, {nb, nf, nl}, c.mean.data());
  w.numbers("/sensitive/kl_quantiles", io::DType::f64, {nb, nf, kNumQuantiles, nl}, c.quantiles.data());
  w.numbers("/sensitive/crossing_length", io::DType::f64, {nb, nf}, c.crossing.data());
  if (!d.fits.empty()) {
    std::vector<double> mean, cov;
    for (const auto& f : d.fits) {
      mean.insert(mean.end(), f.mean.begin(), f.mean.end());
      cov.insert(cov.end(), f.covariance.begin(), f.covariance.end());
    }
    w.numbers("/sensitive/gaussian/mean", io::DType::f64, {nb, H}, mean.data());
    w.numbers("/sensitive/gaussian/covariance", io::DType::f64, {nb, H, H}, cov.data());
  }
  out.commit();
  std::ostringstream curves, crossing;
  curves << "block,family,length,kl_mean,kl_q10,kl_q25,kl_median,kl_q75,kl_q90\n";
  crossing << "block,family,kl_threshold,crossing_length\n";
  for (std::size_t k = 0; k < nb; ++k)
    for (std::size_t f = 0; f < nf; ++f) {
      const std::size_t bf = k * nf + f;
      for (std::size_t l = 0; l < nl; ++l) {
        curves << blocks[k] << "," << s.families[f] << "," << number(s.lengths[l]) << "," << number(c.mean[bf * nl + l]);
        for (std::size_t q = 0; q < kNumQuantiles; ++q) curves << "," << number(c.quantiles[(bf * kNumQuantiles + q) * nl + l]);
        curves << "\n";
      }
      crossing << blocks[k] << "," << s.families[f] << "," << number(s.kl_threshold) << "," << number(c.crossing[bf]) << "\n";
    }
  mpi::on_root(comm, [&] {
    io::write_file_atomically(csv_base(o.output) + ".sensitivity.csv", curves.str());
    io::write_file_atomically(csv_base(o.output) + ".crossing.csv", crossing.str());
  });
}

}  // namespace

NeuronsSummary run_sensitive_directions(const NeuronsOptions& o, MPI_Comm comm) {
  PromptsAndModel own;
  const PromptsAndModel* loaded = nullptr;
  std::vector<int> blocks;
  mpi::on_all(comm, [&] {
    loaded = &neurons_common::study_inputs(o, own);
    blocks = checked_blocks(o.sensitive, loaded->net->config().num_layers);
  });
  auto& net = *loaded->net;
  const auto H = static_cast<std::size_t>(net.config().hidden), P = loaded->tokens.size();
  NeuronsSummary s;
  s.layers = net.config().num_layers;
  s.prompts = static_cast<long long>(P);
  auto t = std::chrono::steady_clock::now();
  const auto a = block_activations(net, loaded->tokens, blocks, o, comm);
  Directions d;
  mpi::on_all(comm, [&] { d = directions(a, blocks, P, H, o); });
  s.activation_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  t = std::chrono::steady_clock::now();
  const auto kl = sensitivity(net, loaded->tokens, blocks, d, o, s.perturbed_rows, comm);
  std::vector<long long> rows{s.perturbed_rows};
  sum_over_ranks(rows, comm);
  s.perturbed_rows = rows[0];
  s.perturbation_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  const auto curves = summarise(kl, blocks.size(), o.sensitive.families.size(), P, o.sensitive);
  write_outputs(o, loaded->prompts, loaded->tokens, blocks, a, d, kl, curves, H, comm);
  return s;
}

}  // namespace lmtopo::stages::neurons_common
