#include "spatial/statistics.hpp"

#include <algorithm>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "core/permutation.hpp"

namespace lmtopo::spatial {
namespace {

// Column means and variances (ddof = 1) of x [n, units].
void column_moments(const std::vector<double>& x, std::size_t n, std::size_t units, std::vector<double>& mean, std::vector<double>& var) {
  mean.assign(units, 0.0);
  var.assign(units, 0.0);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t u = 0; u < units; ++u) mean[u] += x[r * units + u];
  for (auto& m : mean) m /= static_cast<double>(n);  // sum, then divide: a constant column's mean is exact
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t u = 0; u < units; ++u) var[u] += std::pow(x[r * units + u] - mean[u], 2);
  for (auto& v : var) v /= static_cast<double>(n - 1);
}

// sum_i sum_j w_ij z_i z_j with row-standardised queen weights.
double spatial_lag_product(const std::vector<double>& z, const std::vector<std::vector<int>>& nb) {
  double s = 0;
  for (std::size_t i = 0; i < z.size(); ++i) {
    if (nb[i].empty()) continue;
    double lag = 0;
    for (int j : nb[i]) lag += z[static_cast<std::size_t>(j)];
    s += z[i] * lag / static_cast<double>(nb[i].size());
  }
  return s;
}

}  // namespace

WelchResult welch_t(const std::vector<double>& a, std::size_t na, const std::vector<double>& b, std::size_t nb, std::size_t units) {
  if (na < 2 || nb < 2) throw std::invalid_argument("welch_t: each group needs at least 2 samples");
  if (a.size() != na * units || b.size() != nb * units) throw std::invalid_argument("welch_t: groups are not [n, units]");
  std::vector<double> ma, va, mb, vb;
  column_moments(a, na, units, ma, va);
  column_moments(b, nb, units, mb, vb);
  WelchResult r;
  for (std::size_t u = 0; u < units; ++u) {
    const double sa = va[u] / static_cast<double>(na), sb = vb[u] / static_cast<double>(nb), se2 = sa + sb;
    if (!(se2 > 0)) {
      r.t.push_back(0);
      r.df.push_back(static_cast<double>(na + nb - 2));
      r.p.push_back(1);
      continue;
    }
    const double t = (ma[u] - mb[u]) / std::sqrt(se2);
    const double df = se2 * se2 / (sa * sa / static_cast<double>(na - 1) + sb * sb / static_cast<double>(nb - 1));
    r.t.push_back(t);
    r.df.push_back(df);
    r.p.push_back(2 * boost::math::cdf(boost::math::complement(boost::math::students_t(df), std::fabs(t))));
  }
  return r;
}

std::vector<double> bh_adjust(const std::vector<double>& p) {
  const std::size_t m = p.size();
  std::vector<std::size_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return p[x] < p[y]; });
  std::vector<double> q(m);
  double running = 1.0;
  for (std::size_t k = m; k-- > 0;) {  // from the largest p down: q_(k) = min_{j >= k} p_(j) m / j
    running = std::min(running, p[order[k]] * static_cast<double>(m) / static_cast<double>(k + 1));
    q[order[k]] = running;
  }
  return q;
}

