"""Errors under mpirun: one raised on every rank (a bad option, or agreed through mpi::on_root/on_all)
is one line from rank 0 (beside mpirun's own banner) and exit 2; one raised on a single rank while the others wait in a collective
(forced by the LMTOPO_TEST_FAIL_RANK hook) ends the whole job with that rank's message and exit 2
instead of hanging, and leaves no output file."""
import os
import subprocess

import numpy as np

from conftest import LMTOPO, MPIRUN
from test_zigzag_knn import write_activations


def mpirun(args, ranks=2, env=None, timeout=120):
    cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(ranks), LMTOPO, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **(env or {})), timeout=timeout)


def test_error_on_every_rank_is_one_line(tmp_path):
    act = tmp_path / "a.h5"
    write_activations(act, np.random.default_rng(0).normal(size=(3, 12, 4)))
    proc = mpirun(["zigzag", "--activations", act, "--hook", "h", "-o", tmp_path / "z.h5", "-k", "0"])
    assert proc.returncode == 2, proc.stderr
    ours = [line for line in proc.stderr.splitlines() if line.startswith("lmtopo")]  # mpirun adds its banner
    assert ours == ["lmtopo: error: --k: expected k >= 1, got 0"], proc.stderr
    assert "alone" not in proc.stderr


def test_error_on_one_rank_aborts_the_job_instead_of_hanging(tmp_path):
    act, out = tmp_path / "a.h5", tmp_path / "z.h5"
    write_activations(act, np.random.default_rng(0).normal(size=(3, 12, 4)))
    # Rank 1 fails before the zigzag starts; rank 0 goes on into the stage's first collective.
    proc = mpirun(["zigzag", "--activations", act, "--hook", "h", "-o", out], ranks=2,
                  env={"LMTOPO_TEST_FAIL_RANK": "1"})
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "lmtopo: error (rank 1, alone; aborting the other ranks): LMTOPO_TEST_FAIL_RANK" in proc.stderr, proc.stderr
    assert not out.exists() and not list(tmp_path.glob("z.h5*"))
