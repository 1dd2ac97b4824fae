// The aggregate stage (aggregate.hpp). Every rank reads and computes (the inputs are barcodes: small);
// rank 0 writes.
#include "stages/aggregate.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "core/error.hpp"
#include "io/barcode_csv.hpp"
#include "io/csv_table.hpp"
#include "io/h5store.hpp"
#include "io/work_manifest.hpp"
#include "mpi/collective.hpp"
#include "stats/correlation.hpp"
#include "stats/depth_curves.hpp"
#include "stats/phases.hpp"
#include "topology/layer_summaries.hpp"

namespace lmtopo::stages {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Offsets in relative depth of the persistence-similarity bands: S(t, t + offset) along the depth axis.
const std::vector<double>& band_offsets() {
  static const std::vector<double> offsets = {0.1, 0.25, 0.5};
  return offsets;
}

// One input summarised: per-layer S̄ and Betti of the chosen dimension, the prompt subsets' S̄ curves
// when the zigzag ran on subsets, and all of them on the depth grid.
struct Series {
  SeriesInput input;
  int layers = 0;
  std::vector<double> avg_similarity, betti;  // [L]
  std::vector<double> similarity;             // [L, L]: S(l1, l2) = PHSim(l1, l2) / β(l1)
  std::vector<double> replicates;             // [n_replicates, L]
  std::size_t n_replicates = 0;
  std::vector<double> nulls;                  // [n_nulls, L]: the zigzag's permuted-prompts null draws
  std::size_t n_nulls = 0;
  std::vector<double> curve, betti_curve, sd_curve, replicate_curves, null_curves;  // on the grid
  std::vector<double> null_mean_curve, null_sd_curve;  // the permuted-prompts null band (NaN without draws)
  std::vector<double> similarity_grid, bands;          // [G, G] and [offsets, G]
  stats::Phase phase;
  // Per dimension of curve_dims: S̄ and Betti per layer [D, L], then on the grid [D, G].
  std::vector<double> dim_avg_similarity, dim_betti, dim_curves, dim_betti_curves;
};

// A zigzag output's stack of S̄ curves [rows, L] (`group` subsets or null), when it has one.
std::size_t read_curves(const io::H5Input& in, const Series& s, const std::string& group, int dim, std::vector<double>& out) {
  const std::string name = "/" + group + "/h" + std::to_string(dim) + "/avg_similarity";
  if (!in.has_dataset(name)) return 0;
  const auto info = in.dataset(name);
  if (info.shape.size() != 2 || info.shape[1] != static_cast<std::uint64_t>(s.layers))
    throw InputError(s.input.path + ": " + name + ": expected [" + group + ", " + std::to_string(s.layers) + "]");
  out = in.read_f64(name);
  return static_cast<std::size_t>(info.shape[0]);
}

// The zigzag's S̄ per prompt subset (when it ran on two or more) and per permuted-prompts null draw.
void read_replicates(Series& s, int dim) {
  if (!io::is_hdf5_path(s.input.path)) return;
  const io::H5Input in(s.input.path);
  s.n_replicates = read_curves(in, s, "subsets", dim, s.replicates);
  s.n_nulls = read_curves(in, s, "null", dim, s.nulls);
}

std::vector<double> rows_on_grid(const std::vector<double>& rows, std::size_t n, std::size_t L, const std::vector<double>& grid) {
  std::vector<double> out;
  for (std::size_t r = 0; r < n; ++r) {
    const auto c = stats::resample_to_depth(std::vector<double>(rows.begin() + static_cast<std::ptrdiff_t>(r * L),
                                                                rows.begin() + static_cast<std::ptrdiff_t>((r + 1) * L)), grid);
    out.insert(out.end(), c.begin(), c.end());
  }
  return out;
}

topology::LayerSummaries summarize_dimension(const io::BarcodeFile& file, const SeriesInput& input, int layers, int dim) {
  try {
    return topology::summarize_layers(topology::to_layer_bars(file.bars, layers, dim), layers, dim);
  } catch (const std::invalid_argument& e) {
    throw InputError(input.path + ": " + e.what());
  }
}

Series load_series(const SeriesInput& input, const AggregateOptions& o) {
  Series s;
  s.input = input;
  const io::BarcodeFile file = io::read_barcode_file(input.path, input.layers);
  s.layers = file.num_layers;
  const auto summary = summarize_dimension(file, input, s.layers, o.dim);
  s.avg_similarity = summary.avg_similarity;
  s.betti.assign(summary.betti.begin(), summary.betti.end());
  s.similarity = summary.similarity;
  for (const int d : o.curve_dims) {
    const auto of_d = summarize_dimension(file, input, s.layers, d);
    s.dim_avg_similarity.insert(s.dim_avg_similarity.end(), of_d.avg_similarity.begin(), of_d.avg_similarity.end());
    s.dim_betti.insert(s.dim_betti.end(), of_d.betti.begin(), of_d.betti.end());
  }
  read_replicates(s, o.dim);
  return s;
}

// Per column of the [n, G] stack `rows`: the mean (NaN without rows) and the sample sd (n - 1; NaN
// below two rows).
void column_mean_sd(const std::vector<double>& rows, std::size_t n, std::size_t G, std::vector<double>& mean,
                    std::vector<double>& sd) {
  mean.assign(G, kNaN);
  sd.assign(G, kNaN);
  for (std::size_t g = 0; g < G && n > 0; ++g) {
    double m = 0, sq = 0;
    for (std::size_t r = 0; r < n; ++r) m += rows[r * G + g];
    m /= static_cast<double>(n);
    for (std::size_t r = 0; r < n; ++r) sq += std::pow(rows[r * G + g] - m, 2);
    mean[g] = m;
    if (n >= 2) sd[g] = std::sqrt(sq / static_cast<double>(n - 1));
  }
}

void place_on_grid(Series& s, const std::vector<double>& grid, const std::vector<double>& thresholds) {
  s.curve = stats::resample_to_depth(s.avg_similarity, grid);
  s.betti_curve = stats::resample_to_depth(s.betti, grid);
  const auto L = static_cast<std::size_t>(s.layers), G = grid.size();
  s.replicate_curves = rows_on_grid(s.replicates, s.n_replicates, L, grid);
  s.null_curves = rows_on_grid(s.nulls, s.n_nulls, L, grid);
  const std::size_t D = L ? s.dim_betti.size() / L : 0;
  s.dim_curves = rows_on_grid(s.dim_avg_similarity, D, L, grid);
  s.dim_betti_curves = rows_on_grid(s.dim_betti, D, L, grid);
  std::vector<double> replicate_mean;
  column_mean_sd(s.replicate_curves, s.n_replicates, G, replicate_mean, s.sd_curve);
  column_mean_sd(s.null_curves, s.n_nulls, G, s.null_mean_curve, s.null_sd_curve);
  s.phase = stats::phase_of(s.avg_similarity, thresholds);
  s.similarity_grid = stats::resample_matrix_to_depth(s.similarity, L, grid);
  s.bands.clear();
  for (double offset : band_offsets()) {
    const auto band = stats::band_at_offset(s.similarity, L, grid, offset);
    s.bands.insert(s.bands.end(), band.begin(), band.end());
  }
}

// One key_linguistic output on the depth grid: per block the key units summed over languages and the
// mean pairwise cosine averaged over them (block b of B at depth b/(B-1)).
struct NeuronSeries {
  SeriesInput input;
  std::size_t blocks = 0;
  std::vector<double> key_units, mean_cosine;  // on the grid
};

NeuronSeries load_neurons(const SeriesInput& in, const std::vector<double>& grid) {
  const io::H5Input f(in.path);
  if (!f.has_attribute("/", "lmtopo_schema") || f.string_attribute("/", "lmtopo_schema") != "neurons/1" ||
      !f.has_attribute("/", "study") || f.string_attribute("/", "study") != "key_linguistic")
    throw InputError(in.path + ": lmtopo_schema: expected a neurons/1 file of study key_linguistic");
  const auto info = f.dataset("/key_linguistic/count");
  if (info.shape.size() != 2 || info.shape[0] < 2 || info.shape[1] < 1)
    throw InputError(in.path + ": /key_linguistic/count: expected [blocks >= 2, languages]");
  const auto B = static_cast<std::size_t>(info.shape[0]), Lg = static_cast<std::size_t>(info.shape[1]);
  const auto count = f.read_i64("/key_linguistic/count");
  const auto cosine = f.read_f64("/key_linguistic/mean_cosine");
  if (cosine.size() != B * Lg) throw InputError(in.path + ": /key_linguistic/mean_cosine: expected [" + std::to_string(B) + ", " + std::to_string(Lg) + "]");
  std::vector<double> units(B, 0.0), mean(B, 0.0);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t l = 0; l < Lg; ++l) {
      units[b] += static_cast<double>(count[b * Lg + l]);
      mean[b] += cosine[b * Lg + l] / static_cast<double>(Lg);
    }
  return {in, B, stats::resample_to_depth(units, grid), stats::resample_to_depth(mean, grid)};
}

