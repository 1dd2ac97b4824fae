// DIPHA-style distributed reduction with interleaved pivot ownership. See reducers.hpp for the
// scheme; the invariant that makes it correct is that a column is only ever added to a *later*
// column: when a column arrives at a pivot held by a later column, the two swap places and the
// displaced later column goes on reducing. Pivots only move down, so every column ends stored at a
// free pivot or reduced to zero, whichever rank it passed through and in whatever order it arrived.
#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include "core/memory.hpp"
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
  // measure_work: count the work by bins of rows (row_with_work_above; row loans need it, one rank not).
  LocalPivots(const PivotOwnership& own, int rank, Index n, bool measure_work)
      : own_(own), rank_(rank), column_of_pivot_(static_cast<std::size_t>(own.local_count(rank)), kNoHolder),
        stored_(own.local_count(rank)), work_(n), measure_work_(measure_work), work_bin_shift_(bin_shift_for(n)),
        work_by_bin_(measure_work ? kWorkBins : 0, 0) {
    for (std::size_t k = 0; k < kLanes; ++k) lanes_.emplace_back(n);
    Index local = 0;
    own.for_each_range(rank, [&](Index first, Index last) {
      if (own_range_count_ < kOwnRanges) own_ranges_[own_range_count_] = {first, last, local};
      ++own_range_count_;
      local += last - first;
    });
    if (own_range_count_ > kOwnRanges) own_range_count_ = 0;  // too many: PivotOwnership answers
  }

  // The rank that reduces at `row` in this step: its owner, or the rank it was lent to.
  [[gnu::always_inline]] int owner(Index row) const {
    if (row >= loans_first_ && row < loans_last_) {
      for (const Lent& lent : lent_)
        if (row >= lent.first && row < lent.last) return lent.to;
      for (const Guest& guest : guests_)
        if (row >= guest.first && row < guest.last) return rank_;
    }
    for (std::size_t k = 0; k < own_range_count_; ++k)
      if (row >= own_ranges_[k].first && row < own_ranges_[k].last) return rank_;
    return own_.owner(row);
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
      const int to = owner(low);
      if (to != rank_) return to;
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
        const int to = owner(lane.low);
        if (to != rank_) {
          forward(to, lane);
          continue;
        }
        const Place at = place(lane.low);
        __builtin_prefetch(&at.holder);
        at.store.prefetch_slot(at.slot);
        lane.stage = Stage::kFetchColumn;
        continue;
      }
      const Place at = place(lane.low);  // kFetchColumn
      at.store.prefetch_column(at.slot);
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
    std::fill(work_by_bin_.begin(), work_by_bin_.end(), 0);
  }

  // Row loans (docs/methods.md, "Row loans"). Lends this rank's rows [first, last) (within one of
  // its intervals) to rank `to` for the rest of the step: appends the column stored at each as
  // [row, holder, size, rows...] to `out` and returns their number. owner() names `to` for them
  // from now on, and a lane about to add at one of them looks at its pivot again (and so forwards
  // the column).
  std::size_t lend(Index first, Index last, int to, std::vector<Row>& out) {
    const auto local_first = static_cast<Index>(slot(first));
    std::size_t count = 0;
    for (Index row = first; row < last; ++row) {
      const Index at = local_first + (row - first);
      if (!stored_.holds(at)) continue;
      ++count;
      out.insert(out.end(), {static_cast<Row>(row), column_of_pivot_[static_cast<std::size_t>(at)], 0});
      const std::size_t size_at = out.size() - 1;
      stored_.column(at).for_each([&](std::uint32_t r) { out.push_back(r); });
      out[size_at] = static_cast<Row>(out.size() - size_at - 1);
    }
    lent_.push_back({first, last, to});
    cover(first, last);
    for (Lane& lane : lanes_)
      if (lane.index >= 0 && lane.stage != Stage::kFindPivot && lane.low >= first && lane.low < last) lane.stage = Stage::kFindPivot;
    return count;
  }
  // Takes rows [first, last) lent by rank `lender`, and the `count` columns stored at them as lend
  // wrote them from `words`; returns the first word after them.
  const Row* borrow(Index first, Index last, int lender, const Row* words, std::size_t count) {
    guests_.push_back({first, last, lender, std::vector<Row>(static_cast<std::size_t>(last - first), kNoHolder), ColumnStore(last - first)});
    Guest& guest = guests_.back();
    for (std::size_t c = 0; c < count; ++c) {
      const Index row = words[0];
      guest.holder[static_cast<std::size_t>(row - first)] = words[1];
      current_.assign(words + 3, words + 3 + words[2]);
      guest.store.store_rows(row - first, current_);
      words += 3 + words[2];
    }
    cover(first, last);
    return words;
  }
  // At the end of a step: the pivots found at borrowed rows as [row, holder] words for each lender
  // (by rank), to record; every row is its owner's again.
  std::vector<std::vector<Row>> return_loans(int ranks) {
    std::vector<std::vector<Row>> back(static_cast<std::size_t>(ranks));
    for (const Guest& guest : guests_)
      for (std::size_t k = 0; k < guest.holder.size(); ++k)
        if (guest.holder[k] != kNoHolder)
          back[static_cast<std::size_t>(guest.lender)].insert(back[static_cast<std::size_t>(guest.lender)].end(),
                                                               {static_cast<Row>(guest.first + static_cast<Index>(k)), guest.holder[k]});
    guests_.clear();
    lent_.clear();
    loans_first_ = std::numeric_limits<Index>::max();
    loans_last_ = 0;
    return back;
  }
  // The row x in [first, last] above which lies `fraction` of the work (entries added) this step
  // measured at the rows [first, last), to the resolution of the work bins; `last` when none.
  Index row_with_work_above(Index first, Index last, double fraction) const {
    const std::size_t low_bin = static_cast<std::size_t>(first >> work_bin_shift_), high_bin = static_cast<std::size_t>((last - 1) >> work_bin_shift_);
    double total = 0;
    for (std::size_t b = low_bin; b <= high_bin; ++b) total += static_cast<double>(work_by_bin_[b]);
    if (total <= 0) return last;
    double above = 0;
    for (std::size_t b = high_bin + 1; b-- > low_bin;) {
      above += static_cast<double>(work_by_bin_[b]);
      if (above >= fraction * total) return std::clamp<Index>(static_cast<Index>(b) << work_bin_shift_, first, last);
    }
    return first;
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
  // This rank's local index of its row `row`.
  [[gnu::always_inline]] std::size_t slot(Index row) const {
    for (std::size_t k = 0; k < own_range_count_; ++k)
      if (row >= own_ranges_[k].first && row < own_ranges_[k].last) return static_cast<std::size_t>(own_ranges_[k].local_first + row - own_ranges_[k].first);
    return static_cast<std::size_t>(own_.local(row));
  }

  // Where the pivot at `row` (this rank's, owned or borrowed) is kept: its holder, and its slot in a store.
  struct Place {
    Row& holder;
    ColumnStore& store;
    Index slot;
  };
  [[gnu::always_inline]] Place place(Index row) {
    if (row >= loans_first_ && row < loans_last_)
      for (Guest& guest : guests_)
        if (row >= guest.first && row < guest.last) return {guest.holder[static_cast<std::size_t>(row - guest.first)], guest.store, row - guest.first};
    const std::size_t at = slot(row);
    return {column_of_pivot_[at], stored_, static_cast<Index>(at)};
  }

  // The column `index` (entries in `work`) at its pivot `low`, this rank's: stored there if the pivot
  // is free (returns true: the column ended), else the stored column added, by the swap rule if a
  // later column holds the pivot (the earlier one stays, the later one goes on in `index`).
  [[gnu::always_inline]] bool add_at_pivot(Index& index, PivotColumn& work, Index low) {
    const Place at = place(low);
    Row& holder = at.holder;
    if (holder == kNoHolder) {
      holder = static_cast<Row>(index);  // and column `low` is cleared
      work.take(current_);
      at.store.store_rows(at.slot, current_);
      return true;
    }
    const StoredRows stored = at.store.column(at.slot);
    ++additions_;
    stored_bytes_added_ += stored.last - stored.first;
    if (measure_work_) work_by_bin_[static_cast<std::size_t>(low >> work_bin_shift_)] += stored.last - stored.first;
    if (static_cast<Index>(holder) < index) {
      work.add(stored);
    } else {
      work.take(current_);
      work.add(stored);
      work.add(current_);
      at.store.store_rows(at.slot, current_);
      const Index later = holder;
      holder = static_cast<Row>(index);
      index = later;
    }
    return false;
  }
  void cover(Index first, Index last) {
    loans_first_ = std::min(loans_first_, first);
    loans_last_ = std::max(loans_last_, last);
  }
  static int bin_shift_for(Index n) {
    int shift = 0;
    while ((n >> shift) >= static_cast<Index>(kWorkBins)) ++shift;
    return shift;
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
  // This rank's rows as ranges [first, last), local_first the local index of first, when there are
  // at most kOwnRanges of them (one rank, blocks, halves): owner() and slot() answer from them on the
  // hot path, not by PivotOwnership's divisions (chunks) or binary search (intervals).
  struct OwnRange {
    Index first, last, local_first;
  };
  static constexpr std::size_t kOwnRanges = 4;
  std::array<OwnRange, kOwnRanges> own_ranges_{};
  std::size_t own_range_count_ = 0;
  long long additions_ = 0, stored_bytes_added_ = 0;
  // Bytes of stored columns added at each bin of rows (2^work_bin_shift_ rows) this step: where a
  // loan splits the work.
  static constexpr std::size_t kWorkBins = 4096;
  bool measure_work_;
  int work_bin_shift_;
  std::vector<long long> work_by_bin_;
  // Row loans of this step: rows of another rank's reduced here (guests), rows of this rank's lent
  // out; [loans_first_, loans_last_) covers them all (the common case, none, costs one comparison).
  struct Guest {
    Index first, last;
    int lender;
    std::vector<Row> holder;
    ColumnStore store;
  };
  struct Lent {
    Index first, last;
    int to;
  };
  std::deque<Guest> guests_;
  std::vector<Lent> lent_;
  Index loans_first_ = std::numeric_limits<Index>::max(), loans_last_ = 0;
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
  bool empty() const { return live_ == 0; }

  // Calls f(index, rows) with the next column and drops it.
  template <class F>
  auto next(F&& f) {
    skip_moved();
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
    --live_;
    if (last || live_ == 0) drop_front();
    return result;
  }

  void push(std::vector<Row> batch) {
    for (std::size_t at = 0; at < batch.size(); at += 2 + static_cast<std::size_t>(batch[at + 1])) ++live_;
    if (!batch.empty()) batches_.push_back(std::move(batch));
  }
  // Calls f(pivot, size) for the pivot (last row) and size of every column waiting.
  template <class F>
  void for_each_pivot(F&& f) const {
    std::size_t from = position_;
    for (const auto& words : batches_) {
      for (std::size_t at = from; at < words.size(); at += 2 + static_cast<std::size_t>(words[at + 1]))
        if (words[at] != kMoved && words[at + 1] > 0) f(static_cast<Index>(words[at + 1 + words[at + 1]]), static_cast<std::size_t>(words[at + 1]));
      from = 0;
    }
  }
  // Moves the columns whose pivot `take` accepts to `out` ([index, size, rows...] each); the others
  // stay where they are (a moved column leaves its words behind, marked, not the others copied).
  template <class Take>
  void extract(Take&& take, std::vector<Row>& out) {
    std::size_t from = position_;
    for (auto& words : batches_) {
      for (std::size_t at = from; at < words.size(); at += 2 + static_cast<std::size_t>(words[at + 1])) {
        const std::size_t end = at + 2 + static_cast<std::size_t>(words[at + 1]);
        if (words[at] == kMoved || end == at + 2 || !take(static_cast<Index>(words[end - 1]))) continue;
        out.insert(out.end(), words.begin() + static_cast<std::ptrdiff_t>(at), words.begin() + static_cast<std::ptrdiff_t>(end));
        words[at] = kMoved;
        --live_;
      }
      from = 0;
    }
    if (live_ == 0) {
      batches_.clear();
      position_ = 0;
    }
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
      push(std::move(incoming));
      any = true;
    }
  }

 private:
  static constexpr Row kMoved = ~Row{0};  // a column taken out by extract (no column has this index)
  void drop_front() {
    batches_.pop_front();
    position_ = 0;
  }
  // Past the moved columns to the next live one (there is one: live_ > 0).
  void skip_moved() {
    while (batches_.front()[position_] == kMoved) {
      position_ += 2 + static_cast<std::size_t>(batches_.front()[position_ + 1]);
      if (position_ == batches_.front().size()) drop_front();
    }
  }

  std::deque<std::vector<Row>> batches_;
  std::size_t position_ = 0;
  std::size_t live_ = 0;  // columns waiting, moved ones not counted
};

