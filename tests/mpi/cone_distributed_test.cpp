// The distributed cone build against the serial one at every rank count: the same matrix (column by
// column, primal and anti-transposed), the same bars (the serial bars are themselves checked against
// Dionysus and GUDHI), the same tags, and the same first error for invalid sequences.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <random>
#include <string>

#include "../unit/test_matrices.hpp"
#include "mpi/large_count.hpp"
#include "topology/cone_distributed.hpp"
#include "topology/pivot_ownership.hpp"
#include "topology/reduce_row_split.hpp"
#include "topology/reducers.hpp"

using namespace lmtopo;
using topology::Index;

namespace {

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

// This rank's slice of `ops` for cut points drawn from `rng` (the same on every rank; empty slices
// included), and the global index of its first op.
topology::ZigzagOpList my_slice(const std::vector<topology::ZigzagOp>& ops, std::mt19937& rng, Index* first = nullptr) {
  std::vector<std::size_t> cuts = {0};
  for (int r = 1; r < world_size(); ++r) cuts.push_back(std::uniform_int_distribution<std::size_t>(0, ops.size())(rng));
  cuts.push_back(ops.size());
  std::sort(cuts.begin(), cuts.end());
  const auto r = static_cast<std::size_t>(world_rank());
  topology::ZigzagOpList mine;
  for (std::size_t i = cuts[r]; i < cuts[r + 1]; ++i) mine.push_back(ops[i]);
  if (first) *first = static_cast<Index>(cuts[r]);
  return mine;
}

// The matrix the ranks hold in `columns` (cone.columns or cone.top_columns, owned as `own` says),
// gathered on rank 0 as a BoundaryMatrix (empty elsewhere); a column no rank holds has dimension -1.
topology::BoundaryMatrix gather_matrix(const topology::DistributedCone& cone, const topology::OwnedColumns& columns,
                                       const topology::PivotOwnership& own) {
  const auto all = mpi::gather_blocks(MPI_COMM_WORLD, columns.words.data(), columns.words.size(), MPI_UINT32_T);
  std::vector<topology::Row> held;  // the positions, all of them when implicit
  columns.for_each([&](topology::Row position, std::size_t) { held.push_back(position); });
  long long count = static_cast<long long>(held.size());
  const auto counts = mpi::gather_blocks(MPI_COMM_WORLD, &count, 1, MPI_LONG_LONG);
  const auto positions = mpi::gather_blocks(MPI_COMM_WORLD, held.data(), held.size(), MPI_UINT32_T);
  if (world_rank() != 0) return {};
  std::vector<int> dims(static_cast<std::size_t>(cone.num_columns), -1);
  std::vector<std::vector<topology::Row>> rows(static_cast<std::size_t>(cone.num_columns));
  std::size_t at = 0, p = 0;
  for (int r = 0; r < world_size(); ++r)
    for (long long h = 0; h < counts[static_cast<std::size_t>(r)]; ++h, ++p) {
      EXPECT_TRUE(h == 0 || positions[p] > positions[p - 1]) << "rank " << r << ": positions not increasing";
      EXPECT_LT(positions[p], own.local_count(r)) << "rank " << r;
      const auto j = static_cast<std::size_t>(own.global(r, positions[p]));
      dims[j] = static_cast<int>(all[at]);
      const auto size = static_cast<std::size_t>(all[at + 1]);
      rows[j].assign(all.begin() + static_cast<std::ptrdiff_t>(at + 2), all.begin() + static_cast<std::ptrdiff_t>(at + 2 + size));
      at += 2 + size;
    }
  EXPECT_EQ(at, all.size());
  topology::BoundaryMatrix m;
  for (std::size_t j = 0; j < rows.size(); ++j) m.append_column(dims[j], rows[j]);
  return m;
}

// What the hybrid build keeps primal: the top dimension's columns (the others empty, of dimension 0).
topology::BoundaryMatrix top_dimension_only(const topology::BoundaryMatrix& m) {
  const int top = m.max_dim();
  topology::BoundaryMatrix out;
  for (Index j = 0; j < m.num_columns(); ++j) {
    if (m.dim(j) == top) out.append_column(top, m.column(j));
    else out.append_column(0, std::vector<topology::Row>{});
  }
  return out;
}

void expect_same_matrix(const topology::BoundaryMatrix& got, const topology::BoundaryMatrix& want, const std::string& what) {
  ASSERT_EQ(got.num_columns(), want.num_columns()) << what;
  for (Index j = 0; j < want.num_columns(); ++j) {
    const auto a = got.column(j), b = want.column(j);
    if (got.dim(j) == -1) {  // held by no rank: it must be empty
      ASSERT_TRUE(b.empty()) << what << ", column " << j << " (not held)";
      continue;
    }
    ASSERT_EQ(got.dim(j), want.dim(j)) << what << ", column " << j;
    ASSERT_EQ(std::vector<topology::Row>(a.begin(), a.end()), std::vector<topology::Row>(b.begin(), b.end())) << what << ", column " << j;
  }
}

}  // namespace

