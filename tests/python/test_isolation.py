"""Every test runs through tests/isolated.sh with its own TMPDIR and Open MPI session directory, so
concurrent mpiruns (ctest -j, other MPI programs) never race on creating the session directory."""
import os
import subprocess

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
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert (tmp_path / f"o{i}").read_text() == "0 1 3\n0 2 2\n"
    leftovers = [d for d in os.listdir(tmp_path) if d.startswith("lmtopo-test.")]
    assert not leftovers, leftovers  # each wrapper removed its folder
