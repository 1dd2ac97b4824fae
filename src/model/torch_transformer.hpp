// The libtorch transformer shared by inference (transformer.cpp) and training (train/). Internal:
// include only from translation units that already depend on libtorch.
#pragma once
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "core/error.hpp"
#include "io/safetensors.hpp"
#include "model/transformer.hpp"

namespace lmtopo::model::detail {

using torch::Tensor;
namespace F = torch::nn::functional;

inline torch::Dtype torch_dtype(io::TensorDType t) {
  switch (t) {
    case io::TensorDType::f32: return torch::kFloat32;
    case io::TensorDType::f16: return torch::kFloat16;
    case io::TensorDType::bf16: return torch::kBFloat16;
    case io::TensorDType::i32: return torch::kInt32;
  }
  return torch::kFloat32;
}

inline torch::Dtype torch_dtype(WeightDType t) {
  switch (t) {
    case WeightDType::float32: return torch::kFloat32;
    case WeightDType::bfloat16: return torch::kBFloat16;
    case WeightDType::float16: return torch::kFloat16;
  }
  return torch::kFloat32;
}

inline Tensor rotate_half(const Tensor& x) {
  const auto half = x.size(-1) / 2;
  return torch::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
}

// Per block: keys (after rotary) and values before grouped-query repetition, [B, kv_heads, T, hd];
// and the mask of every cached position [B, T].
struct KVCache final : DecodingCache {
  std::vector<Tensor> k, v;
  Tensor mask;
  std::int64_t length() const override { return mask.defined() ? mask.size(1) : 0; }
};

// The positions of a padded batch [B, T] that hold real tokens, so that per-token work (each block's
// MLP and its norm, most of the FLOPs) skips the padding: length-sorted batches of jobs/smollm2.yaml's
// corpus still computed 1.32 positions per real token. Without padding nothing is packed (training,
// decoding steps). Pads then carry no MLP output, which no real position reads (attention masks them).
struct RealRows {
  Tensor index;  // flat positions b * T + t of the real tokens; undefined: no padding
  std::int64_t B = 0, T = 0;

  static RealRows of(const Tensor& mask) {
    RealRows r{Tensor(), mask.size(0), mask.size(1)};
    const Tensor flat = mask.reshape({-1});
    if (flat.numel() > 0 && !flat.to(torch::kBool).all().item<bool>()) r.index = flat.nonzero().squeeze(1);
    return r;
  }
  // [B, T, W] -> [real, W]
  Tensor pack(const Tensor& t) const { return index.defined() ? t.reshape({B * T, t.size(-1)}).index_select(0, index) : t; }
  // [real, W] -> [B, T, W], zero at the pads
  Tensor unpack(const Tensor& t) const {
    if (!index.defined()) return t;
    return torch::zeros({B * T, t.size(-1)}, t.options()).index_copy_(0, index, t).view({B, T, t.size(-1)});
  }
  // x [B, T, W] plus packed t [real, W] at the real positions
  Tensor add(const Tensor& x, const Tensor& t) const {
    return index.defined() ? x.reshape({B * T, x.size(-1)}).index_add(0, index, t).view({B, T, x.size(-1)}) : x + t;
  }
};

class TorchTransformer final : public Transformer {
 public:
  // Tensors come from `source` by Hugging Face name and expected shape (a checkpoint, or a fresh
  // initialisation for training); `has` says whether an optional tensor exists.
  using WeightSource = std::function<Tensor(const std::string&, const std::vector<std::int64_t>&)>;
  TorchTransformer(ModelConfig c, WeightSource source, std::function<bool(const std::string&)> has, torch::Dtype dtype,
                   torch::Device device = torch::kCPU)
      : c_(std::move(c)), dtype_(dtype), device_(device), source_(std::move(source)), has_(std::move(has)) {
    if (c_.family == "gpt2" || c_.family == "bloom") {
      load_gpt2_or_bloom();
      return;
    }
    const bool neox = c_.family == "gpt_neox";
    prefix_ = neox ? "gpt_neox." : "model.";
    embed_ = weight(neox ? "gpt_neox.embed_in.weight" : "model.embed_tokens.weight", {c_.vocab, c_.hidden});
    for (int i = 0; i < c_.num_layers; ++i) {
      const std::string p = prefix_ + "layers." + std::to_string(i) + ".";
      Layer l;
      const std::int64_t H = c_.hidden, I = c_.intermediate;
      const std::int64_t q = static_cast<std::int64_t>(c_.heads) * c_.head_dim, kv = static_cast<std::int64_t>(c_.kv_heads) * c_.head_dim;
      if (!c_.parameter_free_norm) {
        l.ln1_w = weight(p + "input_layernorm.weight", {H});
        l.ln2_w = weight(p + "post_attention_layernorm.weight", {H});
      }
      if (neox) {
        l.ln1_b = weight(p + "input_layernorm.bias", {H});
        l.ln2_b = weight(p + "post_attention_layernorm.bias", {H});
        l.qkv_w = weight(p + "attention.query_key_value.weight", {3 * H, H});
        l.o_w = weight(p + "attention.dense.weight", {H, H});
        if (c_.attention_bias) {
          l.qkv_b = weight(p + "attention.query_key_value.bias", {3 * H});
          l.o_b = weight(p + "attention.dense.bias", {H});
        }
        l.up_w = weight(p + "mlp.dense_h_to_4h.weight", {I, H});
        l.up_b = weight(p + "mlp.dense_h_to_4h.bias", {I});
        l.down_w = weight(p + "mlp.dense_4h_to_h.weight", {H, I});
        l.down_b = weight(p + "mlp.dense_4h_to_h.bias", {H});
      } else {
        l.q_w = weight(p + "self_attn.q_proj.weight", {q, H});
        l.k_w = weight(p + "self_attn.k_proj.weight", {kv, H});
        l.v_w = weight(p + "self_attn.v_proj.weight", {kv, H});
        l.o_w = weight(p + "self_attn.o_proj.weight", {H, q});
        if (c_.attention_bias || c_.qkv_bias) {
          l.q_b = weight(p + "self_attn.q_proj.bias", {q});
          l.k_b = weight(p + "self_attn.k_proj.bias", {kv});
          l.v_b = weight(p + "self_attn.v_proj.bias", {kv});
        }
        if (c_.attention_bias) l.o_b = weight(p + "self_attn.o_proj.bias", {H});
        l.gate_w = weight(p + "mlp.gate_proj.weight", {I, H});
        l.up_w = weight(p + "mlp.up_proj.weight", {I, H});
        l.down_w = weight(p + "mlp.down_proj.weight", {H, I});
        if (c_.mlp_bias) {
          l.gate_b = weight(p + "mlp.gate_proj.bias", {I});
          l.up_b = weight(p + "mlp.up_proj.bias", {I});
          l.down_b = weight(p + "mlp.down_proj.bias", {H});
        }
        l.qkv_cat_w = fuse_rows({&l.q_w, &l.k_w, &l.v_w});
        if (l.q_b.defined()) l.qkv_cat_b = fuse_rows({&l.q_b, &l.k_b, &l.v_b});
        l.gate_up_w = fuse_rows({&l.gate_w, &l.up_w});
        if (l.gate_b.defined()) l.gate_up_b = fuse_rows({&l.gate_b, &l.up_b});
      }
      layers_.push_back(std::move(l));
    }
    if (!c_.parameter_free_norm) final_w = weight(neox ? "gpt_neox.final_layer_norm.weight" : "model.norm.weight", {c_.hidden});
    if (neox) final_b = weight("gpt_neox.final_layer_norm.bias", {c_.hidden});
    const std::string head = neox ? "embed_out.weight" : "lm_head.weight";
    // Tied (as transformers ties them): the embedding matrix, whatever a stored head holds (the loader
    // checks that a stored copy is identical).
    head_ = c_.tie_embeddings ? embed_ : weight(head, {c_.vocab, c_.hidden});
  }

