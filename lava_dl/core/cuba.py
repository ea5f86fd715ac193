"""CUBA-LIF: current-based leaky integrate-and-fire, as Loihi computes it.

Per neuron and time step (integers, 24-bit states)::

    u = wrap24(rs0(u * (4096 - du), 12) + (a_in << 6))
    v = sat24(rs0(v * (4096 - dv), 12) + u + (bias_mant << bias_exp))
    s = v > (vth << 6);  v = 0 where s

``du``/``dv`` are the hdf5 ``iDecay``/``vDecay`` integers: 0 keeps the state
forever, 4096 forgets it every step. (lava-nc's own LIF adds a hidden 1 to
``du``; this model does not, so hdf5 values are used as they are.)

The rule is written once, as scalar functions (:func:`current_update`,
:func:`voltage_update`, :func:`spike_reset`). The Lava step (:func:`fixed_step`)
and the training kernels (:func:`cuba_forward`; :func:`current_forward` and
:func:`voltage_forward` when a norm sits between the two) are loops around them,
and so are the CUDA kernels of :mod:`lava_dl.core.cuda_kernels`, which call these same
functions (and the adjoint's :func:`surrogate_gradient`, :func:`decay_factor`,
:func:`adjoint_step`, :func:`previous_state`, :func:`decay_gradient`) compiled for the GPU.
"""

from __future__ import annotations

import numpy as np

from lava_dl.core.fixed_point import (
    DECAY_UNITY,
    STATE_EXP,
    decay,
    graded_message,
    inline,
    input_to_int,
    jit,
    jit_fma,
    saturate24,
    shift,
    wrap24,
)
from lava_dl.core.parallel import Blockwise
from lava_dl.core.spec import NeuronSpec, Param, State
from lava_dl.core.vector_math import exp_nonpositive

#: Parameters shared by the families built on CUBA's current and voltage rules.
CURRENT_DECAY = Param("du", "iDecay", 0, DECAY_UNITY, 0, "current decay, fraction of 4096 lost per step")
VOLTAGE_DECAY = Param("dv", "vDecay", 0, DECAY_UNITY, 0, "voltage decay, fraction of 4096 lost per step")
BIAS_MANT = Param("bias_mant", None, -(1 << 16), (1 << 16) - 1, 0, "bias mantissa")
BIAS_EXP = Param("bias_exp", None, -7, 7, 0, "bias exponent")
#: Shared by the spiking families: a spike sends its spiking state as a graded payload.
GRADED = Param("graded", "gradedSpike", 0, 1, 0,
               "1: a spike carries the spiking state (graded payload, 24 bits), 0: binary spikes",
               required=False)


@inline
def current_update(u, a_scaled, du):
    """Next current from the previous one and the scaled input ``a_in << 6``."""
    return wrap24(decay(u, du) + a_scaled)


@inline
def voltage_update(v, current, dv, bias_scaled):
    """Next (pre-reset) voltage."""
    return saturate24(decay(v, dv) + current + bias_scaled)


@inline
def spike_reset(v, vth_scaled, graded, inv_scale):
    """Loihi's strict test ``v > vth``: returns ``(message, voltage after reset)``.

    The message is 1.0, or the real voltage ``v * inv_scale`` for graded spikes.
    """
    if v > vth_scaled:
        return graded_message(v, graded, inv_scale) * 1.0, np.int64(0)
    return 0.0, v


@inline
def state_to_int(value, state_scale):
    """A real state ``value`` (e.g. the current after a norm) in integer units: ``trunc(value * S)``."""
    return np.int64(value * state_scale)


@inline
def _fixed_loop(u, v, a_in, du, dv, vth, bias_mant, bias_exp, graded, s_out, unbiased):
    """The loop of :func:`fixed_step`; ``unbiased`` (a constant at each call) drops the bias."""
    for i in range(u.shape[0]):
        bias = np.int64(0) if unbiased else shift(np.int64(bias_mant[i]), bias_exp[i])
        cur = current_update(np.int64(u[i]), np.int64(a_in[i]) << STATE_EXP, du[i])
        vol = voltage_update(np.int64(v[i]), cur, dv[i], bias)
        spike = vol > (np.int64(vth[i]) << STATE_EXP)
        u[i] = cur
        v[i] = 0 if spike else vol
        s_out[i] = graded_message(vol, graded[i], 1) if spike else 0


