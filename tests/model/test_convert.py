"""`lmtopo convert` on small GGUF files written here with gguf-py (llama.cpp's Python package) from
random-init transformers Llama models: every decodable ggml type against gguf-py's dequantizer and
against the weights before quantization; an all-F32 file through lmtopo's forward pass against the
original transformers model (config mapping, names and the q/k row order end to end); and every kind
of input lmtopo must refuse, by name, with no output folder left behind."""
import json
import os
import subprocess

import gguf
import numpy as np
import pytest
import torch
import transformers

from test_parity import batch

LMTOPO = os.environ["LMTOPO"]
MODEL_DUMP = os.environ.get("MODEL_DUMP", "model_dump")
Q = gguf.GGMLQuantizationType
BYTE_SYMBOLS = [chr(c) for c in range(33, 127)] + [chr(c) for c in range(161, 173)] + [chr(c) for c in range(174, 256)]
BYTE_SYMBOLS += [chr(256 + i) for i in range(256 - len(BYTE_SYMBOLS))]  # GPT-2's bytes_to_unicode, 256 symbols
MERGES = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "Ġ 1"]


def tiny_llama(ffn=96):
    torch.manual_seed(7)
    cfg = transformers.LlamaConfig(vocab_size=len(BYTE_SYMBOLS) + len(MERGES) + 1, hidden_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, intermediate_size=ffn, rope_theta=50000.0,
                                   rms_norm_eps=1e-5, max_position_embeddings=64, tie_word_embeddings=False)
    model = transformers.LlamaForCausalLM._from_config(cfg, attn_implementation="eager").eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


