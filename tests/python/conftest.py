"""Shared helpers for the cross-check tests: where the lmtopo binary is and how to run it."""
import os
import subprocess
import pathlib

import pytest

LMTOPO = os.environ.get("LMTOPO", str(pathlib.Path(__file__).resolve().parents[2] / "build" / "lmtopo"))
SOURCE = pathlib.Path(os.environ.get("LMTOPO_SOURCE", pathlib.Path(__file__).resolve().parents[2]))
SHARED = pathlib.Path(os.environ.get("LMTOPO_SHARED", SOURCE.parent / "shared"))
MPIRUN = os.environ.get("MPIRUN", "mpirun")


def run_lmtopo(*args, ranks=None, check=True, cwd=None):
    cmd = [LMTOPO, *map(str, args)]
    if ranks is not None:
        cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(ranks), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def lmtopo():
    return run_lmtopo
