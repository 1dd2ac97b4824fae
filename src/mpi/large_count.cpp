#include "mpi/large_count.hpp"

#include <algorithm>
#include <climits>

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

std::vector<std::uint64_t> gather_counts(MPI_Comm comm, std::uint64_t count) {
  std::vector<std::uint64_t> counts(rank(comm) == 0 ? static_cast<std::size_t>(size(comm)) : 0);
  check(MPI_Gather(&count, 1, MPI_UINT64_T, counts.data(), 1, MPI_UINT64_T, 0, comm), "MPI_Gather");
  return counts;
}

}  // namespace lmtopo::mpi
