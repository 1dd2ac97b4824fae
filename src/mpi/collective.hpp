// MPI helpers shared by the stages: error checking, and running a step on rank 0 so that a failure
// there ends every rank with the same error kind (exit status) instead of a hang.
#pragma once
#include <mpi.h>

#include <functional>
#include <string>
#include <vector>

#include "mpi/large_count.hpp"

namespace lmtopo::mpi {

void check(int code, const char* call);

// MPI is initialised at start-up only when a launcher started the process (mpirun, srun); a plain
// `lmtopo validate` does not pay for a singleton MPI start. Code that needs MPI either way (parallel
// HDF5, the distributed reducer) calls ensure_initialized() first. rank()/size() are 0/1 before.
bool launched_by_mpi_launcher();
void ensure_initialized();
bool initialized();
void finalize_if_initialized();
int rank(MPI_Comm comm = MPI_COMM_WORLD);
int size(MPI_Comm comm = MPI_COMM_WORLD);

// Marks the errors on_root/on_all raise (they also derive from InputError or RuntimeFailure): every
// rank of the communicator throws the same one, so each may simply exit.
struct AgreedError {
  virtual ~AgreedError() = default;
};

// MPI_Init_thread for a process started by mpirun/srun, plus the private communicator that
// all_ranks_failed_within uses. Collective over MPI_COMM_WORLD.
void initialize_for_launcher(int* argc, char*** argv);

// For an error this rank caught at the top level that was not an AgreedError: waits up to `seconds`
// for every rank of the world to report an error too (a non-blocking barrier on a private duplicate
// of MPI_COMM_WORLD, so it cannot be matched with another collective). True: every rank failed the
// same way (or there is one rank), so exiting normally is safe. False: this rank failed alone and
// the others may be waiting in a collective for it; the caller aborts the job (MPI_Abort) instead of
// leaving them hanging.
bool all_ranks_failed_within(double seconds);

// Runs `step` on rank 0 only; if it throws, every rank throws the same kind (InputError or
// RuntimeFailure) with the same message. Collective.
void on_root(MPI_Comm comm, const std::function<void()>& step);

// Same, but `step` runs on every rank and the first failing rank's error (lowest rank) is raised on
// all of them. Collective.
void on_all(MPI_Comm comm, const std::function<void()>& step);

std::string broadcast_string(MPI_Comm comm, const std::string& value, int root = 0);

// Concatenates every rank's `mine` on rank 0 in rank order (empty elsewhere); `type` is the MPI type
// of T. Collective. Without MPI it returns `mine`.
// Any length (mpi/large_count.hpp).
template <class T>
std::vector<T> gather_to_root(MPI_Comm comm, const std::vector<T>& mine, MPI_Datatype type) {
  if (!initialized()) return mine;
  return gather_blocks(comm, mine.data(), mine.size(), type);
}

}  // namespace lmtopo::mpi
