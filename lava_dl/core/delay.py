"""Axonal and synaptic delays: the time-shift kernels of training and the delay lines of Lava.

This module imports numpy and numba only. It holds

* the training kernels of :mod:`lava_dl.slayer.axon` (:func:`shift_time`,
  :func:`shift_time_adjoint`, :func:`shift_rows`, :func:`shift_rows_adjoint`): a per-channel
  (or per-position) shift along time of ``(N, T, C, S)`` arrays or ``(N, T, K)`` step rows, in
  one pass, built on the scalar rules :func:`source_step`, :func:`in_sequence` and
  :func:`delay_gradient_term`, which the CUDA kernels of :mod:`lava_dl.core.cuda_kernels` call too;
* the zero-latency delay line of :class:`lava_dl.proc.delay.AxonDelay`
  (:func:`delay_line_step`): a ring buffer of the last ``max_delay + 1`` messages
  of every neuron, so that a message received at step ``t`` is emitted at step
  ``t + d[i]`` (``d = 0``: in the same step);
* the step of :class:`lava_dl.proc.delay.DelayDense` (:func:`delay_dense_fixed`,
  :func:`delay_dense_float`), bit-identical to lava-nc's ``PyDelayDenseModelBitAcc``, and of
  :class:`lava_dl.proc.sparse.DelaySparse` (:func:`delay_sparse_fixed`, :func:`delay_sparse_float`),
  the same step over a sparse matrix's entries.

DelayDense (lava-nc semantics)
    ``a_buff`` has shape ``(n_out, max_delay + 1)``; column ``k`` holds what is sent
    ``k`` steps after the next send. Every step first sends column 0, then advances
    the buffer by one column (the last one becomes zero) and adds, for every
    synapse ``(i, j)`` of a nonzero input ``s[j]``, ``w[i, j] * s[j]`` (binary input:
    ``w[i, j]``) to column ``delays[i, j]``. A spike received at step ``t`` through a
    synapse of delay ``d`` thus reaches ``a_out`` at step ``t + 1 + d``. Weights are
    handled once as by Dense (:func:`lava_dl.core.synapse.loihi_dense_weights`); the
    sums of one step are shifted by ``weight_exp`` per output and delay (arithmetic
    right shift for negative exponents, i.e. a floor) before they are added, and the
    buffer wraps at 32 bits, as lava-nc's int32 ``a_buff`` does. Products are exact
    64-bit integers (lava-nc's int32 products of graded payloads would wrap beyond
    ``2**31``; no Loihi-sized payload gets there).
"""

from __future__ import annotations

import numpy as np

from lava_dl.core.fixed_point import inline, jit, shift

#: Largest delay of Loihi 2 (6-bit delays; lava-nc's fixed-point DelayDense enforces it).
MAX_DELAY = 63
#: Largest axonal delay slayer blocks learn and export, and netx accepts in a file (lava-dl's cap).
MAX_BLOCK_DELAY = 62


# --------------------------------------------------------------------------- validation


def as_int_delays(delays, where: str, shape: tuple[int, ...], max_delay: int,
                  name: str = "delays", limit: str = "max_delay") -> np.ndarray:
    """Check integer delays in ``[0, max_delay]`` and broadcast them to ``shape``.

    Parameters
    ----------
    delays : int or array_like
        Candidate delays (integers or integer-valued floats).
    where : str
        Prefix for error messages.
    shape : tuple of int
        Shape the delays are broadcast to.
    max_delay : int
        Largest allowed delay.
    name : str, default "delays"
        Argument name in error messages.
    limit : str, default "max_delay"
        What ``max_delay`` is, in error messages.

    Returns
    -------
    numpy.ndarray
        C-contiguous int32 array of ``shape``.

    Raises
    ------
    TypeError
        If ``delays`` is not numeric (booleans included).
    ValueError
        If a value is not a finite integer, lies outside ``[0, max_delay]``, or the
        array does not broadcast to ``shape``.
    """
    arr = np.asarray(delays)
    if arr.dtype == object or arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) \
            or np.iscomplexobj(arr):
        raise TypeError(f"{where}: {name} must be integers, got {delays!r}")
    if arr.size == 0:
        raise ValueError(f"{where}: {name} must not be empty, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{where}: {name} must be integers (delays are whole time steps), "
                             f"got non-integer values such as {arr[arr != np.round(arr)].ravel()[:3]}")
    lo, hi = arr.min(), arr.max()
    if lo < 0 or hi > max_delay:
        raise ValueError(f"{where}: {name} must lie in [0, {max_delay}] ({limit}), "
                         f"got values in [{lo}, {hi}]")
    try:
        out = np.broadcast_to(arr, shape)
    except ValueError as err:
        raise ValueError(f"{where}: {name} of shape {arr.shape} does not broadcast to {shape}") from err
    return np.ascontiguousarray(out, dtype=np.int32)


