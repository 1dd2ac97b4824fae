#!/bin/sh
# Runs one test command with its own temporary folder, used as TMPDIR and as Open MPI's session
# directory base: concurrent mpiruns (ctest -j, or any other MPI program on the machine) otherwise
# race on creating /tmp/ompi.<host>.<uid> and fail with "orte_session_dir failed ... File exists".
# Tests run on one node: the ob1 messaging layer (shared memory) is what Open MPI picks there anyway,
# named so that MPI_Init skips probing the PSM/PSM2 fabrics (0.2 s of every launch; docs/operations.md).
d=$(mktemp -d "${TMPDIR:-/tmp}/lmtopo-test.XXXXXX") || exit 1
OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}" OMPI_MCA_orte_tmpdir_base="$d" TMPDIR="$d" "$@"
rc=$?
rm -rf "$d"
exit $rc
