// Reducers against an independent oracle: the pairing lemma. For a filtration boundary matrix D,
// (i, j) is a persistence pair iff r(i,j) - r(i+1,j) + r(i+1,j-1) - r(i,j-1) = 1 with r(a,b) the
// rank over Z/2 of the submatrix of rows >= a and columns <= b. Ranks by Gaussian elimination share
// nothing with the column reductions under test.
#include <gtest/gtest.h>

#include <random>

#include "test_matrices.hpp"
#include "topology/cone_distributed.hpp"
#include "topology/pivot_ownership.hpp"
#include "topology/reducers.hpp"

using namespace lmtopo;
using topology::Index;

namespace {

int rank_z2(const topology::BoundaryMatrix& m, Index row_from, Index col_to) {
  if (col_to < 0 || row_from >= m.num_columns()) return 0;
  std::vector<std::vector<char>> a;
  for (Index j = 0; j <= col_to; ++j) {
    std::vector<char> col(static_cast<std::size_t>(m.num_columns() - row_from), 0);
    for (Index r : m.column(j))
      if (r >= row_from) col[static_cast<std::size_t>(r - row_from)] = 1;
    a.push_back(col);
  }
  int rank = 0;
  const std::size_t rows = a.empty() ? 0 : a[0].size();
  for (std::size_t r = 0; r < rows; ++r) {
    std::size_t pivot = a.size();
    for (std::size_t c = static_cast<std::size_t>(rank); c < a.size(); ++c)
      if (a[c][r]) { pivot = c; break; }
    if (pivot == a.size()) continue;
    std::swap(a[pivot], a[static_cast<std::size_t>(rank)]);
    for (std::size_t c = 0; c < a.size(); ++c)
      if (c != static_cast<std::size_t>(rank) && a[c][r])
        for (std::size_t k = 0; k < rows; ++k) a[c][k] ^= a[static_cast<std::size_t>(rank)][k];
    ++rank;
  }
  return rank;
}

std::vector<topology::PersistencePair> pairs_by_ranks(const topology::BoundaryMatrix& m) {
  std::vector<topology::PersistencePair> out;
  const Index n = m.num_columns();
  for (Index j = 0; j < n; ++j)
    for (Index i = 0; i < j; ++i)
      if (rank_z2(m, i, j) - rank_z2(m, i + 1, j) + rank_z2(m, i + 1, j - 1) - rank_z2(m, i, j - 1) == 1)
        out.push_back({i, j});
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST(Reducers, TwistAndChunkMatchThePairingLemmaOnRandomFiltrations) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    const auto m = test_inputs::random_filtration_matrix(rng, 7, 3, 40);
    const auto expected = pairs_by_ranks(m);
    EXPECT_EQ(topology::reduce_twist(m), expected) << "trial " << trial;
    for (int threads : {1, 2, 3, 5}) EXPECT_EQ(topology::reduce_chunk(m, threads), expected) << "trial " << trial;
  }
}

TEST(Reducers, TwistAndChunkMatchThePairingLemmaOnConeMatrices) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 25; ++trial) {
    const auto ops = test_inputs::random_zigzag(rng, 6, 2, 30, 0.35);
    const auto cone = topology::build_cone_matrix(ops);
    const auto expected = pairs_by_ranks(cone.matrix);
    EXPECT_EQ(topology::reduce_twist(cone.matrix), expected) << "trial " << trial;
    EXPECT_EQ(topology::reduce_chunk(cone.matrix, 3), expected) << "trial " << trial;
  }
}

