"""ALIF: CUBA-LIF with an adaptive threshold and a refractory state (lava-dl's ``alif``).

Per neuron and step (integers; ``θ0 = vth << 6``, ``Δθ = vth_step << 6``)::

    u  = wrap24(rs0(u (4096 - du), 12) + (a_in << 6) + (bias_mant << bias_exp))
    v  = sat24(rs0(v (4096 - dv), 12) + u)              # v is never reset
    r  = rs0(r (4096 - dref), 12)                       # refractory state
    th = rs0(th (4096 - dth), 12)                       # threshold adaptation θ - θ0
    s  = v >= θ0 + th + r
    th = sat24(th + Δθ s);  r = sat24(r + 2 (θ0 + th_before) s)

The adaptation is stored relative to θ0, so every state starts (and resets) at 0.
The bias is an input-side bias: it is what a ``MeanOnlyBatchNorm`` on the
input of a slayer ALIF neuron deploys to. The current and voltage rules are
CUBA's (:mod:`lava_dl.core.cuba`); only the threshold unit is new here.
"""

from __future__ import annotations

import numpy as np

from lava_dl.core.cuba import (
    BIAS_EXP,
    BIAS_MANT,
    CURRENT_DECAY,
    GRADED,
    VOLTAGE_DECAY,
    current_update,
    voltage_update,
)
from lava_dl.core.fixed_point import (
    DECAY_UNITY,
    STATE_EXP,
    decay,
    graded_message,
    inline,
    input_to_int,
    jit,
    saturate24,
    shift,
)
from lava_dl.core.parallel import Blockwise
from lava_dl.core.spec import NeuronSpec, Param, State


@inline
def threshold_unit(v, adapt, ref, dth, dref, th0, th_step):
    """Adaptive threshold and refractory update; returns ``(spike, v - threshold, adapt, ref)``."""
    ref_t = decay(ref, dref)
    adapt_t = decay(adapt, dth)
    theta = th0 + adapt_t
    margin = v - (theta + ref_t)
    spike = margin >= 0
    if spike:
        adapt_t = saturate24(adapt_t + th_step)
        ref_t = saturate24(ref_t + 2 * theta)
    return spike, margin, adapt_t, ref_t


@inline
def alif_update(u, v, adapt, ref, drive, du, dv, dth, dref, th0, th_step):
    """One step of one ALIF neuron: the current and voltage rules of CUBA, then :func:`threshold_unit`.

    ``drive`` is the integer input ``a_in << 6`` plus any input-side bias. The one composition of
    the step, shared by the Lava step (:func:`fixed_step`), the training kernel
    (:func:`alif_forward`) and its CUDA counterpart (:mod:`lava_dl.core.cuda_kernels`).

    Returns
    -------
    tuple
        ``(current, voltage, spike, margin, adapt, ref)``: the new states, whether the neuron
        spiked and the surrogate's ``v - (θ + r)`` before the spike.
    """
    cur = current_update(u, drive, du)
    vol = voltage_update(v, cur, dv, 0)
    spike, margin, adapt_next, ref_next = threshold_unit(vol, adapt, ref, dth, dref, th0, th_step)
    return cur, vol, spike, margin, adapt_next, ref_next


@jit
def fixed_step(u, v, adapt, ref, a_in, du, dv, dth, dref, vth, vth_step, bias_mant, bias_exp, graded, s_out):
    """One Loihi time step for all neurons (Lava fixed_pt model), in place.

    A spike sends 1, or with ``graded`` the voltage (24-bit payload).
    """
    for i in range(u.shape[0]):
        drive = (np.int64(a_in[i]) << STATE_EXP) + shift(np.int64(bias_mant[i]), bias_exp[i])
        cur, vol, spike, _, adapt_next, ref_next = alif_update(
            np.int64(u[i]), np.int64(v[i]), np.int64(adapt[i]), np.int64(ref[i]), drive, du[i], dv[i], dth[i],
            dref[i], np.int64(vth[i]) << STATE_EXP, np.int64(vth_step[i]) << STATE_EXP)
        u[i], v[i], adapt[i], ref[i] = cur, vol, adapt_next, ref_next
        s_out[i] = graded_message(vol, graded[i], 1) if spike else 0


@jit
def float_step(u, v, adapt, ref, a_in, du, dv, dth, dref, vth, vth_step, bias_mant, bias_exp, graded, s_out):
    """Floating-point counterpart of :func:`fixed_step` in the same integer units."""
    for i in range(u.shape[0]):
        drive = a_in[i] * 2.0**STATE_EXP + bias_mant[i] * 2.0 ** bias_exp[i]
        cur = u[i] * (1.0 - du[i] / DECAY_UNITY) + drive
        vol = v[i] * (1.0 - dv[i] / DECAY_UNITY) + cur
        ref_t = ref[i] * (1.0 - dref[i] / DECAY_UNITY)
        adapt_t = adapt[i] * (1.0 - dth[i] / DECAY_UNITY)
        theta = vth[i] * 2.0**STATE_EXP + adapt_t
        spike = vol >= theta + ref_t
        if spike:
            adapt_t += vth_step[i] * 2.0**STATE_EXP
            ref_t += 2.0 * theta
        u[i], v[i], adapt[i], ref[i] = cur, vol, adapt_t, ref_t
        s_out[i] = graded_message(vol, graded[i], 1.0) if spike else 0.0


