"""Axonal delays for training (lava-dl ``slayer.axon.delay``): a fixed shift and a learnable one.

Tensors are ``N, C, (H, W, ...,) T`` with time last. Both operations are one pass of
:func:`lava_dl.core.delay.shift_time` (or its adjoint) over the activations, and
their outputs and input gradients are stored time-major (memory ordered
``N, T, C, ...``) like the synapses' and neurons' outputs. The deployed counterpart
of a trained :class:`Delay` is :class:`lava_dl.proc.delay.AxonDelay` with
``delays = trunc(delay / sampling_time)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from lava_dl.core import delay as _core
from lava_dl.slayer import _memory
from lava_dl.slayer import checks as _checks
from lava_dl.slayer.utils import _empty_time_major

_NUMPY_DTYPES = {
    torch.float32: np.float32, torch.float64: np.float64, torch.bool: np.bool_, torch.uint8: np.uint8,
    torch.int8: np.int8, torch.int16: np.int16, torch.int32: np.int32, torch.int64: np.int64,
}
_Geometry = tuple[int, int, int, int]  # N, T, C, S (S: product of the spatial sizes after C)


def _check_input(x, where: str, floating: bool) -> _Geometry:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 3:
        raise ValueError(f"{where}: expected an input N, C, (H, W,) T with time last (at least 3-D), "
                         f"got shape {tuple(x.shape)}")
    if x.device.type not in ("cpu", "cuda"):
        raise NotImplementedError(f"{where}: the delay kernel runs on CPU tensors (CUDA ones through a "
                                  f"host copy); move the network and its input to the CPU or a CUDA "
                                  f"device (got an input on {x.device})")
    allowed = (torch.float32, torch.float64) if floating else tuple(_NUMPY_DTYPES)
    if x.dtype not in allowed:
        raise TypeError(f"{where}: expected a tensor of dtype {', '.join(str(d) for d in allowed)}, "
                        f"got {x.dtype}")
    return x.shape[0], x.shape[-1], x.shape[1], math.prod(x.shape[2:-1])


def _array(x: torch.Tensor, geometry: _Geometry) -> np.ndarray:
    """``x`` as an ``(N, T, C, S)`` numpy array, a view for any strides that allow one."""
    return x.detach().movedim(-1, 1).resolve_neg().numpy().reshape(geometry)


def _new_like(x: torch.Tensor, geometry: _Geometry) -> tuple[torch.Tensor, np.ndarray]:
    """A new tensor shaped like ``x`` stored time-major (channels-last if ``x`` is), and its
    ``(N, T, C, S)`` array (a strided view)."""
    if x.dtype in (torch.float32, torch.float64):
        out = _empty_time_major(x)
        moved = out.movedim(-1, 1).numpy()
        view = moved.reshape(geometry)
        if np.shares_memory(view, moved):
            return out, view
    arr = np.empty(geometry, _NUMPY_DTYPES[x.dtype])
    n, steps = geometry[0], geometry[1]
    return torch.from_numpy(np.moveaxis(arr.reshape(n, steps, *x.shape[1:-1]), 1, -1)), arr


def _rows(x: torch.Tensor) -> np.ndarray | None:
    """``x`` (``N, C, ..., T``) as an ``(N, T, K)`` numpy view if it is stored time-major (memory
    ordered ``N, T``, then its other axes densely in any order, e.g. channels-last), else None."""
    if x.dtype not in (torch.float32, torch.float64) or x.device.type != "cpu":
        return None
    n, steps, inner = x.shape[0], x.shape[-1], x.shape[1:-1]
    width = math.prod(inner)
    if n * steps * width == 0 or (n > 1 and x.stride(0) != steps * width) \
            or (steps > 1 and x.stride(-1) != width):
        return None
    expected = 1
    for stride, size in sorted((st, sz) for st, sz in zip(x.stride()[1:-1], inner) if sz > 1):
        if stride != expected:
            return None
        expected *= size
    return x.detach().as_strided((n, steps, width), (steps * width, width, 1)).numpy()


def _new_rows_like(x: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """A new tensor with the strides of ``x`` (:func:`_rows` holds for ``x``), from the kernels'
    buffer pool, and its ``(N, T, K)`` array."""
    n, steps = x.shape[0], x.shape[-1]
    rows = _memory.empty((n, steps, math.prod(x.shape[1:-1])), _NUMPY_DTYPES[x.dtype])
    return torch.from_numpy(rows).as_strided(x.shape, x.stride()), rows


def _element_shifts(x: torch.Tensor, shifts: np.ndarray) -> np.ndarray:
    """``shifts`` (``(C, 1)`` per channel or ``(C, S)`` per position) as one int64 shift per value
    of a step row of ``x``, in ``x``'s memory order (:func:`_rows`)."""
    inner = x.shape[1:-1]
    per_value = torch.empty_strided(inner, x.stride()[1:-1], dtype=torch.int64)
    spread = (1,) * (len(inner) - 1)
    values = torch.from_numpy(np.ascontiguousarray(shifts, np.int64))
    per_value.copy_(values.reshape(shifts.shape[0], *(spread if shifts.shape[1] == 1 else inner[1:]))
                    .expand(inner))
    return per_value.as_strided((math.prod(inner),), (1,)).numpy()


