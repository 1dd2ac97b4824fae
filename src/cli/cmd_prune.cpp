// `lmtopo prune JOB.yaml`: the job spec's pruning experiment (stages/prune.hpp), one item per model.
#include "cli/command.hpp"

namespace lmtopo::cli {
namespace {

int run_prune_cmd(const po::variables_map& vm, const std::vector<std::string>&) {
  if (!vm.count("job")) throw InputError("prune: expected a job spec, JOB.yaml (the experiment reads the study's zigzag and sweep outputs)");
  return run_job_stage(vm, "prune");
}

}  // namespace

Command make_prune_command() {
  Command c;
  c.name = "prune";
  c.summary = "paper 1's layer-pruning experiment of a study: S̄'s candidate blocks against angular distance, block influence and random";
  c.usage = "[mpirun -n P] lmtopo prune JOB.yaml [--item K | --item-id MODEL] [--force]";
  c.description =
      "Runs the spec's prune section (docs/aggregate.md) at each model's last checkpoint: the blocks S̄ marks as "
      "pruning candidates at each threshold (its zigzag of prune.hook), the same number chosen by angular distance "
      "(Gromov et al.: consecutive blocks whose input and output are closest) and by block influence (ShortGPT: the "
      "blocks whose output changes their input least) from the layer x layer sweep, and prune.random_draws seeded "
      "random sets, each evaluated with its blocks skipped (one model load) on the study's corpus. Writes "
      "OUTPUT/prune/<model>.csv and an eval/1 file per choice under OUTPUT/prune/<model>/. The zigzag and sweep items "
      "it reads must be complete and current (else exit 2 naming them).";
  c.add_options = [](po::options_description& d) { add_job_stage_options(d, "every model of the study"); };
  c.positionals = {{"job", 1}};
  c.run = run_prune_cmd;
  return c;
}

}  // namespace lmtopo::cli
