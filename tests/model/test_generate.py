"""`lmtopo generate` against transformers' generate(do_sample=False) for every architecture the
parity tests cover (random-init models with a tokenizer trained here): identical token ids, prompt by
prompt, on 2 ranks; with an intervention too (a block skipped, done in transformers on a shortened
layer list). Seeded sampling: the same seed gives the same continuations at 1 and 2 ranks, another seed
others."""
import copy
import json
import subprocess

import pytest
import torch

from test_extract import LMTOPO, MPIRUN, make_checkpoint
from test_parity import ARCHS

PROMPTS = ["Guten Morgen", "Le fichier n'existe pas", "Файл не найден"]


def generate(path, tmp_path, *extra, ranks=2, name="g.jsonl", new_tokens=8):
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"id": f"p{i}", "text": t}, ensure_ascii=False) + "\n"
                                              for i, t in enumerate(PROMPTS)))
    cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(ranks), LMTOPO, "generate", "--model", str(path),
           "--prompts", str(tmp_path / "p.jsonl"), "--max-new-tokens", str(new_tokens), "--threads", "1", "-o", str(tmp_path / name), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True)
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