void write_neurons(io::RootWriter& w, const std::vector<NeuronSeries>& neurons, std::size_t G) {
  const std::size_t N = neurons.size();
  std::vector<std::string> model;
  std::vector<long long> step, blocks;
  std::vector<double> units, cosine;
  for (const auto& n : neurons) {
    model.push_back(n.input.model);
    step.push_back(n.input.step);
    blocks.push_back(static_cast<long long>(n.blocks));
    units.insert(units.end(), n.key_units.begin(), n.key_units.end());
    cosine.insert(cosine.end(), n.mean_cosine.begin(), n.mean_cosine.end());
  }
  w.strings("/neurons/model", model);
  w.numbers("/neurons/step", io::DType::i64, {N}, step.data());
  w.numbers("/neurons/blocks", io::DType::i64, {N}, blocks.data());
  w.numbers("/neurons/key_units", io::DType::f64, {N, G}, units.data());
  w.numbers("/neurons/mean_cosine", io::DType::f64, {N, G}, cosine.data());
}

// One checkpoint's sweep on the depth grid: the per-point metrics it has (NaN curves for the others).
struct SweepSeries {
  SeriesInput input;
  std::size_t points = 0;
  std::vector<double> sads, lrds, twonn;
  std::vector<double> sads_ci, lrds_ci, twonn_ci;  // [grid, 2]: the sweep's bootstrap interval, NaN without
};

