#include "mpi/large_count.hpp"

#include <algorithm>
#include <climits>

#include "mpi/collective.hpp"

namespace lmtopo::mpi {
namespace {

std::size_t g_max_elements = INT_MAX;

// A duplicate of `comm` for one collective, freed on scope exit.
class PrivateComm {
 public:
  explicit PrivateComm(MPI_Comm comm) { check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup"); }
  ~PrivateComm() { MPI_Comm_free(&comm_); }
  PrivateComm(const PrivateComm&) = delete;
  PrivateComm& operator=(const PrivateComm&) = delete;
  MPI_Comm get() const { return comm_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

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

void scatter_blocks(MPI_Comm comm, const void* all, const std::vector<std::uint64_t>& offsets,
                    const std::vector<std::uint64_t>& counts, MPI_Datatype type, std::size_t element_bytes,
                    std::vector<unsigned char>& mine) {
  PrivateComm own(comm);
  const int me = rank(comm), n = size(comm);
  std::uint64_t my_count = 0;
  check(MPI_Scatter(counts.data(), 1, MPI_UINT64_T, &my_count, 1, MPI_UINT64_T, 0, own.get()), "MPI_Scatter");
  mine.assign(static_cast<std::size_t>(my_count) * element_bytes, 0);
  if (me == 0) {
    const auto* bytes = static_cast<const unsigned char*>(all);
    for (int r = 1; r < n; ++r)
      send_chunked(bytes + offsets[static_cast<std::size_t>(r)] * element_bytes, counts[static_cast<std::size_t>(r)], type, r, 0,
                   own.get());
    if (my_count > 0) std::memcpy(mine.data(), bytes + offsets[0] * element_bytes, mine.size());
  } else {
    recv_chunked(mine.data(), my_count, type, 0, 0, own.get());
  }
}

std::vector<unsigned char> gather_blocks(MPI_Comm comm, const void* mine, std::uint64_t count, MPI_Datatype type,
                                         std::size_t element_bytes) {
  PrivateComm own(comm);
  const int me = rank(comm), n = size(comm);
  std::vector<std::uint64_t> counts(static_cast<std::size_t>(n));
  check(MPI_Gather(&count, 1, MPI_UINT64_T, counts.data(), 1, MPI_UINT64_T, 0, own.get()), "MPI_Gather");
  std::vector<unsigned char> all;
  if (me != 0) {
    send_chunked(mine, count, type, 0, 0, own.get());
    return all;
  }
  std::uint64_t total = 0;
  for (auto c : counts) total += c;
  all.resize(static_cast<std::size_t>(total) * element_bytes);
  if (count > 0) std::memcpy(all.data(), mine, static_cast<std::size_t>(count) * element_bytes);
  std::size_t at = static_cast<std::size_t>(count) * element_bytes;
  for (int r = 1; r < n; ++r) {
    recv_chunked(all.data() + at, counts[static_cast<std::size_t>(r)], type, r, 0, own.get());
    at += static_cast<std::size_t>(counts[static_cast<std::size_t>(r)]) * element_bytes;
  }
  return all;
}

}  // namespace lmtopo::mpi
