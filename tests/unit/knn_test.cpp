// The filter-and-refine k-NN (topology/knn.hpp) against a brute-force reference in long double
// (every distance, ties by index), on inputs chosen to defeat a float32 filter: a large common offset,
// distances that differ only beyond float32 precision, exact duplicates, zero vectors (cosine),
// magnitudes whose float32 products would overflow or underflow, and dimensions that are not
// multiples of the unrolling.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "../knn_reference.hpp"
#include "topology/knn.hpp"

namespace lmtopo::topology {
namespace {

void expect_exact(const std::vector<float>& x, std::size_t n, std::size_t dim, std::size_t k, Metric metric,
                  double max_candidates_per_point = 0) {
  std::vector<std::vector<std::uint32_t>> want(n);
  for (std::size_t p = 0; p < n; ++p) want[p] = testing::knn_brute_force_row(x, n, dim, k, metric, p);
  for (auto precision : {KnnPrecision::mixed, KnnPrecision::float64}) {
    for (std::size_t block : {std::size_t{7}, std::size_t{1024}}) {
      KnnStats stats;
      KnnOptions o;
      o.metric = metric;
      o.precision = precision;
      o.block_rows = block;
      o.threads = block == 7 ? 1 : 3;  // small blocks serial, large ones split over threads
      o.stats = &stats;
      const auto got = knn_lists(x.data(), n, dim, k, o);
      ASSERT_EQ(got, want) << knn_precision_name(precision) << " block " << block;
      EXPECT_EQ(stats.rows, n);
      EXPECT_GE(stats.candidates, n * k);
      if (max_candidates_per_point > 0) {
        EXPECT_LE(static_cast<double>(stats.candidates) / static_cast<double>(n), max_candidates_per_point)
            << knn_precision_name(precision) << ": the filter lets too much through";
      }
    }
  }
}

TEST(Knn, RandomCloudsBothMetricsAndTheFilterIsTight) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (auto [n, dim] : {std::pair<std::size_t, std::size_t>{2, 1}, {40, 3}, {300, 37}, {500, 256}}) {
    std::vector<float> x(n * dim);
    for (auto& v : x) v = normal(rng);
    for (std::size_t k : {std::size_t{1}, std::size_t{5}}) {
      if (k >= n) continue;
      expect_exact(x, n, dim, k, Metric::euclidean, n >= 300 ? 3.0 * static_cast<double>(k) + 2 : 0);
      expect_exact(x, n, dim, k, Metric::cosine, n >= 300 ? 3.0 * static_cast<double>(k) + 2 : 0);
    }
  }
}

TEST(Knn, LargeCommonOffsetIsCentredAway) {
  // |x| ~ 1e4, neighbour distances ~ 1e-2: without centring a float32 Gram could not tell them apart.
  std::mt19937 rng(11);
  std::normal_distribution<float> normal;
  const std::size_t n = 200, dim = 64;
  std::vector<float> x(n * dim);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < dim; ++j) x[i * dim + j] = 1e4f + (j % 2 ? 1.0f : -1.0f) * 5e3f + 1e-2f * normal(rng);
  expect_exact(x, n, dim, 6, Metric::euclidean);
}

TEST(Knn, DistancesThatDifferBeyondFloat32AreRankedExactly) {
  // Point 0 at the origin; points 1.. in random directions at radii 1 + (n - i) * 1e-7, within a few
  // float32 roundings of each other: the float32 filter cannot order them, the re-measurement must.
  const std::size_t n = 40, dim = 8;
  std::vector<float> x(n * dim, 0.0f);
  std::mt19937 rng(5);
  std::normal_distribution<double> normal;
  for (std::size_t i = 1; i < n; ++i) {
    std::vector<double> v(dim);
    double s = 0;
    for (auto& c : v) {
      c = normal(rng);
      s += c * c;
    }
    const double r = 1.0 + 1e-7 * static_cast<double>(n - i);
    for (std::size_t j = 0; j < dim; ++j) x[i * dim + j] = static_cast<float>(v[j] / std::sqrt(s) * r);
  }
  expect_exact(x, n, dim, 10, Metric::euclidean);
}

TEST(Knn, DuplicatesTieByIndex) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  const std::size_t distinct = 30, copies = 4, dim = 10, n = distinct * copies;
  std::vector<float> base(distinct * dim);
  for (auto& v : base) v = normal(rng);
  std::vector<float> x(n * dim);
  for (std::size_t i = 0; i < n; ++i)  // copies interleaved, so equal points have scattered indices
    std::copy_n(base.begin() + static_cast<std::ptrdiff_t>((i % distinct) * dim), dim, x.begin() + static_cast<std::ptrdiff_t>(i * dim));
  expect_exact(x, n, dim, 5, Metric::euclidean);
  expect_exact(x, n, dim, 5, Metric::cosine);
}

TEST(Knn, CosineZeroVectorsAreAtDistanceOne) {
  std::mt19937 rng(9);
  std::normal_distribution<float> normal;
  const std::size_t n = 60, dim = 5;
  std::vector<float> x(n * dim);
  for (auto& v : x) v = normal(rng);
  for (std::size_t i : {0, 17, 18, 59}) std::fill_n(x.begin() + static_cast<std::ptrdiff_t>(i * dim), dim, 0.0f);
  expect_exact(x, n, dim, 4, Metric::cosine);
}

TEST(Knn, HugeAndTinyMagnitudesStayExactAndFiltered) {
  // Coordinates ~1e20 (float32 products would overflow) and ~1e-25 (they would underflow to zero):
  // the filter's power-of-two scaling keeps both exact, with the filter still tight.
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  const std::size_t n = 300, dim = 6;
  for (float magnitude : {1e20f, 1e-25f, 1e-38f}) {
    std::vector<float> x(n * dim);
    for (auto& v : x) v = magnitude * normal(rng);
    SCOPED_TRACE(magnitude);
    expect_exact(x, n, dim, 3, Metric::euclidean, magnitude > 1e-30f ? 3 * 3.0 + 2 : 0);
    expect_exact(x, n, dim, 3, Metric::cosine, magnitude > 1e-30f ? 3 * 3.0 + 2 : 0);
  }
}

TEST(Knn, BadInputsAreRefused) {
  std::vector<float> x(10 * 3, 1.0f);
  EXPECT_THROW(knn_lists(x.data(), 10, 3, 10), std::invalid_argument);
  x[7] = std::nanf("");
  try {
    knn_lists(x.data(), 10, 3, 2);
    FAIL() << "NaN accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("point 2"), std::string::npos) << e.what();
  }
  // Threaded preparation reports the first bad point too, whichever thread met it.
  x[8 * 3 + 1] = std::nanf("");
  KnnOptions threaded;
  threaded.threads = 3;
  try {
    knn_lists(x.data(), 10, 3, 2, threaded);
    FAIL() << "NaN accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("point 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(knn_precision_from_name("half"), std::invalid_argument);
}

}  // namespace
}  // namespace lmtopo::topology
