"""Dense synapse Lava Process (arithmetic in :mod:`lava_dl.core.synapse`)."""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess, LogConfig
from lava.magma.core.process.variable import Var

from lava_dl.core import synapse as _syn


def _sign_mode_value(sign_mode, where: str) -> int | None:
    """Accept None, our :class:`~lava_dl.core.synapse.SignMode`, lava-nc's SignMode or an int."""
    if sign_mode is None:
        return None
    raw = getattr(sign_mode, "value", sign_mode)
    try:
        mode = _syn.SignMode(int(raw))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: sign_mode must be None or one of {[m.name for m in _syn.SignMode]}, "
                         f"got {sign_mode!r}") from err
    return None if mode == _syn.SignMode.NULL else int(mode)


def synapse_arguments(where: str, n_out: int, num_weight_bits, weight_exp, num_message_bits, sign_mode,
                      a_bias) -> tuple[int, int, int, int | None, np.ndarray]:
    """The arguments a Dense-like synapse shares, checked: ``(num_weight_bits, weight_exp,
    num_message_bits, sign mode value, a_bias as an (n_out,) int64 array)``."""
    num_weight_bits = _syn.check_int(num_weight_bits, where, "num_weight_bits", 1, 9)
    weight_exp = _syn.check_int(weight_exp, where, "weight_exp", -24, 24)
    num_message_bits = _syn.check_int(num_message_bits, where, "num_message_bits", 0, 32)
    mode = _sign_mode_value(sign_mode, where)
    bias = np.asarray(a_bias)
    if bias.dtype.kind not in "iub" and not (bias.dtype.kind == "f" and np.all(np.mod(bias, 1) == 0)):
        raise ValueError(f"{where}: a_bias must hold integers, got {a_bias!r}")
    try:
        bias = np.broadcast_to(bias.astype(np.int64), (n_out,)).copy()
    except ValueError:
        raise ValueError(f"{where}: a_bias must be a scalar or hold one value per output ({n_out}), "
                         f"got shape {bias.shape}") from None
    return num_weight_bits, weight_exp, num_message_bits, mode, bias


def declare_synapse(proc: AbstractProcess, weights, a_buff_shape: tuple[int, ...], weight_exp: int,
                    num_weight_bits: int, num_message_bits: int) -> None:
    """Give ``proc`` the ports and Vars every Dense-like synapse has: ``s_in`` ``(n_in,)``, ``a_out``
    ``(n_out,)``, ``weights`` (``init=weights``, ``(n_out, n_in)``), ``a_buff`` (zeros), ``weight_exp``,
    ``num_weight_bits``, ``num_message_bits``."""
    n_out, n_in = weights.shape
    proc.s_in = InPort(shape=(n_in,))
    proc.a_out = OutPort(shape=(n_out,))
    proc.weights = Var(shape=weights.shape, init=weights)
    proc.a_buff = Var(shape=a_buff_shape, init=0)
    proc.weight_exp = Var(shape=(1,), init=weight_exp)
    proc.num_weight_bits = Var(shape=(1,), init=num_weight_bits)
    proc.num_message_bits = Var(shape=(1,), init=num_message_bits)


class Dense(AbstractProcess):
    """Dense synapse: ``a_out = W @ s_in`` with Loihi weight handling and one step of latency.

    Same arguments and semantics as lava-nc's ``Dense``; the ``fixed_pt`` model is
    bit-identical to lava-nc's ``PyDenseModelBitAcc`` (see :mod:`lava_dl.core.synapse`).

    Parameters
    ----------
    weights : numpy.ndarray
        Integer matrix ``(n_out, n_in)`` with values in ``[-256, 255]``.
    num_weight_bits : int, default 8
        Weight precision in ``[1, 9]`` (9 only makes sense for MIXED matrices with odd
        entries, as produced by :func:`~lava_dl.core.synapse.optimize_weight_bits`).
    weight_exp : int, default 0
        The accumulated sum is shifted left by ``weight_exp`` (right, arithmetic, if
        negative); in ``[-24, 24]``.
    num_message_bits : int, default 0
        0: binary input (every nonzero input counts as 1); otherwise graded input.
    sign_mode : SignMode, int or None, default None
        Loihi sign mode; derived from the matrix when None (as lava-nc does).
    a_bias : int or array_like, optional
        Integer constant added to every output message (``(n_out,)`` or scalar; default 0):
        how a recurrent synapse carries KWTA's constant inhibition offset. Not in lava-nc.
    name : str, optional
        Process name.
    log_config : LogConfig, optional
        Lava logging configuration.

    Notes
    -----
    Ports: ``s_in`` ``(n_in,)``, ``a_out`` ``(n_out,)``. Vars: ``weights``, ``a_buff``,
    ``weight_exp``, ``num_weight_bits``, ``num_message_bits``, ``a_bias``. As in lava-nc, the fixed
    model replaces ``weights`` by the clipped/truncated matrix at the first step.

    lava-nc keeps ``weight_exp`` in ``proc_params`` only, and code written for it changes the
    exponent there before the first run (lava-dl's own tests do): a change of
    ``proc_params['weight_exp']`` after construction is added to the ``weight_exp`` Var.
    """

    def __init__(self, *, weights: np.ndarray, num_weight_bits: int = 8, weight_exp: int = 0,
                 num_message_bits: int = 0, sign_mode=None, a_bias=0, name: str | None = None,
                 log_config: LogConfig | None = None) -> None:
        where = "Dense"
        try:
            w = _syn.as_int_weights(weights, where, 2)
            num_weight_bits, weight_exp, num_message_bits, mode, bias = synapse_arguments(
                where, w.shape[0], num_weight_bits, weight_exp, num_message_bits, sign_mode, a_bias)
        except (TypeError, ValueError):
            # leave a consistent (empty) Process behind: lava's __del__ calls stop()
            super().__init__(name=name, log_config=log_config)
            raise
        super().__init__(weights=w, num_weight_bits=num_weight_bits, weight_exp=weight_exp,
                         weight_exp_built=weight_exp, num_message_bits=num_message_bits, sign_mode=mode,
                         name=name, log_config=log_config)
        declare_synapse(self, w, (w.shape[0],), weight_exp, num_weight_bits, num_message_bits)
        self.a_bias = Var(shape=(w.shape[0],), init=bias)
