// The CUDA distance kernel against a double-precision CPU computation. Exits 77 (ctest: skipped,
// with the reason printed) where no GPU is visible, as on CI; run on a lent GPU machine.
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "geometry/distances_cuda.hpp"

int main() {
  std::string why;
  if (lmtopo::geometry::cuda_device_count(&why) == 0) {
    std::printf("SKIPPED: no CUDA device (%s)\n", why.c_str());
    return 77;
  }
  int failures = 0;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (auto [n, dim] : {std::pair<std::size_t, std::size_t>{1, 1}, {17, 5}, {100, 64}, {257, 300}}) {
    std::vector<float> x(n * dim);
    for (auto& v : x) v = normal(rng);
    const auto d = lmtopo::geometry::squared_distances_cuda(x.data(), n, dim);
    double worst = 0;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        double ref = 0;
        for (std::size_t k = 0; k < dim; ++k) {
          const double t = static_cast<double>(x[i * dim + k]) - x[j * dim + k];
          ref += t * t;
        }
        worst = std::max(worst, std::abs(ref - d[i * n + j]) / std::max(1.0, ref));
      }
    std::printf("n=%zu dim=%zu worst relative error %.3g\n", n, dim, worst);
    failures += worst > 1e-5;
  }
  std::printf("%d passed, %d failed\n", 4 - failures, failures);
  return failures ? 1 : 0;
}
