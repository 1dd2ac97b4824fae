// Representation-similarity mathematics on plain row-major float64 arrays: no MPI, no HDF5. Every
// function that scans a similarity or distance matrix takes a *block of its rows* (rows row0 ..
// row0+rows-1 of an n x n matrix) and returns sums or counts that add up over blocks, so the same
// code serves one process (one block: all rows) and the PETSc-distributed path (each rank its rows).
// Estimators and conventions are documented in docs/methods.md ("Similarity sweeps").
#pragma once
#include <array>
#include <cstddef>
#include <string>
#include <vector>

namespace lmtopo::geometry {

// ---- dense helpers (BLAS) ----
// out[rows x m] = A[row0 .. row0+rows) (n x d) times B^T (m x d): one block of rows of A B^T.
void gemm_rows_abt(const double* a, std::size_t row0, std::size_t rows, const double* b, std::size_t m, std::size_t d,
                   double* out);
// Rows scaled to unit Euclidean norm (a zero row stays zero).
std::vector<double> unit_rows(const double* x, std::size_t n, std::size_t d);
// NaN or infinity anywhere -> InputError naming `what` and the first bad row (x's rows are rows
// row0, row0 + 1, ... of the whole).
void require_finite(const double* x, std::size_t n, std::size_t d, const std::string& what, std::size_t row0 = 0);

// ---- linear CKA via centred Gram matrices ----
// biased: HSIC_1 = tr(KHLH)/(n-1)^2 (Gretton et al.) -> cosine of double-centred Grams.
// unbiased: HSIC_u of Song et al. (2012) -> cosine of U-centred Grams (Szekely & Rizzo's
// U-centring, zero diagonal); can be negative; needs n >= 4.
enum class HsicEstimator { biased, unbiased };
const char* estimator_name(HsicEstimator e);

// Centres rows [row0, row0+rows) of a Gram matrix K (n x n, symmetric) in place, given the full
// row sums and diagonal of K.
void centre_gram_rows(double* k_rows, std::size_t row0, std::size_t rows, std::size_t n, const std::vector<double>& row_sums,
                      const std::vector<double>& diagonal, HsicEstimator e);
// CKA from the matrix of Frobenius inner products M(a,b) = <Kc_a, Kc_b> of centred Grams:
// M(a,b)/sqrt(M(a,a) M(b,b)). A representation whose centred Gram is zero (constant, or a
// single repeated point) has no similarity structure: its row and column are 0, never NaN, and it
// is listed in `degenerate`.
std::vector<double> cka_from_inner_products(const std::vector<double>& m, std::size_t r, std::vector<std::size_t>* degenerate);

// The same inner products without forming any n x n matrix, from the column-centred representations
// Xc (n x d) — U-centring and double-centring ignore a constant added to every row. For K = Xc Xcᵀ,
// L = Yc Ycᵀ: biased, <HKH, HLH> = ‖Xcᵀ Yc‖²_F; unbiased (Song et al. 2012, eq. 5, times n(n-3)),
// tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1)/((n-1)(n-2)) - 2/(n-2)·1ᵀK̃L̃1 with K̃ = K - diag(K), where
// tr(K̃L̃) = ‖Xcᵀ Yc‖²_F - Σᵢ aᵢbᵢ (aᵢ = ‖xᵢ‖², bᵢ = ‖yᵢ‖²) and K̃1 = Xc(Xcᵀ1) - a.
struct FeatureCrossTerms {
  double cross_frobenius2 = 0;  // ‖Xcᵀ Yc‖²_F
  double norms_dot = 0;         // Σᵢ aᵢ bᵢ
  double row_sums_dot = 0;      // (K̃1)ᵀ(L̃1)
  double total_x = 0, total_y = 0;  // 1ᵀK̃1, 1ᵀL̃1
};
double centred_gram_inner_product(const FeatureCrossTerms& t, std::size_t n, HsicEstimator e);

// Which products CKA among R representations of n rows is computed from (docs/methods.md, "CKA
// method"): `gram`, the centred n x n Gram matrices (about 2n²(Σd + R²) flops, R·n² doubles held
// over the ranks); `features`, the d_p x d_q cross-products of the column-centred representations
// (about n(Σd)² flops, no n x n matrix). `auto` takes features when they need fewer flops, or when
// the Grams would take more than `gram_bytes_limit` per rank over `ranks` ranks.
enum class CkaMethod { gram, features };
CkaMethod choose_cka_method(const std::string& name, std::size_t n, const std::vector<std::size_t>& dims, double ranks,
                            double gram_bytes_limit);
const char* cka_method_name(CkaMethod m);
// Throws InputError naming --cka-method unless `name` is auto, gram or features (checked before any
// work; choose_cka_method checks it again where it is used).
void require_cka_method_name(const std::string& name);

// Serial reference path: CKA of two representations with the same rows (n x dx, n x dy).
double cka_linear(const double* x, std::size_t dx, const double* y, std::size_t dy, std::size_t n, HsicEstimator e);

// ---- statistics of paired rows (row i of X and row i of Y: the same prompt) ----
struct PairedCosine {
  double sum_cos = 0, sum_cos2 = 0, sum_angular = 0;  // angular: arccos(cos)/pi
  std::size_t count = 0;
  void add(const PairedCosine& o);
};
PairedCosine paired_cosine(const double* x, const double* y, std::size_t row0, std::size_t rows, std::size_t d);
// cos(x_i, y_i) of each of the block's rows (clamped to [-1, 1]; 0 for a zero vector).
std::vector<double> paired_cosine_rows(const double* x, const double* y, std::size_t row0, std::size_t rows, std::size_t d);

// ---- scans over a block of rows of a similarity matrix S (n x n) ----
// Translation retrieval: row i (a query) finds column i (its parallel sentence) among all n
// candidates; the rank of the answer counts candidates with a higher similarity, and equal ones
// with a lower index. Returns hits for k = 1 and k = 5.
std::array<std::size_t, 2> retrieval_hits(const double* s_rows, std::size_t row0, std::size_t rows, std::size_t n);
// Each row's rank of its answer (0: found first), for per-query statistics.
std::vector<std::size_t> retrieval_ranks(const double* s_rows, std::size_t row0, std::size_t rows, std::size_t n);
// Indices of the k most similar columns of each row, the row itself excluded (ties by index).
std::vector<std::size_t> top_k_rows(const double* s_rows, std::size_t row0, std::size_t rows, std::size_t n, std::size_t k);
// Mutual k-NN alignment (Huh et al.): sum over the block's rows of |N_X(i) ∩ N_Y(i)| / k.
double mutual_knn_sum(const std::vector<std::size_t>& nx, const std::vector<std::size_t>& ny, std::size_t rows, std::size_t k);
// The same per row: |N_X(i) ∩ N_Y(i)| / k of each of the block's rows.
std::vector<double> mutual_knn_scores(const std::vector<std::size_t>& nx, const std::vector<std::size_t>& ny, std::size_t rows,
                                      std::size_t k);
// Language-structure sums over all sentence vectors of all languages (rows of the cosine matrix):
// same language (i != j); translations (same group, different language); and different meaning
// in different languages. LRDS = mean(same language) - mean(different meaning, different language);
// SADS = mean(translations) - mean(different meaning, different language).
struct AlignmentSums {
  double same_lang = 0, translation = 0, other = 0;
  std::size_t n_same_lang = 0, n_translation = 0, n_other = 0;
  void add(const AlignmentSums& o);
  double lrds() const;
  double sads() const;
};
AlignmentSums alignment_sums(const double* s_rows, std::size_t row0, std::size_t rows, std::size_t n,
                             const std::vector<int>& language, const std::vector<long long>& group);

// ---- intrinsic dimension ----
// TwoNN (Facco et al. 2017) as scikit-dimension fits it: mu = r2/r1 of each point's two nearest
// neighbours (Euclidean), sorted; the largest `discard` fraction dropped; least squares through the
// origin of -log(1 - i/N) on log mu. Points with r1 = 0 (duplicates) are left out and counted.
// Takes the block's ratios: mu of rows [row0, row0+rows) from their squared distances to all n.
std::vector<double> twonn_ratios(const double* sqdist_rows, std::size_t row0, std::size_t rows, std::size_t n,
                                 std::size_t* duplicates);
// The same ratios by row, NaN for a row left out (r1 = 0).
std::vector<double> twonn_ratio_rows(const double* sqdist_rows, std::size_t row0, std::size_t rows, std::size_t n);
double twonn_fit(std::vector<double> mu, double discard = 0.1);
// Squared Euclidean distances of rows [row0, row0+rows) of X to all n rows.
void squared_distance_rows(const double* x, std::size_t n, std::size_t d, std::size_t row0, std::size_t rows, double* out);

}  // namespace lmtopo::geometry
