// The neurons stage: one study of a model's FFN units (mlp_act) per run, rank-parallel, writing neurons/1
// HDF5 (schemas/hdf5/neurons.json; root attribute `study`) and CSV tables beside it.
//
// key_linguistic (science.md §4): units mean-pooled over each sentence's tokens of every block on the
// analysis share of a parallel corpus -> per block and language the units' shares of the mean pairwise
// cosine, their z-scores across languages and the key units (neurons/key_linguistic.hpp); then, on the
// held-out share, the per-language perplexity with each language's key units ablated (set to 0, or to
// the unit's mean over all analysis sentences) against the same number of random units per block
// (control_draws seeded draws) and against no ablation. Tables OUT.key_neurons.csv, OUT.ablation.csv.
//
// repetition (science.md §6): `texts` prefixes of `prefix_tokens` tokens sampled from the tokenized
// corpus (seeded), each continued greedily for `new_tokens` tokens (EOS is a token like any other);
// the repetition in each text (neurons/repetition.hpp); over the texts whose second occurrence starts at
// `min_second` or later (and has `span` tokens either side), every unit's mean activation over the span
// after it minus the span before it; the top-K units by that rise; then every prefix continued again
// with the top-K deactivated (0) and activated (+activate_value), and with as many random units per
// block (control_draws draws), and the repetition rate of each condition. Tables
// OUT.repetition_neurons.csv, OUT.repetition_rate.csv.
//
// sensitive_directions (science.md §7): every prompt's residual stream before each block of `blocks`,
// at its last token, pushed a length L (each of `lengths`) along a unit direction of each family
// (neurons/sensitive_directions.hpp: random, towards_other, gaussian); KL(p_orig || p_perturbed) of
// that token's next-token distribution per prompt, its mean and quantiles over prompts per family,
// block and length, and the length at which the mean crosses `kl_threshold`. Table
// OUT.sensitivity.csv.
//
// Work is split by batches as extract splits them, so results do not depend on the rank count beyond
// float rounding.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lmtopo::stages {

struct RepetitionOptions {
  int texts = 200, prefix_tokens = 10, new_tokens = 200;
  int ngram = 10, min_occurrences = 3, window = 100;  // neurons::RepetitionRule
  int min_second = 50, span = 30;
  long long top_k = 0;  // 0: 0.5% of all FFN units (at least 1)
  double activate_value = 1.0;
};

struct SensitiveOptions {
  std::vector<int> blocks;  // empty: the middle block, num_layers / 2
  std::vector<double> lengths{0, 1, 2, 4, 8, 16, 32, 64, 128};
  std::vector<std::string> families{"random", "towards_other", "gaussian"};
  double ridge = 0.01, kl_threshold = 0.1;
  // Family `sae`: one SAE decoder per studied block (safetensors, in --blocks order), the tensor named
  // `sae_tensor` of shape [features, hidden]; each prompt's direction is one of its (non-zero) rows.
  std::vector<std::string> sae_decoders;
  std::string sae_tensor = "W_dec";
};

// spatial (TopoLM's measurements, science.md §5): each sheet's units (a hook of every block) on a
// seeded grid (spatial/sheet.hpp; sheet_seed, per sheet and block), the prompts of two languages
// (`contrast`) mean-pooled, per unit Welch t and BH q, Moran's I of the t-map, clusters of significant
// units (q < alpha), and the correlation of responses against grid distance (spatial/statistics.hpp).
struct SpatialOptions {
  std::vector<std::string> contrast;                        // two languages of the prompts
  std::vector<std::string> sheets{"attn_output", "mlp_act"};
  int permutations = 999;
  double alpha = 0.05;
  std::uint64_t sheet_seed = 0;
  int max_distance = 8;
};

struct PromptsAndModel;

struct NeuronsOptions {
  std::string study = "key_linguistic";
  std::string model_dir, architecture, prompts;
  std::string output;  // .h5; the CSV tables are OUT without .h5 + .key_neurons.csv / .ablation.csv
  std::string special_tokens = "post_processor";
  std::string device = "cpu";
  int threads = 0;
  int batch = 16;
  double threshold = 2.0;   // key if z > threshold
  double held_out = 0.25;   // share of each language's prompts (its last ones in file order) for the ablation; 0: none
  std::string ablation = "zero";  // zero | mean
  int control_draws = 5;
  std::uint64_t seed = 0;  // control draws; repetition: also the prefixes
  RepetitionOptions repetition;
  SensitiveOptions sensitive;
  SpatialOptions spatial;
  nlohmann::json config;
  // When set (the job stage, one load for all the studies of an item): the prompts of `prompts`
  // and the model of `model_dir`, tokenized and loaded as the options above say; not owned.
  const PromptsAndModel* loaded = nullptr;
};

struct NeuronsSummary {
  int layers = 0;
  // key_linguistic
  int languages = 0;
  long long analysis_prompts = 0, held_out_prompts = 0, key_units = 0;
  double activation_seconds = 0, ablation_seconds = 0;  // the two phases, wall time on rank 0
  // repetition
  long long texts = 0, kept_texts = 0, top_k = 0, generated_tokens = 0;
  double generation_seconds = 0, rise_seconds = 0, intervention_seconds = 0;
  double base_rate = 0, deactivated_rate = 0, activated_rate = 0;
  // sensitive_directions
  long long prompts = 0, perturbed_rows = 0;
  double perturbation_seconds = 0;
  // spatial: the largest Moran's I over sheets and blocks
  double max_moran_i = 0;
};

NeuronsSummary run_neurons(const NeuronsOptions& options, MPI_Comm comm);

}  // namespace lmtopo::stages
