"""Transformer parity: lmtopo's libtorch runtime against Hugging Face transformers on random-init
models of each implemented architecture, every portable hook, all tokens and pooled, right and left
padding. Reference activations come from forward hooks on the transformers modules."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest
import torch
import transformers

MODEL_DUMP = os.environ.get("MODEL_DUMP", "model_dump")
# cpu here and in CI; cuda on a GPU machine (scripts/device_check.sh): the reference stays on the CPU.
DEVICE = os.environ.get("LMTOPO_TEST_DEVICE", "cpu")

ARCHS = {
    "neox_parallel": lambda: transformers.GPTNeoXConfig(
        vocab_size=97, hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=160,
        rotary_pct=0.25, rotary_emb_base=10000, max_position_embeddings=64, use_parallel_residual=True,
        hidden_act="gelu", tie_word_embeddings=False),
    "neox_sequential": lambda: transformers.GPTNeoXConfig(
        vocab_size=97, hidden_size=48, num_hidden_layers=2, num_attention_heads=3, intermediate_size=96,
        rotary_pct=1.0, max_position_embeddings=64, use_parallel_residual=False, hidden_act="gelu_new"),
    "llama_gqa": lambda: transformers.LlamaConfig(
        vocab_size=101, hidden_size=64, num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=2,
        intermediate_size=128, rope_theta=500000.0, rms_norm_eps=1e-5, max_position_embeddings=64,
        tie_word_embeddings=False),
    "gpt2": lambda: transformers.GPT2Config(
        vocab_size=93, n_embd=48, n_layer=3, n_head=4, n_positions=32, activation_function="gelu_new",
        layer_norm_epsilon=1e-5),
    "bloom": lambda: transformers.BloomConfig(
        vocab_size=91, hidden_size=48, n_layer=2, n_head=6, layer_norm_epsilon=1e-5),
    "bloom_post_ln": lambda: transformers.BloomConfig(
        vocab_size=91, hidden_size=32, n_layer=2, n_head=4, apply_residual_connection_post_layernorm=True),
    "llama3_rope_scaling": lambda: transformers.LlamaConfig(
        vocab_size=83, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=96, rope_theta=10000.0, max_position_embeddings=256,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 64}),
    "llama_linear_rope": lambda: transformers.LlamaConfig(
        vocab_size=83, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, rope_scaling={"type": "linear", "factor": 4.0}),
    # Mistral's sliding window (3) shorter than the longest prompt (7): the window is honoured.
    "mistral_window": lambda: transformers.MistralConfig(
        vocab_size=97, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=96, sliding_window=3, max_position_embeddings=64, rope_theta=10000.0),
    "qwen2_bias": lambda: transformers.Qwen2Config(
        vocab_size=97, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=96, max_position_embeddings=64, tie_word_embeddings=True, use_sliding_window=False),
    # OLMo-1: parameter-free LayerNorms; clip_qkv small enough to clip random-init projections.
    "olmo_clip": lambda: transformers.OlmoConfig(
        vocab_size=97, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96,
        max_position_embeddings=64, clip_qkv=0.03, tie_word_embeddings=False),
    "olmo_plain": lambda: transformers.OlmoConfig(
        vocab_size=89, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, tie_word_embeddings=True),
    "neox_linear_rope": lambda: transformers.GPTNeoXConfig(
        vocab_size=97, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
        rotary_pct=0.5, max_position_embeddings=64, rope_scaling={"type": "linear", "factor": 2.0}),
    "llama_tied_mha": lambda: transformers.LlamaConfig(
        vocab_size=89, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
        intermediate_size=80, max_position_embeddings=64, tie_word_embeddings=True),
}


def build(arch, tmp_path, **overrides):
    torch.manual_seed(sorted(ARCHS).index(arch) + 1)
    cfg = ARCHS[arch]()
    for k, v in overrides.items():
        setattr(cfg, k, v)
    cls = {"gpt_neox": transformers.GPTNeoXForCausalLM, "llama": transformers.LlamaForCausalLM,
           "mistral": transformers.MistralForCausalLM, "qwen2": transformers.Qwen2ForCausalLM,
           "olmo": transformers.OlmoForCausalLM, "gpt2": transformers.GPT2LMHeadModel,
           "bloom": transformers.BloomForCausalLM}[cfg.model_type]
    model = cls._from_config(cfg, attn_implementation="eager").eval()
    # Non-trivial norms and biases (initialised to 1 and 0 otherwise).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith(".bias"):
                p.add_(0.1 * torch.randn_like(p))
    path = tmp_path / arch
    model.save_pretrained(path, safe_serialization=True)
    return model, path


LLAMA_LAYOUT = ("mistral", "qwen2", "olmo")  # Llama's module names in transformers


def reference(model, ids, mask):
    kind = "llama" if model.config.model_type in LLAMA_LAYOUT else model.config.model_type
    base = {"gpt_neox": lambda: model.gpt_neox, "llama": lambda: model.model,
            "gpt2": lambda: model.transformer, "bloom": lambda: model.transformer}[kind]()
    layers = base.h if kind in ("gpt2", "bloom") else base.layers
    cap = {k: [] for k in ("post_attention_layernorm", "block_output", "block_input", "attn_output", "mlp_act")}
    ln1_out = []
    handles = []
    embed = {"gpt_neox": lambda: base.embed_in, "llama": lambda: base.embed_tokens, "gpt2": lambda: base.drop,
             "bloom": lambda: base.word_embeddings_layernorm}[kind]()
    handles.append(embed.register_forward_hook(lambda m, i, o: cap["block_output"].append(o)))
    for layer in layers:
        handles.append(layer.register_forward_pre_hook(lambda m, a: cap["block_input"].append(a[0])))
        handles.append(layer.register_forward_hook(lambda m, i, o: cap["block_output"].append(o[0])))
        ln2 = layer.ln_2 if kind == "gpt2" else layer.post_attention_layernorm
        handles.append(ln2.register_forward_hook(lambda m, i, o: cap["post_attention_layernorm"].append(o)))
        attn = {"gpt_neox": lambda: layer.attention, "llama": lambda: layer.self_attn, "gpt2": lambda: layer.attn,
                "bloom": lambda: layer.self_attention}[kind]()
        handles.append(attn.register_forward_hook(lambda m, i, o: cap["attn_output"].append(o[0])))
        if kind == "bloom":
            handles.append(layer.input_layernorm.register_forward_hook(lambda m, i, o: ln1_out.append(o)))
        if kind in ("gpt_neox", "gpt2"):
            handles.append(layer.mlp.act.register_forward_hook(lambda m, i, o: cap["mlp_act"].append(o)))
        elif kind == "bloom":
            handles.append(layer.mlp.gelu_impl.register_forward_hook(lambda m, i, o: cap["mlp_act"].append(o)))
        else:
            handles.append(layer.mlp.down_proj.register_forward_pre_hook(lambda m, a: cap["mlp_act"].append(a[0])))
    final = {"gpt_neox": lambda: base.final_layer_norm, "llama": lambda: base.norm, "gpt2": lambda: base.ln_f,
             "bloom": lambda: base.ln_f}[kind]()
    handles.append(final.register_forward_hook(lambda m, i, o: cap["post_attention_layernorm"].append(o)))
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits
    for h in handles:
        h.remove()
    if kind == "bloom":
        # BLOOM's attention module returns branch + residual; the portable hook is the branch.
        residual = ln1_out if model.config.apply_residual_connection_post_layernorm else cap["block_input"]
        cap["attn_output"] = [a - r for a, r in zip(cap["attn_output"], residual)]
    out = {k: torch.stack(v).numpy() for k, v in cap.items()}
    out["logits"] = logits.numpy()
    return out


def batch(vocab, side):
    rng = np.random.default_rng(5)
    lengths = [7, 4, 1, 6]
    T = max(lengths)
    ids, mask = [], []
    for n in lengths:
        toks = rng.integers(0, vocab, size=n).tolist()
        pad = [0] * (T - n)
        ids.append(toks + pad if side == "right" else pad + toks)
        mask.append([1] * n + [0] * (T - n) if side == "right" else [0] * (T - n) + [1] * n)
    return ids, mask


def run_lmtopo(path, ids, mask, out):
    (out.parent / "batch.json").write_text(json.dumps({"ids": ids, "mask": mask}))
    subprocess.run([MODEL_DUMP, str(path), str(out.parent / "batch.json"), str(out), "float32", DEVICE], check=True)
    meta = json.loads((out / "meta.json").read_text())
    return {k: np.fromfile(out / v["file"], dtype=np.float32).reshape(v["shape"]) for k, v in meta.items()}, meta


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_hooks_and_logits_match_transformers(tmp_path, arch, side):
    model, path = build(arch, tmp_path)
    ids, mask = batch(model.config.vocab_size, side)
    ref = reference(model, ids, mask)
    got, meta = run_lmtopo(path, ids, mask, tmp_path / "out")
    m = np.array(mask, dtype=bool)
    L = model.config.num_hidden_layers
    for hook, want in ref.items():
        key = "none." + hook
        have = got[key]
        if hook != "logits":
            assert have.shape[0] == want.shape[0] == (L + 1 if hook in ("post_attention_layernorm", "block_output") else L)
        # compare real tokens only (pad positions are undefined)
        if hook == "logits":
            np.testing.assert_allclose(have[m], want[m], rtol=1e-5, atol=1e-5, err_msg=hook)
        else:
            np.testing.assert_allclose(have[:, m], want[:, m], rtol=1e-5, atol=1e-5, err_msg=hook)
            last = np.array([np.nonzero(row)[0].max() for row in m])
            pooled_last = want[:, np.arange(len(last)), last]
            np.testing.assert_allclose(got["last." + hook], pooled_last, rtol=1e-5, atol=1e-5, err_msg=hook + " last")
            w = m[None, :, :, None].astype(np.float32)
            pooled_mean = (want * w).sum(2) / w.sum(2)
            np.testing.assert_allclose(got["mean." + hook], pooled_mean, rtol=1e-5, atol=1e-5, err_msg=hook + " mean")
    names = meta["none.post_attention_layernorm"]["points"]
    assert names[-1] in ("gpt_neox.final_layer_norm", "model.norm", "transformer.ln_f")
    assert names[0].endswith("0.post_attention_layernorm") or names[0].endswith("0.ln_2")


# Documented tolerances (docs/models.md): largest deviation of any hook state or logit from the float32
# reference, relative to that hook's largest magnitude. bfloat16 keeps 8 mantissa bits, float16 11.
HALF_TOLERANCE = {"bfloat16": 0.05, "float16": 0.01}


@pytest.mark.parametrize("dtype", sorted(HALF_TOLERANCE))
@pytest.mark.parametrize("arch", ["neox_parallel", "llama_gqa", "bloom"])
def test_half_precision_weights_stay_close(tmp_path, arch, dtype):
    model, path = build(arch, tmp_path)
    ids, mask = batch(model.config.vocab_size, "right")
    ref = reference(model, ids, mask)
    (tmp_path / "batch.json").write_text(json.dumps({"ids": ids, "mask": mask}))
    out = tmp_path / dtype
    proc = subprocess.run([MODEL_DUMP, str(path), str(tmp_path / "batch.json"), str(out), dtype, DEVICE],
                          capture_output=True, text=True)
    if dtype == "float16" and DEVICE == "cpu" and proc.returncode == 2:
        # libtorch 1.13 (Debian's, CI's) has no float16 CPU kernels: a clear error instead of a crash.
        assert "has no float16 CPU kernels" in proc.stderr, proc.stderr
        return
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((out / "meta.json").read_text())
    m = np.array(mask, dtype=bool)
    for hook, want in ref.items():
        v = meta["none." + hook]
        have = np.fromfile(out / v["file"], dtype=np.float32).reshape(v["shape"])
        diff = have[m] - want[m] if hook == "logits" else have[:, m] - want[:, m]
        err = np.abs(diff).max() / np.abs(want).max()
        assert err < HALF_TOLERANCE[dtype], (hook, err)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_incremental_decoding_matches_the_full_forward_of_transformers(tmp_path, arch):
    """The key/value cache of generation: 3 columns of a left-padded batch, then one column at a time
    against the cache (the longest row, 7 tokens, outgrows mistral_window's window of 3, and gpt2's
    learned and BLOOM's ALiBi positions continue), equal to transformers' forward over the whole batch."""
    model, path = build(arch, tmp_path)
    ids, mask = batch(model.config.vocab_size, "left")
    ref = reference(model, ids, mask)
    out = tmp_path / "out"
    (tmp_path / "batch.json").write_text(json.dumps({"ids": ids, "mask": mask, "decode_from": 3}))
    subprocess.run([MODEL_DUMP, str(path), str(tmp_path / "batch.json"), str(out), "float32", DEVICE], check=True)
    meta = json.loads((out / "meta.json").read_text())
    m = np.array(mask, dtype=bool)
    assert set(meta) == {"none." + h for h in ref}
    for hook, want in ref.items():
        have = np.fromfile(out / meta["none." + hook]["file"], dtype=np.float32).reshape(meta["none." + hook]["shape"])
        assert have.shape == want.shape, hook
        np.testing.assert_allclose(have[m] if hook == "logits" else have[:, m], want[m] if hook == "logits" else want[:, m],
                                   rtol=1e-5, atol=1e-5, err_msg=hook)


@pytest.mark.parametrize("corruption", ["truncate", "header", "shape", "missing"])
def test_bad_checkpoints_are_clear_errors(tmp_path, corruption):
    model, path = build("llama_tied_mha", tmp_path)
    st = path / "model.safetensors"
    data = bytearray(st.read_bytes())
    if corruption == "truncate":
        st.write_bytes(data[: len(data) // 2])
    elif corruption == "header":
        data[10:20] = b"!!!!!!!!!!"
        st.write_bytes(bytes(data))
    elif corruption == "shape":
        cfg = json.loads((path / "config.json").read_text())
        cfg["intermediate_size"] += 1
        (path / "config.json").write_text(json.dumps(cfg))
    else:
        from safetensors.torch import load_file, save_file
        tensors = load_file(str(st))
        tensors.pop("model.layers.1.mlp.up_proj.weight")
        save_file(tensors, str(st), metadata={"format": "pt"})
    (tmp_path / "batch.json").write_text(json.dumps({"ids": [[1, 2]], "mask": [[1, 1]]}))
    proc = subprocess.run([MODEL_DUMP, str(path), str(tmp_path / "batch.json"), str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "model.safetensors" in proc.stderr or "config.json" in proc.stderr or str(path) in proc.stderr
    if corruption == "shape":
        assert "mlp.gate_proj.weight" in proc.stderr and "disagrees with config.json" in proc.stderr
    if corruption == "missing":
        assert "missing tensor model.layers.1.mlp.up_proj.weight" in proc.stderr


@pytest.mark.parametrize("arch", ["neox_parallel", "llama_gqa", "gpt2"])
def test_interventions_match_transformers(tmp_path, arch):
    """Zeroing and shifting FFN units, adding a residual vector before a block and skipping a block,
    against the same edits made with forward hooks (and a shortened layer list) in transformers."""
    import copy

    model, path = build(arch, tmp_path)
    ids, mask = batch(model.config.vocab_size, "right")
    kind = model.config.model_type
    hidden = model.config.hidden_size
    direction = (np.arange(hidden, dtype=np.float32) - hidden / 2) / hidden
    iv = {"ffn_set": {"0": [[3, 0.0], [5, 0.0]]}, "ffn_add": {"1": [[7, 1.0]]},
          "residual_add": {"1": direction.tolist()}, "skip_blocks": [2]}

    ref = copy.deepcopy(model)
    base = ref.transformer if kind == "gpt2" else (ref.gpt_neox if kind == "gpt_neox" else ref.model)
    layers = base.h if kind == "gpt2" else base.layers

    def ffn_edit(layer_idx):
        def edit(t):
            t = t.clone()
            for u, v in iv["ffn_set"].get(str(layer_idx), []):
                t[..., u] = v
            for u, v in iv["ffn_add"].get(str(layer_idx), []):
                t[..., u] += v
            return t
        return edit

    for i, layer in enumerate(layers):
        edit = ffn_edit(i)
        if kind == "llama":
            layer.mlp.down_proj.register_forward_pre_hook(lambda m, a, e=edit: (e(a[0]),))
        else:
            layer.mlp.act.register_forward_hook(lambda m, i_, o, e=edit: e(o))
    layers[1].register_forward_pre_hook(lambda m, a: (a[0] + torch.tensor(direction),) + tuple(a[1:]))
    kept = torch.nn.ModuleList([l for j, l in enumerate(layers) if j != 2])
    if kind == "gpt2":
        base.h = kept
    else:
        base.layers = kept
    with torch.no_grad():
        want = ref(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), use_cache=False).logits.numpy()

    (tmp_path / "b.json").write_text(json.dumps({"ids": ids, "mask": mask, "interventions": iv}))
    subprocess.run([MODEL_DUMP, str(path), str(tmp_path / "b.json"), str(tmp_path / "o"), "float32", DEVICE], check=True)
    meta = json.loads((tmp_path / "o" / "meta.json").read_text())
    got = np.fromfile(tmp_path / "o" / meta["none.logits"]["file"], dtype=np.float32).reshape(meta["none.logits"]["shape"])
    m = np.array(mask, dtype=bool)
    np.testing.assert_allclose(got[m], want[m], rtol=1e-4, atol=1e-4)
    plain = reference(model, ids, mask)["logits"]
    assert np.abs(plain[m] - want[m]).max() > 1e-3  # the interventions change the output


def test_invalid_interventions_are_input_errors(tmp_path):
    model, path = build("neox_sequential", tmp_path)
    for iv, needle in [({"skip_blocks": [9]}, "skip_blocks"), ({"ffn_set": {"0": [[10000, 0.0]]}}, "unit 10000"),
                       ({"residual_add": {"0": [1.0, 2.0]}}, "expected a vector of 48")]:
        (tmp_path / "b.json").write_text(json.dumps({"ids": [[1, 2]], "mask": [[1, 1]], "interventions": iv}))
        proc = subprocess.run([MODEL_DUMP, str(path), str(tmp_path / "b.json"), str(tmp_path / "o"), "float32", DEVICE],
                              capture_output=True, text=True)
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr


@pytest.mark.parametrize("arch", ["llama_gqa", "bloom"])
def test_sharded_checkpoints_load(tmp_path, arch):
    """A sharded save (model-0000X-of-0000N.safetensors + model.safetensors.index.json) loads and gives
    the same logits as the unsharded reference."""
    model, _ = build(arch, tmp_path)
    sharded = tmp_path / "sharded"
    model.save_pretrained(sharded, safe_serialization=True, max_shard_size="40KB")
    assert (sharded / "model.safetensors.index.json").exists() and not (sharded / "model.safetensors").exists()
    ids, mask = batch(model.config.vocab_size, "right")
    ref = reference(model, ids, mask)
    got, _ = run_lmtopo(sharded, ids, mask, tmp_path / "out")
    m = np.array(mask, dtype=bool)
    np.testing.assert_allclose(got["none.logits"][m], ref["logits"][m], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", ["llama_gqa", "gpt2"])
def test_inspect_model_folder(tmp_path, arch):
    """`lmtopo inspect DIR` reports the architecture, the parameter count stored in the checkpoint and
    the hook points, without loading the weights."""
    model, path = build(arch, tmp_path)
    from safetensors import safe_open
    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        stored = sum(f.get_slice(k).get_shape().numel() if hasattr(f.get_slice(k).get_shape(), "numel")
                     else int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())
    out = subprocess.run([os.environ["LMTOPO"], "inspect", str(path)], capture_output=True, text=True, check=True).stdout
    L = model.config.num_hidden_layers
    assert f"architecture: {model.config.model_type}" in out
    assert f"parameters: {stored} " in out
    assert f"post_attention_layernorm ({L + 1} points)" in out and f"mlp_act ({L} points)" in out


def _header_rewrite(st, edit):
    """Rewrites the JSON header of a safetensors file with `edit(header)` (data left in place)."""
    import struct
    data = st.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * (n - len(text)) if len(text) <= n else b""
    st.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n:])


@pytest.mark.parametrize("case,needle", [
    ("bad_dtype", "unsupported dtype"),
    ("overlap", "overlap"),
    ("offsets_outside", "outside the file"),
    ("missing_shard", "is missing"),
    ("unsupported_type", "unsupported 'mamba'"),
    ("config_not_json", "config.json"),
    ("no_weights", "no model.safetensors"),
])
def test_more_bad_checkpoints(tmp_path, case, needle):
    model, path = build("llama_tied_mha", tmp_path)
    st = path / "model.safetensors"
    first = lambda h: sorted(k for k in h if k != "__metadata__")[0]
    if case == "bad_dtype":
        _header_rewrite(st, lambda h: h[first(h)].update(dtype="I64"))
    elif case == "overlap":
        def edit(h):
            keys = sorted((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][0])
            a, b = h[keys[0]], h[keys[1]]
            size = b["data_offsets"][1] - b["data_offsets"][0]
            b["data_offsets"] = [a["data_offsets"][0], a["data_offsets"][0] + size]
        _header_rewrite(st, edit)
    elif case == "offsets_outside":
        def edit(h):
            k = first(h)
            b, e = h[k]["data_offsets"]
            h[k]["data_offsets"] = [b + 10**9, e + 10**9]
        _header_rewrite(st, edit)
    elif case == "missing_shard":
        sharded = tmp_path / "sharded"
        model.save_pretrained(sharded, safe_serialization=True, max_shard_size="40KB")
        next(sharded.glob("model-0000*-of-*.safetensors")).unlink()
        path = sharded
    elif case == "unsupported_type":
        cfg = json.loads((path / "config.json").read_text())
        cfg["model_type"] = "mamba"
        (path / "config.json").write_text(json.dumps(cfg))
    elif case == "config_not_json":
        (path / "config.json").write_text("{not json")
    else:
        st.unlink()
    (tmp_path / "batch.json").write_text(json.dumps({"ids": [[1, 2]], "mask": [[1, 1]]}))
    proc = subprocess.run([MODEL_DUMP, str(path), str(tmp_path / "batch.json"), str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_sliding_window_changes_the_states_it_is_checked_on(tmp_path):
    """The mistral_window case is only a check of the window if the window changes the result: the
    same weights without a window give other logits for prompts longer than the window."""
    model, _ = build("mistral_window", tmp_path)
    ids, mask = batch(model.config.vocab_size, "right")
    windowed = reference(model, ids, mask)["logits"]
    model.config.sliding_window = None
    unwindowed = reference(model, ids, mask)["logits"]
    m = np.array(mask, dtype=bool)
    assert np.abs(windowed[m] - unwindowed[m]).max() > 1e-3
