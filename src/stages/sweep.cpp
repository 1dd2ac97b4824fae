#include "stages/sweep.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iomanip>
#include <limits>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>

#include "core/error.hpp"
#include "core/permutation.hpp"
#include "geometry/bootstrap.hpp"
#include "geometry/distributed_similarity.hpp"
#include "io/h5store.hpp"
#include "io/work_manifest.hpp"
#include "mpi/collective.hpp"

namespace fs = std::filesystem;

namespace lmtopo::stages {

const std::vector<std::string>& sweep_metric_names() {
  static const std::vector<std::string> names = {"cka_linear_biased", "cka_linear_unbiased", "cosine", "mutual_knn",
                                                 "retrieval", "lrds", "sads", "twonn", "angular_distance", "block_influence"};
  return names;
}

const std::vector<std::string>& sweep_pair_names() {
  static const std::vector<std::string> names = {"layer_layer", "language_language", "checkpoint_checkpoint", "model_model"};
  return names;
}

int SweepBlock::groups(std::size_t checkpoints, int block_size) {
  if (block_size <= 0) return 1;
  return static_cast<int>((checkpoints + static_cast<std::size_t>(block_size) - 1) / static_cast<std::size_t>(block_size));
}

int SweepBlock::group_of(std::size_t checkpoint) const {
  return block_size <= 0 ? 0 : static_cast<int>(checkpoint / static_cast<std::size_t>(block_size));
}

bool SweepBlock::reads(std::size_t checkpoint) const {
  return block_size <= 0 || group_of(checkpoint) == row || group_of(checkpoint) == col;
}

bool SweepBlock::owns(std::size_t a, std::size_t b) const {
  if (block_size <= 0) return true;
  const int ga = group_of(a), gb = group_of(b);
  return (ga == row && gb == col) || (ga == col && gb == row);
}

namespace {

using geometry::HsicEstimator;

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

// One activations file's hook: [points, prompts, width], read one point at a time, each rank its
// own rows of it (a hyperslab: petsc_rows of the prompts).
struct Source {
  std::string path, label;
  std::unique_ptr<io::H5Input> in;
  std::string dataset;
  std::size_t points = 0, prompts = 0, width = 0;
  std::vector<std::string> point_names, ids, langs;
  std::vector<long long> groups;

  // Collective: this rank's rows of point p in float64; a read error or a NaN on any rank is raised on
  // every rank (naming the first bad prompt row).
  std::vector<double> point(std::size_t p, MPI_Comm comm) const {
    const double t0 = MPI_Wtime();
    const geometry::RowBlock b = geometry::petsc_rows(comm, prompts);
    std::vector<double> x;
    mpi::on_all(comm, [&] {
      const auto f = in->read_f32_block(dataset, {p, b.row0, 0}, {1, b.rows, width});
      x.assign(f.begin(), f.end());
      geometry::require_finite(x.data(), b.rows, width, path + ": " + dataset + " point " + std::to_string(p), b.row0);
    });
    geometry::phase_seconds()["reading activations"] += MPI_Wtime() - t0;
    return x;
  }
};

Source open_source(const std::string& path, const std::string& label, const std::string& hook) {
  Source s;
  s.path = path;
  s.label = label.empty() ? fs::path(path).stem().string() : label;
  s.in = std::make_unique<io::H5Input>(path);
  s.dataset = "/activations/" + hook;
  if (!s.in->has_dataset(s.dataset)) throw InputError(path + ": no dataset " + s.dataset + " (expected an activations/1 file with that hook)");
  const auto info = s.in->dataset(s.dataset);
  if (info.shape.size() != 3) throw InputError(path + ": " + s.dataset + ": expected [points, prompts, width]");
  s.points = info.shape[0];
  s.prompts = info.shape[1];
  s.width = info.shape[2];
  s.point_names = split_lines(s.in->string_attribute(s.dataset, "points"));
  s.ids = s.in->read_strings("/prompts/id");
  s.langs = s.in->read_strings("/prompts/lang");
  s.groups = s.in->read_i64("/prompts/group");
  if (s.ids.size() != s.prompts) throw InputError(path + ": /prompts/id has " + std::to_string(s.ids.size()) + " rows, expected " + std::to_string(s.prompts));
  return s;
}

// Collective: this rank's rows of the representation whose row i is row index[i] of x (x: this rank's
// rows of n_src rows; index: the whole new order, repeats allowed) — a permutation, a bootstrap draw,
// or one language's sentences picked out of a point.
std::vector<double> reindexed_rows(MPI_Comm comm, const double* x_rows, std::size_t n_src, std::size_t d,
                                   const std::vector<std::size_t>& index) {
  const geometry::RowBlock b = geometry::petsc_rows(comm, index.size());
  const std::vector<std::size_t> wanted(index.begin() + static_cast<std::ptrdiff_t>(b.row0),
                                        index.begin() + static_cast<std::ptrdiff_t>(b.row0 + b.rows));
  return geometry::fetch_rows(comm, x_rows, n_src, d, wanted);
}

// A result: a float64 array with its shape, axes and conventions, and its null when there is one.
struct Result {
  std::vector<std::uint64_t> shape;
  std::vector<double> values, null;
  std::vector<double> ci;  // with a bootstrap: [values..., 2] (lower, upper)
  std::string axes, estimator;
};

// The metric a result belongs to (retrieval_top1 and _top5 are retrieval's).
std::string metric_of(const std::string& result) { return result.rfind("retrieval_", 0) == 0 ? "retrieval" : result; }

// The interval array of every result whose metric gets intervals, NaN until set (a bootstrapped sweep).
void prepare_intervals(std::map<std::string, Result>& results, const std::function<bool(const std::string&)>& with_interval) {
  for (auto& [m, r] : results)
    if (with_interval(metric_of(m))) r.ci.assign(r.values.size() * 2, std::numeric_limits<double>::quiet_NaN());
}

// What each metric's interval resamples (docs/methods.md, "Bootstrap intervals").
const char* bootstrap_method(const std::string& metric) {
  if (metric == "mutual_knn") return "per-prompt scores |kNN_X(i) ∩ kNN_Y(i)|/k of the full set, averaged over each draw's prompts";
  if (metric == "retrieval_top1" || metric == "retrieval_top5") return "per-query hits of the full set, averaged over each draw's queries";
  if (metric == "twonn") return "per-prompt ratios r2/r1 of the full set, refitted on each draw's prompts";
  if (metric == "cosine" || metric == "angular_distance" || metric == "block_influence")
    return "per-prompt cosines, averaged over each draw's prompts (equal to recomputing on the drawn rows)";
  if (metric == "lrds" || metric == "sads")
    return "sentence-pair sums weighted by each draw's multiplicities; a sentence and its own copy are not a pair";
  return "recomputed on each draw's rows";
}

void set_interval(Result& r, std::size_t i, const std::vector<double>& replicates, double level) {
  const auto ci = geometry::percentile_interval(replicates, level);
  r.ci[2 * i] = ci[0];
  r.ci[2 * i + 1] = ci[1];
}

const char* convention(const std::string& metric) {
  if (metric == "cka_linear_biased") return "linear CKA, biased HSIC (Gretton et al. 2005): cosine of double-centred Gram matrices";
  if (metric == "cka_linear_unbiased") return "linear CKA, unbiased HSIC (Song et al. 2012): cosine of U-centred Gram matrices; may be negative";
  if (metric == "cosine") return "mean over prompts of cos(x_i, y_i) of the same prompt";
  if (metric == "angular_distance") return "mean over prompts of arccos(cos(x_i, y_i))/pi (Gromov et al. 2024)";
  if (metric == "block_influence") return "mean over prompts of 1 - cos(x_i, y_i) (ShortGPT, Men et al. 2024)";
  if (metric == "mutual_knn") return "mean over prompts of |kNN_X(i) ∩ kNN_Y(i)|/k, cosine neighbours, self excluded, ties by index (Huh et al. 2024)";
  if (metric == "retrieval_top1" || metric == "retrieval_top5")
    return "share of row-language prompts whose parallel sentence is among the k most cosine-similar column-language prompts";
  if (metric == "lrds") return "mean cosine within a language minus across languages, translation pairs excluded (Zeng et al. 2024)";
  if (metric == "sads") return "mean cosine of translations minus different meaning in different languages (Zeng et al. 2024)";
  if (metric == "twonn") return "TwoNN intrinsic dimension (Facco et al. 2017), least squares through the origin, 10% largest ratios discarded";
  return "";
}

// Pairwise metrics among a list of representations with the same rows (and the same width, for
// the paired cosine family). Fills results[metric] as an R x R block at `offset` of its array.
struct Pairwise {
  const std::vector<std::string>* metrics;
  int knn;
  bool null;
  unsigned long long seed;
  MPI_Comm comm;
  geometry::GramPrecision precision;
  const geometry::BootstrapDraws* draws = nullptr;  // intervals over these draws of the rows
  double level = 0.95;
  const std::vector<std::string>* interval_metrics = nullptr;  // which metrics get them (empty: all)
  std::string cka_method = "auto";  // geometry::choose_cka_method's name
  double gram_budget = 0;           // its per-rank budget for the centred Grams
  std::set<std::string>* cka_methods_used = nullptr;  // the methods chosen, for the datasets' attributes

