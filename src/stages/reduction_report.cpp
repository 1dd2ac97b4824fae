#include "stages/reduction_report.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <iomanip>
#include <ostream>

#include "mpi/collective.hpp"

namespace lmtopo::stages {

void print_reduction_benchmark(const std::vector<topology::ReductionStepStats>& mine, MPI_Comm comm, std::ostream& out) {
  if (!mpi::initialized()) {
    out << "# benchmark: serial reducer, no per-rank table\n";
    return;
  }
  // Gather every rank's rows on rank 0 as flat doubles.
  const int nfields = 16;
  std::vector<double> flat;
  for (const auto& r : mine)
    flat.insert(flat.end(), {double(r.rank), double(r.dim), double(r.bar_dim), double(r.batches), r.seconds, r.wait_seconds,
                             double(r.peak_rss_kib), double(r.bytes_sent), double(r.bytes_received),
                             double(r.columns_in), double(r.columns_forwarded), double(r.columns_redone),
                             double(r.additions), double(r.entries_added), double(r.loans_taken), double(r.loans_given)});
  const auto all = mpi::gather_to_root(comm, flat, MPI_DOUBLE);
  if (mpi::rank(comm) != 0) return;
  out << "# benchmark: one row per rank and step (dim: of the columns reduced, the anti-transpose's when dualized; "
         "bars: the dimension of the bars its pairs make, -1 not known; batches: batches of columns received; wait_s: idle, "
         "waiting for other ranks' columns; "
         "redone: --speculate-runs, columns of the rank's runs reduced again after the check; adds, entries_M: stored columns "
         "added here and their entries in millions, about; loans: row loans taken from the rank below and given to the rank above)\n"
      << "rank  dim  bars  batches    seconds     wait_s  peak_rss_MiB  bytes_sent  bytes_recv  cols_in  cols_fwd  redone       adds  entries_M  loans_in  loans_out\n";
  for (std::size_t i = 0; i + nfields <= all.size(); i += nfields) {
    const double* row = &all[i];
    out << std::fixed << std::setprecision(0) << std::setw(4) << row[0] << std::setw(5) << row[1] << std::setw(6) << row[2] << std::setw(9) << row[3] << std::setw(11)
        << std::setprecision(6) << row[4] << std::setw(11) << row[5] << std::setw(14)
        << std::setprecision(1) << row[6] / 1024.0 << std::setprecision(0) << std::setw(12) << row[7]
        << std::setw(12) << row[8] << std::setw(9) << row[9] << std::setw(10) << row[10] << std::setw(8) << row[11]
        << std::setw(11) << row[12] << std::setw(11) << std::setprecision(1) << row[13] / 1e6 << std::setprecision(0)
        << std::setw(10) << row[14] << std::setw(11) << row[15] << "\n";
  }
}

double record_phase(std::vector<PhaseStats>& phases, const std::string& name, double start) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double now = MPI_Wtime();
  phases.push_back({name, now - start, usage.ru_maxrss});
  return now;
}

void print_phase_benchmark(const std::vector<PhaseStats>& mine, MPI_Comm comm, std::ostream& out) {
  std::vector<double> flat;
  for (const auto& p : mine) flat.insert(flat.end(), {p.seconds, double(p.peak_rss_kib)});
  const auto all = mpi::gather_to_root(comm, flat, MPI_DOUBLE);
  if (mpi::rank(comm) != 0) return;
  const std::size_t ranks = flat.empty() ? 1 : all.size() / flat.size();
  out << "# benchmark: phases (seconds: slowest rank; peak RSS MiB of each rank when the phase ended)\n";
  for (std::size_t p = 0; p < mine.size(); ++p) {
    double slowest = 0;
    std::string rss;
    for (std::size_t r = 0; r < ranks; ++r) {
      slowest = std::max(slowest, all[r * flat.size() + 2 * p]);
      rss += (r ? " / " : "") + std::to_string(static_cast<long>(all[r * flat.size() + 2 * p + 1] / 1024.0 + 0.5));
    }
    out << "phase " << std::left << std::setw(34) << mine[p].name << std::right << std::fixed << std::setprecision(3)
        << std::setw(10) << slowest << " s   peak RSS MiB " << rss << "\n";
  }
}

}  // namespace lmtopo::stages