// Dualized and hybrid reductions (anti-transpose, pairs mapped back; the top dimension primal) against
// the pairing lemma of the original matrix, for every serial reducer; the anti-transpose is an
// involution, and leaving a dimension out of it drops exactly that dimension's entries.
TEST(Reducers, DualizedReducersMatchThePairingLemma) {
  std::mt19937 rng(19);
  for (int trial = 0; trial < 25; ++trial) {
    const auto m = trial % 2 ? test_inputs::random_filtration_matrix(rng, 7, 3, 40)
                             : topology::build_cone_matrix(test_inputs::random_zigzag(rng, 6, 2, 30, 0.35)).matrix;
    const auto expected = pairs_by_ranks(m);
    for (const char* name : {"twist", "chunk"})
      for (const auto duality : {topology::Duality::dualized, topology::Duality::hybrid})
        EXPECT_EQ(topology::reduce_by_name(name, &m, MPI_COMM_SELF, 3, nullptr, duality), expected)
            << name << " " << topology::duality_name(duality) << " trial " << trial;
    const auto back = topology::anti_transpose(topology::anti_transpose(m));
    ASSERT_EQ(back.num_columns(), m.num_columns());
    for (Index j = 0; j < m.num_columns(); ++j) {
      EXPECT_EQ(back.dim(j), m.dim(j));
      EXPECT_EQ(std::vector<Index>(back.column(j).begin(), back.column(j).end()),
                std::vector<Index>(m.column(j).begin(), m.column(j).end()));
    }
    const int top = m.max_dim();
    const auto without_top = topology::anti_transpose(topology::anti_transpose(m, top));
    const auto top_only = topology::columns_of_dim(m, top);
    for (Index j = 0; j < m.num_columns(); ++j) {
      const std::vector<Index> rows(m.column(j).begin(), m.column(j).end()), none;
      EXPECT_EQ(std::vector<Index>(without_top.column(j).begin(), without_top.column(j).end()), m.dim(j) == top ? none : rows);
      EXPECT_EQ(std::vector<Index>(top_only.column(j).begin(), top_only.column(j).end()), m.dim(j) == top ? rows : none);
      EXPECT_EQ(top_only.dim(j), m.dim(j));
    }
  }
}

// Compression: zeroing the rows of negative cells (the destroyers of pairs) in every column leaves
// every pair as the pairing lemma gives it for the full matrix (the lemma's ranks decide it, not the
// reducers); the hybrid's anti-transpose without the top pairs' creators' rows is such a matrix on
// the dual side, and it is smaller (so the compression is really applied).
TEST(Reducers, CompressionByNegativeCellsKeepsEveryPair) {
  std::mt19937 rng(23);
  Index dropped = 0, dual_entries = 0, compressed_dual_entries = 0;
  for (int trial = 0; trial < 20; ++trial) {
    const auto m = trial % 2 ? test_inputs::random_filtration_matrix(rng, 7, 3, 40)
                             : topology::build_cone_matrix(test_inputs::random_zigzag(rng, 6, 2, 30, 0.35)).matrix;
    const auto expected = pairs_by_ranks(m);
    std::vector<bool> negative(static_cast<std::size_t>(m.num_columns()), false);
    for (const auto& p : expected) negative[static_cast<std::size_t>(p.destroyer)] = true;
    topology::BoundaryMatrix compressed;
    for (Index j = 0; j < m.num_columns(); ++j) {
      std::vector<Index> rows;
      for (Index r : m.column(j))
        if (!negative[static_cast<std::size_t>(r)]) rows.push_back(r);
      dropped += static_cast<Index>(m.column(j).size() - rows.size());
      compressed.append_column(m.dim(j), rows);
    }
    EXPECT_EQ(pairs_by_ranks(compressed), expected) << "trial " << trial;
    EXPECT_EQ(topology::reduce_twist(compressed), expected) << "trial " << trial;
    const int top = m.max_dim();
    std::vector<bool> top_creators(static_cast<std::size_t>(m.num_columns()), false);
    for (const auto& p : expected)
      if (m.dim(p.destroyer) == top) top_creators[static_cast<std::size_t>(p.creator)] = true;
    const auto dual = topology::anti_transpose(m, top), smaller = topology::anti_transpose(m, top, &top_creators);
    dual_entries += dual.num_entries();
    compressed_dual_entries += smaller.num_entries();
    EXPECT_EQ(topology::reduce_twist(smaller), topology::reduce_twist(dual)) << "trial " << trial;
  }
  EXPECT_GT(dropped, 0);  // the compressions above really dropped rows
  EXPECT_LT(compressed_dual_entries, dual_entries);
}

// drop_rows_of_dim: the reducers' flat layout ([dim, size, rows...] per column), one dimension's rows.
TEST(Reducers, DropRowsOfOneDimension) {
  std::vector<topology::Row> columns{0, 0, 1, 2, 0, 1, 2, 3, 0, 1, 3, 1, 1, 2};
  const std::vector<bool> drop{false, true, false, false};
  topology::drop_rows_of_dim(columns, 1, drop);  // row 1 goes from the dimension-1 columns only
  EXPECT_EQ(columns, (std::vector<topology::Row>{0, 0, 1, 1, 0, 2, 3, 0, 1, 3, 1, 1, 2}));
}