  const ModelConfig& config() const override { return c_; }
  torch::Device device() const { return device_; }
  std::string device_name() const override { return device_.str(); }

  // Hugging Face name and tensor of every weight, in load order (gpt_neox and llama: the tensors
  // the forward pass uses; for training and saving).
  const std::vector<std::pair<std::string, Tensor>>& parameters() const { return params_; }

  // Next-token logits [B, T, vocab] of unpadded sequences [B, T], with autograd: the training forward.
  // `keep` sees every hook point's tensor (still in the autograd graph: the spatial loss uses it).
  Tensor logits(const Tensor& ids, const std::function<void(const char*, const Tensor&)>& keep = [](const char*, const Tensor&) {}) const {
    return torch::linear(run(ids, torch::ones_like(ids), {}, keep, nullptr), head_);
  }

  std::vector<std::string> point_names(const std::string& hook) const override { return hook_point_names(c_, hook); }

  // The forward pass shared by inference and training: ids/mask [B, T]; `keep(name, tensor)` is
  // called at every hook point in `wanted` (every point when null; a point computed packed is
  // unpacked only then); returns the final norm's output [B, T, hidden]. With a cache the tokens take
  // positions cache->length() onward and attend to the cached keys too.
  Tensor run(const Tensor& ids, const Tensor& mask, const Interventions& iv,
             const std::function<void(const char*, const Tensor&)>& keep, const std::set<std::string>* wanted,
             KVCache* cache = nullptr, const Tensor& positions = {}) const {
    const auto B = ids.size(0), T = ids.size(1);
    const RealRows rows = RealRows::of(mask);
    const auto emit = [&](const char* name, const auto& make) {
      if (!wanted || wanted->count(name)) keep(name, make());
    };
    const auto on = [&](torch::Dtype t) { return torch::TensorOptions().dtype(t).device(ids.device()); };
    const std::set<int> skip(iv.skip_blocks.begin(), iv.skip_blocks.end());
    const std::int64_t past = cache ? cache->length() : 0;
    if (cache && past > 0 && cache->mask.size(0) != B)
      throw std::invalid_argument("decoding cache holds " + std::to_string(cache->mask.size(0)) + " rows, batch has " + std::to_string(B));
    const Tensor key_mask = past > 0 ? torch::cat({cache->mask, mask}, 1) : mask;  // [B, past + T]
    const std::int64_t K = past + T;
    // Additive attention bias: causal, and padded keys masked, in float32 (as HF builds it).
    const float neg = std::numeric_limits<float>::lowest();
    Tensor query_pos = torch::arange(past, K, on(torch::kInt64)).unsqueeze(1), key_pos = torch::arange(K, on(torch::kInt64)).unsqueeze(0);
    Tensor causal = key_pos <= query_pos;  // [T, K]
    if (c_.sliding_window > 0)  // key index > query index - window (transformers' sliding_attend_mask)
      causal = causal & (key_pos > query_pos - c_.sliding_window);
    Tensor allowed = causal.unsqueeze(0) & key_mask.to(torch::kBool).unsqueeze(1);  // [B, T(query), K(key)]
    Tensor bias = torch::zeros({B, 1, T, K}, on(torch::kFloat32)).masked_fill(~allowed.unsqueeze(1), neg);

    // Rotary tables (computed on the CPU in float32, as HF does before moving them).
    const bool neox = c_.family == "gpt_neox";
    const std::int64_t rot = neox ? static_cast<std::int64_t>(c_.head_dim * c_.rotary_pct) : c_.head_dim;
    Tensor inv_freq = rope_inverse_frequencies(rot).to(ids.device());
    // Token positions [B, T] (or [1, T] when they are the columns).
    const Tensor pos = positions.defined() ? positions : torch::arange(past, K, on(torch::kInt64)).unsqueeze(0);
    Tensor freqs = pos.to(torch::kFloat32).unsqueeze(-1) * inv_freq;
    Tensor emb = torch::cat({freqs, freqs}, -1);
    Tensor cos = emb.cos().to(dtype_).unsqueeze(1), sin = emb.sin().to(dtype_).unsqueeze(1);  // [B or 1, 1, T, rot]

    const bool gpt2 = c_.family == "gpt2", bloom = c_.family == "bloom";
    Tensor x = torch::embedding(embed_, ids);
    if (gpt2) x = x + torch::embedding(pos_embed_, pos);
    if (bloom) x = torch::layer_norm(x, {c_.hidden}, emb_ln_w, emb_ln_b, c_.norm_eps);
    Tensor alibi;  // BLOOM: slope_h * (position of the key among the row's real tokens)
    if (bloom) {
      Tensor key_rank = ((key_mask.cumsum(-1) - 1) * key_mask).to(torch::kFloat32);  // [B, K]
      alibi = alibi_slopes().to(ids.device()).view({1, c_.heads, 1, 1}) * key_rank.view({B, 1, 1, K});
    }
    if (cache && past == 0) {
      cache->k.assign(static_cast<std::size_t>(c_.num_layers), Tensor());
      cache->v.assign(static_cast<std::size_t>(c_.num_layers), Tensor());
    }
    const auto remember = [cache](int layer) { return cache ? KVSlot{&cache->k[static_cast<std::size_t>(layer)], &cache->v[static_cast<std::size_t>(layer)]} : KVSlot{}; };
    emit("block_output", [&] { return x; });
    for (int i = 0; i < c_.num_layers; ++i) {
      const Layer& l = layers_[static_cast<std::size_t>(i)];
      if (auto r = iv.residual_add.find(i); r != iv.residual_add.end())
        x = x + torch::from_blob(const_cast<float*>(r->second.data()), {c_.hidden}, torch::kFloat32).to(x.device(), x.scalar_type());
      if (auto r = iv.residual_add_at.find(i); r != iv.residual_add_at.end()) x = add_at_rows(x, r->second);
      emit("block_input", [&] { return x; });
      if (skip.count(i)) {
        const Tensor zero = torch::zeros_like(x);
        emit("attn_output", [&] { return zero; });
        emit("post_attention_layernorm", [&] { return zero; });
        emit("mlp_act", [&] { return torch::zeros({B, T, c_.intermediate}, x.options()); });
        emit("block_output", [&] { return x; });
        continue;
      }
      auto edit_ffn = [&](Tensor act) { return apply_ffn_interventions(std::move(act), iv, i); };
      if (gpt2 || bloom) {
        Tensor h1 = torch::layer_norm(x, {c_.hidden}, l.ln1_w, l.ln1_b, c_.norm_eps);
        Tensor attn = attention_fused(h1, l, bloom ? bias + alibi : bias, bloom, remember(i));
        emit("attn_output", [&] { return attn; });
        Tensor mid = attn + (bloom && c_.residual_post_layernorm ? h1 : x);
        Tensor h2 = torch::layer_norm(rows.pack(mid), {c_.hidden}, l.ln2_w, l.ln2_b, c_.norm_eps);
        emit("post_attention_layernorm", [&] { return rows.unpack(h2); });
        Tensor act = edit_ffn(activation(torch::linear(h2, l.up_w, l.up_b)));
        emit("mlp_act", [&] { return rows.unpack(act); });
        x = rows.add(bloom && c_.residual_post_layernorm ? rows.unpack(h2) : mid, torch::linear(act, l.down_w, l.down_b));
      } else if (neox) {
        Tensor h1 = torch::layer_norm(x, {c_.hidden}, l.ln1_w, l.ln1_b, c_.norm_eps);
        Tensor attn = attention_neox(h1, l, bias, cos, sin, rot, remember(i));
        emit("attn_output", [&] { return attn; });
        if (c_.parallel_residual) {
          Tensor h2 = torch::layer_norm(rows.pack(x), {c_.hidden}, l.ln2_w, l.ln2_b, c_.norm_eps);
          emit("post_attention_layernorm", [&] { return rows.unpack(h2); });
          Tensor act = edit_ffn(activation(torch::linear(h2, l.up_w, l.up_b)));
          emit("mlp_act", [&] { return rows.unpack(act); });
          x = rows.add(attn + x, torch::linear(act, l.down_w, l.down_b));
        } else {
          Tensor mid = attn + x;
          Tensor h2 = torch::layer_norm(rows.pack(mid), {c_.hidden}, l.ln2_w, l.ln2_b, c_.norm_eps);
          emit("post_attention_layernorm", [&] { return rows.unpack(h2); });
          Tensor act = edit_ffn(activation(torch::linear(h2, l.up_w, l.up_b)));
          emit("mlp_act", [&] { return rows.unpack(act); });
          x = rows.add(mid, torch::linear(act, l.down_w, l.down_b));
        }
      } else {
        Tensor h1 = llama_norm(x, l.ln1_w);
        Tensor attn = attention_llama(h1, l, bias, cos, sin, remember(i));
        emit("attn_output", [&] { return attn; });
        x = x + attn;
        Tensor h2 = llama_norm(rows.pack(x), l.ln2_w);
        emit("post_attention_layernorm", [&] { return rows.unpack(h2); });
        Tensor act;
        if (fused(l.gate_up_w, l.up_w)) {
          const Tensor gate_up = torch::linear(h2, l.gate_up_w, l.gate_up_b);
          act = edit_ffn(activation(gate_up.narrow(-1, 0, c_.intermediate)) * gate_up.narrow(-1, c_.intermediate, c_.intermediate));
        } else {
          act = edit_ffn(activation(torch::linear(h2, l.gate_w, l.gate_b)) * torch::linear(h2, l.up_w, l.up_b));
        }
        emit("mlp_act", [&] { return rows.unpack(act); });
        x = rows.add(x, torch::linear(act, l.down_w, l.down_b));
      }
      emit("block_output", [&] { return x; });
    }
    Tensor final_h = c_.family == "llama" ? llama_norm(x, final_w) : torch::layer_norm(x, {c_.hidden}, final_w, final_b, c_.norm_eps);
    emit("post_attention_layernorm", [&] { return final_h; });
    if (cache) cache->mask = past > 0 ? key_mask : mask.clone();  // `mask` may view the caller's memory
    return final_h;
  }

