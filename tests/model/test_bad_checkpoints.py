"""Checkpoints lmtopo cannot reproduce are refused by name (exit 2, one line naming config.json or the
safetensors file and the field or tensor), never computed differently from transformers: fields of the
wrong JSON type, impossible sizes, config fields that change the forward pass and are not implemented,
and tensors the forward pass would not use. The unchanged checkpoint, saved by transformers, loads."""
import json
import subprocess

import pytest
from safetensors.torch import load_file, save_file

from test_extract import LMTOPO, make_checkpoint


def run_extract(path, tmp_path, *extra):
    prompts = tmp_path / "short.jsonl"  # within gpt2's 32 positions
    prompts.write_text('{"text": "Hallo Welt"}\n{"text": "bonjour"}\n{"text": "привет"}\n')
    out = tmp_path / "out.h5"
    proc = subprocess.run([LMTOPO, "extract", "--model", str(path), "--prompts", str(prompts), "-o", str(out), *extra],
                          capture_output=True, text=True)
    return proc, out


def edit_config(path, **changes):
    cfg = json.loads((path / "config.json").read_text())
    for k, v in changes.items():
        if v is ...:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (path / "config.json").write_text(json.dumps(cfg))


CONFIG_CASES = [
    ("neox_parallel", {"num_attention_heads": 0}, "num_attention_heads: expected an integer in [1"),
    ("neox_parallel", {"hidden_size": -64}, "hidden_size: expected an integer in [1"),
    ("neox_parallel", {"rotary_pct": "0.25"}, "rotary_pct: expected a positive number"),
    ("neox_parallel", {"use_parallel_residual": "yes"}, "use_parallel_residual: expected true or false"),
    ("neox_parallel", {"rope_scaling": {"type": "dynamic", "factor": 2.0}}, "rope_scaling.rope_type: unsupported 'dynamic'"),
    ("neox_parallel", {"frobnication_scale": 3}, "frobnication_scale: unknown to lmtopo's gpt_neox runtime"),
    ("neox_parallel", {"num_attention_heads": 5}, "num_attention_heads: expected a divisor of hidden_size"),
    ("llama_gqa", {"sliding_window": 16}, "sliding_window: not implemented by lmtopo (sliding-window attention)"),
    ("llama_gqa", {"model_type": "mistral", "sliding_window": 16}, "sliding_window: not implemented"),
    ("llama_gqa", {"model_type": "qwen2", "use_sliding_window": True}, "use_sliding_window: not implemented by lmtopo"),
    ("llama_gqa", {"model_type": "mistral", "attention_bias": ..., "mlp_bias": ..., "pretraining_tp": ...,
                   "rope_scaling": {"type": "linear", "factor": 2.0}}, "rope_scaling: unknown to lmtopo's mistral"),
    ("llama_gqa", {"num_key_value_heads": 3}, "num_key_value_heads: expected a divisor of num_attention_heads"),
    ("llama_gqa", {"rope_scaling": {"rope_type": "yarn", "factor": 2.0}}, "rope_scaling.rope_type: unsupported 'yarn'"),
    ("llama_gqa", {"attention_bias": True}, "self_attn.q_proj.bias"),
    ("gpt2", {"scale_attn_weights": False}, "scale_attn_weights: not implemented by lmtopo"),
    ("gpt2", {"add_cross_attention": True}, "add_cross_attention: not implemented by lmtopo"),
    ("bloom", {"n_inner": 100}, "n_inner: not implemented by lmtopo"),
]


# Whether each architecture's checkpoint, as transformers saved it, loads: checked once per architecture
# (make_checkpoint is seeded, so every case of an architecture starts from the same files).
_UNEDITED_LOADS = {}


def unedited_checkpoint_loads(arch, path, tmp_path):
    if arch not in _UNEDITED_LOADS:
        ok, out = run_extract(path, tmp_path)
        _UNEDITED_LOADS[arch] = (ok.returncode, ok.stderr)
        out.unlink(missing_ok=True)
    return _UNEDITED_LOADS[arch]


@pytest.mark.parametrize("arch,changes,needle", CONFIG_CASES, ids=[f"{a}-{next(iter(c))}" for a, c, _ in CONFIG_CASES])
def test_config_fields_are_refused_by_name(tmp_path, arch, changes, needle):
    _, _, path = make_checkpoint(arch, tmp_path)
    rc, stderr = unedited_checkpoint_loads(arch, path, tmp_path)
    assert rc == 0, stderr  # the checkpoint as transformers saved it loads
    edit_config(path, **changes)
    extra = ["--architecture", "llama"] if changes.get("model_type") == "mistral" and "sliding_window" in changes else []
    proc, out = run_extract(path, tmp_path, *extra)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert needle in lines[0] and any(w in lines[0] for w in ("config.json", ".safetensors", "missing tensor")), lines[0]
    assert not out.exists()


def test_a_tensor_the_forward_pass_does_not_use_is_refused(tmp_path):
    _, _, path = make_checkpoint("llama_gqa", tmp_path)
    weights = load_file(path / "model.safetensors")
    weights["model.layers.0.self_attn.q_proj.bias"] = weights["model.layers.0.input_layernorm.weight"][:64].clone()
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    proc, out = run_extract(path, tmp_path)
    assert proc.returncode == 2 and "model.layers.0.self_attn.q_proj.bias: not used" in proc.stderr, proc.stderr
    assert not out.exists()


def test_a_prompt_longer_than_learned_positions_is_named(tmp_path):
    _, _, path = make_checkpoint("gpt2", tmp_path)  # n_positions 32
    prompts = tmp_path / "long.jsonl"
    prompts.write_text('{"text": "ok"}\n{"id": "long", "text": "' + "lorem ipsum dolor sit amet " * 20 + '"}\n')
    out = tmp_path / "out.h5"
    proc = subprocess.run([LMTOPO, "extract", "--model", str(path), "--prompts", str(prompts), "-o", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "long.jsonl:2: prompt 'long' has" in proc.stderr and "n_positions 32" in proc.stderr, proc.stderr
    assert not out.exists()


def test_tied_head_copies_must_equal_the_embeddings(tmp_path):
    _, _, path = make_checkpoint("llama_tied_mha", tmp_path)
    weights = load_file(path / "model.safetensors")
    weights["lm_head.weight"] = weights["model.embed_tokens.weight"].clone()
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    ok, _ = run_extract(path, tmp_path)
    assert ok.returncode == 0, ok.stderr  # an identical copy is what tying means
    weights["lm_head.weight"] = weights["lm_head.weight"] + 1.0
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    proc, _ = run_extract(path, tmp_path)
    assert proc.returncode == 2 and "lm_head.weight: differs from model.embed_tokens.weight" in proc.stderr, proc.stderr
