// One step of the distributed reducer as a speculative pipeline: see reduce_speculative.hpp.
#include "topology/reduce_speculative.hpp"

#include <chrono>
#include <deque>
#include <limits>
#include <unordered_map>

#include "mpi/collective.hpp"
#include "mpi/pending_sends.hpp"
#include "topology/z2_column.hpp"

namespace lmtopo::topology {
namespace {

// The rows the step's columns have, [first, last): every pivot of the step lies there.
struct RowRange {
  Index first = 0, last = 0;
  std::size_t size() const { return static_cast<std::size_t>(last - first); }
  std::size_t at(Index row) const { return static_cast<std::size_t>(row - first); }
};

RowRange rows_of(const StepColumns& columns) {
  RowRange range{std::numeric_limits<Index>::max(), 0};
  for (std::size_t i = 0; i < columns.size(); ++i)
    for (const Row row : columns.rows(i)) {
      range.first = std::min<Index>(range.first, row);
      range.last = std::max<Index>(range.last, Index{row} + 1);
    }
  if (range.first > range.last) range.first = range.last;
  return range;
}

// Every rank's copy of the step's pivots: the column stored at each pivot and its holder.
class ReplicatedPivots {
 public:
  explicit ReplicatedPivots(RowRange rows) : rows_(rows), holder_(rows.size(), -1), store_(static_cast<Index>(rows.size()), rows.first) {}
  bool holds(Index pivot) const { return holder_[rows_.at(pivot)] >= 0; }
  StoredRows column(Index pivot) const { return store_.column(pivot); }
  template <class Rows>
  void store(Index pivot, Index holder, const Rows& rows) {
    holder_[rows_.at(pivot)] = holder;
    store_.store_rows(pivot, rows);
  }
  Index holder(Index pivot) const { return holder_[rows_.at(pivot)]; }
  RowRange rows() const { return rows_; }

 private:
  RowRange rows_;
  std::vector<Index> holder_;
  ColumnStore store_;
};

// A column stored at a pivot while reducing one column of a run: the column itself where it
// stopped, or, when it met a pivot held by a later column (the swap rule), itself there.
struct Store {
  Index pivot;
  Index holder;
  std::vector<Row> rows;
};

// A run of this rank's, speculated and not yet checked: what it stored, each column's path, and
// the state it assumed (the runs before `base` applied, and this rank's runs before it speculated).
struct PendingRun {
  std::size_t r = 0, base = 0;
  std::vector<Store> stores;
  std::vector<std::size_t> store_at{0};
  std::vector<Index> paths;
  std::vector<std::size_t> path_at{0};
  std::unordered_map<Index, std::size_t> overlay;  // pivot -> its latest entry in stores
};

class Pipeline {
 public:
  Pipeline(const StepColumns& columns, Index n, std::size_t run, std::size_t depth, MPI_Comm comm)
      : columns_(columns), run_(run), depth_(std::max<std::size_t>(depth, 1)), comm_(comm), state_(rows_of(columns)),
        mark_(state_.rows().size(), 0), work_(n) {
    mpi::check(MPI_Comm_rank(comm, &rank_), "MPI_Comm_rank");
    mpi::check(MPI_Comm_size(comm, &size_), "MPI_Comm_size");
    runs_ = (columns.size() + run - 1) / run;
  }

  // Up to `depth` runs of this rank's are speculated ahead of the first unchecked one; a run is
  // checked as soon as every run before it is applied.
  SpeculativeStats run(int tag) {
    tag_ = tag;
    for (int q = 0; q < size_; ++q) sends_.emplace_back(comm_, q, tag);
    std::size_t next_own = static_cast<std::size_t>(rank_);
    while (next_own < runs_ || !pending_.empty()) {
      service(runs_);  // leaves no pending run that could be checked now
      if (next_own < runs_ && pending_.size() < depth_) {
        speculate(next_own);
        next_own += static_cast<std::size_t>(size_);
      } else {
        apply_arrived(true);
      }
    }
    while (next_apply_ < runs_) apply_arrived(true);
    for (auto& to : sends_) to.wait_all();
    return stats_;
  }

  const ReplicatedPivots& pivots() const { return state_; }

 private:
  std::size_t first(std::size_t r) const { return r * run_; }
  std::size_t last(std::size_t r) const { return std::min(columns_.size(), (r + 1) * run_); }

