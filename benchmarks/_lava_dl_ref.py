"""Make Intel's lava-dl 0.6.0 (``lava.lib.dl``) importable beside lava_dl, for side-by-side benchmarks.

The wheel is installed with ``pip install --no-deps --target`` into the gitignored
``benchmarks/.cache/lava_dl-0.6.0`` (our virtual environment is not touched), and that
directory is *appended* to ``sys.path``: lava-nc's ``lava`` is a namespace package (no
``__init__.py``), so ``lava.lib.dl`` merges into it beside ``lava.magma`` / ``lava.proc``.

lava-dl's ``slayer/__init__`` imports its object-detection and plotting modules, which
import matplotlib, cv2, PIL and torchvision at module level (none is used by the blocks,
neurons or synapses). When one of them is not installed, a stub package whose every
attribute is an inert placeholder is written into ``benchmarks/.cache/stubs`` (also
appended to ``sys.path``, so a real installation always wins).

On the CPU lava-dl never JIT-compiles anything: its ``torch.utils.cpp_extension.load``
calls (CUDA kernels of the neuron dynamics and of the time shift) only run when
``torch.cuda.is_available()``; otherwise it runs its per-time-step torch loops
(``_li_dynamics_fwd`` / ``_li_dynamics_bwd`` ...), which is what we compare against.

Use :func:`import_slayer`; it returns ``(module, None)`` or ``(None, reason)``.
The wheel is looked for at ``$LAVA_DL_WHEEL`` (default ``/tmp/ldl/lava_dl-0.6.0-py3-none-any.whl``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"
TARGET = CACHE / "lava_dl-0.6.0"
STUBS = CACHE / "stubs"
WHEEL = Path(os.environ.get("LAVA_DL_WHEEL", "/tmp/ldl/lava_dl-0.6.0-py3-none-any.whl"))

#: Stubbed packages and the submodules lava-dl imports from them.
_STUB_MODULES = {
    "matplotlib": ("pyplot", "animation"),
    "cv2": (),
    "PIL": ("Image", "ImageDraw"),
    "torchvision": ("ops", "transforms"),
}

_STUB_SOURCE = '''"""Inert stub written by benchmarks/_lava_dl_ref.py (lava-dl imports this module but the
benchmarks never use it)."""


class _Any:
    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Any()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Any()

    def __mro_entries__(self, bases):
        return (object,)


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Any()
'''


def _write_stubs() -> list[str]:
    """Write stub packages for the missing optional imports; return their names."""
    written = []
    for package, submodules in _STUB_MODULES.items():
        if importlib.util.find_spec(package) is not None and not _is_stub(package):
            continue
        root = STUBS / package
        root.mkdir(parents=True, exist_ok=True)
        for name in ("__init__", *submodules):
            (root / f"{name}.py").write_text(_STUB_SOURCE)
        written.append(package)
    return written


def _is_stub(package: str) -> bool:
    spec = importlib.util.find_spec(package)
    return spec is not None and spec.origin is not None and Path(spec.origin).is_relative_to(STUBS)


def _install() -> str | None:
    """Install the wheel into :data:`TARGET` if needed; return an error message or None."""
    if (TARGET / "lava" / "lib" / "dl" / "slayer" / "__init__.py").exists():
        return None
    if not WHEEL.exists():
        return f"lava-dl 0.6.0 wheel not found at {WHEEL} (set LAVA_DL_WHEEL)"
    if TARGET.exists():
        shutil.rmtree(TARGET)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
           "--ignore-requires-python", "--target", str(TARGET), str(WHEEL)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return f"pip install of {WHEEL.name} failed: {proc.stderr.strip()[-500:]}"
    shutil.rmtree(TARGET / "tests", ignore_errors=True)  # the wheel ships a top-level ``tests`` package
    return None


def import_slayer():
    """Return ``(lava.lib.dl.slayer, None)``, or ``(None, reason)`` when lava-dl 0.6.0 is unavailable."""
    try:
        error = _install()
        if error:
            return None, error
        stubs = _write_stubs()
        for path in (TARGET, STUBS):
            if str(path) not in sys.path:
                sys.path.append(str(path))
        import lava

        lava_dir = str(TARGET / "lava")
        if lava_dir not in list(lava.__path__):
            # lava-nc's ``lava`` not a namespace package (another lava-nc version): extend it by hand
            lava.__path__.append(lava_dir)
        slayer = importlib.import_module("lava.lib.dl.slayer")
        if not Path(slayer.__file__).is_relative_to(TARGET):
            return None, f"lava.lib.dl.slayer imported from {slayer.__file__}, not from {TARGET}"
        slayer._bench_stubs = stubs
        return slayer, None
    except Exception as exc:  # any failure: the benchmark skips lava-dl with this message
        return None, f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    module, reason = import_slayer()
    if module is None:
        print(f"lava-dl 0.6.0 unavailable: {reason}")
    else:
        print(f"lava-dl 0.6.0 slayer from {Path(module.__file__).parent} (stubbed: {module._bench_stubs})")
