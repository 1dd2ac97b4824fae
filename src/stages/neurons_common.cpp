#include "stages/neurons_common.hpp"

#include <algorithm>

#include "mpi/collective.hpp"
#include "mpi/large_count.hpp"

namespace lmtopo::stages::neurons_common {
namespace {

template <typename T>
void sum_pieces(std::vector<T>& values, MPI_Datatype type, MPI_Comm comm) {
  const std::size_t piece = std::max<std::size_t>(1, mpi::max_message_elements());
  for (std::size_t at = 0; at < values.size(); at += piece)
    mpi::check(MPI_Allreduce(MPI_IN_PLACE, values.data() + at, static_cast<int>(std::min(piece, values.size() - at)), type, MPI_SUM, comm),
               "MPI_Allreduce");
}

}  // namespace

void sum_over_ranks(std::vector<float>& values, MPI_Comm comm) { sum_pieces(values, MPI_FLOAT, comm); }
void sum_over_ranks(std::vector<double>& values, MPI_Comm comm) { sum_pieces(values, MPI_DOUBLE, comm); }
void sum_over_ranks(std::vector<long long>& values, MPI_Comm comm) { sum_pieces(values, MPI_LONG_LONG, comm); }

}  // namespace lmtopo::stages::neurons_common