// A sweep/1 file's metric per point resampled to the grid, or NaN everywhere when the file lacks it.
std::vector<double> point_curve(const io::H5Input& f, const std::string& path, const std::string& dataset, std::size_t points,
                                const std::vector<double>& grid) {
  if (!f.has_dataset(dataset)) return std::vector<double>(grid.size(), NAN);
  const auto v = f.read_f64(dataset);
  if (v.size() != points) throw InputError(path + ": " + dataset + ": expected one value per point (" + std::to_string(points) + ")");
  return stats::resample_to_depth(v, grid);
}

// The interval of per-point values (a sweep's [points, 2] <metric>_ci) on the grid: each bound
// resampled as the values are; [grid, 2], NaN when the sweep ran no bootstrap.
std::vector<double> interval_on_grid(const std::vector<double>& per_point_ci, const std::vector<double>& grid) {
  const std::size_t P = per_point_ci.size() / 2;
  std::vector<double> lo(P), hi(P), out(grid.size() * 2);
  for (std::size_t p = 0; p < P; ++p) {
    lo[p] = per_point_ci[2 * p];
    hi[p] = per_point_ci[2 * p + 1];
  }
  const auto glo = stats::resample_to_depth(lo, grid), ghi = stats::resample_to_depth(hi, grid);
  for (std::size_t g = 0; g < grid.size(); ++g) {
    out[2 * g] = glo[g];
    out[2 * g + 1] = ghi[g];
  }
  return out;
}

std::vector<double> point_interval(const io::H5Input& f, const std::string& path, const std::string& dataset, std::size_t points,
                                   const std::vector<double>& grid) {
  const std::string name = dataset + "_ci";
  if (!f.has_dataset(name)) return std::vector<double>(grid.size() * 2, NAN);
  const auto v = f.read_f64(name);
  if (v.size() != 2 * points) throw InputError(path + ": " + name + ": expected [points, 2] (" + std::to_string(points) + " points)");
  return interval_on_grid(v, grid);
}

const io::H5Input& require_sweep(const io::H5Input& f, const std::string& path) {
  if (!f.has_attribute("/", "lmtopo_schema") || f.string_attribute("/", "lmtopo_schema") != "sweep/1")
    throw InputError(path + ": lmtopo_schema: expected a sweep/1 file");
  return f;
}

SweepSeries load_sweep(const SeriesInput& in, const std::vector<double>& grid) {
  const io::H5Input f(in.path);
  require_sweep(f, in.path);
  const std::size_t points = f.read_strings("/labels/points").size();
  if (points < 2) throw InputError(in.path + ": /labels/points: expected at least 2 points");
  return {in,
          points,
          point_curve(f, in.path, "/language_language/sads", points, grid),
          point_curve(f, in.path, "/language_language/lrds", points, grid),
          point_curve(f, in.path, "/layer_layer/twonn", points, grid),
          point_interval(f, in.path, "/language_language/sads", points, grid),
          point_interval(f, in.path, "/language_language/lrds", points, grid),
          point_interval(f, in.path, "/layer_layer/twonn", points, grid)};
}

// A model's checkpoint x checkpoint sweep: per checkpoint, its unbiased linear CKA with the last
// checkpoint at every point, on the grid.
struct CkaFinal {
  std::string model, checkpoint;
  std::vector<double> values;
  std::vector<double> ci;  // [grid, 2], NaN without the sweep's bootstrap
};

std::vector<CkaFinal> load_cka_final(const SeriesInput& in, const std::vector<double>& grid) {
  const io::H5Input f(in.path);
  require_sweep(f, in.path);
  const std::string name = "/checkpoint_checkpoint/cka_linear_unbiased";
  if (!f.has_dataset(name)) throw InputError(in.path + ": " + name + " is missing (a checkpoint_checkpoint sweep with cka_linear_unbiased)");
  const auto labels = f.read_strings("/labels/checkpoints");
  const auto shape = f.dataset(name).shape;
  const std::size_t P = shape.at(0), C = labels.size();
  if (shape.size() != 3 || shape[1] != C || shape[2] != C || P < 2) throw InputError(in.path + ": " + name + ": expected [points >= 2, checkpoints, checkpoints]");
  const auto cka = f.read_f64(name);
  std::vector<double> cka_ci;
  if (f.has_dataset(name + "_ci")) {
    cka_ci = f.read_f64(name + "_ci");
    if (cka_ci.size() != 2 * P * C * C) throw InputError(in.path + ": " + name + "_ci: expected [points, checkpoints, checkpoints, 2]");
  }
  std::vector<CkaFinal> out;
  for (std::size_t c = 0; c < C; ++c) {
    std::vector<double> per_point(P), per_point_ci(2 * P, NAN);
    for (std::size_t p = 0; p < P; ++p) {
      const std::size_t i = (p * C + c) * C + (C - 1);
      per_point[p] = cka[i];
      if (!cka_ci.empty()) {
        per_point_ci[2 * p] = cka_ci[2 * i];
        per_point_ci[2 * p + 1] = cka_ci[2 * i + 1];
      }
    }
    out.push_back({in.model, labels[c], stats::resample_to_depth(per_point, grid), interval_on_grid(per_point_ci, grid)});
  }
  return out;
}