@inline
def all_zero(values):
    """Whether every entry of the integer array ``values`` is 0 (a branch-free, vectorisable scan).

    The Lava step kernels use it to run their loop with a parameter that no neuron uses
    folded to a constant (see :func:`fixed_step`, :func:`lava_dl.core.sigma_delta.sigma_delta_fixed_step`).
    """
    bits = np.int64(0)
    for i in range(values.shape[0]):
        bits |= np.int64(values[i])
    return bits == 0


@jit
def fixed_step(u, v, a_in, du, dv, vth, bias_mant, bias_exp, graded, s_out):
    """One Loihi time step for all neurons (Lava fixed_pt model), in place.

    A spike sends 1, or with ``graded`` the pre-reset voltage (24-bit payload). Without any
    bias (the common case) the loop runs with the bias folded to 0 (no per-neuron shift
    branch, which vectorises better).
    """
    if all_zero(bias_mant):
        _fixed_loop(u, v, a_in, du, dv, vth, bias_mant, bias_exp, graded, s_out, True)
    else:
        _fixed_loop(u, v, a_in, du, dv, vth, bias_mant, bias_exp, graded, s_out, False)


@jit
def float_step(u, v, a_in, du, dv, vth, bias_mant, bias_exp, graded, s_out):
    """Floating-point counterpart of :func:`fixed_step` in the same integer units."""
    for i in range(u.shape[0]):
        cur = u[i] * (1.0 - du[i] / DECAY_UNITY) + a_in[i] * 2.0**STATE_EXP
        vol = v[i] * (1.0 - dv[i] / DECAY_UNITY) + cur + bias_mant[i] * 2.0 ** bias_exp[i]
        spike = vol > vth[i] * 2.0**STATE_EXP
        u[i] = cur
        v[i] = 0.0 if spike else vol
        s_out[i] = graded_message(vol, graded[i], 1.0) if spike else 0.0


SPEC = NeuronSpec(
    name="CUBA",
    hdf5_type="CUBA",
    doc="Current-based leaky integrate-and-fire neuron (Loihi CUBA-LIF).",
    params=(
        CURRENT_DECAY,
        VOLTAGE_DECAY,
        Param("vth", "vThMant", 0, (1 << 18) - 1, 10, "threshold mantissa, effective vth << 6"),
        BIAS_MANT,
        BIAS_EXP,
        GRADED,
    ),
    states=(
        State("u", "synaptic current", "wrap"),
        State("v", "membrane voltage", "saturate"),
    ),
    fixed_step=fixed_step,
    float_step=float_step,
    hdf5_aliases=("LOIHI",),
    bias_param="bias_mant",
    deploy_constants={"bias_exp": STATE_EXP},
    extra={"hdf5_constants": {"refDelay": 1}},
)


# --------------------------------------------------------------------------
# Training kernels on (B, T, K) arrays: B independent blocks of K neurons, time in
# the middle (a batch of (N, C, ..., T) activations stored time-major is
# (N, T, C*...)); the inner loop over K vectorises. Per-neuron parameters and
# states are (B, K) arrays. Inputs arrive in real units and become Loihi's
# a_in << 6 (input_to_int). The two-stage kernels below serve a norm between the
# current and the voltage; the fused ones (cuba_forward, cuba_backward) the rest.
# --------------------------------------------------------------------------


@jit
def current_forward(x, state_scale, du, u0, u_out):
    """Leaky integration of the input: ``u_out[b, t, k]`` (int32) for ``x[b, t, k]`` (real)."""
    blocks, steps, width = x.shape
    u = np.empty(width, np.int32)  # 24-bit states: int32 rows load and store faster than int64
    for b in range(blocks):
        for k in range(width):
            u[k] = u0[b, k]
        for t in range(steps):
            x_row = x[b, t]
            out_row = u_out[b, t]
            for k in range(width):
                cur = current_update(u[k], input_to_int(x_row[k], state_scale), du[b, k])
                u[k] = cur
                out_row[k] = cur


