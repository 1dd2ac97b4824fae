// Gram-matrix throughput of the sweep's PETSc path (MatMatTransposeMult of a MATMPIDENSE n x d
// representation with itself, float64) and the CKA path in both Gram precisions, against the BLAS
// GEMM peak of the same ranks measured in the same run (cblas_sgemm and cblas_dgemm of the same
// shape on every rank at once). Prints GFLOP/s and ratios.
// Usage: [mpirun -n P] bench_gram [N] [D] [REPEATS]
#include <cblas.h>
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <vector>

#include "geometry/distributed_similarity.hpp"

namespace {
double seconds_of(const std::function<void()>& f, int repeats) {
  f();  // warm-up
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < repeats; ++i) f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / repeats;
}
}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 2000, d = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 512;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
  const double flops = 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(d);
  std::vector<double> x(n * d);
  std::mt19937 rng(1);
  std::normal_distribution<double> normal;
  for (auto& v : x) v = normal(rng);
  // The GEMM peak of the cores this run uses: every rank runs the same GEMM at the same time (mpirun
  // binds each rank to a core, so one rank's BLAS sees one core); aggregate rate = P x flops / the
  // slowest rank's time.
  double t_sgemm = 0, t_dgemm = 0;
  {
    std::vector<float> xf(x.begin(), x.end()), cf(n * n);
    std::vector<double> cd(n * n);
    MPI_Barrier(MPI_COMM_WORLD);
    double t = seconds_of([&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(n), static_cast<int>(d), 1.0f,
                  xf.data(), static_cast<int>(d), xf.data(), static_cast<int>(d), 0.0f, cf.data(), static_cast<int>(n));
    }, repeats);
    MPI_Allreduce(&t, &t_sgemm, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    t = seconds_of([&] {
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(n), static_cast<int>(d), 1.0,
                  x.data(), static_cast<int>(d), x.data(), static_cast<int>(d), 0.0, cd.data(), static_cast<int>(n));
    }, repeats);
    MPI_Allreduce(&t, &t_dgemm, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    t_sgemm /= size;  // as the time of one GEMM at the aggregate rate
    t_dgemm /= size;
  }
  double t_petsc = 0;
  // The sweep's functions take each rank's own rows of a representation.
  const double* x_rows = nullptr;
  {
    lmtopo::geometry::PetscScope petsc;
    x_rows = x.data() + lmtopo::geometry::petsc_rows(MPI_COMM_WORLD, n).row0 * d;
    MPI_Barrier(MPI_COMM_WORLD);
    t_petsc = seconds_of([&] {
      lmtopo::geometry::RowBlock b;
      (void)lmtopo::geometry::cosine_rows(MPI_COMM_WORLD, x_rows, n, x_rows, n, d, b);
      MPI_Barrier(MPI_COMM_WORLD);
    }, repeats);
  }
  // The CKA path itself (one representation: its Gram product, centring and the inner product), in
  // both Gram precisions; the Gram product is the n^2 d part, the rest is O(n^2).
  double t_cka64 = 0, t_cka32 = 0;
  {
    lmtopo::geometry::PetscScope petsc;
    const std::vector<const double*> reps{x_rows};
    const std::vector<std::size_t> dims{d};
    for (auto precision : {lmtopo::geometry::GramPrecision::float64, lmtopo::geometry::GramPrecision::float32}) {
      MPI_Barrier(MPI_COMM_WORLD);
      const double t = seconds_of([&] {
        (void)lmtopo::geometry::cka_matrix(MPI_COMM_WORLD, reps, dims, n, lmtopo::geometry::HsicEstimator::biased, nullptr,
                                           precision);
        MPI_Barrier(MPI_COMM_WORLD);
      }, repeats);
      (precision == lmtopo::geometry::GramPrecision::float64 ? t_cka64 : t_cka32) = t;
    }
  }
  if (rank == 0) {
    const double sg = flops / t_sgemm / 1e9, dg = flops / t_dgemm / 1e9, pg = flops / t_petsc / 1e9;
    const double c64 = flops / t_cka64 / 1e9, c32 = flops / t_cka32 / 1e9;
    std::printf("n=%zu d=%zu ranks=%d: sgemm %.1f GFLOP/s, dgemm %.1f GFLOP/s (all ranks at once, aggregate); sweep Gram (PETSc, float64, "
                "incl. row normalisation and copies) %.1f GFLOP/s = %.2f of dgemm, %.2f of sgemm peak\n",
                n, d, size, sg, dg, pg, pg / dg, pg / sg);
    std::printf("  CKA of one representation (Gram + centring + inner product), Gram flops per second: float64 %.1f "
                "GFLOP/s = %.2f of sgemm peak; float32 Grams %.1f GFLOP/s = %.2f of sgemm peak\n",
                c64, c64 / sg, c32, c32 / sg);
  }
  MPI_Finalize();
  return 0;
}
