"""`lmtopo generate` against transformers' generate(do_sample=False) for every architecture the
parity tests cover (random-init models with a tokenizer trained here): identical token ids, prompt by
prompt, on 2 ranks; with an intervention too (a block skipped, done in transformers on a shortened
layer list). Seeded sampling: the same seed gives the same continuations at 1 and 2 ranks, another seed
others."""
import copy
import json
import subprocess

import h5py
import numpy as np

import pytest
import torch

from test_extract import LMTOPO, MPIRUN, make_checkpoint, run_mpi
from test_parity import ARCHS
from test_parity import reference as hooks_reference

PROMPTS = ["Guten Morgen", "Le fichier n'existe pas", "Файл не найден"]


def generate(path, tmp_path, *extra, ranks=2, name="g.jsonl", new_tokens=8):
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"id": f"p{i}", "text": t}, ensure_ascii=False) + "\n"
                                              for i, t in enumerate(PROMPTS)))
    cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(ranks), LMTOPO, "generate", "--model", str(path),
           "--prompts", str(tmp_path / "p.jsonl"), "--max-new-tokens", str(new_tokens), "--threads", "1", "-o", str(tmp_path / name), *extra]
    proc = run_mpi(cmd)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(l) for l in (tmp_path / name).read_text().splitlines()]


def reference(model, tok, skip=()):
    if skip:
        model = copy.deepcopy(model)
        base = model.transformer if hasattr(model, "transformer") else (model.gpt_neox if hasattr(model, "gpt_neox") else model.model)
        name = "h" if hasattr(base, "h") else "layers"
        setattr(base, name, torch.nn.ModuleList([l for i, l in enumerate(getattr(base, name)) if i not in skip]))
    out = []
    for text in PROMPTS:
        ids = torch.tensor([tok.encode(text).ids])
        with torch.no_grad():
            # synced_gpus=False: left to None, generate() imports torch.distributed.fsdp, which Debian's torch
            # 1.13 cannot import under Python 3.11.
            seq = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=8,
                                 pad_token_id=model.config.eos_token_id or 0, synced_gpus=False)
        out.append(seq[0, ids.shape[1]:].tolist())
    return out


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_greedy_ids_match_transformers(tmp_path, arch):
    model, tok, path = make_checkpoint(arch, tmp_path)
    got = generate(path, tmp_path)
    assert [g["generated_ids"] for g in got] == reference(model, tok)
    assert [g["prompt_ids"] for g in got] == [tok.encode(t).ids for t in PROMPTS]
    prov = json.loads((tmp_path / "g.jsonl.provenance.json").read_text())
    assert prov["lmtopo_schema"] == "generation/1" and prov["created_by"]["threads_per_rank"] == [1, 1]
    assert prov["config"]["max_new_tokens"] == 8 and "git_sha" in prov


@pytest.mark.parametrize("arch", ["llama_gqa", "gpt2"])
def test_greedy_with_a_skipped_block_matches_transformers(tmp_path, arch):
    model, tok, path = make_checkpoint(arch, tmp_path)
    got = generate(path, tmp_path, "--skip-blocks", "1")
    assert [g["generated_ids"] for g in got] == reference(model, tok, skip={1})


def test_seeded_sampling_is_reproducible_across_ranks(tmp_path):
    _, _, path = make_checkpoint("llama_gqa", tmp_path)
    one = generate(path, tmp_path, "--temperature", "1.0", "--seed", "7", "--no-eos-stop", ranks=1, name="a.jsonl")
    two = generate(path, tmp_path, "--temperature", "1.0", "--seed", "7", "--no-eos-stop", ranks=2, name="b.jsonl")
    other = generate(path, tmp_path, "--temperature", "1.0", "--seed", "8", "--no-eos-stop", ranks=2, name="c.jsonl")
    assert one == two and all(len(g["generated_ids"]) == 8 for g in one)
    assert [g["generated_ids"] for g in other] != [g["generated_ids"] for g in one]


