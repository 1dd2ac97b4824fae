// The FastZigzag cone matrix built by every rank from its own slice of the operations, so that no
// rank ever holds the whole filtration (issue 17): simplices are looked up at the rank their hash
// names, every column goes straight from the rank that built it to the rank that reduces it, and
// the bars are read out where the pairs are. The same matrix, pairs and bars as build_cone_matrix,
// reduce_by_name and read_out_bars (tests/cpp/test_cone_distributed.cpp checks all of them).
#pragma once
#include <mpi.h>

#include <string>
#include <vector>

#include "topology/boundary_matrix.hpp"
#include "topology/pivot_ownership.hpp"
#include "topology/reducers.hpp"
#include "topology/zigzag.hpp"

namespace lmtopo::topology {

// What the read-out needs of one cone-matrix column: the operation it stands for (an insertion's, or
// the deletion's of a cone column; >= m for the virtual deletions at the end), its dimension, and
// the caller's tag of that operation (a zigzag position; `end_tag` for virtual deletions).
struct ConeColumnInfo {
  Index op = -1;
  int dim = 0;
  int tag = 0;
};

// One rank's part of a cone matrix.
struct DistributedCone {
  Index num_ops = 0;         // m, over all ranks
  Index num_insertions = 0;  // n
  Index num_columns = 0;     // 2n + 1
  bool dualized = false;     // `columns` are the anti-transpose's
  // Duality::hybrid: the top dimension's columns are kept primal in `top_columns` (their pairs come
  // from the primal reduction, which needs no clearing there) and left out of the anti-transpose.
  bool top_primal = false;
  int top_dim = 0;           // the cone matrix's largest dimension
  // top_primal with two rank groups reducing at once (build_cone_distributed's top_ranks): ranks
  // [0, dual_ranks) hold and reduce the anti-transpose, the others the top columns; 0: every rank
  // holds its share of both, reduced one after the other.
  int dual_ranks = 0;
  Index top_pivot_chunk = 0;  // the ownership `top_columns` are dealt by, within their group,
  std::vector<Index> top_row_bounds;  // unless these are given: one block each (top_pivot_bounds)
  Index pivot_chunk = 0;     // the ownership `columns` are dealt by (reduce_distributed_owned's),
  bool pivot_chunk_given = false;  // (by the caller: kept as it is)
  std::vector<Index> dual_bounds;  // unless these blocks are given (the hybrid's: dual_entry_bounds)
  std::vector<Index> row_starts;   // unless these intervals are given, owned by row_owners (PivotOwnership:
  std::vector<int> row_owners;     // reduce_and_read_out_distributed's halves_ownership)
  OwnedColumns columns;      // this rank's columns to reduce with rows (the empty ones left out)
  OwnedColumns top_columns;  // top_primal: this rank's primal columns of the top dimension, the same way
  Index info_first = 0;      // this rank's block of read-out records: columns info_first.. of the
  std::vector<ConeColumnInfo> info;  // primal cone matrix, in contiguous blocks of ceil(N / P)

