#include "mpi/collective.hpp"

#include <cstdlib>
#include <ctime>
#include <vector>

#include "core/error.hpp"

namespace lmtopo::mpi {

void check(int code, const char* call) {
  if (code != MPI_SUCCESS) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, text, &len);
    throw RuntimeFailure(std::string(call) + " failed: " + std::string(text, static_cast<std::size_t>(len)));
  }
}

bool launched_by_mpi_launcher() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(var)) return true;
  return false;
}

bool initialized() {
  int flag = 0, finalized = 0;
  MPI_Initialized(&flag);
  MPI_Finalized(&finalized);
  return flag && !finalized;
}

void ensure_initialized() {
  if (initialized()) return;
  int provided = 0;
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
}

namespace {
MPI_Comm error_comm = MPI_COMM_NULL;  // all_ranks_failed_within's private duplicate of the world
}

void initialize_for_launcher(int* argc, char*** argv) {
  int provided = 0;
  check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  check(MPI_Comm_dup(MPI_COMM_WORLD, &error_comm), "MPI_Comm_dup");
}

bool all_ranks_failed_within(double seconds) {
  if (!initialized() || size(MPI_COMM_WORLD) == 1) return true;
  if (error_comm == MPI_COMM_NULL) return false;  // cannot tell: assume alone
  MPI_Request request;
  if (MPI_Ibarrier(error_comm, &request) != MPI_SUCCESS) return false;
  const double until = MPI_Wtime() + seconds;
  int done = 0;
  while (MPI_Wtime() < until) {
    if (MPI_Test(&request, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) return false;
    if (done) return true;
    struct timespec pause {0, 10 * 1000 * 1000};
    nanosleep(&pause, nullptr);
  }
  return false;
}

void finalize_if_initialized() {
  if (!initialized()) return;
  if (error_comm != MPI_COMM_NULL) MPI_Comm_free(&error_comm);
  MPI_Finalize();
}

int rank(MPI_Comm comm) {
  if (!initialized()) return 0;
  int r = 0;
  check(MPI_Comm_rank(comm, &r), "MPI_Comm_rank");
  return r;
}

int size(MPI_Comm comm) {
  if (!initialized()) return 1;
  int s = 1;
  check(MPI_Comm_size(comm, &s), "MPI_Comm_size");
  return s;
}

std::string broadcast_string(MPI_Comm comm, const std::string& value, int root) {
  if (!initialized()) return value;
  long long n = static_cast<long long>(value.size());
  check(MPI_Bcast(&n, 1, MPI_LONG_LONG, root, comm), "MPI_Bcast");
  std::string out = rank(comm) == root ? value : std::string(static_cast<std::size_t>(n), '\0');
  if (n > 0) check(MPI_Bcast(out.data(), static_cast<int>(n), MPI_CHAR, root, comm), "MPI_Bcast");
  return out;
}

namespace {
// 0 = ok, 1 = runtime failure, 2 = input error.
int run_capturing(const std::function<void()>& step, std::string& message) {
  try {
    step();
    return 0;
  } catch (const InputError& e) {
    message = e.what();
    return 2;
  } catch (const std::exception& e) {
    message = e.what();
    return 1;
  }
}

struct AgreedInputError : InputError, AgreedError {
  using InputError::InputError;
};
struct AgreedRuntimeFailure : RuntimeFailure, AgreedError {
  using RuntimeFailure::RuntimeFailure;
};

[[noreturn]] void raise(int kind, const std::string& message) {
  if (kind == 2) throw AgreedInputError(message);
  throw AgreedRuntimeFailure(message);
}
}  // namespace

void on_root(MPI_Comm comm, const std::function<void()>& step) {
  std::string message;
  int kind = rank(comm) == 0 ? run_capturing(step, message) : 0;
  if (!initialized()) {
    if (kind != 0) raise(kind, message);
    return;
  }
  check(MPI_Bcast(&kind, 1, MPI_INT, 0, comm), "MPI_Bcast");
  if (kind != 0) raise(kind, broadcast_string(comm, message));
}

void on_all(MPI_Comm comm, const std::function<void()>& step) {
  std::string message;
  const int kind = run_capturing(step, message);
  if (!initialized()) {
    if (kind != 0) raise(kind, message);
    return;
  }
  // The lowest failing rank reports: encode (rank if failed else size) and reduce with MIN.
  const int me = rank(comm), n = size(comm);
  int first = kind != 0 ? me : n;
  int winner = n;
  check(MPI_Allreduce(&first, &winner, 1, MPI_INT, MPI_MIN, comm), "MPI_Allreduce");
  if (winner == n) return;
  int winner_kind = kind;
  check(MPI_Bcast(&winner_kind, 1, MPI_INT, winner, comm), "MPI_Bcast");
  raise(winner_kind, broadcast_string(comm, message, winner));
}

}  // namespace lmtopo::mpi