TEST(DistributedCone, SameMatrixBarsAndTagsAsTheSerialBuild) {
  std::mt19937 rng(91);
  for (int trial = 0; trial < 40; ++trial) {
    const int max_dim = 1 + trial % 4;
    const auto ops = test_inputs::random_zigzag(rng, 7 + trial % 5, max_dim, 5 + trial * 4, 0.35);
    Index first = 0;
    const auto mine = my_slice(ops, rng, &first);
    std::vector<int> tags;
    for (std::size_t i = 0; i < mine.size(); ++i) tags.push_back(3 * static_cast<int>(first + static_cast<Index>(i)) + 1);
    const int end_tag = -7;
    const auto serial = topology::build_cone_matrix(ops);
    const auto serial_bars = topology::read_out_bars(serial, topology::reduce_twist(serial.matrix));
    for (const char* dualize : {"false", "true", "hybrid"})
      for (Index chunk : {Index{0}, Index{3}}) {
        const std::string what = "trial " + std::to_string(trial) + ", dualize " + dualize + ", chunk " + std::to_string(chunk);
        auto cone = topology::build_cone_distributed(mine, &tags, end_tag, MPI_COMM_WORLD, dualize, chunk);
        EXPECT_EQ(cone.num_columns, serial.matrix.num_columns()) << what;
        EXPECT_EQ(cone.dualized, std::string(dualize) != "false");
        EXPECT_EQ(cone.top_primal, std::string(dualize) == "hybrid");
        const auto gathered = gather_matrix(cone, cone.columns, cone.ownership(world_size()));
        const auto gathered_top = gather_matrix(cone, cone.top_columns, cone.top_ownership(world_size()));
        if (world_rank() == 0) {
          const int top = serial.matrix.max_dim();
          if (!cone.dualized) expect_same_matrix(gathered, serial.matrix, what);
          else expect_same_matrix(gathered, topology::anti_transpose(serial.matrix, cone.top_primal ? top : -1), what);
          if (cone.top_primal) expect_same_matrix(gathered_top, top_dimension_only(serial.matrix), what + ", top");
          else EXPECT_EQ(gathered_top.num_entries(), 0) << what;
        }
        const auto bars = topology::reduce_and_read_out_distributed(cone, MPI_COMM_WORLD, end_tag);
        if (world_rank() != 0) {
          EXPECT_TRUE(bars.empty());
          continue;
        }
        ASSERT_EQ(bars.size(), serial_bars.size()) << what;
        const auto m = static_cast<Index>(ops.size());
        for (std::size_t b = 0; b < bars.size(); ++b) {
          EXPECT_EQ(bars[b].bar, serial_bars[b]) << what << ", bar " << b;
          EXPECT_EQ(bars[b].birth_tag, 3 * static_cast<int>(bars[b].bar.birth - 1) + 1) << what;
          EXPECT_EQ(bars[b].death_tag, bars[b].bar.death < m ? 3 * static_cast<int>(bars[b].bar.death) + 1 : end_tag) << what;
        }
      }
  }
}