@jit
def voltage_forward(cur, state_scale, dv, bias_scaled, vth_scaled, v0, graded, s_out, v_out):
    """Voltage integration, spike and reset. ``v_out`` records the pre-reset voltage.

    ``cur`` is the real current (a state: ``trunc(cur * S)``); ``s_out`` receives 1.0
    for a spike, or the real voltage for graded spikes. The post-reset final voltage is
    ``v_out[:, -1] * (s_out[:, -1] == 0)``.
    """
    blocks, steps, width = cur.shape
    inv = 1.0 / state_scale
    v = np.empty(width, np.int32)  # 24-bit states (see current_forward)
    for b in range(blocks):
        for k in range(width):
            v[k] = v0[b, k]
        for t in range(steps):
            cur_row = cur[b, t]
            s_row = s_out[b, t]
            v_row = v_out[b, t]
            for k in range(width):
                vol = voltage_update(v[k], state_to_int(cur_row[k], state_scale), dv[b, k], bias_scaled[b, k])
                v_row[k] = vol
                s_row[k], v[k] = spike_reset(vol, vth_scaled[b, k], graded, inv)


@jit
def integrator_backward(grad_out, decay_int, y_rec, y0, spiked, state_scale, want_decay, grad_in, grad_decay):
    """Adjoint of ``y[t] = (1 - d/4096) y[t-1] + x[t]`` (resets ignored, as in lava-dl).

    ``y_rec[b, t, k]`` is the recorded (pre-reset) integer state, ``y0`` the state
    before the first step and ``spiked`` (same shape as ``y_rec``, or empty when the
    integrator has no reset) marks steps after which the state was reset to zero.
    Writes ``grad_in`` (w.r.t. x). If ``want_decay``, writes into ``grad_decay``
    (``(B, K)``) the derivative w.r.t. the stored decay ``d`` (``-y[t-1] / 4096`` per
    step in real units, ``y[t-1]`` taken after its reset), else leaves it untouched.
    """
    blocks, steps, width = grad_out.shape
    has_reset = spiked.shape[0] > 0
    g = np.empty(width, np.float64)
    gd = np.empty(width, np.float64)
    alpha = np.empty(width, np.float64)
    for b in range(blocks):
        for k in range(width):
            alpha[k] = decay_factor(decay_int[b, k])
            g[k] = 0.0
            gd[k] = 0.0
        for t in range(steps - 1, -1, -1):
            for k in range(width):
                g[k] = adjoint_step(grad_out[b, t, k], alpha[k], g[k])
                grad_in[b, t, k] = g[k]
                if want_decay:
                    # at t = 0 the t - 1 entries read are not used (index -1 wraps around)
                    reset_prev = has_reset and spiked[b, t - 1, k] != 0
                    gd[k] -= g[k] * previous_state(t, y0[b, k], y_rec[b, t - 1, k], reset_prev)
        if want_decay:
            for k in range(width):
                grad_decay[b, k] = decay_gradient(gd[k], state_scale)


@inline
def surrogate(margin, inv_tau, height, graded):
    """lava-dl's spike surrogate at ``margin = v - theta`` (real units).

    Laplace kernel ``height * exp(-|margin| / tau)``; for graded spikes the one-sided
    ``height * exp(min(margin, 0) / tau)``. ``height`` comes from :func:`surrogate_height`.
    """
    if graded:
        return height * exp_nonpositive(min(margin, 0.0) * inv_tau)
    return height * exp_nonpositive(-abs(margin) * inv_tau)


@inline
def surrogate_gradient(grad, state, inv_scale, theta, inv_tau, height, graded):
    """Gradient through the spike of the integer spiking ``state``: ``grad * surrogate(state / S - theta)``
    (``inv_scale = 1 / S``; ``inv_tau``, ``height`` as for :func:`surrogate`)."""
    return grad * surrogate(state * inv_scale - theta, inv_tau, height, graded)


