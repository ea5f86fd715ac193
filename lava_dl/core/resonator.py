"""Resonate-and-fire neurons (RF, RF-IZ, ADRF, ADRF-IZ), as Loihi / Lava compute them.

All four families share one rotation of the complex state ``z = re + i im`` by
the integer decays ``sin_decay`` and ``cos_decay`` (hdf5 ``sinDecay``/``cosDecay``,
``4096 (1 - decay) sin|cos(2 pi / period)``), carried directly as integers (no
lossy period/alpha round trip)::

    re_t = sat24(rs0(cos re, 12) - rs0(sin im, 12) + (a_real_in << 6))
    im_t = sat24(rs0(sin re, 12) + rs0(cos im, 12) + (a_imag_in << 6))

``sat24`` saturates to ``[-(2^23 - 1), 2^23 - 1]`` exactly as lava-nc's
``PyRFModelFixed`` / ``PyRF_IZModelFixed`` do (lava-dl's slayer has no
saturation; the deployed kernel is the truth, so training uses this one).
``θ0 = vth << 6``. Spike rules, per family:

* ``RF`` (``RF_PHASE``): ``s = re_t >= θ0 and im < 0 <= im_t`` (phase crossing,
  ``im`` being the state before the step). No reset.
* ``RF_IZ`` (``RF_IZHIKEVICH``): ``s = im_t >= θ0``; after a spike
  ``re = 0, im = θ0 - 1`` (Izhikevich reset, applied to the state for the next
  step; the recorded ``re_t, im_t`` are pre-reset).
* ``ADRF`` (``ADRF_PHASE``): RF rotation, then ALIF's adaptive threshold unit
  (:func:`lava_dl.core.alif.threshold_unit`) on the real part, gated by the
  phase crossing: ``s = re_t >= θ0 + th_t + r_t and im < 0 <= im_t``, then
  ``th += Δθ s``, ``r += 2 (θ0 + th_t) s`` (``Δθ = vth_step << 6``; ``th`` is the
  adaptation above ``θ0``, ``th_t``/``r_t`` the decayed values). No reset of re/im.
* ``ADRF_IZ`` (``ADRF_IZHIKEVICH``): RF rotation, threshold unit on the
  imaginary part: ``s = im_t >= θ0 + th_t + r_t``. No reset of re/im (lava-dl's
  ADRF-IZ kernel has none; netx's mapping to a resetting RF-IZ is a bug).

Every comparison is non-strict (``>=``), as in lava-nc and lava-dl. Binary
spikes are 1/0. Graded payloads (training only; Lava RF emits booleans) are, in
real units, ``re_t / S`` for RF/ADRF and ``im_t / S`` (the spiking state) for
RF-IZ/ADRF-IZ.

Lava step signatures (``*states, a_real_in, a_imag_in, *params, s_out``)::

    RF, RF_IZ:     fixed_step(re, im, a_real_in, a_imag_in, sin_decay, cos_decay, vth, graded, s_out)
    ADRF, ADRF_IZ: fixed_step(re, im, th, r, a_real_in, a_imag_in,
                              sin_decay, cos_decay, dth, dref, vth, vth_step, graded, s_out)

A spike sends 1, or with ``graded`` its :func:`payload` (24 bits).

The training kernels (:func:`resonator_forward`, :func:`resonator_backward`) run
the same scalar rule (:func:`neuron_update`) over ``(B, T, K)`` arrays (blocks of
K neurons, time in the middle, as :func:`lava_dl.core.cuba.cuba_forward`).
"""

from __future__ import annotations

import numpy as np

from lava_dl.core.alif import threshold_unit
from lava_dl.core.cuba import GRADED, surrogate, surrogate_height
from lava_dl.core.fixed_point import (
    DECAY_BITS,
    DECAY_UNITY,
    STATE_EXP,
    decay,
    graded_message,
    inline,
    input_to_int,
    jit,
    jit_fma,
    rs0,
    saturate24,
)
from lava_dl.core.parallel import Blockwise
from lava_dl.core.spec import NeuronSpec, Param, State

#: Family codes of the shared kernels.
RF_CODE, RF_IZ_CODE, ADRF_CODE, ADRF_IZ_CODE = 0, 1, 2, 3

#: Surrogate-gradient multipliers ``(TAU_RHO_MULT, SCALE_RHO_MULT)`` per family (lava-dl).
SURROGATE_MULT = {
    "RF": (0.5, 10.0),
    "RF_IZ": (100.0, 0.1),
    "ADRF": (100.0, 0.1),
    "ADRF_IZ": (100.0, 0.1),
}

#: Largest magnitude of ``sin_decay``/``cos_decay`` (4096 is what lava-nc produces for
#: ``alpha = 0, period = 4``; slayer keeps ``sqrt(sin^2 + cos^2) <= 4095``).
ROTATION_LIMIT = DECAY_UNITY
#: Probe below any reachable threshold: fed to the threshold unit when no phase crossing occurs.
_BELOW = -(1 << 40)


# --------------------------------------------------------------------------
# The rule, once, as scalar functions
# --------------------------------------------------------------------------


