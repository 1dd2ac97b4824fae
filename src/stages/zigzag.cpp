#include "stages/zigzag.hpp"

#include <algorithm>
#include <functional>
#include <cmath>
#include <map>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/memory.hpp"
#include "core/progress.hpp"
#include "core/permutation.hpp"
#include "io/fzz_format.hpp"
#include "io/h5store.hpp"
#include "io/work_manifest.hpp"
#include "mpi/collective.hpp"
#include "topology/cone_distributed.hpp"
#include "topology/flag_complex.hpp"
#include "topology/intersection_zigzag.hpp"
#include "topology/knn.hpp"
#include "topology/knn_cuda.hpp"
#include "topology/layer_summaries.hpp"
#include "topology/reducers.hpp"
#include "stages/reduction_report.hpp"

namespace lmtopo::stages {
namespace {

// Simplices of one layer as [n_vertices, v0, v1, ...] runs of uint32.
std::vector<std::uint32_t> pack(const std::vector<topology::Simplex>& simplices) {
  std::vector<std::uint32_t> out;
  for (const auto& s : simplices) {
    out.push_back(static_cast<std::uint32_t>(s.size()));
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}

std::size_t unpacked_count(const std::vector<std::uint32_t>& data) {
  std::size_t count = 0;
  for (std::size_t pos = 0; pos < data.size(); pos += 1 + data[pos]) ++count;
  return count;
}

std::vector<topology::Simplex> unpack(const std::uint32_t* data, std::size_t n) {
  std::vector<topology::Simplex> out;
  for (std::size_t pos = 0; pos < n;) {
    const std::size_t len = data[pos];
    out.emplace_back(data + pos + 1, data + pos + 1 + len);
    pos += 1 + len;
  }
  return out;
}

// The layers rank r computes: a contiguous block, so that with the distributed reducer each rank
// makes the zigzag operations of its own layers (it needs one layer from each neighbour only). Rank 0
// gets the largest share (it reports the progress), and with more ranks than layers the last ranks
// get none.
std::pair<int, int> layer_block(int L, int size, int r) {
  auto start = [&](int q) { return static_cast<int>((static_cast<long long>(L) * q + size - 1) / size); };
  return {start(r), start(r + 1)};
}
int layer_owner(int l, int L, int size) {
  int r = 0;
  while (layer_block(L, size, r).second <= l) ++r;
  return r;
}

// The zigzag operations of this rank's layers (`mine`: its block's packed complexes, in order),
// with the layer before and after the block from the neighbouring ranks. Collective.
topology::ZigzagStream own_zigzag_segment(const std::vector<std::pair<int, std::vector<std::uint32_t>>>& mine, int L, MPI_Comm comm) {
  const int rank = mpi::rank(comm), size = mpi::size(comm);
  const auto [a, b] = layer_block(L, size, rank);
  std::vector<std::vector<std::uint32_t>> out(static_cast<std::size_t>(size));
  if (a < b && a > 0) out[static_cast<std::size_t>(layer_owner(a - 1, L, size))] = mine.front().second;
  if (a < b && b < L) out[static_cast<std::size_t>(layer_owner(b, L, size))] = mine.back().second;
  const auto in = mpi::exchange_blocks(comm, std::move(out), MPI_UINT32_T);
  auto neighbour = [&](int l) {
    const auto& words = in[static_cast<std::size_t>(layer_owner(l, L, size))];
    return unpack(words.data(), words.size());
  };
  const std::vector<topology::Simplex> before = a < b && a > 0 ? neighbour(a - 1) : std::vector<topology::Simplex>{};
  const std::vector<topology::Simplex> after = a < b && b < L ? neighbour(b) : std::vector<topology::Simplex>{};
  std::vector<std::vector<topology::Simplex>> own;
  for (const auto& [l, data] : mine) own.push_back(unpack(data.data(), data.size()));
  std::vector<const std::vector<topology::Simplex>*> pointers;
  for (const auto& layer : own) pointers.push_back(&layer);
  return topology::intersection_zigzag_segment(a > 0 ? &before : nullptr, pointers, b < L ? &after : nullptr, a, L);
}

// `--fzz-output` from every rank's operations: rank 0 writes its own, then each rank's in turn, so
// that it never holds more than one rank's. Collective.
void write_fzz_gathered(const std::string& path, const topology::ZigzagOpList& mine, MPI_Comm comm) {
  const int rank = mpi::rank(comm), size = mpi::size(comm);
  long long total = static_cast<long long>(mine.size());
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, &total, 1, MPI_LONG_LONG, MPI_SUM, comm), "MPI_Allreduce");
  auto packed = [](const topology::ZigzagOpList& ops) {  // [insert, size, vertices...] per op
    std::vector<std::uint32_t> words;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      words.insert(words.end(), {ops.is_insert(i) ? 1u : 0u, static_cast<std::uint32_t>(ops.simplex(i).size())});
      words.insert(words.end(), ops.simplex(i).begin(), ops.simplex(i).end());
    }
    return words;
  };
  if (rank != 0) {
    const auto words = packed(mine);
    const std::uint64_t count = words.size();
    mpi::send_chunked(&count, 1, MPI_UINT64_T, 0, 77, comm);
    mpi::send_chunked(words.data(), words.size(), MPI_UINT32_T, 0, 78, comm);
  }
  mpi::on_root(comm, [&] {
    int received = 1;  // ranks whose operations rank 0 has taken; the rest are drained on failure
    auto receive = [&](int r) {
      std::uint64_t count = 0;
      mpi::recv_chunked(&count, 1, MPI_UINT64_T, r, 77, comm);
      std::vector<std::uint32_t> words(static_cast<std::size_t>(count));
      mpi::recv_chunked(words.data(), words.size(), MPI_UINT32_T, r, 78, comm);
      return words;
    };
    try {
      io::write_file_atomically(path, [&](std::ostream& text) {
        text << total << '\n';
        io::write_fzz_lines(text, mine);
        for (; received < size; ++received) {
          const auto words = receive(received);
          topology::ZigzagOpList ops;
          for (std::size_t at = 0; at < words.size(); at += 2 + words[at + 1])
            ops.push_back(words[at] != 0, words.data() + at + 2, words.data() + at + 2 + words[at + 1]);
          io::write_fzz_lines(text, ops);
        }
      });
    } catch (...) {
      for (; received < size; ++received) receive(received);
      throw;
    }
  });
}

