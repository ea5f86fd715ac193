#!/usr/bin/env bash
# Download into .whl/ (gitignored) the peer libraries of the ONM benchmark for the GPU machine
# (Python 3.12, torch, numpy, h5py, matplotlib, tqdm, cupy; no network, no Lava), which
# benchmarks/gpu_check.sh unzips there: `bash scripts/fetch_gpu_wheels.sh`, then the one device call
# run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=540).
#
# All wheels are pure Python (py3-none-any), fetched without their dependencies; the ones the peers
# import that the GPU machine lacks are listed here (checked against each wheel's Requires-Dist
# and against what `import` really pulls in): norse imports nir and nirtorch at import time,
# spikingjelly 2.x imports loguru. torchvision, torchaudio, scipy, tensorboard and SciencePlots
# (declared by spikingjelly) are not imported by the modules the benchmark uses.
# lava-dl 0.6.0 declares python<3.11 and weighs 65 MiB: it is repacked without its tests and its
# trained object-detection networks (*.pt), which the blocks never load.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
OUT=.whl
LIMIT_MIB=40
rm -rf "$OUT" && mkdir -p "$OUT"
pip=("$PY" -m pip --disable-pip-version-check -q)
target=(--python-version 3.12 --platform manylinux2014_x86_64 --only-binary=:all: --no-deps -d "$OUT")

"${pip[@]}" download "${target[@]}" spikingjelly snntorch "nir==1.0.8" "nirtorch==2.6" "loguru>=0.7,<1"
# the ONM post's version (with the cupy backend; 2.x has none), beside the latest
"${pip[@]}" download "${target[@]}" "spikingjelly==0.0.0.0.14"
"${pip[@]}" download "${target[@]}" --ignore-requires-python "lava-dl==0.6.0"
# norse 1.1.0 is published as a source distribution only; its wheel is pure Python.
"${pip[@]}" wheel --no-deps -w "$OUT" "norse==1.1.0"
ls "$OUT"/norse-1.1.0-py3-none-any.whl >/dev/null || { echo "norse did not build a py3-none-any wheel" >&2; exit 1; }

"$PY" - "$OUT"/lava_dl-0.6.0-py3-none-any.whl <<'EOF'
"""Repack lava-dl's wheel without tests/, *.pt and *.ipynb (and their RECORD lines)."""
import os
import sys
import zipfile

path = sys.argv[1]
slim = path + ".slim"
drop = lambda name: name.startswith("tests/") or name.endswith((".pt", ".ipynb"))  # noqa: E731
with zipfile.ZipFile(path) as src, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as dst:
    for info in src.infolist():
        if drop(info.filename):
            continue
        data = src.read(info)
        if info.filename.endswith(".dist-info/RECORD"):
            lines = data.decode().splitlines()
            data = ("\n".join(line for line in lines if not drop(line.split(",")[0])) + "\n").encode()
        dst.writestr(info, data)
os.replace(slim, path)
EOF

echo "wheels in $OUT:"
ls -l "$OUT" | awk 'NR > 1 {printf "  %8.2f MiB  %s\n", $5 / 1048576, $9}'
total=$(du -cb "$OUT"/*.whl | tail -1 | cut -f1)
echo "total: $(awk -v b="$total" 'BEGIN {printf "%.2f", b / 1048576}') MiB"
if [ "$total" -gt $((LIMIT_MIB * 1048576)) ]; then
    echo "ERROR: .whl/ exceeds $LIMIT_MIB MiB (the device tool carries at most 64 MiB with the repository)" >&2
    exit 1
fi