@inline
def rotate(re, im, a_re, a_im, sin_d, cos_d):
    """One saturated resonator step; ``a_re``/``a_im`` are already scaled (``a << 6``)."""
    new_re = rs0(cos_d * re, DECAY_BITS) - rs0(sin_d * im, DECAY_BITS) + a_re
    new_im = rs0(sin_d * re, DECAY_BITS) + rs0(cos_d * im, DECAY_BITS) + a_im
    return saturate24(new_re), saturate24(new_im)


@inline
def payload(family, re_t, im_t):
    """Graded payload of a spike: the state that crossed the threshold (``im`` for the IZ
    families, ``re`` for the phase-spiking ones), before any reset."""
    return im_t if family == RF_IZ_CODE or family == ADRF_IZ_CODE else re_t


@inline
def phase_probe(value, im_before, im_t):
    """The state the adaptive threshold unit tests at a phase crossing (``im_before < 0 <= im_t``),
    or a value below any threshold otherwise (ADRF's phase gate)."""
    return value if im_before < 0 and im_t >= 0 else np.int64(_BELOW)


@inline
def neuron_update(family, re, im, adapt, ref, a_re, a_im, sin_d, cos_d, dth, dref, th0, th_step):
    """One step of any resonator family for one neuron (all int64).

    Returns
    -------
    tuple
        ``(spike, margin, re_t, im_t, re_next, im_next, adapt_next, ref_next)``:
        ``margin`` is the signed distance of the spiking state to its threshold
        (``re_t - θ`` for RF/ADRF, ``im_t - θ`` for the IZ families, ``θ`` including the
        adaptation and refractory state); ``re_t, im_t`` are the recorded (pre-reset)
        states and ``*_next`` the states carried to the next step.
    """
    re_t, im_t = rotate(re, im, a_re, a_im, sin_d, cos_d)
    re_next = re_t
    im_next = im_t
    if family == RF_CODE:
        margin = re_t - th0
        spike = margin >= 0 and im < 0 and im_t >= 0
    elif family == RF_IZ_CODE:
        margin = im_t - th0
        spike = margin >= 0
        if spike:
            re_next = np.int64(0)
            im_next = th0 - 1
    elif family == ADRF_CODE:
        probe = phase_probe(re_t, im, im_t)
        spike, probe_margin, adapt, ref = threshold_unit(probe, adapt, ref, dth, dref, th0, th_step)
        margin = probe_margin - probe + re_t
    else:
        spike, margin, adapt, ref = threshold_unit(im_t, adapt, ref, dth, dref, th0, th_step)
    return spike, margin, re_t, im_t, re_next, im_next, adapt, ref


@inline
def float_neuron_update(family, re, im, adapt, ref, a_re, a_im, sin_d, cos_d, dth, dref, th0, th_step):
    """Floating-point counterpart of :func:`neuron_update` (same integer units, no saturation).

    Returns ``(spike, re_t, im_t, re_next, im_next, adapt_next, ref_next)``.
    """
    c = cos_d / DECAY_UNITY
    s = sin_d / DECAY_UNITY
    re_t = c * re - s * im + a_re
    im_t = s * re + c * im + a_im
    re_next = re_t
    im_next = im_t
    if family == RF_CODE:
        spike = re_t >= th0 and im < 0 and im_t >= 0
    elif family == RF_IZ_CODE:
        spike = im_t >= th0
        if spike:
            re_next = 0.0
            im_next = th0 - 1.0
    else:
        ref_t = ref * (1.0 - dref / DECAY_UNITY)
        adapt_t = adapt * (1.0 - dth / DECAY_UNITY)
        theta = th0 + adapt_t
        if family == ADRF_CODE:
            spike = re_t >= theta + ref_t and im < 0 and im_t >= 0
        else:
            spike = im_t >= theta + ref_t
        if spike:
            adapt_t += th_step
            ref_t += 2.0 * theta
        adapt = adapt_t
        ref = ref_t
    return spike, re_t, im_t, re_next, im_next, adapt, ref


# --------------------------------------------------------------------------
# Lava per-step kernels (flattened neurons, in place)
# --------------------------------------------------------------------------


@inline
def _lava_loop(family, re, im, adapt, ref, a_real_in, a_imag_in, sin_decay, cos_decay, dth, dref, vth,
               vth_step, graded, s_out, adaptive):
    for i in range(re.shape[0]):
        a_state = np.int64(adapt[i]) if adaptive else np.int64(0)
        r_state = np.int64(ref[i]) if adaptive else np.int64(0)
        d_th = np.int64(dth[i]) if adaptive else np.int64(0)
        d_ref = np.int64(dref[i]) if adaptive else np.int64(0)
        step = (np.int64(vth_step[i]) << STATE_EXP) if adaptive else np.int64(0)
        spike, _, re_t, im_t, re_next, im_next, a_next, r_next = neuron_update(
            family, np.int64(re[i]), np.int64(im[i]), a_state, r_state,
            np.int64(a_real_in[i]) << STATE_EXP, np.int64(a_imag_in[i]) << STATE_EXP,
            np.int64(sin_decay[i]), np.int64(cos_decay[i]), d_th, d_ref,
            np.int64(vth[i]) << STATE_EXP, step)
        re[i] = re_next
        im[i] = im_next
        if adaptive:
            adapt[i] = a_next
            ref[i] = r_next
        s_out[i] = graded_message(payload(family, re_t, im_t), graded[i], 1) if spike else 0


