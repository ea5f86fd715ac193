"""Convolution synapse Lava Process (arithmetic in :mod:`lava_dl.core.synapse`)."""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess, LogConfig
from lava.magma.core.process.variable import Var

from lava_dl.core import synapse as _syn


class Conv(AbstractProcess):
    """2-D convolution synapse on Lava's ``(x, y, c)`` layout, with one step of latency.

    Same arguments and semantics as lava-nc's ``Conv``; the ``fixed_pt`` model is
    bit-identical to lava-nc's ``PyConvModelFixed`` (a true convolution, i.e. the
    kernel flipped relative to torch, output wrapped to signed 24 bits).

    Parameters
    ----------
    weight : numpy.ndarray
        Integer kernel ``(out, kx, ky, in / groups)`` with values in ``[-256, 255]``.
    input_shape : tuple of int
        ``(x, y, c_in)`` = ``(W, H, C)``.
    padding, stride, dilation : int or tuple of int, defaults 0, 1, 1
        Geometry; tuples are in ``(x, y)`` order.
    groups : int, default 1
        Convolution groups; must divide both channel counts.
    num_message_bits : int, default 0
        0: binary input (every nonzero input counts as 1); otherwise graded input.
    weight_exp : int, default 0
        Arithmetic shift of every sum (``a << weight_exp``, or ``a >> -weight_exp``
        rounding down), applied before the 24-bit wrap; how a synapse brings graded
        payloads onto its neurons' input grid. lava-nc's Conv has no exponent (its
        model ignores the argument); with 0 the two models are identical.
    num_weight_bits : int, default 8
        Accepted for lava-nc compatibility only (lava-nc's Conv model ignores it), so
        any other value raises ValueError instead of being silently dropped.
    name : str, optional
        Process name.
    log_config : LogConfig, optional
        Lava logging configuration.

    Attributes
    ----------
    input_shape, output_shape : tuple of int
        ``(x, y, c)`` shapes of ``s_in`` and ``a_out``.
    """

    def __init__(self, *, weight: np.ndarray, input_shape: tuple[int, int, int],
                 padding: int | tuple[int, int] = 0, stride: int | tuple[int, int] = 1,
                 dilation: int | tuple[int, int] = 1, groups: int = 1, num_message_bits: int = 0,
                 weight_exp: int = 0, num_weight_bits: int = 8, name: str | None = None,
                 log_config: LogConfig | None = None) -> None:
        where = "Conv"
        try:
            w, input_shape, output_shape, padding, stride, dilation, groups = _syn.check_conv(
                weight, input_shape, padding, stride, dilation, groups, where)
            num_message_bits = _syn.check_int(num_message_bits, where, "num_message_bits", 0, 32)
            weight_exp = _syn.check_int(weight_exp, where, "weight_exp", -24, 24)
            if _syn.check_int(num_weight_bits, where, "num_weight_bits", 1, 9) != 8:
                raise ValueError(f"{where}: num_weight_bits={num_weight_bits} is not supported "
                                 f"(lava-nc's Conv ignores it); truncate the weights instead")
        except (TypeError, ValueError):
            # leave a consistent (empty) Process behind: lava's __del__ calls stop()
            super().__init__(name=name, log_config=log_config)
            raise
        super().__init__(weight=w, input_shape=input_shape, padding=padding, stride=stride,
                         dilation=dilation, groups=groups, num_message_bits=num_message_bits,
                         weight_exp=weight_exp, name=name, log_config=log_config)
        self.input_shape = input_shape
        self.output_shape = output_shape
        self.s_in = InPort(shape=input_shape)
        self.a_out = OutPort(shape=output_shape)
        self.weight = Var(shape=w.shape, init=w)
        self.kernel_size = Var(shape=(2,), init=np.array(w.shape[1:3]))
        self.padding = Var(shape=(2,), init=np.array(padding))
        self.stride = Var(shape=(2,), init=np.array(stride))
        self.dilation = Var(shape=(2,), init=np.array(dilation))
        self.groups = Var(shape=(1,), init=groups)
        self.num_message_bits = Var(shape=(1,), init=num_message_bits)
        self.weight_exp = Var(shape=(1,), init=weight_exp)
        self.a_buf = Var(shape=output_shape, init=0)
        _syn.warm_up()  # compile in the host, before Lava forks the workers
