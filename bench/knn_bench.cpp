// Exact k-NN of one layer: the float64 filter (dgemm; the baseline, the k-NN before 2026-11-26 was
// a dgemm of every distance) against the mixed-precision filter (sgemm), same points, same process;
// checks that both give the same neighbours and prints the ratio. Points: a random cloud with a
// common offset (as hidden states have), so centring matters.
//   bench_knn N DIM K [REPEATS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "topology/knn.hpp"

using namespace lmtopo::topology;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: bench_knn N DIM K [REPEATS]\n");
    return 2;
  }
  const std::size_t n = std::strtoul(argv[1], nullptr, 10), dim = std::strtoul(argv[2], nullptr, 10),
                    k = std::strtoul(argv[3], nullptr, 10);
  const int repeats = argc > 4 ? std::atoi(argv[4]) : 1;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> offset(dim), x(n * dim);
  for (auto& v : offset) v = 3.0f * normal(rng);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < dim; ++j) x[i * dim + j] = offset[j] + normal(rng);
  std::vector<std::vector<std::uint32_t>> first;
  double best[2] = {1e300, 1e300};
  KnnStats last[2];
  for (int r = 0; r < repeats; ++r)
    for (int which = 0; which < 2; ++which) {
      KnnStats stats;
      KnnOptions o;
      o.precision = which == 0 ? KnnPrecision::float64 : KnnPrecision::mixed;
      o.stats = &stats;
      const auto t0 = std::chrono::steady_clock::now();
      auto lists = knn_lists(x.data(), n, dim, k, o);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (secs < best[which]) best[which] = secs;
      last[which] = stats;
      if (first.empty()) {
        first = std::move(lists);
      } else if (lists != first) {
        std::fprintf(stderr, "bench_knn: %s gave other neighbours than float64\n", knn_precision_name(o.precision));
        return 1;
      }
    }
  for (int which = 0; which < 2; ++which)
    std::printf("knn %-8s n=%zu dim=%zu k=%zu: %.3f s (GEMM %.3f s, bounds + exact %.3f s), %.2f candidates/point\n",
                which == 0 ? "float64" : "mixed", n, dim, k, best[which], last[which].gemm_seconds,
                last[which].select_seconds, static_cast<double>(last[which].candidates) / static_cast<double>(n));
  std::printf("mixed / float64 speed-up: %.2fx (identical neighbours)\n", best[0] / best[1]);
  return 0;
}