// The seed of null draw `draw`'s permutation of layer `layer`'s rows.
unsigned long long null_layer_seed(unsigned long long seed, std::size_t draw, int layer) {
  return (seed * 1000003ull + draw) * 1000003ull + static_cast<unsigned long long>(layer);
}

using RunRows = std::function<std::vector<std::size_t>(std::size_t, int)>;

// The permuted-prompts null: per draw and layer the /activations row of each vertex, and per homology
// dimension the draws' Betti and S̄ curves (rank 0's values; every rank takes part).
void write_null(io::H5Output& out, const RunRows& run_rows, std::size_t first_null_run, const std::vector<std::vector<topology::PositionBar>>& bars,
                int L, const ZigzagOptions& o, bool root) {
  const auto D = static_cast<std::uint64_t>(o.null_draws), Lu = static_cast<std::uint64_t>(L);
  std::vector<long long> rows;
  for (std::size_t d = 0; d < D; ++d)
    for (int l = 0; l < L; ++l)
      for (auto r : run_rows(first_null_run + d, l)) rows.push_back(static_cast<long long>(r));
  const std::uint64_t m = rows.size() / std::max<std::uint64_t>(1, D * Lu);
  out.create_numeric("/null/prompts", io::DType::i64, {D, Lu, m}, false);
  out.write_rows("/null/prompts", 0, root ? D : 0, rows.data());
  out.set_attribute("/null/prompts", "seed", static_cast<long long>(o.null_seed));
  out.set_attribute("/null/prompts", "selection",
                    "per draw and layer, subset 0's rows of /activations in a Fisher-Yates permutation (mt19937_64, seed of (seed, draw, layer))");
  for (int p : o.homology_dims) {
    std::vector<double> betti, sbar;
    if (root)
      for (const auto& b : bars) {
        const auto s = topology::summarize_layers(topology::to_layer_bars(b, L, p), L, p);
        betti.insert(betti.end(), s.betti.begin(), s.betti.end());
        sbar.insert(sbar.end(), s.avg_similarity.begin(), s.avg_similarity.end());
      }
    const std::string g = "/null/h" + std::to_string(p) + "/";
    out.create_numeric(g + "betti", io::DType::f64, {D, Lu}, false);
    out.write_rows(g + "betti", 0, root ? D : 0, betti.data());
    out.create_numeric(g + "avg_similarity", io::DType::f64, {D, Lu}, false);
    out.write_rows(g + "avg_similarity", 0, root ? D : 0, sbar.data());
  }
}

}  // namespace

