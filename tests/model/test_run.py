"""`lmtopo run JOB.yaml` over a small study on 2 ranks: prepare, train, extract and zigzag at every
checkpoint, outputs valid; a second run computes nothing; a single item can be redone by index."""
import os
import subprocess

import h5py

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
"""


def lmtopo(*args, ranks=2):
    cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(ranks), LMTOPO, *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_run_resume_and_items(tmp_path):
    spec = tmp_path / "study.yaml"
    spec.write_text(SPEC)
    out = lmtopo("run", spec)
    assert "run: train: 1 item(s) computed" in out
    assert "run: extract: 4 item(s) computed" in out  # steps 0, 1, 2, 4
    assert "run: zigzag: 8 item(s) computed" in out   # x 2 hooks
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
    again = lmtopo("run", spec)
    assert "run: train: 0 item(s) computed, 1 already complete" in again
    assert "run: extract: 0 item(s) computed, 4 already complete" in again
    assert "run: zigzag: 0 item(s) computed, 8 already complete" in again
    one = lmtopo("zigzag", spec, "--item", 3, "--force", ranks=1)
    assert "zigzag: 1 item(s) computed" in one
    proc = subprocess.run([LMTOPO, "zigzag", str(spec), "--item", "99"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--item" in proc.stderr
