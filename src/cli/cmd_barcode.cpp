// `lmtopo barcode`: zigzag barcodes of a filtration file (design.md contract 3).
#include <chrono>
#include <iostream>
#include <memory>
#include <ostream>
#include <string_view>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "core/memory.hpp"
#include "io/concatenated_file.hpp"
#include "io/fzz_format.hpp"
#include "io/mapped_file.hpp"
#include "io/work_manifest.hpp"
#include "mpi/collective.hpp"
#include "mpi/sort.hpp"
#include "stages/reduction_report.hpp"
#include "topology/cone_distributed.hpp"
#include "topology/reducers.hpp"
#include "topology/zigzag.hpp"

namespace lmtopo::cli {
namespace {

long long exclusive_sum(long long mine, MPI_Comm comm) {
  long long before = 0;
  mpi::check(MPI_Exscan(&mine, &before, 1, MPI_LONG_LONG, MPI_SUM, comm), "MPI_Exscan");
  return mpi::rank(comm) == 0 ? 0 : before;
}

struct DistributedRun {
  std::string dualize;
  long long pivot_chunk = 0;
  std::string column_order;
  topology::StepMethods step_methods;
  bool benchmark = false;
  int top_ranks = -1;  // hybrid dualization: ranks reducing the top dimension at once with the others (0: after; -1: auto)
};

// The operations of the lines that start in this rank's share of the file's bytes, and the global
// index of the first one.
struct OwnLines {
  io::FzzFile file;
  long long first_op = 0;
};

OwnLines read_own_lines(const std::string& input, MPI_Comm comm) {
  const int rank = mpi::rank(comm), size = mpi::size(comm);
  std::unique_ptr<io::MappedFile> mapped;
  mpi::on_all(comm, [&] { mapped = std::make_unique<io::MappedFile>(input, "zigzag filtration file"); });
  const std::string_view text(reinterpret_cast<const char*>(mapped->data()), mapped->size());
  const io::FzzSliceScan scan = io::scan_fzz_slice(text, rank, size);
  const long long lines_before = exclusive_sum(scan.lines, comm);
  const bool content_before = exclusive_sum(scan.has_content ? 1 : 0, comm) > 0;
  OwnLines own;
  long long declared = -1;
  mpi::on_all(comm, [&] {
    own.file = io::read_fzz_slice(text.substr(scan.begin, scan.end - scan.begin), input, lines_before + 1, content_before, &declared);
  });
  long long operations = static_cast<long long>(own.file.ops.size());
  own.first_op = exclusive_sum(operations, comm);
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, &operations, 1, MPI_LONG_LONG, MPI_SUM, comm), "MPI_Allreduce");
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, &declared, 1, MPI_LONG_LONG, MPI_MAX, comm), "MPI_Allreduce");
  mpi::on_all(comm, [&] { io::check_declared_count(declared, operations, input); });
  return own;
}

// The distributed reducer from this rank's operations on: builds the cone columns of its own
// operations and sends each to the rank that reduces it (topology/cone_distributed.hpp); the bars
// are sorted and written by all ranks. `phases` holds the phases so far, the last ending at `t`.
void build_reduce_write_distributed(OwnLines own, const std::string& input, const std::string& output,
                                    const DistributedRun& run, std::vector<stages::PhaseStats> phases, double t) {
  const MPI_Comm comm = MPI_COMM_WORLD;
  topology::DistributedCone cone;
  std::string failure;
  long long line = 0;
  try {
    const int top_ranks = run.top_ranks >= 0 ? run.top_ranks : topology::auto_top_ranks(mpi::size());
    cone = topology::build_cone_distributed(own.file.ops, nullptr, 0, comm, run.dualize, run.pivot_chunk, top_ranks);
  } catch (const topology::InvalidZigzag& e) {  // raised on every rank alike; the op's reader knows its line
    const topology::Index local = e.op_index - own.first_op;
    if (local >= 0 && local < static_cast<topology::Index>(own.file.ops.size())) line = own.file.line_of_op(local);
    failure = "invalid zigzag: " + e.reason;
  } catch (const std::invalid_argument& e) {
    failure = e.what();
  }
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, &line, 1, MPI_LONG_LONG, MPI_MAX, comm), "MPI_Allreduce");
  mpi::on_all(comm, [&] {
    if (!failure.empty()) throw InputError(input + ":" + (line > 0 ? std::to_string(line) + ":" : std::string()) + " " + failure);
  });
  own.file = {};
  if (run.top_ranks > 0 && cone.dual_ranks == 0)  // said, not silently dropped
    mpi::on_root(comm, [&] {
      std::cerr << "lmtopo barcode: --top-ranks " << run.top_ranks << " not used: "
                << (mpi::size() == 1 ? std::string("one rank")
                                     : std::string("the cone matrix (") + std::to_string(cone.num_columns) + " columns) is reduced " +
                                           topology::duality_name(cone.duality()) + ", not hybrid (auto: hybrid from " +
                                           std::to_string(topology::kDualizeFromColumns) + " columns)")
                << "\n";
    });
  t = stages::record_phase(phases, "cone matrix (own columns)", t);
  std::vector<topology::ReductionStepStats> stats;
  std::vector<topology::ZigzagBar> bars;
  {
    const auto tagged = topology::reduce_and_read_out_local(cone, comm, 0, run.benchmark ? &stats : nullptr, run.column_order,
                                                            run.step_methods);
    bars.reserve(tagged.size());
    for (const auto& b : tagged) bars.push_back(b.bar);
  }
  t = stages::record_phase(phases, "reduction + read-out", t);
  // Sorted and written by all ranks: no rank holds every bar (10^7 operations: 5 M bars, 120 MiB).
  mpi::sort_distributed(bars, comm);
  std::string text;
  io::append_bar_lines(text, bars.data(), bars.data() + bars.size());
  std::vector<topology::ZigzagBar>().swap(bars);
  io::write_concatenated_atomically(output, text, comm);
  stages::record_phase(phases, "sort and write the bars", t);
  if (run.benchmark) {
    stages::print_reduction_benchmark(stats, comm, std::cout);
    stages::print_phase_benchmark(phases, comm, std::cout);
  }
}