@jit
def rf_fixed_step(re, im, a_real_in, a_imag_in, sin_decay, cos_decay, vth, graded, s_out):
    """One Loihi step of RF (phase spiking) neurons, in place (Lava fixed_pt model)."""
    _lava_loop(RF_CODE, re, im, re, re, a_real_in, a_imag_in, sin_decay, cos_decay, vth, vth, vth, vth,
               graded, s_out, False)


@jit
def rf_iz_fixed_step(re, im, a_real_in, a_imag_in, sin_decay, cos_decay, vth, graded, s_out):
    """One Loihi step of RF-IZ (Izhikevich reset) neurons, in place (Lava fixed_pt model)."""
    _lava_loop(RF_IZ_CODE, re, im, re, re, a_real_in, a_imag_in, sin_decay, cos_decay, vth, vth, vth, vth,
               graded, s_out, False)


@jit
def adrf_fixed_step(re, im, th, r, a_real_in, a_imag_in, sin_decay, cos_decay, dth, dref, vth, vth_step,
                    graded, s_out):
    """One Loihi step of ADRF (adaptive, phase spiking) neurons, in place (Lava fixed_pt model)."""
    _lava_loop(ADRF_CODE, re, im, th, r, a_real_in, a_imag_in, sin_decay, cos_decay, dth, dref, vth,
               vth_step, graded, s_out, True)


@jit
def adrf_iz_fixed_step(re, im, th, r, a_real_in, a_imag_in, sin_decay, cos_decay, dth, dref, vth, vth_step,
                       graded, s_out):
    """One Loihi step of ADRF-IZ (adaptive, imaginary-part threshold) neurons, in place."""
    _lava_loop(ADRF_IZ_CODE, re, im, th, r, a_real_in, a_imag_in, sin_decay, cos_decay, dth, dref, vth,
               vth_step, graded, s_out, True)


@inline
def _float_loop(family, re, im, adapt, ref, a_real_in, a_imag_in, sin_decay, cos_decay, dth, dref, vth,
                vth_step, graded, s_out, adaptive):
    scale = 2.0**STATE_EXP
    for i in range(re.shape[0]):
        a_state = adapt[i] if adaptive else 0.0
        r_state = ref[i] if adaptive else 0.0
        d_th = dth[i] if adaptive else 0.0
        d_ref = dref[i] if adaptive else 0.0
        step = vth_step[i] * scale if adaptive else 0.0
        spike, re_t, im_t, re_next, im_next, a_next, r_next = float_neuron_update(
            family, re[i] * 1.0, im[i] * 1.0, a_state * 1.0, r_state * 1.0, a_real_in[i] * scale,
            a_imag_in[i] * scale, sin_decay[i] * 1.0, cos_decay[i] * 1.0, d_th * 1.0, d_ref * 1.0,
            vth[i] * scale, step * 1.0)
        re[i] = re_next
        im[i] = im_next
        if adaptive:
            adapt[i] = a_next
            ref[i] = r_next
        s_out[i] = graded_message(payload(family, re_t, im_t), graded[i], 1.0) if spike else 0.0


@jit
def rf_float_step(re, im, a_real_in, a_imag_in, sin_decay, cos_decay, vth, graded, s_out):
    """Floating-point counterpart of :func:`rf_fixed_step` in the same integer units."""
    _float_loop(RF_CODE, re, im, re, re, a_real_in, a_imag_in, sin_decay, cos_decay, vth, vth, vth, vth,
                graded, s_out, False)


@jit
def rf_iz_float_step(re, im, a_real_in, a_imag_in, sin_decay, cos_decay, vth, graded, s_out):
    """Floating-point counterpart of :func:`rf_iz_fixed_step` (reset ``im = θ0 - 1``)."""
    _float_loop(RF_IZ_CODE, re, im, re, re, a_real_in, a_imag_in, sin_decay, cos_decay, vth, vth, vth, vth,
                graded, s_out, False)


@jit
def adrf_float_step(re, im, th, r, a_real_in, a_imag_in, sin_decay, cos_decay, dth, dref, vth, vth_step,
                    graded, s_out):
    """Floating-point counterpart of :func:`adrf_fixed_step` in the same integer units."""
    _float_loop(ADRF_CODE, re, im, th, r, a_real_in, a_imag_in, sin_decay, cos_decay, dth, dref, vth,
                vth_step, graded, s_out, True)


