// Provenance recorded in every output: version, git SHA and dirty flag of the source tree, library
// versions, host and ranks.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace lmtopo::core {

std::string lmtopo_version();
// SHA of the source tree the binary was built from, read at run time (falls back to the SHA at
// configure time when the tree is not a git checkout any more); "unknown" if neither is known.
std::string git_sha();
bool git_dirty();
std::string hostname();
// {"hdf5": "...", "mpi": "...", "boost": "...", "yaml_cpp": "...", "petsc": "...", "compiler": "..."}
nlohmann::json library_versions();
// The `created_by` record: library versions, host, ranks, time.
nlohmann::json created_by(int ranks);

}  // namespace lmtopo::core
