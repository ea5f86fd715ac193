"""Sigma-delta neurons (lava-nc ``Delta`` / ``SigmaDelta`` / ``Sigma``), as Lava computes them.

Three neuron families share one set of scalar rules:

* :data:`DELTA` -- the network input encoder (lava-nc ``Delta``). ``a_in`` is the
  raw integer input (the real input times 64)::

      x = a_in << (spike_exp + state_exp)
      Δ = x - act + residue;  act = x

* :data:`SIGMA_DELTA` -- a hidden sigma-delta neuron (lava-nc ``SigmaDelta``)::

      σ   = σ + a_in
      act = relu(σ + (bias << (spike_exp + state_exp)))     (act_mode 1; 0: identity)
      Δ   = act_new - act_prev + residue

* :data:`SIGMA` -- the output integrator (lava-nc ``Sigma``): ``σ = σ + a_in``,
  ``s_out = σ``.

Delta encoding (both encoders), with ``vth_s = vth << (spike_exp + state_exp)``::

    cum_error = 0:  fire = |Δ| >= vth_s
    cum_error = 1:  error += Δ;  fire = |error| >= vth_s;  error = 0 where a nonzero Δ is sent
    msg = Δ if fire else 0;  residue = Δ - msg
    s_out = msg >> state_exp                                 (arithmetic shift: floor)

All arithmetic wraps like lava-nc's int32 numpy arrays (Lava does not enforce
the 24-bit state width of Loihi for these models).

Real <-> integer mapping (``e = spike_exp``; slayer ``scale`` must be 64)
-----------------------------------------------------------------------
=====================================  ========================
quantity                               integer = real x
=====================================  ========================
``Delta`` input ``a_in``               ``2^6``  (trunc)
graded message ``s_out`` of Delta/SD   ``2^(6+e)``  (4096 for e = 6)
synaptic sum ``a_in`` of SD / Sigma    ``2^(12+e)`` (= 8-bit weight ``w*64`` x message)
σ, act, Δ, residue, error, Sigma out   ``2^(12+e)``
``vth_s`` / ``bias_s``                 ``2^(12+e)`` (``vThMant = θ*64``, ``bias = b*64``)
=====================================  ========================

The training kernels below work on these integers over ``(B, T, K)`` arrays (time
in the middle, neurons innermost: see :class:`lava_dl.slayer.neuron.dynamics.BlockLayout`)
and use the same scalar helpers as the Lava per-step kernels.
"""

from __future__ import annotations

import numpy as np

from lava_dl.core.cuba import all_zero
from lava_dl.core.fixed_point import STATE_EXP, any_nonzero, inline, jit, jit_fma
from lava_dl.core.parallel import Blockwise
from lava_dl.core.spec import SETTLED_BUSY, SETTLED_IDLE, SETTLED_QUIET, NeuronSpec, Param, State
from lava_dl.core.vector_math import exp_nonpositive

#: ``act_mode`` values (lava-nc ``ActivationMode``).
ACT_UNIT = 0
ACT_RELU = 1
#: Default graded-message fractional bits (netx ``spike_exp``) and state bits.
SPIKE_EXP = 6
#: Bits of the integer input of the Delta encoder (its input unit is 2^6).
INPUT_EXP = STATE_EXP

_I32_OFFSET = 1 << 31
_I32_MASK = (1 << 32) - 1


# --------------------------------------------------------------------------
# Scalar rules (int64 in, int64 out), shared by the Lava step and training kernels.
# --------------------------------------------------------------------------


@inline
def wrap32(x):
    """Two's-complement wrap into int32 (what lava-nc's int32 numpy arithmetic does)."""
    return ((x + _I32_OFFSET) & _I32_MASK) - _I32_OFFSET


@inline
def abs32(x):
    """``np.abs`` of an int32 value (``abs(-2^31)`` stays ``-2^31``)."""
    return wrap32(-x) if x < 0 else x


@inline
def sigma_update(sigma, a_in):
    """Sigma dendrite: ``σ + a_in``."""
    return wrap32(sigma + a_in)