// --reducer distributed: no rank holds the whole filtration. Each rank reads the lines that start in
// its share of the file's bytes, and goes on as build_reduce_write_distributed.
void run_barcode_distributed(const std::string& input, const std::string& output, const DistributedRun& run) {
  mpi::ensure_initialized();
  std::vector<stages::PhaseStats> phases;
  const double t = MPI_Wtime();
  OwnLines own = read_own_lines(input, MPI_COMM_WORLD);
  build_reduce_write_distributed(std::move(own), input, output, run, phases,
                                 stages::record_phase(phases, "read own lines", t));
}

// The serial reducers (twist, chunk) on rank 0, from a file it has read whole.
void reduce_serial(io::FzzFile file, const std::string& input, const std::string& output, const std::string& reducer,
                   const po::variables_map& vm, const std::string& dualize, bool benchmark) {
  topology::ConeMatrix cone;
  mpi::on_root(MPI_COMM_WORLD, [&] {
    try {
      cone = topology::build_cone_matrix(file.ops);
    } catch (const topology::InvalidZigzag& e) {
      throw InputError(input + ":" + std::to_string(file.line_of_op(e.op_index)) + ": invalid zigzag: " + e.reason);
    }
  });
  file = {};
  std::vector<topology::ReductionStepStats> stats;
  const auto pairs = topology::reduce_by_name_releasing(reducer, &cone.matrix, MPI_COMM_WORLD, vm["threads"].as<int>(),
                                                        benchmark ? &stats : nullptr,
                                                        topology::resolve_dualize(dualize, cone.matrix.num_columns()));
  if (benchmark) stages::print_reduction_benchmark(stats, MPI_COMM_WORLD, std::cout);
  mpi::on_root(MPI_COMM_WORLD, [&] {
    const auto bars = topology::read_out_bars(cone, pairs);
    io::write_file_atomically(output, [&](std::ostream& out) { io::write_bars(out, bars); });
  });
}

