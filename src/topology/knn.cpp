// The filter-and-refine k-NN (knn.hpp): point preparation, error bounds, candidate selection and
// exact re-measurement. No BLAS here (the Gram rows come from a GramRowSource), so the CUDA build
// for a GPU machine compiles this file alone.
#include "topology/knn.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>

namespace lmtopo::topology {

Metric metric_from_name(const std::string& name) {
  if (name == "euclidean") return Metric::euclidean;
  if (name == "cosine") return Metric::cosine;
  throw std::invalid_argument("unknown metric '" + name + "' (expected euclidean or cosine)");
}

KnnPrecision knn_precision_from_name(const std::string& name) {
  if (name == "mixed") return KnnPrecision::mixed;
  if (name == "float64") return KnnPrecision::float64;
  throw std::invalid_argument("unknown k-NN precision '" + name + "' (expected mixed or float64)");
}

const char* knn_precision_name(KnnPrecision p) { return p == KnnPrecision::mixed ? "mixed" : "float64"; }

namespace {

using clock_type = std::chrono::steady_clock;
double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// fn(t, begin, end) over `threads` contiguous ranges of [0, rows), thread t taking range t; serial when
// one thread or few rows. fn must not throw (workers record failures for the caller to raise).
template <typename Fn>
void for_row_ranges(std::size_t rows, std::size_t threads, Fn&& fn) {
  if (threads <= 1 || rows < 2 * threads) {
    fn(std::size_t{0}, std::size_t{0}, rows);
    return;
  }
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < threads; ++t) pool.emplace_back([&, t] { fn(t, rows * t / threads, rows * (t + 1) / threads); });
  for (auto& th : pool) th.join();
}

// Higham's gamma_m = m u / (1 - m u): the relative error bound of an m-term dot product.
double gamma(double m, double u) { return m * u / (1.0 - m * u); }

// Exact distances (the definition in knn.hpp). Four independent sums in a fixed order: vectorisable
// without reassociation, and the same for equal inputs.
double exact_squared_distance(const float* a, const float* b, std::size_t dim) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  std::size_t i = 0;
  for (; i + 4 <= dim; i += 4) {
    const double t0 = static_cast<double>(a[i]) - b[i], t1 = static_cast<double>(a[i + 1]) - b[i + 1];
    const double t2 = static_cast<double>(a[i + 2]) - b[i + 2], t3 = static_cast<double>(a[i + 3]) - b[i + 3];
    s0 += t0 * t0;
    s1 += t1 * t1;
    s2 += t2 * t2;
    s3 += t3 * t3;
  }
  for (; i < dim; ++i) {
    const double t = static_cast<double>(a[i]) - b[i];
    s0 += t * t;
  }
  return (s0 + s1) + (s2 + s3);
}

double exact_dot(const float* a, const float* b, std::size_t dim) {
  // Products of float32 values are exact in float64; only the sums round.
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  std::size_t i = 0;
  for (; i + 4 <= dim; i += 4) {
    s0 += static_cast<double>(a[i]) * b[i];
    s1 += static_cast<double>(a[i + 1]) * b[i + 1];
    s2 += static_cast<double>(a[i + 2]) * b[i + 2];
    s3 += static_cast<double>(a[i + 3]) * b[i + 3];
  }
  for (; i < dim; ++i) s0 += static_cast<double>(a[i]) * b[i];
  return (s0 + s1) + (s2 + s3);
}

}  // namespace

