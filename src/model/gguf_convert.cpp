#include "model/gguf_convert.hpp"

#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "core/error.hpp"
#include "core/hashing.hpp"
#include "core/provenance.hpp"
#include "io/ggml_quant.hpp"
#include "io/gguf.hpp"
#include "io/safetensors.hpp"

namespace fs = std::filesystem;

namespace lmtopo::model {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr const char* kProvenanceFile = "lmtopo_convert.json";
constexpr const char* kProvenanceSchema = "lmtopo.convert/1";

// Typed access to the GGUF metadata that remembers what was read, so that every key of the families
// lmtopo converts (llama.*, tokenizer.*, split.*) is either used, known to be harmless, or refused by
// name. Errors name the file and the key.
class GgufKeys {
 public:
  explicit GgufKeys(const io::GgufFile& f) : f_(f) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw InputError(f_.path() + ": " + key + ": " + what);
  }
  bool has(const std::string& key) const { return f_.metadata().contains(key); }
  const json& raw(const std::string& key) {
    read_.insert(key);
    if (!has(key)) fail(key, "missing");
    return f_.metadata()[key];
  }
  std::int64_t count(const std::string& key) {
    const auto& v = raw(key);
    if (!v.is_number_integer() || v.get<std::int64_t>() < 1 || v.get<std::int64_t>() > (1 << 30))
      fail(key, "expected a positive integer, got " + v.dump());
    return v.get<std::int64_t>();
  }
  std::int64_t count_or(const std::string& key, std::int64_t fallback) { return has(key) ? count(key) : fallback; }
  double positive_or(const std::string& key, double fallback) {
    if (!has(key)) return fallback;
    const auto& v = raw(key);
    if (!v.is_number() || !(v.get<double>() > 0) || !std::isfinite(v.get<double>()))
      fail(key, "expected a positive number, got " + v.dump());
    return v.get<double>();
  }
  bool flag_or(const std::string& key, bool fallback) {
    if (!has(key)) return fallback;
    const auto& v = raw(key);
    if (!v.is_boolean()) fail(key, "expected true or false");
    return v.get<bool>();
  }
  std::string text_or(const std::string& key, const std::string& fallback) {
    if (!has(key)) return fallback;
    const auto& v = raw(key);
    if (!v.is_string()) fail(key, "expected a string");
    return v.get<std::string>();
  }
  std::int64_t token_id_or(const std::string& key, std::int64_t vocab) {
    if (!has(key)) return -1;
    const auto& v = raw(key);
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() >= vocab)
      fail(key, "expected a token id below " + std::to_string(vocab) + ", got " + v.dump());
    return v.get<std::int64_t>();
  }
  // Every key under the converted prefixes must have been read or be harmless metadata.
  void refuse_unread(const std::set<std::string>& harmless) const {
    for (const auto& [key, value] : f_.metadata().items()) {
      const bool ours = key.rfind("llama.", 0) == 0 || key.rfind("tokenizer.", 0) == 0 || key.rfind("split.", 0) == 0;
      const bool token_id = key.rfind("tokenizer.ggml.", 0) == 0 && key.size() > 9 &&
                            key.compare(key.size() - 9, 9, "_token_id") == 0;  // FIM/EOT ids: labels only
      if (ours && !read_.count(key) && !harmless.count(key) && !token_id)
        fail(key, "not implemented by lmtopo convert; refusing the file rather than converting it differently");
    }
  }

 private:
  const io::GgufFile& f_;
  std::set<std::string> read_;
};

struct LlamaShape {
  std::int64_t layers, hidden, ffn, heads, kv_heads, head_dim, context, vocab;
  double rope_theta, rms_eps, rope_linear_factor = 0;
};

