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

// Portable hook names (design.md contract 6) and the number of points each yields for L blocks:
// post_attention_layernorm: L+1 (each block's MLP-branch norm output, then the final norm output);
// block_output: L+1 (embeddings, then each block's residual output); block_input: L;
// attn_output: L; mlp_act: L (FFN neurons: after the activation; SwiGLU: input of down_proj).
const std::vector<std::string>& portable_hooks();

enum class Pooling { none, last, mean };  // none: every token; last/mean over non-pad tokens
enum class WeightDType { float32, bfloat16, float16 };

struct Batch {
  std::int64_t batch = 0, seq = 0;
  std::vector<std::int64_t> ids;   // [batch, seq], padded
  std::vector<std::int64_t> mask;  // [batch, seq], 1 = token, 0 = pad (right or left padding)
};

struct HookResult {
  std::vector<std::string> points;  // module path of each point
  std::vector<std::int64_t> shape;  // [points, batch, width] pooled, or [points, batch, seq, width]
  std::vector<float> values;        // float32, row-major
};

class Transformer {
 public:
  // Loads DIR (config.json + safetensors); weights cast to `dtype`. Shape mismatches with
  // config.json or missing tensors -> InputError naming file and tensor.
  static std::unique_ptr<Transformer> load(const std::string& dir, WeightDType dtype = WeightDType::float32,
                                           const std::string& architecture = "");
  virtual ~Transformer() = default;
  virtual const ModelConfig& config() const = 0;
  // Module path of point i of a portable hook, e.g. "gpt_neox.layers.3.post_attention_layernorm".
  virtual std::vector<std::string> point_names(const std::string& hook) const = 0;
  // Runs the batch and returns the requested hooks (pooled as asked) and, if `logits`, the logits
  // under the key "logits" ([batch, seq, vocab]).
  virtual std::map<std::string, HookResult> forward(const Batch& batch, const std::vector<std::string>& hooks,
                                                    Pooling pooling, bool logits = false) = 0;
};

}  // namespace lmtopo::model
