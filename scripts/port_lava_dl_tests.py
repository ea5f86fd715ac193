#!/usr/bin/env python
"""Port-by-import test: run lava-dl 0.6.0's own test suite against ``lava_dl``.

lava-dl users switch to this package by rewriting ``lava.lib.dl`` to ``lava_dl``. This script
checks that promise on lava-dl's own tests, which are never copied into this repository:

1. find the lava-dl 0.6.0 wheel (``--wheel``, ``$LAVA_DL_WHEEL``, a copy cached by an earlier
   run or by the benchmarks), or download it from the package index with
   ``pip download --no-deps lava-dl==0.6.0 --python-version 3.10 --only-binary=:all:``;
2. extract the wheel's ``tests/`` tree into a temporary directory;
3. rewrite ``lava.lib.dl`` to ``lava_dl`` in its Python files;
4. run pytest on it with this repository's interpreter (``.venv/bin/python`` when present),
   from the temporary directory, so that nothing of this repository but the installed
   ``lava_dl`` package is on the path;
5. print pytest's summary and a per-module passed / failed / skipped / error table.

Not part of CI (it needs the package index or a local wheel). Usage::

    python scripts/port_lava_dl_tests.py [--wheel PATH] [--keep DIR] [-- PYTEST_ARGS...]

e.g. ``-- tests/lava/lib/dl/netx -x`` runs lava-dl's netx tests only.

The exit status is pytest's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VERSION = "0.6.0"
WHEEL_NAME = f"lava_dl-{VERSION}-py3-none-any.whl"
#: Where a downloaded wheel is kept between runs (gitignored).
CACHE = REPO / "benchmarks" / ".cache"
#: Places an earlier download may already sit.
KNOWN_WHEELS = (CACHE / WHEEL_NAME, Path("/tmp/ldl") / WHEEL_NAME)


def default_python() -> str:
    """Return the repository virtual environment's interpreter, else the running one.

    Returns
    -------
    str
        Path of the Python interpreter that runs pytest.
    """
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def find_wheel(explicit: str | None, python: str) -> Path:
    """Return a local lava-dl 0.6.0 wheel, downloading it when none is known.

    Parameters
    ----------
    explicit : str or None
        Wheel given on the command line; used as is when given.
    python : str
        Interpreter whose ``pip`` downloads the wheel.

    Returns
    -------
    Path
        Path of the wheel file.
    """
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise SystemExit(f"--wheel {explicit}: no such file")
        return path
    candidates = [Path(os.environ["LAVA_DL_WHEEL"])] if os.environ.get("LAVA_DL_WHEEL") else []
    for path in (*candidates, *KNOWN_WHEELS):
        if path.is_file():
            return path
    CACHE.mkdir(parents=True, exist_ok=True)
    cmd = [python, "-m", "pip", "download", "--no-deps", f"lava-dl=={VERSION}",
           "--python-version", "3.10", "--only-binary=:all:", "-d", str(CACHE)]
    print("downloading:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    path = CACHE / WHEEL_NAME
    if not path.is_file():
        raise SystemExit(f"pip download did not produce {path}")
    return path


def extract_tests(wheel: Path, dest: Path) -> Path:
    """Extract the wheel's ``tests/`` tree into ``dest`` and rewrite its imports.

    Parameters
    ----------
    wheel : Path
        The lava-dl wheel.
    dest : Path
        Empty directory that receives ``tests/``.

    Returns
    -------
    Path
        The extracted ``tests`` directory.
    """
    with zipfile.ZipFile(wheel) as archive:
        members = [name for name in archive.namelist() if name.startswith("tests/")]
        if not members:
            raise SystemExit(f"{wheel} holds no tests/ directory")
        archive.extractall(dest, members)
    root = dest / "tests"
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        rewritten = text.replace("lava.lib.dl", "lava_dl")
        if rewritten != text:
            path.write_text(rewritten, encoding="utf-8")
    return root


def run_pytest(python: str, workdir: Path, junit: Path, extra: list[str]) -> int:
    """Run pytest on ``workdir/tests`` from ``workdir``; return its exit status.

    Parameters
    ----------
    python : str
        Interpreter to run pytest with.
    workdir : Path
        Directory that holds the extracted ``tests``.
    junit : Path
        Where pytest writes its JUnit XML report.
    extra : list of str
        Further pytest arguments; paths under ``tests`` among them replace the default
        target (the whole ``tests`` tree).

    Returns
    -------
    int
        pytest's exit status.
    """
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(REPO / ".numba_cache"))
    env.setdefault("MPLBACKEND", "Agg")
    targets = [] if any(arg.startswith("tests") for arg in extra) else ["tests"]
    cmd = [python, "-m", "pytest", *targets, "-q", "-rfEs", "-p", "no:cacheprovider",
           "--continue-on-collection-errors", f"--junitxml={junit}", "-o", "junit_family=xunit1", *extra]
    print("running:", " ".join(cmd), f"(in {workdir})", flush=True)
    return subprocess.run(cmd, cwd=workdir, env=env).returncode


def module_table(junit: Path) -> str:
    """Tabulate passed / failed / error / skipped tests per test module from a JUnit report.

    Parameters
    ----------
    junit : Path
        pytest's JUnit XML report.

    Returns
    -------
    str
        A fixed-width table with a total line.
    """
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for case in ET.parse(junit).getroot().iter("testcase"):
        module = case.get("file") or case.get("classname", "?").rsplit(".", 1)[0]
        module = module.removeprefix("tests/lava/lib/dl/").removeprefix("tests.lava.lib.dl.")
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                break
        counts[module][outcome] += 1
    columns = ("passed", "failed", "error", "skipped")
    width = max([len(m) for m in counts] + [len("module")])
    lines = [f"{'module':<{width}}  " + "  ".join(f"{c:>7}" for c in columns)]
    totals = defaultdict(int)
    for module in sorted(counts):
        lines.append(f"{module:<{width}}  " + "  ".join(f"{counts[module][c]:>7}" for c in columns))
        for c in columns:
            totals[c] += counts[module][c]
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{totals[c]:>7}" for c in columns))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run lava-dl's tests against ``lava_dl`` and print the results.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``); those after ``--`` go to pytest.

    Returns
    -------
    int
        pytest's exit status.
    """
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", help="local lava-dl 0.6.0 wheel (default: cached copy or download)")
    parser.add_argument("--python", default=default_python(), help="interpreter that runs pytest")
    parser.add_argument("--keep", help="extract into this directory and keep it (default: temporary)")
    args = parser.parse_args(argv)

    wheel = find_wheel(args.wheel, args.python)
    print(f"wheel: {wheel}", flush=True)
    if args.keep:
        workdir = Path(args.keep).resolve()
        if (workdir / "tests").exists():
            shutil.rmtree(workdir / "tests")
        workdir.mkdir(parents=True, exist_ok=True)
        cleanup = None
    else:
        cleanup = tempfile.TemporaryDirectory(prefix="lava_dl_port_")
        workdir = Path(cleanup.name)
    try:
        extract_tests(wheel, workdir)
        junit = workdir / "junit.xml"
        status = run_pytest(args.python, workdir, junit, extra)
        if junit.is_file():
            print("\nper-module results (lava-dl 0.6.0 tests, lava.lib.dl -> lava_dl):")
            print(module_table(junit))
        return status
    finally:
        if cleanup is not None:
            cleanup.cleanup()


if __name__ == "__main__":
    sys.exit(main())
