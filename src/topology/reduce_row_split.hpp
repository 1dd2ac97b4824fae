// One dimension step of the distributed reducer with the rows split over the ranks (issue 17):
// rank r holds rows [B_r, B_{r+1}) of every column of the step, of the columns being reduced and of
// the stored ones. A column is reduced top down: the highest rank whose part of it is not zero finds
// the pivot there, adds its part of the column stored at that pivot, and tells the rank below which
// pivot it added (a stream of tokens, one word per addition); every rank below adds its own part of
// the same stored column, fetching it ahead since it knows the pivots to come. When the column's part
// on a rank becomes zero, the rank below takes over with its own pivots. No rank waits for a lower
// one, so the top rank runs ahead and the others follow its stream: every addition is shared by the
// rows it touches, and each rank stores only its rows of the reduced columns. The pairs are those of
// the same order reduced on one rank, exactly: each rank performs the same column operations on its
// rows.
//
// A rank that finds pivots pays a cache miss or two per addition; one that follows pays for the rows
// it adds. The additions fall about where the columns' first pivots are, so the boundaries are
// quantiles of those (row_split_starts). They stay fixed for the step: moving them while it runs was
// tried and dropped (docs/benchmarks.md, "Distributed reducer: rows split over the ranks").
#pragma once
#include <mpi.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "topology/boundary_matrix.hpp"
#include "topology/reduce_speculative.hpp"

namespace lmtopo::topology {

struct RowSplitStats {
  long long columns = 0;          // columns of the step (every rank takes part in each)
  long long driven = 0;           // column additions whose pivot this rank found
  long long bytes_sent = 0, bytes_received = 0;
  double seconds_waiting = 0;     // blocked on the rank above's tokens
};

// Reduces the step's columns in `order` (the same sequence on every rank); this rank holds rows
// [bounds[rank], bounds[rank + 1]) (P + 1 bounds, 0 first and n last). `parts` holds this rank's
// rows of the columns that have any there (sorted by index; columns may be absent). Calls
// record(pivot, column) for each pair whose pivot lies in this rank's rows, after the step.
// Messages use `tag` on `comm`. Collective.
void reduce_step_row_split(const std::vector<Index>& order, const StepColumns& parts, Index n, const std::vector<Index>& bounds,
                           MPI_Comm comm, int tag, const std::function<void(Index, Index)>& record, RowSplitStats* stats);

// Where rank r's rows start, as a quantile of the step's initial pivots: (r / P)^1.6. The ranks
// below follow every addition made above them, so they get fewer pivots (docs/benchmarks.md).
double row_split_start(int rank, int ranks);

// Counts over the rows [0, n) in bins of equal rows, summed over the ranks: what the ranks' shares
// of rows are cut from (row_at_quantile, row_split_bounds), the same on every rank once summed.
class RowHistogram {
 public:
  RowHistogram(Index n, std::size_t bins) : n_(std::max<Index>(n, 1)), counts_(bins, 0.0) {}
  void add(Index row, double weight = 1) { counts_[static_cast<std::size_t>(row * static_cast<Index>(counts_.size()) / n_)] += weight; }
  void sum_over(MPI_Comm comm);  // collective
  const std::vector<double>& counts() const { return counts_; }

 private:
  Index n_;
  std::vector<double> counts_;
};

// The row bounds for `ranks` ranks at the quantiles quantile(r, ranks) of a histogram over the rows
// [0, n) in bins of equal rows (a bin's count taken as spread evenly over its rows): P + 1 values, 0
// first and n last, non-decreasing.
std::vector<Index> row_bounds_at_quantiles(const std::vector<double>& histogram, Index n, int ranks, double (*quantile)(int, int));

// The row bounds for `ranks` ranks from a histogram of the step's initial pivots: rank r's rows
// start at quantile row_split_start(r, ranks).
std::vector<Index> row_split_bounds(const std::vector<double>& pivot_histogram, Index n, int ranks);

}  // namespace lmtopo::topology
