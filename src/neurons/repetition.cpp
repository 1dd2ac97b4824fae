#include "neurons/repetition.hpp"

#include <algorithm>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

namespace lmtopo::neurons {
namespace {

bool same_ngram(const std::vector<std::int64_t>& ids, std::int64_t a, std::int64_t b, int n) {
  return std::equal(ids.begin() + a, ids.begin() + a + n, ids.begin() + b);
}

}  // namespace

Repetition find_repetition(const std::vector<std::int64_t>& ids, const RepetitionRule& rule) {
  if (rule.ngram < 1 || rule.min_occurrences < 2 || rule.window < rule.ngram)
    throw std::invalid_argument("repetition rule: needs ngram >= 1, min_occurrences >= 2, window >= ngram");
  const auto T = static_cast<std::int64_t>(ids.size());
  const std::int64_t n = rule.ngram, k = rule.min_occurrences;
  for (std::int64_t p = 0; p + n <= T; ++p)
    // The k-th occurrence must end inside the window and inside the text.
    for (std::int64_t d = 1; (k - 1) * d + n <= rule.window && p + (k - 1) * d + n <= T; ++d) {
      int count = 1;
      while (p + count * d + n <= T && count * d + n <= rule.window && same_ngram(ids, p, p + count * d, rule.ngram)) ++count;
      if (count >= k) return {true, p, p + d, d, count};
    }
  return {};
}

std::vector<double> activation_rise(const float* acts, std::int64_t tokens, std::int64_t units, std::int64_t second, std::int64_t span) {
  if (span < 1 || second < span || second + span > tokens)
    throw std::invalid_argument("activation_rise: " + std::to_string(span) + " tokens either side of position " + std::to_string(second) +
                                " do not fit in " + std::to_string(tokens));
  std::vector<double> rise(static_cast<std::size_t>(units), 0.0);
  for (std::int64_t t = second - span; t < second + span; ++t) {
    const double sign = t < second ? -1.0 : 1.0;
    const float* row = acts + t * units;
    for (std::int64_t u = 0; u < units; ++u) rise[static_cast<std::size_t>(u)] += sign * row[u];
  }
  for (auto& r : rise) r /= static_cast<double>(span);
  return rise;
}

std::vector<std::int64_t> top_k(const std::vector<double>& values, std::size_t k) {
  if (k > values.size()) throw std::invalid_argument("top_k: " + std::to_string(k) + " of " + std::to_string(values.size()) + " values");
  std::vector<std::int64_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(), [&](std::int64_t a, std::int64_t b) {
    const double va = values[static_cast<std::size_t>(a)], vb = values[static_cast<std::size_t>(b)];
    return va > vb || (va == vb && a < b);
  });
  order.resize(k);
  return order;
}

RepetitionRate repetition_rate(const std::vector<Repetition>& found) {
  RepetitionRate r;
  r.texts = found.size();
  double sum = 0;
  for (const auto& f : found)
    if (f.found) {
      ++r.repeated;
      sum += static_cast<double>(f.second);
    }
  r.rate = r.texts ? static_cast<double>(r.repeated) / static_cast<double>(r.texts) : 0.0;
  r.mean_second = r.repeated ? sum / static_cast<double>(r.repeated) : std::numeric_limits<double>::quiet_NaN();
  return r;
}

}  // namespace lmtopo::neurons
