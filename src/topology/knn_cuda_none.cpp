// The CUDA k-NN entry points of a build without nvcc: say so instead of failing to link.
#include <stdexcept>

#include "topology/knn_cuda.hpp"

namespace lmtopo::topology {

bool knn_cuda_built() { return false; }

std::vector<std::vector<std::uint32_t>> knn_lists_cuda(const float*, std::size_t, std::size_t, std::size_t,
                                                       const KnnOptions&) {
  throw std::runtime_error("the CUDA k-NN is not in this build (nvcc was not found at configure time)");
}

}  // namespace lmtopo::topology
