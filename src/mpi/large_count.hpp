// Transfers of any length on MPI 3 (Open MPI 4.1 has no MPI-4 large-count calls): counts and
// displacements are 64-bit, and each message is split into pieces of at most max_message_elements()
// elements, so nothing wraps past 2^31 entries. Collectives run on a private duplicate of the
// communicator, so their point-to-point messages cannot match anyone else's.
#pragma once
#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace lmtopo::mpi {

// At most INT_MAX (MPI 3's count type); tests lower it to exercise the splitting on small data.
std::size_t max_message_elements();
void set_max_message_elements(std::size_t elements);

// Point to point, split into messages of at most max_message_elements() with the same tag.
void send_chunked(const void* data, std::size_t count, MPI_Datatype type, int dest, int tag, MPI_Comm comm);
void recv_chunked(void* data, std::size_t count, MPI_Datatype type, int source, int tag, MPI_Comm comm);

// A duplicate of a communicator for one collective, freed on scope exit.
class PrivateComm {
 public:
  explicit PrivateComm(MPI_Comm comm);
  ~PrivateComm();
  PrivateComm(const PrivateComm&) = delete;
  PrivateComm& operator=(const PrivateComm&) = delete;
  MPI_Comm get() const { return comm_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

// Every rank's `count` on rank 0, in rank order (empty elsewhere). Collective.
std::vector<std::uint64_t> gather_counts(MPI_Comm comm, std::uint64_t count);
// Rank r gets the block rank 0 builds with `build(r)` (a std::vector<T>; `type` is the MPI type of
// T). Rank 0 builds each block just before sending it, so it never holds more than one block besides
// their source, nothing the size of all blocks together; its own block is built last. Collective.
template <class T, class Build>
std::vector<T> scatter_built_blocks(MPI_Comm comm, MPI_Datatype type, Build&& build) {
  PrivateComm own(comm);
  int me = 0, n = 1;
  MPI_Comm_rank(comm, &me);
  MPI_Comm_size(comm, &n);
  if (me != 0) {
    std::uint64_t count = 0;
    recv_chunked(&count, 1, MPI_UINT64_T, 0, 1, own.get());
    std::vector<T> mine(static_cast<std::size_t>(count));
    recv_chunked(mine.data(), mine.size(), type, 0, 0, own.get());
    return mine;
  }
  for (int r = 1; r < n; ++r) {
    const std::vector<T> block = build(r);
    const std::uint64_t count = block.size();
    send_chunked(&count, 1, MPI_UINT64_T, r, 1, own.get());
    send_chunked(block.data(), block.size(), type, r, 0, own.get());
  }
  return build(0);
}

// One exchange between paired ranks: sends `send_count` elements to `dest` while receiving
// `recv_count` from `source`, split into pieces of at most max_message_elements() (non-blocking, so
// two ranks sending each other large blocks cannot deadlock).
void sendrecv_chunked(const void* send, std::size_t send_count, int dest, void* recv, std::size_t recv_count, int source,
                      MPI_Datatype type, int tag, MPI_Comm comm);

// All to all of any length: rank r's outgoing[d] goes to rank d; the result's [s] is what rank s sent
// this rank. `outgoing` (one vector per rank) is consumed block by block, so a rank holds its
// outgoing and incoming data together at most once. P - 1 pairwise rounds. Collective.
template <class T>
std::vector<std::vector<T>> exchange_blocks(MPI_Comm comm, std::vector<std::vector<T>>&& outgoing, MPI_Datatype type) {
  PrivateComm own(comm);
  int me = 0, n = 1;
  MPI_Comm_rank(comm, &me);
  MPI_Comm_size(comm, &n);
  std::vector<std::vector<T>> incoming(static_cast<std::size_t>(n));
  incoming[static_cast<std::size_t>(me)].swap(outgoing[static_cast<std::size_t>(me)]);
  for (int round = 1; round < n; ++round) {
    const int dest = (me + round) % n, source = (me - round + n) % n;
    auto& out = outgoing[static_cast<std::size_t>(dest)];
    auto& in = incoming[static_cast<std::size_t>(source)];
    std::uint64_t send_count = out.size(), recv_count = 0;
    sendrecv_chunked(&send_count, 1, dest, &recv_count, 1, source, MPI_UINT64_T, 1, own.get());
    in.resize(static_cast<std::size_t>(recv_count));
    sendrecv_chunked(out.data(), out.size(), dest, in.data(), in.size(), source, type, 0, own.get());
    std::vector<T>().swap(out);
  }
  return incoming;
}

// Every rank's `count` elements at `mine`, concatenated on rank 0 in rank order (empty elsewhere).
// Collective.
template <class T>
std::vector<T> gather_blocks(MPI_Comm comm, const T* mine, std::size_t count, MPI_Datatype type) {
  PrivateComm own(comm);
  const auto counts = gather_counts(own.get(), count);
  std::vector<T> all;
  if (counts.empty()) {
    send_chunked(mine, count, type, 0, 0, own.get());
    return all;
  }
  std::uint64_t total = 0;
  for (auto c : counts) total += c;
  all.resize(static_cast<std::size_t>(total));
  if (count > 0) std::memcpy(all.data(), mine, count * sizeof(T));
  std::size_t at = count;
  for (std::size_t r = 1; r < counts.size(); ++r) {
    recv_chunked(all.data() + at, counts[r], type, static_cast<int>(r), 0, own.get());
    at += static_cast<std::size_t>(counts[r]);
  }
  return all;
}

}  // namespace lmtopo::mpi
