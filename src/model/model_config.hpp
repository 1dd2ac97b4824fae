// Hugging Face config.json -> the sizes and options the runtime needs. No libtorch here.
#pragma once
#include <string>
#include <vector>

namespace lmtopo::model {

struct ModelConfig {
  std::string dir;
  std::string model_type;  // as config.json says: gpt_neox | llama | mistral | qwen2 | olmo | gpt2 | bloom
  // The module layout the runtime runs: gpt_neox | llama (also mistral, qwen2, olmo) | gpt2 | bloom.
  std::string family;
  int num_layers = 0;
  int hidden = 0;
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  int intermediate = 0;
  int vocab = 0;
  double norm_eps = 1e-5;
  std::string activation = "gelu";
  bool parallel_residual = true;  // gpt_neox
  double rotary_pct = 1.0;        // gpt_neox
  double rope_theta = 10000.0;
  // rope_scaling (llama): none | linear (positions / factor) | llama3 (per-frequency smoothing).
  std::string rope_type = "default";
  double rope_factor = 1.0, rope_low_freq_factor = 1.0, rope_high_freq_factor = 4.0;
  int rope_original_max_positions = 8192;
  bool attention_bias = true;
  bool mlp_bias = false;          // llama
  bool qkv_bias = false;          // qwen2: q, k and v projections have biases, o does not
  int sliding_window = 0;         // mistral: each token attends to itself and the window - 1 before it; 0: all
  bool parameter_free_norm = false;  // olmo (OLMo-1): LayerNorm without weight or bias, eps 1e-5
  double clip_qkv = 0;            // olmo: q, k, v clamped to [-clip, clip] after projection; 0: none
  bool tie_embeddings = false;
  int max_positions = 0;                 // gpt2: learned position embeddings
  bool residual_post_layernorm = false;  // bloom: apply_residual_connection_post_layernorm
  long long bos_id = -1, eos_id = -1, pad_id = -1;
};

// Architectures the runtime implements, for error messages and docs.
const std::vector<std::string>& supported_architectures();

// Portable hook names (design.md contract 6) and the module path of each point of one of them for a
// given architecture (InputError for an unknown hook). Points for L blocks:
// post_attention_layernorm: L+1 (each block's MLP-branch norm output, then the final norm output);
// block_output: L+1 (embeddings, then each block's residual output); block_input: L;
// attn_output: L; mlp_act: L (FFN neurons: after the activation; SwiGLU: input of down_proj).
const std::vector<std::string>& portable_hooks();
std::vector<std::string> hook_point_names(const ModelConfig& config, const std::string& hook);
// The width of each point of a hook: the FFN's intermediate size for mlp_act, the hidden size otherwise.
int hook_width(const ModelConfig& config, const std::string& hook);

// Reads DIR/config.json; `architecture` (from the job spec) overrides model_type. Unsupported types
// or features -> InputError listing what is supported.
ModelConfig read_model_config(const std::string& dir, const std::string& architecture = "");

}  // namespace lmtopo::model
