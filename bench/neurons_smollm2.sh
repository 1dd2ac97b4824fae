#!/usr/bin/env bash
# The neurons work item on SmolLM2-135M (after ./scripts/smollm2.sh: the converted model and the corpus)
# at 1 rank x 2 threads and 2 ranks x 1 thread, per phase as `lmtopo neurons` reports them, then
# generation and evaluation throughput against transformers in the same run
# (bench/generate_eval_vs_transformers.py, greedy generation of NEW tokens and perplexity).
# - key_linguistic on all of the corpus's parallel sentences (25 % of each language held out), CONTROL
#   random-unit draws per ablation;
# - repetition on TEXTS generated texts of 10 + 200 tokens, CONTROL draws (batch TEXTS at 1 rank, TEXTS / 2
#   at 2 ranks: one batch per rank).
# Each rank is bound to as many cores as it runs threads. Wall times include start-up and model load.
# Usage: bench/neurons_smollm2.sh [CONTROL] [TEXTS] [NEW]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONTROL="${1:-2}"; TEXTS="${2:-16}"; NEW="${3:-64}"
model="$here/models/smollm2-135m-instruct"; corpus="$here/smollm2-out/corpus.h5"
[[ -d "$model" && -f "$corpus" ]] || { echo "run ./scripts/smollm2.sh first (model and corpus)" >&2; exit 2; }
dir="$here/build/bench-neurons"; mkdir -p "$dir"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}" OMPI_MCA_orte_tmpdir_base="$(mktemp -d)" LMTOPO_PROGRESS_SECONDS=0
"$here/.venv/bin/python" - "$corpus" "$dir/corpus.jsonl" <<'PY'
import sys, json, h5py
c = h5py.File(sys.argv[1], "r")["corpus"]
with open(sys.argv[2], "w") as out:
    for i, t, l, g in zip(c["id"][:], c["text"][:], c["lang"][:], c["group"][:]):
        out.write(json.dumps({"id": i.decode(), "text": t.decode(), "lang": l.decode(), "group": int(g)}, ensure_ascii=False) + "\n")
PY
echo "prompts: $(wc -l < "$dir/corpus.jsonl"); control draws $CONTROL; repetition texts $TEXTS"
run() {  # ranks threads study extra... -> the study's summary line and wall seconds
  local ranks="$1" threads="$2" study="$3"; shift 3
  local t0 t1
  t0=$(date +%s.%N)
  mpirun --oversubscribe --map-by "slot:PE=$threads" -n "$ranks" "$here/build/lmtopo" neurons --study "$study" --model "$model" \
    --prompts "$dir/corpus.jsonl" --threads "$threads" --control-draws "$CONTROL" "$@" -o "$dir/$study-$ranks.h5" 2>/dev/null | tail -1
  t1=$(date +%s.%N)
  python3 -c "print(f'  {$ranks} rank(s) x {$threads} thread(s): wall {$t1 - $t0:.1f} s')"
}
# Repetition: one batch of all texts at 1 rank, one batch per rank at 2 (ranks take whole batches).
for study in key_linguistic repetition; do
  one=(); two=()
  [[ "$study" == repetition ]] && one=(--texts "$TEXTS" --batch "$TEXTS") && two=(--texts "$TEXTS" --batch "$(( (TEXTS + 1) / 2 ))")
  echo "== $study"
  run 1 2 "$study" "${one[@]}"
  run 2 1 "$study" "${two[@]}"
done
echo "== generation and evaluation against transformers (same machine, same run)"
"$here/.venv-torch/bin/python" "$here/bench/generate_eval_vs_transformers.py" --new-tokens "$NEW"
