"""ALIF reference (``reference-neurons.md`` §2.2)."""

from __future__ import annotations

from tests.oracles.base import OracleNeuron
from tests.oracles.fixed import decay, sat24, shift, wrap24


class Alif(OracleNeuron):
    """One adaptive LIF neuron.

    Per step (``θ0 = vth << 6``, ``Δθ = vth_step << 6``; initially ``θ = θ0``, ``r = 0``)::

        u    = wrap24(RS0(u (4096 - du), 12) + (a << 6) + bias)   (bias: input side)
        v    = sat24(RS0(v (4096 - dv), 12) + u)                  (v is never reset)
        r_t  = RS0(r (4096 - dref), 12)
        θ_t  = RS0((θ - θ0) (4096 - dth), 12) + θ0
        s    = v >= θ_t + r_t                                     (non-strict)
        after a spike: θ = θ_t + Δθ,  r = r_t + 2 θ_t

    The adaptation ``θ - θ0`` and ``r`` are 24-bit registers: they saturate at
    ``2^23 - 1`` (the reference, slayer's int64, has no bound; lava_dl declares
    these registers saturating). ``th`` reports ``θ - θ0``, as the Lava Var does.

    Parameters
    ----------
    du, dv, dth, dref : int
        Current, voltage, threshold-adaptation and refractory decays in ``[0, 4096]``.
    vth, vth_step : int
        Base threshold and threshold step mantissas.
    bias_mant, bias_exp : int
        Bias added to the current every step.
    graded : bool
        A spike carries the voltage instead of 1.
    """

    carried = ("u", "v", "th", "r")
    recorded = ("u", "v", "theta", "ref")

    def __init__(self, du: int, dv: int, dth: int, dref: int, vth: int, vth_step: int, bias_mant: int = 0,
                 bias_exp: int = 0, graded: bool = False) -> None:
        self.du, self.dv, self.dth, self.dref = int(du), int(dv), int(dth), int(dref)
        self.theta0 = int(vth) << 6
        self.step_size = int(vth_step) << 6
        self.bias = shift(int(bias_mant), int(bias_exp))
        self.graded = bool(graded)
        self.u = 0
        self.v = 0
        self.theta = self.theta0
        self.r = 0

    @property
    def th(self) -> int:
        return self.theta - self.theta0

    def step(self, a_in: int) -> dict[str, int]:
        u = wrap24(decay(self.u, self.du) + (a_in << 6) + self.bias)
        v = sat24(decay(self.v, self.dv) + u)
        ref_t = decay(self.r, self.dref)
        theta_t = decay(self.theta - self.theta0, self.dth) + self.theta0
        spike = v >= theta_t + ref_t
        self.u, self.v = u, v
        if spike:
            self.theta = self.theta0 + sat24(theta_t - self.theta0 + self.step_size)
            self.r = sat24(ref_t + 2 * theta_t)
        else:
            self.theta, self.r = theta_t, ref_t
        message = (v if self.graded else 1) if spike else 0
        return {"s": message, "u": u, "v": v, "theta": theta_t, "ref": ref_t}
