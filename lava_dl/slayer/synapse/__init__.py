"""Synapses for training (lava-dl's ``slayer.synapse``): the real layers of :mod:`.layer` and the
complex ones of :mod:`.complex` (imported on first access).

``lava_dl.slayer.synapse.Dense`` is ``lava_dl.slayer.synapse.layer.Dense`` (and so on).
"""

import importlib

from lava_dl.slayer.synapse.layer import (
    Conv,
    ConvTranspose,
    Dense,
    IntOrPair,
    Pool,
    PreHook,
    Unpool,
    conv_transpose_weight_to_lava,
    conv_weight_to_lava,
    pool_weight_to_lava,
    unpool_weight_to_lava,
)

__all__ = ["Dense", "Conv", "Pool", "ConvTranspose", "Unpool", "complex", "layer", "IntOrPair", "PreHook",
           "conv_weight_to_lava", "conv_transpose_weight_to_lava", "pool_weight_to_lava",
           "unpool_weight_to_lava"]


def __getattr__(name):
    if name == "complex":
        return importlib.import_module(f"{__name__}.complex")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
