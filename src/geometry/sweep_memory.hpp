// What one sweep work item holds in memory per rank, from the sizes alone (for `lmtopo plan`): the
// model of docs/methods.md ("Similarity sweeps", memory per rank), term by term, so a study can pick
// its ranks and checkpoint blocks before it runs. No MPI, no HDF5.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace lmtopo::geometry {

struct SweepShape {
  double prompts = 0;      // n (rows of every representation)
  double languages = 1;    // language_language: the set splits into this many languages of n / languages
  double points = 0;       // points of the hook (layers)
  double width = 0;        // values per prompt and point
  double checkpoints = 0;  // checkpoint_checkpoint: files in the item (2 x block size when blocked)
  double ranks = 1;
  bool null = true;        // prompt-permutation copies beside every representation
  bool cka = false;        // a CKA metric is swept (centred Grams)
  bool cka_features = false;  // ... by feature cross-products instead (no n x n matrices)
  bool float32_products = false;  // gram_precision float32 (features: the centred rows kept as float32)
  bool neighbours = false; // a metric that scans similarity rows (k-NN, retrieval, LRDS/SADS, TwoNN)
  int bootstrap = 0;       // draws (sentence-pair sums, resampled copies)
  bool bootstrap_cka = false;
};

// Bytes one rank holds at the peak of a work item of `pairs`, with the terms that make it up.
struct MemoryEstimate {
  double bytes = 0;
  std::vector<std::pair<std::string, double>> terms;
};
MemoryEstimate sweep_item_memory(const std::string& pairs, const SweepShape& s);

// Whether a work item of `pairs` computes CKA by feature cross-products: choose_cka_method's rule for
// the method `name` on the item's representations (with their nulls), with `gram_bytes_limit` per rank.
// This machine's physical memory in bytes (the auto CKA method's budget is half of it per rank on a node).
double physical_memory_bytes();

bool sweep_item_cka_features(const std::string& pairs, const SweepShape& s, const std::string& name, double gram_bytes_limit);

}  // namespace lmtopo::geometry