SPEC = NeuronSpec(
    name="ALIF",
    hdf5_type="ALIF",
    doc="Adaptive leaky integrate-and-fire neuron (CUBA with adaptive threshold and refractory state).",
    params=(
        CURRENT_DECAY,
        VOLTAGE_DECAY,
        Param("dth", "thDecay", 0, DECAY_UNITY, 0, "threshold-adaptation decay, fraction of 4096"),
        Param("dref", "refDecay", 0, DECAY_UNITY, 0, "refractory decay, fraction of 4096"),
        # up to 2^18 - 1 as CUBA: lava-dl's Affine(dynamics=True) readout marker (never spikes)
        Param("vth", "vThMant", 0, (1 << 18) - 1, 10, "base threshold mantissa, effective vth << 6"),
        Param("vth_step", "vThStep", 0, (1 << 17) - 1, 0, "threshold increase per spike, << 6"),
        BIAS_MANT,  # an input-side bias: added to the current
        BIAS_EXP,
        GRADED,
    ),
    states=(
        State("u", "synaptic current", "wrap"),
        State("v", "membrane voltage (never reset)", "saturate"),
        State("th", "threshold adaptation above the base threshold", "saturate"),
        State("r", "refractory state", "saturate"),
    ),
    fixed_step=fixed_step,
    float_step=float_step,
    bias_param="bias_mant",
    deploy_constants={"bias_exp": STATE_EXP},
    extra={"hdf5_constants": {"refDelay": 1}},
)


@jit
def alif_forward(x, state_scale, du, dv, dth, dref, th0, th_step, init, graded, final, s_out, margin_out,
                 u_out, v_out, th_out, r_out):
    """Fused training forward: current, voltage and threshold unit per step, in one pass.

    Arrays are ``(B, T, K)`` (B blocks of K neurons, time in the middle; see
    :func:`lava_dl.core.cuba.cuba_forward`) and per-neuron ones ``(B, K)``.

    Parameters
    ----------
    x : ndarray of float, shape (B, T, K)
        Real input (after any input norm); enters as :func:`input_to_int`.
    state_scale : float
        Integer units per real unit (``S``).
    du, dv, dth, dref : ndarray of int64, shape (B, K)
        Integer decays (fractions of 4096) of current, voltage, adaptation and refractory state.
    th0, th_step : ndarray of int64, shape (B, K)
        Scaled base threshold ``vth << 6`` and threshold step ``vth_step << 6``.
    init : ndarray of int64, shape (4, B, K)
        Initial states ``u, v, th, r`` (``th`` relative to ``th0``).
    graded : bool
        Spike payload is the real voltage instead of 1.0.
    final : ndarray of int64, shape (4, B, K)
        Receives the final states, in the order of ``init``.
    s_out : ndarray of float, shape (B, T, K)
        Receives the messages.
    margin_out, u_out, v_out, th_out, r_out : ndarray of int32, shape (B, T, K) or (0, 0, 0)
        Optional records (empty to skip): the surrogate's ``v - (θ + r)`` before the
        spike, the current, the voltage, and the adaptation and refractory states
        after the step (the values :func:`fixed_step` leaves).

    Notes
    -----
    The same arithmetic as :func:`fixed_step` (both loop around :func:`alif_update`), so the
    integer states equal :func:`fixed_step` with ``bias_mant = 0``. The CUDA kernel
    :func:`lava_dl.core.cuda_kernels.alif_forward` runs the same rule, one thread per neuron.
    """
    blocks, steps, width = x.shape
    inv = 1.0 / state_scale
    u = np.empty(width, np.int64)
    v = np.empty(width, np.int64)
    adapt = np.empty(width, np.int64)
    ref = np.empty(width, np.int64)
    # A record that is not kept is written to a scratch row of its own: no branch in
    # the loop over K, which the compiler then vectorises.
    scratch = np.empty((5, width), np.int32)
    for b in range(blocks):
        for k in range(width):
            u[k] = init[0, b, k]
            v[k] = init[1, b, k]
            adapt[k] = init[2, b, k]
            ref[k] = init[3, b, k]
        for t in range(steps):
            x_row = x[b, t]
            s_row = s_out[b, t]
            margin_row = margin_out[b, t] if margin_out.size > 0 else scratch[0]
            u_row = u_out[b, t] if u_out.size > 0 else scratch[1]
            v_row = v_out[b, t] if v_out.size > 0 else scratch[2]
            th_row = th_out[b, t] if th_out.size > 0 else scratch[3]
            r_row = r_out[b, t] if r_out.size > 0 else scratch[4]
            for k in range(width):
                cur, vol, spike, margin, adapt_t, ref_t = alif_update(
                    u[k], v[k], adapt[k], ref[k], input_to_int(x_row[k], state_scale), du[b, k], dv[b, k],
                    dth[b, k], dref[b, k], th0[b, k], th_step[b, k])
                u[k] = cur
                v[k] = vol
                adapt[k] = adapt_t
                ref[k] = ref_t
                s_row[k] = graded_message(vol, graded, inv) * 1.0 if spike else 0.0
                margin_row[k] = margin
                u_row[k] = cur
                v_row[k] = vol
                th_row[k] = adapt_t
                r_row[k] = ref_t
        for k in range(width):
            final[0, b, k] = u[k]
            final[1, b, k] = v[k]
            final[2, b, k] = adapt[k]
            final[3, b, k] = ref[k]


#: :func:`alif_forward` over several threads, on disjoint blocks of samples
#: (see :mod:`lava_dl.core.parallel`).
alif_forward_blocks = Blockwise(alif_forward, "x", "du", "dv", "dth", "dref", "th0", "th_step", "s_out",
                                "margin_out", "u_out", "v_out", "th_out", "r_out", axis1=("init", "final"))
