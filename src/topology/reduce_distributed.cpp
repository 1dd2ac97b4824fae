// DIPHA-style distributed reduction with interleaved pivot ownership. See reducers.hpp for the
// scheme; the invariant that makes it correct is that a column is only ever added to a *later*
// column: when a column arrives at a pivot held by a later column, the two swap places and the
// displaced later column goes on reducing. Pivots only move down, so every column ends stored at a
// free pivot or reduced to zero, whichever rank it passed through and in whatever order it arrived.
#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <stdexcept>
#include <string>

#include "mpi/collective.hpp"
#include "mpi/large_count.hpp"
#include "mpi/pending_sends.hpp"
#include "topology/pivot_ownership.hpp"
#include "topology/reduce_row_split.hpp"
#include "topology/reduce_speculative.hpp"
#include "topology/reducers.hpp"
#include "topology/z2_column.hpp"

namespace lmtopo::topology {
namespace {

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// This rank's pivots: the reduced column held at each owned pivot row (O(n / P) slots per rank).
class LocalPivots {
  enum class Stage { kFindPivot, kFetchColumn, kAdd };
  // One column reduced in a lane (below, advance).
  struct Lane {
    explicit Lane(Index n) : work(n) {}
    Index index = -1;  // the column in this lane (follows swaps); -1: free
    PivotColumn work;
    Index low = -1;
    Stage stage = Stage::kFindPivot;
  };

 public:
  LocalPivots(const PivotOwnership& own, int rank, Index n)
      : own_(own), rank_(rank), column_of_pivot_(static_cast<std::size_t>(own.local_count(rank)), kNoHolder),
        stored_(own.local_count(rank)), work_(n) {
    for (std::size_t k = 0; k < kLanes; ++k) lanes_.emplace_back(n);
  }

  // Column j reduces to zero once row j (this rank's too) is a pivot: clearing.
  bool cleared(Index j) const { return column_of_pivot_[slot(j)] != kNoHolder; }

  // Reduces column `index` (its rows: `rows`) with the columns stored at this rank's pivots. Returns
  // the rank the column must go to next (its pivot is another rank's; then move_out takes it), or -1
  // when it is finished here: stored at a free pivot or zero. A swap changes `index`.
  template <class Rows>
  int reduce(Index& index, const Rows& rows) {
    work_.add(rows);
    while (!work_.empty()) {
      const Index low = work_.pivot();
      const int owner = own_.owner(low);
      if (owner != rank_) return owner;
      if (add_at_pivot(index, work_, low)) return -1;
    }
    return -1;
  }

  // Several columns reduced at once, for the steps taken out of index order (memory-level
  // parallelism). A column addition waits on memory (the pivot's holder and slot, then the stored
  // column's rows); with kLanes columns each advancing one stage per round, those loads overlap.
  // Columns finish in another order than they started, which the swap rule makes exact, but which
  // in index order would cost additions (later columns store first and are swapped out), so the
  // natural order keeps reduce(). docs/benchmarks.md, "Distributed reducer: lanes".
  static constexpr std::size_t kLanes = 4;
  bool lane_free() const { return busy_lanes_ < lanes_.size(); }
  bool lanes_idle() const { return busy_lanes_ == 0; }
  // Starts reducing column `index` (rows `rows`, copied) in a free lane.
  template <class Rows>
  void start(Index index, const Rows& rows) {
    for (Lane& lane : lanes_) {
      if (lane.index >= 0) continue;
      lane.index = index;
      lane.work.add(rows);
      lane.stage = Stage::kFindPivot;
      ++busy_lanes_;
      return;
    }
    throw std::logic_error("LocalPivots::start: no free lane");
  }
  // Advances every busy lane one stage. A column that ends here (stored at a free pivot, or zero)
  // calls ended(); one whose pivot is another rank's calls forward(rank, lane), which must move it
  // out with move_out_lane.
  template <class Ended, class Forward>
  void advance(Ended&& ended, Forward&& forward) {
    for (Lane& lane : lanes_) {
      if (lane.index < 0) continue;
      if (lane.stage == Stage::kAdd) {
        if (add_at_pivot(lane.index, lane.work, lane.low)) {
          finish_lane(lane);
          ended();
          continue;
        }
        lane.stage = Stage::kFindPivot;
      }
      if (lane.stage == Stage::kFindPivot) {
        if (lane.work.empty()) {
          finish_lane(lane);
          ended();
          continue;
        }
        lane.low = lane.work.pivot();
        const int owner = own_.owner(lane.low);
        if (owner != rank_) {
          forward(owner, lane);
          continue;
        }
        __builtin_prefetch(&column_of_pivot_[slot(lane.low)]);
        stored_.prefetch_slot(static_cast<Index>(slot(lane.low)));
        lane.stage = Stage::kFetchColumn;
        continue;
      }
      stored_.prefetch_column(static_cast<Index>(slot(lane.low)));  // kFetchColumn
      lane.stage = Stage::kAdd;
    }
  }