std::size_t g_release_granularity = std::size_t{1} << 20;  // release_granularity()

// The last step's own columns are read once each, front to back within each of its phases (runs of
// increasing position in the dealt buffer, each later phase lower in it: the gaps between runs hold
// no later run), and nothing reads the buffer after that step: the pages behind the column being
// taken are given back as it goes, a rank's columns of the earlier steps among them. The rank with
// the most dealt words (10^7 operations, 4 ranks: 60 MiB, 33 of them the last step's) then does not
// hold them beside the columns stored at its pivots, which grow over the step to its peak.
class ReleaseBehind {
 public:
  explicit ReleaseBehind(std::vector<Row>& words) : words_(words) {}
  // The rest of the last run, at the step's end; returns the bytes given back over the step.
  long long finish() {
    release(last_end_);
    return released_bytes_;
  }

  // The column at words [first, end) is being taken (it will not be read here again).
  void taking(std::size_t first, std::size_t end) {
    if (!started_ || first < last_end_) {  // a new run: the last one was read to its end
      release(last_end_);
      released_to_ = first;
      started_ = true;
    } else if ((first - released_to_) * sizeof(Row) >= g_release_granularity) {
      release(first);
    }
    last_end_ = end;
  }

 private:
  // Gives back the pages in [released_to_, to); the partial page at the end stays unreleased, to go
  // with the next piece.
  void release(std::size_t to) {
    if (to <= released_to_) return;
    const core::ReleasedPages pages = core::release_pages(words_.data() + released_to_, words_.data() + to);
    if (pages.last == pages.first) return;
    released_bytes_ += pages.last - pages.first;
    released_to_ = static_cast<std::size_t>(reinterpret_cast<Row*>(pages.last) - words_.data());
  }
  std::vector<Row>& words_;
  bool started_ = false;
  std::size_t released_to_ = 0;  // words before it (in this run) are given back, but for a part page
  std::size_t last_end_ = 0;
  long long released_bytes_ = 0;
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

// Row loans (docs/methods.md, "Row loans"). A phase of an upper-first step passes its columns down
// through the ranks' row intervals, so the rank owning the lowest rows ends it alone while those
// above wait. A rank with nothing left to reduce asks the owner of the rows just below its interval
// of the phase for some of them; that rank lends the top of its rows, the part holding half of the
// work measured there so far, with the columns stored at them and its waiting columns whose pivots
// lie there, or refuses when fewer than kMinLoanColumns columns wait in its rows. Columns sent on by
// the old owner's rule reach the borrower through the lender. At the end of the step the pivots
// found at borrowed rows go back to their owners (the next step's clearing reads them there).
class RowLoans {
 public:
  static constexpr std::size_t kMinLoanColumns = 4;
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kRetry{2};

