// The CUDA k-NN entry points of a build with nvcc: the work is in the plugin liblmtopo_cuda.so, loaded
// on the first call (cuda_plugin.hpp says why). The plugin is looked for beside the executable, then
// where this build wrote it (tests run from build/tests/), then on the loader's search path.
#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <mutex>
#include <stdexcept>
#include <string>

#include "topology/cuda_plugin.hpp"
#include "topology/knn_cuda.hpp"

namespace lmtopo::topology {
namespace {

constexpr const char* kPluginName = "liblmtopo_cuda.so";

std::string executable_directory() {
  char path[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return {};
  std::string s(path, static_cast<std::size_t>(n));
  return s.substr(0, s.find_last_of('/'));
}

const CudaPlugin* load_plugin() {
  std::string errors;
  for (const std::string& candidate : {executable_directory() + "/" + kPluginName,
                                       std::string(LMTOPO_CUDA_PLUGIN_DIR) + "/" + kPluginName, std::string(kPluginName)}) {
    void* handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      errors += std::string("; ") + dlerror();
      continue;
    }
    auto entry = reinterpret_cast<const CudaPlugin* (*)()>(dlsym(handle, "lmtopo_cuda_plugin"));
    if (!entry) throw std::runtime_error("--knn-device cuda: " + candidate + " has no lmtopo_cuda_plugin entry point");
    const CudaPlugin* plugin = entry();
    if (plugin->version != kCudaPluginVersion)
      throw std::runtime_error("--knn-device cuda: " + candidate + " is plugin version " + std::to_string(plugin->version) +
                               ", this lmtopo needs " + std::to_string(kCudaPluginVersion) + " (a stale build?)");
    return plugin;
  }
  throw std::runtime_error(std::string("--knn-device cuda: the CUDA plugin ") + kPluginName + " could not be loaded" + errors);
}

const CudaPlugin& plugin() {
  static std::once_flag once;
  static const CudaPlugin* loaded = nullptr;
  std::call_once(once, [] { loaded = load_plugin(); });
  return *loaded;
}

}  // namespace

bool knn_cuda_built() { return true; }

std::vector<std::vector<std::uint32_t>> knn_lists_cuda(const float* points, std::size_t n, std::size_t dim, std::size_t k,
                                                       const KnnOptions& options) {
  return plugin().knn_lists(points, n, dim, k, options);
}

}  // namespace lmtopo::topology
