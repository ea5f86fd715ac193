"""Blocks per neuron family: ``block.cuba.Dense`` etc."""

import importlib

_SUBMODULES = ("base", "cuba", "alif")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