  RowLoans(MPI_Comm comm, int rank, int size, int dim, const PivotOwnership& own)
      : comm_(comm), rank_(rank), own_(own), request_tag_(7272 + dim), reply_tag_(8282 + dim),
        requests_sent_(static_cast<std::size_t>(size), 0), requests_answered_(static_cast<std::size_t>(size), 0) {
    for (int r = 0; r < size; ++r) {
      requests_.emplace_back(comm, r, request_tag_);
      replies_.emplace_back(comm, r, reply_tag_);
    }
  }

  // A phase on rows [first, last) starts: this rank may ask for rows of it.
  void start_phase(Index first, Index last) {
    phase_first_ = first;
    phase_last_ = last;
    next_ask_ = Clock::now();
  }

  // Columns arrived: once idle again, this rank may ask at once.
  void note_columns_arrived() { next_ask_ = Clock::now(); }

  // Borrower, idle: asks the owner of the rows below its interval of the phase, if there is one.
  // After a refusal it asks again kRetry later (columns on their way may not have arrived there).
  void ask() {
    if (asking_ || Clock::now() < next_ask_) return;
    next_ask_ = Clock::time_point::max();
    const auto& starts = own_.starts();
    const auto& owners = own_.owners();
    for (std::size_t k = 0; k < owners.size(); ++k) {
      const Index first = std::max(starts[k], phase_first_);
      if (owners[k] != rank_ || first >= std::min(starts[k + 1], phase_last_) || first == phase_first_) continue;
      const int lender = own_.owner(first - 1);
      if (lender == rank_) continue;
      requests_[static_cast<std::size_t>(lender)].send({static_cast<Row>(first), static_cast<Row>(phase_first_)});
      ++requests_sent_[static_cast<std::size_t>(lender)];
      asking_ = true;
      return;
    }
  }

