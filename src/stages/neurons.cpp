// The neurons stage: the options every study shares, and the study chosen by name.
#include "stages/neurons.hpp"

#include <string>

#include "core/error.hpp"
#include "mpi/collective.hpp"
#include "stages/neurons_common.hpp"

namespace lmtopo::stages {

NeuronsSummary run_neurons(const NeuronsOptions& o, MPI_Comm comm) {
  mpi::ensure_initialized();
  if (o.batch < 1) throw InputError("--batch: expected at least 1, got " + std::to_string(o.batch));
  if (o.control_draws < 1 || o.control_draws > 1000) throw InputError("--control-draws: expected 1 to 1000");
  if (o.study == "key_linguistic") return neurons_common::run_key_linguistic(o, comm);
  if (o.study == "repetition") return neurons_common::run_repetition(o, comm);
  if (o.study == "sensitive_directions") return neurons_common::run_sensitive_directions(o, comm);
  if (o.study == "spatial") return neurons_common::run_spatial(o, comm);
  throw InputError("--study: expected key_linguistic, repetition, sensitive_directions or spatial, got '" + o.study + "'");
}

}  // namespace lmtopo::stages
