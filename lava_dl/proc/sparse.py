"""Sparse (CSR) synapse Lava Processes: lava-nc's ``Sparse`` and ``DelaySparse`` with lava_dl's kernels.

They subclass lava-nc's Process classes, so code that checks ``isinstance(synapse, Sparse)`` against
lava-nc's classes (lava-dl's tests do) finds them; their ``__init__`` is lava_dl's own (lava-nc's is not
run), and Lava's compiler gives them lava_dl's models (it matches a model's Process class exactly).
The arithmetic is Dense's and DelayDense's (:mod:`lava_dl.core.synapse`, :mod:`lava_dl.core.delay`)
over the stored entries of a ``scipy.sparse.csr_matrix``: the same weight rule on the stored values,
the same sums, so a Sparse synapse sends exactly what a Dense one of the same matrix sends. The work
and memory grow with the stored entries, not with ``n_out * n_in``.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.process import AbstractProcess, LogConfig
from lava.magma.core.process.variable import Var
from lava.proc.sparse import process as _lava_sparse

from lava_dl.core import delay as _dly
from lava_dl.core import synapse as _syn
from lava_dl.proc.delay import declare_delayed_synapse
from lava_dl.proc.dense import declare_synapse, synapse_arguments

__all__ = ["Sparse", "DelaySparse"]


class Sparse(_lava_sparse.Sparse):
    """Sparse synapse: ``a_out = W @ s_in`` for a CSR matrix ``W``, with Loihi weight handling and one
    step of latency.

    Same arguments and Vars as lava-nc's ``Sparse``, and the sums of
    :class:`~lava_dl.proc.dense.Dense` on the same matrix, bit for bit (the ``fixed_pt`` model equals
    lava-nc's ``PySparseModelBitAcc``; see :mod:`lava_dl.core.synapse`). Its kernel visits the stored
    entries of the inputs that are nonzero, so a matrix with few entries costs little in time and memory.

    Parameters
    ----------
    weights : scipy.sparse matrix or array, or numpy.ndarray
        Integer matrix ``(n_out, n_in)`` with values in ``[-256, 255]`` (a dense array is converted).
        Stored zeros are dropped and duplicate entries summed.
    num_weight_bits : int, default 8
        Weight precision in ``[1, 9]`` (as :class:`~lava_dl.proc.dense.Dense`).
    weight_exp : int, default 0
        The accumulated sum is shifted left by ``weight_exp`` (right, arithmetic, if negative); in
        ``[-24, 24]``. The floating-point model multiplies by ``2**weight_exp``.
    num_message_bits : int, default 0
        0: binary input (every nonzero input counts as 1); otherwise graded input.
    sign_mode : SignMode, int or None, default None
        Loihi sign mode; derived from the whole matrix (implicit zeros included) when None, as
        lava-nc does.
    a_bias : int or array_like, optional
        Integer constant added to every output message (``(n_out,)`` or scalar; default 0), as
        :class:`~lava_dl.proc.dense.Dense`'s. Not in lava-nc.
    name : str, optional
        Process name.
    log_config : LogConfig, optional
        Lava logging configuration.

    Notes
    -----
    Ports: ``s_in`` ``(n_in,)``, ``a_out`` ``(n_out,)``. Vars: ``weights`` (a ``csr_matrix``, as in
    lava-nc: ``get()`` returns one), ``a_buff``, ``weight_exp``, ``num_weight_bits``,
    ``num_message_bits``, ``a_bias``. The fixed model replaces ``weights`` by the clipped and truncated
    matrix at the first step, as lava-nc's does, but keeps its stored positions (lava-nc drops the
    entries truncation zeroes, after which ``weights.get()`` fails): ``weights.set(...)`` takes a matrix
    with the positions of the one given here.
    """

    def __init__(self, *, weights, num_weight_bits: int = 8, weight_exp: int = 0, num_message_bits: int = 0,
                 sign_mode=None, a_bias=0, name: str | None = None,
                 log_config: LogConfig | None = None) -> None:
        where = "Sparse"
        try:
            w = _syn.as_csr_weights(weights, where)
            num_weight_bits, weight_exp, num_message_bits, mode, bias = synapse_arguments(
                where, w.shape[0], num_weight_bits, weight_exp, num_message_bits, sign_mode, a_bias)
        except (TypeError, ValueError):
            # leave a consistent (empty) Process behind: lava's __del__ calls stop()
            AbstractProcess.__init__(self, name=name, log_config=log_config)
            raise
        AbstractProcess.__init__(self, num_weight_bits=num_weight_bits, weight_exp=weight_exp,
                                 weight_exp_built=weight_exp, num_message_bits=num_message_bits,
                                 sign_mode=mode, name=name, log_config=log_config)
        declare_synapse(self, w, (w.shape[0],), weight_exp, num_weight_bits, num_message_bits)
        self.a_bias = Var(shape=(w.shape[0],), init=bias)


class DelaySparse(_lava_sparse.DelaySparse):
    """Sparse synapse with a delay per synapse (lava-nc's ``DelaySparse``).

    :class:`~lava_dl.proc.delay.DelayDense`'s step over the stored entries of a CSR matrix: ``a_out``
    at step ``t`` carries, for every entry ``(i, j)``, ``w[i, j] * s_in[j]`` received at step
    ``t - 1 - delays[i, j]``. The ``fixed_pt`` model equals lava-nc's ``PyDelaySparseModelBitAcc``
    and DelayDense on the same matrices, bit for bit.

    Parameters
    ----------
    weights : scipy.sparse matrix or array, or numpy.ndarray
        Integer matrix ``(n_out, n_in)`` with values in ``[-256, 255]`` (as :class:`Sparse`).
    delays : int, scipy.sparse matrix or numpy.ndarray
        One integer delay for all synapses, or an ``(n_out, n_in)`` integer matrix (sparse or dense)
        in ``[0, max_delay]``; only its values at the stored weights matter (a sparse matrix's
        implicit entries are delay 0).
    max_delay : int, optional
        Buffer depth minus one, in ``[0, 63]`` (Loihi 2's 6-bit delays); set it when the delays will
        be changed at run time. None or 0 (lava-nc's default): the largest delay.
    num_weight_bits, weight_exp, num_message_bits, sign_mode, name, log_config
        As :class:`Sparse`.

    Notes
    -----
    Ports: ``s_in`` ``(n_in,)``, ``a_out`` ``(n_out,)``. Vars: ``weights`` and ``delays`` (both
    ``csr_matrix``; ``delays`` stores the nonzero delays of the stored weights), ``a_buff``
    (``(n_out, max_delay + 1)``, as :class:`~lava_dl.proc.delay.DelayDense`), ``weight_exp``,
    ``num_weight_bits``, ``num_message_bits``. As every sparse Var, ``delays.set(...)`` keeps the
    stored positions: a synapse whose delay is 0 (not stored) cannot get another at run time
    (use :class:`~lava_dl.proc.delay.DelayDense` for that).
    """

    def __init__(self, *, weights, delays, max_delay: int | None = None, num_weight_bits: int = 8,
                 weight_exp: int = 0, num_message_bits: int = 0, sign_mode=None, name: str | None = None,
                 log_config: LogConfig | None = None) -> None:
        where = "DelaySparse"
        try:
            w = _syn.as_csr_weights(weights, where)
            if max_delay is not None:
                max_delay = _syn.check_int(max_delay, where, "max_delay", 0, _dly.MAX_DELAY)
            d = self._entry_delays(delays, w, max_delay or None, where)
            max_delay = int(d.data.max(initial=0)) if not max_delay else max_delay
            num_weight_bits, weight_exp, num_message_bits, mode, _ = synapse_arguments(
                where, w.shape[0], num_weight_bits, weight_exp, num_message_bits, sign_mode, 0)
        except (TypeError, ValueError):
            AbstractProcess.__init__(self, name=name, log_config=log_config)
            raise
        AbstractProcess.__init__(self, max_delay=max_delay, num_weight_bits=num_weight_bits,
                                 weight_exp=weight_exp, num_message_bits=num_message_bits, sign_mode=mode,
                                 name=name, log_config=log_config)
        declare_delayed_synapse(self, w, d, max_delay, weight_exp, num_weight_bits, num_message_bits)

    @staticmethod
    def _entry_delays(delays, weights, max_delay: int | None, where: str):
        """The delays of the stored weights, checked, as an int32 ``csr_matrix`` whose stored entries
        are the nonzero ones (a subset of the weights' positions)."""
        from scipy import sparse

        limit = dict(limit="Loihi 2's 6-bit delays") if max_delay is None else {}
        top = _dly.MAX_DELAY if max_delay is None else max_delay
        rows, cols = weights.nonzero()
        if sparse.issparse(delays):
            if delays.shape != weights.shape:
                raise ValueError(f"{where}: delays must have the weights' shape {weights.shape}, "
                                 f"got {delays.shape}")
            values = np.asarray(sparse.csr_matrix(delays)[rows, cols]).reshape(-1)
        else:
            arr = np.asarray(delays)
            if arr.ndim not in (0, 2) or (arr.ndim == 2 and arr.shape != weights.shape):
                raise ValueError(f"{where}: delays must be an int or an (n_out, n_in) = {weights.shape} "
                                 f"matrix like the weights, got shape {arr.shape}")
            values = arr.reshape(-1) if arr.ndim == 0 else arr[rows, cols]
        values = _dly.as_int_delays(values, where, (len(rows),), top, **limit)
        matrix = sparse.csr_matrix((values, (rows, cols)), shape=weights.shape, dtype=np.int32)
        matrix.eliminate_zeros()
        matrix.sort_indices()
        return matrix