@inline
def surrogate_height(tau_rho, scale_rho, graded):
    """Peak of :func:`surrogate`: ``scale`` (graded) or ``scale / (2 tau)``."""
    return scale_rho if graded else scale_rho / (2.0 * tau_rho)


@inline
def decay_factor(d):
    """Real factor ``1 - d / 4096`` of the integer decay ``d``: what a state keeps per step,
    the multiplier of its integrator's adjoint (:func:`adjoint_step`)."""
    return 1.0 - d / DECAY_UNITY


@inline
def adjoint_step(grad, alpha, grad_next):
    """Adjoint of the integrator ``y[t] = alpha y[t-1] + x[t]`` (resets ignored, as in lava-dl):
    ``dL/dy[t] = grad + alpha dL/dy[t+1]``, with ``grad`` the direct gradient of step ``t``."""
    return grad + alpha * grad_next


@inline
def decay_gradient(acc, state_scale):
    """Gradient w.r.t. the stored decay ``d`` from ``acc = -sum_t dL/dy[t] y[t-1]`` (integer
    units): ``acc / S / 4096``."""
    return acc / state_scale / DECAY_UNITY


#: Factor from the decay gradient of :func:`decay_gradient` to lava-dl's (reference notes §1.3): the
#: derivative with respect to the retention factor ``1 - d / 4096`` (exact: a power of two).
LAVA_DL_DECAY_SCALE = -float(DECAY_UNITY)


def lava_dl_decay_inputs(reset, *initial):
    """The reset marks and initial states from which the adjoint kernels give lava-dl's decay gradient.

    lava-dl multiplies the adjoint of step ``t >= 1`` by the *recorded* state of step ``t - 1``,
    before its reset, and has no term for step 0 (reference notes §1.3). The kernels' rule
    (:func:`previous_state`) reads a reset state as zero and step 0's as the initial state: given
    no reset marks (an empty array of ``reset``'s kind) and zero initial states, it reads lava-dl's.
    The kernels' result times :data:`LAVA_DL_DECAY_SCALE` is then lava-dl's gradient. Works on
    numpy arrays and torch tensors alike.
    """
    return (reset[:0, :0, :0], *(state * 0 for state in initial))


@inline
def previous_state(t, init, prev, reset_prev):
    """The state that step ``t``'s decay acted on: ``init`` at ``t = 0``, else step ``t - 1``'s
    ``prev`` (zero when that step reset). Scalars only, so that CUDA kernels (and numba's CUDA
    simulator) call the same rule."""
    if t == 0:
        return init
    return 0 if reset_prev else prev


@inline
def previous_states(t, u_init, v_init, u_prev, v_prev, reset_prev):
    """``(u, v)`` that step ``t``'s decays acted on (:func:`previous_state`; only ``v`` resets)."""
    return previous_state(t, u_init, u_prev, False), previous_state(t, v_init, v_prev, reset_prev)


@jit
def spike_backward(grad_s, v_int, state_scale, theta, tau_rho, scale_rho, graded, grad_v):
    """Surrogate derivative of the spike w.r.t. the real voltage (:func:`surrogate_gradient`), elementwise."""
    flat_grad, flat_v, flat_out = grad_s.ravel(), v_int.ravel(), grad_v.ravel()
    inv = 1.0 / state_scale
    inv_tau = 1.0 / tau_rho
    height = surrogate_height(tau_rho, scale_rho, graded)
    for i in range(flat_out.size):
        flat_out[i] = surrogate_gradient(flat_grad[i], flat_v[i], inv, theta, inv_tau, height, graded)


