"""`lmtopo run JOB.yaml` over a small study on 2 ranks: prepare, train, extract and zigzag at every
checkpoint, outputs valid; a second run computes nothing; a single item can be redone by index."""
import csv
import json
import os
import subprocess

import h5py
import numpy as np
from safetensors.numpy import save_file

LMTOPO = os.environ["LMTOPO"]
MPIRUN = os.environ.get("MPIRUN", "mpirun")

SPEC = """study: run-test
output: out
models:
  - name: tiny
    from_train: true
data: {source: gettext, languages: [en, de, fr], prompts: 40, seed: 2}
train: {steps: 4, batch: 4, layers: 2, hidden: 32, heads: 2, intermediate: 64, vocab_size: 300, seq_len: 16}
extract: {hooks: [post_attention_layernorm, block_output], pool: mean, batch: 8}
zigzag: {k: 3, max_dim: 2}
sweep: {metrics: [cka_linear_unbiased, sads, retrieval, angular_distance, block_influence], pairs: [layer_layer, language_language, checkpoint_checkpoint], knn: 3}
neurons: {studies: [key_linguistic, repetition, sensitive_directions, spatial], threshold: 1.0, control_draws: 2, batch: 8,
          spatial: {contrast: [en, de], sheets: [mlp_act], permutations: 99, max_distance: 3},
          repetition: {texts: 6, prefix_tokens: 4, new_tokens: 24, ngram: 2, min_occurrences: 2, window: 24, min_second: 4, span: 2, top_k: 4},
          sensitive_directions: {lengths: [0, 1, 4], families: [random, gaussian, sae], sae_decoders: {tiny: [sae.safetensors]}}}
aggregate: {bootstrap: 50, permutations: 100, barcodes: [{model: imported, path: imported.csv}]}
eval: {batch: 8, conditions: [{name: base}, {name: skip1, skip_blocks: "1"}, {name: edited, ffn_set: ["0:3=0"], interventions: iv.json}]}
prune: {hook: block_output, thresholds: [0.9, 0.5], random_draws: 2}
"""
PRUNE = "prune: {hook: block_output, thresholds: [0.9, 0.5], random_draws: 2}\n"  # needs the layer_layer sweep
assert PRUNE in SPEC


def write_study(folder, text=SPEC, name="study.yaml"):
    """The spec and the files it names beside it: an SAE decoder [10, hidden 32] for the sae family,
    and an imported barcode over 4 layers (the H0 bar dying at 2L = 8 pins L)."""
    save_file({"W_dec": np.random.default_rng(4).standard_normal((10, 32)).astype(np.float32)}, str(folder / "sae.safetensors"))
    (folder / "imported.csv").write_text("dimension,birth,death\n0,1,8\n1,3,6\n1,2,7\n1,5,8\n")
    (folder / "iv.json").write_text(json.dumps({"ffn_add": {"1": [[7, 1.5]]}}))
    (folder / name).write_text(text)
    return folder / name


