"""Concatenation Lava Process: joins the outputs of several layers (hdf5 ``concat`` records)."""

from __future__ import annotations

import typing as ty

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess, LogConfig

#: Most inputs one Concat joins (its models declare this many ports).
MAX_INPUTS = 8


class Concat(AbstractProcess):
    """Join the messages arriving on ``inp_0 … inp_{k-1}`` along ``axis`` and send them on ``out``.

    No synapse and no latency: what arrives at step ``t`` leaves at step ``t``. Messages pass
    unchanged (binary spikes or graded payloads).

    Parameters
    ----------
    shapes : sequence of tuple of int
        Shapes of the 2 to :data:`MAX_INPUTS` inputs; equal except along ``axis``.
    axis : int, default -1
        Joined axis (the last: channels of ``(x, y, c)``, neurons of ``(n,)``).
    name : str, optional
        Process name.
    log_config : LogConfig, optional
        Lava logging configuration.

    Attributes
    ----------
    shape : tuple of int
        Shape of ``out``.
    """

    def __init__(self, *, shapes: ty.Sequence[ty.Sequence[int]], axis: int = -1, name: str | None = None,
                 log_config: LogConfig | None = None) -> None:
        shapes = [tuple(int(s) for s in shape) for shape in shapes]
        try:
            if not 2 <= len(shapes) <= MAX_INPUTS:
                raise ValueError(f"Concat: joins 2 to {MAX_INPUTS} inputs, got {len(shapes)}")
            ndim = len(shapes[0])
            axis = int(axis) % ndim if ndim else 0
            rest = {s[:axis] + s[axis + 1:] for s in shapes}
            if any(len(s) != ndim for s in shapes) or len(rest) != 1:
                raise ValueError(f"Concat: input shapes {shapes} differ other than along axis {axis}")
        except ValueError:
            super().__init__(name=name, log_config=log_config)
            raise
        shape = list(shapes[0])
        shape[axis] = sum(s[axis] for s in shapes)
        self.shape = tuple(shape)
        super().__init__(shapes=shapes, axis=axis, name=name, log_config=log_config)
        # every process has all MAX_INPUTS ports (Lava's models declare a fixed set); those
        # beyond the inputs are unconnected one-element ports that the model never reads
        for i in range(MAX_INPUTS):
            setattr(self, f"inp_{i}", InPort(shape=shapes[i] if i < len(shapes) else (1,)))
        self.out = OutPort(shape=self.shape)

    @property
    def inputs(self) -> list[InPort]:
        """The input ports, in joining order."""
        return [getattr(self, f"inp_{i}") for i in range(len(self.proc_params["shapes"]))]


def split_points(shapes: ty.Sequence[ty.Sequence[int]], axis: int) -> np.ndarray:
    """Offsets along ``axis`` where each input ends (``numpy.split`` indices of the joined array)."""
    return np.cumsum([s[axis] for s in shapes])[:-1]
