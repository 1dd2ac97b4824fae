// One dimension step of the distributed reducer as a speculative pipeline (experiment, issue 17).
// Every rank holds all of the step's columns and a copy of every pivot; runs of `run` consecutive
// columns (in index order) are dealt round robin. A rank reduces its run assuming the runs the
// other ranks are reducing at the same time (the P - 1 just before) store nothing it meets, then
// checks each column's path against those runs' pivots once they arrive and redoes, in order, only
// the columns that met one (or met a pivot a redone column of its run left or took). The result is
// the twist reduction's in index order, exactly.
#pragma once
#include <mpi.h>

#include <functional>
#include <utility>
#include <vector>

#include "topology/boundary_matrix.hpp"

namespace lmtopo::topology {

// The step's columns in increasing index: [index, size, rows...] each.
struct StepColumns {
  std::vector<Row> words;
  std::vector<std::size_t> at;  // where each column's [index, size] starts in `words`
  std::size_t size() const { return at.size(); }
  Index index(std::size_t i) const { return words[at[i]]; }
  ColumnView rows(std::size_t i) const {
    const Row* first = words.data() + at[i] + 2;
    return {first, first + words[at[i] + 1]};
  }
};

struct SpeculativeStats {
  long long columns = 0;  // columns of this rank's runs
  long long redone = 0;   // of them, reduced again after the check
  long long resumed = 0;  // of those, taken up where they stopped
  double seconds_speculating = 0, seconds_validating = 0, seconds_waiting = 0;
};

// Calls record(pivot, column) for every pair of the step, on every rank. Collective.
void reduce_step_speculative(const StepColumns& columns, Index n, std::size_t run, std::size_t depth, MPI_Comm comm, int tag,
                             const std::function<void(Index, Index)>& record, SpeculativeStats* stats);

}  // namespace lmtopo::topology
