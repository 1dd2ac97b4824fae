#include "geometry/distributed_similarity.hpp"

#include <cblas.h>
#include <petscmat.h>

#include <cmath>
#include <algorithm>
#include <limits>
#include <numeric>

#include "core/error.hpp"
#include "geometry/sweep_memory.hpp"

namespace lmtopo::geometry {

std::map<std::string, double>& phase_seconds() {
  static std::map<std::string, double> seconds;
  return seconds;
}

namespace {

// Adds the scope's wall time to phase_seconds()[name].
class PhaseTimer {
 public:
  explicit PhaseTimer(const char* name) : name_(name), start_(MPI_Wtime()) {}
  ~PhaseTimer() { phase_seconds()[name_] += MPI_Wtime() - start_; }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  const char* name_;
  double start_;
};

void check(PetscErrorCode e, const char* call) {
  if (e != 0) throw RuntimeFailure(std::string("PETSc: ") + call + " failed (error code " + std::to_string(static_cast<int>(e)) + ")");
}

struct MatHandle {
  Mat m = nullptr;
  MatHandle() = default;
  MatHandle(const MatHandle&) = delete;
  MatHandle& operator=(const MatHandle&) = delete;
  ~MatHandle() {
    if (m) MatDestroy(&m);
  }
};

void mpi_check(int rc, const char* call) {
  if (rc != MPI_SUCCESS) throw RuntimeFailure(std::string(call) + " failed");
}

// A row-distributed dense matrix of n x d from this rank's rows of it (a_rows, row-major).
void dense_from_rows(MPI_Comm comm, const double* a_rows, std::size_t n, std::size_t d, MatHandle& out) {
  check(MatCreate(comm, &out.m), "MatCreate");
  check(MatSetSizes(out.m, PETSC_DECIDE, PETSC_DECIDE, static_cast<PetscInt>(n), static_cast<PetscInt>(d)), "MatSetSizes");
  check(MatSetType(out.m, MATDENSE), "MatSetType");
  check(MatSetFromOptions(out.m), "MatSetFromOptions");  // e.g. -mat_type densecuda
  check(MatSetUp(out.m), "MatSetUp");
  PetscInt r0, r1, lda;
  check(MatGetOwnershipRange(out.m, &r0, &r1), "MatGetOwnershipRange");
  check(MatDenseGetLDA(out.m, &lda), "MatDenseGetLDA");
  PetscScalar* arr;
  check(MatDenseGetArrayWrite(out.m, &arr), "MatDenseGetArrayWrite");
  for (PetscInt i = r0; i < r1; ++i)
    for (std::size_t k = 0; k < d; ++k) arr[(i - r0) + static_cast<PetscInt>(k) * lda] = a_rows[static_cast<std::size_t>(i - r0) * d + k];
  check(MatDenseRestoreArrayWrite(out.m, &arr), "MatDenseRestoreArrayWrite");
  check(MatAssemblyBegin(out.m, MAT_FINAL_ASSEMBLY), "MatAssemblyBegin");
  check(MatAssemblyEnd(out.m, MAT_FINAL_ASSEMBLY), "MatAssemblyEnd");
}

// This rank's rows of a dense matrix as a row-major array, with the block they are.
std::vector<double> local_rows(const MatHandle& m, RowBlock& block) {
  PetscInt r0, r1, rows, cols, lda;
  check(MatGetOwnershipRange(m.m, &r0, &r1), "MatGetOwnershipRange");
  check(MatGetSize(m.m, &rows, &cols), "MatGetSize");
  check(MatDenseGetLDA(m.m, &lda), "MatDenseGetLDA");
  const PetscScalar* arr;
  check(MatDenseGetArrayRead(m.m, &arr), "MatDenseGetArrayRead");
  std::vector<double> out(static_cast<std::size_t>((r1 - r0) * cols));
  for (PetscInt i = 0; i < r1 - r0; ++i)
    for (PetscInt j = 0; j < cols; ++j) out[static_cast<std::size_t>(i * cols + j)] = arr[i + j * lda];
  check(MatDenseRestoreArrayRead(m.m, &arr), "MatDenseRestoreArrayRead");
  block = {static_cast<std::size_t>(r0), static_cast<std::size_t>(r1 - r0)};
  return out;
}

// Every rank's values concatenated in rank order (row blocks -> the full matrix), on every rank.
std::vector<double> allgather_rows(MPI_Comm comm, const std::vector<double>& mine) {
  int size;
  MPI_Comm_size(comm, &size);
  const int count = static_cast<int>(mine.size());
  std::vector<int> counts(static_cast<std::size_t>(size)), displs(static_cast<std::size_t>(size));
  mpi_check(MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, comm), "MPI_Allgather");
  std::partial_sum(counts.begin(), counts.end() - 1, displs.begin() + 1);
  std::vector<double> out(static_cast<std::size_t>(std::accumulate(counts.begin(), counts.end(), 0)));
  mpi_check(MPI_Allgatherv(mine.data(), count, MPI_DOUBLE, out.data(), counts.data(), displs.data(), MPI_DOUBLE, comm),
            "MPI_Allgatherv");
  return out;
}

// This rank's rows of A B^T (A: n x d, B: m x d, each given by this rank's rows), computed by PETSc.
std::vector<double> product_rows(MPI_Comm comm, const double* a, std::size_t n, const double* b, std::size_t m, std::size_t d,
                                 RowBlock& block) {
  PhaseTimer t("similarity products");
  MatHandle am, bm, c;
  dense_from_rows(comm, a, n, d, am);
  dense_from_rows(comm, b, m, d, bm);
  check(MatMatTransposeMult(am.m, bm.m, MAT_INITIAL_MATRIX, PETSC_DEFAULT, &c.m), "MatMatTransposeMult");
  return local_rows(c, block);
}

// The first row of every rank's block, and n at the end (size + 1 entries), on every rank.
std::vector<unsigned long long> row_starts(MPI_Comm comm, const RowBlock& mine) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  std::vector<unsigned long long> starts(static_cast<std::size_t>(size) + 1, 0);
  const unsigned long long my_rows = mine.rows;
  mpi_check(MPI_Allgather(&my_rows, 1, MPI_UNSIGNED_LONG_LONG, starts.data() + 1, 1, MPI_UNSIGNED_LONG_LONG, comm), "MPI_Allgather");
  std::partial_sum(starts.begin(), starts.end(), starts.begin());
  return starts;
}

