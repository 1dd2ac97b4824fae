#include "train/spatial_loss.hpp"

#include <algorithm>
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

NeighbourhoodBatch batch_neighbourhoods(const std::vector<spatial::Sheet>& sheets, const std::vector<std::vector<int>>& units,
                                        const std::vector<std::int64_t>& source) {
  const auto M = static_cast<std::int64_t>(units.size());
  std::int64_t K = 0;
  for (const auto& u : units) K = std::max<std::int64_t>(K, static_cast<std::int64_t>(u.size()));
  NeighbourhoodBatch n;
  n.source = torch::tensor(source, torch::kInt64);
  n.units = torch::zeros({M, K}, torch::kInt64);
  n.valid = torch::zeros({M, K}, torch::kFloat64);
  n.inverse_distance = torch::zeros({M, K, K}, torch::kFloat64);
  auto idx = n.units.accessor<std::int64_t, 2>();
  auto valid = n.valid.accessor<double, 2>();
  auto target = n.inverse_distance.accessor<double, 3>();
  for (std::int64_t m = 0; m < M; ++m) {
    const auto& u = units[static_cast<std::size_t>(m)];
    const auto& sheet = sheets.at(static_cast<std::size_t>(source[static_cast<std::size_t>(m)]));
    for (std::size_t i = 0; i < u.size(); ++i) {
      idx[m][static_cast<std::int64_t>(i)] = u[i];
      valid[m][static_cast<std::int64_t>(i)] = 1.0;
      for (std::size_t j = i + 1; j < u.size(); ++j)
        target[m][static_cast<std::int64_t>(i)][static_cast<std::int64_t>(j)] = 1.0 / (1.0 + spatial::grid_distance(sheet, u[i], u[j]));
    }
  }
  n.pair_weight = (n.valid.unsqueeze(2) * n.valid.unsqueeze(1)).triu(1);
  return n;
}

namespace {

// Sum and Gram matrix of each row block x [M, K, T] over T, with the Gram's gradient as one batched
// product, d/dx = g_sum + (G + G^T) x, instead of autograd's two products of bmm's backward.
struct SumAndGram : torch::autograd::Function<SumAndGram> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({x});
    return {x.sum(2), torch::bmm(x, x.transpose(1, 2))};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grad) {
    const Tensor x = ctx->get_saved_variables()[0];
    Tensor dx = torch::bmm(grad[1] + grad[1].transpose(1, 2), x);
    if (grad[0].defined()) dx = dx + grad[0].unsqueeze(2);
    return {dx};
  }
};

}  // namespace

Tensor neighbourhood_moments(const Tensor& activations, const NeighbourhoodBatch& n) {
  const auto S = activations.size(0), T = activations.size(1), U = activations.size(2);
  const auto M = n.units.size(0), K = n.width();
  const Tensor flat_index = (n.source.unsqueeze(1) * U + n.units).reshape({-1}).to(activations.device());
  // The neighbourhoods' units [M, K, tokens], gathered as columns of [tokens, sheets * units]. (A row
  // gather of the transposed [sheets * units, tokens] is cheaper, but its backward in libtorch 1.13
  // gave non-deterministic garbage at training sizes: a training run's gradient norm was inf in one run
  // and finite in the next; the column gather is deterministic.)
  const Tensor x = activations.permute({1, 0, 2}).reshape({T, S * U}).index_select(1, flat_index).reshape({T, M, K}).permute({1, 2, 0});
  // The sums run in the activations' dtype (float32 in training: half the cost of float64 GEMMs) about
  // a constant shift, the rank's own unit means, so that no large mean cancels against a small variance
  // (E[x^2] - E[x]^2 in float32 is noise for a nearly constant unit and blows r up); the shift is added
  // back in float64, where the moments are additive over the ranks.
  const Tensor shift = x.detach().mean(2, true);
  const auto sums = SumAndGram::apply(x - shift);
  const Tensor c = shift.squeeze(2).to(torch::kFloat64), s1 = sums[0].to(torch::kFloat64);
  const double tokens = static_cast<double>(T);
  const Tensor sum = s1 + tokens * c;
  const Tensor gram = sums[1].to(torch::kFloat64) + c.unsqueeze(2) * s1.unsqueeze(1) + s1.unsqueeze(2) * c.unsqueeze(1) +
                      tokens * c.unsqueeze(2) * c.unsqueeze(1);
  const Tensor count = torch::full({M, 1}, tokens, sum.options());
  return torch::cat({sum, gram.reshape({M, K * K}), count}, 1);
}