@inline
def activation(sigma, bias_s, act_mode):
    """Activation of ``σ + bias_s``: identity (``act_mode`` 0) or ReLU (1)."""
    pre = wrap32(sigma + bias_s)
    if act_mode != ACT_UNIT and pre < 0:
        return 0
    return pre


@inline
def delta_encode(act_new, act_prev, residue, error, vth_s, cum_error):
    """Delta encoder; returns ``(delta, msg_scaled, residue, error)``."""
    delta = wrap32(wrap32(act_new - act_prev) + residue)
    if cum_error != 0:
        error = wrap32(error + delta)
        fire = abs32(error) >= vth_s
    else:
        fire = abs32(delta) >= vth_s
    msg = delta if fire else 0
    if cum_error != 0 and abs32(msg) > 0:
        error = 0
    return delta, msg, wrap32(delta - msg), error


@inline
def scaled(value, exps):
    """``value << exps`` with int32 wrap."""
    return wrap32(value << exps)


# --------------------------------------------------------------------------
# Lava per-step kernels: fixed_step(*states, a_in, *params, s_out), flat arrays.
# --------------------------------------------------------------------------


@inline
def _cum_error_at(cum_error, i, cum_off):
    """``cum_error[i]``, or the constant 0 in the loop a kernel runs when no neuron has ``cum_error``
    (the branches of :func:`delta_encode` then fold away and the loop vectorises better)."""
    return np.int64(0) if cum_off else np.int64(cum_error[i])


@inline
def _delta_loop(act, residue, error, a_in, vth, cum_error, spike_exp, state_exp, s_out, cum_off):
    for i in range(act.shape[0]):
        e = spike_exp[i] + state_exp[i]
        x = scaled(np.int64(a_in[i]), e)
        _, msg, res, err = delta_encode(
            x, np.int64(act[i]), np.int64(residue[i]), np.int64(error[i]), np.int64(vth[i]) << e,
            _cum_error_at(cum_error, i, cum_off)
        )
        act[i], residue[i], error[i] = x, res, err
        s_out[i] = msg >> state_exp[i]


#: Neurons the settled step kernels test at once for a quiet block: one whose step would change no
#: state and send nothing, and which is skipped (what a sigma-delta network does most of the time
#: on slowly changing input).
QUIET_BLOCK = 256


@inline
def _delta_run(act, residue, error, a_in, vth, cum_error, spike_exp, state_exp, s_out, cum_off):
    """:func:`_delta_loop` with the run-time ``cum_off`` made a constant of each of its two loops."""
    if cum_off:
        _delta_loop(act, residue, error, a_in, vth, cum_error, spike_exp, state_exp, s_out, True)
    else:
        _delta_loop(act, residue, error, a_in, vth, cum_error, spike_exp, state_exp, s_out, False)


@jit
def delta_fixed_step(act, residue, error, a_in, vth, cum_error, spike_exp, state_exp, s_out):
    """One step of lava-nc ``PyDeltaModelFixed`` for all neurons, in place."""
    _delta_run(act, residue, error, a_in, vth, cum_error, spike_exp, state_exp, s_out, all_zero(cum_error))


