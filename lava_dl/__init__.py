"""lava_dl: train and deploy event-based deep spiking networks on Lava.

Submodules are imported on demand: ``lava_dl.slayer`` (PyTorch training),
``lava_dl.netx`` (hdf5 exchange and Lava network building), ``lava_dl.proc``
(Lava processes) and ``lava_dl.core`` (the one definition of every neuron and
synapse, with its Numba kernels).
"""

from lava_dl import _lava_compat

_lava_compat.install()

__version__ = "0.1.0"
