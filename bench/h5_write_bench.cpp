// Collective write bandwidth of the HDF5 store: every rank writes its share of the prompts of an
// activation tensor [points, prompts, hidden] (float32) with write_slab, as extract does.
// Usage: [mpirun -n P] bench_h5_write OUT.h5 MIB [deflate 0|1]; prints seconds and MiB/s.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "io/h5store.hpp"
#include "mpi/collective.hpp"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_h5_write OUT.h5 MIB [deflate]\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  const std::string path = argv[1];
  const double mib = std::atof(argv[2]);
  const bool deflate = argc > 3 && std::string(argv[3]) == "1";
  const int rank = lmtopo::mpi::rank(), size = lmtopo::mpi::size();
  const std::uint64_t points = 33, hidden = 1024;
  const auto prompts = static_cast<std::uint64_t>(mib * 1024 * 1024 / (4.0 * static_cast<double>(points * hidden)));
  const std::uint64_t per = (prompts + static_cast<std::uint64_t>(size) - 1) / static_cast<std::uint64_t>(size);
  const std::uint64_t lo = std::min(prompts, per * static_cast<std::uint64_t>(rank)), count = std::min(prompts, lo + per) - lo;
  std::vector<float> slab(points * count * hidden);
  for (std::size_t i = 0; i < slab.size(); ++i) slab[i] = static_cast<float>((i * 2654435761u) % 1000003u) * 1e-3f;
  MPI_Barrier(MPI_COMM_WORLD);
  const auto t0 = std::chrono::steady_clock::now();
  {
    lmtopo::io::H5Output out(path, MPI_COMM_WORLD, "activations/1", nlohmann::json::object());
    out.create_numeric("/activations/bench", lmtopo::io::DType::f32, {points, prompts, hidden}, deflate);
    out.write_slab("/activations/bench", 1, lo, count, slab.data());
    out.commit();
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double written = 4.0 * static_cast<double>(points * prompts * hidden) / (1024.0 * 1024.0);
  if (rank == 0) std::printf("ranks %d deflate %d MiB %.1f seconds %.3f MiB/s %.1f\n", size, deflate ? 1 : 0, written, s, written / s);
  MPI_Finalize();
  return 0;
}
