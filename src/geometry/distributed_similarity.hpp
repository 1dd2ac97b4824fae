// The similarity mathematics of similarity.hpp distributed over the ranks of a communicator with
// PETSc: representations become MATMPIDENSE matrices split by rows, Gram matrices and similarity
// matrices are PETSc's dense products (MatMatTransposeMult, MatTransposeMatMult), and each rank
// scans only its own rows. With a PETSc built for CUDA, `-mat_type densecuda` after `--` moves the
// products to the GPU.
//
// Every representation is given by *this rank's rows*: rows [row0, row0 + rows) of petsc_rows(comm, n)
// of an n x d array (row-major, rows x d values); no rank holds a whole representation. Results that
// are per row (index i) refer to the global row.
#pragma once
#include <mpi.h>

#include <array>
#include <map>
#include <cstddef>
#include <string>
#include <vector>

#include "geometry/bootstrap.hpp"
#include "geometry/similarity.hpp"

namespace lmtopo::geometry {

// PETSc for the lifetime of the object (MPI must be initialised); `options` are PETSc's command-line
// options (what follows `--`). Nested scopes are no-ops.
class PetscScope {
 public:
  explicit PetscScope(const std::vector<std::string>& options = {});
  ~PetscScope();
  PetscScope(const PetscScope&) = delete;
  PetscScope& operator=(const PetscScope&) = delete;

 private:
  bool owner_ = false;
};

// The rows [row0, row0 + rows) PETSc gives this rank of an n-row matrix.
struct RowBlock {
  std::size_t row0 = 0, rows = 0;
};
RowBlock petsc_rows(MPI_Comm comm, std::size_t n);

// Precision of the Gram products X X^T inside cka_matrix. float64: PETSc's MatMatTransposeMult
// (PETSc's scalar here; results agree across rank counts to 1e-10). float32: each rank multiplies
// its rows by every rank's rows with BLAS sgemm as the row blocks travel round a ring (no PETSc
// product exists in single precision with a double-precision PETSc; no rank holds more than two
// blocks) and centring and the inner products stay float64 — twice the GEMM rate, CKA to about 1e-6
// (the inputs are the column-centred rows rounded to float32).
enum class GramPrecision { float64, float32 };

// CKA among R representations with the same n rows (reps[r]: this rank's rows of n x dims[r]): R x R,
// identical on every rank.
// `method`: from centred Grams as above, or from the feature-space cross-products of the
// column-centred representations (similarity.hpp): each rank multiplies its rows, Xc_pᵀ Yc_q
// (d_p x d_q, BLAS dgemm, or sgemm of the centred rows rounded to float32 with `precision` float32)
// is summed over the ranks, and no n x n matrix exists. Both give the same values (test: 1e-10).
std::vector<double> cka_matrix(MPI_Comm comm, const std::vector<const double*>& reps, const std::vector<std::size_t>& dims,
                               std::size_t n, HsicEstimator e, std::vector<std::size_t>* degenerate,
                               GramPrecision precision = GramPrecision::float64, CkaMethod method = CkaMethod::gram);

// Half of this node's physical memory per rank on the node: the `auto` CKA method's budget for the
// centred Grams (choose_cka_method).
double gram_budget_per_rank(MPI_Comm comm);

// This rank's rows of the cosine-similarity matrix of X (n x d) against Y (m x d), row-major
// [rows x m], with the block they are.
std::vector<double> cosine_rows(MPI_Comm comm, const double* x, std::size_t n, const double* y, std::size_t m, std::size_t d,
                                RowBlock& block);

// Sums over ranks, results on every rank.
std::array<std::size_t, 2> retrieval_hits(MPI_Comm comm, const double* x, const double* y, std::size_t n, std::size_t d);
double mutual_knn(MPI_Comm comm, const double* x, std::size_t dx, const double* y, std::size_t dy, std::size_t n, std::size_t k);
PairedCosine paired_cosine(MPI_Comm comm, const double* x, const double* y, std::size_t n, std::size_t d);
AlignmentSums alignment_sums(MPI_Comm comm, const double* x, std::size_t n, std::size_t d, const std::vector<int>& language,
                             const std::vector<long long>& group);

// Per-prompt quantities (TwoNN, retrieval, bootstrap.hpp), every row's on every rank: TwoNN's ratio
// r2/r1 (NaN for a duplicated point), the rank of row i's answer i among Y's rows (retrieval), each
// prompt's paired cosine, the sentence-pair sums of a stacked parallel set (languages x sentences
// rows), and any per-row values computed on this rank's rows (rank order: the whole vector).
std::vector<double> twonn_ratio_rows(MPI_Comm comm, const double* x, std::size_t n, std::size_t d);
std::vector<double> retrieval_ranks(MPI_Comm comm, const double* x, const double* y, std::size_t n, std::size_t d);
SentencePairSums sentence_pair_sums(MPI_Comm comm, const double* x, std::size_t sentences, std::size_t languages, std::size_t d);
std::vector<double> paired_cosine_rows(MPI_Comm comm, const double* x, const double* y, std::size_t n, std::size_t d);
std::vector<double> gather_row_values(MPI_Comm comm, const std::vector<double>& mine);

// Rows of a source representation (n_src rows, given by this rank's rows) that this rank needs for
// its block of a new one: out row k = source row wanted[k] (repeats allowed). Two all-to-alls: the
// requests by owner, then the rows. Permutations (nulls), bootstrap draws and the language-by-sentence
// layouts of the sweep are built so.
std::vector<double> fetch_rows(MPI_Comm comm, const double* src_rows, std::size_t n_src, std::size_t d,
                               const std::vector<std::size_t>& wanted);

// Seconds this rank spent per phase since the last reset ("gram products", "centring (incl.
// all-gather)", "inner products", "similarity products", "row scans", "reductions"), for --benchmark.
std::map<std::string, double>& phase_seconds();

}  // namespace lmtopo::geometry
