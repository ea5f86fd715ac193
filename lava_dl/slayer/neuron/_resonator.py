"""Shared implementation of the resonator training layers (``rf``, ``rf_iz``, ``adrf``, ``adrf_iz``).

The forward pass is the deployed integer kernel of :mod:`lava_dl.core.resonator`
(24-bit saturation included); the backward pass is its compiled surrogate-gradient
adjoint. A neuron takes a complex input as lava-dl does: a ``(real, imag)`` pair of
``N, C, (H, W,) T`` tensors, which is what a complex synapse
(:mod:`lava_dl.slayer.synapse.complex`) returns. A complex tensor is accepted too.
"""

from __future__ import annotations

import math
import typing as ty

import numpy as np
import torch
from torch import nn

from lava_dl.core import resonator as _res
from lava_dl.core.fixed_point import STATE_EXP
from lava_dl.core.spec import NeuronSpec
from lava_dl.slayer import _cuda
from lava_dl.slayer._eager import KernelFunction, eager
from lava_dl.slayer.neuron.base import DeployedDecay, StateAttribute, device_arguments
from lava_dl.slayer.neuron.base import Neuron as _BaseNeuron
from lava_dl.slayer.neuron.dynamics import (
    BlockLayout,
    _check_cpu,
    _logical_rows,
    input_dtype,
    kernel_threads,
    message_dtype,
)
from lava_dl.slayer.spike import Spike
from lava_dl.slayer.spike import complex as _complex_spike

#: Threshold used when spiking is disabled: never reached by a 24-bit state.
_NO_SPIKE = np.int64(1) << 40
_EMPTY = np.zeros((0, 0, 0), np.int32)
_EMPTY_GRAD = np.zeros((0, 0, 0), np.float32)
_EMPTY_ROW = np.zeros((0, 0), np.int64)
#: Largest rotation gain slayer allows (``sqrt(sin^2 + cos^2) <= 4095``).
_MAX_GAIN = 4095.0

ComplexInput = ty.Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]  # noqa: UP007


def _rows_int(param: torch.Tensor) -> np.ndarray:
    """Per-row integer parameter: round-half-even of the stored float (as exported)."""
    return np.ascontiguousarray(torch.round(param.detach()).to(torch.int64).cpu().numpy())


def _grad_array(layout: BlockLayout, grad: torch.Tensor | None) -> np.ndarray:
    """Incoming gradient as a float32 ``(B, T, K)`` array of ``layout``, or an empty one when absent."""
    return _EMPTY_GRAD if grad is None else layout.array(grad, np.float32)