@jit
def delta_settled_step(act, residue, error, a_in, vth, cum_error, spike_exp, state_exp, s_out):
    """:func:`delta_fixed_step` for settled neurons (see ``NeuronSpec.settled_step``).

    A neuron whose input equals the last one has Δ = residue: as in
    :func:`sigma_delta_settled_step`, its step changes nothing and sends 0 (with ``cum_error``, only
    if the residue is 0). Blocks of :data:`QUIET_BLOCK` such neurons are skipped. Returns
    ``SETTLED_BUSY`` if a block was stepped, ``SETTLED_QUIET`` if not but a skipped neuron holds a
    nonzero input (zero input would be a change), else ``SETTLED_IDLE``.
    """
    cum_off = all_zero(cum_error)
    n = act.shape[0]
    stepped = False
    live_skipped = False
    for start in range(0, n, QUIET_BLOCK):
        stop = min(start + QUIET_BLOCK, n)
        act_b, res_b, in_b, out_b = act[start:stop], residue[start:stop], a_in[start:stop], s_out[start:stop]
        spike_b, state_b = spike_exp[start:stop], state_exp[start:stop]
        changed = 0
        live = 0
        for i in range(stop - start):
            changed += scaled(np.int64(in_b[i]), spike_b[i] + state_b[i]) != act_b[i]
            live += act_b[i] != 0
        if changed == 0 and (cum_off or not any_nonzero(res_b, 0, stop - start)):
            out_b[:] = 0
            live_skipped |= live > 0
            continue
        stepped = True
        err_b, vth_b, cum_b = error[start:stop], vth[start:stop], cum_error[start:stop]
        _delta_run(act_b, res_b, err_b, in_b, vth_b, cum_b, spike_b, state_b, out_b, cum_off)
    return SETTLED_BUSY if stepped else SETTLED_QUIET if live_skipped else SETTLED_IDLE


@jit
def delta_float_step(act, residue, error, a_in, vth, cum_error, spike_exp, state_exp, s_out):
    """One step of lava-nc ``PyDeltaModelFloat`` (no shifts; ``vth`` scaled as its Process does)."""
    for i in range(act.shape[0]):
        x = a_in[i]
        vth_s = vth[i] * 2.0 ** (spike_exp[i] + state_exp[i])
        delta = x - act[i] + residue[i]
        if cum_error[i] != 0:
            error[i] += delta
            fire = abs(error[i]) >= vth_s
        else:
            fire = abs(delta) >= vth_s
        msg = delta if fire else 0.0
        if cum_error[i] != 0 and msg != 0:
            error[i] = 0.0
        residue[i] = delta - msg
        act[i] = x
        s_out[i] = msg


@inline
def _sigma_delta_loop(
    sigma, act, residue, error, a_in, vth, bias, act_mode, cum_error, spike_exp, state_exp, s_out, cum_off
):
    for i in range(sigma.shape[0]):
        e = spike_exp[i] + state_exp[i]
        sig = sigma_update(np.int64(sigma[i]), np.int64(a_in[i]))
        new = activation(sig, scaled(np.int64(bias[i]), e), act_mode[i])
        _, msg, res, err = delta_encode(
            new,
            np.int64(act[i]),
            np.int64(residue[i]),
            np.int64(error[i]),
            np.int64(vth[i]) << e,
            _cum_error_at(cum_error, i, cum_off),
        )
        sigma[i], act[i], residue[i], error[i] = sig, new, res, err
        s_out[i] = msg >> state_exp[i]


@inline
def _sigma_delta_run(
    sigma, act, residue, error, a_in, vth, bias, act_mode, cum_error, spike_exp, state_exp, s_out, cum_off
):
    """:func:`_sigma_delta_loop` with the run-time ``cum_off`` made a constant of each of its two loops."""
    if cum_off:
        _sigma_delta_loop(sigma, act, residue, error, a_in, vth, bias, act_mode, cum_error, spike_exp,
                          state_exp, s_out, True)
    else:
        _sigma_delta_loop(sigma, act, residue, error, a_in, vth, bias, act_mode, cum_error, spike_exp,
                          state_exp, s_out, False)


@jit
def sigma_delta_fixed_step(
    sigma, act, residue, error, a_in, vth, bias, act_mode, cum_error, spike_exp, state_exp, s_out
):
    """One step of lava-nc ``PySigmaDeltaModelFixed`` for all neurons, in place."""
    _sigma_delta_run(sigma, act, residue, error, a_in, vth, bias, act_mode, cum_error, spike_exp, state_exp,
                     s_out, all_zero(cum_error))


