"""Autograd wrappers around the compiled integer kernels of ``lava_dl.core``.

Every op runs the deployed fixed-point rule forward (CPU tensors share memory
with numpy) and a compiled surrogate-gradient adjoint backward; CUDA tensors run the
CUDA kernels of the same rules (:mod:`lava_dl.slayer._cuda`). Inputs are
``(N, *S, T)`` real tensors; per-neuron values are given one per ``(batch, neuron)``
row (see :func:`per_row`).

lava-dl's functional dynamics are submodules of this package, imported on first
access, each a thin front end of the same kernels: :mod:`.leaky_integrator`,
:mod:`.resonator`, :mod:`.adaptive_threshold`, :mod:`.adaptive_resonator` and
:mod:`.adaptive_phase_th`.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math

import numpy as np
import torch

from lava_dl.core import alif as _alif
from lava_dl.core import cuba as _cuba
from lava_dl.core import resonator as _res
from lava_dl.core.parallel import MIN_ELEMENTS_PER_THREAD
from lava_dl.slayer import _cuda, _memory
from lava_dl.slayer._eager import KernelFunction

_EMPTY_MASK3 = np.zeros((0, 0, 0), np.uint8)
_EMPTY_GRAD3 = np.zeros((0, 0, 0), np.float32)
_EMPTY_INT = np.zeros((0, 0), np.int32)
_EMPTY_INT3 = np.zeros((0, 0, 0), np.int32)
_NO_INDEX = np.zeros(0, np.int64)
#: Layers of fewer neurons than this run folded, several samples to a kernel block (see :class:`BlockLayout`).
FOLD_WIDTH = 32


#: lava-dl's functional dynamics modules (imported on first access).
_SUBMODULES = ("leaky_integrator", "resonator", "adaptive_threshold", "adaptive_resonator",
               "adaptive_phase_th")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def any_rank(num_series: int):
    """Let a functional ``dynamics(series..., ...)`` take series of any rank ``(..., T)``, as lava-dl's
    did: the first ``num_series`` arguments are time series; one of rank 1 (``T``) or 2 (``C, T``) runs
    as ``(1, 1, T)`` or ``(1, C, T)`` (per-channel parameters follow ``C``), and every tensor the
    function returns is given back the series' shape."""
    def decorate(fn):
        names = list(inspect.signature(fn).parameters)[:num_series]

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            bound = inspect.signature(fn).bind(*args, **kwargs)
            first = bound.arguments.get(names[0])
            if not isinstance(first, torch.Tensor) or first.dim() >= 3 or first.dim() == 0:
                return fn(*args, **kwargs)
            shape = first.shape
            for name in names:
                series = bound.arguments[name]
                bound.arguments[name] = series.reshape((1,) * (3 - series.dim()) + tuple(series.shape))
            result = fn(*bound.args, **bound.kwargs)
            if isinstance(result, tuple):
                return tuple(r.reshape(shape) if isinstance(r, torch.Tensor) else r for r in result)
            return result.reshape(shape)

        return wrapper
    return decorate


def _rows(x: torch.Tensor) -> int:
    """``x[..., 0].numel()`` (the ``(batch, neuron)`` rows of ``x``) without making the view."""
    shape = x.shape
    return math.prod(shape[:-1]) if shape and shape[-1] else x[..., 0].numel()