ZigzagSummary run_zigzag(const ZigzagOptions& o, MPI_Comm comm) {
  mpi::ensure_initialized();
  core::map_large_blocks();  // a rank's peak is its share (docs/methods.md, "Large blocks mapped")
  const int rank = mpi::rank(comm), size = mpi::size(comm);
  const std::string dataset = "/activations/" + o.hook;
  const topology::Metric metric = [&] {
    try {
      return topology::metric_from_name(o.metric);
    } catch (const std::invalid_argument& e) {
      throw InputError(std::string("--metric: ") + e.what());
    }
  }();
  topology::KnnOptions knn;
  knn.metric = metric;
  try {
    knn.precision = topology::knn_precision_from_name(o.knn_precision);
  } catch (const std::invalid_argument& e) {
    throw InputError(std::string("--knn-precision: ") + e.what());
  }
  if (o.knn_device != "cpu" && o.knn_device != "cuda")
    throw InputError("--knn-device: expected cpu or cuda, got '" + o.knn_device + "'");
  if (o.knn_device == "cuda") {
    if (!topology::knn_cuda_built())
      throw InputError("--knn-device cuda: this lmtopo was built without CUDA (nvcc not found at configure time)");
    if (knn.precision != topology::KnnPrecision::mixed)
      throw InputError("--knn-device cuda: runs the mixed-precision filter only; use --knn-precision mixed");
  }
  // The candidate selection is host work beside a GPU's GEMM: give it the task's threads there. On the
  // CPU path each rank is bound to its core(s), which BLAS already uses.
  knn.threads = o.knn_device == "cuda" ? static_cast<std::size_t>(std::max(1, o.threads)) : 1;
  topology::KnnStats knn_stats;
  knn.stats = &knn_stats;
  if (o.k < 1) throw InputError("--k: expected k >= 1, got " + std::to_string(o.k));
  if (o.max_dim < 1) throw InputError("--max-dim: expected at least 1, got " + std::to_string(o.max_dim));
  for (int p : o.homology_dims)
    if (p < 0 || p >= o.max_dim)
      throw InputError("--dims: expected dimensions in 0.." + std::to_string(o.max_dim - 1) +
                       " (H_p needs simplices of dimension p+1 <= --max-dim), got " + std::to_string(p));

  long long shape[3] = {0, 0, 0};
  std::vector<std::string> point_names;
  mpi::on_root(comm, [&] {
    io::H5Input in(o.activations);
    if (!in.has_dataset(dataset))
      throw InputError(o.activations + ": " + dataset + ": missing dataset (hook '" + o.hook + "' not extracted)");
    const auto info = in.dataset(dataset);
    if (info.shape.size() != 3)
      throw InputError(o.activations + ": " + dataset + ": expected [n_points, n_prompts, hidden]");
    for (int i = 0; i < 3; ++i) shape[i] = static_cast<long long>(info.shape[static_cast<std::size_t>(i)]);
    if (shape[0] < 1) throw InputError(o.activations + ": " + dataset + ": no layers");
    if (shape[1] <= o.k)
      throw InputError("--k: expected k < the number of prompts (" + std::to_string(shape[1]) + "), got " + std::to_string(o.k));
  });
  mpi::check(MPI_Bcast(shape, 3, MPI_LONG_LONG, 0, comm), "MPI_Bcast");
  const int L = static_cast<int>(shape[0]);
  const auto n = static_cast<std::size_t>(shape[1]), dim = static_cast<std::size_t>(shape[2]);

  // Prompt subsets (rows of every layer): all in file order, or disjoint random subsets.
  std::vector<std::vector<std::size_t>> subsets;
  if (o.subsets < 1) throw InputError("--subsets: expected at least 1, got " + std::to_string(o.subsets));
  if (o.subsets == 1 && o.subset_size == 0) {
    subsets.emplace_back();
    for (std::size_t i = 0; i < n; ++i) subsets.back().push_back(i);
  } else {
    const auto size_each = static_cast<std::size_t>(o.subset_size > 0 ? o.subset_size : static_cast<long long>(n) / o.subsets);
    if (size_each * static_cast<std::size_t>(o.subsets) > n || size_each == 0)
      throw InputError("--subsets/--subset-size: " + std::to_string(o.subsets) + " disjoint subsets of " + std::to_string(size_each) +
                       " prompts need " + std::to_string(size_each * static_cast<std::size_t>(o.subsets)) + ", the file has " + std::to_string(n));
    if (size_each <= static_cast<std::size_t>(o.k))
      throw InputError("--k: expected k < the subset size (" + std::to_string(size_each) + "), got " + std::to_string(o.k));
    const auto perm = core::permutation(n, o.subset_seed);
    for (int s = 0; s < o.subsets; ++s) {
      std::vector<std::size_t> rows(perm.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(s) * size_each),
                                    perm.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(s + 1) * size_each));
      std::sort(rows.begin(), rows.end());  // file order inside a subset: ties break as in the full set
      subsets.push_back(std::move(rows));
    }
  }

  // --benchmark: seconds per phase (subset 0), the slowest rank's.
  std::vector<std::pair<std::string, double>> phases;
  double t_phase = MPI_Wtime();
  auto phase_done = [&](const char* name, bool first_subset) {
    const double now = MPI_Wtime();
    if (first_subset) phases.push_back({name, now - t_phase});
    t_phase = now;
  };

  if (o.null_draws < 0) throw InputError("--null-draws: expected a number >= 0, got " + std::to_string(o.null_draws));
  // The rows of layer l in run si: a subset's rows in every layer, or for the null runs after them,
  // subset 0's rows in a permutation of their own per layer.
  const std::size_t runs = subsets.size() + static_cast<std::size_t>(o.null_draws);
  auto run_rows = [&](std::size_t si, int l) {
    if (si < subsets.size()) return subsets[si];
    const auto& base = subsets[0];
    const auto perm = core::permutation(base.size(), null_layer_seed(o.null_seed, si - subsets.size(), l));
    std::vector<std::size_t> rows(base.size());
    for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = base[perm[i]];
    return rows;
  };

  ZigzagSummary summary;
  summary.num_layers = L;
  summary.num_points = static_cast<long long>(subsets[0].size());
  std::vector<std::vector<topology::PositionBar>> pos_by_subset;
  std::vector<topology::ZigzagBar> op_bars;
  topology::Duality duality = topology::Duality::primal;  // what --dualize resolved to for subset 0
  for (std::size_t si = 0; si < runs; ++si) {
    const std::size_t m = subsets[0].size();
    const bool is_null = si >= subsets.size();
    // Each rank its block of layers: read one layer, k-NN, symmetrise, flag complex.
    std::vector<std::pair<int, std::vector<std::uint32_t>>> mine;
    const auto [first_layer, end_layer] = layer_block(L, size, rank);
    core::Progress progress(rank == 0, "zigzag k-NN + flag complexes" + (is_null ? " null draw " + std::to_string(si - subsets.size())
                                                                         : subsets.size() > 1 ? " subset " + std::to_string(si) : std::string()) +
                                           (size > 1 ? " (rank 0 of " + std::to_string(size) + ")" : ""),
                            static_cast<std::uint64_t>(end_layer - first_layer), "layers");
    mpi::on_all(comm, [&] {
      io::H5Input in(o.activations);
      for (int l = first_layer; l < end_layer; ++l) {
        auto points = in.read_f32_rows(dataset, static_cast<std::uint64_t>(l), 1);
        const auto rows = run_rows(si, l);
        if (m != n || is_null) {
          std::vector<float> picked(m * dim);
          for (std::size_t r = 0; r < m; ++r)
            std::copy_n(points.begin() + static_cast<std::ptrdiff_t>(rows[r] * dim), dim, picked.begin() + static_cast<std::ptrdiff_t>(r * dim));
          points.swap(picked);
        }
        std::vector<std::vector<std::uint32_t>> graph;
        try {
          const auto k = static_cast<std::size_t>(o.k);
          graph = topology::symmetrize_or(o.knn_device == "cuda" ? topology::knn_lists_cuda(points.data(), m, dim, k, knn)
                                                                  : topology::knn_lists(points.data(), m, dim, k, knn));
        } catch (const std::invalid_argument& e) {
          throw InputError(o.activations + ": " + dataset + ": layer " + std::to_string(l) + ": " + e.what());
        }
        const std::uint64_t bound = topology::flag_complex_size_bound(graph, o.max_dim);
        // Per simplex: its vertices in the layer lists and the zigzag, a cone-matrix column or two.
        const double gib = static_cast<double>(bound) * (16.0 * (o.max_dim + 1) + 96.0) / (1024.0 * 1024.0 * 1024.0);
        if (gib > o.mem_limit_gib)
          throw InputError("--mem-limit: layer " + std::to_string(l) + " may have up to " + std::to_string(bound) +
                           " simplices (~" + std::to_string(gib) + " GiB), over the limit of " + std::to_string(o.mem_limit_gib) +
                           " GiB; lower k or --max-dim, or raise --mem-limit");
        mine.push_back({l, pack(topology::flag_complex(graph, o.max_dim))});
        progress.advance(1);
      }
    });
    progress.finish();
    phase_done("read + k-NN + flag complexes (own layers)", si == 0);
    const bool bench = o.benchmark && si == 0;
    std::vector<topology::ReductionStepStats> stats;

    if (o.reducer == "distributed") {
      // No rank holds the whole filtration: each makes its own layers' operations and cone columns.
      std::vector<long long> own_sizes;
      for (const auto& [l, data] : mine) own_sizes.push_back(static_cast<long long>(unpacked_count(data)));
      const auto sizes = mpi::gather_to_root(comm, own_sizes, MPI_LONG_LONG);
      if (si == 0) summary.simplices_per_layer = sizes;
      topology::ZigzagStream stream = own_zigzag_segment(mine, L, comm);
      mine.clear();
      if (si == 0 && !o.fzz_output.empty()) write_fzz_gathered(o.fzz_output, stream.ops, comm);
      long long ops = static_cast<long long>(stream.ops.size());
      mpi::check(MPI_Allreduce(MPI_IN_PLACE, &ops, 1, MPI_LONG_LONG, MPI_SUM, comm), "MPI_Allreduce");
      if (si == 0) summary.num_ops = ops;
      topology::DistributedCone cone = topology::build_cone_distributed(stream.ops, &stream.time, 2 * L, comm, o.dualize);
      stream = {};
      if (si == 0) duality = cone.duality();
      phase_done("intersection zigzag + cone matrix (own layers)", si == 0);
      const auto bars = topology::reduce_and_read_out_distributed(cone, comm, 2 * L, bench ? &stats : nullptr, o.column_order, o.step_methods);
      phase_done("reduction + bar read-out", si == 0);
      if (bench) print_reduction_benchmark(stats, comm, std::cout);
      std::vector<topology::PositionBar> pos_bars;
      for (const auto& b : bars) {  // bars_in_positions' rule: the positions of the bounding operations
        if (b.birth_tag == b.death_tag) continue;
        pos_bars.push_back({b.bar.dim, b.birth_tag, b.death_tag});
        if (si == 0) op_bars.push_back(b.bar);
      }
      pos_by_subset.push_back(std::move(pos_bars));
      continue;
    }

    // Gather every layer's complex on rank 0.
    std::vector<std::vector<topology::Simplex>> layers(static_cast<std::size_t>(L));
    for (int l = 0; l < L; ++l) {
      const int owner = layer_owner(l, L, size);
      if (owner == 0) {
        if (rank == 0)
          for (const auto& [ll, data] : mine)
            if (ll == l) layers[static_cast<std::size_t>(l)] = unpack(data.data(), data.size());
        continue;
      }
      if (rank == owner) {
        for (const auto& [ll, data] : mine)
          if (ll == l) {
            long long count = static_cast<long long>(data.size());
            mpi::check(MPI_Send(&count, 1, MPI_LONG_LONG, 0, 100 + l, comm), "MPI_Send");
            mpi::send_chunked(data.data(), data.size(), MPI_UINT32_T, 0, 100 + l, comm);
          }
      } else if (rank == 0) {
        long long count = 0;
        mpi::check(MPI_Recv(&count, 1, MPI_LONG_LONG, owner, 100 + l, comm, MPI_STATUS_IGNORE), "MPI_Recv");
        std::vector<std::uint32_t> data(static_cast<std::size_t>(count));
        mpi::recv_chunked(data.data(), data.size(), MPI_UINT32_T, owner, 100 + l, comm);
        layers[static_cast<std::size_t>(l)] = unpack(data.data(), data.size());
      }
    }
    mine.clear();
    phase_done("gather complexes on rank 0", si == 0);

    topology::ZigzagStream stream;
    topology::ConeMatrix cone;
    mpi::on_root(comm, [&] {
      if (si == 0)
        for (const auto& layer : layers) summary.simplices_per_layer.push_back(static_cast<long long>(layer.size()));
      stream = topology::intersection_zigzag(layers);
      layers.clear();
      if (si == 0 && !o.fzz_output.empty()) io::write_fzz_file(o.fzz_output, stream.ops);
      cone = topology::build_cone_matrix(stream.ops);
      if (si == 0) summary.num_ops = static_cast<long long>(stream.ops.size());
    });
    phase_done("intersection zigzag + cone matrix (rank 0)", si == 0);
    // Only rank 0 holds the matrix and dualizes; the choice is broadcast for the output's record.
    int chosen = rank == 0 ? static_cast<int>(topology::resolve_dualize(o.dualize, cone.matrix.num_columns())) : 0;
    mpi::check(MPI_Bcast(&chosen, 1, MPI_INT, 0, comm), "MPI_Bcast");
    if (si == 0) duality = static_cast<topology::Duality>(chosen);
    const auto pairs = topology::reduce_by_name_releasing(o.reducer, &cone.matrix, comm, o.threads, bench ? &stats : nullptr,
                                                          static_cast<topology::Duality>(chosen));
    phase_done("reduction", si == 0);
    if (bench) print_reduction_benchmark(stats, comm, std::cout);
    std::vector<topology::PositionBar> pos_bars;
    mpi::on_root(comm, [&] {
      pos_bars = topology::bars_in_positions(topology::read_out_bars(cone, pairs), stream, si == 0 ? &op_bars : nullptr);
    });
    pos_by_subset.push_back(std::move(pos_bars));
    phase_done("bar read-out (rank 0)", si == 0);
  }
  const std::vector<std::vector<topology::PositionBar>> pos_by_null(pos_by_subset.begin() + static_cast<std::ptrdiff_t>(subsets.size()),
                                                                    pos_by_subset.end());
  pos_by_subset.resize(subsets.size());
  const auto& pos_bars = pos_by_subset[0];
  summary.num_bars = static_cast<long long>(pos_bars.size());

  nlohmann::json config = {{"activations", o.activations}, {"hook", o.hook},        {"k", o.k},
                           {"max_dim", o.max_dim},         {"homology_dims", o.homology_dims},
                           {"metric", o.metric},           {"reducer", o.reducer},
                           {"knn_precision", o.knn_precision}, {"knn_device", o.knn_device},
                           {"dualize", o.dualize},         {"column_order", o.column_order},
                           {"speculate_runs", o.step_methods.speculate_run}, {"row_split", o.step_methods.split_rows},
                           {"row_loans", o.step_methods.row_loans},
                           {"subsets", o.subsets},         {"subset_size", o.subset_size},
                           {"subset_seed", o.subset_seed}, {"null_draws", o.null_draws}, {"null_seed", o.null_seed}};
  io::H5Output out(o.output, comm, "layer-summaries/1", config);
  out.set_attribute("/", "k", static_cast<long long>(o.k));
  out.set_attribute("/", "max_dim", static_cast<long long>(o.max_dim));
  out.set_attribute("/", "metric", o.metric);
  out.set_attribute("/", "knn_precision", o.knn_precision);
  out.set_attribute("/", "knn_device", o.knn_device);
  out.set_attribute("/", "reducer", o.reducer);
  out.set_attribute("/", "dualize", static_cast<long long>(duality != topology::Duality::primal ? 1 : 0));
  out.set_attribute("/", "dualize_mode", std::string(topology::duality_name(duality)));
  out.set_attribute("/", "hook", o.hook);
  out.set_attribute("/", "source", o.activations);
  out.set_attribute("/", "num_layers", static_cast<long long>(L));
  out.set_attribute("/", "subsets", static_cast<long long>(subsets.size()));
  out.set_attribute("/", "points_per_subset", static_cast<long long>(subsets[0].size()));
  long long nbars = summary.num_bars;
  mpi::check(MPI_Bcast(&nbars, 1, MPI_LONG_LONG, 0, comm), "MPI_Bcast");
  const bool root = rank == 0;
  std::vector<long long> pos_flat, op_flat;
  for (const auto& b : pos_bars) pos_flat.insert(pos_flat.end(), {b.dim, b.birth, b.death});
  for (const auto& b : op_bars) op_flat.insert(op_flat.end(), {b.dim, b.birth, b.death});
  const auto nb = static_cast<std::uint64_t>(nbars);
  out.create_numeric("/bars/position", io::DType::i64, {nb, 3}, false);
  out.create_numeric("/bars/ops", io::DType::i64, {nb, 3}, false);
  out.write_rows("/bars/position", 0, root ? nb : 0, pos_flat.data());
  out.write_rows("/bars/ops", 0, root ? nb : 0, op_flat.data());
  const auto Lu = static_cast<std::uint64_t>(L);
  for (int p : o.homology_dims) {
    topology::LayerSummaries s;
    if (root) s = topology::summarize_layers(topology::to_layer_bars(pos_bars, L, p), L, p);
    const std::string g = "/summaries/h" + std::to_string(p) + "/";
    const auto na = static_cast<std::uint64_t>(topology::default_alphas().size());
    out.create_numeric(g + "betti", io::DType::i64, {Lu}, false);
    out.create_numeric(g + "image", io::DType::i64, {Lu + 1, Lu + 1}, false);
    out.create_numeric(g + "phsim", io::DType::i64, {Lu, Lu}, false);
    out.create_numeric(g + "similarity", io::DType::f64, {Lu, Lu}, false);
    out.create_numeric(g + "avg_similarity", io::DType::f64, {Lu}, false);
    out.create_numeric(g + "inter_layer", io::DType::f64, {na, Lu}, false);
    out.create_numeric(g + "births_by_birth", io::DType::f64, {Lu}, false);
    out.create_numeric(g + "births_by_death", io::DType::f64, {Lu + 1}, false);
    out.write_rows(g + "betti", 0, root ? Lu : 0, s.betti.data());
    out.write_rows(g + "image", 0, root ? Lu + 1 : 0, s.image.data());
    out.write_rows(g + "phsim", 0, root ? Lu : 0, s.phsim.data());
    out.write_rows(g + "similarity", 0, root ? Lu : 0, s.similarity.data());
    out.write_rows(g + "avg_similarity", 0, root ? Lu : 0, s.avg_similarity.data());
    out.write_rows(g + "inter_layer", 0, root ? na : 0, s.inter_layer.data());
    out.write_rows(g + "births_by_birth", 0, root ? Lu : 0, s.births_by_birth.data());
    out.write_rows(g + "births_by_death", 0, root ? Lu + 1 : 0, s.births_by_death.data());
    std::vector<std::string> alphas;
    for (double a : topology::default_alphas()) alphas.push_back(std::to_string(a));
    out.set_attribute(g + "inter_layer", "alphas", alphas);
  }
  if (subsets.size() > 1) {
    // Per subset and over subsets (mean and sample standard deviation, ddof = 1).
    const auto S = static_cast<std::uint64_t>(subsets.size()), M = static_cast<std::uint64_t>(subsets[0].size());
    std::vector<long long> prompt_rows;
    for (const auto& rows : subsets)
      for (auto r : rows) prompt_rows.push_back(static_cast<long long>(r));
    out.create_numeric("/subsets/prompts", io::DType::i64, {S, M}, false);
    out.write_rows("/subsets/prompts", 0, root ? S : 0, prompt_rows.data());
    out.set_attribute("/subsets/prompts", "seed", static_cast<long long>(o.subset_seed));
    out.set_attribute("/subsets/prompts", "selection",
                      "rows of /activations: a Fisher-Yates permutation (mt19937_64, seed) cut into disjoint subsets, each sorted");
    for (int p : o.homology_dims) {
      std::map<std::string, std::vector<double>> stacks;
      std::map<std::string, std::vector<std::uint64_t>> shapes;
      for (std::size_t si = 0; si < subsets.size(); ++si) {
        topology::LayerSummaries s;
        if (root) s = topology::summarize_layers(topology::to_layer_bars(pos_by_subset[si], L, p), L, p);
        const auto na = static_cast<std::uint64_t>(topology::default_alphas().size());
        auto add = [&](const std::string& name, const std::vector<double>& v, std::vector<std::uint64_t> dims) {
          auto& st = stacks[name];
          st.insert(st.end(), v.begin(), v.end());
          if (!root) st.resize(0);
          shapes[name] = std::move(dims);
        };
        add("betti", std::vector<double>(s.betti.begin(), s.betti.end()), {Lu});
        add("avg_similarity", s.avg_similarity, {Lu});
        add("inter_layer", s.inter_layer, {na, Lu});
        add("births_by_birth", s.births_by_birth, {Lu});
        add("births_by_death", s.births_by_death, {Lu + 1});
      }
      const std::string g = "/subsets/h" + std::to_string(p) + "/";
      for (const auto& [name, stack] : stacks) {
        std::vector<std::uint64_t> stacked{S};
        stacked.insert(stacked.end(), shapes[name].begin(), shapes[name].end());
        std::uint64_t per = 1;
        for (auto d : shapes[name]) per *= d;
        std::vector<double> mean(per, 0.0), sd(per, 0.0);
        if (root) {
          for (std::size_t si = 0; si < S; ++si)
            for (std::size_t j = 0; j < per; ++j) mean[j] += stack[si * per + j] / static_cast<double>(S);
          for (std::size_t si = 0; si < S; ++si)
            for (std::size_t j = 0; j < per; ++j) sd[j] += (stack[si * per + j] - mean[j]) * (stack[si * per + j] - mean[j]);
          for (auto& v : sd) v = std::sqrt(v / static_cast<double>(S - 1));
        }
        out.create_numeric(g + name, io::DType::f64, stacked, false);
        out.write_rows(g + name, 0, root ? S : 0, stack.data());
        out.create_numeric(g + name + "_mean", io::DType::f64, shapes[name], false);
        out.write_rows(g + name + "_mean", 0, root ? shapes[name][0] : 0, mean.data());
        out.create_numeric(g + name + "_std", io::DType::f64, shapes[name], false);
        out.write_rows(g + name + "_std", 0, root ? shapes[name][0] : 0, sd.data());
      }
    }
  }
  if (o.null_draws > 0) write_null(out, RunRows(run_rows), subsets.size(), pos_by_null, L, o, root);
  out.commit();
  phase_done("summaries + write", true);
  if (o.benchmark) {
    double total = 0;
    for (auto& [name, secs] : phases) {
      double slowest = 0;
      mpi::check(MPI_Allreduce(&secs, &slowest, 1, MPI_DOUBLE, MPI_MAX, comm), "MPI_Allreduce");
      secs = slowest;
      total += slowest;
    }
    if (rank == 0)
      for (const auto& [name, secs] : phases)
        std::cout << "zigzag --benchmark: " << name << ": " << std::fixed << std::setprecision(3) << secs << " s ("
                  << static_cast<int>(100 * secs / total) << "%)\n";
    // The k-NN inside the first phase, summed over each rank's layers (all subsets), slowest rank.
    double knn_secs[2] = {knn_stats.gemm_seconds, knn_stats.select_seconds}, knn_max[2] = {0, 0};
    unsigned long long counts[2] = {knn_stats.rows, knn_stats.candidates}, count_sum[2] = {0, 0};
    mpi::check(MPI_Allreduce(knn_secs, knn_max, 2, MPI_DOUBLE, MPI_MAX, comm), "MPI_Allreduce");
    mpi::check(MPI_Allreduce(counts, count_sum, 2, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm), "MPI_Allreduce");
    if (rank == 0)
      std::cout << "zigzag --benchmark: k-NN (" << o.knn_precision << ", " << o.knn_device << "): GEMM " << std::fixed
                << std::setprecision(3) << knn_max[0] << " s, bounds + exact re-measurement " << knn_max[1]
                << " s, " << std::setprecision(1)
                << (count_sum[0] ? static_cast<double>(count_sum[1]) / static_cast<double>(count_sum[0]) : 0.0)
                << " candidates per point (k = " << o.k << ")\n";
  }
  return summary;
}

}  // namespace lmtopo::stages
