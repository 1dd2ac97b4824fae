"""Every test runs through tests/isolated.sh with its own TMPDIR and Open MPI session directory, so
concurrent mpiruns (ctest -j, other MPI programs) never race on creating the session directory."""
import os
import subprocess

import mpi_launch
from conftest import LMTOPO, MPIRUN, SOURCE


def test_the_wrapper_gives_a_fresh_folder_as_tmpdir_and_session_base_and_removes_it(tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path))
    out = subprocess.run(["sh", str(SOURCE / "tests" / "isolated.sh"), "sh", "-c",
                          'echo "$TMPDIR $OMPI_MCA_orte_tmpdir_base"; test -d "$TMPDIR"; exit 3'],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 3  # the command's status passes through
    tmpdir, base = out.stdout.split()
    assert tmpdir == base and tmpdir.startswith(str(tmp_path) + "/lmtopo-test.")
    assert not os.path.exists(tmpdir)


def test_eight_concurrent_mpiruns_each_isolated_all_succeed(tmp_path):
    fzz = tmp_path / "a.fzz"
    fzz.write_text("i 0\ni 1\ni 0 1\n")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", TMPDIR=str(tmp_path))
    procs = [subprocess.Popen(["sh", str(SOURCE / "tests" / "isolated.sh"), MPIRUN, "--allow-run-as-root", "--oversubscribe",
                               "-n", "2", LMTOPO, "barcode", str(fzz), "-o", str(tmp_path / f"o{i}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for i in range(8)]
    for i, p in enumerate(procs):
        out, err = p.communicate(timeout=300)
        if mpi_launch.launcher_lost_a_rank(subprocess.CompletedProcess(p.args, p.returncode, out, err)):
            p = mpi_launch.run(p.args, env=env)  # Open MPI's own race (tests/mpi_launch.py), not a collision
            err = p.stderr
        assert p.returncode == 0, err
        assert (tmp_path / f"o{i}").read_text() == "0 1 3\n0 2 2\n"
    leftovers = [d for d in os.listdir(tmp_path) if d.startswith("lmtopo-test.")]
    assert not leftovers, leftovers  # each wrapper removed its folder


def test_only_the_launchers_lost_rank_race_is_rerun(tmp_path):
    # tests/mpi_launch.py reruns a launch that failed with Open MPI's "PID 0 ... exiting improperly"
    # race, at most twice more, and returns every other failure at once.
    count = tmp_path / "count"
    race = ("echo x >> {}; echo 'mpirun has exited due to process rank 3 with PID 0 on'; "
            "echo 'node vm exiting improperly.' >&2; exit 1").format(count)
    proc = mpi_launch.run(["sh", "-c", race])
    assert proc.returncode == 1 and len(count.read_text().split()) == 1 + mpi_launch.RETRIES
    count.unlink()
    proc = mpi_launch.run(["sh", "-c", race.replace("PID 0", "PID 4242")])
    assert proc.returncode == 1 and len(count.read_text().split()) == 1
    count.unlink()
    once = ("echo x >> {0}; test $(wc -l < {0}) -ge 2 && exit 0; "
            "echo 'rank 1 with PID 0 on node vm exiting improperly'; exit 1").format(count)
    proc = mpi_launch.run(["sh", "-c", once])
    assert proc.returncode == 0 and len(count.read_text().split()) == 2
