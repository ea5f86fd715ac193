"""Axonal delays for training (lava-dl ``slayer.axon.delay``): a fixed shift and a learnable one.

Tensors are ``N, C, (H, W, ...,) T`` with time last. Both operations are one pass of
:func:`lava_dl.core.delay.shift_time` or :func:`~lava_dl.core.delay.shift_rows` (or their
adjoints) over the activations, and their outputs and input gradients are stored time-major
(memory ordered ``N, T, C, ...``) like the synapses' and neurons' outputs. CUDA tensors run
the CUDA kernels of the same scalar rules (:func:`lava_dl.slayer._cuda.shift_rows`,
:func:`~lava_dl.slayer._cuda.shift_rows_adjoint`, numba-cuda) on their step rows, without a
host copy (an input not stored time-major is first copied time-major on its device). The
deployed counterpart of a trained :class:`Delay` is :class:`lava_dl.proc.delay.AxonDelay` with
``delays = trunc(delay / sampling_time)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from lava_dl.core import delay as _core
from lava_dl.slayer import _cuda, _memory
from lava_dl.slayer import checks as _checks
from lava_dl.slayer._eager import KernelFunction, eager
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
        raise NotImplementedError(f"{where}: the delay kernels run on CPU and CUDA tensors only; move the "
                                  f"network and its input to the CPU or a CUDA device (got an input on "
                                  f"{x.device})")
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
    """``x`` (``N, C, ..., T``, float, on the CPU) as an ``(N, T, K)`` numpy view if it is stored
    time-major (:func:`_row_view`), else None."""
    if x.dtype not in (torch.float32, torch.float64) or x.device.type != "cpu":
        return None
    view = _row_view(x)
    return None if view is None else view.numpy()


def _row_view(x: torch.Tensor) -> torch.Tensor | None:
    """``x`` (``N, C, ..., T``) as an ``(N, T, K)`` view of its step rows if it is stored time-major
    (memory ordered ``N, T``, then its other axes densely in any order, e.g. channels-last), else None.

    Any device and dtype; the ``K`` values of a row are in ``x``'s memory order."""
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
    return x.detach().as_strided((n, steps, width), (steps * width, width, 1))


