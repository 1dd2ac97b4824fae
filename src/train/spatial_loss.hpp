// TopoLM's spatial smoothness loss (science.md §5; Rathi et al. 2025), for `lmtopo train`:
// the units of each sheet (a hook of one block) sit at frozen cells of a side x side grid, and
//   SL = 1/2 (1 - corr(r_ij, 1 / (1 + |p_i - p_j|)))
// over the unit pairs i < j of a neighbourhood (the units in a window of the grid), r_ij the
// Pearson correlation of units i and j over every token of the global batch; a sheet's SL is the
// mean over its sampled neighbourhoods, and the step's SL the sum over sheets.
//
// Data parallel without gathering activations: each rank forms the neighbourhood's moments
// (sum x, sum x x^T, n) over its tokens, the moments are summed over the ranks, and the loss is taken
// from the global moments with the other ranks' share detached, so each rank's backward gives the
// exact gradient through its own tokens and the usual all-reduce of gradients completes it.
// Includes libtorch: only trainer.cpp and test tools include this header.
#pragma once
#include <mpi.h>
#include <torch/torch.h>

#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "model/model_config.hpp"
#include "spatial/sheet.hpp"
#include "train/trainer.hpp"

namespace lmtopo::train {

// The hooks a sheet may be (one point per block, so a sheet per block).
bool is_sheet_hook(const std::string& hook);

// One neighbourhood: its units (columns of the sheet's activations) and the target 1 / (1 + d_ij)
// of each pair i < j in row-major upper-triangle order.
struct Neighbourhood {
  std::vector<std::int64_t> units;
  torch::Tensor inverse_distance;  // float64 [pairs]
};

Neighbourhood make_neighbourhood(const spatial::Sheet& sheet, const std::vector<int>& units);

// The neighbourhood's moments over the rows of `activations` [tokens, units]: float64
// [k + k*k + 1] = (sum x, sum x x^T row-major, token count), with autograd.
torch::Tensor neighbourhood_moments(const torch::Tensor& activations, const Neighbourhood& n);

// SL of one neighbourhood from its moments over all tokens.
torch::Tensor neighbourhood_loss(const torch::Tensor& moments, const Neighbourhood& n);

// The spatial loss of a model's sheets during training: unit placement, activations of a step (by
// the forward pass's hook callback), neighbourhood sampling, the loss.
class SpatialLoss {
 public:
  SpatialLoss(const SpatialTrainingOptions& options, const model::ModelConfig& config);

  // The callback to pass to the forward pass: records the sheets' activations of this step.
  std::function<void(const char*, const torch::Tensor&)> recorder();

  // SL of the recorded step summed over sheets, identical on every rank (float64 scalar); with
  // `differentiable` false it is computed without autograd (the alpha = 0 control). Clears the record.
  torch::Tensor step_loss(MPI_Comm comm, bool differentiable);

  // Writes DIR/unit_positions.safetensors (io/unit_positions.hpp).
  void save_positions(const std::string& dir) const;

  const std::vector<std::string>& sheet_hooks() const { return options_.sheets; }

 private:
  std::vector<int> sample_window(const spatial::Sheet& sheet);

  SpatialTrainingOptions options_;
  int blocks_ = 0;
  std::map<std::string, std::vector<spatial::Sheet>> sheets_;            // hook -> per block
  std::map<std::string, std::vector<torch::Tensor>> recorded_;          // hook -> per block [B, T, U]
  std::mt19937_64 rng_;
};

}  // namespace lmtopo::train
