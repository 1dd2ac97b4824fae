// What the neurons studies share: sums over the ranks, the writer of rank 0's datasets, the CSV tables
// beside the HDF5 file. Internal to stages/neurons*.cpp.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "io/h5store.hpp"
#include "stages/neurons.hpp"

namespace lmtopo::stages::neurons_common {

// Element-wise sum over the ranks, in pieces of the project's message limit (mpi/large_count).
void sum_over_ranks(std::vector<float>& values, MPI_Comm comm);
void sum_over_ranks(std::vector<double>& values, MPI_Comm comm);
void sum_over_ranks(std::vector<long long>& values, MPI_Comm comm);

// A CSV field, quoted when it holds a comma, quote or newline.
std::string csv_field(const std::string& s);
// OUT.h5 -> OUT (the CSV tables are OUT.<table>.csv).
std::string csv_base(const std::string& output);

// Datasets whose rows rank 0 writes; the other ranks take part in the collective calls with none.
struct RootWriter {
  io::H5Output& out;
  bool root;
  void strings(const std::string& name, const std::vector<std::string>& v);
  void numbers(const std::string& name, io::DType t, const std::vector<std::uint64_t>& shape, const void* data);
};

// The studies (options checked in common by run_neurons).
NeuronsSummary run_key_linguistic(const NeuronsOptions& options, MPI_Comm comm);
NeuronsSummary run_repetition(const NeuronsOptions& options, MPI_Comm comm);
NeuronsSummary run_sensitive_directions(const NeuronsOptions& options, MPI_Comm comm);

}  // namespace lmtopo::stages::neurons_common
