#include "core/provenance.hpp"

#include <H5public.h>
#include <boost/version.hpp>
#include <mpi.h>
#include <petscversion.h>
#include <dlfcn.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>

#ifndef LMTOPO_VERSION
#define LMTOPO_VERSION "0.0.0"
#endif
#ifndef LMTOPO_SOURCE_DIR
#define LMTOPO_SOURCE_DIR "."
#endif
#ifndef LMTOPO_CONFIGURE_GIT_SHA
#define LMTOPO_CONFIGURE_GIT_SHA "unknown"
#endif

namespace lmtopo::core {

std::string source_dir() { return LMTOPO_SOURCE_DIR; }

namespace {

std::string run_git(const std::string& args) {
  const std::string cmd = "git -C '" + std::string(LMTOPO_SOURCE_DIR) + "' " + args + " 2>/dev/null";
  std::string out;
  if (FILE* pipe = popen(cmd.c_str(), "r")) {
    std::array<char, 256> buf{};
    while (fgets(buf.data(), static_cast<int>(buf.size()), pipe)) out += buf.data();
    if (pclose(pipe) != 0) return {};
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

}  // namespace

std::string lmtopo_version() { return LMTOPO_VERSION; }

std::string git_sha() {
  static const std::string sha = [] {
    std::string s = run_git("rev-parse HEAD");
    return s.empty() ? std::string(LMTOPO_CONFIGURE_GIT_SHA) : s;
  }();
  return sha;
}

bool git_dirty() {
  static const bool dirty = [] {
    // Build outputs are ignored by .gitignore, so only source edits count.
    return !run_git("status --porcelain --untracked-files=no").empty();
  }();
  return dirty;
}

std::string hostname() {
  std::array<char, 256> buf{};
  if (gethostname(buf.data(), buf.size() - 1) != 0) return "unknown";
  return buf.data();
}

nlohmann::json library_versions() {
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  char mpi_version[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(mpi_version, &len);
  std::string mpi(mpi_version, static_cast<std::size_t>(len));
  if (auto pos = mpi.find(','); pos != std::string::npos) mpi = mpi.substr(0, pos);
  nlohmann::json v;
  v["lmtopo"] = lmtopo_version();
  v["hdf5"] = std::to_string(maj) + "." + std::to_string(min) + "." + std::to_string(rel);
  v["mpi"] = mpi;
  v["boost"] = std::to_string(BOOST_VERSION / 100000) + "." + std::to_string(BOOST_VERSION / 100 % 1000) + "." +
               std::to_string(BOOST_VERSION % 100);
  v["petsc"] = std::to_string(PETSC_VERSION_MAJOR) + "." + std::to_string(PETSC_VERSION_MINOR) + "." +
               std::to_string(PETSC_VERSION_SUBMINOR);
  v["compiler"] = std::string("gcc ") + __VERSION__;
  return v;
}

namespace {
int g_compute_threads = 0;
}

void set_compute_threads(int threads) { g_compute_threads = threads; }

namespace {
int g_intra_op_threads = 0;
}

void set_intra_op_threads(int threads) { g_intra_op_threads = threads; }

int compute_threads() {
  if (g_compute_threads > 0) return g_compute_threads;
  // Not configured by lmtopo: OpenBLAS's own choice, when it is the BLAS loaded.
  using GetThreads = int (*)();
  if (auto* f = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"))) return f();
  return 1;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0)
      if (auto pos = line.find(':'); pos != std::string::npos) return line.substr(line.find_first_not_of(" \t", pos + 1));
  return "unknown";
}

nlohmann::json created_by(int ranks) {
  nlohmann::json j;
  j["libraries"] = library_versions();
  j["hostname"] = hostname();
  j["cpu"] = cpu_model();
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  j["openblas_coretype"] = coretype ? coretype : "";
  j["ranks"] = ranks;
  j["threads_per_rank"] = nlohmann::json::array({compute_threads()});
  // libtorch's element-wise pool beside the BLAS's (1 where the BLAS has its own pool; absent when no
  // model ran in this process).
  if (g_intra_op_threads > 0) j["intra_op_threads"] = g_intra_op_threads;
  std::time_t now = std::time(nullptr);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  j["created_utc"] = buf.data();
  return j;
}

}  // namespace lmtopo::core