void write_sweeps(io::RootWriter& w, const std::vector<SweepSeries>& sweeps, const std::vector<CkaFinal>& cka, std::size_t G) {
  if (!sweeps.empty()) {
    std::vector<std::string> model;
    std::vector<long long> step, points;
    std::vector<double> sads, lrds, twonn, sads_ci, lrds_ci, twonn_ci;
    for (const auto& s : sweeps) {
      model.push_back(s.input.model);
      step.push_back(s.input.step);
      points.push_back(static_cast<long long>(s.points));
      sads.insert(sads.end(), s.sads.begin(), s.sads.end());
      lrds.insert(lrds.end(), s.lrds.begin(), s.lrds.end());
      twonn.insert(twonn.end(), s.twonn.begin(), s.twonn.end());
      sads_ci.insert(sads_ci.end(), s.sads_ci.begin(), s.sads_ci.end());
      lrds_ci.insert(lrds_ci.end(), s.lrds_ci.begin(), s.lrds_ci.end());
      twonn_ci.insert(twonn_ci.end(), s.twonn_ci.begin(), s.twonn_ci.end());
    }
    const std::size_t N = sweeps.size();
    w.strings("/sweeps/model", model);
    w.numbers("/sweeps/step", io::DType::i64, {N}, step.data());
    w.numbers("/sweeps/points", io::DType::i64, {N}, points.data());
    w.numbers("/sweeps/sads", io::DType::f64, {N, G}, sads.data());
    w.numbers("/sweeps/lrds", io::DType::f64, {N, G}, lrds.data());
    w.numbers("/sweeps/twonn", io::DType::f64, {N, G}, twonn.data());
    w.numbers("/sweeps/sads_ci", io::DType::f64, {N, G, 2}, sads_ci.data());
    w.numbers("/sweeps/lrds_ci", io::DType::f64, {N, G, 2}, lrds_ci.data());
    w.numbers("/sweeps/twonn_ci", io::DType::f64, {N, G, 2}, twonn_ci.data());
  }
  if (!cka.empty()) {
    std::vector<std::string> model, checkpoint;
    std::vector<double> values, ci;
    for (const auto& c : cka) {
      model.push_back(c.model);
      checkpoint.push_back(c.checkpoint);
      values.insert(values.end(), c.values.begin(), c.values.end());
      ci.insert(ci.end(), c.ci.begin(), c.ci.end());
    }
    w.strings("/cka_final/model", model);
    w.strings("/cka_final/checkpoint", checkpoint);
    w.numbers("/cka_final/values", io::DType::f64, {cka.size(), G}, values.data());
    w.numbers("/cka_final/ci", io::DType::f64, {cka.size(), G, 2}, ci.data());
  }
}

// OUT.sweeps.csv and OUT.cka_final.csv: one row per input and depth.
void write_sweep_tables(const AggregateOptions& o, const std::vector<SweepSeries>& sweeps, const std::vector<CkaFinal>& cka,
                        const std::vector<double>& grid) {
  if (!sweeps.empty()) {
    std::ostringstream t;
    t << "model,step,depth,sads,lrds,twonn,sads_ci_low,sads_ci_high,lrds_ci_low,lrds_ci_high,twonn_ci_low,twonn_ci_high\n";
    for (const auto& s : sweeps)
      for (std::size_t g = 0; g < grid.size(); ++g) {
        t << io::csv_field(s.input.model) << "," << s.input.step << "," << io::csv_number(grid[g]) << "," << io::csv_number(s.sads[g]) << ","
          << io::csv_number(s.lrds[g]) << "," << io::csv_number(s.twonn[g]);
        for (const auto* ci : {&s.sads_ci, &s.lrds_ci, &s.twonn_ci}) t << "," << io::csv_number((*ci)[2 * g]) << "," << io::csv_number((*ci)[2 * g + 1]);
        t << "\n";
      }
    io::write_file_atomically(io::csv_base(o.output) + ".sweeps.csv", t.str());
  }
  if (!cka.empty()) {
    std::ostringstream t;
    t << "model,checkpoint,depth,cka_final,cka_final_ci_low,cka_final_ci_high\n";
    for (const auto& c : cka)
      for (std::size_t g = 0; g < grid.size(); ++g)
        t << io::csv_field(c.model) << "," << io::csv_field(c.checkpoint) << "," << io::csv_number(grid[g]) << "," << io::csv_number(c.values[g])
          << "," << io::csv_number(c.ci[2 * g]) << "," << io::csv_number(c.ci[2 * g + 1]) << "\n";
    io::write_file_atomically(io::csv_base(o.output) + ".cka_final.csv", t.str());
  }
}

