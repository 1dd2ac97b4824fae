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
// The source tree the binary was built from (postprocess/ and the venvs live there).
std::string source_dir();
std::string hostname();
// {"hdf5": "...", "mpi": "...", "boost": "...", "yaml_cpp": "...", "petsc": "...", "compiler": "..."}
nlohmann::json library_versions();
// The `created_by` record: library versions, host, CPU model, OPENBLAS_CORETYPE, ranks, compute
// threads per rank (this process's value; H5Output replaces it by every rank's), time.
nlohmann::json created_by(int ranks);

// The number of threads this process's numerical libraries (libtorch, OpenBLAS) compute with, as set
// by the code that configured them; 0 until set. Floating-point sums may be ordered differently at
// another thread count, so it is part of every output's provenance.
void set_compute_threads(int threads);
int compute_threads();
// libtorch's intra-op (OpenMP) threads, when a model set them (model::configure_compute_threads):
// recorded as created_by.intra_op_threads.
void set_intra_op_threads(int threads);
std::string cpu_model();

}  // namespace lmtopo::core
