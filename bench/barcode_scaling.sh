#!/usr/bin/env bash
# Strong scaling of `lmtopo barcode --reducer distributed` on one large k-NN intersection zigzag (the
# input of bench/barcode_vs_fzz.sh: L layers of N drifting points in dimension 64, k = 10, flag
# complexes to dimension 2), at each rank count of RANKS (past 2 it oversubscribes a 2-core machine),
# against the serial twist reducer (dualized) in the same run. Per run: the whole command's seconds,
# the reduction's (slowest rank, --benchmark, all dimensions), every rank's peak RSS (--benchmark) and
# the whole command's; every output's bars are compared with the twist reducer's. One rep per row
# (the inputs are large). Each rank reads its own lines of the file and builds its own cone columns
# (topology/cone_distributed.hpp); the phase columns come from --benchmark's phase lines.
# With REPS=K (default 1), the rows run K times, interleaved (every row once, then again), and each
# column is the median over the reps, the whole command's seconds with their range: this machine's
# speed drifts by a third over an hour (docs/benchmarks.md), so only interleaved runs compare.
# With SPECULATE=K (a run length), each rank count above 1 also runs with --speculate-runs K (rows
# speculative-P); with ROWSPLIT=1, with --row-split (rows rowsplit-P); with DUALIZED=1, every rank
# count also runs with --dualize true (rows dualized-P: the anti-transpose for every dimension, the
# default before the hybrid one); with TOPRANKS=K, each rank count above 1 also runs with
# --top-ranks K (rows groups-P: the top dimension on K ranks while the others reduce the rest).
# Usage: [SPECULATE=K] [ROWSPLIT=1] [DUALIZED=1] [TOPRANKS=K] [REPS=K] bench/barcode_scaling.sh [L] [N] [DRIFT] [RANKS...]   (96 20000 0.1 1 2 4: about 10^7 operations)
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
SPECULATE="${SPECULATE:-0}"; ROWSPLIT="${ROWSPLIT:-0}"; DUALIZED="${DUALIZED:-0}"; TOPRANKS="${TOPRANKS:-0}"
for p in "${ranks[@]}"; do
  rows+=("distributed-$p")
  if (( DUALIZED > 0 )); then rows+=("dualized-$p"); fi
  if (( TOPRANKS > 0 && p > 1 )); then rows+=("groups-$p"); fi
  if (( SPECULATE > 0 && p > 1 )); then rows+=("speculative-$p"); fi
  if (( ROWSPLIT > 0 && p > 1 )); then rows+=("rowsplit-$p"); fi
done
REPS="${REPS:-1}"
for rep in $(seq 1 "$REPS"); do
for row in "${rows[@]}"; do
  case "$row" in
    twist) cmd=("$lmtopo" barcode "$dir/in.fzz" -o "$dir/sc-$row.bars" --reducer twist) ;;
    distributed-*) cmd=(mpirun --oversubscribe -n "${row#distributed-}" "$lmtopo" barcode "$dir/in.fzz"
                        -o "$dir/sc-$row.bars" --reducer distributed --benchmark) ;;
    dualized-*) cmd=(mpirun --oversubscribe -n "${row#dualized-}" "$lmtopo" barcode "$dir/in.fzz"
                     -o "$dir/sc-$row.bars" --reducer distributed --dualize true --benchmark) ;;
    groups-*) cmd=(mpirun --oversubscribe -n "${row#groups-}" "$lmtopo" barcode "$dir/in.fzz"
                   -o "$dir/sc-$row.bars" --reducer distributed --top-ranks "$TOPRANKS" --benchmark) ;;
    speculative-*) cmd=(mpirun --oversubscribe -n "${row#speculative-}" "$lmtopo" barcode "$dir/in.fzz"
                        -o "$dir/sc-$row.bars" --reducer distributed --speculate-runs "$SPECULATE" --benchmark) ;;
    rowsplit-*) cmd=(mpirun --oversubscribe -n "${row#rowsplit-}" "$lmtopo" barcode "$dir/in.fzz"
                     -o "$dir/sc-$row.bars" --reducer distributed --row-split --benchmark) ;;
  esac
  /usr/bin/time -f "%e %M" -o "$dir/sc-time-$row-$rep" "${cmd[@]}" > "$dir/sc-log-$row-$rep" 2>&1
  if [[ "$row" == twist ]] || cmp -s <(sort "$dir/sc-twist.bars") <(sort "$dir/sc-$row.bars"); then same=same; else same=DIFFER; fi
  echo "$same" > "$dir/sc-same-$row-$rep"
  echo "$row (rep $rep): $(cat "$dir/sc-time-$row-$rep") (seconds, KiB), bars $same"
done
done
"$here/.venv/bin/python" - "$dir" "$REPS" "${rows[@]}" <<'PY'
import statistics, sys
d, reps, rows = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
med = statistics.median
def ranks_of(row, rep):
    """Per rank: reduction seconds (all dimensions), peak RSS MiB (largest step)."""
    out = {}
    for line in open(f"{d}/sc-log-{row}-{rep}"):
        f = line.split()
        if len(f) == 16 and f[0].isdigit():  # a row of --benchmark's per-rank table
            r = out.setdefault(int(f[0]), [0.0, 0.0])
            r[0] += float(f[4]); r[1] = max(r[1], float(f[6]))
    return out
ops = open(f"{d}/in.fzz").readline().strip()
print(f"input: {ops} operations, {sum(1 for _ in open(f'{d}/sc-twist.bars'))} bars")
def phases_of(row, rep):
    """Per phase: (slowest rank's seconds, peak RSS MiB per rank when it ended)."""
    out = {}
    for line in open(f"{d}/sc-log-{row}-{rep}"):
        if line.startswith("phase "):
            head, rss = line[6:].split(" s   peak RSS MiB ")
            name, sec = head.rsplit(None, 1)
            out[name.strip()] = (float(sec), rss.strip())
    return out
print(f"{reps} rep(s) per row, interleaved; medians (whole command: median, min-max)")
print("| command | whole s | vs twist | read s | cone matrix s | reduction + read-out s | reduction s (slowest rank) | peak RSS MiB per rank | whole-command RSS MiB | bars |")
print("|---|---|---|---|---|---|---|---|---|---|")
def times(row):
    return [tuple(map(float, open(f"{d}/sc-time-{row}-{r}").read().split()[-2:])) for r in range(1, reps + 1)]
t0 = med(t for t, _ in times("twist"))
for row in rows:
    ts = times(row)
    sec, kib = med(t for t, _ in ts), max(k for _, k in ts)
    span = f" ({min(t for t, _ in ts):.2f}-{max(t for t, _ in ts):.2f})" if reps > 1 else ""
    per = [ranks_of(row, r) for r in range(1, reps + 1)] if row != "twist" else []
    red = med(max(v[0] for v in p.values()) for p in per) if per else float("nan")
    rss = " / ".join(f"{max(p[k][1] for p in per):,.0f}" for k in sorted(per[0])) if per else "—"
    same = "same" if all(open(f"{d}/sc-same-{row}-{r}").read().strip() == "same" for r in range(1, reps + 1)) else "DIFFER"
    ph = [phases_of(row, r) for r in range(1, reps + 1)] if row != "twist" else []
    names = ("read own lines", "cone matrix (own columns)", "reduction + read-out")
    cols = " | ".join(f"{med(p[k][0] for p in ph):.2f}" if ph and k in ph[0] else "—" for k in names)
    print(f"| {row} | {sec:.2f}{span} | {sec / t0:.2f} | {cols} | {red:.2f} | {rss} | {kib / 1024:,.0f} | {same} |")
PY
