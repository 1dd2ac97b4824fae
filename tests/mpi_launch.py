"""Runs an mpirun command line for a test that expects it to succeed, working around one known
Open MPI 4.x launcher race.

Now and then Open MPI's mpirun reports a rank that ran and finalized normally as "exiting improperly",
naming it "with PID 0", and exits 1 (open-mpi/ompi#7833: about one launch in a thousand or two of a
plain hello-world on one node; #12607: more often with other mpiruns running beside it, as under
ctest -j). The PID 0 is the tell: the launcher lost track of a process it had started, not the
process failing. The test suite makes several hundred launches, so CI meets the race now and then.
Such a launch, and only it, is run again (at most twice more); any other failure is returned as it is.
Tests that expect a launch to fail call subprocess.run themselves: a rerun could hide what they check.
"""
import subprocess
import sys

RETRIES = 2


def launcher_lost_a_rank(proc):
    """True when mpirun's only complaint is its lost-track race (see the module's docstring)."""
    text = (proc.stdout or "") + (proc.stderr or "")
    return proc.returncode != 0 and "exiting improperly" in text and "with PID 0 on" in text


def run(cmd, **kwargs):
    """subprocess.run(cmd, capture_output=True, text=True, **kwargs), rerun after the launcher race."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    for attempt in range(RETRIES + 1):
        proc = subprocess.run(cmd, **kwargs)
        if not launcher_lost_a_rank(proc) or attempt == RETRIES:
            return proc
        print(f"mpi_launch: mpirun lost track of a rank (PID 0, open-mpi/ompi#7833); rerunning: {' '.join(map(str, cmd))}",
              file=sys.stderr)