  void speculate(std::size_t r) {
    const auto start = std::chrono::steady_clock::now();
    pending_.emplace_back();
    PendingRun& run = pending_.back();
    run.r = r;
    run.base = next_apply_;
    for (std::size_t i = first(r); i < last(r); ++i) {
      walk(i, &run);
      run.store_at.push_back(run.stores.size());
      run.path_at.push_back(run.paths.size());
      // Checking earlier runs as soon as they may be is what the other ranks wait for; a column
      // that then sees pivots newer than its run's base is only checked more strictly.
      if ((i - first(r)) % kServiceEvery == kServiceEvery - 1) service(r);
    }
    stats_.seconds_speculating += seconds_since(start);
    stats_.columns += static_cast<long long>(last(r) - first(r));
  }

  // Applies what has arrived and checks every pending run that may be checked, but not run `busy`
  // (being speculated).
  void service(std::size_t busy) {
    const auto start = std::chrono::steady_clock::now();
    apply_arrived(false);
    while (!pending_.empty() && pending_.front().r != busy && next_apply_ == pending_.front().r) {
      validate(pending_.front());
      pending_.pop_front();
      apply_arrived(false);
    }
    stats_.seconds_speculating -= seconds_since(start);  // counted where it is spent
  }
  static constexpr std::size_t kServiceEvery = 8;

  // The holder of `pivot` and its column as `run` sees it: its own stores, then those of this
  // rank's earlier unchecked runs, then the applied runs'. Returns -1 when it is free.
  Index look_up(Index pivot, const PendingRun* run, const std::vector<Row>** rows, StoredRows* stored) const {
    if (run) {
      for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
        if (it->r > run->r) continue;
        const auto found = it->overlay.find(pivot);
        if (found == it->overlay.end()) continue;
        *rows = &it->stores[found->second].rows;
        return it->stores[found->second].holder;
      }
    }
    if (!state_.holds(pivot)) return -1;
    *stored = state_.column(pivot);
    *rows = nullptr;
    return state_.holder(pivot);
  }

  // Reduces column i of the order. Speculative (`run` given): as look_up sees the pivots, recording
  // the path and keeping what it stores in the run; otherwise against the applied runs, storing there
  // (and appending to checked_).
  void walk(std::size_t i, PendingRun* run) {
    work_.add(columns_.rows(i));
    walk_on(columns_.index(i), run);
  }

  // walk's loop, from the column in work_.
  void walk_on(Index index, PendingRun* run) {
    while (!work_.empty()) {
      const Index p = work_.pivot();
      if (run) run->paths.push_back(p);
      const std::vector<Row>* rows = nullptr;
      StoredRows stored{nullptr, nullptr};
      const Index holder = look_up(p, run, &rows, &stored);
      if (holder < 0) {
        work_.take(current_);
        keep(p, index, run);
        return;
      }
      if (holder < index) {
        if (rows) work_.add(*rows);
        else work_.add(stored);
        continue;
      }
      // Held by a later column: the earlier one takes the pivot, the later one goes on (swap rule).
      work_.take(current_);
      if (rows) work_.add(*rows);
      else work_.add(stored);
      work_.add(current_);
      keep(p, index, run);
      index = holder;
    }
  }

  void keep(Index pivot, Index holder, PendingRun* run) {
    if (run) {
      run->stores.push_back({pivot, holder, current_});
      run->overlay[pivot] = run->stores.size() - 1;
    } else {
      state_.store(pivot, holder, current_);
      checked_.push_back({pivot, holder, current_});
    }
  }

