#include "model/model_config.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"

namespace lmtopo::model {

const std::vector<std::string>& supported_architectures() {
  static const std::vector<std::string> names = {"gpt_neox", "llama", "mistral", "qwen2", "olmo", "gpt2", "bloom"};
  return names;
}

namespace {

using nlohmann::json;

const std::set<std::string>& generic_harmless_fields();

// Typed access to config.json that remembers which fields were read, so that every field left over
// can be judged at the end: a field that changes the forward pass and is not implemented is refused
// by name instead of being ignored. Every error names the file and the field.
class ConfigFields {
 public:
  ConfigFields(json j, std::string path) : j_(std::move(j)), path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw InputError(path_ + ": " + key + ": " + what);
  }
  bool has(const std::string& key) const { return j_.contains(key) && !j_[key].is_null(); }
  const json& raw(const std::string& key) {
    read_.insert(key);
    return j_[key];
  }
  int positive_int(const std::string& key) {
    read_.insert(key);
    if (!j_.contains(key)) fail(key, "missing (expected a positive integer)");
    return checked_int(key, j_[key], 1);
  }
  int optional_positive_int(const std::string& key, int fallback) {
    read_.insert(key);
    return has(key) ? checked_int(key, j_[key], 1) : fallback;
  }
  long long token_id(const std::string& key) {
    read_.insert(key);
    if (!has(key) || j_[key].is_array()) return -1;  // a list of EOS ids (Llama 3) is not a single id
    if (!j_[key].is_number_integer()) fail(key, "expected an integer token id or null");
    return j_[key].get<long long>();
  }
  double positive_number(const std::string& key, double fallback) {
    read_.insert(key);
    if (!has(key)) return fallback;
    if (!j_[key].is_number() || !(j_[key].get<double>() > 0) || !std::isfinite(j_[key].get<double>()))
      fail(key, "expected a positive number, got " + j_[key].dump());
    return j_[key].get<double>();
  }
  bool boolean(const std::string& key, bool fallback) {
    read_.insert(key);
    if (!has(key)) return fallback;
    if (!j_[key].is_boolean()) fail(key, "expected true or false, got " + j_[key].dump());
    return j_[key].get<bool>();
  }
  std::string string(const std::string& key, const std::string& fallback) {
    read_.insert(key);
    if (!has(key)) return fallback;
    if (!j_[key].is_string()) fail(key, "expected a string, got " + j_[key].dump());
    return j_[key].get<std::string>();
  }
  // A field the runtime does not implement but that is harmless at one value (e.g. sliding_window
  // null): accepted at that value (or when absent or null), refused otherwise.
  void require_neutral(const std::string& key, const json& neutral, const std::string& why) {
    read_.insert(key);
    if (has(key) && j_[key] != neutral)
      fail(key, "not implemented by lmtopo (" + why + "); refusing the checkpoint rather than computing different states");
  }
  // Fields neither read nor known to be harmless: refused by name.
  void refuse_unread(const std::string& family, const std::set<std::string>& harmless) const {
    for (const auto& [key, value] : j_.items()) {
      if (read_.count(key) || harmless.count(key) || generic_harmless_fields().count(key) || value.is_null()) continue;
      if (is_dropout(key)) continue;
      fail(key, "unknown to lmtopo's " + family +
                    " runtime (not read, and not known to leave the inference forward pass unchanged); refusing rather than ignoring it");
    }
  }

