// `lmtopo run JOB.yaml`: every stage of a study locally, in order; and the job-spec form of single
// stages (`lmtopo extract|train|zigzag JOB.yaml [--item K]`), which the SLURM scripts call.
#include <iostream>
#include <sstream>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "core/jobspec.hpp"
#include "mpi/collective.hpp"
#ifdef LMTOPO_TORCH_HELPER
#include "stages/pipeline.hpp"
#endif

namespace lmtopo::cli {

int run_job_stage(const po::variables_map& vm, const std::string& stage) {
#ifdef LMTOPO_TORCH_HELPER
  core::JobSpec spec;
  mpi::on_all(MPI_COMM_WORLD, [&] { spec = core::load_job_spec(vm["job"].as<std::string>()); });
  const int item = vm.count("item") ? vm["item"].as<int>() : -1;
  const std::string item_id = vm.count("item-id") ? vm["item-id"].as<std::string>() : "";
  const auto r = stages::run_stage(spec, stage, item, vm.count("force") > 0, MPI_COMM_WORLD, item_id);
  if (mpi::rank() == 0)
    std::cout << stage << ": " << r.done << " item(s) computed, " << r.skipped << " already complete"
              << (r.linked ? ", " + std::to_string(r.linked) + " linked (byte-identical checkpoints)" : "")
              << (r.stopped ? "; stopped for a requeue (LMTOPO_STOP_FILE)" : "") << "\n";
  return r.stopped ? stages::kStoppedForRequeue : 0;
#else
  (void)vm;
  throw RuntimeFailure(stage + " JOB.yaml runs in lmtopo-torch");
#endif
}

namespace {

int run_all(const po::variables_map& vm, const std::vector<std::string>&) {
#ifdef LMTOPO_TORCH_HELPER
  core::JobSpec spec;
  mpi::on_all(MPI_COMM_WORLD, [&] { spec = core::load_job_spec(vm["job"].as<std::string>()); });
  std::vector<std::string> stages = stages::pipeline_stages(spec);
  if (vm.count("stages")) {
    std::vector<std::string> wanted;
    std::stringstream in(vm["stages"].as<std::string>());
    for (std::string s; std::getline(in, s, ',');) {
      if (std::find(stages.begin(), stages.end(), s) == stages.end())
        throw InputError("--stages: '" + s + "' is not a stage of this study");
      wanted.push_back(s);
    }
    stages = wanted;
  }
  for (const auto& stage : stages) {
    const auto r = stages::run_stage(spec, stage, -1, vm.count("force") > 0, MPI_COMM_WORLD);
    if (mpi::rank() == 0)
      std::cout << "run: " << stage << ": " << r.done << " item(s) computed, " << r.skipped << " already complete"
                << (r.linked ? ", " + std::to_string(r.linked) + " linked (byte-identical checkpoints)" : "") << "\n";
    if (r.stopped) return stages::kStoppedForRequeue;
  }
  return 0;
#else
  (void)vm;
  throw RuntimeFailure("run runs in lmtopo-torch");
#endif
}

}  // namespace

Command make_run_command() {
  Command c;
  c.name = "run";
  c.summary = "run every stage of a study locally (prepare, train, extract, zigzag), resuming";
  c.usage = "[mpirun -n P] lmtopo run JOB.yaml [--stages a,b] [--force]";
  c.description =
      "Runs the stages the job spec asks for, in order, each over its work items (prepare: one; train: one per "
      "model with from_train; extract: one per checkpoint; zigzag: one per checkpoint and hook), all ranks "
      "cooperating inside each item. Items the study manifest records as complete with the same config are "
      "skipped, so an interrupted run resumes; --force redoes them. Outputs: OUTPUT/corpus.h5, "
      "OUTPUT/checkpoints/<model>/step<N>/, OUTPUT/activations/<model>/<checkpoint>.h5, "
      "OUTPUT/zigzag/<model>/<checkpoint>/<hook>.h5.";
  c.add_options = [](po::options_description& d) {
    d.add_options()("job", po::value<std::string>()->required(), "job spec (positional)")(
        "stages", po::value<std::string>(), "comma-separated subset of the study's stages")(
        "force", "redo items that are complete");
  };
  c.positionals = {{"job", 1}};
  c.run = run_all;
  return c;
}

}  // namespace lmtopo::cli