  // Keeps each speculated column whose path met no pivot changed, unseen by the speculation, since
  // the run's base (marked with the changing run + 1: the other ranks' runs, and the redone columns
  // of this rank's); redoes the others in order. Then sends the run's stores to every other rank.
  void validate(PendingRun& run) {
    const auto start = std::chrono::steady_clock::now();
    const auto seen = static_cast<std::uint32_t>(run.base);  // marks above this are changes it did not see
    const auto mark = static_cast<std::uint32_t>(run.r + 1);
    std::vector<Row> message;
    auto send_store = [&](const Store& kept) {
      message.insert(message.end(), {static_cast<Row>(kept.pivot), static_cast<Row>(kept.holder), static_cast<Row>(kept.rows.size())});
      message.insert(message.end(), kept.rows.begin(), kept.rows.end());
    };
    for (std::size_t i = first(run.r); i < last(run.r); ++i) {
      const std::size_t k = i - first(run.r);
      std::size_t first_changed = run.path_at[k + 1];
      for (std::size_t at = run.path_at[k]; at < run.path_at[k + 1]; ++at)
        if (mark_[state_.rows().at(run.paths[at])] > seen) {
          first_changed = at;
          break;
        }
      const bool stands = first_changed == run.path_at[k + 1];
      if (stands) {
        for (std::size_t at = run.store_at[k]; at < run.store_at[k + 1]; ++at) {
          state_.store(run.stores[at].pivot, run.stores[at].holder, run.stores[at].rows);
          send_store(run.stores[at]);
        }
        continue;
      }
      ++stats_.redone;
      for (std::size_t at = run.store_at[k]; at < run.store_at[k + 1]; ++at)
        mark_[state_.rows().at(run.stores[at].pivot)] = mark;
      checked_.clear();
      // Only the pivot where it stopped changed (another run took it meanwhile), and it stopped
      // there without displacing anyone: it goes on from there, as it would have.
      const bool stopped_there = first_changed + 1 == run.path_at[k + 1] && run.store_at[k] + 1 == run.store_at[k + 1] &&
                                 run.stores[run.store_at[k]].pivot == run.paths[first_changed] &&
                                 run.stores[run.store_at[k]].holder == columns_.index(i);
      if (stopped_there) {
        ++stats_.resumed;
        work_.add(run.stores[run.store_at[k]].rows);
        walk_on(columns_.index(i), nullptr);
      } else {
        walk(i, nullptr);
      }
      for (const Store& kept : checked_) {
        mark_[state_.rows().at(kept.pivot)] = mark;
        send_store(kept);
      }
    }
    next_apply_ = run.r + 1;
    for (int q = 0; q < size_; ++q)
      if (q != rank_) sends_[static_cast<std::size_t>(q)].send(message);
    stats_.seconds_validating += seconds_since(start);
  }

  // Applies the other ranks' runs that have arrived, in order, marking their pivots; with `wait`,
  // first waits for the next one (which must be another rank's).
  void apply_arrived(bool wait) {
    const auto start = std::chrono::steady_clock::now();
    while (next_apply_ < runs_) {
      const int owner = static_cast<int>(next_apply_ % static_cast<std::size_t>(size_));
      if (owner == rank_) break;  // applied when checked
      MPI_Status status;
      if (wait) {
        mpi::check(MPI_Probe(owner, tag_, comm_, &status), "MPI_Probe");
        wait = false;
      } else {
        int arrived = 0;
        mpi::check(MPI_Iprobe(owner, tag_, comm_, &arrived, &status), "MPI_Iprobe");
        if (!arrived) break;
      }
      mpi::receive_probed(comm_, status, incoming_);
      const auto mark = static_cast<std::uint32_t>(next_apply_ + 1);
      for (std::size_t at = 0; at < incoming_.size();) {
        const Index pivot = incoming_[at], holder = incoming_[at + 1];
        const auto size = static_cast<std::size_t>(incoming_[at + 2]);
        const ColumnView rows{incoming_.data() + at + 3, incoming_.data() + at + 3 + size};
        state_.store(pivot, holder, rows);
        mark_[state_.rows().at(pivot)] = mark;
        at += 3 + size;
      }
      ++next_apply_;
    }
    stats_.seconds_waiting += seconds_since(start);
  }

  static double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  const StepColumns& columns_;
  std::size_t run_, depth_, runs_ = 0, next_apply_ = 0;
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1, tag_ = 0;
  ReplicatedPivots state_;
  std::vector<std::uint32_t> mark_;  // per pivot: 1 + the last run that changed it unseen by later speculation
  PivotColumn work_;
  std::deque<PendingRun> pending_;
  std::vector<Store> checked_;
  std::vector<Row> current_;
  std::vector<Row> incoming_;
  std::vector<mpi::PendingSends> sends_;  // to each rank
  SpeculativeStats stats_;
};

}  // namespace

void reduce_step_speculative(const StepColumns& columns, Index n, std::size_t run, std::size_t depth, MPI_Comm comm, int tag,
                             const std::function<void(Index, Index)>& record, SpeculativeStats* stats) {
  Pipeline pipeline(columns, n, std::max<std::size_t>(run, 1), depth, comm);
  const SpeculativeStats mine = pipeline.run(tag);
  if (stats) *stats = mine;
  const RowRange rows = pipeline.pivots().rows();
  for (Index p = rows.first; p < rows.last; ++p)
    if (pipeline.pivots().holds(p)) record(p, pipeline.pivots().holder(p));
}

}  // namespace lmtopo::topology
