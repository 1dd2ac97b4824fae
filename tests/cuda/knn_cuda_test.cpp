// The k-NN with its filtering GEMM on the GPU (topology/knn_cuda.hpp) against a brute-force long
// double reference (ties by index), on random clouds, a large common offset and duplicates; then one
// layer at paper 1's size (10,000 x 4,096, k = 10) with its time, checked on sampled rows. Exits 77
// (ctest: skipped, reason printed) where no GPU is visible, as on CI; run on a lent GPU machine.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "../knn_reference.hpp"
#include "geometry/distances_cuda.hpp"
#include "topology/knn_cuda.hpp"

using namespace lmtopo::topology;

namespace {

int check(const char* name, const std::vector<float>& x, std::size_t n, std::size_t dim, std::size_t k, Metric metric,
          std::size_t sampled_rows = 0, std::size_t threads = 1) {
  KnnStats stats;
  KnnOptions o;
  o.metric = metric;
  o.threads = threads;
  o.stats = &stats;
  const auto t0 = std::chrono::steady_clock::now();
  const auto got = knn_lists_cuda(x.data(), n, dim, k, o);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::size_t wrong = 0, checked = 0;
  std::mt19937 rng(1);
  for (std::size_t i = 0; i < (sampled_rows ? sampled_rows : n); ++i) {
    const std::size_t p = sampled_rows ? rng() % n : i;
    wrong += got[p] != lmtopo::testing::knn_brute_force_row(x, n, dim, k, metric, p);
    ++checked;
  }
  std::printf("%-34s n=%zu dim=%zu k=%zu %s, %zu thread(s): %.3f s (GEMM + copies %.3f s, bounds + exact %.3f s), "
              "%.1f candidates/point; %zu of %zu rows checked differ\n",
              name, n, dim, k, metric == Metric::cosine ? "cosine" : "euclidean", threads, secs, stats.gemm_seconds,
              stats.select_seconds, static_cast<double>(stats.candidates) / static_cast<double>(n), wrong, checked);
  return wrong ? 1 : 0;
}

}  // namespace

int main() {
  std::string why;
  if (lmtopo::geometry::cuda_device_count(&why) == 0) {
    std::printf("SKIPPED: no CUDA device (%s)\n", why.c_str());
    return 77;
  }
  int failures = 0, cases = 0;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (auto [n, dim] : {std::pair<std::size_t, std::size_t>{50, 3}, {700, 37}, {2000, 300}}) {
    std::vector<float> x(n * dim);
    for (auto& v : x) v = normal(rng);
    for (auto metric : {Metric::euclidean, Metric::cosine}) {
      failures += check("random", x, n, dim, 5, metric);
      ++cases;
    }
  }
  {
    const std::size_t n = 400, dim = 64;
    std::vector<float> x(n * dim);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < dim; ++j) x[i * dim + j] = 1e4f + 1e-2f * normal(rng);
    failures += check("common offset 1e4, spread 1e-2", x, n, dim, 6, Metric::euclidean);
    ++cases;
  }
  {
    const std::size_t distinct = 100, copies = 5, dim = 20, n = distinct * copies;
    std::vector<float> base(distinct * dim), x(n * dim);
    for (auto& v : base) v = normal(rng);
    for (std::size_t i = 0; i < n; ++i)
      std::copy_n(base.begin() + static_cast<std::ptrdiff_t>((i % distinct) * dim), dim, x.begin() + static_cast<std::ptrdiff_t>(i * dim));
    failures += check("duplicates (ties by index)", x, n, dim, 7, Metric::euclidean);
    ++cases;
  }
  {
    // One layer at paper 1's size: a drifting random cloud, 10,000 x 4,096, k = 10.
    const std::size_t n = 10000, dim = 4096;
    std::vector<float> x(n * dim);
    for (auto& v : x) v = normal(rng);
    for (std::size_t threads : {std::size_t{1}, std::size_t{8}}) {
      failures += check("paper size (20 sampled rows)", x, n, dim, 10, Metric::euclidean, 20, threads);
      ++cases;
    }
  }
  std::printf("%d passed, %d failed\n", cases - failures, failures);
  return failures ? 1 : 0;
}
