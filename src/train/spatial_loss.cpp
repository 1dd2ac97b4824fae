#include "train/spatial_loss.hpp"

#include <cmath>
#include <optional>
#include <set>

#include "core/error.hpp"
#include "io/unit_positions.hpp"
#include "mpi/collective.hpp"

namespace lmtopo::train {

using torch::Tensor;

bool is_sheet_hook(const std::string& hook) { return hook == "attn_output" || hook == "mlp_act"; }

void check_spatial_training(const SpatialTrainingOptions& s, const std::string& prefix) {
  if (!s.enabled) return;
  if (!(s.alpha >= 0) || !std::isfinite(s.alpha)) throw InputError(prefix + "alpha: expected a finite value >= 0");
  if (s.sheets.empty()) throw InputError(prefix + "sheets: expected at least one of attn_output, mlp_act");
  for (const auto& h : s.sheets)
    if (!is_sheet_hook(h)) throw InputError(prefix + "sheets: '" + h + "' is not a trainable sheet (attn_output or mlp_act)");
  if (std::set<std::string>(s.sheets.begin(), s.sheets.end()).size() != s.sheets.size()) throw InputError(prefix + "sheets: a hook is listed twice");
  if (s.neighbourhoods < 1 || s.neighbourhoods > 1000) throw InputError(prefix + "neighbourhoods: expected 1 to 1000");
  if (s.window < 2 || s.window > 1000) throw InputError(prefix + "window: expected 2 to 1000 cells");
}

Neighbourhood make_neighbourhood(const spatial::Sheet& sheet, const std::vector<int>& units) {
  Neighbourhood n;
  n.units.assign(units.begin(), units.end());
  std::vector<double> target;
  for (std::size_t i = 0; i < units.size(); ++i)
    for (std::size_t j = i + 1; j < units.size(); ++j) target.push_back(1.0 / (1.0 + spatial::grid_distance(sheet, units[i], units[j])));
  n.inverse_distance = torch::tensor(target, torch::kFloat64);
  return n;
}

Tensor neighbourhood_moments(const Tensor& activations, const Neighbourhood& n) {
  const Tensor x = activations.index_select(1, torch::tensor(n.units, torch::kInt64).to(activations.device())).to(torch::kFloat64);
  const Tensor count = torch::full({1}, static_cast<double>(x.size(0)), x.options());
  return torch::cat({x.sum(0), x.t().mm(x).reshape({-1}), count});
}

namespace {

// Pearson correlation of two vectors (float64, autograd); a tiny floor keeps constant inputs finite.
Tensor pearson(const Tensor& a, const Tensor& b) {
  const Tensor da = a - a.mean(), db = b - b.mean();
  return (da * db).sum() / torch::sqrt(((da * da).sum() * (db * db).sum()).clamp_min(1e-24));
}

}  // namespace

Tensor neighbourhood_loss(const Tensor& moments, const Neighbourhood& n) {
  const auto k = static_cast<std::int64_t>(n.units.size());
  const Tensor count = moments[k + k * k];
  const Tensor mean = moments.slice(0, 0, k) / count;
  const Tensor cov = moments.slice(0, k, k + k * k).reshape({k, k}) / count - mean.unsqueeze(1) * mean.unsqueeze(0);
  const Tensor sd = torch::sqrt(cov.diagonal().clamp_min(1e-12));  // a dead unit: r = 0, not NaN
  const Tensor r = cov / (sd.unsqueeze(1) * sd.unsqueeze(0));
  const Tensor upper = torch::triu_indices(k, k, 1);
  const Tensor pairs = r.index({upper[0], upper[1]});
  return 0.5 * (1.0 - pearson(pairs, n.inverse_distance.to(pairs.device())));
}

SpatialLoss::SpatialLoss(const SpatialTrainingOptions& o, const model::ModelConfig& c) : options_(o), blocks_(c.num_layers), rng_(o.seed) {
  for (std::size_t s = 0; s < o.sheets.size(); ++s) {
    const int units = model::hook_width(c, o.sheets[s]);
    auto& per_block = sheets_[o.sheets[s]];
    for (int b = 0; b < blocks_; ++b)
      per_block.push_back(spatial::seeded_sheet(units, spatial::sheet_seed(o.seed, s, static_cast<std::size_t>(b))));
  }
}

std::function<void(const char*, const Tensor&)> SpatialLoss::recorder() {
  for (auto& [hook, acts] : recorded_) acts.clear();
  return [this](const char* hook, const Tensor& t) {
    if (sheets_.count(hook)) recorded_[hook].push_back(t);
  };
}

// A window's top-left corner uniform over the grid's placements; a window with fewer than 3 units
// (a sparse corner) is drawn again.
std::vector<int> SpatialLoss::sample_window(const spatial::Sheet& sheet) {
  const int w = std::min(options_.window, sheet.side);
  std::uniform_int_distribution<int> corner(0, sheet.side - w);
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int top = corner(rng_), left = corner(rng_);
    auto units = spatial::units_in_window(sheet, top, left, w);
    if (units.size() >= 3) return units;
  }
  throw InputError("train.spatial.window: windows of " + std::to_string(w) + "x" + std::to_string(w) + " hold fewer than 3 units");
}

