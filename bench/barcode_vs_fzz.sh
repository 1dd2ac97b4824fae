#!/usr/bin/env bash
# `lmtopo barcode` against FastZigzag (fzz, Dey & Hou's reference implementation) on one k-NN
# intersection zigzag: L layers of N drifting random points in dimension 64 (layer l+1 = layer l +
# DRIFT * Gaussian noise), k = 10, flag complexes to dimension 2, written by `lmtopo zigzag
# --fzz-output`. Every row runs the whole command (start-up, parse, cone matrix, reduction, write) in
# its own process, REPS times interleaved; the table has the medians, peak RSS from GNU time and the
# ratio to fzz's time. Every output's bars are compared with fzz's (sorted lines).
#
# fzz is under an academic licence: it is never part of this repository nor fetched by it. Build it
# yourself (its sources and PHAT's headers, `cmake` + `make`) and point FZZ at the binary. Without
# FZZ the rows are compared with the (dualized) twist reducer instead.
#
# Usage: FZZ=/path/to/fzz bench/barcode_vs_fzz.sh [L] [N] [DRIFT] [REPS]   (REPS = 0: the input only)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
L="${1:-12}"; N="${2:-20000}"; DRIFT="${3:-0.1}"; REPS="${4:-3}"
dir="$here/build/bench-fzz-$L-$N-$DRIFT"; mkdir -p "$dir"
lmtopo="$here/build/lmtopo"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}" OMPI_MCA_orte_tmpdir_base="$(mktemp -d)"
if [[ ! -f "$dir/in.fzz" ]]; then
  "$here/.venv/bin/python" - "$dir/act.h5" "$L" "$N" "$DRIFT" <<'PY'
import sys, h5py, numpy as np
path, L, N, drift = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
g = np.random.default_rng(0)
x = [g.normal(size=(N, 64))]
for _ in range(L - 1):
    x.append(x[-1] + drift * g.normal(size=(N, 64)))
with h5py.File(path, "w") as f:
    f.attrs.update({"lmtopo_schema": "activations/1", "lmtopo_version": "bench", "git_sha": "bench",
                    "git_dirty": 0, "config_json": "{}", "created_by": "{}"})
    f.create_dataset("activations/h", data=np.stack(x).astype(np.float32))
PY
  "$lmtopo" zigzag --activations "$dir/act.h5" --hook h -o "$dir/z.h5" -k 10 --max-dim 2 \
    --fzz-output "$dir/in.fzz" --reducer twist 2>/dev/null | tail -1
fi
echo "input: L=$L N=$N drift=$DRIFT: $(head -1 "$dir/in.fzz") operations; $REPS reps, medians"
(( REPS > 0 )) || exit 0  # REPS = 0: write the input only (bench/pivot_chunks.sh)

# twist: the serial reducer, dualized by --dualize auto; auto: the default (--reducer auto: on one
# process the distributed path from 500,000 operations on, twist below).
rows=("fzz" "twist" "auto" "twist-primal" "distributed-1" "distributed-2")
command_of() {  # row name -> command line
  case "$1" in
    fzz) echo "$FZZ $dir/in.fzz" ;;
    twist) echo "$lmtopo barcode $dir/in.fzz -o $dir/out-$1.bars --reducer twist" ;;
    auto) echo "$lmtopo barcode $dir/in.fzz -o $dir/out-$1.bars" ;;
    twist-primal) echo "$lmtopo barcode $dir/in.fzz -o $dir/out-$1.bars --reducer twist --dualize false" ;;
    distributed-1) echo "mpirun -n 1 $lmtopo barcode $dir/in.fzz -o $dir/out-$1.bars --reducer distributed --benchmark" ;;
    distributed-2) echo "mpirun -n 2 $lmtopo barcode $dir/in.fzz -o $dir/out-$1.bars --reducer distributed --benchmark" ;;
  esac
}
[[ -n "${FZZ:-}" ]] || rows=("${rows[@]:1}")
for ((rep = 0; rep < REPS; ++rep)); do
  for row in "${rows[@]}"; do
    # GNU time's RSS is the process's (mpirun's for the MPI rows); the ranks' own peaks come from
    # --benchmark's table (largest rank, MiB).
    # In $dir: fzz writes <input stem>_fzz_pers into the working directory.
    (cd "$dir" && /usr/bin/time -f "%e %M" -o "$dir/time-$row-$rep" $(command_of "$row") > "$dir/log-$row-$rep" 2>&1)
    awk '$1 ~ /^[0-9]+$/ && NF == 12 { if ($7 > m) m = $7 } END { print m + 0 }' "$dir/log-$row-$rep" > "$dir/rankrss-$row-$rep"
  done
done
[[ -n "${FZZ:-}" ]] && cp "$dir/in_fzz_pers" "$dir/out-fzz.bars"  # fzz writes <input stem>_fzz_pers
"$here/.venv/bin/python" - "$dir" "$REPS" "${rows[@]}" <<'PY'
import statistics, sys
d, reps, rows = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def med(row, what):
    vals = []
    for r in range(reps):
        sec, kib = open(f"{d}/time-{row}-{r}").read().split()[-2:]
        rank = float(open(f"{d}/rankrss-{row}-{r}").read())
        vals.append({"s": float(sec), "mib": int(kib) / 1024, "rank": rank}[what])
    return statistics.median(vals)
base = med(rows[0], "s")
bars = {row: sorted(open(f"{d}/out-{row}.bars").read().split("\n")) for row in rows}
print(f"| {'command':<16} | seconds | vs {rows[0]} | peak RSS MiB | largest rank MiB | bars |")
print("|---|---|---|---|---|---|")
for row in rows:
    same = "same" if bars[row] == bars[rows[0]] else "DIFFER"
    rank = med(row, "rank")
    print(f"| {row:<16} | {med(row, 's'):7.2f} | {med(row, 's') / base:5.2f} | {med(row, 'mib'):8.1f} | "
          f"{rank if rank else '':>8} | {same} |")
PY
/usr/bin/time -f "start-up: lmtopo barcode --help: %e s, %M KiB peak RSS" "$lmtopo" barcode --help > /dev/null
