// src/stats on constructed inputs with known answers (the numpy/scipy cross-checks of the whole
// stage are in tests/python/test_aggregate.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "stats/correlation.hpp"
#include "stats/depth_curves.hpp"
#include "stats/phases.hpp"
#include "stats/pruning.hpp"

using namespace lmtopo::stats;

TEST(DepthCurves, LayersLandOnTheirDepthsAndBetweenIsLinear) {
  const std::vector<double> curve{0, 10, 4};  // layers at depths 0, 0.5, 1
  const auto grid = depth_grid(5);
  EXPECT_EQ(grid, (std::vector<double>{0, 0.25, 0.5, 0.75, 1}));
  EXPECT_EQ(resample_to_depth(curve, grid), (std::vector<double>{0, 5, 10, 7, 4}));
  EXPECT_THROW(resample_to_depth({1.0}, grid), std::invalid_argument);
  EXPECT_THROW(depth_grid(1), std::invalid_argument);
}

TEST(Correlation, PearsonSpearmanAndTies) {
  EXPECT_DOUBLE_EQ(pearson({1, 2, 3}, {2, 4, 6}), 1.0);
  EXPECT_DOUBLE_EQ(pearson({1, 2, 3}, {3, 2, 1}), -1.0);
  EXPECT_TRUE(std::isnan(pearson({1, 1, 1}, {1, 2, 3})));
  EXPECT_EQ(average_ranks({10, 20, 10, 5}), (std::vector<double>{2.5, 4, 2.5, 1}));
  EXPECT_DOUBLE_EQ(spearman({1, 2, 3, 4}, {1, 4, 9, 16}), 1.0);  // monotone, not linear
  EXPECT_DOUBLE_EQ(quantile({4, 1, 3, 2}, 0.5), 2.5);
}

TEST(Correlation, BootstrapOfIdenticalReplicatesIsOne) {
  const std::vector<double> rows{0, 1, 3, 1, 0, 1, 3, 1};  // two identical replicates of one curve
  const auto ci = bootstrap_pearson(rows, 2, rows, 2, 50, 0.95, 3);
  EXPECT_DOUBLE_EQ(ci.low, 1.0);
  EXPECT_DOUBLE_EQ(ci.high, 1.0);
}

TEST(Correlation, LayerShuffleNullOfAPeakedCurve) {
  std::vector<double> peaked;
  for (int l = 0; l < 15; ++l) peaked.push_back(-std::abs(l - 9.0));
  const auto grid = depth_grid(29);
  const auto on_grid = resample_to_depth(peaked, grid);
  EXPECT_LT(layer_shuffle_p_value(on_grid, peaked, grid, pearson(on_grid, on_grid), 400, 1), 0.01);
  EXPECT_DOUBLE_EQ(layer_shuffle_p_value(on_grid, peaked, grid, -1.0, 50, 1), 1.0);  // every draw is >= -1
}

TEST(Phases, ArgmaxBandsAndSettling) {
  const Phase p = phase_of({0.1, 0.5, 0.95, 1.0, 0.92, 0.3, 0.99}, {0.9});
  EXPECT_EQ(p.argmax_layer, 3);
  EXPECT_DOUBLE_EQ(p.argmax_depth, 0.5);
  ASSERT_EQ(p.bands.size(), 1u);
  EXPECT_EQ(p.bands[0].layers, (std::vector<int>{2, 3, 4}));  // layer 6 > L-2 is never a candidate
  EXPECT_DOUBLE_EQ(p.bands[0].first_depth, 2.0 / 6);
  EXPECT_EQ(settled_from({2, 9, 3, 7, 8, 7}, 1), 3u);
  EXPECT_EQ(settled_from({5}, 1), 0u);
  EXPECT_EQ(settled_from({1, 2, 3}, 0), 2u);
}

TEST(Pruning, AngularDistanceTakesTheClosestSpanFirstOnTies) {
  // 5 points: d(l, l+2) = 0.5, 0.2, 0.2 for l = 0, 1, 2 -> blocks 1, 2 (the first of the tie).
  std::vector<double> d(25, 1.0);
  d[0 * 5 + 2] = 0.5;
  d[1 * 5 + 3] = 0.2;
  d[2 * 5 + 4] = 0.2;
  EXPECT_EQ(angular_distance_blocks(d, 5, 2), (std::vector<int>{1, 2}));
  EXPECT_EQ(angular_distance_blocks(d, 5, 0), std::vector<int>{});
  EXPECT_EQ(angular_distance_blocks(d, 5, 5), std::vector<int>{});
  EXPECT_THROW(angular_distance_blocks(d, 4, 1), std::invalid_argument);
}

TEST(Pruning, BlockInfluenceTakesTheLeastInfluentialAndRandomIsDistinct) {
  EXPECT_EQ(block_influence_blocks({0.3, 0.1, 0.2, 0.1}, 2), (std::vector<int>{1, 3}));
  EXPECT_EQ(block_influence_blocks({0.3, 0.1}, 5), (std::vector<int>{0, 1}));
  const auto r = random_blocks(30, 8, 7);
  EXPECT_EQ(r.size(), 8u);
  EXPECT_TRUE(std::is_sorted(r.begin(), r.end()) && std::adjacent_find(r.begin(), r.end()) == r.end());
  EXPECT_EQ(r, random_blocks(30, 8, 7));
  EXPECT_NE(r, random_blocks(30, 8, 8));
  EXPECT_LT(r.back(), 30);
}

TEST(DepthCurves, LayerPairMatricesAreBilinearAndBandsStopAtTheLastLayer) {
  const std::vector<double> m{0, 1, 2, 3};  // L = 2: rows are l1, columns l2
  EXPECT_DOUBLE_EQ(matrix_at_depth(m, 2, 0.5, 0.5), 1.5);
  EXPECT_DOUBLE_EQ(matrix_at_depth(m, 2, 1.0, 0.0), 2.0);
  EXPECT_EQ(resample_matrix_to_depth(m, 2, depth_grid(3)), (std::vector<double>{0, 0.5, 1, 1, 1.5, 2, 2, 2.5, 3}));
  const auto band = band_at_offset(m, 2, depth_grid(3), 0.5);  // (0, 0.5), (0.5, 1), (1, 1.5)
  EXPECT_DOUBLE_EQ(band[0], 0.5);
  EXPECT_DOUBLE_EQ(band[1], 2.0);
  EXPECT_TRUE(std::isnan(band[2]));
  EXPECT_THROW(matrix_at_depth({1, 2, 3}, 2, 0, 0), std::invalid_argument);
}
