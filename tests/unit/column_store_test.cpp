// ColumnStore keeps reduced columns as 16-bit row gaps with a 32-bit escape (z2_column.hpp). The
// reducers' oracle tests use matrices far too small for a gap of 65,535 or more, so the escape, and
// the replacement of a stored column (in place or appended), are checked here against the rows put in
// and against std::set's symmetric difference for PivotColumn's additions.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

#include "topology/z2_column.hpp"

using namespace lmtopo;
using topology::Index;

namespace {

std::vector<std::uint32_t> rows_of(const topology::StoredRows& stored) {
  std::vector<std::uint32_t> out;
  stored.for_each([&](std::uint32_t row) { out.push_back(row); });
  return out;
}

// `count` increasing rows below `limit` whose gaps mix small ones with ones at and around the escape.
std::vector<std::uint32_t> random_rows(std::mt19937_64& rng, std::size_t count, std::uint64_t limit) {
  std::set<std::uint32_t> rows;
  std::uniform_int_distribution<std::uint64_t> any(0, limit - 1);
  while (rows.size() < count) rows.insert(static_cast<std::uint32_t>(any(rng)));
  return {rows.begin(), rows.end()};
}

}  // namespace

TEST(ColumnStore, GapsAtTheEscapeAndAboveComeBackExactly) {
  const std::vector<std::vector<std::uint32_t>> columns = {
      {0},
      {0, 1, 2},
      {65534},
      {65535},
      {65536},
      {1, 65536, 65536 + 65535, 65536 + 65535 + 65536},
      {0, 4294967295u},
      {4294967294u, 4294967295u},
  };
  topology::ColumnStore store(static_cast<Index>(columns.size()));
  for (std::size_t i = 0; i < columns.size(); ++i) store.store_rows(static_cast<Index>(i), columns[i]);
  for (std::size_t i = 0; i < columns.size(); ++i) {
    ASSERT_TRUE(store.holds(static_cast<Index>(i)));
    EXPECT_EQ(rows_of(store.column(static_cast<Index>(i))), columns[i]) << "column " << i;
  }
}

TEST(ColumnStore, ReplacedColumnsShorterLongerAndEmptyAcrossBlocks) {
  std::mt19937_64 rng(17);
  const Index pivots = 3000;
  topology::ColumnStore store(pivots, /*first_row=*/1000);
  std::vector<std::vector<std::uint32_t>> expected(static_cast<std::size_t>(pivots));
  std::uniform_int_distribution<Index> pick(0, pivots - 1);
  std::uniform_int_distribution<std::size_t> length(0, 600);
  std::uniform_int_distribution<int> wide(0, 3);
  // About 4 x 3000 stores of up to 600 rows (several 4 MiB blocks and columns replaced by shorter,
  // longer and empty ones), every fourth column with gaps from the whole 32-bit range.
  for (int k = 0; k < 4 * pivots; ++k) {
    const Index at = pick(rng);
    const std::uint64_t limit = wide(rng) == 0 ? (std::uint64_t{1} << 32) : 1'000'000;
    expected[static_cast<std::size_t>(at)] = random_rows(rng, length(rng), limit);
    store.store_rows(1000 + at, expected[static_cast<std::size_t>(at)]);
  }
  for (Index at = 0; at < pivots; ++at) {
    const auto& want = expected[static_cast<std::size_t>(at)];
    if (!store.holds(1000 + at)) {
      EXPECT_TRUE(want.empty());
      continue;
    }
    ASSERT_EQ(rows_of(store.column(1000 + at)), want) << "pivot " << 1000 + at;
  }
  store.clear();
  for (Index at = 0; at < pivots; ++at) EXPECT_FALSE(store.holds(1000 + at));
}

TEST(ColumnStore, AddingAStoredColumnIsTheSymmetricDifference) {
  std::mt19937_64 rng(5);
  const std::uint32_t num_rows = 200'000;  // gaps past 65,535 occur
  for (int trial = 0; trial < 20; ++trial) {
    const auto a = random_rows(rng, 1 + trial * 7, num_rows);
    const auto b = random_rows(rng, 1 + trial * 5, num_rows);
    topology::ColumnStore store(num_rows);
    store.store_rows(b.back(), b);
    topology::PivotColumn work(num_rows);
    work.add(a);
    work.add(store.column(b.back()));
    std::vector<std::uint32_t> got;
    work.take(got);
    std::vector<std::uint32_t> want;
    std::set_symmetric_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(want));
    EXPECT_EQ(got, want) << "trial " << trial;
  }
}