@pytest.mark.parametrize("how", [("--batch", "1"), ("--batch", "2", "--no-kv-cache")])
@pytest.mark.parametrize("arch", ["llama_gqa", "gpt2", "bloom"])
def test_greedy_ids_at_other_batchings_match_transformers(tmp_path, arch, how):
    """One prompt at a time, and 2 at a time recomputing every step (no cache): the same ids as
    transformers on each prompt alone (the default, batch 8 with the cache, is tested above)."""
    model, tok, path = make_checkpoint(arch, tmp_path)
    got = generate(path, tmp_path, *how, ranks=1)
    assert [g["generated_ids"] for g in got] == reference(model, tok)


def test_rows_stop_at_the_learned_positions(tmp_path):
    """gpt2's 32 learned positions: each row of a batch stops where its own sequence fills them."""
    _, tok, path = make_checkpoint("gpt2", tmp_path)
    got = generate(path, tmp_path, "--no-eos-stop", ranks=1, new_tokens=40)
    assert [len(g["prompt_ids"]) + len(g["generated_ids"]) for g in got] == [32] * len(PROMPTS)
    assert len({len(g["prompt_ids"]) for g in got}) > 1  # rows of different lengths in one batch


@pytest.mark.parametrize("how", [(), ("--batch", "2", "--no-kv-cache")], ids=["cache", "no-cache"])
@pytest.mark.parametrize("arch", ["llama_gqa", "neox_parallel"])
def test_per_token_states_match_transformers(tmp_path, arch, how):
    """--hook captures, for every generated token, the states it was generated from: transformers'
    forward over the prompt and the generated tokens (no cache, forward hooks) at the prompt's last
    position for the first token and at each generated token for the next, to 1e-5 of the hook's
    largest magnitude; on 2 ranks (one of them without prompts), with the cache and without."""
    model, tok, path = make_checkpoint(arch, tmp_path)
    hooks = ["post_attention_layernorm", "mlp_act"]
    states = tmp_path / "s.h5"
    got = generate(path, tmp_path, "--no-eos-stop", *how, *sum((["--hook", h] for h in hooks), []), "--states-output", str(states))
    subprocess.run([LMTOPO, "validate", str(states)], check=True, capture_output=True)
    with h5py.File(states, "r") as f:
        prompt, step, position, token_id = (f["tokens"][k][:] for k in ("prompt", "step", "position", "token_id"))
        assert len(prompt) == sum(len(g["generated_ids"]) for g in got) == 3 * 8
        for i, g in enumerate(got):
            rows = np.flatnonzero(prompt == i)
            generated = g["generated_ids"]
            assert step[rows].tolist() == list(range(len(generated))) and token_id[rows].tolist() == generated
            assert position[rows].tolist() == [len(g["prompt_ids"]) - 1 + k for k in range(len(generated))]
            sequence = g["prompt_ids"] + generated
            ref = hooks_reference(model, [sequence], [[1] * len(sequence)])
            for h in hooks:
                want = ref[h][:, 0, position[rows], :]  # [points, tokens, width]
                np.testing.assert_allclose(f["states"][h][:, rows, :], want, rtol=1e-5, atol=1e-5 * np.abs(want).max(),
                                           err_msg=f"{h} prompt {i}")
        assert f["states/mlp_act"].attrs["hook"].decode() == "mlp_act"


def test_states_options_need_each_other(tmp_path):
    _, _, path = make_checkpoint("llama_gqa", tmp_path)
    (tmp_path / "p.jsonl").write_text(json.dumps({"text": "Guten Morgen"}) + "\n")
    base = [LMTOPO, "generate", "--model", str(path), "--prompts", str(tmp_path / "p.jsonl"), "-o", str(tmp_path / "g.jsonl")]
    for extra, needle in [(["--hook", "mlp_act"], "--hook: needs --states-output"),
                          (["--states-output", str(tmp_path / "s.h5")], "--states-output: needs at least one --hook"),
                          (["--hook", "nonsense", "--states-output", str(tmp_path / "s.h5")], "nonsense")]:
        proc = subprocess.run(base + extra, capture_output=True, text=True)
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
        assert not (tmp_path / "s.h5").exists() and not (tmp_path / "g.jsonl").exists()