@jit
def sigma_delta_settled_step(
    sigma, act, residue, error, a_in, vth, bias, act_mode, cum_error, spike_exp, state_exp, s_out
):
    """:func:`sigma_delta_fixed_step` for settled neurons: each ``act`` the activation of its σ with
    the current parameters, as after any step (see ``NeuronSpec.settled_step``).

    For a settled neuron without input, Δ = residue. Without ``cum_error``, the last step left
    ``|residue| < vth_s`` (or 0 where it fired), so nothing fires and the step changes nothing; with
    ``cum_error``, ``error`` would grow by the residue, so only a zero residue makes the step a
    no-op. Blocks of :data:`QUIET_BLOCK` such neurons are skipped after a test of one array (two
    with ``cum_error``) instead of a pass over all twelve; they send 0. Returns ``SETTLED_BUSY`` if a
    block was stepped, else ``SETTLED_IDLE`` (the skipped blocks had no input).
    """
    cum_off = all_zero(cum_error)
    n = sigma.shape[0]
    stepped = False
    for start in range(0, n, QUIET_BLOCK):
        stop = min(start + QUIET_BLOCK, n)
        in_b, res_b, out_b = a_in[start:stop], residue[start:stop], s_out[start:stop]
        if not (any_nonzero(in_b, 0, stop - start) or (not cum_off and any_nonzero(res_b, 0, stop - start))):
            out_b[:] = 0
            continue
        sig_b, act_b, err_b, vth_b = sigma[start:stop], act[start:stop], error[start:stop], vth[start:stop]
        bias_b, mode_b, cum_b = bias[start:stop], act_mode[start:stop], cum_error[start:stop]
        spike_b, state_b = spike_exp[start:stop], state_exp[start:stop]
        _sigma_delta_run(sig_b, act_b, res_b, err_b, in_b, vth_b, bias_b, mode_b, cum_b, spike_b, state_b,
                         out_b, cum_off)
        stepped = True
    return SETTLED_BUSY if stepped else SETTLED_IDLE


@jit
def sigma_delta_float_step(
    sigma, act, residue, error, a_in, vth, bias, act_mode, cum_error, spike_exp, state_exp, s_out
):
    """One step of lava-nc ``PySigmaDeltaModelFloat`` (no shifts; vth, bias scaled as its Process does)."""
    for i in range(sigma.shape[0]):
        unit = 2.0 ** (spike_exp[i] + state_exp[i])
        sig = sigma[i] + a_in[i]
        new = sig + bias[i] * unit
        if act_mode[i] != ACT_UNIT:
            new = max(new, 0.0)
        delta = new - act[i] + residue[i]
        if cum_error[i] != 0:
            error[i] += delta
            fire = abs(error[i]) >= vth[i] * unit
        else:
            fire = abs(delta) >= vth[i] * unit
        msg = delta if fire else 0.0
        if cum_error[i] != 0 and msg != 0:
            error[i] = 0.0
        sigma[i], act[i], residue[i] = sig, new, delta - msg
        s_out[i] = msg


@jit
def sigma_fixed_step(sigma, a_in, s_out):
    """One step of lava-nc ``PySigmaModelFixed``: ``σ += a_in``, send ``σ``."""
    for i in range(sigma.shape[0]):
        sig = sigma_update(np.int64(sigma[i]), np.int64(a_in[i]))
        sigma[i] = sig
        s_out[i] = sig


@jit
def sigma_float_step(sigma, a_in, s_out):
    """One step of lava-nc ``PySigmaModelFloat``."""
    for i in range(sigma.shape[0]):
        sigma[i] += a_in[i]
        s_out[i] = sigma[i]


_VTH = Param(
    "vth",
    "vThMant",
    0,
    (1 << 17) - 1,
    10,
    "delta threshold mantissa, effective vth << (spike_exp + state_exp)",
)
#: hdf5 ``neuron/cumError`` is this package's field (lava-dl 0.6 stores no cum_error and deploys
#: it off): written only when set, absent means 0.
_CUM = Param("cum_error", "cumError", 0, 1, 0, "1: fire on the accumulated error (lava-nc cum_error)",
             required=False)
