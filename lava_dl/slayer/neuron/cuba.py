"""CUBA-LIF training layer: forward = the deployed integer kernel of :mod:`lava_dl.core.cuba`."""

from __future__ import annotations

import numpy as np
import torch

from lava_dl.core import cuba as _cuba
from lava_dl.core.fixed_point import STATE_EXP
from lava_dl.slayer import checks as _checks
from lava_dl.slayer._eager import eager
from lava_dl.slayer.neuron.base import DeployedDecay, StateAttribute, neuron_params_function
from lava_dl.slayer.neuron.base import Neuron as _BaseNeuron
from lava_dl.slayer.neuron.dynamics import CubaDynamics, LeakyIntegrator, SpikingIntegrator, _rows
from lava_dl.slayer.spike import Spike

#: Threshold used when spiking is disabled: never reached by a 24-bit voltage.
_NO_SPIKE = np.int64(1) << 40
#: The zero that :meth:`Neuron.delayed` expands into step 0 of its output (only ever read).
_ZERO = torch.zeros((), dtype=torch.float32)


class Neuron(_BaseNeuron):
    """Current-based leaky integrate-and-fire neuron (lava-dl's ``slayer.neuron.cuba.Neuron``).

    Parameters
    ----------
    threshold : float
        Spike threshold (real units, on the ``1/scale`` grid). The integer test
        is Loihi's strict ``v > vThMant << 6`` for any threshold size.
    current_decay, voltage_decay : float or (float, float)
        Fraction of current / voltage lost per step, in [0, 1]; a ``(min, max)``
        range draws per-channel values when ``shared_param=False``.
    tau_grad, scale_grad, scale, norm, dropout, shared_param, persistent_state,
    requires_grad, graded_spike, shape, num_channels, decay_gradient
        See :class:`lava_dl.slayer.neuron.base.Neuron`.

    Notes
    -----
    The forward pass computes, per step, ``u = wrap24(rs0(u (4096 - iDecay), 12)
    + (a_in << 6))`` with Loihi's integer input ``a_in = floor(64 x)`` and
    ``v = sat24(rs0(v (4096 - vDecay), 12) + u)`` with reset to 0 after a spike,
    exactly as the Lava ``CubaLIF`` fixed-point model does.
    A ``norm`` acts on the current; deployed, its mean becomes the bias.

    lava-dl's ``dynamics(x) -> (current, voltage)`` and ``spike(voltage)`` give the same
    numbers as :meth:`forward`; ``current_state``/``voltage_state`` are the states carried
    between calls and ``cx_current_decay``/``cx_voltage_decay`` the deployed decays.
    """

    spec = _cuba.SPEC
    current_state = StateAttribute("u")
    voltage_state = StateAttribute("v")
    cx_current_decay = DeployedDecay("current_decay")
    cx_voltage_decay = DeployedDecay("voltage_decay")
    #: Run current and voltage in one compiled pass when no norm sits between them
    #: (False forces the two-stage path, which gives the same numbers).
    fused = True

    def __init__(self, threshold, current_decay, voltage_decay, tau_grad=1, scale_grad=1, scale=1 << 6,
                 norm=None, dropout=None, shared_param=True, persistent_state=False, requires_grad=False,
                 graded_spike=False, shape=None, num_channels=None, decay_gradient="exact"):
        super().__init__(threshold=threshold, tau_grad=tau_grad, scale_grad=scale_grad, scale=scale,
                         norm=norm, dropout=dropout, shared_param=shared_param,
                         persistent_state=persistent_state, requires_grad=requires_grad,
                         graded_spike=graded_spike, shape=shape, num_channels=num_channels,
                         decay_gradient=decay_gradient)
        self.current_decay = self._decay_parameter(current_decay, "current_decay")
        self.voltage_decay = self._decay_parameter(voltage_decay, "voltage_decay")

    def _decay_parameters(self):
        return [self.current_decay, self.voltage_decay]

    def spec_values(self) -> dict:
        return {"du": self.rounded(self.current_decay), "dv": self.rounded(self.voltage_decay),
                "vth": self.v_th_mant}

    def dynamics(self, input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """lava-dl's dynamics: ``(current, voltage)`` in real units (see :meth:`run`); the
        states are carried as :meth:`forward` carries them. :meth:`spike` gives the spikes."""
        current, voltage, _ = self.run(input)
        return current, voltage

    def spike(self, voltage: torch.Tensor) -> torch.Tensor:
        """lava-dl's spike: spikes (after dropout) where the recorded voltage crosses the threshold.

        Loihi's strict test ``v > vth << 6`` on the voltage of :meth:`dynamics`, through
        :class:`lava_dl.slayer.spike.Spike` (its surrogate gradient); the same spikes as
        :meth:`forward`.
        """
        theta = self.threshold + 0.5 / self.s_scale if self.threshold >= 0 else float("inf")
        return self._apply_dropout(Spike.apply(voltage, theta, *self._spike_args(), 0, 1))

    def run(self, x: torch.Tensor, record: bool = True):
        """Run the neuron; return ``(current, voltage, spikes)`` in real units.

        ``voltage`` is the recorded pre-reset voltage; ``current`` is after the norm.
        With ``record=False`` the current and voltage may be returned as ``None``
        (the fast path does not materialise them).
        """
        if self.norm is None and self.fused:
            return self._fused(x, record)
        self._prepare(x)
        rows = x[..., 0].numel()
        current = LeakyIntegrator.apply(x, self.per_row(self.current_decay, x), self.state("u", x),
                                        self.s_scale, self.lava_dl_decay_gradient)
        self.keep_state("u", torch.round(current[..., -1].reshape(-1) * self.s_scale))
        if self.norm is not None:
            current = self.norm(current)
        spikes, voltage = SpikingIntegrator.apply(
            current, self.per_row(self.voltage_decay, x), self.state("v", x), self.s_scale,
            np.zeros(rows, np.int64), self._vth_scaled(rows), self.surrogate, self.graded_spike,
            self.lava_dl_decay_gradient)
        self.keep_state("v", torch.round(voltage[..., -1].reshape(-1) * self.s_scale)
                        * (spikes[..., -1].reshape(-1) == 0))
        return current, voltage, spikes

    def _prepare(self, x: torch.Tensor) -> None:
        self._check_input(x)
        if self.requires_grad:
            self.clamp()

    def _vth_scaled(self, rows: int) -> np.ndarray:
        vth = self.v_th_mant
        values = np.empty(rows, np.int64)
        values.fill(_NO_SPIKE if vth < 0 else np.int64(vth) << STATE_EXP)
        return values

    def _fused(self, x: torch.Tensor, record: bool, first: torch.Tensor | None = None,
               last: np.ndarray | None = None):
        """:meth:`run` in one compiled pass; ``first``/``last`` as in :class:`CubaDynamics`."""
        self._prepare(x)
        rows = _rows(x)
        keep = record or self.persistent_state
        if last is None:
            last = np.empty(rows, np.float32)
        out = CubaDynamics.apply(
            x, self.per_row(self.current_decay, x), self.per_row(self.voltage_decay, x), self.state("u", x),
            self.state("v", x), self.s_scale, self._vth_scaled(rows), self.surrogate, self.graded_spike, keep,
            first, last, self.logical_output, self.lava_dl_decay_gradient)
        if not keep:
            return None, None, self._mark(out)
        spikes, current, voltage = out
        self._mark(spikes)
        self.keep_state("u", torch.round(current[..., -1].reshape(-1) * self.s_scale))
        self.keep_state("v", torch.round(voltage[..., -1].reshape(-1) * self.s_scale)
                        * torch.from_numpy(last == 0).to(voltage.device))
        return current, voltage, spikes

    def _mark(self, spikes: torch.Tensor) -> torch.Tensor:
        """Mark binary spikes as holding only 0s and 1s (their next check needs no scan)."""
        return spikes if self.graded_spike else _checks.mark_bound(spikes, 1.0, binary=True)

    @eager
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Spikes (``N, C, (H, W,) T``) for the real-valued synaptic input ``input``."""
        _, _, spikes = self.run(input, record=False)
        return self._apply_dropout(spikes)

    def delayed(self, x: torch.Tensor, first: torch.Tensor | None = None):
        """:meth:`forward` delayed by one step, with the kernel writing each message one step late."""
        if self.norm is not None or not self.fused or self.drop is not None:
            return super().delayed(x, first)
        if first is None:
            first = _ZERO.expand(*x.shape[:-1], 1)
        last = np.empty(_rows(x), np.float32)
        _, _, spikes = self._fused(x, record=False, first=first, last=last)
        return spikes, torch.from_numpy(last).reshape(*x.shape[:-1], 1)


neuron_params = neuron_params_function(Neuron)
