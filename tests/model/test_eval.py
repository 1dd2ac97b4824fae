"""`lmtopo eval` against transformers: per-token negative log-likelihood of every prompt (each prompt
alone in transformers; padded batches on 2 ranks in lmtopo), per-prompt and per-language perplexity
from those values in numpy, and the same with interventions (an FFN unit set and one shifted, a residual
vector added before a block, a block skipped) done in transformers by forward hooks and a shortened
layer list. Bad intervention arguments are one-line input errors."""
import copy
import json
import os
import subprocess

import h5py
import numpy as np
import pytest
import torch

from test_extract import LMTOPO, MPIRUN, make_checkpoint, prompts_file


def with_interventions(model, iv):
    """A copy of `model` with the edits of an interventions JSON made by hooks (llama and neox layouts)."""
    ref = copy.deepcopy(model)
    neox = ref.config.model_type == "gpt_neox"
    base = ref.gpt_neox if neox else ref.model
    layers = base.layers

    def ffn_edit(block):
        def edit(t):
            t = t.clone()
            for u, v in iv.get("ffn_set", {}).get(str(block), []):
                t[..., u] = v
            for u, v in iv.get("ffn_add", {}).get(str(block), []):
                t[..., u] += v
            return t
        return edit

    for i, layer in enumerate(layers):
        e = ffn_edit(i)
        if neox:
            layer.mlp.act.register_forward_hook(lambda m, a, o, e=e: e(o))
        else:
            layer.mlp.down_proj.register_forward_pre_hook(lambda m, a, e=e: (e(a[0]),))
    for block, vec in iv.get("residual_add", {}).items():
        v = torch.tensor(vec)
        layers[int(block)].register_forward_pre_hook(lambda m, a, v=v: (a[0] + v,) + tuple(a[1:]))
    base.layers = torch.nn.ModuleList([l for j, l in enumerate(layers) if j not in iv.get("skip_blocks", [])])
    return ref


def reference_nll(model, tok, rows):
    """Per prompt: the NLL of tokens 1.. given the ones before (float64 log-softmax of float32 logits)."""
    out = []
    for r in rows:
        ids = tok.encode(r["text"]).ids
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].double()
        logp = torch.log_softmax(logits[:-1], -1)
        out.append(-logp.gather(1, torch.tensor(ids[1:]).unsqueeze(1)).squeeze(1).numpy())
    return out


def run_eval(path, prompts, out, *extra, ranks=2):
    cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(ranks), LMTOPO, "eval", "--model", str(path),
           "--prompts", str(prompts), "--batch", "4", "--threads", "1", "-o", str(out), *extra]
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.mark.parametrize("arch", ["llama_gqa", "neox_parallel"])
@pytest.mark.parametrize("edited", [False, True], ids=["plain", "interventions"])
def test_eval_matches_transformers(tmp_path, arch, edited):
    model, tok, path = make_checkpoint(arch, tmp_path)
    prompts, rows = prompts_file(tmp_path, n=13)
    hidden = model.config.hidden_size
    iv = {"ffn_set": {"0": [[3, 0.0]]}, "ffn_add": {"1": [[7, 1.5]]},
          "residual_add": {"1": np.linspace(-1, 1, hidden).astype(np.float32).tolist()}, "skip_blocks": [2]} if edited else {}
    extra = []
    if edited:  # part on the command line, the rest from a file
        (tmp_path / "iv.json").write_text(json.dumps({"residual_add": iv["residual_add"], "ffn_add": iv["ffn_add"]}))
        extra = ["--interventions", str(tmp_path / "iv.json"), "--skip-blocks", "2", "--ffn-set", "0:3=0"]
    proc = run_eval(path, prompts, tmp_path / "e.h5", *extra)
    assert proc.returncode == 0, proc.stderr
    ref_model = with_interventions(model, iv) if edited else model
    want = reference_nll(ref_model, tok, rows)
    subprocess.run([LMTOPO, "validate", str(tmp_path / "e.h5")], check=True, capture_output=True)
    with h5py.File(tmp_path / "e.h5", "r") as f:
        assert json.loads(f.attrs["interventions"]) == (iv if edited else {})
        nll, prompt = f["tokens/nll"][:], f["tokens/prompt"][:]
        for i, w in enumerate(want):
            np.testing.assert_allclose(nll[prompt == i], w, rtol=1e-5, atol=1e-5, err_msg=f"prompt {i}")
            assert f["nll/scored"][i] == len(w)
        np.testing.assert_allclose(f["nll/sum"][:], [w.sum() for w in want], rtol=1e-5)
        np.testing.assert_allclose(f["nll/perplexity"][:], [np.exp(w.mean()) for w in want], rtol=1e-5)
        langs = [x.decode() for x in f["languages/name"][:]]
        for j, lang in enumerate(langs):
            pooled = np.concatenate([w for w, r in zip(want, rows) if r["lang"] == lang])
            np.testing.assert_allclose(f["languages/perplexity"][j], np.exp(pooled.mean()), rtol=1e-5)
        np.testing.assert_allclose(f["overall/mean_nll"][0], np.concatenate(want).mean(), rtol=1e-5)
    if edited:  # the interventions change the result
        plain = reference_nll(model, tok, rows)
        assert abs(np.concatenate(plain).mean() - np.concatenate(want).mean()) > 1e-3


@pytest.mark.parametrize("args,needle", [
    (["--skip-blocks", "2-x"], "--skip-blocks: expected blocks like 20-27,29"),
    (["--skip-blocks", "9"], "skip_blocks: block 9 outside"),
    (["--ffn-set", "0:3"], "--ffn-set: expected LAYER:UNIT=VALUE"),
    (["--ffn-add", "0:3=nan"], "is not a finite number"),
])
def test_bad_interventions_are_input_errors(tmp_path, args, needle):
    _, _, path = make_checkpoint("llama_gqa", tmp_path)
    prompts, _ = prompts_file(tmp_path, n=3)
    proc = run_eval(path, prompts, tmp_path / "e.h5", *args)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
    assert not (tmp_path / "e.h5").exists()


def test_bad_interventions_file(tmp_path):
    _, _, path = make_checkpoint("llama_gqa", tmp_path)
    prompts, _ = prompts_file(tmp_path, n=3)
    (tmp_path / "iv.json").write_text(json.dumps({"ffn_zero": {"0": [[1, 0]]}}))
    proc = run_eval(path, prompts, tmp_path / "e.h5", "--interventions", str(tmp_path / "iv.json"), ranks=1)
    assert proc.returncode == 2 and "iv.json: ffn_zero: unknown field" in proc.stderr, proc.stderr