  // Records a pair found elsewhere (a replicated step): `holder` reduced to pivot `row`, this rank's.
  void record(Index row, Index holder) {
    column_of_pivot_[slot(row)] = static_cast<Row>(holder);
  }

  // Appends the column left by reduce, as [index, size, rows...], to a batch for another rank.
  void move_out(Index index, std::vector<Row>& batch) { append_column(index, work_, batch); }

  // Between dimensions (ColumnStore::clear): the pairs and the clearing marks stay. The step's
  // addition counts go to `row` and start again from 0.
  void end_step(ReductionStepStats& row) {
    stored_.clear();
    row.additions = additions_;
    row.entries_added = stored_bytes_added_ / 2;
    additions_ = stored_bytes_added_ = 0;
  }

  // The lane's column (left by advance at another rank's pivot) as [index, size, rows...] on `batch`.
  void move_out_lane(Lane& lane, std::vector<Row>& batch) {
    append_column(lane.index, lane.work, batch);
    finish_lane(lane);
  }

  // The pairs (pivot row, holder) of this rank's pivots, in an exactly sized vector (this runs
  // while the reducer's other memory is still held).
  std::vector<PersistencePair> pairs() const {
    const auto held = std::count_if(column_of_pivot_.begin(), column_of_pivot_.end(), [](Row h) { return h != kNoHolder; });
    std::vector<PersistencePair> out;
    out.reserve(static_cast<std::size_t>(held));
    for (std::size_t at = 0; at < column_of_pivot_.size(); ++at)
      if (column_of_pivot_[at] != kNoHolder) out.push_back({own_.global(rank_, static_cast<Index>(at)), column_of_pivot_[at]});
    return out;
  }

 private:
  std::size_t slot(Index row) const { return static_cast<std::size_t>(own_.local(row)); }

  // The column `index` (entries in `work`) at its pivot `low`, this rank's: stored there if the pivot
  // is free (returns true: the column ended), else the stored column added, by the swap rule if a
  // later column holds the pivot (the earlier one stays, the later one goes on in `index`).
  [[gnu::always_inline]] bool add_at_pivot(Index& index, PivotColumn& work, Index low) {
    const std::size_t at = slot(low);
    Row& holder = column_of_pivot_[at];
    if (holder == kNoHolder) {
      holder = static_cast<Row>(index);  // and column `low` is cleared
      work.take(current_);
      stored_.store_rows(static_cast<Index>(at), current_);
      return true;
    }
    const StoredRows stored = stored_.column(static_cast<Index>(at));
    ++additions_;
    stored_bytes_added_ += stored.last - stored.first;
    if (static_cast<Index>(holder) < index) {
      work.add(stored);
    } else {
      work.take(current_);
      work.add(stored);
      work.add(current_);
      stored_.store_rows(static_cast<Index>(at), current_);
      const Index later = holder;
      holder = static_cast<Row>(index);
      index = later;
    }
    return false;
  }
  void finish_lane(Lane& lane) {
    lane.index = -1;
    --busy_lanes_;
  }
  static void append_column(Index index, PivotColumn& work, std::vector<Row>& batch) {
    const std::size_t header = batch.size();
    batch.push_back(static_cast<Row>(index));
    batch.push_back(0);
    work.append_to(batch);
    batch[header + 1] = static_cast<Row>(batch.size() - header - 2);
  }

  const PivotOwnership& own_;
  int rank_;
  // The column holding each of this rank's pivot rows, kNoHolder while free (column indices are
  // below 2^32 - 1: the cone matrix's limit).
  static constexpr Row kNoHolder = ~Row{0};
  std::vector<Row> column_of_pivot_;
  ColumnStore stored_;
  PivotColumn work_;
  std::vector<Row> current_;
  std::vector<Lane> lanes_;
  std::size_t busy_lanes_ = 0;
  long long additions_ = 0, stored_bytes_added_ = 0;
};

// Batches of columns on their way to other ranks: one open buffer per destination, sent with
// non-blocking sends (any number in flight; a rank never waits to send).
class Outbox {
 public:
  Outbox(MPI_Comm comm, int ranks, int tag) : open_(static_cast<std::size_t>(ranks)) {
    for (int r = 0; r < ranks; ++r) sends_.emplace_back(comm, r, tag);
  }

  // The open batch for `destination`: columns as [index, size, rows...] in 32-bit words (every index
  // is a column or row of a matrix of at most 2^32 - 1 columns).
  std::vector<Row>& batch(int destination) { return open_[static_cast<std::size_t>(destination)]; }