class ResonatorDynamics(KernelFunction):
    """Resonator states and spikes of one family over time.

    ``forward(ctx, x_re, x_im, sin_decay, cos_decay, config)``: ``x_re``/``x_im`` are the
    ``(N, *S, T)`` real and imaginary inputs, the decays are per-row float tensors (one
    value per ``(batch, neuron)`` row, in ``(N, *S)`` order; stored values, rounded
    half-even when used) and ``config = (family, states, state_scale, params, surrogate,
    graded, record)``: ``states`` is a tuple of four per-row int64 numpy arrays
    ``(re, im, th, r)`` holding the initial states, overwritten with the final ones;
    ``params`` is ``(dth, dref, th0, th_step)`` per-row int64 arrays (``th0 = vth << 6``);
    ``surrogate`` is ``(tau_rho, scale_rho)``.

    Returns the spikes; with ``record`` also the recorded states ``re``, ``im`` in real
    units, and for the adaptive families the threshold and refractory state
    (``(θ0 + th_t) / S`` and ``r_t / S``, without gradient). Nothing else is
    materialised: the kernel records only what the backward pass needs. The inputs are
    read in place when time-major (see :class:`~lava_dl.slayer.neuron.dynamics.BlockLayout`;
    otherwise copied once), and every output, gradients included, is stored time-major.
    On CUDA inputs both passes run the CUDA kernels of the same rules
    (:func:`lava_dl.slayer._cuda.resonator_forward`), outputs stored in the logical order.
    """

    @staticmethod
    def forward(ctx, x_re, x_im, sin_decay, cos_decay, config):
        family, states, state_scale, params, surrogate, graded, record = config
        iz = family in (_res.RF_IZ_CODE, _res.ADRF_IZ_CODE)
        adaptive = family in (_res.ADRF_CODE, _res.ADRF_IZ_CODE)
        if x_re.device.type == "cuda":  # the CUDA kernels of the same rules (lava_dl.slayer._cuda)
            return _cuda.resonator_forward(ctx, x_re, x_im, sin_decay, cos_decay, config)
        _check_cpu(x_re)
        _cuda.check_devices(x_re, x_im=x_im, sin_decay=sin_decay, cos_decay=cos_decay)
        ctx.set_materialize_grads(False)
        layout = BlockLayout(x_re)
        xr = layout.array(x_re, input_dtype(x_re))
        xi = layout.array(x_im, input_dtype(x_im))
        sin_d = layout.per_neuron(_rows_int(sin_decay))
        cos_d = layout.per_neuron(_rows_int(cos_decay))
        dth, dref, th0, th_step = (layout.per_neuron(p) for p in params)
        state_arrays = [layout.per_neuron(st) for st in states]  # the kernel writes the final states
        want_decay = bool(ctx.needs_input_grad[2] or ctx.needs_input_grad[3])
        want_grad = want_decay or bool(ctx.needs_input_grad[0] or ctx.needs_input_grad[1])
        re0, im0 = ((state_arrays[0].copy(), state_arrays[1].copy()) if want_decay
                    else (_EMPTY_ROW, _EMPTY_ROW))
        s = layout.records(message_dtype(x_re, graded))
        re_rec = layout.records(np.int32) if record or want_decay else _EMPTY
        im_rec = layout.records(np.int32) if record or want_decay or (want_grad and not iz) else _EMPTY
        margin = layout.records(np.int32) if want_grad else _EMPTY
        th_rec = layout.records(np.int32) if record and adaptive else _EMPTY
        r_rec = layout.records(np.int32) if record and adaptive else _EMPTY
        _res.resonator_forward_blocks(family, xr, xi, float(state_scale), sin_d, cos_d, dth, dref, th0,
                                      th_step, *state_arrays, bool(graded), s, re_rec, im_rec, margin, th_rec,
                                      r_rec, threads=kernel_threads())
        spikes = layout.tensor(s)
        for values, arr in zip(states, state_arrays):
            layout.write_back(values, arr)
        ctx.save_for_backward(sin_decay, cos_decay)
        ctx.layout = layout
        ctx.data = (family, re_rec, im_rec, margin, s, re0, im0, th0, sin_d, cos_d, float(state_scale),
                    surrogate, bool(graded), x_re.dtype)
        if not record:
            return spikes
        dtype = x_re.dtype
        inv = 1.0 / state_scale
        outputs = (spikes, layout.tensor(re_rec).to(dtype) * inv, layout.tensor(im_rec).to(dtype) * inv)
        if adaptive:
            theta = layout.tensor(th_rec).to(dtype) * inv
            ref = layout.tensor(r_rec).to(dtype) * inv
            ctx.mark_non_differentiable(theta, ref)
            outputs += (theta, ref)
        return outputs

    @staticmethod
    def backward(ctx, grad_s, grad_re=None, grad_im=None, _grad_theta=None, _grad_ref=None):
        if getattr(ctx, "on_cuda", False):
            return (*_cuda.resonator_backward(ctx, grad_s, grad_re, grad_im), None)
        sin_decay, cos_decay = ctx.saved_tensors
        (family, re_rec, im_rec, margin, s, re0, im0, th0, sin_d, cos_d, state_scale, surrogate,
         graded, dtype) = ctx.data
        layout = ctx.layout
        tau_rho, scale_rho = surrogate
        gx_re = layout.records(np.float32)
        gx_im = layout.records(np.float32)
        g_sin = np.zeros(sin_d.shape)
        g_cos = np.zeros(cos_d.shape)
        want = bool(ctx.needs_input_grad[2] or ctx.needs_input_grad[3])
        _res.resonator_backward_blocks(family, _grad_array(layout, grad_s), _grad_array(layout, grad_re),
                                       _grad_array(layout, grad_im), re_rec, im_rec, margin, s, re0, im0, th0,
                                       sin_d, cos_d, state_scale, float(tau_rho), float(scale_rho), graded,
                                       want, gx_re, gx_im, g_sin, g_cos, threads=kernel_threads())
        # per-row gradients back in the logical (N, *S) order (the kernel ran channels-last inputs as H, W, C)
        gs = _logical_rows(layout, g_sin).to(sin_decay.dtype) if ctx.needs_input_grad[2] else None
        gc = _logical_rows(layout, g_cos).to(cos_decay.dtype) if ctx.needs_input_grad[3] else None
        return layout.tensor(gx_re).to(dtype), layout.tensor(gx_im).to(dtype), gs, gc, None


