// A seeded permutation that is the same on every rank and every platform (std::shuffle's algorithm
// is the library's choice): Fisher-Yates driven by mt19937_64, whose output the standard fixes. Used
// for the sweeps' prompt-permutation nulls and the zigzag's disjoint prompt subsets.
#pragma once
#include <cstddef>
#include <random>
#include <utility>
#include <vector>

namespace lmtopo::core {

inline std::vector<std::size_t> permutation(std::size_t n, unsigned long long seed) {
  std::vector<std::size_t> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = i;
  std::mt19937_64 rng(seed);
  for (std::size_t i = n; i > 1; --i) std::swap(p[i - 1], p[static_cast<std::size_t>(rng() % i)]);
  return p;
}

}  // namespace lmtopo::core
