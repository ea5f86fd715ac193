"""Blocks per neuron family: ``block.cuba.Dense`` etc."""

import importlib

_SUBMODULES = ("base", "cuba", "alif", "rf", "rf_iz", "adrf", "adrf_iz", "sigma_delta", "concat")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
