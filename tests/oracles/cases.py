"""Test inputs for the oracle comparisons: boundary cases built by construction, random populations.

Parameters are given with the Lava process argument names (``du``, ``vth``, ``sin_decay``,
``act_mode``, ...), which :func:`make_oracle` turns into an oracle neuron. Every
:class:`Case` lists the states its input is built to reach (``checks``); the tests first
assert that the oracle reaches exactly them, so a construction that misses its target
fails instead of testing nothing.
"""

from __future__ import annotations

import typing as ty
from dataclasses import dataclass, field

import numpy as np

from tests.oracles.alif import Alif
from tests.oracles.base import OracleNeuron
from tests.oracles.cuba import CubaLIF
from tests.oracles.fixed import MAX24
from tests.oracles.resonator import Adrf, AdrfIz, Rf, RfIz
from tests.oracles.sigma_delta import Delta, Sigma, SigmaDelta

#: Oracle class and the number of input ports of each family.
FAMILIES: dict[str, type[OracleNeuron]] = {
    "CUBA": CubaLIF, "ALIF": Alif, "RF": Rf, "RF_IZ": RfIz, "ADRF": Adrf, "ADRF_IZ": AdrfIz,
    "SIGMA_DELTA": SigmaDelta, "DELTA": Delta, "SIGMA": Sigma,
}
SPIKING = ("CUBA", "ALIF", "RF", "RF_IZ", "ADRF", "ADRF_IZ")

P23 = 1 << 23
P17 = 1 << 17


def make_oracle(family: str, params: ty.Mapping[str, int]) -> OracleNeuron:
    """The oracle neuron of ``family`` for Lava process arguments ``params``."""
    kwargs = dict(params)
    if family == "SIGMA_DELTA":
        kwargs["relu"] = kwargs.pop("act_mode", 1) == 1
    kwargs.pop("state_exp", None)
    return FAMILIES[family](**kwargs)


@dataclass
class Case:
    """One neuron driven by a constructed input.

    Attributes
    ----------
    name : str
        What the case is built to hit.
    params : dict
        Lava process arguments of the neuron.
    inputs : tuple of list of int
        Integer input per port and step.
    checks : list of (int, str, int)
        ``(step, record, value)`` the oracle must produce (``record`` is ``'s'``, a recorded
        value, or ``'after_<state>'`` for a carried state after the step).
    """

    name: str
    params: dict
    inputs: tuple[list[int], ...]
    checks: list[tuple[int, str, int]] = field(default_factory=list)


