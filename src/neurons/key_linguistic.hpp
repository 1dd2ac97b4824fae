// Key linguistic neurons (Zeng et al., "Converging to a Lingua Franca"; science.md §4): per layer, the
// units whose share of a language's sentence-to-sentence cosine similarity stands out against the other
// languages. Plain arrays in, plain arrays out: no HDF5, no MPI.
//
// For one layer, sentence vectors a_s (each FFN unit's activation averaged over the sentence's tokens)
// are scaled to unit length, n_s = a_s / |a_s|. The mean pairwise cosine among language l's n_l
// sentences (pairs s != t) splits over units exactly:
//   M_l = sum_u c_lu,   c_lu = ((sum_s n_su)^2 - sum_s n_su^2) / (n_l (n_l - 1)),
// and unit u's share is c_lu / M_l (shares of a language sum to 1). Each unit's shares are z-scored
// across languages (population standard deviation; a unit with equal shares everywhere has z = 0);
// key neurons of l are the units with z > threshold (2 in the paper).
#pragma once
#include <cstdint>
#include <vector>

namespace lmtopo::neurons {

struct CosineShares {
  int languages = 0;
  std::int64_t units = 0;
  std::vector<double> mean_cosine;  // [languages]: M_l
  std::vector<double> share;        // [languages, units]: c_lu / M_l
};

// `vectors`: [sentences, units] row-major; `language[s]` in [0, languages). Every language needs two
// sentences and a positive mean cosine, every sentence a non-zero finite vector; otherwise
// std::invalid_argument naming the language index or sentence row.
CosineShares cosine_shares(const float* vectors, std::int64_t sentences, std::int64_t units, const std::vector<int>& language,
                           int languages);

// [languages, units] z-scores of each unit's share across languages.
std::vector<double> zscores_across_languages(const CosineShares& shares);

// The units with z > threshold, per language, in increasing order.
std::vector<std::vector<std::int64_t>> key_units(const std::vector<double>& z, int languages, std::int64_t units, double threshold);

// `count` distinct units of [0, units), drawn uniformly by a generator seeded with `seed`, increasing.
std::vector<std::int64_t> random_units(std::int64_t units, std::size_t count, std::uint64_t seed);

// Ablation effects over [ablated, evaluated] languages (L x L, row-major): delta = perplexity with the
// ablated language's units set minus the base perplexity of the evaluated language, and the same for
// each of `draws` control draws ([draws, L, L]) summarised as mean and sample sd (ddof 1; 0 for one draw).
struct AblationDeltas {
  std::vector<double> delta, control_mean, control_sd;
};
AblationDeltas ablation_deltas(const std::vector<double>& base, const std::vector<double>& ablated, const std::vector<double>& control,
                               std::size_t draws);

}  // namespace lmtopo::neurons
