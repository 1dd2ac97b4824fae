// geometry/bootstrap on constructed inputs with known answers (the whole sweep's intervals against a
// numpy recomputation are in tests/python/test_sweep_bootstrap.py).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "geometry/bootstrap.hpp"

using namespace lmtopo::geometry;

TEST(Bootstrap, PercentilesInterpolateAsNumpy) {
  // numpy.percentile([5, 1, 4, 2, 3], [25, 75]) == [2, 4]; [5, 95] == [1.2, 4.8]
  const auto half = percentile_interval({5, 1, 4, 2, 3}, 0.5);
  EXPECT_DOUBLE_EQ(half[0], 2);
  EXPECT_DOUBLE_EQ(half[1], 4);
  const auto ninety = percentile_interval({5, 1, 4, 2, 3}, 0.9);
  EXPECT_NEAR(ninety[0], 1.2, 1e-12);
  EXPECT_NEAR(ninety[1], 4.8, 1e-12);
  EXPECT_TRUE(std::isnan(percentile_interval({1, NAN, 3}, 0.9)[0]));
}

TEST(Bootstrap, DrawsAreTheStandardGeneratorModuloUnits) {
  const BootstrapDraws d(7, 3, 42);
  std::mt19937_64 rng(42);
  for (std::size_t b = 0; b < 3; ++b)
    for (std::size_t k = 0; k < 7; ++k) EXPECT_EQ(d.draw(b)[k], rng() % 7);
  double total = 0;
  for (double w : d.multiplicities(1)) total += w;
  EXPECT_EQ(total, 7);
}

TEST(Bootstrap, UnitMultiplicitiesGiveTheFullSetsLrdsAndSads) {
  // Two languages x three sentences: the cosine matrix written down by hand; with every sentence
  // drawn once the weighted sums are the plain ones.
  const std::size_t G = 3, L = 2, n = G * L;
  std::vector<double> s(n * n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) s[i * n + j] = i == j ? 1.0 : 0.1 * static_cast<double>((i + 2 * j) % 5);
  SentencePairSums sums{G, L, std::vector<double>(G * G), std::vector<double>(G * G)};
  add_sentence_pair_sums(s.data(), 0, n, sums);
  double same = 0, trans = 0, other = 0;
  int ns = 0, nt = 0, no = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      const bool same_lang = i / G == j / G, same_sentence = i % G == j % G;
      if (same_lang) same += s[i * n + j], ++ns;
      else if (same_sentence) trans += s[i * n + j], ++nt;
      else other += s[i * n + j], ++no;
    }
  const auto v = resampled_lrds_sads(sums, std::vector<double>(G, 1.0));
  EXPECT_NEAR(v[0], same / ns - other / no, 1e-14);
  EXPECT_NEAR(v[1], trans / nt - other / no, 1e-14);
  // one sentence drawn three times: no pair of different sentences, undefined
  EXPECT_TRUE(std::isnan(resampled_lrds_sads(sums, {3, 0, 0})[0]));
}
