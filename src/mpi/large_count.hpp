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

// Rank 0 holds `all` with rank r's block at [offsets[r], offsets[r] + counts[r]) (elements of
// `type`, `element_bytes` each); every rank receives its block into `mine` (resized). Collective.
void scatter_blocks(MPI_Comm comm, const void* all, const std::vector<std::uint64_t>& offsets,
                    const std::vector<std::uint64_t>& counts, MPI_Datatype type, std::size_t element_bytes,
                    std::vector<unsigned char>& mine);

// Concatenation of every rank's `count` elements at `mine` on rank 0, in rank order (bytes;
// empty elsewhere). Collective.
std::vector<unsigned char> gather_blocks(MPI_Comm comm, const void* mine, std::uint64_t count, MPI_Datatype type,
                                         std::size_t element_bytes);

template <class T>
std::vector<T> bytes_to(const std::vector<unsigned char>& bytes) {
  std::vector<T> out(bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

}  // namespace lmtopo::mpi