@jit
def cuba_forward(x, state_scale, du, dv, bias_scaled, vth_scaled, u0, v0, graded, delay, s_out, last_out,
                 u_out, v_out, out_index):
    """Fused training forward (no norm between current and voltage): both rules per step.

    Same arithmetic as :func:`current_forward` followed by :func:`voltage_forward`
    (and as :func:`fixed_step`), in one pass over memory. ``x`` is the real input;
    the message of step ``t`` goes to ``s_out[:, t + delay]`` (``delay`` is 0, or 1
    for a block's synaptic latency: the caller fills ``s_out[:, 0]``); ``last_out``
    ``(B, K)`` receives the message of the last step. ``v_out`` receives the
    pre-reset voltage and ``u_out`` the current, or is an empty ``(0, 0, 0)`` array
    when not needed. ``u0``/``v0`` are the initial states. ``out_index`` (int array of K, or
    empty) stores the messages in another neuron order: ``s_out[b, t, j]`` receives the message
    of neuron ``out_index[j]`` (the row is permuted while it is in cache; ``last_out`` keeps the
    kernel's order).
    """
    blocks, steps, width = x.shape
    permuted = out_index.size > 0
    inv = 1.0 / state_scale
    # The 24-bit states in int32 rows: narrower loads and stores than int64, about 15 % faster.
    u = np.empty(width, np.int32)
    v = np.empty(width, np.int32)
    # An unkept current is written to a scratch row: no branch (and no masked store into the
    # empty array, which runs 5-20x slower once a fork has made the pages copy-on-write).
    scratch = np.empty(width, u_out.dtype)
    # messages of a step that is not stored as it is (the one past the end, or a permuted row)
    messages = np.empty(width, s_out.dtype)
    for b in range(blocks):
        for k in range(width):
            u[k] = u0[b, k]
            v[k] = v0[b, k]
        for t in range(steps):
            row = t + delay
            u_row = u_out[b, t] if u_out.shape[0] > 0 else scratch
            m_row = s_out[b, row] if row < steps and not permuted else messages
            for k in range(width):
                cur = current_update(u[k], input_to_int(x[b, t, k], state_scale), du[b, k])
                vol = voltage_update(v[k], cur, dv[b, k], bias_scaled[b, k])
                u[k] = cur
                u_row[k] = cur
                v_out[b, t, k] = vol
                message, v[k] = spike_reset(vol, vth_scaled[b, k], graded, inv)
                m_row[k] = message
            if row >= steps:
                for k in range(width):
                    last_out[b, k] = messages[k]
            elif permuted:
                out_row = s_out[b, row]
                for j in range(width):
                    out_row[j] = messages[out_index[j]]
        if delay == 0:
            for k in range(width):
                last_out[b, k] = messages[k] if permuted else s_out[b, steps - 1, k]


# The backward pass walks each sample's steps in chunks of rows, with one call per chunk and phase that
# takes whole arrays and indices: a row view passed to a compiled function costs an atomic reference
# count each way, and per row those counts took a tenth of the pass.


@jit_fma
def _surrogate_rows(grad_s, index, gathered, margin_rec, b, start, end, delay, inv, theta, inv_tau, height,
                    graded, grad_x):
    """``grad_x[b, t] = grad_s[b, t + delay] * surrogate(margin_rec[b, t] * inv - theta)`` for the steps
    ``start <= t < end`` (zero where ``t + delay`` is past the last step), with FMAs (the exponential's
    polynomial bounds the whole backward pass). A nonempty ``index`` reads ``grad_s``'s rows through it
    (``grad_s[b, t, index[k]]``), gathered first into ``gathered`` so that the surrogate loop stays
    vectorised."""
    steps, width = grad_s.shape[1], grad_s.shape[2]
    for t in range(start, end):
        row = t + delay
        if row >= steps:  # the message of step t sits at step t + delay
            for k in range(width):
                grad_x[b, t, k] = 0.0
        elif index.size:
            for k in range(width):
                gathered[k] = grad_s[b, row, index[k]]
            for k in range(width):
                grad_x[b, t, k] = surrogate_gradient(gathered[k], margin_rec[b, t, k], inv, theta, inv_tau,
                                                     height, graded)
        else:
            for k in range(width):
                grad_x[b, t, k] = surrogate_gradient(grad_s[b, row, k], margin_rec[b, t, k], inv, theta,
                                                     inv_tau, height, graded)


