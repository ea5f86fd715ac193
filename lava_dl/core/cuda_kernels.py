"""CUDA training kernels compiled from the same scalar rule functions as the CPU kernels.

Requires the optional ``numba-cuda`` package (``pip install lava_dl[cuda]``); this
module imports :mod:`numba.cuda` and is imported only when a CUDA tensor (or the CUDA
simulator) asks for it. With ``NUMBA_ENABLE_CUDASIM=1`` set before the first import of
:mod:`numba.cuda`, the kernels run in numba's CUDA simulator on numpy arrays (CI).

How one definition serves both targets
--------------------------------------
The update rules (:func:`lava_dl.core.cuba.current_update`, :func:`~lava_dl.core.cuba.voltage_update`,
:func:`~lava_dl.core.cuba.spike_reset`, :func:`~lava_dl.core.cuba.state_to_int`;
ALIF's :func:`lava_dl.core.alif.alif_update`; sigma-delta's
:func:`lava_dl.core.sigma_delta.encode_step`, :func:`~lava_dl.core.sigma_delta.delta_adjoint` and
:func:`~lava_dl.core.sigma_delta.threshold_gradient`; the resonators'
:func:`lava_dl.core.resonator.neuron_update` and the adjoint rules next to it; the axonal delays'
:func:`lava_dl.core.delay.source_step`, :func:`~lava_dl.core.delay.in_sequence` and
:func:`~lava_dl.core.delay.delay_gradient_term`), the input conversion
(:func:`lava_dl.core.fixed_point.input_to_int`), the surrogate and the adjoint steps
(:func:`~lava_dl.core.cuba.surrogate_gradient`, :func:`~lava_dl.core.cuba.adjoint_step`,
:func:`~lava_dl.core.cuba.previous_state`, ...) stay what
they are: ``numba.njit(inline='always')`` functions. numba-cuda's typing context resolves a
CPU ``Dispatcher`` met inside a ``@cuda.jit`` kernel as a CUDA *device function*: it builds a
``CUDADispatcher`` from the same Python function (``py_func``) with the CPU dispatcher's
target options plus ``device=True`` (so ``inline='always'`` inlines it at Numba-IR level there
too), and caches it on the CPU dispatcher. The CUDA kernels below therefore call the very
functions that the CPU kernels and Lava's ProcessModels call, and the CPU kernels' compiled
code is untouched.

Alternatives considered: ``numba.extending.register_jitable`` (also callable from both
targets) would have meant changing the ``inline`` decorator of every rule function, i.e.
recompiling the CPU kernels under a different inlining path, for no gain; ``@overload`` per
target would be a second definition. The one helper that is not plain Python,
:func:`lava_dl.core.vector_math.exp_nonpositive`'s bit-cast ``@intrinsic``, lowers with
llvmlite's IR builder, which the CUDA target shares: it compiles to PTX as it is
(:func:`compile_ptx`, tested when libNVVM is installed).

Layout and numerics
-------------------
Arrays are the CPU kernels' ``(B, T, K)`` (time in the middle, neurons innermost) and
``(B, K)`` per neuron. One thread per ``(sample, neuron)``, the time loop inside: the threads
of a warp read and write consecutive neurons of one step (coalesced). Integer states,
spikes and messages are bit for bit the CPU kernels' (integer arithmetic; the only float
operations of the forward pass are single multiplications, exactly rounded on both). The
backward pass computes in float64 like the CPU kernel; the GPU compiler may contract a
multiply and an add into one FMA (NVVM's default), so gradients agree to float rounding
(float64 differences, far below the float32 the gradients are stored in). The axonal-delay
shift is a pure move of values (exact, any dtype); its adjoint (:func:`_shift_rows_adjoint`)
runs one thread per value of a step row over all samples, so that each value's delay-gradient
sum is the CPU kernel's, in the CPU kernel's order.
"""

from __future__ import annotations

import numpy as np
from numba import config, cuda

from lava_dl.core.alif import alif_update
from lava_dl.core.cuba import (
    adjoint_step,
    current_update,
    decay_factor,
    decay_gradient,
    previous_state,
    previous_states,
    spike_reset,
    state_to_int,
    surrogate_gradient,
    surrogate_height,
    voltage_update,
)
from lava_dl.core.delay import delay_gradient_term, in_sequence, source_step
from lava_dl.core.fixed_point import DECAY_UNITY, graded_message, input_to_int
from lava_dl.core.resonator import (
    ADRF_CODE,
    ADRF_IZ_CODE,
    RF_IZ_CODE,
    carried_state,
    iz_spike_terms,
    neuron_update,
    phase_spike_terms,
    record_margin,
    rotation_adjoint,
    rotation_decay_gradient,
    rotation_decay_terms,
    spike_message,
    threshold_record,
)
from lava_dl.core.sigma_delta import delta_adjoint, encode_step, sigma_update, threshold_gradient

