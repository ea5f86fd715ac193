"""Delay Lava Processes: a zero-latency axonal delay line and lava-nc's DelayDense (kernels in
:mod:`lava_dl.core.delay`)."""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess, LogConfig
from lava.magma.core.process.variable import Var

from lava_dl.core import delay as _dly
from lava_dl.core import synapse as _syn
from lava_dl.lava_glue import check_shape
from lava_dl.proc.dense import declare_synapse, synapse_arguments

_INT32_MAX = (1 << 31) - 1


class AxonDelay(AbstractProcess):
    """Axonal delay line: every step, receive on ``s_in`` and emit on ``s_out`` what arrived
    ``delays[i]`` steps earlier (``delays[i] = 0``: this step's message; no latency of its own).

    The deployed form of :class:`lava_dl.slayer.axon.Delay` (``delays = trunc(delay /
    sampling_time)``). Each neuron keeps a ring buffer of its last ``max_delay + 1``
    messages (the Var ``history``), so ``delays`` may be changed between runs anywhere
    in ``[0, max_delay]``. Before the first messages arrive the line emits zeros.

    Parameters
    ----------
    shape : int or tuple of int
        Shape of the ports.
    delays : int or array_like
        Integer delays in ``[0, max_delay]``, broadcast to ``shape``.
    max_delay : int, default 62
        Depth of the line minus one, in ``[0, 63]`` (Loihi 2 delays are 6 bits; lava-dl's
        netx clamps delays to 62).
    num_message_bits : int, default 0
        0: binary spikes (every nonzero message is emitted as 1); otherwise graded
        payloads, emitted unchanged (int32 in the fixed-point model).
    reset_interval : int, default 0
        If > 0, the history is cleared at every step with ``time_step % reset_interval
        == reset_offset % reset_interval`` (``time_step`` starts at 1), before that step's
        message is received: each sample starts with an empty line.
    reset_offset : int, default 0
        Phase of the reset.
    name : str, optional
        Process name.
    log_config : LogConfig, optional
        Lava logging configuration.

    Notes
    -----
    Ports: ``s_in``, ``s_out`` (``shape``). Vars: ``delays`` (``shape``), ``history``
    (``(max_delay + 1, *shape)``; row ``time_step % (max_delay + 1)`` holds this step's
    messages), ``num_message_bits``, ``reset_interval``, ``reset_offset``.
    """

    def __init__(self, *, shape, delays, max_delay: int = 62, num_message_bits: int = 0,
                 reset_interval: int = 0, reset_offset: int = 0, name: str | None = None,
                 log_config: LogConfig | None = None) -> None:
        where = "AxonDelay"
        try:
            shape = check_shape(shape, where)
            max_delay = _syn.check_int(max_delay, where, "max_delay", 0, _dly.MAX_DELAY)
            d = _dly.as_int_delays(delays, where, shape, max_delay)
            num_message_bits = _syn.check_int(num_message_bits, where, "num_message_bits", 0, 32)
            reset_interval = _syn.check_int(reset_interval, where, "reset_interval", 0, _INT32_MAX)
            reset_offset = _syn.check_int(reset_offset, where, "reset_offset", -_INT32_MAX, _INT32_MAX)
        except (TypeError, ValueError):
            # leave a consistent (empty) Process behind: lava's __del__ calls stop()
            super().__init__(name=name, log_config=log_config)
            raise
        super().__init__(shape=shape, max_delay=max_delay, num_message_bits=num_message_bits,
                         reset_interval=reset_interval, reset_offset=reset_offset, name=name,
                         log_config=log_config)
        self.s_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.delays = Var(shape=shape, init=d)
        self.history = Var(shape=(max_delay + 1, *shape), init=0)
        self.num_message_bits = Var(shape=(1,), init=num_message_bits)
        self.reset_interval = Var(shape=(1,), init=reset_interval)
        self.reset_offset = Var(shape=(1,), init=reset_offset)


def declare_delayed_synapse(proc: AbstractProcess, weights, delays, max_delay: int, weight_exp: int,
                            num_weight_bits: int, num_message_bits: int) -> None:
    """Give ``proc`` the ports and Vars of a synapse with a delay per synapse (DelayDense, DelaySparse):
    :func:`~lava_dl.proc.dense.declare_synapse`'s with ``a_buff`` ``(n_out, max_delay + 1)``, and
    ``delays`` (``init=delays``)."""
    declare_synapse(proc, weights, (weights.shape[0], max_delay + 1), weight_exp, num_weight_bits,
                    num_message_bits)
    proc.delays = Var(shape=weights.shape, init=delays)


