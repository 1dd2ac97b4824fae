// `lmtopo submit JOB.yaml` and `lmtopo status JOB.yaml`: a study on SLURM (stages/slurm.hpp).
#include <unistd.h>

#include <array>
#include <filesystem>
#include <iostream>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "core/jobspec.hpp"
#include "mpi/collective.hpp"
#ifdef LMTOPO_TORCH_HELPER
#include "stages/slurm.hpp"
#endif

namespace lmtopo::cli {
namespace {

#ifdef LMTOPO_TORCH_HELPER
// The front-end binary (`lmtopo`, beside this one) for the scripts to call.
std::string lmtopo_binary() {
  std::array<char, 4096> self{};
  const ssize_t len = readlink("/proc/self/exe", self.data(), self.size() - 1);
  if (len <= 0) return "lmtopo";
  const std::filesystem::path here(std::string(self.data(), static_cast<std::size_t>(len)));
  const auto front = here.parent_path() / "lmtopo";
  return std::filesystem::exists(front) ? front.string() : here.string();
}
#endif

int run_submit(const po::variables_map& vm, const std::vector<std::string>& passthrough) {
#ifdef LMTOPO_TORCH_HELPER
  if (mpi::rank() != 0) return 0;
  const auto spec = core::load_job_spec(vm["job"].as<std::string>());
  if (vm.count("nightly")) {
    std::cout << stages::nightly_entry(spec, lmtopo_binary(), vm["cron"].as<std::string>());
    return 0;
  }
  stages::SubmitOptions o;
  if (vm.count("stages")) o.stages = comma_separated({vm["stages"].as<std::string>()});
  o.dry_run = vm.count("dry-run") > 0;
  o.retry_failed = vm.count("retry-failed") > 0;
  o.afterany = vm.count("afterany") > 0;
  o.max_array_size = vm["max-array-size"].as<int>();
  o.lmtopo = lmtopo_binary();
  o.sbatch_args = passthrough;
  stages::submit_study(spec, o, std::cout);
  return 0;
#else
  (void)vm;
  (void)passthrough;
  throw RuntimeFailure("submit runs in lmtopo-torch");
#endif
}

int run_status(const po::variables_map& vm, const std::vector<std::string>&) {
#ifdef LMTOPO_TORCH_HELPER
  if (mpi::rank() != 0) return 0;
  const auto spec = core::load_job_spec(vm["job"].as<std::string>());
  const auto stages = vm.count("stage") ? comma_separated({vm["stage"].as<std::string>()}) : std::vector<std::string>{};
  bool complete = true;
  for (const auto& s : stages::study_status(spec, stages)) {
    std::cout << s.stage << ": " << s.items << " item(s): " << s.done << " done, " << s.running << " running, " << s.queued
              << " queued, " << s.failed << " failed, " << s.not_submitted << " not submitted\n";
    for (const auto& f : s.failures) std::cout << "  failed " << f << "\n";
    for (const auto& n : s.notes) std::cout << "  " << n << "\n";
    complete = complete && s.done == s.items;
  }
  if (vm.count("require-complete") && !complete) {
    std::cerr << "lmtopo: status: not complete\n";
    return 1;
  }
  return 0;
#else
  (void)vm;
  throw RuntimeFailure("status runs in lmtopo-torch");
#endif
}

}  // namespace

Command make_submit_command() {
  Command c;
  c.name = "submit";
  c.summary = "submit a study to SLURM: one array job per stage, chained by dependencies";
  c.usage = "lmtopo submit JOB.yaml [--dry-run] [--stages a,b] [--retry-failed] [--afterany] [--max-array-size N] "
            "[-- sbatch options]\n   or: lmtopo submit JOB.yaml --nightly [--cron 'M H * * *']";
  c.description =
      "For every stage of the study (prepare, train, extract, zigzag, sweep, neurons, eval, prune, aggregate, as the spec asks) with work items that "
      "are neither complete (manifest) nor already queued or running, writes OUTPUT/slurm/<time>/<stage>.sbatch from "
      "slurm/stage.sbatch.in and <stage>.items (the item ids), and submits it with sbatch as an array: array_pack "
      "items per task, more when the items would exceed MaxArraySize (scontrol show config, or --max-array-size / "
      "slurm.max_array_size). Each stage waits for the one before (afterok, and dependants are cancelled when it "
      "fails; --afterany for nightly runs, with a completion check in the script since a TIMEOUT never satisfies "
      "afterok). Each task runs `lmtopo STAGE JOB --item-id ID` per item under srun --mpi=pmix (or mpirun), gets "
      "USR1 slurm.signal_seconds before its time limit, stops at the next safe point and requeues itself. Job ids "
      "go to OUTPUT/slurm/submissions.json. --retry-failed resubmits the failed items (and the stages after them). "
      "--nightly writes and prints a scrontab entry that runs `lmtopo submit JOB --afterany` every night: only items "
      "whose inputs changed (new checkpoints, changed config) are submitted. Options after `--` go to sbatch.";
  c.add_options = [](po::options_description& d) {
    d.add_options()("job", po::value<std::string>()->required(), "job spec (positional)")(
        "dry-run", "print every script and the dependency graph; submit nothing")(
        "stages", po::value<std::string>(), "comma-separated stages to submit (default: all of the study's)")(
        "retry-failed", "resubmit only failed items and the stages after them")(
        "afterany", "chain stages with afterany plus a completion check (nightly runs)")(
        "max-array-size", po::value<int>()->default_value(0), "override the cluster's MaxArraySize (0: ask scontrol)")(
        "nightly", "write and print the scrontab entry of a nightly run instead of submitting")(
        "cron", po::value<std::string>()->default_value("0 2 * * *"), "with --nightly: when (cron fields)");
  };
  c.positionals = {{"job", 1}};
  c.passthrough_use = "sbatch options";
  c.run = run_submit;
  return c;
}

Command make_status_command() {
  Command c;
  c.name = "status";
  c.summary = "per stage: items done, running, queued, failed (with log paths), not submitted";
  c.usage = "lmtopo status JOB.yaml [--stage a,b] [--require-complete]";
  c.description =
      "Reads the study's manifest (complete items), the failure records the SLURM scripts leave under "
      "OUTPUT/slurm/state/failed/ and, for the recorded submissions, squeue (running and queued array tasks, and "
      "jobs blocked because a stage they depend on failed). --require-complete exits 1 unless every item of the "
      "selected stages is complete (the nightly scripts' completion check).";
  c.add_options = [](po::options_description& d) {
    d.add_options()("job", po::value<std::string>()->required(), "job spec (positional)")(
        "stage", po::value<std::string>(), "comma-separated stages (default: all)")(
        "require-complete", "exit 1 unless the selected stages are complete");
  };
  c.positionals = {{"job", 1}};
  c.run = run_status;
  return c;
}

}  // namespace lmtopo::cli