def _channel_sums(x: torch.Tensor, per_value: np.ndarray) -> np.ndarray:
    """Sum per channel (axis 1) of values given per element of a step row in ``x``'s memory order."""
    inner = x.shape[1:-1]
    spread = torch.from_numpy(per_value).as_strided(inner, x.stride()[1:-1])
    return spread.reshape(inner[0], -1).sum(1).numpy()


def _sampling_time(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: sampling_time must be a positive number, got {value!r}")
    return float(value)


class _Shift(torch.autograd.Function):
    """Fixed shift by ``shifts`` (``(C, 1)`` or ``(C, S)`` steps); the input gradient is the reverse shift."""

    @staticmethod
    def forward(ctx, x, shifts):
        geometry = (x.shape[0], x.shape[-1], x.shape[1], math.prod(x.shape[2:-1]))
        ctx.shifts, ctx.geometry = shifts, geometry
        rows = _rows(x)
        if rows is not None:  # one pass over contiguous step rows, in any neuron order
            out, out_rows = _new_rows_like(x)
            _core.shift_rows(rows, _element_shifts(x, shifts), out_rows)
            return _keep_mark(out, x)
        out, arr = _new_like(x, geometry)
        _core.shift_time(_array(x, geometry), shifts, arr)
        return _keep_mark(out, x)

    @staticmethod
    def backward(ctx, grad):
        rows = _rows(grad)
        if rows is not None:
            grad_x, grad_rows = _new_rows_like(grad)
            _core.shift_rows(rows, -_element_shifts(grad, ctx.shifts), grad_rows)
            return grad_x, None
        grad_x, arr = _new_like(grad, ctx.geometry)
        _core.shift_time(_array(grad, ctx.geometry), -ctx.shifts, arr)
        return grad_x, None


def _keep_mark(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A shift of values proven bounded (or binary) is bounded (binary) alike: keep the mark
    (:func:`lava_dl.slayer.checks.mark_bound`) so that the next synapse keeps its fast path."""
    bound = _checks.marked_bound(x)
    if bound is not None:
        _checks.mark_bound(out, bound, _checks.marked_binary(x))
    return out


class _LearnableShift(torch.autograd.Function):
    """Per-channel shift by ``trunc(delay / sampling_time)`` steps with lava-dl's delay gradient."""

    @staticmethod
    def forward(ctx, x, delay, grad_scale: float, sampling_time: float):
        geometry = (x.shape[0], x.shape[-1], x.shape[1], math.prod(x.shape[2:-1]))
        # in the delay's dtype, as lava-dl (a delay just below an integer stays below it)
        shifts = torch.trunc(delay.detach().reshape(-1) / sampling_time).to(torch.int64).numpy()
        rows = _rows(x)
        if rows is not None:  # one pass over contiguous step rows, in any neuron order
            out, out_rows = _new_rows_like(x)
            _core.shift_rows(rows, _element_shifts(x, shifts.reshape(-1, 1)), out_rows)
        else:
            out, arr = _new_like(x, geometry)
            _core.shift_time(_array(x, geometry), shifts.reshape(-1, 1), arr)
        ctx.save_for_backward(out)
        ctx.shifts, ctx.geometry, ctx.grad_scale = shifts, geometry, grad_scale
        ctx.delay_meta = (delay.shape, delay.dtype)
        return _keep_mark(out, x)

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        geometry = ctx.geometry
        y_rows = _rows(y)
        if y_rows is not None and grad.stride() != y.stride():
            # e.g. a Flatten's gradient in (C, H, W) order for channels-last spikes: one reordering
            # copy, then the row kernel (pairs each gradient with its output value)
            grad = _new_rows_like(y)[0].copy_(grad)
        rows = _rows(grad)
        grad_delay = None
        if rows is not None and y_rows is not None:
            grad_x, grad_rows = _new_rows_like(grad)
            reverse = -_element_shifts(grad, ctx.shifts.reshape(-1, 1))
            if ctx.needs_input_grad[1]:
                per_value = np.empty(rows.shape[2], np.float64)
                _core.shift_rows_adjoint(rows, y_rows, -reverse, grad_rows, per_value)
                gd = _channel_sums(grad, per_value)
            else:
                _core.shift_rows(rows, reverse, grad_rows)
        else:
            grad_x, arr = _new_like(grad, geometry)
            g = _array(grad, geometry)
            if ctx.needs_input_grad[1]:
                gd = np.empty(geometry[2], np.float64)
                _core.shift_time_adjoint(g, _array(y, geometry), ctx.shifts, arr, gd)
            else:
                _core.shift_time(g, -ctx.shifts.reshape(-1, 1), arr)
        if ctx.needs_input_grad[1]:
            shape, dtype = ctx.delay_meta
            grad_delay = torch.from_numpy(gd * ctx.grad_scale).to(dtype).reshape(shape)
        return (grad_x if ctx.needs_input_grad[0] else None), grad_delay, None, None


def delay(input: torch.Tensor, delay_val=1, sampling_time=1) -> torch.Tensor:
    """Delay a signal along time by a fixed amount (no gradient for the delay).

    Every value moves ``k = trunc(delay_val / sampling_time)`` steps later (earlier for
    a negative ``delay_val``); the steps left empty are zero. The input gradient is the
    reverse shift.

    Parameters
    ----------
    input : torch.Tensor
        ``N, C, (H, W, ...,) T``, time last (float, integer or bool); a CUDA input is shifted on
        a host copy and returned to its device.
    delay_val : float, int or torch.Tensor, default 1
        The delay, in the units of ``sampling_time``: a scalar, or (as lava-dl) a tensor
        with one value per position ``prod(input.shape[1:-1])`` (in ``C, H, W`` order).
    sampling_time : float, default 1
        Duration of one time step.

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``input``, stored time-major.

    Examples
    --------
    >>> x_delayed = delay(x, 2)  # two steps later
    """
    n, steps, channels, width = _check_input(input, "delay", floating=False)
    if input.device.type != "cpu":  # no CUDA kernel: the CPU one on a host copy, autograd moves it back
        return _keep_mark(delay(input.cpu(), delay_val, sampling_time).to(input.device), input)
    ts = _sampling_time(sampling_time, "delay")
    try:
        values = delay_val.detach() if isinstance(delay_val, torch.Tensor) else torch.as_tensor(delay_val)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"delay: delay_val must be a real number or tensor, got {delay_val!r}") from err
    if values.dtype == torch.bool or values.is_complex():
        raise TypeError(f"delay: delay_val must be a real number or tensor, got {delay_val!r}")
    values = values.reshape(-1).to("cpu")
    if not torch.all(torch.isfinite(values.double())):
        raise ValueError(f"delay: delay_val must be finite, got {delay_val!r}")
    if values.numel() == 1:
        shifts = np.full((channels, 1), int(values.item() / ts), np.int64)
    elif values.numel() == channels * width:
        shifts = torch.trunc(values / ts).to(torch.int64).numpy().reshape(channels, width)
    else:
        raise ValueError(f"delay: delay_val must be a scalar or have one value per position "
                         f"({channels * width} for input shape {tuple(input.shape)}), got {values.numel()}")
    return _Shift.apply(input, shifts)


class Delay(nn.Module):
    """Learnable axonal delay: one real delay per channel (axis 1), lava-dl's ``slayer.axon.Delay``.

    The forward pass clamps the delays in place to ``[0, max_delay]`` and moves channel
    ``c`` (all its spatial positions) ``k_c = trunc(delay[c] / sampling_time)`` steps later,
    zero-filling the first ``k_c`` steps: ``y[n, c, ..., t] = x[n, c, ..., t - k_c]``.

    Backward: the input gradient is the reverse shift, ``dL/dx[..., t] = dL/dy[..., t + k_c]``
    (0 past the end). The delay gradient is lava-dl's finite difference of the output::

        dL/d delay[c] = grad_scale * sum_{n, spatial, t} dL/dy[n, c, ..., t] * (y[.., t-1] - y[.., t])

    with ``y[..., -1] = 0``: delaying a signal by one more step changes it by
    ``y[t-1] - y[t]``. (lava-dl convolves ``y`` with the filter ``[-1, 1] / sampling_time``
    and multiplies the sum by ``sampling_time``: the two cancel.)

    Parameters
    ----------
    sampling_time : float, default 1
        Duration of one time step (the delays are in the same units).
    max_delay : float, optional
        Upper clamp of the delays (None: only ``>= 0``).
    grad_scale : float, default 1
        Multiplies the delay gradient.
    num_channels : int, optional
        Number of channels. Given, the delays are initialised at construction; else
        (as lava-dl) at the first forward call, from the input's channel count (an
        optimizer built before that call still holds the same parameter). Initial
        delays are uniform in ``[0, 1)`` (i.e. zero steps).

    Attributes
    ----------
    delay : torch.nn.Parameter
        ``(C,)`` real delays (a ``(1,)`` placeholder until initialised).
    init : bool
        Whether the delays are initialised.

    Notes
    -----
    Loading a state dict into an uninitialised module adopts the stored delays' shape
    (lava-dl needs a forward call first).

    Examples
    --------
    >>> axon_delay = Delay(max_delay=62, num_channels=32)
    >>> y = axon_delay(x)  # x: N, 32, T
    """

    def __init__(self, sampling_time: float = 1, max_delay: float | None = None, grad_scale: float = 1,
                 num_channels: int | None = None) -> None:
        super().__init__()
        where = "Delay"
        self.sampling_time = _sampling_time(sampling_time, where)
        if max_delay is not None and (isinstance(max_delay, bool) or not isinstance(
                max_delay, (int, float, np.integer, np.floating)) or not max_delay >= 0):
            raise ValueError(f"{where}: max_delay must be None or a number >= 0, got {max_delay!r}")
        self.max_delay = max_delay
        if isinstance(grad_scale, bool) or not isinstance(grad_scale, (int, float, np.integer, np.floating)) \
                or not math.isfinite(grad_scale):
            raise ValueError(f"{where}: grad_scale must be a finite number, got {grad_scale!r}")
        self.grad_scale = grad_scale
        if num_channels is None:
            self.delay = nn.Parameter(torch.zeros(1))
            self.init = False
        else:
            if isinstance(num_channels, bool) or not isinstance(num_channels, (int, np.integer)) \
                    or num_channels < 1:
                raise ValueError(f"{where}: num_channels must be None or a positive int, "
                                 f"got {num_channels!r}")
            self.delay = nn.Parameter(torch.rand(int(num_channels)))
            self.init = True
        self.clamp()

    @property
    def shape(self) -> torch.Size | None:
        """Shape of the delays (None until initialised)."""
        return self.delay.shape if self.init else None

    def clamp(self) -> None:
        """Clamp the delays in place to ``[0, max_delay]`` (done before every forward)."""
        if not self.init:
            return
        with torch.no_grad():
            if self.max_delay is None:
                self.delay.clamp_(min=0)
            else:
                self.delay.clamp_(0, self.max_delay)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Delay every channel of ``x`` (``N, C, (H, W, ...,) T``, float32/float64; CUDA: on a host copy)."""
        _check_input(x, "Delay", floating=True)
        if not self.init:
            with torch.no_grad():
                self.delay.data = torch.rand(x.shape[1], dtype=self.delay.dtype, device=x.device)
            self.init = True
        self.clamp()
        if self.delay.numel() != x.shape[1]:
            raise ValueError(f"Delay: expected {self.delay.numel()} channels (axis 1) as delays, "
                             f"got input shape {tuple(x.shape)}")
        if x.device.type != "cpu":  # no CUDA kernel: the CPU one on host copies, autograd moves them back
            out = _LearnableShift.apply(x.cpu(), self.delay.cpu(), float(self.grad_scale), self.sampling_time)
            return _keep_mark(out.to(x.device), x)
        return _LearnableShift.apply(x, self.delay, float(self.grad_scale), self.sampling_time)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        stored = state_dict.get(prefix + "delay")
        if not self.init and isinstance(stored, torch.Tensor) and stored.dim() == 1:
            with torch.no_grad():
                self.delay.data = torch.zeros(stored.shape, dtype=self.delay.dtype, device=self.delay.device)
            self.init = True
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        channels = self.delay.numel() if self.init else "lazy"
        return (f"channels={channels}, sampling_time={self.sampling_time}, max_delay={self.max_delay}, "
                f"grad_scale={self.grad_scale}")
