#!/usr/bin/env bash
# TopoLM at demo scale (jobs/topolm.yaml): the control (alpha = 0) and a spatially trained model
# (alpha = 2.5), same seed, data and steps, on R ranks; then Moran's I of the en-de t-map per sheet and
# block side by side at the last checkpoint, and the cost of the spatial loss per training step:
# plain `lmtopo train` (no spatial loss), the control (SL measured, not trained on) and alpha = 2.5,
# each STEPS steps on the study's corpus, the median seconds per step it prints and the ratios to plain.
# Usage: bench/topolm_spatial.sh [R] [STEPS]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
R="${1:-2}"; STEPS="${2:-64}"
dir="$here/build/bench-topolm"; mkdir -p "$dir"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}"
sed "s|^output: .*|output: $dir/out|" "$here/jobs/topolm.yaml" > "$dir/topolm.yaml"
mpirun --oversubscribe -n "$R" "$here/build/lmtopo" run "$dir/topolm.yaml" | grep -E "^run:|error" || true

opts=(--corpus "$dir/out/corpus.h5" --steps "$STEPS" --batch 16 --layers 4 --hidden 128 --heads 4 --intermediate 512
      --vocab-size 1024 --seq-len 64 --lr 0.003 --warmup 20 --seed 1)
mpirun --oversubscribe -n "$R" "$here/build/lmtopo" train "${opts[@]}" -o "$dir/cost-plain" > "$dir/cost-plain.txt"
mpirun --oversubscribe -n "$R" "$here/build/lmtopo" train "${opts[@]}" -o "$dir/cost-control" --spatial-alpha 0 --spatial-seed 1 > "$dir/cost-control.txt"
mpirun --oversubscribe -n "$R" "$here/build/lmtopo" train "${opts[@]}" -o "$dir/cost-topo" --spatial-alpha 2.5 --spatial-seed 1 > "$dir/cost-topo.txt"

"$here/.venv/bin/python" - "$dir" "$R" <<'PY'
import csv, sys, h5py, numpy as np
d, ranks = sys.argv[1], sys.argv[2]
last = max((int(p.split("step")[1].split(".")[0]) for p in __import__("glob").glob(f"{d}/out/neurons/topo/step*.spatial.moran.csv")))
rows = {m: list(csv.DictReader(open(f"{d}/out/neurons/{m}/step{last}.spatial.moran.csv"))) for m in ("control", "topo")}
print(f"Moran's I of the en-de t-map at step {last} (queen, row-standardised; {ranks} ranks)")
print(f"{'sheet':12} {'block':>5} {'units':>5} {'control I':>10} {'alpha=2.5 I':>12} {'clusters c/t':>13}")
for c, t in zip(rows["control"], rows["topo"]):
    print(f"{c['sheet']:12} {c['block']:>5} {c['units']:>5} {float(c['moran_i']):10.3f} {float(t['moran_i']):12.3f} {c['clusters']:>6}/{t['clusters']:<6}")
for m in ("control", "topo"):
    i = np.array([float(r["moran_i"]) for r in rows[m]])
    with h5py.File(f"{d}/out/checkpoints/{m}/train_log.h5") as f:
        sl, held = f["train/spatial_loss"][:], f["heldout/loss"][:]
    print(f"{m:8} mean I {i.mean():.3f} (min {i.min():.3f}, max {i.max():.3f}); SL first 10 steps {sl[:10].mean():.3f}, "
          f"last 10 {sl[-10:].mean():.3f}; held-out CE at the last checkpoint {held[-1]:.3f}")
sec = {}
for m in ("plain", "control", "topo"):  # `lmtopo train` prints the median seconds per step
    sec[m] = float(__import__("re").search(r"median ([0-9.e+-]+) s/step", open(f"{d}/cost-{m}.txt").read()).group(1))
print("seconds per step (median): " + ", ".join(f"{m} {s:.4f}" for m, s in sec.items()))
print(f"cost ratio to plain: control (SL measured) {sec['control'] / sec['plain']:.2f}x, alpha = 2.5 {sec['topo'] / sec['plain']:.2f}x")
PY
