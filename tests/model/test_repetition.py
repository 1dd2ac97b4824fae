"""`lmtopo neurons --study repetition` against independent implementations: greedy continuations
from a plain transformers loop (full forward each step, argmax), the repetition found by a brute-force
Python scan, every FFN unit's activation rise from transformers' forward hooks in numpy, and the
continuations under each condition's interventions (units set to 0 or raised, by hooks); random-init
llama (GQA, SwiGLU) and GPT-2 (untied output embedding) models, at 1 and 2 ranks. A planted unit that grows with the position
is the top repetition neuron. Bad input exits 2 naming the field."""
import csv
import subprocess

import h5py
import numpy as np
import pytest
import torch

from test_extract import LMTOPO, MPIRUN, make_checkpoint, run_mpi
from test_neurons import prompts

# Small texts so that random-init models loop: 3-grams, 3 occurrences within 30 tokens.
SMALL = {"--texts": "10", "--prefix-tokens": "4", "--new-tokens": "40", "--ngram": "3", "--min-occurrences": "3",
         "--window": "30", "--min-second": "8", "--span": "4"}


def repetition(path, prompt_file, out, *extra, ranks=1, check=True, cwd=None):
    given = dict(zip(extra[::2], extra[1::2]))  # options as pairs; these override SMALL's
    options = [x for k, v in {**SMALL, **given}.items() for x in (k, v)]
    cmd = [LMTOPO, "neurons", "--study", "repetition", "--model", str(path), "--prompts", str(prompt_file),
           "--threads", "1", "--batch", "4", "-o", str(out), *options]
    if ranks > 1:
        cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(ranks)] + cmd
    proc = run_mpi(cmd, cwd=cwd) if check else subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def looping_checkpoint(arch, tmp_path):
    """A random-init model that falls into cycles under greedy decoding (random-init llama does by itself;
    GPT-2 with its output embedding untied, or it repeats the current token from the first step)."""
    if arch == "gpt2":
        return make_checkpoint("gpt2", tmp_path, n_positions=64, tie_word_embeddings=False)
    return make_checkpoint(arch, tmp_path)


def ffn_modules(model):
    """Per block: (module, 'output' | 'input') where mlp_act is that module's output or first input."""
    if model.config.model_type == "gpt2":
        return [(b.mlp.act, "output") for b in model.transformer.h]
    return [(b.mlp.down_proj, "input") for b in model.model.layers]


def with_units(model, edits):
    """Context: hooks applying edits = {block: [(unit, value, 'set' | 'add')]} at every position; records
    mlp_act per block in the returned list."""
    captured, handles = [], []
    for i, (module, where) in enumerate(ffn_modules(model)):
        def edit(t, i=i):
            t = t.clone()
            for u, v, how in edits.get(i, []):
                if how == "set":
                    t[..., u] = v
                else:
                    t[..., u] += v
            captured.append((i, t.detach()))
            return t
        if where == "output":
            handles.append(module.register_forward_hook(lambda m, a, o, edit=edit: edit(o)))
        else:
            handles.append(module.register_forward_pre_hook(lambda m, a, edit=edit: (edit(a[0]),)))
    return captured, handles


def greedy(model, prefix, new_tokens, edits):
    _, handles = with_units(model, edits)
    ids = list(prefix)
    with torch.no_grad():
        for _ in range(new_tokens):
            ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    for h in handles:
        h.remove()
    return ids


def find_repetition(ids, n=3, k=3, window=30):
    """Brute force: the earliest start p (then smallest spacing d) of an n-gram found at p, p+d, ...,
    p+(k-1)d, all inside `window` tokens; -> (p, p+d, d) or None."""
    grams = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    for p in range(len(grams)):
        for d in range(1, window):
            starts = [p + j * d for j in range(k)]
            if starts[-1] + n - p > window or starts[-1] >= len(grams):
                break
            if all(grams[s] == grams[p] for s in starts):
                return p, p + d, d
    return None


