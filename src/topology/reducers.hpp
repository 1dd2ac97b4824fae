// Interchangeable reduction algorithms over Z/2, selected by name at run time (PHAT's design):
// every algorithm returns the same persistence pairs for the same matrix, which the self-test checks.
#pragma once
#include <mpi.h>

#include <string>
#include <vector>

#include "topology/boundary_matrix.hpp"

namespace lmtopo::topology {

// Standard reduction with clearing ("twist"): dimensions high to low; a column that became a pivot
// row of a reduced column is zero after reduction, so it is skipped.
std::vector<PersistencePair> reduce_twist(const BoundaryMatrix& matrix);

// Chunk algorithm: contiguous column chunks are reduced in parallel threads using only columns of
// their own chunk; the columns whose pivots are still ambiguous are then finished serially.
std::vector<PersistencePair> reduce_chunk(const BoundaryMatrix& matrix, int threads);

// One row of the --benchmark table of the distributed reducer: one rank, one dimension.
struct ReductionStepStats {
  int rank = 0;
  int dim = 0;      // dimension of the columns reduced in this step
  int bar_dim = -1; // the dimension of the bars its pairs make: primal dim - 1, dualized top - dim (-1: not known)
  int batches = 0;  // batches of columns received from other ranks
  double seconds = 0;
  double wait_seconds = 0;  // of `seconds`, idle: nothing to reduce until other ranks send columns
  long peak_rss_kib = 0;
  long long bytes_sent = 0;
  long long bytes_received = 0;
  long long columns_in = 0;        // columns reduced this step (own and received)
  long long columns_forwarded = 0; // columns sent on to the owner of their pivot
  long long columns_redone = 0;    // speculative steps: columns of this rank's runs reduced again after the check
  bool rows_split = false;         // the step was reduced with the rows split over the ranks
  long long driven = 0;            // such a step: column additions whose pivot this rank found
  // Distributed reducer, steps not row-split: stored columns added into columns reduced here, and
  // their entries (an estimate from the stored bytes, 2 a row). The work an order costs: the swap
  // rule makes it depend on which columns meet first, the time on the machine as well.
  long long additions = 0;
  long long entries_added = 0;
  // Row loans: loans of rows this rank took from the rank below it, and gave to the rank above.
  long long loans_taken = 0;
  long long loans_given = 0;
  // The last step: bytes of this rank's dealt columns given back as it read them (ReleaseBehind).
  long long bytes_released = 0;
};

// The last step of the distributed reducer gives back the pages of the dealt columns it has read
// in pieces of at least this many bytes (default 1 MiB: one madvise a MiB; tests lower it to a page
// so that small matrices exercise it).
std::size_t release_granularity();
void set_release_granularity(std::size_t bytes);

// DIPHA-style distributed reduction over the ranks of `comm`. Rank 0 holds the whole matrix
// (`root_matrix`, ignored elsewhere) and sends each rank its columns, one rank's block at a time. Rows and columns are dealt out in chunks of
// `pivot_chunk` consecutive indices, round robin (0: default_pivot_chunk, one block per rank): a
// rank stores the reduced column at each pivot row it owns and reduces every column whose pivot is
// one of its rows, sending it on to the owner of its next pivot in batches with non-blocking sends
// while it goes on reducing.
// One asynchronous round per dimension (high to low, clearing as the twist reducer), ended by a
// count of finished columns. Chunks smaller than the blocks interleave the ownership, to spread the
// band of pivots that holds most of the work over the ranks. Pairs are returned on rank 0 (empty
// elsewhere). `stats`, when given, receives this rank's rows.
std::vector<PersistencePair> reduce_distributed(const BoundaryMatrix* root_matrix, MPI_Comm comm,
                                                std::vector<ReductionStepStats>* stats = nullptr,
                                                Index pivot_chunk = 0);

// The order in which a rank of the distributed reducer takes its columns in one dimension. Any
// order gives the same pairs (the swap rule); the work does not stay the same (docs/benchmarks.md,
// "Distributed reducer: column order"):
//  natural         its own columns in increasing index, then those other ranks send it;
//  received-first  the columns other ranks send as soon as they arrive, then its own in index order
//                  (the only order before 2026-12-01);
//  upper-first     the upper half of the index range before the lower half (at 1 rank: the upper
//                  half of the matrix first; on several, each rank's lower columns wait until every
//                  upper column has ended), and within each half a rank's own columns before those
//                  it receives: the one-rank order at each pivot, and about the one-rank work, at
//                  any rank count;
//  upper-first-received  the same halves, received columns first (upper-first until 2026-12-03):
//                  from 3 ranks on the work varies with the timing (docs/benchmarks.md, "Own
//                  columns first");
//  upper-thirds    upper-first with the upper half in three blocks of indices, the last block first,
//                  each a phase of its own (as the halves are): auto's order for the hybrid's primal
//                  top step, a quarter to a half of upper-first's work there on long zigzags
//                  (docs/benchmarks.md, "The top step in thirds").
enum class ColumnOrder { natural, received_first, upper_first, upper_first_received, upper_thirds };
// Whether `order` takes the upper half first (its phases, held lower columns and row loans).
constexpr bool takes_upper_first(ColumnOrder order) {
  return order == ColumnOrder::upper_first || order == ColumnOrder::upper_first_received || order == ColumnOrder::upper_thirds;
}

// A --column-order value: one of the names above for every dimension, a comma-separated list of
// them from the highest dimension down (the last one repeats), or "auto" (the measured rule,
// auto_column_order). Throws std::invalid_argument naming what it expected.
void require_column_order(const std::string& spec);
// The measured rule of "auto" for the step reducing the columns of dimension `dim` of a matrix of
// `num_columns` columns (docs/benchmarks.md, "Distributed reducer: column order").
ColumnOrder auto_column_order(int dim, Index num_columns);
// The --column-order value "auto" becomes for the hybrid's primal top step of dimension `dim`:
// upper-thirds where auto takes the steps upper-first (measured), else "auto".
std::string auto_top_step_order(int dim, Index num_columns);
constexpr Index kUpperFirstFromColumns = 500000;
// Upper-first's halves of an n-column matrix: columns (and rows) from this index on are the upper
// half, reduced first (shared by the reducer and halves_ownership, which must split at the same row).
constexpr Index upper_half_start(Index n) { return n / 2; }
// `lmtopo barcode --reducer auto` on one process: the distributed reducer (on one rank) from this
// many operations on, the twist reducer below. A zigzag of m operations has at least m cone columns,
// so from here on the steps above dimension 1 go upper-first, in lanes, which the twist reducer does
// not; below it the distributed path's MPI start-up and build cost more than they save
// (docs/benchmarks.md, "One process: twist or the distributed path").
constexpr long long kDistributedFromOperations = kUpperFirstFromColumns;
ColumnOrder column_order_for(const std::string& spec, int step, int dim, Index num_columns);
// The part of a --column-order value for step `step` alone ("auto" stays "auto").
std::string column_order_of_step(const std::string& spec, int step);

// The same reduction on columns already dealt out (the distributed cone build sends each column
// straight to its owner, so no rank ever holds the matrix): `my_columns` holds this rank's columns of
// an n-column matrix under the ownership of `pivot_chunk` (0: default_pivot_chunk), in increasing
// index order, [dim, size, rows...] each (taken by value: move in a buffer no longer needed, as the
// reducer reads it to the end). Returns this rank's pairs only (pivot row, column), those of the
// pivots it owns, unsorted. Collective.
// `step_methods` says how the steps are reduced on more than one rank: those taken in index order
// (natural) by one of two other schemes, or as above; those taken upper-first with or without row
// loans. Only the dimensions from `lowest_dim` up are reduced (the hybrid dualization reduces the
// top one alone).
struct StepMethods {
  // > 0: by the speculative pipeline (reduce_speculative.hpp) in runs of this many columns: faster
  // when one rank owns most of a step's work, but every rank then holds all of that step's columns
  // and a copy of every stored column (docs/benchmarks.md, "Distributed reducer: speculative runs").
  std::size_t speculate_run = 0;
  // With the rows split over the ranks (reduce_row_split.hpp): every rank takes part in every
  // addition, holding its rows of the columns only (docs/benchmarks.md, "Distributed reducer: rows
  // split over the ranks"). Not with speculate_run.
  bool split_rows = false;
  // Upper-first steps with the rows owned by intervals: a rank left without columns to reduce in a
  // phase borrows rows from the rank below it, with their stored and waiting columns, for the rest
  // of the step (docs/methods.md, "Row loans").
  bool row_loans = true;
};
std::vector<PersistencePair> reduce_distributed_owned(std::vector<Row> my_columns, Index n, MPI_Comm comm,
                                                      std::vector<ReductionStepStats>* stats = nullptr,
                                                      Index pivot_chunk = 0, const std::string& column_order = "auto",
                                                      StepMethods step_methods = {}, int lowest_dim = 1);
// The same with the rows (and columns) owned as `own` says (its ranks: comm's), not by chunks.
class PivotOwnership;
std::vector<PersistencePair> reduce_distributed_owned(std::vector<Row> my_columns, const PivotOwnership& own, Index n,
                                                      MPI_Comm comm, std::vector<ReductionStepStats>* stats,
                                                      const std::string& column_order, StepMethods step_methods,
                                                      int lowest_dim);
// A rank's columns in the reducer's layout ([dim, size, rows...] each, increasing index) and, when it
// holds only some of the columns it owns (the others empty), each held column's position among them.
// A rank may own millions of empty columns: the rows of the top step below its pivots, whose
// columns are other dimensions' (1.74 M operations, 4 ranks: all of rank 0's 1.02 M;
// docs/benchmarks.md, "Empty columns").
struct OwnedColumns {
  std::vector<Row> words;
  std::vector<Row> positions;  // empty: every owned column is held, in order (or none is held)
  Row position(std::size_t held) const { return positions.empty() ? static_cast<Row>(held) : positions[held]; }
  // f(position, first word) for each held column, in order: its [dim, size, rows...] at words[first].
  template <class F>
  void for_each(F&& f) const {
    std::size_t held = 0;
    for (std::size_t at = 0; at < words.size(); at += 2 + static_cast<std::size_t>(words[at + 1]), ++held) f(position(held), at);
  }
};
// The same, taking the columns: the empty ones, which end at once and pair with nothing, are dropped
// and the rest kept in a buffer of their size before the reduction.
std::vector<PersistencePair> reduce_distributed_owned(OwnedColumns&& my_columns, const PivotOwnership& own, Index n,
                                                      MPI_Comm comm, std::vector<ReductionStepStats>* stats,
                                                      const std::string& column_order, StepMethods step_methods,
                                                      int lowest_dim);
// How many runs a rank of the speculative pipeline reduces ahead of its first one not yet checked.
constexpr std::size_t kSpeculationDepth = 3;

// The chunk of consecutive pivot rows reduce_distributed deals to one rank by default for a matrix
// of `n` columns over `ranks` ranks: ceil(n / ranks), one contiguous block per rank.
Index default_pivot_chunk(Index n, int ranks);

// Which matrix a reduction works on. dualized: the anti-transpose (persistent cohomology, PHAT's and
// DIPHA's dualize); hybrid: the top dimension's pairs from the matrix itself and the others from the
// anti-transpose of the other columns. Each dimension's pairs are unique, and clearing needs only
// the steps on the same side: the top step of the primal reduction has nothing to clear, and the
// cohomology steps run bottom up as before. The pairs are the same in all three.
enum class Duality { primal, dualized, hybrid };

// Resolves a --dualize value, "true", "false", "hybrid" or "auto" (hybrid from kDualizeFromColumns
// columns on, primal below: docs/benchmarks.md, "Hybrid dualization"), for a matrix of
// `num_columns` columns; throws std::invalid_argument for any other value.
Duality resolve_dualize(const std::string& mode, Index num_columns);
// The name a Duality is recorded under ("primal", "dualized", "hybrid").
const char* duality_name(Duality duality);

// reduce_by_name for a matrix the caller no longer needs the rows of: dualized or hybrid, its rows
// are freed as soon as the anti-transpose exists (the dimensions stay, for read_out_bars), so the peak
// memory holds one copy of the matrix instead of two; the distributed reducer also frees the rows it
// reduces (the anti-transpose's, or these) once every rank has its columns.
std::vector<PersistencePair> reduce_by_name_releasing(const std::string& name, BoundaryMatrix* root_matrix,
                                                      MPI_Comm comm, int threads,
                                                      std::vector<ReductionStepStats>* stats = nullptr,
                                                      Duality duality = Duality::dualized, Index pivot_chunk = 0);

// Where `--dualize auto` leaves the boundary matrix (since 2026-12-02 for the hybrid; before, for the
// whole anti-transpose). The measured rule (docs/benchmarks.md, "barcode against FastZigzag"): on k-NN
// zigzag cone matrices the dualized reduction wins from about 200,000 columns on (a zigzag that ends
// empty has 2n + 1 = m + 1 columns: 333,515 columns, 1.72 vs 2.84 s), by up to 2.2x; below that the
// primal one is faster (105,129 columns: 0.40 vs 0.52 s; the anti-transpose costs more than it saves).
// Until 2026-12-01 this was 400,000, meant as 200,000 operations but counting two columns per
// operation: inputs of 200,000-400,000 operations were reduced primal, the slower way.
constexpr Index kDualizeFromColumns = 200000;

// The names accepted by reduce_by_name, in documentation order.
const std::vector<std::string>& reducer_names();

// Runs the reducer called `name`. Serial reducers run on rank 0 of `comm`; the distributed ones use
// every rank. Dualized, the reducer works on the anti-transpose (persistent cohomology, as PHAT's and
// DIPHA's dualize option) and the pairs are mapped back; hybrid, on the top dimension's columns and
// then on the anti-transpose of the others: the same pairs, found faster on large zigzag cone
// matrices (resolve_dualize's rule; docs/benchmarks.md). Pairs (sorted by creator) are returned on
// rank 0. `pivot_chunk` is the distributed reducer's (0: its default).
std::vector<PersistencePair> reduce_by_name(const std::string& name, const BoundaryMatrix* root_matrix,
                                            MPI_Comm comm, int threads,
                                            std::vector<ReductionStepStats>* stats = nullptr, Duality duality = Duality::dualized,
                                            Index pivot_chunk = 0);

}  // namespace lmtopo::topology
