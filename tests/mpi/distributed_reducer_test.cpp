// PHAT-style self-test across ranks: the distributed reducer gives exactly the pairs of the serial
// twist reducer (itself checked against the pairing lemma in unit tests) at every rank count.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>

#include <unistd.h>

#include "../unit/test_matrices.hpp"
#include "mpi/large_count.hpp"
#include "topology/pivot_ownership.hpp"
#include "topology/reducers.hpp"

using namespace lmtopo;
using topology::Index;

namespace {
int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
}  // namespace

TEST(DistributedReducer, MatchesTwistOnRandomConeMatrices) {
  std::mt19937 rng(2024);  // same sequence on every rank; only rank 0's matrix is used
  for (int trial = 0; trial < 60; ++trial) {
    const auto ops = test_inputs::random_zigzag(rng, 8, 3, 20 + trial * 3, 0.3);
    const auto cone = topology::build_cone_matrix(ops);
    std::vector<topology::ReductionStepStats> stats;
    const auto got = topology::reduce_distributed(&cone.matrix, MPI_COMM_WORLD, &stats);
    EXPECT_FALSE(stats.empty());
    if (world_rank() == 0) {
      EXPECT_EQ(got, topology::reduce_twist(cone.matrix)) << "trial " << trial;
    } else {
      EXPECT_TRUE(got.empty());
    }
  }
}

