"""Convolution-like synapse Lava Processes (arithmetic in :mod:`lava_dl.core.synapse`).

``Conv`` (lava-nc's convolution), ``ConvT`` (its transpose), ``Pool`` and ``Unpool``
(one kernel shared by every channel). All use Lava's ``(x, y, c)`` layout with
geometry pairs in ``(x, y)`` order, have one step of latency, and share the fixed-point
semantics of ``Conv``: the integer sum is shifted by ``weight_exp`` and then wrapped
to signed 24 bits.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess, LogConfig
from lava.magma.core.process.variable import Var

from lava_dl.core import synapse as _syn

IntOrPair = int | tuple[int, int]


def _declare(proc: AbstractProcess, weight: np.ndarray, input_shape, output_shape, padding, stride, dilation,
             groups: int, num_message_bits: int, weight_exp: int) -> None:
    """Ports and Vars shared by the convolution-like Processes (the models' common interface)."""
    proc.input_shape = input_shape
    proc.output_shape = output_shape
    proc.s_in = InPort(shape=input_shape)
    proc.a_out = OutPort(shape=output_shape)
    proc.weight = Var(shape=weight.shape, init=weight)
    kernel_size = weight.shape[1:3] if weight.ndim == 4 else weight.shape
    proc.kernel_size = Var(shape=(2,), init=np.array(kernel_size))
    proc.padding = Var(shape=(2,), init=np.array(padding))
    proc.stride = Var(shape=(2,), init=np.array(stride))
    proc.dilation = Var(shape=(2,), init=np.array(dilation))
    proc.groups = Var(shape=(1,), init=groups)
    proc.num_message_bits = Var(shape=(1,), init=num_message_bits)
    proc.weight_exp = Var(shape=(1,), init=weight_exp)
    proc.a_buf = Var(shape=output_shape, init=0)


def _check_common(where: str, num_message_bits, weight_exp) -> tuple[int, int]:
    return (_syn.check_int(num_message_bits, where, "num_message_bits", 0, 32),
            _syn.check_int(weight_exp, where, "weight_exp", -24, 24))


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
                 padding: IntOrPair = 0, stride: IntOrPair = 1, dilation: IntOrPair = 1, groups: int = 1,
                 num_message_bits: int = 0, weight_exp: int = 0, num_weight_bits: int = 8,
                 name: str | None = None, log_config: LogConfig | None = None) -> None:
        where = "Conv"
        try:
            w, input_shape, output_shape, padding, stride, dilation, groups = _syn.check_conv(
                weight, input_shape, padding, stride, dilation, groups, where)
            num_message_bits, weight_exp = _check_common(where, num_message_bits, weight_exp)
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
        _declare(self, w, input_shape, output_shape, padding, stride, dilation, groups, num_message_bits,
                 weight_exp)


class ConvT(AbstractProcess):
    """2-D transposed convolution synapse on Lava's ``(x, y, c)`` layout, with one step of latency.

    The adjoint of :class:`Conv` with the same weight array: input ``s[p, c]`` adds
    ``s * weight[c, i, j, k]`` to output ``(p_x * stride_x - pad_x + dil_x * (kx - 1 - i),
    p_y * stride_y - pad_y + dil_y * (ky - 1 - j), g * out/groups + k)`` with ``g`` the
    group of ``c``. This is torch's ``conv_transpose2d`` (no output padding) with the
    kernel flipped, as :class:`Conv` is torch's ``conv2d`` with the kernel flipped: a
    slayer ``ConvTranspose`` weight converts with
    :func:`lava_dl.slayer.synapse.conv_transpose_weight_to_lava`. Output size per axis
    ``(n - 1) * stride - 2 * padding + dilation * (k - 1) + 1``. Fixed point as
    :class:`Conv` (shift by ``weight_exp``, then wrap to signed 24 bits).

    Parameters
    ----------
    weight : numpy.ndarray
        Integer kernel ``(in, kx, ky, out / groups)`` with values in ``[-256, 255]``.
    input_shape : tuple of int
        ``(x, y, c_in)`` = ``(W, H, C)``.
    padding, stride, dilation : int or tuple of int, defaults 0, 1, 1
        Geometry; tuples are in ``(x, y)`` order.
    groups : int, default 1
        Groups; must divide the input channels.
    num_message_bits : int, default 0
        0: binary input (every nonzero input counts as 1); otherwise graded input.
    weight_exp : int, default 0
        Arithmetic shift of every sum before the 24-bit wrap (as :class:`Conv`).
    name : str, optional
        Process name.
    log_config : LogConfig, optional
        Lava logging configuration.

    Attributes
    ----------
    input_shape, output_shape : tuple of int
        ``(x, y, c)`` shapes of ``s_in`` and ``a_out`` (``output_shape[2] = groups * weight.shape[3]``).
    """

    def __init__(self, *, weight: np.ndarray, input_shape: tuple[int, int, int],
                 padding: IntOrPair = 0, stride: IntOrPair = 1, dilation: IntOrPair = 1, groups: int = 1,
                 num_message_bits: int = 0, weight_exp: int = 0, name: str | None = None,
                 log_config: LogConfig | None = None) -> None:
        where = "ConvT"
        try:
            w, input_shape, output_shape, padding, stride, dilation, groups = _syn.check_conv_transpose(
                weight, input_shape, padding, stride, dilation, groups, where)
            num_message_bits, weight_exp = _check_common(where, num_message_bits, weight_exp)
        except (TypeError, ValueError):
            super().__init__(name=name, log_config=log_config)
            raise
        super().__init__(weight=w, input_shape=input_shape, padding=padding, stride=stride,
                         dilation=dilation, groups=groups, num_message_bits=num_message_bits,
                         weight_exp=weight_exp, name=name, log_config=log_config)
        _declare(self, w, input_shape, output_shape, padding, stride, dilation, groups, num_message_bits,
                 weight_exp)


