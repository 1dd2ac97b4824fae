#!/usr/bin/env bash
# The distributed reducer's pivot ownership (--pivot-chunk) on one k-NN intersection zigzag (the
# input of bench/barcode_vs_fzz.sh: L layers of N drifting points, k = 10, flag complexes to
# dimension 2): the whole `lmtopo barcode` command and its reduction phase per rank (--benchmark:
# busy and idle seconds, columns sent on, MiB moved) at 2 ranks for each CHUNK (0: one contiguous
# block per rank, the default), against the serial twist reducer and the distributed reducer at 1
# rank in the same run. REPS reps interleaved, medians; every output's bars are compared with the
# twist reducer's.
#
# Usage: bench/pivot_chunks.sh [L] [N] [DRIFT] [REPS] [CHUNK ...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
L="${1:-12}"; N="${2:-20000}"; DRIFT="${3:-0.1}"; REPS="${4:-3}"
shift $(( $# < 4 ? $# : 4 ))
if (( $# > 0 )); then chunks=("$@"); else chunks=(0 4096 32768); fi
"$here/bench/barcode_vs_fzz.sh" "$L" "$N" "$DRIFT" 0
dir="$here/build/bench-fzz-$L-$N-$DRIFT"
lmtopo="$here/build/lmtopo"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}" OMPI_MCA_orte_tmpdir_base="$(mktemp -d)"
rows=("twist" "distributed-1")
for c in "${chunks[@]}"; do rows+=("chunk-$c"); done
for ((rep = 0; rep < REPS; ++rep)); do
  for row in "${rows[@]}"; do
    case "$row" in
      twist) cmd=("$lmtopo" barcode "$dir/in.fzz" -o "$dir/pc-$row.bars" --reducer twist) ;;
      distributed-1) cmd=(mpirun -n 1 "$lmtopo" barcode "$dir/in.fzz" -o "$dir/pc-$row.bars" --reducer distributed --benchmark) ;;
      chunk-*) cmd=(mpirun -n 2 "$lmtopo" barcode "$dir/in.fzz" -o "$dir/pc-$row.bars" --reducer distributed --benchmark
                    --pivot-chunk "${row#chunk-}") ;;
    esac
    /usr/bin/time -f "%e" -o "$dir/pc-time-$row-$rep" "${cmd[@]}" > "$dir/pc-log-$row-$rep" 2>&1
  done
done
"$here/.venv/bin/python" - "$dir" "$REPS" "${rows[@]}" <<'PY'
import statistics, sys
d, reps, rows = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def whole(row):
    return statistics.median(float(open(f"{d}/pc-time-{row}-{r}").read().split()[-1]) for r in range(reps))
def phase(row):
    """Median over reps of the reduction (all dimensions) per rank: seconds, idle, columns sent, MiB sent."""
    per_rep = []
    for r in range(reps):
        ranks = {}
        for line in open(f"{d}/pc-log-{row}-{r}"):
            f = line.split()
            if len(f) == 16 and f[0].isdigit():  # a row of --benchmark's per-rank table
                t = ranks.setdefault(int(f[0]), [0.0, 0.0, 0, 0.0])
                t[0] += float(f[4]); t[1] += float(f[5]); t[3] += float(f[7]) / 2**20; t[2] += int(f[10])
        per_rep.append(ranks)
    return {k: [statistics.median(p[k][i] for p in per_rep) for i in range(4)] for k in per_rep[0]}
base = whole("distributed-1")
ref = sorted(open(f"{d}/pc-twist.bars").read().split("\n"))
print("| command | whole s | vs distributed-1 | reduction s (slowest rank) | idle s per rank | columns sent per rank | MiB sent | bars |")
print("|---|---|---|---|---|---|---|---|")
for row in rows:
    same = "same" if sorted(open(f"{d}/pc-{row}.bars").read().split("\n")) == ref else "DIFFER"
    p = phase(row) if row != "twist" else {}
    red = f"{max(v[0] for v in p.values()):.2f}" if p else ""
    idle = " / ".join(f"{p[k][1]:.2f}" for k in sorted(p)) if p else ""
    sent = " / ".join(f"{p[k][2]:,}" for k in sorted(p)) if p else ""
    mib = f"{sum(v[3] for v in p.values()):.0f}" if p else ""
    print(f"| {row} | {whole(row):.2f} | {whole(row) / base:.2f} | {red} | {idle} | {sent} | {mib} | {same} |")
PY
