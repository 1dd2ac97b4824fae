// One step of the distributed reducer with the rows split over the ranks: see reduce_row_split.hpp.
#include "topology/reduce_row_split.hpp"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

#include "mpi/collective.hpp"
#include "mpi/pending_sends.hpp"
#include "topology/z2_column.hpp"

namespace lmtopo::topology {
namespace {

// The tokens a rank sends the rank below, in 32-bit words. An addition at pivot p is the word p
// (p < n <= 2^32 - 1, so the all-ones word is free); the rest follow kMark:
//   kMark kStore p        the column stops at the free pivot p (stored there on every rank);
//   kMark kSwap p h       p was held by the later column h: the column takes p, h goes on (+ column);
//   kMark kContinue       the column's rows from this rank's up are zero: the rank below drives.
constexpr Row kMark = ~Row{0};
constexpr Row kStore = 0, kSwap = 1, kContinue = 2;
constexpr Row kNone = ~Row{0};  // no holder
// Rank r's rows start at the quantile (r / P)^kStartExponent of the step's initial pivots: a third
// of them below the boundary at 2 ranks (docs/benchmarks.md).
constexpr double kStartExponent = 1.6;
// How far ahead a follower prefetches the slot, then the rows, of the stored parts it will add.
constexpr std::size_t kPrefetchSlot = 16, kPrefetchColumn = 8;

using Clock = std::chrono::steady_clock;
double since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Tokens to the rank below, in batches sent with non-blocking sends (a rank never waits to send).
class Downstream {
 public:
  Downstream(MPI_Comm comm, int dest, int tag, RowSplitStats& stats) : dest_(dest), sends_(comm, dest, tag), stats_(stats) {}
  bool exists() const { return dest_ >= 0; }
  void push(Row word) {
    open_.push_back(word);
    if (open_.size() >= kBatchWords) flush();
  }
  void flush() {
    if (!exists() || open_.empty()) return;
    stats_.bytes_sent += static_cast<long long>(sends_.send(std::move(open_)));
    open_ = {};
    open_.reserve(kBatchWords);
  }
  void finish() {
    flush();
    sends_.wait_all();
  }

 private:
  static constexpr std::size_t kBatchWords = 4096;
  int dest_;
  mpi::PendingSends sends_;
  RowSplitStats& stats_;
  std::vector<Row> open_;
};

// Tokens from the rank above, read word by word. Waiting flushes what this rank owes the rank below
// (it may be waiting on this rank's tokens in turn) and yields the core (an oversubscribed rank lets
// the one it waits for run).
class Upstream {
 public:
  Upstream(MPI_Comm comm, int source, int tag, Downstream& below, RowSplitStats& stats)
      : comm_(comm), source_(source), tag_(tag), below_(below), stats_(stats) {}
  Row next() {
    if (at_ == words_.size()) receive();
    return words_[at_++];
  }
  // The word `ahead` places after the next one, if it has arrived (the all-ones word if not).
  Row peek(std::size_t ahead) const { return at_ + ahead < words_.size() ? words_[at_ + ahead] : kMark; }

 private:
  void receive() {
    below_.flush();
    const auto start = Clock::now();
    MPI_Status status;
    int arrived = 0;
    while (true) {
      mpi::check(MPI_Iprobe(source_, tag_, comm_, &arrived, &status), "MPI_Iprobe");
      if (arrived) break;
      sched_yield();
    }
    mpi::receive_probed(comm_, status, words_);
    at_ = 0;
    stats_.bytes_received += static_cast<long long>(words_.size() * sizeof(Row));
    stats_.seconds_waiting += since(start);
  }
  MPI_Comm comm_;
  int source_, tag_;
  Downstream& below_;
  RowSplitStats& stats_;
  std::vector<Row> words_;
  std::size_t at_ = 0;
};

// This rank's rows [first, last) of the step: its part of the column being reduced and of every
// stored column, and the holders of the pivots among its rows.
class RowSlice {
 public:
  RowSlice(Index n, Index first, Index last)
      : first_(first), holder_(static_cast<std::size_t>(last - first), kNone), store_(n - first, first), work_(last) {}

