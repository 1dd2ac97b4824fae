// Repetition neurons (Hiraoka & Inui, NAACL 2025; science.md §6): FFN units whose activation rises once
// a greedy continuation starts repeating itself. Plain arrays in, plain arrays out: no HDF5, no MPI.
//
// A text repeats when some n-gram occurs at least `min_occurrences` times at equal spacing d >= 1
// (occurrences may overlap when d < n: a loop of period d), all of them inside `window` consecutive
// tokens: starts p, p + d, ..., p + (k-1)d with (k-1)d + n <= window. The repetition reported is the
// one with the earliest first start p (then the smallest d): its second occurrence p + d is where the
// text starts repeating. Positions count from the text's first token.
#pragma once
#include <cstdint>
#include <vector>

namespace lmtopo::neurons {

struct RepetitionRule {
  int ngram = 10;
  int min_occurrences = 3;
  int window = 100;
};

struct Repetition {
  bool found = false;
  std::int64_t first = -1, second = -1, period = 0;  // starts of the first two occurrences, d
  int occurrences = 0;                               // at spacing d from `first`, inside the window
};

Repetition find_repetition(const std::vector<std::int64_t>& ids, const RepetitionRule& rule);

// Per unit, mean activation over tokens [second, second + span) minus over [second - span, second).
// `acts` is [tokens, units] row-major; needs span <= second and second + span <= tokens
// (std::invalid_argument otherwise).
std::vector<double> activation_rise(const float* acts, std::int64_t tokens, std::int64_t units, std::int64_t second, std::int64_t span);

// The `k` largest of `values` (ties: lower index first) as indices, largest first.
std::vector<std::int64_t> top_k(const std::vector<double>& values, std::size_t k);

// Share of texts that repeat and the mean position of the second occurrence over those that do (NaN if
// none does).
struct RepetitionRate {
  std::size_t texts = 0, repeated = 0;
  double rate = 0, mean_second = 0;
};
RepetitionRate repetition_rate(const std::vector<Repetition>& found);

}  // namespace lmtopo::neurons
