#!/usr/bin/env bash
# The whole zigzag work item (read, exact k-NN, flag complexes, intersection zigzag, cone matrix,
# reduction, read-out, summaries) on L layers of N drifting random points in dimension D, with the
# per-phase times of `lmtopo zigzag --benchmark` (slowest rank). Paper 1's size: 33 x 10,000 x 4,096.
# Usage: bench/zigzag_phases.sh [L] [N] [D] [k] [max_dim] [ranks]   (the input file is L*N*D*4 bytes)
# ZIGZAG_ARGS adds options to `lmtopo zigzag` (e.g. "--knn-precision float64" for the older k-NN).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
L="${1:-33}"; N="${2:-10000}"; D="${3:-4096}"; K="${4:-10}"; M="${5:-2}"; P="${6:-2}"
dir="$here/build/bench-big"; mkdir -p "$dir"
act="$dir/act-$L-$N-$D.h5"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}"
if [[ ! -f "$act" ]]; then
  "$here/.venv/bin/python" - "$act" "$L" "$N" "$D" <<'PY'
import sys, h5py, numpy as np
path, L, N, D = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
g = np.random.default_rng(0)
with h5py.File(path + ".tmp", "w") as f:
    f.attrs.update({"lmtopo_schema": "activations/1", "lmtopo_version": "bench", "git_sha": "bench", "git_dirty": 0,
                    "config_json": "{}", "created_by": "{}"})
    ds = f.create_dataset("activations/h", shape=(L, N, D), dtype=np.float32)
    ds.attrs["points"] = [f"layers.{i}" for i in range(L)]
    x = g.standard_normal((N, D), dtype=np.float32)
    for l in range(L):
        ds[l] = x
        x += np.float32(0.3) * g.standard_normal((N, D), dtype=np.float32)
    f.create_dataset("prompts/id", data=[f"p{i}" for i in range(N)])
import os; os.replace(path + ".tmp", path)
PY
fi
echo "L=$L N=$N D=$D k=$K max_dim=$M ranks=$P"
t0=$(date +%s.%N)
# mpirun binds a lone rank to one core; its BLAS threads (one per core) need them all.
bind=(); (( P == 1 )) && bind=(--bind-to none)
mpirun --oversubscribe "${bind[@]}" -n "$P" "$here/build/lmtopo" zigzag --activations "$act" --hook h -o "$dir/z-$L-$N-$D.h5" \
  -k "$K" --max-dim "$M" --benchmark ${ZIGZAG_ARGS:-} | grep -E "^zigzag"
t1=$(date +%s.%N)
python3 -c "print(f'wall {$t1-$t0:.1f} s')"
