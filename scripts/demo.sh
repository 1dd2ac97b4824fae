#!/usr/bin/env bash
# The demo study end to end on local MPI ranks (jobs/demo.yaml). Installs what is missing, builds,
# runs, and prints where the outputs are. Today's stages: prepare (checkpoint manifest + the
# multilingual gettext corpus, written collectively by 2 ranks into parallel HDF5), plus the zigzag
# engine on paper 1's released barcodes and on a filtration file with the distributed reducer.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
"$here/scripts/setup.sh"
"$here/scripts/build.sh" >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ranks="${LMTOPO_DEMO_RANKS:-2}"
lmtopo="$here/build/lmtopo"
out="$here/demo-out"

echo "== plan"
"$lmtopo" plan jobs/demo.yaml --ranks "$ranks"
echo "== prepare on $ranks ranks"
mpirun --oversubscribe -n "$ranks" "$lmtopo" prepare jobs/demo.yaml
"$lmtopo" validate "$out/corpus.h5"
"$lmtopo" inspect "$out/corpus.h5" | sed -n '1,40p'

echo "== zigzag barcode of a small filtration, distributed reducer on $ranks ranks"
mkdir -p "$out/zigzag"
printf '9\ni 0\ni 1\ni 2\ni 0 1\ni 0 2\ni 1 2\nd 0 1\ni 0 1\nd 1 2\n' > "$out/zigzag/example.fzz"
mpirun --oversubscribe -n "$ranks" "$lmtopo" barcode --format fzz "$out/zigzag/example.fzz" \
  -o "$out/zigzag/example.bars" --reducer distributed --benchmark
cat "$out/zigzag/example.bars"

shared="$here/../shared/data/paper1-pile-barcodes"
if [[ -d "$shared" ]]; then
  echo "== layer summaries of paper 1's released Pythia 6.9B barcode (H1, k = 5)"
  "$lmtopo" summarize "$shared/pythia_pile_knn_5_dim_4.csv" --dim 1 | tee "$out/zigzag/pythia_summary.txt" | tail -3
fi

echo
echo "demo outputs in $out:"
find "$out" -type f | sort | sed 's/^/  /'
