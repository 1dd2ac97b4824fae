"""Faults (issue 12): a full disk and a killed rank.
- Disk full: the output folder is a 32 KiB tmpfs (mounted by the test; it needs root, as in CI)
  with 8 KiB free: extract, zigzag and sweep end with one line on stderr and a non-zero status, leave no
  .h5 file that looks complete, and the rerun after the tmpfs is grown finishes and validates.
- kill -9 of one rank of `mpirun -n 2 lmtopo run` at several points (while training, extracting,
  computing zigzags and sweeps): the rerun finishes, every output validates, and every dataset equals an
  uninterrupted run's bit for bit (same ranks and threads per rank, so the same arithmetic)."""
import os
import random
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest

from test_extract import LMTOPO, MPIRUN, make_checkpoint, prompts_file
from test_run import SPEC as RUN_SPEC, write_study

# test_run's study, trained a little longer (five checkpoints) and with a smaller sweep.
SPEC = (RUN_SPEC.replace("study: run-test", "study: faults").replace("steps: 4,", "steps: 8,")
        .replace("metrics: [cka_linear_unbiased, sads, retrieval, angular_distance, block_influence], "
                 "pairs: [layer_layer, language_language, checkpoint_checkpoint]",
                 "metrics: [cka_linear_unbiased, sads, angular_distance, block_influence], pairs: [layer_layer, checkpoint_checkpoint]"))
assert "steps: 8," in SPEC and "pairs: [layer_layer, checkpoint_checkpoint]" in SPEC


class SmallDisk:
    """A tmpfs of a given size mounted for the test (root only), grown in place for the rerun."""

    def __init__(self, path, size):
        self.path = path
        path.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
        if proc.returncode != 0:
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(f"cannot mount a tmpfs under CI: {proc.stderr}")
            pytest.skip(f"mounting a tmpfs needs root: {proc.stderr.strip()}")

    def grow(self, size="64m"):
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True)

    def unmount(self):
        subprocess.run(["umount", str(self.path)], check=False)


def run(cmd):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True)


def assert_clean_failure(proc, out):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1 and lines[0].startswith("lmtopo:"), proc.stderr
    assert not out.exists(), f"{out} looks complete after a failed write"
    assert not [p for p in out.parent.iterdir() if p.suffix == ".h5"], list(out.parent.iterdir())


@pytest.mark.parametrize("stage", ["extract", "zigzag", "sweep"])
def test_disk_full_then_rerun_with_space(tmp_path, stage):
    _, _, path = make_checkpoint("llama_gqa", tmp_path)
    prompts, _ = prompts_file(tmp_path, n=40)
    act = tmp_path / "act.h5"
    extract = [LMTOPO, "extract", "--model", path, "--prompts", prompts, "--hook", "block_output", "--hook", "mlp_act"]
    if stage != "extract":
        assert run(extract + ["-o", act]).returncode == 0
    disk = SmallDisk(tmp_path / "small", "32k")
    try:
        out = disk.path / f"{stage}.h5"
        cmd = {"extract": extract + ["-o", out],
               "zigzag": [LMTOPO, "zigzag", "--activations", act, "--hook", "block_output", "-k", 3, "-o", out],
               "sweep": [LMTOPO, "sweep", "--activations", act, "--hook", "mlp_act", "--pairs", "layer_layer",
                         "--metric", "cka_linear_biased", "--metric", "cosine", "-o", out]}[stage]
        (disk.path / "filler").write_bytes(b"\0" * (24 * 1024))  # room for the header, not for the data
        first = run(cmd)
        assert_clean_failure(first, out)
        assert "not enough space" in first.stderr
        disk.grow()
        again = run(cmd)
        assert again.returncode == 0, again.stderr
        assert run([LMTOPO, "validate", out]).returncode == 0
    finally:
        disk.unmount()


def outputs(root):
    return sorted(p for p in root.rglob("*.h5"))


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def start_run(spec):
    cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", "2", LMTOPO, "run", str(spec)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=spec.parent)


def ranks_of(mpirun_pid):
    """The lmtopo processes started by this mpirun (children, or their exec'd lmtopo-torch)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == mpirun_pid and state != "Z" and "lmtopo" in stat.split("(", 1)[1].split(")")[0]:
            pids.append(int(entry))
    return pids


# Where to kill: the first file that shows a stage under way (relative to the study's output).
# Datasets that hold input file names (absolute): equal once each run's folder is taken out.
PATH_DATASETS = {"series/source", "sensitive/sae/decoder"}
KILL_POINTS = ["checkpoints/tiny/step2", "activations/tiny/step1.h5", "zigzag/tiny/step1", "sweep/tiny/step1"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("uninterrupted")
    write_study(d, SPEC)
    proc = start_run(d / "study.yaml")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    root = d / "out"
    return root, {p.relative_to(root): datasets(p) for p in outputs(root)}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_9_of_one_rank_then_rerun_equals_an_uninterrupted_run(tmp_path, reference, point):
    ref_root, ref = reference
    spec = write_study(tmp_path, SPEC)
    rng = random.Random(KILL_POINTS.index(point))  # which rank, and a little delay after the marker
    proc = start_run(spec)
    killed = False
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if (tmp_path / "out" / point).exists():
            time.sleep(rng.uniform(0.0, 0.2))
            ranks = ranks_of(proc.pid)
            if ranks:
                os.kill(rng.choice(ranks), signal.SIGKILL)
                killed = True
                break
        time.sleep(0.05)
    proc.communicate(timeout=300)
    assert killed, f"the run ended before {point} appeared"
    assert proc.returncode != 0, "the killed rank had already exited"
    # Nothing that looks complete is broken: every .h5 in place validates.
    for p in outputs(tmp_path / "out"):
        assert run([LMTOPO, "validate", p]).returncode == 0, p
    again = start_run(spec)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    got = {p.relative_to(tmp_path / "out"): p for p in outputs(tmp_path / "out")}
    assert sorted(got) == sorted(ref)
    for rel, want in ref.items():
        have = datasets(got[rel])
        assert sorted(have) == sorted(want), rel
        for name in want:
            if name in PATH_DATASETS:  # input file names: each run's own folder
                assert [x.replace(str(tmp_path).encode(), b"") for x in have[name]] == \
                    [x.replace(str(ref_root.parent).encode(), b"") for x in want[name]], f"{rel}:{name}"
                continue
            # NaN where nothing was measured (e.g. a KL threshold never crossed) equals NaN in the same place.
            same_nan = have[name].dtype.kind == "f"
            assert np.array_equal(have[name], want[name], equal_nan=same_nan), f"{rel}:{name}"