_SPIKE_EXP = Param("spike_exp", None, 0, 7, SPIKE_EXP, "fractional bits of the graded message")
_STATE_EXP = Param("state_exp", None, 0, 7, STATE_EXP, "extra fractional bits of the states")
_ENCODER_STATES = (
    State("act", "previous activation (encoded value)", "wrap"),
    State("residue", "part of the last delta not sent", "wrap"),
    State("error", "accumulated error (cum_error only)", "wrap"),
)

DELTA = NeuronSpec(
    name="Delta",
    hdf5_type="SDNN",
    doc="Sigma-delta input encoder (lava-nc Delta): sends thresholded changes of its integer input.",
    params=(_VTH, _CUM, _SPIKE_EXP, _STATE_EXP),
    states=_ENCODER_STATES,
    fixed_step=delta_fixed_step,
    settled_step=delta_settled_step,
    float_step=delta_float_step,
    in_message_bits=24,
    out_message_bits=24,
    deploy_constants={"state_exp": STATE_EXP},
    extra={"hdf5_role": "input", "graded_spike": True, "wire_message_bits": 16, "slayer_delay_shift": False,
           "message_exp_offset": STATE_EXP},
)

SIGMA_DELTA = NeuronSpec(
    name="SigmaDelta",
    hdf5_type="SDNN",
    doc="Sigma-delta neuron (lava-nc SigmaDelta): integrates graded input, applies identity/ReLU, "
    "sends thresholded changes.",
    params=(
        _VTH,
        Param(
            "bias",
            None,
            -(1 << 16),
            (1 << 16) - 1,
            0,
            "bias mantissa, effective bias << (spike_exp + state_exp)",
        ),
        Param("act_mode", None, 0, 1, ACT_RELU, "activation: 0 identity (UNIT), 1 ReLU"),
        _CUM,
        _SPIKE_EXP,
        _STATE_EXP,
    ),
    states=(State("sigma", "integrated input", "wrap"),) + _ENCODER_STATES,
    fixed_step=sigma_delta_fixed_step,
    settled_step=sigma_delta_settled_step,
    float_step=sigma_delta_float_step,
    in_message_bits=24,
    out_message_bits=24,
    bias_param="bias",
    deploy_constants={"state_exp": STATE_EXP},
    extra={
        "hdf5_role": "hidden",
        "graded_spike": True,
        "wire_message_bits": 16,
        "hdf5_enums": {
            "activation": ("act_mode", {"identity": ACT_UNIT, "unit": ACT_UNIT, "relu": ACT_RELU}),
        },
        "slayer_delay_shift": False,
        "message_exp_offset": STATE_EXP,
        "input_exp_offset": STATE_EXP,
    },
)

SIGMA = NeuronSpec(
    name="Sigma",
    hdf5_type="SDNN",
    doc="Sigma output integrator (lava-nc Sigma): sends the running sum of its input.",
    params=(),
    states=(State("sigma", "integrated input", "wrap"),),
    fixed_step=sigma_fixed_step,
    float_step=sigma_float_step,
    in_message_bits=24,
    out_message_bits=24,
    extra={"hdf5_role": "output", "graded_spike": True, "hdf5_marker": "sigma_output",
           "slayer_delay_shift": False, "message_exp_offset": 2 * STATE_EXP, "input_exp_offset": STATE_EXP},
)


# --------------------------------------------------------------------------
# Training kernels on ``(B, T, K)`` arrays: B independent blocks of K neurons,
# time in the middle, integers in Lava's units. A batch of (N, C, ..., T)
# activations is (N, T, C*...) when stored time-major (what the synapses
# produce: read in place) or (N*C*..., T, 1) when stored time-last. Per-neuron
# parameters and states are (B, K) arrays; all arrays are C-contiguous. Blocks
# loop over K innermost (the compiler vectorises across neurons); single-neuron
# blocks (K = 1, time-last rows) run as ``(rows, T)`` arrays, time innermost,
# with each neuron's states in registers.
# --------------------------------------------------------------------------