MoranResult morans_i(const std::vector<double>& values, const std::vector<std::vector<int>>& nb, int permutations, std::uint64_t seed) {
  const std::size_t n = values.size();
  if (n < 3 || nb.size() != n) throw std::invalid_argument("morans_i: expected at least 3 units and their neighbours");
  const double mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(n);
  std::vector<double> z(n);
  double zz = 0;
  for (std::size_t i = 0; i < n; ++i) {
    z[i] = values[i] - mean;
    zz += z[i] * z[i];
  }
  // Row-standardised weights: w_ij = 1/deg(i); S0, S1, S2 as in Cliff and Ord (and esda).
  double s0 = 0, s1 = 0, s2 = 0;
  std::vector<double> in_weight(n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (int j : nb[i]) in_weight[static_cast<std::size_t>(j)] += 1.0 / static_cast<double>(nb[i].size());
  for (std::size_t i = 0; i < n; ++i) {
    const double wi = nb[i].empty() ? 0.0 : 1.0 / static_cast<double>(nb[i].size());
    s0 += nb[i].empty() ? 0.0 : 1.0;
    for (int j : nb[i]) {
      const auto& back = nb[static_cast<std::size_t>(j)];
      const bool mutual = std::binary_search(back.begin(), back.end(), static_cast<int>(i));
      const double wj = mutual ? 1.0 / static_cast<double>(back.size()) : 0.0;
      s1 += mutual ? 0.5 * (wi + wj) * (wi + wj) : wi * wi;  // S1 = 1/2 sum over ordered pairs; a mutual pair is visited from both ends
    }
    s2 += std::pow((nb[i].empty() ? 0.0 : 1.0) + in_weight[i], 2);
  }
  MoranResult r;
  if (!(zz > 0) || !(s0 > 0)) {
    r.i = NAN;
    return r;
  }
  const double nd = static_cast<double>(n);
  r.i = nd / s0 * spatial_lag_product(z, nb) / zz;
  r.expected = -1.0 / (nd - 1);
  r.variance = (nd * nd * s1 - nd * s2 + 3 * s0 * s0) / ((nd - 1) * (nd + 1) * s0 * s0) - r.expected * r.expected;
  r.z = (r.i - r.expected) / std::sqrt(r.variance);
  r.p_norm = 2 * boost::math::cdf(boost::math::complement(boost::math::normal(), std::fabs(r.z)));
  int larger = 0;
  std::vector<double> shuffled(n);
  for (int k = 0; k < permutations; ++k) {
    const auto perm = core::permutation(n, seed * 1000003ull + static_cast<std::uint64_t>(k));
    for (std::size_t i = 0; i < n; ++i) shuffled[i] = z[perm[i]];
    larger += nd / s0 * spatial_lag_product(shuffled, nb) / zz >= r.i;
  }
  if (permutations - larger < larger) larger = permutations - larger;  // esda: the direction I lies in
  r.p_sim = permutations > 0 ? (larger + 1.0) / (permutations + 1.0) : NAN;
  return r;
}

std::vector<double> correlation_by_distance(const std::vector<double>& responses, std::size_t n, const Sheet& sheet, int max_distance) {
  const auto units = static_cast<std::size_t>(sheet.units());
  if (responses.size() != n * units || n < 2) throw std::invalid_argument("correlation_by_distance: responses are not [n >= 2, units]");
  // Each unit's responses centred and scaled to unit norm; constant units take no part.
  std::vector<double> x(responses.size());
  std::vector<bool> live(units, false);
  for (std::size_t u = 0; u < units; ++u) {
    double mean = 0, norm = 0, squares = 0;
    for (std::size_t r = 0; r < n; ++r) mean += responses[r * units + u];
    mean /= static_cast<double>(n);
    for (std::size_t r = 0; r < n; ++r) {
      norm += std::pow(responses[r * units + u] - mean, 2);
      squares += std::pow(responses[r * units + u], 2);
    }
    live[u] = norm > 1e-24 * squares;  // rounding left in a constant unit's spread is not a response
    for (std::size_t r = 0; r < n; ++r) x[u * n + r] = live[u] ? (responses[r * units + u] - mean) / std::sqrt(norm) : 0.0;
  }
  std::vector<double> sum(static_cast<std::size_t>(max_distance), 0.0), count(static_cast<std::size_t>(max_distance), 0.0);
  for (std::size_t a = 0; a < units; ++a) {
    if (!live[a]) continue;
    for (std::size_t b = a + 1; b < units; ++b) {
      if (!live[b]) continue;
      const auto bin = std::llround(grid_distance(sheet, static_cast<int>(a), static_cast<int>(b)));
      if (bin < 1 || bin > max_distance) continue;
      double c = 0;
      for (std::size_t r = 0; r < n; ++r) c += x[a * n + r] * x[b * n + r];
      sum[static_cast<std::size_t>(bin - 1)] += c;
      count[static_cast<std::size_t>(bin - 1)] += 1;
    }
  }
  for (std::size_t k = 0; k < sum.size(); ++k) sum[k] = count[k] > 0 ? sum[k] / count[k] : NAN;
  return sum;
}

std::vector<int> significant_clusters(const std::vector<double>& t, const std::vector<double>& q, double alpha,
                                      const std::vector<std::vector<int>>& nb) {
  const std::size_t n = t.size();
  std::vector<bool> seen(n, false);
  std::vector<int> sizes;
  const auto sign = [&](std::size_t u) { return t[u] > 0 ? 1 : (t[u] < 0 ? -1 : 0); };
  for (std::size_t start = 0; start < n; ++start) {
    if (seen[start] || !(q[start] < alpha) || sign(start) == 0) continue;
    int size = 0;
    std::vector<std::size_t> stack{start};
    seen[start] = true;
    while (!stack.empty()) {
      const std::size_t u = stack.back();
      stack.pop_back();
      ++size;
      for (int v : nb[u]) {
        const auto w = static_cast<std::size_t>(v);
        if (!seen[w] && q[w] < alpha && sign(w) == sign(u)) {
          seen[w] = true;
          stack.push_back(w);
        }
      }
    }
    sizes.push_back(size);
  }
  std::sort(sizes.rbegin(), sizes.rend());
  return sizes;
}

}  // namespace lmtopo::spatial