def mlp_acts(model, ids):
    captured, handles = with_units(model, {})
    with torch.no_grad():
        model(input_ids=torch.tensor([ids]))
    for h in handles:
        h.remove()
    return np.stack([t[0].numpy() for _, t in sorted(captured, key=lambda x: x[0])])  # [layers, T, units]


@pytest.mark.parametrize("arch,ranks", [("llama_gqa", 2), ("gpt2", 1)])
def test_repetition_neurons_match_transformers_and_numpy(tmp_path, arch, ranks):
    model, tok, path = looping_checkpoint(arch, tmp_path)
    prompt_file, rows = prompts(tmp_path)
    out = tmp_path / "r.h5"
    repetition(path, prompt_file, out, "--top-k", "6", "--control-draws", "1", "--activate-value", "2.5", ranks=ranks)
    with h5py.File(out, "r") as f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        texts, length = f["repetition/texts/ids"][:], f["repetition/texts/length"][:]
        source, offset = f["repetition/texts/source"][:], f["repetition/texts/offset"][:]
        second, kept = f["repetition/texts/second"][:], f["repetition/texts/kept"][:].astype(bool)
        delta = f["repetition/delta"][:]
        top = list(zip(f["repetition/units/layer"][:], f["repetition/units/unit"][:]))
        top_delta = f["repetition/units/delta"][:]
        names = [x.decode() for x in f["repetition/conditions/name"][:]]
        cond_units, cond_second = f["repetition/conditions/units"][:], f["repetition/conditions/second"][:]
        rate = f["repetition/conditions/rate"][:]
    assert attrs["lmtopo_schema"] == "neurons/1" and attrs["study"] == "repetition" and attrs["top_k"] == 6
    assert names == ["none", "deactivate", "activate", "random_deactivate", "random_activate"]
    units = delta.shape[1]
    # Prefixes are 4-token windows of the tokenized prompts; the texts are transformers' greedy ones.
    for i in range(len(texts)):
        ids = texts[i][:length[i]].tolist()
        assert ids[:4] == tok.encode(rows[source[i]]["text"]).ids[offset[i]:offset[i] + 4]
        assert ids == greedy(model, ids[:4], 40, {}), f"text {i}"
        found = find_repetition(ids)
        assert (second[i] == -1) if found is None else (second[i] == found[1])
        assert kept[i] == (found is not None and found[1] >= 8 and found[1] + 4 <= len(ids))
    assert kept.sum() >= 2, "the study needs kept texts to mean anything"
    # Delta: mean over kept texts of (mean of 4 tokens from the second occurrence - mean of 4 before).
    rise = []
    for i in np.nonzero(kept)[0]:
        acts = mlp_acts(model, texts[i][:length[i]].tolist())
        s = second[i]
        rise.append(acts[:, s:s + 4].mean(axis=1) - acts[:, s - 4:s].mean(axis=1))
    ref = np.mean(rise, axis=0)
    np.testing.assert_allclose(delta, ref, rtol=1e-4, atol=2e-5)
    order = np.argsort(-ref, axis=None, kind="stable")
    assert sorted(top_delta, reverse=True) == list(top_delta)
    sixth = ref.flat[order[5]]
    clear = [tuple(divmod(int(j), units)) for j in order[:6] if ref.flat[j] - ref.flat[order[6]] > 1e-4]
    assert set(clear) <= set(top) and all(abs(d - sixth) < 1e-4 or d > sixth for d in top_delta)
    # Every condition: the prefixes continued again under hooks give the same repetitions.
    for c, name in enumerate(names):
        if name == "none":
            assert (cond_second[c] == second).all() and rate[c] == pytest.approx(np.mean(second >= 0))
            continue
        how, value = ("add", 2.5) if name.endswith("activate") and "deactivate" not in name else ("set", 0.0)
        edits = {}
        for flat in cond_units[c]:
            edits.setdefault(int(flat) // units, []).append((int(flat) % units, value, how))
        assert sum(len(v) for v in edits.values()) == 6
        if name in ("deactivate", "activate"):
            assert {(layer, u) for layer, us in edits.items() for u, _, _ in us} == set(top)
        for i in range(len(texts)):
            ids = greedy(model, texts[i][:4].tolist(), 40, edits)
            found = find_repetition(ids)
            assert cond_second[c][i] == (-1 if found is None else found[1]), (name, i)
        assert rate[c] == pytest.approx(np.mean(cond_second[c] >= 0))
    with open(str(out)[:-3] + ".repetition_rate.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [r["condition"] for r in table] == names and float(table[1]["rate"]) == pytest.approx(rate[1])
    proc = subprocess.run([LMTOPO, "validate", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_unit_that_grows_with_the_position_is_the_top_repetition_neuron(tmp_path):
    """GPT-2 with dimension 0 of the learned positions a ramp (0.0005 per position, small next to the token embeddings) that no token
    embedding or attention output writes to (nor the output embedding reads), and unit 7 of block 0
    reading only it (weight 200, bias 60) and writing nothing: its
    activation rises along every text, so over any repetition its rise is 4 positions x the ramp's
    effect, larger than any other unit's, and it is the top repetition neuron."""
    model, tok, path = looping_checkpoint("gpt2", tmp_path)
    with torch.no_grad():
        t = model.transformer
        t.wpe.weight[:, 0] = 0.0005 * torch.arange(t.wpe.weight.shape[0], dtype=torch.float32)
        t.wte.weight[:, 0] = 0.0
        block = t.h[0]
        block.attn.c_proj.weight[:, 0] = 0.0
        block.attn.c_proj.bias[0] = 0.0
        block.ln_2.weight[0], block.ln_2.bias[0] = 1.0, 0.0
        block.mlp.c_fc.weight[:, 7] = 0.0
        block.mlp.c_fc.weight[0, 7] = 200.0
        block.mlp.c_fc.bias[7] = 60.0  # GELU near linear over the ramp
        block.mlp.c_proj.weight[7, :] = 0.0  # the unit is observed only: the continuations stay as they were
        model.lm_head.weight[:, 0] = 0.0
    model.save_pretrained(path, safe_serialization=True)
    prompt_file, _ = prompts(tmp_path)
    out = tmp_path / "p.h5"
    # The edits make this model loop from about its fifth token: repetitions kept from position 4 on.
    # A bare output name (no folder) in the working directory: the CSVs beside it are written too.
    repetition(path, prompt_file, "p.h5", "--top-k", "3", "--control-draws", "1", "--min-second", "4", cwd=tmp_path)
    assert (tmp_path / "p.repetition_rate.csv").exists() and (tmp_path / "p.repetition_neurons.csv").exists()
    with h5py.File(out, "r") as f:
        top = list(zip(f["repetition/units/layer"][:], f["repetition/units/unit"][:]))
        delta = f["repetition/delta"][:]
        assert f["repetition/texts/kept"][:].sum() >= 2
    assert top[0] == (0, 7), top
    assert delta[0, 7] > 0 and delta[0, 7] > 2 * np.sort(delta, axis=None)[-2]


@pytest.mark.parametrize("args,message", [
    (["--top-k", "100000"], "--top-k: 100000 exceeds the model's 384 FFN units"),
    (["--new-tokens", "0"], "--new-tokens: expected at least 1, got 0"),
    (["--prefix-tokens", "500"], "no prompt has 500 tokens to sample a prefix from (--prefix-tokens)"),
    (["--min-second", "60"], "none of the 10 continuations repeats a 3-gram 3 times within 30 tokens with its second occurrence at 60"),
    (["--window", "2"], "--window (at least --ngram): expected at least 3, got 2"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, message):
    _, _, path = make_checkpoint("llama_gqa", tmp_path)
    prompt_file, _ = prompts(tmp_path)
    proc = repetition(path, prompt_file, tmp_path / "bad.h5", *args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "bad.h5").exists()
