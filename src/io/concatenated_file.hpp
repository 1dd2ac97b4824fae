// One file written by all ranks at once: each rank's piece at its place, with MPI-IO.
#pragma once
#include <mpi.h>

#include <string>

namespace lmtopo::io {

// Writes the ranks' `mine`, concatenated in rank order, to `path`, as write_file_atomically does:
// into a temporary file beside it (every rank writing its piece at the sum of the lengths before it,
// MPI_File_write_at_all), renamed to `path` by rank 0 once every piece is written, so that an
// interrupted write leaves no `path`. A failure is a RuntimeFailure on every rank. Collective.
void write_concatenated_atomically(const std::string& path, const std::string& mine, MPI_Comm comm);

}  // namespace lmtopo::io
