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

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string csv_base(const std::string& output) {
  return output.size() > 3 && output.compare(output.size() - 3, 3, ".h5") == 0 ? output.substr(0, output.size() - 3) : output;
}

void RootWriter::strings(const std::string& name, const std::vector<std::string>& v) {
  std::size_t width = 1;
  for (const auto& s : v) width = std::max(width, s.size());
  out.create_strings(name, v.size(), width, false);
  out.write_string_rows(name, 0, root ? v : std::vector<std::string>{});
}

void RootWriter::numbers(const std::string& name, io::DType t, const std::vector<std::uint64_t>& shape, const void* data) {
  out.create_numeric(name, t, shape, false);
  out.write_rows(name, 0, root ? shape[0] : 0, data);
}

}  // namespace lmtopo::stages::neurons_common
