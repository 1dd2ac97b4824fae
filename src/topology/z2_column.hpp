// Column arithmetic over Z/2 on sorted index lists: the one operation every reducer is made of.
#pragma once
#include <algorithm>
#include <vector>

#include "topology/boundary_matrix.hpp"

namespace lmtopo::topology {

// target <- target + source (mod 2). Both ranges are strictly increasing; the result is too.
template <class Source>
void add_column(std::vector<Index>& target, const Source& source, std::vector<Index>& scratch) {
  scratch.clear();
  std::set_symmetric_difference(target.begin(), target.end(), source.begin(), source.end(),
                                std::back_inserter(scratch));
  target.swap(scratch);
}

// Releases the storage of a column that is known to stay zero.
inline void release_column(std::vector<Index>& column) { std::vector<Index>().swap(column); }

}  // namespace lmtopo::topology