Tensor SpatialLoss::step_loss(MPI_Comm comm, bool differentiable) {
  std::optional<torch::NoGradGuard> no_grad;
  if (!differentiable) no_grad.emplace();
  std::vector<Neighbourhood> hoods;
  std::vector<Tensor> local;
  for (const auto& hook : options_.sheets) {
    const auto& acts = recorded_[hook];
    if (static_cast<int>(acts.size()) != blocks_) throw std::logic_error("spatial loss: " + hook + " was not recorded at every block");
    for (int b = 0; b < blocks_; ++b) {
      const Tensor flat = acts[static_cast<std::size_t>(b)].reshape({-1, acts[static_cast<std::size_t>(b)].size(-1)});
      const auto& sheet = sheets_.at(hook)[static_cast<std::size_t>(b)];
      for (int i = 0; i < options_.neighbourhoods; ++i) {
        hoods.push_back(make_neighbourhood(sheet, sample_window(sheet)));
        local.push_back(neighbourhood_moments(flat, hoods.back()));
      }
    }
  }
  // One all-reduce of every neighbourhood's moments; the other ranks' share enters as a constant.
  const Tensor mine = torch::cat(local);
  Tensor total = mine.detach().to(torch::kCPU).contiguous().clone();
  if (mpi::initialized() && mpi::size(comm) > 1)
    mpi::check(MPI_Allreduce(MPI_IN_PLACE, total.data_ptr<double>(), static_cast<int>(total.numel()), MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  const Tensor global = mine + (total.to(mine.device()) - mine.detach());
  Tensor sum = torch::zeros({}, mine.options());
  std::int64_t offset = 0;
  for (std::size_t h = 0; h < hoods.size(); ++h) {
    const auto len = local[h].size(0);
    sum = sum + neighbourhood_loss(global.slice(0, offset, offset + len), hoods[h]);
    offset += len;
  }
  for (auto& [hook, acts] : recorded_) acts.clear();
  return sum / options_.neighbourhoods;  // mean over a sheet's neighbourhoods, summed over sheets
}

void SpatialLoss::save_positions(const std::string& dir) const {
  std::map<std::string, io::SheetPositions> out;
  for (const auto& [hook, per_block] : sheets_) {
    auto& p = out[hook];
    p.side = per_block.front().side;
    p.blocks = per_block.size();
    p.units = static_cast<std::size_t>(per_block.front().units());
    for (const auto& s : per_block) p.cells.insert(p.cells.end(), s.cell.begin(), s.cell.end());
  }
  io::write_unit_positions(dir, out);
}

}  // namespace lmtopo::train