// A model's checkpoints: its series in step order, the final (largest step) and step 0's if present.
struct Model {
  std::string name;
  std::vector<std::size_t> by_step;
  long long settled_step = -1;  // the first checkpoint from which the argmax stays put (-1: one checkpoint)
  std::size_t final() const { return by_step.back(); }
};

std::vector<Model> models_of(const std::vector<Series>& series, int tolerance) {
  std::vector<Model> models;
  for (std::size_t i = 0; i < series.size(); ++i) {
    auto it = std::find_if(models.begin(), models.end(), [&](const Model& m) { return m.name == series[i].input.model; });
    if (it == models.end()) it = models.insert(models.end(), Model{series[i].input.model, {}, -1});
    it->by_step.push_back(i);
  }
  for (auto& m : models) {
    std::stable_sort(m.by_step.begin(), m.by_step.end(), [&](std::size_t a, std::size_t b) { return series[a].input.step < series[b].input.step; });
    if (m.by_step.size() < 2) continue;
    std::vector<int> argmax;
    for (std::size_t i : m.by_step) argmax.push_back(series[i].phase.argmax_layer);
    m.settled_step = series[m.by_step[stats::settled_from(argmax, tolerance)]].input.step;
  }
  return models;
}

// The comparison of two models' final S̄ curves.
struct Pair {
  std::size_t a = 0, b = 0;  // models
  double pearson = kNaN, spearman = kNaN, ci_low = kNaN, ci_high = kNaN, shuffle_p = kNaN, null_prompts = kNaN, null_step0 = kNaN;
  std::string first_null;  // permuted_prompts (both zigzags have null draws) or layer_shuffle
  long long shared = 0;    // 1 shared, 0 not, -1 not decidable (no step-0 checkpoint for the second null)
};

// The largest correlation of one model's curve with the other's null draws, both ways (NaN: none defined).
double permuted_prompts_null(const Series& a, const Series& b, std::size_t G) {
  double best = kNaN;
  auto take = [&](const std::vector<double>& curve, const Series& other) {
    for (std::size_t j = 0; j < other.n_nulls; ++j) {
      const double r = stats::pearson(curve, std::vector<double>(other.null_curves.begin() + static_cast<std::ptrdiff_t>(j * G),
                                                                 other.null_curves.begin() + static_cast<std::ptrdiff_t>((j + 1) * G)));
      if (!std::isnan(r)) best = std::isnan(best) ? r : std::max(best, r);
    }
  };
  take(a.curve, b);
  take(b.curve, a);
  return best;
}

// r (and the interval's lower end, when there is one) above a null correlation (an undefined one is beaten).
bool beats(const Pair& p, double null) {
  return std::isnan(null) || (p.pearson > null && (std::isnan(p.ci_low) || p.ci_low > null));
}

const Series* step0_of(const Model& m, const std::vector<Series>& series) {
  for (std::size_t i : m.by_step)
    if (series[i].input.step == 0 && i != m.final()) return &series[i];
  return nullptr;
}

Pair compare(std::size_t a, std::size_t b, const std::vector<Model>& models, const std::vector<Series>& series,
             const std::vector<double>& grid, const AggregateOptions& o, std::uint64_t seed) {
  Pair p;
  p.a = a;
  p.b = b;
  const Series& sa = series[models[a].final()];
  const Series& sb = series[models[b].final()];
  p.pearson = stats::pearson(sa.curve, sb.curve);
  p.spearman = stats::spearman(sa.curve, sb.curve);
  if (sa.n_replicates >= 2 && sb.n_replicates >= 2 && o.bootstrap > 0) {
    const auto ci = stats::bootstrap_pearson(sa.replicate_curves, sa.n_replicates, sb.replicate_curves, sb.n_replicates, o.bootstrap, 0.95, seed);
    p.ci_low = ci.low;
    p.ci_high = ci.high;
  }
  p.shuffle_p = stats::layer_shuffle_p_value(sa.curve, sb.avg_similarity, grid, p.pearson, o.permutations, seed + 1);
  const bool prompts_null = sa.n_nulls > 0 && sb.n_nulls > 0;
  if (prompts_null) p.null_prompts = permuted_prompts_null(sa, sb, grid.size());
  p.first_null = prompts_null ? "permuted_prompts" : "layer_shuffle";
  const Series* za = step0_of(models[a], series);
  const Series* zb = step0_of(models[b], series);
  std::vector<double> nulls;
  if (za) nulls.push_back(stats::pearson(za->curve, sb.curve));
  if (zb) nulls.push_back(stats::pearson(sa.curve, zb->curve));
  for (double r : nulls)
    if (!std::isnan(r)) p.null_step0 = std::isnan(p.null_step0) ? r : std::max(p.null_step0, r);
  const bool first = !std::isnan(p.pearson) && (prompts_null ? beats(p, p.null_prompts) : p.shuffle_p < o.alpha);
  if (!first) p.shared = 0;
  else if (nulls.empty()) p.shared = -1;
  else p.shared = beats(p, p.null_step0) ? 1 : 0;
  return p;
}

