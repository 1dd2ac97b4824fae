// neurons/repetition: the periodic n-gram scan on constructed texts (earliest start, smallest spacing,
// overlapping occurrences, the window), the activation rise by its definition, top-K order and ties,
// and the repetition rate. (The stage is checked against transformers and a brute-force Python scan in
// tests/model/test_repetition.py.)
#include "neurons/repetition.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

namespace lmtopo::neurons {
namespace {

std::vector<std::int64_t> text(std::initializer_list<std::int64_t> head, const std::vector<std::int64_t>& loop, int times) {
  std::vector<std::int64_t> t(head);
  for (int i = 0; i < times; ++i) t.insert(t.end(), loop.begin(), loop.end());
  return t;
}

TEST(Repetition, FindsTheLoopStartAndItsPeriod) {
  // 5 distinct tokens, then a loop of period 4 repeated 4 times.
  const auto t = text({90, 91, 92, 93, 94}, {1, 2, 3, 4}, 4);
  const auto r = find_repetition(t, {3, 3, 100});
  ASSERT_TRUE(r.found);
  EXPECT_EQ(r.first, 5);
  EXPECT_EQ(r.second, 9);
  EXPECT_EQ(r.period, 4);
  EXPECT_EQ(r.occurrences, 4);  // 5, 9, 13, 17: the last 3-gram fits at 17..19
}

TEST(Repetition, OverlappingOccurrencesOfAShortLoopCount) {
  // One token repeated: the 3-gram at p, p+1, p+2 overlaps itself (period 1).
  const auto t = text({7, 8}, {5}, 6);
  const auto r = find_repetition(t, {3, 3, 100});
  ASSERT_TRUE(r.found);
  EXPECT_EQ(r.first, 2);
  EXPECT_EQ(r.second, 3);
  EXPECT_EQ(r.period, 1);
}

TEST(Repetition, AllOccurrencesMustFitTheWindow) {
  // Period 10, 3-grams: 3 occurrences span 2*10 + 3 = 23 tokens.
  std::vector<std::int64_t> loop{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  const auto t = text({}, loop, 3);
  EXPECT_FALSE(find_repetition(t, {3, 3, 22}).found);
  EXPECT_TRUE(find_repetition(t, {3, 3, 23}).found);
  EXPECT_FALSE(find_repetition(t, {3, 4, 100}).found);  // a 4th occurrence needs 40 tokens
}

TEST(Repetition, TwoOccurrencesAreNotThree) {
  const auto t = text({9, 9, 8}, {1, 2, 3, 4, 5}, 2);
  EXPECT_FALSE(find_repetition(t, {3, 3, 100}).found);
  EXPECT_TRUE(find_repetition(t, {3, 2, 100}).found);
  EXPECT_THROW(find_repetition(t, {3, 1, 100}), std::invalid_argument);
}

TEST(Repetition, RiseIsTheMeanAfterMinusTheMeanBefore) {
  // 2 units over 8 tokens: unit 0 = position, unit 1 = 1 only at positions 4 and 6.
  std::vector<float> acts(16, 0.0f);
  for (int t = 0; t < 8; ++t) acts[t * 2] = static_cast<float>(t);
  acts[4 * 2 + 1] = acts[6 * 2 + 1] = 1.0f;
  const auto r = activation_rise(acts.data(), 8, 2, 4, 3);  // after 4,5,6 vs before 1,2,3
  EXPECT_DOUBLE_EQ(r[0], 5.0 - 2.0);
  EXPECT_DOUBLE_EQ(r[1], 2.0 / 3.0);
  EXPECT_THROW(activation_rise(acts.data(), 8, 2, 2, 3), std::invalid_argument);
  EXPECT_THROW(activation_rise(acts.data(), 8, 2, 6, 3), std::invalid_argument);
}

TEST(Repetition, TopKLargestFirstTiesByIndex) {
  const std::vector<double> v{0.5, 2.0, -1.0, 2.0, 0.7};
  EXPECT_EQ(top_k(v, 3), (std::vector<std::int64_t>{1, 3, 4}));
  EXPECT_EQ(top_k(v, 0), std::vector<std::int64_t>{});
  EXPECT_THROW(top_k(v, 6), std::invalid_argument);
}

TEST(Repetition, RateAndMeanSecondOccurrence) {
  std::vector<Repetition> found(4);
  found[1] = {true, 3, 10, 7, 3};
  found[3] = {true, 2, 20, 18, 3};
  const auto r = repetition_rate(found);
  EXPECT_EQ(r.repeated, 2u);
  EXPECT_DOUBLE_EQ(r.rate, 0.5);
  EXPECT_DOUBLE_EQ(r.mean_second, 15.0);
  EXPECT_TRUE(std::isnan(repetition_rate(std::vector<Repetition>(2)).mean_second));
}

}  // namespace
}  // namespace lmtopo::neurons
