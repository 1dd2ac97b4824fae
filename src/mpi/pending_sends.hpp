// Messages of 32-bit words between the distributed reducers' ranks (batches of columns, tokens):
// non-blocking sends to one rank, each buffer kept until its send completes, so that a rank never
// waits to send; and the receive of a message a probe found.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <deque>
#include <stdexcept>
#include <vector>

#include "mpi/collective.hpp"

namespace lmtopo::mpi {

class PendingSends {
 public:
  PendingSends(MPI_Comm comm, int dest, int tag) : comm_(comm), dest_(dest), tag_(tag) {}
  PendingSends(PendingSends&&) = default;
  PendingSends(const PendingSends&) = delete;
  PendingSends& operator=(const PendingSends&) = delete;
  ~PendingSends() {
    for (auto& sent : sends_) MPI_Wait(&sent.request, MPI_STATUS_IGNORE);
  }

  // Starts sending `words` (at most 2^30) and drops the sends that have completed; returns the bytes.
  std::size_t send(std::vector<std::uint32_t> words) {
    if (words.size() > static_cast<std::size_t>(1) << 30) throw std::length_error("a message of more than 2^30 words");
    sends_.push_back({std::move(words), MPI_REQUEST_NULL});
    auto& sent = sends_.back();
    check(MPI_Isend(sent.words.data(), static_cast<int>(sent.words.size()), MPI_UINT32_T, dest_, tag_, comm_, &sent.request),
          "MPI_Isend");
    const std::size_t bytes = sent.words.size() * sizeof(std::uint32_t);
    drop_completed();
    return bytes;
  }
  // Tests the oldest sends, stopping at the first not complete: sends to one rank complete about in
  // order, and testing every one at each call would cost as much as the backlog when the other rank
  // lags.
  void drop_completed() {
    while (!sends_.empty()) {
      int done = 0;
      check(MPI_Test(&sends_.front().request, &done, MPI_STATUS_IGNORE), "MPI_Test");
      if (!done) return;
      sends_.pop_front();
    }
  }
  void wait_all() {
    for (auto& sent : sends_) check(MPI_Wait(&sent.request, MPI_STATUS_IGNORE), "MPI_Wait");
    sends_.clear();
  }

 private:
  struct Sent {
    std::vector<std::uint32_t> words;
    MPI_Request request;
  };
  MPI_Comm comm_;
  int dest_, tag_;
  std::deque<Sent> sends_;
};

// Receives the message that `status` (from MPI_Probe / MPI_Iprobe on `comm`) describes into `words`,
// resized to its length.
inline void receive_probed(MPI_Comm comm, const MPI_Status& status, std::vector<std::uint32_t>& words) {
  int count = 0;
  check(MPI_Get_count(&status, MPI_UINT32_T, &count), "MPI_Get_count");
  words.resize(static_cast<std::size_t>(count));
  check(MPI_Recv(words.data(), count, MPI_UINT32_T, status.MPI_SOURCE, status.MPI_TAG, comm, MPI_STATUS_IGNORE), "MPI_Recv");
}

}  // namespace lmtopo::mpi
