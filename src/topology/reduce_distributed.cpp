// DIPHA-style distributed reduction. See reducers.hpp for the scheme; the invariant that makes it
// correct is that a column is only ever added to a *later* column: when a column arrives at a pivot
// held by a later column, the two swap places and the displaced later column goes on reducing.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <stdexcept>
#include <string>

#include "mpi/large_count.hpp"
#include "topology/reducers.hpp"
#include "topology/z2_column.hpp"

namespace lmtopo::topology {
namespace {

void check_mpi(int code, const char* what) {
  if (code != MPI_SUCCESS) throw std::runtime_error(std::string("MPI call failed: ") + what);
}

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

struct PendingColumn {
  Index index;
  std::vector<Row> rows;
};

// Serialises columns as [index, size, rows...] in one buffer of 32-bit words (every index is a
// column or row of a matrix of at most 2^32 - 1 columns).
void pack(const PendingColumn& c, std::vector<Row>& out) {
  out.push_back(static_cast<Row>(c.index));
  out.push_back(static_cast<Row>(c.rows.size()));
  out.insert(out.end(), c.rows.begin(), c.rows.end());
}

std::vector<PendingColumn> unpack(const std::vector<Row>& buffer, std::size_t first) {
  std::vector<PendingColumn> out;
  for (std::size_t pos = first; pos < buffer.size();) {
    PendingColumn c;
    c.index = buffer[pos];
    const auto size = static_cast<std::size_t>(buffer[pos + 1]);
    c.rows.assign(buffer.begin() + static_cast<std::ptrdiff_t>(pos + 2),
                  buffer.begin() + static_cast<std::ptrdiff_t>(pos + 2 + size));
    pos += 2 + size;
    out.push_back(std::move(c));
  }
  return out;
}

class LocalBlock {
 public:
  LocalBlock(Index lo, Index hi, Index n) : lo_(lo), hi_(hi), column_of_pivot_(static_cast<std::size_t>(hi - lo), -1),
                                            cleared_(static_cast<std::size_t>(hi - lo), 0),
                                            stored_(hi - lo, lo), work_(n) {}

  bool cleared(Index j) const { return cleared_[static_cast<std::size_t>(j - lo_)] != 0; }

  // Reduces `c` with the columns stored at this block's pivots. Returns true when the column must
  // be forwarded to the previous rank (its pivot is below this block).
  bool reduce(PendingColumn& c) {
    work_.add(c.rows);
    c.rows.clear();
    while (!work_.empty()) {
      const Index low = work_.pivot();
      if (low < lo_) {
        work_.take(c.rows);
        return true;
      }
      Index& holder = column_of_pivot_[static_cast<std::size_t>(low - lo_)];
      if (holder < 0) {
        holder = c.index;
        cleared_[static_cast<std::size_t>(low - lo_)] = 1;  // column `low` is local and reduces to zero
        stored_.store(work_);
        return false;
      }
      if (holder < c.index) {
        work_.add(stored_.column(low));
      } else {
        // The pivot is held by a later column: keep the earlier one there and continue with the
        // later one, reduced by it (a legal left-to-right addition).
        work_.take(current_);
        work_.add(stored_.column(low));
        work_.add(current_);
        stored_.store_rows(low, current_);
        const Index displaced = holder;
        holder = c.index;
        c.index = displaced;
      }
    }
    return false;
  }

  void collect_pairs(std::vector<Index>& out) const {
    for (Index i = lo_; i < hi_; ++i) {
      const Index holder = column_of_pivot_[static_cast<std::size_t>(i - lo_)];
      if (holder >= 0) {
        out.push_back(i);
        out.push_back(holder);
      }
    }
  }

 private:
  Index lo_, hi_;
  std::vector<Index> column_of_pivot_;
  std::vector<char> cleared_;
  // The reduced column held at each of this block's pivots (O(block) memory per rank).
  ColumnStore stored_;
  PivotColumn work_;
  std::vector<Row> current_;
};

}  // namespace

std::vector<PersistencePair> reduce_distributed(const BoundaryMatrix* root_matrix, MPI_Comm comm,
                                                std::vector<ReductionStepStats>* stats) {
  int rank = 0, size = 1;
  check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(comm, &size), "MPI_Comm_size");

  long long n_and_dim[2] = {0, 0};
  if (rank == 0) {
    if (!root_matrix) throw std::invalid_argument("reduce_distributed: rank 0 needs the matrix");
    n_and_dim[0] = root_matrix->num_columns();
    n_and_dim[1] = root_matrix->max_dim();
  }
  check_mpi(MPI_Bcast(n_and_dim, 2, MPI_LONG_LONG, 0, comm), "MPI_Bcast");
  const Index n = n_and_dim[0];
  const int max_dim = static_cast<int>(n_and_dim[1]);
  const Index width = (n + size - 1) / size;
  const Index lo = std::min(n, rank * width);
  const Index hi = std::min(n, lo + width);