// The hybrid dualization with two groups of ranks (top_ranks > 0) gives the serial bars for every
// group size (clamped to P - 1; one rank has no groups), with and without chunks and with the rows
// split: the anti-transpose lies on ranks [0, dual_ranks) only, the top columns on the others only,
// and every step's table row carries its world rank.
TEST(DistributedCone, RankGroupsGiveTheSerialBars) {
  std::mt19937 rng(707);
  const int P = world_size();
  for (int trial = 0; trial < 10; ++trial) {
    const auto ops = test_inputs::random_zigzag(rng, 9, 1 + trial % 3, 50 + trial * 12, 0.35);
    const auto serial = topology::build_cone_matrix(ops);
    const auto want = topology::read_out_bars(serial, topology::reduce_twist(serial.matrix));
    const auto mine = my_slice(ops, rng);
    for (const int top_ranks : {1, P - 1, P + 3})
      for (const topology::Index chunk : {topology::Index{0}, topology::Index{5}})
        for (const bool split_rows : {false, true}) {
          const std::string what = "trial " + std::to_string(trial) + ", top ranks " + std::to_string(top_ranks) + ", chunk " +
                                   std::to_string(chunk) + (split_rows ? ", rows split" : "");
          auto cone = topology::build_cone_distributed(mine, nullptr, 0, MPI_COMM_WORLD, "hybrid", chunk, top_ranks);
          const int dual_ranks = P > 1 && top_ranks > 0 ? P - std::min(top_ranks, P - 1) : 0;
          EXPECT_EQ(cone.dual_ranks, dual_ranks) << what;
          if (dual_ranks > 0) {
            if (world_rank() < dual_ranks) {
              EXPECT_TRUE(cone.top_columns.words.empty()) << what;
            } else {
              EXPECT_TRUE(cone.columns.words.empty()) << what;
            }
          }
          std::vector<topology::ReductionStepStats> stats;
          const auto bars = topology::reduce_and_read_out_distributed(cone, MPI_COMM_WORLD, 0, &stats, "auto", {0, split_rows});
          for (const auto& row : stats) EXPECT_EQ(row.rank, world_rank()) << what;
          if (world_rank() != 0) continue;
          std::vector<topology::ZigzagBar> got;
          for (const auto& b : bars) got.push_back(b.bar);
          EXPECT_EQ(got, want) << what;
        }
  }
}

// Every kind of invalid sequence, planted at a random place of a valid one: the distributed build
// raises on every rank the error (operation and reason) the serial build raises.
TEST(DistributedCone, SameFirstErrorAsTheSerialBuild) {
  std::mt19937 rng(5);
  int checked = 0;
  for (int trial = 0; trial < 120; ++trial) {
    auto ops = test_inputs::random_zigzag(rng, 6, 2, 30 + trial % 20, 0.3);
    const auto at = std::uniform_int_distribution<std::size_t>(0, ops.size() - 1)(rng);
    switch (trial % 6) {
      case 0: ops.insert(ops.begin() + static_cast<std::ptrdiff_t>(at), ops[at]); break;  // a repeat (present / absent)
      case 1: ops.erase(ops.begin() + static_cast<std::ptrdiff_t>(at)); break;            // an op missing
      case 2: std::swap(ops[at], ops[(at + 1) % ops.size()]); break;                         // two ops out of order
      case 3: ops.insert(ops.begin() + static_cast<std::ptrdiff_t>(at), {false, ops[at].simplex}); break;
      case 4: ops[at].simplex.push_back(ops[at].simplex.back()); break;                        // a repeated vertex
      default: ops[at].insert = !ops[at].insert; break;
    }
    std::optional<topology::InvalidZigzag> want;
    try {
      topology::build_cone_matrix(ops);
    } catch (const topology::InvalidZigzag& e) {
      want = e;
    }
    const auto mine = my_slice(ops, rng);
    std::optional<topology::InvalidZigzag> got;
    try {
      topology::build_cone_distributed(mine, nullptr, 0, MPI_COMM_WORLD, "true");
    } catch (const topology::InvalidZigzag& e) {
      got = e;
    }
    ASSERT_EQ(got.has_value(), want.has_value()) << "trial " << trial;
    if (!want) continue;
    ++checked;
    EXPECT_EQ(got->op_index, want->op_index) << "trial " << trial << ": " << want->reason << " / " << got->reason;
    EXPECT_EQ(got->reason, want->reason) << "trial " << trial;
  }
  EXPECT_GT(checked, 60);
}

