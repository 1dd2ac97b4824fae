// neurons/sensitive_directions: the Gaussian fit from moments against the two-pass definition and its
// Cholesky factor (L L^T = cov + ridge I), the Gaussian difference's covariance (2 (cov + ridge I),
// by sampling), KL by its definition and at equal logits, numpy's quantile convention, the crossing
// length. (The stage is checked against transformers and numpy in tests/model/test_sensitive.py.)
#include "neurons/sensitive_directions.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>

namespace lmtopo::neurons {
namespace {

TEST(SensitiveDirections, GaussianFitMatchesTheDefinitionAndItsFactor) {
  const std::int64_t d = 4, n = 50;
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<std::size_t>(n * d));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) * static_cast<float>(1 + i % d) + 5.0f;
  std::vector<double> sum(d, 0.0), outer(d * d, 0.0);
  accumulate_moments(x.data(), 20, d, sum.data(), outer.data());  // in two pieces, as batches are
  accumulate_moments(x.data() + 20 * d, n - 20, d, sum.data(), outer.data());
  symmetric_from_upper(outer, d);
  const auto fit = fit_gaussian(sum, outer, static_cast<double>(n), d, 0.5);
  std::vector<double> mean(d, 0.0);
  for (std::int64_t r = 0; r < n; ++r)
    for (std::int64_t i = 0; i < d; ++i) mean[i] += x[r * d + i] / static_cast<double>(n);
  for (std::int64_t i = 0; i < d; ++i) {
    EXPECT_NEAR(fit.mean[i], mean[i], 1e-9);
    for (std::int64_t j = 0; j < d; ++j) {
      double c = 0, llt = 0;
      for (std::int64_t r = 0; r < n; ++r) c += (x[r * d + i] - mean[i]) * (x[r * d + j] - mean[j]);
      EXPECT_NEAR(fit.covariance[i * d + j], c / (n - 1), 1e-7);
      for (std::int64_t k = 0; k < d; ++k) llt += fit.cholesky[i * d + k] * fit.cholesky[j * d + k];
      EXPECT_NEAR(llt, c / (n - 1) + (i == j ? 0.5 : 0.0), 1e-7);
      if (j > i) {
        EXPECT_EQ(fit.cholesky[i * d + j], 0.0);
      }
    }
  }
  EXPECT_THROW(fit_gaussian(sum, outer, 1.0, d, 0.5), std::invalid_argument);
}

TEST(SensitiveDirections, GaussianDifferenceHasTwiceTheCovariance) {
  // cov diag(1, 4), ridge 0: v1 - v2 has covariance diag(2, 8).
  GaussianFit fit{2, 10, {0, 0}, {1, 0, 0, 4}, {1, 0, 0, 2}};
  std::mt19937_64 rng(11);
  double s00 = 0, s11 = 0, s01 = 0;
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) {
    const auto u = gaussian_difference(fit, rng);
    s00 += u[0] * u[0];
    s11 += u[1] * u[1];
    s01 += u[0] * u[1];
  }
  EXPECT_NEAR(s00 / draws, 2.0, 0.1);
  EXPECT_NEAR(s11 / draws, 8.0, 0.4);
  EXPECT_NEAR(s01 / draws, 0.0, 0.15);
}

TEST(SensitiveDirections, KlByDefinition) {
  const std::vector<float> p{1.0f, 2.0f, 0.5f}, q{0.0f, 2.5f, 1.0f};
  double zp = 0, zq = 0, kl = 0;
  auto e = [](float x) { return std::exp(static_cast<double>(x)); };
  for (int i = 0; i < 3; ++i) zp += e(p[i]), zq += e(q[i]);
  for (int i = 0; i < 3; ++i) kl += e(p[i]) / zp * (std::log(e(p[i]) / zp) - std::log(e(q[i]) / zq));
  EXPECT_NEAR(kl_from_logits(p.data(), q.data(), 3), kl, 1e-12);
  EXPECT_EQ(kl_from_logits(p.data(), p.data(), 3), 0.0);
  const std::vector<float> shifted{11.0f, 12.0f, 10.5f};  // softmax ignores a constant shift
  EXPECT_NEAR(kl_from_logits(p.data(), shifted.data(), 3), 0.0, 1e-12);
}

TEST(SensitiveDirections, QuantileAsNumpyAndCrossingLength) {
  const std::vector<double> v{4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(quantile(v, 0.5), 2.5);   // numpy.quantile([1,2,3,4], 0.5)
  EXPECT_DOUBLE_EQ(quantile(v, 0.1), 1.3);   // 1 + 0.3 * (2 - 1)
  EXPECT_DOUBLE_EQ(quantile(v, 1.0), 4.0);
  const std::vector<double> lengths{0, 1, 2, 4}, curve{0, 0.05, 0.15, 0.6};
  EXPECT_DOUBLE_EQ(crossing_length(lengths, curve, 0.1), 1.5);
  EXPECT_DOUBLE_EQ(crossing_length(lengths, curve, 0.0), 0.0);
  EXPECT_TRUE(std::isnan(crossing_length(lengths, curve, 1.0)));
}

}  // namespace
}  // namespace lmtopo::neurons
