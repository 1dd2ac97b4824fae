#!/usr/bin/env bash
# The checks that need a GPU, in one run on a lent GPU machine (no MPI/HDF5 there; CUDA and a Python
# torch are): builds tests/device, runs the CUDA distance test, the transformer parity suite with
# lmtopo on CUDA against transformers on the CPU (fp32 1e-5, bf16/fp16 tolerances), and the forward
# throughput benchmark on the GPU. Needs transformers 4.44 beside the machine's torch: wheels in .whl/
# and nlohmann/json.hpp in .device-deps/include (see docs/operations.md, "GPU checks").
# Usage (on the GPU machine, from the repository root): scripts/device_check.sh OUT_DIR [all|kernels]
#   kernels: only the CUDA kernel tests (distances, k-NN with its paper-size layer), a few minutes.
set -uo pipefail
out="${1:-/tmp/device-out}"; mkdir -p "$out"
what="${2:-all}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
status=0
nvidia-smi -L | tee "$out/gpu.txt"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$out/gpu.txt"
prefix="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')"
cmake -S tests/device -B /tmp/devbuild -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DNLOHMANN_INCLUDE="$here/.device-deps/include" > "$out/cmake.log" 2>&1 || { tail -30 "$out/cmake.log"; exit 1; }
targets=(); [[ "$what" == kernels ]] && targets=(--target distances_cuda_test knn_cuda_test)
cmake --build /tmp/devbuild -j16 "${targets[@]}" > "$out/build.log" 2>&1 || { grep -m20 -B2 -A5 error "$out/build.log"; exit 1; }
echo "== distances_cuda_test"; /tmp/devbuild/distances_cuda_test || status=1
echo "== knn_cuda_test"; /tmp/devbuild/knn_cuda_test | tee "$out/knn_cuda.txt"; [[ ${PIPESTATUS[0]} == 0 ]] || status=1
[[ "$what" == kernels ]] && exit $status
echo "== parity on cuda"
(cd tests/model && MODEL_DUMP=/tmp/devbuild/model_dump LMTOPO_TEST_DEVICE=cuda \
  python3 -m pytest -q -p no:cacheprovider test_parity.py -k "hooks_and_logits or half or sharded or intervention" 2>&1 | tail -25) \
  | tee "$out/parity.txt"
grep -q " failed" "$out/parity.txt" && status=1
echo "== forward throughput on cuda"
for dt in float32 bfloat16; do
  python3 bench/forward_vs_transformers.py --bench /tmp/devbuild/bench_forward --device cuda --dtype "$dt" \
    --threads 8 --shape pythia-160m --batch 32 --seq 512 --iters 20 --rounds 3 --attn eager | tee -a "$out/bench.txt"
done
exit $status
