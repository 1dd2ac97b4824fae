#!/usr/bin/env bash
# Strong scaling of the distributed reducer on one large k-NN intersection zigzag (L layers of N
# drifting random points in dimension 64): the same `lmtopo zigzag` at 1, 2 and 4 ranks (4
# oversubscribes a 2-core machine), with the serial twist reducer on the anti-transpose as the named
# baseline, all in this one run. Reports, per run, the reduction phase's seconds (slowest rank, from
# --benchmark), the speed-up over the baseline, the efficiency t(1)/(P t(P)) against the distributed
# reducer at 1 rank, the bytes moved between ranks and the largest peak RSS of a rank. Every run's
# bars are compared with the baseline's.
# Usage: bench/zigzag_scaling.sh [L] [N] [k] [max_dim] [rank counts...]   (33 10000 10 2 1 2 4: 3.6 M operations)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
L="${1:-33}"; N="${2:-10000}"; K="${3:-10}"; M="${4:-2}"
shift $(( $# < 4 ? $# : 4 ))
ranks=("$@"); [[ ${#ranks[@]} -gt 0 ]] || ranks=(1 2 4)
dir="$here/build/bench-scaling"; mkdir -p "$dir"
act="$dir/act-$L-$N.h5"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}"
if [[ ! -f "$act" ]]; then
  "$here/.venv/bin/python" - "$act" "$L" "$N" <<'PY'
import os, sys, h5py, numpy as np
path, L, N = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
g = np.random.default_rng(0)
x = g.standard_normal((N, 64), dtype=np.float32)
with h5py.File(path + ".tmp", "w") as f:
    f.attrs.update({"lmtopo_schema": "activations/1", "lmtopo_version": "bench", "git_sha": "bench",
                    "git_dirty": 0, "config_json": "{}", "created_by": "{}"})
    ds = f.create_dataset("activations/h", shape=(L, N, 64), dtype=np.float32)
    for l in range(L):
        ds[l] = x
        x += np.float32(0.3) * g.standard_normal((N, 64), dtype=np.float32)
os.replace(path + ".tmp", path)
PY
fi
run() {  # label ranks reducer
  mpirun --oversubscribe -n "$2" "$here/build/lmtopo" zigzag --activations "$act" --hook h -o "$dir/z-$1.h5" \
    -k "$K" --max-dim "$M" --reducer "$3" --benchmark > "$dir/$1.log"
}
run baseline 1 twist
for p in "${ranks[@]}"; do run "distributed-$p" "$p" distributed; done
"$here/.venv/bin/python" - "$dir" "$L" "$N" "$K" "$M" "${ranks[@]}" <<'PY'
import re, sys, h5py, numpy as np
d, L, N, K, M, ranks = sys.argv[1], *sys.argv[2:6], [int(p) for p in sys.argv[6:]]
def parse(label):
    text = open(f"{d}/{label}.log").read()
    red = float(re.search(r"reduction: ([0-9.]+) s", text).group(1))
    ops = re.search(r"(\d+) operations, (\d+) bars", text)
    rows = [l.split() for l in text.splitlines() if re.match(r"^\s*\d+\s+\d+\s+\d+\s+[0-9.]+\s", l)]
    sent = sum(int(float(r[6])) for r in rows)
    rss = max([float(r[5]) for r in rows], default=float("nan"))
    return red, int(ops.group(1)), int(ops.group(2)), sent, rss
base = parse("baseline")
bars = h5py.File(f"{d}/z-baseline.h5")["bars/position"][:]
print(f"L={L} N={N} k={K} max_dim={M}: {base[1]:,} operations, {base[2]:,} bars")
print(f"{'run':<16}{'ranks':>6}{'reduction s':>13}{'vs twist':>10}{'efficiency':>12}{'MiB moved':>11}{'peak RSS MiB':>14}")
print(f"{'twist (dual)':<16}{1:>6}{base[0]:>13.2f}{1.0:>10.2f}{'':>12}{0:>11.1f}{'':>14}")
t1 = None
for p in ranks:
    red, _, _, sent, rss = parse(f"distributed-{p}")
    t1 = red if p == 1 else t1
    eff = f"{t1 / (p * red):.2f}" if t1 else ""
    same = np.array_equal(h5py.File(f"{d}/z-distributed-{p}.h5")["bars/position"][:], bars)
    print(f"{'distributed':<16}{p:>6}{red:>13.2f}{base[0] / red:>10.2f}{eff:>12}{sent / 2**20:>11.1f}{rss:>14.1f}"
          + ("" if same else "   BARS DIFFER"))
PY
