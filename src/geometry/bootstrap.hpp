// Percentile bootstrap over prompts for the sweep metrics: the seeded draws, the interval, and the
// resampled forms of the statistics that are not simply recomputed on resampled rows (docs/methods.md,
// "Bootstrap intervals"). Plain arrays: no MPI, no HDF5.
//
// A draw resamples the *units* (prompts; for language x language sweeps, parallel sentences with all
// their translations) with replacement. The same draws serve every point, pair and metric of a sweep,
// so intervals of different layers come from the same resampled prompt sets.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace lmtopo::geometry {

// `draws` resamples of `units` units: draw b's k-th unit is the next output of one mt19937_64 (seeded
// with `seed`, whose outputs the C++ standard fixes) modulo `units`, b-major. Identical on every rank.
class BootstrapDraws {
 public:
  BootstrapDraws(std::size_t units, std::size_t draws, unsigned long long seed);
  std::size_t units() const { return units_; }
  std::size_t draws() const { return draws_; }
  const std::uint32_t* draw(std::size_t b) const { return index_.data() + b * units_; }
  // How many times each unit occurs in draw b.
  std::vector<double> multiplicities(std::size_t b) const;

 private:
  std::size_t units_, draws_;
  std::vector<std::uint32_t> index_;
};

// The seed of a sweep's draws, apart from its permutation null's stream (which uses `seed` itself).
inline unsigned long long bootstrap_seed(unsigned long long seed) { return seed ^ 0xb0075742a5a5a5a5ULL; }

// Percentile interval [q(lo), q(hi)] at `level` (0.95: the 2.5 % and 97.5 % quantiles), quantiles by
// linear interpolation between order statistics (numpy.percentile's default); NaN when any replicate
// is not finite.
std::array<double, 2> percentile_interval(std::vector<double> replicates, double level);

// Mean of per-unit scores over the units of one draw (the resampled mean).
double resampled_mean(const std::vector<double>& per_unit, const std::uint32_t* draw, std::size_t units);


// Language-structure sums of an aligned parallel set (L languages x G sentences, one row each) by
// pairs of sentences: same[g*G + h] = sum over languages a of cos((a,g), (a,h)); cross[g*G + h] = sum
// over languages a != b of cos((a,g), (b,h)). With multiplicities w of the sentences, a resampled set's
// sums are: same language sum_{g != h} w_g w_h same[g,h] (a sentence and its own copy are not a pair);
// translations sum_g w_g^2 cross[g,g] (a copy of a translation is a translation); different meaning in
// different languages sum_{g != h} w_g w_h cross[g,h]; counts likewise with L and L(L-1) per entry.
struct SentencePairSums {
  std::size_t sentences = 0, languages = 0;
  std::vector<double> same, cross;  // G x G
};
// Adds rows [row0, row0 + rows) of the cosine matrix of the stacked set (row i = language i / G,
// sentence i % G) into `sums` (which must be sized G x G).
void add_sentence_pair_sums(const double* s_rows, std::size_t row0, std::size_t rows, SentencePairSums& sums);
// LRDS and SADS (as AlignmentSums defines them) of the set resampled with multiplicities w.
std::array<double, 2> resampled_lrds_sads(const SentencePairSums& sums, const std::vector<double>& w);

// TwoNN refitted on the per-prompt ratios a draw picks (NaN ratios, duplicated points, left out), as
// twonn_fit; NaN where the fit is undefined.
double resampled_twonn(const std::vector<double>& ratio_rows, const std::uint32_t* draw, std::size_t units);

}  // namespace lmtopo::geometry