@jit
def _previous_rows(state0, state_rec, reset_rec, b, start, end, delay, out):
    """``out[t - start, k]``: the state that step ``t``'s decay acted on (:func:`previous_state` of
    ``state0[b]``, ``state_rec[b, t - 1]`` and the reset marks ``reset_rec[b, t - 1 + delay]``, an empty
    array for a state that never resets), for the steps ``start <= t < end``."""
    width = out.shape[1]
    for t in range(start, end):
        before = max(t - 1, 0)  # at t = 0 the rows of step t - 1 are not read
        if reset_rec.shape[0] > 0:
            for k in range(width):
                out[t - start, k] = previous_state(t, state0[b, k], state_rec[b, before, k],
                                                   reset_rec[b, before + delay, k] != 0)
        else:
            for k in range(width):
                out[t - start, k] = previous_state(t, state0[b, k], state_rec[b, before, k], False)


@jit
def _adjoint_rows(grad_x, grad_u_out, grad_v_out, b, start, end, alpha_u, alpha_v, grad_u, grad_v,
                  want_decay, prev_u, prev_v, acc_u, acc_v):
    """The current's and voltage's adjoint recurrences (:func:`adjoint_step`) over the steps
    ``end > t >= start``, last first: ``grad_x[b, t]`` holds the step's surrogate terms and receives the
    current's gradient; ``grad_u``/``grad_v`` carry the later step's gradients; ``grad_u_out``/
    ``grad_v_out`` add gradients w.r.t. the recorded states (empty when unused). With ``want_decay``,
    ``acc_u``/``acc_v`` accumulate ``-grad * state`` of the states in ``prev_u``/``prev_v`` (rows from
    ``start``). Each loop reads and writes few arrays, so that the compiler vectorises it."""
    width = grad_u.size
    has_gu = grad_u_out.shape[0] > 0
    has_gv = grad_v_out.shape[0] > 0
    for t in range(end - 1, start - 1, -1):
        if has_gu or has_gv:
            for k in range(width):
                g_v = adjoint_step(grad_x[b, t, k], alpha_v[k], grad_v[k])
                if has_gv:
                    g_v += grad_v_out[b, t, k]
                g_u = adjoint_step(g_v, alpha_u[k], grad_u[k])
                if has_gu:
                    g_u += grad_u_out[b, t, k]
                grad_v[k] = g_v
                grad_u[k] = g_u
                grad_x[b, t, k] = g_u
        else:
            for k in range(width):
                g_v = adjoint_step(grad_x[b, t, k], alpha_v[k], grad_v[k])
                g_u = adjoint_step(g_v, alpha_u[k], grad_u[k])
                grad_v[k] = g_v
                grad_u[k] = g_u
                grad_x[b, t, k] = g_u
        if want_decay:
            _decay_sums(grad_u, grad_v, prev_u, prev_v, t - start, acc_u, acc_v)


@jit
def _decay_sums(grad_u, grad_v, states_u, states_v, row, acc_u, acc_v):
    """``acc -= grad * states[row]`` for both states (a function of its own: inlined in its caller's
    loop, the compiler leaves it scalar)."""
    for k in range(acc_u.size):
        acc_u[k] -= grad_u[k] * states_u[row, k]
    for k in range(acc_v.size):
        acc_v[k] -= grad_v[k] * states_v[row, k]


#: Values per chunk of rows in :func:`cuba_backward` (32 KiB of float32 gradients).
_CHUNK_VALUES = 8192


