// Zigzag engine on examples whose barcodes are derived by hand, and the validity checks.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "io/fzz_format.hpp"
#include "topology/reducers.hpp"
#include "topology/zigzag.hpp"

using namespace lmtopo;
using topology::ZigzagBar;

namespace {

std::vector<ZigzagBar> bars_of(const std::string& text) {
  std::istringstream in(text);
  const auto file = io::read_fzz(in, "test.fzz");
  const auto cone = topology::build_cone_matrix(file.ops);
  return topology::read_out_bars(cone, topology::reduce_twist(cone.matrix));
}

}  // namespace

TEST(Zigzag, TriangleWithEdgeRemovedAndReinserted) {
  // Three vertices joined into a cycle (op 6); deleting 01 kills the cycle, re-inserting it makes a
  // new one that dies when 12 goes; the first component lives to the end (m = 9).
  const auto bars = bars_of("9\ni 0\ni 1\ni 2\ni 0 1\ni 0 2\ni 1 2\nd 0 1\ni 0 1\nd 1 2\n");
  const std::vector<ZigzagBar> expected{{0, 1, 9}, {0, 2, 3}, {0, 3, 4}, {1, 6, 6}, {1, 8, 8}};
  EXPECT_EQ(bars, expected);
}

TEST(Zigzag, DeletionSplitsAComponent) {
  // Removing the edge splits {0,1} in two (a class born at op 4), removing 1 ends it.
  const auto bars = bars_of("i 0\ni 1\ni 0 1\nd 0 1\nd 1\nd 0\n");
  const std::vector<ZigzagBar> expected{{0, 1, 5}, {0, 2, 2}, {0, 4, 4}};
  EXPECT_EQ(bars, expected);
}

TEST(Zigzag, FilledTriangleHasNoOneCycleAfterTheTwoSimplex) {
  const auto bars = bars_of("i 0\ni 1\ni 2\ni 0 1\ni 1 2\ni 0 2\ni 0 1 2\n");
  const std::vector<ZigzagBar> expected{{0, 1, 7}, {0, 2, 3}, {0, 3, 4}, {1, 6, 6}};
  EXPECT_EQ(bars, expected);
}

TEST(Zigzag, EmptyFiltration) { EXPECT_TRUE(bars_of("0\n").empty()); }

TEST(Zigzag, InvalidSequencesNameTheOperation) {
  auto op_of_error = [](const std::string& text) -> long {
    std::istringstream in(text);
    const auto file = io::read_fzz(in, "t");
    try {
      topology::build_cone_matrix(file.ops);
    } catch (const topology::InvalidZigzag& e) {
      return file.line_of_op(e.op_index);
    }
    return -1;
  };
  EXPECT_EQ(op_of_error("i 0\ni 0 1\n"), 2);          // face {1} missing
  EXPECT_EQ(op_of_error("i 0\nd 1\n"), 2);            // deleting an absent simplex
  EXPECT_EQ(op_of_error("i 0\ni 1\ni 0 1\nd 0\n"), 4);  // coface {0,1} still present
  EXPECT_EQ(op_of_error("2\ni 0\ni 0\n"), 3);  // inserting twice: line 3 (after the count)
  // Comments and blank lines between operations shift the line numbers (FzzFile's line runs).
  EXPECT_EQ(op_of_error("i 0\n# c\n\ni 1\n  \t\ni 2\nd 5\n"), 7);
  EXPECT_EQ(op_of_error("# c\ni 0\ni 1\n\ni 0 1\ni 0 1\n"), 6);
}

TEST(FzzFormat, RejectsMalformedLinesWithLineNumbers) {
  auto message = [](const std::string& text) -> std::string {
    std::istringstream in(text);
    try {
      io::read_fzz(in, "f.fzz");
    } catch (const InputError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message("i 0\nx 1\n").find("f.fzz:2:"), std::string::npos);
  EXPECT_NE(message("i 0\ni -1\n").find("f.fzz:2:"), std::string::npos);
  EXPECT_NE(message("i 0\ni\n").find("f.fzz:2:"), std::string::npos);
  EXPECT_NE(message("i 0 0\n").find("f.fzz:1:"), std::string::npos);
  EXPECT_NE(message("5\ni 0\n").find("declares 5"), std::string::npos);
  EXPECT_EQ(message("# comment\n\n2\ni 0\nd 0\n"), "");
}

// The bar lines by std::to_chars are what a stream writes ("dim birth death\n"), for numbers of every
// width up to 64 bits, written whole and in write_bars' pieces.
TEST(FzzFormat, BarLinesAreTheStreamsLines) {
  std::vector<topology::ZigzagBar> bars = {{0, 0, 0}, {2, 9, 10}, {1, 123456789012345LL, 9223372036854775807LL}};
  for (int k = 0; k < 70000; ++k) bars.push_back({k % 3, static_cast<topology::Index>(k) * 7919, static_cast<topology::Index>(k) * 104729 + 1});
  std::ostringstream stream;
  for (const auto& b : bars) stream << b.dim << ' ' << b.birth << ' ' << b.death << '\n';
  std::string text = "kept:";
  io::append_bar_lines(text, bars.data(), bars.data() + bars.size());
  EXPECT_EQ(text, "kept:" + stream.str());
  std::ostringstream pieces;
  io::write_bars(pieces, bars);
  EXPECT_EQ(pieces.str(), stream.str());
}