  // Answers the requests that arrived (lender) and takes the loans given (borrower). `waiting(f)`
  // calls f(pivot) for each column waiting on this rank; `take_waiting(accept, out)` moves those
  // whose pivot `accept` takes to `out` as [index, size, rows...]. Returns whether columns came.
  template <class Waiting, class TakeWaiting>
  bool serve(LocalPivots& pivots, Inbox& inbox, Waiting&& waiting, TakeWaiting&& take_waiting, ReductionStepStats& row) {
    MPI_Status status;
    std::vector<Row> message;
    for (int arrived = 1; arrived;) {
      mpi::check(MPI_Iprobe(MPI_ANY_SOURCE, request_tag_, comm_, &arrived, &status), "MPI_Iprobe");
      if (!arrived) break;
      mpi::receive_probed(comm_, status, message);
      ++requests_answered_[static_cast<std::size_t>(status.MPI_SOURCE)];
      std::vector<Row> reply = lend(pivots, message.at(0), message.at(1), status.MPI_SOURCE, waiting, take_waiting);
      if (!reply.empty()) ++row.loans_given;
      replies_[static_cast<std::size_t>(status.MPI_SOURCE)].send(std::move(reply));
    }
    for (auto& to : replies_) to.drop_completed();  // a loan's words, freed once received
    bool columns = false;
    for (int arrived = 1; arrived;) {
      mpi::check(MPI_Iprobe(MPI_ANY_SOURCE, reply_tag_, comm_, &arrived, &status), "MPI_Iprobe");
      if (!arrived) break;
      mpi::receive_probed(comm_, status, message);
      asking_ = false;
      if (message.empty()) {  // refused
        next_ask_ = std::min(next_ask_, Clock::now() + kRetry);
        continue;
      }
      const Row* rest = pivots.borrow(message[0], message[1], status.MPI_SOURCE, message.data() + 3, message[2]);
      // The waiting columns (most of a loan's words) go to the inbox in the message itself, not a copy.
      message.erase(message.begin(), message.begin() + (rest - message.data()));
      inbox.push(std::move(message));
      message = {};
      ++row.loans_taken;
      columns = true;
      next_ask_ = Clock::now();
    }
    return columns;
  }

