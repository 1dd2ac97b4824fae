#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "geometry/distances_cuda.hpp"

namespace lmtopo::geometry {
namespace {

constexpr int kTile = 16;

void check(cudaError_t e, const char* call) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(call) + ": " + cudaGetErrorString(e));
}

// One thread per (i, j); the feature axis is streamed through shared-memory tiles of both rows.
__global__ void squared_distance_kernel(const float* x, int n, int dim, float* out) {
  __shared__ float a[kTile][kTile + 1];
  __shared__ float b[kTile][kTile + 1];
  const int i = blockIdx.y * kTile + threadIdx.y;
  const int j = blockIdx.x * kTile + threadIdx.x;
  float acc = 0.f;
  for (int k0 = 0; k0 < dim; k0 += kTile) {
    const int k = k0 + threadIdx.x;
    a[threadIdx.y][threadIdx.x] = (i < n && k < dim) ? x[static_cast<size_t>(i) * dim + k] : 0.f;
    const int jr = blockIdx.x * kTile + threadIdx.y;
    const int kb = k0 + threadIdx.x;
    b[threadIdx.y][threadIdx.x] = (jr < n && kb < dim) ? x[static_cast<size_t>(jr) * dim + kb] : 0.f;
    __syncthreads();
    for (int t = 0; t < kTile; ++t) {
      const float d = a[threadIdx.y][t] - b[threadIdx.x][t];
      acc += d * d;
    }
    __syncthreads();
  }
  if (i < n && j < n) out[static_cast<size_t>(i) * n + j] = acc;
}

}  // namespace

int cuda_device_count(std::string* why) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    if (why) *why = cudaGetErrorString(e);
    return 0;
  }
  if (count == 0 && why) *why = "no CUDA device";
  return count;
}

std::vector<float> squared_distances_cuda(const float* x, std::size_t n, std::size_t dim) {
  float* dx = nullptr;
  float* dout = nullptr;
  check(cudaMalloc(&dx, n * dim * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&dout, n * n * sizeof(float)), "cudaMalloc");
  check(cudaMemcpy(dx, x, n * dim * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
  const dim3 block(kTile, kTile), grid(static_cast<unsigned>((n + kTile - 1) / kTile), static_cast<unsigned>((n + kTile - 1) / kTile));
  squared_distance_kernel<<<grid, block>>>(dx, static_cast<int>(n), static_cast<int>(dim), dout);
  check(cudaGetLastError(), "squared_distance_kernel launch");
  std::vector<float> out(n * n);
  check(cudaMemcpy(out.data(), dout, n * n * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
  cudaFree(dx);
  cudaFree(dout);
  return out;
}

}  // namespace lmtopo::geometry
