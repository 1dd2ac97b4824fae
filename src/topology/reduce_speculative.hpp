// One dimension step of the distributed reducer as a speculative pipeline (issue 17), for the steps
// whose work one rank would otherwise do alone (with one block per rank, all pivots of the cone
// matrix's last step lie in rank 0's block). Every rank holds all of the step's columns and a copy
// of every stored column; runs of `run` consecutive columns in index order are dealt round robin.
// A rank reduces its run assuming that the runs other ranks are reducing meanwhile store nothing it
// meets, then, once every earlier run is in, checks each column's path (the pivots it met) against
// what those runs stored and redoes in order only the columns that met one (or met a pivot that a
// redone column of its run left or took); a column whose only changed pivot is the free one where
// it stopped goes on from there. In index order a pivot, once held, is never taken over (no later
// column displaces an earlier one), which is why most columns stand. The pairs are those of the
// twist reduction in index order, exactly.
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

// Calls record(pivot, column) for every pair of the step, on every rank; a rank speculates up to
// `depth` runs ahead of its first unchecked one. Messages use `tag` on `comm`. Collective.
void reduce_step_speculative(const StepColumns& columns, Index n, std::size_t run, std::size_t depth, MPI_Comm comm, int tag,
                             const std::function<void(Index, Index)>& record, SpeculativeStats* stats);

}  // namespace lmtopo::topology