  std::vector<float> next_token_nll(const Batch& b, const Interventions& iv) override {
    torch::NoGradGuard no_grad;
    check_interventions(iv);
    const auto [ids, mask, positions] = batch_tensors(b);
    const std::set<std::string> no_hooks;
    const Tensor final_h = run(ids, mask, iv, [](const char*, const Tensor&) {}, &no_hooks, nullptr, positions);
    const auto B = b.batch, T = b.seq;
    Tensor nll = torch::zeros({B, T}, torch::TensorOptions().dtype(torch::kFloat32).device(device_));
    if (T > 1) {
      // Only the scored positions (a real token after a real one) go through the head, the largest
      // single product of an evaluation (vocab-wide).
      const Tensor scored = (mask.slice(1, 1) * mask.slice(1, 0, T - 1)).reshape({-1}).to(torch::kBool);
      const Tensor where = scored.nonzero().squeeze(1);
      const Tensor h = final_h.slice(1, 0, T - 1).reshape({B * (T - 1), c_.hidden}).index_select(0, where);
      const Tensor logp = torch::log_softmax(torch::linear(h, head_).to(torch::kFloat32), -1);  // [scored, vocab]
      const Tensor target = ids.slice(1, 1).reshape({-1}).index_select(0, where);
      const Tensor picked = -logp.gather(1, target.unsqueeze(1)).squeeze(1);
      Tensor flat = torch::zeros({B * (T - 1)}, nll.options()).index_copy_(0, where, picked);
      nll.slice(1, 1).copy_(flat.view({B, T - 1}));
    }
    nll = nll.to(torch::kCPU).contiguous();
    return {nll.data_ptr<float>(), nll.data_ptr<float>() + nll.numel()};
  }