// This rank's rows of X X^T in single precision (X given by this rank's rows in float64, exact in
// float32 as activations are stored so): the row blocks travel round a ring, each rank multiplying its
// rows by the block it holds, so no rank ever holds more than two blocks of X.
std::vector<float> gram_rows_f32_ring(MPI_Comm comm, const double* x_rows, std::size_t n, std::size_t d, const RowBlock& mine) {
  int size = 1, rank = 0;
  MPI_Comm_size(comm, &size);
  MPI_Comm_rank(comm, &rank);
  const auto starts = row_starts(comm, mine);
  std::size_t widest = 0;
  for (int r = 0; r < size; ++r) widest = std::max<std::size_t>(widest, starts[static_cast<std::size_t>(r) + 1] - starts[static_cast<std::size_t>(r)]);
  if (widest * d > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw RuntimeFailure("float32 Gram ring: a row block of " + std::to_string(widest * d) + " values exceeds one MPI message");
  const std::vector<float> own(x_rows, x_rows + mine.rows * d);
  std::vector<float> held(own), incoming(widest * d), out(mine.rows * n, 0.0f);
  for (int step = 0; step < size; ++step) {
    const auto owner = static_cast<std::size_t>((rank - step + size) % size);
    const std::size_t b0 = starts[owner], brows = starts[owner + 1] - starts[owner];
    if (mine.rows > 0 && brows > 0)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(mine.rows), static_cast<int>(brows), static_cast<int>(d),
                  1.0f, own.data(), static_cast<int>(d), held.data(), static_cast<int>(d), 0.0f, out.data() + b0,
                  static_cast<int>(n));
    if (step + 1 == size) break;
    const auto next_owner = static_cast<std::size_t>((rank - step - 1 + size) % size);
    const int next_count = static_cast<int>((starts[next_owner + 1] - starts[next_owner]) * d);
    mpi_check(MPI_Sendrecv(held.data(), static_cast<int>(brows * d), MPI_FLOAT, (rank + 1) % size, 0, incoming.data(), next_count,
                           MPI_FLOAT, (rank - 1 + size) % size, 0, comm, MPI_STATUS_IGNORE),
              "MPI_Sendrecv");
    held.assign(incoming.begin(), incoming.begin() + next_count);
  }
  return out;
}

}  // namespace

