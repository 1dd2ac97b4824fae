"""TopoLM's spatially organised training (`lmtopo train --spatial-alpha`, science.md §5):
- the spatial loss and its gradient against an independent torch implementation (torch.corrcoef over
  the units of each window, autograd), also with the moments formed over row blocks as ranks do;
- alpha = 0 is exactly the plain trainer's loss curve (the SL is only logged);
- alpha > 0 is deterministic, gives the same loss, cross-entropy and SL curves at 1 and 2 ranks, lowers the SL against
  the control, and saves unit_positions.safetensors, which safetensors reads and the spatial study uses;
- bad options and a corrupt positions file exit 2 naming them."""
import json
import subprocess

import h5py
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

from test_tokenizer import TEXTS
from test_train import ARGS, LMTOPO, MPIRUN, run_mpi

SPATIAL_LOSS_DUMP = __import__("os").environ.get("SPATIAL_LOSS_DUMP", "spatial_loss_dump")


def reference_loss(acts, side, cells, windows):
    """Mean over windows of 1/2 (1 - corr(r_ij, 1/(1+d_ij))), r from torch.corrcoef; gradient by autograd."""
    x = torch.tensor(acts, dtype=torch.float64, requires_grad=True)
    rows, cols = np.array(cells) // side, np.array(cells) % side
    total = 0
    for top, left, size in windows:
        units = [u for u in range(len(cells)) if top <= rows[u] < top + size and left <= cols[u] < left + size]
        r = torch.corrcoef(x[:, units].T)
        i, j = np.triu_indices(len(units), 1)
        d = np.hypot(rows[units][i] - rows[units][j], cols[units][i] - cols[units][j])
        target = torch.tensor(1 / (1 + d), dtype=torch.float64)
        total = total + 0.5 * (1 - torch.corrcoef(torch.stack([r[i, j], target]))[0, 1])
    loss = total / len(windows)
    loss.backward()
    return loss.item(), x.grad.numpy()


@pytest.mark.parametrize("split", [1, 3])
def test_spatial_loss_and_gradient_match_torch(tmp_path, split):
    rng = np.random.default_rng(7 + split)
    units, tokens, side = 30, 45, 6
    cells = rng.permutation(side * side)[:units].tolist()
    # correlated units so that r spans a range: a few latent factors plus noise
    acts = rng.normal(size=(tokens, 4)) @ rng.normal(size=(4, units)) + 0.5 * rng.normal(size=(tokens, units))
    windows = [[0, 0, 4], [2, 1, 4], [1, 2, 5], [0, 0, 6], [3, 3, 3]]
    (tmp_path / "in.json").write_text(json.dumps({"activations": acts.tolist(), "side": side, "cells": cells, "windows": windows,
                                                  "split": split}))
    subprocess.run([SPATIAL_LOSS_DUMP, tmp_path / "in.json", tmp_path / "out.json"], check=True)
    got = json.loads((tmp_path / "out.json").read_text())
    want_loss, want_grad = reference_loss(acts, side, cells, windows)
    assert 0 < want_loss < 1
    assert got["loss"] == pytest.approx(want_loss, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(np.array(got["gradient"]).reshape(tokens, units), want_grad, rtol=1e-7, atol=1e-10)


def test_batched_neighbourhoods_of_several_sheets_match_torch(tmp_path):
    """The trainer batches every block's neighbourhoods: windows on three sheets (different placements and
    activations) in one batch give the mean of each sheet's own reference loss, and the gradient of each."""
    rng = np.random.default_rng(11)
    units, tokens, side = 20, 33, 5
    sheets = [{"side": side, "cells": rng.permutation(side * side)[:units].tolist()} for _ in range(3)]
    acts = [rng.normal(size=(tokens, 3)) @ rng.normal(size=(3, units)) + rng.normal(size=(tokens, units)) for _ in range(3)]
    windows = [[0, 0, 3, 0], [1, 1, 4, 1], [0, 2, 3, 2], [2, 0, 3, 0], [0, 0, 5, 2]]
    (tmp_path / "in.json").write_text(json.dumps({"activations": [a.tolist() for a in acts], "sheets": sheets, "windows": windows, "split": 2}))
    subprocess.run([SPATIAL_LOSS_DUMP, tmp_path / "in.json", tmp_path / "out.json"], check=True)
    got = json.loads((tmp_path / "out.json").read_text())
    grad = np.array(got["gradient"]).reshape(3, tokens, units)
    total = 0
    for s in range(3):
        mine = [w[:3] for w in windows if w[3] == s]
        loss, g = reference_loss(acts[s], side, sheets[s]["cells"], mine)
        total += loss * len(mine)
        np.testing.assert_allclose(grad[s], g * len(mine) / len(windows), rtol=1e-7, atol=1e-10)
    assert got["loss"] == pytest.approx(total / len(windows), rel=1e-10)


def test_spatial_loss_known_answers(tmp_path):
    """Units whose correlations fall exactly as 1/(1+d) give SL = 0, the opposite order SL = 1: acts built
    from a covariance matrix C = a + b/(1+d) (positive definite for these values)."""
    side = 3
    cells = list(range(9))
    rows, cols = np.array(cells) // side, np.array(cells) % side
    d = np.hypot(rows[:, None] - rows[None], cols[:, None] - cols[None])
    for b, want in ((0.5, 0.0), (-0.15, 1.0)):
        cov = 0.3 + b / (1 + d)
        np.fill_diagonal(cov, 1.0)
        z = np.random.default_rng(0).normal(size=(400, 9))
        z = (z - z.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(z.T, bias=True))).T  # exactly white
        acts = z @ np.linalg.cholesky(cov).T
        (tmp_path / "in.json").write_text(json.dumps({"activations": acts.tolist(), "side": side, "cells": cells, "windows": [[0, 0, 3]]}))
        subprocess.run([SPATIAL_LOSS_DUMP, tmp_path / "in.json", tmp_path / "out.json"], check=True)
        assert json.loads((tmp_path / "out.json").read_text())["loss"] == pytest.approx(want, abs=1e-9)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "texts.jsonl"
    path.write_text("\n".join(json.dumps({"text": t}, ensure_ascii=False) for t in TEXTS if t.strip()) + "\n")
    return path


