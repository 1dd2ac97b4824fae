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
  bool stopped = false;  // the stop file appeared: the remaining items were left for a requeue
};

// Each item's state in the manifest: "complete", "missing", "stale config" or "output changed: PATH".
struct ItemState {
  std::string id;
  std::string state;
};
std::vector<ItemState> stage_item_states(const core::JobSpec& spec, const std::string& stage);

// Exit status of a stage that stopped early for the pre-timeout signal (EX_TEMPFAIL).
constexpr int kStoppedForRequeue = 75;

// Runs every item of `stage` (or only item `item` when >= 0). Collective over `comm`.
// `item_id` (non-empty) selects an item by id instead of index. Before each item all ranks check the
// file named by LMTOPO_STOP_FILE (SLURM's pre-timeout signal) and agree by an all-reduce to stop.
StageReport run_stage(const core::JobSpec& spec, const std::string& stage, int item, bool force, MPI_Comm comm,
                      const std::string& item_id = "");

}  // namespace lmtopo::stages
