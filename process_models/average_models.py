"""ProcessModels of :class:`lava_dl.proc.average.Average` (receive, sum each group, send: no latency)."""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lava_dl.proc.average import COUNT_MESSAGE_BITS, Average


class _AverageModel(PyLoihiProcessModel):
    lava_dl_batch = 0
    lava_dl_batch_vars = ()
    group_size: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def run_spk(self):
        s = np.asarray(self.s_in.recv())
        lead = (self.lava_dl_batch,) if self.lava_dl_batch else ()
        self.a_out.send(s.reshape(*lead, -1, int(self.group_size[0])).sum(axis=-1))


@implements(proc=Average, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PyAverageModelFixed(_AverageModel):
    """Integer group sums."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=COUNT_MESSAGE_BITS)


@implements(proc=Average, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyAverageModelFloat(_AverageModel):
    """Float group sums."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