  void start(const ColumnView& rows) { work_.add(rows); }
  bool empty() const { return work_.empty(); }
  Index pivot() const { return work_.pivot(); }  // one of this rank's rows: the part holds no other
  Index holder(Index pivot) const {
    const Row h = holder_[at(pivot)];
    return h == kNone ? -1 : static_cast<Index>(h);
  }
  void prefetch_slot(Index pivot) const { store_.prefetch_slot(pivot); }
  void prefetch_column(Index pivot) const { store_.prefetch_column(pivot); }

  // Adds this rank's part of the column stored at `pivot` (none when it has no rows here).
  void add_stored(Index pivot) {
    if (store_.holds(pivot)) work_.add(store_.column(pivot));
  }
  // The column stops at `pivot`: its part is stored there, and `index` holds it if the pivot is here.
  void store(Index pivot, Index index) {
    if (owns(pivot)) holder_[at(pivot)] = static_cast<Row>(index);
    if (work_.empty()) return;
    work_.take(part_);
    store_.store_rows(pivot, part_);
  }
  // The swap rule at `pivot`, held by a later column: the working column takes the pivot, and the
  // later one, plus the working column, goes on (a legal left-to-right addition).
  void swap(Index pivot, Index index) {
    work_.take(part_);
    add_stored(pivot);
    work_.add(part_);
    if (owns(pivot)) holder_[at(pivot)] = static_cast<Row>(index);
    if (store_.holds(pivot) || !part_.empty()) store_.store_rows(pivot, part_);
  }
  template <class F>
  void for_each_pair(F&& f) const {
    for (std::size_t i = 0; i < holder_.size(); ++i)
      if (holder_[i] != kNone) f(first_ + static_cast<Index>(i), static_cast<Index>(holder_[i]));
  }