  // After the step has ended everywhere: refuses the requests not yet answered, takes the last
  // replies (refusals: a loan carries columns, so none is left once every column has ended), and
  // returns the pivots found at borrowed rows to their owners. Collective.
  void finish(LocalPivots& pivots) {
    std::vector<long long> sent_to_me(requests_sent_.size(), 0);
    mpi::check(MPI_Alltoall(requests_sent_.data(), 1, MPI_LONG_LONG, sent_to_me.data(), 1, MPI_LONG_LONG, comm_), "MPI_Alltoall");
    std::vector<Row> message;
    for (std::size_t r = 0; r < sent_to_me.size(); ++r)
      for (; requests_answered_[r] < sent_to_me[r]; ++requests_answered_[r]) {
        MPI_Status status;
        mpi::check(MPI_Probe(static_cast<int>(r), request_tag_, comm_, &status), "MPI_Probe");
        mpi::receive_probed(comm_, status, message);
        replies_[r].send({});
      }
    if (asking_) {
      MPI_Status status;
      mpi::check(MPI_Probe(MPI_ANY_SOURCE, reply_tag_, comm_, &status), "MPI_Probe");
      mpi::receive_probed(comm_, status, message);
      if (!message.empty()) throw std::logic_error("RowLoans: a loan after the step ended");
      asking_ = false;
    }
    for (auto& to : requests_) to.wait_all();
    for (auto& to : replies_) to.wait_all();
    for (const auto& from : mpi::exchange_blocks(comm_, pivots.return_loans(static_cast<int>(requests_sent_.size())), MPI_UINT32_T))
      for (std::size_t i = 0; i + 1 < from.size(); i += 2) pivots.record(from[i], from[i + 1]);
  }

 private:
  // The reply to a request for the rows below `top` (the borrower's first row in the phase that
  // starts at `phase_first`): [first, last, stored count, stored columns..., waiting columns...], or
  // nothing (refused).
  template <class Waiting, class TakeWaiting>
  std::vector<Row> lend(LocalPivots& pivots, Index top, Index phase_first, int to, Waiting&& waiting, TakeWaiting&& take_waiting) {
    if (top == 0 || own_.owner(top - 1) != rank_) return {};
    const auto& starts = own_.starts();
    const Index interval_first = *(std::upper_bound(starts.begin(), starts.end(), top - 1) - 1);
    const Index first = std::max(interval_first, phase_first);
    Index& last = lend_tops_.try_emplace(top, top).first->second;  // rows below earlier loans
    if (first >= last) return {};
    std::vector<Index> pivots_waiting;
    waiting([&](Index p, std::size_t) {
      if (p >= first && p < last) pivots_waiting.push_back(p);
    });
    if (pivots_waiting.size() < kMinLoanColumns) return {};
    Index from = pivots.row_with_work_above(first, last, 0.5);
    if (from >= last) {  // no work measured there yet: the rows above the waiting columns' median
      std::nth_element(pivots_waiting.begin(), pivots_waiting.begin() + static_cast<std::ptrdiff_t>(pivots_waiting.size() / 2), pivots_waiting.end());
      from = pivots_waiting[pivots_waiting.size() / 2];
    }
    // At least one waiting column goes with the rows: the step cannot end while a loan travels.
    from = std::min(from, *std::max_element(pivots_waiting.begin(), pivots_waiting.end()));
    std::vector<Row> reply{static_cast<Row>(from), static_cast<Row>(last), 0};
    reply[2] = static_cast<Row>(pivots.lend(from, last, to, reply));
    std::size_t words = reply.size();
    waiting([&](Index p, std::size_t size) {
      if (p >= from && p < last) words += 2 + size;
    });
    reply.reserve(words);
    take_waiting([&](Index p) { return p >= from && p < last; }, reply);
    last = from;
    return reply;
  }

  MPI_Comm comm_;
  int rank_;
  const PivotOwnership& own_;
  int request_tag_, reply_tag_;
  std::vector<mpi::PendingSends> requests_, replies_;
  std::vector<long long> requests_sent_, requests_answered_;
  std::map<Index, Index> lend_tops_;  // by the borrower's first row: the rows lent to it start here
  Index phase_first_ = 0, phase_last_ = 0;
  bool asking_ = false;
  Clock::time_point next_ask_ = Clock::time_point::max();
};

}  // namespace

std::size_t release_granularity() { return g_release_granularity; }
void set_release_granularity(std::size_t bytes) { g_release_granularity = std::max<std::size_t>(bytes, 1); }

Index default_pivot_chunk(Index n, int ranks) {
  // One contiguous block per rank (DIPHA's partition). Finer chunks spread the band of pivots where
  // the work sits over the ranks only when they are smaller than the band, and then most columns
  // cross ranks many times: on the k-NN cone matrices measured every finer chunk was slower than
  // the blocks (docs/benchmarks.md, "Distributed reducer: pivot ownership").
  return std::max<Index>(1, (n + ranks - 1) / ranks);
}

