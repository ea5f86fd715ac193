"""The dependency direction of architecture.md, checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CHECK = textwrap.dedent("""
    import importlib, pkgutil, sys
    import lava_dl
    for name in {modules!r}:
        module = importlib.import_module(name)
        if hasattr(module, "__path__"):
            for info in pkgutil.walk_packages(module.__path__, name + "."):
                importlib.import_module(info.name)
    bad = sorted(m for m in sys.modules if any(m == f or m.startswith(f + ".") for f in {forbidden!r}))
    print("FORBIDDEN", bad)
""")


def _imported_forbidden(modules, forbidden):
    code = CHECK.format(modules=list(modules), forbidden=list(forbidden))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    line = [x for x in out.stdout.splitlines() if x.startswith("FORBIDDEN")][-1]
    return line[len("FORBIDDEN "):]


@pytest.mark.parametrize(
    "modules, forbidden",
    [
        (["lava_dl.core"], ["torch", "lava"]),
        (["lava_dl.netx", "lava_dl.proc"], ["torch"]),
        (["lava_dl.slayer"], ["lava", "lava_dl.netx", "lava_dl.proc"]),
    ],
)
def test_layer_imports(modules, forbidden):
    assert _imported_forbidden(modules, forbidden) == "[]"


def test_process_models_do_not_import_torch():
    code = textwrap.dedent("""
        import importlib, pkgutil, sys, lava_dl.proc as proc
        for info in pkgutil.iter_modules(proc.__path__):
            importlib.import_module("lava_dl.proc." + info.name)
        print("TORCH", "torch" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "TORCH False" in out.stdout
