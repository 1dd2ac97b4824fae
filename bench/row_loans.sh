#!/usr/bin/env bash
# Row loans (docs/methods.md, "Row loans") on one k-NN intersection zigzag (the input of
# bench/barcode_vs_fzz.sh: L layers of N drifting points, k = 10, flag complexes to dimension 2):
# the whole `lmtopo barcode --reducer distributed` command at 1 rank (the baseline) and at RANKS ranks
# with row loans (the default) and without (--no-row-loans), REPS reps interleaved, medians; for each
# the hybrid's bars-1 step (the one taken upper-first on intervals, where loans happen) from
# --benchmark: its slowest rank's seconds, each rank's idle seconds, loans taken. With BASE pointing at
# another build's lmtopo (an earlier commit's, say) its 1-rank and RANKS-rank rows run too, in the
# same interleaving. Every output's bars are compared with the 1-rank run's (sorted lines).
#
# Usage: [BASE=/path/to/lmtopo] bench/row_loans.sh [L] [N] [DRIFT] [REPS] [RANKS]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
L="${1:-12}"; N="${2:-20000}"; DRIFT="${3:-0.1}"; REPS="${4:-5}"; RANKS="${5:-2}"
"$here/bench/barcode_vs_fzz.sh" "$L" "$N" "$DRIFT" 0
dir="$here/build/bench-fzz-$L-$N-$DRIFT"
lmtopo="$here/build/lmtopo"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}" OMPI_MCA_orte_tmpdir_base="$(mktemp -d)"
over=(); (( RANKS > $(nproc) )) && over=(--oversubscribe)
rows=("1-rank" "$RANKS-loans" "$RANKS-no-loans")
[[ -n "${BASE:-}" ]] && rows+=("base-1-rank" "base-$RANKS")
for ((rep = 0; rep < REPS; ++rep)); do
  for row in "${rows[@]}"; do
    bin="$lmtopo"; [[ "$row" == base-* ]] && bin="$BASE"
    n="$RANKS"; [[ "$row" == *1-rank ]] && n=1
    extra=(); [[ "$row" == *no-loans ]] && extra=(--no-row-loans)
    /usr/bin/time -f "%e %M" -o "$dir/rl-time-$row-$rep" mpirun "${over[@]}" -n "$n" "$bin" barcode "$dir/in.fzz" \
      -o "$dir/rl-$row.bars" --reducer distributed --benchmark "${extra[@]}" > "$dir/rl-log-$row-$rep" 2>&1
  done
done
"$here/.venv/bin/python" - "$dir" "$REPS" "${rows[@]}" <<'PY'
import statistics, sys
d, reps, rows = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
med = statistics.median
def whole(row):
    return med(float(open(f"{d}/rl-time-{row}-{r}").read().split()[0]) for r in range(reps))
def bars1(row, r):
    """The bars-1 step of the anti-transpose (dim >= 1, bars 1; the primal top step has bars 2):
    slowest rank's seconds, idle seconds by rank, loans taken."""
    secs, idle, loans = 0.0, {}, 0
    for line in open(f"{d}/rl-log-{row}-{r}"):
        f = line.split()
        # A row of --benchmark's per-rank table (14 fields before loans were counted: BASE).
        if len(f) in (14, 16) and f[0].isdigit() and f[2] == "1":
            secs = max(secs, float(f[4])); idle[int(f[0])] = float(f[5]); loans += int(f[14]) if len(f) == 16 else 0
    return secs, idle, loans
base = whole("1-rank")
ref = sorted(open(f"{d}/rl-1-rank.bars").read().split("\n"))
print(f"input: {open(f'{d}/in.fzz').readline().strip()} operations; {reps} reps interleaved, medians")
print("| command | whole s | 1 rank / this | bars-1 step s | idle s by rank | loans taken | bars |")
print("|---|---|---|---|---|---|---|")
for row in rows:
    same = "same" if sorted(open(f"{d}/rl-{row}.bars").read().split("\n")) == ref else "DIFFER"
    b = [bars1(row, r) for r in range(reps)]
    idle = " / ".join(f"{med(x[1][k] for x in b):.2f}" for k in sorted(b[0][1]))
    print(f"| {row} | {whole(row):.2f} | {base / whole(row):.2f} | {med(x[0] for x in b):.2f} | {idle} | "
          f"{med(x[2] for x in b):.0f} | {same} |")
PY