LlamaShape read_llama_shape(GgufKeys& k, std::int64_t vocab_from_tokens) {
  LlamaShape s{};
  s.layers = k.count("llama.block_count");
  s.hidden = k.count("llama.embedding_length");
  s.ffn = k.count("llama.feed_forward_length");
  s.heads = k.count("llama.attention.head_count");
  s.kv_heads = k.count_or("llama.attention.head_count_kv", s.heads);
  s.context = k.count("llama.context_length");
  s.rope_theta = k.positive_or("llama.rope.freq_base", 10000.0);
  s.rms_eps = k.positive_or("llama.attention.layer_norm_rms_epsilon", 1e-5);
  s.vocab = k.count_or("llama.vocab_size", vocab_from_tokens);
  if (s.hidden % s.heads != 0 || s.heads % s.kv_heads != 0)
    k.fail("llama.attention.head_count", "heads must divide embedding_length and be a multiple of head_count_kv");
  s.head_dim = s.hidden / s.heads;
  for (const char* key : {"llama.rope.dimension_count", "llama.attention.key_length", "llama.attention.value_length"})
    if (k.has(key) && k.count(key) != s.head_dim)
      k.fail(key, "must equal embedding_length / head_count = " + std::to_string(s.head_dim) + " (partial rotary or other head sizes are not implemented)");
  const std::string scaling = k.text_or("llama.rope.scaling.type", "none");
  if (scaling == "linear") s.rope_linear_factor = k.positive_or("llama.rope.scaling.factor", 1.0);
  else if (scaling != "none") k.fail("llama.rope.scaling.type", "'" + scaling + "' is not implemented (none, linear)");
  if (k.has("llama.expert_count") && k.raw("llama.expert_count") != json(0)) k.fail("llama.expert_count", "mixture of experts is not implemented");
  if (k.has("split.count") && k.raw("split.count") != json(1)) k.fail("split.count", "split GGUF files: merge them first (llama-gguf-split --merge)");
  if (vocab_from_tokens != s.vocab) k.fail("llama.vocab_size", "disagrees with tokenizer.ggml.tokens (" + std::to_string(vocab_from_tokens) + ")");
  return s;
}

ordered_json hf_config(const LlamaShape& s, bool tied, std::int64_t bos, std::int64_t eos, std::int64_t pad) {
  ordered_json c;
  c["architectures"] = {"LlamaForCausalLM"};
  c["model_type"] = "llama";
  c["hidden_size"] = s.hidden;
  c["intermediate_size"] = s.ffn;
  c["num_hidden_layers"] = s.layers;
  c["num_attention_heads"] = s.heads;
  c["num_key_value_heads"] = s.kv_heads;
  c["hidden_act"] = "silu";
  c["max_position_embeddings"] = s.context;
  c["rms_norm_eps"] = s.rms_eps;
  c["rope_theta"] = s.rope_theta;
  c["rope_scaling"] = s.rope_linear_factor > 0 ? ordered_json{{"type", "linear"}, {"factor", s.rope_linear_factor}} : ordered_json();
  c["attention_bias"] = false;
  c["mlp_bias"] = false;
  c["tie_word_embeddings"] = tied;
  c["vocab_size"] = s.vocab;
  c["bos_token_id"] = bos >= 0 ? ordered_json(bos) : ordered_json();
  c["eos_token_id"] = eos >= 0 ? ordered_json(eos) : ordered_json();
  c["pad_token_id"] = pad >= 0 ? ordered_json(pad) : ordered_json();
  c["torch_dtype"] = "float32";
  return c;
}

// One Hugging Face tensor and where it comes from.
struct TensorPlan {
  std::string hf_name;
  const io::GgufTensor* source;
  std::vector<std::int64_t> shape;  // Hugging Face order (rows, cols) or (n)
  std::int64_t permuted_heads = 0;  // q/k: rows to un-permute in this many heads
};