PetscScope::PetscScope(const std::vector<std::string>& options) {
  PetscBool done = PETSC_FALSE;
  check(PetscInitialized(&done), "PetscInitialized");
  if (done) return;
  static std::vector<std::string> args;  // PETSc keeps pointers into argv
  static std::vector<char*> argv;
  args.assign(1, "lmtopo");
  args.insert(args.end(), options.begin(), options.end());
  argv.clear();
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  int argc = static_cast<int>(args.size());
  char** p = argv.data();
  check(PetscInitializeNoPointers(argc, p, nullptr, nullptr), "PetscInitialize");
  owner_ = true;
}

PetscScope::~PetscScope() {
  if (owner_) PetscFinalize();
}

RowBlock petsc_rows(MPI_Comm comm, std::size_t n) {
  PetscInt local = PETSC_DECIDE, global = static_cast<PetscInt>(n);
  check(PetscSplitOwnership(comm, &local, &global), "PetscSplitOwnership");
  PetscInt end = 0;
  mpi_check(MPI_Scan(&local, &end, 1, MPIU_INT, MPI_SUM, comm), "MPI_Scan");
  return {static_cast<std::size_t>(end - local), static_cast<std::size_t>(local)};
}

namespace {

// This rank's rows of a representation with every column's mean (over all n rows) subtracted; a
// column that is constant over all rows becomes exactly 0 (a rounded mean would leave noise that
// CKA would normalise into a similarity).
std::vector<double> column_centred_rows(MPI_Comm comm, const double* x, std::size_t rows, std::size_t n, std::size_t d) {
  std::vector<double> sum(d, 0.0), lo(d, std::numeric_limits<double>::infinity()), hi(d, -std::numeric_limits<double>::infinity());
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < d; ++j) {
      const double v = x[i * d + j];
      sum[j] += v;
      lo[j] = std::min(lo[j], v);
      hi[j] = std::max(hi[j], v);
    }
  const auto count = static_cast<int>(d);
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, sum.data(), count, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, lo.data(), count, MPI_DOUBLE, MPI_MIN, comm), "MPI_Allreduce");
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, hi.data(), count, MPI_DOUBLE, MPI_MAX, comm), "MPI_Allreduce");
  std::vector<double> out(rows * d);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < d; ++j) out[i * d + j] = lo[j] == hi[j] ? 0.0 : x[i * d + j] - sum[j] / static_cast<double>(n);
  return out;
}

// Per representation: this rank's aᵢ = ‖xᵢ‖² and their total Σaᵢ over all ranks. The rows are
// column-centred, so Xᵀ1 = 0 and K̃1 = X(Xᵀ1) − a = −a: the unbiased estimator's row sums are −a, its
// total 1ᵀK̃1 is −Σaᵢ, and (K̃1)ᵀ(L̃1) = aᵀb.
struct FeatureRowTerms {
  std::vector<double> norms;
  double total_norms = 0;
};

FeatureRowTerms feature_row_terms(MPI_Comm comm, const std::vector<double>& xc, std::size_t rows, std::size_t d) {
  FeatureRowTerms t;
  t.norms.resize(rows);
  for (std::size_t i = 0; i < rows; ++i) {
    const double* row = xc.data() + i * d;
    t.norms[i] = std::inner_product(row, row + d, row, 0.0);
  }
  t.total_norms = std::accumulate(t.norms.begin(), t.norms.end(), 0.0);
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, &t.total_norms, 1, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  return t;
}

// ‖Xcᵀ Yc‖²_F: this rank's rows' product (dgemm, or sgemm for float rows), summed over the ranks,
// then squared entry by entry.
void local_cross_product(const double* x, std::size_t dx, const double* y, std::size_t dy, std::size_t rows, double* c) {
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(dx), static_cast<int>(dy), static_cast<int>(rows), 1.0, x,
              static_cast<int>(dx), y, static_cast<int>(dy), 0.0, c, static_cast<int>(dy));
}
void local_cross_product(const float* x, std::size_t dx, const float* y, std::size_t dy, std::size_t rows, double* c) {
  std::vector<float> cf(dx * dy, 0.0f);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(dx), static_cast<int>(dy), static_cast<int>(rows), 1.0f, x,
              static_cast<int>(dx), y, static_cast<int>(dy), 0.0f, cf.data(), static_cast<int>(dy));
  std::copy(cf.begin(), cf.end(), c);
}

