#!/usr/bin/env bash
# Strong scaling of `lmtopo barcode --reducer distributed` on one large k-NN intersection zigzag (the
# input of bench/barcode_vs_fzz.sh: L layers of N drifting points in dimension 64, k = 10, flag
# complexes to dimension 2), at each rank count of RANKS (past 2 it oversubscribes a 2-core machine),
# against the serial twist reducer (dualized) in the same run. Per run: the whole command's seconds,
# the reduction's (slowest rank, --benchmark, all dimensions), every rank's peak RSS (--benchmark) and
# the whole command's; every output's bars are compared with the twist reducer's. One rep per row
# (the inputs are large). Each rank reads its own lines of the file and builds its own cone columns
# (topology/cone_distributed.hpp); the phase columns come from --benchmark's phase lines.
# With SPECULATE=K (a run length), each rank count above 1 also runs with --speculate-runs K (rows
# speculative-P); with ROWSPLIT=1, with --row-split (rows rowsplit-P).
# Usage: [SPECULATE=K] [ROWSPLIT=1] bench/barcode_scaling.sh [L] [N] [DRIFT] [RANKS...]   (96 20000 0.1 1 2 4: about 10^7 operations)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
L="${1:-72}"; N="${2:-20000}"; DRIFT="${3:-0.1}"
shift $(( $# < 3 ? $# : 3 ))
ranks=("$@"); [[ ${#ranks[@]} -gt 0 ]] || ranks=(1 2 4)
"$here/bench/barcode_vs_fzz.sh" "$L" "$N" "$DRIFT" 0
dir="$here/build/bench-fzz-$L-$N-$DRIFT"
lmtopo="$here/build/lmtopo"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}" OMPI_MCA_orte_tmpdir_base="$(mktemp -d)"
rows=(twist)
SPECULATE="${SPECULATE:-0}"; ROWSPLIT="${ROWSPLIT:-0}"
for p in "${ranks[@]}"; do
  rows+=("distributed-$p")
  if (( SPECULATE > 0 && p > 1 )); then rows+=("speculative-$p"); fi
  if (( ROWSPLIT > 0 && p > 1 )); then rows+=("rowsplit-$p"); fi
done
for row in "${rows[@]}"; do
  case "$row" in
    twist) cmd=("$lmtopo" barcode "$dir/in.fzz" -o "$dir/sc-$row.bars") ;;
    distributed-*) cmd=(mpirun --oversubscribe -n "${row#distributed-}" "$lmtopo" barcode "$dir/in.fzz"
                        -o "$dir/sc-$row.bars" --reducer distributed --benchmark) ;;
    speculative-*) cmd=(mpirun --oversubscribe -n "${row#speculative-}" "$lmtopo" barcode "$dir/in.fzz"
                        -o "$dir/sc-$row.bars" --reducer distributed --speculate-runs "$SPECULATE" --benchmark) ;;
    rowsplit-*) cmd=(mpirun --oversubscribe -n "${row#rowsplit-}" "$lmtopo" barcode "$dir/in.fzz"
                     -o "$dir/sc-$row.bars" --reducer distributed --row-split --benchmark) ;;
  esac
  /usr/bin/time -f "%e %M" -o "$dir/sc-time-$row" "${cmd[@]}" > "$dir/sc-log-$row" 2>&1
  echo "$row: $(cat "$dir/sc-time-$row") (seconds, KiB)"
done
"$here/.venv/bin/python" - "$dir" "${rows[@]}" <<'PY'
import sys
d, rows = sys.argv[1], sys.argv[2:]
def ranks_of(row):
    """Per rank: reduction seconds (all dimensions), peak RSS MiB (largest step)."""
    out = {}
    for line in open(f"{d}/sc-log-{row}"):
        f = line.split()
        if len(f) == 11 and f[0].isdigit():
            r = out.setdefault(int(f[0]), [0.0, 0.0])
            r[0] += float(f[3]); r[1] = max(r[1], float(f[5]))
    return out
base_bars = sorted(open(f"{d}/sc-twist.bars").read().split("\n"))
ops = open(f"{d}/in.fzz").readline().strip()
print(f"input: {ops} operations, {len(base_bars) - 1} bars")
def phases_of(row):
    """Per phase: (slowest rank's seconds, peak RSS MiB per rank when it ended)."""
    out = {}
    for line in open(f"{d}/sc-log-{row}"):
        if line.startswith("phase "):
            head, rss = line[6:].split(" s   peak RSS MiB ")
            name, sec = head.rsplit(None, 1)
            out[name.strip()] = (float(sec), rss.strip())
    return out
print("| command | whole s | vs twist | read s | cone matrix s | reduction + read-out s | reduction s (slowest rank) | peak RSS MiB per rank | whole-command RSS MiB | bars |")
print("|---|---|---|---|---|---|---|---|---|---|")
t0 = float(open(f"{d}/sc-time-twist").read().split()[0])
for row in rows:
    sec, kib = open(f"{d}/sc-time-{row}").read().split()[-2:]
    per = ranks_of(row) if row != "twist" else {}
    red = max((v[0] for v in per.values()), default=float("nan"))
    rss = " / ".join(f"{per[k][1]:,.0f}" for k in sorted(per)) or "—"
    same = "same" if sorted(open(f"{d}/sc-{row}.bars").read().split("\n")) == base_bars else "DIFFER"
    ph = phases_of(row) if row != "twist" else {}
    cols = " | ".join(f"{ph[k][0]:.1f}" if k in ph else "—" for k in ("read own lines", "cone matrix (own columns)", "reduction + read-out"))
    print(f"| {row} | {float(sec):.1f} | {float(sec) / t0:.2f} | {cols} | {red:.1f} | {rss} | {int(kib) / 1024:,.0f} | {same} |")
PY
