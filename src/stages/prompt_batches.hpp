// Prompts as the model stages (extract, eval) feed them: tokenized with the special tokens asked for,
// grouped into global batches of similar lengths, and split over the ranks with about equal token
// counts. Batches (not prompts) are the unit, so each batch is computed the same way at any rank count.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/corpus.hpp"
#include "model/model_config.hpp"
#include "model/tokenizer.hpp"
#include "model/transformer.hpp"

namespace lmtopo::stages {

// What extract, eval and generate start from, on every rank (reading and tokenizing all prompts is
// cheap next to the forward passes, and every rank then agrees on the batches without communication).
struct PromptsAndModel {
  std::vector<io::CorpusRecord> prompts;
  std::unique_ptr<model::Tokenizer> tokenizer;
  std::unique_ptr<model::Transformer> net;
  std::vector<std::vector<std::int64_t>> tokens;
};
struct ModelChoice {
  std::string dir, architecture, device = "cpu";
  model::WeightDType dtype = model::WeightDType::float32;
  int threads = 0;  // compute threads per rank; 0: the rank's CPUs
};
PromptsAndModel load_prompts_and_model(const std::string& prompts_path, const ModelChoice& model,
                                       const std::string& special_tokens);

// `special_tokens`: post_processor (what tokenizer.json's post-processor adds), none, or bos. Every
// prompt must have a token and fit learned positions (gpt2); errors name the file and line.
std::vector<std::vector<std::int64_t>> tokenize_prompts(const std::vector<io::CorpusRecord>& prompts,
                                                        const std::string& prompts_path, const model::Tokenizer& tokenizer,
                                                        const model::ModelConfig& config, const std::string& special_tokens);

// Global batches: prompts in windows of up to `batch` x kSortWindowBatches in file order; within a
// window, stably sorted by token count and cut into batches of `batch` (little padding, and a batch's
// composition does not depend on the rank count). Ranks take contiguous runs of whole windows with
// about equal token counts, so a rank's prompts are the contiguous rows [lo, hi). Windows shrink (to
// one batch at least) while there would be fewer than kMinWindows of them, so that a few large batches
// (200 generated texts at batch 100) still spread over the ranks; this depends on the prompt count and
// the batch only, never on the rank count.
constexpr std::size_t kSortWindowBatches = 4;
constexpr std::size_t kMinWindows = 16;
std::size_t sort_window(std::size_t prompts, std::size_t batch);

struct BatchShare {
  std::size_t lo = 0, hi = 0;                       // this rank's prompts [lo, hi)
  std::vector<std::vector<std::size_t>> batches;    // this rank's batches (prompt indices)
  std::vector<std::size_t> prompts_per_rank;        // every rank's count
  int reporter = 0;                                 // the rank with the largest share: it shows progress
};
BatchShare share_batches(const std::vector<std::vector<std::int64_t>>& tokens, std::size_t batch, int rank, int ranks);

// The given prompts right-padded with `pad` (the mask decides what counts).
model::Batch right_padded_batch(const std::vector<std::vector<std::int64_t>>& tokens, const std::vector<std::size_t>& prompts,
                                std::int64_t pad);
// The given sequences left-padded with `pad`, each row's positions counted from its first real token
// (pads at 0), so that every row's last token is in the last column (generation).
model::Batch left_padded_batch(const std::vector<std::vector<std::int64_t>>& sequences, std::int64_t pad);

}  // namespace lmtopo::stages