  // Block distribution of the columns: [dim, size, rows...] per column, scattered from rank 0.
  // 64-bit offsets and chunked messages (mpi/large_count.hpp): no int count wraps past 2^31 entries.
  std::vector<Row> send_buffer;
  std::vector<std::uint64_t> counts(static_cast<std::size_t>(size), 0), displs(static_cast<std::size_t>(size), 0);
  if (rank == 0) {
    for (int r = 0; r < size; ++r) {
      displs[static_cast<std::size_t>(r)] = send_buffer.size();
      const Index rlo = std::min(n, r * width), rhi = std::min(n, rlo + width);
      for (Index j = rlo; j < rhi; ++j) {
        const ColumnView col = root_matrix->column(j);
        send_buffer.push_back(static_cast<Row>(root_matrix->dim(j)));
        send_buffer.push_back(static_cast<Row>(col.size()));
        send_buffer.insert(send_buffer.end(), col.begin(), col.end());
      }
      counts[static_cast<std::size_t>(r)] = send_buffer.size() - displs[static_cast<std::size_t>(r)];
    }
  }
  std::vector<Row> my_buffer = mpi::scatter_blocks(comm, send_buffer.data(), displs, counts, MPI_UINT32_T);
  std::vector<Row>().swap(send_buffer);

  std::vector<int> local_dims;
  std::vector<std::vector<Row>> local_columns;
  for (std::size_t pos = 0; pos < my_buffer.size();) {
    local_dims.push_back(static_cast<int>(my_buffer[pos]));
    const auto len = static_cast<std::size_t>(my_buffer[pos + 1]);
    local_columns.emplace_back(my_buffer.begin() + static_cast<std::ptrdiff_t>(pos + 2),
                               my_buffer.begin() + static_cast<std::ptrdiff_t>(pos + 2 + len));
    pos += 2 + len;
  }
  std::vector<Row>().swap(my_buffer);

  LocalBlock block(lo, hi, n);
  // Columns only ever move down (to rank-1), so each dimension is a pipeline: rank r reduces its own
  // columns and the ones arriving from r+1 as they come, forwards those whose pivot lies below its
  // block in batches with non-blocking sends, and is done with the dimension once r+1 said it is
  // done and nothing is left. Arrival order does not matter: the swap rule keeps additions
  // left-to-right. Every message is [final flag, packed columns...], tagged by dimension.
  constexpr std::size_t batch_columns = 512;  // columns reduced between two looks at the network
  for (int d = max_dim; d >= 1; --d) {
    const auto start = std::chrono::steady_clock::now();
    const int tag = 4242 + d;
    ReductionStepStats row;
    row.rank = rank;
    row.dim = d;
    std::deque<PendingColumn> pending;
    for (Index j = lo; j < hi; ++j) {
      const auto local = static_cast<std::size_t>(j - lo);
      if (local_dims[local] != d || block.cleared(j)) continue;
      pending.push_back({j, std::move(local_columns[local])});
    }
    bool done_above = rank + 1 >= size;
    std::vector<Row> outgoing{0}, in_flight;
    MPI_Request request = MPI_REQUEST_NULL;
    auto send = [&](bool final) {
      if (rank == 0) return;
      if (outgoing.size() == 1 && !final) return;
      check_mpi(MPI_Wait(&request, MPI_STATUS_IGNORE), "MPI_Wait");
      outgoing[0] = final ? 1 : 0;
      in_flight.swap(outgoing);
      outgoing.assign(1, 0);
      if (in_flight.size() > static_cast<std::size_t>(1) << 30)
        throw std::runtime_error("reduce_distributed: a forwarding batch exceeds 2^30 entries");
      check_mpi(MPI_Isend(in_flight.data(), static_cast<int>(in_flight.size()), MPI_UINT32_T, rank - 1, tag, comm,
                          &request),
                "MPI_Isend");
      row.bytes_sent += static_cast<long long>(in_flight.size() * sizeof(Row));
    };
    auto receive = [&](bool block_until_message) {
      MPI_Status status;
      int arrived = 0;
      if (block_until_message) {
        const auto wait_start = std::chrono::steady_clock::now();
        check_mpi(MPI_Probe(rank + 1, tag, comm, &status), "MPI_Probe");
        row.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_start).count();
        arrived = 1;
      } else {
        check_mpi(MPI_Iprobe(rank + 1, tag, comm, &arrived, &status), "MPI_Iprobe");
      }
      if (!arrived) return;
      int count = 0;
      check_mpi(MPI_Get_count(&status, MPI_UINT32_T, &count), "MPI_Get_count");
      std::vector<Row> incoming(static_cast<std::size_t>(count));
      check_mpi(MPI_Recv(incoming.data(), count, MPI_UINT32_T, rank + 1, tag, comm, MPI_STATUS_IGNORE), "MPI_Recv");
      row.bytes_received += static_cast<long long>(incoming.size() * sizeof(Row));
      ++row.batches;
      done_above = incoming.at(0) != 0;
      for (auto& c : unpack(incoming, 1)) pending.push_back(std::move(c));
    };
    while (true) {
      for (std::size_t i = 0; i < batch_columns && !pending.empty(); ++i) {
        PendingColumn c = std::move(pending.front());
        pending.pop_front();
        ++row.columns_in;
        if (block.reduce(c)) {
          pack(c, outgoing);
          ++row.columns_forwarded;
        }
      }
      int previous_done = 1;
      if (request != MPI_REQUEST_NULL) check_mpi(MPI_Test(&request, &previous_done, MPI_STATUS_IGNORE), "MPI_Test");
      if (previous_done) send(false);  // keep the rank below busy without ever waiting here
      if (!done_above) receive(pending.empty());
      if (done_above && pending.empty()) break;
    }
    send(true);
    check_mpi(MPI_Wait(&request, MPI_STATUS_IGNORE), "MPI_Wait");
    row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    row.peak_rss_kib = peak_rss_kib();
    if (stats) stats->push_back(row);
  }

  // Gather the pairs on rank 0.
  std::vector<Index> local_pairs;
  block.collect_pairs(local_pairs);
  const std::vector<Index> all_pairs = mpi::gather_blocks(comm, local_pairs.data(), local_pairs.size(), MPI_INT64_T);
  std::vector<PersistencePair> pairs;
  for (std::size_t i = 0; i + 1 < all_pairs.size(); i += 2) pairs.push_back({all_pairs[i], all_pairs[i + 1]});
  std::sort(pairs.begin(), pairs.end());
  return pairs;
}

