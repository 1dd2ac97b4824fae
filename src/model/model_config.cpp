#include "model/model_config.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace lmtopo::model {

const std::vector<std::string>& supported_architectures() {
  static const std::vector<std::string> names = {"gpt_neox", "llama", "gpt2", "bloom"};
  return names;
}

ModelConfig read_model_config(const std::string& dir, const std::string& architecture) {
  const std::string path = (std::filesystem::path(dir) / "config.json").string();
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open the model config");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error&) {
    throw InputError(path + ": corrupt config.json (not JSON)");
  }
  ModelConfig c;
  c.dir = dir;
  c.model_type = architecture.empty() ? j.value("model_type", "") : architecture;
  std::string supported;
  for (const auto& a : supported_architectures()) supported += (supported.empty() ? "" : ", ") + a;
  auto need_int = [&](const char* key) {
    if (!j.contains(key) || !j[key].is_number_integer()) throw InputError(path + ": " + key + ": expected an integer");
    return j[key].get<int>();
  };
  auto id = [&](const char* key) -> long long {
    return j.contains(key) && j[key].is_number_integer() ? j[key].get<long long>() : -1;
  };
  c.bos_id = id("bos_token_id");
  c.eos_id = id("eos_token_id");
  c.pad_id = id("pad_token_id");
  c.tie_embeddings = j.value("tie_word_embeddings", false);
  if (c.model_type == "gpt_neox") {
    c.num_layers = need_int("num_hidden_layers");
    c.hidden = need_int("hidden_size");
    c.heads = need_int("num_attention_heads");
    c.kv_heads = c.heads;
    c.intermediate = need_int("intermediate_size");
    c.vocab = need_int("vocab_size");
    c.norm_eps = j.value("layer_norm_eps", 1e-5);
    c.activation = j.value("hidden_act", "gelu");
    c.parallel_residual = j.value("use_parallel_residual", true);
    c.rotary_pct = j.value("rotary_pct", 1.0);
    c.rope_theta = j.contains("rope_theta") ? j["rope_theta"].get<double>() : j.value("rotary_emb_base", 10000.0);
    c.attention_bias = j.value("attention_bias", true);
  } else if (c.model_type == "llama") {
    c.num_layers = need_int("num_hidden_layers");
    c.hidden = need_int("hidden_size");
    c.heads = need_int("num_attention_heads");
    c.kv_heads = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null() ? j["num_key_value_heads"].get<int>() : c.heads;
    c.intermediate = need_int("intermediate_size");
    c.vocab = need_int("vocab_size");
    c.norm_eps = j.value("rms_norm_eps", 1e-6);
    c.activation = j.value("hidden_act", "silu");
    c.rope_theta = j.value("rope_theta", 10000.0);
    c.attention_bias = j.value("attention_bias", false);
    c.mlp_bias = j.value("mlp_bias", false);
    if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
      const auto& r = j["rope_scaling"];
      const std::string field = path + ": rope_scaling";
      if (!r.is_object()) throw InputError(field + ": expected an object or null");
      const char* type_key = r.contains("rope_type") ? "rope_type" : "type";
      if (r.contains(type_key) && !r[type_key].is_string()) throw InputError(field + "." + type_key + ": expected a string");
      c.rope_type = r.value(type_key, std::string("default"));
      if (c.rope_type != "default" && c.rope_type != "linear" && c.rope_type != "llama3")
        throw InputError(field + ".rope_type: unsupported '" + c.rope_type + "' (supported: default, linear, llama3)");
      auto number = [&](const char* key, double fallback, bool required) {
        if (!r.contains(key)) {
          if (required) throw InputError(field + "." + key + ": missing (needed by rope_type " + c.rope_type + ")");
          return fallback;
        }
        if (!r[key].is_number() || r[key].get<double>() <= 0) throw InputError(field + "." + key + ": expected a positive number");
        return r[key].get<double>();
      };
      if (c.rope_type != "default") c.rope_factor = number("factor", 1.0, true);
      if (c.rope_type == "llama3") {
        c.rope_low_freq_factor = number("low_freq_factor", 1.0, true);
        c.rope_high_freq_factor = number("high_freq_factor", 4.0, true);
        c.rope_original_max_positions = static_cast<int>(number("original_max_position_embeddings", 8192, true));
        if (c.rope_high_freq_factor <= c.rope_low_freq_factor)
          throw InputError(field + ".high_freq_factor: expected more than low_freq_factor");
      }
    }
  } else if (c.model_type == "gpt2") {
    c.num_layers = need_int("n_layer");
    c.hidden = need_int("n_embd");
    c.heads = need_int("n_head");
    c.kv_heads = c.heads;
    c.intermediate = j.contains("n_inner") && j["n_inner"].is_number_integer() ? j["n_inner"].get<int>() : 4 * c.hidden;
    c.vocab = need_int("vocab_size");
    c.max_positions = need_int("n_positions");
    c.norm_eps = j.value("layer_norm_epsilon", 1e-5);
    c.activation = j.value("activation_function", "gelu_new");
    c.tie_embeddings = j.value("tie_word_embeddings", true);
    if (j.value("scale_attn_by_inverse_layer_idx", false) || j.value("reorder_and_upcast_attn", false))
      throw InputError(path + ": scale_attn_by_inverse_layer_idx/reorder_and_upcast_attn: not supported (supported: false)");
  } else if (c.model_type == "bloom") {
    c.num_layers = need_int("n_layer");
    c.hidden = j.contains("hidden_size") ? need_int("hidden_size") : need_int("n_embed");
    c.heads = need_int("n_head");
    c.kv_heads = c.heads;
    c.intermediate = 4 * c.hidden;
    c.vocab = need_int("vocab_size");
    c.norm_eps = j.value("layer_norm_epsilon", 1e-5);
    c.activation = "gelu_pytorch_tanh";
    c.tie_embeddings = j.value("tie_word_embeddings", true);
    c.residual_post_layernorm = j.value("apply_residual_connection_post_layernorm", false);
  } else {
    throw InputError(path + ": model_type: unsupported '" + c.model_type + "' (supported: " + supported + ")");
  }
  c.head_dim = j.contains("head_dim") && j["head_dim"].is_number_integer() ? j["head_dim"].get<int>() : c.hidden / c.heads;
  if (c.heads <= 0 || c.hidden % c.heads != 0 || c.kv_heads <= 0 || c.heads % c.kv_heads != 0)
    throw InputError(path + ": num_attention_heads: expected a divisor of hidden_size and a multiple of num_key_value_heads");
  const std::vector<std::string> acts = {"gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "relu", "silu"};
  if (std::find(acts.begin(), acts.end(), c.activation) == acts.end())
    throw InputError(path + ": hidden_act: unsupported '" + c.activation + "' (supported: gelu, gelu_new, gelu_fast, gelu_pytorch_tanh, relu, silu)");
  return c;
}

const std::vector<std::string>& portable_hooks() {
  static const std::vector<std::string> names = {"post_attention_layernorm", "block_output", "block_input",
                                                 "attn_output", "mlp_act"};
  return names;
}

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
  const Paths& f = families.at(config.model_type);
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