def land(target: int) -> list[int]:
    """Two inputs that bring a register ``x_t = RS0(x_{t-1}, 12) + (a_t << 6)`` from ``|x| < 4096``
    to exactly ``target`` at the second step.

    The register is CUBA/ALIF's current with ``du = 4095`` (or a resonator part with
    ``cos_decay = 1, sin_decay = 0``): the first input ``64 q`` leaves ``4096 q``, whose decay
    is exactly ``q``, and the second adds ``p << 6``: ``target = 64 p + q`` with
    ``q = target - 64 ceil(target / 64)`` in ``[-63, 0]`` (the first step never goes positive).
    """
    p = -((-target) // 64)
    q = target - 64 * p
    return [64 * q, p]


def _pad(seq: list[int], steps: int) -> list[int]:
    return seq + [0] * (steps - len(seq))


def _case(name, params, inputs, checks, steps):
    return Case(name, params, tuple(_pad(list(x), steps) for x in inputs), checks)


# ---------------------------------------------------------------------------------------------
# Boundary cases per family
# ---------------------------------------------------------------------------------------------


def _cuba_cases(steps: int) -> list[Case]:
    cases = []
    # v lands on vth << 6 and one either side (du = 4095 makes u any integer, dv = 4096 makes v = u).
    # vth >= 4096 is where lava-dl's float32 threshold eps is lost; 2^17 - 1 is the largest that
    # v can exceed (the threshold is then 2^23 - 64).
    for vth in (0, 5, 1000, 4096, 100000, P17 - 1):
        for d in (-1, 0, 1):
            target = (vth << 6) + d
            cases.append(_case(f"v = vth<<6 {d:+d} (vth {vth})", dict(du=4095, dv=4096, vth=vth),
                               [land(target)], [(1, "v", target), (1, "s", int(d > 0))], steps))
    # u: 24-bit two's-complement wrap (du = 0: a perfect integrator)
    seq = [P17 - 1, 1, 1, -1, -1, -P17, -1]
    cases.append(_case("u wraps at +2^23 and -2^23 - 1 (du 0)", dict(du=0, dv=4096, vth=(1 << 18) - 1), [seq],
                       [(0, "u", P23 - 64), (1, "u", -P23), (2, "u", -P23 + 64), (3, "u", -P23),
                        (4, "u", P23 - 64)], steps))
    # u exactly 2^23 - 1 (kept), 2^23 (wraps), -2^23 (kept), -2^23 - 1 (wraps): du = 4095
    seq = land(P23 - 1) + [0, 0] + land(P23) + [0, 0] + land(-P23) + [0, 0] + land(-P23 - 1)
    cases.append(_case("u at exactly +-2^23 and one inside", dict(du=4095, dv=4096, vth=(1 << 18) - 1), [seq],
                       [(1, "u", P23 - 1), (5, "u", -P23), (9, "u", -P23), (13, "u", P23 - 1)], steps))
    # v: saturation at +-(2^23 - 1) (du = 4096 forgets u, dv = 0 integrates v); the threshold
    # 2^23 - 64 is hit exactly (no spike) and then exceeded by the saturated value.
    seq = [P17 - 1, 1, 1, -P17, -P17, -P17, -P17]
    for vth in ((1 << 18) - 1, P17, P17 - 1):
        spikes = int(vth == P17 - 1)
        cases.append(_case(f"v saturates (du 4096, dv 0, vth {vth})", dict(du=4096, dv=0, vth=vth), [seq],
                           [(0, "v", P23 - 64), (0, "s", 0), (1, "v", MAX24), (1, "s", spikes)]
                           + ([] if spikes else [(2, "v", MAX24), (3, "v", -1), (4, "v", -MAX24),
                                                 (5, "v", -MAX24)]), steps))
    # decays 0 and 4096 on both, random-looking input
    seq = [3, -7, 100, 0, 0, 5, -200, 40, 40, 40]
    for du in (0, 4096):
        for dv in (0, 4096):
            cases.append(_case(f"decays du {du} dv {dv}", dict(du=du, dv=dv, vth=150), [seq], [], steps))
    return cases


def _threshold_unit_cases() -> list[tuple[str, dict, list[int], list]]:
    """Constructions for the adaptive threshold unit (ALIF, ADRF, ADRF-IZ).

    Returns ``(name, threshold params, inputs of the spiking register, checks)``; the
    register is driven through :func:`land`. (``vth >= 1``: with ``θ0 = 0`` the first input of
    :func:`land` would already spike.)
    """
    out = []
    for vth in (1, 300, 2000):
        for d in (-1, 0, 1):
            target = (vth << 6) + d
            out.append((f"first spike at θ0 {d:+d} (vth {vth})", dict(dth=0, dref=0, vth=vth, vth_step=50),
                        land(target), [(1, "s", int(d >= 0))]))
    # second spike against the adapted threshold θ0 + Δθ + 2 θ0 (no decay), exactly and around it
    vth, step = 300, 50
    theta0, jump = vth << 6, step << 6
    for d in (-1, 0, 1):
        seq = land(theta0) + [0, 0] + land(theta0 + jump + 2 * theta0 + d)
        out.append((f"adapted threshold {d:+d} (dth 0, dref 0)", dict(dth=0, dref=0, vth=vth, vth_step=step),
                    seq, [(1, "s", 1), (5, "theta", theta0 + jump), (5, "ref", 2 * theta0),
                          (5, "s", int(d >= 0))]))
    # decays 4096: the adaptation and refractory state vanish by the next step
    seq = land(theta0) + [0, 0] + land(theta0)
    out.append(("dth 4096, dref 4096: back to θ0", dict(dth=4096, dref=4096, vth=vth, vth_step=step), seq,
                [(1, "s", 1), (5, "theta", theta0), (5, "ref", 0), (5, "s", 1)]))
    # r = 2 θ0 = 2^23 exactly: saturates to 2^23 - 1
    out.append(("r reaches 2^23", dict(dth=0, dref=0, vth=1 << 16, vth_step=0), land(1 << 22),
                [(1, "s", 1), (1, "after_r", MAX24), (2, "ref", MAX24)]))
    # th: θ0 = 0 spikes at 0; Δθ = 2^22 twice reaches 2^23: saturates
    out.append(("th reaches 2^23", dict(dth=0, dref=4096, vth=0, vth_step=1 << 16), [0] + land(1 << 22),
                [(0, "s", 1), (0, "after_th", 1 << 22), (2, "s", 1), (2, "after_th", MAX24)]))
    return out


def _alif_cases(steps: int) -> list[Case]:
    cases = []
    for name, params, seq, checks in _threshold_unit_cases():
        cases.append(_case(name, dict(du=4095, dv=4096, **params), [seq], checks, steps))
    # the current and voltage registers of CUBA
    seq = [P17 - 1, 1, 1, -1, -1, -P17, -1]
    cases.append(_case("u wraps (du 0)", dict(du=0, dv=4096, dth=0, dref=0, vth=P17 - 1, vth_step=0), [seq],
                       [(1, "u", -P23), (3, "u", -P23), (4, "u", P23 - 64)], steps))
    seq = [P17 - 1, 1, 1, -P17, -P17, -P17, -P17]
    cases.append(_case("v saturates (du 4096, dv 0)", dict(du=4096, dv=0, dth=0, dref=0, vth=P17 - 1,
                                                           vth_step=0), [seq],
                       [(0, "v", P23 - 64), (0, "s", 1), (1, "v", MAX24)], steps))
    return cases


def _resonator_cases(family: str, steps: int) -> list[Case]:
    adaptive = family in ("ADRF", "ADRF_IZ")
    iz = family in ("RF_IZ", "ADRF_IZ")
    cases = []
    extra = dict(dth=0, dref=0, vth_step=50) if adaptive else {}
    quasi = dict(sin_decay=0, cos_decay=1)  # each part: x_t = RS0(x, 12) + (a << 6)
    if iz:
        # im lands on θ0 - 1, θ0, θ0 + 1 (re idle)
        for vth in (1, 500, 3000):
            for d in (-1, 0, 1):
                target = (vth << 6) + d
                cases.append(_case(f"im = θ0 {d:+d} (vth {vth})", dict(**quasi, vth=vth, **extra),
                                   [[], land(target)], [(1, "im", target), (1, "s", int(d >= 0))], steps))
    else:
        # re lands on θ0 - 1, θ0, θ0 + 1 while im crosses from -64 to exactly 0
        for vth in (1, 500, 3000):
            for d in (-1, 0, 1):
                target = (vth << 6) + d
                cases.append(_case(f"re = θ0 {d:+d} at a phase crossing (vth {vth})",
                                   dict(**quasi, vth=vth, **extra), [land(target), [-1, 0]],
                                   [(1, "re", target), (1, "im", 0), (1, "s", int(d >= 0))], steps))
        # the phase crossing itself: im from exactly -1 to 0 (spikes), from -64 to -1 and from 0 to 0 (not)
        target = (500 << 6) + 3
        params = dict(**quasi, vth=500, **extra)
        cases.append(_case("im -1 -> 0 crossing", params, [[0] + land(target), [-64]],
                           [(1, "im", -1), (2, "im", 0), (2, "re", target), (2, "s", 1)], steps))
        cases.append(_case("im -64 -> -1: no crossing", params, [land(target), [-64, 0]],
                           [(1, "im", -1), (1, "s", 0)], steps))
        cases.append(_case("im 0 -> 0: no crossing", params, [land(target), [0, 0]],
                           [(0, "im", 0), (1, "im", 0), (1, "s", 0)], steps))
    if adaptive:
        # the threshold unit on the spiking part (re gated by a crossing for ADRF)
        for name, params, seq, checks in _threshold_unit_cases():
            if iz:
                inputs = [[], seq]
            else:
                if name.startswith("th reaches"):
                    continue  # needs a spike at step 0, which a phase crossing cannot give
                # im alternates -64, 0: a phase crossing at every odd step, where the landings are
                inputs = [seq, ([-1, 0] * len(seq))[: len(seq)]]
            cases.append(_case(name, dict(**quasi, **params), inputs, checks, steps))
    if family == "RF_IZ":
        # Izhikevich reset: re = 0, im = θ0 - 1 (identity rotation keeps it)
        for vth in (0, 500):
            theta0 = vth << 6
            cases.append(_case(f"reset to θ0 - 1 (vth {vth})", dict(sin_decay=0, cos_decay=4096, vth=vth),
                               [[7], [vth, 0, 0, 1]],
                               [(0, "s", 1), (0, "after_re", 0), (0, "after_im", theta0 - 1),
                                (1, "im", theta0 - 1), (1, "re", 0), (1, "s", 0), (3, "im", theta0 + 63),
                                (3, "s", 1)], steps))
    # saturation at +-(2^23 - 1): identity rotation (decay 0), and exactly 2^23 / 2^23 - 1 through
    # the quasi rotation
    big = dict(vth=(1 << 17) - 1, **extra)
    cases.append(_case("re, im saturate (sin 0, cos 4096)", dict(sin_decay=0, cos_decay=4096, **big),
                       [[P17 - 1, 1, 1, -P17, -P17, -P17], [-P17, -1, P17, P17, P17, 1]],
                       [(0, "re", P23 - 64), (1, "re", MAX24), (2, "re", MAX24), (0, "im", -MAX24),
                        (1, "im", -MAX24), (2, "im", 1), (3, "im", MAX24)], steps))
    seq = land(P23 - 1) + [0, 0] + land(P23) + [0, 0] + land(-P23) + [0, 0] + land(-P23 - 1)
    cases.append(_case("parts at exactly +-2^23 and one inside", dict(**quasi, **big), [seq, seq],
                       [(1, "re", MAX24), (5, "re", MAX24), (9, "re", -MAX24), (13, "re", -MAX24),
                        (1, "im", MAX24), (5, "im", MAX24)], steps))
    # rotations at the ends of the range (decay 0 / 4096 and quarter turns), random-looking input
    seq_re = [3, -7, 100, 0, 0, 5, -200, 40, 40, 40, -1, -1]
    seq_im = [-5, 2, 0, 60, -60, 0, 0, 9, -9, 1, 0, 0]
    for sin_d, cos_d in ((0, 0), (4096, 0), (0, 4096), (-4096, 0), (0, -4096), (2896, 2896), (1, 0)):
        params = dict(sin_decay=sin_d, cos_decay=cos_d, vth=40, **extra)
        if adaptive:
            params.update(dth=4096, dref=0)
        cases.append(_case(f"rotation sin {sin_d} cos {cos_d}", params, [seq_re, seq_im], [], steps))
    return cases


def _sigma_delta_cases(steps: int) -> list[Case]:
    cases = []
    vth = 10
    vs = vth << 12  # spike_exp 6: threshold vth << 12
    for d in (-1, 0, 1):
        cases.append(_case(f"Δ = vth {d:+d}", dict(vth=vth), [[vs + d]],
                           [(0, "delta", vs + d), (0, "s", (vs + d) >> 6 if d >= 0 else 0),
                            (0, "after_residue", 0 if d >= 0 else vs + d)], steps))
        # a falling ReLU output: Δ = -(vth + d); the message is floored (ASR), not truncated
        floored = -((vs + d + 63) // 64)
        cases.append(_case(f"Δ = -(vth {d:+d})", dict(vth=vth), [[3 * vs, -(vs + d)]],
                           [(1, "delta", -(vs + d)), (1, "s", floored if d >= 0 else 0)], steps))
        # cum_error: the error reaches vth + d while Δ stays below vth
        x = vs // 2 - 10
        y = vs + d - 2 * x
        cases.append(_case(f"cum_error: error = vth {d:+d}", dict(vth=vth, cum_error=1), [[x, y]],
                           [(0, "s", 0), (0, "after_error", x), (1, "delta", x + y),
                            (1, "s", (x + y) >> 6 if d >= 0 else 0),
                            (1, "after_error", 0 if d >= 0 else vs + d)], steps))
    # vth 0: every change is sent; spike_exp 0 and 3 shift threshold and message
    for e in (0, 3):
        cases.append(_case(f"spike_exp {e}", dict(vth=3, spike_exp=e), [[(3 << (e + 6)) - 1, 1, -5, 200]],
                           [(0, "s", 0), (1, "s", (3 << (e + 6)) >> 6)], steps))
    cases.append(_case("vth 0", dict(vth=0), [[1, 0, -1, 63, 64, -64]], [(0, "s", 0), (4, "s", 1)], steps))
    # σ is not limited to 24 bits (Lava keeps int32); identity activation keeps negative values
    cases.append(_case("σ beyond 2^23", dict(vth=0), [[P23 - 1, 1, 1, -P23, -P23]],
                       [(0, "sigma", P23 - 1), (1, "sigma", P23), (2, "sigma", P23 + 1)], steps))
    cases.append(_case("σ below -2^23 (identity)", dict(vth=0, act_mode=0), [[-P23, -1, -1]],
                       [(0, "sigma", -P23), (1, "sigma", -P23 - 1), (1, "s", -1)], steps))
    # int32 wrap of σ
    cases.append(_case("σ wraps at 2^31 (identity)", dict(vth=5, act_mode=0), [[1 << 30, 1 << 30, 1]],
                       [(1, "sigma", -(1 << 31)), (2, "sigma", -(1 << 31) + 1)], steps))
    return cases


def _delta_cases(steps: int) -> list[Case]:
    vth = 7
    cases = []
    for d in (-1, 0, 1):
        cases.append(_case(f"Δ = vth {d:+d}", dict(vth=vth), [[vth + d, 0]],
                           [(0, "s", ((vth + d) << 12) >> 6 if d >= 0 else 0)], steps))
    cases.append(_case("cum_error", dict(vth=vth, cum_error=1), [[4, 4, 4, 0, 0, -3]], [], steps))
    cases.append(_case("spike_exp 2", dict(vth=vth, spike_exp=2), [[7, 13, 0, -7]], [], steps))
    return cases


def _sigma_cases(steps: int) -> list[Case]:
    return [_case("σ wraps at 2^31", {}, [[1 << 30, 1 << 30, -1, 5]], [(1, "s", -(1 << 31))], steps)]


def boundary_cases(family: str, steps: int = 24) -> list[Case]:
    """The constructed cases of ``family`` (inputs padded with zeros to ``steps``)."""
    if family == "CUBA":
        return _cuba_cases(steps)
    if family == "ALIF":
        return _alif_cases(steps)
    if family in ("RF", "RF_IZ", "ADRF", "ADRF_IZ"):
        return _resonator_cases(family, steps)
    if family == "SIGMA_DELTA":
        return _sigma_delta_cases(steps)
    if family == "DELTA":
        return _delta_cases(steps)
    if family == "SIGMA":
        return _sigma_cases(steps)
    raise KeyError(family)


def case_inputs(cases: ty.Sequence[Case], ports: int) -> list[np.ndarray]:
    """The cases' inputs as one ``(n, T)`` int64 array per port (a missing port is all zeros)."""
    steps = len(cases[0].inputs[0])
    out = []
    for port in range(ports):
        rows = [c.inputs[port] if port < len(c.inputs) else [0] * steps for c in cases]
        out.append(np.array(rows, dtype=np.int64))
    return out


# ---------------------------------------------------------------------------------------------
# Random populations (per-neuron parameters, as a Lava process takes them)
# ---------------------------------------------------------------------------------------------


def random_params(family: str, rng: np.random.Generator, n: int) -> list[dict]:
    """``n`` random parameter sets of ``family`` (full integer ranges, biases, graded spikes)."""
    out = []
    for _ in range(n):
        if family in ("CUBA", "ALIF"):
            p = dict(du=int(rng.integers(0, 4097)), dv=int(rng.integers(0, 4097)),
                     vth=int(rng.integers(0, 3000)) >> int(rng.integers(0, 8)),
                     bias_mant=int(rng.integers(-300, 300)) if rng.random() < 0.5 else 0,
                     bias_exp=int(rng.integers(-3, 7)), graded=int(rng.random() < 0.3))
            if family == "ALIF":
                p.update(dth=int(rng.integers(0, 4097)), dref=int(rng.integers(0, 4097)),
                         vth_step=int(rng.integers(0, 300)))
        elif family in ("RF", "RF_IZ", "ADRF", "ADRF_IZ"):
            if rng.random() < 0.5:  # a stable resonator, as slayer's period/decay give
                angle = 2 * np.pi / rng.uniform(4, 40)
                gain = 4096 * (1 - rng.uniform(0, 0.2))
                sin_d, cos_d = int(gain * np.sin(angle)), int(gain * np.cos(angle))
            else:
                sin_d, cos_d = (int(v) for v in rng.integers(-4096, 4097, 2))
            p = dict(sin_decay=sin_d, cos_decay=cos_d,
                     vth=int(rng.integers(0, 800)) >> int(rng.integers(0, 6)), graded=int(rng.random() < 0.3))
            if family in ("ADRF", "ADRF_IZ"):
                p.update(dth=int(rng.integers(0, 4097)), dref=int(rng.integers(0, 4097)),
                         vth_step=int(rng.integers(0, 200)))
        elif family == "SIGMA_DELTA":
            p = dict(vth=int(rng.integers(0, 40)),
                     bias=int(rng.integers(-30, 30)) if rng.random() < 0.5 else 0,
                     act_mode=int(rng.random() < 0.8), cum_error=int(rng.random() < 0.4),
                     spike_exp=int(rng.choice([0, 3, 6, 6])))
        elif family == "DELTA":
            p = dict(vth=int(rng.integers(0, 40)), cum_error=int(rng.random() < 0.4),
                     spike_exp=int(rng.choice([0, 3, 6])))
        else:
            p = {}
        out.append(p)
    return out


def random_inputs(family: str, rng: np.random.Generator, params: ty.Sequence[dict],
                  steps: int) -> list[np.ndarray]:
    """Integer inputs (one ``(n, T)`` array per port) for random neurons, scaled so that their
    states range from small values to the 24-bit limits; about a fifth of the entries are 0."""
    n = len(params)
    ports = len(FAMILIES[family].ports)
    out = []
    for _ in range(ports):
        if family in ("SIGMA_DELTA", "SIGMA"):
            spike_exp = np.array([p.get("spike_exp", 6) for p in params])
            amp = (rng.integers(1, 60, n) << (6 + spike_exp)) * rng.choice([1, 1, 8, 64], n)
        elif family == "DELTA":
            amp = rng.choice([30, 300, 3000, 30000], n)
        else:
            amp = rng.choice([40, 400, 4000, 40000, P17 + 1], n)
        data = rng.integers(-amp[:, None], amp[:, None] + 1, (n, steps))
        data[rng.random((n, steps)) < 0.2] = 0
        out.append(data.astype(np.int64))
    return out
