"""Sigma-delta references: SigmaDelta neuron, Delta encoder, Sigma output (``reference-neurons.md`` §2.7).

Lava's fixed-point models keep every state in numpy int32 (the 24-bit width is not
enforced), so each sum below wraps to 32 bits as numpy int32 arithmetic does.
"""

from __future__ import annotations

from tests.oracles.base import OracleNeuron
from tests.oracles.fixed import abs32, wrap32

#: netx's ``state_exp``: extra fractional bits of the encoder states.
STATE_EXP = 6


class _Encoder(OracleNeuron):
    """The delta encoder shared by :class:`SigmaDelta` and :class:`Delta`."""

    def __init__(self, vth: int, cum_error: bool, spike_exp: int) -> None:
        self.spike_exp = int(spike_exp)
        self.vth_scaled = int(vth) << (self.spike_exp + STATE_EXP)
        self.cum_error = bool(cum_error)
        self.act = 0
        self.residue = 0
        self.error = 0

    def encode(self, act_new: int) -> tuple[int, int]:
        """``Δ = act - act_prev + residue``; send it when ``|Δ|`` (or ``|error|``) ``>= vth``.

        Returns ``(Δ, s_out)`` with ``s_out = ASR(msg, 6)``. With ``cum_error`` the error
        accumulates Δ, firing tests the error, and the error is cleared when a nonzero
        message goes out.
        """
        delta = wrap32(wrap32(act_new - self.act) + self.residue)
        if self.cum_error:
            self.error = wrap32(self.error + delta)
            fire = abs32(self.error) >= self.vth_scaled
        else:
            fire = abs32(delta) >= self.vth_scaled
        msg = delta if fire else 0
        if self.cum_error and msg != 0:
            self.error = 0
        self.residue = wrap32(delta - msg)
        self.act = act_new
        return delta, msg >> STATE_EXP


class SigmaDelta(_Encoder):
    """Hidden sigma-delta neuron (Lava ``SigmaDelta``).

    Per step, ``e = spike_exp``::

        σ   = σ + a
        act = relu(σ + (bias << (e + 6)))        (identity when relu is False)
        Δ, s_out as in the encoder, with the threshold vth << (e + 6)

    Parameters
    ----------
    vth : int
        Threshold mantissa.
    bias : int
        Bias mantissa.
    relu : bool
        ReLU (True) or identity activation.
    cum_error : bool
        Fire on the accumulated error.
    spike_exp : int
        Fractional bits of the graded message.
    """

    carried = ("sigma", "act", "residue", "error")
    recorded = ("sigma", "delta")

    def __init__(self, vth: int, bias: int = 0, relu: bool = True, cum_error: bool = False,
                 spike_exp: int = 6) -> None:
        super().__init__(vth, cum_error, spike_exp)
        self.bias_scaled = wrap32(int(bias) << (self.spike_exp + STATE_EXP))
        self.relu = bool(relu)
        self.sigma = 0

    def step(self, a_in: int) -> dict[str, int]:
        self.sigma = wrap32(self.sigma + a_in)
        pre = wrap32(self.sigma + self.bias_scaled)
        act = max(pre, 0) if self.relu else pre
        delta, message = self.encode(act)
        return {"s": message, "sigma": self.sigma, "delta": delta}


class Delta(_Encoder):
    """Network-input delta encoder (Lava ``Delta``): ``x = a << (e + 6)`` encoded as above.

    Parameters
    ----------
    vth : int
        Threshold mantissa.
    cum_error : bool
        Fire on the accumulated error.
    spike_exp : int
        Fractional bits of the graded message.
    """

    carried = ("act", "residue", "error")
    recorded = ("delta",)

    def __init__(self, vth: int, cum_error: bool = False, spike_exp: int = 6) -> None:
        super().__init__(vth, cum_error, spike_exp)

    def step(self, a_in: int) -> dict[str, int]:
        delta, message = self.encode(wrap32(a_in << (self.spike_exp + STATE_EXP)))
        return {"s": message, "delta": delta}


class Sigma(OracleNeuron):
    """Network-output integrator (Lava ``Sigma``): ``σ = σ + a``, sends ``σ``."""

    carried = ("sigma",)

    def __init__(self) -> None:
        self.sigma = 0

    def step(self, a_in: int) -> dict[str, int]:
        self.sigma = wrap32(self.sigma + a_in)
        return {"s": self.sigma}
