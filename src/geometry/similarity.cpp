#include "geometry/similarity.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "core/error.hpp"

namespace lmtopo::geometry {

void gemm_rows_abt(const double* a, std::size_t row0, std::size_t rows, const double* b, std::size_t m, std::size_t d,
                   double* out) {
  if (rows == 0 || m == 0) return;
  if (d == 0) {
    std::fill(out, out + rows * m, 0.0);
    return;
  }
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(m), static_cast<int>(d), 1.0,
              a + row0 * d, static_cast<int>(d), b, static_cast<int>(d), 0.0, out, static_cast<int>(m));
}

std::vector<double> unit_rows(const double* x, std::size_t n, std::size_t d) {
  std::vector<double> out(x, x + n * d);
  for (std::size_t i = 0; i < n; ++i) {
    double* r = out.data() + i * d;
    const double norm = std::sqrt(std::inner_product(r, r + d, r, 0.0));
    if (norm > 0)
      for (std::size_t k = 0; k < d; ++k) r[k] /= norm;
  }
  return out;
}

void require_finite(const double* x, std::size_t n, std::size_t d, const std::string& what, std::size_t row0) {
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t k = 0; k < d; ++k)
      if (!std::isfinite(x[i * d + k]))
        throw InputError(what + ": row " + std::to_string(row0 + i) + " holds NaN or infinity (expected finite activations)");
}

const char* estimator_name(HsicEstimator e) {
  return e == HsicEstimator::biased ? "biased HSIC (Gretton et al. 2005), double-centred Gram"
                                    : "unbiased HSIC (Song et al. 2012), U-centred Gram";
}

void centre_gram_rows(double* k_rows, std::size_t row0, std::size_t rows, std::size_t n, const std::vector<double>& row_sums,
                      const std::vector<double>& diagonal, HsicEstimator e) {
  const double nn = static_cast<double>(n);
  if (e == HsicEstimator::biased) {
    const double total = std::accumulate(row_sums.begin(), row_sums.end(), 0.0);
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < n; ++j)
        k_rows[i * n + j] += total / (nn * nn) - row_sums[row0 + i] / nn - row_sums[j] / nn;
    return;
  }
  if (n < 4) throw InputError("unbiased HSIC needs at least 4 prompts, got " + std::to_string(n));
  // Zero diagonal, then U-centring: Kt_ij - s_i/(n-2) - s_j/(n-2) + total/((n-1)(n-2)), diagonal 0.
  std::vector<double> s(n);
  for (std::size_t j = 0; j < n; ++j) s[j] = row_sums[j] - diagonal[j];
  const double total = std::accumulate(s.begin(), s.end(), 0.0);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double& v = k_rows[i * n + j];
      v = (row0 + i == j) ? 0.0 : v - s[row0 + i] / (nn - 2) - s[j] / (nn - 2) + total / ((nn - 1) * (nn - 2));
    }
}

std::vector<double> cka_from_inner_products(const std::vector<double>& m, std::size_t r, std::vector<std::size_t>* degenerate) {
  std::vector<double> out(r * r, 0.0);
  std::vector<bool> bad(r);
  for (std::size_t a = 0; a < r; ++a) {
    // A centred Gram that is zero up to rounding: relative to the largest inner product seen.
    bad[a] = !(m[a * r + a] > 0);
    if (bad[a] && degenerate) degenerate->push_back(a);
  }
  for (std::size_t a = 0; a < r; ++a)
    for (std::size_t b = 0; b < r; ++b)
      if (!bad[a] && !bad[b]) out[a * r + b] = m[a * r + b] / std::sqrt(m[a * r + a] * m[b * r + b]);
  return out;
}

double centred_gram_inner_product(const FeatureCrossTerms& t, std::size_t n, HsicEstimator e) {
  if (e == HsicEstimator::biased) return t.cross_frobenius2;
  if (n < 4) throw InputError("unbiased HSIC needs at least 4 prompts, got " + std::to_string(n));
  const double nn = static_cast<double>(n);
  return t.cross_frobenius2 - t.norms_dot + t.total_x * t.total_y / ((nn - 1) * (nn - 2)) - 2 / (nn - 2) * t.row_sums_dot;
}

CkaMethod choose_cka_method(const std::string& name, std::size_t n, const std::vector<std::size_t>& dims, double ranks,
                            double gram_bytes_limit) {
  if (name == "gram") return CkaMethod::gram;
  if (name == "features") return CkaMethod::features;
  require_cka_method_name(name);
  const double nn = static_cast<double>(n), r = static_cast<double>(dims.size());
  double sum_d = 0;
  for (const auto d : dims) sum_d += static_cast<double>(d);
  const double gram_flops = 2 * nn * nn * (sum_d + r * r), feature_flops = nn * sum_d * sum_d;
  const double gram_bytes_per_rank = r * nn * nn * 8 / std::max(1.0, ranks);
  return feature_flops < gram_flops || gram_bytes_per_rank > gram_bytes_limit ? CkaMethod::features : CkaMethod::gram;
}

