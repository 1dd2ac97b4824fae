"""Shared helpers for the cross-check tests: where the lmtopo binary is and how to run it."""
import os
import subprocess
import pathlib
import sys

import pytest

LMTOPO = os.environ.get("LMTOPO", str(pathlib.Path(__file__).resolve().parents[2] / "build" / "lmtopo"))
SOURCE = pathlib.Path(os.environ.get("LMTOPO_SOURCE", pathlib.Path(__file__).resolve().parents[2]))
SHARED = pathlib.Path(os.environ.get("LMTOPO_SHARED", SOURCE.parent / "shared"))
MPIRUN = os.environ.get("MPIRUN", "mpirun")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import mpi_launch  # noqa: E402  (tests/mpi_launch.py: Open MPI's lost-rank race)


def run_lmtopo(*args, ranks=None, check=True, cwd=None):
    cmd = [LMTOPO, *map(str, args)]
    if ranks is not None:
        cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(ranks), *cmd]
    proc = (mpi_launch.run(cmd, cwd=cwd) if ranks is not None and check
            else subprocess.run(cmd, capture_output=True, text=True, cwd=cwd))
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def lmtopo():
    return run_lmtopo
