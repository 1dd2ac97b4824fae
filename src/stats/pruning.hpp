// Which blocks a layer-pruning experiment removes, by the rules it compares (science.md, paper 1's
// pruning experiment): S̄'s candidates (topology::pruning_candidates), and as baselines the same number
// of blocks chosen by angular distance (Gromov et al. 2024: the n consecutive blocks whose input and
// output representations are closest), by block influence (ShortGPT, Men et al. 2024: the n blocks
// whose output changes their input least) and at random. Block b maps point b to point b + 1 of a
// hook numbered as block_output (point 0: the embeddings).
#pragma once
#include <cstdint>
#include <vector>

namespace lmtopo::stats {

// distance: points x points, row-major (e.g. a sweep's layer_layer/angular_distance). The n blocks
// l..l+n-1 with the smallest distance(l, l + n), the first such l on ties; {} when n = 0 or no room.
std::vector<int> angular_distance_blocks(const std::vector<double>& distance, int points, int n);

// influence[b]: block b's influence (e.g. 1 - cos(point b, point b + 1)). The n least influential
// blocks, increasing; ties to the lower block.
std::vector<int> block_influence_blocks(const std::vector<double>& influence, int n);

// n distinct blocks of `blocks`, increasing, drawn by a seeded Fisher-Yates (core::permutation).
std::vector<int> random_blocks(int blocks, int n, std::uint64_t seed);

}  // namespace lmtopo::stats