def lmtopo(*args, ranks=2):
    cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(ranks), LMTOPO, *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def check_eval_conditions(root, step):
    """The eval stage's three conditions at one checkpoint against transformers (the trained model, a
    block dropped, an FFN unit set and one shifted by hooks), and its perplexity table against the files."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM
    from test_eval import reference_nll, with_interventions

    ckpt = root / "checkpoints" / "tiny" / f"step{step}"
    model = AutoModelForCausalLM.from_pretrained(ckpt, torch_dtype=torch.float32).eval()
    tok = Tokenizer.from_file(str(ckpt / "tokenizer.json"))
    with h5py.File(root / "corpus.h5", "r") as f:
        rows = [{"text": t.decode(), "lang": l.decode()} for t, l in zip(f["corpus/text"][:], f["corpus/lang"][:])]
    table = {}
    for line in (root / "eval" / "tiny" / f"step{step}.perplexity.csv").read_text().splitlines()[1:]:
        cond, lang, scored, mean, ppl, delta = line.split(",")
        table[cond, lang] = (int(scored), float(mean), float(ppl), float(delta))
    ivs = {"base": {}, "skip1": {"skip_blocks": [1]}, "edited": {"ffn_set": {"0": [[3, 0.0]]}, "ffn_add": {"1": [[7, 1.5]]}}}
    for cond, iv in ivs.items():
        path = root / "eval" / "tiny" / f"step{step}" / f"{cond}.h5"
        subprocess.run([LMTOPO, "validate", str(path)], check=True, capture_output=True)
        want = reference_nll(with_interventions(model, iv) if iv else model, tok, rows)
        with h5py.File(path, "r") as f:
            assert f.attrs["condition"].decode() == cond and json.loads(f.attrs["interventions"]) == iv
            nll, prompt = f["tokens/nll"][:], f["tokens/prompt"][:]
            for i, w in enumerate(want):
                np.testing.assert_allclose(nll[prompt == i], w, rtol=1e-5, atol=1e-5, err_msg=f"{cond} prompt {i}")
            for j, lang in enumerate(x.decode() for x in f["languages/name"][:]):
                scored, mean, ppl, delta = table[cond, lang]
                assert scored == f["languages/scored"][j]
                np.testing.assert_allclose([mean, ppl], [f["languages/mean_nll"][j], f["languages/perplexity"][j]], rtol=1e-8)
                np.testing.assert_allclose(delta, mean - table["base", lang][1], rtol=0, atol=1e-8)  # 10 digits in the CSV
            np.testing.assert_allclose(table[cond, "all"][1], np.concatenate(want).mean(), rtol=1e-5)
    assert table["skip1", "all"][3] != 0 and table["base", "all"][3] == 0


def check_pruning(root):
    """The prune stage's block choices recomputed in numpy from the zigzag's S̄ and the sweep's layer x
    layer matrices of block_output at step 4, and each condition's perplexity from its eval file; the
    S̄ choice evaluated in transformers with those blocks dropped."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM
    from test_eval import reference_nll, with_interventions

    with h5py.File(root / "zigzag" / "tiny" / "step4" / "block_output.h5", "r") as f:
        sbar = f["summaries/h1/avg_similarity"][:]
    with h5py.File(root / "sweep" / "tiny" / "step4" / "block_output.h5", "r") as f:
        angular, influence = f["layer_layer/angular_distance"][:], f["layer_layer/block_influence"][:]
    points = len(sbar)
    rows = [r for r in csv.DictReader(open(root / "prune" / "tiny.csv")) if r["language"] == "all"]
    blocks = {r["condition"]: [int(b) for part in r["blocks"].split() for b in
                               (range(int(part.split("-")[0]), int(part.split("-")[-1]) + 1))] for r in rows}
    sizes = set()
    for t in (0.9, 0.5):
        want = [l for l in range(points - 1) if sbar[l] >= t * sbar.max()]
        assert blocks.get(f"sbar_{t:g}", []) == want, (t, sbar)
        sizes.add(len(want)) if want else None
    for n in sizes:
        start = int(np.argmin([angular[l, l + n] for l in range(points - n)]))
        assert blocks[f"angular_distance_n{n}"] == list(range(start, start + n))
        bi = [influence[b, b + 1] for b in range(points - 1)]
        assert blocks[f"block_influence_n{n}"] == sorted(np.argsort(bi, kind="stable")[:n].tolist())
        for k in range(2):
            r = blocks[f"random_n{n}_{k}"]
            assert len(set(r)) == n and all(0 <= b < points - 1 for b in r)
    assert blocks["base"] == []
    for r in rows:
        with h5py.File(root / "prune" / "tiny" / f"{r['condition']}.h5", "r") as f:
            assert json.loads(f.attrs["interventions"]) == ({"skip_blocks": blocks[r["condition"]]} if blocks[r["condition"]] else {})
            np.testing.assert_allclose(float(r["mean_nll"]), f["overall/mean_nll"][0], rtol=1e-8)
    first = next(r["condition"] for r in rows if r["method"] == "sbar")
    ckpt = root / "checkpoints" / "tiny" / "step4"
    model = AutoModelForCausalLM.from_pretrained(ckpt, torch_dtype=torch.float32).eval()
    tok = Tokenizer.from_file(str(ckpt / "tokenizer.json"))
    with h5py.File(root / "corpus.h5", "r") as f:
        texts = [{"text": t.decode()} for t in f["corpus/text"][:]]
    want = reference_nll(with_interventions(model, {"skip_blocks": blocks[first]}), tok, texts)
    np.testing.assert_allclose(float(next(r["mean_nll"] for r in rows if r["condition"] == first)), np.concatenate(want).mean(), rtol=1e-5)


