"""Lava Processes of lava_dl.

Lava's compiler looks for ProcessModels in the modules of a Process's own
package (it lists ``__path__`` of this package and execs every module found).
The ProcessModels live in the repository's top-level ``process_models/``
directory; we add that directory to this package's search path so that stock
``Loihi1SimCfg`` and ``Loihi2SimCfg`` find them with no extra arguments. Their
canonical import name is therefore ``lava_dl.proc.<module>``.

Where the directory is: next to the ``lava_dl`` package in a source checkout
or editable install, or ``lava_dl/process_models`` in a built wheel (pyproject
maps it there).

Keep every module in both directories free of import side effects: the
compiler re-executes them on each compile.
"""

import os as _os

_pkg_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
for _candidate in (
    _os.path.join(_pkg_root, "process_models"),
    _os.path.join(_os.path.dirname(_pkg_root), "process_models"),
):
    if _os.path.isfile(_os.path.join(_candidate, "__init__.py")):
        if _candidate not in __path__:
            __path__.append(_candidate)
        break
else:  # pragma: no cover - broken installation
    raise ImportError("lava_dl: the process_models directory is missing from this installation")