std::vector<TensorPlan> plan_tensors(const io::GgufFile& f, const LlamaShape& s, bool& tied) {
  std::vector<TensorPlan> plan;
  std::set<std::string> used;
  auto add = [&](const std::string& gguf, const std::string& hf, std::vector<std::int64_t> shape, std::int64_t heads = 0) {
    const auto* t = f.find(gguf);
    if (!t) throw InputError(f.path() + ": tensor " + gguf + " is missing (needed for " + hf + ")");
    const std::vector<std::int64_t> ggml_dims(shape.rbegin(), shape.rend());
    if (t->dims != ggml_dims) throw InputError(f.path() + ": tensor " + gguf + ": dims disagree with the llama.* sizes");
    if (!io::ggml_type_traits(t->type)->decodable)
      throw InputError(f.path() + ": tensor " + gguf + ": ggml type " + io::ggml_type_name(t->type) +
                       " is not supported by lmtopo convert (supported: " + io::ggml_decodable_types() + ")");
    used.insert(gguf);
    plan.push_back({hf, t, std::move(shape), heads});
  };
  const std::int64_t kv = s.kv_heads * s.head_dim;
  add("token_embd.weight", "model.embed_tokens.weight", {s.vocab, s.hidden});
  for (std::int64_t i = 0; i < s.layers; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".", h = "model.layers." + std::to_string(i) + ".";
    add(b + "attn_norm.weight", h + "input_layernorm.weight", {s.hidden});
    add(b + "attn_q.weight", h + "self_attn.q_proj.weight", {s.hidden, s.hidden}, s.heads);
    add(b + "attn_k.weight", h + "self_attn.k_proj.weight", {kv, s.hidden}, s.kv_heads);
    add(b + "attn_v.weight", h + "self_attn.v_proj.weight", {kv, s.hidden});
    add(b + "attn_output.weight", h + "self_attn.o_proj.weight", {s.hidden, s.hidden});
    add(b + "ffn_norm.weight", h + "post_attention_layernorm.weight", {s.hidden});
    add(b + "ffn_gate.weight", h + "mlp.gate_proj.weight", {s.ffn, s.hidden});
    add(b + "ffn_up.weight", h + "mlp.up_proj.weight", {s.ffn, s.hidden});
    add(b + "ffn_down.weight", h + "mlp.down_proj.weight", {s.hidden, s.ffn});
  }
  add("output_norm.weight", "model.norm.weight", {s.hidden});
  tied = f.find("output.weight") == nullptr;
  if (!tied) add("output.weight", "lm_head.weight", {s.vocab, s.hidden});
  for (const auto& t : f.tensors())
    if (!used.count(t.name))
      throw InputError(f.path() + ": tensor " + t.name + " is not used by the llama architecture lmtopo implements (refusing rather than dropping it)");
  return plan;
}

// llama.cpp's convert stores q/k rows per head as (half, pair) -> (pair, half) for its rotary layout:
// source row h*d + 2*i + s holds Hugging Face row h*d + s*d/2 + i.
void unpermute_rows(const std::vector<float>& src, std::int64_t heads, std::int64_t cols, std::vector<float>& dst) {
  const std::int64_t rows = static_cast<std::int64_t>(src.size()) / cols, d = rows / heads, half = d / 2;
  dst.resize(src.size());
  for (std::int64_t h = 0; h < heads; ++h)
    for (std::int64_t s = 0; s < 2; ++s)
      for (std::int64_t i = 0; i < half; ++i)
        std::copy_n(src.begin() + (h * d + 2 * i + s) * cols, cols, dst.begin() + (h * d + s * half + i) * cols);
}

