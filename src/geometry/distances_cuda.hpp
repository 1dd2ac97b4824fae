// Pairwise squared Euclidean distances on a CUDA device (a tiled kernel). Compiled when nvcc is
// found; tested when a GPU is present (tests/cuda). Not yet wired into the k-NN path, which uses BLAS.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace lmtopo::geometry {

// Number of CUDA devices visible (0 without a driver or GPU); `why` says why when 0.
int cuda_device_count(std::string* why = nullptr);

// d[i*n + j] = |x_i - x_j|^2 for row-major x [n, dim] (float32 on the device). Throws
// std::runtime_error naming the CUDA call on failure.
std::vector<float> squared_distances_cuda(const float* x, std::size_t n, std::size_t dim);

}  // namespace lmtopo::geometry
