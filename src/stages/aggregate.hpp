// The aggregate stage (issue 15; docs/aggregate.md): barcodes of many models and checkpoints (zigzag
// outputs, or imported CSV barcodes such as paper 1's) summarised per layer, set on a common
// relative-depth axis, compared across models against nulls, with the phases of S̄ and their settling
// over training; one aggregate/1 HDF5 file plus tidy CSV tables. Maths in src/stats/ and topology/.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lmtopo::stages {

// One barcode: a model's checkpoint (step; -1 when unknown, as for an imported barcode).
struct SeriesInput {
  std::string model;
  long long step = -1;
  std::string path;  // zigzag output (.h5) or barcode CSV
  int layers = 0;    // L of a CSV without H0 bars (0: read from the file)
};

struct AggregateOptions {
  std::vector<SeriesInput> series;
  // key_linguistic outputs of the neurons stage (path; layers unused): key units and mean pairwise
  // cosine per block on the same depth axis, the checkpoint series of issue 14.
  std::vector<SeriesInput> neurons;
  // sweep outputs of the same hook. Per checkpoint (a sweep/1 file with layer_layer or
  // language_language): SADS, LRDS and TwoNN intrinsic dimension per point on the depth grid. Per model
  // (its checkpoint_checkpoint file; step unused): each checkpoint's CKA with the model's last one.
  std::vector<SeriesInput> sweeps;
  std::vector<SeriesInput> checkpoint_sweeps;
  int dim = 1;                              // homology dimension of S̄ and Betti
  std::vector<int> curve_dims;              // further: S̄ and Betti of each of these dimensions on the grid
  std::size_t grid = 101;                   // relative-depth points
  std::vector<double> thresholds{0.9, 0.8};  // pruning candidates: S̄(l) >= thr * max
  std::size_t bootstrap = 1000;             // draws over the zigzag's prompt subsets
  std::size_t permutations = 1000;          // layer-shuffle null draws
  double alpha = 0.05;                      // the layer-shuffle null is beaten when p < alpha
  int tolerance = 1;                        // phases settle when the argmax stays within this many layers
  std::uint64_t seed = 0;
  std::string output;                       // .h5; tables OUT.{curves,phases,universality[,neurons,sweeps,cka_final]}.csv
  nlohmann::json config;
};

struct AggregateSummary {
  std::size_t series = 0, models = 0, pairs = 0, shared = 0;
};

// Reads every input (InputError naming the file on bad input), computes on rank 0 and writes the
// outputs; collective over `comm`.
AggregateSummary run_aggregate(const AggregateOptions& options, MPI_Comm comm);

}  // namespace lmtopo::stages