namespace {

// This rank's pairs of the reduction of the columns it was dealt (see reduce_distributed_owned), not
// gathered. The last step gives back the pages of the columns it has read (ReleaseBehind).
std::vector<PersistencePair> reduce_dealt_columns(OwnedColumns& dealt, const PivotOwnership& own, Index n, int max_dim, MPI_Comm comm,
                                                  std::vector<ReductionStepStats>* stats, const std::string& column_order,
                                                  StepMethods step_methods, int lowest_dim = 1);

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
  OwnedColumns mine;
  mine.words = mpi::scatter_built_blocks<Row>(comm, MPI_UINT32_T, [&](int r) {
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
  return gather_sorted_pairs(comm, reduce_dealt_columns(mine, own, n, max_dim, comm, stats, "received-first", {}));
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
  RowHistogram pivots(n, 1024);
  for (const auto& column : mine)
    if (!column.rows.empty()) pivots.add(column.rows.last[-1]);
  pivots.sum_over(comm);
  return row_split_bounds(pivots.counts(), n, ranks);
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

// The phases of a step: upper-first takes the upper half of the index range (phase 0) before the
// lower half (1), upper-thirds the upper half in three blocks of indices, the last first (0, 1, 2),
// then the lower half (3); the other orders run in one phase. Phases without columns end at once.
constexpr std::size_t kMaxPhases = 4;
int phase_of(ColumnOrder order, Index index, Index n) {
  const Index half = upper_half_start(n);
  if (!takes_upper_first(order)) return 0;
  if (order != ColumnOrder::upper_thirds) return index < half ? 1 : 0;
  if (index < half) return 3;
  return 2 - static_cast<int>((index - half) * 3 / (n - half));
}

std::vector<PersistencePair> reduce_dealt_columns(OwnedColumns& dealt, const PivotOwnership& own, Index n, int max_dim, MPI_Comm comm,
                                                  std::vector<ReductionStepStats>* stats, const std::string& column_order,
                                                  StepMethods step_methods, int lowest_dim) {
  int rank = 0, size = 1;
  mpi::check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  mpi::check(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  // Where each local column (the i-th held, global index own.global(rank, its position)) starts in
  // dealt.words: its [dim, size] header. One word a column, not its index, dim and view (24 bytes).
  std::vector<std::size_t> header_at;
  header_at.reserve(dealt.positions.empty() ? static_cast<std::size_t>(own.local_count(rank)) : dealt.positions.size());
  dealt.for_each([&](Row, std::size_t first) { header_at.push_back(first); });
  auto local_index = [&](std::size_t i) { return own.global(rank, static_cast<Index>(dealt.position(i))); };
  auto local_dim = [&](std::size_t i) { return static_cast<int>(dealt.words[header_at[i]]); };
  auto local_column = [&](std::size_t i) {
    const Row* rows = dealt.words.data() + header_at[i] + 2;
    return ColumnView{rows, rows + rows[-1]};
  };

  LocalPivots pivots(own, rank, n, size > 1 && step_methods.row_loans);
  // Dimensions high to low (the twist's clearing), one asynchronous round per dimension: each rank
  // reduces its own columns and those arriving from any rank, sends each column whose pivot another
  // rank owns to that rank in batches, and looks at the network between batches. Arrival order does
  // not matter: the swap rule keeps additions left-to-right. Columns that arrived go first: they are
  // further along, and their pivots decide the work left for later columns.
  constexpr std::size_t batch_columns = 512;  // columns reduced between two looks at the network
  constexpr std::chrono::milliseconds round_time{2};  // at most, in lanes (below)
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
    // The step's phases (phase_of): on several ranks a rank's columns of a later phase wait until
    // every column of the earlier ones has ended, anywhere (held, released by phase_done), as on one
    // rank. Taken whenever the inbox ran dry instead, the lower columns met the upper columns' paths
    // in an order set by timing, and one order in a few cost 3.5x the additions (docs/benchmarks.md,
    // "The order of the lower columns and the rows by halves").
    std::vector<std::deque<std::size_t>> held(kMaxPhases);
    for (const std::size_t i : own_columns) held[static_cast<std::size_t>(phase_of(order, local_index(i), n))].push_back(i);
    own_columns.clear();
    std::size_t phase = 0;  // the phase running
    if (size == 1) {  // one rank: every phase's columns in turn
      for (auto& columns : held) {
        own_columns.insert(own_columns.end(), columns.begin(), columns.end());
        columns.clear();
      }
    } else {
      own_columns = std::move(held[0]);
    }
    // Upper-first: a rank's own columns first, as on one rank (they precede every column arriving
    // from the ranks above in index). Received first instead, columns from two ranks above met at
    // a pivot in an order set by timing: 3 ranks, 1.74 M operations, the bars-1 step's work was 56 M
    // entries in most runs and 85-158 M in some (docs/benchmarks.md, "Own columns first").
    const bool received_first = order == ColumnOrder::received_first || order == ColumnOrder::upper_first_received;
    if (size > 1 && order == ColumnOrder::natural && (step_methods.split_rows || step_methods.speculate_run > 0)) {
      std::vector<ColumnRef> mine;
      for (const std::size_t i : own_columns) mine.push_back({local_index(i), local_column(i)});
      if (step_methods.split_rows) reduce_step_by_rows(mine, n, d, own, pivots, comm, row);
      else reduce_step_replicated(mine, n, d, step_methods.speculate_run, own, pivots, comm, row);
      end_step();
      continue;
    }
    std::vector<long long> totals(kMaxPhases, 0);
    totals[0] = static_cast<long long>(own_columns.size());
    for (std::size_t k = 1; k < kMaxPhases; ++k) totals[k] = static_cast<long long>(held[k].size());
    mpi::check(MPI_Allreduce(MPI_IN_PLACE, totals.data(), static_cast<int>(kMaxPhases), MPI_LONG_LONG, MPI_SUM, comm), "MPI_Allreduce");
    Outbox outbox(comm, size, tag);
    Inbox inbox;
    // While later phases are held, only the columns of the phases released are in flight (and only
    // they are stored), so their ends are counted alone (the counts are cumulative); every rank
    // releases its next phase with columns (on any rank) at the same all-reduce, and the step ends
    // with the last such phase.
    auto next_phase = [&] {
      std::size_t next = phase + 1;
      while (next < kMaxPhases && totals[next] == 0) ++next;
      return next;
    };
    long long released = totals[0];  // one rank: every column (the later phases are empty there)
    std::optional<Termination> phase_done(std::in_place, comm, released);
    long long ended = 0;
    std::optional<RowLoans> loans;
    if (size > 1 && takes_upper_first(order) && !own.starts().empty() && step_methods.row_loans) {
      loans.emplace(comm, rank, size, d, own);
      loans->start_phase(upper_half_start(n), n);
    }
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
    std::optional<ReleaseBehind> behind;
    if (d == lowest_dim) behind.emplace(dealt.words);
    auto take_next = [&](auto&& f) {  // the next column to f(index, rows)
      if (!inbox.empty() && (received_first || own_columns.empty())) {
        inbox.next(f);
      } else {
        const std::size_t local = own_columns.front();
        own_columns.pop_front();
        const ColumnView rows = local_column(local);
        f(local_index(local), rows);  // copies the rows
        if (behind) behind->taking(header_at[local], header_at[local] + 2 + rows.size());
      }
    };
    // Out of index order the columns go through lanes (LocalPivots::advance); in it, one at a time.
    const bool in_lanes = order != ColumnOrder::natural;
    auto on_ended = [&] { ++ended; };
    auto waiting = [&](auto&& f) {  // f(pivot, size) for each column waiting here
      inbox.for_each_pivot(f);
      for (const std::size_t i : own_columns)
        if (const ColumnView c = local_column(i); !c.empty()) f(static_cast<Index>(c.last[-1]), c.size());
    };
    auto take_waiting = [&](auto&& accept, std::vector<Row>& out) {  // for a loan
      inbox.extract(accept, out);
      std::deque<std::size_t> kept;
      for (const std::size_t i : own_columns) {
        const ColumnView c = local_column(i);
        if (c.empty() || !accept(static_cast<Index>(c.last[-1]))) {
          kept.push_back(i);
          continue;
        }
        out.insert(out.end(), {static_cast<Row>(local_index(i)), static_cast<Row>(c.size())});
        out.insert(out.end(), c.first, c.last);
      }
      own_columns.swap(kept);
    };
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
        // A round also ends after round_time: a few long columns can take a round of 512 far
        // longer, while forwarded columns wait in the outbox and other ranks' requests unanswered.
        std::size_t advances = 0;
        for (std::size_t started = 0; started < batch_columns && !(sources_empty() && pivots.lanes_idle());) {
          for (; pivots.lane_free() && !sources_empty(); ++started) take_next(start_in_lane);
          pivots.advance(on_ended, on_forward);
          if (++advances % 64 == 0 && std::chrono::steady_clock::now() - look_start > round_time) break;
        }
      }
      outbox.flush(row);
      bool received = inbox.receive_arrived(comm, tag, row);
      if (loans) {
        if (received) loans->note_columns_arrived();
        received = loans->serve(pivots, inbox, waiting, take_waiting, row) || received;
      }
      if (idle && phase_done->done(ended)) {
        const std::size_t next = next_phase();
        if (next == kMaxPhases) break;
        phase = next;
        own_columns = std::move(held[phase]);
        released += totals[phase];
        phase_done.emplace(comm, released);
        if (loans && phase_of(order, 0, n) == static_cast<int>(phase)) loans->start_phase(0, upper_half_start(n));
        continue;
      }
      if (idle && !received && loans) loans->ask();
      if (idle && !received) sched_yield();  // let an oversubscribed rank run
      if (idle) row.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - look_start).count();
    }
    outbox.wait_all();
    if (loans) loans->finish(pivots);
    if (behind) row.bytes_released = behind->finish();
    end_step();
  }