@jit
def adrf_iz_float_step(re, im, th, r, a_real_in, a_imag_in, sin_decay, cos_decay, dth, dref, vth, vth_step,
                       graded, s_out):
    """Floating-point counterpart of :func:`adrf_iz_fixed_step` in the same integer units."""
    _float_loop(ADRF_IZ_CODE, re, im, th, r, a_real_in, a_imag_in, sin_decay, cos_decay, dth, dref, vth,
                vth_step, graded, s_out, True)


# --------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------

_ROTATION_PARAMS = (
    Param("sin_decay", "sinDecay", -ROTATION_LIMIT, ROTATION_LIMIT, 0,
          "rotation sine, 4096 (1 - decay) sin(2 pi / period)"),
    Param("cos_decay", "cosDecay", -ROTATION_LIMIT, ROTATION_LIMIT, 0,
          "rotation cosine, 4096 (1 - decay) cos(2 pi / period)"),
)
_VTH = Param("vth", "vThMant", 0, (1 << 17) - 1, 10, "threshold mantissa, effective vth << 6")
_ADAPTIVE_PARAMS = (
    Param("dth", "thDecay", 0, DECAY_UNITY, 0, "threshold-adaptation decay, fraction of 4096"),
    Param("dref", "refDecay", 0, DECAY_UNITY, 0, "refractory decay, fraction of 4096"),
)
_VTH_STEP = Param("vth_step", "vThStep", 0, (1 << 17) - 1, 0, "threshold increase per spike, << 6")
_RES_STATES = (
    State("re", "real part of the resonator state", "saturate"),
    State("im", "imaginary part of the resonator state", "saturate"),
)
_ADAPTIVE_STATES = (
    State("th", "threshold adaptation above the base threshold", "saturate"),
    State("r", "refractory state", "saturate"),
)
_PORTS = ("a_real_in", "a_imag_in")


def _spec(name, hdf5_type, doc, adaptive, fixed_step, float_step, family_code):
    params = _ROTATION_PARAMS + ((_ADAPTIVE_PARAMS + (_VTH, _VTH_STEP)) if adaptive else (_VTH,)) + (GRADED,)
    states = _RES_STATES + (_ADAPTIVE_STATES if adaptive else ())
    tau_mult, scale_mult = SURROGATE_MULT[name]
    return NeuronSpec(
        name=name,
        hdf5_type=hdf5_type,
        doc=doc,
        params=params,
        states=states,
        fixed_step=fixed_step,
        float_step=float_step,
        in_ports=_PORTS,
        tau_rho_mult=tau_mult,
        scale_rho_mult=scale_mult,
        extra={"hdf5_constants": {}, "family_code": family_code, "adaptive": adaptive,
               "hdf5_weights": {"a_real_in": "weight/real", "a_imag_in": "weight/imag"},
               # lava-nc's RF processes (lava-dl's netx) name the states ``real`` and ``imag``
               "var_aliases": {"real": "re", "imag": "im"}},
    )


RF = _spec("RF", "RF_PHASE", "Resonate-and-fire neuron spiking at the phase crossing of its real part "
           "(Loihi RF, phase spiking).", False, rf_fixed_step, rf_float_step, RF_CODE)
RF_IZ = _spec("RF_IZ", "RF_IZHIKEVICH", "Resonate-and-fire neuron spiking on its imaginary part, with "
              "Izhikevich reset (re = 0, im = threshold - 1).", False, rf_iz_fixed_step, rf_iz_float_step,
              RF_IZ_CODE)
ADRF = _spec("ADRF", "ADRF_PHASE", "Adaptive resonate-and-fire neuron: RF phase spiking with an adaptive "
             "threshold and a refractory state.", True, adrf_fixed_step, adrf_float_step, ADRF_CODE)
ADRF_IZ = _spec("ADRF_IZ", "ADRF_IZHIKEVICH", "Adaptive resonate-and-fire neuron spiking on its imaginary "
                "part against an adaptive threshold plus refractory state (no reset of re/im).", True,
                adrf_iz_fixed_step, adrf_iz_float_step, ADRF_IZ_CODE)

SPECS: tuple[NeuronSpec, ...] = (RF, RF_IZ, ADRF, ADRF_IZ)

# --------------------------------------------------------------------------
# Training kernels on ``(B, T, K)`` arrays: B independent blocks of K neurons,
# time in the middle (see lava_dl.core.cuba.cuba_forward): time-major
# activations (N, T, C*...) are read in place, time-last ones as (N*C*..., T, 1);
# the inner loop runs over K. Per-neuron parameters and states are (B, K).
# Inputs arrive in real units and enter as Loihi's a_in << 6 (input_to_int).
# --------------------------------------------------------------------------

#: Bounds of a recorded margin (int32); the surrogate is zero long before them.
_MARGIN_MIN = -(1 << 31)
_MARGIN_MAX = (1 << 31) - 1


@inline
def _record_row(out, b, t, scratch):
    """Row ``out[b, t]`` of a record, or ``scratch`` when the record is not kept (empty).

    Storing into a scratch row instead of testing a flag per neuron keeps the inner
    loop free of branches, so that the compiler vectorises it. Each record needs its
    own scratch row (rows that may alias would block the vectorised loop).
    """
    return out[b, t] if out.size > 0 else scratch


