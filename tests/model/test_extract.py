"""`lmtopo extract` (design.md contract 6) end to end against transformers + tokenizers: random-init
checkpoints with a tokenizer trained here, multilingual prompts, several hooks, last and mean pooling,
at 1, 2 and 4 ranks. The reference runs every prompt alone (no padding), so batching and padding in
lmtopo are checked too. What holds across rank counts (docs/models.md): bit-identical files at equal
compute threads per rank (`--threads 1` here at 1, 2 and 4 ranks), and float32 rounding otherwise,
because OpenBLAS may order sums by thread count on some CPUs (seen on AMD EPYC); every rank's threads
are recorded in created_by."""
import json
import os
import pathlib
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
import transformers
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

from test_parity import ARCHS, build
from test_tokenizer import TEXTS

LMTOPO = os.environ["LMTOPO"]
MPIRUN = os.environ.get("MPIRUN", "mpirun")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from mpi_launch import run as run_mpi  # noqa: E402  (tests/mpi_launch.py: Open MPI's lost-rank race)
HOOKS = ["post_attention_layernorm", "block_output", "mlp_act"]


def make_checkpoint(arch, tmp_path, **overrides):
    model, path = build(arch, tmp_path, vocab_size=420, **overrides)  # room for the 256 byte symbols and merges
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=model.config.vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(TEXTS, trainer=trainer)
    assert tok.get_vocab_size() <= model.config.vocab_size
    tok.save(str(path / "tokenizer.json"))
    return model, tok, path