def per_row(param: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A shared (one value) or per-channel (one per ``x.shape[1]``) parameter, one value per
    ``(batch, neuron)`` row of ``x`` (``N, C, (H, W,) T``), in ``(N, *S)`` order.

    Raises
    ------
    ValueError
        If ``param`` has neither one value nor one per channel.
    """
    c = x.shape[1]
    if param.numel() == 1:
        return param.reshape(1).expand(_rows(x))
    if param.numel() != c:
        raise ValueError(f"per-channel parameter of size {param.numel()} does not match {c} channels")
    view = [1, c] + [1] * (x.dim() - 3)
    return param.reshape(view).expand(x.shape[:-1]).reshape(-1)


def truncated(value, like: torch.Tensor | None = None) -> torch.Tensor:
    """``value`` (a tensor or number) truncated toward zero in the forward pass, unchanged for the
    gradient (straight through): lava-dl's functional dynamics take integer parameters as
    ``value.to(int)``. With ``like``, on ``like``'s device (a tensor on another one is moved, its
    gradient moved back by autograd)."""
    value = torch.as_tensor(value, dtype=torch.float32, device=None if like is None else like.device)
    return value + (torch.trunc(value) - value).detach()


def state_rows(state, x: torch.Tensor, w_scale: float) -> torch.Tensor:
    """lava-dl's initial ``state`` (real units; one value, or one per ``(batch, neuron)`` of ``x``)
    as integer units ``trunc(state * w_scale)``, one int64 per row of ``x``.

    Raises
    ------
    ValueError
        If ``state`` holds neither one value nor one per row.
    """
    rows = x[..., 0].numel()
    value = torch.as_tensor(state).detach().cpu().to(torch.float64)
    ints = torch.trunc(value * w_scale).to(torch.int64).reshape(-1)
    if ints.numel() == 1:
        return ints.expand(rows).clone()
    if ints.numel() != rows:
        raise ValueError(f"state of shape {tuple(value.shape)} does not match the input's "
                         f"{tuple(x.shape[:-1])} (batch, neurons)")
    return ints.clone()


def threshold_records(v: np.ndarray, params: tuple, adapt: np.ndarray, ref: np.ndarray,
                      im: np.ndarray | None = None, im0: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """The threshold and refractory state tested at each step, by the adaptive threshold unit
    (:func:`lava_dl.core.resonator.threshold_forward`) on the integer state series ``v``.

    Parameters
    ----------
    v : ndarray of int64, shape (R, T)
        Spiking state (integer units).
    params : tuple of ndarray
        ``(dth, dref, th0, th_step)``, int64 per row.
    adapt, ref : ndarray of int64, shape (R,)
        Initial adaptation (above ``th0``) and refractory states (not modified).
    im, im0 : ndarray of int64, optional
        Imaginary state series ``(R, T)`` and its value before the first step: gate the
        spikes by the phase crossing (ADRF).

    Returns
    -------
    theta, refractory : ndarray of int64, shape (R, T)
        ``th0 + adaptation`` and the refractory state of each step, before its spike update.
    """
    theta = np.empty(v.shape, np.int64)
    refractory = np.empty(v.shape, np.int64)
    phase = np.zeros((0, 0), np.int64) if im is None else np.ascontiguousarray(im, np.int64)
    phase0 = np.zeros(0, np.int64) if im is None else np.array(im0, np.int64)
    dth, dref, th0, th_step = (np.ascontiguousarray(p, np.int64) for p in params)
    _res.threshold_forward(np.ascontiguousarray(v, np.int64), phase, phase0, dth, dref, th0, th_step,
                           np.array(adapt, np.int64), np.array(ref, np.int64), theta, refractory)
    return theta, refractory


def input_dtype(x: torch.Tensor):
    """numpy dtype the kernels read the input ``x`` in (float64 stays float64: exact graded sums)."""
    return np.float64 if x.dtype == torch.float64 else np.float32


def message_dtype(x: torch.Tensor, graded: bool):
    """numpy dtype of a neuron's messages for input ``x``.

    Graded payloads are float64, so that the next synapse (which computes in its
    input's dtype) sums them exactly, as Loihi's integer synapse does.
    """
    return np.float64 if graded else input_dtype(x)


#: Magnitude below which a float's rounded value converts to int64 exactly (see :func:`_rows_int`).
_EXACT_ROUND = 2.0**62


def _rows_int(decay: torch.Tensor) -> np.ndarray:
    """Per-row integer decay: round-half-even of the stored float (as lava-dl exports it)."""
    if decay.dim() == 1 and decay.stride(0) == 0 and decay.numel() and decay.dtype.is_floating_point:
        # one shared value broadcast to every row (per_row's expand): round it once (Python's round
        # is round-half-even too, exact on the float's double value)
        value = decay[0].item()
        if math.isfinite(value) and abs(value) < _EXACT_ROUND:
            rows = np.empty(decay.numel(), np.int64)
            rows.fill(round(value))
            return rows
    return np.ascontiguousarray(torch.round(decay.detach()).to(torch.int64).cpu().numpy())


def _as_numpy(x: torch.Tensor, dtype) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().numpy(), dtype=dtype)


def _integrator_adjoint(ctx, grad, y_rec, y0, reset_mask, decay: torch.Tensor, dtype):
    """Run the compiled integrator adjoint on ``(B, T, K)`` arrays of ``ctx.layout``.

    Returns ``(grad_in, grad_decay or None)`` as tensors (``grad_in`` stored time-major); the decay
    gradient is lava-dl's with ``ctx.lava_dl_decay``.
    """
    layout = ctx.layout
    grad_in = layout.records(np.float64 if dtype == torch.float64 else np.float32)
    grad_d = np.zeros((layout.blocks, layout.width), np.float64)
    want = bool(ctx.needs_input_grad[1])
    if ctx.lava_dl_decay:
        reset_mask, y0 = _cuba.lava_dl_decay_inputs(reset_mask, y0)
    _cuba.integrator_backward_blocks(grad, ctx.d, y_rec, y0, reset_mask, ctx.state_scale, want, grad_in,
                                     grad_d, threads=kernel_threads())
    return layout.tensor(grad_in), (_decay_rows(ctx, layout, grad_d, decay) if want else None)


def _two_integrator_adjoint(ctx, layout, grad_s, grad_u, grad_v, margin, theta, u, v, reset, u0, v0, du, dv,
                            delay=0):
    """Backward of a neuron built on CUBA's current and voltage integrators (CUBA, ALIF).

    Records and per-neuron arrays are in the ``(B, T, K)`` / ``(B, K)`` form of
    ``layout`` (a :class:`BlockLayout`); the incoming gradients are tensors.
    ``ctx`` holds ``saved_tensors = (current_decay, voltage_decay)``, ``surrogate``,
    ``state_scale``, ``graded`` and ``lava_dl_decay`` (lava-dl's decay gradients);
    ``delay`` is that of :func:`lava_dl.core.cuba.cuba_forward`. Returns ``(grad_x,
    grad_current_decay, grad_voltage_decay)`` (``grad_x`` stored time-major).
    """
    current_decay, voltage_decay = ctx.saved_tensors
    _, tau_rho, scale_rho = ctx.surrogate
    shape = margin.shape
    if grad_s is None:
        gs, grad_index = np.zeros(shape, np.float32), _NO_INDEX
    else:
        gs, grad_index = layout.gather_array(grad_s, np.float32)
    gu = layout.array(grad_u, np.float32) if grad_u is not None else _EMPTY_GRAD3
    gv = layout.array(grad_v, np.float32) if grad_v is not None else _EMPTY_GRAD3
    want = bool(ctx.needs_input_grad[1] or ctx.needs_input_grad[2])
    grad_x = layout.records(np.float32)
    grad_du = np.zeros(shape[::2], np.float64)
    grad_dv = np.zeros(shape[::2], np.float64)
    if ctx.lava_dl_decay:
        reset, u0, v0 = _cuba.lava_dl_decay_inputs(reset, u0, v0)
    _cuba.cuba_backward_blocks(gs, gu, gv, margin, u, v, reset, u0, v0, du, dv, ctx.state_scale, theta,
                               tau_rho, scale_rho, ctx.graded, delay, want, grad_x, grad_du, grad_dv,
                               grad_index, threads=kernel_threads())
    # one gradient per (batch, neuron) row in the logical (N, *S) order of per_row (the kernel's
    # (B, K) rows are in the layout's order, (H, W, C) for a channels-last input)
    g_du = _decay_rows(ctx, layout, grad_du, current_decay) if ctx.needs_input_grad[1] else None
    g_dv = _decay_rows(ctx, layout, grad_dv, voltage_decay) if ctx.needs_input_grad[2] else None
    return layout.tensor(grad_x), g_du, g_dv


def _decay_rows(ctx, layout, grad: np.ndarray, decay: torch.Tensor) -> torch.Tensor:
    """A kernel's ``(B, K)`` decay gradient as one value per row (:func:`_logical_rows`) in ``decay``'s
    dtype; lava-dl's (``ctx.lava_dl_decay``: see :func:`lava_dl.core.cuba.lava_dl_decay_inputs`)."""
    rows = _logical_rows(layout, grad)
    if ctx.lava_dl_decay:
        rows = rows * _cuba.LAVA_DL_DECAY_SCALE
    return rows.to(decay.dtype)


def _logical_rows(layout, values: np.ndarray) -> torch.Tensor:
    """A kernel's ``(B, K)`` per-neuron array as a tensor of one value per row in ``(N, *S)`` order."""
    if not layout.permuted:
        return torch.from_numpy(values.ravel())
    rows = np.empty(values.size, values.dtype)
    layout.write_back(rows, values)
    return torch.from_numpy(rows)


def kernel_threads() -> int:
    """Threads the training kernels run on: torch's (``torch.get_num_threads()``).

    With 1 the kernels are called directly, single-threaded; with more they run over
    disjoint blocks of samples (:class:`lava_dl.core.parallel.Blockwise`), bit for bit
    the same results.
    """
    return torch.get_num_threads()


def _check_cpu(x: torch.Tensor) -> None:
    """Raise for an input that is neither on the CPU nor on a CUDA device (CUDA inputs are
    dispatched to the CUDA kernels before this check).

    Raises
    ------
    NotImplementedError
        Naming the input's device and dtype, and the devices the kernels run on.
    """
    if x.device.type != "cpu":
        raise NotImplementedError(
            f"the lava_dl neuron kernels run on CPU and CUDA tensors only (got an input on {x.device}, "
            f"{x.dtype}): move the network and its input to the CPU, or to a CUDA device (the CUDA "
            "kernels of every neuron family need numba-cuda: `pip install lava_dl[cuda]`)"
        )


class BlockLayout:
    """How a ``(N, *S, T)`` activation maps onto the ``(B, T, K)`` arrays of the fused kernels.

    ``B = N`` samples of ``K = prod(S)`` neurons, time in the middle: the kernels'
    inner loop runs over the K neurons of one step and vectorises. Synapses produce
    activations stored that way, which are read in place: memory ordered ``N, T, *S``,
    or, from the convolutions, channels-last ``N, T, H, W, C`` (the K neurons of a step
    are then taken in ``(H, W, C)`` order; :attr:`order` is that permutation of ``S``).
    Any other tensor is copied into the ``N, T, *S`` order once (a transposing copy costs
    less than running the recurrence along a time-last row). Outputs are stored in the
    layout's order, so a chain of blocks never transposes.

    Per-neuron values (parameters, states) are exchanged in the logical ``(N, *S)`` order:
    :meth:`per_neuron` gives the kernels' ``(B, K)`` array, :meth:`write_back` returns what a
    kernel wrote into it.

    A kernel that permutes each row while it is in cache can also store its output in the
    logical order ``N, T, *S`` (what a Flatten block after it reads as a view):
    :meth:`empty_logical` and :attr:`to_logical`; :meth:`gather_array` reads a gradient
    stored that way without a transposing copy (:attr:`from_logical`).

    Narrow layers (fewer than :data:`FOLD_WIDTH` neurons, more than one sample) are *folded*:
    the kernels see ``G`` groups of ``N / G`` samples as the blocks, ``B = G`` and ``K = (N / G)
    * prod(S)``, their arrays stored in the order ``G, T, N / G, *S``. A row of a few neurons
    costs the kernels mostly their fixed work per row (a 10-neuron row runs 5-7x slower per
    neuron than a 256-neuron one); one row of a group's neurons per step does not. ``G`` is
    the number of threads :class:`~lava_dl.core.parallel.Blockwise` would give the unfolded
    layer (1 for small ones), lowered to a divisor of ``N`` and so that rows keep
    :data:`FOLD_WIDTH` neurons. The kernels treat neurons independently, so the results are the
    same bit for bit. Tensors still enter and leave in the usual ``N, T, *S`` order (a
    transposing copy each way, small for so few neurons), so what runs after the layer sees the
    same memory layout whatever the width: a kernel's output array becomes a tensor through
    :meth:`tensor` once the kernel has run.
    """

    def __init__(self, x: torch.Tensor, fold: bool = True):
        self.shape = tuple(x.shape)
        self.blocks, self.steps = self.shape[0], self.shape[-1]
        self.width = math.prod(self.shape[1:-1])
        spatial = len(self.shape) - 2
        self.order = tuple(range(spatial))
        if spatial == 3 and x.permute(0, 4, 2, 3, 1).is_contiguous() and not x.movedim(-1, 1).is_contiguous():
            self.order = (1, 2, 0)  # channels-last: (C, H, W) stored as (H, W, C)
        self._identity = self.order == tuple(range(spatial))
        self._indices: tuple[np.ndarray, np.ndarray] | None = None
        self.folded = fold and self._identity and self.blocks > 1 and self.width < FOLD_WIDTH
        if self.folded:
            samples, neurons = self.blocks, self.blocks * self.width
            # as many groups as Blockwise would use threads, each a row of at least FOLD_WIDTH neurons
            groups = max(1, min(kernel_threads(), samples, neurons // FOLD_WIDTH,
                                neurons * self.steps // MIN_ELEMENTS_PER_THREAD))
            while samples % groups:
                groups -= 1
            self.blocks, self.width = groups, neurons // groups

    @property
    def permuted(self) -> bool:
        """Whether the kernels' neuron order differs from the logical ``(*S)`` order."""
        return not self._identity

    def _index_pair(self) -> tuple[np.ndarray, np.ndarray]:
        if self._indices is None:
            spatial = [self.shape[1 + a] for a in self.order]
            kernel = np.arange(self.width, dtype=np.int64).reshape(spatial)
            to_logical = np.ascontiguousarray(kernel.transpose(*np.argsort(self.order))).reshape(-1)
            from_logical = np.empty_like(to_logical)
            from_logical[to_logical] = np.arange(self.width, dtype=np.int64)
            self._indices = (to_logical, from_logical)
        return self._indices

    @property
    def to_logical(self) -> np.ndarray:
        """``to_logical[j]``: the kernel position of the neuron at logical position ``j`` (empty
        when the orders agree)."""
        return self._index_pair()[0] if self.permuted else _NO_INDEX

    @property
    def from_logical(self) -> np.ndarray:
        """``from_logical[k]``: the logical position of the kernel's neuron ``k`` (empty when the
        orders agree)."""
        return self._index_pair()[1] if self.permuted else _NO_INDEX

    def _memory_view(self, arr: np.ndarray, lead: int) -> np.ndarray:
        """``arr`` shaped ``(*lead axes, *S)`` with its spatial axes in memory order."""
        return arr.transpose(*range(lead), *(lead + a for a in self.order))

    def array(self, x: torch.Tensor, dtype) -> np.ndarray:
        """``x`` (shape :attr:`shape`) as a C-contiguous ``(B, T, K)`` numpy array of ``dtype``.

        A view when ``x`` is already stored that way (and of that dtype), else a copy (always
        for a folded layout). ``dtype=None`` keeps ``x``'s dtype.
        """
        shape = (self.blocks, self.steps, self.width)
        permuted = x.detach().movedim(-1, 1).cpu().resolve_neg().numpy()  # (N, T, *S), any strides
        if self.folded:
            out = _memory.empty(shape, permuted.dtype if dtype is None else dtype)
            groups, per_group = self.blocks, self.shape[0] // self.blocks
            if permuted.flags.c_contiguous:
                _memory.swap_middle_axes(permuted.reshape(groups, per_group, self.steps, -1),
                                         out.reshape(groups, self.steps, per_group, -1))
            else:
                spatial = self.shape[1:-1]
                grouped = permuted.reshape(groups, per_group, self.steps, *spatial).swapaxes(1, 2)
                np.copyto(out.reshape(groups, self.steps, per_group, *spatial), grouped, casting="unsafe")
            return out
        permuted = self._memory_view(permuted, 2)
        if permuted.flags.c_contiguous and (dtype is None or permuted.dtype == dtype):
            return permuted.reshape(shape)
        out = _memory.empty(shape, permuted.dtype if dtype is None else dtype)
        np.copyto(out.reshape(permuted.shape), permuted, casting="unsafe")
        return out

    def gather_array(self, x: torch.Tensor, dtype) -> tuple[np.ndarray, np.ndarray]:
        """``x`` as ``(B, T, K)`` for a kernel that gathers rows: ``(array, index)``.

        A gradient stored in the logical order ``N, T, *S`` (e.g. coming back through a
        Flatten block) while the kernel's order is channels-last is returned as it is, with
        ``index`` = :attr:`from_logical`; anything else is :meth:`array` with an empty index.
        """
        if self.permuted and x.dtype == torch.float32 and dtype == np.float32 and x.device.type == "cpu" \
                and x.movedim(-1, 1).is_contiguous():
            rows = x.detach().resolve_neg().movedim(-1, 1).numpy()
            return rows.reshape(self.blocks, self.steps, self.width), self.from_logical
        return self.array(x, dtype), _NO_INDEX

    def per_neuron(self, values: np.ndarray) -> np.ndarray:
        """One value per ``(batch, neuron)`` row, given in ``(N, *S)`` order, as a ``(B, K)`` array
        (a view of ``values`` unless the layout is channels-last)."""
        if self._identity:
            return values.reshape(self.blocks, self.width)
        logical = values.reshape(self.blocks, *self.shape[1:-1])
        return np.ascontiguousarray(self._memory_view(logical, 1)).reshape(self.blocks, self.width)

    def write_back(self, values: np.ndarray, arr: np.ndarray) -> None:
        """Store the ``(B, K)`` kernel array ``arr`` (from :meth:`per_neuron`) into ``values``."""
        if np.shares_memory(values, arr):
            return
        samples = self.shape[0]
        spatial = [self.shape[1 + a] for a in self.order]
        inverse = np.argsort(self.order)
        logical = arr.reshape(samples, *spatial).transpose(0, *(1 + a for a in inverse))
        values.reshape(samples, *self.shape[1:-1])[...] = logical

    def tensor(self, arr: np.ndarray) -> torch.Tensor:
        """Inverse of :meth:`array`: a tensor of shape :attr:`shape` sharing memory with ``arr``
        (a folded layout's: a copy stored ``N, T, *S``, so call it once the kernel has written ``arr``).

        The axes are permuted in numpy, so the result is not a torch view (autograd
        lets a custom Function's caller modify it in place).
        """
        n, *spatial, steps = self.shape
        if self.folded:
            groups, per_group = self.blocks, n // self.blocks
            stored = _memory.empty((n, steps, math.prod(spatial)), arr.dtype)
            _memory.swap_middle_axes(arr.reshape(groups, steps, per_group, -1),
                                     stored.reshape(groups, per_group, steps, -1))
            arr = stored
        if self._identity:  # the same view as below, without the identity permutation
            stored = arr.reshape(n, steps, *spatial)
            return torch.from_numpy(stored.transpose(0, *range(2, stored.ndim), 1))
        stored = arr.reshape(n, steps, *(spatial[a] for a in self.order))
        inverse = np.argsort(self.order)
        logical = stored.transpose(0, 1, *(2 + a for a in inverse))
        return torch.from_numpy(np.moveaxis(logical, 1, -1))

    def empty(self, dtype) -> tuple[torch.Tensor, np.ndarray]:
        """A new tensor of shape :attr:`shape` stored in the layout's order, and its ``(B, T, K)`` array.

        Not for a folded layout (whose kernel arrays are no view of a tensor): there a kernel writes
        :meth:`records` and :meth:`tensor` makes its output.
        """
        if self.folded:
            raise RuntimeError("BlockLayout.empty: a folded layout's outputs are made by tensor(records)")
        arr = _memory.empty((self.blocks, self.steps, self.width), dtype)
        return self.tensor(arr), arr

    def empty_logical(self, dtype) -> tuple[torch.Tensor, np.ndarray]:
        """A new tensor of shape :attr:`shape` stored time-major in the logical order ``N, T, *S``,
        and its ``(B, T, K)`` array (rows in logical order: a kernel writes them through
        :attr:`to_logical`)."""
        arr = _memory.empty((self.blocks, self.steps, self.width), dtype)
        n, *spatial, steps = self.shape
        return torch.from_numpy(np.moveaxis(arr.reshape(n, steps, *spatial), 1, -1)), arr

    def records(self, dtype) -> np.ndarray:
        """A new ``(B, T, K)`` array for a kernel's records."""
        return _memory.empty((self.blocks, self.steps, self.width), dtype)


class LeakyIntegrator(KernelFunction):
    """``y[t] = wrap24(rs0(y[t-1] (4096 - d), 12) + (a_in << 6))``, returned as ``y / S``.

    ``x`` is the ``(N, *S, T)`` real input, ``decay`` and ``y0`` one value per
    ``(batch, neuron)`` row; the output is stored time-major (see :class:`BlockLayout`).
    On a CUDA input both passes run the CUDA kernels of the same rules
    (:func:`lava_dl.slayer._cuda.leaky_forward`), the output stored in the logical order.
    With ``lava_dl_decay`` the decay gets lava-dl's gradient instead of the exact one
    (:func:`lava_dl.core.cuba.lava_dl_decay_inputs`; the same for the other integrator functions).
    """

    @staticmethod
    def forward(ctx, x, decay, y0, state_scale: float, lava_dl_decay: bool = False):
        ctx.lava_dl_decay = bool(lava_dl_decay)
        if x.device.type == "cuda":  # the CUDA kernels of the same rules (lava_dl.slayer._cuda)
            return _cuda.leaky_forward(ctx, x, decay, y0, state_scale)
        _check_cpu(x)
        _cuda.check_devices(x, decay=decay)
        layout = BlockLayout(x)
        xs = layout.array(x, input_dtype(x))
        d = layout.per_neuron(_rows_int(decay))
        y0_np = layout.per_neuron(_as_numpy(y0, np.int64))
        y = layout.records(np.int32)
        _cuba.current_forward_blocks(xs, float(state_scale), d, y0_np, y, threads=kernel_threads())
        ctx.save_for_backward(decay)
        ctx.layout, ctx.y, ctx.y0, ctx.d, ctx.state_scale = layout, y, y0_np, d, float(state_scale)
        return layout.tensor(y).to(x.dtype) / state_scale

    @staticmethod
    def backward(ctx, grad_y):
        if getattr(ctx, "on_cuda", False):
            return (*_cuda.integrator_backward(ctx, grad_y, None, grad_y.dtype), None, None, None)
        (decay,) = ctx.saved_tensors
        grad_x, grad_d = _integrator_adjoint(ctx, ctx.layout.array(grad_y, np.float64), ctx.y, ctx.y0,
                                             _EMPTY_MASK3, decay, grad_y.dtype)
        return grad_x, grad_d, None, None, None


class SpikingIntegrator(KernelFunction):
    """Voltage integration with bias, strict integer threshold, spike and reset to zero.

    ``cur`` is the ``(N, *S, T)`` real current; per-row values as for
    :class:`LeakyIntegrator`. Returns ``(spike, voltage)`` stored time-major: spikes
    are 1.0 (or the real voltage when graded), the voltage is the recorded pre-reset
    ``v / S``. Gradients flow through the spikes via the surrogate and through the
    voltage output directly. On a CUDA input both passes run the CUDA kernels of the same
    rules (:func:`lava_dl.slayer._cuda.spiking_forward`), outputs stored in the logical order.
    """

    @staticmethod
    def forward(ctx, cur, decay, v0, state_scale, bias_scaled, vth_scaled, surrogate, graded,
                lava_dl_decay=False):
        ctx.lava_dl_decay = bool(lava_dl_decay)
        if cur.device.type == "cuda":  # the CUDA kernels of the same rules (lava_dl.slayer._cuda)
            return _cuda.spiking_forward(ctx, cur, decay, v0, state_scale, bias_scaled, vth_scaled, surrogate,
                                         graded)
        _check_cpu(cur)
        _cuda.check_devices(cur, decay=decay)
        layout = BlockLayout(cur)
        cs = layout.array(cur, input_dtype(cur))
        d = layout.per_neuron(_rows_int(decay))
        v0_np = layout.per_neuron(_as_numpy(v0, np.int64))
        s = layout.records(message_dtype(cur, graded))
        v = layout.records(np.int32)
        _cuba.voltage_forward_blocks(cs, float(state_scale), d, layout.per_neuron(bias_scaled),
                                     layout.per_neuron(vth_scaled), v0_np, bool(graded), s, v,
                                     threads=kernel_threads())
        spikes = layout.tensor(s)
        ctx.save_for_backward(decay)
        ctx.layout, ctx.v, ctx.s, ctx.v0, ctx.d = layout, v, s, v0_np, d
        ctx.state_scale, ctx.surrogate, ctx.graded = float(state_scale), surrogate, bool(graded)
        voltage = layout.tensor(v).to(cur.dtype) / state_scale
        return spikes, voltage

    @staticmethod
    def backward(ctx, grad_s, grad_v):
        if getattr(ctx, "on_cuda", False):
            return (*_cuda.integrator_backward(ctx, grad_v, grad_s, grad_s.dtype), *([None] * 7))
        (decay,) = ctx.saved_tensors
        layout = ctx.layout
        theta, tau_rho, scale_rho = ctx.surrogate
        gs = layout.array(grad_s, np.float64)
        gv = layout.records(np.float64)
        _cuba.spike_backward_blocks(gs, ctx.v, ctx.state_scale, theta, tau_rho, scale_rho, ctx.graded, gv,
                                    threads=kernel_threads())
        if grad_v is not None:
            gv += layout.array(grad_v, np.float64)
        spiked = (ctx.s != 0).view(np.uint8)
        grad_cur, grad_d = _integrator_adjoint(ctx, gv, ctx.v, ctx.v0, spiked, decay, grad_s.dtype)
        return grad_cur, grad_d, *([None] * 7)


class CubaDynamics(KernelFunction):
    """Whole CUBA neuron in one compiled pass each way (used when no norm sits between u and v).

    ``forward(x, current_decay, voltage_decay, u0, v0, state_scale, vth_scaled, surrogate, graded,
    record, first, last)``: ``x`` is the ``(N, *S, T)`` real input; the decays, initial
    states and scaled thresholds are given per ``(batch, neuron)`` row. ``first``
    (``None``, or a tensor shaped like ``x[..., :1]``) asks for the output delayed by
    one step, a block's synaptic latency, with ``first`` as its step 0; ``last`` is a
    float32 numpy array, one value per row, that receives the message of the last step.

    Returns the messages, and with ``record=True`` also the recorded real current
    ``u / S`` and pre-reset voltage ``v / S`` (not materialised otherwise: training
    needs only spikes). Outputs are stored time-major (see :class:`BlockLayout`); with
    ``logical=True`` the messages are stored in the logical order ``N, T, *S`` even when
    ``x`` is channels-last (:meth:`BlockLayout.empty_logical`: what a Flatten block reads
    as a view), permuted row by row inside the kernel.
    """

    @staticmethod
    def forward(ctx, x, current_decay, voltage_decay, u0, v0, state_scale, vth_scaled, surrogate, graded,
                record, first, last, logical=False, lava_dl_decay=False):
        ctx.lava_dl_decay = bool(lava_dl_decay)
        if x.device.type == "cuda":  # the CUDA kernels of the same rules (lava_dl.slayer._cuda)
            ctx.on_cuda = True
            return _cuda.cuba_forward(ctx, x, current_decay, voltage_decay, u0, v0, state_scale, vth_scaled,
                                      surrogate, graded, record, first, last)
        _check_cpu(x)
        _cuda.check_devices(x, current_decay=current_decay, voltage_decay=voltage_decay)
        ctx.set_materialize_grads(False)
        layout = BlockLayout(x)
        out_index = layout.to_logical if logical else _NO_INDEX
        xs = layout.array(x, input_dtype(x))
        du = layout.per_neuron(_rows_int(current_decay))
        dv = layout.per_neuron(_rows_int(voltage_decay))
        u0_np = layout.per_neuron(_as_numpy(u0, np.int64))
        v0_np = layout.per_neuron(_as_numpy(v0, np.int64))
        want_u = record or ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        if out_index.size:
            spikes, s = layout.empty_logical(message_dtype(x, graded))
        else:
            spikes, s = None, layout.records(message_dtype(x, graded))  # spikes: made once s is written
        delay = 0 if first is None else 1
        if delay:
            if layout._identity:
                # step 0 written straight into the (B, T, K) messages: K is the logical order here
                step0 = first.detach()[..., 0].cpu().numpy().reshape(layout.blocks, layout.width)
                np.copyto(s[:, 0, :], step0, casting="unsafe")
            else:
                (layout.tensor(s) if spikes is None else spikes)[..., 0] = first[..., 0]
        u = layout.records(np.int32) if want_u else _EMPTY_INT3
        v = layout.records(np.int32)
        last_np = layout.per_neuron(last)
        _cuba.cuba_forward_blocks(xs, float(state_scale), du, dv, np.zeros_like(du),
                                  layout.per_neuron(vth_scaled), u0_np, v0_np, bool(graded), delay, s,
                                  last_np, u, v, out_index, threads=kernel_threads())
        if spikes is None:
            spikes = layout.tensor(s)
        layout.write_back(last, last_np)
        ctx.save_for_backward(current_decay, voltage_decay)
        ctx.layout = layout
        ctx.arrays = (u, v, s, u0_np, v0_np, du, dv)
        ctx.state_scale, ctx.surrogate, ctx.graded = float(state_scale), surrogate, bool(graded)
        ctx.delay = delay
        ctx.logical = bool(out_index.size)
        if not record:
            return spikes
        scale = 1.0 / state_scale
        return (spikes, layout.tensor(u).to(x.dtype) * scale, layout.tensor(v).to(x.dtype) * scale)

    @staticmethod
    def backward(ctx, grad_s, grad_u=None, grad_v=None):
        if getattr(ctx, "on_cuda", False):
            return (*_cuda.cuba_backward(ctx, grad_s, grad_u, grad_v), *([None] * 11))
        u, v, s, u0, v0, du, dv = ctx.arrays
        theta = ctx.surrogate[0]
        layout = ctx.layout
        if ctx.logical and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
            # the decay gradients read the resets in the kernel's order (a copy, only then)
            n, *spatial, steps = layout.shape
            stored = s.reshape(n, steps, *spatial)
            s = np.ascontiguousarray(layout._memory_view(stored, 2)).reshape(s.shape)
        grads = _two_integrator_adjoint(ctx, layout, grad_s, grad_u, grad_v, v, theta, u, v, s, u0, v0,
                                        du, dv, ctx.delay)
        return (*grads, *([None] * 11))


class AlifDynamics(KernelFunction):
    """Whole ALIF neuron (current, voltage, threshold unit) in one compiled pass each way.

    ``forward(x, current_decay, voltage_decay, init, final, state_scale, params, surrogate, graded, record)``:
    ``x`` is the ``(N, *S, T)`` real input (after any input norm), the decays are per-row
    tensors, ``init`` and ``final`` are ``(4, rows)`` int64 numpy arrays of the states
    ``u, v, th, r`` (initial values, and receiving the final ones), ``params`` is the
    tuple ``(dth, dref, th0, th_step)`` of int64 per-row numpy arrays and ``surrogate``
    is ``(theta, tau_rho, scale_rho)``.

    Returns the spikes, and with ``record=True`` also the real current ``u / S`` and
    voltage ``v / S`` (not materialised otherwise), stored time-major (see
    :class:`BlockLayout`). Gradients reach the voltage only through the spikes'
    surrogate, taken at ``v - (θ + r)``; the threshold unit has no backward, as in lava-dl.
    On a CUDA input both passes run the CUDA kernels of the same rules
    (:func:`lava_dl.slayer._cuda.alif_forward`), outputs stored in the logical order.
    """

    @staticmethod
    def forward(ctx, x, current_decay, voltage_decay, init, final, state_scale, params, surrogate, graded,
                record, lava_dl_decay=False):
        ctx.lava_dl_decay = bool(lava_dl_decay)
        if x.device.type == "cuda":  # the CUDA kernels of the same rules (lava_dl.slayer._cuda)
            ctx.on_cuda = True
            return _cuda.alif_forward(ctx, x, current_decay, voltage_decay, init, final, state_scale, params,
                                      surrogate, graded, record)
        _check_cpu(x)
        _cuda.check_devices(x, current_decay=current_decay, voltage_decay=voltage_decay)
        ctx.set_materialize_grads(False)
        layout = BlockLayout(x)
        xs = layout.array(x, input_dtype(x))
        du = layout.per_neuron(_rows_int(current_decay))
        dv = layout.per_neuron(_rows_int(voltage_decay))
        dth, dref, th0, th_step = (layout.per_neuron(p) for p in params)
        want_grad = any(ctx.needs_input_grad[:3])
        want_decay = bool(ctx.needs_input_grad[1] or ctx.needs_input_grad[2])
        s = layout.records(message_dtype(x, graded))
        margin = layout.records(np.int32) if want_grad else _EMPTY_INT3
        u = layout.records(np.int32) if record or want_decay else _EMPTY_INT3
        v = layout.records(np.int32) if record or want_decay else _EMPTY_INT3
        blocks_init = np.stack([layout.per_neuron(i) for i in init])
        blocks_final = np.empty_like(blocks_init)
        _alif.alif_forward_blocks(xs, float(state_scale), du, dv, dth, dref, th0, th_step, blocks_init,
                                  bool(graded), blocks_final, s, margin, u, v, _EMPTY_INT3, _EMPTY_INT3,
                                  threads=kernel_threads())
        spikes = layout.tensor(s)
        for values, arr in zip(final, blocks_final):
            layout.write_back(values, arr)
        ctx.save_for_backward(current_decay, voltage_decay)
        ctx.arrays = (margin, u, v, blocks_init[0].copy(), blocks_init[1].copy(), du, dv)
        ctx.layout = layout
        ctx.state_scale, ctx.surrogate, ctx.graded = float(state_scale), surrogate, bool(graded)
        if not record:
            return spikes
        # divided (not multiplied by 1/S) to give the two-stage path's values for any scale
        current = layout.tensor(u).to(x.dtype) / state_scale
        return spikes, current, layout.tensor(v).to(x.dtype) / state_scale

    @staticmethod
    def backward(ctx, grad_s, grad_u=None, grad_v=None):
        if getattr(ctx, "on_cuda", False):
            return (*_cuda.alif_backward(ctx, grad_s, grad_u, grad_v), *([None] * 8))
        margin, u, v, u0, v0, du, dv = ctx.arrays
        # ALIF never resets v; its surrogate sits at the margin v - (θ + r).
        grads = _two_integrator_adjoint(ctx, ctx.layout, grad_s, grad_u, grad_v, margin, 0.0, u, v,
                                        _EMPTY_GRAD3, u0, v0, du, dv)
        return (*grads, *([None] * 8))
