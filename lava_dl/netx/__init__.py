"""NetX: load hdf5 network descriptions (lava-dl format) as Lava processes.

``lava_dl.netx.hdf5.Network(net_config=path, ...)`` builds the network (``fused=True``: as one
Lava process); ``lava_dl.netx.simulate(path, inputs, ...)`` runs it outside Lava with the same
models (:mod:`lava_dl.netx.fused`);
``lava_dl.netx.record`` (= ``lava_dl.core.records``) writes the layer records (used by the exporter).
Malformed files raise :class:`NetxFormatError` (alias ``Hdf5FormatError``), naming the file,
the layer and the field. This package never imports torch.
"""

from lava_dl.core import records as record
from lava_dl.netx import blocks, hdf5, sequential_modules, utils
from lava_dl.netx import sequential_modules as modules  # lava-dl's name
from lava_dl.netx.fused import simulate
from lava_dl.netx.hdf5 import Network
from lava_dl.netx.utils import (
    Hdf5FormatError,
    NetxFileNotFoundError,
    NetxFormatError,
    NetxTypeError,
    NetxUnsupportedError,
)

__all__ = ["Network", "NetxFormatError", "NetxUnsupportedError", "NetxTypeError", "NetxFileNotFoundError",
           "Hdf5FormatError", "blocks", "hdf5", "modules", "record", "sequential_modules", "simulate",
           "utils"]
