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

#include <cstdint>
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

// Neighbourhoods of sheets of one width, batched: neighbourhood m reads the activations of sheet
// source[m] at units[m] (padded to the largest neighbourhood, valid marks the real ones), and its
// targets are 1 / (1 + d_ij) for the pairs i < j of real units (pair_weight 1, else 0).
struct NeighbourhoodBatch {
  torch::Tensor source;          // int64 [M]
  torch::Tensor units;           // int64 [M, K]
  torch::Tensor valid;           // float64 [M, K]
  torch::Tensor inverse_distance;  // float64 [M, K, K]
  torch::Tensor pair_weight;     // float64 [M, K, K]
  std::int64_t width() const { return units.size(1); }
};

// `units[m]` (each at least 2) on `sheets[source[m]]`.
NeighbourhoodBatch batch_neighbourhoods(const std::vector<spatial::Sheet>& sheets, const std::vector<std::vector<int>>& units,
                                        const std::vector<std::int64_t>& source);

// Each neighbourhood's moments over the rows of `activations` [sheets, tokens, units], summed in the
// activations' dtype and returned as float64 [M, K + K*K + 1] = (sum x, sum x x^T row-major, token
// count), with autograd.
torch::Tensor neighbourhood_moments(const torch::Tensor& activations, const NeighbourhoodBatch& n);

// SL of each neighbourhood [M] from its moments over all tokens.
torch::Tensor neighbourhood_losses(const torch::Tensor& moments, const NeighbourhoodBatch& n);

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
