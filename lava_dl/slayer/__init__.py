"""SLAYER: PyTorch training of spiking networks whose forward pass is the deployed integer model.

Submodules (imported on first access): ``neuron``, ``synapse``, ``block``,
``quantize``, ``utils``, ``io`` (spike events and files), ``plot``
(raster / state-trace pictures), ``loss`` (spike-train losses), ``classifier``
(rate and moving-window classifiers), ``spike`` (lava-dl's spike functions), ``dendrite``
(the σ integrator), ``object_detection`` (also ``obd``: YOLO detection on sigma-delta
blocks), ``checks`` (input and parameter checks at the neuron and block boundary;
``set_input_checks(False)`` turns the NaN/inf/range scan of the inputs off). Tensors are
``N, C, (H, W,) T`` with time last.
This package never imports the Lava runtime.
"""

import importlib

_SUBMODULES = ("neuron", "synapse", "complex_synapse", "block", "quantize", "utils", "axon", "auto",
               "io", "plot", "loss", "classifier", "spike", "dendrite", "checks", "jitconfig",
               "object_detection")


def __getattr__(name):
    if name in ("set_input_checks", "input_checks_enabled"):
        return getattr(importlib.import_module(f"{__name__}.checks"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "obd":  # lava-dl's alias
        return importlib.import_module(f"{__name__}.object_detection")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