def train(corpus, out, *extra, ranks=1):
    cmd = [LMTOPO, "train", "--corpus", str(corpus), "-o", str(out)] + ARGS + list(extra)
    if ranks > 1:
        cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(ranks)] + cmd
    proc = run_mpi(cmd)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out / "train_log.h5", "r") as f:
        return {k: f[f"train/{k}"][:] for k in ("loss", "cross_entropy", "spatial_loss") if f"train/{k}" in f} | \
            {"heldout": f["heldout/loss"][:]}


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    return {
        "plain": train(corpus, root / "plain"),
        "control": train(corpus, root / "control", "--spatial-alpha", "0"),
        "topo": train(corpus, root / "topo", "--spatial-alpha", "4", "--spatial-window", "5"),
        "topo2": train(corpus, root / "topo2", "--spatial-alpha", "4", "--spatial-window", "5", ranks=2),
        "topo_again": train(corpus, root / "topo_again", "--spatial-alpha", "4", "--spatial-window", "5"),
        "root": root,
    }


def test_alpha_zero_is_the_plain_trainer(trained):
    plain, control = trained["plain"], trained["control"]
    np.testing.assert_array_equal(plain["loss"], control["loss"])  # same process layout and threads: bit for bit
    np.testing.assert_array_equal(plain["heldout"], control["heldout"])
    np.testing.assert_array_equal(control["loss"], control["cross_entropy"])
    assert "spatial_loss" not in plain
    assert np.all((control["spatial_loss"] >= 0) & (control["spatial_loss"] <= 2 * 2 * 1.0))  # 2 sheets x 2 blocks, each SL in [0, 1]


def test_spatial_training_is_deterministic(trained):
    """The same run twice gives the same curve bit for bit (a non-deterministic backward, as libtorch's row
    gather once gave at training sizes, shows here first)."""
    for key in ("loss", "cross_entropy", "spatial_loss", "heldout"):
        np.testing.assert_array_equal(trained["topo"][key], trained["topo_again"][key], err_msg=key)
    assert np.all(np.isfinite(trained["topo"]["loss"]))


