// Prompts as the model stages (extract, eval) feed them: tokenized with the special tokens asked for,
// grouped into global batches of similar lengths, and split over the ranks with about equal token
// counts. Batches (not prompts) are the unit, so each batch is computed the same way at any rank count.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/corpus.hpp"
#include "model/model_config.hpp"
#include "model/tokenizer.hpp"
#include "model/transformer.hpp"

namespace lmtopo::stages {

// `special_tokens`: post_processor (what tokenizer.json's post-processor adds), none, or bos. Every
// prompt must have a token and fit learned positions (gpt2); errors name the file and line.
std::vector<std::vector<std::int64_t>> tokenize_prompts(const std::vector<io::CorpusRecord>& prompts,
                                                        const std::string& prompts_path, const model::Tokenizer& tokenizer,
                                                        const model::ModelConfig& config, const std::string& special_tokens);

// Global batches: prompts in windows of `batch` x kSortWindowBatches in file order; within a window,
// stably sorted by token count and cut into batches of `batch` (little padding, and a batch's
// composition does not depend on the rank count). Ranks take contiguous runs of whole windows with
// about equal token counts, so a rank's prompts are the contiguous rows [lo, hi).
constexpr std::size_t kSortWindowBatches = 4;

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

}  // namespace lmtopo::stages
