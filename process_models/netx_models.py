"""SubProcessModels (tags ``fixed_pt`` and ``floating_pt``) of the netx blocks and Network.

The same sub-graph serves both: the run config picks the leaf models (bit-accurate or float).

The children are created by the Processes themselves (see
:mod:`lava_dl.proc.netx_blocks`); the models only expose them to Lava's
compiler, which expands them into their leaf processes.
"""

from lava.magma.core.decorator import implements, tag
from lava.magma.core.model.sub.model import AbstractSubProcessModel
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lava_dl.proc.netx_blocks import (
    Average,
    Conv,
    ConvT,
    Dense,
    Input,
    Network,
    Pool,
    RecurrentDense,
    Unpool,
)


class _BlockModel(AbstractSubProcessModel):
    """Expose a block's children: ``neuron``, its synapses (one per neuron input port, plus the
    recurrent ones) and the axonal delay line."""

    def __init__(self, proc):
        self.neuron = proc.neuron
        for port, synapse in getattr(proc, "synapses", {}).items():
            setattr(self, f"synapse_{port}", synapse)
        for port, synapse in getattr(proc, "synapses_rec", {}).items():
            setattr(self, f"synapse_rec_{port}", synapse)
        if getattr(proc, "axon", None) is not None:
            self.axon = proc.axon


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


@implements(proc=RecurrentDense, protocol=LoihiProtocol)
@tag("fixed_pt", "floating_pt")
class SubRecurrentDenseModel(_BlockModel):
    """Model of :class:`lava_dl.proc.netx_blocks.RecurrentDense`."""


@implements(proc=ConvT, protocol=LoihiProtocol)
@tag("fixed_pt", "floating_pt")
class SubConvTModel(_BlockModel):
    """Model of :class:`lava_dl.proc.netx_blocks.ConvT`."""


@implements(proc=Pool, protocol=LoihiProtocol)
@tag("fixed_pt", "floating_pt")
class SubPoolModel(_BlockModel):
    """Model of :class:`lava_dl.proc.netx_blocks.Pool`."""


@implements(proc=Unpool, protocol=LoihiProtocol)
@tag("fixed_pt", "floating_pt")
class SubUnpoolModel(_BlockModel):
    """Model of :class:`lava_dl.proc.netx_blocks.Unpool`."""


@implements(proc=Average, protocol=LoihiProtocol)
@tag("fixed_pt", "floating_pt")
class SubAverageModel(AbstractSubProcessModel):
    """Model of :class:`lava_dl.proc.netx_blocks.Average`."""

    def __init__(self, proc):
        self.counter = proc.counter


@implements(proc=Network, protocol=LoihiProtocol)
@tag("fixed_pt", "floating_pt")
class SubNetworkModel(AbstractSubProcessModel):
    """Model of :class:`lava_dl.proc.netx_blocks.Network`: one attribute per block."""

    def __init__(self, proc):
        for i, layer in enumerate(proc.layers):
            setattr(self, f"layer_{i:04d}", layer)