@inline
def record_margin(margin):
    """A margin as recorded (int32): clamped to ``[_MARGIN_MIN, _MARGIN_MAX]``."""
    return min(max(margin, _MARGIN_MIN), _MARGIN_MAX)


@inline
def threshold_record(adapt, ref, dth, dref, th0):
    """The threshold ``θ0 + th_t`` and refractory ``r_t`` the adaptive threshold unit tests at a
    step (the decayed states, before that step's spike update), as recorded."""
    return th0 + decay(adapt, dth), decay(ref, dref)


@inline
def spike_message(family, spike, re_t, im_t, graded, inv):
    """Real message of a step: the scaled :func:`payload` with ``graded`` (``inv = 1 / S``), else 1; 0
    without a spike."""
    return graded_message(payload(family, re_t, im_t), graded, inv) * 1.0 if spike else 0.0


@inline
def _forward_loop(family, x_re, x_im, state_scale, sin_d, cos_d, dth, dref, th0, th_step, re_state, im_state,
                  adapt_state, ref_state, graded, s_out, re_out, im_out, margin_out, theta_out, ref_out):
    """The loop of :func:`resonator_forward` on ``(B, T, K)`` / ``(B, K)`` arrays.

    Inlined once per family with ``family`` a constant, so that the compiler drops the
    other families' branches. The loop over K works on 1-D rows indexed from 0.
    """
    blocks, steps, width = x_re.shape
    inv = 1.0 / state_scale
    adaptive = family == ADRF_CODE or family == ADRF_IZ_CODE
    record_theta = adaptive and theta_out.size > 0
    re_scratch = np.empty(width, np.int32)
    im_scratch = np.empty(width, np.int32)
    margin_scratch = np.empty(width, margin_out.dtype)
    theta_scratch = np.empty(width, np.int32)
    ref_scratch = np.empty(width, np.int32)
    for b in range(blocks):
        # per-neuron rows; the state rows are updated in place
        re = re_state[b]
        im = im_state[b]
        adapt = adapt_state[b]
        ref = ref_state[b]
        sin_b = sin_d[b]
        cos_b = cos_d[b]
        dth_b = dth[b]
        dref_b = dref[b]
        th0_b = th0[b]
        step_b = th_step[b]
        for t in range(steps):
            xr = x_re[b, t]
            xi = x_im[b, t]
            s_row = s_out[b, t]
            re_row = _record_row(re_out, b, t, re_scratch)
            im_row = _record_row(im_out, b, t, im_scratch)
            margin_row = _record_row(margin_out, b, t, margin_scratch)
            theta_row = _record_row(theta_out, b, t, theta_scratch)
            ref_row = _record_row(ref_out, b, t, ref_scratch)
            for k in range(width):
                if record_theta:
                    theta_row[k], ref_row[k] = threshold_record(adapt[k], ref[k], dth_b[k], dref_b[k],
                                                                th0_b[k])
                spike, margin, re_t, im_t, re[k], im[k], adapt[k], ref[k] = neuron_update(
                    family, re[k], im[k], adapt[k], ref[k], input_to_int(xr[k], state_scale),
                    input_to_int(xi[k], state_scale), sin_b[k], cos_b[k], dth_b[k], dref_b[k], th0_b[k],
                    step_b[k])
                re_row[k] = re_t
                im_row[k] = im_t
                margin_row[k] = record_margin(margin)
                s_row[k] = spike_message(family, spike, re_t, im_t, graded, inv)