  std::unique_ptr<DecodingCache> new_decoding_cache() const override { return std::make_unique<KVCache>(); }

  std::map<std::string, HookResult> forward_requests(const Batch& b, const std::vector<HookRequest>& requests,
                                                     bool want_logits, const Interventions& iv, DecodingCache* cache) override {
    torch::NoGradGuard no_grad;
    std::set<std::string> want;
    for (const auto& r : requests) {
      (void)point_names(r.hook);  // validates the names
      want.insert(r.hook);
    }
    check_interventions(iv);
    const auto B = b.batch, T = b.seq;
    const auto [ids, mask, positions] = batch_tensors(b);
    // Pooled on the device as each point is produced, so only [B, W] per point is kept and copied to
    // the host (once per request, after the pass).
    Tensor last_index, weights;
    const bool any_last = std::any_of(requests.begin(), requests.end(), [](const HookRequest& r) { return r.pooling == Pooling::last; });
    const bool any_mean = std::any_of(requests.begin(), requests.end(), [](const HookRequest& r) { return r.pooling == Pooling::mean; });
    if (any_last) {
      // The last non-pad position of each row, whatever the padding side.
      Tensor columns = torch::arange(T, torch::TensorOptions().dtype(torch::kInt64).device(device_)).unsqueeze(0).expand({B, T});
      last_index = (columns * mask).argmax(1);  // [B]
    }
    if (any_mean) weights = mask.to(torch::kFloat32).unsqueeze(-1);  // [B, T, 1]
    std::map<std::string, std::vector<Tensor>> captured;
    auto keep = [&](const char* name, const Tensor& t) {
      if (!want.count(name)) return;
      const Tensor full = t.to(torch::kFloat32);  // [B, T, W]
      for (const auto& r : requests) {
        if (r.hook != name) continue;
        Tensor v = full;
        if (r.pooling == Pooling::last)
          v = v.gather(1, last_index.view({B, 1, 1}).expand({B, 1, v.size(2)})).squeeze(1);
        else if (r.pooling == Pooling::mean)
          v = (v * weights).sum(1) / weights.sum(1).clamp_min(1.0);
        captured[r.key].push_back(v);
      }
    };
    auto* kv = dynamic_cast<KVCache*>(cache);
    if (cache && !kv) throw std::invalid_argument("decoding cache from another model implementation");
    const Tensor final_h = run(ids, mask, iv, keep, &want, kv, positions);

    std::map<std::string, HookResult> out;
    for (const auto& req : requests) {
      Tensor stacked = torch::stack(captured[req.key]).to(torch::kCPU);  // [points, B, W] or [points, B, T, W]
      stacked = stacked.contiguous();
      HookResult r;
      r.points = point_names(req.hook);
      r.shape.assign(stacked.sizes().begin(), stacked.sizes().end());
      r.values.assign(stacked.data_ptr<float>(), stacked.data_ptr<float>() + stacked.numel());
      out[req.key] = std::move(r);
    }
    if (want_logits) {
      Tensor logits = torch::linear(final_h, head_).to(torch::kCPU, torch::kFloat32).contiguous();
      HookResult r;
      r.points = {c_.family == "gpt_neox" ? "embed_out" : "lm_head"};
      r.shape.assign(logits.sizes().begin(), logits.sizes().end());
      r.values.assign(logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel());
      out["logits"] = std::move(r);
    }
    return out;
  }