class ResonatorNeuron(_BaseNeuron):
    """Resonate-and-fire neuron (shared by ``rf.Neuron`` and ``rf_iz.Neuron``).

    Parameters
    ----------
    threshold : float
        Threshold in real units (on the ``1/scale`` grid, mantissa ``vThMant``), applied
        to the real part (RF) or the imaginary part (RF-IZ).
    period : float or (float, float)
        Oscillation period in steps, ``>= 4`` (the rotation stays in the first
        quadrant). With ``shared_param=False`` a scalar gives a ``[0.99, 1.01]``
        range and a ``(min, max)`` pair is spread over the channels.
    decay : float or (float, float)
        Fraction of the state magnitude lost per step, in [0, 1].
    tau_grad, scale_grad, scale, dropout, shared_param, persistent_state,
    requires_grad, graded_spike, shape, num_channels
        See :class:`lava_dl.slayer.neuron.base.Neuron`.
    norm : callable, optional
        Normalisation factory; two instances act on the real and the imaginary
        inputs (lava-dl's ``real_norm``/``imag_norm``). Not deployable.
    log_init : bool, default True
        Per-channel frequencies log-spaced over ``[1/period_max, 1/period_min]``
        (else uniform random in that range).

    Notes
    -----
    Stored parameters (lava-dl's): ``sin_decay = 4096 (1 - decay) sin(2 pi / period)``
    and ``cos_decay`` likewise, floats rounded half-even when used; they are kept in
    the first quadrant with ``sqrt(sin^2 + cos^2) <= 4095``, ``sin >= 1``, ``cos >= 0``
    (at construction, and at every forward when ``requires_grad``). The forward pass
    is the Lava integer model with 24-bit saturation of both states.

    lava-dl's ``dynamics(x) -> (real, imag)`` and ``spike(real, imag)`` give the same
    numbers as :meth:`forward`; ``real_state``/``imag_state`` are the carried states and
    ``cx_sin_decay``/``cx_cos_decay`` the deployed rotation.
    """

    real_state = StateAttribute("re")
    imag_state = StateAttribute("im")
    cx_sin_decay = DeployedDecay("sin_decay")
    cx_cos_decay = DeployedDecay("cos_decay")

    def __init__(self, threshold, period, decay, tau_grad=1, scale_grad=1, scale=1 << 6, norm=None,
                 dropout=None, shared_param=True, persistent_state=False, requires_grad=False,
                 graded_spike=False, log_init=True, shape=None, num_channels=None):
        super().__init__(threshold=threshold, tau_grad=tau_grad, scale_grad=scale_grad, scale=scale,
                         norm=None, dropout=dropout, shared_param=shared_param,
                         persistent_state=persistent_state, requires_grad=requires_grad,
                         graded_spike=graded_spike, shape=shape, num_channels=num_channels)
        self.log_init = bool(log_init)
        self.real_norm = self._make_norm(norm)
        self.imag_norm = self._make_norm(norm)
        # per channel without a known channel count: one value until the first input (lava-dl's rule)
        sin_decay, cos_decay = self._rotation(period, decay, self.num_channels or 1)
        self.sin_decay = nn.Parameter(sin_decay, requires_grad=self.requires_grad)
        self.cos_decay = nn.Parameter(cos_decay, requires_grad=self.requires_grad)
        self.clamp()
        if not self.shared_param and self.num_channels is None:
            self._deferred["sin_decay"] = ("rotation", period, decay)

    # ---- construction -------------------------------------------------------------
    def _make_norm(self, norm):
        if norm is None:
            return None
        module = norm(num_features=self.num_channels) if self.num_channels else norm()
        if hasattr(module, "pre_hook_fx"):
            module.pre_hook_fx = self.quantize_8bit
        return module

    def _rotation(self, period, decay, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Stored ``4096 (1 - decay) (sin, cos)(2 pi / period)`` (one value, or one per channel)."""
        def check_period(p):
            if not (isinstance(p, (int, float, np.number)) and math.isfinite(p)) or p < 4:
                raise ValueError("period must be a number >= 4 (the rotation is kept in the first "
                                 f"quadrant), got {p!r}")

        def check_decay(d):
            if not (isinstance(d, (int, float, np.number)) and 0 <= d <= 1):
                raise ValueError(f"decay must lie in [0, 1] (a fraction lost per step), got {d!r}")

        if self.shared_param:
            if isinstance(period, (tuple, list)) or isinstance(decay, (tuple, list)):
                raise ValueError("period/decay: a (min, max) range needs shared_param=False")
            check_period(period)
            check_decay(decay)
            freq = torch.tensor([1.0 / period], dtype=torch.float64)
            dec = torch.tensor([float(decay)], dtype=torch.float64)
        else:
            p_lo, p_hi = self._range(period, "period")
            d_lo, d_hi = self._range(decay, "decay")
            check_period(p_lo)
            check_period(p_hi)
            check_decay(d_lo)
            d_hi = min(d_hi, 1.0)
            check_decay(d_hi)
            if self.log_init:
                freq = torch.logspace(-math.log10(p_hi), -math.log10(p_lo), steps=channels,
                                      dtype=torch.float64)
            else:
                freq = 1 / p_hi + (1 / p_lo - 1 / p_hi) * torch.rand(channels, dtype=torch.float64)
            dec = d_lo + (d_hi - d_lo) * torch.rand(channels, dtype=torch.float64)
        angle = 2 * math.pi * freq
        sin_decay = (self.p_scale * (1 - dec) * torch.sin(angle)).float()
        cos_decay = (self.p_scale * (1 - dec) * torch.cos(angle)).float()
        return sin_decay, cos_decay

    def _deferred_values(self, channels: int) -> dict[str, torch.Tensor]:
        values = super()._deferred_values(channels)
        kind, *args = self._deferred.get("sin_decay", (None,))
        if kind == "rotation":
            values["sin_decay"], values["cos_decay"] = self._rotation(*args, channels)
        return values

    @staticmethod
    def _range(value, name: str, jitter: float = 0.01) -> tuple[float, float]:
        if isinstance(value, (tuple, list)):
            if len(value) != 2 or value[0] > value[1]:
                raise ValueError(f"{name} range must be (min, max) with min <= max, got {value!r}")
            return float(value[0]), float(value[1])
        if not isinstance(value, (int, float, np.number)):
            raise ValueError(f"{name} must be a number or a (min, max) pair, got {value!r}")
        return float(value) * (1 - jitter), float(value) * (1 + jitter)

    def clamp(self) -> None:
        """lava-dl's clamp: gain ``sqrt(sin^2 + cos^2) <= 4095``, then ``sin >= 1``, ``cos >= 0``."""
        with torch.no_grad():
            gain = torch.sqrt(self.sin_decay**2 + self.cos_decay**2)
            factor = torch.where(gain > _MAX_GAIN, _MAX_GAIN / gain.clamp(min=_MAX_GAIN),
                                 torch.ones_like(gain))
            self.sin_decay.mul_(factor).clamp_(min=1)
            self.cos_decay.mul_(factor).clamp_(min=0)

    def _decay_parameters(self) -> list[nn.Parameter]:
        return [self.sin_decay, self.cos_decay]

    # ---- derived properties (lava-dl's) --------------------------------------------
    def _sin_cos(self) -> tuple[np.ndarray, np.ndarray]:
        return (torch.round(self.sin_decay.detach()).double().cpu().numpy(),
                torch.round(self.cos_decay.detach()).double().cpu().numpy())

    @property
    def decay(self) -> np.ndarray:
        """``1 - sqrt(sin^2 + cos^2) / 4096`` of the deployed integers."""
        sin_d, cos_d = self._sin_cos()
        return 1 - np.sqrt(sin_d**2 + cos_d**2) / self.p_scale

    @property
    def frequency(self) -> np.ndarray:
        """Oscillation frequency ``atan2(sin, cos) / 2 pi`` of the deployed integers."""
        sin_d, cos_d = self._sin_cos()
        return np.arctan2(sin_d, cos_d) / 2 / np.pi

    @property
    def period(self) -> np.ndarray:
        return 1 / self.frequency

    @property
    def lam(self) -> np.ndarray:
        return -np.log(1 - self.decay)

    def spec_values(self) -> dict:
        return {"sin_decay": self.rounded(self.sin_decay), "cos_decay": self.rounded(self.cos_decay),
                "vth": self.v_th_mant}

    # ---- forward -----------------------------------------------------------------------
    def _split(self, x: ComplexInput) -> tuple[torch.Tensor, torch.Tensor]:
        name = type(self).__name__
        if isinstance(x, torch.Tensor) and torch.is_complex(x):
            return x.real, x.imag
        if not (isinstance(x, (tuple, list)) and len(x) == 2 and all(isinstance(v, torch.Tensor) for v in x)):
            raise TypeError(f"{self.spec.name} {name} expects a complex input: a (real, imag) pair of "
                            "tensors (what a complex synapse returns) or a complex tensor, got "
                            f"{type(x).__name__}")
        real, imag = x
        if real.shape != imag.shape:
            raise ValueError(f"{self.spec.name} {name}: real input of shape {tuple(real.shape)} and "
                             f"imaginary input of shape {tuple(imag.shape)} differ")
        return real, imag

    def _int_rows(self, param: torch.Tensor, x: torch.Tensor) -> np.ndarray:
        rows = torch.round(self.per_row(param.detach(), x)).to(torch.int64)
        return np.ascontiguousarray(rows.cpu().numpy())

    def _adaptive_params(self, x: torch.Tensor, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        zeros = np.zeros(rows, np.int64)
        return zeros, zeros, zeros

    def _run(self, x: ComplexInput, record: bool = True) -> tuple[torch.Tensor, ...]:
        """Spikes, then with ``record`` the recorded states (see :class:`ResonatorDynamics`)."""
        real, imag = self._split(x)
        self._check_input(real, imag)
        if self.requires_grad:
            self.clamp()
        if self.real_norm is not None:
            real = self.real_norm(real)
        if self.imag_norm is not None:
            imag = self.imag_norm(imag)
        rows = real[..., 0].numel()
        names = ("re", "im", "th", "r")
        states = tuple(np.array(self.state(n, real).cpu().numpy(), dtype=np.int64) for n in names)
        vth = self.v_th_mant
        th0 = np.full(rows, _NO_SPIKE if vth < 0 else np.int64(vth) << STATE_EXP, np.int64)
        dth, dref, th_step = self._adaptive_params(real, rows)
        _, tau, scale_rho = self.surrogate
        config = (self.spec.extra["family_code"], states, self.s_scale, (dth, dref, th0, th_step),
                  (tau, scale_rho), self.graded_spike, record)
        outputs = ResonatorDynamics.apply(real, imag, self.per_row(self.sin_decay, real),
                                          self.per_row(self.cos_decay, real), config)
        kept = set(self.spec.state_names)  # RF/RF-IZ have no th/r states (kernel scratch only)
        for name, final in zip(names, states):
            if name in kept:
                self.keep_state(name, torch.from_numpy(final))
        return outputs if record else (outputs,)

    def run(self, x: ComplexInput) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the neuron; return ``(real, imag, spikes)`` in real units.

        ``real``/``imag`` are the recorded states (pre-reset for RF-IZ).
        """
        spikes, real, imag = self._run(x)
        return real, imag, spikes

    def _lava_dl_run(self, x: ComplexInput) -> tuple[torch.Tensor, ...]:
        """:meth:`run` without the spikes; keeps the imaginary state before the call for :meth:`spike`."""
        real = self._split(x)[0]
        before = self.state("im", real).to(torch.float64) / self.s_scale
        self._imag_before = before.to(device=real.device, dtype=real.dtype).reshape(real.shape[:-1])
        return self.run(x)[:-1]

    def dynamics(self, input: ComplexInput) -> tuple[torch.Tensor, torch.Tensor]:
        """lava-dl's dynamics: the recorded ``(real, imag)`` states in real units (see :meth:`run`).

        The states are carried as :meth:`forward` carries them; :meth:`spike` gives the spikes.
        """
        return self._lava_dl_run(input)

    def _spike(self, real: torch.Tensor, imag: torch.Tensor, threshold) -> torch.Tensor:
        """The family's spike test of the recorded states against ``threshold`` (+ refractory)."""
        if self.threshold < 0:
            threshold = float("inf")
        if self.spec.extra["family_code"] in (_res.RF_IZ_CODE, _res.ADRF_IZ_CODE):
            spikes = Spike.apply(imag, threshold, *self._spike_args(), 0, 1)
        else:
            last = getattr(self, "_imag_before", None)
            if last is None or last.shape != imag.shape[:-1]:
                last = 0.0
            spikes = _complex_spike.Spike.apply(real, imag, threshold, *self._spike_args(), last, 1)
        return self._apply_dropout(spikes)

    def spike(self, real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
        """lava-dl's spike of the states of :meth:`dynamics` (after dropout): the same spikes as
        :meth:`forward`.

        RF: ``real >= threshold`` at an upward zero crossing of ``imag``
        (:mod:`lava_dl.slayer.spike.complex`); RF-IZ: ``imag >= threshold``
        (:class:`lava_dl.slayer.spike.Spike`).
        """
        return self._spike(real, imag, self.threshold)

    @eager
    def forward(self, input: ComplexInput) -> torch.Tensor:
        """Spikes (``N, C, (H, W,) T``) for the complex synaptic input ``(real, imag)``."""
        spikes = self._run(input, record=False)[0]
        return self._apply_dropout(spikes)


class AdaptiveResonatorNeuron(ResonatorNeuron):
    """Adaptive resonate-and-fire neuron (shared by ``adrf.Neuron`` and ``adrf_iz.Neuron``).

    Parameters
    ----------
    threshold : float
        Base threshold θ0 (real units, on the ``1/scale`` grid).
    threshold_step : float
        Threshold increase per spike (on the ``1/scale`` grid, mantissa ``vThStep``).
    period, decay
        As :class:`ResonatorNeuron`.
    threshold_decay, refractory_decay : float or (float, float)
        Fractions of the threshold adaptation / refractory state lost per step, in
        [0, 1] (per-channel ranges with ``shared_param=False``; a scalar is constant).
    tau_grad, scale_grad, scale, norm, dropout, shared_param, persistent_state,
    requires_grad, graded_spike, log_init, shape, num_channels
        As :class:`ResonatorNeuron`.

    Notes
    -----
    A spike raises the threshold by ``threshold_step`` and adds ``2 θ`` to the
    refractory state; the spike test uses ``θ + r``. The threshold unit has no
    gradient (as in lava-dl); only ``sin_decay``/``cos_decay`` are learnable.
    """

    threshold_state = StateAttribute("th", relative=True)
    refractory_state = StateAttribute("r")
    cx_threshold_decay = DeployedDecay("threshold_decay")
    cx_refractory_decay = DeployedDecay("refractory_decay")

    def __init__(self, threshold, threshold_step, period, decay, threshold_decay, refractory_decay,
                 tau_grad=1, scale_grad=1, scale=1 << 6, norm=None, dropout=None, shared_param=True,
                 persistent_state=False, requires_grad=False, graded_spike=False, log_init=True, shape=None,
                 num_channels=None):
        super().__init__(threshold=threshold, period=period, decay=decay, tau_grad=tau_grad,
                         scale_grad=scale_grad, scale=scale, norm=norm, dropout=dropout,
                         shared_param=shared_param, persistent_state=persistent_state,
                         requires_grad=requires_grad, graded_spike=graded_spike, log_init=log_init,
                         shape=shape, num_channels=num_channels)
        step = int(threshold_step * self.w_scale)
        limit = self.spec.param("vth_step").hi
        if not 0 <= step <= limit:
            raise ValueError(f"threshold_step {threshold_step} gives vThStep = {step}, outside [0, {limit}]")
        self.threshold_step = step / self.w_scale
        self.threshold_decay = self._decay_parameter(threshold_decay, "threshold_decay", jitter=0)
        self.refractory_decay = self._decay_parameter(refractory_decay, "refractory_decay", jitter=0)
        self.threshold_decay.requires_grad_(False)
        self.refractory_decay.requires_grad_(False)

    @property
    def v_th_step(self) -> int:
        """Threshold step mantissa (``vThStep``)."""
        return int(self.threshold_step * self.w_scale)

    def spec_values(self) -> dict:
        values = super().spec_values()
        values.update({"dth": self.rounded(self.threshold_decay), "dref": self.rounded(self.refractory_decay),
                       "vth_step": self.v_th_step})
        return values

    def _adaptive_params(self, x: torch.Tensor, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (self._int_rows(self.threshold_decay, x), self._int_rows(self.refractory_decay, x),
                np.full(rows, np.int64(self.v_th_step) << STATE_EXP, np.int64))

    def run(self, x: ComplexInput) -> tuple[torch.Tensor, ...]:
        """Run the neuron; return ``(real, imag, threshold, refractory, spikes)`` in real units.

        ``threshold`` is ``θ0 + adaptation`` and ``refractory`` the refractory state used
        by the spike test of each step (before that step's spike update), as lava-dl records them.
        """
        spikes, real, imag, threshold, refractory = self._run(x)
        return real, imag, threshold, refractory, spikes

    def dynamics(self, input: ComplexInput) -> tuple[torch.Tensor, ...]:
        """lava-dl's dynamics: ``(real, imag, threshold, refractory)`` in real units (see :meth:`run`)."""
        return self._lava_dl_run(input)

    def spike(self, real: torch.Tensor, imag: torch.Tensor, threshold: torch.Tensor,
              refractory: torch.Tensor) -> torch.Tensor:
        """lava-dl's spike of the states of :meth:`dynamics` (after dropout), against
        ``threshold + refractory``: the same spikes as :meth:`forward`."""
        return self._spike(real, imag, threshold + refractory)


def rotation_arguments(spec: NeuronSpec, device_params: ty.Mapping[str, ty.Any], scale: int = 1 << 6,
                       p_scale: int = 1 << 12) -> dict:
    """Resonator neuron arguments from hdf5 ``neuron`` fields (the families' ``neuron_params``).

    :func:`lava_dl.slayer.neuron.base.device_arguments`, with the integer rotation
    ``(sinDecay, cosDecay)`` turned into the constructor's ``period = 2 pi / atan2(sin, cos)``
    (``inf`` for ``sin = 0``) and ``decay = 1 - sqrt(sin^2 + cos^2) / p_scale``: floats, or
    float64 arrays for per-channel rotations (with ``shared_param=False``).

    Parameters
    ----------
    spec : NeuronSpec
        The resonator family.
    device_params : mapping
        hdf5 neuron fields.
    scale, p_scale : int
        Weight and decay scales.

    Returns
    -------
    dict
        Constructor arguments.
    """
    args = device_arguments(spec, device_params, scale, p_scale)
    sin_d = np.asarray(args.pop("sin_decay"), dtype=np.float64)
    cos_d = np.asarray(args.pop("cos_decay"), dtype=np.float64)
    if sin_d.shape != cos_d.shape and sin_d.size > 1 and cos_d.size > 1:
        raise ValueError(f"fields 'neuron/sinDecay' and 'neuron/cosDecay' hold {sin_d.size} and {cos_d.size} "
                         "values")
    sin_d, cos_d = np.broadcast_arrays(sin_d, cos_d)
    with np.errstate(divide="ignore"):
        period = 2 * math.pi / np.arctan2(sin_d, cos_d)
    decay = 1 - np.sqrt(sin_d**2 + cos_d**2) / p_scale
    if sin_d.size > 1:
        args["period"], args["decay"] = period.reshape(-1), decay.reshape(-1)
    else:
        args["period"], args["decay"] = float(period.reshape(-1)[0]), float(decay.reshape(-1)[0])
    return args


#: What :func:`rotation_arguments` says about the rotation fields, for the families' docstrings.
ROTATION_NOTE = ("``sinDecay``/``cosDecay`` become ``period = 2 pi / atan2(sin, cos)`` and "
                 "``decay = 1 - |(sin, cos)| / p_scale``, exact only up to rounding: set ``sin_decay``/"
                 "``cos_decay`` to the integers for an exact copy. ")


def rotation_neuron_params(neuron_cls: type):
    """lava-dl's ``neuron_params`` of a resonator family (:func:`rotation_arguments`)."""
    from lava_dl.slayer.neuron.base import neuron_params_function

    return neuron_params_function(neuron_cls, rotation_arguments, ROTATION_NOTE)
