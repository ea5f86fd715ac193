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
    ComplexDense,
    ComplexInput,
    Concat,
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


class _AverageModel(AbstractSubProcessModel):
    """Expose the group counter of an :class:`~lava_dl.proc.netx_blocks.Average`."""

    def __init__(self, proc):
        self.counter = proc.counter


class _ConcatModel(AbstractSubProcessModel):
    """Expose the joining process and the alignment delay lines of a
    :class:`~lava_dl.proc.netx_blocks.Concat`."""

    def __init__(self, proc):
        self.join = proc.join
        for i, aligner in enumerate(proc.aligners):
            if aligner is not None:
                setattr(self, f"aligner_{i}", aligner)


class _NetworkModel(AbstractSubProcessModel):
    """Expose every block of a :class:`~lava_dl.proc.netx_blocks.Network` (one attribute each)."""

    def __init__(self, proc):
        for i, layer in enumerate(proc.layers):
            setattr(self, f"layer_{i:04d}", layer)


def _sub_model(proc: type, base: type) -> type:
    """``base`` registered as the ``fixed_pt`` and ``floating_pt`` sub-process model of ``proc``."""
    model = type(f"Sub{proc.__name__}Model", (base,), {
        "__module__": __name__, "__doc__": f"Model of :class:`lava_dl.proc.netx_blocks.{proc.__name__}`."})
    return tag("fixed_pt", "floating_pt")(implements(proc=proc, protocol=LoihiProtocol)(model))


SubInputModel = _sub_model(Input, _BlockModel)
SubComplexInputModel = _sub_model(ComplexInput, _BlockModel)
SubDenseModel = _sub_model(Dense, _BlockModel)
SubComplexDenseModel = _sub_model(ComplexDense, _BlockModel)
SubRecurrentDenseModel = _sub_model(RecurrentDense, _BlockModel)
SubConvModel = _sub_model(Conv, _BlockModel)
SubConvTModel = _sub_model(ConvT, _BlockModel)
SubPoolModel = _sub_model(Pool, _BlockModel)
SubUnpoolModel = _sub_model(Unpool, _BlockModel)
SubAverageModel = _sub_model(Average, _AverageModel)
SubConcatModel = _sub_model(Concat, _ConcatModel)
SubNetworkModel = _sub_model(Network, _NetworkModel)