def prompts_file(tmp_path, n=23):
    rows = []
    for i in range(n):
        text = TEXTS[(i * 37) % len(TEXTS)][:80] or "empty"
        rows.append({"id": f"p{i}", "lang": ["de", "fr", "ru"][i % 3], "group": i // 3, "text": text})
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    return path, rows


def reference(model, tok, rows, hook, pool, tokens=False, special=False):
    neox = model.config.model_type == "gpt_neox"
    base = model.gpt_neox if neox else model.model
    out = []
    for r in rows:
        ids = tok.encode(r["text"], add_special_tokens=special).ids
        cap = []
        hs = []
        if hook == "post_attention_layernorm":
            for layer in base.layers:
                hs.append(layer.post_attention_layernorm.register_forward_hook(lambda m, i, o: cap.append(o)))
            final = base.final_layer_norm if neox else base.norm
            hs.append(final.register_forward_hook(lambda m, i, o: cap.append(o)))
        elif hook == "block_output":
            emb = base.embed_in if neox else base.embed_tokens
            hs.append(emb.register_forward_hook(lambda m, i, o: cap.append(o)))
            for layer in base.layers:
                hs.append(layer.register_forward_hook(lambda m, i, o: cap.append(o[0])))
        else:
            for layer in base.layers:
                if neox:
                    hs.append(layer.mlp.act.register_forward_hook(lambda m, i, o: cap.append(o)))
                else:
                    hs.append(layer.mlp.down_proj.register_forward_pre_hook(lambda m, a: cap.append(a[0])))
        with torch.no_grad():
            model(input_ids=torch.tensor([ids]))
        for h in hs:
            h.remove()
        x = torch.stack(cap)[:, 0]  # [points, T, W]
        out.append(x.numpy() if tokens else (x[:, -1] if pool == "last" else x.mean(1)).numpy())
    return out if tokens else np.stack(out, axis=1)  # [points, prompts, W] (tokens: per prompt [points, T, W])


def extract(path, prompts, out, pool, ranks, batch=5, dtype="float32", extra=(), threads=1):
    cmd = [LMTOPO, "extract", "--model", str(path), "--prompts", str(prompts), "--pool", pool, "--batch", str(batch),
           "--dtype", dtype, "-o", str(out), *extra] + sum((["--hook", h] for h in HOOKS), [])
    if threads is not None:
        cmd += ["--threads", str(threads)]
    if ranks > 1:
        cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(ranks)] + cmd
    proc = run_mpi(cmd)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.parametrize("arch", ["neox_parallel", "llama_gqa"])
@pytest.mark.parametrize("pool", ["last", "mean"])
def test_extract_matches_transformers_at_1_2_4_ranks(tmp_path, arch, pool):
    model, tok, path = make_checkpoint(arch, tmp_path)
    prompts, rows = prompts_file(tmp_path)
    data = {}
    for ranks in (1, 2, 4):
        out = tmp_path / f"act{ranks}.h5"
        proc = extract(path, prompts, out, pool, ranks, threads=1)
        # 23 prompts at batch 5: sort windows of one batch (fewer than 16 windows of 4), so 4 ranks all
        # get a share (windows of 4 batches would leave two ranks idle).
        per_rank = [int(c) for c in proc.stdout.split("prompts per rank:")[1].split("->")[0].split()]
        assert len(per_rank) == ranks and sum(per_rank) == len(rows) and min(per_rank) >= 5, proc.stdout
        subprocess.run([LMTOPO, "validate", str(out)], check=True, capture_output=True)
        with h5py.File(out, "r") as f:
            data[ranks] = {h: f[f"activations/{h}"][:] for h in HOOKS}
            assert [x.decode() for x in f["prompts/id"][:]] == [r["id"] for r in rows]
            assert list(f["prompts/group"][:]) == [r["group"] for r in rows]
            ntok = [len(tok.encode(r["text"], add_special_tokens=False).ids) for r in rows]
            assert list(f["prompts/n_tokens"][:]) == ntok
            assert f["activations/post_attention_layernorm"].attrs["pooling"].decode() == pool
            created = json.loads(f.attrs["created_by"])
            assert created["ranks"] == ranks and created["threads_per_rank"] == [1] * ranks
    # One rank at two threads: the same computation with sums possibly ordered otherwise.
    extract(path, prompts, tmp_path / "act1t2.h5", pool, 1, threads=2)
    with h5py.File(tmp_path / "act1t2.h5", "r") as f:
        two_threads = {h: f[f"activations/{h}"][:] for h in HOOKS}
        assert json.loads(f.attrs["created_by"])["threads_per_rank"] == [2]
    for h in HOOKS:
        want = reference(model, tok, rows, h, pool)
        np.testing.assert_allclose(data[1][h], want, rtol=1e-4, atol=1e-4, err_msg=h)
        assert np.array_equal(data[1][h], data[2][h]) and np.array_equal(data[1][h], data[4][h]), h
        scale = np.abs(data[1][h]).max()
        np.testing.assert_allclose(two_threads[h], data[1][h], rtol=1e-5, atol=1e-5 * scale, err_msg=h)


@pytest.mark.parametrize("arch", ["mistral_window", "qwen2_bias", "olmo_clip"])
def test_extract_llama_layout_families(tmp_path, arch):
    """Mistral (prompts far longer than its window of 3, in padded batches), Qwen2 and OLMo-1 through
    `lmtopo extract` on 2 ranks against transformers, each prompt alone."""
    model, tok, path = make_checkpoint(arch, tmp_path)
    prompts, rows = prompts_file(tmp_path, n=11)
    extract(path, prompts, tmp_path / "a.h5", "mean", 2)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert max(f["prompts/n_tokens"][:]) > 3 * 3
        for h in HOOKS:
            want = reference(model, tok, rows, h, "mean")
            np.testing.assert_allclose(f[f"activations/{h}"][:], want, rtol=1e-5, atol=1e-5 * np.abs(want).max(), err_msg=h)


def test_bfloat16_output_and_errors(tmp_path):
    model, tok, path = make_checkpoint("neox_parallel", tmp_path)
    prompts, rows = prompts_file(tmp_path, n=6)
    extract(path, prompts, tmp_path / "bf.h5", "last", 2, dtype="bfloat16")
    with h5py.File(tmp_path / "bf.h5", "r") as f:
        raw = f["activations/block_output"][:]
        assert raw.dtype == np.uint16 and f["activations/block_output"].attrs["lmtopo_dtype"].decode() == "bfloat16"
    widened = (raw.astype(np.uint32) << 16).view(np.float32)
    want = reference(model, tok, rows, "block_output", "last")
    assert np.abs(widened - want).max() / np.abs(want).max() < 0.05
    # an empty prompt is an input error naming the line
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": ""}\n')
    proc = subprocess.run([LMTOPO, "extract", "--model", str(path), "--prompts", str(bad), "-o", str(tmp_path / "x.h5")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "bad.jsonl:2:" in proc.stderr and not (tmp_path / "x.h5").exists()
    proc = subprocess.run([LMTOPO, "extract", "--model", str(path), "--prompts", str(prompts), "--hook", "layer_3",
                           "-o", str(tmp_path / "x.h5")], capture_output=True, text=True)
    assert proc.returncode == 2 and "layer_3" in proc.stderr
    # device: a malformed name, and CUDA where libtorch sees no GPU (skipped where one is visible)
    proc = subprocess.run([LMTOPO, "extract", "--model", str(path), "--prompts", str(prompts), "--device", "gpu0",
                           "-o", str(tmp_path / "x.h5")], capture_output=True, text=True)
    assert proc.returncode == 2 and "device: expected cpu, cuda or cuda:N" in proc.stderr, proc.stderr
    if not torch.cuda.is_available():
        proc = subprocess.run([LMTOPO, "extract", "--model", str(path), "--prompts", str(prompts), "--device", "cuda",
                               "-o", str(tmp_path / "x.h5")], capture_output=True, text=True)
        assert proc.returncode == 2 and "sees no CUDA GPU" in proc.stderr and not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize("arch", ["neox_parallel", "llama_gqa"])
def test_ffn_mean_and_per_token_dumps(tmp_path, arch):
    """--ffn-mean stores mlp_act mean-pooled whatever --pool is; --ffn-tokens stores every token's FFN
    units of the chosen prompts, in prompt order with prompt row, position and token id; identical at 1
    and 2 ranks at one thread per rank (the chosen prompts fall on both ranks) and equal to transformers."""
    model, tok, path = make_checkpoint(arch, tmp_path)
    prompts, rows = prompts_file(tmp_path, n=12)
    chosen = ["p2", "p9", "p4"]
    extra = ["--ffn-mean"] + sum((["--ffn-tokens", c] for c in chosen), [])
    got = {}
    for ranks in (1, 2):
        out = tmp_path / f"ffn{ranks}.h5"
        extract(path, prompts, out, "last", ranks, extra=extra)
        subprocess.run([LMTOPO, "validate", str(out)], check=True, capture_output=True)
        with h5py.File(out, "r") as f:
            got[ranks] = {k: f[k][()] for k in ("ffn/mean", "ffn/tokens/values", "ffn/tokens/prompt",
                                                 "ffn/tokens/position", "ffn/tokens/token_id")}
            assert f["ffn/mean"].attrs["pooling"].decode() == "mean" and f["ffn/mean"].attrs["hook"].decode() == "mlp_act"
            assert f["activations/mlp_act"].attrs["pooling"].decode() == "last"
    for k in got[1]:
        assert np.array_equal(got[1][k], got[2][k]), k
    np.testing.assert_allclose(got[1]["ffn/mean"], reference(model, tok, rows, "mlp_act", "mean"), rtol=1e-4, atol=1e-4)
    order = sorted(int(c[1:]) for c in chosen)  # prompt rows in file order
    per = reference(model, tok, [rows[i] for i in order], "mlp_act", "mean", tokens=True)
    want = np.concatenate(per, axis=1)  # [points, tokens, I]
    np.testing.assert_allclose(got[1]["ffn/tokens/values"], want, rtol=1e-4, atol=1e-4)
    lengths = [p.shape[1] for p in per]
    assert list(got[1]["ffn/tokens/prompt"]) == sum(([i] * n for i, n in zip(order, lengths)), [])
    assert list(got[1]["ffn/tokens/position"]) == sum((list(range(n)) for n in lengths), [])
    ids = sum((tok.encode(rows[i]["text"], add_special_tokens=False).ids for i in order), [])
    assert list(got[1]["ffn/tokens/token_id"]) == ids
    proc = subprocess.run([LMTOPO, "extract", "--model", str(path), "--prompts", str(prompts), "--ffn-tokens", "nope",
                           "-o", str(tmp_path / "x.h5")], capture_output=True, text=True)
    assert proc.returncode == 2 and "no prompt with id 'nope'" in proc.stderr


def test_special_tokens_follow_the_post_processor_by_default(tmp_path):
    """Design contract 6: by default exactly what the tokenizer's post-processor adds (transformers'
    add_special_tokens=True; here a Llama-style BOS template with an EOS after), --special-tokens none
    adds nothing; the choice is the hook datasets' attribute special_tokens and n_tokens counts them."""
    model, tok, path = make_checkpoint("llama_gqa", tmp_path)
    eot = tok.token_to_id("<|endoftext|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|endoftext|> $A <|endoftext|>", special_tokens=[("<|endoftext|>", eot)])])
    tok.save(str(path / "tokenizer.json"))
    prompts, rows = prompts_file(tmp_path, n=9)
    for mode, special in (("post_processor", True), ("none", False)):
        out = tmp_path / f"{mode}.h5"
        extra = [] if mode == "post_processor" else ["--special-tokens", "none"]
        extract(path, prompts, out, "mean", 1, extra=extra)
        with h5py.File(out, "r") as f:
            want_n = [len(tok.encode(r["text"], add_special_tokens=special).ids) for r in rows]
            assert list(f["prompts/n_tokens"][:]) == want_n
            assert all(n == len(tok.encode(r["text"], add_special_tokens=False).ids) + 2 * special for n, r in zip(want_n, rows))
            for h in HOOKS:
                assert f[f"activations/{h}"].attrs["special_tokens"].decode() == mode
                np.testing.assert_allclose(f[f"activations/{h}"][:], reference(model, tok, rows, h, "mean", special=special),
                                           rtol=1e-4, atol=1e-4, err_msg=f"{mode} {h}")
    proc = subprocess.run([LMTOPO, "extract", "--model", str(path), "--prompts", str(prompts), "--special-tokens", "some",
                           "-o", str(tmp_path / "x.h5")], capture_output=True, text=True)
    assert proc.returncode == 2 and "--special-tokens: expected post_processor, none or bos" in proc.stderr