 private:
  static bool is_dropout(const std::string& key) {
    // Dropout probabilities: inference runs without dropout (eval mode), as transformers does.
    auto ends = [&](const std::string& s) { return key.size() >= s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0; };
    return ends("dropout") || ends("_pdrop") || ends("dropout_prob") || ends("dropout_rate");
  }
  int checked_int(const std::string& key, const json& v, long long min) const {
    if (!v.is_number_integer()) fail(key, "expected an integer, got " + v.dump());
    const long long x = v.get<long long>();
    if (x < min || x > (1LL << 30)) fail(key, "expected an integer in [" + std::to_string(min) + ", 2^30], got " + std::to_string(x));
    return static_cast<int>(x);
  }
  json j_;
  std::string path_;
  std::set<std::string> read_;
};

// PretrainedConfig's generic attributes: metadata, generation defaults, task heads and training
// switches that leave a plain causal-LM forward pass in eval mode unchanged.
const std::set<std::string>& generic_harmless_fields() {
  static const std::set<std::string> names = {
      "_name_or_path", "_commit_hash", "_attn_implementation", "_attn_implementation_autoset", "attn_implementation",
      "architectures", "auto_map", "transformers_version", "torch_dtype", "dtype", "use_bfloat16", "model_type",
      "return_dict", "output_hidden_states", "output_attentions", "torchscript", "tf_legacy_loss", "use_cache",
      "chunk_size_feed_forward", "is_decoder", "is_encoder_decoder", "tie_encoder_decoder", "cross_attention_hidden_size",
      "max_length", "min_length", "do_sample", "early_stopping", "num_beams", "num_beam_groups", "diversity_penalty",
      "temperature", "top_k", "top_p", "typical_p", "repetition_penalty", "length_penalty", "no_repeat_ngram_size",
      "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences", "output_scores",
      "return_dict_in_generate", "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values",
      "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens", "finetuning_task", "id2label",
      "label2id", "num_labels", "tokenizer_class", "prefix", "sep_token_id", "unk_token_id", "decoder_start_token_id",
      "task_specific_params", "problem_type", "initializer_range", "gradient_checkpointing", "max_position_embeddings",
      "pretraining_tp", "custom_pipelines"};
  return names;
}

}  // namespace

