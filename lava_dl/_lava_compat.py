"""Make lava-nc 0.10.0 importable on Python 3.11.

lava-nc 0.10.0 declares dataclass fields with an instance default
(``x: ByteEncoder = ByteEncoder()`` in ``lava.magma.compiler.var_model``).
Python 3.11 rejects unhashable defaults, so importing Lava's compiler raises
``ValueError: mutable default``. We install a meta-path finder that rewrites
those defaults to ``field(default_factory=ByteEncoder)`` when that one module
is loaded. Site-packages is never modified.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys

_TARGET = "lava.magma.compiler.var_model"
_BAD_DEFAULT = "ByteEncoder = ByteEncoder()"
_GOOD_DEFAULT = "ByteEncoder = field(default_factory=ByteEncoder)"


class _PatchedLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname):  # noqa: D102 - loader protocol
        source = self.get_data(self.path).decode("utf-8")
        if _BAD_DEFAULT in source:
            source = source.replace(_BAD_DEFAULT, _GOOD_DEFAULT)
            source = source.replace(
                "from dataclasses import dataclass, InitVar",
                "from dataclasses import dataclass, InitVar, field",
            )
        return compile(source, self.path, "exec", dont_inherit=True)


class _VarModelFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):  # noqa: D102
        if fullname != _TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                spec.loader = _PatchedLoader(fullname, spec.origin)
                return spec
        return None


PTH_NAME = "lava_dl_py311_fix.pth"
PTH_LINE = 'import sys; exec("try:\\n import lava_dl\\nexcept Exception:\\n pass")\n'


def write_pth(site_dir: str) -> str:
    """Write a ``.pth`` file into ``site_dir`` that applies the fix at interpreter start-up.

    With it, Lava can be imported before ``lava_dl`` (e.g. ``import lava.magma.core.run_configs``
    first). ``scripts/bootstrap.sh`` calls it for the project's virtual environment;
    after a plain ``pip install`` run ``python -c "import lava_dl._lava_compat as c, sysconfig;
    c.write_pth(sysconfig.get_paths()['purelib'])"`` once (or import ``lava_dl`` first).
    Returns the file's path.
    """
    import os

    path = os.path.join(site_dir, PTH_NAME)
    with open(path, "w") as f:
        f.write(PTH_LINE)
    return path


def install() -> None:
    """Install the import hook (idempotent; a no-op where it is not needed)."""
    if sys.version_info < (3, 11) or _TARGET in sys.modules:
        return
    if not any(isinstance(f, _VarModelFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _VarModelFinder())

