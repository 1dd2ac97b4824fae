#include "topology/knn.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace lmtopo::topology {

Metric metric_from_name(const std::string& name) {
  if (name == "euclidean") return Metric::euclidean;
  if (name == "cosine") return Metric::cosine;
  throw std::invalid_argument("unknown metric '" + name + "' (expected euclidean or cosine)");
}

std::vector<std::vector<std::uint32_t>> knn_lists(const float* points, std::size_t n, std::size_t dim, std::size_t k,
                                                  Metric metric, std::size_t block_rows) {
  if (k >= n) throw std::invalid_argument("k = " + std::to_string(k) + " needs more than " + std::to_string(n) + " points");
  // Rows in double, normalised for cosine; norms for the Euclidean expansion |x|^2 + |y|^2 - 2 x.y.
  std::vector<double> x(n * dim);
  std::vector<double> sq(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    double s = 0;
    for (std::size_t j = 0; j < dim; ++j) {
      const double v = points[i * dim + j];
      if (!std::isfinite(v)) throw std::invalid_argument("point " + std::to_string(i) + " has a non-finite coordinate");
      x[i * dim + j] = v;
      s += v * v;
    }
    if (metric == Metric::cosine && s > 0) {
      const double inv = 1.0 / std::sqrt(s);
      for (std::size_t j = 0; j < dim; ++j) x[i * dim + j] *= inv;
      s = 1.0;
    }
    sq[i] = s;
  }
  std::vector<std::vector<std::uint32_t>> out(n);
  const std::size_t b = std::max<std::size_t>(1, block_rows);
  std::vector<double> gram(b * n);
  std::vector<std::pair<double, std::uint32_t>> row(n);
  for (std::size_t r0 = 0; r0 < n; r0 += b) {
    const std::size_t rows = std::min(b, n - r0);
    // gram[rows x n] = X[r0:r0+rows] * X^T
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(n),
                static_cast<int>(dim), 1.0, x.data() + r0 * dim, static_cast<int>(dim), x.data(), static_cast<int>(dim),
                0.0, gram.data(), static_cast<int>(n));
    for (std::size_t i = 0; i < rows; ++i) {
      const std::size_t p = r0 + i;
      std::size_t m = 0;
      for (std::size_t q = 0; q < n; ++q) {
        if (q == p) continue;
        const double g = gram[i * n + q];
        double d = metric == Metric::cosine ? ((sq[p] > 0 && sq[q] > 0) ? 1.0 - g : 1.0) : sq[p] + sq[q] - 2.0 * g;
        if (d < 0) d = 0;  // rounding of the expansion
        row[m++] = {d, static_cast<std::uint32_t>(q)};
      }
      std::partial_sort(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(k), row.begin() + static_cast<std::ptrdiff_t>(m));
      auto& nb = out[p];
      nb.resize(k);
      for (std::size_t t = 0; t < k; ++t) nb[t] = row[t].second;
    }
  }
  return out;
}

std::vector<std::vector<std::uint32_t>> symmetrize_or(const std::vector<std::vector<std::uint32_t>>& directed) {
  std::vector<std::vector<std::uint32_t>> out(directed.size());
  for (std::size_t i = 0; i < directed.size(); ++i)
    for (auto j : directed[i]) {
      out[i].push_back(j);
      out[j].push_back(static_cast<std::uint32_t>(i));
    }
  for (auto& nb : out) {
    std::sort(nb.begin(), nb.end());
    nb.erase(std::unique(nb.begin(), nb.end()), nb.end());
  }
  return out;
}

}  // namespace lmtopo::topology