  PivotOwnership top_ownership(int ranks) const {
    return top_row_bounds.empty() ? PivotOwnership(num_columns, ranks, top_pivot_chunk) : PivotOwnership(num_columns, top_row_bounds);
  }
  PivotOwnership ownership(int ranks) const {
    if (!row_starts.empty()) return PivotOwnership(num_columns, row_starts, row_owners);
    return dual_bounds.empty() ? PivotOwnership(num_columns, ranks, pivot_chunk) : PivotOwnership(num_columns, dual_bounds);
  }
  Duality duality() const { return top_primal ? Duality::hybrid : dualized ? Duality::dualized : Duality::primal; }
};

// Removes, from every column of dimension `dim` in a reducer's layout ([dim, size, rows...] each),
// the rows marked in `drop` (compression: rows of negative cells, which no pair changes without).
void drop_rows_of_dim(std::vector<Row>& columns, int dim, const std::vector<bool>& drop);

// Moves every column `columns` holds (dealt by `from`) to its rank under `to`; on return `columns`
// holds this rank's columns under `to`, the same ones (an empty column left out stays out). Collective.
void redeal_columns(OwnedColumns& columns, const PivotOwnership& from, const PivotOwnership& to, MPI_Comm comm);

// Rows for a step taken upper-first (all columns of index >= N / 2 before any below) on the ranks of
// `comm`: each half of the rows split into one block per rank, at the quantiles (r / P)^1.6 of the
// initial pivots (row_split_bounds) of the step's columns of dimension `dim` that are reduced in that
// half's phase (upper columns with a pivot in the upper half; lower columns). Ranks 0..P-1 bottom
// to top in both halves. `columns` are this rank's, dealt by `dealt`. Collective.
PivotOwnership halves_ownership(const OwnedColumns& columns, const PivotOwnership& dealt, int dim, Index N, MPI_Comm comm);

// The measured rule for top_ranks when none is given (docs/benchmarks.md, "Compression of the
// bars-1 step"): 0, every rank both reductions one after the other, since the second is compressed
// by the first's pairs (reduce_and_read_out_distributed) and groups reduce both at once. At 10^7
// operations, 2 ranks: 37.0 s against 36.7 s with groups (medians of 3, interleaved), peaks 704 /
// 677 MiB against 866 / 698; 4 ranks: 45.3 against 53.4 s, largest peak 539 against 590-816 MiB.
int auto_top_ranks(int ranks);

// Builds the cone matrix of the zigzag whose operations are the ranks' `ops` slices concatenated in
// rank order. `tags` (one per local op, or null: all 0) and `end_tag` label operations for
// read_out_bars_distributed. `dualize` is resolve_dualize's mode ("auto", "true", "false", "hybrid").
// Throws InvalidZigzag with the global op index and the same reason as build_cone_matrix, on every
// rank, for an invalid sequence. Simplices of more than 32 vertices are refused (std::invalid_argument).
// With the hybrid dualization and `top_ranks` > 0 on more than one rank, the last min(top_ranks, P - 1)
// ranks hold the top columns and the others the anti-transpose, so that the two reduce at once.
// Collective.
DistributedCone build_cone_distributed(const ZigzagOpList& ops, const std::vector<int>* tags, int end_tag, MPI_Comm comm,
                                       const std::string& dualize, Index pivot_chunk = 0, int top_ranks = 0);

// The build looks up its facets in rounds of at most this many per rank (2^21 by default: 48 MiB
// of questions for simplices of up to 4 vertices); tests lower it to exercise the rounds.
std::size_t facets_per_round();
void set_facets_per_round(std::size_t facets);
// Exchange 1 sends the operations' events in rounds of about this many per rank (2^21 by default:
// 64 MiB of events for simplices of up to 4 vertices); tests lower it to exercise the rounds.
std::size_t events_per_round();
void set_events_per_round(std::size_t events);
// The read-out asks for its pairs' records in rounds of at most this many pairs per rank (2^19 by
// default: 4 MiB of questions, 16 MiB of answers); tests lower it to exercise the rounds.
std::size_t pairs_per_round();
void set_pairs_per_round(std::size_t pairs);

// A bar with the tags of the operations that bound it: birth_tag the born op's, death_tag the
// killing op's (end_tag when it lives to the end).
struct TaggedBar {
  ZigzagBar bar;
  int birth_tag = 0;
  int death_tag = 0;
};

// Reduces `cone` with the distributed reducer (its columns taken in `column_order`, the steps as
// `step_methods` says: see reduce_distributed_owned) and reads out the bars: every rank's pairs are read out
// where they are (looking up their columns' records at the ranks holding them), and the bars are
// gathered on rank 0, sorted as read_out_bars sorts them (empty elsewhere). `cone.columns` is freed.
// Collective.
std::vector<TaggedBar> reduce_and_read_out_distributed(DistributedCone& cone, MPI_Comm comm, int end_tag,
                                                       std::vector<ReductionStepStats>* stats = nullptr,
                                                       const std::string& column_order = "auto",
                                                       StepMethods step_methods = {});

// The same bars, each left on the rank that read it out, in no order (for writing them from every
// rank: mpi::sort_distributed). Collective.
std::vector<TaggedBar> reduce_and_read_out_local(DistributedCone& cone, MPI_Comm comm, int end_tag,
                                                 std::vector<ReductionStepStats>* stats = nullptr,
                                                 const std::string& column_order = "auto", StepMethods step_methods = {});

}  // namespace lmtopo::topology