# --------------------------------------------------------------------------- training shift
# The scalar rules of the shift, its adjoint and lava-dl's delay gradient: one definition, called by
# the CPU kernels below and by the CUDA kernels of lava_dl.core.cuda_kernels.


@inline
def source_step(t, shift):
    """The input step that output step ``t`` reads when values move ``shift`` steps later.

    Parameters
    ----------
    t : int
        Output step.
    shift : int
        Steps later (negative: earlier, the adjoint of a positive shift).

    Returns
    -------
    int
        ``t - shift``; it may lie outside the sequence (see :func:`in_sequence`).
    """
    return t - shift


@inline
def in_sequence(step, steps):
    """Whether ``0 <= step < steps`` (one unsigned comparison for both bounds).

    Parameters
    ----------
    step : int
        A step index (:func:`source_step`), possibly negative or past the end.
    steps : int
        Sequence length.

    Returns
    -------
    bool
        True where the step exists; elsewhere a shift reads zero.
    """
    return np.uint64(step) < np.uint64(steps)


@inline
def delay_gradient_term(g, before, y):
    """lava-dl's delay-gradient term of one output value, ``g * (y[t - 1] - y[t])`` in float64.

    Delaying a signal by one more step changes its value at step ``t`` by ``y[t - 1] - y[t]``.

    Parameters
    ----------
    g : float
        Gradient of the output at step ``t``.
    before : float
        Output at step ``t - 1`` (0.0 at the first step).
    y : float
        Output at step ``t``.

    Returns
    -------
    numpy.float64
        The term, to be summed over samples, steps and positions.

    Notes
    -----
    At the first step (``before = 0.0``) adding the term equals subtracting ``g * y`` bit for
    bit: ``0.0 - y`` is ``-y`` but for ``y = +0``, where the two differ only in the sign of a
    zero, which a sum started at ``+0.0`` never keeps.
    """
    return np.float64(g) * (np.float64(before) - np.float64(y))


@jit
def shift_time(x, shifts, out):
    """``out[b, t, c, s] = x[b, t - k, c, s]`` (0 where ``t - k`` is outside ``[0, T)``).

    Parameters
    ----------
    x : array (N, T, C, S)
        Input, any strides.
    shifts : int64 array (C, 1) or (C, S)
        ``k`` per channel (broadcast over ``s``) or per position; negative values shift
        earlier (the adjoint of a positive shift).
    out : array (N, T, C, S)
        Result.
    """
    n, steps, channels, width = out.shape
    if width == 1:  # N, C, T activations: one gather per output element
        for b in range(n):
            for t in range(steps):
                for c in range(channels):
                    src = source_step(t, shifts[c, 0])
                    # unsigned compare: one test for both bounds
                    out[b, t, c, 0] = x[b, src, c, 0] if in_sequence(src, steps) else 0
        return
    per_position = shifts.shape[1] != 1
    if not per_position and out.strides[2] < out.strides[3]:  # channels-last memory: channels innermost
        for b in range(n):
            for t in range(steps):
                for s in range(width):
                    for c in range(channels):
                        src = source_step(t, shifts[c, 0])
                        out[b, t, c, s] = x[b, src, c, s] if in_sequence(src, steps) else 0
        return
    for b in range(n):
        for t in range(steps):
            for c in range(channels):
                if per_position:
                    for s in range(width):
                        src = source_step(t, shifts[c, s])
                        out[b, t, c, s] = x[b, src, c, s] if in_sequence(src, steps) else 0
                else:
                    src = source_step(t, shifts[c, 0])
                    if in_sequence(src, steps):
                        for s in range(width):
                            out[b, t, c, s] = x[b, src, c, s]
                    else:
                        for s in range(width):
                            out[b, t, c, s] = 0


