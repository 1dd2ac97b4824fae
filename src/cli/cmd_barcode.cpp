// `lmtopo barcode`: zigzag barcodes of a filtration file (design.md contract 3).
#include <ostream>
#include <iostream>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "io/fzz_format.hpp"
#include "io/work_manifest.hpp"
#include "mpi/collective.hpp"
#include "stages/reduction_report.hpp"
#include "topology/reducers.hpp"
#include "topology/zigzag.hpp"

namespace lmtopo::cli {
namespace {

int run_barcode(const po::variables_map& vm, const std::vector<std::string>&) {
  const std::string format = vm["format"].as<std::string>();
  if (format != "fzz") throw InputError("--format: expected 'fzz', got '" + format + "'");
  const std::string reducer = vm["reducer"].as<std::string>();
  bool known = false;
  for (const auto& n : topology::reducer_names()) known = known || n == reducer;
  if (!known) throw InputError("--reducer: expected twist, chunk or distributed, got '" + reducer + "'");
  const std::string dualize = dualize_option(vm);
  const std::string input = vm["input"].as<std::string>();
  const std::string output = vm["output"].as<std::string>();
  const bool benchmark = vm.count("benchmark") > 0;
  const long long pivot_chunk = vm["pivot-chunk"].as<long long>();
  if (pivot_chunk < 0) throw InputError("--pivot-chunk: expected 0 (one block per rank) or a chunk size >= 1");
  if (pivot_chunk != 0 && reducer != "distributed")
    throw InputError("--pivot-chunk: only the distributed reducer deals pivots to ranks (got --reducer " + reducer + ")");

  topology::ConeMatrix cone;
  mpi::on_root(MPI_COMM_WORLD, [&] {
    const io::FzzFile file = io::read_fzz_file(input);
    try {
      cone = topology::build_cone_matrix(file.ops);
    } catch (const topology::InvalidZigzag& e) {
      throw InputError(input + ":" + std::to_string(file.line_of_op(e.op_index)) +
                       ": invalid zigzag: " + e.reason);
    }
  });

  if (reducer == "distributed") mpi::ensure_initialized();
  std::vector<topology::ReductionStepStats> stats;
  const auto pairs = topology::reduce_by_name_releasing(reducer, &cone.matrix, MPI_COMM_WORLD, vm["threads"].as<int>(),
                                              benchmark ? &stats : nullptr,
                                                        topology::resolve_dualize(dualize, cone.matrix.num_columns()),
                                                        pivot_chunk);
  if (benchmark) stages::print_reduction_benchmark(stats, MPI_COMM_WORLD, std::cout);
  mpi::on_root(MPI_COMM_WORLD, [&] {
    const auto bars = topology::read_out_bars(cone, pairs);
    io::write_file_atomically(output, [&](std::ostream& out) { io::write_bars(out, bars); });
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
      "written under a temporary name beside OUT and renamed when complete.";
  c.add_options = [](po::options_description& d) {
    d.add_options()("format", po::value<std::string>()->default_value("fzz"), "input format: fzz")(
        "input", po::value<std::string>()->required(), "zigzag filtration file (positional)")(
        "output,o", po::value<std::string>()->required(), "bar file to write")(
        "reducer", po::value<std::string>()->default_value("twist"),
        "reduction algorithm: twist (serial, clearing), chunk (threads), distributed (MPI ranks)")(
        "threads", po::value<int>()->default_value(2), "threads of the chunk reducer")(
        "pivot-chunk", po::value<long long>()->default_value(0),
        "distributed reducer: rows and columns are dealt to the ranks in chunks of this many consecutive indices, "
        "round robin; 0: one contiguous block per rank (docs/benchmarks.md measures both)")(
        "dualize", po::value<std::string>()->default_value("auto"),
        "true: reduce the anti-transpose (persistent cohomology; the same pairs); false: the boundary matrix; auto: dualize from 400,000 cone columns on (the measured rule, docs/benchmarks.md)")(
        "benchmark", "print per rank and step: time, peak memory, bytes sent/received (distributed reducer)");
  };
  c.positionals = {{"input", 1}};
  c.run = run_barcode;
  return c;
}

}  // namespace lmtopo::cli
