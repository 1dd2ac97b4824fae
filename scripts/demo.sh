#!/usr/bin/env bash
# The demo study end to end on local MPI ranks (jobs/demo.yaml). Installs what is missing, builds,
# runs, and prints where the report is: prepare (multilingual gettext corpus, parallel HDF5), train a
# tiny GPT-NeoX-layout model on it with checkpoints over training, extract the last-token states of
# every parallel sentence at each checkpoint, zigzag persistence across layers per checkpoint, and a
# report (cross-lingual alignment and topology over training). Also the zigzag engine on paper 1's
# released barcodes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
"$here/scripts/setup.sh"
"$here/scripts/build.sh" >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}"
ranks="${LMTOPO_DEMO_RANKS:-2}"
lmtopo="$here/build/lmtopo"
out="$here/demo-out"

echo "== plan"
"$lmtopo" plan jobs/demo.yaml --ranks "$ranks"
echo "== run the study on $ranks ranks (prepare, train; extract, zigzag, sweeps and key neurons at every checkpoint; pruning; aggregate)"
mpirun --oversubscribe -n "$ranks" "$lmtopo" run jobs/demo.yaml
"$lmtopo" validate "$out/corpus.h5"
"$lmtopo" inspect "$out/corpus.h5" | sed -n '1,12p'
"$here/.venv/bin/python" "$here/postprocess/report.py" "$out" >/dev/null
"$lmtopo" report jobs/demo.yaml

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
find "$out" -type f -not -path '*/manifest/*' | sort | sed 's/^/  /'
echo
cat "$out/report.md"
echo "report: $out/report.md; figures: $out/report/index.html"
