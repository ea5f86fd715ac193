"""ALIF blocks: the generic blocks of :mod:`lava_dl.slayer.block.base` bound to ``alif.Neuron``."""

from lava_dl.slayer.block import abstract as _abstract
from lava_dl.slayer.block import base as _base
from lava_dl.slayer.neuron import alif as _neuron

(Input, Flatten, Average, Affine, TimeDecimation, Dense, Conv, Pool, ConvT, Unpool, KWTA,
 Recurrent) = _base.family(_neuron.Neuron, __name__)

#: lava-dl's family mixin for blocks built on :mod:`lava_dl.slayer.block.abstract`
AbstractALIF = _abstract.abstract_family(_neuron.Neuron, "AbstractALIF", __name__)

__all__ = [*_base.BLOCK_NAMES, "AbstractALIF"]