@jit
def resonator_forward(family, x_re, x_im, state_scale, sin_d, cos_d, dth, dref, th0, th_step,
                      re_state, im_state, adapt_state, ref_state, graded,
                      s_out, re_out, im_out, margin_out, theta_out, ref_out):
    """Run any resonator family over time (:func:`neuron_update` per neuron and step).

    Arrays are C-contiguous ``(B, T, K)`` (B blocks of K neurons, time in the middle;
    the loop over K is innermost) with per-neuron arrays ``(B, K)``; an array that is
    not needed is empty (``(0, 0, 0)``).

    Parameters
    ----------
    family : int
        ``RF_CODE`` ... ``ADRF_IZ_CODE``.
    x_re, x_im : ndarray, (B, T, K), float
        Real and imaginary synaptic input in real units.
    state_scale : float
        ``S``; the input enters as :func:`~lava_dl.core.fixed_point.input_to_int`.
    sin_d, cos_d, dth, dref : ndarray, (B, K), int64
        Integer decays (``dth``/``dref`` ignored by the non-adaptive families).
    th0, th_step : ndarray, (B, K), int64
        ``vth << 6`` and ``vth_step << 6``.
    re_state, im_state, adapt_state, ref_state : ndarray, (B, K), int64
        Initial states; hold the states after the last step (post-reset) on return.
    graded : bool
        Spike payload ``re_t / S`` (RF/ADRF) or ``im_t / S`` (IZ) instead of 1.
    s_out : ndarray, (B, T, K), float
        Spikes.
    re_out, im_out : ndarray, (B, T, K), int32, or empty
        Recorded (pre-reset) states; each is skipped when empty.
    margin_out : ndarray, (B, T, K), int32 or int64, or empty
        Spiking state minus its threshold (for the surrogate gradient), clamped to the
        int32 range (far beyond where the surrogate vanishes); skipped when empty.
    theta_out, ref_out : ndarray, (B, T, K), int32, or empty
        Adaptive families: the threshold ``θ0 + th_t`` and refractory ``r_t`` used at
        each step (before the spike update); skipped when empty.
    """
    # one copy of the loop per family, so that the compiler specialises each
    if family == RF_CODE:
        _forward_loop(RF_CODE, x_re, x_im, state_scale, sin_d, cos_d, dth, dref, th0, th_step, re_state,
                      im_state, adapt_state, ref_state, graded, s_out, re_out, im_out, margin_out, theta_out,
                      ref_out)
    elif family == RF_IZ_CODE:
        _forward_loop(RF_IZ_CODE, x_re, x_im, state_scale, sin_d, cos_d, dth, dref, th0, th_step, re_state,
                      im_state, adapt_state, ref_state, graded, s_out, re_out, im_out, margin_out, theta_out,
                      ref_out)
    elif family == ADRF_CODE:
        _forward_loop(ADRF_CODE, x_re, x_im, state_scale, sin_d, cos_d, dth, dref, th0, th_step, re_state,
                      im_state, adapt_state, ref_state, graded, s_out, re_out, im_out, margin_out, theta_out,
                      ref_out)
    else:
        _forward_loop(ADRF_IZ_CODE, x_re, x_im, state_scale, sin_d, cos_d, dth, dref, th0, th_step, re_state,
                      im_state, adapt_state, ref_state, graded, s_out, re_out, im_out, margin_out, theta_out,
                      ref_out)


@jit
def threshold_forward(v, im, im0, dth, dref, th0, th_step, adapt, ref, theta_out, ref_out):
    """The adaptive threshold unit alone, driven by a given state series (lava-dl's
    ``adaptive_threshold`` / ``adaptive_phase_th`` dynamics).

    Per row and step: :func:`lava_dl.core.alif.threshold_unit` on ``v[r, t]``, gated by the
    phase crossing of ``im`` (:func:`phase_probe`, ADRF's rule) when ``im`` is not empty.

    Parameters
    ----------
    v : ndarray of int64, shape (R, T)
        The spiking state (integer units).
    im : ndarray of int64, shape (R, T) or (0, 0)
        Imaginary state for the phase gate; empty for no gate (ALIF, ADRF-IZ).
    im0 : ndarray of int64, shape (R,) or (0,)
        Imaginary state before the first step (with ``im``).
    dth, dref, th0, th_step : ndarray of int64, shape (R,)
        Decays, scaled base threshold and scaled threshold step.
    adapt, ref : ndarray of int64, shape (R,)
        Initial adaptation (above ``th0``) and refractory states; hold the final ones on return.
    theta_out, ref_out : ndarray of int64, shape (R, T)
        Receive the threshold ``th0 + th_t`` and refractory ``r_t`` tested at each step
        (before that step's spike update), as ``resonator_forward`` records them.
    """
    rows, steps = v.shape
    gated = im.shape[0] > 0
    for r in range(rows):
        a = adapt[r]
        f = ref[r]
        before = im0[r] if gated else np.int64(0)
        for t in range(steps):
            theta_out[r, t], ref_out[r, t] = threshold_record(a, f, dth[r], dref[r], th0[r])
            probe = v[r, t]
            if gated:
                probe = phase_probe(probe, before, im[r, t])
                before = im[r, t]
            _, _, a, f = threshold_unit(probe, a, f, dth[r], dref[r], th0[r], th_step[r])
        adapt[r] = a
        ref[r] = f


@inline
def _sign(x):
    if x > 0.0:
        return 1.0
    if x < 0.0:
        return -1.0
    return 0.0


@inline
def complex_surrogate(margin, im, inv_tau, two_tau, half_over_tau, scale_rho, graded):
    """lava-dl's complex-spike derivatives ``(d s / d re, d s / d im)`` (real units, float64).

    ``margin`` is the real part minus its threshold, ``im`` the imaginary part, and
    the constants are ``1 / tau``, ``2 tau`` and ``1 / (2 tau)``. ``d_re`` is
    :func:`lava_dl.core.cuba.surrogate` of the margin with height ``1 / (2 tau)``
    (graded: the one-sided kernel of height 1), ``d_im`` that of ``im``.
    """
    d_re = surrogate(margin, inv_tau, 1.0 if graded else half_over_tau, graded)
    d_im = surrogate(im, inv_tau, half_over_tau, False)
    step_re = 0.5 * (1.0 + _sign(margin) * (1.0 - two_tau * d_re))
    return scale_rho * d_re * d_im, -scale_rho * inv_tau * _sign(im) * d_im * step_re


