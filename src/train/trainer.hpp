// Trains a small GPT-NeoX-layout model with libtorch (the same code path the runtime reads), data-
// parallel over MPI ranks, and saves Hugging Face checkpoints. No libtorch in this header.
#pragma once
#include <mpi.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lmtopo::train {

// TopoLM's spatially organised training (train/spatial_loss.hpp has the loss).
struct SpatialTrainingOptions {
  bool enabled = false;
  double alpha = 0.0;  // total loss = CE + alpha * SL; 0: the control (SL logged, not trained on)
  std::vector<std::string> sheets{"attn_output", "mlp_act"};
  int neighbourhoods = 5;
  int window = 9;
  unsigned long long seed = 0;
};

// Options that cannot run: InputError naming the option (the CLI's or the job spec's spelling).
void check_spatial_training(const SpatialTrainingOptions& s, const std::string& prefix);

struct TrainOptions {
  std::vector<std::string> train_texts;
  std::vector<std::string> heldout_texts;
  int vocab_size = 512;
  int layers = 2;
  int hidden = 64;
  int heads = 4;
  int intermediate = 256;
  double rotary_pct = 0.25;
  int seq_len = 64;
  int steps = 200;
  int batch = 16;          // global batch (sequences per step), split over the ranks
  double lr = 3e-3;
  int warmup = 20;         // linear warm-up steps, then cosine decay to 10% of lr
  double weight_decay = 0.1;
  double clip = 1.0;       // gradient-norm clipping
  unsigned long long seed = 0;
  std::vector<int> save_steps;  // checkpoints step<N>/ after N updates
  std::string output_dir;
  SpatialTrainingOptions spatial;
  nlohmann::json config;   // effective config, recorded in the training log
};

struct TrainResult {
  std::vector<double> loss;          // per step: cross-entropy (mean over the global batch) + alpha * SL
  std::vector<double> cross_entropy;
  std::vector<double> spatial_loss;  // per step, sum over sheets (empty without spatial training)
  std::vector<double> seconds;       // wall time of each step (printed, not in the log: a rerun's log is identical)
  std::vector<double> lr;
  std::vector<int> saved_steps;
  std::vector<double> heldout_loss;  // at each saved step
  std::string log_path;
};

// Every `every`-th text (0, every, 2*every, ...) goes to heldout_texts, the rest to train_texts.
void split_heldout(TrainOptions& options, const std::vector<std::string>& texts, std::size_t every);

// Pythia-like schedule: 0, powers of two up to `steps`, every `every` steps, and the last step.
std::vector<int> checkpoint_schedule(int steps, int every);

TrainResult train_model(const TrainOptions& options, MPI_Comm comm);

}  // namespace lmtopo::train
