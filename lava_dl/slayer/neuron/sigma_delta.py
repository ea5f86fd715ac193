"""Sigma-delta training layers: forward = the deployed integer kernels of :mod:`lava_dl.core.sigma_delta`.

Three modules, one per Lava process of an SDNN:

* :class:`Delta` -- input encoder (lava-nc ``Delta``, hdf5 ``input`` record);
* :class:`Neuron` -- hidden sigma-delta neuron (lava-nc ``SigmaDelta``);
* :class:`Sigma` -- output integrator (lava-nc ``Sigma``, hdf5 ``sigma_output``).

Real <-> integer mapping (``e = spike_exp``, default 6; ``scale`` must be 64):

* input of :class:`Neuron` / :class:`Sigma` (synaptic sum ``z``): ``a_in = trunc(z * 2^(12+e))``;
* input of :class:`Delta`: Lava's integer input ``a_in = trunc(z * 64)``;
* output of :class:`Delta` / :class:`Neuron`: ``y = msg / 2^(6+e)`` (``msg / 4096`` for e = 6),
  where ``msg`` is Lava's graded message;
* output of :class:`Sigma`: ``σ / 2^(12+e)``;
* threshold ``θ``: ``vThMant = trunc(θ * 64)``; norm bias ``b``: hdf5 ``bias = b * 64``.

Exactness of the input (``check_precision``)
-------------------------------------------
The kernels integrate exact integers, so only the synaptic sum ``z`` of each step
must be exact. With 8-bit weights (``w * 64`` an integer) and messages on the
``2^-(6+e)`` grid, every product and partial sum is a multiple of ``2^-(12+e)``;
a float32 synapse computes them exactly while every partial sum stays below
``2^(12-e)`` in magnitude (64 for e = 6), a float64 synapse below ``2^(41-e)``.
With ``check_precision=True`` (default) a float32 input whose magnitude reaches
that bound raises ``ValueError`` (the necessary condition on the final sum);
cast the block to float64 (``block.double()``) to be safe for any sum.
"""

from __future__ import annotations

import typing as ty

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lava_dl.core import sigma_delta as _sd
from lava_dl.core.fixed_point import STATE_EXP
from lava_dl.slayer import _cuda
from lava_dl.slayer._eager import KernelFunction, eager
from lava_dl.slayer.neuron.base import Neuron as _BaseNeuron
from lava_dl.slayer.neuron.base import StateAttribute, device_arguments, device_params_property, field_value
from lava_dl.slayer.neuron.dynamics import BlockLayout, _check_cpu, _logical_rows, kernel_threads

_W = 1 << STATE_EXP  # the only scale at which graded messages map exactly onto Lava
_PROBE = torch.tensor([-3.0, -1.0, -(2.0**-20), 0.0, 2.0**-20, 0.5, 3.0], dtype=torch.float64)


def activation_mode(activation) -> tuple[int, str]:
    """``(act_mode, hdf5 name)`` of a deployable activation; raise ``ValueError`` otherwise.

    Parameters
    ----------
    activation : callable, str or None
        ``torch.nn.functional.relu``, ``torch.relu``, ``nn.ReLU()`` or ``'relu'`` give ReLU;
        ``None``, ``nn.Identity()``, ``'identity'``/``'unit'`` the identity. Other callables
        are accepted only if they act exactly as one of the two on probe values.
    """
    if activation is None:
        return _sd.ACT_UNIT, "identity"
    if isinstance(activation, str):
        mode = _sd.SIGMA_DELTA.extra["hdf5_enums"]["activation"][1].get(activation.lower())
        if mode is None:
            raise ValueError(f"activation {activation!r} cannot be deployed; use 'relu' or 'identity'")
        return mode, "relu" if mode == _sd.ACT_RELU else "identity"
    if activation in (F.relu, torch.relu) or isinstance(activation, nn.ReLU):
        return _sd.ACT_RELU, "relu"
    if isinstance(activation, nn.Identity):
        return _sd.ACT_UNIT, "identity"
    if not callable(activation):
        raise ValueError(f"activation must be callable, a name or None, got {activation!r}")
    try:
        out = activation(_PROBE.clone())
    except Exception as err:  # noqa: BLE001 - report any failure as a bad activation
        raise ValueError(
            f"activation {activation!r} cannot be deployed: it failed on a probe ({err})"
        ) from err
    if isinstance(out, torch.Tensor) and out.shape == _PROBE.shape:
        if torch.equal(out.to(torch.float64), torch.clamp(_PROBE, min=0)):
            return _sd.ACT_RELU, "relu"
        if torch.equal(out.to(torch.float64), _PROBE):
            return _sd.ACT_UNIT, "identity"
    raise ValueError(
        f"activation {getattr(activation, '__name__', activation)!r} cannot be deployed bit-exactly: "
        "Lava's SigmaDelta supports only ReLU and identity"
    )


