// `lmtopo prepare JOB.yaml`: checkpoint manifest and corpus.
#include <iostream>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "core/jobspec.hpp"
#include "mpi/collective.hpp"
#include "stages/prepare.hpp"

namespace lmtopo::cli {
namespace {

int run_prepare_cmd(const po::variables_map& vm, const std::vector<std::string>&) {
  core::JobSpec spec;
  mpi::on_all(MPI_COMM_WORLD, [&] { spec = core::load_job_spec(vm["job"].as<std::string>()); });
  if (vm.count("item-id") && vm["item-id"].as<std::string>() != "corpus")
    throw InputError("--item-id: stage prepare has one item, 'corpus'; got '" + vm["item-id"].as<std::string>() + "'");
  const auto s = stages::run_prepare(spec, MPI_COMM_WORLD, vm.count("force") > 0);
  if (mpi::rank() == 0) {
    if (s.skipped) {
      std::cout << "prepare: complete with the same config, nothing to do (--force redoes it)\n";
    } else {
      std::cout << "prepare: " << s.records << " corpus records -> " << s.corpus_path << "\n"
                << "prepare: checkpoint manifest -> " << s.checkpoints_path;
      if (s.duplicates) std::cout << " (" << s.duplicates << " duplicate checkpoint(s) flagged)";
      std::cout << "\n";
    }
  }
  return 0;
}

}  // namespace

Command make_prepare_command() {
  Command c;
  c.name = "prepare";
  c.summary = "hash every checkpoint (duplicates flagged) and materialise the corpus";
  c.usage = "[mpirun -n P] lmtopo prepare JOB.yaml [--force]";
  c.description =
      "Writes <output>/manifest/checkpoints.json (sha256 of every weight file; byte-identical checkpoints are "
      "flagged) and <output>/corpus.h5 (schema corpus/1): aligned parallel messages from gettext catalogs, or a "
      "user JSONL corpus. Ranks split the languages (catalog parsing) and the weight files (hashing) and write "
      "the corpus collectively. A missing or unreadable checkpoint is an error before anything is computed. "
      "Skips the work when the study manifest records it complete with the same config.";
  c.add_options = [](po::options_description& d) {
    d.add_options()("job", po::value<std::string>()->required(), "job spec (positional)")(
        "force", "redo even if complete")("item-id", po::value<std::string>(), "the stage's one item, corpus (for the SLURM scripts)");
  };
  c.positionals = {{"job", 1}};
  c.run = run_prepare_cmd;
  return c;
}

}  // namespace lmtopo::cli
