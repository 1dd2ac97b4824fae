// The k-NN's Gram rows from cuBLAS (knn_cuda.hpp), behind the CUDA plugin's entry point
// (cuda_plugin.hpp). The points stay on the device for the whole call; each block of rows is one sgemm
// and one copy back.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "topology/cuda_plugin.hpp"

namespace lmtopo::topology {
namespace {

void check(cudaError_t e, const char* call) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA k-NN: ") + call + ": " + cudaGetErrorString(e));
}

void check(cublasStatus_t s, const char* call) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("CUDA k-NN: ") + call + ": cuBLAS status " + std::to_string(static_cast<int>(s)));
}

int local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"})
    if (const char* v = std::getenv(name)) return std::atoi(v);
  return 0;
}

class CublasGramRows final : public GramRowSource<float> {
 public:
  CublasGramRows() {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0)
      throw std::runtime_error(std::string("--knn-device cuda: no usable CUDA device (") +
                               (e != cudaSuccess ? cudaGetErrorString(e) : "none visible") + ")");
    check(cudaSetDevice(local_rank() % count), "cudaSetDevice");
    check(cublasCreate(&handle_), "cublasCreate");
    // Strict IEEE float32 products and sums: the filter's error bound assumes them (no TF32).
    check(cublasSetMathMode(handle_, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");
  }
  ~CublasGramRows() override {
    cudaFree(x_);
    cudaFree(out_);
    if (handle_) cublasDestroy(handle_);
  }
  CublasGramRows(const CublasGramRows&) = delete;
  CublasGramRows& operator=(const CublasGramRows&) = delete;

  void load(const float* x, std::size_t n, std::size_t dim) override {
    n_ = n;
    dim_ = dim;
    check(cudaMalloc(&x_, n * dim * sizeof(float)), "cudaMalloc (points)");
    check(cudaMemcpy(x_, x, n * dim * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy (points)");
  }

  void rows(std::size_t r0, std::size_t count, float* out) override {
    if (count > out_rows_) {
      cudaFree(out_);
      out_ = nullptr;
      check(cudaMalloc(&out_, count * n_ * sizeof(float)), "cudaMalloc (Gram block)");
      out_rows_ = count;
    }
    // Row-major out[count, n] is column-major C[n, count] = X^T(col-major dim x n)^T * A, with A the
    // column-major dim x count view of rows r0.. of the points.
    const float one = 1.0f, zero = 0.0f;
    check(cublasSgemm(handle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n_), static_cast<int>(count),
                      static_cast<int>(dim_), &one, x_, static_cast<int>(dim_), x_ + r0 * dim_, static_cast<int>(dim_),
                      &zero, out_, static_cast<int>(n_)),
          "cublasSgemm");
    check(cudaMemcpy(out, out_, count * n_ * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy (Gram block)");
  }

 private:
  cublasHandle_t handle_ = nullptr;
  float* x_ = nullptr;
  float* out_ = nullptr;
  std::size_t n_ = 0, dim_ = 0, out_rows_ = 0;
};

std::vector<std::vector<std::uint32_t>> knn_lists_on_device(const float* points, std::size_t n, std::size_t dim,
                                                            std::size_t k, const KnnOptions& options) {
  CublasGramRows source;
  return knn_lists_with(source, points, n, dim, k, options);
}

}  // namespace
}  // namespace lmtopo::topology

extern "C" const lmtopo::topology::CudaPlugin* lmtopo_cuda_plugin() {
  static const lmtopo::topology::CudaPlugin plugin{lmtopo::topology::kCudaPluginVersion,
                                                   &lmtopo::topology::knn_lists_on_device};
  return &plugin;
}
