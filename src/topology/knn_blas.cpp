// The k-NN's Gram rows from BLAS: sgemm for the mixed-precision filter, dgemm for the float64
// baseline (knn.hpp). Kept apart from knn.cpp so that the GPU build needs no BLAS.
#include <cblas.h>

#include <type_traits>

#include "topology/knn.hpp"

namespace lmtopo::topology {
namespace {

template <typename Real>
class BlasGramRows final : public GramRowSource<Real> {
 public:
  void load(const Real* x, std::size_t n, std::size_t dim) override {
    x_ = x;
    n_ = static_cast<int>(n);
    dim_ = static_cast<int>(dim);
  }
  void rows(std::size_t r0, std::size_t count, Real* out) override {
    const Real* a = x_ + r0 * static_cast<std::size_t>(dim_);
    if constexpr (std::is_same_v<Real, float>)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(count), n_, dim_, 1.0f, a, dim_, x_, dim_,
                  0.0f, out, n_);
    else
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(count), n_, dim_, 1.0, a, dim_, x_, dim_,
                  0.0, out, n_);
  }

 private:
  const Real* x_ = nullptr;
  int n_ = 0, dim_ = 0;
};

}  // namespace

std::vector<std::vector<std::uint32_t>> knn_lists(const float* points, std::size_t n, std::size_t dim, std::size_t k,
                                                  const KnnOptions& options) {
  if (options.precision == KnnPrecision::mixed) {
    BlasGramRows<float> source;
    return knn_lists_with(source, points, n, dim, k, options);
  }
  BlasGramRows<double> source;
  return knn_lists_with(source, points, n, dim, k, options);
}

}  // namespace lmtopo::topology
