// `lmtopo report JOB.yaml`: the study's figures and tables as a static HTML page, drawn by
// postprocess/report_html.py (Python + matplotlib) from whatever stage outputs exist.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "core/jobspec.hpp"
#include "core/provenance.hpp"
#include "mpi/collective.hpp"

namespace lmtopo::cli {
namespace fs = std::filesystem;
namespace {

// What the Python side needs of the spec: the output folder, the hooks, every model's checkpoints in
// training order, and the provenance it prints.
nlohmann::json study_description(const core::JobSpec& spec, const std::string& report_dir) {
  nlohmann::json models = nlohmann::json::array();
  for (const auto& m : spec.models) {
    nlohmann::json checkpoints = nlohmann::json::array();
    for (const auto& c : core::trained_checkpoints(spec, m)) checkpoints.push_back({{"label", c.label}, {"step", c.step}});
    models.push_back({{"name", m.name}, {"checkpoints", checkpoints}});
  }
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return {{"study", spec.study}, {"output", spec.output}, {"report_dir", report_dir}, {"models", models},
          {"hooks", spec.has_stage("extract") ? spec.config["extract"]["hooks"] : nlohmann::json::array()},
          {"lmtopo_version", core::lmtopo_version()}, {"git_sha", core::git_sha()}, {"git_dirty", core::git_dirty()},
          {"created_utc", stamp}};
}

// --python, else LMTOPO_PYTHON, else the source tree's .venv (scripts/setup.sh makes it), else python3.
std::string python_interpreter(const po::variables_map& vm) {
  if (vm.count("python")) return vm["python"].as<std::string>();
  if (const char* p = std::getenv("LMTOPO_PYTHON"); p && *p) return p;
  const fs::path venv = fs::path(core::source_dir()) / ".venv" / "bin" / "python";
  return ::access(venv.c_str(), X_OK) == 0 ? venv.string() : "python3";
}

// Runs `argv` and returns its exit status (127 when it could not start).
int run_process(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw RuntimeFailure("report: cannot fork");
  if (pid == 0) {
    ::execvp(args[0], args.data());
    std::cerr << "lmtopo: error: report: cannot run " << argv[0] << "\n";
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int run_report(const po::variables_map& vm, const std::vector<std::string>&) {
  if (mpi::rank() != 0) return 0;
  const auto spec = core::load_job_spec(vm["job"].as<std::string>());
  const std::string dir = vm.count("output") ? vm["output"].as<std::string>() : (fs::path(spec.output) / "report").string();
  if (!fs::is_directory(spec.output)) throw InputError(spec.file + ": output " + spec.output + " does not exist (run the study first)");
  const fs::path script = fs::path(core::source_dir()) / "postprocess" / "report_html.py";
  if (!fs::exists(script)) throw RuntimeFailure("report: " + script.string() + " is missing (lmtopo runs it from its source tree)");
  fs::create_directories(dir);
  const std::string study = (fs::path(dir) / "study.json").string();
  std::ofstream(study) << study_description(spec, fs::absolute(dir).string()).dump(2) << "\n";
  const int code = run_process({python_interpreter(vm), script.string(), study});
  if (code == 127 || code == 1) throw RuntimeFailure("report: " + script.string() + " failed (exit " + std::to_string(code) + ")");
  return code;  // 0, or 2 when there was nothing to report
}

}  // namespace

Command make_report_command() {
  Command c;
  c.name = "report";
  c.summary = "the study's figures and tables as a static HTML page (PNG, SVG and CSV per figure)";
  c.usage = "lmtopo report JOB.yaml [-o DIR] [--python PY]";
  c.description =
      "Reads whatever the study's stages wrote under its output folder and draws, with postprocess/report_html.py "
      "(Python + matplotlib): S̄ curves of every model on relative depth with ± sd bands, Betti heatmaps per "
      "checkpoint, the universality and phase tables (aggregate); perplexity per eval condition and language with "
      "Δ NLL (eval: the pruning table); key-neuron layer profiles, the ablation Δ-perplexity matrix, repetition "
      "rates by condition, KL-vs-length curves (neurons, each model's last checkpoint); CKA between checkpoints and "
      "SADS over training (sweep). Writes DIR/index.html (default OUTPUT/report/) with figures/NAME.{png,svg,csv}; "
      "every number in a table names its source file and dataset (data-source attribute). The interpreter is "
      "--python, else $LMTOPO_PYTHON, else the source tree's .venv (scripts/setup.sh installs matplotlib there), "
      "else python3. Exit 2 when the spec is invalid or the study has no outputs yet.";
  c.add_options = [](po::options_description& d) {
    d.add_options()("job", po::value<std::string>()->required(), "job spec (positional)")(
        "output,o", po::value<std::string>(), "folder for index.html and figures/ (default: OUTPUT/report)")(
        "python", po::value<std::string>(), "Python interpreter with h5py, numpy and matplotlib");
  };
  c.positionals = {{"job", 1}};
  c.run = run_report;
  return c;
}

}  // namespace lmtopo::cli
