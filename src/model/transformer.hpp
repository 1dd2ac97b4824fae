// Decoder-only transformers on libtorch, loaded from Hugging Face checkpoint folders, with named
// hook points. libtorch stays inside transformer.cpp: this header exchanges plain arrays only.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/model_config.hpp"

namespace lmtopo::model {

// Hooks: see portable_hooks() and hook_point_names() in model_config.hpp.

enum class Pooling { none, last, mean };  // none: every token; last/mean over non-pad tokens
enum class WeightDType { float32, bfloat16, float16 };

struct Batch {
  std::int64_t batch = 0, seq = 0;
  std::vector<std::int64_t> ids;   // [batch, seq], padded
  std::vector<std::int64_t> mask;  // [batch, seq], 1 = token, 0 = pad (right or left padding)
  // Optional [batch, seq]: each token's position (rotary angle, learned position). Empty: its column
  // (continuing from a decoding cache's length). Left-padded generation numbers each row from its first
  // real token, as transformers' generate() does.
  std::vector<std::int64_t> positions;
};

struct HookResult {
  std::vector<std::string> points;  // module path of each point
  std::vector<std::int64_t> shape;  // [points, batch, width] pooled, or [points, batch, seq, width]
  std::vector<float> values;        // float32, row-major
};

// Interventions for the neuron and pruning studies, applied during the forward pass (all tokens):
//   iv.ffn_set[3] = {{17, 0.0f}};          // zero FFN unit 17 of block 3 (at mlp_act)
//   iv.ffn_add[3] = {{17, 1.0f}};          // add +1 to it
//   iv.residual_add[5] = direction;        // add a vector to the residual stream before block 5
//   iv.skip_blocks = {20, 21};             // drop blocks (layer-pruning evaluation)
//   iv.residual_add_at[5] = {{3, 7}, v};   // add row r of v [batch, hidden] at token column position[r] of
//                                          // row r only, before block 5 (sensitive directions)
// Hooks of a skipped block repeat its input (block_output) and are zero elsewhere.
struct RowResidualEdit {
  std::vector<std::int64_t> position;  // [batch]: the token column of each row (of the tokens this pass runs)
  std::vector<float> vectors;          // [batch, hidden]
};

struct Interventions {
  std::map<int, std::vector<std::pair<std::int64_t, float>>> ffn_set;
  std::map<int, std::vector<std::pair<std::int64_t, float>>> ffn_add;
  std::map<int, std::vector<float>> residual_add;
  std::vector<int> skip_blocks;
  std::map<int, RowResidualEdit> residual_add_at;
  bool empty() const {
    return ffn_set.empty() && ffn_add.empty() && residual_add.empty() && skip_blocks.empty() && residual_add_at.empty();
  }
};

// Keys and values of the tokens a model has already seen, per block, for incremental decoding: a
// forward pass given a cache runs only the new tokens, attends to the cached ones, and appends its own.
class DecodingCache {
 public:
  virtual ~DecodingCache() = default;
  // Positions held (padding included), i.e. the position of the next token.
  virtual std::int64_t length() const = 0;
};

class Transformer {
 public:
  // Loads DIR (config.json + safetensors); weights cast to `dtype` and placed on `device` ("cpu",
  // "cuda" = this rank's GPU (node-local rank modulo the visible GPUs), or "cuda:N"). Shape mismatches
  // with config.json or missing tensors -> InputError naming file and tensor; "cuda" without a visible
  // GPU -> InputError. forward() takes and returns host arrays whatever the device.
  static std::unique_ptr<Transformer> load(const std::string& dir, WeightDType dtype = WeightDType::float32,
                                           const std::string& architecture = "", const std::string& device = "cpu");
  virtual ~Transformer() = default;
  virtual const ModelConfig& config() const = 0;
  // Where the weights live, e.g. "cpu" or "cuda:0".
  virtual std::string device_name() const = 0;
  // Module path of point i of a portable hook, e.g. "gpt_neox.layers.3.post_attention_layernorm".
  virtual std::vector<std::string> point_names(const std::string& hook) const = 0;
  // Runs the batch and returns each requested hook pooled as that request asks, under the request's
  // key (several requests may read the same hook), and, if `logits`, the logits under the key
  // "logits" ([batch, seq, vocab]). With a `cache` (from new_decoding_cache(), same batch size),
  // `batch` continues the sequences the cache holds: its tokens take positions cache.length() onward,
  // attend to the cached keys (under the mask they were given with) and are appended to the cache;
  // hooks and logits cover the new tokens only.
  struct HookRequest {
    std::string hook;
    Pooling pooling;
    std::string key;
  };
  virtual std::map<std::string, HookResult> forward_requests(const Batch& batch, const std::vector<HookRequest>& requests,
                                                             bool logits = false, const Interventions& interventions = {},
                                                             DecodingCache* cache = nullptr) = 0;
  virtual std::unique_ptr<DecodingCache> new_decoding_cache() const = 0;
  // Negative log-likelihood (natural log, from float32 log-softmax of the logits) of every token given
  // the tokens before it, [batch, seq] row-major; 0 where nothing is predicted: pads and each row's
  // first real token.
  virtual std::vector<float> next_token_nll(const Batch& batch, const Interventions& interventions = {}) = 0;
  // The common case: every hook pooled the same way, keyed by its name.
  std::map<std::string, HookResult> forward(const Batch& batch, const std::vector<std::string>& hooks, Pooling pooling,
                                            bool logits = false, const Interventions& interventions = {}) {
    std::vector<HookRequest> requests;
    for (const auto& h : hooks) requests.push_back({h, pooling, h});
    return forward_requests(batch, requests, logits, interventions);
  }
};

// Sets libtorch's and OpenBLAS's thread counts: `threads` > 0 exactly, 0 the CPUs this process may
// run on (its MPI binding). Recorded in the outputs' provenance (core::compute_threads). Float sums
// can be ordered differently at another thread count, so results are bit-identical only at equal
// threads per rank (docs/models.md).
void configure_compute_threads(int threads = 0);
// 0 until configure_compute_threads ran in this process.
int configured_compute_threads();

}  // namespace lmtopo::model