namespace {

void read_rope_scaling(ConfigFields& f, ModelConfig& c) {
  if (!f.has("rope_scaling")) {
    f.raw("rope_scaling");
    return;
  }
  const json& r = f.raw("rope_scaling");
  if (!r.is_object()) f.fail("rope_scaling", "expected an object or null");
  const char* type_key = r.contains("rope_type") ? "rope_type" : "type";
  if (r.contains(type_key) && !r[type_key].is_string()) f.fail(std::string("rope_scaling.") + type_key, "expected a string");
  c.rope_type = r.value(type_key, std::string("default"));
  if (c.rope_type != "default" && c.rope_type != "linear" && c.rope_type != "llama3")
    f.fail("rope_scaling.rope_type", "unsupported '" + c.rope_type + "' (supported: default, linear, llama3)");
  std::set<std::string> used = {"rope_type", "type"};
  auto number = [&](const char* key, double fallback, bool required) {
    used.insert(key);
    if (!r.contains(key)) {
      if (required) f.fail(std::string("rope_scaling.") + key, "missing (needed by rope_type " + c.rope_type + ")");
      return fallback;
    }
    if (!r[key].is_number() || !(r[key].get<double>() > 0))
      f.fail(std::string("rope_scaling.") + key, "expected a positive number");
    return r[key].get<double>();
  };
  if (c.rope_type != "default") c.rope_factor = number("factor", 1.0, true);
  if (c.rope_type == "llama3") {
    c.rope_low_freq_factor = number("low_freq_factor", 1.0, true);
    c.rope_high_freq_factor = number("high_freq_factor", 4.0, true);
    c.rope_original_max_positions = static_cast<int>(number("original_max_position_embeddings", 8192, true));
    if (c.rope_high_freq_factor <= c.rope_low_freq_factor)
      f.fail("rope_scaling.high_freq_factor", "expected more than low_freq_factor");
  }
  for (const auto& [key, value] : r.items())
    if (!used.count(key) && !value.is_null())
      f.fail("rope_scaling." + key, "not implemented for rope_type " + c.rope_type + "; refusing rather than ignoring it");
}

// The sizes every family has, under the family's names (KV heads default to the heads).
void read_sizes(ConfigFields& f, ModelConfig& c, const char* layers, const char* hidden, const char* heads) {
  c.num_layers = f.positive_int(layers);
  c.hidden = f.positive_int(hidden);
  c.heads = f.positive_int(heads);
  c.kv_heads = c.heads;
  c.vocab = f.positive_int("vocab_size");
}

// Returns the fields of this family that are harmless when left unread.
std::set<std::string> read_gpt_neox(ConfigFields& f, ModelConfig& c) {
  read_sizes(f, c, "num_hidden_layers", "hidden_size", "num_attention_heads");
  c.intermediate = f.positive_int("intermediate_size");
  c.norm_eps = f.positive_number("layer_norm_eps", 1e-5);
  c.activation = f.string("hidden_act", "gelu");
  c.parallel_residual = f.boolean("use_parallel_residual", true);
  // transformers >= 4.45 calls rotary_pct partial_rotary_factor; both are read, and must agree.
  c.rotary_pct = f.positive_number("rotary_pct", f.positive_number("partial_rotary_factor", 1.0));
  if (f.has("partial_rotary_factor") && f.positive_number("partial_rotary_factor", 1.0) != c.rotary_pct)
    f.fail("partial_rotary_factor", "disagrees with rotary_pct");
  if (c.rotary_pct > 1) f.fail("rotary_pct", "expected a share in (0, 1]");
  c.rope_theta = f.positive_number("rope_theta", f.positive_number("rotary_emb_base", 10000.0));
  c.attention_bias = f.boolean("attention_bias", true);
  c.tie_embeddings = f.boolean("tie_word_embeddings", false);
  read_rope_scaling(f, c);
  if (c.rope_type == "llama3") f.fail("rope_scaling.rope_type", "llama3 scaling is Llama's; on gpt_neox lmtopo implements linear");
  return {"layer_norm_epsilon"};
}

// The sizes, activation and rotary base every family in Llama's module layout reads alike.
void read_llama_layout(ConfigFields& f, ModelConfig& c) {
  read_sizes(f, c, "num_hidden_layers", "hidden_size", "num_attention_heads");
  c.kv_heads = f.optional_positive_int("num_key_value_heads", c.heads);
  c.intermediate = f.positive_int("intermediate_size");
  c.activation = f.string("hidden_act", "silu");
  c.rope_theta = f.positive_number("rope_theta", 10000.0);
}

// Returns the fields of this family that are harmless when left unread.
std::set<std::string> read_llama(ConfigFields& f, ModelConfig& c) {
  read_llama_layout(f, c);
  c.norm_eps = f.positive_number("rms_norm_eps", 1e-6);
  c.attention_bias = f.boolean("attention_bias", false);
  c.mlp_bias = f.boolean("mlp_bias", false);
  c.tie_embeddings = f.boolean("tie_word_embeddings", false);
  read_rope_scaling(f, c);
  // Mistral-style checkpoints read as llama: a window would change every prompt longer than it.
  f.require_neutral("sliding_window", json(nullptr), "sliding-window attention");
  f.require_neutral("use_sliding_window", json(false), "sliding-window attention");
  return {};
}

// Mistral: Llama's layout with sliding-window attention (a window of null: none).
std::set<std::string> read_mistral(ConfigFields& f, ModelConfig& c) {
  read_llama_layout(f, c);
  c.norm_eps = f.positive_number("rms_norm_eps", 1e-6);
  c.tie_embeddings = f.boolean("tie_word_embeddings", false);
  c.attention_bias = false;
  c.sliding_window = f.optional_positive_int("sliding_window", 0);
  return {};
}

// Qwen2: Llama's layout with q/k/v biases. Its sliding window (use_sliding_window, applied from layer
// max_window_layers on) is not implemented: refused when on, and its sizes are inert when off.
std::set<std::string> read_qwen2(ConfigFields& f, ModelConfig& c) {
  read_llama_layout(f, c);
  c.norm_eps = f.positive_number("rms_norm_eps", 1e-6);
  c.tie_embeddings = f.boolean("tie_word_embeddings", false);
  c.attention_bias = false;
  c.qkv_bias = true;
  read_rope_scaling(f, c);
  f.require_neutral("use_sliding_window", json(false), "Qwen2's sliding-window attention");
  return {"sliding_window", "max_window_layers"};
}

// OLMo-1: Llama's layout with parameter-free LayerNorms and optional clipping of q, k, v.
std::set<std::string> read_olmo(ConfigFields& f, ModelConfig& c) {
  read_llama_layout(f, c);
  c.norm_eps = 1e-5;  // OlmoLayerNorm's, fixed
  c.attention_bias = f.boolean("attention_bias", false);
  c.tie_embeddings = f.boolean("tie_word_embeddings", false);
  c.clip_qkv = f.positive_number("clip_qkv", 0);
  c.parameter_free_norm = true;
  read_rope_scaling(f, c);
  return {};
}

// Returns the fields of this family that are harmless when left unread.
std::set<std::string> read_gpt2(ConfigFields& f, ModelConfig& c) {
  read_sizes(f, c, "n_layer", "n_embd", "n_head");
  c.intermediate = f.optional_positive_int("n_inner", 4 * c.hidden);
  c.max_positions = f.positive_int("n_positions");
  c.norm_eps = f.positive_number("layer_norm_epsilon", 1e-5);
  c.activation = f.string("activation_function", "gelu_new");
  c.tie_embeddings = f.boolean("tie_word_embeddings", true);
  f.require_neutral("scale_attn_weights", json(true), "attention scores without the 1/sqrt(head_dim) scale");
  f.require_neutral("scale_attn_by_inverse_layer_idx", json(false), "scores scaled by 1/(layer index + 1)");
  f.require_neutral("reorder_and_upcast_attn", json(false), "upcast attention");
  return {"n_ctx", "summary_type", "summary_use_proj", "summary_activation", "summary_proj_to_labels",
                           "summary_first_dropout"};
}

// Returns the fields of this family that are harmless when left unread.
std::set<std::string> read_bloom(ConfigFields& f, ModelConfig& c) {
  // BLOOM's config accepts either name of each size.
  read_sizes(f, c, f.has("n_layer") ? "n_layer" : "num_hidden_layers", f.has("hidden_size") ? "hidden_size" : "n_embed",
             f.has("n_head") ? "n_head" : "num_attention_heads");
  c.intermediate = 4 * c.hidden;
  c.norm_eps = f.positive_number("layer_norm_epsilon", 1e-5);
  c.activation = "gelu_pytorch_tanh";
  c.tie_embeddings = f.boolean("tie_word_embeddings", true);
  c.residual_post_layernorm = f.boolean("apply_residual_connection_post_layernorm", false);
  f.require_neutral("n_inner", json(nullptr), "an FFN width other than 4 x hidden_size");
  // Megatron training switches and fused-kernel flags: the same function in eval mode.
  return {"attention_softmax_in_fp32", "bias_dropout_fusion", "masked_softmax_fusion", "offset_alibi",
                            "seq_length", "skip_bias_add", "skip_bias_add_qkv", "slow_but_exact"};
}

}  // namespace