class DelayDense(AbstractProcess):
    """Dense synapse with a delay per synapse (lava-nc's ``DelayDense``).

    ``a_out`` at step ``t`` carries, for every synapse ``(i, j)``, ``w[i, j] * s_in[j]``
    received at step ``t - 1 - delays[i, j]``: one step of synaptic latency, as Dense,
    plus the synapse's delay. Same arguments and semantics as lava-nc's
    ``DelayDense``; the ``fixed_pt`` model is bit-identical to lava-nc's
    ``PyDelayDenseModelBitAcc`` (see :mod:`lava_dl.core.delay`).

    Parameters
    ----------
    weights : numpy.ndarray
        Integer matrix ``(n_out, n_in)`` with values in ``[-256, 255]``.
    delays : int or numpy.ndarray
        One integer delay for all synapses or an ``(n_out, n_in)`` integer matrix, in
        ``[0, max_delay]`` (expand per-input or per-output vectors first, e.g. with
        ``np.broadcast_to``).
    max_delay : int, optional
        Buffer depth minus one, in ``[0, 63]`` (Loihi 2's 6-bit delays); set it when the
        delays will be changed at run time. None or 0 (lava-nc's default): the largest
        of ``delays``.
    num_weight_bits : int, default 8
        Weight precision in ``[1, 9]`` (as :class:`~lava_dl.proc.dense.Dense`).
    weight_exp : int, default 0
        The sums of each step are shifted left by ``weight_exp`` (right, arithmetic, if
        negative); in ``[-24, 24]``. The floating-point model multiplies by
        ``2**weight_exp`` (lava-nc's float model ignores it).
    num_message_bits : int, default 0
        0: binary input (every nonzero input counts as 1); otherwise graded input.
    sign_mode : SignMode, int or None, default None
        Loihi sign mode; derived from the matrix when None (as lava-nc does).
    name : str, optional
        Process name.
    log_config : LogConfig, optional
        Lava logging configuration.

    Notes
    -----
    Ports: ``s_in`` ``(n_in,)``, ``a_out`` ``(n_out,)``. Vars: ``weights``, ``delays``
    (``(n_out, n_in)``), ``a_buff`` (``(n_out, max_delay + 1)``, column ``k`` is sent
    ``k`` steps after the next send, as lava-nc), ``weight_exp``, ``num_weight_bits``,
    ``num_message_bits``. As in lava-nc, the fixed model replaces ``weights`` by the
    clipped/truncated matrix at the first step.
    """

    def __init__(self, *, weights: np.ndarray, delays, max_delay: int | None = None, num_weight_bits: int = 8,
                 weight_exp: int = 0, num_message_bits: int = 0, sign_mode=None, name: str | None = None,
                 log_config: LogConfig | None = None) -> None:
        where = "DelayDense"
        try:
            w = _syn.as_int_weights(weights, where, 2)
            d = self._check_delays(delays, max_delay, w.shape, where)
            max_delay = int(d.max()) if max_delay is None or max_delay == 0 else int(max_delay)
            num_weight_bits, weight_exp, num_message_bits, mode, _ = synapse_arguments(
                where, w.shape[0], num_weight_bits, weight_exp, num_message_bits, sign_mode, 0)
        except (TypeError, ValueError):
            super().__init__(name=name, log_config=log_config)
            raise
        super().__init__(weights=w, delays=d, max_delay=max_delay, num_weight_bits=num_weight_bits,
                         weight_exp=weight_exp, num_message_bits=num_message_bits, sign_mode=mode,
                         name=name, log_config=log_config)
        declare_delayed_synapse(self, w, d, max_delay, weight_exp, num_weight_bits, num_message_bits)

    @staticmethod
    def _check_delays(delays, max_delay, shape: tuple[int, int], where: str) -> np.ndarray:
        """``delays`` as an int32 ``shape`` matrix in ``[0, max_delay]`` (``max_delay <= 63``)."""
        if max_delay is not None:
            max_delay = _syn.check_int(max_delay, where, "max_delay", 0, _dly.MAX_DELAY)
        arr = np.asarray(delays)
        if arr.ndim not in (0, 2) or (arr.ndim == 2 and arr.shape != tuple(shape)):
            raise ValueError(f"{where}: delays must be an int or an (n_out, n_in) = {tuple(shape)} matrix "
                             f"like the weights, got shape {arr.shape} (expand per-input or per-output "
                             f"vectors first)")
        if max_delay:
            return _dly.as_int_delays(arr, where, tuple(shape), max_delay)
        return _dly.as_int_delays(arr, where, tuple(shape), _dly.MAX_DELAY, limit="Loihi 2's 6-bit delays")