void write_tables(const AggregateOptions& o, const std::vector<Series>& series, const std::vector<Model>& models,
                  const std::vector<Pair>& pairs, const std::vector<double>& grid) {
  using io::csv_field;
  using io::csv_number;
  std::ostringstream curves, phases, universality, bands;
  curves << "model,step,depth,avg_similarity,avg_similarity_sd,betti\n";
  bands << "model,step,offset,depth,similarity\n";
  phases << "model,step,num_layers,argmax_layer,argmax_depth,threshold,candidates,first_depth,last_depth,settled_step\n";
  universality << "model_a,model_b,step_a,step_b,pearson,spearman,ci_low,ci_high,first_null,shuffle_p,null_prompts,null_step0,shared\n";
  for (const auto& m : models)
    for (std::size_t i : m.by_step) {
      const Series& s = series[i];
      const std::string head = csv_field(s.input.model) + "," + std::to_string(s.input.step) + ",";
      for (std::size_t g = 0; g < grid.size(); ++g)
        curves << head << csv_number(grid[g]) << "," << csv_number(s.curve[g]) << "," << csv_number(s.sd_curve[g]) << ","
               << csv_number(s.betti_curve[g]) << "\n";
      for (std::size_t b = 0; b < band_offsets().size(); ++b)
        for (std::size_t g = 0; g < grid.size(); ++g)
          bands << head << csv_number(band_offsets()[b]) << "," << csv_number(grid[g]) << "," << csv_number(s.bands[b * grid.size() + g]) << "\n";
      for (const auto& b : s.phase.bands)
        phases << head << s.layers << "," << s.phase.argmax_layer << "," << csv_number(s.phase.argmax_depth) << "," << csv_number(b.threshold)
               << "," << topology::layer_ranges(b.layers, " ") << "," << csv_number(b.first_depth) << "," << csv_number(b.last_depth) << ","
               << (m.settled_step >= 0 ? std::to_string(m.settled_step) : "") << "\n";
    }
  for (const auto& p : pairs)
    universality << csv_field(models[p.a].name) << "," << csv_field(models[p.b].name) << "," << series[models[p.a].final()].input.step << ","
                 << series[models[p.b].final()].input.step << "," << csv_number(p.pearson) << "," << csv_number(p.spearman) << ","
                 << csv_number(p.ci_low) << "," << csv_number(p.ci_high) << "," << p.first_null << "," << csv_number(p.shuffle_p) << ","
                 << csv_number(p.null_prompts) << "," << csv_number(p.null_step0)
                 << "," << p.shared << "\n";
  const std::string base = io::csv_base(o.output);
  io::write_file_atomically(base + ".curves.csv", curves.str());
  io::write_file_atomically(base + ".phases.csv", phases.str());
  io::write_file_atomically(base + ".universality.csv", universality.str());
  io::write_file_atomically(base + ".bands.csv", bands.str());
}

// OUT.neurons.csv: the key-neuron checkpoint series, one row per file and depth.
void write_neurons_table(const AggregateOptions& o, const std::vector<NeuronSeries>& neurons, const std::vector<double>& grid) {
  std::ostringstream t;
  t << "model,step,depth,key_units,mean_cosine\n";
  for (const auto& n : neurons)
    for (std::size_t g = 0; g < grid.size(); ++g)
      t << io::csv_field(n.input.model) << "," << n.input.step << "," << io::csv_number(grid[g]) << "," << io::csv_number(n.key_units[g]) << ","
        << io::csv_number(n.mean_cosine[g]) << "\n";
  io::write_file_atomically(io::csv_base(o.output) + ".neurons.csv", t.str());
}

// /curves/by_dim/{avg_similarity,betti} [D, S, G] for the dimensions /grid/curve_dims, when asked for.
void write_dimension_curves(io::RootWriter& w, const AggregateOptions& o, const std::vector<Series>& series, std::size_t G) {
  const std::size_t D = o.curve_dims.size(), S = series.size();
  if (D == 0) return;
  std::vector<double> curves(D * S * G), betti(D * S * G);
  for (std::size_t d = 0; d < D; ++d)
    for (std::size_t i = 0; i < S; ++i)
      for (std::size_t g = 0; g < G; ++g) {
        curves[(d * S + i) * G + g] = series[i].dim_curves[d * G + g];
        betti[(d * S + i) * G + g] = series[i].dim_betti_curves[d * G + g];
      }
  const std::vector<long long> dims(o.curve_dims.begin(), o.curve_dims.end());
  w.numbers("/grid/curve_dims", io::DType::i64, {D}, dims.data());
  w.numbers("/curves/by_dim/avg_similarity", io::DType::f64, {D, S, G}, curves.data());
  w.numbers("/curves/by_dim/betti", io::DType::f64, {D, S, G}, betti.data());
}