#: Input modes of :func:`fused_forward`: the input is σ already (normalised), is
#: integrated into σ, or is a Delta encoder's input shifted by ``spike_exp + state_exp``.
MODE_PLAIN = 0
MODE_SIGMA = 1
MODE_SHIFT = 2


@jit
def sigma_forward_real(x, in_unit, out_scale, sigma_state, sigma_out):
    """The σ integrator (:func:`sigma_update`) over time, reading the real input and writing the real σ.

    Parameters
    ----------
    x : float array (B, T, K)
        Real synaptic input; the integer input is ``trunc(x * in_unit)``.
    in_unit : float
        Integer units per real unit of ``x`` (a power of two).
    out_scale : float
        ``sigma_out`` receives ``σ * out_scale`` (``1 / in_unit`` for real units).
    sigma_state : int64 array (B, K)
        Initial σ; holds the final σ on return.
    sigma_out : float array (B, T, K)
        Receives the scaled σ after every step, rounded once to its dtype.
    """
    blocks, steps, width = x.shape
    sig = np.empty(width, np.int64)
    for b in range(blocks):
        sig[:] = sigma_state[b]
        for t in range(steps):
            for k in range(width):
                value = sigma_update(sig[k], np.int64(x[b, t, k] * in_unit))
                sig[k] = value
                sigma_out[b, t, k] = np.float64(value) * out_scale
        sigma_state[b] = sig


@jit
def sigma_backward_real(grad_out, grad_in):
    """Adjoint of :func:`sigma_forward_real`: a reverse cumulative sum over time, accumulated in float64.

    Parameters
    ----------
    grad_out : float array (B, T, K)
        Gradient with respect to the real σ.
    grad_in : float array (B, T, K)
        Receives the gradient with respect to the real input, rounded once to its dtype.
    """
    blocks, steps, width = grad_out.shape
    acc = np.empty(width, np.float64)
    for b in range(blocks):
        acc[:] = 0.0
        for t in range(steps - 1, -1, -1):
            for k in range(width):
                acc[k] += np.float64(grad_out[b, t, k])
                grad_in[b, t, k] = acc[k]


@inline
def encode_step(value, in_unit, mode, shift, bias, vth, act_mode, cum_error, state_exp, out_scale, sigma,
                prev, residue, error):
    """One step of :func:`fused_forward` for one neuron.

    Returns ``(sigma, act, residue, error, mask, delta, y)``: the new states, the ReLU
    gradient mask ``pre > 0``, Δ, and the scaled output message.
    """
    a = np.int64(value * in_unit)
    if mode == MODE_SIGMA:
        sigma = sigma_update(sigma, a)
        val = sigma
    elif mode == MODE_SHIFT:
        val = scaled(a, shift)
    else:
        val = a
    act = activation(val, bias, act_mode)
    delta, msg, residue, error = delta_encode(act, prev, residue, error, vth, cum_error)
    return sigma, act, residue, error, wrap32(val + bias) > 0, delta, np.float64(msg >> state_exp) * out_scale