  void flush(ReductionStepStats& row) {
    for (std::size_t r = 0; r < open_.size(); ++r) {
      if (open_[r].empty()) {
        sends_[r].drop_completed();
        continue;
      }
      row.bytes_sent += static_cast<long long>(sends_[r].send(std::move(open_[r])));
      open_[r] = {};
    }
  }

  void wait_all() {
    for (auto& to : sends_) to.wait_all();
  }

 private:
  std::vector<std::vector<Row>> open_;
  std::vector<mpi::PendingSends> sends_;
};

// Columns received from other ranks, in their batches ([index, size, rows...] each), read in order.
class Inbox {
 public:
  bool empty() const { return batches_.empty(); }

  // Calls f(index, rows) with the next column and drops it.
  template <class F>
  auto next(F&& f) {
    const auto& words = batches_.front();
    const Row* at = words.data() + position_;
    const auto size = static_cast<std::size_t>(at[1]);
    position_ += 2 + size;
    const bool last = position_ == words.size();
    struct Range {
      const Row* first;
      const Row* last;
      const Row* begin() const { return first; }
      const Row* end() const { return last; }
    };
    auto result = f(static_cast<Index>(at[0]), Range{at + 2, at + 2 + size});
    if (last) {
      batches_.pop_front();
      position_ = 0;
    }
    return result;
  }

  // Receives every batch that has arrived for `tag`; returns whether any did.
  bool receive_arrived(MPI_Comm comm, int tag, ReductionStepStats& row) {
    bool any = false;
    while (true) {
      MPI_Status status;
      int arrived = 0;
      mpi::check(MPI_Iprobe(MPI_ANY_SOURCE, tag, comm, &arrived, &status), "MPI_Iprobe");
      if (!arrived) return any;
      std::vector<Row> incoming;
      mpi::receive_probed(comm, status, incoming);
      row.bytes_received += static_cast<long long>(incoming.size() * sizeof(Row));
      ++row.batches;
      if (!incoming.empty()) batches_.push_back(std::move(incoming));
      any = true;
    }
  }

 private:
  std::deque<std::vector<Row>> batches_;
  std::size_t position_ = 0;
};

// Global termination of one dimension: every column ends exactly once (stored at a free pivot or
// zero; a swap ends one column and revives another), so the dimension is done when the ranks'
// counts of ended columns sum to the number of columns. The counts only grow, so a sum of
// snapshots equal to the total proves nothing is left anywhere, in flight included. The ranks run
// the same sequence of non-blocking all-reduces and so all see the same last one.
class Termination {
 public:
  Termination(MPI_Comm comm, long long total) : comm_(comm), total_(total) {}
  ~Termination() {
    if (request_ != MPI_REQUEST_NULL) MPI_Wait(&request_, MPI_STATUS_IGNORE);
  }

  bool done(long long ended_here) {
    if (request_ == MPI_REQUEST_NULL) {
      snapshot_ = ended_here;
      mpi::check(MPI_Iallreduce(&snapshot_, &sum_, 1, MPI_LONG_LONG, MPI_SUM, comm_, &request_), "MPI_Iallreduce");
    }
    int complete = 0;
    mpi::check(MPI_Test(&request_, &complete, MPI_STATUS_IGNORE), "MPI_Test");
    return complete && sum_ == total_;
  }