template <class T>
double cross_frobenius2(MPI_Comm comm, const std::vector<T>& xc, std::size_t dx, const std::vector<T>& yc, std::size_t dy,
                        std::size_t rows) {
  std::vector<double> c(dx * dy, 0.0);
  if (rows > 0) local_cross_product(xc.data(), dx, yc.data(), dy, rows, c.data());
  if (c.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw RuntimeFailure("CKA features: a cross-product of " + std::to_string(c.size()) + " values exceeds one MPI message");
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, c.data(), static_cast<int>(c.size()), MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  return std::inner_product(c.begin(), c.end(), c.begin(), 0.0);
}

std::vector<double> cka_matrix_features(MPI_Comm comm, const std::vector<const double*>& reps, const std::vector<std::size_t>& dims,
                                        std::size_t n, HsicEstimator e, std::vector<std::size_t>* degenerate,
                                        GramPrecision precision) {
  const std::size_t r = reps.size();
  const RowBlock mine = petsc_rows(comm, n);
  // The centred rows in the products' precision (float32: rounded once, and only those kept).
  const bool single = precision == GramPrecision::float32;
  std::vector<std::vector<double>> centred(r);
  std::vector<std::vector<float>> centred_f32(single ? r : 0);
  std::vector<FeatureRowTerms> terms(r);
  {
    PhaseTimer t("centring (incl. all-gather)");
    for (std::size_t q = 0; q < r; ++q) {
      centred[q] = column_centred_rows(comm, reps[q], mine.rows, n, dims[q]);
      terms[q] = feature_row_terms(comm, centred[q], mine.rows, dims[q]);
      if (single) {
        centred_f32[q].assign(centred[q].begin(), centred[q].end());
        std::vector<double>().swap(centred[q]);
      }
    }
  }
  // Σᵢ aᵢbᵢ of every pair, all-reduced at once.
  std::vector<double> norms_dot(r * r, 0.0);
  for (std::size_t p = 0; p < r; ++p)
    for (std::size_t q = p; q < r; ++q)
      norms_dot[p * r + q] = std::inner_product(terms[p].norms.begin(), terms[p].norms.end(), terms[q].norms.begin(), 0.0);
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, norms_dot.data(), static_cast<int>(norms_dot.size()), MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  PhaseTimer t("feature cross-products");
  std::vector<double> inner(r * r, 0.0);
  for (std::size_t p = 0; p < r; ++p)
    for (std::size_t q = p; q < r; ++q) {
      FeatureCrossTerms c;
      c.cross_frobenius2 = single ? cross_frobenius2(comm, centred_f32[p], dims[p], centred_f32[q], dims[q], mine.rows)
                                  : cross_frobenius2(comm, centred[p], dims[p], centred[q], dims[q], mine.rows);
      c.norms_dot = norms_dot[p * r + q];
      c.row_sums_dot = norms_dot[p * r + q];  // (−a)ᵀ(−b)
      c.total_x = -terms[p].total_norms;
      c.total_y = -terms[q].total_norms;
      inner[p * r + q] = inner[q * r + p] = centred_gram_inner_product(c, n, e);
    }
  return cka_from_inner_products(inner, r, degenerate);
}

}  // namespace