// The facet look-ups and exchange 1's events in rounds (set_facets_per_round, set_events_per_round:
// 1 a round, a few, and a round that ends inside a rank's share) build the serial matrix and its
// bars, and raise the serial build's first error: ranks with fewer facets or events take part in
// every round, some of them empty.
TEST(DistributedCone, FacetLookUpsInRounds) {
  std::mt19937 rng(17);
  const std::size_t standard = topology::facets_per_round(), standard_events = topology::events_per_round();
  for (int trial = 0; trial < 12; ++trial) {
    auto ops = test_inputs::random_zigzag(rng, 7, 1 + trial % 3, 20 + 3 * trial, 0.3);
    if (trial % 3 == 2) ops.erase(ops.begin() + static_cast<std::ptrdiff_t>(ops.size() / 2));  // most become invalid
    std::optional<topology::InvalidZigzag> want;
    topology::ConeMatrix serial;
    try {
      serial = topology::build_cone_matrix(ops);
    } catch (const topology::InvalidZigzag& e) {
      want = e;
    }
    const auto mine = my_slice(ops, rng);
    for (std::size_t per_round : {std::size_t{1}, std::size_t{3}, std::size_t{7}}) {
      const std::string what = "trial " + std::to_string(trial) + ", " + std::to_string(per_round) + " facets and events a round";
      topology::set_facets_per_round(per_round);
      topology::set_events_per_round(per_round);
      std::optional<topology::InvalidZigzag> got;
      topology::DistributedCone cone;
      try {
        cone = topology::build_cone_distributed(mine, nullptr, 0, MPI_COMM_WORLD, "true");
      } catch (const topology::InvalidZigzag& e) {
        got = e;
      }
      topology::set_facets_per_round(standard);
      topology::set_events_per_round(standard_events);
      ASSERT_EQ(got.has_value(), want.has_value()) << what;
      if (want) {
        EXPECT_EQ(got->op_index, want->op_index) << what;
        EXPECT_EQ(got->reason, want->reason) << what;
        continue;
      }
      const auto gathered = gather_matrix(cone, cone.columns, cone.ownership(world_size()));
      if (world_rank() == 0) expect_same_matrix(gathered, topology::anti_transpose(serial.matrix, -1), what);
    }
  }
}

// The read-out in rounds (set_pairs_per_round: 1 pair a round, a few, and more than most ranks
// have): the serial bars and tags, with negative tags, ranks holding fewer pairs taking part in
// every round.
TEST(DistributedCone, ReadOutInRounds) {
  std::mt19937 rng(29);
  const std::size_t standard = topology::pairs_per_round();
  for (int trial = 0; trial < 8; ++trial) {
    const auto ops = test_inputs::random_zigzag(rng, 8, 1 + trial % 3, 25 + 4 * trial, 0.3);
    Index first = 0;
    const auto mine = my_slice(ops, rng, &first);
    std::vector<int> tags;
    for (std::size_t i = 0; i < mine.size(); ++i) tags.push_back(-5 * static_cast<int>(first + static_cast<Index>(i)) - 2);
    const int end_tag = 11;
    const auto serial = topology::build_cone_matrix(ops);
    const auto serial_bars = topology::read_out_bars(serial, topology::reduce_twist(serial.matrix));
    const auto m = static_cast<Index>(ops.size());
    for (std::size_t per_round : {std::size_t{1}, std::size_t{4}, std::size_t{20}}) {
      const std::string what = "trial " + std::to_string(trial) + ", " + std::to_string(per_round) + " pairs a round";
      auto cone = topology::build_cone_distributed(mine, &tags, end_tag, MPI_COMM_WORLD, trial % 2 ? "hybrid" : "false");
      topology::set_pairs_per_round(per_round);
      const auto bars = topology::reduce_and_read_out_distributed(cone, MPI_COMM_WORLD, end_tag);
      topology::set_pairs_per_round(standard);
      if (world_rank() != 0) continue;
      ASSERT_EQ(bars.size(), serial_bars.size()) << what;
      for (std::size_t b = 0; b < bars.size(); ++b) {
        EXPECT_EQ(bars[b].bar, serial_bars[b]) << what << ", bar " << b;
        EXPECT_EQ(bars[b].birth_tag, -5 * static_cast<int>(bars[b].bar.birth - 1) - 2) << what;
        EXPECT_EQ(bars[b].death_tag, bars[b].bar.death < m ? -5 * static_cast<int>(bars[b].bar.death) - 2 : end_tag) << what;
      }
    }
  }
}

