"""Dense and convolutional synapses, as Loihi (and lava-nc's fixed_pt models) compute them.

This module is the one definition of synaptic arithmetic: the Lava ProcessModels
(``process_models/synapse_models.py``), the tests against the torch layers and any
fused runner call these functions. It imports numpy and numba (and its llvmlite) only.

Dense (lava-nc ``Dense`` fixed_pt)
    Once, on the weight matrix (:func:`loihi_dense_weights`): the sign mode is
    derived from the matrix unless given, weights are clipped to 8 bits for that
    mode (MIXED ``[-256, 255]``, EXCITATORY ``[0, 255]``, INHIBITORY ``[-255, 0]``)
    and ``8 - num_weight_bits + [MIXED]`` least significant bits of the magnitude
    are truncated. Every step (:func:`dense_fixed`): ``a = W @ s`` (with binary
    input, ``num_message_bits == 0``, every nonzero input counts as 1), then
    ``a << weight_exp`` or ``a >> -weight_exp`` (arithmetic). No saturation.

Sparse (lava-nc ``Sparse`` fixed_pt)
    Dense's arithmetic on a ``csr_matrix``: the same weight rule on its stored values
    (:func:`loihi_sparse_weights`), the same sums over its nonzero entries
    (:func:`sparse_fixed_rows`, column by column: :func:`sparse_columns`).

Conv (lava-nc ``Conv`` fixed_pt)
    Lava layout: input ``(x, y, c)``, kernel ``(out, kx, ky, in / groups)``,
    stride/padding/dilation in ``(x, y)`` order. Lava performs a true convolution
    (scipy ``convolve2d``), i.e. the kernel is flipped relative to torch's
    cross-correlation::

        a[X, Y, k] = sum_{i, j, c} s[X*sx + dx*(kx-1-i) - px, Y*sy + dy*(ky-1-j) - py, g*cg + c]
                                  * w[k, i, j, c]

    with ``g = k // (out / groups)`` and ``cg = in / groups``. The result is wrapped
    to signed 24 bits. ``weight_exp`` and ``num_weight_bits`` play no part (lava-nc's
    Conv model ignores them). Binary input (``num_message_bits == 0``) counts every
    nonzero value as 1, as for Dense.

ConvT, Pool, Unpool
    The same scatter kernel with other tap tables and kernel layouts (see the section
    "transposed conv and pooling" below): ConvT is the adjoint of Conv with the same
    weight array, Pool is Conv with one kernel shared depthwise, Unpool is ConvT with
    one kernel shared depthwise.

Both kernels are event driven: they loop over the nonzero inputs only.
"""

from __future__ import annotations

import enum
import operator
import typing as ty

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from lava_dl.core.fixed_point import any_nonzero, inline, jit, shift, wrap24

#: Range accepted for integer synaptic weights (8-bit magnitude + sign; MIXED mode range).
WEIGHT_MIN = -256
WEIGHT_MAX = 255
#: Inputs :func:`dense_accumulate` tests at once for a nonzero one before it looks at single values.
SCAN_CHUNK = 64

Pair = tuple[int, int]


class SignMode(enum.IntEnum):
    """Loihi synapse sign mode (same values as ``lava.utils.weightutils.SignMode``)."""

    NULL = 0
    MIXED = 1
    EXCITATORY = 2
    INHIBITORY = 3


# --------------------------------------------------------------------------- validation


def as_int_weights(weights, where: str, ndim: int, lo: int = WEIGHT_MIN, hi: int = WEIGHT_MAX) -> np.ndarray:
    """Check that ``weights`` is an ``ndim``-D array of integers in ``[lo, hi]``; return it as int32.

    Parameters
    ----------
    weights : array_like
        Candidate weights (integer or integer-valued float array).
    where : str
        Prefix for error messages.
    ndim : int
        Required number of dimensions.
    lo, hi : int
        Inclusive value range.

    Returns
    -------
    numpy.ndarray
        C-contiguous int32 copy.

    Raises
    ------
    TypeError
        If ``weights`` is not a numeric array.
    ValueError
        If the rank is wrong, the array is empty, or values are not integers in range.
    """
    arr = np.asarray(weights)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{where}: weights must be a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{where}: weights must be real, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{where}: weights must be a {ndim}-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{where}: weights must not be empty, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{where}: weights must be finite")
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{where}: weights must be integers (Loihi synapses are integer); "
                             f"quantize them first (e.g. slayer.quantize.quantize_8bit(..., descale=True))")
    wmin, wmax = arr.min(), arr.max()
    if wmin < lo or wmax > hi:
        raise ValueError(f"{where}: weights must lie in [{lo}, {hi}], got values in [{wmin}, {wmax}]")
    return np.ascontiguousarray(arr, dtype=np.int32)


def check_int(value, where: str, name: str, lo: int, hi: int) -> int:
    """Return ``value`` as a Python int in ``[lo, hi]`` or raise TypeError/ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: {name} must be an int, got {value!r}")
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{where}: {name} must be in [{lo}, {hi}], got {value}")
    return value


def make_pair(value, where: str, name: str, lo: int) -> Pair:
    """Broadcast an int or a 1-/2-sequence of ints to an ``(x, y)`` pair with values ``>= lo``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        pair = (int(value), int(value))
    else:
        try:
            seq = [v for v in np.asarray(value).reshape(-1).tolist()]
        except Exception as err:  # pragma: no cover - exotic input
            raise TypeError(f"{where}: {name} must be an int or a pair of ints, got {value!r}") from err
        if len(seq) == 1:
            seq = seq * 2
        if len(seq) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in seq):
            raise TypeError(f"{where}: {name} must be an int or a pair of ints, got {value!r}")
        pair = (seq[0], seq[1])
    if min(pair) < lo:
        raise ValueError(f"{where}: {name} must be >= {lo}, got {pair}")
    return pair