def permute(w, heads):
    """llama.cpp's convert_hf_to_gguf order of q/k rows."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


GGUF_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
              "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
              "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}


def gguf_tensors(model):
    """(gguf name, hf name, float32 array in GGUF row order)."""
    cfg, out = model.config, []
    for hf, t in model.state_dict().items():
        w = t.numpy().astype(np.float32)
        if hf == "model.embed_tokens.weight":
            name = "token_embd.weight"
        elif hf == "model.norm.weight":
            name = "output_norm.weight"
        elif hf == "lm_head.weight":
            name = "output.weight"
        else:
            _, _, i, *rest = hf.split(".")
            name = f"blk.{i}.{GGUF_NAMES['.'.join(rest[:-1])]}.weight"
            if "q_proj" in hf:
                w = permute(w, cfg.num_attention_heads)
            elif "k_proj" in hf:
                w = permute(w, cfg.num_key_value_heads)
        out.append((name, hf, w))
    return out


def write_gguf(path, model, qtype=Q.F32, meta_edit=None, extra_tensors=(), tensor_types=None):
    cfg = model.config
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(cfg.rope_theta)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    tokens = ["<|endoftext|>"] + BYTE_SYMBOLS + [m.replace(" ", "") for m in MERGES]
    meta = {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "smollm"}
    if meta_edit:
        meta_edit(meta)
    w.add_tokenizer_model(meta["tokenizer.ggml.model"])
    w.add_tokenizer_pre(meta["tokenizer.ggml.pre"])
    w.add_token_list(tokens)
    w.add_token_types([3] + [1] * (len(tokens) - 1))
    w.add_token_merges(MERGES)
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)
    w.add_add_bos_token(meta.get("add_bos", False))
    for key, value in meta.get("extra", {}).items():
        w.add_uint32(key, value)
    for name, _, arr in list(gguf_tensors(model)) + list(extra_tensors):
        t = (tensor_types or {}).get(name, qtype if arr.ndim == 2 else Q.F32)
        if t == Q.F32:
            w.add_tensor(name, arr)
        elif t == Q.F16:
            w.add_tensor(name, arr.astype(np.float16))
        elif isinstance(t, tuple):  # (type, raw bytes) for a type gguf-py cannot quantize
            w.add_tensor(name, t[1], raw_dtype=t[0])
        else:
            w.add_tensor(name, gguf.quants.quantize(arr, t), raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def convert(src, out):
    return subprocess.run([LMTOPO, "convert", str(src), "-o", str(out)], capture_output=True, text=True)


# Largest error of a quantized weight relative to the tensor's largest magnitude, per type.
QUANT_TOLERANCE = {Q.F32: 0.0, Q.F16: 1e-3, Q.BF16: 8e-3, Q.Q8_0: 1e-2, Q.Q4_0: 0.15, Q.Q4_1: 0.1}


@pytest.mark.parametrize("qtype", list(QUANT_TOLERANCE), ids=lambda t: t.name)
def test_every_type_matches_gguf_py_and_the_original_weights(tmp_path, qtype):
    from safetensors.numpy import load_file

    model = tiny_llama()
    src = write_gguf(tmp_path / "m.gguf", model, qtype)
    proc = convert(src, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    mine = load_file(str(tmp_path / "out" / "model.safetensors"))
    reader = {t.name: t for t in gguf.GGUFReader(str(src)).tensors}
    cfg = model.config
    for name, hf, original in gguf_tensors(model):
        t = reader[name]
        decoded = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        if "attn_q" in name or "attn_k" in name:  # back to Hugging Face order, here by the inverse reshape
            heads = cfg.num_attention_heads if "attn_q" in name else cfg.num_key_value_heads
            back = lambda w: w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
            decoded, original = back(decoded), back(original)
        np.testing.assert_array_equal(mine[hf], decoded, err_msg=name)
        assert np.abs(mine[hf] - original).max() <= QUANT_TOLERANCE[qtype if original.ndim == 2 else Q.F32] * np.abs(original).max()
    written = json.loads((tmp_path / "out" / "config.json").read_text())
    assert written["tie_word_embeddings"] is False and "lm_head.weight" in mine
    prov = json.loads((tmp_path / "out" / "lmtopo_convert.json").read_text())
    assert prov["source_types"] == ({"F32": 5, qtype.name: 16} if qtype != Q.F32 else {"F32": 21})


@pytest.mark.parametrize("side", ["right", "left"])
def test_f32_file_runs_like_the_original_model(tmp_path, side):
    """Config, names and q/k order end to end: lmtopo's forward pass of the converted F32 file
    against the transformers model the file was written from."""
    model = tiny_llama()
    assert convert(write_gguf(tmp_path / "m.gguf", model), tmp_path / "out").returncode == 0
    ids, mask = batch(model.config.vocab_size, side)
    with torch.no_grad():
        want = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits.numpy()
    (tmp_path / "b.json").write_text(json.dumps({"ids": ids, "mask": mask}))
    subprocess.run([MODEL_DUMP, str(tmp_path / "out"), str(tmp_path / "b.json"), str(tmp_path / "o")], check=True)
    meta = json.loads((tmp_path / "o" / "meta.json").read_text())
    got = np.fromfile(tmp_path / "o" / meta["none.logits"]["file"], dtype=np.float32).reshape(meta["none.logits"]["shape"])
    m = np.array(mask, dtype=bool)
    np.testing.assert_allclose(got[m], want[m], rtol=1e-5, atol=1e-5)


def test_tokenizer_json_matches_what_the_gguf_says(tmp_path):
    from tokenizers import Tokenizer

    model = tiny_llama()
    assert convert(write_gguf(tmp_path / "m.gguf", model, meta_edit=lambda m: m.update(add_bos=True)), tmp_path / "out").returncode == 0
    tok = Tokenizer.from_file(str(tmp_path / "out" / "tokenizer.json"))
    enc = tok.encode("the cat 123")
    assert enc.ids[0] == 0  # add_bos_token: the BOS from the post-processor
    # smollm: digits isolated before the byte-level split, so the merge "Ġ 1" cannot apply.
    assert enc.tokens[1:] == ["t", "he", "Ġ", "c", "a", "t", "Ġ", "1", "2", "3"]
    assert tok.encode("<|endoftext|>", add_special_tokens=False).ids == [0]
    tc = json.loads((tmp_path / "out" / "tokenizer_config.json").read_text())
    assert tc["add_bos_token"] is True and tc["bos_token"] == "<|endoftext|>"


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])


def _bad_magic(path):
    data = bytearray(path.read_bytes())
    data[:4] = b"GGUX"
    path.write_bytes(bytes(data))


# (what to write, how to spoil it after writing, what the one-line error must name)
REFUSALS = {
    "truncated": ({}, _truncate, "data outside the file"),
    "bad_magic": ({}, _bad_magic, "not a GGUF file"),
    "unknown_key": ({"meta_edit": lambda m: m.update(extra={"llama.attention.sliding_window": 16})}, None,
                    "llama.attention.sliding_window: not implemented"),
    "extra_tensor": ({"extra_tensors": [("rope_freqs.weight", None, np.ones(8, np.float32))]}, None, "tensor rope_freqs.weight"),
    "k_quant": ({"ffn": 256, "tensor_types": {"blk.0.ffn_down.weight": (Q.Q4_K, np.zeros((64, 144), np.uint8))}}, None,
                "blk.0.ffn_down.weight: ggml type Q4_K is not supported"),
    "spm_tokenizer": ({"meta_edit": lambda m: m.update({"tokenizer.ggml.model": "llama"})}, None, "tokenizer.ggml.model: 'llama'"),
    "other_pre_tokenizer": ({"meta_edit": lambda m: m.update({"tokenizer.ggml.pre": "qwen2"})}, None, "tokenizer.ggml.pre: 'qwen2'"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_inputs_name_the_problem_and_leave_no_folder(tmp_path, case):
    kwargs, spoil, needle = REFUSALS[case]
    ffn = kwargs.pop("ffn", 96)
    src = write_gguf(tmp_path / "m.gguf", tiny_llama(ffn), **kwargs)
    if spoil:
        spoil(src)
    proc = convert(src, tmp_path / "out")
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and str(src) in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "out").exists()


def test_existing_folder_is_kept_and_rerun_is_a_no_op(tmp_path):
    model = tiny_llama()
    src = write_gguf(tmp_path / "m.gguf", model)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    proc = convert(src, tmp_path / "other")
    assert proc.returncode == 2 and "exists and is not a conversion of" in proc.stderr, proc.stderr
    assert (tmp_path / "other" / "keep.txt").read_text() == "mine"
    assert convert(src, tmp_path / "out").returncode == 0
    proc = convert(src, tmp_path / "out")
    assert proc.returncode == 0 and "up to date" in proc.stdout
