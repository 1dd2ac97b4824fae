#!/usr/bin/env bash
# The sanitizer build: clang, AddressSanitizer + UndefinedBehaviorSanitizer, libFuzzer harnesses
# (tests/fuzz), in build-asan/. Builds what is missing and runs its ctest: the unit and MPI tests under
# the sanitizers and one bounded fuzzing run per parser (LMTOPO_FUZZ_SECONDS, default 30).
#   ./scripts/sanitize.sh                 build and run everything
#   ./scripts/sanitize.sh -R fuzz_fzz     ctest arguments pass through
#   LMTOPO_FUZZ_SECONDS=600 ./scripts/sanitize.sh -R fuzz_   longer fuzzing (docs/operations.md)
# scripts/test.sh runs it as the ctest `sanitizers_and_fuzzing`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
dir="$here/build-asan"
seconds="${LMTOPO_FUZZ_SECONDS:-30}"
if [[ ! -f "$dir/CMakeCache.txt" ]]; then
  # -O1 with line tables (the sanitizers' usual flags): about 10% faster to build than -O2 -g, stack
  # traces keep file:line, and assertions stay on (no NDEBUG).
  CC=clang CXX=clang++ cmake -S . -B "$dir" -DLMTOPO_SANITIZE=ON -DCMAKE_BUILD_TYPE=Sanitize \
    -DCMAKE_C_FLAGS_SANITIZE="-O1 -gline-tables-only" -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -gline-tables-only" \
    -DLMTOPO_FUZZ_SECONDS="$seconds" >/dev/null
else
  cmake -S . -B "$dir" -DLMTOPO_FUZZ_SECONDS="$seconds" >/dev/null
fi
cmake --build "$dir" -j "$(nproc)" --target unit_tests mpi_tests \
  fuzz_fzz fuzz_safetensors fuzz_model_config fuzz_tokenizer_json fuzz_tokenize fuzz_job_spec fuzz_gettext_mo \
  fuzz_barcode_csv fuzz_prompts_jsonl fuzz_gguf
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml="${OMPI_MCA_pml:-ob1}"
cd "$dir"
ctest --output-on-failure -j "${LMTOPO_TEST_JOBS:-2}" "$@"
