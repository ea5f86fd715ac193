"""Shared test helpers."""

from __future__ import annotations

import os
import pathlib

import pytest

import lava_dl  # noqa: F401  (installs the lava-nc Python 3.11 fix before Lava is imported)

REPO = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures" / "lava_dl_0.6"


@pytest.fixture
def fixtures_dir() -> pathlib.Path:
    """The lava-dl 0.6 fixtures shipped beside the repository (skip when absent)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"lava-dl 0.6 fixtures not found at {FIXTURES} "
                    "(expected ../shared/fixtures beside the repository)")
    return FIXTURES


def pytest_configure(config):
    os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / ".numba_cache"))
