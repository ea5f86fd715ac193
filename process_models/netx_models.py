"""SubProcessModels (tags ``fixed_pt`` and ``floating_pt``) of the netx blocks and Network.

The same sub-graph serves both: the run config picks the leaf models (bit-accurate or float).

The children are created by the Processes themselves (see
:mod:`lava_dl.proc.netx_blocks`); the models only expose them to Lava's
compiler, which expands them into their leaf processes.
"""

from lava.magma.core.decorator import implements, tag
from lava.magma.core.model.sub.model import AbstractSubProcessModel
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lava_dl.proc.netx_blocks import Conv, Dense, Input, Network


class _BlockModel(AbstractSubProcessModel):
    """Expose a block's ``neuron`` and synapse children (one synapse per neuron input port)."""

    def __init__(self, proc):
        self.neuron = proc.neuron
        for port, synapse in getattr(proc, "synapses", {}).items():
            setattr(self, f"synapse_{port}", synapse)


@implements(proc=Input, protocol=LoihiProtocol)
@tag("fixed_pt", "floating_pt")
class SubInputModel(_BlockModel):
    """Model of :class:`lava_dl.proc.netx_blocks.Input`."""


@implements(proc=Dense, protocol=LoihiProtocol)
@tag("fixed_pt", "floating_pt")
class SubDenseModel(_BlockModel):
    """Model of :class:`lava_dl.proc.netx_blocks.Dense`."""


@implements(proc=Conv, protocol=LoihiProtocol)
@tag("fixed_pt", "floating_pt")
class SubConvModel(_BlockModel):
    """Model of :class:`lava_dl.proc.netx_blocks.Conv`."""


@implements(proc=Network, protocol=LoihiProtocol)
@tag("fixed_pt", "floating_pt")
class SubNetworkModel(AbstractSubProcessModel):
    """Model of :class:`lava_dl.proc.netx_blocks.Network`: one attribute per block."""

    def __init__(self, proc):
        for i, layer in enumerate(proc.layers):
            setattr(self, f"layer_{i:04d}", layer)
