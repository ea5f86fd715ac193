"""ProcessModels of :class:`lava_dl.proc.concat.Concat` (receive every input, send them joined)."""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lava_dl.proc.concat import MAX_INPUTS, Concat


def _concat_model(fixed: bool) -> type:
    dtype = np.int32 if fixed else float
    namespace = {
        "__module__": __name__,
        "__doc__": f"{'Integer' if fixed else 'Float'} concatenation (no latency).",
        "out": LavaPyType(PyOutPort.VEC_DENSE, dtype, precision=24),
    }
    for i in range(MAX_INPUTS):
        namespace[f"inp_{i}"] = LavaPyType(PyInPort.VEC_DENSE, dtype, precision=24)

    def run_spk(self):
        count = len(self.proc_params["shapes"])
        parts = [getattr(self, f"inp_{i}").recv() for i in range(count)]
        # the axis is normalised to >= 0 by the Process; a batch adds a leading axis
        self.out.send(np.concatenate(parts, axis=self.proc_params["axis"] + (1 if self.lava_dl_batch else 0)))

    namespace["run_spk"] = run_spk
    namespace["lava_dl_batch"] = 0
    namespace["lava_dl_batch_vars"] = ()
    model = type(f"PyConcatModel{'Fixed' if fixed else 'Float'}", (PyLoihiProcessModel,), namespace)
    model = requires(CPU)(implements(proc=Concat, protocol=LoihiProtocol)(model))
    return tag("fixed_pt", "bit_accurate_loihi")(model) if fixed else tag("floating_pt")(model)


PyConcatModelFixed = _concat_model(True)
PyConcatModelFloat = _concat_model(False)
