// The prepare stage: the checkpoint manifest (every weight file hashed, duplicates flagged) and the
// materialised corpus (corpus.h5), both as one work item of the study manifest.
#pragma once
#include <mpi.h>

#include <string>

#include "core/jobspec.hpp"

namespace lmtopo::stages {

struct PrepareSummary {
  bool skipped = false;          // already complete with the same config
  std::string corpus_path;
  std::string checkpoints_path;
  long long records = 0;
  long long duplicates = 0;
};

PrepareSummary run_prepare(const core::JobSpec& spec, MPI_Comm comm, bool force);

// The config the prepare item depends on (its hash decides staleness).
nlohmann::json prepare_config(const core::JobSpec& spec);

}  // namespace lmtopo::stages
