"""SLAYER: PyTorch training of spiking networks whose forward pass is the deployed integer model.

Submodules (imported on first access): ``neuron``, ``synapse``, ``block``,
``quantize``, ``utils``, ``io`` (spike events and files), ``plot``
(raster / state-trace pictures), ``loss`` (spike-train losses), ``classifier``
(rate and moving-window classifiers), ``spike`` (lava-dl's spike functions), ``dendrite``
(the σ integrator). Tensors are ``N, C, (H, W,) T`` with time last.
This package never imports the Lava runtime.
"""

import importlib

_SUBMODULES = ("neuron", "synapse", "complex_synapse", "block", "quantize", "utils", "axon", "auto",
               "io", "plot", "loss", "classifier", "spike", "dendrite")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
