// The spatial study of the neurons stage (stages/neurons.hpp; maths in spatial/).
#include <chrono>
#include <cmath>
#include <map>
#include <sstream>

#include "core/error.hpp"
#include "io/unit_positions.hpp"
#include "io/work_manifest.hpp"
#include "mpi/collective.hpp"
#include "spatial/sheet.hpp"
#include "spatial/statistics.hpp"
#include "spatial/stimuli.hpp"
#include "stages/neurons_common.hpp"
#include "stages/prompt_batches.hpp"

namespace lmtopo::stages {
namespace {

using neurons_common::RootWriter;
using neurons_common::sum_over_ranks;

// One sheet's measurements for every block, [blocks, ...] row-major.
struct SheetResult {
  std::size_t blocks = 0, units = 0;
  int side = 0;
  std::string positions;  // "checkpoint" (trained with them) or "seeded"
  std::vector<long long> cell, significant, clusters, largest;
  std::vector<double> t, q, moran_i, moran_z, moran_p_norm, moran_p_sim, by_distance;
};


// A hook's sheets: the positions the checkpoint was trained with (unit_positions.safetensors), or
// a seeded placement per block (--sheet-seed) for a model trained without them.
std::vector<spatial::Sheet> sheets_of(const std::map<std::string, io::SheetPositions>& trained, const std::string& model_dir,
                                      const std::string& hook, std::size_t sheet, std::size_t points, std::size_t units, const SpatialOptions& s) {
  std::vector<spatial::Sheet> out;
  const auto it = trained.find(hook);
  for (std::size_t block = 0; block < points; ++block) {
    if (it == trained.end()) {
      out.push_back(spatial::seeded_sheet(static_cast<int>(units), spatial::sheet_seed(s.sheet_seed, sheet, block)));
      continue;
    }
    const auto& p = it->second;
    const std::string where = model_dir + "/" + io::kUnitPositionsFile + ": tensor " + hook;
    if (p.blocks != points || p.units != units)
      throw InputError(where + ": shape [" + std::to_string(p.blocks) + ", " + std::to_string(p.units) + "] disagrees with the model's [" +
                       std::to_string(points) + ", " + std::to_string(units) + "]");
    try {
      out.push_back(spatial::sheet_from_cells(p.side, std::vector<int>(p.cells.begin() + static_cast<std::ptrdiff_t>(block * units),
                                                                       p.cells.begin() + static_cast<std::ptrdiff_t>((block + 1) * units))));
    } catch (const std::invalid_argument& e) {
      throw InputError(where + ": block " + std::to_string(block) + ": " + e.what());
    }
  }
  return out;
}

// The blocks of rank r are b % ranks == r; the others stay 0 and the sum over the ranks fills them.
SheetResult measure_sheet(const std::vector<float>& pooled, const std::vector<spatial::Sheet>& sheets, const std::vector<std::size_t>& a,
                          const std::vector<std::size_t>& b, const SpatialOptions& s, std::size_t sheet, MPI_Comm comm) {
  const std::size_t points = sheets.size(), units = static_cast<std::size_t>(sheets.front().units());
  SheetResult r;
  r.blocks = points;
  r.units = units;
  r.side = sheets.front().side;
  const std::size_t P = points, U = units, D = static_cast<std::size_t>(s.max_distance);
  r.cell.assign(P * U, 0);
  r.t.assign(P * U, 0.0);
  r.q.assign(P * U, 0.0);
  for (auto* v : {&r.moran_i, &r.moran_z, &r.moran_p_norm, &r.moran_p_sim}) v->assign(P, 0.0);
  for (auto* v : {&r.significant, &r.clusters, &r.largest}) v->assign(P, 0);
  r.by_distance.assign(P * D, 0.0);
  const int rank = mpi::rank(comm), size = mpi::size(comm);
  mpi::on_all(comm, [&] {
    for (std::size_t block = 0; block < P; ++block) {
      if (static_cast<int>(block % static_cast<std::size_t>(size)) != rank) continue;
      const auto& sheet_of_block = sheets[block];
      const auto nb = spatial::queen_neighbours(sheet_of_block);
      const auto rows = [&](const std::vector<std::size_t>& prompts) {
        std::vector<double> x;
        for (auto i : prompts)
          for (std::size_t u = 0; u < U; ++u) x.push_back(pooled[(i * P + block) * U + u]);
        return x;
      };
      const auto xa = rows(a), xb = rows(b);
      const auto w = spatial::welch_t(xa, a.size(), xb, b.size(), U);
      const auto q = spatial::bh_adjust(w.p);
      const auto m = spatial::morans_i(w.t, nb, s.permutations, spatial::sheet_seed(s.sheet_seed, sheet, block));
      const auto clusters = spatial::significant_clusters(w.t, q, s.alpha, nb);
      std::vector<double> both = xa;
      both.insert(both.end(), xb.begin(), xb.end());
      const auto curve = spatial::correlation_by_distance(both, a.size() + b.size(), sheet_of_block, s.max_distance);
      for (std::size_t u = 0; u < U; ++u) {
        r.cell[block * U + u] = sheet_of_block.cell[u];
        r.t[block * U + u] = w.t[u];
        r.q[block * U + u] = q[u];
        r.significant[block] += q[u] < s.alpha;
      }
      r.moran_i[block] = m.i;
      r.moran_z[block] = m.z;
      r.moran_p_norm[block] = m.p_norm;
      r.moran_p_sim[block] = m.p_sim;
      r.clusters[block] = static_cast<long long>(clusters.size());
      r.largest[block] = clusters.empty() ? 0 : clusters.front();
      std::copy(curve.begin(), curve.end(), r.by_distance.begin() + static_cast<std::ptrdiff_t>(block * D));
    }
  });
  for (auto* v : {&r.t, &r.q, &r.moran_i, &r.moran_z, &r.moran_p_norm, &r.moran_p_sim, &r.by_distance}) sum_over_ranks(*v, comm);
  for (auto* v : {&r.cell, &r.significant, &r.clusters, &r.largest}) sum_over_ranks(*v, comm);
  return r;
}

void write_sheet(io::H5Output& out, RootWriter& w, const std::string& hook, const SheetResult& r, std::size_t D) {
  const std::string g = "/spatial/" + hook + "/";
  const std::size_t P = r.blocks, U = r.units;
  w.numbers(g + "cell", io::DType::i64, {P, U}, r.cell.data());
  out.set_attribute(g + "cell", "side", static_cast<long long>(r.side));
  out.set_attribute(g + "cell", "positions", r.positions);
  w.numbers(g + "t", io::DType::f64, {P, U}, r.t.data());
  w.numbers(g + "q", io::DType::f64, {P, U}, r.q.data());
  w.numbers(g + "moran_i", io::DType::f64, {P}, r.moran_i.data());
  w.numbers(g + "moran_z", io::DType::f64, {P}, r.moran_z.data());
  w.numbers(g + "moran_p_norm", io::DType::f64, {P}, r.moran_p_norm.data());
  w.numbers(g + "moran_p_sim", io::DType::f64, {P}, r.moran_p_sim.data());
  w.numbers(g + "significant", io::DType::i64, {P}, r.significant.data());
  w.numbers(g + "clusters", io::DType::i64, {P}, r.clusters.data());
  w.numbers(g + "largest_cluster", io::DType::i64, {P}, r.largest.data());
  w.numbers(g + "by_distance", io::DType::f64, {P, D}, r.by_distance.data());
}

std::string moran_table(const std::vector<std::string>& sheets, const std::vector<SheetResult>& results) {
  std::ostringstream csv;
  csv.precision(10);
  csv << "sheet,block,units,moran_i,moran_z,moran_p_norm,moran_p_sim,significant,clusters,largest_cluster\n";
  for (std::size_t k = 0; k < sheets.size(); ++k) {
    const auto& r = results[k];
    for (std::size_t b = 0; b < r.blocks; ++b)
      csv << sheets[k] << "," << b << "," << r.units << "," << r.moran_i[b] << "," << r.moran_z[b] << "," << r.moran_p_norm[b] << "," << r.moran_p_sim[b]
          << "," << r.significant[b] << "," << r.clusters[b] << "," << r.largest[b] << "\n";
  }
  return csv.str();
}

// The two contrast groups' prompts, tokenized: a language's prompts as written, or (LANG:scrambled)
// with their words in a seeded random order; rows [0, a) are the first group, [a, a + b) the second.
struct Stimuli {
  std::vector<std::vector<std::int64_t>> tokens;
  std::vector<std::string> texts;
  std::size_t a = 0, b = 0;
};

Stimuli contrast_stimuli(const PromptsAndModel& loaded, const NeuronsOptions& o) {
  const auto& s = o.spatial;
  Stimuli out;
  for (std::size_t g = 0; g < 2; ++g) {
    const auto group = spatial::parse_contrast_group(s.contrast[g]);
    std::vector<io::CorpusRecord> records;
    std::vector<std::size_t> index;
    for (std::size_t i = 0; i < loaded.prompts.size(); ++i)
      if (loaded.prompts[i].lang == group.language) records.push_back(loaded.prompts[i]), index.push_back(i);
    if (records.size() < 2)
      throw InputError(o.prompts + ": --contrast: language '" + group.language + "' has " + std::to_string(records.size()) +
                       " prompt(s); Welch's t needs at least 2");
    if (group.scrambled) {
      std::size_t scramblable = 0;
      for (std::size_t k = 0; k < records.size(); ++k) {
        scramblable += spatial::word_count(records[k].text) >= 2;
        records[k].text = spatial::scrambled_words(records[k].text, s.sheet_seed * 1000003ull + index[k]);
      }
      if (scramblable == 0) throw InputError(o.prompts + ": --contrast: no prompt of '" + group.language + "' has two words to scramble");
      const auto t = tokenize_prompts(records, o.prompts, *loaded.tokenizer, loaded.net->config(), o.special_tokens);
      out.tokens.insert(out.tokens.end(), t.begin(), t.end());
    } else {
      for (auto i : index) out.tokens.push_back(loaded.tokens[i]);
    }
    for (const auto& r : records) out.texts.push_back(r.text);
    (g == 0 ? out.a : out.b) = records.size();
  }
  return out;
}

void check_spatial_options(const SpatialOptions& s) {
  if (s.contrast.size() != 2 || s.contrast[0] == s.contrast[1])
    throw InputError("--contrast: expected two different groups, each a language or LANGUAGE:scrambled, e.g. en,de or en,en:scrambled");
  for (const auto& c : s.contrast) try {
      (void)spatial::parse_contrast_group(c);
    } catch (const std::invalid_argument& e) {
      throw InputError(std::string("--contrast: ") + e.what());
    }
  if (s.sheets.empty()) throw InputError("--sheets: expected at least one hook");
  for (const auto& h : s.sheets)
    if (h != "attn_output" && h != "mlp_act" && h != "block_output")
      throw InputError("--sheets: '" + h + "' is not a sheet (attn_output, mlp_act or block_output)");
  if (s.permutations < 0 || s.permutations > 100000) throw InputError("--permutations: expected 0 to 100000");
  if (!(s.alpha > 0 && s.alpha < 1)) throw InputError("--alpha: expected a level in (0, 1)");
  if (s.max_distance < 1 || s.max_distance > 1000) throw InputError("--max-distance: expected 1 to 1000");
}

}  // namespace

NeuronsSummary neurons_common::run_spatial(const NeuronsOptions& o, MPI_Comm comm) {
  const auto& s = o.spatial;
  check_spatial_options(s);
  PromptsAndModel own;
  const PromptsAndModel* loaded = nullptr;
  Stimuli stimuli;
  mpi::on_all(comm, [&] {
    loaded = &neurons_common::study_inputs(o, own);
    stimuli = contrast_stimuli(*loaded, o);
  });
  const auto& tokens = stimuli.tokens;
  std::vector<std::size_t> a(stimuli.a), b(stimuli.b);  // rows of `tokens`
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = i;
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = a.size() + i;
  std::vector<SheetResult> results;
  std::map<std::string, io::SheetPositions> trained;
  mpi::on_all(comm, [&] { trained = io::read_unit_positions(o.model_dir); });
  NeuronsSummary summary;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t k = 0; k < s.sheets.size(); ++k) {
    const auto& hook = s.sheets[k];
    const auto pooled = mean_pooled(*loaded->net, tokens, static_cast<std::size_t>(o.batch), hook, "spatial " + hook + " " + o.model_dir, comm);
    const std::size_t P = loaded->net->point_names(hook).size(), U = pooled.size() / (tokens.size() * P);
    std::vector<spatial::Sheet> sheets;
    mpi::on_all(comm, [&] { sheets = sheets_of(trained, o.model_dir, hook, k, P, U, s); });
    results.push_back(measure_sheet(pooled, sheets, a, b, s, k, comm));
    results.back().positions = trained.count(hook) ? "checkpoint" : "seeded";
    for (double i : results.back().moran_i)
      if (std::isfinite(i)) summary.max_moran_i = std::max(summary.max_moran_i, i);
  }
  summary.layers = loaded->net->config().num_layers;
  summary.prompts = static_cast<long long>(tokens.size());
  summary.activation_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  io::H5Output out(o.output, comm, "neurons/1", o.config);
  out.set_attribute("/", "study", o.study);
  out.set_attribute("/", "hook", s.sheets.front());
  out.set_attribute("/", "pooling", std::string("mean"));
  out.set_attribute("/", "special_tokens", o.special_tokens);
  out.set_attribute("/", "contrast", s.contrast[0] + "," + s.contrast[1]);
  out.set_attribute("/", "permutations", static_cast<long long>(s.permutations));
  out.set_attribute("/", "alpha", s.alpha);
  out.set_attribute("/", "sheet_seed", static_cast<long long>(s.sheet_seed));
  out.set_attribute("/", "max_distance", static_cast<long long>(s.max_distance));
  RootWriter w{out, mpi::rank(comm) == 0};
  w.strings("/spatial/sheets", s.sheets);
  w.strings("/spatial/languages", s.contrast);
  w.strings("/spatial/stimuli", stimuli.texts);
  const std::vector<long long> counts{static_cast<long long>(a.size()), static_cast<long long>(b.size())};
  w.numbers("/spatial/prompts", io::DType::i64, {2}, counts.data());
  for (std::size_t k = 0; k < s.sheets.size(); ++k) write_sheet(out, w, s.sheets[k], results[k], static_cast<std::size_t>(s.max_distance));
  out.commit();
  mpi::on_root(comm, [&] { io::write_file_atomically(csv_base(o.output) + ".moran.csv", moran_table(s.sheets, results)); });
  return summary;
}

}  // namespace lmtopo::stages