 private:
  MPI_Comm comm_;
  long long total_;
  long long snapshot_ = 0, sum_ = 0;
  MPI_Request request_ = MPI_REQUEST_NULL;
};

}  // namespace

Index default_pivot_chunk(Index n, int ranks) {
  // One contiguous block per rank (DIPHA's partition). Finer chunks spread the band of pivots where
  // the work sits over the ranks only when they are smaller than the band, and then most columns
  // cross ranks many times: on the k-NN cone matrices measured every finer chunk was slower than
  // the blocks (docs/benchmarks.md, "Distributed reducer: pivot ownership").
  return std::max<Index>(1, (n + ranks - 1) / ranks);
}

namespace {

// This rank's pairs of the reduction of the columns it was dealt (`my_buffer`, see
// reduce_distributed_owned), not gathered.
std::vector<PersistencePair> reduce_dealt_columns(const std::vector<Row>& my_buffer, const PivotOwnership& own, Index n,
                                                  int max_dim, MPI_Comm comm, std::vector<ReductionStepStats>* stats,
                                                  const std::string& column_order, IndexOrderSteps index_order_steps,
                                                  int lowest_dim = 1);

std::vector<PersistencePair> gather_sorted_pairs(MPI_Comm comm, const std::vector<PersistencePair>& mine) {
  std::vector<Index> flat;
  flat.reserve(2 * mine.size());
  for (const auto& p : mine) flat.insert(flat.end(), {p.creator, p.destroyer});
  const std::vector<Index> all_pairs = mpi::gather_blocks(comm, flat.data(), flat.size(), MPI_INT64_T);
  std::vector<PersistencePair> pairs;
  pairs.reserve(all_pairs.size() / 2);
  for (std::size_t i = 0; i + 1 < all_pairs.size(); i += 2) pairs.push_back({all_pairs[i], all_pairs[i + 1]});
  std::sort(pairs.begin(), pairs.end());
  return pairs;
}

std::vector<PersistencePair> reduce_distributed_releasing(const BoundaryMatrix* root_matrix, BoundaryMatrix* release_rows_after_scatter,
                                                          MPI_Comm comm, std::vector<ReductionStepStats>* stats,
                                                          Index pivot_chunk) {
  int rank = 0, size = 1;
  mpi::check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  mpi::check(MPI_Comm_size(comm, &size), "MPI_Comm_size");

  long long n_and_dim[2] = {0, 0};
  if (rank == 0) {
    if (!root_matrix) throw std::invalid_argument("reduce_distributed: rank 0 needs the matrix");
    n_and_dim[0] = root_matrix->num_columns();
    n_and_dim[1] = root_matrix->max_dim();
  }
  mpi::check(MPI_Bcast(n_and_dim, 2, MPI_LONG_LONG, 0, comm), "MPI_Bcast");
  const Index n = n_and_dim[0];
  const int max_dim = static_cast<int>(n_and_dim[1]);
  const PivotOwnership own(n, size, pivot_chunk > 0 ? pivot_chunk : default_pivot_chunk(n, size));

  // Each rank's columns, [dim, size, rows...] per column in increasing index order, sent from rank 0
  // one rank's block at a time (64-bit counts, chunked messages: mpi/large_count.hpp); then rank 0
  // drops the matrix's rows when it may, so that it holds no more than its share while reducing.
  std::vector<Row> my_buffer = mpi::scatter_built_blocks<Row>(comm, MPI_UINT32_T, [&](int r) {
    std::vector<Row> block;
    own.for_each_owned(r, [&](Index j) {
      const ColumnView col = root_matrix->column(j);
      block.push_back(static_cast<Row>(root_matrix->dim(j)));
      block.push_back(static_cast<Row>(col.size()));
      block.insert(block.end(), col.begin(), col.end());
    });
    return block;
  });
  if (rank == 0 && release_rows_after_scatter) release_rows_after_scatter->release_rows();
  return gather_sorted_pairs(comm, reduce_dealt_columns(my_buffer, own, n, max_dim, comm, stats, "received-first", {}));
}

struct ColumnRef {
  Index index;
  ColumnView rows;
};

// A step's columns from the blocks of [index, size, rows...] the ranks sent this rank, sorted by index.
StepColumns step_columns_from(std::vector<std::vector<Row>>&& blocks) {
  StepColumns step;
  for (auto& from : blocks) {
    const std::size_t base = step.words.size();
    step.words.insert(step.words.end(), from.begin(), from.end());
    std::vector<Row>().swap(from);
    for (std::size_t at = base; at < step.words.size(); at += 2 + static_cast<std::size_t>(step.words[at + 1]))
      step.at.push_back(at);
  }
  std::sort(step.at.begin(), step.at.end(), [&](std::size_t a, std::size_t b) { return step.words[a] < step.words[b]; });
  return step;
}

// One step reduced by the speculative pipeline (reduce_speculative.hpp): every rank gets every
// rank's columns of the step, in index order; each rank then records the pairs of its own pivots.
void reduce_step_replicated(const std::vector<ColumnRef>& mine, Index n, int dim, std::size_t run, const PivotOwnership& own,
                            LocalPivots& pivots, MPI_Comm comm, ReductionStepStats& row) {
  int rank = 0, size = 1;
  mpi::check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  mpi::check(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  std::vector<Row> block;
  for (const auto& column : mine) {
    block.insert(block.end(), {static_cast<Row>(column.index), static_cast<Row>(column.rows.size())});
    block.insert(block.end(), column.rows.begin(), column.rows.end());
  }
  std::vector<std::vector<Row>> outgoing(static_cast<std::size_t>(size), block);
  std::vector<Row>().swap(block);
  const StepColumns step = step_columns_from(mpi::exchange_blocks(comm, std::move(outgoing), MPI_UINT32_T));
  row.bytes_received += static_cast<long long>(step.words.size() * sizeof(Row));
  SpeculativeStats spec;
  reduce_step_speculative(step, n, run, kSpeculationDepth, comm, 5252 + dim,
                          [&](Index pivot, Index holder) {
                            if (own.owner(pivot) == rank) pivots.record(pivot, holder);
                          },
                          &spec);
  row.columns_in = spec.columns;
  row.columns_redone = spec.redone;
  row.wait_seconds = spec.seconds_waiting;
}

// The row bounds of a step split over the ranks, from its initial pivots (row_split_bounds), the
// same on every rank.
std::vector<Index> row_bounds_of_step(const std::vector<ColumnRef>& mine, Index n, int ranks, MPI_Comm comm) {
  constexpr Index kBins = 1024;
  std::vector<double> histogram(kBins, 0.0);
  for (const auto& column : mine)
    if (!column.rows.empty()) histogram[static_cast<std::size_t>(Index{column.rows.last[-1]} * kBins / std::max<Index>(n, 1))] += 1;
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, histogram.data(), static_cast<int>(histogram.size()), MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  return row_split_bounds(histogram, n, ranks);
}

// This rank's rows of the step's columns: every rank's columns cut at `bounds`, each piece sent to
// the rank holding those rows.
StepColumns rows_of_step(const std::vector<ColumnRef>& mine, const std::vector<Index>& bounds, MPI_Comm comm) {
  const std::size_t ranks = bounds.size() - 1;
  std::vector<std::vector<Row>> outgoing(ranks);
  const auto below = [](Row entry, Index v) { return Index{entry} < v; };
  for (const auto& column : mine)
    for (std::size_t r = 0; r < ranks; ++r) {
      const Row* first = std::lower_bound(column.rows.begin(), column.rows.end(), bounds[r], below);
      const Row* last = std::lower_bound(first, column.rows.end(), bounds[r + 1], below);
      if (first == last) continue;
      outgoing[r].insert(outgoing[r].end(), {static_cast<Row>(column.index), static_cast<Row>(last - first)});
      outgoing[r].insert(outgoing[r].end(), first, last);
    }
  return step_columns_from(mpi::exchange_blocks(comm, std::move(outgoing), MPI_UINT32_T));
}

// One step taken in index order, reduced with the rows split over the ranks (reduce_row_split.hpp):
// every rank learns the step's columns (their indices), gets its rows of them, and sends each pair
// it finds to the rank owning the pivot under `own` (for the clearing and the read-out).
void reduce_step_by_rows(const std::vector<ColumnRef>& mine, Index n, int dim, const PivotOwnership& own, LocalPivots& pivots,
                         MPI_Comm comm, ReductionStepStats& row) {
  int size = 1;
  mpi::check(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  std::vector<Row> indices;
  for (const auto& column : mine) indices.push_back(static_cast<Row>(column.index));
  auto everyone = mpi::exchange_blocks(comm, std::vector<std::vector<Row>>(static_cast<std::size_t>(size), indices), MPI_UINT32_T);
  std::vector<Index> order;
  for (const auto& from : everyone) order.insert(order.end(), from.begin(), from.end());
  std::sort(order.begin(), order.end());
  const std::vector<Index> bounds = row_bounds_of_step(mine, n, size, comm);
  const StepColumns parts = rows_of_step(mine, bounds, comm);
  row.bytes_received += static_cast<long long>(parts.words.size() * sizeof(Row));

  std::vector<std::vector<Row>> found(static_cast<std::size_t>(size));
  RowSplitStats split;
  reduce_step_row_split(order, parts, n, bounds, comm, 6262 + dim,
                        [&](Index pivot, Index holder) {
                          auto& to = found[static_cast<std::size_t>(own.owner(pivot))];
                          to.insert(to.end(), {static_cast<Row>(pivot), static_cast<Row>(holder)});
                        },
                        &split);
  for (const auto& from : mpi::exchange_blocks(comm, std::move(found), MPI_UINT32_T))
    for (std::size_t i = 0; i + 1 < from.size(); i += 2) pivots.record(from[i], from[i + 1]);
  row.columns_in = split.columns;
  row.rows_split = true;
  row.driven = split.driven;
  row.wait_seconds = split.seconds_waiting;
  row.bytes_sent += split.bytes_sent;
  row.bytes_received += split.bytes_received;
}

std::vector<PersistencePair> reduce_dealt_columns(const std::vector<Row>& my_buffer, const PivotOwnership& own, Index n,
                                                  int max_dim, MPI_Comm comm, std::vector<ReductionStepStats>* stats,
                                                  const std::string& column_order, IndexOrderSteps index_order_steps,
                                                  int lowest_dim) {
  int rank = 0, size = 1;
  mpi::check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  mpi::check(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  // Where each local column (the i-th this rank owns, global index own.global(rank, i)) starts in
  // my_buffer: its [dim, size] header. One word a column, not its index, dim and view (24 bytes).
  std::vector<std::size_t> header_at;
  header_at.reserve(static_cast<std::size_t>(own.local_count(rank)));
  for (std::size_t pos = 0; pos < my_buffer.size(); pos += 2 + static_cast<std::size_t>(my_buffer[pos + 1])) header_at.push_back(pos);
  auto local_index = [&](std::size_t i) { return own.global(rank, static_cast<Index>(i)); };
  auto local_dim = [&](std::size_t i) { return static_cast<int>(my_buffer[header_at[i]]); };
  auto local_column = [&](std::size_t i) {
    const Row* rows = my_buffer.data() + header_at[i] + 2;
    return ColumnView{rows, rows + rows[-1]};
  };

  LocalPivots pivots(own, rank, n);
  // Dimensions high to low (the twist's clearing), one asynchronous round per dimension: each rank
  // reduces its own columns and those arriving from any rank, sends each column whose pivot another
  // rank owns to that rank in batches, and looks at the network between batches. Arrival order does
  // not matter: the swap rule keeps additions left-to-right. Columns that arrived go first: they are
  // further along, and their pivots decide the work left for later columns.
  constexpr std::size_t batch_columns = 512;  // columns reduced between two looks at the network
  for (int d = max_dim; d >= lowest_dim; --d) {
    const auto start = std::chrono::steady_clock::now();
    const int tag = 4242 + d;
    ReductionStepStats row;
    row.rank = rank;
    row.dim = d;
    auto end_step = [&] {
      row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      row.peak_rss_kib = peak_rss_kib();
      pivots.end_step(row);
      if (stats) stats->push_back(row);
    };
    const ColumnOrder order = column_order_for(column_order, max_dim - d, d, n);
    std::deque<std::size_t> own_columns;  // local positions
    for (std::size_t i = 0; i < header_at.size(); ++i)
      if (local_dim(i) == d && !pivots.cleared(local_index(i))) own_columns.push_back(i);
    // Upper-first on several ranks: a rank's lower columns wait until every upper column has ended,
    // anywhere (held_lower, released by upper_done), as on one rank. Taken whenever the inbox ran dry
    // instead, they met the upper columns' paths in an order set by timing, and one order in a few
    // cost 3.5x the additions (docs/benchmarks.md, "The order of the lower columns and the rows by halves").
    std::deque<std::size_t> held_lower;
    if (order == ColumnOrder::upper_first) {
      const auto lower = std::stable_partition(own_columns.begin(), own_columns.end(), [&](std::size_t i) { return local_index(i) >= upper_half_start(n); });
      if (size > 1) {
        held_lower.assign(lower, own_columns.end());
        own_columns.erase(lower, own_columns.end());
      }
    }
    const bool received_first = order != ColumnOrder::natural;
    if (size > 1 && order == ColumnOrder::natural && (index_order_steps.split_rows || index_order_steps.speculate_run > 0)) {
      std::vector<ColumnRef> mine;
      for (const std::size_t i : own_columns) mine.push_back({local_index(i), local_column(i)});
      if (index_order_steps.split_rows) reduce_step_by_rows(mine, n, d, own, pivots, comm, row);
      else reduce_step_replicated(mine, n, d, index_order_steps.speculate_run, own, pivots, comm, row);
      end_step();
      continue;
    }
    long long totals[2] = {static_cast<long long>(own_columns.size()), static_cast<long long>(held_lower.size())};
    mpi::check(MPI_Allreduce(MPI_IN_PLACE, totals, 2, MPI_LONG_LONG, MPI_SUM, comm), "MPI_Allreduce");
    Outbox outbox(comm, size, tag);
    Inbox inbox;
    // While lower columns are held, only upper ones are in flight (and only they are stored), so
    // their ends are counted alone; then every rank releases its lower ones at the same all-reduce.
    bool holding = totals[1] > 0;
    Termination upper_done(comm, totals[0]);
    Termination termination(comm, totals[0] + totals[1]);
    long long ended = 0;
    auto reduce_one = [&](Index index, const auto& rows) {
      ++row.columns_in;
      const int next = pivots.reduce(index, rows);
      if (next < 0) {
        ++ended;
      } else {
        pivots.move_out(index, outbox.batch(next));
        ++row.columns_forwarded;
      }
      return 0;
    };
    auto start_in_lane = [&](Index index, const auto& rows) {
      ++row.columns_in;
      pivots.start(index, rows);
      return 0;
    };
    auto sources_empty = [&] { return inbox.empty() && own_columns.empty(); };
    auto take_next = [&](auto&& f) {  // the next column to f(index, rows)
      if (!inbox.empty() && (received_first || own_columns.empty())) {
        inbox.next(f);
      } else {
        const std::size_t local = own_columns.front();
        own_columns.pop_front();
        f(local_index(local), local_column(local));
      }
    };
    // Out of index order the columns go through lanes (LocalPivots::advance); in it, one at a time.
    const bool in_lanes = order != ColumnOrder::natural;
    auto on_ended = [&] { ++ended; };
    auto on_forward = [&](int to, auto& lane) {
      pivots.move_out_lane(lane, outbox.batch(to));
      ++row.columns_forwarded;
    };
    while (true) {
      const bool idle = sources_empty() && pivots.lanes_idle();  // waiting on other ranks' batches
      const auto look_start = std::chrono::steady_clock::now();
      if (!in_lanes) {
        for (std::size_t i = 0; i < batch_columns && !sources_empty(); ++i) take_next(reduce_one);
      } else {
        for (std::size_t started = 0; started < batch_columns && !(sources_empty() && pivots.lanes_idle());) {
          for (; pivots.lane_free() && !sources_empty(); ++started) take_next(start_in_lane);
          pivots.advance(on_ended, on_forward);
        }
      }
      outbox.flush(row);
      const bool received = inbox.receive_arrived(comm, tag, row);
      if (idle && holding && upper_done.done(ended)) {
        holding = false;
        own_columns = std::move(held_lower);
        continue;
      }
      if (idle && !holding && termination.done(ended)) break;
      if (idle && !received) sched_yield();  // let an oversubscribed rank run
      if (idle) row.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - look_start).count();
    }
    outbox.wait_all();
    end_step();
  }

  return pivots.pairs();
}

}  // namespace

std::vector<PersistencePair> reduce_distributed_owned(const std::vector<Row>& my_columns, Index n, MPI_Comm comm,
                                                      std::vector<ReductionStepStats>* stats, Index pivot_chunk,
                                                      const std::string& column_order, IndexOrderSteps index_order_steps,
                                                      int lowest_dim) {
  int size = 1;
  mpi::check(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  const PivotOwnership own(n, size, pivot_chunk > 0 ? pivot_chunk : default_pivot_chunk(n, size));
  return reduce_distributed_owned(my_columns, own, n, comm, stats, column_order, index_order_steps, lowest_dim);
}

std::vector<PersistencePair> reduce_distributed_owned(const std::vector<Row>& my_columns, const PivotOwnership& own, Index n,
                                                      MPI_Comm comm, std::vector<ReductionStepStats>* stats,
                                                      const std::string& column_order, IndexOrderSteps index_order_steps,
                                                      int lowest_dim) {
  require_column_order(column_order);
  if (index_order_steps.split_rows && index_order_steps.speculate_run > 0)
    throw std::invalid_argument("reduce_distributed_owned: speculative runs and split rows are two ways of the same steps");
  int max_dim = 0;
  for (std::size_t pos = 0; pos < my_columns.size(); pos += 2 + static_cast<std::size_t>(my_columns[pos + 1]))
    max_dim = std::max(max_dim, static_cast<int>(my_columns[pos]));
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, &max_dim, 1, MPI_INT, MPI_MAX, comm), "MPI_Allreduce");
  return reduce_dealt_columns(my_columns, own, n, max_dim, comm, stats, column_order, index_order_steps, lowest_dim);
}

std::vector<PersistencePair> reduce_distributed(const BoundaryMatrix* root_matrix, MPI_Comm comm,
                                                std::vector<ReductionStepStats>* stats, Index pivot_chunk) {
  return reduce_distributed_releasing(root_matrix, nullptr, comm, stats, pivot_chunk);
}

namespace {

ColumnOrder column_order_named(const std::string& name) {
  if (name == "natural") return ColumnOrder::natural;
  if (name == "received-first") return ColumnOrder::received_first;
  if (name == "upper-first") return ColumnOrder::upper_first;
  throw std::invalid_argument("expected auto, natural, received-first or upper-first (or a comma-separated list of the last three), got '" +
                              name + "'");
}

std::vector<std::string> split_commas(const std::string& spec) {
  std::vector<std::string> parts(1);
  for (char c : spec) {
    if (c == ',') parts.emplace_back();
    else parts.back() += c;
  }
  return parts;
}

}  // namespace

ColumnOrder auto_column_order(int dim, Index num_columns) {
  // Measured on k-NN zigzag cone matrices (docs/benchmarks.md, "Distributed reducer: column order"):
  // from 0.8 M columns on, the upper half first makes the steps above dimension 1 1.7-2.4x cheaper at
  // 1 rank; at 0.33 M (dualized) it changes nothing there, and in dimension 1 it always costs.
  return dim >= 2 && num_columns >= kUpperFirstFromColumns ? ColumnOrder::upper_first : ColumnOrder::natural;
}

void require_column_order(const std::string& spec) {
  if (spec == "auto") return;
  for (const auto& name : split_commas(spec)) column_order_named(name);
}

ColumnOrder column_order_for(const std::string& spec, int step, int dim, Index num_columns) {
  if (spec == "auto") return auto_column_order(dim, num_columns);
  return column_order_named(column_order_of_step(spec, step));
}

std::string column_order_of_step(const std::string& spec, int step) {
  if (spec == "auto") return spec;
  const auto names = split_commas(spec);
  return names[std::min(static_cast<std::size_t>(std::max(step, 0)), names.size() - 1)];
}

Duality resolve_dualize(const std::string& mode, Index num_columns) {
  if (mode == "true") return Duality::dualized;
  if (mode == "false") return Duality::primal;
  if (mode == "hybrid") return Duality::hybrid;
  if (mode == "auto") return num_columns >= kDualizeFromColumns ? Duality::hybrid : Duality::primal;
  throw std::invalid_argument("expected auto, true, false or hybrid, got '" + mode + "'");
}

const char* duality_name(Duality duality) {
  switch (duality) {
    case Duality::primal: return "primal";
    case Duality::dualized: return "dualized";
    case Duality::hybrid: return "hybrid";
  }
  return "?";
}

const std::vector<std::string>& reducer_names() {
  static const std::vector<std::string> names = {"twist", "chunk", "distributed"};
  return names;
}

namespace {

// One reducer's run on `matrix` (its rows dropped after the scatter when `scattered`, distributed).
std::vector<PersistencePair> run_reducer(const std::string& name, const BoundaryMatrix* matrix, BoundaryMatrix* scattered,
                                         MPI_Comm comm, int threads, std::vector<ReductionStepStats>* stats, Index pivot_chunk) {
  if (name == "distributed") return reduce_distributed_releasing(matrix, scattered, comm, stats, pivot_chunk);
  if (name == "twist") return reduce_twist(*matrix);
  return reduce_chunk(*matrix, threads);
}

std::vector<PersistencePair> reduce_named(const std::string& name, const BoundaryMatrix* root_matrix,
                                          BoundaryMatrix* releasable, MPI_Comm comm, int threads,
                                          std::vector<ReductionStepStats>* stats, Duality duality, Index pivot_chunk) {
  const auto& names = reducer_names();
  if (std::find(names.begin(), names.end(), name) == names.end())
    throw std::invalid_argument("unknown reducer '" + name + "' (expected twist, chunk or distributed)");
  int rank = 0, initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) mpi::check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  if (name != "distributed" && rank != 0) return {};
  if (duality == Duality::primal) return run_reducer(name, root_matrix, releasable, comm, threads, stats, pivot_chunk);

