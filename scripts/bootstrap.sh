#!/usr/bin/env bash
# Create .venv (if needed), install lava_dl and everything it needs, then run
# the demo (`bash scripts/bootstrap.sh demo`) or the tests (`... test [pytest args]`).
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-test}"; shift || true
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=.venv
stamp="$VENV/.installed-$(cat pyproject.toml scripts/bootstrap.sh | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  pip=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
  # The pinned CPU torch first: an unpinned torch requirement would pull a CUDA build.
  "${pip[@]}" "torch==2.13.0" || "${pip[@]}" "torch>=2.1"
  # lava-nc 0.10.0 declares python<3.11; scipy is pinned to a release with 3.11 wheels.
  "${pip[@]}" "numpy>=1.22,<2" "scipy>=1.10,<1.16"
  "${pip[@]}" --ignore-requires-python "lava-nc==0.10.0" "numpy>=1.22,<2" "scipy>=1.10,<1.16"
  # lava-nc is installed by now: no --ignore-requires-python here, so that no dependency resolves
  # to a release for a newer Python (e.g. a contourpy source build needing 3.12)
  "${pip[@]}" -e ".[demo,test]"
  # Norse (a NIR peer of the tests) without its dependencies: it would pull torchvision (a CUDA build
  # or a newer torch); the modules the tests use need only torch, numpy, nir and nirtorch.
  "${pip[@]}" --no-deps "norse==1.1.0"
  # Apply lava_dl's Python 3.11 fix for lava-nc at interpreter start-up (Lava may be imported first).
  "$VENV/bin/python" -c "import lava_dl._lava_compat as c, sysconfig; c.write_pth(sysconfig.get_paths()['purelib'])"
  rm -f "$VENV"/.installed-*; touch "$stamp"
fi
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$PWD/.numba_cache}"
case "$what" in
  demo) exec "$VENV/bin/python" -m lava_dl.demo "$@" ;;
  test)
    "$VENV/bin/ruff" check .
    exec "$VENV/bin/python" -m pytest -q "$@" ;;
  *) echo "usage: bash scripts/bootstrap.sh {demo|test} [args]" >&2; exit 2 ;;
esac