const char* cka_method_name(CkaMethod m) { return m == CkaMethod::gram ? "gram" : "features"; }

void require_cka_method_name(const std::string& name) {
  if (name != "auto" && name != "gram" && name != "features")
    throw InputError("--cka-method: expected auto, gram or features, got '" + name + "'");
}

double cka_linear(const double* x, std::size_t dx, const double* y, std::size_t dy, std::size_t n, HsicEstimator e) {
  std::vector<double> centred[2];
  const double* reps[2] = {x, y};
  const std::size_t dims[2] = {dx, dy};
  for (int t = 0; t < 2; ++t) {
    std::vector<double> k(n * n);
    gemm_rows_abt(reps[t], 0, n, reps[t], n, dims[t], k.data());
    std::vector<double> sums(n), diag(n);
    for (std::size_t i = 0; i < n; ++i) {
      sums[i] = std::accumulate(k.begin() + static_cast<std::ptrdiff_t>(i * n), k.begin() + static_cast<std::ptrdiff_t>((i + 1) * n), 0.0);
      diag[i] = k[i * n + i];
    }
    centre_gram_rows(k.data(), 0, n, n, sums, diag, e);
    centred[t] = std::move(k);
  }
  std::vector<double> m(4);
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b) m[static_cast<std::size_t>(a * 2 + b)] = std::inner_product(centred[a].begin(), centred[a].end(), centred[b].begin(), 0.0);
  return cka_from_inner_products(m, 2, nullptr)[1];
}

void PairedCosine::add(const PairedCosine& o) {
  sum_cos += o.sum_cos;
  sum_cos2 += o.sum_cos2;
  sum_angular += o.sum_angular;
  count += o.count;
}

std::vector<double> paired_cosine_rows(const double* x, const double* y, std::size_t row0, std::size_t rows, std::size_t d) {
  std::vector<double> cos(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    const double* a = x + (row0 + r) * d;
    const double* b = y + (row0 + r) * d;
    const double na = std::sqrt(std::inner_product(a, a + d, a, 0.0)), nb = std::sqrt(std::inner_product(b, b + d, b, 0.0));
    // A zero vector has no direction: cosine 0 (orthogonal) by convention, documented.
    const double c = (na > 0 && nb > 0) ? std::inner_product(a, a + d, b, 0.0) / (na * nb) : 0.0;
    cos[r] = std::clamp(c, -1.0, 1.0);
  }
  return cos;
}

PairedCosine paired_cosine(const double* x, const double* y, std::size_t row0, std::size_t rows, std::size_t d) {
  PairedCosine p;
  for (const double c : paired_cosine_rows(x, y, row0, rows, d)) {
    p.sum_cos += c;
    p.sum_cos2 += c * c;
    p.sum_angular += std::acos(c) / M_PI;
    ++p.count;
  }
  return p;
}

std::vector<std::size_t> retrieval_ranks(const double* s_rows, std::size_t row0, std::size_t rows, std::size_t n) {
  std::vector<std::size_t> ranks(rows, 0);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t i = row0 + r;
    const double* s = s_rows + r * n;
    for (std::size_t j = 0; j < n; ++j)
      if (j != i && (s[j] > s[i] || (s[j] == s[i] && j < i))) ++ranks[r];
  }
  return ranks;
}

std::array<std::size_t, 2> retrieval_hits(const double* s_rows, std::size_t row0, std::size_t rows, std::size_t n) {
  std::array<std::size_t, 2> hits{0, 0};
  for (const auto rank : retrieval_ranks(s_rows, row0, rows, n)) {
    hits[0] += rank < 1;
    hits[1] += rank < 5;
  }
  return hits;
}

std::vector<std::size_t> top_k_rows(const double* s_rows, std::size_t row0, std::size_t rows, std::size_t n, std::size_t k) {
  if (k + 1 > n) throw InputError("mutual k-NN: k = " + std::to_string(k) + " needs more than " + std::to_string(k) + " prompts, got " + std::to_string(n));
  std::vector<std::size_t> out(rows * k), idx;
  for (std::size_t r = 0; r < rows; ++r) {
    const double* s = s_rows + r * n;
    idx.resize(n);
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    idx.erase(idx.begin() + static_cast<std::ptrdiff_t>(row0 + r));
    std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(),
                      [&](std::size_t a, std::size_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); });
    std::copy(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), out.begin() + static_cast<std::ptrdiff_t>(r * k));
  }
  return out;
}

std::vector<double> mutual_knn_scores(const std::vector<std::size_t>& nx, const std::vector<std::size_t>& ny, std::size_t rows,
                                      std::size_t k) {
  std::vector<double> scores(rows);
  std::vector<std::size_t> a(k), b(k), common;
  for (std::size_t r = 0; r < rows; ++r) {
    std::copy(nx.begin() + static_cast<std::ptrdiff_t>(r * k), nx.begin() + static_cast<std::ptrdiff_t>((r + 1) * k), a.begin());
    std::copy(ny.begin() + static_cast<std::ptrdiff_t>(r * k), ny.begin() + static_cast<std::ptrdiff_t>((r + 1) * k), b.begin());
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    common.clear();
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(common));
    scores[r] = static_cast<double>(common.size()) / static_cast<double>(k);
  }
  return scores;
}

