"""RF (resonate-and-fire, phase spiking) blocks.

The generic blocks of :mod:`lava_dl.slayer.block.base` bound to ``rf.Neuron``. The neuron
takes a complex input, so Dense/Conv use complex synapses (``weight/real``, ``weight/imag``).
"""

from lava_dl.slayer.block import base as _base
from lava_dl.slayer.neuron import rf as _neuron

(Input, Flatten, Average, Affine, TimeDecimation, Dense, Conv, Pool, ConvT, Unpool, KWTA,
 Recurrent) = _base.family(_neuron.Neuron, __name__)

__all__ = list(_base.BLOCK_NAMES)