namespace {

// Weighted Pearson correlation per row of a and b [M, P] with weights w (0 drops an entry); a tiny floor
// keeps constant inputs finite.
Tensor weighted_pearson(const Tensor& a, const Tensor& b, const Tensor& w) {
  const Tensor total = w.sum(1, true);
  const Tensor da = a - (w * a).sum(1, true) / total, db = b - (w * b).sum(1, true) / total;
  return (w * da * db).sum(1) / torch::sqrt(((w * da * da).sum(1) * (w * db * db).sum(1)).clamp_min(1e-24));
}

}  // namespace

Tensor neighbourhood_losses(const Tensor& moments, const NeighbourhoodBatch& n) {
  const auto M = moments.size(0), K = n.width();
  const Tensor count = moments.slice(1, K + K * K, K + K * K + 1).unsqueeze(2);  // [M, 1, 1]
  const Tensor mean = moments.slice(1, 0, K).unsqueeze(2) / count;            // [M, K, 1]
  const Tensor cov = moments.slice(1, K, K + K * K).reshape({M, K, K}) / count - mean * mean.transpose(1, 2);
  const Tensor sd = torch::sqrt(cov.diagonal(0, 1, 2).clamp_min(1e-12));  // a dead unit: r = 0, not NaN
  const Tensor r = cov / (sd.unsqueeze(2) * sd.unsqueeze(1));
  const auto dev = r.device();
  const Tensor corr = weighted_pearson(r.reshape({M, K * K}), n.inverse_distance.to(dev).reshape({M, K * K}),
                                       n.pair_weight.to(dev).reshape({M, K * K}));
  return 0.5 * (1.0 - corr);
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
  // Per hook, every block's sheet in one batch of neighbourhoods.
  std::vector<NeighbourhoodBatch> batches;
  std::vector<Tensor> local;
  for (const auto& hook : options_.sheets) {
    const auto& acts = recorded_[hook];
    if (static_cast<int>(acts.size()) != blocks_) throw std::logic_error("spatial loss: " + hook + " was not recorded at every block");
    const auto& sheets = sheets_.at(hook);
    std::vector<std::vector<int>> units;
    std::vector<std::int64_t> source;
    for (int b = 0; b < blocks_; ++b)
      for (int i = 0; i < options_.neighbourhoods; ++i) {
        units.push_back(sample_window(sheets[static_cast<std::size_t>(b)]));
        source.push_back(b);
      }
    std::vector<Tensor> flat;
    for (const auto& a : acts) flat.push_back(a.reshape({-1, a.size(-1)}));
    batches.push_back(batch_neighbourhoods(sheets, units, source));
    local.push_back(neighbourhood_moments(torch::stack(flat), batches.back()));
  }
  // One all-reduce of every neighbourhood's moments; the other ranks' share enters as a constant.
  std::vector<Tensor> pieces;
  for (const auto& l : local) pieces.push_back(l.reshape({-1}));
  const Tensor mine = torch::cat(pieces);
  Tensor total = mine.detach().to(torch::kCPU).contiguous().clone();
  if (mpi::initialized() && mpi::size(comm) > 1)
    mpi::check(MPI_Allreduce(MPI_IN_PLACE, total.data_ptr<double>(), static_cast<int>(total.numel()), MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  const Tensor global = mine + (total.to(mine.device()) - mine.detach());
  Tensor sum = torch::zeros({}, mine.options());
  std::int64_t offset = 0;
  for (std::size_t h = 0; h < batches.size(); ++h) {
    const auto len = local[h].numel();
    sum = sum + neighbourhood_losses(global.slice(0, offset, offset + len).reshape(local[h].sizes()), batches[h]).sum();
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