TEST(Reducers, EmptyAndTrivialMatrices) {
  topology::BoundaryMatrix empty;
  EXPECT_TRUE(topology::reduce_twist(empty).empty());
  EXPECT_TRUE(topology::reduce_chunk(empty, 4).empty());
  topology::BoundaryMatrix edge;
  edge.append_column(0, std::vector<Index>{});
  edge.append_column(0, std::vector<Index>{});
  edge.append_column(1, std::vector<Index>{0, 1});
  const std::vector<topology::PersistencePair> expected{{1, 2}};
  EXPECT_EQ(topology::reduce_twist(edge), expected);
  EXPECT_EQ(topology::reduce_chunk(edge, 2), expected);
}

TEST(Reducers, UnknownNameIsRejected) {
  topology::BoundaryMatrix m;
  EXPECT_THROW(topology::reduce_by_name("gauss", &m, MPI_COMM_SELF, 1), std::invalid_argument);
}

// PivotOwnership by bounds: every index has one owner, local and global invert each other, the
// counts add up, and an empty block owns nothing; the same holds for chunks dealt round robin and
// for intervals with any owners (a rank's local indices running through its intervals in order).
TEST(PivotOwnership, BoundsAndChunksAreConsistent) {
  const Index n = 23;
  const std::vector<topology::PivotOwnership> ownerships{
      topology::PivotOwnership(n, {0, 5, 5, 17, n}), topology::PivotOwnership(n, {0, n}),
      topology::PivotOwnership(n, 3, 4), topology::PivotOwnership(n, 2, 12),
      topology::PivotOwnership(n, {0, 4, 10, 10, 15, 20, n}, {1, 0, 2, 1, 0, 1}),
      topology::PivotOwnership(n, {0, 11, n}, {1, 0})};
  const std::vector<int> ranks{4, 1, 3, 2, 3, 2};
  for (std::size_t k = 0; k < ownerships.size(); ++k) {
    const auto& own = ownerships[k];
    Index counted = 0;
    for (int r = 0; r < ranks[k]; ++r) {
      std::vector<Index> owned;
      own.for_each_owned(r, [&](Index j) { owned.push_back(j); });
      EXPECT_EQ(static_cast<Index>(owned.size()), own.local_count(r)) << k;
      for (std::size_t i = 0; i < owned.size(); ++i) {
        EXPECT_EQ(own.owner(owned[i]), r) << k;
        EXPECT_EQ(own.local(owned[i]), static_cast<Index>(i)) << k;
        EXPECT_EQ(own.global(r, static_cast<Index>(i)), owned[i]) << k;
      }
      counted += own.local_count(r);
    }
    EXPECT_EQ(counted, n) << k;
  }
  EXPECT_EQ(ownerships[0].local_count(1), 0);
  EXPECT_EQ(ownerships[0].owner(5), 2);
  EXPECT_EQ(ownerships[0].owner(4), 0);
  EXPECT_EQ(ownerships[0].owner(17), 3);
  const auto& intervals = ownerships[4];  // rank 0: [4, 10), [15, 20); rank 1: [0, 4), [10, 15), [20, 23); rank 2: none
  EXPECT_EQ(intervals.local_count(1), 12);
  EXPECT_EQ(intervals.local_count(2), 0);
  EXPECT_EQ(intervals.owner(10), 1);
  EXPECT_EQ(intervals.local(16), 7);
  EXPECT_EQ(intervals.global(1, 4), 10);
  EXPECT_EQ(intervals.global(0, 6), 15);
  EXPECT_THROW(topology::PivotOwnership(n, {0, 9, 4, n}), std::logic_error);
  EXPECT_THROW(topology::PivotOwnership(n, {0, 9, n}, {0}), std::logic_error);       // an owner short
  EXPECT_THROW(topology::PivotOwnership(n, {0, 9, n}, {0, -1}), std::logic_error);   // no such rank
  EXPECT_THROW(topology::PivotOwnership(n, {0, 9, n - 1}, {0, 1}), std::logic_error); // short of n
  EXPECT_THROW(topology::PivotOwnership(n, {0, 9}), std::logic_error);
}