def _new_rows_like(x: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """A new tensor with the strides of ``x`` (:func:`_rows` holds for ``x``), from the kernels'
    buffer pool, and its ``(N, T, K)`` array."""
    n, steps = x.shape[0], x.shape[-1]
    rows = _memory.empty((n, steps, math.prod(x.shape[1:-1])), _NUMPY_DTYPES[x.dtype])
    return torch.from_numpy(rows).as_strided(x.shape, x.stride()), rows


def _element_shifts(x: torch.Tensor, shifts: np.ndarray) -> np.ndarray:
    """``shifts`` (``(C, 1)`` per channel or ``(C, S)`` per position) as one int64 shift per value
    of a step row of ``x``, in ``x``'s memory order (:func:`_rows`)."""
    return _element_shift_tensor(x, torch.from_numpy(np.ascontiguousarray(shifts, np.int64))).numpy()


def _element_shift_tensor(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """:func:`_element_shifts` on tensors: ``shifts`` (int64 ``(C, 1)`` or ``(C, S)``) as a ``(K,)``
    int64 tensor on ``shifts``' device, in the memory order of ``x``'s step rows (:func:`_row_view`)."""
    inner = x.shape[1:-1]
    per_value = torch.empty_strided(inner, x.stride()[1:-1], dtype=torch.int64, device=shifts.device)
    spread = (1,) * (len(inner) - 1)
    per_value.copy_(shifts.reshape(shifts.shape[0], *(spread if shifts.shape[1] == 1 else inner[1:]))
                    .expand(inner))
    return per_value.as_strided((math.prod(inner),), (1,))


def _channel_sums(x: torch.Tensor, per_value: np.ndarray) -> np.ndarray:
    """Sum per channel (axis 1) of values given per element of a step row in ``x``'s memory order."""
    return _channel_sum_tensor(x, torch.from_numpy(per_value)).numpy()


def _channel_sum_tensor(x: torch.Tensor, per_value: torch.Tensor) -> torch.Tensor:
    """:func:`_channel_sums` on a ``(K,)`` tensor (on its device): ``(C,)`` sums, same order."""
    inner = x.shape[1:-1]
    return per_value.as_strided(inner, x.stride()[1:-1]).reshape(inner[0], -1).sum(1)


# --------------------------------------------------------------------------- CUDA tensors


def _uses_cuda_kernels(x: torch.Tensor) -> bool:
    """Whether ``x`` goes to the CUDA kernels (:mod:`lava_dl.slayer._cuda`): CUDA tensors.

    ``tests/_cuda_sim_check.py`` replaces it to send CPU tensors through the CUDA path in numba's
    CUDA simulator; the decision is taken at the forward call and kept for the backward one."""
    return x.device.type == "cuda"


def _device_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` (or, unless stored time-major, a time-major copy of it) and its ``(N, T, K)`` step rows
    (:func:`_row_view`), on its device. ``x`` must not be empty."""
    x = x.detach().resolve_neg()
    rows = _row_view(x)
    if rows is None:
        x = x.movedim(-1, 1).contiguous().movedim(1, -1)
        rows = _row_view(x)
    return x, rows


def _device_rows_like(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A new tensor with the shape, dtype, device and strides of ``x`` (stored time-major) and its
    step rows."""
    out = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=x.device)
    return out, _row_view(out)


def _device_shift(x: torch.Tensor, shifts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift ``x`` by ``shifts`` (int64 ``(C, 1)`` or ``(C, S)`` on ``x``'s device) with the CUDA
    kernel :func:`lava_dl.slayer._cuda.shift_rows`: the output (stored as ``x`` if ``x`` is stored
    time-major, else time-major) and the shift of each value of its step rows."""
    if x.numel() == 0:
        return torch.empty_like(x), shifts.new_empty(0)
    stored, rows = _device_rows(x)
    per_value = _element_shift_tensor(stored, shifts)
    out, out_rows = _device_rows_like(stored)
    _cuda.shift_rows(rows, per_value, out_rows)
    return out, per_value


def _device_learnable_backward(ctx, grad: torch.Tensor) -> tuple:
    """Backward of :class:`_LearnableShift` on the CUDA kernels: the reverse shift and, when
    needed, lava-dl's delay gradient (:func:`lava_dl.slayer._cuda.shift_rows_adjoint`, one value
    per value of a step row, then summed per channel as on the CPU)."""
    (y,) = ctx.saved_tensors
    shape, dtype = ctx.delay_meta
    want_delay = ctx.needs_input_grad[1]
    grad_delay = None
    if y.numel() == 0:
        grad_x = torch.zeros_like(y)
        if want_delay:
            grad_delay = torch.zeros(shape, dtype=dtype, device=y.device)
        return (grad_x if ctx.needs_input_grad[0] else None), grad_delay, None, None
    grad = grad.detach().resolve_neg()
    if grad.stride() != y.stride():  # pair each gradient with its output value: y's memory order
        grad = torch.empty_strided(y.shape, y.stride(), dtype=y.dtype, device=y.device).copy_(grad)
    grad_x, grad_rows = _device_rows_like(y)
    if want_delay:
        per_value = torch.empty(grad_rows.shape[2], dtype=torch.float64, device=y.device)
        _cuda.shift_rows_adjoint(_row_view(grad), _row_view(y), ctx.element_shifts, grad_rows, per_value)
        grad_delay = (_channel_sum_tensor(y, per_value) * ctx.grad_scale).to(dtype).reshape(shape)
    else:
        _cuda.shift_rows(_row_view(grad), -ctx.element_shifts, grad_rows)
    return (grad_x if ctx.needs_input_grad[0] else None), grad_delay, None, None


def _sampling_time(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: sampling_time must be a positive number, got {value!r}")
    return float(value)


class _Shift(KernelFunction):
    """Fixed shift by ``shifts`` (``(C, 1)`` or ``(C, S)`` steps); the input gradient is the reverse shift."""

    @staticmethod
    def forward(ctx, x, shifts):
        geometry = (x.shape[0], x.shape[-1], x.shape[1], math.prod(x.shape[2:-1]))
        ctx.shifts, ctx.geometry = shifts, geometry
        ctx.on_cuda = _uses_cuda_kernels(x)
        if ctx.on_cuda:  # the CUDA kernel of the same rules, on x's device
            ctx.device_shifts = torch.from_numpy(np.ascontiguousarray(shifts, np.int64)).to(x.device)
            return _keep_mark(_device_shift(x, ctx.device_shifts)[0], x)
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
        if ctx.on_cuda:
            return _device_shift(grad, -ctx.device_shifts)[0], None
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


class _LearnableShift(KernelFunction):
    """Per-channel shift by ``trunc(delay / sampling_time)`` steps with lava-dl's delay gradient."""

    @staticmethod
    def forward(ctx, x, delay, grad_scale: float, sampling_time: float):
        geometry = (x.shape[0], x.shape[-1], x.shape[1], math.prod(x.shape[2:-1]))
        ctx.on_cuda = _uses_cuda_kernels(x)
        ctx.grad_scale, ctx.delay_meta = grad_scale, (delay.shape, delay.dtype)
        _cuda.check_devices(x, delay=delay)
        # in the delay's dtype, as lava-dl (a delay just below an integer stays below it)
        steps = torch.trunc(delay.detach().reshape(-1) / sampling_time).to(torch.int64)
        if ctx.on_cuda:  # the CUDA kernel of the same rules, on x's device (no host copy, no sync)
            out, ctx.element_shifts = _device_shift(x, steps.reshape(-1, 1))
            ctx.save_for_backward(out)
            return _keep_mark(out, x)
        shifts = steps.numpy()
        rows = _rows(x)
        if rows is not None:  # one pass over contiguous step rows, in any neuron order
            out, out_rows = _new_rows_like(x)
            _core.shift_rows(rows, _element_shifts(x, shifts.reshape(-1, 1)), out_rows)
        else:
            out, arr = _new_like(x, geometry)
            _core.shift_time(_array(x, geometry), shifts.reshape(-1, 1), arr)
        ctx.save_for_backward(out)
        ctx.shifts, ctx.geometry = shifts, geometry
        return _keep_mark(out, x)

    @staticmethod
    def backward(ctx, grad):
        if ctx.on_cuda:
            return _device_learnable_backward(ctx, grad)
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
        ``N, C, (H, W, ...,) T``, time last (float, integer or bool), on the CPU or a CUDA device
        (the CUDA kernel of the same rule, numba-cuda). With a scalar ``delay_val`` any shape
        with time last is accepted, e.g. ``(T,)`` or ``(batch, T)`` (as lava-dl's).
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
    if isinstance(input, torch.Tensor) and 1 <= input.dim() < 3 and (
            not isinstance(delay_val, torch.Tensor) or delay_val.numel() == 1):
        # a scalar delay of a series or a batch of series: the same shift as one channel each
        series = input.reshape(-1, 1, input.shape[-1])
        return delay(series, delay_val, sampling_time).reshape(input.shape)
    n, steps, channels, width = _check_input(input, "delay", floating=False)
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

    @eager
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Delay every channel of ``input`` (``N, C, (H, W, ...,) T``, float32/float64, CPU or CUDA)."""
        _check_input(input, "Delay", floating=True)
        if not self.init:
            with torch.no_grad():
                self.delay.data = torch.rand(input.shape[1], dtype=self.delay.dtype, device=input.device)
            self.init = True
        self.clamp()
        if self.delay.numel() != input.shape[1]:
            raise ValueError(f"Delay: expected {self.delay.numel()} channels (axis 1) as delays, "
                             f"got input shape {tuple(input.shape)}")
        return _LearnableShift.apply(input, self.delay, float(self.grad_scale), self.sampling_time)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        stored = state_dict.get(prefix + "delay")
        if (self.init and isinstance(stored, torch.Tensor) and stored.numel() == 1
                and self.delay.numel() > 1):
            # lava-dl's placeholder of a delay never run (its channels come with the first input):
            # nothing to load, this one keeps its initial delays
            state_dict[prefix + "delay"] = self.delay.detach().clone()
        elif not self.init and isinstance(stored, torch.Tensor) and stored.dim() == 1:
            with torch.no_grad():
                self.delay.data = torch.zeros(stored.shape, dtype=self.delay.dtype, device=self.delay.device)
            self.init = True
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        channels = self.delay.numel() if self.init else "lazy"
        return (f"channels={channels}, sampling_time={self.sampling_time}, max_delay={self.max_delay}, "
                f"grad_scale={self.grad_scale}")
