// neurons/key_linguistic: the exact split of the mean pairwise cosine over units, z-scores at their
// bounds, and the seeded unit draws. (The stage is checked against numpy and transformers in
// tests/model/test_neurons.py.)
#include "neurons/key_linguistic.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>

namespace lmtopo::neurons {
namespace {

// Mean cosine over pairs s != t by the definition (double, one pair at a time).
double mean_pairwise_cosine(const std::vector<float>& v, const std::vector<int>& lang, int which, std::int64_t units) {
  double sum = 0;
  long long pairs = 0;
  for (std::size_t s = 0; s < lang.size(); ++s)
    for (std::size_t t = 0; t < lang.size(); ++t) {
      if (s == t || lang[s] != which || lang[t] != which) continue;
      double dot = 0, ns = 0, nt = 0;
      for (std::int64_t u = 0; u < units; ++u) {
        const double a = v[s * static_cast<std::size_t>(units) + static_cast<std::size_t>(u)], b = v[t * static_cast<std::size_t>(units) + static_cast<std::size_t>(u)];
        dot += a * b;
        ns += a * a;
        nt += b * b;
      }
      sum += dot / std::sqrt(ns * nt);
      ++pairs;
    }
  return sum / static_cast<double>(pairs);
}

TEST(KeyLinguistic, SharesSplitTheMeanPairwiseCosineExactly) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> pos(0.1f, 1.0f);
  const std::int64_t units = 7;
  const std::vector<int> lang = {0, 1, 2, 0, 1, 2, 0, 1, 0};
  std::vector<float> v(lang.size() * units);
  for (auto& x : v) x = pos(rng);
  const auto s = cosine_shares(v.data(), static_cast<std::int64_t>(lang.size()), units, lang, 3);
  for (int l = 0; l < 3; ++l) {
    EXPECT_NEAR(s.mean_cosine[static_cast<std::size_t>(l)], mean_pairwise_cosine(v, lang, l, units), 1e-12);
    const double total = std::accumulate(s.share.begin() + l * units, s.share.begin() + (l + 1) * units, 0.0);
    EXPECT_NEAR(total, 1.0, 1e-12);
  }
}

TEST(KeyLinguistic, AUnitOfOneLanguageOnlyHasTheLargestPossibleZ) {
  // Unit 0 is non-zero only for language 1 of 4: z = sqrt(3) there, -1/sqrt(3) elsewhere.
  const std::int64_t units = 3;
  const std::vector<int> lang = {0, 0, 1, 1, 2, 2, 3, 3};
  std::vector<float> v = {0, 1, 1, 0, 1, 2, 5, 1, 1, 4, 2, 1, 0, 1, 3, 0, 2, 1, 0, 3, 1, 0, 1, 1};
  const auto s = cosine_shares(v.data(), 8, units, lang, 4);
  const auto z = zscores_across_languages(s);
  EXPECT_NEAR(z[1 * units + 0], std::sqrt(3.0), 1e-9);
  for (int l : {0, 2, 3}) EXPECT_NEAR(z[static_cast<std::size_t>(l * units)], -1 / std::sqrt(3.0), 1e-9);
  const auto keys = key_units(z, 4, units, 1.5);
  EXPECT_EQ(keys[1].front(), 0);
  for (int l : {0, 2, 3}) EXPECT_TRUE(keys[static_cast<std::size_t>(l)].empty() || keys[static_cast<std::size_t>(l)].front() != 0);
}

TEST(KeyLinguistic, RefusesWhatHasNoCosine) {
  const std::vector<float> one = {1, 2, 3, 4};
  EXPECT_THROW(cosine_shares(one.data(), 2, 2, {0, 1}, 2), std::invalid_argument);  // one sentence a language
  const std::vector<float> zero = {0, 0, 1, 1, 1, 2, 2, 1};
  EXPECT_THROW(cosine_shares(zero.data(), 4, 2, {0, 0, 1, 1}, 2), std::invalid_argument);  // a zero vector
}

TEST(KeyLinguistic, RandomUnitsAreDistinctSortedAndSeeded) {
  const auto a = random_units(100, 30, 7), b = random_units(100, 30, 7), c = random_units(100, 30, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(std::set<std::int64_t>(a.begin(), a.end()).size(), 30u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()) && a.front() >= 0 && a.back() < 100);
  EXPECT_EQ(random_units(5, 5, 1), std::vector<std::int64_t>({0, 1, 2, 3, 4}));
  EXPECT_THROW(random_units(5, 6, 1), std::invalid_argument);
}

TEST(KeyLinguistic, AblationDeltasByHand) {
  // 2 languages, base perplexities 10 and 20; two control draws.
  const auto d = ablation_deltas({10, 20}, {12, 21, 10, 25}, {11, 20, 10, 22, 13, 22, 10, 24}, 2);
  EXPECT_EQ(d.delta, std::vector<double>({2, 1, 0, 5}));
  EXPECT_EQ(d.control_mean, std::vector<double>({2, 1, 0, 3}));
  for (std::size_t i : {0u, 1u, 3u}) EXPECT_NEAR(d.control_sd[i], std::sqrt(2.0), 1e-12);
  EXPECT_EQ(d.control_sd[2], 0.0);
  EXPECT_EQ(ablation_deltas({10, 20}, {12, 21, 10, 25}, {11, 20, 10, 22}, 1).control_sd, std::vector<double>(4, 0.0));
  EXPECT_THROW(ablation_deltas({10, 20}, {12, 21, 10}, {}, 0), std::invalid_argument);
}

}  // namespace
}  // namespace lmtopo::neurons
