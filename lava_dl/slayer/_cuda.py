"""Torch glue of the CUDA training kernels (:mod:`lava_dl.core.cuda_kernels`).

CUDA tensors reach the kernels without copies (``numba.cuda.as_cuda_array`` reads their
``__cuda_array_interface__``) and the kernels launch on torch's current stream, so they
order with the surrounding torch work without any synchronisation. The arrays are the
CPU kernels' ``(B, T, K)``: ``B = N`` samples, ``T`` steps, ``K = prod(S)`` neurons for an
``(N, *S, T)`` activation, stored time-major in the logical order ``N, T, *S`` (what the
synapses produce; any other input is copied once into that order). The axonal-delay shifts
take step rows in any order of the values (e.g. channels-last), with one shift per value.

numba-cuda is optional (``pip install lava_dl[cuda]``): this module imports it only when a
CUDA tensor arrives, and explains what to install when it is missing. With
``NUMBA_ENABLE_CUDASIM=1`` the same code runs in numba's CUDA simulator on CPU tensors
(shared with numpy), which is how CI tests it without a GPU.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np
import torch

from lava_dl.core import cuba as _cuba
from lava_dl.core import resonator as _res
from lava_dl.core import sigma_delta as _sd
from lava_dl.core.fixed_point import STATE_EXP
from lava_dl.slayer._eager import KernelFunction

_EMPTY_SHAPE = (0, 0, 0)


def kernels(tensor: torch.Tensor, name: str = "x") -> ModuleType:
    """:mod:`lava_dl.core.cuda_kernels` for running on ``tensor``'s device.

    Raises
    ------
    RuntimeError
        If numba-cuda is not installed (the message names the tensor, its device and the
        extra to install).
    """
    try:
        return importlib.import_module("lava_dl.core.cuda_kernels")
    except ImportError as err:
        raise RuntimeError(
            f"tensor {name!r} is on {tensor.device} ({tensor.dtype}), and the CUDA neuron kernels need "
            f"numba-cuda, which is not installed ({err}): `pip install lava_dl[cuda]`, or move the "
            "network and its input to the CPU with `.cpu()`"
        ) from err


def check_devices(x: torch.Tensor, **tensors) -> None:
    """Check that every tensor of ``tensors`` (name to tensor, ``None`` skipped) is on ``x``'s device.

    Raises
    ------
    ValueError
        Naming the first tensor on another device, both devices and the fix.
    """
    for name, tensor in tensors.items():
        if isinstance(tensor, torch.Tensor) and tensor.device != x.device:
            raise ValueError(
                f"input is on {x.device} but {name} is on {tensor.device}: move the module and its input "
                "to one device (`module.to(x.device)`)"
            )


def _device_array(module: ModuleType, tensor: torch.Tensor):
    """A kernel argument for ``tensor``: its numba CUDA view, or its numpy view in the simulator."""
    tensor = tensor.detach()
    if module.SIMULATOR:
        return tensor.numpy()
    return module.cuda.as_cuda_array(tensor, sync=False)


def _stream(module: ModuleType, device: torch.device):
    """torch's current stream on ``device`` as a numba stream (the default one in the simulator)."""
    if module.SIMULATOR:
        return module.cuda.default_stream()
    return module.cuda.external_stream(torch.cuda.current_stream(device).cuda_stream)


def _launch(module: ModuleType, kernel, device: torch.device, blocks: int, width: int, *args) -> None:
    grid, threads = module.launch_config(blocks, width)
    converted = [_device_array(module, a) if isinstance(a, torch.Tensor) else a for a in args]
    kernel[grid, threads, _stream(module, device)](*converted)