double mutual_knn_sum(const std::vector<std::size_t>& nx, const std::vector<std::size_t>& ny, std::size_t rows, std::size_t k) {
  const auto scores = mutual_knn_scores(nx, ny, rows, k);
  return std::accumulate(scores.begin(), scores.end(), 0.0);
}

void AlignmentSums::add(const AlignmentSums& o) {
  same_lang += o.same_lang;
  translation += o.translation;
  other += o.other;
  n_same_lang += o.n_same_lang;
  n_translation += o.n_translation;
  n_other += o.n_other;
}

double AlignmentSums::lrds() const {
  if (!n_same_lang || !n_other) throw InputError("LRDS needs two or more prompts per language and two or more languages");
  return same_lang / static_cast<double>(n_same_lang) - other / static_cast<double>(n_other);
}

double AlignmentSums::sads() const {
  if (!n_translation || !n_other) throw InputError("SADS needs parallel sentences (shared group ids) in two or more languages");
  return translation / static_cast<double>(n_translation) - other / static_cast<double>(n_other);
}

AlignmentSums alignment_sums(const double* s_rows, std::size_t row0, std::size_t rows, std::size_t n,
                             const std::vector<int>& language, const std::vector<long long>& group) {
  AlignmentSums a;
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t i = row0 + r;
    for (std::size_t j = 0; j < n; ++j) {
      if (j == i) continue;
      const double s = s_rows[r * n + j];
      if (language[i] == language[j]) {
        a.same_lang += s;
        ++a.n_same_lang;
      } else if (group[i] == group[j]) {
        a.translation += s;
        ++a.n_translation;
      } else {
        a.other += s;
        ++a.n_other;
      }
    }
  }
  return a;
}

void squared_distance_rows(const double* x, std::size_t n, std::size_t d, std::size_t row0, std::size_t rows, double* out) {
  // |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, clamped at 0; the diagonal set to exactly 0.
  gemm_rows_abt(x, row0, rows, x, n, d, out);
  std::vector<double> norms(n);
  for (std::size_t j = 0; j < n; ++j) norms[j] = std::inner_product(x + j * d, x + (j + 1) * d, x + j * d, 0.0);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < n; ++j) {
      double& v = out[r * n + j];
      v = (row0 + r == j) ? 0.0 : std::max(0.0, norms[row0 + r] + norms[j] - 2 * v);
    }
}

std::vector<double> twonn_ratio_rows(const double* sqdist_rows, std::size_t row0, std::size_t rows, std::size_t n) {
  std::vector<double> mu(rows, std::numeric_limits<double>::quiet_NaN());
  for (std::size_t r = 0; r < rows; ++r) {
    double r1 = INFINITY, r2 = INFINITY;
    for (std::size_t j = 0; j < n; ++j) {
      if (j == row0 + r) continue;
      const double v = sqdist_rows[r * n + j];
      if (v < r1) {
        r2 = r1;
        r1 = v;
      } else if (v < r2) {
        r2 = v;
      }
    }
    if (r1 > 0 && std::isfinite(r2)) mu[r] = std::sqrt(r2 / r1);
  }
  return mu;
}

std::vector<double> twonn_ratios(const double* sqdist_rows, std::size_t row0, std::size_t rows, std::size_t n,
                                 std::size_t* duplicates) {
  std::vector<double> mu;
  for (const double m : twonn_ratio_rows(sqdist_rows, row0, rows, n)) {
    if (std::isnan(m)) {
      if (duplicates) ++*duplicates;
      continue;
    }
    mu.push_back(m);
  }
  return mu;
}

double twonn_fit(std::vector<double> mu, double discard) {
  if (mu.size() < 3) throw InputError("TwoNN needs at least 3 distinct points, got " + std::to_string(mu.size()));
  std::sort(mu.begin(), mu.end());
  const double n = static_cast<double>(mu.size());
  // The last point's empirical CDF is 1 (log 0): it is never kept.
  const auto keep = std::min(mu.size() - 1, static_cast<std::size_t>(std::floor(n * (1 - discard))));
  double sxy = 0, sxx = 0;
  for (std::size_t i = 0; i < keep; ++i) {
    const double x = std::log(mu[i]);
    const double y = -std::log(1 - static_cast<double>(i + 1) / n);
    sxy += x * y;
    sxx += x * x;
  }
  if (!(sxx > 0)) throw InputError("TwoNN: all neighbour-distance ratios are 1 (a lattice or duplicated points)");
  return sxy / sxx;
}

}  // namespace lmtopo::geometry
