"""The binary one-group fast path of ``conv_scatter`` against its generic scatter loop."""

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