 private:
  // Where a block's keys and values accumulate during incremental decoding (null: no cache).
  struct KVSlot {
    Tensor* k = nullptr;
    Tensor* v = nullptr;
  };
  // k, v [B, heads, T, hd] of the new tokens -> the cached ones followed by them, kept in the slot.
  static void extend(const KVSlot& slot, Tensor& k, Tensor& v) {
    if (!slot.k) return;
    if (slot.k->defined()) {
      k = torch::cat({*slot.k, k}, 2);
      v = torch::cat({*slot.v, v}, 2);
    }
    *slot.k = k;
    *slot.v = v;
  }

  struct Layer {
    Tensor ln1_w, ln1_b, ln2_w, ln2_b;
    Tensor qkv_w, qkv_b, q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;
    Tensor gate_w, gate_b, up_w, up_b, down_w, down_b;
    // The llama family's q, k, v (and gate, up) rows in one tensor each; q_w ... up_b are views of
    // their rows (fuse_rows).
    Tensor qkv_cat_w, qkv_cat_b, gate_up_w, gate_up_b;
  };

  // One GEMM instead of several over the same input (q, k, v; gate, up): the weights' rows are
  // concatenated into one tensor and each weight becomes a view of its rows — no extra memory, and
  // params_ holds the views, so saving and training see the same tensors. Inference multiplies by the
  // concatenation (fewer, wider GEMMs: the activations are packed once); training, whose weights
  // require gradients, keeps the separate products.
  Tensor fuse_rows(const std::vector<Tensor*>& parts) {
    std::vector<Tensor> rows;
    for (const Tensor* t : parts) rows.push_back(*t);
    const Tensor fused = torch::cat(rows, 0);
    std::int64_t at = 0;
    for (Tensor* t : parts) {
      const Tensor view = fused.narrow(0, at, t->size(0));
      at += t->size(0);
      for (auto& [name, param] : params_)
        if (param.is_same(*t)) param = view;
      *t = view;
    }
    return fused;
  }

  // Whether the forward pass may use the fused weights (not while training them).
  static bool fused(const Tensor& cat, const Tensor& part) { return cat.defined() && !part.requires_grad(); }

  Tensor weight(const std::string& name, const std::vector<std::int64_t>& shape) {
    Tensor t = source_(name, shape).to(device_, dtype_);
    params_.push_back({name, t});
    return t;
  }

