"""lava-dl's spike functions: :class:`Spike` (threshold) and :mod:`.complex` (phase crossing).

The neurons of :mod:`lava_dl.slayer.neuron` spike inside their compiled kernels; these
autograd functions are lava-dl's stand-alone spike mechanism (used by its ``spike``
methods and functional dynamics), whose surrogate derivatives are the kernels' own
(:func:`lava_dl.core.cuba.surrogate`, :func:`lava_dl.core.resonator.complex_surrogate`).
"""

import importlib

from lava_dl.slayer.spike.spike import Spike

__all__ = ["Spike", "complex"]


def __getattr__(name):
    if name == "complex":
        return importlib.import_module(f"{__name__}.complex")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