@jit
def cuba_backward(grad_s, grad_u_out, grad_v_out, margin_rec, u_rec, v_rec, reset_rec, u0, v0, du, dv,
                  state_scale, theta, tau_rho, scale_rho, graded, delay, want_decay, grad_x, grad_du,
                  grad_dv, grad_index):
    """Fused adjoint of the current and voltage integrators under a surrogate spike.

    Serves every neuron built on CUBA's two integrators (CUBA, ALIF); arrays are
    ``(B, T, K)`` as for :func:`cuba_forward`, per-neuron ones ``(B, K)``. Per neuron,
    in one backward pass: the surrogate derivative of the spike at
    ``margin_rec / S - theta`` (CUBA: the voltage and the threshold; ALIF:
    ``v - (θ + r)`` and 0), then :func:`integrator_backward` for the voltage and for
    the current (resets ignored, as in lava-dl). ``reset_rec`` marks steps after
    which v was reset (CUBA's spikes), or is an empty ``(0, 0, 0)`` array (ALIF never
    resets v). ``grad_u_out``/``grad_v_out`` are gradients w.r.t. the recorded real
    current and voltage, or empty when unused. With ``delay = 1`` the messages were
    written one step late (see :func:`cuba_forward`): ``grad_s`` and ``reset_rec``
    are read one step later. The decay gradients ``grad_du``/``grad_dv`` (``(B, K)``)
    are written only if ``want_decay``. ``grad_index`` (int array of K, or empty) reads
    ``grad_s`` stored in another neuron order: neuron ``k`` at position ``grad_index[k]`` of a
    row (see ``out_index`` of :func:`cuba_forward`).
    """
    blocks, steps, width = grad_s.shape
    inv = 1.0 / state_scale
    inv_tau = 1.0 / tau_rho
    height = surrogate_height(tau_rho, scale_rho, graded)
    gu = np.empty(width, np.float64)
    gv = np.empty(width, np.float64)
    acc_u = np.empty(width, np.float64)
    acc_v = np.empty(width, np.float64)
    alpha_u = np.empty(width, np.float64)
    alpha_v = np.empty(width, np.float64)
    gathered = np.empty(width, grad_s.dtype)
    # Time runs backwards in chunks of rows: a chunk's surrogate terms (and the states its decays acted
    # on) are computed forwards in memory first (short rows read backwards defeat the hardware
    # prefetcher: 1.7x slower at 256 neurons), then the adjoint recurrences walk the chunk back while it
    # is in cache.
    chunk = max(1, _CHUNK_VALUES // width)
    prev_u = np.empty((chunk if want_decay else 0, width), np.int32)
    prev_v = np.empty_like(prev_u)
    for b in range(blocks):
        for k in range(width):
            gu[k] = 0.0
            gv[k] = 0.0
            acc_u[k] = 0.0
            acc_v[k] = 0.0
            alpha_u[k] = decay_factor(du[b, k])
            alpha_v[k] = decay_factor(dv[b, k])
        end = steps
        while end > 0:
            start = max(0, end - chunk)
            _surrogate_rows(grad_s, grad_index, gathered, margin_rec, b, start, end, delay, inv, theta,
                            inv_tau, height, graded, grad_x)
            if want_decay:
                _previous_rows(u0, u_rec, reset_rec[:0], b, start, end, delay, prev_u)
                _previous_rows(v0, v_rec, reset_rec, b, start, end, delay, prev_v)
            _adjoint_rows(grad_x, grad_u_out, grad_v_out, b, start, end, alpha_u, alpha_v, gu, gv, want_decay,
                          prev_u, prev_v, acc_u, acc_v)
            end = start
        if want_decay:
            for k in range(width):
                grad_du[b, k] = decay_gradient(acc_u[k], state_scale)
                grad_dv[b, k] = decay_gradient(acc_v[k], state_scale)


# The training kernels over several threads, on disjoint blocks of samples (bit-identical to
# one call: see lava_dl.core.parallel). Lava's steps (fixed_step, float_step) stay single-threaded.
current_forward_blocks = Blockwise(current_forward, "x", "du", "u0", "u_out")
voltage_forward_blocks = Blockwise(voltage_forward, "cur", "dv", "bias_scaled", "vth_scaled", "v0", "s_out",
                                   "v_out")
integrator_backward_blocks = Blockwise(integrator_backward, "grad_out", "decay_int", "y_rec", "y0", "spiked",
                                       "grad_in", "grad_decay")
spike_backward_blocks = Blockwise(spike_backward, "grad_s", "v_int", "grad_v")
cuba_forward_blocks = Blockwise(cuba_forward, "x", "du", "dv", "bias_scaled", "vth_scaled", "u0", "v0",
                                "s_out", "last_out", "u_out", "v_out")
cuba_backward_blocks = Blockwise(cuba_backward, "grad_s", "grad_u_out", "grad_v_out", "margin_rec", "u_rec",
                                 "v_rec", "reset_rec", "u0", "v0", "du", "dv", "grad_x", "grad_du", "grad_dv")
