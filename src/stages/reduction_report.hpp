// The distributed reducer's --benchmark table (DIPHA's: per rank and step, time, peak memory, bytes
// moved), gathered on rank 0 and printed there. Used by `barcode` and `zigzag`.
#pragma once
#include <mpi.h>

#include <iosfwd>
#include <string>
#include <vector>

#include "topology/reducers.hpp"

namespace lmtopo::stages {

// Collective over `comm` when MPI runs; prints a one-line note for a serial run.
void print_reduction_benchmark(const std::vector<topology::ReductionStepStats>& mine, MPI_Comm comm, std::ostream& out);

// One phase of a distributed command on this rank: its seconds and the process's peak RSS when it ended.
struct PhaseStats {
  std::string name;
  double seconds = 0;
  long peak_rss_kib = 0;
};

// Appends a phase that started at `start` (MPI_Wtime) and ends now; returns now.
double record_phase(std::vector<PhaseStats>& phases, const std::string& name, double start);

// Per phase: the slowest rank's seconds and every rank's peak RSS (MiB) when it ended, printed on
// rank 0. Every rank must have recorded the same phases. Collective.
void print_phase_benchmark(const std::vector<PhaseStats>& mine, MPI_Comm comm, std::ostream& out);

}  // namespace lmtopo::stages
