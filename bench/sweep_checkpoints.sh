#!/usr/bin/env bash
# A checkpoint x checkpoint CKA sweep of C representations of N x D (one point each, random drifting
# "checkpoints") at 1, 2 and 4 ranks (oversubscribed past the cores), with the phase breakdown of
# `lmtopo sweep --benchmark` and each rank's peak RSS (GNU time); efficiency = t(1) / (P t(P)).
# Further sweep options in SWEEP_ARGS (e.g. "--cka-method features --gram-precision float32"); RANKS
# lists the rank counts (default "1 2 4").
# Usage: [SWEEP_ARGS=...] [RANKS=...] bench/sweep_checkpoints.sh [C] [N] [D] [metric]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
C="${1:-64}"; N="${2:-2000}"; D="${3:-512}"; M="${4:-cka_linear_unbiased}"
dir="$here/build/bench-sweep-$C-$N-$D"; mkdir -p "$dir"  # the files depend on the sizes
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}"
"$here/.venv/bin/python" - "$dir" "$C" "$N" "$D" <<'PY'
import sys, os, h5py, numpy as np
d, C, N, D = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
g = np.random.default_rng(0)
x = g.normal(size=(N, D))
for c in range(C):
    path = os.path.join(d, f"c{c:03d}.h5")
    x = x + 0.05 * g.normal(size=(N, D))
    if os.path.exists(path):
        continue
    with h5py.File(path, "w") as f:
        f.attrs.update({"lmtopo_schema": "activations/1", "lmtopo_version": "bench", "git_sha": "bench", "git_dirty": 0,
                        "config_json": "{}", "created_by": "{}"})
        ds = f.create_dataset("activations/h", data=x[None].astype(np.float32))
        ds.attrs["points"] = ["h.0"]
        f.create_dataset("prompts/id", data=[f"p{i}" for i in range(N)])
        f.create_dataset("prompts/lang", data=["en"] * N)
        f.create_dataset("prompts/group", data=np.arange(N))
PY
files=()
for f in "$dir"/c*.h5; do files+=(--activations "$f"); done
echo "C=$C N=$N D=$D metric=$M (no nulls) ${SWEEP_ARGS:-}"
for P in ${RANKS:-1 2 4}; do
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  mpirun --oversubscribe -n "$P" /usr/bin/time -f "rank peak RSS %M KiB" "$here/build/lmtopo" sweep "${files[@]}" --hook h \
    --pairs checkpoint_checkpoint --metric "$M" --no-null --benchmark -o "$dir/out-$P.h5" ${SWEEP_ARGS:-} 2>&1 |
    sed "s/^/  P=$P /" | grep -v "wrote"
  t1=$(date +%s.%N)
  python3 -c "print(f'  P=$P wall {$t1-$t0:.2f} s')"
done
