"""ALIF blocks: the generic blocks of :mod:`lava_dl.slayer.block.base` bound to ``alif.Neuron``."""

from lava_dl.slayer.block import base as _base
from lava_dl.slayer.neuron import alif as _neuron

Input, Flatten, Dense, Affine, Conv = _base.family(_neuron.Neuron, __name__)

__all__ = ["Input", "Flatten", "Dense", "Affine", "Conv"]