  // Only rank 0 holds (and so dualizes) the matrix; the pairs come back on rank 0 only. Every matrix
  // made here is the reducer's to drop once scattered.
  const bool root = rank == 0 && root_matrix;
  const Index n = root ? root_matrix->num_columns() : 0;
  std::vector<PersistencePair> pairs;
  // Hybrid: the top dimension's columns reduced as they are, and left out of the anti-transpose.
  const int top = duality == Duality::hybrid && root ? root_matrix->max_dim() : -1;
  // Compression: the top pairs' creators are negative on the dual side, and the anti-transpose's
  // next step can do without their rows (cone_distributed.cpp, negative_dual_rows, says why).
  std::vector<bool> top_creators;
  if (duality == Duality::hybrid) {
    BoundaryMatrix top_columns;
    if (root) top_columns = columns_of_dim(*root_matrix, top);
    pairs = run_reducer(name, root ? &top_columns : nullptr, &top_columns, comm, threads, stats, pivot_chunk);
    if (root) {
      top_creators.assign(static_cast<std::size_t>(n), false);
      for (const auto& p : pairs) top_creators[static_cast<std::size_t>(p.creator)] = true;
    }
  }
  BoundaryMatrix dual;
  if (root) {
    dual = anti_transpose(*root_matrix, top, top_creators.empty() ? nullptr : &top_creators);
    if (releasable) releasable->release_rows();
  }
  std::vector<PersistencePair> cohomology = run_reducer(name, root ? &dual : nullptr, &dual, comm, threads, stats, pivot_chunk);
  for (auto& p : cohomology) p = {n - 1 - p.destroyer, n - 1 - p.creator};  // back to homology pairs
  pairs.insert(pairs.end(), cohomology.begin(), cohomology.end());
  std::sort(pairs.begin(), pairs.end());
  return pairs;
}

}  // namespace

std::vector<PersistencePair> reduce_by_name(const std::string& name, const BoundaryMatrix* root_matrix,
                                            MPI_Comm comm, int threads, std::vector<ReductionStepStats>* stats,
                                            Duality duality, Index pivot_chunk) {
  return reduce_named(name, root_matrix, nullptr, comm, threads, stats, duality, pivot_chunk);
}

std::vector<PersistencePair> reduce_by_name_releasing(const std::string& name, BoundaryMatrix* root_matrix,
                                                      MPI_Comm comm, int threads,
                                                      std::vector<ReductionStepStats>* stats, Duality duality,
                                                      Index pivot_chunk) {
  return reduce_named(name, root_matrix, root_matrix, comm, threads, stats, duality, pivot_chunk);
}

}  // namespace lmtopo::topology
