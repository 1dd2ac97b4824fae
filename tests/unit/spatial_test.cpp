// src/spatial on constructed sheets with known answers (the PySAL and scipy cross-checks are in
// tests/python/test_spatial.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "spatial/sheet.hpp"
#include "spatial/statistics.hpp"
#include "spatial/stimuli.hpp"

using namespace lmtopo::spatial;

TEST(Sheet, SeededPlacementIsAPermutationOfCells) {
  const Sheet s = seeded_sheet(50, 9);
  EXPECT_EQ(s.side, 8);
  EXPECT_EQ(std::set<int>(s.cell.begin(), s.cell.end()).size(), 50u);
  EXPECT_TRUE(std::all_of(s.cell.begin(), s.cell.end(), [](int c) { return c >= 0 && c < 64; }));
  EXPECT_EQ(s.cell, seeded_sheet(50, 9).cell);
  EXPECT_NE(s.cell, seeded_sheet(50, 10).cell);
  EXPECT_EQ(seeded_sheet(49, 1).side, 7);
}

TEST(Sheet, QueenNeighboursOfAFullGrid) {
  const Sheet s = seeded_sheet(9, 0);  // 3 x 3, all cells occupied
  const auto nb = queen_neighbours(s);
  for (int u = 0; u < 9; ++u) {
    const bool centre = s.row(u) == 1 && s.column(u) == 1, corner = s.row(u) != 1 && s.column(u) != 1;
    EXPECT_EQ(nb[static_cast<std::size_t>(u)].size(), centre ? 8u : corner ? 3u : 5u);
  }
}

TEST(Moran, ASmoothGradientIsNearOneAndPerfectAlternationNegative) {
  const Sheet s = seeded_sheet(100, 4);
  const auto nb = queen_neighbours(s);
  std::vector<double> gradient, checker;
  for (int u = 0; u < 100; ++u) {
    gradient.push_back(s.row(u) + s.column(u));
    checker.push_back(s.row(u) % 2 == 0 ? 1.0 : -1.0);  // alternating rows: neighbours above and below differ
  }
  const auto g = morans_i(gradient, nb, 99, 1);
  EXPECT_GT(g.i, 0.8);
  EXPECT_DOUBLE_EQ(g.p_sim, 0.01);
  EXPECT_DOUBLE_EQ(g.expected, -1.0 / 99);
  EXPECT_LT(morans_i(checker, nb, 0, 1).i, -0.2);
  EXPECT_TRUE(std::isnan(morans_i(std::vector<double>(100, 2.0), nb, 0, 1).i));  // no variation: undefined
}

TEST(Welch, ConstantUnitsAndBenjaminiHochberg) {
  const std::vector<double> a{1, 2, 5, 2, 3, 2}, b{0, 2, 1, 2};  // [3, 2] and [2, 2]: unit 1 constant in both
  const auto w = welch_t(a, 3, b, 2, 2);
  EXPECT_GT(w.t[0], 0);
  EXPECT_EQ(w.t[1], 0);
  EXPECT_EQ(w.p[1], 1);
  // p sorted 0.01, 0.03, 0.04, 0.2 -> p m / rank 0.04, 0.06, 0.0533, 0.2 -> running minimum from the top.
  const auto q = bh_adjust({0.01, 0.04, 0.03, 0.2});
  const std::vector<double> want{0.04, 0.16 / 3, 0.16 / 3, 0.2};
  for (std::size_t i = 0; i < 4; ++i) EXPECT_NEAR(q[i], want[i], 1e-15);
}

TEST(Sheet, UnitsInAWindowAndStoredCells) {
  const Sheet s = sheet_from_cells(4, {0, 5, 10, 15, 3, 12});  // the diagonal and two corners
  EXPECT_EQ(units_in_window(s, 0, 0, 2), (std::vector<int>{0, 1}));
  EXPECT_EQ(units_in_window(s, 1, 1, 3), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(units_in_window(s, 0, 2, 2), (std::vector<int>{4}));
  EXPECT_EQ(units_in_window(s, 3, 3, 9), (std::vector<int>{3}));  // clipped to the grid
  EXPECT_THROW(sheet_from_cells(4, {0, 16}), std::invalid_argument);
  EXPECT_THROW(sheet_from_cells(4, {2, 2}), std::invalid_argument);
  EXPECT_NE(sheet_seed(0, 0, 1), sheet_seed(0, 1, 0));
}

TEST(Stimuli, ContrastGroupsAndScrambledWords) {
  EXPECT_EQ(parse_contrast_group("en").language, "en");
  EXPECT_FALSE(parse_contrast_group("en").scrambled);
  EXPECT_TRUE(parse_contrast_group("pt_BR:scrambled").scrambled);
  EXPECT_EQ(parse_contrast_group("pt_BR:scrambled").language, "pt_BR");
  EXPECT_THROW(parse_contrast_group("en:shuffled"), std::invalid_argument);
  EXPECT_THROW(parse_contrast_group(":scrambled"), std::invalid_argument);

  const std::string text = "the  quick brown\tfox jumps over the lazy dog";
  const auto a = scrambled_words(text, 7), b = scrambled_words(text, 7), c = scrambled_words(text, 8);
  EXPECT_EQ(a, b);  // seeded
  auto words = [](const std::string& t) {
    std::istringstream in(t);
    std::vector<std::string> w;
    for (std::string x; in >> x;) w.push_back(x);
    std::sort(w.begin(), w.end());
    return w;
  };
  EXPECT_EQ(words(a), words(text));  // the same words
  EXPECT_EQ(words(c), words(text));
  EXPECT_NE(a, c);
  EXPECT_EQ(word_count(text), 9u);
  EXPECT_EQ(scrambled_words("  single ", 3), "single");
  EXPECT_EQ(word_count("日本語のテキスト"), 1u);  // no spaces: one word, nothing to scramble
}