bool resolve_dualize(const std::string& mode, Index num_columns) {
  if (mode == "true") return true;
  if (mode == "false") return false;
  if (mode == "auto") return num_columns >= kDualizeFromColumns;
  throw std::invalid_argument("expected auto, true or false, got '" + mode + "'");
}

const std::vector<std::string>& reducer_names() {
  static const std::vector<std::string> names = {"twist", "chunk", "distributed"};
  return names;
}

namespace {

std::vector<PersistencePair> reduce_named(const std::string& name, const BoundaryMatrix* root_matrix,
                                          BoundaryMatrix* releasable, MPI_Comm comm, int threads,
                                          std::vector<ReductionStepStats>* stats, bool dualize) {
  const auto& names = reducer_names();
  if (std::find(names.begin(), names.end(), name) == names.end())
    throw std::invalid_argument("unknown reducer '" + name + "' (expected twist, chunk or distributed)");
  int rank = 0, initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  if (name != "distributed" && rank != 0) return {};

  // Only rank 0 holds (and so dualizes) the matrix; the pairs come back on rank 0 only.
  BoundaryMatrix dual;
  const BoundaryMatrix* matrix = root_matrix;
  if (dualize && rank == 0 && root_matrix) {
    dual = anti_transpose(*root_matrix);
    matrix = &dual;
    if (releasable) releasable->release_rows();
  }
  std::vector<PersistencePair> pairs;
  if (name == "distributed") pairs = reduce_distributed(matrix, comm, stats);
  else if (name == "twist") pairs = reduce_twist(*matrix);
  else pairs = reduce_chunk(*matrix, threads);
  if (matrix != root_matrix) {  // dualized: map each cohomology pair back
    const Index n = root_matrix->num_columns();
    for (auto& p : pairs) p = {n - 1 - p.destroyer, n - 1 - p.creator};
    std::sort(pairs.begin(), pairs.end());
  }
  return pairs;
}

}  // namespace

std::vector<PersistencePair> reduce_by_name(const std::string& name, const BoundaryMatrix* root_matrix,
                                            MPI_Comm comm, int threads, std::vector<ReductionStepStats>* stats,
                                            bool dualize) {
  return reduce_named(name, root_matrix, nullptr, comm, threads, stats, dualize);
}

std::vector<PersistencePair> reduce_by_name_releasing(const std::string& name, BoundaryMatrix* root_matrix,
                                                      MPI_Comm comm, int threads,
                                                      std::vector<ReductionStepStats>* stats, bool dualize) {
  return reduce_named(name, root_matrix, root_matrix, comm, threads, stats, dualize);
}

}  // namespace lmtopo::topology