def _rows(t: torch.Tensor, blocks: int, width: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A per-``(batch, neuron)`` value (``rows`` elements, ``(N, *S)`` order) as a contiguous ``(B, K)``."""
    return torch.as_tensor(t).detach().to(device=device, dtype=dtype).reshape(blocks, width).contiguous()


def _time_major(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """An ``(N, *S, T)`` tensor as a contiguous ``(N, T, K)`` one of ``dtype`` (a view when stored so)."""
    n, steps = t.shape[0], t.shape[-1]
    return t.detach().movedim(-1, 1).to(dtype).contiguous().reshape(n, steps, -1)


def _logical(rows: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`_time_major`: the ``(N, T, K)`` tensor viewed as ``shape`` ``(N, *S, T)``."""
    n, *spatial, steps = shape
    return rows.reshape(n, steps, *spatial).movedim(1, -1)


def _empty(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(_EMPTY_SHAPE, dtype=dtype, device=device)


def _two_integrator_inputs(ctx, x: torch.Tensor, current_decay: torch.Tensor, voltage_decay: torch.Tensor):
    """What the forward of a neuron on CUBA's two integrators (CUBA, ALIF) hands its kernel: the
    kernel module, ``x``'s device and shape, ``x`` as a ``(B, T, K)`` time-major array and the
    rounded decays per row."""
    module = kernels(x)
    check_devices(x, current_decay=current_decay, voltage_decay=voltage_decay)
    ctx.set_materialize_grads(False)
    device, shape = x.device, tuple(x.shape)
    xs = _time_major(x, torch.float64 if x.dtype == torch.float64 else torch.float32)
    blocks, _, width = xs.shape
    du = _rows(torch.round(current_decay.detach()), blocks, width, torch.int64, device)
    dv = _rows(torch.round(voltage_decay.detach()), blocks, width, torch.int64, device)
    return module, device, shape, xs, du, dv


def cuba_forward(ctx, x, current_decay, voltage_decay, u0, v0, state_scale, vth_scaled, surrogate, graded,
                 record, first, last):
    """:meth:`lava_dl.slayer.neuron.dynamics.CubaDynamics.forward` on ``x``'s CUDA device.

    Same arguments and outputs; ``u0``/``v0``/``vth_scaled`` may live on the CPU (small
    per-row values, copied over), ``last`` is the numpy array that receives the message of
    the last step (copied back). The messages are always stored in the logical order.
    """
    module, device, shape, xs, du, dv = _two_integrator_inputs(ctx, x, current_decay, voltage_decay)
    blocks, steps, width = xs.shape
    u0_rows = _rows(u0, blocks, width, torch.int64, device)
    v0_rows = _rows(v0, blocks, width, torch.int64, device)
    vth = _rows(torch.from_numpy(vth_scaled), blocks, width, torch.int64, device)
    want_u = record or ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
    s = torch.empty((blocks, steps, width), dtype=torch.float64 if graded else xs.dtype, device=device)
    delay = 0 if first is None else 1
    if delay:
        s[:, 0] = first[..., 0].reshape(blocks, width).to(device=device, dtype=s.dtype)
    u = torch.empty((blocks, steps, width), dtype=torch.int32, device=device) if want_u \
        else _empty(device, torch.int32)
    v = torch.empty((blocks, steps, width), dtype=torch.int32, device=device)
    last_rows = torch.empty((blocks, width), dtype=torch.float32, device=device)
    _launch(module, module.cuba_forward, device, blocks, width, xs, float(state_scale), du, dv,
            torch.zeros_like(du), vth, u0_rows, v0_rows, bool(graded), delay, s, last_rows, u, v)
    last.reshape(-1)[...] = last_rows.reshape(-1).cpu().numpy()
    ctx.save_for_backward(current_decay, voltage_decay)
    ctx.cuda_arrays = (u, v, s, u0_rows, v0_rows, du, dv)
    ctx.shape, ctx.delay = shape, delay
    ctx.state_scale, ctx.surrogate, ctx.graded = float(state_scale), surrogate, bool(graded)
    spikes = _logical(s, shape)
    if not record:
        return spikes
    scale = 1.0 / state_scale
    return spikes, _logical(u, shape).to(x.dtype) * scale, _logical(v, shape).to(x.dtype) * scale


def _two_integrator_backward(ctx, grad_s, grad_u, grad_v, margin, theta: float, u, v, reset, u0, v0, du, dv,
                             delay: int):
    """Backward of a neuron built on CUBA's current and voltage integrators (CUBA, ALIF) on CUDA:
    the CUDA ``cuba_backward`` kernel, as :func:`lava_dl.slayer.neuron.dynamics._two_integrator_adjoint`
    runs the CPU one.

    The records are ``(B, T, K)`` device tensors (``u``/``v``/``reset`` may be empty ``(0, 0, 0)``
    ones), ``u0``/``v0``/``du``/``dv`` ``(B, K)``; ``ctx`` holds ``saved_tensors =
    (current_decay, voltage_decay)``, ``surrogate``, ``state_scale``, ``graded``, ``shape`` and
    ``lava_dl_decay`` (lava-dl's decay gradients, as on the CPU).

    Returns
    -------
    tuple
        ``(grad_x, grad_current_decay, grad_voltage_decay)``; ``grad_x`` is float32 (as on the
        CPU), the decay gradients one per ``(batch, neuron)`` row (``None`` when not needed).
    """
    current_decay, voltage_decay = ctx.saved_tensors
    module = kernels(margin, "saved margin")
    device = margin.device
    blocks, steps, width = margin.shape
    _, tau_rho, scale_rho = ctx.surrogate
    gs = torch.zeros_like(margin, dtype=torch.float32) if grad_s is None \
        else _time_major(grad_s, torch.float32)
    gu = _empty(device, torch.float32) if grad_u is None else _time_major(grad_u, torch.float32)
    gv = _empty(device, torch.float32) if grad_v is None else _time_major(grad_v, torch.float32)
    want = bool(ctx.needs_input_grad[1] or ctx.needs_input_grad[2])
    grad_x = torch.empty((blocks, steps, width), dtype=torch.float32, device=device)
    grad_du = torch.zeros((blocks, width), dtype=torch.float64, device=device)
    grad_dv = torch.zeros((blocks, width), dtype=torch.float64, device=device)
    if ctx.lava_dl_decay:
        reset, u0, v0 = _cuba.lava_dl_decay_inputs(reset, u0, v0)
    _launch(module, module.cuba_backward, device, blocks, width, gs, gu, gv, margin, u, v, reset, u0, v0, du,
            dv, ctx.state_scale, float(theta), float(tau_rho), float(scale_rho), ctx.graded, delay, want,
            grad_x, grad_du, grad_dv)
    g_du = _decay_rows(ctx, grad_du, current_decay) if ctx.needs_input_grad[1] else None
    g_dv = _decay_rows(ctx, grad_dv, voltage_decay) if ctx.needs_input_grad[2] else None
    return _logical(grad_x, ctx.shape), g_du, g_dv


def _decay_rows(ctx, grad: torch.Tensor, decay: torch.Tensor) -> torch.Tensor:
    """A kernel's ``(B, K)`` decay gradient as one value per row in ``decay``'s dtype; lava-dl's with
    ``ctx.lava_dl_decay`` (:func:`lava_dl.core.cuba.lava_dl_decay_inputs`)."""
    rows = grad.reshape(-1)
    if ctx.lava_dl_decay:
        rows = rows * _cuba.LAVA_DL_DECAY_SCALE
    return rows.to(decay.dtype)


def cuba_backward(ctx, grad_s, grad_u=None, grad_v=None):
    """:meth:`lava_dl.slayer.neuron.dynamics.CubaDynamics.backward` of :func:`cuba_forward`.

    Returns ``(grad_x, grad_current_decay, grad_voltage_decay)``; ``grad_x`` is float32 (as on
    the CPU), the decay gradients one per ``(batch, neuron)`` row.
    """
    u, v, s, u0, v0, du, dv = ctx.cuda_arrays
    # CUBA's surrogate sits at the pre-reset voltage and the threshold; its spikes mark the resets.
    return _two_integrator_backward(ctx, grad_s, grad_u, grad_v, v, float(ctx.surrogate[0]), u, v, s, u0, v0,
                                    du, dv, ctx.delay)


def alif_forward(ctx, x, current_decay, voltage_decay, init, final, state_scale, params, surrogate, graded,
                 record):
    """:meth:`lava_dl.slayer.neuron.dynamics.AlifDynamics.forward` on ``x``'s CUDA device.

    Same arguments and outputs: ``init``/``final`` are the ``(4, rows)`` int64 numpy arrays of the
    states ``u, v, th, r`` (copied over, and the final states copied back), ``params`` the per-row
    ``(dth, dref, th0, th_step)`` int64 numpy arrays. The outputs are stored in the logical order.
    """
    module, device, shape, xs, du, dv = _two_integrator_inputs(ctx, x, current_decay, voltage_decay)
    blocks, steps, width = xs.shape
    dth, dref, th0, th_step = (_rows(torch.from_numpy(np.ascontiguousarray(p)), blocks, width, torch.int64,
                                     device) for p in params)
    init_rows = torch.from_numpy(np.ascontiguousarray(init, np.int64)).to(device).reshape(4, blocks, width)
    final_rows = torch.empty_like(init_rows)
    want_grad = any(ctx.needs_input_grad[:3])
    want_decay = bool(ctx.needs_input_grad[1] or ctx.needs_input_grad[2])

    def records(keep: bool) -> torch.Tensor:
        return torch.empty((blocks, steps, width), dtype=torch.int32, device=device) if keep \
            else _empty(device, torch.int32)

    s = torch.empty((blocks, steps, width), dtype=torch.float64 if graded else xs.dtype, device=device)
    margin = records(want_grad)
    u = records(record or want_decay)
    v = records(record or want_decay)
    no_record = _empty(device, torch.int32)
    _launch(module, module.alif_forward, device, blocks, width, xs, float(state_scale), du, dv, dth, dref,
            th0, th_step, init_rows, bool(graded), final_rows, s, margin, u, v, no_record, no_record)
    final.reshape(4, -1)[...] = final_rows.reshape(4, -1).cpu().numpy()
    ctx.save_for_backward(current_decay, voltage_decay)
    ctx.cuda_arrays = (margin, u, v, init_rows[0], init_rows[1], du, dv)
    ctx.shape = shape
    ctx.state_scale, ctx.surrogate, ctx.graded = float(state_scale), surrogate, bool(graded)
    spikes = _logical(s, shape)
    if not record:
        return spikes
    # divided (not multiplied by 1/S), as the CPU path
    return spikes, _logical(u, shape).to(x.dtype) / state_scale, _logical(v, shape).to(x.dtype) / state_scale


def alif_backward(ctx, grad_s, grad_u=None, grad_v=None):
    """:meth:`lava_dl.slayer.neuron.dynamics.AlifDynamics.backward` of :func:`alif_forward`.

    ALIF never resets ``v``; its surrogate sits at the recorded margin ``v - (θ + r)`` (threshold 0).
    Returns ``(grad_x, grad_current_decay, grad_voltage_decay)``.
    """
    margin, u, v, u0, v0, du, dv = ctx.cuda_arrays
    no_reset = _empty(margin.device, torch.float32)
    return _two_integrator_backward(ctx, grad_s, grad_u, grad_v, margin, 0.0, u, v, no_reset, u0, v0, du, dv,
                                    delay=0)


# --------------------------------------------------------------------------
# CUBA's two integrators one at a time (a norm between current and voltage; lava-dl's functional
# leaky integrator): lava_dl.slayer.neuron.dynamics.LeakyIntegrator and SpikingIntegrator
# --------------------------------------------------------------------------


def _integrator_inputs(ctx, x: torch.Tensor, decay: torch.Tensor, y0, name: str):
    """What the forward of an integrator hands its kernel: the kernel module, ``x``'s device and
    shape, ``x`` as a ``(B, T, K)`` time-major array, the rounded decay and the initial state per
    row (``y0`` may live on the CPU: small per-row values, copied over). Saves ``decay`` in ``ctx``."""
    module = kernels(x, name)
    check_devices(x, decay=decay)
    device, shape = x.device, tuple(x.shape)
    xs = _time_major(x, torch.float64 if x.dtype == torch.float64 else torch.float32)
    blocks, _, width = xs.shape
    d = _rows(torch.round(decay.detach()), blocks, width, torch.int64, device)
    y0_rows = _rows(y0, blocks, width, torch.int64, device)
    ctx.save_for_backward(decay)
    ctx.on_cuda, ctx.shape = True, shape
    return module, device, shape, xs, d, y0_rows


def leaky_forward(ctx, x: torch.Tensor, decay: torch.Tensor, y0, state_scale: float) -> torch.Tensor:
    """:meth:`lava_dl.slayer.neuron.dynamics.LeakyIntegrator.forward` on ``x``'s CUDA device.

    Same arguments and output (``y0`` may live on the CPU); the output is stored in the logical
    order.
    """
    module, device, shape, xs, d, y0_rows = _integrator_inputs(ctx, x, decay, y0, "x")
    blocks, steps, width = xs.shape
    y = torch.empty((blocks, steps, width), dtype=torch.int32, device=device)
    _launch(module, module.current_forward, device, blocks, width, xs, float(state_scale), d, y0_rows, y)
    ctx.cuda_arrays = (y, y0_rows, d, _empty(device, torch.float32))
    ctx.state_scale, ctx.surrogate, ctx.graded = float(state_scale), (0.0, 1.0, 1.0), False
    return _logical(y, shape).to(x.dtype) / state_scale


def spiking_forward(ctx, cur: torch.Tensor, decay: torch.Tensor, v0, state_scale: float, bias_scaled,
                    vth_scaled, surrogate, graded: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """:meth:`lava_dl.slayer.neuron.dynamics.SpikingIntegrator.forward` on ``cur``'s CUDA device.

    Same arguments and outputs (``v0`` may live on the CPU, ``bias_scaled``/``vth_scaled`` are
    per-row int64 numpy arrays, copied over); the outputs are stored in the logical order.
    """
    module, device, shape, cs, d, v0_rows = _integrator_inputs(ctx, cur, decay, v0, "cur")
    blocks, steps, width = cs.shape
    bias = _rows(np.ascontiguousarray(bias_scaled, np.int64), blocks, width, torch.int64, device)
    vth = _rows(np.ascontiguousarray(vth_scaled, np.int64), blocks, width, torch.int64, device)
    s = torch.empty((blocks, steps, width), dtype=torch.float64 if graded else cs.dtype, device=device)
    v = torch.empty((blocks, steps, width), dtype=torch.int32, device=device)
    _launch(module, module.voltage_forward, device, blocks, width, cs, float(state_scale), d, bias, vth,
            v0_rows, bool(graded), s, v)
    ctx.cuda_arrays = (v, v0_rows, d, s)
    ctx.state_scale, ctx.surrogate, ctx.graded = float(state_scale), surrogate, bool(graded)
    return _logical(s, shape), _logical(v, shape).to(cur.dtype) / state_scale


def integrator_backward(ctx, grad_out: torch.Tensor | None, grad_s: torch.Tensor | None,
                        dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Backward of :func:`leaky_forward` (``grad_s`` ``None``) or :func:`spiking_forward` on the
    CUDA ``integrator_backward`` kernel, as :func:`lava_dl.slayer.neuron.dynamics._integrator_adjoint`
    runs the CPU one.

    Parameters
    ----------
    grad_out : torch.Tensor or None
        Gradient w.r.t. the recorded state (the leaky integrator's output, the spiking
        integrator's voltage).
    grad_s : torch.Tensor or None
        Gradient w.r.t. the spikes (a spiking integrator only).
    dtype : torch.dtype
        The incoming gradient's dtype: the input gradient is float64 for float64, else float32
        (as on the CPU).

    Returns
    -------
    tuple
        ``(grad_x, grad_decay)``; the decay gradient one value per ``(batch, neuron)`` row in the
        logical order, ``None`` when not needed.
    """
    (decay,) = ctx.saved_tensors
    y, y0, d, spiked = ctx.cuda_arrays
    module = kernels(y, "saved state")
    device = y.device
    blocks, steps, width = y.shape
    theta, tau_rho, scale_rho = ctx.surrogate

    def incoming(grad: torch.Tensor | None) -> torch.Tensor:
        return _empty(device, torch.float32) if grad is None else _time_major(grad, _kernel_dtype(grad.dtype))

    want = bool(ctx.needs_input_grad[1])
    in_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    grad_in = torch.empty((blocks, steps, width), dtype=in_dtype, device=device)
    grad_d = torch.zeros((blocks, width), dtype=torch.float64, device=device)
    if ctx.lava_dl_decay:
        spiked, y0 = _cuba.lava_dl_decay_inputs(spiked, y0)
    _launch(module, module.integrator_backward, device, blocks, width, incoming(grad_out), incoming(grad_s),
            d, y, y0, spiked, ctx.state_scale, float(theta), float(tau_rho), float(scale_rho), ctx.graded,
            want, grad_in, grad_d)
    return _logical(grad_in, ctx.shape), (_decay_rows(ctx, grad_d, decay) if want else None)


class CubaDynamicsCuda(KernelFunction):
    """:class:`lava_dl.slayer.neuron.dynamics.CubaDynamics` on the CUDA kernels only (whatever the
    tensors' device: in the simulator, CPU tensors). ``CubaDynamics`` dispatches CUDA tensors to
    the same :func:`cuba_forward`/:func:`cuba_backward`; this class lets tests call them directly."""

    @staticmethod
    def forward(ctx, x, current_decay, voltage_decay, u0, v0, state_scale, vth_scaled, surrogate, graded,
                record, first, last, logical=False, lava_dl_decay=False):
        ctx.lava_dl_decay = bool(lava_dl_decay)
        return cuba_forward(ctx, x, current_decay, voltage_decay, u0, v0, state_scale, vth_scaled, surrogate,
                            graded, record, first, last)

    @staticmethod
    def backward(ctx, grad_s, grad_u=None, grad_v=None):
        return (*cuba_backward(ctx, grad_s, grad_u, grad_v), *([None] * 11))


class AlifDynamicsCuda(KernelFunction):
    """:class:`lava_dl.slayer.neuron.dynamics.AlifDynamics` on the CUDA kernels only (whatever the
    tensors' device: in the simulator, CPU tensors), for tests; ``AlifDynamics`` dispatches CUDA
    tensors to the same :func:`alif_forward`/:func:`alif_backward`."""

    @staticmethod
    def forward(ctx, x, current_decay, voltage_decay, init, final, state_scale, params, surrogate, graded,
                record, lava_dl_decay=False):
        ctx.lava_dl_decay = bool(lava_dl_decay)
        return alif_forward(ctx, x, current_decay, voltage_decay, init, final, state_scale, params, surrogate,
                            graded, record)

    @staticmethod
    def backward(ctx, grad_s, grad_u=None, grad_v=None):
        return (*alif_backward(ctx, grad_s, grad_u, grad_v), *([None] * 8))


class LeakyIntegratorCuda(KernelFunction):
    """:class:`lava_dl.slayer.neuron.dynamics.LeakyIntegrator` on the CUDA kernels only (whatever the
    tensors' device: in the simulator, CPU tensors), for tests; ``LeakyIntegrator`` dispatches CUDA
    tensors to the same :func:`leaky_forward`/:func:`integrator_backward`."""

    @staticmethod
    def forward(ctx, x, decay, y0, state_scale, lava_dl_decay=False):
        ctx.lava_dl_decay = bool(lava_dl_decay)
        return leaky_forward(ctx, x, decay, y0, state_scale)

    @staticmethod
    def backward(ctx, grad_y):
        return (*integrator_backward(ctx, grad_y, None, grad_y.dtype), None, None, None)


class SpikingIntegratorCuda(KernelFunction):
    """:class:`lava_dl.slayer.neuron.dynamics.SpikingIntegrator` on the CUDA kernels only, for tests;
    ``SpikingIntegrator`` dispatches CUDA tensors to the same
    :func:`spiking_forward`/:func:`integrator_backward`."""

    @staticmethod
    def forward(ctx, cur, decay, v0, state_scale, bias_scaled, vth_scaled, surrogate, graded,
                lava_dl_decay=False):
        ctx.lava_dl_decay = bool(lava_dl_decay)
        return spiking_forward(ctx, cur, decay, v0, state_scale, bias_scaled, vth_scaled, surrogate, graded)

    @staticmethod
    def backward(ctx, grad_s, grad_v):
        return (*integrator_backward(ctx, grad_v, grad_s, grad_s.dtype), *([None] * 7))


# --------------------------------------------------------------------------
# Sigma-delta (lava_dl.slayer.neuron.sigma_delta's _SigmaFn and _EncodeFn)
# --------------------------------------------------------------------------

#: Dtypes the kernels read and write (anything else goes through float64, as on the CPU).
_KERNEL_DTYPES = (torch.float32, torch.float64)


def _kernel_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype in _KERNEL_DTYPES else torch.float64


def _state_rows(values: np.ndarray, blocks: int, width: int, device: torch.device) -> torch.Tensor:
    """A per-row int64 numpy state (``(N, *S)`` order) as a contiguous ``(B, K)`` device tensor."""
    return torch.from_numpy(np.ascontiguousarray(values, np.int64)).to(device).reshape(blocks, width)


def _write_back(values: np.ndarray, rows: torch.Tensor) -> None:
    """Copy the final ``(B, K)`` device states into the per-row numpy array ``values``, in place."""
    values.reshape(-1)[...] = rows.reshape(-1).cpu().numpy()


def sigma_forward(ctx, z: torch.Tensor, sigma_state: np.ndarray, unit: float, out_dtype: torch.dtype):
    """``_SigmaFn.forward`` of :mod:`lava_dl.slayer.neuron.sigma_delta` on ``z``'s CUDA device.

    Same arguments and output: ``sigma_state`` (int64 numpy, one value per row) is copied over
    and receives the final σ; the output ``σ / unit`` is stored in the logical order.
    """
    module = kernels(z, "z")
    device, shape = z.device, tuple(z.shape)
    zs = _time_major(z, _kernel_dtype(z.dtype))
    blocks, steps, width = zs.shape
    state = _state_rows(sigma_state, blocks, width, device)
    out = torch.empty((blocks, steps, width), dtype=_kernel_dtype(out_dtype), device=device)
    _launch(module, module.sigma_forward, device, blocks, width, zs, float(unit), 1.0 / unit, state, out)
    _write_back(sigma_state, state)
    ctx.on_cuda, ctx.shape, ctx.in_dtype = True, shape, z.dtype
    return _logical(out, shape).to(out_dtype)


def sigma_backward(ctx, grad: torch.Tensor) -> torch.Tensor:
    """``_SigmaFn.backward`` of :func:`sigma_forward`: the gradient of ``z`` in its dtype."""
    module = kernels(grad, "grad")
    gs = _time_major(grad, _kernel_dtype(grad.dtype))
    blocks, steps, width = gs.shape
    grad_in = torch.empty((blocks, steps, width), dtype=_kernel_dtype(ctx.in_dtype), device=grad.device)
    _launch(module, module.sigma_backward, grad.device, blocks, width, gs, grad_in)
    return _logical(grad_in, ctx.shape).to(ctx.in_dtype)


def sigma_delta_forward(ctx, x, theta, in_unit, mode, states, vth_s, act_mode, cum_error, spike_exp,
                        grad_params, out_dtype):
    """``_EncodeFn.forward`` of :mod:`lava_dl.slayer.neuron.sigma_delta` on ``x``'s CUDA device.

    Same arguments and output: ``states`` and ``vth_s`` are per-row int64 numpy arrays (the
    states copied over and the final ones copied back); the messages are stored in the
    logical order.
    """
    state_exp = STATE_EXP
    module = kernels(x)
    check_devices(x, theta=theta)
    device, shape = x.device, tuple(x.shape)
    xs = _time_major(x, _kernel_dtype(x.dtype))
    blocks, steps, width = xs.shape
    need_x, want_theta = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    relu = int(act_mode) != _sd.ACT_UNIT
    mask = torch.empty((blocks, steps, width), dtype=torch.uint8, device=device) if need_x and relu \
        else _empty(device, torch.uint8)
    delta = torch.empty((blocks, steps, width), dtype=torch.int32, device=device) if want_theta \
        else _empty(device, torch.int32)
    kd = _kernel_dtype(out_dtype)
    msg_unit = float(1 << (state_exp + spike_exp))
    y = torch.empty((blocks, steps, width), dtype=kd, device=device)
    vth_host = np.ascontiguousarray(vth_s, np.int64).reshape(blocks, width)
    vth = torch.from_numpy(vth_host).to(device)
    state_rows = [_state_rows(values, blocks, width, device) for values in states]
    _launch(module, module.sigma_delta_forward, device, blocks, width, xs, float(in_unit), int(mode),
            state_exp + spike_exp, torch.zeros_like(vth), vth, int(act_mode), int(cum_error), state_exp,
            1.0 / msg_unit if kd == out_dtype else 1.0, *state_rows, y, mask, delta)
    for values, rows in zip(states, state_rows):
        _write_back(values, rows)
    unit = float(1 << (2 * state_exp + spike_exp))
    # the real threshold of the gradient, at least one step of the 1/64 grid in state units (as on the CPU)
    min_theta = 1.0 / (1 << (2 * STATE_EXP))
    theta_rows = torch.from_numpy(np.maximum(vth_host / unit, min_theta)).to(device) if want_theta \
        else torch.empty((0, 0), dtype=torch.float64, device=device)
    ctx.on_cuda = True
    ctx.cuda_arrays = (mask, delta, theta_rows)
    ctx.shape, ctx.integrate, ctx.unit = shape, int(mode) == _sd.MODE_SIGMA, unit
    ctx.grad_params, ctx.in_dtype, ctx.theta_dtype = grad_params, x.dtype, theta.dtype
    messages = _logical(y, shape)
    return messages if kd == out_dtype else messages.to(out_dtype) / msg_unit


def sigma_delta_backward(ctx, grad: torch.Tensor) -> tuple:
    """``_EncodeFn.backward`` of :func:`sigma_delta_forward`: ``(grad_x, grad_theta)``, the
    threshold gradient one value per ``(batch, neuron)`` row in the logical order."""
    mask, delta, theta = ctx.cuda_arrays
    module = kernels(grad, "grad")
    device = grad.device
    gs = _time_major(grad, _kernel_dtype(grad.dtype))
    blocks, steps, width = gs.shape
    want = bool(ctx.needs_input_grad[1])
    grad_in = torch.empty((blocks, steps, width), dtype=_kernel_dtype(ctx.in_dtype), device=device)
    grad_theta = torch.zeros((blocks, width) if want else (0, 0), dtype=torch.float64, device=device)
    tau_grad, scale_grad = ctx.grad_params
    _launch(module, module.sigma_delta_backward, device, blocks, width, gs, mask, delta, ctx.integrate,
            ctx.unit, theta, float(tau_grad), float(scale_grad), grad_in, grad_theta)
    grad_x = _logical(grad_in, ctx.shape).to(ctx.in_dtype) if ctx.needs_input_grad[0] else None
    return grad_x, (grad_theta.reshape(-1).to(ctx.theta_dtype) if want else None)


# --------------------------------------------------------------------------
# Resonators (RF, RF-IZ, ADRF, ADRF-IZ: lava_dl.slayer.neuron._resonator.ResonatorDynamics)
# --------------------------------------------------------------------------


def resonator_forward(ctx, x_re, x_im, sin_decay, cos_decay, config):
    """``ResonatorDynamics.forward`` on ``x_re``'s CUDA device, for any family.

    Same arguments and outputs (``config``'s states, per-row int64 numpy arrays, are copied
    over and receive the final states; its ``params`` are per-row int64 numpy arrays). Every
    output is stored in the logical order.
    """
    family, states, state_scale, params, surrogate, graded, record = config
    iz = family in (_res.RF_IZ_CODE, _res.ADRF_IZ_CODE)
    adaptive = family in (_res.ADRF_CODE, _res.ADRF_IZ_CODE)
    module = kernels(x_re, "x_re")
    check_devices(x_re, x_im=x_im, sin_decay=sin_decay, cos_decay=cos_decay)
    ctx.set_materialize_grads(False)
    device, shape = x_re.device, tuple(x_re.shape)
    in_dtype = torch.float64 if x_re.dtype == torch.float64 else torch.float32
    xr = _time_major(x_re, in_dtype)
    xi = _time_major(x_im, in_dtype)
    blocks, steps, width = xr.shape
    sin_d = _rows(torch.round(sin_decay.detach()), blocks, width, torch.int64, device)
    cos_d = _rows(torch.round(cos_decay.detach()), blocks, width, torch.int64, device)
    dth, dref, th0, th_step = (_state_rows(p, blocks, width, device) for p in params)
    state_rows = [_state_rows(values, blocks, width, device) for values in states]
    want_decay = bool(ctx.needs_input_grad[2] or ctx.needs_input_grad[3])
    want_grad = want_decay or bool(ctx.needs_input_grad[0] or ctx.needs_input_grad[1])
    re0, im0 = ((state_rows[0].clone(), state_rows[1].clone()) if want_decay
                else (torch.empty((0, 0), dtype=torch.int64, device=device),) * 2)

    def records(keep: bool) -> torch.Tensor:
        return torch.empty((blocks, steps, width), dtype=torch.int32, device=device) if keep \
            else _empty(device, torch.int32)

    s = torch.empty((blocks, steps, width), dtype=torch.float64 if graded else in_dtype, device=device)
    re_rec = records(record or want_decay)
    im_rec = records(record or want_decay or (want_grad and not iz))
    margin = records(want_grad)
    th_rec = records(record and adaptive)
    r_rec = records(record and adaptive)
    _launch(module, module.resonator_forward, device, blocks, width, int(family), xr, xi, float(state_scale),
            sin_d, cos_d, dth, dref, th0, th_step, *state_rows, bool(graded), s, re_rec, im_rec, margin,
            th_rec, r_rec)
    for values, rows in zip(states, state_rows):
        _write_back(values, rows)
    ctx.save_for_backward(sin_decay, cos_decay)
    ctx.on_cuda = True
    ctx.cuda_arrays = (re_rec, im_rec, margin, s, re0, im0, th0, sin_d, cos_d)
    ctx.data = (int(family), float(state_scale), surrogate, bool(graded), x_re.dtype, shape)
    spikes = _logical(s, shape)
    if not record:
        return spikes
    dtype = x_re.dtype
    inv = 1.0 / state_scale
    outputs = (spikes, _logical(re_rec, shape).to(dtype) * inv, _logical(im_rec, shape).to(dtype) * inv)
    if adaptive:
        theta = _logical(th_rec, shape).to(dtype) * inv
        ref = _logical(r_rec, shape).to(dtype) * inv
        ctx.mark_non_differentiable(theta, ref)
        outputs += (theta, ref)
    return outputs


def resonator_backward(ctx, grad_s, grad_re=None, grad_im=None):
    """``ResonatorDynamics.backward`` of :func:`resonator_forward`:
    ``(grad_x_re, grad_x_im, grad_sin_decay, grad_cos_decay)``, the decay gradients one value
    per ``(batch, neuron)`` row in the logical order."""
    sin_decay, cos_decay = ctx.saved_tensors
    re_rec, im_rec, margin, s, re0, im0, th0, sin_d, cos_d = ctx.cuda_arrays
    family, state_scale, surrogate, graded, dtype, shape = ctx.data
    module = kernels(s, "saved spikes")
    device = s.device
    blocks, steps, width = s.shape
    tau_rho, scale_rho = surrogate

    def incoming(grad) -> torch.Tensor:
        return _empty(device, torch.float32) if grad is None else _time_major(grad, torch.float32)

    grad_x_re = torch.empty((blocks, steps, width), dtype=torch.float32, device=device)
    grad_x_im = torch.empty((blocks, steps, width), dtype=torch.float32, device=device)
    grad_sin = torch.zeros((blocks, width), dtype=torch.float64, device=device)
    grad_cos = torch.zeros((blocks, width), dtype=torch.float64, device=device)
    want = bool(ctx.needs_input_grad[2] or ctx.needs_input_grad[3])
    _launch(module, module.resonator_backward, device, blocks, width, family, incoming(grad_s),
            incoming(grad_re), incoming(grad_im), re_rec, im_rec, margin, s, re0, im0, th0, sin_d, cos_d,
            state_scale, float(tau_rho), float(scale_rho), graded, want, grad_x_re, grad_x_im, grad_sin,
            grad_cos)
    g_sin = grad_sin.reshape(-1).to(sin_decay.dtype) if ctx.needs_input_grad[2] else None
    g_cos = grad_cos.reshape(-1).to(cos_decay.dtype) if ctx.needs_input_grad[3] else None
    return _logical(grad_x_re, shape).to(dtype), _logical(grad_x_im, shape).to(dtype), g_sin, g_cos


# --------------------------------------------------------------------------
# Axonal delays (lava_dl.slayer.axon.delay's _Shift and _LearnableShift)
# --------------------------------------------------------------------------


def shift_rows(x: torch.Tensor, shifts: torch.Tensor, out: torch.Tensor) -> None:
    """The CUDA :func:`lava_dl.core.delay.shift_rows`: ``out[b, t, i] = x[b, t - shifts[i], i]`` (0 outside).

    Parameters
    ----------
    x : torch.Tensor
        ``(N, T, K)`` step rows (any dtype), e.g. a time-major activation viewed as rows.
    shifts : torch.Tensor
        ``(K,)`` int64 shift of each value of a row, on ``x``'s device.
    out : torch.Tensor
        ``(N, T, K)`` result of ``x``'s dtype (written; 0 where the source step is outside).
    """
    module = kernels(x)
    check_devices(x, shifts=shifts, out=out)
    blocks, _, width = out.shape
    _launch(module, module.shift_rows, x.device, blocks, width, x, shifts, out)


def shift_rows_adjoint(g: torch.Tensor, y: torch.Tensor, shifts: torch.Tensor, grad_x: torch.Tensor,
                       acc: torch.Tensor) -> None:
    """:func:`lava_dl.core.delay.shift_rows_adjoint` on ``g``'s CUDA device.

    Parameters
    ----------
    g : torch.Tensor
        ``(N, T, K)`` gradient of the shifted output.
    y : torch.Tensor
        ``(N, T, K)`` shifted output, its values in the order of ``g``'s.
    shifts : torch.Tensor
        ``(K,)`` int64 forward shift of each value.
    grad_x : torch.Tensor
        ``(N, T, K)`` input gradient (written: the reverse shift of ``g``).
    acc : torch.Tensor
        ``(K,)`` float64 (written): ``sum_{b, t} g[b, t, i] * (y[b, t - 1, i] - y[b, t, i])``, the
        caller adds up the values of each channel.
    """
    module = kernels(g, "grad")
    check_devices(g, y=y, shifts=shifts, grad_x=grad_x, acc=acc)
    # one thread per value over all samples (a one-row grid): each value's sum in the CPU's order
    _launch(module, module.shift_rows_adjoint, g.device, 1, g.shape[2], g, y, shifts, grad_x, acc)


class SigmaCuda(KernelFunction):
    """``_SigmaFn`` of :mod:`lava_dl.slayer.neuron.sigma_delta` on the CUDA kernels only (whatever
    the tensors' device: in the simulator, CPU tensors), for tests; ``_SigmaFn`` dispatches CUDA
    tensors to the same :func:`sigma_forward`/:func:`sigma_backward`."""

    @staticmethod
    def forward(ctx, z, sigma_state, unit, out_dtype):
        return sigma_forward(ctx, z, sigma_state, unit, out_dtype)

    @staticmethod
    def backward(ctx, grad):
        return sigma_backward(ctx, grad), None, None, None


class SigmaDeltaCuda(KernelFunction):
    """``_EncodeFn`` of :mod:`lava_dl.slayer.neuron.sigma_delta` on the CUDA kernels only, for
    tests; ``_EncodeFn`` dispatches CUDA tensors to the same
    :func:`sigma_delta_forward`/:func:`sigma_delta_backward`."""

    @staticmethod
    def forward(ctx, x, theta, in_unit, mode, states, vth_s, act_mode, cum_error, spike_exp, grad_params,
                out_dtype):
        return sigma_delta_forward(ctx, x, theta, in_unit, mode, states, vth_s, act_mode, cum_error,
                                   spike_exp, grad_params, out_dtype)

    @staticmethod
    def backward(ctx, grad):
        return sigma_delta_backward(ctx, grad) + (None,) * 9


class ResonatorDynamicsCuda(KernelFunction):
    """:class:`lava_dl.slayer.neuron._resonator.ResonatorDynamics` on the CUDA kernels only, for
    tests; ``ResonatorDynamics`` dispatches CUDA tensors to the same
    :func:`resonator_forward`/:func:`resonator_backward`."""

    @staticmethod
    def forward(ctx, x_re, x_im, sin_decay, cos_decay, config):
        return resonator_forward(ctx, x_re, x_im, sin_decay, cos_decay, config)

    @staticmethod
    def backward(ctx, grad_s, grad_re=None, grad_im=None, _grad_theta=None, _grad_ref=None):
        return (*resonator_backward(ctx, grad_s, grad_re, grad_im), None)