def test_spatial_training_is_rank_count_independent_and_lowers_the_spatial_loss(trained):
    one, two, control = trained["topo"], trained["topo2"], trained["control"]
    for key in ("loss", "cross_entropy", "spatial_loss"):
        np.testing.assert_allclose(one[key], two[key], rtol=2e-4, atol=2e-4, err_msg=key)
    np.testing.assert_allclose(one["loss"], one["cross_entropy"] + 4 * one["spatial_loss"], rtol=1e-12)
    assert one["spatial_loss"][-8:].mean() < 0.8 * control["spatial_loss"][-8:].mean(), (one["spatial_loss"], control["spatial_loss"])
    assert one["heldout"][-1] < 0.9 * one["heldout"][0]  # it still learns the language


def test_unit_positions_are_saved_and_the_spatial_study_uses_them(trained, tmp_path):
    ckpt = trained["root"] / "topo" / "step40"
    positions = load_file(str(ckpt / "unit_positions.safetensors"))
    for hook, width in (("attn_output", 64), ("mlp_act", 128)):
        side = int(positions[f"{hook}.side"][0])
        assert positions[hook].dtype == np.int32 and positions[hook].shape == (2, width) and side * side >= width > (side - 1) ** 2
        for block in positions[hook]:
            assert len(set(block)) == width and block.min() >= 0 and block.max() < side * side
    # the same positions in every checkpoint of the run (frozen), different between blocks
    step0 = load_file(str(trained["root"] / "topo" / "step0" / "unit_positions.safetensors"))
    np.testing.assert_array_equal(step0["mlp_act"], positions["mlp_act"])
    assert not np.array_equal(positions["mlp_act"][0], positions["mlp_act"][1])
    assert not (trained["root"] / "plain" / "step40" / "unit_positions.safetensors").exists()
    shown = subprocess.run([LMTOPO, "inspect", str(ckpt)], capture_output=True, text=True, check=True).stdout
    assert "mlp_act: 2 blocks x 128 units on a 12x12 grid" in shown and "attn_output: 2 blocks x 64 units on a 8x8 grid" in shown

    rows = [{"id": f"p{i}", "lang": "en" if i % 2 == 0 else "xx", "text": TEXTS[i][:80] or "x"} for i in range(24)]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    out = tmp_path / "spatial.h5"
    proc = subprocess.run([LMTOPO, "neurons", "--study", "spatial", "--model", str(ckpt), "--prompts", str(tmp_path / "p.jsonl"),
                           "--contrast", "en,xx", "--permutations", "19", "--threads", "1", "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out, "r") as f:
        for hook in ("attn_output", "mlp_act"):
            assert f[f"spatial/{hook}/cell"].attrs["positions"] in ("checkpoint", b"checkpoint")
            np.testing.assert_array_equal(f[f"spatial/{hook}/cell"][:], positions[hook])

    # a corrupt positions file: two units on one cell
    bad = tmp_path / "bad"
    subprocess.run(["cp", "-r", str(ckpt), str(bad)], check=True)
    broken = dict(positions)
    broken["mlp_act"] = positions["mlp_act"].copy()
    broken["mlp_act"][1, 1] = broken["mlp_act"][1, 0]
    save_file(broken, str(bad / "unit_positions.safetensors"))
    proc = subprocess.run([LMTOPO, "neurons", "--study", "spatial", "--model", str(bad), "--prompts", str(tmp_path / "p.jsonl"),
                           "--contrast", "en,xx", "--threads", "1", "-o", str(tmp_path / "bad.h5")], capture_output=True, text=True)
    assert proc.returncode == 2 and "unit_positions.safetensors: tensor mlp_act: block 1: two units share cell" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, option", [
    (["--spatial-alpha", "1", "--spatial-sheets", "block_output"], "--spatial-sheets"),
    (["--spatial-alpha", "1", "--spatial-sheets", "mlp_act,mlp_act"], "--spatial-sheets"),
    (["--spatial-alpha", "1", "--spatial-window", "1"], "--spatial-window"),
    (["--spatial-alpha", "-1"], "--spatial-alpha"),
    (["--spatial-alpha", "nan"], "--spatial-alpha"),
    (["--spatial-window", "5"], "--spatial-window"),
])
def test_bad_spatial_options_exit_2(tmp_path, corpus, args, option):
    proc = subprocess.run([LMTOPO, "train", "--corpus", str(corpus), "-o", str(tmp_path / "x"), "--steps", "2"] + args,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and option in proc.stderr, proc.stderr
    assert not (tmp_path / "x" / "step0").exists()
