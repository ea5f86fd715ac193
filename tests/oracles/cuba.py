"""CUBA-LIF reference (``reference-neurons.md`` §2.1, Loihi's integer model)."""

from __future__ import annotations

from tests.oracles.base import OracleNeuron
from tests.oracles.fixed import decay, sat24, shift, wrap24


class CubaLIF(OracleNeuron):
    """One CUBA-LIF neuron.

    Per step, with ``a`` the integer synaptic input::

        u = wrap24(RS0(u (4096 - du), 12) + (a << 6))          (u is never reset)
        v = sat24(RS0(v (4096 - dv), 12) + u + (bias_mant << bias_exp))
        s = v > (vth << 6)                                     (Loihi's strict test)
        v = 0 after a spike                                    (the recorded v is pre-reset)

    ``du``/``dv`` are the hdf5 ``iDecay``/``vDecay`` integers used as they are (no
    hidden ``+1``); a negative ``bias_exp`` is an arithmetic right shift.

    Parameters
    ----------
    du, dv : int
        Current and voltage decays in ``[0, 4096]``.
    vth : int
        Threshold mantissa (``vThMant``); the threshold is ``vth << 6``.
    bias_mant, bias_exp : int
        Bias added to the voltage every step.
    graded : bool
        A spike carries the pre-reset voltage instead of 1.
    """

    carried = ("u", "v")
    recorded = ("u", "v")

    def __init__(self, du: int, dv: int, vth: int, bias_mant: int = 0, bias_exp: int = 0,
                 graded: bool = False) -> None:
        self.du, self.dv, self.vth = int(du), int(dv), int(vth)
        self.bias = shift(int(bias_mant), int(bias_exp))
        self.graded = bool(graded)
        self.u = 0
        self.v = 0

    def step(self, a_in: int) -> dict[str, int]:
        u = wrap24(decay(self.u, self.du) + (a_in << 6))
        v = sat24(decay(self.v, self.dv) + u + self.bias)
        spike = v > (self.vth << 6)
        self.u = u
        self.v = 0 if spike else v
        message = (v if self.graded else 1) if spike else 0
        return {"s": message, "u": u, "v": v}
