#!/usr/bin/env bash
# Configures and builds lmtopo into build/ (binary: build/lmtopo).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
if [[ ! -f build/CMakeCache.txt ]]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPython3_EXECUTABLE="$here/.venv/bin/python" >/dev/null
fi
cmake --build build -j "$(nproc)"
