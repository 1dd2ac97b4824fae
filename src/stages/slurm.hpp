// SLURM submission of a study: one sbatch script per stage from slurm/stage.sbatch.in, arrays over
// the stage's unfinished work items (packed under MaxArraySize), stage N+1 depending on stage N, job
// ids recorded in OUTPUT/slurm/submissions.json; and the per-stage status from the manifest, the
// failure records the scripts leave and squeue.
#pragma once
#include <ostream>
#include <string>
#include <vector>

#include "core/jobspec.hpp"

namespace lmtopo::stages {

struct SubmitOptions {
  std::vector<std::string> stages;  // empty: every stage of the study
  bool dry_run = false;
  bool retry_failed = false;  // only stages with failed items, and the stages after them
  bool afterany = false;      // nightly runs: afterany + a completion check in the script
  int max_array_size = 0;     // 0: the spec's slurm.max_array_size, else scontrol's MaxArraySize
  std::string lmtopo;         // the lmtopo binary the scripts call
  std::vector<std::string> sbatch_args;  // extra sbatch arguments (after `--`)
};

struct StageSubmission {
  std::string stage;
  std::vector<std::string> items;
  int pack = 1, tasks = 0;
  std::string script, items_file, job_id, dependency;
};

// Writes the scripts (and, unless dry_run, submits them) and returns what was (or would be) submitted.
std::vector<StageSubmission> submit_study(const core::JobSpec& spec, const SubmitOptions& o, std::ostream& out);

// The scrontab entry of a nightly run (`lmtopo submit JOB --afterany` at `cron`), written to
// OUTPUT/slurm/nightly.scrontab and returned.
std::string nightly_entry(const core::JobSpec& spec, const std::string& lmtopo, const std::string& cron);

struct StageStatus {
  std::string stage;
  int items = 0, done = 0, running = 0, queued = 0, failed = 0, not_submitted = 0;
  std::vector<std::string> failures;  // "item: exit N, log PATH"
  std::vector<std::string> notes;     // e.g. blocked dependants
};
std::vector<StageStatus> study_status(const core::JobSpec& spec, const std::vector<std::string>& stages);

// The cluster's MaxArraySize (scontrol show config), or 1001 (SLURM's default) if unreadable.
int cluster_max_array_size();

}  // namespace lmtopo::stages