std::vector<std::string> string_array(GgufKeys& k, const std::string& key) {
  const auto& v = k.raw(key);
  if (!v.is_array()) k.fail(key, "expected an array of strings");
  std::vector<std::string> out;
  out.reserve(v.size());
  for (const auto& e : v) {
    if (!e.is_string()) k.fail(key, "expected an array of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

// tokenizer.ggml.pre -> the tokenizers pre-tokenizer of the same splitting (llama.cpp's llama-vocab.cpp
// regexes for that name). Only names whose splitting tokenizers can express exactly are accepted.
ordered_json pre_tokenizer_for(GgufKeys& k) {
  const ordered_json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  const std::string pre = k.text_or("tokenizer.ggml.pre", "gpt-2");
  if (pre == "gpt-2") return byte_level;
  if (pre == "smollm")  // "\p{N}" isolated, then GPT-2's regex
    return {{"type", "Sequence"},
            {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level}}};
  k.fail("tokenizer.ggml.pre", "'" + pre + "' is not supported by lmtopo convert (gpt-2, smollm)");
}

// BOS/EOS as the GGUF asks: TemplateProcessing when either is added, else tokenizers' ByteLevel
// processor (adds nothing).
ordered_json post_processor_for(bool add_bos, bool add_eos, const std::string& bos, const std::string& eos,
                                std::int64_t bos_id, std::int64_t eos_id) {
  if (!add_bos && !add_eos)
    return {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
  ordered_json single = ordered_json::array(), pair = ordered_json::array(), specials = ordered_json::object();
  auto special = [](const std::string& t, int type_id) { return ordered_json{{"SpecialToken", {{"id", t}, {"type_id", type_id}}}}; };
  auto sequence = [](const char* id, int type_id) { return ordered_json{{"Sequence", {{"id", id}, {"type_id", type_id}}}}; };
  for (int part = 0; part < 2; ++part) {
    auto& target = part == 0 ? single : pair;
    for (int type_id = 0; type_id <= part; ++type_id) {
      if (add_bos) target.push_back(special(bos, type_id));
      target.push_back(sequence(type_id == 0 ? "A" : "B", type_id));
      if (add_eos) target.push_back(special(eos, type_id));
    }
  }
  if (add_bos) specials[bos] = {{"id", bos}, {"ids", {bos_id}}, {"tokens", {bos}}};
  if (add_eos) specials[eos] = {{"id", eos}, {"ids", {eos_id}}, {"tokens", {eos}}};
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
}

struct TokenizerFiles {
  ordered_json tokenizer, tokenizer_config;
  std::int64_t bos = -1, eos = -1, pad = -1;
};

TokenizerFiles tokenizer_files(GgufKeys& k, std::int64_t context) {
  const std::string model = k.text_or("tokenizer.ggml.model", "");
  if (model != "gpt2")
    k.fail("tokenizer.ggml.model", "'" + model + "' is not supported by lmtopo convert (gpt2: byte-level BPE)");
  const auto tokens = string_array(k, "tokenizer.ggml.tokens");
  const auto merges = string_array(k, "tokenizer.ggml.merges");
  const auto n = static_cast<std::int64_t>(tokens.size());
  const auto& types = k.raw("tokenizer.ggml.token_type");
  if (!types.is_array() || static_cast<std::int64_t>(types.size()) != n) k.fail("tokenizer.ggml.token_type", "expected one type per token");
  if (k.flag_or("tokenizer.ggml.add_space_prefix", false)) k.fail("tokenizer.ggml.add_space_prefix", "true is not implemented for byte-level BPE");
  TokenizerFiles out;
  out.bos = k.token_id_or("tokenizer.ggml.bos_token_id", n);
  out.eos = k.token_id_or("tokenizer.ggml.eos_token_id", n);
  out.pad = k.token_id_or("tokenizer.ggml.padding_token_id", n);
  const auto unk = k.token_id_or("tokenizer.ggml.unknown_token_id", n);
  const bool add_bos = k.flag_or("tokenizer.ggml.add_bos_token", false), add_eos = k.flag_or("tokenizer.ggml.add_eos_token", false);
  if ((add_bos && out.bos < 0) || (add_eos && out.eos < 0)) k.fail("tokenizer.ggml.add_bos_token", "set without the token's id");
  auto name = [&](std::int64_t id) { return id >= 0 ? ordered_json(tokens[static_cast<std::size_t>(id)]) : ordered_json(); };

  ordered_json vocab = ordered_json::object(), added = ordered_json::array();
  for (std::int64_t id = 0; id < n; ++id) {
    if (vocab.contains(tokens[static_cast<std::size_t>(id)])) k.fail("tokenizer.ggml.tokens", "duplicate token '" + tokens[static_cast<std::size_t>(id)] + "'");
    vocab[tokens[static_cast<std::size_t>(id)]] = id;
    const auto type = types[static_cast<std::size_t>(id)];
    if (!type.is_number_integer() || type.get<int>() < 1 || type.get<int>() > 6) k.fail("tokenizer.ggml.token_type", "unknown token type " + type.dump());
    if (type == 3 || type == 4)  // control (special) and user-defined tokens are matched before BPE
      added.push_back({{"id", id}, {"content", tokens[static_cast<std::size_t>(id)]}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", type == 4}, {"special", type == 3}});
    else if (type == 6) k.fail("tokenizer.ggml.token_type", "byte tokens (type 6) belong to SentencePiece vocabularies, not gpt2");
  }
  ordered_json& t = out.tokenizer;
  t["version"] = "1.0";
  t["truncation"] = nullptr;
  t["padding"] = nullptr;
  t["added_tokens"] = added;
  t["normalizer"] = nullptr;
  t["pre_tokenizer"] = pre_tokenizer_for(k);
  t["post_processor"] = post_processor_for(add_bos, add_eos, out.bos >= 0 ? tokens[static_cast<std::size_t>(out.bos)] : "",
                                           out.eos >= 0 ? tokens[static_cast<std::size_t>(out.eos)] : "", out.bos, out.eos);
  t["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  t["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", name(unk)}, {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
                {"vocab", vocab}, {"merges", merges}};
  out.tokenizer_config = {{"tokenizer_class", "PreTrainedTokenizerFast"}, {"add_bos_token", add_bos}, {"add_eos_token", add_eos},
                          {"bos_token", name(out.bos)}, {"eos_token", name(out.eos)}, {"unk_token", name(unk)},
                          {"pad_token", name(out.pad)}, {"model_max_length", context}, {"clean_up_tokenization_spaces", false}};
  if (k.has("tokenizer.chat_template")) out.tokenizer_config["chat_template"] = k.text_or("tokenizer.chat_template", "");
  return out;
}

void write_json(const fs::path& p, const ordered_json& j) {
  std::ofstream out(p);
  out << j.dump(2) << "\n";
  if (!out) throw RuntimeFailure(p.string() + ": write failed (disk full?)");
}

// The tensors, dequantized (and q/k un-permuted) one at a time.
void write_weights(const fs::path& file, const std::vector<TensorPlan>& plan, const std::string& source_sha) {
  std::vector<io::TensorToWrite> specs;
  for (const auto& p : plan) specs.push_back({p.hf_name, io::TensorDType::f32, p.shape, nullptr});
  std::vector<float> values, unpermuted;
  io::write_safetensors_streamed(file.string(), specs, {{"lmtopo_source_sha256", source_sha}}, [&](std::size_t i, std::ostream& out) {
    const auto& p = plan[i];
    values.resize(static_cast<std::size_t>(p.source->numel()));
    io::ggml_dequantize(p.source->type, p.source->data, p.source->numel(), values.data());
    const auto& v = p.permuted_heads ? (unpermute_rows(values, p.permuted_heads, p.shape[1], unpermuted), unpermuted) : values;
    out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
  });
}

bool already_converted(const fs::path& out_dir, const std::string& source_sha) {
  std::ifstream in(out_dir / kProvenanceFile);
  if (!in) return false;
  try {
    const auto j = json::parse(in);
    return j.value("schema", "") == kProvenanceSchema && j.value("source_sha256", "") == source_sha;
  } catch (const json::exception&) {
    return false;
  }
}

}  // namespace

ConvertResult convert_gguf(const std::string& gguf_path, const std::string& out_dir) {
  ConvertResult r;
  r.out_dir = out_dir;
  const std::string sha = core::sha256_file(gguf_path);
  if (fs::exists(out_dir)) {
    r.up_to_date = already_converted(out_dir, sha);
    if (r.up_to_date) return r;
    throw InputError(out_dir + ": exists and is not a conversion of " + gguf_path + " (remove it or choose another folder)");
  }
  const io::GgufFile f(gguf_path);
  GgufKeys keys(f);
  const std::string arch = keys.text_or("general.architecture", "");
  if (arch != "llama") keys.fail("general.architecture", "'" + arch + "' is not supported by lmtopo convert (llama)");
  const auto vocab_tokens = static_cast<std::int64_t>(keys.raw("tokenizer.ggml.tokens").size());
  const LlamaShape shape = read_llama_shape(keys, vocab_tokens);
  const TokenizerFiles tok = tokenizer_files(keys, shape.context);
  keys.refuse_unread({"tokenizer.chat_template", "tokenizer.ggml.scores"});
  bool tied = false;
  const auto plan = plan_tensors(f, shape, tied);

  // Written beside the destination and renamed: a killed conversion leaves no folder that looks
  // complete, and the next run starts the partial one afresh.
  const fs::path partial = out_dir + ".partial";
  fs::remove_all(partial);
  fs::create_directories(partial);
  write_weights(partial / "model.safetensors", plan, sha);
  write_json(partial / "config.json", hf_config(shape, tied, tok.bos, tok.eos, tok.pad));
  write_json(partial / "tokenizer.json", tok.tokenizer);
  write_json(partial / "tokenizer_config.json", tok.tokenizer_config);
  for (const auto& p : plan) {
    r.parameters += p.source->numel();
    ++r.source_types[io::ggml_type_name(p.source->type)];
  }
  ordered_json prov = {{"schema", kProvenanceSchema}, {"source", fs::absolute(gguf_path).string()}, {"source_sha256", sha},
                       {"gguf_version", f.version()}, {"general.name", keys.text_or("general.name", "")},
                       {"source_types", r.source_types}, {"dtype", "float32"}, {"tie_word_embeddings", tied},
                       {"lmtopo_version", core::lmtopo_version()}, {"git_sha", core::git_sha()}, {"git_dirty", core::git_dirty()},
                       {"created_at", static_cast<std::int64_t>(std::time(nullptr))}, {"created_by", core::created_by(1)}};
  write_json(partial / kProvenanceFile, prov);
  fs::rename(partial, out_dir);
  return r;
}

}  // namespace lmtopo::model
