"""The one-group register paths of ``conv_scatter`` (binary and graded input) against its generic
scatter loop and against a plain Python scatter in the same order."""

import numpy as np
import pytest

from lava_dl.core import synapse as syn


@pytest.mark.parametrize("c_out", [1, 3, 4, 5, 8, 13, 16, 24, 36, 64, 71])
@pytest.mark.parametrize("dtypes", [(np.int32, np.int32, np.int32), (np.int64, np.int32, np.int64),
                                    (np.float64, np.float64, np.float64), (np.int32, np.int32, np.float64),
                                    (np.float64, np.float64, np.float32), (np.int32, np.int8, np.int32)])
def test_binary_fast_path_matches_generic_loop(c_out, dtypes):
    """Binary input (0/1) through the fast path equals the generic (graded) loop bit for bit.

    With values 0 and 1 the graded loop adds ``w * 1``, the same values in the same order
    per output element, so even float sums must match exactly.
    """
    s_dtype, w_dtype, out_dtype = dtypes
    rng = np.random.default_rng(c_out)
    s = (rng.random((9, 8, 6)) < 0.4).astype(s_dtype)
    w = rng.integers(-128, 128, size=(c_out, 3, 3, 6)).astype(np.float64)
    if w_dtype == np.float64:
        w = w * rng.random(w.shape)
    wt = syn.conv_kernel_layout(w, w_dtype)
    taps = syn.conv_taps(9, 5, 3, 2, 1, 1) + syn.conv_taps(8, 6, 3, 1, 0, 1)
    fast = np.full((5, 6, c_out), 3, out_dtype)
    generic = np.zeros((5, 6, c_out), out_dtype)
    syn.conv_scatter(s, wt, *taps, 1, True, fast)
    syn.conv_scatter(s, wt, *taps, 1, False, generic)
    assert np.array_equal(fast, generic)
    assert np.any(fast)


def _python_scatter(s, wt, taps, out_shape, out_dtype):
    """The scatter in plain Python, pixel by pixel, channels ascending (the kernel's order per output
    element), with Numba's types: ``out + w * value`` in the wider type, stored in ``out_dtype``
    (integers modulo ``2**bits``)."""
    x_count, x_tap, x_pos, y_count, y_tap, y_pos = taps
    out = np.zeros(out_shape, out_dtype)
    is_float = np.dtype(out_dtype).kind == "f" or wt.dtype.kind == "f" or s.dtype.kind == "f"
    bits = np.dtype(out_dtype).itemsize * 8
    for u in range(s.shape[0]):
        for v in range(s.shape[1]):
            for cin in range(s.shape[2]):
                value = s[u, v, cin]
                if value == 0:
                    continue
                for a in range(x_count[u]):
                    for b in range(y_count[v]):
                        row = wt[cin, x_tap[u, a], y_tap[v, b]]
                        target = out[x_pos[u, a], y_pos[v, b]]
                        for k in range(len(row)):
                            if is_float:
                                target[k] = float(target[k]) + float(row[k]) * float(value)
                            else:
                                total = int(target[k]) + int(row[k]) * int(value)
                                target[k] = (total + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1))
    return out


@pytest.mark.parametrize("c_in", [1, 3, syn.REGISTER_CHANNELS + 8])
@pytest.mark.parametrize("c_out", [3, 8, 13, 36, 71])
@pytest.mark.parametrize("dtypes", [(np.int32, np.int32, np.int32), (np.int64, np.int32, np.int64),
                                    (np.float64, np.float64, np.float64), (np.int32, np.int32, np.float64),
                                    (np.float64, np.float64, np.float32), (np.int32, np.int8, np.int32)])
def test_graded_register_path_matches_python_scatter(c_in, c_out, dtypes):
    """Graded input: the rows times the values summed in registers (from ``REGISTER_CHANNELS`` input
    channels on) give the plain scatter's numbers, integers modulo ``2**bits`` (sums beyond int32
    wrap as the scalar loop's stores do) and floats bit for bit (same order)."""
    s_dtype, w_dtype, out_dtype = dtypes
    rng = np.random.default_rng(100 + c_out)
    values = rng.integers(-(1 << 23), 1 << 23, (9, 8, c_in)) * (rng.random((9, 8, c_in)) < 0.5)
    s = (values * rng.random(values.shape) if s_dtype == np.float64 else values).astype(s_dtype)
    w = rng.integers(-128, 128, size=(c_out, 3, 3, c_in)).astype(np.float64)
    if w_dtype == np.float64:
        w = w * rng.random(w.shape)
    wt = syn.conv_kernel_layout(w, w_dtype)
    taps = syn.conv_taps(9, 5, 3, 2, 1, 1) + syn.conv_taps(8, 6, 3, 1, 0, 1)
    fast = np.full((5, 6, c_out), 3, out_dtype)
    assert syn.conv_scatter(s, wt, *taps, 1, False, fast)
    expected = _python_scatter(s, wt, taps, (5, 6, c_out), out_dtype)
    assert np.array_equal(fast, expected)
    assert np.any(fast)


