#!/usr/bin/env bash
# What `lmtopo sweep --bootstrap B` costs: a parallel set of LANGS languages x G sentences (width D,
# POINTS points, like the demo's corpus) swept without intervals and with B draws, per metric family,
# in the same run; the ratio column is t(B) / t(0). The neighbour metrics, LRDS/SADS and TwoNN reuse
# per-prompt quantities of the full set (cheap); CKA is recomputed on every draw (about B times).
# Usage: bench/sweep_bootstrap.sh [B] [G] [LANGS] [D] [POINTS] [RANKS]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
B="${1:-100}"; G="${2:-200}"; LANGS="${3:-8}"; D="${4:-576}"; POINTS="${5:-8}"; RANKS="${6:-2}"
dir="$here/build/bench-bootstrap"; mkdir -p "$dir"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}" OMPI_MCA_orte_tmpdir_base="$(mktemp -d)"
act="$dir/act-$G-$LANGS-$D-$POINTS.h5"
"$here/.venv/bin/python" - "$act" "$G" "$LANGS" "$D" "$POINTS" <<'PY'
import sys, os, h5py, numpy as np
path, G, L, D, P = sys.argv[1], *map(int, sys.argv[2:6])
if not os.path.exists(path):
    g = np.random.default_rng(0)
    meaning = g.normal(size=(G, D))
    rows, langs, groups = [], [], []
    for l in range(L):
        shift = g.normal(size=D)
        for s in range(G):
            rows.append(meaning[s] + 0.8 * shift + g.normal(size=D))
            langs.append(f"l{l}")
            groups.append(s)
    x = [np.array(rows)]
    for _ in range(P - 1):
        x.append(np.tanh(x[-1] @ g.normal(size=(D, D)) / np.sqrt(D)) + 0.3 * g.normal(size=x[-1].shape))
    with h5py.File(path, "w") as f:
        f.attrs.update({"lmtopo_schema": "activations/1", "lmtopo_version": "bench", "git_sha": "bench", "git_dirty": 0,
                        "config_json": "{}", "created_by": "{}"})
        ds = f.create_dataset("activations/h", data=np.stack(x).astype(np.float32))
        ds.attrs["points"] = [f"h.{p}" for p in range(P)]
        f.create_dataset("prompts/id", data=[f"p{i}" for i in range(len(rows))])
        f.create_dataset("prompts/lang", data=langs)
        f.create_dataset("prompts/group", data=np.array(groups, dtype=np.int64))
PY
run() {  # pairs, metrics (comma-separated), draws -> seconds
  local t0 t1
  t0=$(date +%s.%N)
  mpirun --oversubscribe -n "$RANKS" "$here/build/lmtopo" sweep --activations "$act" --hook h --pairs "$1" --metric "$2" \
    --no-null --bootstrap "$3" -o "$dir/out.h5" > /dev/null
  t1=$(date +%s.%N)
  python3 -c "print(f'{$t1 - $t0:.2f}')"
}
echo "G=$G sentences x $LANGS languages (n=$((G * LANGS)) prompts), D=$D, $POINTS points, $RANKS ranks, B=$B"
printf '| pairs | metrics | s without | s with B=%s | ratio |\n|---|---|---|---|---|\n' "$B"
for spec in "language_language sads,lrds" "language_language retrieval,mutual_knn" "layer_layer twonn,mutual_knn" \
            "layer_layer cosine,angular_distance" "layer_layer cka_linear_unbiased"; do
  set -- $spec
  t0=$(run "$1" "$2" 0); tb=$(run "$1" "$2" "$B")
  python3 -c "print(f'| $1 | $2 | $t0 | $tb | {$tb / $t0:.1f}x |')"
done
