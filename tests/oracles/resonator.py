"""Resonate-and-fire references: RF, RF-IZ, ADRF, ADRF-IZ (``reference-neurons.md`` §2.3-2.6)."""

from __future__ import annotations

from tests.oracles.base import OracleNeuron
from tests.oracles.fixed import decay, rs0, sat24


def rotate(re: int, im: int, a_re: int, a_im: int, sin_d: int, cos_d: int) -> tuple[int, int]:
    """One resonator step: each product truncated toward zero on its own, inputs ``<< 6``, then both
    parts saturated to ``±(2^23 - 1)`` (Lava's RF models)."""
    new_re = rs0(cos_d * re, 12) - rs0(sin_d * im, 12) + (a_re << 6)
    new_im = rs0(sin_d * re, 12) + rs0(cos_d * im, 12) + (a_im << 6)
    return sat24(new_re), sat24(new_im)


class Rf(OracleNeuron):
    """RF, phase spiking (``RF_PHASE``).

    ``s = re_t >= θ0 and im_{t-1} < 0 and im_t >= 0`` with ``θ0 = vth << 6``; no reset.

    Parameters
    ----------
    sin_decay, cos_decay : int
        The integer rotation (hdf5 ``sinDecay``/``cosDecay``).
    vth : int
        Threshold mantissa.
    graded : bool
        A spike carries ``re_t`` instead of 1.
    """

    ports = ("a_real_in", "a_imag_in")
    carried = ("re", "im")
    recorded = ("re", "im")

    def __init__(self, sin_decay: int, cos_decay: int, vth: int, graded: bool = False) -> None:
        self.sin_d, self.cos_d = int(sin_decay), int(cos_decay)
        self.theta0 = int(vth) << 6
        self.graded = bool(graded)
        self.re = 0
        self.im = 0

    def step(self, a_re: int, a_im: int) -> dict[str, int]:
        re_t, im_t = rotate(self.re, self.im, a_re, a_im, self.sin_d, self.cos_d)
        spike = re_t >= self.theta0 and self.im < 0 and im_t >= 0
        self.re, self.im = re_t, im_t
        message = (re_t if self.graded else 1) if spike else 0
        return {"s": message, "re": re_t, "im": im_t}


class RfIz(Rf):
    """RF with Izhikevich reset (``RF_IZHIKEVICH``).

    ``s = im_t >= θ0``; after a spike the carried state is ``re = 0``, ``im = θ0 - 1``
    (the recorded ``re_t``, ``im_t`` are pre-reset). A spike carries ``im_t`` when graded.
    """

    def step(self, a_re: int, a_im: int) -> dict[str, int]:
        re_t, im_t = rotate(self.re, self.im, a_re, a_im, self.sin_d, self.cos_d)
        spike = im_t >= self.theta0
        if spike:
            self.re, self.im = 0, self.theta0 - 1
        else:
            self.re, self.im = re_t, im_t
        message = (im_t if self.graded else 1) if spike else 0
        return {"s": message, "re": re_t, "im": im_t}


class _Adaptive(OracleNeuron):
    """RF rotation (no reset of re/im) plus ALIF's adaptive threshold and refractory state.

    Every step ``r_t = RS0(r (4096 - dref), 12)`` and
    ``θ_t = RS0((θ - θ0) (4096 - dth), 12) + θ0``; after a spike ``θ = θ_t + Δθ`` and
    ``r = r_t + 2 θ_t`` (24-bit saturating registers, as for ALIF). Subclasses say which
    part spikes.
    """

    ports = ("a_real_in", "a_imag_in")
    carried = ("re", "im", "th", "r")
    recorded = ("re", "im", "theta", "ref")

    def __init__(self, sin_decay: int, cos_decay: int, dth: int, dref: int, vth: int, vth_step: int,
                 graded: bool = False) -> None:
        self.sin_d, self.cos_d = int(sin_decay), int(cos_decay)
        self.dth, self.dref = int(dth), int(dref)
        self.theta0 = int(vth) << 6
        self.step_size = int(vth_step) << 6
        self.graded = bool(graded)
        self.re = 0
        self.im = 0
        self.theta = self.theta0
        self.r = 0

    @property
    def th(self) -> int:
        return self.theta - self.theta0

    def _fires(self, re_t: int, im_t: int, bound: int) -> bool:
        raise NotImplementedError

    def _payload(self, re_t: int, im_t: int) -> int:
        raise NotImplementedError

    def step(self, a_re: int, a_im: int) -> dict[str, int]:
        re_t, im_t = rotate(self.re, self.im, a_re, a_im, self.sin_d, self.cos_d)
        ref_t = decay(self.r, self.dref)
        theta_t = decay(self.theta - self.theta0, self.dth) + self.theta0
        spike = self._fires(re_t, im_t, theta_t + ref_t)
        self.re, self.im = re_t, im_t
        if spike:
            self.theta = self.theta0 + sat24(theta_t - self.theta0 + self.step_size)
            self.r = sat24(ref_t + 2 * theta_t)
        else:
            self.theta, self.r = theta_t, ref_t
        message = (self._payload(re_t, im_t) if self.graded else 1) if spike else 0
        return {"s": message, "re": re_t, "im": im_t, "theta": theta_t, "ref": ref_t}


class Adrf(_Adaptive):
    """ADRF, phase spiking (``ADRF_PHASE``): ``s = re_t >= θ_t + r_t and im_{t-1} < 0 <= im_t``.

    Parameters
    ----------
    sin_decay, cos_decay : int
        The integer rotation.
    dth, dref : int
        Threshold-adaptation and refractory decays in ``[0, 4096]``.
    vth, vth_step : int
        Base threshold and threshold step mantissas.
    graded : bool
        A spike carries ``re_t`` instead of 1.
    """

    def _fires(self, re_t: int, im_t: int, bound: int) -> bool:
        return re_t >= bound and self.im < 0 and im_t >= 0

    def _payload(self, re_t: int, im_t: int) -> int:
        return re_t


class AdrfIz(_Adaptive):
    """ADRF-IZ (``ADRF_IZHIKEVICH``): ``s = im_t >= θ_t + r_t``; no reset of re/im.

    Same parameters as :class:`Adrf`; a graded spike carries ``im_t``.
    """

    def _fires(self, re_t: int, im_t: int, bound: int) -> bool:
        return im_t >= bound

    def _payload(self, re_t: int, im_t: int) -> int:
        return im_t