#: numpy dtype of each torch dtype the compiled kernels read and write.
_KERNEL_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
_NO_U8 = np.empty((0, 0, 0), np.uint8)
_NO_I32 = np.empty((0, 0, 0), np.int32)
_NO_F64 = np.empty((0, 0), np.float64)


def _check_device(x: torch.Tensor) -> None:
    """The sigma-delta kernels run on CPU tensors and, with numba-cuda, on CUDA tensors; raise
    ``NotImplementedError`` (naming the device) for any other."""
    if x.device.type != "cuda":
        _check_cpu(x)


def _in_memory_order(z: torch.Tensor) -> torch.Tensor:
    """``z`` with its axes permuted into memory order (largest stride first).

    A reduction over all elements gives the same result, and a dense tensor (such as
    a synapse's time-major output) is then contiguous, which torch reduces many
    times faster than a permuted view.
    """
    return z.permute(sorted(range(z.dim()), key=lambda d: -z.stride(d)))


def _check_range(z: torch.Tensor, unit: float, check: bool, where: str) -> None:
    """Raise if ``trunc(z * unit)`` may not be Lava's integer input (see :func:`to_int`)."""
    if not z.numel():
        return
    lo, hi = torch.aminmax(_in_memory_order(z.detach()))
    lo, hi = float(lo), float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{where}: input contains inf or nan")
    peak = max(-lo, hi) * unit  # exact: unit is a power of two
    if not np.isfinite(peak):
        raise ValueError(f"{where}: input contains inf or nan")
    limit = 2.0**24 if z.dtype == torch.float32 else 2.0**53
    if check and z.dtype in _KERNEL_DTYPES and peak >= limit:
        raise ValueError(
            f"{where}: synaptic input up to {peak / unit:g} is beyond the range where {z.dtype} sums "
            f"are exact on the 2^-{int(np.log2(unit))} grid (|z| < {limit / unit:g}); run the "
            "synapse in float64 (e.g. block.double()) or pass check_precision=False"
        )
    if peak >= 2.0**62:
        raise ValueError(f"{where}: input {peak / unit:g} does not fit the integer model")


def to_int(z: torch.Tensor, unit: float, check: bool, where: str) -> np.ndarray:
    """``trunc(z * unit)`` as int64 numpy, shaped like ``z``; raise if a float32 ``z`` may be inexact."""
    _check_range(z, unit, check, where)
    scaled = torch.trunc(z.detach().to(torch.float64) * unit)
    return np.ascontiguousarray(scaled.to(torch.int64).cpu().numpy())


