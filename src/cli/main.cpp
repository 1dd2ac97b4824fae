// `lmtopo <subcommand> [options]`. Exit status: 0 success, 2 bad usage or invalid input, 1 runtime
// failure. MPI is initialised when a launcher started the process, or lazily by what needs it.
#include <mpi.h>

#include <unistd.h>

#include <array>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "core/provenance.hpp"
#include "io/h5store.hpp"
#include "mpi/collective.hpp"

namespace {

int rank_of_world() { return lmtopo::mpi::rank(MPI_COMM_WORLD); }

void print_top_help(std::ostream& out) {
  out << "lmtopo " << lmtopo::core::lmtopo_version()
      << " — topology and geometry of language-model internals on MPI clusters\n\n"
      << "usage: lmtopo <subcommand> [options]\n       lmtopo <subcommand> --help\n\nsubcommands:\n";
  for (const auto& c : lmtopo::cli::commands()) {
    out << "  " << c.name << std::string(c.name.size() < 12 ? 12 - c.name.size() : 1, ' ') << c.summary << "\n";
  }
}

int run_command(const lmtopo::cli::Command& cmd, int argc, char** argv) {
  namespace po = boost::program_options;
  // Everything after a bare `--` is passed through untouched (PETSc options).
  std::vector<std::string> args, passthrough;
  bool after = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (!after && a == "--") {
      after = true;
      continue;
    }
    (after ? passthrough : args).push_back(a);
  }
  const auto desc = lmtopo::cli::options_of(cmd);
  po::positional_options_description pos;
  for (const auto& p : cmd.positionals) pos.add(p.name.c_str(), p.max_count);
  po::variables_map vm;
  // No abbreviated options: a typo must not silently select another option.
  const int style = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
  po::store(po::command_line_parser(args).options(desc).positional(pos).style(style).run(), vm);
  if (vm.count("help")) {
    if (rank_of_world() == 0) std::cout << "usage: " << cmd.usage << "\n\n" << cmd.description << "\n\n" << desc;
    return 0;
  }
  po::notify(vm);
  if (!passthrough.empty() && cmd.passthrough_use.empty())
    throw lmtopo::InputError("--: `lmtopo " + cmd.name + "` takes no arguments after --, got '" + passthrough.front() +
                             "' (only sweep passes PETSc options, and submit sbatch options)");
  return cmd.run(vm, passthrough);
}

#ifndef LMTOPO_TORCH_HELPER
// extract, eval, generate, neurons, prune, train, run, submit, status, plan (it lists the work items) and the job forms run in lmtopo-torch, the one
// executable linked with libtorch: loading libtorch costs
// about half a second per start, which every other subcommand should not pay. `sweep` runs in
// lmtopo-petsc, the one linked with PETSc (about 0.08 s and 20 MiB per start). The exec happens
// before MPI starts, so the helper initialises MPI itself under mpirun/srun.
void exec_helper(char** argv, const std::string& name) {
  std::array<char, 4096> self{};
  const ssize_t len = readlink("/proc/self/exe", self.data(), self.size() - 1);
  std::string helper = len > 0 ? std::string(self.data(), static_cast<std::size_t>(len)) : std::string(argv[0]);
  helper = helper.substr(0, helper.find_last_of('/') + 1) + name;
  execv(helper.c_str(), argv);
  std::cerr << "lmtopo: failure: cannot run " << helper << (name == "lmtopo-torch" ? " (built without libtorch?)\n" : "\n");
  std::exit(1);
}
#endif

}  // namespace

int main(int argc, char** argv) {
#ifndef LMTOPO_TORCH_HELPER
  if (argc > 1) {
    const std::string sub = argv[1];
    const std::string first = argc > 2 ? argv[2] : "";
    const bool job_form = first.size() > 5 && (first.compare(first.size() - 5, 5, ".yaml") == 0 ||
                                               first.compare(first.size() - 4, 4, ".yml") == 0);
    if (sub == "extract" || sub == "eval" || sub == "generate" || sub == "neurons" || sub == "prune" || sub == "train" || sub == "run" || sub == "submit" || sub == "status" || sub == "plan" || ((sub == "zigzag" || sub == "sweep" || sub == "aggregate") && job_form)) exec_helper(argv, "lmtopo-torch");
#ifndef LMTOPO_PETSC_HELPER
    const bool asks_help = first == "--help" || first == "-h";  // the front end prints sweep's help itself
    if (sub == "sweep" && !asks_help) exec_helper(argv, "lmtopo-petsc");
#endif
  }
#endif
  if (lmtopo::mpi::launched_by_mpi_launcher()) lmtopo::mpi::initialize_for_launcher(&argc, &argv);
  int status = 0;
  const bool root = rank_of_world() == 0;
  std::string message, label;
  bool agreed = false;
  try {
    const std::string sub = argc > 1 ? argv[1] : "";
    if (sub.empty() || sub == "--help" || sub == "-h" || sub == "help") {
      if (root) print_top_help(std::cout);
      status = sub.empty() ? 2 : 0;
    } else if (sub == "--version") {
      if (root) std::cout << "lmtopo " << lmtopo::core::lmtopo_version() << "\n";
    } else if (sub == "--cli-reference") {  // used by the build to regenerate docs/cli.md
      if (root) std::cout << lmtopo::cli::cli_reference_markdown();
    } else {
      const lmtopo::cli::Command* found = nullptr;
      for (const auto& c : lmtopo::cli::commands())
        if (c.name == sub) found = &c;
      if (!found) throw lmtopo::InputError("unknown subcommand '" + sub + "' (see lmtopo --help)");
      // Test hook for the rank-local failure path above (tests/python/test_mpi_errors.py).
      if (const char* r = std::getenv("LMTOPO_TEST_FAIL_RANK"); r && std::atoi(r) == rank_of_world())
        throw lmtopo::InputError("LMTOPO_TEST_FAIL_RANK: a failure on this rank alone (test hook)");
      status = run_command(*found, argc, argv);
    }
  } catch (const boost::program_options::error& e) {
    status = 2;
    label = "error";
    message = e.what();
  } catch (const lmtopo::InputError& e) {
    status = 2;
    label = "error";
    message = e.what();
    agreed = dynamic_cast<const lmtopo::mpi::AgreedError*>(&e) != nullptr;
  } catch (const std::exception& e) {
    status = 1;
    label = "failure";
    message = e.what();
    agreed = dynamic_cast<const lmtopo::mpi::AgreedError*>(&e) != nullptr;
  }
  if (!message.empty()) {
    message = message.substr(0, message.find('\n'));  // one line: libtorch appends a C++ stack trace
    // An error raised on this rank alone (not through mpi::on_root/on_all) may leave the other ranks
    // waiting in a collective for ever: if they do not fail too within a few seconds, abort the job.
    if (!agreed && !lmtopo::mpi::all_ranks_failed_within(10.0)) {
      std::cerr << "lmtopo: " << label << " (rank " << rank_of_world() << ", alone; aborting the other ranks): " << message
                << std::endl;
      MPI_Abort(MPI_COMM_WORLD, status);
    }
    if (root) std::cerr << "lmtopo: " << label << ": " << message << "\n";
  }
  if (status != 0 && lmtopo::io::hdf5_file_left_open()) {
    // HDF5's own clean-up at MPI_Finalize would crash on the file it could not close (h5store.hpp).
    std::cout.flush();
    std::cerr.flush();
    std::_Exit(status);
  }
  lmtopo::mpi::finalize_if_initialized();
  return status;
}