double gram_budget_per_rank(MPI_Comm comm) {
  MPI_Comm node;
  mpi_check(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
  int local_ranks = 1;
  MPI_Comm_size(node, &local_ranks);
  MPI_Comm_free(&node);
  return physical_memory_bytes() / 2 / local_ranks;
}

std::vector<double> cka_matrix(MPI_Comm comm, const std::vector<const double*>& reps, const std::vector<std::size_t>& dims,
                               std::size_t n, HsicEstimator e, std::vector<std::size_t>* degenerate,
                               GramPrecision precision, CkaMethod method) {
  if (method == CkaMethod::features) return cka_matrix_features(comm, reps, dims, n, e, degenerate, precision);
  const std::size_t r = reps.size();
  const RowBlock mine = petsc_rows(comm, n);
  // G: column q = this rank's rows of representation q's centred Gram, flattened; the inner
  // products of all centred Grams are then one PETSc product G^T G.
  MatHandle g;
  check(MatCreateDense(comm, static_cast<PetscInt>(mine.rows * n), PETSC_DECIDE, static_cast<PetscInt>(n * n),
                       static_cast<PetscInt>(r), nullptr, &g.m),
        "MatCreateDense");
  PetscInt lda;
  check(MatDenseGetLDA(g.m, &lda), "MatDenseGetLDA");
  for (std::size_t q = 0; q < r; ++q) {
    MatHandle x, k;
    RowBlock block;
    std::vector<double> rows;
    // Column-centred first (HKH and U-centring ignore a constant added to every row): a large common
    // mean no longer cancels in the centring, and a constant representation's Gram is exactly 0.
    const auto centred = column_centred_rows(comm, reps[q], mine.rows, n, dims[q]);
    if (precision == GramPrecision::float32) {
      PhaseTimer t("gram products");
      const auto gram = gram_rows_f32_ring(comm, centred.data(), n, dims[q], mine);
      rows.assign(gram.begin(), gram.end());
      block = mine;
    } else {
      PhaseTimer t("gram products");
      dense_from_rows(comm, centred.data(), n, dims[q], x);
      check(MatMatTransposeMult(x.m, x.m, MAT_INITIAL_MATRIX, PETSC_DEFAULT, &k.m), "MatMatTransposeMult");
      rows = local_rows(k, block);
    }
    PhaseTimer t("centring (incl. all-gather)");
    if (block.row0 != mine.row0 || block.rows != mine.rows) throw RuntimeFailure("PETSc row ownership differs between matrices");
    std::vector<double> sums(block.rows), diag(block.rows);
    for (std::size_t i = 0; i < block.rows; ++i) {
      sums[i] = std::accumulate(rows.begin() + static_cast<std::ptrdiff_t>(i * n), rows.begin() + static_cast<std::ptrdiff_t>((i + 1) * n), 0.0);
      diag[i] = rows[i * n + block.row0 + i];
    }
    const auto all_sums = allgather_rows(comm, sums), all_diag = allgather_rows(comm, diag);
    centre_gram_rows(rows.data(), block.row0, block.rows, n, all_sums, all_diag, e);
    PetscScalar* arr;
    check(MatDenseGetArrayWrite(g.m, &arr), "MatDenseGetArrayWrite");
    std::copy(rows.begin(), rows.end(), arr + static_cast<std::ptrdiff_t>(q) * lda);
    check(MatDenseRestoreArrayWrite(g.m, &arr), "MatDenseRestoreArrayWrite");
  }
  check(MatAssemblyBegin(g.m, MAT_FINAL_ASSEMBLY), "MatAssemblyBegin");
  check(MatAssemblyEnd(g.m, MAT_FINAL_ASSEMBLY), "MatAssemblyEnd");
  PhaseTimer t("inner products");
  MatHandle m;
  check(MatTransposeMatMult(g.m, g.m, MAT_INITIAL_MATRIX, PETSC_DEFAULT, &m.m), "MatTransposeMatMult");
  RowBlock block;
  const auto inner = allgather_rows(comm, local_rows(m, block));
  return cka_from_inner_products(inner, r, degenerate);
}

std::vector<double> cosine_rows(MPI_Comm comm, const double* x, std::size_t n, const double* y, std::size_t m, std::size_t d,
                                RowBlock& block) {
  const auto ux = unit_rows(x, petsc_rows(comm, n).rows, d), uy = unit_rows(y, petsc_rows(comm, m).rows, d);
  return product_rows(comm, ux.data(), n, uy.data(), m, d, block);
}

std::array<std::size_t, 2> retrieval_hits(MPI_Comm comm, const double* x, const double* y, std::size_t n, std::size_t d) {
  RowBlock b;
  const auto s = cosine_rows(comm, x, n, y, n, d, b);
  auto hits = geometry::retrieval_hits(s.data(), b.row0, b.rows, n);
  std::array<unsigned long long, 2> local{hits[0], hits[1]}, total{};
  mpi_check(MPI_Allreduce(local.data(), total.data(), 2, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm), "MPI_Allreduce");
  return {static_cast<std::size_t>(total[0]), static_cast<std::size_t>(total[1])};
}

double mutual_knn(MPI_Comm comm, const double* x, std::size_t dx, const double* y, std::size_t dy, std::size_t n, std::size_t k) {
  RowBlock bx, by;
  const auto sx = cosine_rows(comm, x, n, x, n, dx, bx);
  const auto sy = cosine_rows(comm, y, n, y, n, dy, by);
  const double local = mutual_knn_sum(top_k_rows(sx.data(), bx.row0, bx.rows, n, k), top_k_rows(sy.data(), by.row0, by.rows, n, k),
                                      bx.rows, k);
  double total = 0;
  mpi_check(MPI_Allreduce(&local, &total, 1, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  return total / static_cast<double>(n);
}

PairedCosine paired_cosine(MPI_Comm comm, const double* x, const double* y, std::size_t n, std::size_t d) {
  const RowBlock b = petsc_rows(comm, n);
  const PairedCosine p = geometry::paired_cosine(x, y, 0, b.rows, d);
  double local[3] = {p.sum_cos, p.sum_cos2, p.sum_angular}, total[3];
  mpi_check(MPI_Allreduce(local, total, 3, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  PairedCosine out;
  out.sum_cos = total[0];
  out.sum_cos2 = total[1];
  out.sum_angular = total[2];
  out.count = n;
  return out;
}

AlignmentSums alignment_sums(MPI_Comm comm, const double* x, std::size_t n, std::size_t d, const std::vector<int>& language,
                             const std::vector<long long>& group) {
  RowBlock b;
  const auto s = cosine_rows(comm, x, n, x, n, d, b);
  const AlignmentSums a = geometry::alignment_sums(s.data(), b.row0, b.rows, n, language, group);
  double sums[3] = {a.same_lang, a.translation, a.other}, tsums[3];
  unsigned long long counts[3] = {a.n_same_lang, a.n_translation, a.n_other}, tcounts[3];
  mpi_check(MPI_Allreduce(sums, tsums, 3, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  mpi_check(MPI_Allreduce(counts, tcounts, 3, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm), "MPI_Allreduce");
  AlignmentSums out;
  out.same_lang = tsums[0];
  out.translation = tsums[1];
  out.other = tsums[2];
  out.n_same_lang = static_cast<std::size_t>(tcounts[0]);
  out.n_translation = static_cast<std::size_t>(tcounts[1]);
  out.n_other = static_cast<std::size_t>(tcounts[2]);
  return out;
}

std::vector<double> twonn_ratio_rows(MPI_Comm comm, const double* x, std::size_t n, std::size_t d) {
  RowBlock b;
  auto g = product_rows(comm, x, n, x, n, d, b);  // Gram rows -> squared distances
  std::vector<double> mine(b.rows);
  for (std::size_t r = 0; r < b.rows; ++r) mine[r] = std::inner_product(x + r * d, x + (r + 1) * d, x + r * d, 0.0);
  const auto norms = allgather_rows(comm, mine);
  for (std::size_t r = 0; r < b.rows; ++r)
    for (std::size_t j = 0; j < n; ++j) {
      double& v = g[r * n + j];
      v = (b.row0 + r == j) ? 0.0 : std::max(0.0, norms[b.row0 + r] + norms[j] - 2 * v);
    }
  return allgather_rows(comm, geometry::twonn_ratio_rows(g.data(), b.row0, b.rows, n));
}

std::vector<double> retrieval_ranks(MPI_Comm comm, const double* x, const double* y, std::size_t n, std::size_t d) {
  RowBlock b;
  const auto s = cosine_rows(comm, x, n, y, n, d, b);
  const auto ranks = geometry::retrieval_ranks(s.data(), b.row0, b.rows, n);
  return allgather_rows(comm, std::vector<double>(ranks.begin(), ranks.end()));
}

SentencePairSums sentence_pair_sums(MPI_Comm comm, const double* x, std::size_t sentences, std::size_t languages, std::size_t d) {
  RowBlock b;
  const std::size_t n = sentences * languages;
  const auto s = cosine_rows(comm, x, n, x, n, d, b);
  SentencePairSums sums{sentences, languages, std::vector<double>(sentences * sentences, 0.0), std::vector<double>(sentences * sentences, 0.0)};
  add_sentence_pair_sums(s.data(), b.row0, b.rows, sums);
  for (auto* v : {&sums.same, &sums.cross})
    mpi_check(MPI_Allreduce(MPI_IN_PLACE, v->data(), static_cast<int>(v->size()), MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  return sums;
}

std::vector<double> paired_cosine_rows(MPI_Comm comm, const double* x, const double* y, std::size_t n, std::size_t d) {
  const RowBlock b = petsc_rows(comm, n);
  return allgather_rows(comm, geometry::paired_cosine_rows(x, y, 0, b.rows, d));
}

std::vector<double> gather_row_values(MPI_Comm comm, const std::vector<double>& mine) { return allgather_rows(comm, mine); }

std::vector<double> fetch_rows(MPI_Comm comm, const double* src_rows, std::size_t n_src, std::size_t d,
                               const std::vector<std::size_t>& wanted) {
  int size = 1, rank = 0;
  MPI_Comm_size(comm, &size);
  MPI_Comm_rank(comm, &rank);
  const RowBlock mine = petsc_rows(comm, n_src);
  const auto starts = row_starts(comm, mine);
  // Requests grouped by owner, remembering where each answer goes.
  const auto P = static_cast<std::size_t>(size);
  std::vector<std::vector<unsigned long long>> asked(P);
  std::vector<std::vector<std::size_t>> slot(P);
  for (std::size_t k = 0; k < wanted.size(); ++k) {
    if (wanted[k] >= n_src) throw std::logic_error("fetch_rows: row " + std::to_string(wanted[k]) + " of " + std::to_string(n_src));
    const auto owner = static_cast<std::size_t>(std::upper_bound(starts.begin() + 1, starts.end(), wanted[k]) - starts.begin() - 1);
    asked[owner].push_back(wanted[k]);
    slot[owner].push_back(k);
  }
  std::vector<int> send_n(P), recv_n(P), send_at(P, 0), recv_at(P, 0);
  for (std::size_t o = 0; o < P; ++o) send_n[o] = static_cast<int>(asked[o].size());
  mpi_check(MPI_Alltoall(send_n.data(), 1, MPI_INT, recv_n.data(), 1, MPI_INT, comm), "MPI_Alltoall");
  std::partial_sum(send_n.begin(), send_n.end() - 1, send_at.begin() + 1);
  std::partial_sum(recv_n.begin(), recv_n.end() - 1, recv_at.begin() + 1);
  std::vector<unsigned long long> requests, served(static_cast<std::size_t>(recv_at.back() + recv_n.back()));
  for (const auto& a : asked) requests.insert(requests.end(), a.begin(), a.end());
  mpi_check(MPI_Alltoallv(requests.data(), send_n.data(), send_at.data(), MPI_UNSIGNED_LONG_LONG, served.data(), recv_n.data(),
                          recv_at.data(), MPI_UNSIGNED_LONG_LONG, comm),
            "MPI_Alltoallv");
  // Answer with the rows asked for, d values each.
  if (served.size() * d > static_cast<std::size_t>(std::numeric_limits<int>::max()) ||
      wanted.size() * d > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw RuntimeFailure("fetch_rows: more than 2^31 values in one exchange; use more ranks");
  std::vector<double> answers(served.size() * d), received(wanted.size() * d);
  for (std::size_t i = 0; i < served.size(); ++i)
    std::copy_n(src_rows + (served[i] - mine.row0) * d, d, answers.begin() + static_cast<std::ptrdiff_t>(i * d));
  auto scaled = [d](std::vector<int> v) {
    for (auto& x : v) x *= static_cast<int>(d);
    return v;
  };
  const auto a_n = scaled(recv_n), a_at = scaled(recv_at), r_n = scaled(send_n), r_at = scaled(send_at);
  mpi_check(MPI_Alltoallv(answers.data(), a_n.data(), a_at.data(), MPI_DOUBLE, received.data(), r_n.data(), r_at.data(), MPI_DOUBLE, comm),
            "MPI_Alltoallv");
  std::vector<double> out(wanted.size() * d);
  for (std::size_t o = 0, at = 0; o < P; ++o)
    for (std::size_t j = 0; j < slot[o].size(); ++j, ++at)
      std::copy_n(received.begin() + static_cast<std::ptrdiff_t>(at * d), d, out.begin() + static_cast<std::ptrdiff_t>(slot[o][j] * d));
  return out;
}

}  // namespace lmtopo::geometry
