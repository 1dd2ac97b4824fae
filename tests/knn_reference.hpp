// The k-NN tests' reference (tests/unit/knn_test.cpp, tests/cuda/knn_cuda_test.cpp): the k nearest
// points of one point by brute force in long double, every distance, ties by the smaller index.
// Independent of topology/knn.cpp: no Gram matrix, no filter, another precision.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "topology/knn.hpp"

namespace lmtopo::testing {

inline std::vector<std::uint32_t> knn_brute_force_row(const std::vector<float>& x, std::size_t n, std::size_t dim,
                                                       std::size_t k, topology::Metric metric, std::size_t p) {
  auto norm = [&](std::size_t i) {
    long double s = 0;
    for (std::size_t j = 0; j < dim; ++j) s += static_cast<long double>(x[i * dim + j]) * x[i * dim + j];
    return std::sqrt(s);
  };
  const long double np = norm(p);
  std::vector<std::pair<long double, std::uint32_t>> row;
  for (std::size_t q = 0; q < n; ++q) {
    if (q == p) continue;
    long double d = 0;
    if (metric == topology::Metric::cosine) {
      const long double nq = norm(q);
      if (np == 0 || nq == 0) {
        d = 1;
      } else {
        for (std::size_t j = 0; j < dim; ++j) d += static_cast<long double>(x[p * dim + j]) * x[q * dim + j];
        d = 1 - d / (np * nq);
      }
    } else {
      for (std::size_t j = 0; j < dim; ++j) {
        const long double t = static_cast<long double>(x[p * dim + j]) - x[q * dim + j];
        d += t * t;
      }
    }
    row.emplace_back(d, static_cast<std::uint32_t>(q));
  }
  std::partial_sort(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(k), row.end());
  std::vector<std::uint32_t> out;
  for (std::size_t t = 0; t < k; ++t) out.push_back(row[t].second);
  return out;
}

}  // namespace lmtopo::testing
