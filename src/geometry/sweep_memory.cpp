#include "geometry/sweep_memory.hpp"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "geometry/similarity.hpp"

namespace lmtopo::geometry {

namespace {

constexpr double kDouble = 8;

// This rank's rows of R representations of n x width in float64 (each rank reads its own rows) and
// their null copies; for CKA the centred Grams' rows, R x n x (n / ranks), and one Gram being formed.
void add_representations(MemoryEstimate& m, const SweepShape& s, double count, double rows) {
  const double copies = s.null ? 2 : 1;
  m.terms.push_back({"representations' rows (float64)", copies * count * rows / s.ranks * s.width * kDouble});
  if (s.cka && s.cka_features) {
    m.terms.push_back({"column-centred rows of every representation", copies * count * rows / s.ranks * s.width *
                                                                          (s.float32_products ? 4 : kDouble)});
    m.terms.push_back({"one feature cross-product (transient)", s.width * s.width * kDouble});
  } else if (s.cka) {
    m.terms.push_back({"centred Gram rows of every representation", copies * count * rows * rows / s.ranks * kDouble});
    m.terms.push_back({"one Gram product in PETSc, its centred rows (transient)",
                       rows * rows / s.ranks * kDouble + 2 * rows / s.ranks * s.width * kDouble});
  }
  if (s.bootstrap > 0 && s.bootstrap_cka) m.terms.push_back({"a draw's resampled rows", count * rows / s.ranks * s.width * kDouble});
}

// The representations one work item of `pairs` compares, and their rows: the points (n prompts each),
// the languages (n / languages sentences each), or the checkpoints or models.
std::pair<double, double> compared_representations(const std::string& pairs, const SweepShape& s) {
  if (pairs == "language_language") return {s.languages, s.prompts / std::max(1.0, s.languages)};
  if (pairs == "checkpoint_checkpoint" || pairs == "model_model") return {s.checkpoints, s.prompts};
  return {s.points, s.prompts};
}

}  // namespace

double physical_memory_bytes() {
  return static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
}

bool sweep_item_cka_features(const std::string& pairs, const SweepShape& s, const std::string& name, double gram_bytes_limit) {
  const auto [count, rows] = compared_representations(pairs, s);
  const auto reps = static_cast<std::size_t>(count * (s.null ? 2 : 1));
  return choose_cka_method(name, static_cast<std::size_t>(rows), std::vector<std::size_t>(reps, static_cast<std::size_t>(s.width)),
                           s.ranks, gram_bytes_limit) == CkaMethod::features;
}

MemoryEstimate sweep_item_memory(const std::string& pairs, const SweepShape& s) {
  MemoryEstimate m;
  const double n = s.prompts;
  // lmtopo-petsc's resident size before any data (MPI, HDF5, PETSc, OpenBLAS), measured on Debian 12
  // (docs/benchmarks.md): 96 MiB.
  m.terms.push_back({"process start-up", 96.0 * 1024 * 1024});
  m.terms.push_back({"one point's rows read (float32)", n / s.ranks * s.width * 4});
  const bool known = pairs == "layer_layer" || pairs == "language_language" || pairs == "checkpoint_checkpoint" || pairs == "model_model";
  if (known) {
    const auto [count, rows] = compared_representations(pairs, s);
    if (pairs == "language_language")
      m.terms.push_back({"the point's rows, and stacked by language", 2 * n / s.ranks * s.width * kDouble});
    add_representations(m, s, count, rows);
    if (s.neighbours) m.terms.push_back({"similarity rows", n * n / s.ranks * kDouble});
    if (pairs == "language_language" && s.bootstrap > 0) m.terms.push_back({"sentence-pair sums", 2 * rows * rows * kDouble});
  }
  for (const auto& [name, bytes] : m.terms) m.bytes += bytes;
  return m;
}

}  // namespace lmtopo::geometry
