#include "io/concatenated_file.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/error.hpp"
#include "mpi/collective.hpp"

namespace lmtopo::io {
namespace {

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<std::size_t>(length));
}

// Raises on every rank if `code` failed on any (the lowest failing rank's message).
void agree(MPI_Comm comm, int code, const std::string& what) {
  mpi::on_all(comm, [&] {
    if (code != MPI_SUCCESS) throw RuntimeFailure(what + ": " + mpi_error_text(code));
  });
}

}  // namespace

void write_concatenated_atomically(const std::string& path, const std::string& mine, MPI_Comm comm) {
  std::string tmp;
  mpi::on_root(comm, [&] {
    if (const auto parent = std::filesystem::path(path).parent_path(); !parent.empty()) std::filesystem::create_directories(parent);
    tmp = path + ".tmp." + std::to_string(getpid());
    std::remove(tmp.c_str());  // a stale one of a reused pid: its length would outlive this write
  });
  tmp = mpi::broadcast_string(comm, tmp);
  long long length = static_cast<long long>(mine.size()), offset = 0, pieces = 0;
  mpi::check(MPI_Exscan(&length, &offset, 1, MPI_LONG_LONG, MPI_SUM, comm), "MPI_Exscan");
  if (mpi::rank(comm) == 0) offset = 0;  // MPI_Exscan leaves rank 0's undefined
  // MPI 3 counts are ints: pieces of at most 1 GiB, the same number of collective writes on every rank.
  constexpr long long kPiece = 1LL << 30;
  pieces = (length + kPiece - 1) / kPiece;
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, &pieces, 1, MPI_LONG_LONG, MPI_MAX, comm), "MPI_Allreduce");

  MPI_File file = MPI_FILE_NULL;
  agree(comm, MPI_File_open(comm, tmp.c_str(), MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL, &file), tmp + ": cannot open for writing");
  int code = MPI_SUCCESS;
  for (long long k = 0; k < pieces; ++k) {
    const long long first = std::min(length, k * kPiece), count = std::min(length - first, kPiece);
    const int written = MPI_File_write_at_all(file, offset + first, mine.data() + first, static_cast<int>(count), MPI_CHAR, MPI_STATUS_IGNORE);
    if (code == MPI_SUCCESS) code = written;  // every rank goes on to the end: the writes are collective
  }
  const int closed = MPI_File_close(&file);
  agree(comm, code != MPI_SUCCESS ? code : closed, tmp + ": write failed");
  mpi::on_root(comm, [&] {
    if (std::rename(tmp.c_str(), path.c_str()) != 0) throw RuntimeFailure(path + ": cannot rename from " + tmp);
  });
}

}  // namespace lmtopo::io
