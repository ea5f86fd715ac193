"""Population-count Lava Process: lava-dl's ``average`` layer, deployed."""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess, LogConfig
from lava.magma.core.process.variable import Var

#: Width of the count messages (a count never exceeds the group size).
COUNT_MESSAGE_BITS = 24


class Average(AbstractProcess):
    """Sum the incoming messages of ``num_outputs`` consecutive groups of neurons, every step.

    The deployed form of slayer's ``Average`` block: no synapse and no latency (what
    arrives at step ``t`` is summed and sent at step ``t``). The output of a group is its
    spike count, i.e. slayer's group mean times the group size ``n_in / num_outputs``.

    Parameters
    ----------
    num_inputs : int
        Neurons on ``s_in`` (the previous layer flattened in torch's ``(C, H, W)`` order).
    num_outputs : int
        Number of groups; must divide ``num_inputs``.
    name : str, optional
        Process name.
    log_config : LogConfig, optional
        Lava logging configuration.
    """

    def __init__(self, *, num_inputs: int, num_outputs: int, name: str | None = None,
                 log_config: LogConfig | None = None) -> None:
        num_inputs, num_outputs = int(num_inputs), int(num_outputs)
        if num_outputs < 1 or num_inputs < 1 or num_inputs % num_outputs:
            super().__init__(name=name, log_config=log_config)
            raise ValueError(f"Average: {num_inputs} inputs do not split into {num_outputs} equal groups")
        super().__init__(num_inputs=num_inputs, num_outputs=num_outputs, name=name, log_config=log_config)
        self.s_in = InPort(shape=(num_inputs,))
        self.a_out = OutPort(shape=(num_outputs,))
        self.group_size = Var(shape=(1,), init=np.array([num_inputs // num_outputs]))