  return pivots.pairs();
}

}  // namespace

std::vector<PersistencePair> reduce_distributed_owned(std::vector<Row> my_columns, Index n, MPI_Comm comm,
                                                      std::vector<ReductionStepStats>* stats, Index pivot_chunk,
                                                      const std::string& column_order, StepMethods step_methods,
                                                      int lowest_dim) {
  int size = 1;
  mpi::check(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  const PivotOwnership own(n, size, pivot_chunk > 0 ? pivot_chunk : default_pivot_chunk(n, size));
  return reduce_distributed_owned(std::move(my_columns), own, n, comm, stats, column_order, step_methods, lowest_dim);
}

namespace {

// The largest dimension of the dealt columns on any rank, once the arguments are checked. Collective.
int checked_max_dim(const std::vector<Row>& my_columns, MPI_Comm comm, const std::string& column_order, StepMethods step_methods) {
  require_column_order(column_order);
  if (step_methods.split_rows && step_methods.speculate_run > 0)
    throw std::invalid_argument("reduce_distributed_owned: speculative runs and split rows are two ways of the same steps");
  int max_dim = 0;
  for (std::size_t pos = 0; pos < my_columns.size(); pos += 2 + static_cast<std::size_t>(my_columns[pos + 1]))
    max_dim = std::max(max_dim, static_cast<int>(my_columns[pos]));
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, &max_dim, 1, MPI_INT, MPI_MAX, comm), "MPI_Allreduce");
  return max_dim;
}

