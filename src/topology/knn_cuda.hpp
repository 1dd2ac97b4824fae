// The exact k-NN (knn.hpp) with its filtering GEMM on a CUDA device: cuBLAS sgemm in strict float32
// (CUBLAS_PEDANTIC_MATH, so the error bound holds: no TF32), Gram row blocks copied back and the
// candidates re-measured exactly on the host. The same neighbours as knn_lists. No CUDA types here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "topology/knn.hpp"

namespace lmtopo::topology {

// Whether this build has the CUDA path (nvcc found at configure time).
bool knn_cuda_built();

// As knn_lists, on the CUDA device of this process: the one of index (local rank % devices), the
// local rank from OMPI_COMM_WORLD_LOCAL_RANK or SLURM_LOCALID (0 if neither is set). Throws
// std::runtime_error naming the CUDA/cuBLAS call on failure, or saying why no device is usable.
std::vector<std::vector<std::uint32_t>> knn_lists_cuda(const float* points, std::size_t n, std::size_t dim, std::size_t k,
                                                       const KnnOptions& options = {});

}  // namespace lmtopo::topology