// The hybrid's anti-transpose is dealt in blocks of equal words (dual_entry_bounds), not of equal
// columns, which left the block of the first cells (the last rank's) the most entries: every rank's
// share of the words is within 1/5 of the mean, plus a column's.
TEST(DistributedCone, HybridAntiTransposeInBlocksOfEqualWords) {
  std::mt19937 rng(23);
  for (int trial = 0; trial < 3; ++trial) {
    const auto ops = test_inputs::random_zigzag(rng, 40, 2, 1500 + 500 * trial, 0.2);
    auto cone = topology::build_cone_distributed(my_slice(ops, rng), nullptr, 0, MPI_COMM_WORLD, "hybrid");
    ASSERT_TRUE(cone.top_primal);
    // The words counted: a header for every owned column, held or left out empty, and the entries.
    long long held = 0;
    cone.columns.for_each([&](topology::Row, std::size_t) { ++held; });
    long long mine = static_cast<long long>(cone.columns.words.size()) + 2 * (cone.ownership(world_size()).local_count(world_rank()) - held);
    long long most = mine, all = mine;
    MPI_Allreduce(MPI_IN_PLACE, &most, 1, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    const double mean = static_cast<double>(all) / world_size();
    EXPECT_LE(static_cast<double>(most), 1.2 * mean + 40) << "trial " << trial << ": " << most << " words against a mean of " << mean;
  }
}

// Fewer operations than ranks, and none at all: every rank takes part and the bars are the serial ones.
TEST(DistributedCone, TinyAndEmptyZigzags) {
  const std::vector<std::vector<topology::ZigzagOp>> cases = {
      {}, {{true, {0}}}, {{true, {0}}, {false, {0}}}, {{true, {0}}, {true, {1}}, {true, {0, 1}}}};
  std::mt19937 rng(1);
  for (const auto& ops : cases) {
    const auto serial = topology::build_cone_matrix(ops);
    const auto want = topology::read_out_bars(serial, topology::reduce_twist(serial.matrix));
    const auto mine = my_slice(ops, rng);
    auto cone = topology::build_cone_distributed(mine, nullptr, 0, MPI_COMM_WORLD, "auto");
    const auto bars = topology::reduce_and_read_out_distributed(cone, MPI_COMM_WORLD, 0);
    if (world_rank() != 0) continue;
    std::vector<topology::ZigzagBar> got;
    for (const auto& b : bars) got.push_back(b.bar);
    EXPECT_EQ(got, want) << ops.size() << " ops";
  }
}

// exchange_blocks splits at max_message_elements() like every large-count transfer.
TEST(DistributedCone, ExchangeBlocksInPieces) {
  const int rank = world_rank(), size = world_size();
  for (std::size_t piece : {std::size_t{1}, std::size_t{4}, std::numeric_limits<std::size_t>::max()}) {
    mpi::set_max_message_elements(piece);
    std::vector<std::vector<std::int64_t>> out(static_cast<std::size_t>(size));
    for (int d = 0; d < size; ++d)
      for (int i = 0; i < (rank * 7 + d * 3) % 11; ++i) out[static_cast<std::size_t>(d)].push_back(1000 * rank + 10 * d + i);
    const auto in = mpi::exchange_blocks(MPI_COMM_WORLD, std::move(out), MPI_INT64_T);
    ASSERT_EQ(in.size(), static_cast<std::size_t>(size));
    for (int s = 0; s < size; ++s) {
      std::vector<std::int64_t> want;
      for (int i = 0; i < (s * 7 + rank * 3) % 11; ++i) want.push_back(1000 * s + 10 * rank + i);
      EXPECT_EQ(in[static_cast<std::size_t>(s)], want) << "from " << s << ", piece " << piece;
    }
  }
  mpi::set_max_message_elements(std::numeric_limits<std::size_t>::max());
}

// The speculative pipeline (--speculate-runs) gives the serial bars for every run length (1: every
// column's predecessor is another rank's, so checks fail and columns are redone or resumed all the
// time), column order, dualization and ownership (blocks and chunks), and with more than one rank
// it does redo columns: the check is exercised, not bypassed.
TEST(DistributedCone, SpeculativeRunsGiveTheSerialBars) {
  std::mt19937 rng(505);
  long long redone = 0;
  for (int trial = 0; trial < 10; ++trial) {
    const auto ops = test_inputs::random_zigzag(rng, 9, 3, 60 + trial * 10, 0.35);
    const auto serial = topology::build_cone_matrix(ops);
    const auto want = topology::read_out_bars(serial, topology::reduce_twist(serial.matrix));
    const auto mine = my_slice(ops, rng);
    for (const std::size_t run : {std::size_t{1}, std::size_t{3}, std::size_t{16}, std::size_t{100000}})
      for (const char* order : {"natural", "upper-first,natural", "auto"})
        for (const char* dualize : {"false", "true", "hybrid"})
          for (const topology::Index chunk : {topology::Index{0}, topology::Index{7}}) {
            auto cone = topology::build_cone_distributed(mine, nullptr, 0, MPI_COMM_WORLD, dualize, chunk);
            std::vector<topology::ReductionStepStats> stats;
            const auto bars = topology::reduce_and_read_out_distributed(cone, MPI_COMM_WORLD, 0, &stats, order, {run, false});
            for (const auto& row : stats) redone += row.columns_redone;
            if (world_rank() != 0) continue;
            std::vector<topology::ZigzagBar> got;
            for (const auto& b : bars) got.push_back(b.bar);
            EXPECT_EQ(got, want) << "trial " << trial << ", run " << run << ", order " << order << ", dualize " << dualize
                                 << ", chunk " << chunk;
          }
  }
  MPI_Allreduce(MPI_IN_PLACE, &redone, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  if (world_size() > 1) {
    EXPECT_GT(redone, 0) << "no speculated column was ever redone: the check is not exercised";
  } else {
    EXPECT_EQ(redone, 0) << "one rank reduces as before";
  }
}

// The rows split over the ranks (--row-split) give the serial bars for every column order (the
// steps in index order split, the others by pivots), dualization and ownership (blocks and chunks),
// and with more than one rank more than one rank finds pivots: the additions are shared, not all
// left to the top rank or forwarded down whole.
TEST(DistributedCone, RowSplitGivesTheSerialBars) {
  std::mt19937 rng(606);
  long long split_steps = 0;
  std::vector<long long> driven(static_cast<std::size_t>(world_size()), 0);
  for (int trial = 0; trial < 12; ++trial) {
    const auto ops = test_inputs::random_zigzag(rng, 9, 3, 60 + trial * 10, 0.35);
    const auto serial = topology::build_cone_matrix(ops);
    const auto want = topology::read_out_bars(serial, topology::reduce_twist(serial.matrix));
    const auto mine = my_slice(ops, rng);
    for (const char* order : {"natural", "upper-first,natural", "auto"})
      for (const char* dualize : {"false", "true", "hybrid"})
        for (const topology::Index chunk : {topology::Index{0}, topology::Index{7}}) {
          auto cone = topology::build_cone_distributed(mine, nullptr, 0, MPI_COMM_WORLD, dualize, chunk);
          std::vector<topology::ReductionStepStats> stats;
          const auto bars = topology::reduce_and_read_out_distributed(cone, MPI_COMM_WORLD, 0, &stats, order, {0, true});
          for (const auto& row : stats) {
            split_steps += row.rows_split ? 1 : 0;
            driven[static_cast<std::size_t>(world_rank())] += row.driven;
          }
          if (world_rank() != 0) continue;
          std::vector<topology::ZigzagBar> got;
          for (const auto& b : bars) got.push_back(b.bar);
          EXPECT_EQ(got, want) << "trial " << trial << ", order " << order << ", dualize " << dualize << ", chunk " << chunk;
        }
  }
  MPI_Allreduce(MPI_IN_PLACE, driven.data(), world_size(), MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  if (world_size() > 1) {
    EXPECT_GT(split_steps, 0) << "no step was reduced with split rows";
    EXPECT_GE(std::count_if(driven.begin(), driven.end(), [](long long d) { return d > 0; }), 2)
        << "one rank found every pivot: the rows were not shared";
  } else {
    EXPECT_EQ(split_steps, 0) << "one rank reduces as before";
  }
  EXPECT_THROW(topology::reduce_distributed_owned({}, 0, MPI_COMM_WORLD, nullptr, 0, "auto", {4, true}), std::invalid_argument);
}

// Where the rows split: each rank's start is a quantile of the step's initial pivots, (r / P)^1.6,
// from 0 to n and never decreasing, whatever the histogram.
TEST(DistributedCone, RowSplitBoundsAreQuantilesOfThePivots) {
  EXPECT_DOUBLE_EQ(topology::row_split_start(0, 2), 0.0);
  EXPECT_NEAR(topology::row_split_start(1, 2), 0.33, 0.005);
  EXPECT_DOUBLE_EQ(topology::row_split_start(4, 4), 1.0);
  // 100 rows in 10 bins; pivots only in rows 60-69 and 90-99, twice as many in the first.
  std::vector<double> histogram(10, 0.0);
  histogram[6] = 200;
  histogram[9] = 100;
  const auto two = topology::row_split_bounds(histogram, 100, 2);
  ASSERT_EQ(two.size(), 3u);
  EXPECT_EQ(two.front(), 0);
  EXPECT_EQ(two.back(), 100);
  EXPECT_EQ(two[1], 64);  // 0.33 of the 300 pivots lie below: about half of bin 6's 200, spread over rows 60-69
  const auto four = topology::row_split_bounds(std::vector<double>(8, 0.0), 50, 4);  // no pivots: nothing to split
  EXPECT_EQ(four, (std::vector<Index>{0, 0, 0, 0, 50}));
}

namespace {

// Rank `rank`'s columns of `all` (column j: all[j] = [dim, size, rows...]) under `own`, the empty ones
// left out, as the build deals them.
topology::OwnedColumns dealt(const std::vector<std::vector<topology::Row>>& all, const topology::PivotOwnership& own, int rank) {
  topology::OwnedColumns mine;
  topology::Row position = 0;
  own.for_each_owned(rank, [&](Index j) {
    const auto& column = all[static_cast<std::size_t>(j)];
    if (column[1] > 0) {
      mine.words.insert(mine.words.end(), column.begin(), column.end());
      mine.positions.push_back(position);
    }
    ++position;
  });
  return mine;
}

}  // namespace

// Redealing moves every column to its owner under the new ownership, in that owner's local order
// (checked against dealing the same columns directly), and back again.
TEST(DistributedCone, RedealMovesEveryColumnToItsNewOwner) {
  std::mt19937 rng(515);
  const int P = world_size();
  for (int trial = 0; trial < 20; ++trial) {
    const Index N = 1 + trial * 7;
    std::vector<std::vector<topology::Row>> all(static_cast<std::size_t>(N));
    for (Index j = 0; j < N; ++j) {
      const auto size = std::uniform_int_distribution<Index>(0, std::min<Index>(j, 5))(rng);
      std::vector<topology::Row> rows;
      for (Index r = 0; r < j && static_cast<Index>(rows.size()) < size; ++r)
        if (std::uniform_int_distribution<int>(0, 2)(rng) == 0) rows.push_back(static_cast<topology::Row>(r));
      all[static_cast<std::size_t>(j)] = {static_cast<topology::Row>(j % 3), static_cast<topology::Row>(rows.size())};
      all[static_cast<std::size_t>(j)].insert(all[static_cast<std::size_t>(j)].end(), rows.begin(), rows.end());
    }
    const topology::PivotOwnership blocks(N, P, topology::default_pivot_chunk(N, P));
    std::vector<Index> starts = {0};
    for (int k = 1; k < 2 * P; ++k) starts.push_back(std::uniform_int_distribution<Index>(0, N)(rng));
    starts.push_back(N);
    std::sort(starts.begin(), starts.end());
    std::vector<int> owners;
    for (int k = 0; k < 2 * P; ++k) owners.push_back((k + trial) % P);
    const topology::PivotOwnership intervals(N, starts, owners);
    auto columns = dealt(all, blocks, world_rank());
    topology::redeal_columns(columns, blocks, intervals, MPI_COMM_WORLD);
    const auto want = dealt(all, intervals, world_rank());
    EXPECT_EQ(columns.words, want.words) << "trial " << trial;
    EXPECT_EQ(columns.positions, want.positions) << "trial " << trial;
    topology::redeal_columns(columns, intervals, blocks, MPI_COMM_WORLD);
    const auto back = dealt(all, blocks, world_rank());
    EXPECT_EQ(columns.words, back.words) << "trial " << trial << ", back";
    EXPECT_EQ(columns.positions, back.positions) << "trial " << trial << ", back";
  }
}

// The upper-first step's rows: each half of the rows in one block per rank, ranks 0..P-1 from the
// bottom in both, the boundary between the halves at N / 2.
TEST(DistributedCone, HalvesOwnershipSplitsEachHalf) {
  std::mt19937 rng(616);
  const int P = world_size();
  for (int trial = 0; trial < 6; ++trial) {
    const auto ops = test_inputs::random_zigzag(rng, 9, 2, 60 + trial * 15, 0.35);
    auto cone = topology::build_cone_distributed(my_slice(ops, rng), nullptr, 0, MPI_COMM_WORLD, "hybrid");
    const Index N = cone.num_columns;
    const auto halves = topology::halves_ownership(cone.columns, cone.ownership(P), cone.top_dim - 1, N, MPI_COMM_WORLD);
    ASSERT_EQ(halves.starts().size(), static_cast<std::size_t>(2 * P + 1)) << "trial " << trial;
    EXPECT_EQ(halves.starts()[static_cast<std::size_t>(P)], N / 2) << "trial " << trial;
    for (int k = 0; k < 2 * P; ++k) EXPECT_EQ(halves.owners()[static_cast<std::size_t>(k)], k % P) << "trial " << trial;
    Index owned = 0;
    for (int r = 0; r < P; ++r) owned += halves.local_count(r);
    EXPECT_EQ(owned, N) << "trial " << trial;
  }
}

// Every column order (and per-dimension list) gives the serial bars: the swap rule makes the pairs
// independent of the order in which a rank takes its columns.
TEST(DistributedCone, EveryColumnOrderGivesTheSerialBars) {
  std::mt19937 rng(404);
  for (int trial = 0; trial < 15; ++trial) {
    const auto ops = test_inputs::random_zigzag(rng, 8, 3, 40 + trial * 6, 0.35);
    const auto serial = topology::build_cone_matrix(ops);
    const auto want = topology::read_out_bars(serial, topology::reduce_twist(serial.matrix));
    const auto mine = my_slice(ops, rng);
    for (const char* order : {"natural", "received-first", "upper-first", "upper-first-received", "upper-thirds", "upper-first,natural", "natural,upper-first",
                              "upper-first,upper-first,upper-thirds", "auto"})
      for (const char* dualize : {"false", "true", "hybrid"}) {
        auto cone = topology::build_cone_distributed(mine, nullptr, 0, MPI_COMM_WORLD, dualize);
        const auto bars = topology::reduce_and_read_out_distributed(cone, MPI_COMM_WORLD, 0, nullptr, order);
        if (world_rank() != 0) continue;
        std::vector<topology::ZigzagBar> got;
        for (const auto& b : bars) got.push_back(b.bar);
        EXPECT_EQ(got, want) << "trial " << trial << ", order " << order << ", dualize " << dualize;
      }
  }
  EXPECT_THROW(topology::require_column_order("upper-first,sideways"), std::invalid_argument);
  EXPECT_THROW(topology::require_column_order(""), std::invalid_argument);
}