@jit
def complex_spike_backward(grad_s, margin, im, tau_rho, scale_rho, graded, grad_re, grad_im):
    """Derivatives of lava-dl's complex (phase) spike, elementwise (:func:`complex_surrogate`).

    ``margin`` (real part minus threshold) and ``im`` are in real units; ``grad_re`` and
    ``grad_im`` receive ``grad_s`` times ``d s / d re`` and ``d s / d im``.
    """
    flat_gs, flat_margin, flat_im = grad_s.ravel(), margin.ravel(), im.ravel()
    out_re, out_im = grad_re.ravel(), grad_im.ravel()
    inv_tau = 1.0 / tau_rho
    for i in range(out_re.size):
        d_re, d_im = complex_surrogate(flat_margin[i], flat_im[i], inv_tau, 2.0 * tau_rho, 0.5 * inv_tau,
                                       scale_rho, graded)
        out_re[i] = flat_gs[i] * d_re
        out_im[i] = flat_gs[i] * d_im


@inline
def iz_spike_terms(grad_s, margin, inv, inv_tau, height, graded):
    """Surrogate terms ``(for re, for im)`` of an IZ family's spike (a real spike on ``im``):
    ``grad_s * surrogate(margin / S)`` on the imaginary part, nothing on the real one."""
    return 0.0, grad_s * surrogate(margin * inv, inv_tau, height, graded)


@inline
def phase_spike_terms(grad_s, margin, im, inv, inv_tau, two_tau, half_over_tau, scale_rho, graded):
    """Surrogate terms ``(for re, for im)`` of a phase-spiking family's complex spike
    (:func:`complex_surrogate` of the integer ``margin`` and ``im``, ``inv = 1 / S``)."""
    d_re, d_im = complex_surrogate(margin * inv, im * inv, inv_tau, two_tau, half_over_tau, scale_rho, graded)
    return grad_s * d_re, grad_s * d_im


@inline
def rotation_adjoint(c, s, lam_re, lam_im, term_re, term_im, in_re, in_im):
    """One step of the rotation's adjoint, backwards in time: ``(λ_re[t], λ_im[t])`` from
    ``λ[t+1]``, the spike's surrogate terms and the incoming state gradients (``c = cos / 4096``,
    ``s = sin / 4096``; saturation and resets ignored)."""
    return (c * lam_re + s * lam_im + term_re + in_re,
            c * lam_im - s * lam_re + term_im + in_im)


@inline
def carried_state(reset, spiked, re, im, th0):
    """The state ``(re, im)`` carried out of a step whose records are ``re, im`` (float64): after
    an Izhikevich reset (``reset`` and ``spiked``) ``(0, θ0 - 1)``."""
    if reset and spiked:
        return 0.0, (th0 - 1) * 1.0
    return re * 1.0, im * 1.0


@inline
def rotation_decay_terms(lam_re, lam_im, re_prev, im_prev, acc_sin, acc_cos):
    """Add one step's derivative terms w.r.t. ``sin`` and ``cos`` to the running sums."""
    return (acc_sin + (-lam_re * im_prev + lam_im * re_prev),
            acc_cos + (lam_re * re_prev + lam_im * im_prev))


@inline
def rotation_decay_gradient(acc, state_scale):
    """A running sum of :func:`rotation_decay_terms` as the gradient of the stored decay."""
    return acc * (1.0 / state_scale) / DECAY_UNITY


@jit_fma
def _spike_terms(iz, flat_gs, flat_margin, flat_imag, state_scale, tau_rho, scale_rho, graded, flat_re,
                 flat_im):
    """Pass 1 of :func:`resonator_backward` on flat arrays, so that the compiler vectorises it (with FMAs:
    the exponential's polynomial bounds it): :func:`iz_spike_terms` (``flat_imag`` unused) or
    :func:`phase_spike_terms` per element."""
    inv = 1.0 / state_scale
    inv_tau = 1.0 / tau_rho
    if iz:
        height = surrogate_height(tau_rho, scale_rho, graded)
        for i in range(flat_im.size):
            flat_re[i], flat_im[i] = iz_spike_terms(flat_gs[i], flat_margin[i], inv, inv_tau, height, graded)
    else:
        two_tau = 2.0 * tau_rho
        half_over_tau = 0.5 / tau_rho
        for i in range(flat_im.size):
            flat_re[i], flat_im[i] = phase_spike_terms(flat_gs[i], flat_margin[i], flat_imag[i], inv, inv_tau,
                                                       two_tau, half_over_tau, scale_rho, graded)