  // ids, mask and positions (undefined when not given) [B, T] on the device, checked against the batch
  // shape, the vocabulary and the learned positions. On the CPU they may view the batch's memory.
  std::tuple<Tensor, Tensor, Tensor> batch_tensors(const Batch& b) const {
    const auto B = b.batch, T = b.seq;
    if (static_cast<std::int64_t>(b.ids.size()) != B * T || static_cast<std::int64_t>(b.mask.size()) != B * T ||
        (!b.positions.empty() && static_cast<std::int64_t>(b.positions.size()) != B * T))
      throw std::invalid_argument("batch ids/mask/positions do not match batch x seq");
    for (auto id : b.ids)
      if (id < 0 || id >= c_.vocab) throw InputError("token id " + std::to_string(id) + " outside the vocabulary of " + c_.dir);
    for (auto p : b.positions)
      if (p < 0 || (c_.max_positions > 0 && p >= c_.max_positions))
        throw InputError("token position " + std::to_string(p) + " outside the learned positions of " + c_.dir);
    auto on_device = [&](const std::vector<std::int64_t>& v) {
      return torch::from_blob(const_cast<std::int64_t*>(v.data()), {B, T}, torch::kInt64).to(device_);
    };
    return {on_device(b.ids), on_device(b.mask), b.positions.empty() ? Tensor() : on_device(b.positions)};
  }

  void check_interventions(const Interventions& iv) const {
    auto block = [&](int i, const char* what) {
      if (i < 0 || i >= c_.num_layers)
        throw InputError(std::string(what) + ": block " + std::to_string(i) + " outside 0.." + std::to_string(c_.num_layers - 1));
    };
    for (const auto* m : {&iv.ffn_set, &iv.ffn_add})
      for (const auto& [i, units] : *m) {
        block(i, "FFN intervention");
        for (const auto& [u, v] : units)
          if (u < 0 || u >= c_.intermediate)
            throw InputError("FFN intervention: unit " + std::to_string(u) + " outside 0.." + std::to_string(c_.intermediate - 1));
      }
    for (const auto& [i, vec] : iv.residual_add) {
      block(i, "residual intervention");
      if (static_cast<int>(vec.size()) != c_.hidden)
        throw InputError("residual intervention: expected a vector of " + std::to_string(c_.hidden) + " values, got " +
                         std::to_string(vec.size()));
    }
    for (int i : iv.skip_blocks) block(i, "skip_blocks");
    for (const auto& [i, edit] : iv.residual_add_at) block(i, "residual intervention");
  }

  // x [B, T, hidden] plus edit.vectors[r] at (r, edit.position[r]) for every row r.
  Tensor add_at_rows(const Tensor& x, const RowResidualEdit& edit) const {
    const auto B = x.size(0), T = x.size(1);
    if (static_cast<std::int64_t>(edit.position.size()) != B || static_cast<std::int64_t>(edit.vectors.size()) != B * c_.hidden)
      throw std::invalid_argument("residual_add_at: expected a position and " + std::to_string(c_.hidden) + " values per row of " + std::to_string(B));
    Tensor delta = torch::zeros({B, T, c_.hidden}, torch::kFloat32);
    const Tensor rows = torch::from_blob(const_cast<float*>(edit.vectors.data()), {B, c_.hidden}, torch::kFloat32);
    for (std::int64_t r = 0; r < B; ++r) {
      const auto t = edit.position[static_cast<std::size_t>(r)];
      if (t < 0 || t >= T) throw std::invalid_argument("residual_add_at: position " + std::to_string(t) + " outside the batch's " + std::to_string(T) + " columns");
      delta[r][t].copy_(rows[r]);
    }
    return x + delta.to(x.device(), x.scalar_type());
  }

  Tensor apply_ffn_interventions(Tensor act, const Interventions& iv, int layer) const {
    auto set = iv.ffn_set.find(layer);
    auto add = iv.ffn_add.find(layer);
    if (set == iv.ffn_set.end() && add == iv.ffn_add.end()) return act;
    act = act.clone();
    if (set != iv.ffn_set.end())
      for (const auto& [u, v] : set->second) act.select(-1, u).fill_(v);
    if (add != iv.ffn_add.end())
      for (const auto& [u, v] : add->second) act.select(-1, u).add_(v);
    return act;
  }