#: Threads per block along the neurons (a multiple of the warp size).
THREADS = 128
#: Most blocks along the samples axis of the grid (CUDA's limit on ``gridDim.y``).
MAX_GRID_Y = 65535

#: Whether the kernels run in numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``).
SIMULATOR = bool(config.ENABLE_CUDASIM)


def launch_config(blocks: int, width: int) -> tuple[tuple[int, int], int]:
    """Grid and block size for ``blocks`` samples of ``width`` neurons: ``((gx, gy), threads)``."""
    threads = THREADS if width >= THREADS else max(32, -(-width // 32) * 32)
    return (max(1, -(-width // threads)), max(1, min(blocks, MAX_GRID_Y))), threads


def _cuba_forward(x, state_scale, du, dv, bias_scaled, vth_scaled, u0, v0, graded, delay, s_out, last_out,
                  u_out, v_out):
    """CUDA counterpart of :func:`lava_dl.core.cuba.cuba_forward` (no ``out_index``).

    Thread ``(b, k)`` runs neuron ``k`` of sample ``b`` through all steps: ``current_update``,
    ``voltage_update`` and ``spike_reset`` per step. The message of step ``t`` goes to
    ``s_out[b, t + delay, k]`` (the caller fills ``s_out[:, 0]`` when ``delay`` is 1);
    ``last_out[b, k]`` receives the message of the last step. ``u_out`` is ``(0, 0, 0)`` when
    the current is not kept; ``v_out`` receives the pre-reset voltage.
    """
    blocks, steps, width = x.shape
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if k >= width:
        return
    keep_u = u_out.shape[0] > 0
    inv = 1.0 / state_scale
    for b in range(cuda.blockIdx.y, blocks, cuda.gridDim.y):
        u = np.int64(u0[b, k])
        v = np.int64(v0[b, k])
        d_u = du[b, k]
        d_v = dv[b, k]
        bias = bias_scaled[b, k]
        vth = vth_scaled[b, k]
        message = 0.0
        for t in range(steps):
            cur = current_update(u, input_to_int(x[b, t, k], state_scale), d_u)
            vol = voltage_update(v, cur, d_v, bias)
            u = cur
            if keep_u:
                u_out[b, t, k] = cur
            v_out[b, t, k] = vol
            message, v = spike_reset(vol, vth, graded, inv)
            if t + delay < steps:
                s_out[b, t + delay, k] = message
        last_out[b, k] = message


def _cuba_backward(grad_s, grad_u_out, grad_v_out, margin_rec, u_rec, v_rec, reset_rec, u0, v0, du, dv,
                   state_scale, theta, tau_rho, scale_rho, graded, delay, want_decay, grad_x, grad_du,
                   grad_dv):
    """CUDA counterpart of :func:`lava_dl.core.cuba.cuba_backward` (no ``grad_index``).

    Thread ``(b, k)`` runs the adjoint of neuron ``k`` of sample ``b`` backwards in time:
    the surrogate term ``grad_s * surrogate(margin / S - theta)`` rounded to float32 (as the
    CPU kernel stores it in ``grad_x`` before reading it back), then :func:`adjoint_step` for
    the voltage and the current. ``grad_x`` must be float32. Empty ``(0, 0, 0)`` arrays stand
    for absent ``grad_u_out``/``grad_v_out``/``reset_rec``, as on the CPU.
    """
    blocks, steps, width = grad_s.shape
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if k >= width:
        return
    has_gu = grad_u_out.shape[0] > 0
    has_gv = grad_v_out.shape[0] > 0
    has_reset = reset_rec.shape[0] > 0
    inv = 1.0 / state_scale
    inv_tau = 1.0 / tau_rho
    height = surrogate_height(tau_rho, scale_rho, graded)
    for b in range(cuda.blockIdx.y, blocks, cuda.gridDim.y):
        gu = 0.0
        gv = 0.0
        acc_u = 0.0
        acc_v = 0.0
        alpha_u = decay_factor(du[b, k])
        alpha_v = decay_factor(dv[b, k])
        for t in range(steps - 1, -1, -1):
            term = np.float32(0.0)
            if t + delay < steps:  # the message of step t sits at step t + delay
                term = np.float32(surrogate_gradient(grad_s[b, t + delay, k], margin_rec[b, t, k], inv, theta,
                                                     inv_tau, height, graded))
            g_v = adjoint_step(term, alpha_v, gv)
            if has_gv:
                g_v += grad_v_out[b, t, k]
            g_u = adjoint_step(g_v, alpha_u, gu)
            if has_gu:
                g_u += grad_u_out[b, t, k]
            gv = g_v
            gu = g_u
            grad_x[b, t, k] = g_u
            if want_decay:
                # at t = 0 the t - 1 entries read are not used (index -1 wraps around)
                reset_prev = has_reset and reset_rec[b, t - 1 + delay, k] != 0
                prev_u, prev_v = previous_states(t, u0[b, k], v0[b, k], u_rec[b, t - 1, k],
                                                 v_rec[b, t - 1, k], reset_prev)
                acc_u -= g_u * prev_u
                acc_v -= g_v * prev_v
        if want_decay:
            grad_du[b, k] = decay_gradient(acc_u, state_scale)
            grad_dv[b, k] = decay_gradient(acc_v, state_scale)


def _current_forward(x, state_scale, du, u0, u_out):
    """CUDA counterpart of :func:`lava_dl.core.cuba.current_forward` (same arguments).

    Thread ``(b, k)`` integrates the input of neuron ``k`` of sample ``b`` through all steps
    with :func:`~lava_dl.core.cuba.current_update`; ``u_out`` (int32) receives the states.
    """
    blocks, steps, width = x.shape
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if k >= width:
        return
    for b in range(cuda.blockIdx.y, blocks, cuda.gridDim.y):
        u = np.int64(u0[b, k])
        d_u = du[b, k]
        for t in range(steps):
            u = current_update(u, input_to_int(x[b, t, k], state_scale), d_u)
            u_out[b, t, k] = u


def _voltage_forward(cur, state_scale, dv, bias_scaled, vth_scaled, v0, graded, s_out, v_out):
    """CUDA counterpart of :func:`lava_dl.core.cuba.voltage_forward` (same arguments).

    Thread ``(b, k)`` runs neuron ``k`` of sample ``b`` through all steps:
    :func:`~lava_dl.core.cuba.state_to_int` of the real current, then
    :func:`~lava_dl.core.cuba.voltage_update` and :func:`~lava_dl.core.cuba.spike_reset`.
    ``v_out`` (int32) receives the pre-reset voltage, ``s_out`` the messages.
    """
    blocks, steps, width = cur.shape
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if k >= width:
        return
    inv = 1.0 / state_scale
    for b in range(cuda.blockIdx.y, blocks, cuda.gridDim.y):
        v = np.int64(v0[b, k])
        d_v = dv[b, k]
        bias = bias_scaled[b, k]
        vth = vth_scaled[b, k]
        for t in range(steps):
            vol = voltage_update(v, state_to_int(cur[b, t, k], state_scale), d_v, bias)
            v_out[b, t, k] = vol
            message, v = spike_reset(vol, vth, graded, inv)
            s_out[b, t, k] = message


def _integrator_backward(grad_out, grad_s, decay_int, y_rec, y0, spiked, state_scale, theta, tau_rho,
                         scale_rho, graded, want_decay, grad_in, grad_decay):
    """CUDA counterpart of :func:`lava_dl.core.cuba.integrator_backward`, with
    :func:`~lava_dl.core.cuba.spike_backward` in front of it for a spiking integrator.

    Thread ``(b, k)`` runs the adjoint of neuron ``k`` of sample ``b`` backwards in time
    (:func:`~lava_dl.core.cuba.adjoint_step`, float64). The direct gradient of step ``t`` is
    ``grad_out`` (a leaky integrator: ``grad_s`` is an empty ``(0, 0, 0)`` array), or the
    spike's :func:`~lava_dl.core.cuba.surrogate_gradient` at the recorded state ``y_rec`` plus
    ``grad_out`` when that is not empty (a spiking integrator), in the CPU kernels' order.
    ``spiked`` (the messages, or empty) marks the resets; ``grad_decay`` (``(B, K)``) is
    written only if ``want_decay``.
    """
    blocks, steps, width = grad_in.shape
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if k >= width:
        return
    has_gs = grad_s.shape[0] > 0
    has_gout = grad_out.shape[0] > 0
    has_reset = spiked.shape[0] > 0
    inv = 1.0 / state_scale
    inv_tau = 1.0 / tau_rho
    height = surrogate_height(tau_rho, scale_rho, graded)
    for b in range(cuda.blockIdx.y, blocks, cuda.gridDim.y):
        alpha = decay_factor(decay_int[b, k])
        g = 0.0
        acc = 0.0
        for t in range(steps - 1, -1, -1):
            if has_gs:
                direct = surrogate_gradient(np.float64(grad_s[b, t, k]), y_rec[b, t, k], inv, theta, inv_tau,
                                            height, graded)
                if has_gout:
                    direct += grad_out[b, t, k]
            else:
                direct = np.float64(grad_out[b, t, k])
            g = adjoint_step(direct, alpha, g)
            grad_in[b, t, k] = g
            if want_decay:
                # at t = 0 the t - 1 entries read are not used (index -1 wraps around)
                reset_prev = has_reset and spiked[b, t - 1, k] != 0
                acc -= g * previous_state(t, y0[b, k], y_rec[b, t - 1, k], reset_prev)
        if want_decay:
            grad_decay[b, k] = decay_gradient(acc, state_scale)


def _alif_forward(x, state_scale, du, dv, dth, dref, th0, th_step, init, graded, final, s_out, margin_out,
                  u_out, v_out, th_out, r_out):
    """CUDA counterpart of :func:`lava_dl.core.alif.alif_forward` (same arguments).

    Thread ``(b, k)`` runs neuron ``k`` of sample ``b`` through all steps with
    :func:`~lava_dl.core.alif.alif_update`, the rule of the CPU kernel and of Lava's step.
    The records ``margin_out``, ``u_out``, ``v_out``, ``th_out``, ``r_out`` are ``(0, 0, 0)``
    arrays when not kept. ALIF's backward is :func:`_cuba_backward` at the recorded margin
    (``theta = 0``, no resets).
    """
    blocks, steps, width = x.shape
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if k >= width:
        return
    keep_margin = margin_out.shape[0] > 0
    keep_u = u_out.shape[0] > 0
    keep_v = v_out.shape[0] > 0
    keep_th = th_out.shape[0] > 0
    keep_r = r_out.shape[0] > 0
    inv = 1.0 / state_scale
    for b in range(cuda.blockIdx.y, blocks, cuda.gridDim.y):
        u = np.int64(init[0, b, k])
        v = np.int64(init[1, b, k])
        adapt = np.int64(init[2, b, k])
        ref = np.int64(init[3, b, k])
        d_u = du[b, k]
        d_v = dv[b, k]
        d_th = dth[b, k]
        d_ref = dref[b, k]
        theta0 = th0[b, k]
        step = th_step[b, k]
        for t in range(steps):
            drive = input_to_int(x[b, t, k], state_scale)
            u, v, spike, margin, adapt, ref = alif_update(u, v, adapt, ref, drive, d_u, d_v, d_th, d_ref,
                                                          theta0, step)
            s_out[b, t, k] = graded_message(v, graded, inv) * 1.0 if spike else 0.0
            if keep_margin:
                margin_out[b, t, k] = margin
            if keep_u:
                u_out[b, t, k] = u
            if keep_v:
                v_out[b, t, k] = v
            if keep_th:
                th_out[b, t, k] = adapt
            if keep_r:
                r_out[b, t, k] = ref
        final[0, b, k] = u
        final[1, b, k] = v
        final[2, b, k] = adapt
        final[3, b, k] = ref


def _sigma_forward(x, in_unit, out_scale, sigma_state, sigma_out):
    """CUDA counterpart of :func:`lava_dl.core.sigma_delta.sigma_forward_real` (same arguments).

    Thread ``(b, k)`` integrates neuron ``k`` of sample ``b`` with
    :func:`~lava_dl.core.sigma_delta.sigma_update`; ``sigma_state`` holds the final σ on return.
    """
    blocks, steps, width = x.shape
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if k >= width:
        return
    for b in range(cuda.blockIdx.y, blocks, cuda.gridDim.y):
        sigma = sigma_state[b, k]
        for t in range(steps):
            sigma = sigma_update(sigma, np.int64(x[b, t, k] * in_unit))
            sigma_out[b, t, k] = np.float64(sigma) * out_scale
        sigma_state[b, k] = sigma


def _sigma_backward(grad_out, grad_in):
    """CUDA counterpart of :func:`lava_dl.core.sigma_delta.sigma_backward_real`: the reverse
    cumulative sum over time, accumulated in float64 in the same order."""
    blocks, steps, width = grad_out.shape
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if k >= width:
        return
    for b in range(cuda.blockIdx.y, blocks, cuda.gridDim.y):
        acc = 0.0
        for t in range(steps - 1, -1, -1):
            acc += np.float64(grad_out[b, t, k])
            grad_in[b, t, k] = acc


def _sigma_delta_forward(x, in_unit, mode, shift, bias_s, vth_s, act_mode, cum_error, state_exp, out_scale,
                         sigma_state, act_state, residue_state, error_state, y_out, mask_out, delta_out):
    """CUDA counterpart of :func:`lava_dl.core.sigma_delta.fused_forward` (same arguments).

    Thread ``(b, k)`` runs neuron ``k`` of sample ``b`` through all steps with
    :func:`~lava_dl.core.sigma_delta.encode_step`, the rule of the CPU kernel (whose scalar
    helpers Lava's steps share). ``mask_out``/``delta_out`` are ``(0, 0, 0)`` when not kept;
    the state arrays hold the final states on return.
    """
    blocks, steps, width = x.shape
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if k >= width:
        return
    keep_mask = mask_out.shape[0] > 0
    keep_delta = delta_out.shape[0] > 0
    for b in range(cuda.blockIdx.y, blocks, cuda.gridDim.y):
        sigma = sigma_state[b, k]
        act = act_state[b, k]
        residue = residue_state[b, k]
        error = error_state[b, k]
        bias = bias_s[b, k]
        vth = vth_s[b, k]
        for t in range(steps):
            sigma, act, residue, error, mask, delta, y = encode_step(
                x[b, t, k], in_unit, mode, shift, bias, vth, act_mode, cum_error, state_exp, out_scale, sigma,
                act, residue, error)
            y_out[b, t, k] = y
            if keep_mask:
                mask_out[b, t, k] = mask
            if keep_delta:
                delta_out[b, t, k] = delta
        sigma_state[b, k] = sigma
        act_state[b, k] = act
        residue_state[b, k] = residue
        error_state[b, k] = error


def _sigma_delta_backward(grad_out, mask_rec, delta_rec, integrate, unit, theta, tau_grad, scale_grad,
                          grad_in, grad_theta):
    """CUDA counterpart of :func:`lava_dl.core.sigma_delta.fused_backward` (same arguments).

    Thread ``(b, k)`` runs :func:`~lava_dl.core.sigma_delta.delta_adjoint` backwards in time,
    then sums :func:`~lava_dl.core.sigma_delta.threshold_gradient` backwards in time (the CPU
    kernel's order) when ``delta_rec`` is not empty.
    """
    blocks, steps, width = grad_out.shape
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if k >= width:
        return
    relu = mask_rec.shape[0] > 0
    want_theta = delta_rec.shape[0] > 0
    inv = 1.0 / unit
    inv_tau = 1.0 / tau_grad
    for b in range(cuda.blockIdx.y, blocks, cuda.gridDim.y):
        following = 0.0
        acc = 0.0
        for t in range(steps - 1, -1, -1):
            g = np.float64(grad_out[b, t, k])
            masked = relu and mask_rec[b, t, k] == 0
            grad, acc = delta_adjoint(g, following, masked, integrate, acc)
            grad_in[b, t, k] = grad
            following = g
        if want_theta:
            th = theta[b, k]
            inv_th = 1.0 / th
            total = 0.0
            for t in range(steps - 1, -1, -1):
                slope = threshold_gradient(delta_rec[b, t, k] * inv, th, inv_th, inv_tau, scale_grad)
                total += slope * np.float64(grad_out[b, t, k])
            grad_theta[b, k] = total


def _resonator_forward(family, x_re, x_im, state_scale, sin_d, cos_d, dth, dref, th0, th_step, re_state,
                       im_state, adapt_state, ref_state, graded, s_out, re_out, im_out, margin_out, theta_out,
                       ref_out):
    """CUDA counterpart of :func:`lava_dl.core.resonator.resonator_forward` (same arguments).

    Thread ``(b, k)`` runs neuron ``k`` of sample ``b`` through all steps with
    :func:`~lava_dl.core.resonator.neuron_update`, the rule of the CPU kernel and of Lava's
    steps, for any ``family``; records that are not kept are ``(0, 0, 0)`` arrays.
    """
    blocks, steps, width = x_re.shape
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if k >= width:
        return
    keep_re = re_out.shape[0] > 0
    keep_im = im_out.shape[0] > 0
    keep_margin = margin_out.shape[0] > 0
    adaptive = family == ADRF_CODE or family == ADRF_IZ_CODE
    record_theta = adaptive and theta_out.shape[0] > 0
    inv = 1.0 / state_scale
    for b in range(cuda.blockIdx.y, blocks, cuda.gridDim.y):
        re = re_state[b, k]
        im = im_state[b, k]
        adapt = adapt_state[b, k]
        ref = ref_state[b, k]
        sin_k = sin_d[b, k]
        cos_k = cos_d[b, k]
        dth_k = dth[b, k]
        dref_k = dref[b, k]
        th0_k = th0[b, k]
        step_k = th_step[b, k]
        for t in range(steps):
            if record_theta:
                theta_out[b, t, k], ref_out[b, t, k] = threshold_record(adapt, ref, dth_k, dref_k, th0_k)
            spike, margin, re_t, im_t, re, im, adapt, ref = neuron_update(
                family, re, im, adapt, ref, input_to_int(x_re[b, t, k], state_scale),
                input_to_int(x_im[b, t, k], state_scale), sin_k, cos_k, dth_k, dref_k, th0_k, step_k)
            s_out[b, t, k] = spike_message(family, spike, re_t, im_t, graded, inv)
            if keep_re:
                re_out[b, t, k] = re_t
            if keep_im:
                im_out[b, t, k] = im_t
            if keep_margin:
                margin_out[b, t, k] = record_margin(margin)
        re_state[b, k] = re
        im_state[b, k] = im
        adapt_state[b, k] = adapt
        ref_state[b, k] = ref


def _resonator_backward(family, grad_s, grad_re, grad_im, re_rec, im_rec, margin, s_rec, re0, im0, th0, sin_d,
                        cos_d, state_scale, tau_rho, scale_rho, graded, want_decay, grad_x_re, grad_x_im,
                        grad_sin, grad_cos):
    """CUDA counterpart of :func:`lava_dl.core.resonator.resonator_backward` (same arguments).

    Thread ``(b, k)`` runs the adjoint of neuron ``k`` of sample ``b`` backwards in time: the
    spike's surrogate terms (:func:`~lava_dl.core.resonator.iz_spike_terms` or
    :func:`~lava_dl.core.resonator.phase_spike_terms`), stored in ``grad_x_*`` and read back
    (rounded to their dtype, as the CPU kernel's first pass stores them), then
    :func:`~lava_dl.core.resonator.rotation_adjoint` and, with ``want_decay``, the decay terms
    at the carried states (:func:`~lava_dl.core.resonator.carried_state`).
    """
    blocks, steps, width = grad_x_re.shape
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if k >= width:
        return
    iz = family == RF_IZ_CODE or family == ADRF_IZ_CODE
    reset = family == RF_IZ_CODE
    has_gs = grad_s.shape[0] > 0
    has_gre = grad_re.shape[0] > 0
    has_gim = grad_im.shape[0] > 0
    inv = 1.0 / state_scale
    inv_tau = 1.0 / tau_rho
    two_tau = 2.0 * tau_rho
    half_over_tau = 0.5 / tau_rho
    height = surrogate_height(tau_rho, scale_rho, graded)
    for b in range(cuda.blockIdx.y, blocks, cuda.gridDim.y):
        c = cos_d[b, k] / DECAY_UNITY
        s = sin_d[b, k] / DECAY_UNITY
        lam_re = 0.0
        lam_im = 0.0
        acc_sin = 0.0
        acc_cos = 0.0
        for t in range(steps - 1, -1, -1):
            term_re = 0.0
            term_im = 0.0
            if has_gs:
                if iz:
                    term_re, term_im = iz_spike_terms(grad_s[b, t, k], margin[b, t, k], inv, inv_tau, height,
                                                      graded)
                else:
                    term_re, term_im = phase_spike_terms(grad_s[b, t, k], margin[b, t, k], im_rec[b, t, k],
                                                         inv, inv_tau, two_tau, half_over_tau, scale_rho,
                                                         graded)
            grad_x_re[b, t, k] = term_re
            grad_x_im[b, t, k] = term_im
            in_re = grad_re[b, t, k] if has_gre else np.float32(0.0)
            in_im = grad_im[b, t, k] if has_gim else np.float32(0.0)
            lam_re, lam_im = rotation_adjoint(c, s, lam_re, lam_im, grad_x_re[b, t, k], grad_x_im[b, t, k],
                                              in_re, in_im)
            grad_x_re[b, t, k] = lam_re
            grad_x_im[b, t, k] = lam_im
            if want_decay:
                if t == 0:
                    re_prev, im_prev = carried_state(False, False, re0[b, k], im0[b, k], 0)
                else:
                    re_prev, im_prev = carried_state(reset, s_rec[b, t - 1, k] != 0.0, re_rec[b, t - 1, k],
                                                     im_rec[b, t - 1, k], th0[b, k])
                acc_sin, acc_cos = rotation_decay_terms(lam_re, lam_im, re_prev, im_prev, acc_sin, acc_cos)
        if want_decay:
            grad_sin[b, k] = rotation_decay_gradient(acc_sin, state_scale)
            grad_cos[b, k] = rotation_decay_gradient(acc_cos, state_scale)


def _shift_rows(x, shifts, out):
    """CUDA counterpart of :func:`lava_dl.core.delay.shift_rows` (same arguments).

    ``out[b, t, i] = x[b, t - shifts[i], i]``, 0 where that step lies outside ``[0, T)``
    (:func:`~lava_dl.core.delay.source_step`, :func:`~lava_dl.core.delay.in_sequence`). Thread
    ``(b, i)`` shifts value ``i`` of the step rows of sample ``b`` through all steps (any dtype;
    ``shifts`` is int64). Exact: values are only moved.
    """
    blocks, steps, width = out.shape
    i = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if i >= width:
        return
    shift = shifts[i]
    for b in range(cuda.blockIdx.y, blocks, cuda.gridDim.y):
        for t in range(steps):
            src = source_step(t, shift)
            out[b, t, i] = x[b, src, i] if in_sequence(src, steps) else 0


def _shift_rows_adjoint(g, y, shifts, grad_x, acc):
    """CUDA counterpart of :func:`lava_dl.core.delay.shift_rows_adjoint` (same arguments).

    Thread ``i`` (a one-dimensional grid: no split over the samples) writes the reverse shift
    ``grad_x[b, t, i] = g[b, t + shifts[i], i]`` and sums
    :func:`~lava_dl.core.delay.delay_gradient_term` over all samples and steps into ``acc[i]``,
    in the CPU kernel's order (samples outer, steps inner, float64).
    """
    samples, steps, width = g.shape
    i = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if i >= width:
        return
    reverse = -shifts[i]
    total = 0.0
    for b in range(samples):
        for t in range(steps):
            src = source_step(t, reverse)
            grad_x[b, t, i] = g[b, src, i] if in_sequence(src, steps) else 0
            before = y[b, t - 1, i] if t > 0 else 0.0
            total += delay_gradient_term(g[b, t, i], before, y[b, t, i])
    acc[i] = total


#: The kernels (compiled lazily, once per argument types).
cuba_forward = cuda.jit(_cuba_forward)
cuba_backward = cuda.jit(_cuba_backward)
current_forward = cuda.jit(_current_forward)
voltage_forward = cuda.jit(_voltage_forward)
integrator_backward = cuda.jit(_integrator_backward)
alif_forward = cuda.jit(_alif_forward)
sigma_forward = cuda.jit(_sigma_forward)
sigma_backward = cuda.jit(_sigma_backward)
sigma_delta_forward = cuda.jit(_sigma_delta_forward)
sigma_delta_backward = cuda.jit(_sigma_delta_backward)
resonator_forward = cuda.jit(_resonator_forward)
resonator_backward = cuda.jit(_resonator_backward)
shift_rows = cuda.jit(_shift_rows)
shift_rows_adjoint = cuda.jit(_shift_rows_adjoint)


def _signatures():
    """Argument types of the kernels as the torch glue calls them (float32 input unless named)."""
    from numba import types

    f32_3, f64_3, i32_3 = (types.Array(t, 3, "C") for t in (types.float32, types.float64, types.int32))
    f32_2, f64_2, i64_2 = (types.Array(t, 2, "C") for t in (types.float32, types.float64, types.int64))
    i64_3 = types.Array(types.int64, 3, "C")
    f64, i64, b1 = types.float64, types.int64, types.boolean
    per_neuron = (i64_2,) * 6

    def forward(messages):
        return (f32_3, f64, *per_neuron, b1, i64, messages, f32_2, i32_3, i32_3)

    def backward(resets):
        return (f32_3, f32_3, f32_3, i32_3, i32_3, i32_3, resets, *(i64_2,) * 4, f64, f64, f64, f64, b1, i64,
                b1, f32_3, f64_2, f64_2)

    u8_3 = types.Array(types.uint8, 3, "C")

    def alif(x, messages):
        return (x, f64, *(i64_2,) * 6, i64_3, b1, i64_3, messages, *(i32_3,) * 5)

    def sigma_delta(x):
        return (x, f64, i64, i64, i64_2, i64_2, i64, i64, i64, f64, *(i64_2,) * 4, x, u8_3, i32_3)

    def sigma_delta_adjoint(grad):
        return (grad, u8_3, i32_3, b1, f64, f64_2, f64, f64, grad, f64_2)

    def resonator(x, messages):
        return (i64, x, x, f64, *(i64_2,) * 10, b1, messages, *(i32_3,) * 5)

    def resonator_adjoint(messages):
        return (i64, f32_3, f32_3, f32_3, i32_3, i32_3, i32_3, messages, *(i64_2,) * 5, f64, f64, f64, b1, b1,
                f32_3, f32_3, f64_2, f64_2)

    i64_1, f64_1 = types.Array(types.int64, 1, "C"), types.Array(types.float64, 1, "C")

    def shift(x):
        return (x, i64_1, x)

    def shift_adjoint(grad):
        return (grad, grad, i64_1, grad, f64_1)

    def voltage(x, messages):
        return (x, f64, *(i64_2,) * 4, b1, messages, i32_3)

    def integrator_adjoint(grad_out, grad_s, messages, grad_in):
        return (grad_out, grad_s, i64_2, i32_3, i64_2, messages, f64, f64, f64, f64, b1, b1, grad_in, f64_2)

    return {"shift_rows": (_shift_rows, shift(f32_3)),
            "shift_rows_float64": (_shift_rows, shift(f64_3)),
            "shift_rows_int64": (_shift_rows, shift(types.Array(types.int64, 3, "C"))),
            "shift_rows_bool": (_shift_rows, shift(types.Array(types.boolean, 3, "C"))),
            "shift_rows_adjoint": (_shift_rows_adjoint, shift_adjoint(f32_3)),
            "shift_rows_adjoint_float64": (_shift_rows_adjoint, shift_adjoint(f64_3)),
            "alif_forward": (_alif_forward, alif(f32_3, f32_3)),
            "alif_forward_graded": (_alif_forward, alif(f32_3, f64_3)),
            "alif_forward_float64": (_alif_forward, alif(f64_3, f64_3)),
            "sigma_forward": (_sigma_forward, (f32_3, f64, f64, i64_2, f64_3)),
            "sigma_forward_float64": (_sigma_forward, (f64_3, f64, f64, i64_2, f64_3)),
            "sigma_backward": (_sigma_backward, (f32_3, f32_3)),
            "sigma_backward_float64": (_sigma_backward, (f64_3, f64_3)),
            "sigma_delta_forward": (_sigma_delta_forward, sigma_delta(f32_3)),
            "sigma_delta_forward_float64": (_sigma_delta_forward, sigma_delta(f64_3)),
            "sigma_delta_backward": (_sigma_delta_backward, sigma_delta_adjoint(f32_3)),
            "sigma_delta_backward_float64": (_sigma_delta_backward, sigma_delta_adjoint(f64_3)),
            "resonator_forward": (_resonator_forward, resonator(f32_3, f32_3)),
            "resonator_forward_graded": (_resonator_forward, resonator(f32_3, f64_3)),
            "resonator_forward_float64": (_resonator_forward, resonator(f64_3, f64_3)),
            "resonator_backward": (_resonator_backward, resonator_adjoint(f32_3)),
            "resonator_backward_graded": (_resonator_backward, resonator_adjoint(f64_3)),
            "cuba_forward": (_cuba_forward, forward(f32_3)),
            "cuba_forward_graded": (_cuba_forward, forward(f64_3)),
            "cuba_backward": (_cuba_backward, backward(f32_3)),
            "cuba_backward_graded": (_cuba_backward, backward(f64_3)),
            "current_forward": (_current_forward, (f32_3, f64, i64_2, i64_2, i32_3)),
            "current_forward_float64": (_current_forward, (f64_3, f64, i64_2, i64_2, i32_3)),
            "voltage_forward": (_voltage_forward, voltage(f32_3, f32_3)),
            "voltage_forward_graded": (_voltage_forward, voltage(f32_3, f64_3)),
            "voltage_forward_float64": (_voltage_forward, voltage(f64_3, f64_3)),
            # a leaky integrator (grad_s, spiked empty), then spiking ones (graded: float64 messages)
            "integrator_backward": (_integrator_backward, integrator_adjoint(f32_3, f32_3, f32_3, f32_3)),
            "integrator_backward_float64": (_integrator_backward,
                                            integrator_adjoint(f64_3, f64_3, f64_3, f64_3)),
            "integrator_backward_graded": (_integrator_backward,
                                           integrator_adjoint(f32_3, f64_3, f64_3, f64_3))}


def compile_ptx(cc: tuple[int, int] = (8, 0)) -> dict[str, str]:
    """Compile every kernel to PTX for compute capability ``cc``, without a GPU.

    Needs libNVVM only (the ``nvidia-cuda-nvcc-cu12`` wheel, pulled by ``numba-cuda[cu12]``).
    Proves that the rule functions compile for the CUDA target, not only in the simulator.

    Returns
    -------
    dict of str to str
        PTX text per kernel variant.

    Raises
    ------
    RuntimeError
        In the simulator, which has no compiler.
    """
    if SIMULATOR:
        raise RuntimeError("compile_ptx needs the real CUDA target (unset NUMBA_ENABLE_CUDASIM)")
    return {name: cuda.compile_ptx(func, sig, cc=cc)[0] for name, (func, sig) in _signatures().items()}