class _SharedKernel(AbstractProcess):
    """Pool/Unpool: one kernel ``(kx, ky)`` for every channel (depthwise, ``groups`` = channels)."""

    _transposed = False

    def __init__(self, *, input_shape: tuple[int, int, int], kernel: int | np.ndarray,
                 kernel_size: IntOrPair | None = None, stride: IntOrPair | None = None,
                 padding: IntOrPair = 0, dilation: IntOrPair = 1, num_message_bits: int = 0,
                 weight_exp: int = 0, name: str | None = None, log_config: LogConfig | None = None) -> None:
        where = type(self).__name__
        try:
            k, input_shape, output_shape, padding, stride, dilation = _syn.check_pool(
                kernel, kernel_size, input_shape, padding, stride, dilation, self._transposed, where)
            num_message_bits, weight_exp = _check_common(where, num_message_bits, weight_exp)
        except (TypeError, ValueError):
            super().__init__(name=name, log_config=log_config)
            raise
        groups = input_shape[2]
        super().__init__(kernel=k, input_shape=input_shape, padding=padding, stride=stride,
                         dilation=dilation, num_message_bits=num_message_bits, weight_exp=weight_exp,
                         name=name, log_config=log_config)
        _declare(self, k, input_shape, output_shape, padding, stride, dilation, groups, num_message_bits,
                 weight_exp)


class Pool(_SharedKernel):
    """Pooling synapse: :class:`Conv` with one kernel shared by every channel (depthwise).

    ``Pool(kernel=K)`` equals lava-nc's ``Conv`` with the weight ``(c, kx, ky, 1)``
    (every ``[ch, :, :, 0]`` equal to ``K``) and ``groups = c``: per channel, a true
    convolution with ``K`` (kernel flipped relative to torch; a slayer ``Pool`` weight
    converts with :func:`lava_dl.slayer.synapse.pool_weight_to_lava`). With the
    default all-equal kernel this is sum pooling. Output size per axis is the
    floor-mode ``(n + 2 * padding - dilation * (k - 1) - 1) // stride + 1``; nothing is
    padded implicitly. Fixed point as :class:`Conv` (shift by ``weight_exp``, then wrap
    to signed 24 bits). One step of latency.

    Parameters
    ----------
    input_shape : tuple of int
        ``(x, y, c)`` = ``(W, H, C)``.
    kernel : int or numpy.ndarray
        The shared integer kernel: an array ``(kx, ky)``, or one value for every tap
        together with ``kernel_size``. Values in ``[-256, 255]``.
    kernel_size : int or tuple of int, optional
        ``(kx, ky)``. Required for a scalar ``kernel``; must equal ``kernel.shape``
        for an array.
    stride : int or tuple of int, optional
        Defaults to the kernel size (non-overlapping windows).
    padding, dilation : int or tuple of int, defaults 0, 1
        Geometry; tuples are in ``(x, y)`` order.
    num_message_bits : int, default 0
        0: binary input (every nonzero input counts as 1); otherwise graded input.
    weight_exp : int, default 0
        Arithmetic shift of every sum before the 24-bit wrap (as :class:`Conv`).
    name : str, optional
        Process name.
    log_config : LogConfig, optional
        Lava logging configuration.

    Attributes
    ----------
    input_shape, output_shape : tuple of int
        ``(x, y, c)`` shapes of ``s_in`` and ``a_out`` (same channel count).
    weight : Var
        The kernel ``(kx, ky)``; ``groups`` holds the channel count.
    """


class Unpool(_SharedKernel):
    """Unpooling synapse: :class:`ConvT` with one kernel shared by every channel (depthwise).

    ``Unpool(kernel=K)`` is the adjoint of ``Pool(kernel=K)``, i.e. ``ConvT`` with the
    weight ``(c, kx, ky, 1)`` (every slice ``K``) and ``groups = c``; a slayer ``Unpool``
    weight converts with :func:`lava_dl.slayer.synapse.unpool_weight_to_lava`. With
    the default ``stride = kernel size`` every input is copied, times the kernel, into
    its own block. Output size per axis ``(n - 1) * stride - 2 * padding +
    dilation * (k - 1) + 1``. Fixed point as :class:`Conv`. One step of latency.

    Parameters
    ----------
    input_shape, kernel, kernel_size, stride, padding, dilation
        As :class:`Pool` (``stride`` defaults to the kernel size).
    num_message_bits, weight_exp, name, log_config
        As :class:`Pool`.

    Attributes
    ----------
    input_shape, output_shape : tuple of int
        ``(x, y, c)`` shapes of ``s_in`` and ``a_out`` (same channel count).
    weight : Var
        The kernel ``(kx, ky)``; ``groups`` holds the channel count.
    """

    _transposed = True
