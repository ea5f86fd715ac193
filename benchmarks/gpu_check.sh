#!/usr/bin/env bash
# The GPU session's check (issue 11): CUDA-vs-CPU equivalence on the device and the ONM timing table.
# Run from anywhere; needs python3 with torch (CUDA) and numba-cuda, no Lava, no network.
# Arguments go to benchmarks/gpu_check.py (--sizes 4096,8192,16384, --shapes ..., --skip-equivalence).
set -o pipefail
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-/tmp/lava_dl_numba_cache}"
unset NUMBA_ENABLE_CUDASIM
PY="${PYTHON:-python3}"
if [ -n "${OUT:-}" ]; then
    "$PY" benchmarks/gpu_check.py "$@" 2>&1 | tee "$OUT/gpu_check.log"
else
    "$PY" benchmarks/gpu_check.py "$@"
fi
