"""Atomic outputs and resumption: a rank killed mid-write leaves nothing that looks complete, the
re-run finishes the work, a further re-run does nothing, a changed config redoes it."""
import json
import os
import subprocess

import h5py

from conftest import LMTOPO, MPIRUN, run_lmtopo

SPEC = """study: resume
output: out
data: {{source: gettext, languages: [en, de, fr], prompts: 20, seed: {seed}}}
"""


def test_killed_rank_then_rerun(tmp_path):
    spec = tmp_path / "r.yaml"
    spec.write_text(SPEC.format(seed=1))
    env = dict(os.environ, LMTOPO_TEST_KILL_RANK_IN_WRITE="1")
    proc = subprocess.run([MPIRUN, "--allow-run-as-root", "-n", "2", LMTOPO, "prepare", str(spec)],
                          env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    out = tmp_path / "out"
    assert not (out / "corpus.h5").exists()
    assert not (out / "manifest" / "items" / "prepare" / "corpus.json").exists()

    first = run_lmtopo("prepare", spec, ranks=2)
    assert "20 corpus records" not in first.stdout  # 3 languages x 20
    assert "60 corpus records" in first.stdout
    assert not (out / "corpus.h5.partial").exists()
    run_lmtopo("validate", out / "corpus.h5")
    record = json.loads((out / "manifest" / "items" / "prepare" / "corpus.json").read_text())
    assert record["outputs"][0]["path"] == "corpus.h5"
    assert record["outputs"][0]["bytes"] == (out / "corpus.h5").stat().st_size

    again = run_lmtopo("prepare", spec, ranks=2)
    assert "nothing to do" in again.stdout

    spec.write_text(SPEC.format(seed=2))  # stale config: redone
    redo = run_lmtopo("prepare", spec)
    assert "60 corpus records" in redo.stdout
    assert json.loads((out / "manifest" / "items" / "prepare" / "corpus.json").read_text())["config_hash"] != record["config_hash"]

    forced = run_lmtopo("prepare", spec, "--force")
    assert "60 corpus records" in forced.stdout


def test_truncated_output_is_redone(tmp_path):
    spec = tmp_path / "r.yaml"
    spec.write_text(SPEC.format(seed=1))
    run_lmtopo("prepare", spec)
    corpus = tmp_path / "out" / "corpus.h5"
    data = corpus.read_bytes()
    corpus.write_bytes(data[: len(data) // 2])
    proc = run_lmtopo("validate", corpus, check=False)
    assert proc.returncode == 2 and "corpus.h5" in proc.stderr
    assert "60 corpus records" in run_lmtopo("prepare", spec).stdout
    run_lmtopo("validate", corpus)


def test_provenance_attributes(tmp_path):
    spec = tmp_path / "r.yaml"
    spec.write_text(SPEC.format(seed=1))
    run_lmtopo("prepare", spec, ranks=2)
    with h5py.File(tmp_path / "out" / "corpus.h5", "r") as f:
        a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    assert a["lmtopo_schema"] == "corpus/1"
    assert len(a["git_sha"]) == 40 and int(a["git_dirty"]) in (0, 1)
    config = json.loads(a["config_json"])
    assert config["data"]["min_chars"] == 16  # defaults are recorded
    created = json.loads(a["created_by"])
    assert created["ranks"] == 2 and created["libraries"]["hdf5"].startswith("1.")


def test_validate_rejects_layout_violations(tmp_path):
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        for k in ("lmtopo_schema", "lmtopo_version", "git_sha", "config_json", "created_by"):
            f.attrs[k] = "corpus/1" if k == "lmtopo_schema" else "{}"
        f.attrs["git_dirty"] = 0
        f["corpus/text"] = [b"a", b"b"]
    proc = run_lmtopo("validate", bad, check=False)
    assert proc.returncode == 2 and "/corpus/lang: missing dataset" in proc.stderr
    with h5py.File(bad, "a") as f:
        f["corpus/lang"] = [1.0, 2.0]
    proc = run_lmtopo("validate", bad, check=False)
    assert proc.returncode == 2 and "/corpus/lang: expected dtype" in proc.stderr
    with h5py.File(bad, "a") as f:
        del f.attrs["git_sha"]
    proc = run_lmtopo("validate", bad, check=False)
    assert proc.returncode == 2 and "/@git_sha" in proc.stderr


def test_checkpoint_manifest_flags_duplicates(tmp_path):
    from conftest import SOURCE
    ckpt = SOURCE / "tests" / "data" / "ckpt" / "model-a"
    spec = tmp_path / "m.yaml"
    spec.write_text(f"study: m\noutput: out\nmodels:\n  - name: a\n    checkpoints: {{dir: {ckpt}}}\n"
                    "data: {source: gettext, languages: [en, de], prompts: 5}\n")
    proc = run_lmtopo("prepare", spec, ranks=2)
    assert "duplicate" in proc.stdout and "byte-identical" in proc.stderr
    doc = json.loads((tmp_path / "out" / "manifest" / "checkpoints.json").read_text())
    steps = {c["checkpoint"]: c for c in doc["checkpoints"]}
    assert steps["step0"]["duplicate_of"] is None
    assert steps["step8"]["duplicate_of"] == "a/step0"
    import hashlib
    want = hashlib.sha256((ckpt / "step8" / "model.safetensors").read_bytes()).hexdigest()
    assert steps["step8"]["files"]["model.safetensors"] == want