template <typename Real>
std::vector<std::vector<std::uint32_t>> knn_lists_with(GramRowSource<Real>& source, const float* points, std::size_t n,
                                                       std::size_t dim, std::size_t k, const KnnOptions& options) {
  if (k >= n) throw std::invalid_argument("k = " + std::to_string(k) + " needs more than " + std::to_string(n) + " points");
  const bool cosine = options.metric == Metric::cosine;
  constexpr double u_d = std::numeric_limits<double>::epsilon() / 2;
  constexpr double u = std::numeric_limits<Real>::epsilon() / 2;  // unit roundoff of the filter
  const double D = static_cast<double>(dim);

  const std::size_t threads = std::max<std::size_t>(1, options.threads);

  // Prepared points: centred (Euclidean; distances do not change, and the bound scales with the
  // centred norms, not with a large common offset) or unit rows (cosine), in the filter's precision.
  // (With several threads the mean's sums run in another order: any centre is exact for the
  // neighbours, which are re-measured from the inputs.)
  std::vector<double> norm(n, 0.0);  // cosine: |x| in float64 (the exact distance uses it)
  std::vector<std::vector<double>> partial_mean(threads, std::vector<double>(dim, 0.0));
  std::vector<std::size_t> first_bad(threads, n);  // the first row with a non-finite value, per thread
  for_row_ranges(n, threads, [&](std::size_t t, std::size_t i0, std::size_t i1) {
    auto& mean = partial_mean[t];
    for (std::size_t i = i0; i < i1; ++i) {
      double s = 0;
      for (std::size_t j = 0; j < dim; ++j) {
        const double v = points[i * dim + j];
        if (!std::isfinite(v) && first_bad[t] == n) first_bad[t] = i;
        s += v * v;
        mean[j] += v;
      }
      norm[i] = std::sqrt(s);
    }
  });
  if (const std::size_t bad = *std::min_element(first_bad.begin(), first_bad.end()); bad < n)
    throw std::invalid_argument("point " + std::to_string(bad) + " has a non-finite coordinate");
  std::vector<double> mean(dim, 0.0);
  for (const auto& part : partial_mean)
    for (std::size_t j = 0; j < dim; ++j) mean[j] += part[j];
  for (auto& m : mean) m /= static_cast<double>(n);
  // Euclidean: scale the centred points by a power of two (exact) so that the largest coordinate is
  // in [0.5, 1): the GEMM can then neither overflow nor lose whole products to underflow, whatever
  // the inputs' magnitude (distances scale by scale^2; only their order matters). Unit rows need none.
  double scale = 1.0;
  if (!cosine) {
    std::vector<double> largest(threads, 0.0);
    for_row_ranges(n, threads, [&](std::size_t t, std::size_t i0, std::size_t i1) {
      for (std::size_t i = i0; i < i1; ++i)
        for (std::size_t j = 0; j < dim; ++j) largest[t] = std::max(largest[t], std::abs(points[i * dim + j] - mean[j]));
    });
    const double most = *std::max_element(largest.begin(), largest.end());
    if (most > 0) scale = std::ldexp(1.0, -std::ilogb(most) - 1);
  }
  std::vector<Real> x(n * dim);
  std::vector<double> sq(n, 0.0);  // |prepared row|^2 in float64
  for_row_ranges(n, threads, [&](std::size_t, std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i) {
      double s = 0;
      for (std::size_t j = 0; j < dim; ++j) {
        const double v =
            cosine ? (norm[i] > 0 ? points[i * dim + j] / norm[i] : 0.0) : (points[i * dim + j] - mean[j]) * scale;
        const Real r = static_cast<Real>(v);
        x[i * dim + j] = r;
        s += static_cast<double>(r) * r;
      }
      sq[i] = s;
    }
  });
  // Error bounds |d~ - d| <= E (see knn.hpp). eps: rounding of a prepared coordinate. Euclidean, per
  // unit of s_p + s_q: the filter's dot product (gamma_D(u)), the float64 squared norms (gamma_D(u_d)),
  // the prepared coordinates' rounding (4 eps), the float64 reference (2 gamma_D(u_d) plus its
  // differences' rounding, gamma_D(u_d)) and d~'s own three operations (6 u_d).
  const double eps = u + 2 * u_d;
  const double c_euclidean =
      1.01 * (gamma(D, u) + 4 * gamma(D, u_d) + 4 * eps * (1 + eps) * (1 + eps) + 6 * u_d);
  const double c_cosine =
      1.01 * (gamma(D, u) * (1 + eps) * (1 + eps) + 2 * eps * (1 + eps) + gamma(D + 8, u_d));
  // Gradual underflow breaks relative bounds: a coordinate or product below the smallest normal number
  // is off by up to half the smallest subnormal. With coordinates at most 1 that adds at most this.
  const double underflow = 8 * D * static_cast<double>(std::numeric_limits<Real>::denorm_min());

  auto t0 = clock_type::now();
  source.load(x.data(), n, dim);
  double gemm_seconds = seconds_since(t0), select_seconds = 0;
  std::uint64_t candidates_total = 0;

  std::vector<std::vector<std::uint32_t>> out(n);
  const std::size_t b = std::max<std::size_t>(1, std::min(options.block_rows, n));
  std::vector<Real> gram(b * n);

  // The filter's estimate and bound for pair (p, q). A non-finite GEMM entry (which the scaling rules
  // out for finite inputs; kept as a guard) makes the pair a candidate.
  auto estimate = [&](std::size_t p, std::size_t q, const Real* g, double& d, double& e) {
    if (cosine) {
      if (norm[p] == 0 || norm[q] == 0) {
        d = 1.0;  // exactly, by definition
        e = 0.0;
        return;
      }
      d = 1.0 - static_cast<double>(g[q]);
      e = c_cosine + underflow;
    } else {
      d = sq[p] + sq[q] - 2.0 * static_cast<double>(g[q]);
      e = c_euclidean * (sq[p] + sq[q]) + underflow;
    }
    if (!std::isfinite(d) || !std::isfinite(e)) {
      d = 0.0;
      e = std::numeric_limits<double>::infinity();
    }
  };
  // Rows [i0, i1) of the block starting at r0; returns the candidates measured.
  auto select_rows = [&](std::size_t r0, std::size_t i0, std::size_t i1) {
    std::uint64_t measured = 0;
    std::vector<double> heap;  // max-heap of the k smallest upper bounds so far
    heap.reserve(k);
    std::vector<std::pair<double, std::uint32_t>> cand;
    for (std::size_t i = i0; i < i1; ++i) {
      const std::size_t p = r0 + i;
      const Real* g = gram.data() + i * n;
      // U: the k-th smallest upper bound d~ + E. At least k points are within U, so every true
      // neighbour has d~ - E <= U; no other point can be one (its true distance exceeds U).
      heap.clear();
      for (std::size_t q = 0; q < n; ++q) {
        if (q == p) continue;
        double d, e;
        estimate(p, q, g, d, e);
        const double upper = d + e;
        if (heap.size() < k) {
          heap.push_back(upper);
          std::push_heap(heap.begin(), heap.end());
        } else if (upper < heap.front()) {
          std::pop_heap(heap.begin(), heap.end());
          heap.back() = upper;
          std::push_heap(heap.begin(), heap.end());
        }
      }
      const double bound = heap.front();
      cand.clear();
      const float* xp = points + p * dim;
      for (std::size_t q = 0; q < n; ++q) {
        if (q == p) continue;
        double d, e;
        estimate(p, q, g, d, e);
        if (!(d - e <= bound)) continue;
        const float* xq = points + q * dim;
        double exact;
        if (cosine)
          exact = (norm[p] == 0 || norm[q] == 0) ? 1.0 : 1.0 - exact_dot(xp, xq, dim) / (norm[p] * norm[q]);
        else
          exact = exact_squared_distance(xp, xq, dim);
        cand.emplace_back(exact, static_cast<std::uint32_t>(q));
      }
      measured += cand.size();
      std::partial_sort(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(k), cand.end());
      auto& nb = out[p];
      nb.resize(k);
      for (std::size_t t = 0; t < k; ++t) nb[t] = cand[t].second;
    }
    return measured;
  };

  for (std::size_t r0 = 0; r0 < n; r0 += b) {
    const std::size_t rows = std::min(b, n - r0);
    t0 = clock_type::now();
    source.rows(r0, rows, gram.data());
    gemm_seconds += seconds_since(t0);
    t0 = clock_type::now();
    std::vector<std::uint64_t> measured(threads, 0);
    for_row_ranges(rows, threads, [&](std::size_t t, std::size_t i0, std::size_t i1) { measured[t] = select_rows(r0, i0, i1); });
    for (auto m : measured) candidates_total += m;
    select_seconds += seconds_since(t0);
  }
  if (options.stats) {
    options.stats->rows += n;
    options.stats->candidates += candidates_total;
    options.stats->gemm_seconds += gemm_seconds;
    options.stats->select_seconds += select_seconds;
  }
  return out;
}

template std::vector<std::vector<std::uint32_t>> knn_lists_with<float>(GramRowSource<float>&, const float*, std::size_t,
                                                                       std::size_t, std::size_t, const KnnOptions&);
template std::vector<std::vector<std::uint32_t>> knn_lists_with<double>(GramRowSource<double>&, const float*, std::size_t,
                                                                        std::size_t, std::size_t, const KnnOptions&);

std::vector<std::vector<std::uint32_t>> symmetrize_or(const std::vector<std::vector<std::uint32_t>>& directed) {
  std::vector<std::vector<std::uint32_t>> out(directed.size());
  for (std::size_t i = 0; i < directed.size(); ++i)
    for (auto j : directed[i]) {
      out[i].push_back(j);
      out[j].push_back(static_cast<std::uint32_t>(i));
    }
  for (auto& nb : out) {
    std::sort(nb.begin(), nb.end());
    nb.erase(std::unique(nb.begin(), nb.end()), nb.end());
  }
  return out;
}

}  // namespace lmtopo::topology