  void load_gpt2_or_bloom() {
    const bool gpt2 = c_.family == "gpt2";
    const std::int64_t H = c_.hidden, I = c_.intermediate;
    prefix_ = "transformer.";
    embed_ = weight(gpt2 ? "transformer.wte.weight" : "transformer.word_embeddings.weight", {c_.vocab, H});
    if (gpt2) {
      pos_embed_ = weight("transformer.wpe.weight", {c_.max_positions, H});
    } else {
      emb_ln_w = weight("transformer.word_embeddings_layernorm.weight", {H});
      emb_ln_b = weight("transformer.word_embeddings_layernorm.bias", {H});
    }
    // GPT-2 stores Conv1D weights as [in, out]: transposed here to Linear's [out, in].
    auto linear_w = [&](const std::string& name, std::int64_t out, std::int64_t in) {
      return gpt2 ? weight(name, {in, out}).t().contiguous() : weight(name, {out, in});
    };
    for (int i = 0; i < c_.num_layers; ++i) {
      const std::string p = "transformer.h." + std::to_string(i) + ".";
      Layer l;
      const std::string ln1 = gpt2 ? "ln_1" : "input_layernorm", ln2 = gpt2 ? "ln_2" : "post_attention_layernorm";
      l.ln1_w = weight(p + ln1 + ".weight", {H});
      l.ln1_b = weight(p + ln1 + ".bias", {H});
      l.ln2_w = weight(p + ln2 + ".weight", {H});
      l.ln2_b = weight(p + ln2 + ".bias", {H});
      const std::string qkv = gpt2 ? "attn.c_attn" : "self_attention.query_key_value";
      const std::string o = gpt2 ? "attn.c_proj" : "self_attention.dense";
      const std::string up = gpt2 ? "mlp.c_fc" : "mlp.dense_h_to_4h", down = gpt2 ? "mlp.c_proj" : "mlp.dense_4h_to_h";
      l.qkv_w = linear_w(p + qkv + ".weight", 3 * H, H);
      l.qkv_b = weight(p + qkv + ".bias", {3 * H});
      l.o_w = linear_w(p + o + ".weight", H, H);
      l.o_b = weight(p + o + ".bias", {H});
      l.up_w = linear_w(p + up + ".weight", I, H);
      l.up_b = weight(p + up + ".bias", {I});
      l.down_w = linear_w(p + down + ".weight", H, I);
      l.down_b = weight(p + down + ".bias", {H});
      layers_.push_back(std::move(l));
    }
    final_w = weight("transformer.ln_f.weight", {H});
    final_b = weight("transformer.ln_f.bias", {H});
    head_ = c_.tie_embeddings ? embed_ : weight("lm_head.weight", {c_.vocab, H});
  }

  // Rotary inverse frequencies over `rot` dimensions, with Llama's rope_scaling as transformers'
  // rope initialisation functions define it (default, linear, llama3).
  Tensor rope_inverse_frequencies(std::int64_t rot) const {
    Tensor inv_freq = 1.0 / torch::pow(c_.rope_theta, torch::arange(0, rot, 2, torch::kInt64).to(torch::kFloat32) / static_cast<double>(rot));
    if (c_.rope_type == "linear") return inv_freq / c_.rope_factor;
    if (c_.rope_type != "llama3") return inv_freq;
    const double old_len = c_.rope_original_max_positions;
    const double low_wavelen = old_len / c_.rope_low_freq_factor, high_wavelen = old_len / c_.rope_high_freq_factor;
    Tensor wavelen = 2 * M_PI / inv_freq;
    Tensor scaled = torch::where(wavelen > low_wavelen, inv_freq / c_.rope_factor, inv_freq);
    Tensor smooth = (old_len / wavelen - c_.rope_low_freq_factor) / (c_.rope_high_freq_factor - c_.rope_low_freq_factor);
    Tensor smoothed = (1 - smooth) * scaled / c_.rope_factor + smooth * scaled;
    Tensor medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
    return torch::where(medium, smoothed, scaled);
  }

  // BLOOM's ALiBi slopes (Press et al.), as transformers' build_alibi_tensor computes them.
  Tensor alibi_slopes() const {
    const int n = c_.heads;
    const int closest = 1 << static_cast<int>(std::floor(std::log2(n)));
    const double base = std::pow(2.0, -std::pow(2.0, -(std::log2(closest) - 3)));
    Tensor slopes = torch::pow(torch::tensor(static_cast<float>(base)), torch::arange(1, 1 + closest, torch::kInt32));
    if (closest != n) {
      const double extra_base = std::pow(2.0, -std::pow(2.0, -(std::log2(2 * closest) - 3)));
      const int remaining = std::min(closest, n - closest);
      slopes = torch::cat({slopes, torch::pow(torch::tensor(static_cast<float>(extra_base)),
                                              torch::arange(1, 1 + 2 * remaining, 2, torch::kInt32))});
    }
    return slopes;
  }

  // Fused-QKV attention without rotary: GPT-2 ([q | k | v] along the features) and BLOOM (per head
  // [q, k, v] interleaved). Returns the attention branch (projection included, residual excluded).
  Tensor attention_fused(const Tensor& h, const Layer& l, const Tensor& bias, bool bloom, const KVSlot& slot) const {
    const auto B = h.size(0), T = h.size(1);
    const std::int64_t hd = c_.head_dim, H = c_.hidden;
    Tensor fused = torch::linear(h, l.qkv_w, l.qkv_b);
    Tensor q, k, v;
    if (bloom) {
      Tensor f = fused.view({B, T, c_.heads, 3, hd});
      q = f.select(3, 0).transpose(1, 2);
      k = f.select(3, 1).transpose(1, 2);
      v = f.select(3, 2).transpose(1, 2);
    } else {
      q = fused.slice(-1, 0, H).view({B, T, c_.heads, hd}).transpose(1, 2);
      k = fused.slice(-1, H, 2 * H).view({B, T, c_.heads, hd}).transpose(1, 2);
      v = fused.slice(-1, 2 * H).view({B, T, c_.heads, hd}).transpose(1, 2);
    }
    extend(slot, k, v);
    Tensor ctx = attend(q, k, v, bias).transpose(1, 2).reshape({B, T, H});
    return torch::linear(ctx, l.o_w, l.o_b);
  }

