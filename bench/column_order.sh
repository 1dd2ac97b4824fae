#!/usr/bin/env bash
# The distributed reducer's column order (--column-order) on one k-NN intersection zigzag (the input
# of bench/barcode_vs_fzz.sh: L layers of N drifting points in dimension 64, k = 10, flag complexes to
# dimension 2): every order in ORDERS at every rank count in RANKS, REPS reps interleaved, medians of
# the whole command's seconds; per dimension the reduction step's seconds (slowest rank) and the
# largest rank's peak RSS from --benchmark (of the median rep); per dimension the entries added (all
# ranks, millions), their range over the reps (the work an order costs, and how much the timing moves
# it). Every run's bars are compared with the first run's.
# Usage: ORDERS="natural received-first upper-first" RANKS="1 2" REPS=3 bench/column_order.sh L N DRIFT
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
L="${1:-12}"; N="${2:-20000}"; DRIFT="${3:-0.1}"
read -r -a orders <<< "${ORDERS:-natural received-first upper-first}"
read -r -a ranks <<< "${RANKS:-1 2}"
reps="${REPS:-3}"
"$here/bench/barcode_vs_fzz.sh" "$L" "$N" "$DRIFT" 0 > /dev/null
dir="$here/build/bench-fzz-$L-$N-$DRIFT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}" OMPI_MCA_orte_tmpdir_base="$(mktemp -d)"
for rep in $(seq 1 "$reps"); do
  for p in "${ranks[@]}"; do
    for order in "${orders[@]}"; do
      tag="co-$p-${order//,/+}-$rep"
      /usr/bin/time -f "%e" -o "$dir/$tag.time" mpirun --oversubscribe --bind-to none -n "$p" "$here/build/lmtopo" barcode \
        "$dir/in.fzz" -o "$dir/$tag.bars" --reducer distributed --column-order "$order" --benchmark > "$dir/$tag.log" 2>&1
    done
  done
done
"$here/.venv/bin/python" - "$dir" "$reps" "${ranks[*]}" "${orders[@]}" <<'PY'
import statistics, sys
d, reps, ranks, orders = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4:]
first = None
print(f"input: {open(f'{d}/in.fzz').readline().strip()} operations")
print("| ranks | column order | whole s (median) | reduction s per step, by the dimension of its bars, high to low (slowest rank) | entries M per step, all ranks (range over reps) | peak RSS MiB, largest rank | bars |")
print("|---|---|---|---|---|---|---|")
def entries(tag):  # {bar dimension: entries added, millions, all ranks}
    out = {}
    for line in open(f"{d}/{tag}.log"):
        f = line.split()
        if len(f) == 16 and f[0].isdigit():
            out[int(f[2])] = out.get(int(f[2]), 0.0) + float(f[13])
    return out
for p in ranks:
    for order in orders:
        tags = [f"co-{p}-{order.replace(',', '+')}-{r}" for r in range(1, reps + 1)]
        times = [float(open(f"{d}/{t}.time").read().split()[-1]) for t in tags]
        med = tags[sorted(range(reps), key=lambda i: times[i])[reps // 2]]
        steps, rss = {}, 0.0
        for line in open(f"{d}/{med}.log"):
            f = line.split()
            if len(f) == 16 and f[0].isdigit():  # a row of --benchmark's per-rank table
                steps[int(f[2])] = max(steps.get(int(f[2]), 0.0), float(f[4]))
                rss = max(rss, float(f[6]))
        bars = sorted(open(f"{d}/{med}.bars").read().split("\n"))
        first = first or bars
        per_dim = " / ".join(f"{steps[k]:.2f}" for k in sorted(steps, reverse=True))
        work = [entries(t) for t in tags]
        num = lambda x: f"{x:,.0f}" if x >= 100 else f"{x:.1f}"
        work_dim = " / ".join(f"{num(min(w[k] for w in work))}–{num(max(w[k] for w in work))}" for k in sorted(steps, reverse=True))
        print(f"| {p} | {order} | {statistics.median(times):.2f} | {per_dim} | {work_dim} | {rss:,.0f} | {'same' if bars == first else 'DIFFER'} |")
PY