// Every chunk of the interleaved pivot ownership gives the same pairs: one row per rank in turn
// (a column crosses ranks at nearly every step of its reduction), a few rows, and chunks larger than
// the matrix (every pivot on rank 0, the other ranks only send their columns there).
TEST(DistributedReducer, EveryPivotChunkGivesTheTwistPairs) {
  std::mt19937 rng(31);
  for (int trial = 0; trial < 12; ++trial) {
    const auto ops = test_inputs::random_zigzag(rng, 9, 3, 40 + trial * 7, 0.3);
    const auto cone = topology::build_cone_matrix(ops);
    const auto expected = world_rank() == 0 ? topology::reduce_twist(cone.matrix) : std::vector<topology::PersistencePair>{};
    for (topology::Index chunk : {1, 2, 5, 64, 1 << 20}) {
      std::vector<topology::ReductionStepStats> stats;
      const auto got = topology::reduce_distributed(&cone.matrix, MPI_COMM_WORLD, &stats, chunk);
      if (world_rank() == 0) {
        EXPECT_EQ(got, expected) << "trial " << trial << ", chunk " << chunk;
      } else {
        EXPECT_TRUE(got.empty());
      }
      long long forwarded = 0;
      for (const auto& row : stats) forwarded += row.columns_forwarded;
      MPI_Allreduce(MPI_IN_PLACE, &forwarded, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
      int size = 1;
      MPI_Comm_size(MPI_COMM_WORLD, &size);
      if (chunk == 1 && size > 1) {
        EXPECT_GT(forwarded, 0) << "trial " << trial << ": no column crossed ranks";
      }
    }
  }
}

// reduce_by_name_releasing drops the rows on rank 0 once every rank has its columns and keeps the
// dimensions read_out_bars needs; the pairs are the twist reducer's.
TEST(DistributedReducer, ReleasingDropsTheRowsAfterTheScatter) {
  std::mt19937 rng(8);
  const auto ops = test_inputs::random_zigzag(rng, 9, 3, 120, 0.3);
  for (const auto duality : {topology::Duality::primal, topology::Duality::dualized, topology::Duality::hybrid}) {
    auto cone = topology::build_cone_matrix(ops);
    const auto expected = topology::reduce_twist(cone.matrix);
    const auto columns = cone.matrix.num_columns();
    const auto got = topology::reduce_by_name_releasing("distributed", &cone.matrix, MPI_COMM_WORLD, 1, nullptr, duality);
    const char* what = topology::duality_name(duality);
    if (world_rank() == 0) {
      EXPECT_EQ(got, expected) << what;
      EXPECT_EQ(cone.matrix.num_entries(), 0) << what;
      EXPECT_EQ(cone.matrix.num_columns(), columns);
    }
  }
}

TEST(DistributedReducer, DefaultPivotChunk) {
  EXPECT_EQ(topology::default_pivot_chunk(0, 2), 1);
  EXPECT_EQ(topology::default_pivot_chunk(10, 3), 4);
  EXPECT_EQ(topology::default_pivot_chunk(3'600'000, 2), 1'800'000);
}

TEST(DistributedReducer, MatchesTwistOnFiltrationsSmallerThanTheRankCount) {
  std::mt19937 rng(5);
  for (int steps : {0, 1, 2, 3, 5}) {
    const auto m = test_inputs::random_filtration_matrix(rng, 3, 2, steps);
    const auto got = topology::reduce_by_name("distributed", &m, MPI_COMM_WORLD, 1);
    if (world_rank() == 0) {
      EXPECT_EQ(got, topology::reduce_twist(m)) << steps << " steps";
    }
  }
}

TEST(DistributedReducer, ByNameAgreesForEveryReducer) {
  std::mt19937 rng(99);
  const auto ops = test_inputs::random_zigzag(rng, 10, 2, 150, 0.25);
  const auto cone = topology::build_cone_matrix(ops);
  std::vector<std::vector<topology::PersistencePair>> results;
  std::vector<std::string> labels;
  for (const auto duality : {topology::Duality::primal, topology::Duality::dualized, topology::Duality::hybrid}) {
    for (const auto& name : topology::reducer_names()) {
      results.push_back(topology::reduce_by_name(name, &cone.matrix, MPI_COMM_WORLD, 3, nullptr, duality));
      labels.push_back(name + " (" + topology::duality_name(duality) + ")");
    }
  }
  if (world_rank() == 0) {
    EXPECT_FALSE(results[0].empty());
    for (std::size_t i = 1; i < results.size(); ++i) {
      EXPECT_EQ(results[i], results[0]) << labels[i];
    }
  }
}

namespace {

// An n = 2m column matrix (every column of dimension 1, so every one is reduced) whose work lies in
// narrow bands at the bottom of each half: column j's rows are drawn from the `band` rows above the
// start of its half, and an upper column's also from the lower half's band. Upper-first with the
// halves split evenly over the ranks, rank 0 owns both bands and the ranks above it soon run dry.
topology::BoundaryMatrix banded_matrix(std::mt19937& rng, Index m, Index band) {
  topology::BoundaryMatrix matrix;
  for (Index j = 0; j < 2 * m; ++j) {
    const Index base = j < m ? 0 : m;
    std::set<Index> rows;
    for (int k = 0; k < 6 && j > base; ++k) rows.insert(base + std::uniform_int_distribution<Index>(0, std::min(band, j - base) - 1)(rng));
    for (int k = 0; k < 2 && j >= m; ++k) rows.insert(std::uniform_int_distribution<Index>(0, band - 1)(rng));
    matrix.append_column(1, std::vector<Index>(rows.begin(), rows.end()));
  }
  return matrix;
}

// The rows of each half in one interval per rank, ranks 0..P-1 from the bottom (as halves_ownership).
topology::PivotOwnership even_halves(Index n, int ranks) {
  std::vector<Index> starts;
  std::vector<int> owners;
  for (int half = 0; half < 2; ++half)
    for (int r = 0; r < ranks; ++r) {
      const Index first = half == 0 ? 0 : topology::upper_half_start(n);
      const Index last = half == 0 ? topology::upper_half_start(n) : n;
      starts.push_back(first + (last - first) * r / ranks);
      owners.push_back(r);
    }
  starts.push_back(n);
  return topology::PivotOwnership(n, starts, owners);
}

std::vector<std::int64_t> sorted_flat(std::vector<topology::PersistencePair> pairs) {
  std::sort(pairs.begin(), pairs.end());
  std::vector<std::int64_t> flat;
  for (const auto& p : pairs) flat.insert(flat.end(), {p.creator, p.destroyer});
  return flat;
}

}  // namespace

// Row loans (docs/methods.md, "Row loans"): on matrices whose work lies in rank 0's rows, the ranks
// above it borrow rows from the rank below (taken is summed over the ranks and trials: with more
// than one rank and nothing but forwarding to do elsewhere, a loan is all but certain; the trials
// are fixed, the timing is not), and the pairs are the twist reducer's with and without loans, a
// rank taking its own columns first (upper-first) or those it received (upper-first-received), or
// the upper half in three phases (upper-thirds).
TEST(DistributedReducer, RowLoansGiveTheTwistPairs) {
  const int rank = world_rank();
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  for (const char* const order : {"upper-first", "upper-first-received", "upper-thirds"}) {
    std::mt19937 rng(1717);
    long long taken[2] = {0, 0}, given[2] = {0, 0};
    for (int trial = 0; trial < 6; ++trial) {
      const auto matrix = banded_matrix(rng, 2000 + 500 * trial, 96 + 16 * trial);
      const Index n = matrix.num_columns();
      const auto want = rank == 0 ? sorted_flat(topology::reduce_twist(matrix)) : std::vector<std::int64_t>{};
      const auto own = even_halves(n, size);
      std::vector<topology::Row> mine;
      own.for_each_owned(rank, [&](Index j) {
        const auto rows = matrix.column(j);
        mine.insert(mine.end(), {1, static_cast<topology::Row>(rows.size())});
        for (const Index r : rows) mine.push_back(static_cast<topology::Row>(r));
      });
      for (const bool loans : {false, true}) {
        topology::StepMethods methods;
        methods.row_loans = loans;
        std::vector<topology::ReductionStepStats> stats;
        const auto pairs = topology::reduce_distributed_owned(mine, own, n, MPI_COMM_WORLD, &stats, order, methods, 1);
        for (const auto& row : stats) {
          taken[loans] += row.loans_taken;
          given[loans] += row.loans_given;
        }
        const auto flat = sorted_flat(pairs);
        const auto gathered = mpi::gather_blocks(MPI_COMM_WORLD, flat.data(), flat.size(), MPI_INT64_T);
        if (rank != 0) continue;
        std::vector<topology::PersistencePair> got;
        for (std::size_t i = 0; i + 1 < gathered.size(); i += 2) got.push_back(topology::PersistencePair{gathered[i], gathered[i + 1]});
        EXPECT_EQ(sorted_flat(got), want) << order << ", trial " << trial << ", loans " << loans;
      }
    }
    MPI_Allreduce(MPI_IN_PLACE, taken, 2, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, given, 2, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    EXPECT_EQ(taken[0], 0) << order << ": a loan with row loans off";
    EXPECT_EQ(taken[1], given[1]) << order << ": a loan given and not taken";
    if (size > 1) {
      EXPECT_GT(taken[1], 0) << order << ": no rank ever borrowed rows: the loans are not exercised";
    } else {
      EXPECT_EQ(taken[1], 0) << "one rank has no one to borrow from";
    }
  }
}

// The reducer taking its columns (reduce_distributed_owned(std::vector<Row>&&)) drops the empty ones
// and keeps each other column's position: on banded matrices with most columns emptied (every one
// but each third, and all of rank 0's lower half, as rank 0's rows of the hybrid's top step), the
// pairs are the twist reducer's in every column order, and the same as the reducer given them all.
TEST(DistributedReducer, EmptyColumnsDroppedGiveTheTwistPairs) {
  const int rank = world_rank();
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::mt19937 rng(2024);
  for (int trial = 0; trial < 3; ++trial) {
    const auto banded = banded_matrix(rng, 1500 + 500 * trial, 64 + 16 * trial);
    const Index n = banded.num_columns();
    const auto own = even_halves(n, size);
    topology::BoundaryMatrix matrix;
    for (Index j = 0; j < n; ++j) {
      const bool emptied = j % 3 != 0 || (own.owner(j) == 0 && j < topology::upper_half_start(n) && size > 1);
      const auto rows = banded.column(j);
      matrix.append_column(1, emptied ? std::vector<Index>{} : std::vector<Index>(rows.begin(), rows.end()));
    }
    const auto want = rank == 0 ? sorted_flat(topology::reduce_twist(matrix)) : std::vector<std::int64_t>{};
    std::vector<topology::Row> mine;
    own.for_each_owned(rank, [&](Index j) {
      const auto rows = matrix.column(j);
      mine.insert(mine.end(), {1, static_cast<topology::Row>(rows.size())});
      for (const Index r : rows) mine.push_back(static_cast<topology::Row>(r));
    });
    for (const char* const order : {"natural", "received-first", "upper-first"}) {
      const auto all = topology::reduce_distributed_owned(mine, own, n, MPI_COMM_WORLD, nullptr, order, {}, 1);
      const auto kept = topology::reduce_distributed_owned(topology::OwnedColumns{mine, {}}, own, n, MPI_COMM_WORLD, nullptr, order, {}, 1);
      EXPECT_EQ(sorted_flat(kept), sorted_flat(all)) << order << ", trial " << trial << ", rank " << rank;
      // Half the empty columns left out already (positions given), the rest dropped by the reducer.
      topology::OwnedColumns held;
      std::size_t position = 0, empty = 0;
      for (std::size_t at = 0; at < mine.size(); at += 2 + mine[at + 1], ++position) {
        if (mine[at + 1] == 0 && empty++ % 2 == 0) continue;
        held.words.insert(held.words.end(), mine.begin() + static_cast<std::ptrdiff_t>(at), mine.begin() + static_cast<std::ptrdiff_t>(at + 2 + mine[at + 1]));
        held.positions.push_back(static_cast<topology::Row>(position));
      }
      const auto some = topology::reduce_distributed_owned(std::move(held), own, n, MPI_COMM_WORLD, nullptr, order, {}, 1);
      EXPECT_EQ(sorted_flat(some), sorted_flat(all)) << order << ", trial " << trial << ", rank " << rank << ", some held";
      const auto flat = sorted_flat(kept);
      const auto gathered = mpi::gather_blocks(MPI_COMM_WORLD, flat.data(), flat.size(), MPI_INT64_T);
      if (rank != 0) continue;
      std::vector<topology::PersistencePair> got;
      for (std::size_t i = 0; i + 1 < gathered.size(); i += 2) got.push_back(topology::PersistencePair{gathered[i], gathered[i + 1]});
      EXPECT_EQ(sorted_flat(got), want) << order << ", trial " << trial;
      EXPECT_FALSE(want.empty());
    }
  }
}

// The last step gives back the pages of the dealt columns as it reads them (ReleaseBehind), here
// a page at a time: with every fifth column of dimension 2 (read in the first step, dead in the
// last) and the last step's columns in one to four runs (natural,
// upper-first, upper-thirds), the pairs are the twist reducer's, and each rank holding more than
// four pages of columns gave some back. A page given back too early reads as zeros: with the
// released range starting below the current run (the lower half's columns) this fails.
TEST(DistributedReducer, LastStepGivesBackTheColumnsItReadAndKeepsThePairs) {
  const int rank = world_rank();
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const std::size_t granularity = topology::release_granularity();
  topology::set_release_granularity(1);
  std::mt19937 rng(4096);
  for (int trial = 0; trial < 2; ++trial) {
    const auto banded = banded_matrix(rng, 3000 + 1000 * trial, 48 + 16 * trial);
    const Index n = banded.num_columns();
    topology::BoundaryMatrix matrix;
    for (Index j = 0; j < n; ++j) {
      const auto rows = banded.column(j);
      // A chain complex's dimensions: dimension 2 columns' rows are dimension 1 columns (r % 5 == 1),
      // dimension 1 columns' rows (r % 5 > 1) never a pivot of theirs.
      std::vector<Index> kept;
      for (const Index r : rows)
        if (j % 5 == 0 ? r % 5 == 1 : r % 5 > 1) kept.push_back(r);
      matrix.append_column(j % 5 == 0 ? 2 : 1, kept);
    }
    const auto want = rank == 0 ? sorted_flat(topology::reduce_twist(matrix)) : std::vector<std::int64_t>{};
    const auto own = even_halves(n, size);
    std::vector<topology::Row> mine;
    own.for_each_owned(rank, [&](Index j) {
      const auto rows = matrix.column(j);
      mine.insert(mine.end(), {static_cast<topology::Row>(matrix.dim(j)), static_cast<topology::Row>(rows.size())});
      for (const Index r : rows) mine.push_back(static_cast<topology::Row>(r));
    });
    const bool pages_to_give = mine.size() * sizeof(topology::Row) > 4 * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    for (const char* const order : {"natural", "upper-first", "upper-thirds"}) {
      std::vector<topology::ReductionStepStats> stats;
      const auto pairs = topology::reduce_distributed_owned(topology::OwnedColumns{mine, {}}, own, n, MPI_COMM_WORLD, &stats, order, {}, 1);
      ASSERT_FALSE(stats.empty());
      EXPECT_EQ(stats.front().bytes_released, 0) << order << ": an earlier step gave pages back";
      if (pages_to_give) {
        EXPECT_GT(stats.back().bytes_released, 0) << order << ", trial " << trial << ", rank " << rank;
      }
      const auto flat = sorted_flat(pairs);
      const auto gathered = mpi::gather_blocks(MPI_COMM_WORLD, flat.data(), flat.size(), MPI_INT64_T);
      if (rank != 0) continue;
      std::vector<topology::PersistencePair> got;
      for (std::size_t i = 0; i + 1 < gathered.size(); i += 2) got.push_back(topology::PersistencePair{gathered[i], gathered[i + 1]});
      EXPECT_EQ(sorted_flat(got), want) << order << ", trial " << trial;
    }
  }
  topology::set_release_granularity(granularity);
}

// The transfers behind the reducer split every message at max_message_elements() (INT_MAX in use,
// MPI 3's count type): lowered here so that blocks of any size cross many pieces, the reducer and the
// raw scatter/gather must give the same results as unsplit.
TEST(LargeCount, SplitTransfersGiveTheSameBlocksAndPairs) {
  const int rank = world_rank();
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::mt19937 rng(7);
  std::vector<std::uint64_t> counts(static_cast<std::size_t>(size)), offsets(static_cast<std::size_t>(size));
  std::vector<std::int64_t> all;
  for (int r = 0; r < size; ++r) {
    counts[static_cast<std::size_t>(r)] = rng() % 40;  // zero-length blocks included
    offsets[static_cast<std::size_t>(r)] = all.size();
    for (std::uint64_t i = 0; i < counts[static_cast<std::size_t>(r)]; ++i) all.push_back(static_cast<std::int64_t>(rng()));
  }
  const auto ops = test_inputs::random_zigzag(rng, 8, 3, 60, 0.3);
  const auto cone = topology::build_cone_matrix(ops);
  const auto unsplit = topology::reduce_distributed(&cone.matrix, MPI_COMM_WORLD);
  for (std::size_t piece : {1, 3, 7}) {
    mpi::set_max_message_elements(piece);
    const auto got = mpi::scatter_built_blocks<std::int64_t>(MPI_COMM_WORLD, MPI_INT64_T, [&](int r) {
      const auto from = all.begin() + static_cast<std::ptrdiff_t>(offsets[static_cast<std::size_t>(r)]);
      return std::vector<std::int64_t>(from, from + static_cast<std::ptrdiff_t>(counts[static_cast<std::size_t>(r)]));
    });
    const auto at = all.begin() + static_cast<std::ptrdiff_t>(offsets[static_cast<std::size_t>(rank)]);
    EXPECT_EQ(got, std::vector<std::int64_t>(at, at + static_cast<std::ptrdiff_t>(counts[static_cast<std::size_t>(rank)])));
    const auto back = mpi::gather_blocks(MPI_COMM_WORLD, got.data(), got.size(), MPI_INT64_T);
    if (rank == 0) {
      EXPECT_EQ(back, all) << "piece " << piece;
    }
    EXPECT_EQ(topology::reduce_distributed(&cone.matrix, MPI_COMM_WORLD), unsplit) << "piece " << piece;
  }
  mpi::set_max_message_elements(std::numeric_limits<std::size_t>::max());
  EXPECT_EQ(mpi::max_message_elements(), static_cast<std::size_t>(std::numeric_limits<int>::max()));
}
