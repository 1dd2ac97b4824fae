// The interface of the CUDA plugin, liblmtopo_cuda.so: the cuBLAS k-NN (knn_cuda.cu) behind one C entry
// point. lmtopo loads it with dlopen on the first CUDA call (knn_cuda_loader.cpp) so that no subcommand
// pays cuBLAS's start-up (its static initialisers: about 0.15 s and 200 MiB resident) unless it uses
// the GPU. Plugin and caller come from the same build: the version number guards against a stale copy.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "topology/knn.hpp"

namespace lmtopo::topology {

constexpr int kCudaPluginVersion = 1;

struct CudaPlugin {
  int version;
  // As knn_lists_cuda (knn_cuda.hpp); throws std::runtime_error naming the CUDA/cuBLAS call.
  std::vector<std::vector<std::uint32_t>> (*knn_lists)(const float* points, std::size_t n, std::size_t dim,
                                                       std::size_t k, const KnnOptions& options);
};

}  // namespace lmtopo::topology

// The plugin's only exported entry point (C linkage, so dlsym finds it by this name).
extern "C" const lmtopo::topology::CudaPlugin* lmtopo_cuda_plugin();