  // Whether metric m gets a bootstrap interval here.
  bool ci(const std::string& m) const {
    return draws && wants(m) &&
           (!interval_metrics || interval_metrics->empty() ||
            std::find(interval_metrics->begin(), interval_metrics->end(), m) != interval_metrics->end());
  }

  bool wants(const std::string& m) const { return std::find(metrics->begin(), metrics->end(), m) != metrics->end(); }

  void run(const std::vector<std::vector<double>>& reps, std::size_t n, std::size_t d, std::map<std::string, Result>& results,
           std::size_t offset, std::vector<std::string>& notes) const {
    run(reps, n, std::vector<std::size_t>(reps.size(), d), results, offset, notes);
  }

  // Representations of different widths (model x model): CKA and mutual k-NN apply; the paired
  // cosine family needs equal widths and is skipped otherwise.
  void run(const std::vector<std::vector<double>>& reps, std::size_t n, const std::vector<std::size_t>& dims,
           std::map<std::string, Result>& results, std::size_t offset, std::vector<std::string>& notes) const {
    const std::size_t r = reps.size();
    const auto perm = core::permutation(n, seed);
    std::vector<std::vector<double>> permuted;
    if (null)
      for (std::size_t q = 0; q < r; ++q) permuted.push_back(reindexed_rows(comm, reps[q].data(), n, dims[q], perm));
    const bool same_width = std::all_of(dims.begin(), dims.end(), [&](std::size_t w) { return w == dims[0]; });
    const std::size_t d = dims[0];
    auto put = [&](const std::string& m, std::size_t a, std::size_t b, double v, double nv) {
      if (!wants(m)) return;
      results.at(m).values.at(offset + a * r + b) = v;
      if (null) results[m].null[offset + a * r + b] = nv;
    };
    for (const char* m : {"cka_linear_biased", "cka_linear_unbiased"}) {
      if (!wants(m)) continue;
      const auto e = std::string(m) == "cka_linear_biased" ? HsicEstimator::biased : HsicEstimator::unbiased;
      std::vector<const double*> ptrs;
      for (const auto& x : reps) ptrs.push_back(x.data());
      if (null)
        for (const auto& x : permuted) ptrs.push_back(x.data());
      const std::size_t rr = ptrs.size();
      std::vector<std::size_t> degenerate;
      std::vector<std::size_t> all_dims(dims);
      if (null) all_dims.insert(all_dims.end(), dims.begin(), dims.end());
      const auto method = geometry::choose_cka_method(cka_method, n, all_dims, static_cast<double>(mpi::size(comm)), gram_budget);
      if (cka_methods_used) cka_methods_used->insert(geometry::cka_method_name(method));
      const auto cka = geometry::cka_matrix(comm, ptrs, all_dims, n, e, &degenerate, precision, method);
      for (std::size_t a = 0; a < r; ++a)
        for (std::size_t b = 0; b < r; ++b) put(m, a, b, cka[a * rr + b], null ? cka[a * rr + r + b] : 0.0);
      if (!degenerate.empty()) notes.push_back(std::string(m) + ": " + std::to_string(degenerate.size()) + " representation(s) with a zero centred Gram (reported as 0)");
    }
    if ((wants("cosine") || wants("angular_distance") || wants("block_influence")) && !same_width)
      notes.push_back("cosine, angular_distance, block_influence: representations of different widths, left 0");
    if ((wants("cosine") || wants("angular_distance") || wants("block_influence")) && same_width) {
      for (std::size_t a = 0; a < r; ++a)
        for (std::size_t b = 0; b < r; ++b) {
          const auto p = geometry::paired_cosine(comm, reps[a].data(), reps[b].data(), n, d);
          geometry::PairedCosine q;
          if (null) q = geometry::paired_cosine(comm, reps[a].data(), permuted[b].data(), n, d);
          const double cn = static_cast<double>(n);
          put("cosine", a, b, p.sum_cos / cn, q.sum_cos / cn);
          put("angular_distance", a, b, p.sum_angular / cn, q.sum_angular / cn);
          put("block_influence", a, b, 1 - p.sum_cos / cn, 1 - q.sum_cos / cn);
          if (ci("cosine") || ci("angular_distance") || ci("block_influence")) paired_cosine_intervals(reps[a].data(), reps[b].data(), n, d, results, offset + a * r + b);
        }
    }
    if (wants("mutual_knn")) {
      const auto k = static_cast<std::size_t>(knn);
      // Each representation's neighbour lists once (this rank's rows), then all pairs.
      std::vector<std::vector<std::size_t>> nn, nn_null;
      geometry::RowBlock block;
      for (std::size_t q = 0; q < r; ++q) {
        const auto s = geometry::cosine_rows(comm, reps[q].data(), n, reps[q].data(), n, dims[q], block);
        nn.push_back(geometry::top_k_rows(s.data(), block.row0, block.rows, n, k));
      }
      if (null)
        for (std::size_t q = 0; q < r; ++q) {
          const auto s = geometry::cosine_rows(comm, permuted[q].data(), n, permuted[q].data(), n, dims[q], block);
          nn_null.push_back(geometry::top_k_rows(s.data(), block.row0, block.rows, n, k));
        }
      std::vector<double> local(2 * r * r), total(2 * r * r);
      for (std::size_t a = 0; a < r; ++a)
        for (std::size_t b = 0; b < r; ++b) {
          local[a * r + b] = geometry::mutual_knn_sum(nn[a], nn[b], block.rows, k);
          if (null) local[r * r + a * r + b] = geometry::mutual_knn_sum(nn[a], nn_null[b], block.rows, k);
        }
      mpi::check(MPI_Allreduce(local.data(), total.data(), static_cast<int>(total.size()), MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
      for (std::size_t a = 0; a < r; ++a)
        for (std::size_t b = 0; b < r; ++b)
          put("mutual_knn", a, b, total[a * r + b] / static_cast<double>(n), total[r * r + a * r + b] / static_cast<double>(n));
      if (ci("mutual_knn"))
        for (std::size_t a = 0; a < r; ++a)
          for (std::size_t b = 0; b < r; ++b) {
            const auto scores = geometry::gather_row_values(comm, geometry::mutual_knn_scores(nn[a], nn[b], block.rows, k));
            set_interval(results.at("mutual_knn"), offset + a * r + b, resampled_means(scores), level);
          }
    }
    if (draws) recompute_on_draws(reps, n, dims, results, offset);
  }

  // The paired cosine family is a mean over prompts: a draw's value is the mean of the drawn prompts'
  // cosines (what recomputing on the drawn rows gives, without the products).
  void paired_cosine_intervals(const double* x, const double* y, std::size_t n, std::size_t d, std::map<std::string, Result>& results,
                               std::size_t i) const {
    const auto cos = geometry::paired_cosine_rows(comm, x, y, n, d);
    std::vector<double> angular(n);
    for (std::size_t k = 0; k < n; ++k) angular[k] = std::acos(cos[k]) / M_PI;
    const auto c = resampled_means(cos);
    std::vector<double> influence(c.size());
    for (std::size_t b = 0; b < c.size(); ++b) influence[b] = 1 - c[b];
    if (ci("cosine")) set_interval(results.at("cosine"), i, c, level);
    if (ci("angular_distance")) set_interval(results.at("angular_distance"), i, resampled_means(angular), level);
    if (ci("block_influence")) set_interval(results.at("block_influence"), i, influence, level);
  }

  // The mean of per-unit scores over each draw's units.
  std::vector<double> resampled_means(const std::vector<double>& per_unit) const {
    std::vector<double> out(draws->draws());
    for (std::size_t b = 0; b < out.size(); ++b) out[b] = geometry::resampled_mean(per_unit, draws->draw(b), per_unit.size());
    return out;
  }

  // CKA recomputed from each draw's rows: the same computation on resampled representations, without
  // nulls.
  void recompute_on_draws(const std::vector<std::vector<double>>& reps, std::size_t n, const std::vector<std::size_t>& dims,
                          std::map<std::string, Result>& results, std::size_t offset) const {
    std::vector<std::string> recomputed;
    for (const char* m : {"cka_linear_biased", "cka_linear_unbiased"})
      if (ci(m)) recomputed.push_back(m);
    if (recomputed.empty()) return;
    if (draws->units() != n) throw std::logic_error("sweep bootstrap: draws over " + std::to_string(draws->units()) + " units for " + std::to_string(n) + " rows");
    Pairwise plain = *this;
    plain.metrics = &recomputed;
    plain.null = false;
    plain.draws = nullptr;
    const std::size_t r = reps.size(), B = draws->draws();
    std::map<std::string, std::vector<double>> replicates;  // metric -> [r * r][B]
    for (const auto& m : recomputed) replicates[m].assign(r * r * B, 0.0);
    std::vector<std::string> draw_notes;  // a draw's notes (degenerate Grams) are not the sweep's
    for (std::size_t d = 0; d < B; ++d) {
      std::vector<std::vector<double>> drawn;
      const std::vector<std::size_t> index(draws->draw(d), draws->draw(d) + n);
      for (std::size_t q = 0; q < r; ++q) drawn.push_back(reindexed_rows(comm, reps[q].data(), n, dims[q], index));
      std::map<std::string, Result> part;
      for (const auto& m : recomputed) part[m].values.assign(r * r, std::numeric_limits<double>::quiet_NaN());
      plain.run(drawn, n, dims, part, 0, draw_notes);
      for (const auto& m : recomputed)
        for (std::size_t i = 0; i < r * r; ++i) replicates[m][i * B + d] = part[m].values[i];
    }
    for (const auto& m : recomputed)
      for (std::size_t i = 0; i < r * r; ++i)
        set_interval(results.at(m), offset + i, std::vector<double>(replicates[m].begin() + static_cast<std::ptrdiff_t>(i * B),
                                                                    replicates[m].begin() + static_cast<std::ptrdiff_t>((i + 1) * B)), level);
  }
};

// TwoNN of x (this rank's rows of n x d) into r.values[i] — NaN with a note where it is undefined (fewer
// than 3 distinct points, or every neighbour ratio 1, as when many prompts share one representation early
// in training) — and, given draws over the n prompts, its interval from the same per-prompt ratios.
void twonn_at(MPI_Comm comm, const double* x, std::size_t n, std::size_t d, const std::string& where, std::vector<std::string>& notes,
              const geometry::BootstrapDraws* draws, double level, Result& r, std::size_t i) {
  const auto ratios = geometry::twonn_ratio_rows(comm, x, n, d);
  std::vector<double> mu;
  for (const double m : ratios)
    if (!std::isnan(m)) mu.push_back(m);
  const std::size_t dup = n - mu.size();
  try {
    r.values[i] = geometry::twonn_fit(std::move(mu));
    if (dup) notes.push_back("twonn: " + where + ": " + std::to_string(dup) + " duplicated prompt vector(s) left out");
  } catch (const InputError& e) {
    notes.push_back("twonn: " + where + ": undefined, NaN (" + e.what() + ")");
    r.values[i] = std::numeric_limits<double>::quiet_NaN();
  }
  if (!draws) return;
  std::vector<double> rep(draws->draws());
  for (std::size_t b = 0; b < rep.size(); ++b) rep[b] = geometry::resampled_twonn(ratios, draws->draw(b), n);
  set_interval(r, i, rep, level);
}

// Collective: a string dataset of labels, written by rank 0.
void write_labels(io::H5Output& out, const std::string& name, const std::vector<std::string>& labels, bool root) {
  std::size_t width = 1;
  for (const auto& l : labels) width = std::max(width, l.size());
  out.create_strings(name, labels.size(), width, false);
  out.write_string_rows(name, 0, root ? labels : std::vector<std::string>{});
}

void prepare_result(std::map<std::string, Result>& results, const std::string& name, std::vector<std::uint64_t> shape,
                    const std::string& axes, bool null) {
  Result r;
  std::uint64_t count = 1;
  for (auto s : shape) count *= s;
  r.shape = std::move(shape);
  r.values.assign(count, 0.0);
  if (null) r.null.assign(count, 0.0);
  r.axes = axes;
  r.estimator = convention(name);
  results[name] = std::move(r);
}

// Collective: a result's bootstrap interval, [its shape..., 2].
void write_interval(io::H5Output& out, const std::string& name, const std::string& metric, const Result& r, const SweepOptions& o,
                    bool by_sentence, bool root) {
  auto shape = r.shape;
  shape.push_back(2);
  out.create_numeric(name, io::DType::f64, shape, false);
  out.write_rows(name, 0, root ? shape[0] : 0, r.ci.data());
  out.set_attribute(name, "metric", metric);
  out.set_attribute(name, "axes", r.axes + ",bound (lower, upper)");
  out.set_attribute(name, "estimator", r.estimator);
  out.set_attribute(name, "interval", "percentile bootstrap (quantiles interpolated linearly); NaN where a draw's value is undefined");
  out.set_attribute(name, "confidence", o.confidence);
  out.set_attribute(name, "draws", static_cast<long long>(o.bootstrap));
  out.set_attribute(name, "unit", std::string(by_sentence ? "parallel sentence (with all its translations)" : "prompt"));
  out.set_attribute(name, "resampled", std::string(bootstrap_method(metric)));
  out.set_attribute(name, "seed", std::to_string(geometry::bootstrap_seed(o.seed)) + " (mt19937_64; draw b's k-th unit: next output mod units)");
}

}  // namespace

SweepSummary run_sweep(const SweepOptions& o, MPI_Comm comm) {
  mpi::ensure_initialized();
  for (const auto& m : o.metrics)
    if (std::find(sweep_metric_names().begin(), sweep_metric_names().end(), m) == sweep_metric_names().end())
      throw InputError("--metric: unknown metric '" + m + "'");
  for (const auto& p : o.pairs)
    if (std::find(sweep_pair_names().begin(), sweep_pair_names().end(), p) == sweep_pair_names().end())
      throw InputError("--pairs: expected layer_layer, language_language, checkpoint_checkpoint or model_model, got '" + p + "'");
  if (o.activations.empty()) throw InputError("--activations: expected at least one activations/1 file");
  if (o.knn < 1) throw InputError("--knn: expected at least 1, got " + std::to_string(o.knn));
  if (o.gram_precision != "float64" && o.gram_precision != "float32")
    throw InputError("--gram-precision: expected float64 or float32, got '" + o.gram_precision + "'");
  geometry::require_cka_method_name(o.cka_method);
  const bool checkpoints = std::find(o.pairs.begin(), o.pairs.end(), "checkpoint_checkpoint") != o.pairs.end();
  const bool models = std::find(o.pairs.begin(), o.pairs.end(), "model_model") != o.pairs.end();
  if (checkpoints && models) throw InputError("--pairs: checkpoint_checkpoint and model_model take different files; run them separately");
  if (!checkpoints && !models && o.activations.size() != 1)
    throw InputError("--activations: layer_layer and language_language sweep one file, got " + std::to_string(o.activations.size()));
  if ((checkpoints || models) && o.activations.size() < 2)
    throw InputError(std::string("--activations: ") + (checkpoints ? "checkpoint_checkpoint needs two or more files (checkpoints)" :
                     "model_model needs two or more files (one per model)") + ", got " + std::to_string(o.activations.size()));
  if (models && (o.pairs.size() != 1))
    throw InputError("--pairs: model_model runs alone (its files are one per model)");
  if (o.depth_bins < 2) throw InputError("--depth-bins: expected at least 2, got " + std::to_string(o.depth_bins));
  if (!o.labels.empty() && o.labels.size() != o.activations.size())
    throw InputError("--label: expected one label per --activations file");
  if (o.bootstrap < 0) throw InputError("--bootstrap: expected a number of draws >= 0, got " + std::to_string(o.bootstrap));
  if (!(o.confidence > 0 && o.confidence < 1)) throw InputError("--confidence: expected a level between 0 and 1 (e.g. 0.95)");
  for (const auto& m : o.bootstrap_metrics)
    if (std::find(o.metrics.begin(), o.metrics.end(), m) == o.metrics.end())
      throw InputError("--bootstrap-metric: '" + m + "' is not among the sweep's metrics (--metric)");
  if (!o.bootstrap_metrics.empty() && o.bootstrap == 0) throw InputError("--bootstrap-metric: needs --bootstrap B > 0");
  if (o.bootstrap > 0 && o.block_size > 0)
    throw InputError("--bootstrap: not with --block-size (a blocked checkpoint sweep has no intervals; run it unblocked)");
  const SweepBlock block{o.block_size, o.block_row, o.block_col};
  if (o.block_size < 0) throw InputError("--block-size: expected 0 (no blocks) or a positive group size, got " + std::to_string(o.block_size));
  if (o.block_size > 0) {
    if (o.pairs != std::vector<std::string>{"checkpoint_checkpoint"})
      throw InputError("--block-size: blocks split checkpoint_checkpoint sweeps only (run it alone)");
    const int g = SweepBlock::groups(o.activations.size(), o.block_size);
    if (o.block_row < 0 || o.block_row > o.block_col || o.block_col >= g)
      throw InputError("--block: expected I,J with 0 <= I <= J < " + std::to_string(g) + " (groups of " +
                       std::to_string(o.block_size) + " of " + std::to_string(o.activations.size()) + " checkpoints), got " +
                       std::to_string(o.block_row) + "," + std::to_string(o.block_col));
  }
  geometry::PetscScope petsc(o.petsc_options);
  geometry::phase_seconds().clear();
  const double t_start = MPI_Wtime();

  std::vector<Source> sources;
  mpi::on_all(comm, [&] {
    for (std::size_t i = 0; i < o.activations.size(); ++i)
      sources.push_back(open_source(o.activations[i], o.labels.empty() ? "" : o.labels[i], o.hook));
    for (const auto& s : sources) {
      if (s.ids != sources[0].ids) throw InputError(s.path + ": prompts differ from " + sources[0].path + " (expected the same prompt ids in the same order)");
      if (!models && (s.points != sources[0].points || s.width != sources[0].width))
        throw InputError(s.path + ": points or width differ from " + sources[0].path + " (checkpoints of one model share them)");
    }
  });
  const Source& first = sources[0];
  const std::size_t P = first.points, N = first.prompts, W = first.width;
  auto wants = [&](const std::string& m) { return std::find(o.metrics.begin(), o.metrics.end(), m) != o.metrics.end(); };
  SweepSummary summary;
  summary.prompts = static_cast<long long>(N);
  summary.points = static_cast<int>(P);
  std::map<std::string, std::map<std::string, Result>> results;  // pairs -> metric -> result
  std::vector<long long> depth_points;  // model_model: [depth, model] point indices
  std::vector<std::string> notes;
  // Bootstrap draws over prompts (and, for language x language, over parallel sentences, drawn there).
  const bool boot = o.bootstrap > 0;
  std::unique_ptr<geometry::BootstrapDraws> prompt_draws;
  if (boot) prompt_draws = std::make_unique<geometry::BootstrapDraws>(N, static_cast<std::size_t>(o.bootstrap), geometry::bootstrap_seed(o.seed));
  std::set<std::string> cka_methods_used;
  const Pairwise pairwise{&o.metrics, o.knn, o.null, o.seed, comm,
                          o.gram_precision == "float32" ? geometry::GramPrecision::float32 : geometry::GramPrecision::float64,
                          prompt_draws.get(), o.confidence, &o.bootstrap_metrics, o.cka_method,
                          geometry::gram_budget_per_rank(comm), &cka_methods_used};
  const auto ci_of = [&](const std::string& m) { return pairwise.ci(m); };
  const std::vector<std::string> pairwise_metrics = {"cka_linear_biased", "cka_linear_unbiased", "cosine", "angular_distance",
                                                     "block_influence", "mutual_knn"};

  // Languages (in file order of first appearance) and the groups every language has.
  std::vector<std::string> languages;
  for (const auto& l : first.langs)
    if (std::find(languages.begin(), languages.end(), l) == languages.end()) languages.push_back(l);

  for (const auto& pairs : o.pairs) {
    auto& res = results[pairs];
    auto skip = [&](const std::string& m, const std::string& why) { summary.skipped.push_back(pairs + "/" + m + ": " + why); };
    if (pairs == "layer_layer") {
      for (const auto& m : o.metrics) {
        if (std::find(pairwise_metrics.begin(), pairwise_metrics.end(), m) != pairwise_metrics.end())
          prepare_result(res, m, {P, P}, "point,point", o.null);
        else if (m == "twonn")
          prepare_result(res, m, {P}, "point", false);
        else
          skip(m, "not a layer-pair metric");
      }
      if (boot) prepare_intervals(res, ci_of);
      std::vector<std::vector<double>> reps;
      for (std::size_t p = 0; p < P; ++p) reps.push_back(first.point(p, comm));
      pairwise.run(reps, N, W, res, 0, notes);
      if (wants("twonn"))
        for (std::size_t p = 0; p < P; ++p) {
          twonn_at(comm, reps[p].data(), N, W, "point " + std::to_string(p), notes, ci_of("twonn") ? prompt_draws.get() : nullptr,
                   o.confidence, res["twonn"], p);
        }
    } else if (pairs == "language_language") {
      if (languages.size() < 2) throw InputError(first.path + ": language_language needs prompts in two or more languages");
      // Rows of each language ordered by group; only groups present in every language.
      std::map<long long, std::map<std::string, std::size_t>> by_group;
      for (std::size_t i = 0; i < N; ++i) by_group[first.groups[i]][first.langs[i]] = i;
      std::vector<long long> groups;
      for (const auto& [g, m] : by_group)
        if (m.size() == languages.size()) groups.push_back(g);
      const std::size_t G = groups.size(), Lg = languages.size();
      if (G < 2) throw InputError(first.path + ": language_language needs two or more parallel sentences (groups) shared by all languages");
      for (const auto& m : o.metrics) {
        if (std::find(pairwise_metrics.begin(), pairwise_metrics.end(), m) != pairwise_metrics.end())
          prepare_result(res, m, {P, Lg, Lg}, "point,language,language", o.null);
        else if (m == "retrieval") {
          prepare_result(res, "retrieval_top1", {P, Lg, Lg}, "point,query language,candidate language", o.null);
          prepare_result(res, "retrieval_top5", {P, Lg, Lg}, "point,query language,candidate language", o.null);
        } else if (m == "lrds" || m == "sads")
          prepare_result(res, m, {P}, "point", o.null);
        else if (m == "twonn")
          prepare_result(res, m, {P, Lg}, "point,language", false);
        else
          skip(m, "not a language-pair metric");
      }
      // Draws over parallel sentences: a sentence comes with all its translations.
      std::unique_ptr<geometry::BootstrapDraws> sentence_draws;
      Pairwise by_sentence = pairwise;
      if (boot) {
        prepare_intervals(res, ci_of);
        sentence_draws = std::make_unique<geometry::BootstrapDraws>(G, static_cast<std::size_t>(o.bootstrap), geometry::bootstrap_seed(o.seed));
        by_sentence.draws = sentence_draws.get();
      }
      const auto perm = core::permutation(G, o.seed);
      // Each language's prompt rows in sentence (group) order: the rows of its representation.
      std::vector<std::vector<std::size_t>> sentence_rows(Lg, std::vector<std::size_t>(G));
      for (std::size_t a = 0; a < Lg; ++a)
        for (std::size_t g = 0; g < G; ++g) sentence_rows[a][g] = by_group[groups[g]][languages[a]];
      for (std::size_t p = 0; p < P; ++p) {
        const auto x = first.point(p, comm);
        std::vector<std::vector<double>> reps;
        for (const auto& index : sentence_rows) reps.push_back(reindexed_rows(comm, x.data(), N, W, index));
        by_sentence.run(reps, G, W, res, p * Lg * Lg, notes);
        if (wants("retrieval"))
          for (std::size_t a = 0; a < Lg; ++a)
            for (std::size_t b = 0; b < Lg; ++b) {
              // Each query's hit once: the value is their mean, the interval their mean over each draw.
              const auto ranks = geometry::retrieval_ranks(comm, reps[a].data(), reps[b].data(), G, W);
              std::vector<double> top1(G), top5(G);
              for (std::size_t g = 0; g < G; ++g) {
                top1[g] = ranks[g] < 1 ? 1.0 : 0.0;
                top5[g] = ranks[g] < 5 ? 1.0 : 0.0;
              }
              const std::size_t at = p * Lg * Lg + a * Lg + b;
              res["retrieval_top1"].values[at] = std::accumulate(top1.begin(), top1.end(), 0.0) / static_cast<double>(G);
              res["retrieval_top5"].values[at] = std::accumulate(top5.begin(), top5.end(), 0.0) / static_cast<double>(G);
              if (ci_of("retrieval")) {
                set_interval(res["retrieval_top1"], at, by_sentence.resampled_means(top1), o.confidence);
                set_interval(res["retrieval_top5"], at, by_sentence.resampled_means(top5), o.confidence);
              }
              if (o.null) {
                const auto shuffled = reindexed_rows(comm, reps[b].data(), G, W, perm);
                const auto hn = geometry::retrieval_hits(comm, reps[a].data(), shuffled.data(), G, W);
                res["retrieval_top1"].null[p * Lg * Lg + a * Lg + b] = static_cast<double>(hn[0]) / static_cast<double>(G);
                res["retrieval_top5"].null[p * Lg * Lg + a * Lg + b] = static_cast<double>(hn[1]) / static_cast<double>(G);
              }
            }
        if (wants("lrds") || wants("sads")) {
          // All languages' aligned rows stacked; the null shuffles which sentence is which within
          // each language (groups permuted), destroying translation pairs but not languages.
          std::vector<std::size_t> stacked;
          for (const auto& index : sentence_rows) stacked.insert(stacked.end(), index.begin(), index.end());
          const auto all = reindexed_rows(comm, x.data(), N, W, stacked);
          std::vector<int> lang;
          std::vector<long long> grp, grp_null;
          for (std::size_t a = 0; a < Lg; ++a) {
            const auto pa = core::permutation(G, o.seed + a + 1);
            for (std::size_t g = 0; g < G; ++g) {
              lang.push_back(static_cast<int>(a));
              grp.push_back(static_cast<long long>(g));
              grp_null.push_back(static_cast<long long>(pa[g]));
            }
          }
          const auto sums = geometry::alignment_sums(comm, all.data(), G * Lg, W, lang, grp);
          geometry::AlignmentSums null_sums;
          if (o.null) null_sums = geometry::alignment_sums(comm, all.data(), G * Lg, W, lang, grp_null);
          if (wants("lrds")) {
            res["lrds"].values[p] = sums.lrds();
            if (o.null) res["lrds"].null[p] = null_sums.lrds();
          }
          if (wants("sads")) {
            res["sads"].values[p] = sums.sads();
            if (o.null) res["sads"].null[p] = null_sums.sads();
          }
          if (ci_of("lrds") || ci_of("sads")) {
            const auto pair_sums = geometry::sentence_pair_sums(comm, all.data(), G, Lg, W);
            std::vector<double> lrds(sentence_draws->draws()), sads(lrds.size());
            for (std::size_t b = 0; b < lrds.size(); ++b) {
              const auto v = geometry::resampled_lrds_sads(pair_sums, sentence_draws->multiplicities(b));
              lrds[b] = v[0];
              sads[b] = v[1];
            }
            if (ci_of("lrds")) set_interval(res["lrds"], p, lrds, o.confidence);
            if (ci_of("sads")) set_interval(res["sads"], p, sads, o.confidence);
          }
        }
        if (wants("twonn"))
          for (std::size_t a = 0; a < Lg; ++a) {
            twonn_at(comm, reps[a].data(), G, W, "point " + std::to_string(p) + " language " + languages[a], notes,
                     ci_of("twonn") ? sentence_draws.get() : nullptr, o.confidence, res["twonn"], p * Lg + a);
          }
      }
    } else if (pairs == "model_model") {
      // Matched normalised depth t = j/(T-1): model m's point round(t (P_m - 1)).
      const std::size_t M = sources.size(), T = static_cast<std::size_t>(o.depth_bins);
      for (const auto& m : o.metrics) {
        if (m == "cka_linear_biased" || m == "cka_linear_unbiased" || m == "mutual_knn")
          prepare_result(res, m, {T, M, M}, "depth,model,model", o.null);
        else
          skip(m, "not a model-pair metric (models differ in width)");
      }
      if (boot) prepare_intervals(res, ci_of);
      depth_points.assign(T * M, 0);
      for (std::size_t j = 0; j < T; ++j) {
        const double t = static_cast<double>(j) / static_cast<double>(T - 1);
        std::vector<std::vector<double>> reps;
        std::vector<std::size_t> dims;
        for (std::size_t q = 0; q < M; ++q) {
          const auto p = static_cast<std::size_t>(std::llround(t * static_cast<double>(sources[q].points - 1)));
          depth_points[j * M + q] = static_cast<long long>(p);
          reps.push_back(sources[q].point(p, comm));
          dims.push_back(sources[q].width);
        }
        pairwise.run(reps, N, dims, res, j * M * M, notes);
      }
    } else {  // checkpoint_checkpoint
      const std::size_t C = sources.size();
      for (const auto& m : o.metrics) {
        if (std::find(pairwise_metrics.begin(), pairwise_metrics.end(), m) != pairwise_metrics.end())
          prepare_result(res, m, {P, C, C}, "point,checkpoint,checkpoint", o.null);
        else
          skip(m, "not a checkpoint-pair metric");
      }
      if (boot) prepare_intervals(res, ci_of);
      // The files this run reads (all; or, for a block, those of its two groups): every pair among
      // them is computed (the cost is in the per-file Grams) and the owned ones kept; NaN elsewhere.
      const double nan = std::numeric_limits<double>::quiet_NaN();
      for (auto& [m, r] : res) {
        std::fill(r.values.begin(), r.values.end(), nan);
        std::fill(r.null.begin(), r.null.end(), nan);
      }
      std::vector<std::size_t> used;
      for (std::size_t c = 0; c < C; ++c)
        if (block.reads(c)) used.push_back(c);
      const std::size_t U = used.size();
      for (std::size_t p = 0; p < P; ++p) {
        std::vector<std::vector<double>> reps;
        for (auto c : used) reps.push_back(sources[c].point(p, comm));
        std::map<std::string, Result> part;
        for (const auto& [m, r] : res) prepare_result(part, m, {U, U}, r.axes, o.null);
        if (boot) prepare_intervals(part, ci_of);
        pairwise.run(reps, N, W, part, 0, notes);
        for (auto& [m, r] : res)
          for (std::size_t a = 0; a < U; ++a)
            for (std::size_t b = 0; b < U; ++b) {
              if (!block.owns(used[a], used[b])) continue;
              r.values[p * C * C + used[a] * C + used[b]] = part.at(m).values[a * U + b];
              if (o.null) r.null[p * C * C + used[a] * C + used[b]] = part.at(m).null[a * U + b];
              if (!r.ci.empty())
                for (int e = 0; e < 2; ++e) r.ci[2 * (p * C * C + used[a] * C + used[b]) + e] = part.at(m).ci[2 * (a * U + b) + e];
            }
      }
    }
    for (const auto& [m, r] : res) summary.written.push_back(pairs + "/" + m);
  }

  if (summary.written.empty()) {
    std::string why;
    for (const auto& k : summary.skipped) why += (why.empty() ? "" : "; ") + k;
    throw InputError("--metric: none of the metrics applies to the pair types asked for (" + why + ")");
  }

  // Output: sweep/1 with every result and its null, then the tidy CSV beside it.
  const bool root = mpi::rank(comm) == 0;
  nlohmann::json config = {{"activations", o.activations}, {"hook", o.hook}, {"pairs", o.pairs}, {"metrics", o.metrics},
                           {"knn", o.knn}, {"null", o.null}, {"seed", o.seed}, {"gram_precision", o.gram_precision},
                           {"cka_method", o.cka_method}};
  if (o.block_size > 0) config["block"] = {{"size", o.block_size}, {"row", o.block_row}, {"col", o.block_col}};
  if (boot) config["bootstrap"] = {{"draws", o.bootstrap}, {"confidence", o.confidence}, {"metrics", o.bootstrap_metrics}};
  const std::string csv = (fs::path(o.output).parent_path() / (fs::path(o.output).stem().string() + ".csv")).string();
  mpi::on_root(comm, [&] {
    std::ostringstream out;
    out << std::setprecision(17);
    out << "pairs,metric,point,row,column,value,null" << (boot ? ",ci_low,ci_high" : "") << "\n";
    for (const auto& [pairs, res] : results)
      for (const auto& [m, r] : res) {
        const std::vector<std::string>* labels = nullptr;
        std::vector<std::string> ckpt_labels;
        for (const auto& s : sources) ckpt_labels.push_back(s.label);
        if (pairs == "layer_layer") labels = &first.point_names;
        if (pairs == "language_language") labels = &languages;
        if (pairs == "checkpoint_checkpoint" || pairs == "model_model") labels = &ckpt_labels;
        const std::size_t inner = r.shape.size() >= 2 ? r.shape.back() * (r.shape.size() == 3 ? r.shape[1] : 1) : 1;
        for (std::size_t i = 0; i < r.values.size(); ++i) {
          std::string point, row, column;
          if (pairs == "layer_layer") {
            point = "";
            row = (*labels)[r.shape.size() == 2 ? i / r.shape[1] : i];
            column = r.shape.size() == 2 ? (*labels)[i % r.shape[1]] : "";
          } else {
            const std::size_t p = i / inner, rest = i % inner;
            if (pairs == "model_model") {
              std::ostringstream t;
              t << static_cast<double>(p) / static_cast<double>(o.depth_bins - 1);
              point = "depth " + t.str();
            } else {
              point = first.point_names[p];
            }
            if (r.shape.size() == 3) {
              if (pairs == "checkpoint_checkpoint" && !block.owns(rest / r.shape[2], rest % r.shape[2])) continue;
              row = (*labels)[rest / r.shape[2]];
              column = (*labels)[rest % r.shape[2]];
            } else if (r.shape.size() == 2) {
              row = (*labels)[rest];
            }
          }
          out << pairs << "," << m << "," << point << "," << row << "," << column << "," << r.values[i] << ",";
          if (!r.null.empty()) out << r.null[i];
          if (!r.ci.empty()) out << "," << r.ci[2 * i] << "," << r.ci[2 * i + 1];
          else if (boot) out << ",,";
          out << "\n";
        }
      }
    io::write_file_atomically(csv, out.str());
  });

  io::H5Output out(o.output, comm, "sweep/1", config);
  out.set_attribute("/", "hook", o.hook);
  out.set_attribute("/", "pairs", o.pairs);
  out.set_attribute("/", "metrics", o.metrics);
  out.set_attribute("/", "sources", o.activations);
  out.set_attribute("/", "num_prompts", static_cast<long long>(N));
  out.set_attribute("/", "knn", static_cast<long long>(o.knn));
  out.set_attribute("/", "null", std::string(o.null ? "prompt permutation (seed " + std::to_string(o.seed) + ")" : "none"));
  out.set_attribute("/", "csv", fs::path(csv).filename().string());
  out.set_attribute("/", "notes", notes.empty() ? std::vector<std::string>{""} : notes);
  if (o.block_size > 0) {
    out.set_attribute("/", "block_size", static_cast<long long>(o.block_size));
    out.set_attribute("/", "block_row", static_cast<long long>(o.block_row));
    out.set_attribute("/", "block_col", static_cast<long long>(o.block_col));
    out.set_attribute("/", "block_groups", static_cast<long long>(SweepBlock::groups(sources.size(), o.block_size)));
  }
  std::vector<std::string> source_labels;
  for (const auto& s : sources) source_labels.push_back(s.label);
  write_labels(out, "/labels/points", first.point_names, root);
  if (results.count("language_language")) write_labels(out, "/labels/languages", languages, root);
  if (results.count("model_model")) {
    const auto M = static_cast<std::uint64_t>(sources.size()), T = static_cast<std::uint64_t>(o.depth_bins);
    std::vector<double> depths;
    for (std::uint64_t j = 0; j < T; ++j) depths.push_back(static_cast<double>(j) / static_cast<double>(T - 1));
    out.create_numeric("/labels/depths", io::DType::f64, {T}, false);
    out.write_rows("/labels/depths", 0, root ? T : 0, depths.data());
    out.create_numeric("/labels/depth_points", io::DType::i64, {T, M}, false);
    out.write_rows("/labels/depth_points", 0, root ? T : 0, depth_points.data());
    out.set_attribute("/labels/depth_points", "meaning", "point of each model's hook used at each normalised depth: round(depth (points - 1))");
    write_labels(out, "/labels/models", source_labels, root);
  }
  if (results.count("checkpoint_checkpoint")) write_labels(out, "/labels/checkpoints", source_labels, root);
  for (const auto& [pairs, res] : results)
    for (const auto& [m, r] : res) {
      for (int which = 0; which < (r.null.empty() ? 1 : 2); ++which) {
        const std::string name = "/" + pairs + "/" + m + (which ? "_null" : "");
        out.create_numeric(name, io::DType::f64, r.shape, false);
        out.write_rows(name, 0, root ? r.shape[0] : 0, which ? r.null.data() : r.values.data());
        out.set_attribute(name, "metric", m);
        out.set_attribute(name, "axes", r.axes);
        out.set_attribute(name, "estimator", r.estimator);
        if (m == "mutual_knn") out.set_attribute(name, "k", static_cast<long long>(o.knn));
        if (m.rfind("cka_", 0) == 0) {
          out.set_attribute(name, "gram_precision", o.gram_precision);
          std::string used;  // the method(s) auto chose, or the one asked for
          for (const auto& u : cka_methods_used) used += (used.empty() ? "" : ",") + u;
          out.set_attribute(name, "cka_method", used.empty() ? o.cka_method : used);
        }
        if (which) out.set_attribute(name, "null", "rows of the column representation permuted (seed " + std::to_string(o.seed) + ")");
      }
      if (!r.ci.empty()) write_interval(out, "/" + pairs + "/" + m + "_ci", m, r, o, pairs == "language_language", root);
    }
  out.commit();
  if (o.benchmark) {
    auto& phases = geometry::phase_seconds();
    phases["total"] = MPI_Wtime() - t_start;
    for (const char* name : {"reading activations", "gram products", "centring (incl. all-gather)", "inner products",
                             "feature cross-products", "similarity products", "total"}) {
      double mine = phases[name], slowest = 0;
      mpi::check(MPI_Allreduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, comm), "MPI_Allreduce");
      if (root) std::cout << "sweep --benchmark: " << std::left << std::setw(30) << name << std::right << std::fixed
                          << std::setprecision(3) << slowest << " s (slowest of " << mpi::size(comm) << " ranks)\n";
    }
  }
  return summary;
}

void merge_sweep_blocks(const std::vector<std::string>& blocks, const std::string& output, MPI_Comm comm) {
  mpi::ensure_initialized();
  const bool root = mpi::rank(comm) == 0;
  // Rank 0 reads every block and assembles; the other ranks get the structure (JSON) to take part
  // in the collective write.
  nlohmann::json meta;
  std::map<std::string, std::vector<double>> arrays;  // dataset -> [points, C, C]
  std::vector<std::string> point_names, labels;
  std::string csv_text;
  mpi::on_root(comm, [&] {
    if (blocks.empty()) throw InputError("sweep blocks: no block files to merge into " + output);
    // Blocks may come from runs with fewer checkpoints (a list that grew by appending, e.g. nightly:
    // blocks between unchanged groups are not recomputed). The block with the most checkpoints
    // defines the result; every other block must agree with it on the checkpoints it read.
    std::vector<std::size_t> order(blocks.size());
    {
      std::size_t most = 0;
      for (std::size_t bi = 0; bi < blocks.size(); ++bi) {
        order[bi] = bi;
        const std::size_t c = io::H5Input(blocks[bi]).read_strings("/labels/checkpoints").size();
        if (c > most) {
          most = c;
          std::swap(order[0], order[bi]);
        }
      }
    }
    nlohmann::json first;
    std::size_t P = 0, C = 0;
    std::vector<int> owner;  // which block owns each (a, b)
    std::vector<std::string> notes, sources;
    int groups = 0;
    for (std::size_t bi : order) {
      const std::string& path = blocks[bi];
      io::H5Input in(path);
      const auto attrs = in.root_attributes();
      if (!attrs.count("lmtopo_schema") || attrs.at("lmtopo_schema") != "sweep/1")
        throw InputError(path + ": not a sweep/1 file");
      auto config = nlohmann::json::parse(attrs.at("config_json"), nullptr, false);
      if (config.is_discarded() || !config.contains("block"))
        throw InputError(path + ": not a block of a blocked sweep (no block in config_json; expected --block-size > 0)");
      const SweepBlock block{config["block"]["size"].get<int>(), config["block"]["row"].get<int>(), config["block"]["col"].get<int>()};
      auto common = config;
      common.erase("block");
      const auto block_labels = in.read_strings("/labels/checkpoints");
      const auto block_sources = common.contains("activations") && common["activations"].is_array()
                                     ? common["activations"].get<std::vector<std::string>>()
                                     : std::vector<std::string>{};
      common.erase("activations");
      const std::size_t Cb = block_labels.size();
      if (block_sources.size() != Cb)
        throw InputError(path + ": config_json lists " + std::to_string(block_sources.size()) + " activations files for " +
                         std::to_string(Cb) + " checkpoint labels");
      if (bi == order[0]) {
        first = common;
        point_names = in.read_strings("/labels/points");
        labels = block_labels;
        sources = block_sources;
        P = point_names.size();
        C = labels.size();
        owner.assign(C * C, -1);
        groups = SweepBlock::groups(C, block.block_size);
        meta["root"] = attrs;
        meta["block_size"] = block.block_size;
        for (const auto& d : in.datasets())
          if (d.path.rfind("/checkpoint_checkpoint/", 0) == 0) {
            meta["datasets"][d.path] = d.attributes;
            arrays[d.path].assign(P * C * C, std::numeric_limits<double>::quiet_NaN());
          }
      } else if (common != first) {
        throw InputError(path + ": its sweep settings differ from " + blocks[order[0]] + " (expected blocks of one sweep)");
      } else if (block.block_size != meta["block_size"].get<int>()) {
        throw InputError(path + ": block size " + std::to_string(block.block_size) + " differs from " + blocks[order[0]]);
      } else {
        for (std::size_t a = 0; a < Cb; ++a)
          if (block.reads(a) && (block_labels[a] != labels[a] || block_sources[a] != sources[a]))
            throw InputError(path + ": checkpoint " + std::to_string(a) + " is " + block_labels[a] + " (" + block_sources[a] +
                             ") there but " + labels[a] + " (" + sources[a] + ") in " + blocks[order[0]] +
                             " (a stale block: recompute it)");
      }
      for (const auto& line : split_lines(attrs.count("notes") ? attrs.at("notes") : ""))
        if (!line.empty() && std::find(notes.begin(), notes.end(), line) == notes.end()) notes.push_back(line);
      for (std::size_t a = 0; a < Cb; ++a)
        for (std::size_t b = 0; b < Cb; ++b) {
          if (!block.owns(a, b)) continue;
          int& o = owner[a * C + b];
          if (o >= 0) throw InputError(path + ": block " + std::to_string(block.row) + "," + std::to_string(block.col) +
                                       " is also in " + blocks[static_cast<std::size_t>(o)]);
          o = static_cast<int>(bi);
        }
      for (auto& [name, full] : arrays) {
        if (!in.has_dataset(name))
          throw InputError(path + ": no dataset " + name + " (expected the datasets of " + blocks[order[0]] + ")");
        const auto part = in.read_f64(name);
        if (part.size() != P * Cb * Cb)
          throw InputError(path + ": " + name + " has " + std::to_string(part.size()) + " values, expected " +
                           std::to_string(P) + " x " + std::to_string(Cb) + " x " + std::to_string(Cb));
        for (std::size_t p = 0; p < P; ++p)
          for (std::size_t a = 0; a < Cb; ++a)
            for (std::size_t b = 0; b < Cb; ++b)
              if (block.owns(a, b)) full[(p * C + a) * C + b] = part[(p * Cb + a) * Cb + b];
      }
    }
    for (std::size_t a = 0; a < C; ++a)
      for (std::size_t b = 0; b < C; ++b)
        if (owner[a * C + b] < 0) {
          const SweepBlock grouping{meta["block_size"].get<int>(), 0, 0};
          const int i = std::min(grouping.group_of(a), grouping.group_of(b));
          const int j = std::max(grouping.group_of(a), grouping.group_of(b));
          throw InputError("sweep blocks: block " + std::to_string(i) + "," + std::to_string(j) + " of " +
                           std::to_string(groups) + " groups is missing, or older than the checkpoints in its groups (pair " +
                           labels[a] + ", " + labels[b] + ")");
        }
    first["activations"] = sources;
    first["merged_blocks"] = blocks;
    meta["config"] = first;
    meta["notes"] = notes;
    meta["P"] = P;
    meta["C"] = C;
    meta["point_names"] = point_names;
    meta["labels"] = labels;
    std::ostringstream out;
    out << std::setprecision(17) << "pairs,metric,point,row,column,value,null\n";
    for (const auto& [name, full] : arrays) {
      const std::string metric = name.substr(std::string("/checkpoint_checkpoint/").size());
      if (metric.size() > 5 && metric.compare(metric.size() - 5, 5, "_null") == 0) continue;
      const auto null = arrays.find(name + "_null");
      for (std::size_t i = 0; i < full.size(); ++i) {
        const std::size_t p = i / (C * C), a = i / C % C, b = i % C;
        out << "checkpoint_checkpoint," << metric << "," << point_names[p] << "," << labels[a] << "," << labels[b] << ","
            << full[i] << ",";
        if (null != arrays.end()) out << null->second[i];
        out << "\n";
      }
    }
    csv_text = out.str();
  });
  meta = nlohmann::json::parse(mpi::broadcast_string(comm, meta.dump()));
  const std::string csv = (fs::path(output).parent_path() / (fs::path(output).stem().string() + ".csv")).string();
  mpi::on_root(comm, [&] { io::write_file_atomically(csv, csv_text); });
  const auto P = meta["P"].get<std::uint64_t>(), C = meta["C"].get<std::uint64_t>();
  point_names = meta["point_names"].get<std::vector<std::string>>();
  labels = meta["labels"].get<std::vector<std::string>>();
  io::H5Output out(output, comm, "sweep/1", meta["config"]);
  const auto& ra = meta["root"];
  for (const char* key : {"hook", "null"}) out.set_attribute("/", key, ra[key].get<std::string>());
  for (const char* key : {"pairs", "metrics", "sources"}) out.set_attribute("/", key, split_lines(ra[key].get<std::string>()));
  out.set_attribute("/", "num_prompts", std::stoll(ra["num_prompts"].get<std::string>()));
  out.set_attribute("/", "knn", std::stoll(ra["knn"].get<std::string>()));
  out.set_attribute("/", "csv", fs::path(csv).filename().string());
  const auto notes = meta["notes"].get<std::vector<std::string>>();
  out.set_attribute("/", "notes", notes.empty() ? std::vector<std::string>{""} : notes);
  write_labels(out, "/labels/points", point_names, root);
  write_labels(out, "/labels/checkpoints", labels, root);
  for (const auto& [name, attrs] : meta["datasets"].items()) {
    out.create_numeric(name, io::DType::f64, {P, C, C}, false);
    out.write_rows(name, 0, root ? P : 0, root ? arrays.at(name).data() : nullptr);
    for (const auto& [key, value] : attrs.items()) {
      if (key == "k") out.set_attribute(name, key, std::stoll(value.get<std::string>()));
      else out.set_attribute(name, key, value.get<std::string>());
    }
  }
  out.commit();
}

}  // namespace lmtopo::stages
