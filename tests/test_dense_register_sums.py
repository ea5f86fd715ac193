"""Dense sums in registers (``dense_accumulate``'s fast path) and the widening register rows it uses.

``_make_row_sum`` (here through ``_add_long_rows``) adds whole vectors where that gives Numba's
scalar ``out[i] += w[j] (* v)``: all dtypes the same, or integer weights and values no wider than
``out`` (extended to ``out``'s width; Numba's wider sum, cast back, keeps the same low bits).
``dense_accumulate`` sums the listed rows that way, a chunk of outputs at a time, for matrices up
to ``REGISTER_ROWS_BYTES``, and adds each row to ``out`` in turn otherwise (or where the dtypes do
not allow whole vectors). Every case is
checked against exact integer arithmetic in numpy.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from lava_dl.core import synapse as syn

RNG = np.random.default_rng(11)
WIDTHS = [1, 5, 31, 32, 33, 127, 128, 129, 300]


@numba.njit
def _direct(out, w, vals):
    return syn._rows_in_vectors(out, w, vals)


@numba.njit
def _direct_binary(out, w):
    return syn._rows_in_vectors(out, w, None)


@pytest.mark.parametrize("out_dtype, w_dtype, v_dtype, direct", [
    (np.int32, np.int16, None, True),
    (np.int64, np.int16, np.int32, True),
    (np.int16, np.int8, np.int16, True),
    (np.int32, np.uint8, None, True),
    (np.int16, np.int32, None, False),  # weights wider than the sums
    (np.int32, np.float32, None, False),  # float weights into integer sums
    (np.float64, np.float32, None, False),  # floats only as one dtype
    (np.float64, np.float64, np.float64, True),
])
def test_which_row_sums_are_whole_vectors(out_dtype, w_dtype, v_dtype, direct):
    out, w = np.zeros(4, out_dtype), np.zeros(4, w_dtype)
    result = _direct_binary(out, w) if v_dtype is None else _direct(out, w, np.zeros(1, v_dtype))
    assert result is direct


@pytest.mark.parametrize("out_dtype, w_dtype, v_dtype", [
    (np.int32, np.int16, None), (np.int16, np.int8, None), (np.int32, np.uint8, None),
    (np.int64, np.int16, np.int32), (np.int32, np.int16, np.int32), (np.int16, np.int8, np.int16)])
@pytest.mark.parametrize("width", WIDTHS)
def test_widened_register_rows_keep_the_low_bits(out_dtype, w_dtype, v_dtype, width):
    """Rows of narrower integer weights (times values) summed into a wider ``out``, sums that wrap
    ``out``'s dtype included: the exact sum modulo ``2**bits``, as Numba's scalar loop gives it."""
    info = np.iinfo(w_dtype)
    rows = 40
    wf = RNG.integers(info.min, info.max, rows * 300 + width, endpoint=True).astype(w_dtype)
    offs = np.sort(RNG.choice(rows, 25, replace=False)).astype(np.uint64) * np.uint64(300)
    vals = None if v_dtype is None else RNG.integers(-(1 << 14), 1 << 14, 25).astype(v_dtype)
    out_info = np.iinfo(out_dtype)
    out = RNG.integers(out_info.min // 2, out_info.max // 2, width + 20).astype(out_dtype)
    bits = 8 * np.dtype(out_dtype).itemsize
    if bits == 16:  # sums near the top of int16, so that positive sums wrap
        out[7:7 + width] = out_info.max - RNG.integers(0, 100, width)
    exact = out.astype(object)
    for t, off in enumerate(offs):
        row = wf[int(off) + 3:int(off) + 3 + width].astype(object)
        exact[7:7 + width] += row if vals is None else row * int(vals[t])
    expected = np.array([(int(x) + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1)) for x in exact],
                        out_dtype)
    syn._add_long_rows(out, np.uint64(7), wf, np.uint64(3), offs, vals, len(offs), np.uint64(width))
    assert np.array_equal(out, expected)
    if bits == 16 and width >= 31:  # the int16 sums do wrap somewhere (else the modular claim is untested)
        assert not np.array_equal(exact[7:7 + width].astype(np.int64), expected[7:7 + width].astype(np.int64))


def _exact(wt: np.ndarray, s: np.ndarray, binary: bool) -> np.ndarray:
    x = (s != 0) if binary else s
    return x.astype(np.int64) @ wt.astype(np.int64)


@pytest.mark.parametrize("w_dtype, out_dtype, binary", [
    (np.int16, np.int16, True), (np.int16, np.int32, True), (np.int16, np.int64, False),
    (np.float64, np.float64, True), (np.float64, np.float64, False)])
@pytest.mark.parametrize("n_out", WIDTHS)
def test_dense_register_path_gives_exact_sums(w_dtype, out_dtype, binary, n_out):
    """Register sums on every output width (vector chunks and scalar tails), at densities from none
    to all inputs, in one call per sample and for a batch sharing scratch arrays (a denser sample
    before sparser ones: nothing of its list may be reused)."""
    n_in = 97
    wt = RNG.integers(-128, 128, (n_in, n_out)).astype(w_dtype)
    assert wt.nbytes <= syn.REGISTER_ROWS_BYTES
    out = np.zeros(n_out, out_dtype)
    values = RNG.integers(-(1 << 10), 1 << 10, n_in) if not binary else np.ones(n_in, np.int64)
    s_dtype = np.float64 if w_dtype == np.float64 else np.int32
    flat = wt.reshape(-1)
    assert _direct_binary(out, flat) if binary else _direct(out, flat, np.zeros(1, s_dtype))
    batch = []
    for density in (1.0, 0.5, 0.05, 0.0):
        s = (values * (RNG.random(n_in) < density)).astype(s_dtype)
        out[...] = 3
        syn.dense_accumulate(wt, s, binary, out)
        assert np.array_equal(out, _exact(wt, s, binary).astype(out_dtype)), density
        batch.append(s)
    if w_dtype != np.float64:
        rows = np.stack(batch)
        acc = np.zeros(n_out, out_dtype if binary else np.int64)
        result = np.full(rows.shape[:1] + (n_out,), 9, np.int32)
        syn.dense_fixed_rows(wt, rows, binary, 0, acc, result)
        assert np.array_equal(result, _exact(wt, rows, binary).astype(np.int32))


@pytest.mark.parametrize("binary", [True, False])
def test_dense_beyond_register_rows_bytes_adds_row_by_row(binary):
    """A matrix above ``REGISTER_ROWS_BYTES`` takes the row-by-row path (rows prefetched): the same
    exact sums."""
    n_in, n_out = 2100, 2050
    wt = RNG.integers(-256, 256, (n_in, n_out)).astype(np.int16)
    assert wt.nbytes > syn.REGISTER_ROWS_BYTES and wt.nbytes > syn.PREFETCH_BYTES
    s = (RNG.integers(-(1 << 12), 1 << 12, n_in) * (RNG.random(n_in) < 0.02)).astype(np.int32)
    s[-2:] = 5
    out = np.zeros(n_out, np.int32 if binary else np.int64)
    syn.dense_accumulate(wt, s, binary, out)
    assert np.array_equal(out, _exact(wt, s, binary).astype(out.dtype))


@pytest.mark.parametrize("binary", [True, False])
def test_dense_float_sums_keep_the_order_of_the_inputs(binary):
    """Float sums in registers add the rows in ascending order of the inputs, as the loop of the float
    model always did (non-integer values, where another order would round differently)."""
    n_in, n_out = 300, 131
    wt = RNG.standard_normal((n_in, n_out)) * 1e3
    s = RNG.standard_normal(n_in) * (RNG.random(n_in) < 0.4)
    out = np.zeros(n_out)
    syn.dense_accumulate(wt, s, binary, out)
    expected = np.zeros(n_out)
    for j in np.flatnonzero(s):
        expected += wt[j] if binary else wt[j] * s[j]
    assert np.array_equal(out, expected)
    shuffled = np.zeros(n_out)
    for j in RNG.permutation(np.flatnonzero(s)):
        shuffled += wt[j] if binary else wt[j] * s[j]
    assert not np.array_equal(shuffled, expected)  # the order does show in these sums