@jit
def fused_forward(
    x,
    in_unit,
    mode,
    shift,
    bias_s,
    vth_s,
    act_mode,
    cum_error,
    state_exp,
    out_scale,
    sigma_state,
    act_state,
    residue_state,
    error_state,
    y_out,
    mask_out,
    delta_out,
):
    """Input conversion, (sigma,) activation and delta encoding in one pass over time.

    Same integers as ``trunc(x * in_unit)``, then the σ integrator (``mode``
    :data:`MODE_SIGMA`) or the Delta shift (:data:`MODE_SHIFT`), then the activation and
    the delta encoder: the scalar rules of the Lava steps. Arrays are C-contiguous
    ``(B, T, K)`` arrays (see :func:`lava_dl.core.cuba.cuba_forward`) and per-neuron
    arrays ``(B, K)``.

    Parameters
    ----------
    x : float array (B, T, K)
        Real input (synaptic sum, encoder input, or normalised σ).
    in_unit : float
        Integer units per real unit of ``x``.
    mode : int
        :data:`MODE_PLAIN`, :data:`MODE_SIGMA` or :data:`MODE_SHIFT`.
    shift : int
        Left shift of :data:`MODE_SHIFT` (``spike_exp + state_exp``).
    bias_s, vth_s : int64 array (B, K)
        Scaled bias and threshold.
    act_mode, cum_error, state_exp : int
        As in :data:`SIGMA_DELTA`.
    out_scale : float
        ``y_out`` receives ``(msg >> state_exp) * out_scale``.
    sigma_state : int64 array (B, K)
        Initial σ (:data:`MODE_SIGMA` only); holds the final σ on return.
    act_state, residue_state, error_state : int64 array (B, K)
        Initial encoder states; hold the final states on return.
    y_out : float array (B, T, K)
        Real output messages, rounded once to its dtype.
    mask_out : uint8 array (B, T, K), or empty
        ``pre > 0`` (the ReLU gradient mask); empty (first dimension 0) when not needed.
    delta_out : int32 array (B, T, K), or empty
        Δ (for the threshold gradient); empty (first dimension 0) when not needed.
    """
    blocks, steps, width = x.shape
    # unkept records go to scratch rows: no branch and no masked store into an empty array
    # (which runs 5-20x slower once a fork has made the pages copy-on-write)
    mask_scratch = np.empty(width, mask_out.dtype)
    delta_scratch = np.empty(width, delta_out.dtype)
    sig = np.empty(width, np.int64)
    prev = np.empty(width, np.int64)
    res = np.empty(width, np.int64)
    err = np.empty(width, np.int64)
    for b in range(blocks):
        sig[:] = sigma_state[b]
        prev[:] = act_state[b]
        res[:] = residue_state[b]
        err[:] = error_state[b]
        for t in range(steps):
            mask_row = mask_out[b, t] if mask_out.shape[0] > 0 else mask_scratch
            delta_row = delta_out[b, t] if delta_out.shape[0] > 0 else delta_scratch
            for k in range(width):
                sig[k], prev[k], res[k], err[k], mask_row[k], delta_row[k], y_out[b, t, k] = encode_step(
                    x[b, t, k], in_unit, mode, shift, bias_s[b, k], vth_s[b, k], act_mode, cum_error,
                    state_exp, out_scale, sig[k], prev[k], res[k], err[k],
                )
        sigma_state[b] = sig
        act_state[b] = prev
        residue_state[b] = res
        error_state[b] = err


@inline
def delta_adjoint(g, g_next, masked, integrate, acc):
    """One step of the delta encoder's (and σ integrator's) adjoint, backwards in time.

    ``g - g_next`` (the straight-through delta), zeroed where ``masked`` (ReLU off),
    then added to the running reverse sum ``acc`` if ``integrate``. Returns
    ``(gradient of the input, new acc)``.
    """
    ga = 0.0 if masked else g - g_next
    if integrate:
        acc += ga
        return acc, acc
    return ga, acc


@inline
def threshold_gradient(delta, theta, inv_theta, inv_tau, scale_grad):
    """lava-dl's ``∂y/∂θ`` of the delta encoder for the real ``delta`` and threshold ``theta``.

    ``-delta * scale_grad * exp(-(|delta| - theta) / tau_grad) / theta`` above the
    threshold, ``-sign(delta)`` below; ``inv_theta = 1 / theta`` and ``inv_tau =
    1 / tau_grad`` are precomputed. Branch-free and without divisions, so that a loop
    of it vectorises (:func:`~lava_dl.core.vector_math.exp_nonpositive`).
    """
    sub = abs(delta) - theta
    relaxed = delta * scale_grad * exp_nonpositive(min(-sub, 0.0) * inv_tau) * inv_theta
    sign = np.float64(delta > 0) - np.float64(delta < 0)
    return -(relaxed if sub > 0 else sign)