def test_run_resume_and_items(tmp_path):
    spec = write_study(tmp_path)
    out = lmtopo("run", spec)
    assert "run: train: 1 item(s) computed" in out
    assert "run: extract: 4 item(s) computed" in out  # steps 0, 1, 2, 4
    assert "run: zigzag: 8 item(s) computed" in out   # x 2 hooks
    assert "run: sweep: 10 item(s) computed" in out   # 4 checkpoints x 2 hooks + 2 hooks across checkpoints
    assert "run: neurons: 4 item(s) computed" in out  # the three studies per checkpoint
    assert "run: aggregate: 2 item(s) computed" in out  # one per hook
    assert "run: eval: 4 item(s) computed" in out  # the three conditions per checkpoint
    assert "run: prune: 1 item(s) computed" in out  # the model's last checkpoint
    root = tmp_path / "out"
    for step in (0, 1, 2, 4):
        act = root / "activations" / "tiny" / f"step{step}.h5"
        subprocess.run([LMTOPO, "validate", str(act)], check=True, capture_output=True)
        with h5py.File(act, "r") as f:
            assert f["activations/block_output"].shape == (3, 120, 32)
            assert f["activations/post_attention_layernorm"].attrs["pooling"].decode() == "mean"
        for hook in ("post_attention_layernorm", "block_output"):
            subprocess.run([LMTOPO, "validate", str(root / "zigzag" / "tiny" / f"step{step}" / f"{hook}.h5")],
                           check=True, capture_output=True)
    for hook in ("post_attention_layernorm", "block_output"):
        subprocess.run([LMTOPO, "validate", str(root / "sweep" / "tiny" / "step4" / f"{hook}.h5")], check=True, capture_output=True)
        with h5py.File(root / "sweep" / "tiny" / "checkpoints" / f"{hook}.h5", "r") as f:
            cka = f["checkpoint_checkpoint/cka_linear_unbiased"][()]
            assert cka.shape == (3, 4, 4) and abs(cka[0, 0, 0] - 1) < 1e-9
        assert (root / "sweep" / "tiny" / "checkpoints" / f"{hook}.csv").exists()
    with h5py.File(root / "sweep" / "tiny" / "step4" / "block_output.h5", "r") as f:
        assert f["language_language/sads"].shape == (3,) and f["language_language/retrieval_top1"].shape == (3, 3, 3)
    for step in (0, 4):
        neurons = root / "neurons" / "tiny" / f"step{step}.h5"
        subprocess.run([LMTOPO, "validate", str(neurons)], check=True, capture_output=True)
        with h5py.File(neurons, "r") as f:
            assert f["key_linguistic/z"].shape == (2, 3, 64) and f["ablation/delta"].shape == (3, 3)
            assert f["prompts/held_out"][:].sum() == 30  # a quarter of each language's 40 prompts
        assert (root / "neurons" / "tiny" / f"step{step}.ablation.csv").exists()
        repetition = root / "neurons" / "tiny" / f"step{step}.repetition.h5"
        subprocess.run([LMTOPO, "validate", str(repetition)], check=True, capture_output=True)
        with h5py.File(repetition, "r") as f:
            assert f.attrs["study"].decode() == "repetition" and f["repetition/delta"].shape == (2, 64)
            assert f["repetition/units/unit"].shape == (4,) and f["repetition/conditions/second"].shape == (7, 6)
        assert (root / "neurons" / "tiny" / f"step{step}.repetition.repetition_rate.csv").exists()
        sensitive = root / "neurons" / "tiny" / f"step{step}.sensitive_directions.h5"
        subprocess.run([LMTOPO, "validate", str(sensitive)], check=True, capture_output=True)
        with h5py.File(sensitive, "r") as f:
            assert f["sensitive/kl"].shape == (1, 3, 120, 3) and f["sensitive/blocks"][:].tolist() == [1]
            assert f["sensitive/sae/decoder"][0].decode() == str(tmp_path / "sae.safetensors")
            assert 0 <= f["sensitive/sae/feature"][:].min() and f["sensitive/sae/feature"][:].max() < 10
        assert (root / "neurons" / "tiny" / f"step{step}.sensitive_directions.crossing.csv").exists()
        spatial = root / "neurons" / "tiny" / f"step{step}.spatial.h5"
        subprocess.run([LMTOPO, "validate", str(spatial)], check=True, capture_output=True)
        with h5py.File(spatial, "r") as f:
            assert f["spatial/mlp_act/t"].shape == (2, 64) and f["spatial/prompts"][:].tolist() == [40, 40]
        assert (root / "neurons" / "tiny" / f"step{step}.spatial.moran.csv").exists()
    for hook in ("post_attention_layernorm", "block_output"):
        agg = root / "aggregate" / f"{hook}.h5"
        subprocess.run([LMTOPO, "validate", str(agg)], check=True, capture_output=True)
        with h5py.File(agg, "r") as f:
            assert [m.decode() for m in f["series/model"][:]] == ["tiny"] * 4 + ["imported"]
            assert f["series/step"][:].tolist() == [0, 1, 2, 4, -1] and f["series/num_layers"][:].tolist() == [3, 3, 3, 3, 4]
            assert [m.decode() for m in f["universality/model_a"][:]] == ["tiny"]
            # The key-neuron checkpoint series: each checkpoint's key units per block, summed over languages.
            assert f["neurons/step"][:].tolist() == [0, 1, 2, 4]
            for row, step in enumerate((0, 1, 2, 4)):
                with h5py.File(root / "neurons" / "tiny" / f"step{step}.h5", "r") as n:
                    per_block = n["key_linguistic/count"][:].sum(axis=1)
                want = np.interp(f["grid/depth"][:], np.arange(len(per_block)) / (len(per_block) - 1), per_block)
                np.testing.assert_allclose(f["neurons/key_units"][row], want, rtol=1e-12)
            # The sweeps on the same axis: SADS per checkpoint (no TwoNN in this sweep: NaN), CKA with step 4.
            grid = f["grid/depth"][:]
            assert f["sweeps/step"][:].tolist() == [0, 1, 2, 4]
            for row, step in enumerate((0, 1, 2, 4)):
                with h5py.File(root / "sweep" / "tiny" / f"step{step}" / f"{hook}.h5", "r") as s:
                    sads = s["language_language/sads"][:]
                np.testing.assert_allclose(f["sweeps/sads"][row], np.interp(grid, np.linspace(0, 1, len(sads)), sads), rtol=1e-12)
                assert np.isnan(f["sweeps/twonn"][row]).all()
            with h5py.File(root / "sweep" / "tiny" / "checkpoints" / f"{hook}.h5", "r") as s:
                cka = s["checkpoint_checkpoint/cka_linear_unbiased"][:]
            for c in range(4):
                np.testing.assert_allclose(f["cka_final/values"][c], np.interp(grid, np.linspace(0, 1, cka.shape[0]), cka[:, c, -1]), rtol=1e-12)
        assert (root / "aggregate" / f"{hook}.universality.csv").exists()
    check_eval_conditions(root, step=4)
    check_pruning(root)
    again = lmtopo("run", spec)
    assert "run: train: 0 item(s) computed, 1 already complete" in again
    assert "run: extract: 0 item(s) computed, 4 already complete" in again
    assert "run: zigzag: 0 item(s) computed, 8 already complete" in again
    assert "run: sweep: 0 item(s) computed, 10 already complete" in again
    assert "run: neurons: 0 item(s) computed, 4 already complete" in again
    assert "run: aggregate: 0 item(s) computed, 2 already complete" in again
    assert "run: eval: 0 item(s) computed, 4 already complete" in again
    assert "run: prune: 0 item(s) computed, 1 already complete" in again
    check_shared_load_equals_own_load(tmp_path, root)
    # The stage subcommands SLURM's array tasks call (`lmtopo STAGE JOB --item-id ID`) for the new stages.
    assert "prune: 0 item(s) computed, 1 already complete" in lmtopo("prune", spec)
    assert "eval: 1 item(s) computed, 0 already complete" in lmtopo("eval", spec, "--item-id", "tiny/step4", "--force")
    # Settings that cannot change a result (reducer, dualize, threads, the k-NN filter's precision and
    # device) leave complete items complete; a setting that can (k) makes them stale.
    neutral = tmp_path / "neutral.yaml"
    neutral.write_text(SPEC.replace("zigzag: {k: 3, max_dim: 2}", "zigzag: {k: 3, max_dim: 2, reducer: twist, dualize: false, "
                                    "threads: 1, knn_precision: float64, knn_device: cpu}"))
    assert "run: zigzag: 0 item(s) computed, 8 already complete" in lmtopo("run", neutral, "--stages", "zigzag")
    # aggregate reads only complete, current zigzag outputs: with k changed they are stale, and it says which.
    stale = tmp_path / "stale.yaml"
    stale.write_text(SPEC.replace("zigzag: {k: 3, max_dim: 2}", "zigzag: {k: 4, max_dim: 2}"))
    proc = subprocess.run([LMTOPO, "aggregate", str(stale)], capture_output=True, text=True)
    assert proc.returncode == 2 and "needs zigzag item tiny/step0/post_attention_layernorm, which is not complete or is stale" in proc.stderr, proc.stderr
    # The same checkpoint x checkpoint sweep in blocks of 3 checkpoints (groups {0,1,2}, {4}: blocks
    # 0-0, 0-1, 1-1 per hook, one work item each); the last block's task merges them into the file
    # the unblocked item wrote, with the same values; a lost merged file is rebuilt by a rerun.
    whole = {}
    for hook in ("post_attention_layernorm", "block_output"):
        with h5py.File(root / "sweep" / "tiny" / "checkpoints" / f"{hook}.h5", "r") as f:
            whole[hook] = {k: f["checkpoint_checkpoint"][k][()] for k in f["checkpoint_checkpoint"]}
    blocked = tmp_path / "blocked.yaml"
    blocked.write_text(SPEC.replace("pairs: [layer_layer, language_language, checkpoint_checkpoint], knn: 3",
                                    "pairs: [checkpoint_checkpoint], knn: 3, checkpoint_block: 3").replace(PRUNE, ""))
    plan = subprocess.run([LMTOPO, "plan", str(blocked)], capture_output=True, text=True, check=True).stdout
    assert "tiny/checkpoints/block_output/block-0-1" in plan
    out_b = lmtopo("sweep", blocked)
    assert "sweep: 6 item(s) computed" in out_b and out_b.count("sweep: merged 3 blocks") == 2, out_b
    for hook in ("post_attention_layernorm", "block_output"):
        merged_path = root / "sweep" / "tiny" / "checkpoints" / f"{hook}.h5"
        subprocess.run([LMTOPO, "validate", str(merged_path)], check=True, capture_output=True)
        with h5py.File(merged_path, "r") as f:
            for k, v in whole[hook].items():
                np.testing.assert_allclose(f["checkpoint_checkpoint"][k][()], v, rtol=0, atol=1e-10, err_msg=k)
    os.remove(root / "sweep" / "tiny" / "checkpoints" / "block_output.h5")
    again_b = lmtopo("sweep", blocked)
    assert "sweep: 0 item(s) computed, 6 already complete" in again_b and again_b.count("sweep: merged 3 blocks") == 1
    assert (root / "sweep" / "tiny" / "checkpoints" / "block_output.h5").exists()
    # Nightly growth: the same model given as a checkpoint list, in blocks of 2. With step0-2 the
    # blocks are {0,1} x {0,1}, {0,1} x {2}, {2} x {2}; appending step4 leaves block 0-0 complete (its
    # checkpoints are unchanged) and recomputes the two that involve the grown group; the merge is
    # again the unblocked file.
    ck = root / "checkpoints" / "tiny"
    def grown(steps):
        listed = "    checkpoints: [" + ", ".join(str(ck / f"step{s}") for s in steps) + "]"
        return SPEC.replace("    from_train: true", listed).replace(
            "pairs: [layer_layer, language_language, checkpoint_checkpoint], knn: 3",
            "pairs: [checkpoint_checkpoint], knn: 3, checkpoint_block: 2").replace(PRUNE, "")
    nightly = tmp_path / "nightly.yaml"
    nightly.write_text(grown([0, 1, 2]))
    first = lmtopo("sweep", nightly)
    assert "sweep: 6 item(s) computed" in first and first.count("sweep: merged 3 blocks") == 2, first
    nightly.write_text(grown([0, 1, 2, 4]))
    second = lmtopo("sweep", nightly)
    assert "sweep: 4 item(s) computed, 2 already complete" in second, second
    assert second.count("sweep: merged 3 blocks") == 2, second
    for hook in ("post_attention_layernorm", "block_output"):
        with h5py.File(root / "sweep" / "tiny" / "checkpoints" / f"{hook}.h5", "r") as f:
            for k, v in whole[hook].items():
                np.testing.assert_allclose(f["checkpoint_checkpoint"][k][()], v, rtol=0, atol=1e-10, err_msg=k)
    one = lmtopo("zigzag", spec, "--item", 3, "--force", ranks=1)
    assert "zigzag: 1 item(s) computed" in one
    proc = subprocess.run([LMTOPO, "zigzag", str(spec), "--item", "99"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--item" in proc.stderr


DUP_SPEC = """study: dup-test
output: out
models:
  - name: a
    checkpoints: [{a1}, {a2}]
  - name: b
    checkpoints: [{b1}]
data: {{source: gettext, languages: [en, de, fr], prompts: 20, seed: 4}}
extract: {{hooks: [block_output], pool: last, batch: 8}}
zigzag: {{k: 3, max_dim: 2}}
"""


def check_shared_load_equals_own_load(tmp_path, root):
    """The job stage loads a checkpoint once for all its studies; `lmtopo neurons` loads it per study
    (the path tested against transformers): every dataset must come out the same."""
    ckpt, corpus = root / "checkpoints" / "tiny" / "step4", root / "corpus.h5"
    common = ["--model", ckpt, "--prompts", corpus, "--batch", 8]
    studies = {"key_linguistic": (["--threshold", 1.0, "--control-draws", 2], root / "neurons" / "tiny" / "step4.h5"),
               "spatial": (["--contrast", "en,de", "--sheets", "mlp_act", "--permutations", 99, "--max-distance", 3],
                           root / "neurons" / "tiny" / "step4.spatial.h5")}
    for study, (args, job_file) in studies.items():
        own = tmp_path / f"own-{study}.h5"
        lmtopo("neurons", "--study", study, *common, *args, "-o", own)
        with h5py.File(own, "r") as a, h5py.File(job_file, "r") as b:
            names = []
            a.visit(lambda n: names.append(n) if isinstance(a[n], h5py.Dataset) else None)
            assert names and sorted(names) == sorted(n for n in names if n in b)
            for name in names:
                np.testing.assert_array_equal(a[name][()], b[name][()], err_msg=f"{study}: {name}")


def test_killed_extract_resumes_and_duplicates_are_linked(tmp_path):
    """A rank killed while extract writes the second checkpoint: the first stays complete, nothing
    half-written looks complete, the rerun computes only what is missing and its files equal an
    uninterrupted run's. A byte-identical copy of a checkpoint is linked, not recomputed."""
    import shutil
    from test_extract import make_checkpoint
    _, _, path = make_checkpoint("neox_parallel", tmp_path)
    _, _, other = make_checkpoint("llama_gqa", tmp_path)
    for name, src in (("a/step1", path), ("a/step2", other), ("b/step1", path)):
        shutil.copytree(src, tmp_path / "ck" / name)
    spec = tmp_path / "dup.yaml"
    spec.write_text(DUP_SPEC.format(a1=tmp_path / "ck/a/step1", a2=tmp_path / "ck/a/step2", b1=tmp_path / "ck/b/step1"))
    out = tmp_path / "out"
    lmtopo("prepare", spec)
    env = dict(os.environ, LMTOPO_TEST_KILL_RANK_IN_WRITE="1:a/step2.h5")
    proc = subprocess.run([MPIRUN, "--allow-run-as-root", "-n", "2", LMTOPO, "extract", str(spec)], env=env,
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert (out / "activations/a/step1.h5").exists()
    assert not (out / "activations/a/step2.h5").exists()
    assert not (out / "manifest/items/extract").joinpath("a", "step2.json").exists()
    again = lmtopo("run", spec)
    assert "run: extract: 1 item(s) computed, 1 already complete, 1 linked (byte-identical checkpoints)" in again
    assert "run: zigzag: 2 item(s) computed, 0 already complete, 1 linked (byte-identical checkpoints)" in again
    a1, b1 = out / "activations/a/step1.h5", out / "activations/b/step1.h5"
    assert os.stat(a1).st_ino == os.stat(b1).st_ino
    assert os.stat(out / "zigzag/a/step1/block_output.h5").st_ino == os.stat(out / "zigzag/b/step1/block_output.h5").st_ino
    # the interrupted-then-resumed file equals an uninterrupted computation
    fresh = tmp_path / "fresh.h5"
    lmtopo("extract", "--model", tmp_path / "ck/a/step2", "--prompts", out / "corpus.h5", "--hook", "block_output",
           "--pool", "last", "--batch", "8", "-o", fresh)
    with h5py.File(out / "activations/a/step2.h5", "r") as f, h5py.File(fresh, "r") as g:
        assert np.array_equal(f["activations/block_output"][:], g["activations/block_output"][:])
    third = lmtopo("run", spec)
    assert "run: extract: 0 item(s) computed, 3 already complete" in third