@jit
def shift_time_adjoint(g, y, shifts, grad_x, grad_delay):
    """Both gradients of ``y = shift_time(x, k)`` with per-channel ``k``, in one pass over ``g``.

    ``grad_x[b, t, c, s] = g[b, t + k_c, c, s]`` (0 past the end) and, with ``y[-1] = 0``,
    ``grad_delay[c] = sum_{b, t, s} g[b, t, c, s] * (y[b, t - 1, c, s] - y[b, t, c, s])``
    (float64 sums), the finite difference lava-dl uses for a delay's gradient.

    Parameters
    ----------
    g : array (N, T, C, S)
        Gradient of the output, any strides.
    y : array (N, T, C, S)
        The forward output.
    shifts : int64 array (C,)
        ``k`` per channel.
    grad_x : array (N, T, C, S)
        Input gradient (written).
    grad_delay : float64 array (C,)
        Delay gradient (written).
    """
    n, steps, channels, width = g.shape
    for c in range(channels):
        grad_delay[c] = 0.0
    if width > 1 and grad_x.strides[2] < grad_x.strides[3]:  # channels-last memory: channels innermost
        per_position = np.zeros((width, channels))
        for b in range(n):
            for t in range(steps):
                for s in range(width):
                    acc = per_position[s]
                    for c in range(channels):
                        src = source_step(t, -shifts[c])
                        grad_x[b, t, c, s] = g[b, src, c, s] if in_sequence(src, steps) else 0
                        before = np.float64(y[b, t - 1, c, s]) if t > 0 else 0.0
                        acc[c] += delay_gradient_term(g[b, t, c, s], before, y[b, t, c, s])
        for c in range(channels):
            grad_delay[c] = per_position[:, c].sum()
        return
    partial = np.zeros((channels, width if width > 1 else 0))
    for b in range(n):
        for t in range(steps):
            if width == 1:
                for c in range(channels):
                    src = source_step(t, -shifts[c])
                    grad_x[b, t, c, 0] = g[b, src, c, 0] if in_sequence(src, steps) else 0
                # separate loops over the channels: this one vectorises
                if t == 0:
                    for c in range(channels):
                        grad_delay[c] += delay_gradient_term(g[b, 0, c, 0], 0.0, y[b, 0, c, 0])
                else:
                    for c in range(channels):
                        grad_delay[c] += delay_gradient_term(g[b, t, c, 0], y[b, t - 1, c, 0], y[b, t, c, 0])
                continue
            for c in range(channels):
                src = source_step(t, -shifts[c])
                if in_sequence(src, steps):
                    for s in range(width):
                        grad_x[b, t, c, s] = g[b, src, c, s]
                else:
                    for s in range(width):
                        grad_x[b, t, c, s] = 0
                # one partial sum per position (independent lanes: vectorises), added up at the end
                acc = partial[c]
                if t == 0:
                    for s in range(width):
                        acc[s] += delay_gradient_term(g[b, 0, c, s], 0.0, y[b, 0, c, s])
                else:
                    for s in range(width):
                        acc[s] += delay_gradient_term(g[b, t, c, s], y[b, t - 1, c, s], y[b, t, c, s])
    if width > 1:
        for c in range(channels):
            grad_delay[c] = partial[c].sum()


@jit
def shift_rows(x, shifts, out):
    """:func:`shift_time` on rows: ``out[b, t, i] = x[b, t - shifts[i], i]`` (0 outside ``[0, T)``).

    ``x`` and ``out`` are ``(N, T, K)`` arrays whose step rows are contiguous, the ``K``
    values of a step in the same (any) order in both; ``shifts`` (int64, ``K``) gives each
    value's shift. One loop over each output row, whatever the layout of the channels
    (channels-last convolution outputs included) and per channel or per position.
    """
    n, steps, width = out.shape
    for b in range(n):
        for t in range(steps):
            row = out[b, t]
            for i in range(width):
                src = source_step(t, shifts[i])
                row[i] = x[b, src, i] if in_sequence(src, steps) else 0


@jit
def shift_rows_adjoint(g, y, shifts, grad_x, acc):
    """:func:`shift_time_adjoint` on rows (the layout of :func:`shift_rows`).

    ``grad_x[b, t, i] = g[b, t + shifts[i], i]`` (0 past the end), and ``acc[i]`` (float64,
    ``K``, written) receives ``sum_{b, t} g[b, t, i] * (y[b, t - 1, i] - y[b, t, i])`` with
    ``y[b, -1] = 0``: the caller adds up the values of each channel.
    """
    n, steps, width = g.shape
    for i in range(width):
        acc[i] = 0.0
    for b in range(n):
        for t in range(steps):
            row = grad_x[b, t]
            for i in range(width):
                src = source_step(t, -shifts[i])
                row[i] = g[b, src, i] if in_sequence(src, steps) else 0
            g_row, y_row = g[b, t], y[b, t]
            if t == 0:
                for i in range(width):
                    acc[i] += delay_gradient_term(g_row[i], 0.0, y_row[i])
            else:
                y_before = y[b, t - 1]
                for i in range(width):
                    acc[i] += delay_gradient_term(g_row[i], y_before[i], y_row[i])


# --------------------------------------------------------------------------- axon delay line


