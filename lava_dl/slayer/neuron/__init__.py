"""Neuron layers (``cuba``, ...) derived from the definitions in ``lava_dl.core``."""

import importlib

_SUBMODULES = ("base", "cuba", "alif", "rf", "rf_iz", "adrf", "adrf_iz", "sigma_delta", "norm", "dropout",
               "dynamics")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "Dropout":  # lava-dl's slayer.neuron.Dropout
        return importlib.import_module(f"{__name__}.dropout").Dropout
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
