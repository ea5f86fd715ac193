"""lava_dl: train and deploy event-based deep spiking networks on Lava.

Submodules are imported on demand: ``lava_dl.slayer`` (PyTorch training),
``lava_dl.netx`` (hdf5 exchange and Lava network building), ``lava_dl.proc``
(Lava processes) and ``lava_dl.core`` (the one definition of every neuron and
synapse, with its Numba kernels).
"""

import os

# Large CPU tensors on transparent huge pages (torch's c10 allocator, Linux): without it every
# activation-sized tensor a training step allocates is page-faulted in 4 KiB at a time, about a
# quarter of a conv network's step on one thread. torch reads the variable at its first
# allocation, so it only takes effect when lava_dl is imported before any tensor is made;
# set THP_MEM_ALLOC_ENABLE=0 beforehand to keep torch's default.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

from lava_dl import _lava_compat  # noqa: E402

_lava_compat.install()

__version__ = "0.1.0"
