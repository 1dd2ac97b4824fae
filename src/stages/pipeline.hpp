// A job spec's stages as work items, run locally in order (`lmtopo run`) or one stage / one item at
// a time (`lmtopo <stage> JOB.yaml [--item K]`, what the sbatch scripts call). Every item is skipped
// when the study manifest records it complete with the same config hash, unless forced.
#pragma once
#include <mpi.h>

#include <string>
#include <vector>

#include "core/jobspec.hpp"

namespace lmtopo::stages {

// The stages the spec asks for, in order: prepare, train (if any model is from_train), extract,
// zigzag.
std::vector<std::string> pipeline_stages(const core::JobSpec& spec);

// Work item ids of a stage as they stand now (extract and zigzag items of trained models appear
// once train has written the checkpoints).
std::vector<std::string> stage_items(const core::JobSpec& spec, const std::string& stage);

struct StageReport {
  int done = 0;     // items computed now
  int skipped = 0;  // items already complete
  int linked = 0;   // items of byte-identical checkpoints, linked to the original's outputs
};

// Runs every item of `stage` (or only item `item` when >= 0). Collective over `comm`.
StageReport run_stage(const core::JobSpec& spec, const std::string& stage, int item, bool force, MPI_Comm comm);

}  // namespace lmtopo::stages