ModelConfig read_model_config(const std::string& dir, const std::string& architecture) {
  const std::string path = (std::filesystem::path(dir) / "config.json").string();
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open the model config");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception&) {  // parse_error, or out_of_range for a number overflow
    throw InputError(path + ": corrupt config.json (not JSON)");
  }
  if (!j.is_object()) throw InputError(path + ": expected a JSON object");
  ConfigFields f(j, path);
  ModelConfig c;
  c.dir = dir;
  c.model_type = architecture.empty() ? f.string("model_type", "") : architecture;
  f.raw("model_type");
  c.bos_id = f.token_id("bos_token_id");
  c.eos_id = f.token_id("eos_token_id");
  c.pad_id = f.token_id("pad_token_id");
  f.require_neutral("pruned_heads", json::object(), "pruned attention heads");
  f.require_neutral("add_cross_attention", json(false), "cross-attention");
  f.require_neutral("quantization_config", json(nullptr), "quantized weights");
  std::set<std::string> harmless;
  if (c.model_type == "gpt_neox") {
    harmless = read_gpt_neox(f, c);
  } else if (c.model_type == "llama") {
    harmless = read_llama(f, c);
  } else if (c.model_type == "mistral") {
    harmless = read_mistral(f, c);
  } else if (c.model_type == "qwen2") {
    harmless = read_qwen2(f, c);
  } else if (c.model_type == "olmo") {
    harmless = read_olmo(f, c);
  } else if (c.model_type == "gpt2") {
    harmless = read_gpt2(f, c);
  } else if (c.model_type == "bloom") {
    harmless = read_bloom(f, c);
  } else {
    std::string supported;
    for (const auto& a : supported_architectures()) supported += (supported.empty() ? "" : ", ") + a;
    f.fail("model_type", "unsupported '" + c.model_type + "' (supported: " + supported + ")");
  }
  const bool llama_layout = c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2" || c.model_type == "olmo";
  c.family = llama_layout ? "llama" : c.model_type;
  if (c.heads % c.kv_heads != 0)
    f.fail("num_key_value_heads", "expected a divisor of num_attention_heads (" + std::to_string(c.heads) + "), got " +
                                     std::to_string(c.kv_heads));
  // head_dim: llama reads an explicit one (heads x head_dim may differ from hidden_size); the other
  // families derive it and accept the field only when it says the same.
  const int explicit_head_dim = f.optional_positive_int("head_dim", 0);
  if (explicit_head_dim > 0 && (c.model_type == "llama" || c.model_type == "mistral")) {
    c.head_dim = explicit_head_dim;
  } else {
    if (c.hidden % c.heads != 0)
      f.fail("num_attention_heads", "expected a divisor of hidden_size (" + std::to_string(c.hidden) + "), got " + std::to_string(c.heads));
    c.head_dim = c.hidden / c.heads;
    if (explicit_head_dim > 0 && explicit_head_dim != c.head_dim)
      f.fail("head_dim", "expected hidden_size / num_attention_heads = " + std::to_string(c.head_dim) + " for " + c.model_type);
  }
  f.refuse_unread(c.model_type, harmless);
  const std::vector<std::string> acts = {"gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "relu", "silu"};
  if (std::find(acts.begin(), acts.end(), c.activation) == acts.end())
    f.fail(c.model_type == "gpt2" ? "activation_function" : "hidden_act",
           "unsupported '" + c.activation + "' (supported: gelu, gelu_new, gelu_fast, gelu_pytorch_tanh, relu, silu)");
  return c;
}

