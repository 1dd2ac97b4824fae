// `lmtopo barcode`: zigzag barcodes of a filtration file (design.md contract 3).
#include <fstream>
#include <iomanip>
#include <iostream>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "io/fzz_format.hpp"
#include "mpi/collective.hpp"
#include "topology/reducers.hpp"
#include "topology/zigzag.hpp"

namespace lmtopo::cli {
namespace {

void print_benchmark(const std::vector<topology::ReductionStepStats>& mine, std::ostream& out) {
  if (!mpi::initialized()) {
    out << "# benchmark: serial reducer, no per-rank table\n";
    return;
  }
  // Gather every rank's rows on rank 0 as flat doubles.
  const int nfields = 9;
  std::vector<double> flat;
  for (const auto& r : mine)
    flat.insert(flat.end(), {double(r.rank), double(r.dim), double(r.round), r.seconds, double(r.peak_rss_kib),
                             double(r.bytes_sent), double(r.bytes_received), double(r.columns_in),
                             double(r.columns_forwarded)});
  const int size = mpi::size(), me = mpi::rank();
  int count = static_cast<int>(flat.size());
  std::vector<int> counts(static_cast<std::size_t>(size)), displs(static_cast<std::size_t>(size), 0);
  mpi::check(MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Gather");
  std::vector<double> all;
  if (me == 0) {
    int total = 0;
    for (int r = 0; r < size; ++r) displs[static_cast<std::size_t>(r)] = total, total += counts[static_cast<std::size_t>(r)];
    all.resize(static_cast<std::size_t>(total));
  }
  mpi::check(MPI_Gatherv(flat.data(), count, MPI_DOUBLE, all.data(), counts.data(), displs.data(), MPI_DOUBLE, 0,
                         MPI_COMM_WORLD),
             "MPI_Gatherv");
  if (me != 0) return;
  out << "# benchmark: one row per rank and step (dimension, forwarding round)\n"
      << "rank  dim  round    seconds  peak_rss_MiB  bytes_sent  bytes_recv  cols_in  cols_fwd\n";
  for (std::size_t i = 0; i + nfields <= all.size(); i += nfields) {
    out << std::setw(4) << all[i] << std::setw(5) << all[i + 1] << std::setw(7) << all[i + 2] << std::setw(11)
        << std::fixed << std::setprecision(6) << all[i + 3] << std::setw(14) << std::setprecision(1)
        << all[i + 4] / 1024.0 << std::setprecision(0) << std::setw(12) << all[i + 5] << std::setw(12) << all[i + 6]
        << std::setw(9) << all[i + 7] << std::setw(10) << all[i + 8] << "\n";
  }
}

int run_barcode(const po::variables_map& vm, const std::vector<std::string>&) {
  const std::string format = vm["format"].as<std::string>();
  if (format != "fzz") throw InputError("--format: expected 'fzz', got '" + format + "'");
  const std::string reducer = vm["reducer"].as<std::string>();
  bool known = false;
  for (const auto& n : topology::reducer_names()) known = known || n == reducer;
  if (!known) throw InputError("--reducer: expected twist, chunk or distributed, got '" + reducer + "'");
  const std::string input = vm["input"].as<std::string>();
  const std::string output = vm["output"].as<std::string>();
  const bool benchmark = vm.count("benchmark") > 0;

  topology::ConeMatrix cone;
  mpi::on_root(MPI_COMM_WORLD, [&] {
    const io::FzzFile file = io::read_fzz_file(input);
    try {
      cone = topology::build_cone_matrix(file.ops);
    } catch (const topology::InvalidZigzag& e) {
      throw InputError(input + ":" + std::to_string(file.line_of_op[static_cast<std::size_t>(e.op_index)]) +
                       ": invalid zigzag: " + e.reason);
    }
  });

  if (reducer == "distributed") mpi::ensure_initialized();
  std::vector<topology::ReductionStepStats> stats;
  const auto pairs = topology::reduce_by_name(reducer, &cone.matrix, MPI_COMM_WORLD, vm["threads"].as<int>(),
                                              benchmark ? &stats : nullptr);
  if (benchmark) print_benchmark(stats, std::cout);
  mpi::on_root(MPI_COMM_WORLD, [&] {
    const auto bars = topology::read_out_bars(cone, pairs);
    const std::string tmp = output + ".tmp";
    {
      std::ofstream out(tmp);
      if (!out) throw RuntimeFailure(output + ": cannot write");
      io::write_bars(out, bars);
      out.flush();
      if (!out) throw RuntimeFailure(output + ": write failed");
    }
    if (std::rename(tmp.c_str(), output.c_str()) != 0) throw RuntimeFailure(output + ": cannot rename from " + tmp);
  });
  return 0;
}

}  // namespace

Command make_barcode_command() {
  Command c;
  c.name = "barcode";
  c.summary = "zigzag barcode of a filtration file (FastZigzag format), serial or distributed";
  c.usage = "[mpirun -n P] lmtopo barcode --format fzz IN -o OUT [--reducer twist|chunk|distributed] [--benchmark]";
  c.description =
      "Reads a simplex-wise zigzag filtration (optional first line with the number of operations, then one "
      "operation a line, `i v0 v1 ...` or `d v0 v1 ...`), builds the FastZigzag cone matrix and reduces it "
      "with the named algorithm; all give identical bars. OUT gets one bar a line, `p b d`: homology "
      "dimension and the closed interval of 1-based operation indices. Bars alive after the last operation "
      "close at m, the number of operations. An invalid filtration exits 2 naming the line. The output is "
      "written under OUT.tmp and renamed when complete.";
  c.add_options = [](po::options_description& d) {
    d.add_options()("format", po::value<std::string>()->default_value("fzz"), "input format: fzz")(
        "input", po::value<std::string>()->required(), "zigzag filtration file (positional)")(
        "output,o", po::value<std::string>()->required(), "bar file to write")(
        "reducer", po::value<std::string>()->default_value("twist"),
        "reduction algorithm: twist (serial, clearing), chunk (threads), distributed (MPI ranks)")(
        "threads", po::value<int>()->default_value(2), "threads of the chunk reducer")(
        "benchmark", "print per rank and step: time, peak memory, bytes sent/received (distributed reducer)");
  };
  c.positionals = {{"input", 1}};
  c.run = run_barcode;
  return c;
}

}  // namespace lmtopo::cli