@pytest.mark.parametrize("dtypes", [(np.int64, np.int32, np.int64), (np.float32, np.float64, np.int32),
                                    (np.int32, np.int32, np.int32), (np.float64, np.float64, np.float64)])
@pytest.mark.parametrize("width", [4, 13, 40])
def test_register_rows_lane_by_lane_and_whole(dtypes, width):
    """``_add_rows`` with values, whole vectors (one dtype) or lane by lane (mixed dtypes, which
    ``conv_scatter`` leaves to its plain loop): Numba's scalar ``out += w * value`` per element."""
    out_dtype, w_dtype, v_dtype = dtypes
    rng = np.random.default_rng(width)
    wf = (rng.integers(-200, 200, 300) * (rng.random(300) if w_dtype == np.float64 else 1)).astype(w_dtype)
    vals = rng.integers(-(1 << 20), 1 << 20, 3).astype(v_dtype)
    offs = np.array([0, 77, 150], np.uint64)
    out = rng.integers(-1000, 1000, 60).astype(out_dtype)
    expected = out.copy()
    for t in range(3):
        for i in range(width):
            term = wf[5 + int(offs[t]) + i] * vals[t]
            expected[10 + i] = (expected[10 + i] + term).astype(out_dtype)
    syn._add_rows(out, np.uint64(10), wf, np.uint64(5), offs, vals, 3, np.uint64(width))
    assert np.array_equal(out, expected)


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("geometry", [
    # (in size, out size, kernel, stride, pad, dilation) per axis: inputs feeding no output (stride above
    # the kernel, a trailing input beyond the last window, dilation gaps) and padding
    ((10, 3, 2, 4, 0, 1), (11, 4, 1, 3, 0, 1)),
    ((9, 3, 3, 3, 0, 1), (12, 4, 3, 2, 1, 2)),
    ((7, 7, 3, 1, 1, 1), (6, 2, 2, 3, 0, 1)),
])
@pytest.mark.parametrize("c_in, groups", [(1, 1), (3, 1), (syn.REGISTER_CHANNELS + 7, 1), (6, 3), (4, 4)])
def test_nonzero_lists_skip_pixels_without_taps_or_input(binary, geometry, c_in, groups):
    """Both paths list each row's nonzero inputs without branches: pixels whose inputs are all zero,
    pixels with input but no output tap, all-zero rows and a batch of samples (one all zero) give the
    plain scatter's numbers, with one group (the register path, except graded single-channel input)
    and with several (the plain loop; expected from the one-group scatter of the block-diagonal kernel)."""
    (xi, xo, kx, sx, px, dx), (yi, yo, ky, sy, py, dy) = geometry
    rng = np.random.default_rng(c_in + 10 * xi + yi)
    taps = syn.conv_taps(xi, xo, kx, sx, px, dx) + syn.conv_taps(yi, yo, ky, sy, py, dy)
    assert 0 in taps[0] or 0 in taps[3] or px or py  # the geometries have inputs without taps (or padding)
    samples = rng.integers(-(1 << 20), 1 << 20, (3, xi, yi, c_in)) * (rng.random((3, xi, yi, c_in)) < 0.15)
    samples[0] = 0
    samples[1, 2] = 0  # an all-zero row
    samples[2, :, -1] = 5  # every pixel of the last column active (some without taps)
    if binary:
        samples = (samples != 0).astype(np.int32)
    samples = samples.astype(np.int32)
    c_out = 2 * groups * (1 + c_in // groups)
    w = rng.integers(-128, 128, size=(c_out, kx, ky, c_in // groups)).astype(np.float64)
    wt = syn.conv_kernel_layout(w, np.int32)
    block_diagonal = np.zeros((c_in, kx, ky, c_out), np.int32)
    cg, kg = c_in // groups, c_out // groups
    for g in range(groups):
        block_diagonal[g * cg:(g + 1) * cg, ..., g * kg:(g + 1) * kg] = wt[..., g * kg:(g + 1) * kg]
    out = np.full((3, xo, yo, c_out), 7, np.int32)
    assert syn.conv_scatter_rows(samples, wt, *taps, groups, binary, out)
    for sample, result in zip(samples, out):
        expected = _python_scatter(sample, block_diagonal, taps, (xo, yo, c_out), np.int32)
        assert np.array_equal(result, expected)
    assert not np.any(out[0]) and np.any(out[1]) and np.any(out[2])