// OUT.dims.csv: S̄ and Betti of every dimension of curve_dims, one row per series, dimension and depth.
void write_dimensions_table(const AggregateOptions& o, const std::vector<Series>& series, const std::vector<double>& grid) {
  std::ostringstream t;
  t << "model,step,dim,depth,avg_similarity,betti\n";
  const std::size_t G = grid.size();
  for (const auto& s : series)
    for (std::size_t d = 0; d < o.curve_dims.size(); ++d)
      for (std::size_t g = 0; g < G; ++g)
        t << io::csv_field(s.input.model) << "," << s.input.step << "," << o.curve_dims[d] << "," << io::csv_number(grid[g]) << ","
          << io::csv_number(s.dim_curves[d * G + g]) << "," << io::csv_number(s.dim_betti_curves[d * G + g]) << "\n";
  io::write_file_atomically(io::csv_base(o.output) + ".dims.csv", t.str());
}

void write_h5(const AggregateOptions& o, const std::vector<Series>& series, const std::vector<Model>& models, const std::vector<Pair>& pairs,
              const std::vector<NeuronSeries>& neurons, const std::vector<SweepSeries>& sweeps, const std::vector<CkaFinal>& cka,
              const std::vector<double>& grid, MPI_Comm comm) {
  io::H5Output out(o.output, comm, "aggregate/1", o.config);
  out.set_attribute("/", "dim", static_cast<long long>(o.dim));
  out.set_attribute("/", "alpha", o.alpha);
  out.set_attribute("/", "tolerance", static_cast<long long>(o.tolerance));
  io::RootWriter w{out, mpi::rank(comm) == 0};
  const std::size_t S = series.size(), G = grid.size(), T = o.thresholds.size(), P = pairs.size(), M = models.size();
  std::vector<std::string> model, source, pair_a, pair_b, model_names, first_null;
  std::vector<long long> step, layers, replicates, null_draws, argmax, first(S * T), last(S * T), settled;
  std::vector<double> curve, sd, betti, null_mean, null_sd, argmax_depth, first_depth(S * T), last_depth(S * T);
  std::vector<double> similarity, bands;
  for (std::size_t i = 0; i < S; ++i) {
    const Series& s = series[i];
    model.push_back(s.input.model);
    source.push_back(s.input.path);
    step.push_back(s.input.step);
    layers.push_back(s.layers);
    replicates.push_back(static_cast<long long>(s.n_replicates));
    null_draws.push_back(static_cast<long long>(s.n_nulls));
    curve.insert(curve.end(), s.curve.begin(), s.curve.end());
    sd.insert(sd.end(), s.sd_curve.begin(), s.sd_curve.end());
    null_mean.insert(null_mean.end(), s.null_mean_curve.begin(), s.null_mean_curve.end());
    null_sd.insert(null_sd.end(), s.null_sd_curve.begin(), s.null_sd_curve.end());
    betti.insert(betti.end(), s.betti_curve.begin(), s.betti_curve.end());
    similarity.insert(similarity.end(), s.similarity_grid.begin(), s.similarity_grid.end());
    bands.insert(bands.end(), s.bands.begin(), s.bands.end());
    argmax.push_back(s.phase.argmax_layer);
    argmax_depth.push_back(s.phase.argmax_depth);
    for (std::size_t t = 0; t < T; ++t) {
      const auto& b = s.phase.bands[t];
      first[i * T + t] = b.layers.empty() ? -1 : b.layers.front();
      last[i * T + t] = b.layers.empty() ? -1 : b.layers.back();
      first_depth[i * T + t] = b.first_depth;
      last_depth[i * T + t] = b.last_depth;
    }
  }
  for (const auto& m : models) {
    model_names.push_back(m.name);
    settled.push_back(m.settled_step);
  }
  std::vector<double> pearson, spearman, ci(P * 2), shuffle_p, null_prompts, null_step0;
  std::vector<long long> shared;
  for (std::size_t k = 0; k < P; ++k) {
    const auto& p = pairs[k];
    pair_a.push_back(models[p.a].name);
    pair_b.push_back(models[p.b].name);
    pearson.push_back(p.pearson);
    spearman.push_back(p.spearman);
    ci[2 * k] = p.ci_low;
    ci[2 * k + 1] = p.ci_high;
    shuffle_p.push_back(p.shuffle_p);
    null_prompts.push_back(p.null_prompts);
    first_null.push_back(p.first_null);
    null_step0.push_back(p.null_step0);
    shared.push_back(p.shared);
  }
  w.strings("/series/model", model);
  w.numbers("/series/step", io::DType::i64, {S}, step.data());
  w.strings("/series/source", source);
  w.numbers("/series/num_layers", io::DType::i64, {S}, layers.data());
  w.numbers("/series/replicates", io::DType::i64, {S}, replicates.data());
  w.numbers("/series/null_draws", io::DType::i64, {S}, null_draws.data());
  w.numbers("/grid/depth", io::DType::f64, {G}, grid.data());
  w.numbers("/curves/avg_similarity", io::DType::f64, {S, G}, curve.data());
  w.numbers("/curves/avg_similarity_sd", io::DType::f64, {S, G}, sd.data());
  w.numbers("/curves/avg_similarity_null_mean", io::DType::f64, {S, G}, null_mean.data());
  w.numbers("/curves/avg_similarity_null_sd", io::DType::f64, {S, G}, null_sd.data());
  w.numbers("/curves/betti", io::DType::f64, {S, G}, betti.data());
  const std::size_t B = band_offsets().size();
  w.numbers("/grid/band_offsets", io::DType::f64, {B}, band_offsets().data());
  w.numbers("/curves/similarity", io::DType::f64, {S, G, G}, similarity.data());
  w.numbers("/curves/similarity_band", io::DType::f64, {S, B, G}, bands.data());
  write_dimension_curves(w, o, series, G);
  w.numbers("/phases/thresholds", io::DType::f64, {T}, o.thresholds.data());
  w.numbers("/phases/argmax_layer", io::DType::i64, {S}, argmax.data());
  w.numbers("/phases/argmax_depth", io::DType::f64, {S}, argmax_depth.data());
  w.numbers("/phases/first_layer", io::DType::i64, {S, T}, first.data());
  w.numbers("/phases/last_layer", io::DType::i64, {S, T}, last.data());
  w.numbers("/phases/first_depth", io::DType::f64, {S, T}, first_depth.data());
  w.numbers("/phases/last_depth", io::DType::f64, {S, T}, last_depth.data());
  w.strings("/models/name", model_names);
  w.numbers("/models/settled_step", io::DType::i64, {M}, settled.data());
  if (P > 0) {
    w.strings("/universality/model_a", pair_a);
    w.strings("/universality/model_b", pair_b);
    w.numbers("/universality/pearson", io::DType::f64, {P}, pearson.data());
    w.numbers("/universality/spearman", io::DType::f64, {P}, spearman.data());
    w.numbers("/universality/pearson_ci", io::DType::f64, {P, 2}, ci.data());
    w.strings("/universality/first_null", first_null);
    w.numbers("/universality/shuffle_p", io::DType::f64, {P}, shuffle_p.data());
    w.numbers("/universality/null_prompts", io::DType::f64, {P}, null_prompts.data());
    w.numbers("/universality/null_step0", io::DType::f64, {P}, null_step0.data());
    w.numbers("/universality/shared", io::DType::i64, {P}, shared.data());
  }
  if (!neurons.empty()) write_neurons(w, neurons, G);
  write_sweeps(w, sweeps, cka, G);
  out.commit();
}

