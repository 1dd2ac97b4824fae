// Layer summaries on a barcode small enough to count by hand.
#include <gtest/gtest.h>

#include "topology/layer_summaries.hpp"

using namespace lmtopo::topology;

TEST(LayerSummaries, EffectiveLayerOfPositions) {
  // positions 1..2L: layer 0, (0∩1), 1, (1∩2), 2, ..., 2L = after the end.
  EXPECT_EQ(effective_layer(1), 0);
  EXPECT_EQ(effective_layer(2), 1);
  EXPECT_EQ(effective_layer(3), 1);
  EXPECT_EQ(effective_layer(4), 2);
  EXPECT_EQ(effective_layer(6), 3);
}

TEST(LayerSummaries, HandCountedThreeLayers) {
  // L = 3, positions 1..5, death 6 = alive to the end.
  const std::vector<PositionBar> bars{
      {1, 1, 6},  // layers [0, 3): alive everywhere
      {1, 1, 3},  // [0, 1)
      {1, 3, 6},  // [1, 3)
      {1, 2, 3},  // [1, 1): dropped (equal effective birth and death)
      {0, 1, 6},  // other dimension: ignored
  };
  const auto lb = to_layer_bars(bars, 3, 1);
  ASSERT_EQ(lb.size(), 3u);
  const auto s = summarize_layers(lb, 3, 1);
  EXPECT_EQ(s.betti, (std::vector<long>{2, 2, 2}));
  // PHSim(0,1) = bars alive at 0 and 1 = only the first; PHSim(1,2) = first + third.
  EXPECT_EQ(s.phsim, (std::vector<long>{2, 1, 1, 1, 2, 2, 1, 2, 2}));
  EXPECT_EQ(s.image[3 * 4 + 0], 1);  // death 3, birth 0
  EXPECT_EQ(s.image[1 * 4 + 0], 1);
  EXPECT_EQ(s.image[3 * 4 + 1], 1);
  // S̄(0) = (2/2 + 1/2 + 1/2)/3
  EXPECT_DOUBLE_EQ(s.avg_similarity[0], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.avg_similarity[1], (0.5 + 1 + 1) / 3.0);
  // Z̄_0(0) = (1 + 0.5 + 0.5)/3; Z̄_1(0) = (1*0.5 + 2*0.5)/3
  EXPECT_DOUBLE_EQ(s.inter_layer[1 * 3 + 0], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.inter_layer[3 * 3 + 0], 0.5);
  EXPECT_DOUBLE_EQ(s.births_by_birth[0], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.births_by_death[3], 2.0 / 3.0);
}

TEST(LayerSummaries, PruningIsAThresholdNotAShareAndSparesTheLastLayers) {
  const std::vector<double> score{0.1, 0.5, 0.95, 1.0, 0.92, 0.99, 1.0};
  EXPECT_EQ(pruning_candidates(score, 0.9), (std::vector<int>{2, 3, 4, 5}));
  EXPECT_EQ(pruning_candidates(score, 0.5), (std::vector<int>{1, 2, 3, 4, 5}));
}

TEST(LayerSummaries, RejectsPositionsOutsideTheZigzag) {
  EXPECT_THROW(to_layer_bars({{1, 0, 3}}, 3, 1), std::invalid_argument);
  EXPECT_THROW(to_layer_bars({{1, 2, 7}}, 3, 1), std::invalid_argument);
}