def _kernel_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype the compiled kernels read and write for tensors of ``dtype``."""
    return dtype if dtype in _KERNEL_DTYPES else torch.float64


def _kernel_array(layout: BlockLayout, t: torch.Tensor) -> np.ndarray:
    """``t`` as the ``(B, T, K)`` array of ``layout`` in its kernel dtype (in place when possible).

    A tensor already in the kernel dtype and stored time-major (e.g. a synapse's
    output) is read without a copy.
    """
    t = t.detach()
    if t.dtype not in _KERNEL_DTYPES:
        t = t.to(torch.float64)
    return layout.array(t, _KERNEL_DTYPES[t.dtype])


def _kernel_records(layout: BlockLayout, dtype: torch.dtype) -> np.ndarray:
    """A new ``(B, T, K)`` array in the kernel dtype of ``dtype`` (once written, ``layout.tensor`` of it)."""
    return layout.records(_KERNEL_DTYPES[_kernel_dtype(dtype)])


class _SigmaFn(KernelFunction):
    """``σ[t] = σ[t-1] + trunc(z[t] unit)`` on integers; returns ``σ / unit`` in ``out_dtype``.

    ``z`` is ``(N, *S, T)``; ``sigma_state`` the int64 σ per ``(batch, neuron)`` row,
    updated in place. The output (and, backward, the gradient of ``z``) is stored
    time-major (see :class:`BlockLayout`). Backward: reverse cumulative sum
    (accumulated in float64, returned in ``z``'s dtype).
    """

    @staticmethod
    def forward(ctx, z, sigma_state, unit, out_dtype):
        if z.device.type == "cuda":  # the CUDA kernel of the same rule (lava_dl.slayer._cuda)
            return _cuda.sigma_forward(ctx, z, sigma_state, unit, out_dtype)
        _check_cpu(z)
        layout = BlockLayout(z)
        arr = _kernel_records(layout, out_dtype)
        state = layout.per_neuron(sigma_state)
        _sd.sigma_forward_real_blocks(_kernel_array(layout, z), unit, 1.0 / unit, state, arr,
                                      threads=kernel_threads())
        layout.write_back(sigma_state, state)
        ctx.layout, ctx.in_dtype = layout, z.dtype
        return layout.tensor(arr).to(out_dtype)

    @staticmethod
    def backward(ctx, grad):
        if getattr(ctx, "on_cuda", False):
            return _cuda.sigma_backward(ctx, grad), None, None, None
        layout = ctx.layout
        arr = _kernel_records(layout, ctx.in_dtype)
        _sd.sigma_backward_real_blocks(_kernel_array(layout, grad), arr, threads=kernel_threads())
        return layout.tensor(arr).to(ctx.in_dtype), None, None, None


class _EncodeFn(KernelFunction):
    """Integer input, (sigma,) activation and delta encoding in one kernel; returns ``msg / 2^(6+e)``.

    ``x`` is the real ``(N, *S, T)`` input: the integer input is ``trunc(x * in_unit)``,
    integrated (``mode`` ``MODE_SIGMA``), shifted (``MODE_SHIFT``) or taken as is
    (``MODE_PLAIN``). Gradients flow to ``x`` with unit slope (straight-through delta,
    ReLU mask and, for ``MODE_SIGMA``, the reverse cumulative sum) and to the per-row
    real threshold ``theta`` as lava-dl's. ``states`` are ``(sigma, act, residue, error)``
    and ``vth_s`` the scaled threshold, int64 arrays with one value per ``(batch, neuron)``
    row; the states are updated in place. The output and the gradient of ``x`` are
    stored time-major (see :class:`BlockLayout`). On CUDA inputs both passes run the CUDA
    kernels of the same rules (:func:`lava_dl.slayer._cuda.sigma_delta_forward`), outputs
    stored in the logical order; so does :class:`_SigmaFn` (:func:`lava_dl.slayer._cuda.sigma_forward`).
    """

    @staticmethod
    def forward(
        ctx, x, theta, in_unit, mode, states, vth_s, act_mode, cum_error, spike_exp, grad_params, out_dtype
    ):
        if x.device.type == "cuda":  # the CUDA kernels of the same rules (lava_dl.slayer._cuda)
            return _cuda.sigma_delta_forward(ctx, x, theta, in_unit, mode, states, vth_s, act_mode, cum_error,
                                             spike_exp, grad_params, out_dtype)
        _check_cpu(x)
        _cuda.check_devices(x, theta=theta)
        layout = BlockLayout(x)
        need_x, want_theta = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        relu = int(act_mode) != _sd.ACT_UNIT
        mask = layout.records(np.uint8) if need_x and relu else _NO_U8
        delta = layout.records(np.int32) if want_theta else _NO_I32
        kd = _kernel_dtype(out_dtype)
        msg_unit = float(1 << (STATE_EXP + spike_exp))
        y_arr = _kernel_records(layout, out_dtype)
        vth = layout.per_neuron(vth_s)
        state_arrays = [layout.per_neuron(s) for s in states]
        _sd.fused_forward_blocks(
            _kernel_array(layout, x),
            float(in_unit),
            int(mode),
            STATE_EXP + spike_exp,
            np.zeros_like(vth),
            vth,
            int(act_mode),
            int(cum_error),
            STATE_EXP,
            1.0 / msg_unit if kd == out_dtype else 1.0,
            *state_arrays,
            y_arr,
            mask,
            delta,
            threads=kernel_threads(),
        )
        y = layout.tensor(y_arr)
        for values, arr in zip(states, state_arrays):
            layout.write_back(values, arr)
        unit = float(1 << (2 * STATE_EXP + spike_exp))
        ctx.layout, ctx.mask, ctx.delta, ctx.mode, ctx.unit = layout, mask, delta, int(mode), unit
        ctx.theta = np.maximum(vth / unit, 1.0 / (_W << STATE_EXP)) if want_theta else _NO_F64
        ctx.grad_params, ctx.in_dtype, ctx.theta_dtype = grad_params, x.dtype, theta.dtype
        return y if kd == out_dtype else y.to(out_dtype) / msg_unit

    @staticmethod
    def backward(ctx, grad):
        if getattr(ctx, "on_cuda", False):
            return _cuda.sigma_delta_backward(ctx, grad) + (None,) * 9
        layout = ctx.layout
        gi_arr = _kernel_records(layout, ctx.in_dtype)
        want = bool(ctx.needs_input_grad[1])
        gth = np.zeros((layout.blocks, layout.width), np.float64) if want else _NO_F64
        tau_grad, scale_grad = ctx.grad_params
        _sd.fused_backward_blocks(
            _kernel_array(layout, grad), ctx.mask, ctx.delta, ctx.mode == _sd.MODE_SIGMA, ctx.unit, ctx.theta,
            tau_grad, scale_grad, gi_arr, gth, threads=kernel_threads(),
        )
        grad_x = layout.tensor(gi_arr).to(ctx.in_dtype) if ctx.needs_input_grad[0] else None
        grad_theta = _logical_rows(layout, gth).to(ctx.theta_dtype) if want else None  # rows in (N, *S) order
        return (grad_x, grad_theta) + (None,) * 9


class _DeltaBase(_BaseNeuron):
    """Threshold handling and the delta-encoder run shared by :class:`Delta` and :class:`Neuron`."""

    _encoder_states = ("act", "residue", "error")

    def __init__(
        self,
        threshold,
        tau_grad,
        scale_grad,
        scale,
        cum_error,
        norm,
        dropout,
        shared_param,
        persistent_state,
        requires_grad,
        shape,
        num_channels,
        spike_exp,
        check_precision,
    ):
        if threshold is None or threshold < 0:
            raise ValueError(f"{type(self).__name__}: threshold must be >= 0, got {threshold}")
        if int(scale) != _W:
            raise ValueError(
                f"{type(self).__name__}: scale must be {_W}: graded messages map exactly onto Lava "
                f"only with weights in units of 1/64 (got scale={scale})"
            )
        super().__init__(
            threshold=threshold,
            tau_grad=tau_grad,
            scale_grad=scale_grad,
            scale=scale,
            norm=norm,
            dropout=dropout,
            shared_param=shared_param,
            persistent_state=persistent_state,
            requires_grad=requires_grad,
            graded_spike=True,
            shape=shape,
            num_channels=num_channels,
        )
        exp = _sd.SIGMA_DELTA.param("spike_exp")
        if not exp.lo <= int(spike_exp) <= exp.hi or int(spike_exp) != spike_exp:
            raise ValueError(
                f"{type(self).__name__}: spike_exp must be an integer in [{exp.lo}, {exp.hi}], "
                f"got {spike_exp}"
            )
        self.spike_exp = int(spike_exp)
        self.cum_error = bool(cum_error)
        self.check_precision = bool(check_precision)
        # per channel without a known channel count: one value until the first input (lava-dl's rule)
        size = 1 if self.shared_param else self.num_channels or 1
        self.delta_threshold = nn.Parameter(
            torch.full((size,), self.threshold, dtype=torch.float32), requires_grad=self.requires_grad
        )
        if not self.shared_param and self.num_channels is None:
            self._deferred["delta_threshold"] = ("repeat",)

    @property
    def state_unit(self) -> float:
        """Integer units per real unit of σ, act, Δ and the synaptic sum (``2^(12+e)``)."""
        return float(1 << (2 * STATE_EXP + self.spike_exp))

    @property
    def input_unit(self) -> float:
        """Integer input units per real input unit: ``2^(12+e)`` (the synaptic sum's grid)."""
        return self.state_unit

    @property
    def message_unit(self) -> float:
        """Integer units per real unit of the graded message (``2^(6+e)``)."""
        return float(1 << (STATE_EXP + self.spike_exp))

    @property
    def v_th_mant(self):
        """Deployed threshold mantissa ``trunc(θ * 64)`` (int, or array when per channel)."""
        values = torch.trunc(self.delta_threshold.detach() * self.w_scale).to(torch.int64).cpu().numpy()
        return int(values[0]) if values.size == 1 else values

    def clamp(self) -> None:
        """Keep the learnable threshold non-negative and deployable."""
        hi = self.spec.param("vth").hi / self.w_scale
        self.delta_threshold.data.clamp_(0.0, hi)

    def _vth_rows(self, x: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
        theta = self.per_row(self.delta_threshold, x)
        mant = torch.trunc(theta.detach().to(torch.float64) * self.w_scale).to(torch.int64).cpu().numpy()
        return theta, np.ascontiguousarray(mant << (self.spike_exp + STATE_EXP))

    def _encode(
        self,
        source: torch.Tensor,
        in_unit: float,
        mode: int,
        x: torch.Tensor,
        act_mode: int,
        out_dtype,
    ) -> torch.Tensor:
        """Messages for the real ``source`` (shaped like ``x``, see :class:`_EncodeFn`); keeps the states."""
        if self.requires_grad:
            self.clamp()
        names = ("sigma",) + self._encoder_states
        states = tuple(
            np.array(self.state(n, x).cpu().numpy(), dtype=np.int64)
            if n != "sigma" or mode == _sd.MODE_SIGMA
            else np.zeros(x[..., 0].numel(), np.int64)
            for n in names
        )
        theta, vth_s = self._vth_rows(x)
        y = _EncodeFn.apply(
            source,
            theta,
            in_unit,
            mode,
            states,
            vth_s,
            act_mode,
            self.cum_error,
            self.spike_exp,
            (self.tau_grad, self.scale_grad),
            out_dtype,
        )
        for name, final in zip(names, states):
            if name != "sigma" or mode == _sd.MODE_SIGMA:
                self.keep_state(name, torch.from_numpy(final))
        return y

    def spec_values(self) -> dict:
        return {"vth": self.v_th_mant}


class Delta(_DeltaBase):
    """Sigma-delta input encoder (lava-dl's ``slayer.axon.Delta``, also ``slayer.axon.delta.Delta``,
    as used by the SDNN Input block).

    Parameters
    ----------
    threshold : float
        Delta threshold θ (real units; ``vThMant = trunc(θ * 64)``).
    scale : int
        Must be 64 (lava-dl's default; its second positional argument).
    tau_grad, scale_grad : float
        Relaxation width and height of the threshold gradient.
    cum_error : bool
        Fire on the accumulated error instead of the delta.
    shared_param : bool
        One threshold (True) or one per channel (False; needs ``shape``/``num_channels``).
    persistent_state : bool
        Carry the encoder states across calls.
    requires_grad : bool
        Learn the threshold.
    shape, num_channels
        See :class:`lava_dl.slayer.neuron.base.Neuron`.
    spike_exp : int
        Fractional bits of the graded message (netx ``spike_exp``), default 6.

    Notes
    -----
    The input ``z`` becomes Lava's integer input ``trunc(64 z)``; the output is Lava's
    graded message divided by ``2^(6+spike_exp)``. Gradients: straight-through
    ``∂y/∂Δ = 1`` and ``∂z[t] = g[t] - g[t+1]``. lava-dl's ``Delta`` works on real values
    (output floored to ``1/scale``); this one is the deployed integer encoder, the same for
    inputs on the ``1/64`` grid. ``pre_state``, ``residual_state`` and ``error_state`` are
    the carried states (lava-dl's names).
    """

    spec = _sd.DELTA

    pre_state = StateAttribute("act", unit="state_unit")
    residual_state = StateAttribute("residue", unit="state_unit")
    error_state = StateAttribute("error", unit="state_unit")

    def __init__(
        self,
        threshold,
        scale=_W,
        tau_grad=1,
        scale_grad=1,
        cum_error=False,
        shared_param=True,
        persistent_state=False,
        requires_grad=False,
        shape=None,
        num_channels=None,
        spike_exp=6,
    ):
        super().__init__(
            threshold,
            tau_grad,
            scale_grad,
            scale,
            cum_error,
            None,
            None,
            shared_param,
            persistent_state,
            requires_grad,
            shape,
            num_channels,
            spike_exp,
            False,
        )

    @property
    def input_unit(self) -> float:
        """Integer input units per real input unit: Lava's ``Delta`` takes ``trunc(64 z)``."""
        return float(self.w_scale)

    @eager
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Graded messages (``N, C, (H, W,) T``) for the real input ``input``."""
        self._check_input(input)
        _check_device(input)
        _check_range(input, float(self.w_scale), False, "Delta")
        # Lava: trunc(64 z) << (spike_exp + state_exp) in int32 arithmetic (wraps).
        return self._encode(input, float(self.w_scale), _sd.MODE_SHIFT, input, _sd.ACT_UNIT, input.dtype)

    @device_params_property
    def device_params(self) -> dict:
        return {"type": self.spec.hdf5_type, "activation": "identity", **_encoder_fields(self)}


def _encoder_fields(module: _DeltaBase) -> dict:
    """The delta encoder's hdf5 fields: ``vThMant`` (an array when per channel) and, only when set,
    ``cumError`` (this package's field; lava-dl stores none, and a file without it deploys 0)."""
    value = np.asarray(module.deployed_values()["vth"], dtype=np.int64)
    fields = {"vThMant": value if value.size > 1 else value.reshape(()).item()}
    if module.cum_error:
        fields[module.spec.param("cum_error").hdf5_key] = True
    return fields


class Neuron(_DeltaBase):
    """Sigma-delta neuron (lava-dl's ``slayer.neuron.sigma_delta.Neuron``), bit-exact with Lava's SigmaDelta.

    Parameters
    ----------
    threshold : float
        Delta threshold θ (real units; ``vThMant = trunc(θ * 64)``).
    activation : callable, str or None
        ReLU (``F.relu``) or identity; other activations raise ``ValueError``
        (see :func:`activation_mode`).
    tau_grad, scale_grad : float
        Relaxation width and height of the threshold gradient.
    scale : int
        Must be 64 (``1 << 6``).
    cum_error : bool
        Fire on the accumulated error (the state follows ``persistent_state``).
    norm : callable, optional
        Normalisation factory (``MeanOnlyBatchNorm``); acts on σ and deploys as ``bias``.
    dropout : nn.Module, optional
        Applied to the output messages.
    shared_param : bool
        One threshold (True) or one per channel (False).
    persistent_state : bool
        Carry σ and the encoder states across calls.
    requires_grad : bool
        Learn the threshold.
    shape, num_channels
        See :class:`lava_dl.slayer.neuron.base.Neuron`.
    spike_exp : int
        Fractional bits of the graded message (netx ``spike_exp``), default 6.
    check_precision : bool
        Raise when a float32 input may not be the exact synaptic sum (module docstring).

    Notes
    -----
    Forward, per neuron, in Lava's integers: ``σ += trunc(z 2^(12+e))``,
    ``act = relu(σ + bias)``, delta encoding with threshold ``vThMant << (6+e)``,
    ``msg = Δ >> 6``; the output is ``msg / 2^(6+e)``. Backward (lava-dl's):
    straight-through through the delta, ``g[t] - g[t+1]``, ReLU mask, reverse cumsum.
    """

    spec = _sd.SIGMA_DELTA
    _encoder_states = ("act", "residue", "error")

    def __init__(
        self,
        threshold,
        activation,
        tau_grad=1,
        scale_grad=1,
        scale=_W,
        cum_error=False,
        norm=None,
        dropout=None,
        shared_param=True,
        persistent_state=False,
        requires_grad=False,
        shape=None,
        num_channels=None,
        spike_exp=6,
        check_precision=True,
    ):
        self.act_mode, self.activation_name = activation_mode(activation)
        super().__init__(
            threshold,
            tau_grad,
            scale_grad,
            scale,
            cum_error,
            norm,
            dropout,
            shared_param,
            persistent_state,
            requires_grad,
            shape,
            num_channels,
            spike_exp,
            check_precision,
        )
        self.activation = activation

    @property
    def bias(self) -> np.ndarray | None:
        """Deployed integer bias per channel (from the norm), or None."""
        if self.norm is None:
            return None
        return self.norm.bias.detach().to(torch.int64).cpu().numpy()

    def set_bias(self, bias: torch.Tensor) -> None:
        """lava-dl's ``set_bias``: not supported, and raises ``NotImplementedError``.

        lava-dl added this bias before the activation in training but never exported it, so its
        deployed network ran without it. Here a bias that deploys is the norm's (``norm=
        MeanOnlyBatchNorm``, exported as the record's ``bias``), or the bias of the hdf5 record a
        network is loaded from.
        """
        raise NotImplementedError(
            "sigma_delta.Neuron.set_bias: lava-dl trained with this bias but never exported it (its deployed "
            "network ran without it); train with norm=MeanOnlyBatchNorm, whose bias is exported, instead")

    @device_params_property
    def device_params(self) -> dict:
        return {"type": self.spec.hdf5_type, "activation": self.activation_name, **_encoder_fields(self)}

    def dynamics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the neuron; return ``(sigma, messages)`` in real units (σ after the norm, float64)."""
        self._check_input(x)
        _check_device(x)
        _check_range(x, self.state_unit, self.check_precision, type(self).__name__)
        sigma_state = np.array(self.state("sigma", x).cpu().numpy(), dtype=np.int64)
        sigma = _SigmaFn.apply(x, sigma_state, self.state_unit, torch.float64)
        self.keep_state("sigma", torch.from_numpy(sigma_state))
        if self.norm is not None:
            sigma = self.norm(sigma)
        y = self._encode(sigma, self.state_unit, _sd.MODE_PLAIN, x, self.act_mode, x.dtype)
        return sigma, y

    @property
    def sigma(self) -> _SigmaStage:
        """lava-dl's ``neuron.sigma``: the σ integrator of this neuron, callable alone."""
        return _SigmaStage(self)

    @property
    def delta(self) -> _DeltaStage:
        """lava-dl's ``neuron.delta``: the delta encoder of this neuron, callable alone."""
        return _DeltaStage(self)

    @eager
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Graded messages (``N, C, (H, W,) T``) for the real synaptic input ``input``.

        Without a norm, σ stays an integer inside one fused kernel (no real σ is
        formed); with a norm, σ goes through it in float64 as in :meth:`dynamics`.
        """
        if self.norm is not None:
            _, y = self.dynamics(input)
            return self._apply_dropout(y)
        self._check_input(input)
        _check_device(input)
        _check_range(input, self.state_unit, self.check_precision, type(self).__name__)
        y = self._encode(input, self.state_unit, _sd.MODE_SIGMA, input, self.act_mode, input.dtype)
        return self._apply_dropout(y)


class _Stage:
    """One stage of a sigma-delta :class:`Neuron` run on its own (lava-dl's ``neuron.sigma`` and
    ``neuron.delta`` modules): same kernels, same carried states as the neuron's forward pass."""

    def __init__(self, neuron: Neuron):
        self.neuron = neuron

    @property
    def _states(self) -> dict:
        return self.neuron._states

    @property
    def state_unit(self) -> float:
        return self.neuron.state_unit

    @property
    def _batch_shape(self):
        return getattr(self.neuron, "_batch_shape", None)

    def _prepare(self, x: torch.Tensor) -> None:
        self.neuron._check_input(x)
        _check_device(x)


class _SigmaStage(_Stage):
    """``σ[t] = σ[t-1] + x[t]`` on the ``2^-(12+e)`` grid (the neuron's dendrite); ``pre_state`` is σ.

    Returns ``σ`` in ``x``'s dtype. Backward: reverse cumulative sum.
    """

    pre_state = StateAttribute("sigma", unit="state_unit")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self._prepare(x)
        _check_range(x, self.state_unit, self.neuron.check_precision, "Neuron.sigma")
        state = np.array(self.neuron.state("sigma", x).cpu().numpy(), dtype=np.int64)
        sigma = _SigmaFn.apply(x, state, self.state_unit, x.dtype)
        self.neuron.keep_state("sigma", torch.from_numpy(state))
        return sigma


class _DeltaStage(_Stage):
    """The neuron's delta encoder alone (identity activation): graded messages ``msg / 2^(6+e)``
    for the real input ``x`` (taken as ``trunc(x 2^(12+e))``).

    ``pre_state``, ``residual_state`` and ``error_state`` are the previous input, the
    residue and the accumulated error (lava-dl's names). Backward: straight through the
    delta, ``g[t] - g[t+1]``.
    """

    pre_state = StateAttribute("act", unit="state_unit")
    residual_state = StateAttribute("residue", unit="state_unit")
    error_state = StateAttribute("error", unit="state_unit")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self._prepare(x)
        return self.neuron._encode(x, self.state_unit, _sd.MODE_PLAIN, x, _sd.ACT_UNIT, x.dtype)


class Sigma(_BaseNeuron):
    """Sigma output integrator (lava-dl's ``slayer.dendrite.Sigma``, also ``slayer.dendrite.sigma.Sigma``,
    as used by the SDNN Output block).

    Parameters
    ----------
    persistent_state : bool
        Carry σ across calls.
    shape, num_channels
        See :class:`lava_dl.slayer.neuron.base.Neuron`.
    spike_exp : int
        Fractional bits of the graded messages it receives, default 6.
    check_precision : bool
        Raise when a float32 input may not be the exact synaptic sum.

    Notes
    -----
    Returns ``σ / 2^(12+e)`` with ``σ += trunc(z 2^(12+e))`` (Lava's ``Sigma`` output over
    ``2^(12+e)``), in the input's dtype. Backward: reverse cumulative sum.
    """

    spec = _sd.SIGMA
    pre_state = StateAttribute("sigma", unit="state_unit")
    #: State-dict entries of lava-dl's Output neuron that it never applied (its delta encoder and
    #: norm): dropped when its saved state loads here (see ``lava_dl.slayer._lava_dl_state``).
    lava_dl_unused_state = ("delta.", "norm.")

    def __init__(
        self, persistent_state=False, shape=None, num_channels=None, spike_exp=6, check_precision=True
    ):
        super().__init__(
            threshold=None,
            persistent_state=persistent_state,
            graded_spike=True,
            shape=shape,
            num_channels=num_channels,
        )
        exp = _sd.SIGMA_DELTA.param("spike_exp")
        if not exp.lo <= int(spike_exp) <= exp.hi or int(spike_exp) != spike_exp:
            raise ValueError(f"Sigma: spike_exp must be an integer in [{exp.lo}, {exp.hi}], got {spike_exp}")
        self.spike_exp = int(spike_exp)
        self.check_precision = bool(check_precision)

    @property
    def state_unit(self) -> float:
        return float(1 << (2 * STATE_EXP + self.spike_exp))

    @property
    def input_unit(self) -> float:
        return self.state_unit

    def spec_values(self) -> dict:
        return {}

    @device_params_property
    def device_params(self) -> dict:
        return {"type": self.spec.hdf5_type, "sigma_output": True}

    @eager
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Running sum of the real synaptic input, exactly as Lava's Sigma integrates it."""
        self._check_input(input)
        _check_device(input)
        _check_range(input, self.state_unit, self.check_precision, "Sigma")
        state = np.array(self.state("sigma", input).cpu().numpy(), dtype=np.int64)
        sigma = _SigmaFn.apply(input, state, self.state_unit, input.dtype)
        self.keep_state("sigma", torch.from_numpy(state))
        return sigma


def neuron_params(device_params: ty.Mapping[str, ty.Any], scale: int = 1 << 6,
                  p_scale: int = 1 << 12) -> dict:
    """Sigma-delta neuron arguments from hdf5 ``neuron`` fields (lava-dl's ``neuron_params``).

    The inverse of the export of the sigma-delta blocks: ``threshold = vThMant / scale``,
    ``cum_error`` (``cumError``, this package's field; False without it, as lava-dl deploys) and
    ``activation`` (``'relu'`` gives ``torch.nn.functional.relu``, ``'identity'``/``'unit'``
    give ``None``, the identity; without the field ReLU, Lava's default). The output marker
    ``sigma_output`` is checked (it must be True) and not returned: it selects the ``Output``
    block, not a neuron argument.

    Parameters
    ----------
    device_params : mapping
        hdf5 neuron fields ``{key: value}`` (``type``, ``activation``, ``vThMant``,
        ``cumError``, ``sigma_output``).
    scale : int
        Weight scale (must be 64 for the sigma-delta neurons).
    p_scale : int
        Unused (sigma-delta neurons have no decay); kept for a common signature.

    Returns
    -------
    dict
        Arguments of :class:`Neuron` (and of the blocks' ``neuron_params``). A per-channel
        ``vThMant`` gives a threshold array and ``shared_param=False`` (the constructor takes a
        scalar: build with one and set ``delta_threshold``, as
        :class:`lava_dl.slayer.auto.SequentialNetwork` does).

    Raises
    ------
    ValueError
        Naming the field: unknown, missing, non-integer or out-of-range values, an activation
        Lava's SigmaDelta does not have, a false ``sigma_output``.
    """
    args = device_arguments(Neuron.spec, device_params, scale, p_scale,
                            handled=("activation", "sigma_output"))
    if "sigma_output" in device_params and not np.all(np.asarray(device_params["sigma_output"])):
        raise ValueError("field 'neuron/sigma_output': the output marker must be True when present, got "
                         f"{device_params['sigma_output']!r}")
    name = field_value(device_params.get("activation", "relu"))
    choices = Neuron.spec.extra["hdf5_enums"]["activation"][1]
    if not isinstance(name, str) or name not in choices:
        raise ValueError(f"field 'neuron/activation': {name!r} cannot be deployed; supported: "
                         f"{sorted(choices)}")
    args["activation"] = F.relu if choices[name] == _sd.ACT_RELU else None
    return args