void check_options(const AggregateOptions& o) {
  if (o.series.empty()) throw InputError("--input: expected at least one barcode (MODEL[@STEP]=FILE)");
  if (o.dim < 0) throw InputError("--dim: expected a homology dimension >= 0");
  std::set<int> dims;
  for (const int d : o.curve_dims)
    if (d < 0 || !dims.insert(d).second) throw InputError("--curve-dims: expected distinct homology dimensions >= 0");
  if (o.grid < 2) throw InputError("--grid: expected at least 2 depth points");
  for (double t : o.thresholds)
    if (!(t > 0 && t <= 1)) throw InputError("--thresholds: expected values in (0, 1]");
  if (!(o.alpha > 0 && o.alpha < 1)) throw InputError("--alpha: expected a value in (0, 1)");
  if (o.tolerance < 0) throw InputError("--tolerance: expected a number of layers >= 0");
  std::set<std::pair<std::string, long long>> seen;
  for (const auto& s : o.series)
    if (!seen.insert({s.model, s.step}).second)
      throw InputError(s.path + ": model " + s.model + " step " + std::to_string(s.step) + " is given twice (--input)");
}

}  // namespace

AggregateSummary run_aggregate(const AggregateOptions& o, MPI_Comm comm) {
  std::vector<Series> series;
  std::vector<Model> models;
  std::vector<Pair> pairs;
  std::vector<NeuronSeries> neurons;
  std::vector<SweepSeries> sweeps;
  std::vector<CkaFinal> cka;
  const auto grid = stats::depth_grid(std::max<std::size_t>(o.grid, 2));
  mpi::on_all(comm, [&] {
    check_options(o);
    for (const auto& in : o.series) series.push_back(load_series(in, o));
    for (auto& s : series) place_on_grid(s, grid, o.thresholds);
    models = models_of(series, o.tolerance);
    for (std::size_t a = 0; a < models.size(); ++a)
      for (std::size_t b = a + 1; b < models.size(); ++b)
        pairs.push_back(compare(a, b, models, series, grid, o, o.seed + 1000003ull * pairs.size()));
    for (const auto& in : o.neurons) neurons.push_back(load_neurons(in, grid));
    for (const auto& in : o.sweeps) sweeps.push_back(load_sweep(in, grid));
    for (const auto& in : o.checkpoint_sweeps)
      for (auto& c : load_cka_final(in, grid)) cka.push_back(std::move(c));
  });
  write_h5(o, series, models, pairs, neurons, sweeps, cka, grid, comm);
  mpi::on_root(comm, [&] {
    write_tables(o, series, models, pairs, grid);
    if (!neurons.empty()) write_neurons_table(o, neurons, grid);
    if (!o.curve_dims.empty()) write_dimensions_table(o, series, grid);
    write_sweep_tables(o, sweeps, cka, grid);
  });
  AggregateSummary s{series.size(), models.size(), pairs.size(), 0};
  for (const auto& p : pairs) s.shared += p.shared == 1;
  return s;
}

}  // namespace lmtopo::stages
