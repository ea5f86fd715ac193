#!/usr/bin/env bash
# The GPU session's check (issue 11): CUDA-vs-CPU equivalence on the device, the ONM timing table
# of ours, and the same ONM benchmark for ours beside lava-dl 0.6.0, SpikingJelly, Norse and snnTorch.
# The one device call: here `bash scripts/fetch_gpu_wheels.sh` (peer wheels into the gitignored .whl/),
# then run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=540): ~5-7 min on an H200
# (sections 1-3 ~2-4 min, the peers ~2-3 min).
# Needs python3 with torch (CUDA) and numba-cuda, no Lava, no network; the peers' pure-Python wheels
# in .whl/ are unzipped by benchmarks/bench_onm_peers.py into /tmp/onm_peers_site (no pip needed), and
# lava-dl's CUDA extensions are JIT-compiled (nvcc + ninja, for the device's architecture) in the
# background while sections 1-3 run; its log is $OUT/lava_dl_build.log.
# Arguments go to benchmarks/gpu_check.py (--sizes 4096,8192,16384, --shapes ..., --skip-equivalence,
# --skip-peers, --peers ..., --max-seconds ...).
set -o pipefail
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-/tmp/lava_dl_numba_cache}"
export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-/tmp/onm_torch_extensions}"
unset NUMBA_ENABLE_CUDASIM
PY="${PYTHON:-python3}"
LOG_DIR="${OUT:-/tmp}"
if compgen -G ".whl/lava_dl-*.whl" >/dev/null; then
    mkdir -p "$TORCH_EXTENSIONS_DIR"
    rm -f "$TORCH_EXTENSIONS_DIR/lava_dl_prebuild.json"
    touch "$TORCH_EXTENSIONS_DIR/prebuild.started"  # section 4 waits for lava_dl_prebuild.json
    nice "$PY" benchmarks/bench_onm_peers.py --prebuild-lava-dl --wheels .whl >"$LOG_DIR/lava_dl_build.log" 2>&1 &
fi
if [ -n "${OUT:-}" ]; then
    "$PY" benchmarks/gpu_check.py "$@" 2>&1 | tee "$OUT/gpu_check.log"
else
    "$PY" benchmarks/gpu_check.py "$@"
fi
status=$?
wait
exit $status
