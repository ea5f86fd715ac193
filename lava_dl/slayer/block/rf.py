"""RF (resonate-and-fire, phase spiking) blocks.

The generic blocks of :mod:`lava_dl.slayer.block.base` bound to ``rf.Neuron``. The neuron
takes a complex input, so Dense/Conv use complex synapses (``weight/real``, ``weight/imag``).
"""

from lava_dl.slayer.block import abstract as _abstract
from lava_dl.slayer.block import base as _base
from lava_dl.slayer.neuron import rf as _neuron

(Input, Flatten, Average, Affine, TimeDecimation, Dense, Conv, Pool, ConvT, Unpool, KWTA,
 Recurrent) = _base.family(_neuron.Neuron, __name__)

#: lava-dl's family mixin for blocks built on :mod:`lava_dl.slayer.block.abstract`
AbstractRF = _abstract.abstract_family(_neuron.Neuron, "AbstractRF", __name__)

__all__ = [*_base.BLOCK_NAMES, "AbstractRF"]
