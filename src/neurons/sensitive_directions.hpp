// Sensitive directions (Lee & Heimersheim; science.md §7): how far the next-token distribution moves
// when the residual stream before a block is pushed a length L along a direction, x' = x + L u/|u|,
// measured as KL(p_orig || p_perturbed), for families of directions:
//   random          u ~ N(0, I) (isotropic);
//   towards_other   u = x_other - x, another prompt's activation at the same block and position;
//   gaussian        u = v1 - v2, v1 and v2 drawn independently from N(mean, cov + ridge I) fitted to the
//                   block's activations (every token of every prompt): the paper's improved baseline,
//                   which does not involve x.
// Plain arrays in, plain arrays out: no HDF5, no MPI. The Cholesky factor is LAPACK's (dpotrf).
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "stats/correlation.hpp"

namespace lmtopo::neurons {

// Mean and covariance (ddof 1) from the sums over n samples of x and of x x^T ([dim, dim], row-major),
// with `ridge` added to the covariance's diagonal before its lower Cholesky factor is taken.
struct GaussianFit {
  std::int64_t dim = 0;
  double samples = 0;
  std::vector<double> mean, covariance;  // covariance without the ridge
  std::vector<double> cholesky;          // lower factor of covariance + ridge I, row-major
};
GaussianFit fit_gaussian(const std::vector<double>& sum, const std::vector<double>& sum_outer, double samples, std::int64_t dim,
                         double ridge);

// Adds the rows of x [rows, dim] (float32) to `sum` [dim] and their outer products to the upper
// triangle of `sum_outer` [dim, dim] (BLAS dsyrk); symmetric_from_upper() completes it.
void accumulate_moments(const float* x, std::int64_t rows, std::int64_t dim, double* sum, double* sum_outer);
void symmetric_from_upper(std::vector<double>& matrix, std::int64_t dim);

std::vector<double> isotropic_direction(std::int64_t dim, std::mt19937_64& rng);
std::vector<double> gaussian_difference(const GaussianFit& fit, std::mt19937_64& rng);

// KL(p || q) of the softmax distributions of two logit vectors (natural log, computed in double).
double kl_from_logits(const float* logits_p, const float* logits_q, std::int64_t vocab);

// numpy.quantile's default (linear interpolation between order statistics); `values` non-empty.
using stats::quantile;  // stats/correlation.hpp, shared with aggregate

// The length at which `curve` (values at increasing `lengths`) first reaches `threshold`, linearly
// interpolated between grid points; NaN if it never does.
double crossing_length(const std::vector<double>& lengths, const std::vector<double>& curve, double threshold);

}  // namespace lmtopo::neurons
