"""Complex synapses: this module is :mod:`lava_dl.slayer.synapse.complex` (lava-dl's path),
kept under its earlier name."""

from lava_dl.slayer.synapse.complex import Conv, ConvTranspose, Dense, Pool, Unpool

__all__ = ["Dense", "Conv", "Pool", "ConvTranspose", "Unpool"]