@jit
def delay_line_step(history, head, x, delays, binary, out):
    """One step of a zero-latency delay line per neuron.

    ``x[i]`` is stored in ``history[head, i]``, then ``out[i]`` is the message stored
    ``delays[i]`` steps ago (``delays[i] = 0``: ``x[i]`` itself). The caller advances
    ``head`` by one each step, modulo ``depth = history.shape[0]``; delays must lie in
    ``[0, depth - 1]`` (larger ones are taken modulo ``depth``, never read out of bounds).

    Parameters
    ----------
    history : array (depth, n)
        Ring buffer of past messages (zeros after a reset), C-contiguous.
    head : int
        Row of this step.
    x : array (n,)
        Received messages.
    delays : int array (n,)
        Delay of every neuron.
    binary : bool
        Store every nonzero message as 1 (binary spikes); else pass payloads unchanged.
    out : array (n,)
        Emitted messages.
    """
    depth = history.shape[0]
    for i in range(x.shape[0]):
        v = x[i]
        if binary:
            history[head, i] = 1 if v != 0 else 0
        else:
            history[head, i] = v
        out[i] = history[(head - delays[i]) % depth, i]


def delay_line(x: np.ndarray, delays, max_delay: int | None = None, num_message_bits: int = 0,
               reset_interval: int = 0, reset_offset: int = 0) -> np.ndarray:
    """Run :func:`delay_line_step` over a whole sequence (what ``AxonDelay`` emits).

    Parameters
    ----------
    x : numpy.ndarray
        Messages ``(n, T)``, time last (integers or floats).
    delays : int or array_like
        Delay per neuron, broadcast to ``(n,)``.
    max_delay : int, optional
        Depth of the line minus one (default: the largest delay).
    num_message_bits : int, default 0
        0: binary (nonzero -> 1); otherwise payloads pass unchanged.
    reset_interval, reset_offset : int
        The history is cleared before the steps with ``t % reset_interval ==
        reset_offset % reset_interval`` (``t`` counted from 1 as Lava's ``time_step``).

    Returns
    -------
    numpy.ndarray
        ``(n, T)`` emitted messages, int64 for integer input, else float64.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"delay_line: x must be (n, T), got shape {x.shape}")
    n, steps = x.shape
    d = np.asarray(delays)
    if max_delay is None:
        max_delay = int(d.max(initial=0)) if d.size else 0
    d = as_int_delays(d, "delay_line", (n,), max_delay)
    dtype = np.int64 if x.dtype.kind in "biu" else np.float64
    xs = np.ascontiguousarray(x.T, dtype=dtype)
    history = np.zeros((max_delay + 1, n), dtype)
    out = np.zeros((steps, n), dtype)
    for t in range(steps):
        step = t + 1
        if reset_interval > 0 and step % reset_interval == reset_offset % reset_interval:
            history[...] = 0
        delay_line_step(history, step % (max_delay + 1), xs[t], d, num_message_bits == 0, out[t])
    return np.ascontiguousarray(out.T)


# --------------------------------------------------------------------------- DelayDense


@jit
def _advance(a_buff):
    """Column ``k + 1`` becomes column ``k``; the last column is cleared."""
    n_out, depth = a_buff.shape
    for i in range(n_out):
        for k in range(depth - 1):
            a_buff[i, k] = a_buff[i, k + 1]
        a_buff[i, depth - 1] = 0


@jit
def delay_dense_fixed(wt, dt, s, binary, weight_exp, a_buff, acc):
    """lava-nc DelayDense fixed_pt step, after ``a_buff[:, 0]`` has been sent.

    Parameters
    ----------
    wt : int32 array (n_in, n_out)
        Effective weights (:func:`~lava_dl.core.synapse.loihi_dense_weights`), transposed.
    dt : int32 array (n_in, n_out)
        Delays, transposed; in ``[0, a_buff.shape[1] - 1]``.
    s : int64 array (n_in,)
        Input; with ``binary`` every nonzero value counts as 1.
    binary : bool
        Binary input.
    weight_exp : int
        Shift of every (output, delay) sum of the step.
    a_buff : int32 array (n_out, max_delay + 1)
        Activation buffer (updated in place, wrapping at 32 bits).
    acc : int64 array (n_out, max_delay + 1)
        Scratch for the sums of the step.
    """
    _advance(a_buff)
    n_out = a_buff.shape[0]
    # sum each (output, delay) slot of the step in 64 bits, then shift once (a left shift of the
    # sum equals the sum of shifted terms modulo the 32-bit buffer, a right shift needs the sum)
    acc[...] = 0
    for j in range(s.shape[0]):
        v = s[j]
        if v == 0:
            continue
        w_row = wt[j]
        d_row = dt[j]
        for i in range(n_out):
            acc[i, d_row[i]] += np.int64(w_row[i]) if binary else np.int64(w_row[i]) * v
    _add_shifted(acc, weight_exp, a_buff)


@inline
def _add_shifted(acc, weight_exp, a_buff):
    """``a_buff += shift(acc, weight_exp)`` for every nonzero (output, delay) sum of the step, wrapping
    at ``a_buff``'s 32 bits."""
    for i in range(acc.shape[0]):
        for k in range(acc.shape[1]):
            a = acc[i, k]
            if a != 0:
                a_buff[i, k] = np.int64(a_buff[i, k]) + shift(a, weight_exp)


