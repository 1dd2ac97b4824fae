// The distributed reducer's --benchmark table (DIPHA's: per rank and step, time, peak memory, bytes
// moved), gathered on rank 0 and printed there. Used by `barcode` and `zigzag`.
#pragma once
#include <mpi.h>

#include <iosfwd>
#include <vector>

#include "topology/reducers.hpp"

namespace lmtopo::stages {

// Collective over `comm` when MPI runs; prints a one-line note for a serial run.
void print_reduction_benchmark(const std::vector<topology::ReductionStepStats>& mine, MPI_Comm comm, std::ostream& out);

}  // namespace lmtopo::stages
