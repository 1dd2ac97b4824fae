#include "neurons/sensitive_directions.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

extern "C" void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);

namespace lmtopo::neurons {

GaussianFit fit_gaussian(const std::vector<double>& sum, const std::vector<double>& sum_outer, double samples, std::int64_t dim,
                         double ridge) {
  const auto d = static_cast<std::size_t>(dim);
  if (samples < 2) throw std::invalid_argument("fit_gaussian: needs at least 2 samples, got " + std::to_string(samples));
  if (sum.size() != d || sum_outer.size() != d * d) throw std::invalid_argument("fit_gaussian: sums do not match the dimension");
  GaussianFit f{dim, samples, std::vector<double>(d), std::vector<double>(d * d), {}};
  for (std::size_t i = 0; i < d; ++i) f.mean[i] = sum[i] / samples;
  for (std::size_t i = 0; i < d; ++i)
    for (std::size_t j = 0; j < d; ++j) f.covariance[i * d + j] = (sum_outer[i * d + j] - samples * f.mean[i] * f.mean[j]) / (samples - 1);
  // LAPACK is column-major: the row-major matrix is its transpose, so its upper factor U = L^T is
  // what "U" computes in place; read back row-major it is L.
  f.cholesky = f.covariance;
  for (std::size_t i = 0; i < d; ++i) f.cholesky[i * d + i] += ridge;
  const int n = static_cast<int>(dim);
  int info = 0;
  dpotrf_("U", &n, f.cholesky.data(), &n, &info);
  if (info != 0) throw std::invalid_argument("fit_gaussian: covariance + ridge is not positive definite (dpotrf info " + std::to_string(info) + ")");
  for (std::size_t i = 0; i < d; ++i)
    for (std::size_t j = i + 1; j < d; ++j) f.cholesky[i * d + j] = 0.0;  // row-major lower: zero above the diagonal
  return f;
}

void accumulate_moments(const float* x, std::int64_t rows, std::int64_t dim, double* sum, double* sum_outer) {
  const auto d = static_cast<std::size_t>(dim);
  std::vector<double> rows_d(x, x + rows * dim);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::size_t i = 0; i < d; ++i) sum[i] += rows_d[static_cast<std::size_t>(r) * d + i];
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(dim), static_cast<int>(rows), 1.0, rows_d.data(), static_cast<int>(dim), 1.0,
              sum_outer, static_cast<int>(dim));
}

void symmetric_from_upper(std::vector<double>& matrix, std::int64_t dim) {
  const auto d = static_cast<std::size_t>(dim);
  for (std::size_t i = 0; i < d; ++i)
    for (std::size_t j = 0; j < i; ++j) matrix[i * d + j] = matrix[j * d + i];
}

std::vector<double> isotropic_direction(std::int64_t dim, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  std::vector<double> u(static_cast<std::size_t>(dim));
  for (auto& x : u) x = normal(rng);
  return u;
}

std::vector<double> gaussian_difference(const GaussianFit& fit, std::mt19937_64& rng) {
  // v1 - v2 = mean + L z1 - (mean + L z2) = L (z1 - z2).
  const auto d = static_cast<std::size_t>(fit.dim);
  const auto z1 = isotropic_direction(fit.dim, rng), z2 = isotropic_direction(fit.dim, rng);
  std::vector<double> u(d, 0.0);
  for (std::size_t i = 0; i < d; ++i)
    for (std::size_t j = 0; j <= i; ++j) u[i] += fit.cholesky[i * d + j] * (z1[j] - z2[j]);
  return u;
}

double kl_from_logits(const float* logits_p, const float* logits_q, std::int64_t vocab) {
  auto log_normalizer = [vocab](const float* z) {
    const double top = *std::max_element(z, z + vocab);
    double s = 0;
    for (std::int64_t v = 0; v < vocab; ++v) s += std::exp(z[v] - top);
    return top + std::log(s);
  };
  const double lp = log_normalizer(logits_p), lq = log_normalizer(logits_q);
  double kl = 0;
  for (std::int64_t v = 0; v < vocab; ++v) {
    const double log_p = logits_p[v] - lp, log_q = logits_q[v] - lq;
    kl += std::exp(log_p) * (log_p - log_q);
  }
  return std::max(0.0, kl);  // rounding can leave -1e-17 for equal distributions
}

double crossing_length(const std::vector<double>& lengths, const std::vector<double>& curve, double threshold) {
  for (std::size_t i = 0; i < curve.size(); ++i) {
    if (curve[i] < threshold) continue;
    if (i == 0) return lengths[0];
    const double t = (threshold - curve[i - 1]) / (curve[i] - curve[i - 1]);
    return lengths[i - 1] + t * (lengths[i] - lengths[i - 1]);
  }
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace lmtopo::neurons
