"""CUBA-LIF blocks: the generic blocks of :mod:`lava_dl.slayer.block.base` bound to ``cuba.Neuron``."""

from lava_dl.slayer.block import base as _base
from lava_dl.slayer.neuron import cuba as _neuron

(Input, Flatten, Average, Affine, TimeDecimation, Dense, Conv, Pool, ConvT, Unpool, KWTA,
 Recurrent) = _base.family(_neuron.Neuron, __name__)

__all__ = list(_base.BLOCK_NAMES)