@jit
def delay_sparse_fixed(starts, rows, values, delays, s, binary, weight_exp, a_buff, acc):
    """:func:`delay_dense_fixed` for a sparse matrix: the nonzero entries of input ``j`` are
    ``rows[starts[j]:starts[j + 1]]``, with their ``values`` and ``delays`` (the layout of
    :func:`lava_dl.core.synapse.sparse_columns`); the same buffer, sums and shift."""
    _advance(a_buff)
    acc[...] = 0
    for j in range(s.shape[0]):
        v = s[j]
        if v == 0:
            continue
        for k in range(starts[j], starts[j + 1]):
            acc[rows[k], delays[k]] += np.int64(values[k]) if binary else np.int64(values[k]) * v
    _add_shifted(acc, weight_exp, a_buff)


@jit
def delay_sparse_float(starts, rows, values, delays, s, binary, scale, a_buff):
    """:func:`delay_dense_float` for a sparse matrix (the layout of :func:`delay_sparse_fixed`)."""
    _advance(a_buff)
    for j in range(s.shape[0]):
        v = s[j]
        if v == 0:
            continue
        for k in range(starts[j], starts[j + 1]):
            term = values[k] if binary else values[k] * v
            a_buff[rows[k], delays[k]] += term * scale


@jit
def delay_dense_float(wt, dt, s, binary, scale, a_buff):
    """Floating-point DelayDense step (same buffer logic, ``w * s * scale``, no clipping or shift).

    ``wt``, ``s`` and ``a_buff`` are float64; ``scale`` is ``2**weight_exp``.
    """
    _advance(a_buff)
    n_out = a_buff.shape[0]
    for j in range(s.shape[0]):
        v = s[j]
        if v == 0:
            continue
        w_row = wt[j]
        d_row = dt[j]
        for i in range(n_out):
            term = w_row[i] if binary else w_row[i] * v
            a_buff[i, d_row[i]] += term * scale


def delay_dense(weights: np.ndarray, delays, s: np.ndarray, num_message_bits: int = 0,
                weight_exp: int = 0, max_delay: int | None = None) -> np.ndarray:
    """Run :func:`delay_dense_fixed` over a sequence (what DelayDense's ``a_out`` sends).

    Parameters
    ----------
    weights : numpy.ndarray
        Effective integer weights ``(n_out, n_in)`` (output of ``loihi_dense_weights``).
    delays : int or numpy.ndarray
        Scalar or ``(n_out, n_in)`` integer delays.
    s : numpy.ndarray
        Input ``(n_in, T)``, time last.
    num_message_bits : int, default 0
        0 for binary input, else graded.
    weight_exp : int, default 0
        Shift of the step sums.
    max_delay : int, optional
        Buffer depth minus one (default: the largest delay).

    Returns
    -------
    numpy.ndarray
        int32 ``(n_out, T)``: column ``t`` is what is sent at step ``t + 1`` (column 0 is
        sent before any input arrives and is all zeros).
    """
    w = np.asarray(weights, dtype=np.int32)
    d = np.asarray(delays)
    if max_delay is None:
        max_delay = int(d.max(initial=0))
    d = as_int_delays(d, "delay_dense", w.shape, max_delay)
    s = np.asarray(s, dtype=np.int64)
    wt = np.ascontiguousarray(w.T)
    dt = np.ascontiguousarray(d.T)
    a_buff = np.zeros((w.shape[0], max_delay + 1), np.int32)
    acc = np.zeros(a_buff.shape, np.int64)
    out = np.zeros((w.shape[0], s.shape[1]), np.int32)
    for t in range(s.shape[1]):
        out[:, t] = a_buff[:, 0]
        delay_dense_fixed(wt, dt, np.ascontiguousarray(s[:, t]), num_message_bits == 0, int(weight_exp),
                          a_buff, acc)
    return out