const std::vector<std::string>& portable_hooks() {
  static const std::vector<std::string> names = {"post_attention_layernorm", "block_output", "block_input",
                                                 "attn_output", "mlp_act"};
  return names;
}

int hook_width(const ModelConfig& config, const std::string& hook) { return hook == "mlp_act" ? config.intermediate : config.hidden; }

std::vector<std::string> hook_point_names(const ModelConfig& config, const std::string& hook) {
  // Module paths as in the Hugging Face implementation of each family.
  struct Paths {
    const char* layers;
    const char* ln2;
    const char* final_norm;
    const char* embeddings;
    const char* attn;
    const char* act;
  };
  static const std::map<std::string, Paths> families = {
      {"gpt_neox", {"gpt_neox.layers.", ".post_attention_layernorm", "gpt_neox.final_layer_norm", "gpt_neox.embed_in",
                    ".attention", ".mlp.act"}},
      {"llama", {"model.layers.", ".post_attention_layernorm", "model.norm", "model.embed_tokens", ".self_attn",
                 ".mlp.down_proj:input"}},
      {"gpt2", {"transformer.h.", ".ln_2", "transformer.ln_f", "transformer.drop", ".attn", ".mlp.act"}},
      // BLOOM's attention module adds the residual; the hook is the branch before that addition.
      {"bloom", {"transformer.h.", ".post_attention_layernorm", "transformer.ln_f",
                 "transformer.word_embeddings_layernorm", ".self_attention:branch", ".mlp.gelu_impl"}},
  };
  const Paths& f = families.at(config.family);
  std::vector<std::string> out;
  auto layer = [&](int i) { return std::string(f.layers) + std::to_string(i); };
  if (hook == "post_attention_layernorm") {
    for (int i = 0; i < config.num_layers; ++i) out.push_back(layer(i) + f.ln2);
    out.push_back(f.final_norm);
  } else if (hook == "block_output") {
    out.push_back(f.embeddings);
    for (int i = 0; i < config.num_layers; ++i) out.push_back(layer(i));
  } else if (hook == "block_input") {
    for (int i = 0; i < config.num_layers; ++i) out.push_back(layer(i) + ":input");
  } else if (hook == "attn_output") {
    for (int i = 0; i < config.num_layers; ++i) out.push_back(layer(i) + f.attn);
  } else if (hook == "mlp_act") {
    for (int i = 0; i < config.num_layers; ++i) out.push_back(layer(i) + f.act);
  } else {
    std::string names;
    for (const auto& h : portable_hooks()) names += (names.empty() ? "" : ", ") + h;
    throw InputError("unknown hook '" + hook + "' (expected one of: " + names + ")");
  }
  return out;
}

}  // namespace lmtopo::model
