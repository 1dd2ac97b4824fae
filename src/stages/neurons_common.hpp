// What the neurons studies share: sums over the ranks, the writer of rank 0's datasets, the CSV tables
// beside the HDF5 file. Internal to stages/neurons*.cpp.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "io/csv_table.hpp"
#include "io/h5store.hpp"
#include "model/transformer.hpp"
#include "stages/neurons.hpp"
#include "stages/prompt_batches.hpp"

namespace lmtopo::stages::neurons_common {

// Element-wise sum over the ranks, in pieces of the project's message limit (mpi/large_count).
void sum_over_ranks(std::vector<float>& values, MPI_Comm comm);
void sum_over_ranks(std::vector<double>& values, MPI_Comm comm);
void sum_over_ranks(std::vector<long long>& values, MPI_Comm comm);

using io::csv_base;
using io::csv_field;
using io::RootWriter;

// `hook` mean-pooled over each prompt's tokens, [prompts, points, width], on every rank; the ranks
// compute whole batches (as extract splits them) and sum their rows.
std::vector<float> mean_pooled(model::Transformer& net, const std::vector<std::vector<std::int64_t>>& tokens, std::size_t batch,
                               const std::string& hook, const std::string& label, MPI_Comm comm);

// The studies (options checked in common by run_neurons).
// The prompts and the model a study works on: those the job stage loaded once for all the studies
// of an item (options.loaded), or else loaded into `own`. Called inside mpi::on_all.
const PromptsAndModel& study_inputs(const NeuronsOptions& options, PromptsAndModel& own);

NeuronsSummary run_spatial(const NeuronsOptions& options, MPI_Comm comm);
NeuronsSummary run_key_linguistic(const NeuronsOptions& options, MPI_Comm comm);
NeuronsSummary run_repetition(const NeuronsOptions& options, MPI_Comm comm);
NeuronsSummary run_sensitive_directions(const NeuronsOptions& options, MPI_Comm comm);

}  // namespace lmtopo::stages::neurons_common