@jit
def resonator_backward(family, grad_s, grad_re, grad_im, re_rec, im_rec, margin, s_rec, re0, im0, th0,
                       sin_d, cos_d, state_scale, tau_rho, scale_rho, graded, want_decay,
                       grad_x_re, grad_x_im, grad_sin, grad_cos):
    """Surrogate-gradient adjoint of :func:`resonator_forward`.

    Arrays are ``(B, T, K)`` and per-neuron ones ``(B, K)`` as there. The spike's
    surrogate (complex for RF/ADRF, real on ``im`` for the IZ families; threshold and
    refractory states carry no gradient)
    is added to the incoming gradients of the recorded states ``grad_re``/``grad_im``;
    the resonator is then back-propagated as the linear rotation, ignoring saturation
    and resets::

        λ_re[t] = g_re[t] + (cos λ_re[t+1] + sin λ_im[t+1]) / 4096
        λ_im[t] = g_im[t] + (cos λ_im[t+1] - sin λ_re[t+1]) / 4096

    ``grad_x_*`` receive ``λ``. With ``want_decay`` the per-neuron derivatives w.r.t.
    the stored ``sin``/``cos`` (in integer units, i.e. lava-dl's with its missing
    1/4096) are written: ``Σ_t (-λ_re[t] im[t-1] + λ_im[t] re[t-1]) / (4096 S)`` and
    ``Σ_t (λ_re[t] re[t-1] + λ_im[t] im[t-1]) / (4096 S)``, where the previous states
    are those actually carried (after an Izhikevich reset; ``re0, im0`` at ``t = 0``).

    ``grad_s``, ``grad_re`` and ``grad_im`` (float32) may each be empty when that
    output has no gradient; ``margin`` is needed only with ``grad_s``, ``im_rec`` with
    ``grad_s`` (RF/ADRF) or ``want_decay``, ``re_rec`` and ``s_rec`` only with
    ``want_decay`` (each may be empty otherwise).
    """
    blocks, steps, width = grad_x_re.shape
    iz = family == RF_IZ_CODE or family == ADRF_IZ_CODE
    reset = family == RF_IZ_CODE
    # Pass 1: the spike's surrogate terms, written into grad_x_re/grad_x_im (exp dominates the backward).
    if grad_s.size > 0:
        _spike_terms(iz, grad_s.ravel(), margin.ravel(), im_rec.ravel(), state_scale, tau_rho, scale_rho,
                     graded, grad_x_re.ravel(), grad_x_im.ravel())
    else:
        grad_x_re[...] = 0.0
        grad_x_im[...] = 0.0
    # Pass 2: the rotation's adjoint recurrence, backwards in time, K innermost.
    no_grad = np.zeros(width, np.float32)
    c = np.empty(width)
    s = np.empty(width)
    lam_re = np.empty(width)
    lam_im = np.empty(width)
    acc_sin = np.empty(width)
    acc_cos = np.empty(width)
    for b in range(blocks):
        for k in range(width):
            c[k] = cos_d[b, k] / DECAY_UNITY
            s[k] = sin_d[b, k] / DECAY_UNITY
            lam_re[k] = 0.0
            lam_im[k] = 0.0
            acc_sin[k] = 0.0
            acc_cos[k] = 0.0
        for t in range(steps - 1, -1, -1):
            out_re = grad_x_re[b, t]
            out_im = grad_x_im[b, t]
            in_re = grad_re[b, t] if grad_re.size > 0 else no_grad
            in_im = grad_im[b, t] if grad_im.size > 0 else no_grad
            for k in range(width):
                g_re, g_im = rotation_adjoint(c[k], s[k], lam_re[k], lam_im[k], out_re[k], out_im[k],
                                              in_re[k], in_im[k])
                lam_re[k] = g_re
                lam_im[k] = g_im
                out_re[k] = g_re
                out_im[k] = g_im
            if want_decay:
                if t == 0:
                    for k in range(width):
                        re_prev, im_prev = carried_state(False, False, re0[b, k], im0[b, k], 0)
                        acc_sin[k], acc_cos[k] = rotation_decay_terms(lam_re[k], lam_im[k], re_prev, im_prev,
                                                                      acc_sin[k], acc_cos[k])
                else:
                    prev_re = re_rec[b, t - 1]
                    prev_im = im_rec[b, t - 1]
                    prev_s = s_rec[b, t - 1]
                    for k in range(width):
                        re_prev, im_prev = carried_state(reset, prev_s[k] != 0.0, prev_re[k], prev_im[k],
                                                         th0[b, k])
                        acc_sin[k], acc_cos[k] = rotation_decay_terms(lam_re[k], lam_im[k], re_prev, im_prev,
                                                                      acc_sin[k], acc_cos[k])
        if want_decay:
            for k in range(width):
                grad_sin[b, k] = rotation_decay_gradient(acc_sin[k], state_scale)
                grad_cos[b, k] = rotation_decay_gradient(acc_cos[k], state_scale)


# The training kernels over several threads, on disjoint blocks of samples (bit-identical to one
# call: see lava_dl.core.parallel). Lava's steps stay single-threaded.
resonator_forward_blocks = Blockwise(
    resonator_forward, "x_re", "x_im", "sin_d", "cos_d", "dth", "dref", "th0", "th_step", "re_state",
    "im_state", "adapt_state", "ref_state", "s_out", "re_out", "im_out", "margin_out", "theta_out", "ref_out")
resonator_backward_blocks = Blockwise(
    resonator_backward, "grad_x_re", "grad_s", "grad_re", "grad_im", "re_rec", "im_rec", "margin", "s_rec",
    "re0", "im0", "th0", "sin_d", "cos_d", "grad_x_im", "grad_sin", "grad_cos")