// Moves the columns with rows to the front of `columns.words` (kept in order) and drops the empty
// ones, keeping each kept column's position. The buffer is reallocated at its new size when that
// frees more than half of it (a copy of at most the half).
void drop_empty_columns(OwnedColumns& columns) {
  std::vector<Row>& words = columns.words;
  std::size_t kept = 0;
  columns.for_each([&](Row, std::size_t first) { kept += words[first + 1] > 0; });
  std::vector<Row> positions;
  positions.reserve(kept);
  std::size_t to = 0, held = 0;  // not for_each: a column copied down may overwrite the next one's header
  for (std::size_t at = 0; at < words.size(); ++held) {
    const std::size_t size = 2 + static_cast<std::size_t>(words[at + 1]);
    if (size > 2) {
      positions.push_back(columns.position(held));
      std::copy(words.begin() + static_cast<std::ptrdiff_t>(at), words.begin() + static_cast<std::ptrdiff_t>(at + size),
                words.begin() + static_cast<std::ptrdiff_t>(to));  // to <= at: a forward copy
      to += size;
    }
    at += size;
  }
  words.resize(to);
  if (2 * to < words.capacity()) words.shrink_to_fit();
  columns.positions = std::move(positions);
}

}  // namespace

std::vector<PersistencePair> reduce_distributed_owned(std::vector<Row> my_columns, const PivotOwnership& own, Index n,
                                                      MPI_Comm comm, std::vector<ReductionStepStats>* stats,
                                                      const std::string& column_order, StepMethods step_methods,
                                                      int lowest_dim) {
  const int max_dim = checked_max_dim(my_columns, comm, column_order, step_methods);
  OwnedColumns mine{std::move(my_columns), {}};
  return reduce_dealt_columns(mine, own, n, max_dim, comm, stats, column_order, step_methods, lowest_dim);
}

std::vector<PersistencePair> reduce_distributed_owned(OwnedColumns&& my_columns, const PivotOwnership& own, Index n,
                                                      MPI_Comm comm, std::vector<ReductionStepStats>* stats,
                                                      const std::string& column_order, StepMethods step_methods,
                                                      int lowest_dim) {
  const int max_dim = checked_max_dim(my_columns.words, comm, column_order, step_methods);
  OwnedColumns mine = std::move(my_columns);  // taken: its last step gives its pages back
  drop_empty_columns(mine);
  return reduce_dealt_columns(mine, own, n, max_dim, comm, stats, column_order, step_methods, lowest_dim);
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
  if (name == "upper-first-received") return ColumnOrder::upper_first_received;
  if (name == "upper-thirds") return ColumnOrder::upper_thirds;
  throw std::invalid_argument(
      "expected auto, natural, received-first, upper-first, upper-first-received or upper-thirds (or a comma-separated list of the last "
      "five), got '" + name + "'");
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

std::string auto_top_step_order(int dim, Index num_columns) {
  // The primal top step of long k-NN zigzags (its columns are the cone cells of the top simplices,
  // all in the upper half). 96 layers (10^7 operations), entries added: upper-first 920 M at one rank
  // and 917-921 M at 3-4 ranks; upper-first-received 298-334 M at 2 ranks, 456-1,785 M at 3-4 (set by
  // the timing); upper-thirds 226.5 M at one rank, 226-229 M at 2-3, 250-256 M at 4. 64 layers
  // (3.6 M): 971 M, thirds 449 M at 1-2 ranks, 497-506 M at 3-4. On one rank blocks of 2, 3, 4, 5, 8
  // and 16 gave 557, 449, 458, 505, 723 and 1,097 M at 64 layers. docs/benchmarks.md, "The top step in thirds".
  return auto_column_order(dim, num_columns) == ColumnOrder::upper_first ? "upper-thirds" : "auto";
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
