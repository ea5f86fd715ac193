"""ALIF training layer: forward = the deployed integer kernel of :mod:`lava_dl.core.alif`."""

from __future__ import annotations

import numpy as np
import torch

from lava_dl.core import alif as _alif
from lava_dl.core.fixed_point import STATE_EXP
from lava_dl.slayer._eager import eager
from lava_dl.slayer.neuron.base import DeployedDecay, StateAttribute, neuron_params_function
from lava_dl.slayer.neuron.base import Neuron as _BaseNeuron
from lava_dl.slayer.neuron.cuba import _NO_SPIKE
from lava_dl.slayer.neuron.dynamics import AlifDynamics, threshold_records
from lava_dl.slayer.spike import Spike


class Neuron(_BaseNeuron):
    """Adaptive leaky integrate-and-fire neuron (lava-dl's ``slayer.neuron.alif.Neuron``).

    Parameters
    ----------
    threshold : float
        Base threshold θ0 (real units, on the ``1/scale`` grid).
    threshold_step : float
        Threshold increase per spike (on the ``1/scale`` grid).
    current_decay, voltage_decay, threshold_decay, refractory_decay : float or (float, float)
        Fractions lost per step, in [0, 1]; ``(min, max)`` ranges draw per-channel
        values when ``shared_param=False``.
    tau_grad, scale_grad, scale, norm, dropout, shared_param, persistent_state,
    requires_grad, graded_spike, shape, num_channels, decay_gradient
        See :class:`lava_dl.slayer.neuron.base.Neuron`. A ``norm`` acts on the input
        and deploys as the input bias.

    Notes
    -----
    A spike is emitted when ``v >= θ + r`` (non-strict); ``v`` is never reset, the
    refractory state ``r`` jumps by ``2θ`` and the adaptation by ``threshold_step``.
    Only the current and voltage decays are learnable (the threshold unit has no
    gradient, as in lava-dl).

    lava-dl's ``dynamics(x) -> (current, voltage, threshold, refractory)`` and
    ``spike(voltage, threshold, refractory)`` give the same numbers as :meth:`forward`.
    """

    spec = _alif.SPEC
    _STATES = ("u", "v", "th", "r")
    current_state = StateAttribute("u")
    voltage_state = StateAttribute("v")
    threshold_state = StateAttribute("th", relative=True)
    refractory_state = StateAttribute("r")
    cx_current_decay = DeployedDecay("current_decay")
    cx_voltage_decay = DeployedDecay("voltage_decay")
    cx_threshold_decay = DeployedDecay("threshold_decay")
    cx_refractory_decay = DeployedDecay("refractory_decay")

    def __init__(self, threshold, threshold_step, current_decay, voltage_decay, threshold_decay,
                 refractory_decay, tau_grad=1, scale_grad=1, scale=1 << 6, norm=None, dropout=None,
                 shared_param=True, persistent_state=False, requires_grad=False, graded_spike=False,
                 shape=None, num_channels=None, decay_gradient="exact"):
        super().__init__(threshold=threshold, tau_grad=tau_grad, scale_grad=scale_grad, scale=scale,
                         norm=norm, dropout=dropout, shared_param=shared_param,
                         persistent_state=persistent_state, requires_grad=requires_grad,
                         graded_spike=graded_spike, shape=shape, num_channels=num_channels,
                         decay_gradient=decay_gradient)
        self.threshold_step = threshold_step
        self.current_decay = self._decay_parameter(current_decay, "current_decay")
        self.voltage_decay = self._decay_parameter(voltage_decay, "voltage_decay")
        self.threshold_decay = self._decay_parameter(threshold_decay, "threshold_decay", jitter=0)
        self.refractory_decay = self._decay_parameter(refractory_decay, "refractory_decay", jitter=0)

    @property
    def threshold_step(self) -> float:
        """Threshold increase per spike in real units: :attr:`v_th_step` ``/ scale``."""
        return self._v_th_step / self.w_scale

    @threshold_step.setter
    def threshold_step(self, value: float) -> None:
        step = int(value * self.w_scale)
        limit = self.spec.param("vth_step").hi
        if not 0 <= step <= limit:
            raise ValueError(f"threshold_step {value} gives vThStep = {step}, outside [0, {limit}]")
        self._v_th_step = step

    @property
    def v_th_step(self) -> int:
        """Threshold-step mantissa (hdf5 ``vThStep``): ``int(threshold_step * scale)``.

        The integer is kept when :attr:`threshold_step` is set, so it is exactly the value
        :meth:`device_params` exports and the forward pass adds to the threshold per spike
        (``threshold_step`` itself is derived from it and may not round-trip in floating point
        for a ``scale`` that is not a power of two).

        Returns
        -------
        int
            The mantissa, in ``[0, 2**17 - 1]``.
        """
        return self._v_th_step

    def __setstate__(self, state: dict) -> None:
        # a neuron pickled before threshold_step became a property stored the real value
        if "_v_th_step" not in state and "threshold_step" in state:
            state["_v_th_step"] = round(state.pop("threshold_step") * state["w_scale"])
        super().__setstate__(state)

    def _decay_parameters(self):
        return [self.current_decay, self.voltage_decay, self.threshold_decay, self.refractory_decay]

    def spec_values(self) -> dict:
        return {"du": self.rounded(self.current_decay), "dv": self.rounded(self.voltage_decay),
                "dth": self.rounded(self.threshold_decay), "dref": self.rounded(self.refractory_decay),
                "vth": self.v_th_mant, "vth_step": self.v_th_step}

    def _int_rows(self, param: torch.Tensor, x: torch.Tensor) -> np.ndarray:
        rows = torch.round(self.per_row(param.detach(), x)).to(torch.int64)
        return np.ascontiguousarray(rows.cpu().numpy())

    def _params(self, x: torch.Tensor) -> tuple[np.ndarray, ...]:
        """Per-row ``(dth, dref, th0, th_step)`` integers of the threshold unit."""
        rows = x[..., 0].numel()
        return (self._int_rows(self.threshold_decay, x), self._int_rows(self.refractory_decay, x),
                np.full(rows, _NO_SPIKE if self.v_th_mant < 0 else np.int64(self.v_th_mant) << STATE_EXP,
                        np.int64),
                np.full(rows, np.int64(self.v_th_step) << STATE_EXP, np.int64))

    def dynamics(self, input: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """lava-dl's dynamics: ``(current, voltage, threshold, refractory)`` in real units.

        ``threshold`` (``θ0`` plus adaptation) and ``refractory`` are the values the spike test
        of each step uses, before that step's spike update (lava-dl's records; no gradient).
        The states are carried as :meth:`forward` carries them; :meth:`spike` gives the spikes.
        """
        adapt, ref = (self.state(n, input).cpu().numpy().copy() for n in ("th", "r"))
        current, voltage, _ = self.run(input)
        v = torch.round(voltage.detach().cpu().to(torch.float64) * self.s_scale).to(torch.int64)
        records = threshold_records(v.reshape(-1, input.shape[-1]).numpy(), self._params(input), adapt, ref)
        threshold, refractory = (torch.from_numpy(r).to(torch.float64).div(self.s_scale)
                                 .to(device=voltage.device, dtype=voltage.dtype).reshape(voltage.shape)
                                 for r in records)
        return current, voltage, threshold, refractory

    def spike(self, voltage: torch.Tensor, threshold: torch.Tensor, refractory: torch.Tensor) -> torch.Tensor:
        """lava-dl's spike: ``voltage >= threshold + refractory`` (after dropout), through
        :class:`lava_dl.slayer.spike.Spike`; the same spikes as :meth:`forward`."""
        if self.threshold < 0:
            threshold = torch.full_like(threshold, float("inf"))
        return self._apply_dropout(Spike.apply(voltage, threshold + refractory, *self._spike_args(), 0, 1))

    def run(self, x: torch.Tensor, record: bool = True):
        """Run the neuron; return ``(current, voltage, spikes)`` in real units.

        Parameters
        ----------
        x : torch.Tensor
            Real synaptic input ``N, C, (H, W,) T`` (the norm, if any, acts on it).
        record : bool
            Return the current and voltage; with ``False`` they are ``None`` (the
            fused kernel does not materialise them).

        Returns
        -------
        current, voltage, spikes : torch.Tensor or None
            Shaped like ``x``.
        """
        self._check_input(x)
        if self.requires_grad:
            self.clamp()
        if self.norm is not None:
            x = self.norm(x)
        init = np.stack([self.state(n, x).cpu().numpy() for n in self._STATES]).astype(np.int64)
        final = np.empty_like(init)
        out = AlifDynamics.apply(
            x, self.per_row(self.current_decay, x), self.per_row(self.voltage_decay, x), init, final,
            self.s_scale, self._params(x), self.surrogate, self.graded_spike, record,
            self.lava_dl_decay_gradient)
        for name, value in zip(self._STATES, final):
            self.keep_state(name, torch.from_numpy(value))
        if not record:
            return None, None, out
        spikes, current, voltage = out
        return current, voltage, spikes

    @eager
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Spikes (``N, C, (H, W,) T``) for the real-valued synaptic input ``input``."""
        _, _, spikes = self.run(input, record=False)
        return self._apply_dropout(spikes)


neuron_params = neuron_params_function(
    Neuron, note="``threshold_step`` comes from ``vThStep`` (lava-dl read ``vThMant``). ")
