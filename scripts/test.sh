#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (ctest). This is what CI runs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
"$here/scripts/setup.sh"
"$here/scripts/build.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}"
# 10 s per fuzz harness here (a regression run from the seeds; scripts/sanitize.sh alone: 30, longer
# campaigns in docs/operations.md): keeps CI within its time on 2 cores.
export LMTOPO_FUZZ_SECONDS="${LMTOPO_FUZZ_SECONDS:-10}"
cd build
ctest --output-on-failure -j "${LMTOPO_TEST_JOBS:-2}" "$@"
