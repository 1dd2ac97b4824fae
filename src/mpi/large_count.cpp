#include "mpi/large_count.hpp"

#include <algorithm>
#include <climits>
#include <vector>

#include "mpi/collective.hpp"

namespace lmtopo::mpi {
namespace {

std::size_t g_max_elements = INT_MAX;

std::size_t type_bytes(MPI_Datatype type) {
  int bytes = 0;
  check(MPI_Type_size(type, &bytes), "MPI_Type_size");
  return static_cast<std::size_t>(bytes);
}

}  // namespace

std::size_t max_message_elements() { return g_max_elements; }

void set_max_message_elements(std::size_t elements) {
  g_max_elements = std::clamp<std::size_t>(elements, 1, INT_MAX);
}

PrivateComm::PrivateComm(MPI_Comm comm) { check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup"); }
PrivateComm::~PrivateComm() { MPI_Comm_free(&comm_); }

void send_chunked(const void* data, std::size_t count, MPI_Datatype type, int dest, int tag, MPI_Comm comm) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  const std::size_t size = type_bytes(type);
  for (std::size_t done = 0; done < count;) {
    const std::size_t n = std::min(count - done, g_max_elements);
    check(MPI_Send(bytes + done * size, static_cast<int>(n), type, dest, tag, comm), "MPI_Send");
    done += n;
  }
}

void recv_chunked(void* data, std::size_t count, MPI_Datatype type, int source, int tag, MPI_Comm comm) {
  auto* bytes = static_cast<unsigned char*>(data);
  const std::size_t size = type_bytes(type);
  for (std::size_t done = 0; done < count;) {
    const std::size_t n = std::min(count - done, g_max_elements);
    check(MPI_Recv(bytes + done * size, static_cast<int>(n), type, source, tag, comm, MPI_STATUS_IGNORE), "MPI_Recv");
    done += n;
  }
}

void sendrecv_chunked(const void* send, std::size_t send_count, int dest, void* recv, std::size_t recv_count, int source,
                      MPI_Datatype type, int tag, MPI_Comm comm) {
  // Each direction's pieces depend on its own count only (none for an empty block), so every piece
  // posted here matches one posted by the peer, whatever the other direction carries.
  const auto* out = static_cast<const unsigned char*>(send);
  auto* in = static_cast<unsigned char*>(recv);
  const std::size_t size = type_bytes(type);
  std::vector<MPI_Request> requests;
  for (std::size_t done = 0; done < recv_count; done += g_max_elements) {
    requests.emplace_back();
    check(MPI_Irecv(in + done * size, static_cast<int>(std::min(recv_count - done, g_max_elements)), type, source, tag, comm,
                    &requests.back()),
          "MPI_Irecv");
  }
  for (std::size_t done = 0; done < send_count; done += g_max_elements) {
    requests.emplace_back();
    check(MPI_Isend(out + done * size, static_cast<int>(std::min(send_count - done, g_max_elements)), type, dest, tag, comm,
                    &requests.back()),
          "MPI_Isend");
  }
  check(MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
}

std::vector<std::uint64_t> gather_counts(MPI_Comm comm, std::uint64_t count) {
  std::vector<std::uint64_t> counts(rank(comm) == 0 ? static_cast<std::size_t>(size(comm)) : 0);
  check(MPI_Gather(&count, 1, MPI_UINT64_T, counts.data(), 1, MPI_UINT64_T, 0, comm), "MPI_Gather");
  return counts;
}

}  // namespace lmtopo::mpi