  Tensor activation(const Tensor& x) const {
    if (c_.activation == "gelu") return torch::gelu(x);
    if (c_.activation == "relu") return torch::relu(x);
    if (c_.activation == "silu") return torch::silu(x);
    return torch::gelu(x, "tanh");  // gelu_new, gelu_fast, gelu_pytorch_tanh
  }

  Tensor rms_norm(const Tensor& x, const Tensor& w) const {
    Tensor h = x.to(torch::kFloat32);
    h = h * torch::rsqrt(h.pow(2).mean(-1, true) + c_.norm_eps);
    return w * h.to(x.scalar_type());
  }

  // The llama family's norms: RMSNorm, or OLMo-1's LayerNorm without parameters (in float32).
  Tensor llama_norm(const Tensor& x, const Tensor& w) const {
    if (!c_.parameter_free_norm) return rms_norm(x, w);
    return torch::layer_norm(x.to(torch::kFloat32), {c_.hidden}, {}, {}, c_.norm_eps).to(x.scalar_type());
  }

  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias) const {
    // q, k, v: [B, heads, T, hd]; softmax in float32 as HF does.
    Tensor scores = torch::matmul(q.to(torch::kFloat32), k.to(torch::kFloat32).transpose(-1, -2)) /
                    std::sqrt(static_cast<double>(c_.head_dim));
    scores = scores + bias;
    Tensor probs = torch::softmax(scores, -1).to(v.scalar_type());
    return torch::matmul(probs, v);
  }

  Tensor attention_neox(const Tensor& h, const Layer& l, const Tensor& bias, const Tensor& cos, const Tensor& sin,
                        std::int64_t rot, const KVSlot& slot) const {
    const auto B = h.size(0), T = h.size(1);
    const std::int64_t hd = c_.head_dim;
    Tensor qkv = torch::linear(h, l.qkv_w, l.qkv_b).view({B, T, c_.heads, 3 * hd}).permute({0, 2, 1, 3});
    Tensor q = qkv.slice(-1, 0, hd), k = qkv.slice(-1, hd, 2 * hd), v = qkv.slice(-1, 2 * hd);
    auto rope = [&](const Tensor& t) {
      Tensor tr = t.slice(-1, 0, rot), tp = t.slice(-1, rot);
      return torch::cat({tr * cos + rotate_half(tr) * sin, tp}, -1);
    };
    q = rope(q);
    k = rope(k);
    extend(slot, k, v);
    Tensor ctx = attend(q, k, v, bias).permute({0, 2, 1, 3}).reshape({B, T, c_.heads * hd});
    return torch::linear(ctx, l.o_w, l.o_b);
  }

  Tensor attention_llama(const Tensor& h, const Layer& l, const Tensor& bias, const Tensor& cos, const Tensor& sin,
                         const KVSlot& slot) const {
    const auto B = h.size(0), T = h.size(1);
    const std::int64_t hd = c_.head_dim;
    auto project = [&](const Tensor& w, const Tensor& b, int heads) {
      Tensor t = torch::linear(h, w, b);
      if (c_.clip_qkv > 0) t = t.clamp(-c_.clip_qkv, c_.clip_qkv);  // OLMo's clip_qkv
      return t.view({B, T, heads, hd}).transpose(1, 2);
    };
    Tensor q, k, v;
    if (fused(l.qkv_cat_w, l.q_w)) {
      Tensor t = torch::linear(h, l.qkv_cat_w, l.qkv_cat_b);
      if (c_.clip_qkv > 0) t = t.clamp(-c_.clip_qkv, c_.clip_qkv);
      t = t.view({B, T, c_.heads + 2 * c_.kv_heads, hd});
      q = t.narrow(2, 0, c_.heads).transpose(1, 2);
      k = t.narrow(2, c_.heads, c_.kv_heads).transpose(1, 2);
      v = t.narrow(2, c_.heads + c_.kv_heads, c_.kv_heads).transpose(1, 2);
    } else {
      q = project(l.q_w, l.q_b, c_.heads);
      k = project(l.k_w, l.k_b, c_.kv_heads);
      v = project(l.v_w, l.v_b, c_.kv_heads);
    }
    q = q * cos + rotate_half(q) * sin;
    k = k * cos + rotate_half(k) * sin;
    extend(slot, k, v);
    const std::int64_t groups = c_.heads / c_.kv_heads;
    if (groups > 1) {
      k = k.repeat_interleave(groups, 1);
      v = v.repeat_interleave(groups, 1);
    }
    Tensor ctx = attend(q, k, v, bias).transpose(1, 2).reshape({B, T, c_.heads * hd});
    return torch::linear(ctx, l.o_w, l.o_b);
  }

  ModelConfig c_;
  torch::Dtype dtype_;
  torch::Device device_;
  WeightSource source_;
  std::function<bool(const std::string&)> has_;
  std::vector<std::pair<std::string, Tensor>> params_;  // Hugging Face name -> tensor, in load order
  std::string prefix_;
  Tensor embed_, final_w, final_b, head_;
  Tensor pos_embed_, emb_ln_w, emb_ln_b;  // gpt2 positions; bloom embedding LayerNorm
  std::vector<Layer> layers_;
};


}  // namespace lmtopo::model::detail