@jit
def fused_backward(
    grad_out,
    mask_rec,
    delta_rec,
    integrate,
    unit,
    theta,
    tau_grad,
    scale_grad,
    grad_in,
    grad_theta,
):
    """Adjoint of :func:`fused_forward`: the delta encoder's, then the σ integrator's if ``integrate``.

    Per neuron, backwards in time (:func:`delta_adjoint`): ``g[t] - g[t+1]``
    (straight-through delta), the ReLU mask, and for ``integrate`` the reverse
    cumulative sum; arithmetic in float64 (``grad_in`` rounded once to its dtype).
    The threshold gradient is lava-dl's relaxation of the delta threshold
    (:func:`threshold_gradient`), summed backwards in time.

    Parameters
    ----------
    grad_out : float array (B, T, K)
        Gradient with respect to the real output messages.
    mask_rec : uint8 array (B, T, K), or empty
        The forward's ReLU mask; empty for the identity activation.
    delta_rec : int32 array (B, T, K), or empty
        The forward's Δ; empty when no threshold gradient is wanted.
    integrate : bool
        Also take the adjoint of the σ integrator (:data:`MODE_SIGMA`).
    unit : float
        Integer units per real unit of Δ.
    theta : float64 array (B, K), or empty
        Real threshold per neuron (empty with ``delta_rec``).
    tau_grad, scale_grad : float
        Width and height of the threshold relaxation.
    grad_in : float array (B, T, K)
        Receives the gradient with respect to the real input.
    grad_theta : float64 array (B, K)
        Receives the threshold gradient per neuron; untouched when ``delta_rec`` is empty.
    """
    blocks, steps, width = grad_out.shape
    relu = mask_rec.shape[0] > 0
    nxt = np.empty(width, np.float64)
    acc = np.empty(width, np.float64)
    for b in range(blocks):
        nxt[:] = 0.0
        acc[:] = 0.0
        for t in range(steps - 1, -1, -1):
            for k in range(width):
                g = np.float64(grad_out[b, t, k])
                masked = relu and mask_rec[b, t, k] == 0
                grad_in[b, t, k], acc[k] = delta_adjoint(g, nxt[k], masked, integrate, acc[k])
                nxt[k] = g
    if delta_rec.shape[0] == 0:
        return
    _threshold_gradients(grad_out, delta_rec, unit, theta, tau_grad, scale_grad, grad_theta)


@jit_fma
def _threshold_gradients(grad_out, delta_rec, unit, theta, tau_grad, scale_grad, grad_theta):
    """The threshold gradient of :func:`fused_backward`, in a loop of its own (it vectorises only without
    the delta adjoint; with FMAs: the exponential's polynomial bounds it)."""
    blocks, steps, width = grad_out.shape
    inv = 1.0 / unit
    inv_tau = 1.0 / tau_grad
    gth = np.empty(width, np.float64)
    inv_th = np.empty(width, np.float64)
    for b in range(blocks):
        gth[:] = 0.0
        for k in range(width):
            inv_th[k] = 1.0 / theta[b, k]
        for t in range(steps - 1, -1, -1):
            for k in range(width):
                d = delta_rec[b, t, k] * inv
                slope = threshold_gradient(d, theta[b, k], inv_th[k], inv_tau, scale_grad)
                gth[k] += slope * np.float64(grad_out[b, t, k])
        grad_theta[b] = gth


# The training kernels over several threads, on disjoint blocks of samples (bit-identical to one
# call: see lava_dl.core.parallel). Lava's steps stay single-threaded.
sigma_forward_real_blocks = Blockwise(sigma_forward_real, "x", "sigma_state", "sigma_out")
sigma_backward_real_blocks = Blockwise(sigma_backward_real, "grad_out", "grad_in")
fused_forward_blocks = Blockwise(fused_forward, "x", "bias_s", "vth_s", "sigma_state", "act_state",
                                 "residue_state", "error_state", "y_out", "mask_out", "delta_out")
fused_backward_blocks = Blockwise(fused_backward, "grad_out", "mask_rec", "delta_rec", "theta", "grad_in",
                                  "grad_theta")
