#!/usr/bin/env bash
# The reducers on one k-NN intersection zigzag of random drifting point clouds (L layers x N points),
# each timed in the same run; ratios against the serial twist reducer on the boundary matrix itself
# (--dualize false, the baseline); every other row reduces the anti-transpose (the default).
# Usage: bench/zigzag_reducers.sh [L] [N] [k] [max_dim]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
L="${1:-12}"; N="${2:-1500}"; K="${3:-8}"; M="${4:-2}"
dir="$here/build/bench-tmp"; mkdir -p "$dir"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}"
"$here/.venv/bin/python" - "$dir/act.h5" "$L" "$N" <<'PY'
import sys, h5py, numpy as np
path, L, N = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
g = np.random.default_rng(0)
x = [g.normal(size=(N, 64))]
for _ in range(L - 1):
    x.append(x[-1] + 0.3 * g.normal(size=(N, 64)))
with h5py.File(path, "w") as f:
    f.attrs.update({"lmtopo_schema": "activations/1", "lmtopo_version": "bench", "git_sha": "bench",
                    "git_dirty": 0, "config_json": "{}", "created_by": "{}"})
    f.create_dataset("activations/h", data=np.stack(x).astype(np.float32))
PY
run() {  # label, ranks, reducer, dualize
  local t0 t1
  t0=$(date +%s.%N)
  mpirun --oversubscribe -n "$2" "$here/build/lmtopo" zigzag --activations "$dir/act.h5" --hook h -o "$dir/z-$1.h5" \
    -k "$K" --max-dim "$M" --reducer "$3" --dualize "${4:-true}" > "$dir/$1.log"
  t1=$(date +%s.%N)
  python3 -c "print(f'{$t1-$t0:.2f}')"
}
echo "L=$L N=$N k=$K max_dim=$M: $(grep operations "$dir/twist.log" 2>/dev/null || true)"
base=$(run twist 1 twist false); grep operations "$dir/twist.log"
printf "%-16s %8s %8s\n" reducer seconds ratio
printf "%-16s %8s %8s\n" "twist (primal)" "$base" 1.00
for cfg in "twist-dual 1 twist" "chunk 1 chunk" "distributed-1 1 distributed" "distributed-2 2 distributed" \
           "distributed-4 4 distributed" "dist-primal-2 2 distributed false"; do
  set -- $cfg
  s=$(run "$1" "$2" "$3" "${4:-true}")
  printf "%-16s %8s %8s\n" "$1" "$s" "$(python3 -c "print(f'{$base/$s:.2f}')")"
  cmp <("$here/.venv/bin/python" -c "import h5py;print(h5py.File('$dir/z-$1.h5')['bars/position'][:].tolist())") \
      <("$here/.venv/bin/python" -c "import h5py;print(h5py.File('$dir/z-twist.h5')['bars/position'][:].tolist())") \
      || echo "  bars differ from twist!"
done
