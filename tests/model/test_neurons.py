"""`lmtopo neurons --study key_linguistic` against independent implementations: the FFN units'
mean-pooled activations from transformers' forward hooks, the cosine shares, z-scores and key units
recomputed in numpy, and the ablated per-language perplexity from transformers with the same units set
by hooks; random-init llama (GQA, SwiGLU) and GPT-NeoX models, at 1 and 2 ranks. A planted unit that
fires only for one language's script is that language's key neuron. Bad input exits 2 naming it."""
import csv
import json
import subprocess

import h5py
import numpy as np
import pytest
import torch

from test_extract import LMTOPO, MPIRUN, make_checkpoint, reference, run_mpi
from test_tokenizer import TEXTS

LANGS = ["de", "fr", "ru", "en"]


def prompts(tmp_path, per_language=6, langs=LANGS):
    rows = []
    for i in range(per_language * len(langs)):
        text = TEXTS[(i * 37) % len(TEXTS)][:80] or "empty"
        rows.append({"id": f"p{i}", "lang": langs[i % len(langs)], "group": i // len(langs), "text": text})
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path, rows


def neurons(path, prompt_file, out, *extra, ranks=1, check=True):
    study = [] if "--study" in extra else ["--study", "key_linguistic"]
    cmd = [LMTOPO, "neurons", *study, "--model", str(path), "--prompts", str(prompt_file),
           "--threads", "1", "--batch", "3", "-o", str(out), *extra]
    if ranks > 1:
        cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(ranks)] + cmd
    proc = run_mpi(cmd) if check else subprocess.run(cmd, capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def numpy_shares(vectors, langs):
    """vectors [prompts, units] -> shares [languages, units], mean cosine [languages], z [languages, units]."""
    n = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    shares, means = [], []
    for lang in LANGS:
        x = n[[i for i, l in enumerate(langs) if l == lang]].astype(np.float64)
        gram = x @ x.T
        k = len(x)
        mean_cos = (gram.sum() - np.trace(gram)) / (k * (k - 1))  # mean over pairs s != t
        contrib = np.array([(np.outer(x[:, u], x[:, u]).sum() - (x[:, u] ** 2).sum()) / (k * (k - 1))
                            for u in range(x.shape[1])])
        assert np.isclose(contrib.sum(), mean_cos)
        shares.append(contrib / mean_cos)
        means.append(mean_cos)
    shares = np.array(shares)
    sd = shares.std(axis=0)
    z = np.where(sd > 1e-12, (shares - shares.mean(axis=0)) / np.where(sd > 0, sd, 1), 0.0)
    return shares, np.array(means), z


def ablated_perplexity(model, tok, rows, units, value):
    """Per-language perplexity of `rows` with units[layer] set to value[layer][unit] by hooks."""
    neox = model.config.model_type == "gpt_neox"
    layers = model.gpt_neox.layers if neox else model.model.layers
    hooks = []
    for i, layer in enumerate(layers):
        if not units[i]:
            continue
        idx = torch.tensor(units[i])
        vals = torch.tensor([value[i][u] for u in units[i]], dtype=torch.float32)

        def edit(t, idx=idx, vals=vals):
            t = t.clone()
            t[..., idx] = vals
            return t
        if neox:
            hooks.append(layer.mlp.act.register_forward_hook(lambda m, i, o, edit=edit: edit(o)))
        else:
            hooks.append(layer.mlp.down_proj.register_forward_pre_hook(lambda m, a, edit=edit: (edit(a[0]),)))
    total, count = {}, {}
    with torch.no_grad():
        for r in rows:
            ids = torch.tensor([tok.encode(r["text"]).ids])
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
            nll = -logp.gather(1, ids[0, 1:, None]).sum().item()
            total[r["lang"]] = total.get(r["lang"], 0.0) + nll
            count[r["lang"]] = count.get(r["lang"], 0) + ids.shape[1] - 1
    for h in hooks:
        h.remove()
    return np.array([np.exp(total[l] / count[l]) for l in LANGS])


@pytest.mark.parametrize("arch,ranks", [("llama_gqa", 2), ("neox_parallel", 1)])
def test_key_neurons_and_ablation_match_numpy_and_transformers(tmp_path, arch, ranks):
    model, tok, path = make_checkpoint(arch, tmp_path)
    prompt_file, rows = prompts(tmp_path)
    out = tmp_path / "n.h5"
    neurons(path, prompt_file, out, "--threshold", "1.2", "--held-out", "0.3", "--control-draws", "3", ranks=ranks)
    with h5py.File(out, "r") as f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        assert attrs["lmtopo_schema"] == "neurons/1" and attrs["hook"] == "mlp_act" and attrs["pooling"] == "mean"
        assert [x.decode() for x in f["languages/name"][:]] == LANGS
        held = f["prompts/held_out"][:].astype(bool)
        share, z, count = f["key_linguistic/share"][:], f["key_linguistic/z"][:], f["key_linguistic/count"][:]
        mean_cos = f["key_linguistic/mean_cosine"][:]
        table = {(int(l), int(g), int(u)) for l, g, u in zip(f["key_linguistic/units/layer"][:],
                                                             f["key_linguistic/units/language"][:], f["key_linguistic/units/unit"][:])}
        base, ablated = f["ablation/perplexity_base"][:], f["ablation/perplexity"][:]
        delta, control = f["ablation/delta"][:], f["ablation/control_perplexity"][:]
        cmean, csd = f["ablation/control_delta_mean"][:], f["ablation/control_delta_sd"][:]
    # Each language's last third (2 of 6, file order) is held out.
    assert held.tolist() == [i // len(LANGS) >= 4 for i in range(len(rows))]
    analysed = [r for r, h in zip(rows, held) if not h]
    pooled = reference(model, tok, analysed, "mlp_act", "mean")  # [layers, prompts, units]
    keys_ref = set()
    for layer in range(pooled.shape[0]):
        s_ref, m_ref, z_ref = numpy_shares(pooled[layer], [r["lang"] for r in analysed])
        np.testing.assert_allclose(mean_cos[layer], m_ref, rtol=1e-4)
        np.testing.assert_allclose(share[layer], s_ref, rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(z[layer], z_ref, atol=2e-3)
        clear = np.abs(z_ref - 1.2) > 1e-2  # membership compared where rounding cannot decide it
        assert ((z[layer] > 1.2) == (z_ref > 1.2))[clear].all()
        keys_ref |= {(layer, g, u) for g, u in zip(*np.nonzero(z_ref > 1.2))}
        assert count[layer].tolist() == [int((z[layer][g] > 1.2).sum()) for g in range(len(LANGS))]
    assert table == {(l, g, u) for l, g, u in keys_ref if abs(z[l][g][u] - 1.2) > 1e-2} | \
        {k for k in table if abs(z[k[0]][k[1]][k[2]] - 1.2) <= 1e-2}
    assert len(table) > 0
    # Ablation: each language's key units set to 0 at every block, perplexity on the held-out prompts.
    held_rows = [r for r, h in zip(rows, held) if h]
    zero = [[0.0] * pooled.shape[2] for _ in range(pooled.shape[0])]
    np.testing.assert_allclose(base, ablated_perplexity(model, tok, held_rows, [[]] * pooled.shape[0], zero), rtol=1e-5)
    for g in range(len(LANGS)):
        units = [sorted(u for (l, gg, u) in table if l == layer and gg == g) for layer in range(pooled.shape[0])]
        np.testing.assert_allclose(ablated[g], ablated_perplexity(model, tok, held_rows, units, zero), rtol=1e-5)
    np.testing.assert_allclose(delta, ablated - base[None, :], rtol=1e-12)
    np.testing.assert_allclose(cmean, (control - base).mean(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(csd, (control - base).std(axis=0, ddof=1), rtol=1e-9, atol=1e-12)
    with open(str(out)[:-3] + ".ablation.csv") as fh:
        table_rows = list(csv.DictReader(fh))
    assert len(table_rows) == len(LANGS) ** 2 and float(table_rows[1]["delta"]) == pytest.approx(delta[0, 1])
    proc = subprocess.run([LMTOPO, "validate", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_planted_unit_is_the_key_neuron_of_its_language_only(tmp_path):
    """Unit 5 of block 0 made to fire on tokens that only Russian prompts contain (embedding dimension
    0 set there and nowhere else, attention kept out of it, the unit's gate and up rows reading it): its
    z-score is the largest possible for ru, sqrt(languages - 1), and it is no other language's key."""
    import re
    model, tok, path = make_checkpoint("llama_gqa", tmp_path)
    cyrillic = [t[:80] for t in TEXTS if re.search("[А-Яа-я]{4}", t) and t.isprintable()][:6]
    latin = [t[:80] for t in TEXTS if t.isascii() and t.isprintable() and " " in t][:18]
    rows = [{"id": f"r{i}", "lang": "ru", "text": t} for i, t in enumerate(cyrillic)]
    rows += [{"id": f"l{i}", "lang": ["de", "fr", "en"][i % 3], "text": t} for i, t in enumerate(latin)]
    ru_tokens = set(i for r in rows if r["lang"] == "ru" for i in tok.encode(r["text"]).ids)
    other_tokens = set(i for r in rows if r["lang"] != "ru" for i in tok.encode(r["text"]).ids)
    planted = sorted(ru_tokens - other_tokens)
    assert len(cyrillic) == 6 and len(latin) == 18 and planted
    with torch.no_grad():
        emb, block = model.model.embed_tokens.weight, model.model.layers[0]
        emb[:, 0] = 0.0
        emb[planted, 0] = 3.0
        block.self_attn.o_proj.weight[0, :] = 0.0
        for proj in (block.mlp.gate_proj, block.mlp.up_proj):
            proj.weight[5, :] = 0.0
            proj.weight[5, 0] = 4.0
    model.save_pretrained(path, safe_serialization=True)
    prompt_file = tmp_path / "planted.jsonl"
    prompt_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    out = tmp_path / "p.h5"
    neurons(path, prompt_file, out, "--threshold", "1.5", "--held-out", "0")
    with h5py.File(out, "r") as f:
        names = [x.decode() for x in f["languages/name"][:]]
        z = f["key_linguistic/z"][0]  # block 0: [languages, units]
        keys = set(zip(f["key_linguistic/units/layer"][:], f["key_linguistic/units/language"][:], f["key_linguistic/units/unit"][:]))
        assert "ablation" not in f
    ru = names.index("ru")
    assert z[ru, 5] == pytest.approx(np.sqrt(3), abs=1e-4)
    assert (0, ru, 5) in keys and not any(u == 5 and layer == 0 and g != ru for layer, g, u in keys)
    assert not (tmp_path / "p.ablation.csv").exists()


@pytest.mark.parametrize("case,args,message", [
    ("too_few", ["--held-out", "0.5"], "language 'en': 3 prompt(s); the study needs at least 2 to analyse and 1 held out"),
    ("one_language", [], "compares languages; found only 'de'"),
    ("study", ["--study", "telepathy"], "--study: expected key_linguistic, repetition, sensitive_directions or spatial"),
    ("contrast", ["--study", "spatial"], "--contrast: expected two different groups"),
    ("contrast_suffix", ["--study", "spatial", "--contrast", "de,de:shuffled"], "--contrast: 'de:shuffled': expected a language or LANGUAGE:scrambled"),
    ("contrast_language", ["--study", "spatial", "--contrast", "de,xx"], "--contrast: language 'xx' has 0 prompt(s)"),
    ("sheet", ["--study", "spatial", "--contrast", "de,fr", "--sheets", "lm_head"], "--sheets: 'lm_head' is not a sheet"),
    ("ablation", ["--ablation", "half"], "--ablation: expected zero or mean"),
    ("nan", [], "mlp_act of block 1 is not finite"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, case, args, message):
    model, _, path = make_checkpoint("neox_parallel", tmp_path)
    if case == "nan":  # one NaN weight in block 1's FFN input projection: its units' activations are NaN
        with torch.no_grad():
            model.gpt_neox.layers[1].mlp.dense_h_to_4h.weight[3, 0] = float("nan")
        model.save_pretrained(path, safe_serialization=True)
    if case == "one_language":
        prompt_file, _ = prompts(tmp_path, langs=["de"])
    else:
        prompt_file, rows = prompts(tmp_path)
        if case == "too_few":  # en keeps 3 prompts: half held out leaves 1 to analyse
            rows = [r for r in rows if r["lang"] != "en" or int(r["id"][1:]) < 12]
            prompt_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    proc = neurons(path, prompt_file, tmp_path / "bad.h5", *args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "bad.h5").exists()


def numpy_welch(a, b):
    """Welch's t per column of a [na, U] and b [nb, U] (the float64 formula, no library)."""
    va, vb = a.var(axis=0, ddof=1) / len(a), b.var(axis=0, ddof=1) / len(b)
    return (a.mean(axis=0) - b.mean(axis=0)) / np.sqrt(va + vb)


def numpy_moran(values, cells, side):
    """Moran's I with row-standardised queen weights among occupied cells (plain numpy)."""
    rows, cols = np.divmod(np.asarray(cells), side)
    adjacent = (np.abs(rows[:, None] - rows[None, :]) <= 1) & (np.abs(cols[:, None] - cols[None, :]) <= 1)
    np.fill_diagonal(adjacent, False)
    w = adjacent / np.maximum(adjacent.sum(axis=1, keepdims=True), 1)
    z = values - values.mean()
    return len(z) / w.sum() * (z @ w @ z) / (z @ z)


@pytest.mark.parametrize("ranks", [1, 2])
def test_spatial_t_maps_and_morans_i_match_numpy_on_transformers_activations(tmp_path, ranks):
    """--study spatial: each sheet's t-map is Welch's t (numpy) of transformers' mean-pooled units of the
    two languages, Moran's I is numpy's on that map with the recorded placement, the placement is a
    permutation of the grid's cells, and the results do not depend on the rank count beyond rounding."""
    model, tok, path = make_checkpoint("llama_gqa", tmp_path)
    prompt_file, rows = prompts(tmp_path, per_language=8)
    out = tmp_path / "s.h5"
    neurons(path, prompt_file, out, "--study", "spatial", "--contrast", "de,fr", "--sheets", "mlp_act,block_output",
            "--permutations", "99", "--max-distance", "3", ranks=ranks)
    subprocess.run([LMTOPO, "validate", str(out)], check=True, capture_output=True)
    de = [r for r in rows if r["lang"] == "de"]
    fr = [r for r in rows if r["lang"] == "fr"]
    with h5py.File(out, "r") as f:
        assert f.attrs["study"].decode() == "spatial" and f["spatial/prompts"][:].tolist() == [8, 8]
        for hook in ("mlp_act", "block_output"):
            a = reference(model, tok, de, hook, "mean").astype(np.float64)  # [points, prompts, units]
            b = reference(model, tok, fr, hook, "mean").astype(np.float64)
            g = f["spatial"][hook]
            side = int(g["cell"].attrs["side"])
            assert side * side >= a.shape[2] > (side - 1) * (side - 1)
            for block in range(a.shape[0]):
                cells = g["cell"][block]
                assert len(set(cells.tolist())) == a.shape[2] and cells.max() < side * side
                t = numpy_welch(a[block], b[block])
                np.testing.assert_allclose(g["t"][block], t, rtol=1e-4, atol=1e-4 * np.abs(t).max(), err_msg=f"{hook} {block}")
                np.testing.assert_allclose(g["moran_i"][block], numpy_moran(g["t"][block], cells, side), rtol=1e-10)
                assert 0 < g["moran_p_sim"][block] <= 1 and g["by_distance"].shape == (a.shape[0], 3)
    table = list(csv.DictReader(open(tmp_path / "s.moran.csv")))
    assert len(table) == 2 * 2 + 3  # mlp_act: 2 blocks; block_output: embeddings + 2 blocks (llama_gqa has 2 layers)


def test_spatial_contrast_with_scrambled_word_lists(tmp_path):
    """--contrast de,de:scrambled (TopoLM's sentences vs. word lists): the second group is the same prompts
    with their words reordered (recorded in /spatial/stimuli), and the t-map is numpy's Welch t of
    transformers' units on exactly those texts."""
    model, tok, path = make_checkpoint("neox_parallel", tmp_path)
    rows = [{"id": f"p{i}", "lang": "de", "text": t} for i, t in enumerate(
        ["der Hund läuft schnell über die Wiese", "eine Datei wurde nicht gefunden", "bitte warten Sie einen Moment",
         "das Programm ist beendet worden", "die Verbindung wurde getrennt", "Einstellungen werden gespeichert"])]
    prompt_file = tmp_path / "de.jsonl"
    prompt_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    out = tmp_path / "s.h5"
    neurons(path, prompt_file, out, "--study", "spatial", "--contrast", "de,de:scrambled", "--sheets", "mlp_act", "--permutations", "9")
    subprocess.run([LMTOPO, "validate", str(out)], check=True, capture_output=True)
    with h5py.File(out, "r") as f:
        texts = [x.decode() for x in f["spatial/stimuli"][:]]
        assert [x.decode() for x in f["spatial/languages"][:]] == ["de", "de:scrambled"]
        t = f["spatial/mlp_act/t"][:]
    assert texts[:6] == [r["text"] for r in rows]
    for original, scrambled in zip(texts[:6], texts[6:]):
        assert sorted(original.split()) == sorted(scrambled.split())
    assert sum(o != s for o, s in zip(texts[:6], texts[6:])) >= 4
    a = reference(model, tok, rows, "mlp_act", "mean").astype(np.float64)
    b = reference(model, tok, [{"text": x} for x in texts[6:]], "mlp_act", "mean").astype(np.float64)
    for block in range(a.shape[0]):
        want = numpy_welch(a[block], b[block])
        np.testing.assert_allclose(t[block], want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