def conv_output_shape(input_shape: ty.Sequence[int], weight_shape: ty.Sequence[int], stride: Pair,
                      padding: Pair, dilation: Pair, where: str = "Conv") -> tuple[int, int, int]:
    """Output shape ``(x, y, out)`` of a Lava-layout convolution.

    Parameters
    ----------
    input_shape : sequence of int
        ``(x, y, c_in)``.
    weight_shape : sequence of int
        ``(out, kx, ky, c_in / groups)``.
    stride, padding, dilation : tuple of int
        ``(x, y)`` pairs.
    where : str
        Prefix for error messages.

    Raises
    ------
    ValueError
        If the (padded) input is smaller than the dilated kernel.
    """
    out = []
    for axis, name in enumerate("xy"):
        span = dilation[axis] * (weight_shape[1 + axis] - 1) + 1
        size = input_shape[axis] + 2 * padding[axis]
        if size < span:
            raise ValueError(f"{where}: the kernel does not fit along {name}: input {input_shape[axis]} "
                             f"+ 2*padding {padding[axis]} = {size} < dilated kernel size {span}")
        out.append((size - span) // stride[axis] + 1)
    return out[0], out[1], int(weight_shape[0])


def _check_input_shape(input_shape, where: str) -> tuple[int, int, int]:
    try:
        input_shape = tuple(int(v) for v in input_shape)
    except TypeError as err:
        raise TypeError(f"{where}: input_shape must be a tuple (x, y, c), got {input_shape!r}") from err
    if len(input_shape) != 3 or min(input_shape) <= 0:
        raise ValueError(f"{where}: input_shape must be 3 positive sizes (x, y, c), got {input_shape}")
    return input_shape


def _check_geometry(padding, stride, dilation, where: str) -> tuple[Pair, Pair, Pair]:
    """``(padding, stride, dilation)`` as ``(x, y)`` pairs (padding >= 0, the others >= 1)."""
    return (make_pair(padding, where, "padding", 0), make_pair(stride, where, "stride", 1),
            make_pair(dilation, where, "dilation", 1))


def check_conv(weight, input_shape, padding, stride, dilation, groups, where: str = "Conv",
               lo: int = WEIGHT_MIN, hi: int = WEIGHT_MAX):
    """Validate Lava-layout convolution arguments.

    Returns
    -------
    tuple
        ``(weight_int32, input_shape, output_shape, padding, stride, dilation, groups)``
        with the pairs in ``(x, y)`` order.
    """
    weight = as_int_weights(weight, where, 4, lo, hi)
    input_shape = _check_input_shape(input_shape, where)
    padding, stride, dilation = _check_geometry(padding, stride, dilation, where)
    groups = check_int(groups, where, "groups", 1, 1 << 30)
    c_in, c_out = input_shape[2], weight.shape[0]
    if c_in % groups or c_out % groups:
        raise ValueError(f"{where}: in channels ({c_in}) and out channels ({c_out}) must both be "
                         f"divisible by groups ({groups})")
    if weight.shape[3] != c_in // groups:
        raise ValueError(f"{where}: weight shape {weight.shape} is (out, kx, ky, in/groups) and needs "
                         f"in/groups = {c_in // groups} for input_shape {input_shape} and groups {groups}")
    output_shape = conv_output_shape(input_shape, weight.shape, stride, padding, dilation, where)
    return weight, input_shape, output_shape, padding, stride, dilation, groups


# --------------------------------------------------------------------------- dense


def determine_sign_mode(weights: np.ndarray) -> SignMode:
    """Sign mode Lava derives from a matrix: EXCITATORY if min >= 0, INHIBITORY if max <= 0, else MIXED."""
    if np.min(weights) >= 0:
        return SignMode.EXCITATORY
    if np.max(weights) <= 0:
        return SignMode.INHIBITORY
    return SignMode.MIXED


def loihi_dense_weights(weights: np.ndarray, num_weight_bits: int = 8,
                        sign_mode: int | None = None) -> np.ndarray:
    """Apply Loihi's weight handling once (clip to 8 bits for the sign mode, truncate LSBs).

    Parameters
    ----------
    weights : numpy.ndarray
        Integer weight matrix ``(n_out, n_in)``.
    num_weight_bits : int, default 8
        Weight precision; ``8 - num_weight_bits + [MIXED]`` LSBs of the magnitude are
        cleared (never fewer than 0).
    sign_mode : SignMode or int, optional
        Sign mode; derived from the matrix (:func:`determine_sign_mode`) when None or NULL.

    Returns
    -------
    numpy.ndarray
        The effective int32 weights used by :func:`dense_fixed`.
    """
    w = np.asarray(weights).astype(np.int64)
    mode = SignMode(int(sign_mode)) if sign_mode else determine_sign_mode(w)
    mixed = int(mode == SignMode.MIXED)
    if mode == SignMode.INHIBITORY:
        w = -w
    w = np.clip(w, -256 * mixed, 255)
    drop = max(0, 8 - int(num_weight_bits) + mixed)
    w = (w >> drop) << drop
    if mode == SignMode.INHIBITORY:
        w = -w
    return np.ascontiguousarray(w, dtype=np.int32)


@intrinsic
def _prefetch(typingctx, arr, index):
    """Ask the CPU to bring the cache line of ``arr[index]`` (a contiguous 1-d array, a valid
    index) into its caches ahead of use: LLVM's ``prefetch`` hint, which changes no result."""
    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        at = builder.gep(data, [context.cast(builder, args[1], signature.args[1], types.int64)])
        byte_ptr = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        signature_ir = ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32])
        hint = cgutils.get_or_insert_function(builder.module, signature_ir, "llvm.prefetch.p0i8")
        # read, keep in all cache levels, data cache
        builder.call(hint, [builder.bitcast(at, byte_ptr), ir.Constant(i32, 0), ir.Constant(i32, 3),
                            ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, index), codegen


#: Weight matrices above this size are read from memory rather than cache, row by row at random:
#: :func:`dense_accumulate` then asks for the rows of the next inputs ahead (:data:`PREFETCH_ROWS`).
PREFETCH_BYTES = 1 << 20
#: How many nonzero inputs ahead :func:`dense_accumulate` prefetches weight rows.
PREFETCH_ROWS = 8
#: Weight matrices up to this size have their rows summed in registers by :func:`dense_accumulate`;
#: larger ones (beyond the caches: a pass over the rows per chunk of outputs waits on memory) are read
#: row by row, with the rows prefetched.
REGISTER_ROWS_BYTES = 1 << 23


@inline
def _accumulate_rows(wt, s, binary, out, nonzero, count, prefetch):
    """The rows ``wt[j]`` (times ``s[j]`` unless ``binary``) of the ``count`` inputs ``nonzero`` added to
    ``out`` in that order; with ``prefetch`` (a constant at each call) the rows
    :data:`PREFETCH_ROWS` inputs ahead are fetched into the caches meanwhile."""
    n_out = out.shape[0]
    flat = wt.reshape(-1)
    line = max(1, 64 // wt.itemsize)  # elements per 64-byte cache line
    for k in range(count):
        if prefetch and k + PREFETCH_ROWS < count:
            ahead = np.int64(nonzero[k + PREFETCH_ROWS]) * n_out
            for c in range(0, n_out, line):
                _prefetch(flat, ahead + c)
        j = np.int64(nonzero[k])
        row = wt[j]
        if binary:
            for i in range(n_out):
                out[i] += row[i]
        else:
            v = s[j]
            for i in range(n_out):
                out[i] += row[i] * v


@jit
def dense_accumulate(wt, s, binary, out):
    """``out = W @ s`` over the nonzero inputs, with ``wt = W.T`` (shape ``(n_in, n_out)``, C-contiguous).

    Integer arrays give exact integer sums in ``out``'s dtype (use int64); float arrays a
    float sum. With ``binary`` every nonzero ``s[j]`` counts as 1.
    """
    n_in = s.shape[0]
    _dense_sums(wt, s, binary, out, np.empty(n_in, np.uint64), np.empty(0 if binary else n_in, s.dtype))


@jit
def _dense_sums(wt, s, binary, out, listed, vals):
    """:func:`dense_accumulate` with its scratch arrays: ``listed`` (``n_in`` uint64) and ``vals``
    (``n_in`` of ``s``'s dtype, for graded input).

    The rows of the nonzero inputs are added in ascending order of the inputs, as one loop over them
    would add them (float sums keep that order); the inputs are listed without a branch per input (a
    store each, and a count that grows by ``s[j] != 0``: branches on sparse random input mispredict).
    Where the rows add as whole vectors (:func:`_make_row_sum`) and the matrix is not huge, the sums
    are made in registers, a chunk of outputs at a time over all listed rows: about 1.2-3x faster than
    adding each row to ``out`` in turn, which loads and stores ``out`` once per row.
    """
    n_out = out.shape[0]
    n_in = s.shape[0]
    for i in range(n_out):
        out[i] = 0
    flat = wt.reshape(-1)
    direct = _rows_in_vectors(out, flat, None) if binary else _rows_in_vectors(out, flat, vals)
    if direct and wt.size * wt.itemsize <= REGISTER_ROWS_BYTES:
        if not any_nonzero(s, 0, n_in):
            return
        width = np.uint64(n_out)
        count = 0
        for j in range(n_in):
            listed[count] = np.uint64(j) * width
            if not binary:
                vals[count] = s[j]
            count += s[j] != 0
        if binary:
            _add_long_rows(out, np.uint64(0), flat, np.uint64(0), listed, None, count, width)
        else:
            _add_long_rows(out, np.uint64(0), flat, np.uint64(0), listed, vals, count, width)
        return
    # otherwise each listed row is added to ``out`` in turn (blocks of zero inputs skipped)
    count = 0
    for start in range(0, n_in, SCAN_CHUNK):
        stop = min(start + SCAN_CHUNK, n_in)
        if not any_nonzero(s, start, stop):
            continue
        for j in range(start, stop):
            listed[count] = j
            count += s[j] != 0
    if wt.size * wt.itemsize > PREFETCH_BYTES:
        _accumulate_rows(wt, s, binary, out, listed, count, True)
    else:
        _accumulate_rows(wt, s, binary, out, listed, count, False)


@jit
def dense_fixed(wt, s, binary, weight_exp, out):
    """Lava Dense fixed_pt step: :func:`dense_accumulate` then ``shift(a, weight_exp)`` (int64 ``out``):
    :func:`dense_fixed_rows` for one row, summed in ``out`` itself."""
    dense_fixed_rows(wt, s.reshape(1, -1), binary, weight_exp, out, out.reshape(1, -1))


@jit
def dense_fixed_rows(wt, s, binary, weight_exp, acc, out):
    """:func:`dense_fixed` for every row of ``s`` (samples, n_in) into the same row of ``out`` (samples,
    n_out), in one call.

    Each row's sums are made in ``acc`` (n_out,), whose dtype must hold them exactly (a narrower
    one adds more lanes at once: int16 where the largest column sum of ``|W|`` is below ``2**15``,
    for binary input), then shifted by ``weight_exp`` and stored in ``out``'s dtype.
    """
    listed = np.empty(s.shape[1], np.uint64)
    vals = np.empty(0 if binary else s.shape[1], s.dtype)
    for b in range(s.shape[0]):
        _dense_sums(wt, s[b], binary, acc, listed, vals)
        widen_shift(acc, weight_exp, False, out[b])


# --------------------------------------------------------------------------- sparse

def as_csr_weights(weights, where: str, lo: int = WEIGHT_MIN, hi: int = WEIGHT_MAX):
    """``weights`` (a scipy sparse matrix or array, or a dense 2-D array) as a canonical int32
    ``csr_matrix``: duplicates summed, column indices sorted, stored zeros dropped; its stored
    values checked as :func:`as_int_weights` checks a dense matrix."""
    from scipy import sparse

    if sparse.issparse(weights):
        if weights.ndim != 2:
            raise ValueError(f"{where}: weights must be a 2-D matrix, got shape {weights.shape}")
        matrix = sparse.csr_matrix(weights, copy=True)
        matrix.sum_duplicates()
        if matrix.shape[0] * matrix.shape[1] == 0:
            raise ValueError(f"{where}: weights must not be empty, got shape {matrix.shape}")
        data = as_int_weights(matrix.data, where, 1, lo, hi) if matrix.nnz else matrix.data.astype(np.int32)
        matrix = sparse.csr_matrix((data, matrix.indices, matrix.indptr), shape=matrix.shape)
    else:
        matrix = sparse.csr_matrix(as_int_weights(weights, where, 2, lo, hi))
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return matrix


def sparse_sign_mode(matrix) -> SignMode:
    """:func:`determine_sign_mode` of a sparse matrix, its implicit zeros counted (as in the dense one)."""
    values = matrix.data
    if matrix.nnz < matrix.shape[0] * matrix.shape[1]:
        values = np.append(values, 0)
    return determine_sign_mode(values)


def loihi_sparse_weights(matrix, num_weight_bits: int = 8, sign_mode: int | None = None):
    """:func:`loihi_dense_weights` of a ``csr_matrix``: the same rule on its stored values (the sign
    mode derived from the whole matrix unless given), the same stored positions (zeros the rule makes
    stay stored, so the matrix keeps its pattern for ``Var.get``/``set``)."""
    from scipy.sparse import csr_matrix

    mode = SignMode(int(sign_mode)) if sign_mode else sparse_sign_mode(matrix)
    data = loihi_dense_weights(matrix.data.reshape(1, -1), num_weight_bits, mode).reshape(-1)
    return csr_matrix((data, matrix.indices.copy(), matrix.indptr.copy()), shape=matrix.shape)


def sparse_columns(matrix, dtype=None, entries: tuple = ()) -> tuple:
    """The kernels' layout of a canonical ``(n_out, n_in)`` ``csr_matrix``: ``(starts, rows, values,
    *entries)``, input ``j``'s stored entries being ``rows[starts[j]:starts[j + 1]]`` (ascending) with
    their ``values`` (in ``dtype``, default the matrix's). ``entries`` are arrays of one value per stored
    entry in the matrix's order (a delay each), returned in the layout's order."""
    from scipy.sparse import csr_matrix

    order = csr_matrix((np.arange(1, matrix.nnz + 1), matrix.indices, matrix.indptr), shape=matrix.shape)
    order = order.tocsc()
    order.sort_indices()
    taken = order.data - 1  # the csr position of each entry in column order
    values = matrix.data[taken]
    return (order.indptr.astype(np.int64), order.indices.astype(np.int32),
            np.ascontiguousarray(values if dtype is None else values.astype(dtype)),
            *(np.ascontiguousarray(np.asarray(entry)[taken]) for entry in entries))


def sparse_row_bound(matrix) -> int:
    """The largest sum of ``|w|`` over one output's inputs: every sum of binary input lies within it."""
    if not matrix.nnz:
        return 0
    return int(np.abs(matrix.astype(np.int64)).sum(axis=1).max())


@jit
def sparse_accumulate(starts, rows, values, s, binary, out):
    """``out = W @ s`` over the nonzero inputs, ``W`` given column by column (:func:`sparse_columns`).

    Integer arrays give exact integer sums in ``out``'s dtype; float arrays a float sum (inputs in
    ascending order, each column's entries in ascending row order). With ``binary`` every nonzero
    ``s[j]`` counts as 1.
    """
    for i in range(out.shape[0]):
        out[i] = 0
    n_in = s.shape[0]
    for start in range(0, n_in, SCAN_CHUNK):
        stop = min(start + SCAN_CHUNK, n_in)
        if not any_nonzero(s, start, stop):
            continue
        for j in range(start, stop):
            v = s[j]
            if v == 0:
                continue
            if binary:
                for k in range(starts[j], starts[j + 1]):
                    out[rows[k]] += values[k]
            else:
                for k in range(starts[j], starts[j + 1]):
                    out[rows[k]] += values[k] * v


@jit
def sparse_fixed_rows(starts, rows, values, s, binary, weight_exp, acc, out):
    """:func:`dense_fixed_rows` for a sparse matrix (:func:`sparse_columns`): each row of ``s``
    (samples, n_in) summed in ``acc`` (n_out,; a dtype that holds the sums exactly), shifted by
    ``weight_exp`` into the same row of ``out`` (samples, n_out)."""
    for b in range(s.shape[0]):
        sparse_accumulate(starts, rows, values, s[b], binary, acc)
        widen_shift(acc, weight_exp, False, out[b])


def kernel_to_lava(weight: np.ndarray) -> np.ndarray:
    """A torch kernel as a Lava synapse holds it: ``(a, b, kH, kW)`` -> ``(a, kx, ky, b)``, or a shared
    ``(kH, kW)`` kernel -> ``(kx, ky)``. Both spatial axes are flipped (Lava convolves, torch
    correlates) and ``(H, W)`` becomes ``(x, y)``; :func:`kernel_from_lava` is the inverse."""
    weight = np.asarray(weight)
    flipped = weight[..., ::-1, ::-1]
    return np.ascontiguousarray(flipped.T if weight.ndim == 2 else flipped.transpose(0, 3, 2, 1))


def kernel_from_lava(weight: np.ndarray) -> np.ndarray:
    """The inverse of :func:`kernel_to_lava`: a Lava ``(a, kx, ky, b)`` (or ``(kx, ky)``) kernel as torch's
    ``(a, b, kH, kW)`` (or ``(kH, kW)``)."""
    weight = np.asarray(weight)
    moved = weight.T if weight.ndim == 2 else weight.transpose(0, 3, 2, 1)
    return np.ascontiguousarray(moved[..., ::-1, ::-1])


def sum_dtype(bound: int):
    """The narrowest of int16, int32, int64 that holds every integer of magnitude up to ``bound``."""
    for dtype in (np.int16, np.int32):
        if bound <= np.iinfo(dtype).max:
            return dtype
    return np.int64


def dense(weights: np.ndarray, s: np.ndarray, num_message_bits: int = 0, weight_exp: int = 0) -> np.ndarray:
    """Convenience wrapper of :func:`dense_fixed` for already-handled weights ``(n_out, n_in)``.

    Parameters
    ----------
    weights : numpy.ndarray
        Effective integer weights (output of :func:`loihi_dense_weights`).
    s : numpy.ndarray
        Input vector ``(n_in,)``.
    num_message_bits : int, default 0
        0 for binary input, else graded.
    weight_exp : int, default 0
        Shift applied to the accumulated sum.

    Returns
    -------
    numpy.ndarray
        int64 activation ``(n_out,)``.
    """
    wt = np.ascontiguousarray(np.asarray(weights, dtype=np.int32).T)
    s = np.ascontiguousarray(s, dtype=np.int64).reshape(-1)
    out = np.zeros(wt.shape[1], dtype=np.int64)
    dense_fixed(wt, s, num_message_bits == 0, int(weight_exp), out)
    return out


def _trailing_zeros(w: np.ndarray) -> int:
    """Largest ``k <= 8`` such that every entry of the integer array ``w`` is divisible by ``2**k``.

    That is the number of trailing zero bits of the bitwise OR of all entries (two's
    complement: ``-x`` has the trailing zeros of ``x``), capped at 8.
    """
    bits = int(np.bitwise_or.reduce(np.asarray(w, dtype=np.int64).reshape(-1), initial=0))
    return 8 if bits == 0 else min(8, (bits & -bits).bit_length() - 1)


def optimize_weight_bits(weight) -> tuple[np.ndarray, int, int, SignMode]:
    """Choose Loihi weight parameters that represent an integer matrix exactly (netx §5.4, lossless).

    Like netx, the matrix is scaled up by ``2**sb`` as far as the 8-bit range of its
    sign mode allows (``weight_exp = -sb``) and the number of weight bits drops the
    LSBs that are zero anyway. Unlike netx it is lossless for every matrix in
    ``[-256, 255]``: an all-zero matrix is returned as is; all-negative matrices
    use INHIBITORY's ``[-255, 0]`` range (scaling *down* with ``weight_exp > 0`` when
    needed) and fall back to MIXED mode (which holds -256 exactly) where they do not
    fit. MIXED matrices with odd entries get ``num_weight_bits = 9`` (no truncation),
    as netx does.

    Parameters
    ----------
    weight : array_like
        Integer matrix with values in ``[-256, 255]``.

    Returns
    -------
    weight_int : numpy.ndarray
        int32 matrix to give to ``Dense(weights=...)``.
    num_weight_bits : int
        In ``[1, 9]``.
    weight_exp : int
        Shift of the accumulated sum.
    sign_mode : SignMode
        Sign mode to pass to ``Dense(sign_mode=...)``. It equals the mode Dense derives
        from ``weight_int`` except in the MIXED fallback for all-negative matrices.

    Raises
    ------
    ValueError
        If the matrix holds non-integer values or values outside ``[-256, 255]``.
    """
    w = as_int_weights(weight, "optimize_weight_bits", np.ndim(weight)).astype(np.int64)
    if not np.any(w):
        return w.astype(np.int32), 8, 0, SignMode.EXCITATORY
    mode = determine_sign_mode(w)
    tz = _trailing_zeros(w)
    if mode == SignMode.MIXED:
        lo, hi = -256, 255
    elif mode == SignMode.EXCITATORY:
        lo, hi = 0, 255
    else:
        lo, hi = -255, 0
    wmin, wmax = int(w.min()), int(w.max())
    # Largest sb (>= -tz, so that a right shift stays exact) with the matrix in range.
    sb = None
    for cand in range(8, -tz - 1, -1):
        lo_c = wmin << cand if cand >= 0 else wmin >> -cand
        hi_c = wmax << cand if cand >= 0 else wmax >> -cand
        if lo <= lo_c and hi_c <= hi:
            sb = cand
            break
    if sb is None:  # all-negative with an odd entry and -256: only MIXED holds it
        mode, sb = SignMode.MIXED, 0
    w_int = w << sb if sb >= 0 else w >> -sb
    mixed = int(mode == SignMode.MIXED)
    num_weight_bits = max(1, 8 + mixed - _trailing_zeros(w_int))
    return w_int.astype(np.int32), num_weight_bits, -sb, mode


# --------------------------------------------------------------------------- conv


def conv_taps(in_size: int, out_size: int, kernel: int, stride: int, pad: int, dil: int):
    """Which outputs an input position feeds along one axis (the plan of the scatter kernels).

    Input ``p`` reaches output ``o`` through kernel tap ``i`` when
    ``p + pad - dil * (kernel - 1 - i) == o * stride`` (Lava's true convolution).

    Parameters
    ----------
    in_size, out_size : int
        Input and output sizes along the axis.
    kernel, stride, pad, dil : int
        Kernel size, stride, padding and dilation along the axis.

    Returns
    -------
    count : numpy.ndarray
        int64 ``(in_size,)``: number of taps of each input position.
    tap : numpy.ndarray
        int64 ``(in_size, kernel)``: the kernel indices ``i`` (first ``count[p]`` entries valid).
    pos : numpy.ndarray
        int64 ``(in_size, kernel)``: the matching output positions ``o``.
    """
    count = np.zeros(in_size, dtype=np.int64)
    tap = np.zeros((in_size, kernel), dtype=np.int64)
    pos = np.zeros((in_size, kernel), dtype=np.int64)
    for p in range(in_size):
        for i in range(kernel):
            q = p + pad - dil * (kernel - 1 - i)
            if q < 0 or q % stride:
                continue
            o = q // stride
            if o < out_size:
                tap[p, count[p]] = i
                pos[p, count[p]] = o
                count[p] += 1
    return count, tap, pos


def _row_sum_types(typingctx, out, w, vals):
    """``(product type, sum type, direct)`` of ``out[i] += w[j] (* vals[t])`` under Numba's typing (None
    if it does not type); ``direct``: one vector operation in ``out``'s type per step gives the same
    numbers (modulo ``2**bits`` for integers): all three dtypes the same, or all integers with ``w``
    and ``vals`` no wider than ``out`` (extended to its width first: Numba's wider sum, cast back to
    ``out``'s dtype, keeps the same low bits)."""
    scaled = not isinstance(vals, types.NoneType)
    product = w.dtype
    if scaled:
        mul = typingctx.resolve_function_type(operator.mul, (w.dtype, vals.dtype), {})
        if mul is None:
            return None
        product = mul.return_type
    add = typingctx.resolve_function_type(operator.add, (out.dtype, product), {})
    if add is None:
        return None
    rt = add.return_type
    same = out.dtype == w.dtype and (not scaled or vals.dtype == w.dtype)
    if same:
        return product, rt, isinstance(rt, types.Integer) or rt == out.dtype == product
    operands = (w.dtype, vals.dtype) if scaled else (w.dtype,)
    widened = (isinstance(out.dtype, types.Integer) and isinstance(product, types.Integer)
               and isinstance(rt, types.Integer)  # (where Numba's scalar sum is an integer too)
               and all(isinstance(t, types.Integer) and t.bitwidth <= out.dtype.bitwidth for t in operands))
    return product, rt, widened


@intrinsic
def _rows_in_vectors(typingctx, out, w, vals):
    """Whether :func:`_make_row_sum` adds rows of ``w`` (times ``vals``) to ``out`` as whole vectors
    (a constant of each compiled kernel; otherwise it works lane by lane, slower than a plain loop)."""
    resolved = _row_sum_types(typingctx, out, w, vals)
    direct = resolved is not None and resolved[2]

    def codegen(context, builder, signature, args):
        return context.get_constant(types.boolean, direct)

    return types.boolean(out, w, vals), codegen


def _make_row_sum(width: int):
    """A Numba intrinsic that adds the ``n`` weight rows ``w[w0 + offs[t] : ... + width]``
    (``t < n``, in order), each times ``vals[t]`` unless ``vals`` is None, to the output row
    ``out[o0 : o0 + width]``.

    The output row is loaded once, summed in vector registers and stored once: per
    element the same operations, in the same order and with the same types (Numba's
    ``w.dtype * vals.dtype``, ``out.dtype + that``, then cast back to ``out.dtype``), as ``n``
    scalar ``out[o0 + i] += w[w0 + offs[t] + i] (* vals[t])`` loops; integer weights and values
    narrower than ``out`` are extended to its width first, which leaves the same low bits. The
    arrays are 1-d and contiguous, ``o0``, ``w0`` and ``offs`` valid element indices (no bounds or
    wraparound checks).
    """

    @intrinsic
    def row_sum(typingctx, out, o0, w, w0, offs, vals, n):
        scaled = not isinstance(vals, types.NoneType)
        resolved = _row_sum_types(typingctx, out, w, vals)
        if resolved is None:
            return None
        product, rt, direct = resolved
        is_float = isinstance(rt, types.Float)

        def codegen(context, builder, signature, args):
            out_t, o0_t, w_t, w0_t, offs_t, vals_t, n_t = signature.args
            oarr = context.make_array(out_t)(context, builder, args[0])
            warr = context.make_array(w_t)(context, builder, args[2])
            farr = context.make_array(offs_t)(context, builder, args[4])
            varr = context.make_array(vals_t)(context, builder, args[5]) if scaled else None
            oi = context.cast(builder, args[1], o0_t, types.int64)
            wi = context.cast(builder, args[3], w0_t, types.int64)
            ovt = ir.VectorType(context.get_data_type(out_t.dtype), width)
            wvt = ir.VectorType(context.get_data_type(w_t.dtype), width)
            widen = direct and ovt != wvt  # narrower integer weights: extended to out's width
            optr = builder.bitcast(builder.gep(oarr.data, [oi]), ovt.as_pointer())
            acc = cgutils.alloca_once(builder, ovt)
            builder.store(builder.load(optr, align=1), acc)
            with cgutils.for_range(builder, context.cast(builder, args[6], n_t, types.int64)) as loop:
                off = context.cast(builder, builder.load(builder.gep(farr.data, [loop.index])), offs_t.dtype,
                                   types.int64)
                wptr = builder.bitcast(builder.gep(warr.data, [builder.add(wi, off)]), wvt.as_pointer())
                wv = builder.load(wptr, align=1)
                v = builder.load(builder.gep(varr.data, [loop.index])) if scaled else None
                a = builder.load(acc)
                if direct:
                    if widen:
                        wv = builder.sext(wv, ovt) if w_t.dtype.signed else builder.zext(wv, ovt)
                    if scaled:  # the value in every lane, times the row
                        v = context.cast(builder, v, vals_t.dtype, out_t.dtype)
                        undefined = ir.Constant(ovt, ir.Undefined)
                        splat = builder.insert_element(undefined, v, ir.Constant(ir.IntType(32), 0))
                        lanes = ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width)
                        splat = builder.shuffle_vector(splat, undefined, lanes)
                        wv = builder.fmul(wv, splat) if is_float else builder.mul(wv, splat)
                    a = builder.fadd(a, wv) if is_float else builder.add(a, wv)
                else:  # lane-wise, as Numba's scalar +=
                    for i in range(width):
                        lane = ir.Constant(ir.IntType(32), i)
                        y = context.cast(builder, builder.extract_element(wv, lane), w_t.dtype, product)
                        if scaled:
                            scale = context.cast(builder, v, vals_t.dtype, product)
                            float_product = isinstance(product, types.Float)
                            y = builder.fmul(y, scale) if float_product else builder.mul(y, scale)
                        x = context.cast(builder, builder.extract_element(a, lane), out_t.dtype, rt)
                        y = context.cast(builder, y, product, rt)
                        r = builder.fadd(x, y) if is_float else builder.add(x, y)
                        a = builder.insert_element(a, context.cast(builder, r, rt, out_t.dtype), lane)
                builder.store(a, acc)
            builder.store(builder.load(acc), optr, align=1)
            return context.get_dummy_value()

        return types.void(out, o0, w, w0, offs, vals, n), codegen

    return row_sum


_row_sum128 = _make_row_sum(128)
_row_sum32 = _make_row_sum(32)
_row_sum16 = _make_row_sum(16)
_row_sum8 = _make_row_sum(8)
_row_sum4 = _make_row_sum(4)


@inline
def _add_long_rows(of, o0, wf, w0, offs, vals, n, width):
    """:func:`_add_rows` in chunks of 128 elements first: each pass over the rows reads a few adjacent
    cache lines of every row (a dense layer's rows are long, and one line per row and pass left each
    pass waiting on scattered lines). Only the Dense kernel uses it (a convolution's rows are its
    output channels, and the wide chunk would only add to the compile time of its kernels)."""
    kk = np.uint64(0)
    while width - kk >= np.uint64(128):
        _row_sum128(of, o0 + kk, wf, w0 + kk, offs, vals, n)
        kk += np.uint64(128)
    _add_rows(of, o0 + kk, wf, w0 + kk, offs, vals, n, width - kk)


@inline
def _add_rows(of, o0, wf, w0, offs, vals, n, width):
    """``of[o0 + i] += wf[w0 + offs[t] + i]`` (times ``vals[t]`` unless ``vals`` is None) for ``i < width``
    and ``t < n`` (rows in order): the register sums of :func:`_make_row_sum` in chunks of 32/16/8/4
    elements, then a scalar tail. Offsets and ``width`` are unsigned (no wraparound tests)."""
    kk = np.uint64(0)
    while width - kk >= np.uint64(32):
        _row_sum32(of, o0 + kk, wf, w0 + kk, offs, vals, n)
        kk += np.uint64(32)
    if width - kk >= np.uint64(16):
        _row_sum16(of, o0 + kk, wf, w0 + kk, offs, vals, n)
        kk += np.uint64(16)
    if width - kk >= np.uint64(8):
        _row_sum8(of, o0 + kk, wf, w0 + kk, offs, vals, n)
        kk += np.uint64(8)
    if width - kk >= np.uint64(4):
        _row_sum4(of, o0 + kk, wf, w0 + kk, offs, vals, n)
        kk += np.uint64(4)
    while kk < width:
        for t in range(n):
            if vals is None:
                of[o0 + kk] += wf[w0 + kk + offs[t]]
            else:
                of[o0 + kk] += wf[w0 + kk + offs[t]] * vals[t]
        kk += np.uint64(1)


@jit
def _scatter_in_registers(sf, wf, taps, kx, ky, n_in, yo, co, vals, of):
    """The one-group path of :func:`conv_scatter` (flat arrays, its six tap tables in ``taps``; ``vals``
    None for binary input).

    Per row of pixels, the nonzero channels of every pixel (their weight offsets, and their values
    into ``vals``) and the pixels with any are listed first; then per such pixel and tap pair its
    weight rows (times the values) are summed into the output row in registers (:func:`_add_rows`),
    the channels in ascending order, so every output element gets the operations of the plain loop
    of :func:`conv_scatter` in its order. The lists are written without a branch per input (a store
    per input, and a count that grows by ``value != 0``): with sparse random input such branches
    mispredict, which costs more than the sums (about 2x on PilotNet-shaped spike input).
    """
    x_count, x_tap, x_pos, y_count, y_tap, y_pos = taps
    ys = y_count.shape[0]
    c_stride = np.uint64(kx * ky * co)  # one group: the kernel is (n_in, kx, ky, co)
    offs = np.empty(ys * n_in, np.uint64)  # per pixel of a row: weight offsets of its nonzero channels
    counts = np.empty(ys, np.int64)  # ... how many
    pixels = np.empty(ys, np.int64)  # the pixels of the row with nonzero channels and taps
    row_size = ys * n_in
    for u in range(x_count.shape[0]):
        nx = x_count[u]
        if nx == 0 or not any_nonzero(sf, u * row_size, (u + 1) * row_size):
            continue
        k = 0
        for v in range(ys):
            base_s = (u * ys + v) * n_in
            base = v * n_in
            n = 0
            for cin in range(n_in):
                val = sf[base_s + cin]
                offs[base + n] = np.uint64(cin) * c_stride
                if vals is not None:
                    vals[base + n] = val
                n += val != 0
            counts[v] = n
            pixels[k] = v
            k += (n != 0) & (y_count[v] != 0)
        for j in range(k):
            v = pixels[j]
            n = counts[v]
            pixel_offs = offs[v * n_in:]
            for a in range(nx):
                wi = x_tap[u, a] * ky
                ox = x_pos[u, a] * yo
                for b in range(y_count[v]):
                    w0 = np.uint64((wi + y_tap[v, b]) * co)
                    o0 = np.uint64((ox + y_pos[v, b]) * co)
                    if vals is None:  # (resolved at compile time)
                        _add_rows(of, o0, wf, w0, pixel_offs, None, n, np.uint64(co))
                    else:
                        _add_rows(of, o0, wf, w0, pixel_offs, vals[v * n_in:], n, np.uint64(co))


#: Input channels from which :func:`conv_scatter` sums a pixel's graded weight rows in registers: with
#: one, listing the values of every pixel costs more than the stores it saves on dense input (measured
#: on random input of 2-80 % density: from 2 channels on the register path wins at every density).
REGISTER_CHANNELS = 2


@jit
def conv_scatter(s, wt, x_count, x_tap, x_pos, y_count, y_tap, y_pos, groups, binary, out):
    """Lava convolution as a scatter over the nonzero inputs, with precomputed taps.

    ``out`` is zeroed first. For every nonzero input ``s[u, v, c]`` and every valid tap
    pair (:func:`conv_taps` along x and y) one contiguous row of ``wt`` (the output
    channels of the input channel's group) is added to one contiguous row of ``out``.
    Integer sums are exact in ``out``'s dtype; with an int32 ``out`` they are exact
    modulo ``2**32``, which leaves the signed 24-bit wrap of the fixed-point model
    unchanged.

    Parameters
    ----------
    s : array (x, y, c_in)
        Input, C-contiguous.
    wt : array (c_in / groups, kx, ky, c_out)
        Kernel in the layout of :func:`conv_kernel_layout`, C-contiguous.
    x_count, x_tap, x_pos, y_count, y_tap, y_pos : int64 arrays
        :func:`conv_taps` of the x and y axes.
    groups : int
        Convolution groups.
    binary : bool
        Count every nonzero input as 1.
    out : array (x_out, y_out, c_out)
        Result, C-contiguous (int32/int64, or float64).

    Returns
    -------
    bool
        Whether any input was nonzero (if not, ``out`` is all zeros).
    """
    xo, yo, co = out.shape
    cg, kx, ky = wt.shape[0], wt.shape[1], wt.shape[2]
    kg = co // groups
    n_in = s.shape[2]
    of = out.reshape(-1)
    wf = wt.reshape(-1)
    sf = s.reshape(-1)
    of[:] = 0
    if not any_nonzero(sf, 0, sf.shape[0]):
        return False
    ys = s.shape[1]
    vals = np.empty(ys * n_in, s.dtype)  # the values of the nonzero inputs, in _scatter_in_registers
    # one group: sums in registers (graded input only where the products and sums run as whole vectors,
    # i.e. input, kernel and output of one dtype); otherwise the plain loop below
    if groups == 1 and (binary or (n_in >= REGISTER_CHANNELS and _rows_in_vectors(of, wf, vals))):
        taps = (x_count, x_tap, x_pos, y_count, y_tap, y_pos)
        if binary:
            _scatter_in_registers(sf, wf, taps, kx, ky, n_in, yo, co, None, of)
        else:
            _scatter_in_registers(sf, wf, taps, kx, ky, n_in, yo, co, vals, of)
        return True
    # Any other input: per row of pixels its nonzero inputs are listed (without a branch per input, as
    # in _scatter_in_registers), then each one's weight rows are added, pixels and channels ascending.
    row_size = ys * n_in
    nonzero = np.empty(row_size, np.int64)
    for u in range(s.shape[0]):
        nx = x_count[u]
        if nx == 0 or not any_nonzero(sf, u * row_size, (u + 1) * row_size):
            continue
        row = u * row_size
        n = 0
        for i in range(row_size):
            nonzero[n] = i
            n += sf[row + i] != 0
        for t in range(n):
            i = nonzero[t]
            v = i // n_in
            cin = i - v * n_in
            val = sf[row + i]
            g = cin // cg
            k0 = g * kg
            wc = (cin - g * cg) * kx
            for a in range(nx):
                wi = (wc + x_tap[u, a]) * ky
                ox = x_pos[u, a] * yo
                for b in range(y_count[v]):
                    # unsigned row offsets: no negative-index wraparound test per element,
                    # so that LLVM vectorizes the row additions (3-4x faster)
                    w0 = np.uint64((wi + y_tap[v, b]) * co + k0)
                    o0 = np.uint64((ox + y_pos[v, b]) * co + k0)
                    if binary:
                        for kk in range(np.uint64(kg)):
                            of[o0 + kk] += wf[w0 + kk]
                    else:
                        for kk in range(np.uint64(kg)):
                            of[o0 + kk] += wf[w0 + kk] * val
    return True


@jit
def conv_scatter_rows(s, wt, x_count, x_tap, x_pos, y_count, y_tap, y_pos, groups, binary, out):
    """:func:`conv_scatter` for every sample ``s[b]`` (samples, x, y, c_in) into ``out[b]``, in one
    call; returns whether any input was nonzero."""
    active = False
    for b in range(s.shape[0]):
        active |= conv_scatter(s[b], wt, x_count, x_tap, x_pos, y_count, y_tap, y_pos, groups, binary, out[b])
    return active


@jit
def widen_shift(sums, exp, wrap, out):
    """``out = shift(sums, exp)``, wrapped to signed 24 bits with ``wrap``, element by element in
    ``out``'s dtype (``out`` may be ``sums`` itself, or a wider array for narrow exact sums)."""
    src = sums.reshape(-1)
    dst = out.reshape(-1)
    for i in range(src.shape[0]):
        value = shift(np.int64(src[i]), exp)
        dst[i] = wrap24(value) if wrap else value


@jit
def wrap24_inplace(out):
    """Wrap every entry of the integer array ``out`` to signed 24 bits, in place."""
    of = out.reshape(-1)
    for i in range(of.shape[0]):
        of[i] = wrap24(of[i])


def _taps_xy(s_shape, out_shape, wt_shape, stride_x, stride_y, pad_x, pad_y, dil_x, dil_y):
    return (conv_taps(s_shape[0], out_shape[0], wt_shape[1], stride_x, pad_x, dil_x)
            + conv_taps(s_shape[1], out_shape[1], wt_shape[2], stride_y, pad_y, dil_y))


def conv_accumulate(s, wt, stride_x, stride_y, pad_x, pad_y, dil_x, dil_y, groups, binary, out):
    """Lava convolution as a scatter over the nonzero inputs (``out`` is zeroed first).

    Plans the taps (:func:`conv_taps`) and calls :func:`conv_scatter`; models that run
    many steps plan once and call :func:`conv_scatter` directly.

    Parameters
    ----------
    s : array (x, y, c_in)
        Input.
    wt : array (c_in / groups, kx, ky, c_out)
        Kernel ``w`` (Lava layout ``(out, kx, ky, in/groups)``) transposed ``(3, 1, 2, 0)``.
    stride_x, stride_y, pad_x, pad_y, dil_x, dil_y, groups : int
        Convolution geometry in ``(x, y)`` order.
    binary : bool
        Count every nonzero input as 1.
    out : array (x_out, y_out, c_out)
        Result (int64 for exact integer sums, or float64).
    """
    s = np.ascontiguousarray(s)
    wt = np.ascontiguousarray(wt)
    taps = _taps_xy(s.shape, out.shape, wt.shape, stride_x, stride_y, pad_x, pad_y, dil_x, dil_y)
    if out.flags.c_contiguous:
        conv_scatter(s, wt, *taps, groups, bool(binary), out)
    else:
        tmp = np.empty(out.shape, dtype=out.dtype)
        conv_scatter(s, wt, *taps, groups, bool(binary), tmp)
        out[...] = tmp


def conv_fixed(s, wt, stride_x, stride_y, pad_x, pad_y, dil_x, dil_y, groups, binary, out):
    """Lava Conv fixed_pt step: :func:`conv_accumulate` (integer ``out``) then wrap to signed 24 bits."""
    conv_accumulate(s, wt, stride_x, stride_y, pad_x, pad_y, dil_x, dil_y, groups, binary, out)
    wrap24_inplace(out)


def conv_sum_bound(wt: np.ndarray) -> int:
    """Largest ``|sum|`` a binary-input convolution with kernel ``wt`` can produce.

    Parameters
    ----------
    wt : numpy.ndarray
        Kernel in the layout of :func:`conv_kernel_layout` ``(in/groups, kx, ky, out)``;
        output channel ``k`` sees exactly the ``in/groups`` input channels of ``wt[..., k]``.

    Returns
    -------
    int
        ``max_k sum |w[k, ...]|``: with binary input every output is in ``[-bound, bound]``,
        so when ``bound < 2**23`` the 24-bit wrap is the identity.
    """
    return int(np.abs(np.asarray(wt, dtype=np.int64)).sum(axis=(0, 1, 2)).max(initial=0))


def conv_kernel_layout(weight: np.ndarray, dtype=np.int32) -> np.ndarray:
    """Lava kernel ``(out, kx, ky, in/groups)`` -> the ``(in/groups, kx, ky, out)`` layout of the kernels."""
    return np.ascontiguousarray(np.asarray(weight).transpose(3, 1, 2, 0), dtype=dtype)


def conv(s: np.ndarray, weight: np.ndarray, stride=1, padding=0, dilation=1, groups: int = 1,
         num_message_bits: int = 0) -> np.ndarray:
    """Convenience wrapper of :func:`conv_fixed` (Lava layout in and out).

    Parameters
    ----------
    s : numpy.ndarray
        Input ``(x, y, c_in)``.
    weight : numpy.ndarray
        Integer kernel ``(out, kx, ky, c_in / groups)``.
    stride, padding, dilation : int or tuple of int
        ``(x, y)`` geometry.
    groups : int, default 1
        Convolution groups.
    num_message_bits : int, default 0
        0 for binary input, else graded.

    Returns
    -------
    numpy.ndarray
        int64 activation ``(x_out, y_out, out)`` wrapped to signed 24 bits.
    """
    s = np.ascontiguousarray(s, dtype=np.int64)
    weight, _, out_shape, padding, stride, dilation, groups = check_conv(
        weight, s.shape, padding, stride, dilation, groups, "conv", -(1 << 24), 1 << 24)
    out = np.zeros(out_shape, dtype=np.int64)
    conv_fixed(s, conv_kernel_layout(weight), stride[0], stride[1], padding[0], padding[1],
               dilation[0], dilation[1], groups, num_message_bits == 0, out)
    return out


# --------------------------------------------------------------------------- transposed conv and pooling
#
# The three other spatial connections reuse :func:`conv_scatter` with other tap tables
# and kernel layouts (Lava layout: input ``(x, y, c)``, pairs in ``(x, y)`` order):
#
# ConvT (transposed convolution), weight ``(in, kx, ky, out / groups)``
#     The adjoint of Lava's Conv with the same weight array: an input ``s[p, c]`` adds
#     ``s * w[c, i, k]`` to output ``o = p*stride - pad + dil*(kx-1-i)``. Equivalently
#     torch's ``conv_transpose2d`` (``o = p*stride - pad + dil*i``, no flip) with the
#     kernel flipped, exactly as Lava's Conv is torch's ``conv2d`` with the kernel flipped;
#     the conversion from torch is therefore the same as Conv's. Output size
#     ``(n-1)*stride - 2*pad + dil*(k-1) + 1`` (no output padding).
# Pool, kernel ``(kx, ky)`` shared by every channel
#     Lava's Conv with the depthwise weight ``(c, kx, ky, 1)`` (every slice the shared
#     kernel) and ``groups = c``: a (weighted) sum pool, flipped kernel as Conv.
# Unpool, kernel ``(kx, ky)`` shared by every channel
#     ConvT with the depthwise weight ``(c, kx, ky, 1)`` and ``groups = c``.


def conv_transpose_taps(in_size: int, out_size: int, kernel: int, stride: int, pad: int, dil: int):
    """Which outputs an input position feeds along one axis of a transposed convolution.

    Input ``p`` reaches output ``o = p * stride - pad + dil * i`` through kernel tap ``i``
    (torch's ``conv_transpose2d`` order; :func:`conv_transpose_kernel_layout` and
    :func:`depthwise_kernel_layout` flip Lava kernels to match).

    Parameters
    ----------
    in_size, out_size : int
        Input and output sizes along the axis.
    kernel, stride, pad, dil : int
        Kernel size, stride, padding and dilation along the axis.

    Returns
    -------
    count, tap, pos : numpy.ndarray
        As :func:`conv_taps`: int64 ``(in_size,)``, ``(in_size, kernel)``, ``(in_size, kernel)``.
    """
    count = np.zeros(in_size, dtype=np.int64)
    tap = np.zeros((in_size, kernel), dtype=np.int64)
    pos = np.zeros((in_size, kernel), dtype=np.int64)
    for p in range(in_size):
        for i in range(kernel):
            o = p * stride - pad + dil * i
            if 0 <= o < out_size:
                tap[p, count[p]] = i
                pos[p, count[p]] = o
                count[p] += 1
    return count, tap, pos


def conv_transpose_output_shape(input_shape: ty.Sequence[int], kernel: ty.Sequence[int], out_channels: int,
                                stride: Pair, padding: Pair, dilation: Pair,
                                where: str = "ConvT") -> tuple[int, int, int]:
    """Output shape ``(x, y, out)`` of a Lava-layout transposed convolution.

    Parameters
    ----------
    input_shape : sequence of int
        ``(x, y, c_in)``.
    kernel : sequence of int
        Kernel size ``(kx, ky)``.
    out_channels : int
        Output channels.
    stride, padding, dilation : tuple of int
        ``(x, y)`` pairs.
    where : str
        Prefix for error messages.

    Raises
    ------
    ValueError
        If the padding removes the whole output along an axis.
    """
    out = []
    for axis, name in enumerate("xy"):
        span = dilation[axis] * (kernel[axis] - 1) + 1
        full = (input_shape[axis] - 1) * stride[axis] + span
        if full <= 2 * padding[axis]:
            raise ValueError(f"{where}: no output along {name}: (input {input_shape[axis]} - 1) * stride "
                             f"{stride[axis]} + dilated kernel size {span} = {full} <= 2*padding "
                             f"{2 * padding[axis]}")
        out.append(full - 2 * padding[axis])
    return out[0], out[1], int(out_channels)


def check_conv_transpose(weight, input_shape, padding, stride, dilation, groups, where: str = "ConvT",
                         lo: int = WEIGHT_MIN, hi: int = WEIGHT_MAX):
    """Validate Lava-layout transposed convolution arguments (weight ``(in, kx, ky, out / groups)``).

    Returns
    -------
    tuple
        ``(weight_int32, input_shape, output_shape, padding, stride, dilation, groups)``
        with the pairs in ``(x, y)`` order.
    """
    weight = as_int_weights(weight, where, 4, lo, hi)
    input_shape = _check_input_shape(input_shape, where)
    padding, stride, dilation = _check_geometry(padding, stride, dilation, where)
    groups = check_int(groups, where, "groups", 1, 1 << 30)
    c_in = input_shape[2]
    if c_in % groups:
        raise ValueError(f"{where}: in channels ({c_in}) must be divisible by groups ({groups})")
    if weight.shape[0] != c_in:
        raise ValueError(f"{where}: weight shape {weight.shape} is (in, kx, ky, out/groups) and needs "
                         f"in = {c_in} for input_shape {input_shape}")
    output_shape = conv_transpose_output_shape(input_shape, weight.shape[1:3], groups * weight.shape[3],
                                               stride, padding, dilation, where)
    return weight, input_shape, output_shape, padding, stride, dilation, groups


def check_pool(kernel, kernel_size, input_shape, padding, stride, dilation, transposed: bool = False,
               where: str = "Pool", lo: int = WEIGHT_MIN, hi: int = WEIGHT_MAX):
    """Validate the arguments of a Lava-layout pool (or unpool, ``transposed=True``).

    Parameters
    ----------
    kernel : int or array_like
        The kernel shared by all channels: an integer array ``(kx, ky)``, or one integer
        for every tap (then ``kernel_size`` is required).
    kernel_size : int or pair of int or None
        ``(kx, ky)``; must match the shape of an array ``kernel``.
    input_shape : sequence of int
        ``(x, y, c)``.
    padding, stride, dilation : int or pair of int
        Geometry in ``(x, y)`` order; ``stride=None`` means ``kernel_size``.
    transposed : bool, default False
        Unpooling (output size of a transposed convolution).
    where : str
        Prefix for error messages.
    lo, hi : int
        Range of the kernel values.

    Returns
    -------
    tuple
        ``(kernel_int32 (kx, ky), input_shape, output_shape, padding, stride, dilation)``.
    """
    if kernel_size is not None:
        kernel_size = make_pair(kernel_size, where, "kernel_size", 1)
    if np.ndim(kernel) == 0:
        if kernel_size is None:
            raise ValueError(f"{where}: kernel_size is required when kernel is a scalar ({kernel!r})")
        kernel = np.full(kernel_size, kernel)
    kernel = as_int_weights(kernel, f"{where}: kernel", 2, lo, hi)
    if kernel_size is not None and kernel.shape != kernel_size:
        raise ValueError(f"{where}: kernel shape {kernel.shape} differs from kernel_size {kernel_size}")
    kernel_size = kernel.shape
    input_shape = _check_input_shape(input_shape, where)
    padding, stride, dilation = _check_geometry(padding, kernel_size if stride is None else stride, dilation,
                                                where)
    if transposed:
        output_shape = conv_transpose_output_shape(input_shape, kernel_size, input_shape[2], stride, padding,
                                                   dilation, where)
    else:
        output_shape = conv_output_shape(input_shape, (input_shape[2], *kernel_size), stride, padding,
                                         dilation, where)
    return kernel, input_shape, output_shape, padding, stride, dilation


def conv_transpose_kernel_layout(weight: np.ndarray, groups: int, dtype=np.int32) -> np.ndarray:
    """ConvT kernel ``(in, kx, ky, out/groups)`` -> the ``(in/groups, kx, ky, out)`` scatter layout.

    The layout of :func:`conv_scatter`: each group's ``(in/groups, out/groups)`` blocks
    are placed side by side along the output axis, and the spatial axes are flipped
    for :func:`conv_transpose_taps`.
    """
    w = np.asarray(weight)[:, ::-1, ::-1, :]
    c_in, kx, ky, kg = w.shape
    w = w.reshape(groups, c_in // groups, kx, ky, kg).transpose(1, 2, 3, 0, 4)
    return np.ascontiguousarray(w.reshape(c_in // groups, kx, ky, groups * kg), dtype=dtype)


def depthwise_kernel_layout(kernel: np.ndarray, channels: int, transposed: bool = False,
                            dtype=np.int32) -> np.ndarray:
    """Shared pool kernel ``(kx, ky)`` -> the depthwise ``(1, kx, ky, channels)`` scatter layout.

    Use with ``groups = channels``. ``transposed`` (unpooling) flips the spatial axes for
    :func:`conv_transpose_taps`.
    """
    k = np.asarray(kernel)
    if transposed:
        k = k[::-1, ::-1]
    wt = np.broadcast_to(k[None, :, :, None], (1, *k.shape, int(channels)))
    return np.ascontiguousarray(wt, dtype=dtype)


def _scatter_fixed(s, wt, taps, groups, num_message_bits, out_shape) -> np.ndarray:
    out = np.zeros(out_shape, dtype=np.int64)
    conv_scatter(s, wt, *taps, groups, num_message_bits == 0, out)
    wrap24_inplace(out)
    return out


def conv_transpose(s: np.ndarray, weight: np.ndarray, stride=1, padding=0, dilation=1, groups: int = 1,
                   num_message_bits: int = 0) -> np.ndarray:
    """Transposed convolution as the ConvT fixed_pt model computes it (Lava layout in and out).

    Parameters
    ----------
    s : numpy.ndarray
        Input ``(x, y, c_in)``.
    weight : numpy.ndarray
        Integer kernel ``(c_in, kx, ky, out / groups)``.
    stride, padding, dilation : int or tuple of int
        ``(x, y)`` geometry.
    groups : int, default 1
        Groups.
    num_message_bits : int, default 0
        0 for binary input, else graded.

    Returns
    -------
    numpy.ndarray
        int64 activation ``(x_out, y_out, out)`` wrapped to signed 24 bits.
    """
    s = np.ascontiguousarray(s, dtype=np.int64)
    weight, _, out_shape, padding, stride, dilation, groups = check_conv_transpose(
        weight, s.shape, padding, stride, dilation, groups, "conv_transpose", -(1 << 24), 1 << 24)
    taps = (conv_transpose_taps(s.shape[0], out_shape[0], weight.shape[1], stride[0], padding[0], dilation[0])
            + conv_transpose_taps(s.shape[1], out_shape[1], weight.shape[2], stride[1], padding[1],
                                  dilation[1]))
    return _scatter_fixed(s, conv_transpose_kernel_layout(weight, groups), taps, groups, num_message_bits,
                          out_shape)


def pool(s: np.ndarray, kernel, kernel_size=None, stride=None, padding=0, dilation=1,
         num_message_bits: int = 0, transposed: bool = False) -> np.ndarray:
    """Pooling (``transposed``: unpooling) as the Pool/Unpool fixed_pt models compute it (Lava layout).

    Parameters
    ----------
    s : numpy.ndarray
        Input ``(x, y, c)``.
    kernel, kernel_size, stride, padding, dilation
        As :func:`check_pool`.
    num_message_bits : int, default 0
        0 for binary input, else graded.
    transposed : bool, default False
        Unpool instead of pool.

    Returns
    -------
    numpy.ndarray
        int64 activation ``(x_out, y_out, c)`` wrapped to signed 24 bits.
    """
    s = np.ascontiguousarray(s, dtype=np.int64)
    where = "unpool" if transposed else "pool"
    kernel, _, out_shape, padding, stride, dilation = check_pool(
        kernel, kernel_size, s.shape, padding, stride, dilation, transposed, where, -(1 << 24), 1 << 24)
    plan = conv_transpose_taps if transposed else conv_taps
    taps = (plan(s.shape[0], out_shape[0], kernel.shape[0], stride[0], padding[0], dilation[0])
            + plan(s.shape[1], out_shape[1], kernel.shape[1], stride[1], padding[1], dilation[1]))
    wt = depthwise_kernel_layout(kernel, s.shape[2], transposed)
    return _scatter_fixed(s, wt, taps, s.shape[2], num_message_bits, out_shape)