 private:
  bool owns(Index pivot) const { return pivot >= first_ && at(pivot) < holder_.size(); }
  std::size_t at(Index pivot) const { return static_cast<std::size_t>(pivot - first_); }
  Index first_;
  std::vector<Row> holder_;  // the column stored at each of this rank's rows (kNone: free)
  ColumnStore store_;        // this rank's part of every column stored at a pivot from its first row up
  PivotColumn work_;
  std::vector<Row> part_;
};

// Where each column of `order` has its part in `parts` (npos: none on this rank).
std::vector<std::size_t> parts_in_order(const std::vector<Index>& order, const StepColumns& parts) {
  std::vector<std::size_t> by_index(order.size());
  for (std::size_t k = 0; k < order.size(); ++k) by_index[k] = k;
  std::sort(by_index.begin(), by_index.end(), [&](std::size_t a, std::size_t b) { return order[a] < order[b]; });
  std::vector<std::size_t> where(order.size(), static_cast<std::size_t>(-1));
  std::size_t p = 0;
  for (const std::size_t k : by_index) {
    while (p < parts.size() && parts.index(p) < order[k]) ++p;
    if (p < parts.size() && parts.index(p) == order[k]) where[k] = p;
  }
  return where;
}

// Follows the ranks above through one column until its rows there are zero (returns false) or it
// stops at a pivot above this rank's rows (returns true). `index` follows the swaps.
bool follow(Index& index, RowSlice& slice, Upstream& above, Downstream& below) {
  while (true) {
    // Additions ahead in the stream are known: fetch their stored parts before they are needed.
    if (const Row far = above.peek(kPrefetchSlot); far != kMark) slice.prefetch_slot(far);
    if (const Row near = above.peek(kPrefetchColumn); near != kMark) slice.prefetch_column(near);
    const Row word = above.next();
    if (word != kMark) {
      slice.add_stored(word);
      below.push(word);
      continue;
    }
    const Row kind = above.next();
    if (kind == kContinue) return false;
    const Index pivot = above.next();
    for (const Row w : {kMark, kind, static_cast<Row>(pivot)}) below.push(w);
    if (kind == kStore) {
      slice.store(pivot, index);
      return true;
    }
    const Index later = above.next();
    below.push(static_cast<Row>(later));
    slice.swap(pivot, index);
    index = later;
  }
}

// Reduces the column with this rank's pivots (its rows are now the column's highest non-zero ones),
// telling the rank below what it does.
void drive(Index index, RowSlice& slice, Downstream& below, RowSplitStats& s) {
  while (!slice.empty()) {
    const Index pivot = slice.pivot();
    const Index holder = slice.holder(pivot);
    ++s.driven;
    if (holder < 0) {
      slice.store(pivot, index);
      for (const Row w : {kMark, kStore, static_cast<Row>(pivot)}) below.push(w);
      return;
    }
    if (holder < index) {
      slice.add_stored(pivot);
      below.push(static_cast<Row>(pivot));
    } else {
      slice.swap(pivot, index);
      for (const Row w : {kMark, kSwap, static_cast<Row>(pivot), static_cast<Row>(holder)}) below.push(w);
      index = holder;
    }
  }
  if (below.exists()) {
    below.push(kMark);
    below.push(kContinue);
  }
}

// The histogram's first row at quantile q (the rows of a bin are taken as holding its count evenly).
Index row_at_quantile(const std::vector<double>& histogram, Index n, double q) {
  double total = 0;
  for (double h : histogram) total += h;
  if (q <= 0 || total <= 0) return 0;
  if (q >= 1) return n;
  const auto bins = static_cast<Index>(histogram.size());
  double seen = 0;
  for (Index b = 0; b < bins; ++b) {
    const double h = histogram[static_cast<std::size_t>(b)];
    if (seen + h >= q * total) {
      const Index first = b * n / bins, last = (b + 1) * n / bins;
      const double within_bin = h > 0 ? (q * total - seen) / h : 0;
      return std::clamp<Index>(first + static_cast<Index>(within_bin * static_cast<double>(last - first)), first, last);
    }
    seen += h;
  }
  return n;
}

}  // namespace

double row_split_start(int rank, int ranks) { return std::pow(static_cast<double>(rank) / ranks, kStartExponent); }

void RowHistogram::sum_over(MPI_Comm comm) {
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, counts_.data(), static_cast<int>(counts_.size()), MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
}

std::vector<Index> row_bounds_at_quantiles(const std::vector<double>& histogram, Index n, int ranks, double (*quantile)(int, int)) {
  std::vector<Index> bounds{0};
  for (int r = 1; r < ranks; ++r) bounds.push_back(std::max(bounds.back(), row_at_quantile(histogram, n, quantile(r, ranks))));
  bounds.push_back(n);
  return bounds;
}

std::vector<Index> row_split_bounds(const std::vector<double>& pivot_histogram, Index n, int ranks) {
  return row_bounds_at_quantiles(pivot_histogram, n, ranks, row_split_start);
}

void reduce_step_row_split(const std::vector<Index>& order, const StepColumns& parts, Index n, const std::vector<Index>& bounds,
                           MPI_Comm comm, int tag, const std::function<void(Index, Index)>& record, RowSplitStats* stats) {
  int rank = 0, size = 1;
  mpi::check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  mpi::check(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  if (bounds.size() != static_cast<std::size_t>(size) + 1 || bounds.front() != 0 || bounds.back() != n ||
      !std::is_sorted(bounds.begin(), bounds.end()))
    throw std::logic_error("reduce_step_row_split: P + 1 increasing bounds from 0 to n expected");
  RowSplitStats local;
  RowSplitStats& s = stats ? *stats : local;
  RowSlice slice(n, bounds[static_cast<std::size_t>(rank)], bounds[static_cast<std::size_t>(rank) + 1]);
  Downstream below(comm, rank > 0 ? rank - 1 : -1, tag, s);
  Upstream above(comm, rank + 1, tag, below, s);
  const bool top = rank == size - 1;
  const auto where = parts_in_order(order, parts);
  for (std::size_t k = 0; k < order.size(); ++k) {
    Index index = order[k];
    if (where[k] != static_cast<std::size_t>(-1)) slice.start(parts.rows(where[k]));
    ++s.columns;
    if (!top && follow(index, slice, above, below)) continue;
    drive(index, slice, below, s);
  }
  below.finish();
  slice.for_each_pair(record);
}

}  // namespace lmtopo::topology