int run_barcode(const po::variables_map& vm, const std::vector<std::string>&) {
  core::map_large_blocks();  // a rank's peak is its share (docs/methods.md, "Large blocks mapped")
  const std::string format = vm["format"].as<std::string>();
  if (format != "fzz") throw InputError("--format: expected 'fzz', got '" + format + "'");
  std::string reducer = vm["reducer"].as<std::string>();
  bool known = reducer == "auto";
  for (const auto& n : topology::reducer_names()) known = known || n == reducer;
  if (!known) throw InputError("--reducer: expected auto, twist, chunk or distributed, got '" + reducer + "'");
  const std::string dualize = dualize_option(vm);
  const std::string input = vm["input"].as<std::string>();
  const std::string output = vm["output"].as<std::string>();
  const bool benchmark = vm.count("benchmark") > 0;
  const long long pivot_chunk = vm["pivot-chunk"].as<long long>();
  if (pivot_chunk < 0) throw InputError("--pivot-chunk: expected 0 (one block per rank) or a chunk size >= 1");
  // The distributed reducer's own options need it named: auto may resolve either way.
  require_distributed_reducer("--pivot-chunk", pivot_chunk != 0, reducer, "deals pivots to ranks");
  const DistributedRun run{dualize, pivot_chunk, column_order_option(vm, reducer), step_methods_option(vm, reducer), benchmark,
                           top_ranks_option(vm, reducer)};
  // auto: the distributed reducer on more than one rank; on one, decided by the operation count once
  // the file is read (below).
  if (reducer == "auto" && mpi::size() > 1) reducer = "distributed";
  if (reducer == "distributed") {
    run_barcode_distributed(input, output, run);
    return 0;
  }
  const auto read_start = std::chrono::steady_clock::now();
  io::FzzFile file;
  mpi::on_root(MPI_COMM_WORLD, [&] { file = io::read_fzz_file(input); });
  if (reducer == "auto") {
    reducer = static_cast<long long>(file.ops.size()) >= topology::kDistributedFromOperations ? "distributed" : "twist";
    if (reducer == "distributed") {  // one process: the distributed path on one rank, from the file read whole
      mpi::ensure_initialized();
      const double t = MPI_Wtime();
      std::vector<stages::PhaseStats> phases;
      stages::record_phase(phases, "read (one process)", t);
      phases.back().seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - read_start).count();
      build_reduce_write_distributed({std::move(file), 0}, input, output, run, phases, t);
      return 0;
    }
  }
  reduce_serial(std::move(file), input, output, reducer, vm, dualize, benchmark);
  return 0;
}

}  // namespace

Command make_barcode_command() {
  Command c;
  c.name = "barcode";
  c.summary = "zigzag barcode of a filtration file (FastZigzag format), serial or distributed";
  c.usage = "[mpirun -n P] lmtopo barcode --format fzz IN -o OUT [--reducer auto|twist|chunk|distributed] [--benchmark]";
  c.description =
      "Reads a simplex-wise zigzag filtration (optional first line with the number of operations, then one "
      "operation a line, `i v0 v1 ...` or `d v0 v1 ...`), builds the FastZigzag cone matrix and reduces it "
      "with the named algorithm; all give identical bars. OUT gets one bar a line, `p b d`: homology "
      "dimension and the closed interval of 1-based operation indices. Bars alive after the last operation "
      "close at m, the number of operations. An invalid filtration exits 2 naming the line. The output is "
      "written under a temporary name beside OUT and renamed when complete. The default reducer, auto, is the "
      "distributed one on more than one rank and from 500,000 operations on, twist below. With the distributed reducer no rank "
      "holds the whole filtration: each reads the lines starting in its share of the file's bytes, builds the "
      "cone columns of its own operations and sends each to the rank that reduces it; rank 0 gathers the bars.";
  c.add_options = [](po::options_description& d) {
    d.add_options()("format", po::value<std::string>()->default_value("fzz"), "input format: fzz")(
        "input", po::value<std::string>()->required(), "zigzag filtration file (positional)")(
        "output,o", po::value<std::string>()->required(), "bar file to write")(
        "reducer", po::value<std::string>()->default_value("auto"),
        "reduction algorithm: twist (serial, clearing), chunk (threads), distributed (MPI ranks); auto: distributed on "
        "more than one rank, with one of its options, or from 500,000 operations on (faster there on one process too: "
        "docs/benchmarks.md), else twist")(
        "threads", po::value<int>()->default_value(2), "threads of the chunk reducer")(
        "pivot-chunk", po::value<long long>()->default_value(0),
        "distributed reducer: rows and columns are dealt to the ranks in chunks of this many consecutive indices, "
        "round robin; 0: one contiguous block per rank (the hybrid's anti-transpose in blocks of equal words), or "
        "where the work lies: the hybrid's top step at its pivots' quantiles, its upper-first bars-1 step with each "
        "half of the rows split over the ranks (docs/methods.md; docs/benchmarks.md measures them)")(
        "column-order", po::value<std::string>()->default_value("auto"), kColumnOrderHelp)(
        "speculate-runs", po::value<long long>()->default_value(0), kSpeculateRunsHelp)("row-split", kRowSplitHelp)("no-row-loans", kNoRowLoansHelp)(
        "top-ranks", po::value<std::string>()->default_value("auto"), kTopRanksHelp)(
        "dualize", po::value<std::string>()->default_value("auto"),
        kDualizeHelp)(
        "benchmark", "print per rank and step: time, peak memory, bytes sent/received (distributed reducer)");
  };
  c.positionals = {{"input", 1}};
  c.run = run_barcode;
  return c;
}

}  // namespace lmtopo::cli
