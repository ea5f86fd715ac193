"""Dense/Conv synapse kernels and Lava processes against lava-nc's own Dense/Conv models."""

from __future__ import annotations

import numpy as np
import pytest
from lava.magma.core.run_configs import Loihi1SimCfg, Loihi2SimCfg
from lava.proc.conv import utils as lava_conv_utils
from lava.proc.conv.models import PyConvModelFixed as LavaConvModel
from lava.proc.conv.process import Conv as LavaConv
from lava.proc.dense.models import PyDenseModelBitAcc as LavaDenseModel
from lava.proc.dense.process import Dense as LavaDense
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source
from lava.utils.weightutils import SignMode as LavaSignMode

from lava_dl.core import synapse as syn
from lava_dl.proc.conv import Conv
from lava_dl.proc.dense import Dense
from tests.lava_run import run_and_read


class _InStub:
    """Stands in for a PyInPort: ``recv`` returns what Lava's port would (``zeros(bool) + data``)."""

    def __init__(self, data):
        self.data = data

    def recv(self):
        return np.zeros(self.data.shape, dtype=bool) + self.data


class _OutStub:
    def __init__(self, shape):
        self.shape = shape
        self.sent = []

    def send(self, data):
        self.sent.append(np.array(data))


def _lava_dense_step(weights, s, num_weight_bits, weight_exp, num_message_bits, sign_mode=None):
    """One run_spk of lava-nc's PyDenseModelBitAcc, called directly; returns (a_buff, weights)."""
    params = {"num_weight_bits": num_weight_bits, "weight_exp": weight_exp}
    if sign_mode is not None:
        params["sign_mode"] = LavaSignMode(int(sign_mode))
    model = LavaDenseModel(params)
    model.weights = np.asarray(weights, dtype=np.int32)
    model.num_message_bits = np.array([num_message_bits])
    model.a_buff = np.zeros(weights.shape[0], dtype=np.int32)
    model.s_in = _InStub(s)
    model.a_out = _OutStub((weights.shape[0],))
    model.run_spk()
    return model.a_buff, model.weights


def _lava_conv_step(weight, s, stride, padding, dilation, groups, num_message_bits):
    """One run_spk of lava-nc's PyConvModelFixed, called directly; returns a_buf."""
    model = LavaConvModel({})
    model.weight = np.asarray(weight, dtype=np.int32)
    model.kernel_size = np.array(weight.shape[1:3])
    model.stride, model.padding, model.dilation = np.array(stride), np.array(padding), np.array(dilation)
    model.groups = np.array([groups])
    model.num_message_bits = np.array([num_message_bits])
    model.a_buf = np.zeros(1, dtype=np.int32)
    model.s_in = _InStub(s)
    model.a_out = _OutStub(None)
    model.run_spk()
    return model.a_buf


def _wrapped(weight, s, stride, padding, dilation, groups, num_message_bits, out) -> bool:
    """Whether the 24-bit wrap changed ``out``: lava-nc's convolution sum before the wrap differs."""
    s_in = s if num_message_bits else (s != 0)
    raw = lava_conv_utils.conv(np.asarray(s_in, np.float64), np.asarray(weight, np.float64),
                               weight.shape[1:3], stride, padding, dilation, groups)
    return bool(np.any(np.asarray(raw, np.int64) != out))


# ----------------------------------------------------------------------------- (a) kernels


def test_dense_kernel_matches_lava_model_code():
    """Random weights, num_weight_bits, weight_exp (both signs), binary and graded input: 0 mismatches."""
    rng = np.random.default_rng(0)
    mismatches = cases = 0
    for case in range(400):
        n_out, n_in = (int(v) for v in rng.integers(1, 48, 2))
        w = rng.integers(-256, 256, (n_out, n_in))
        kind = case % 4
        if kind == 1:
            w = np.abs(w)  # excitatory (256 gets clipped to 255)
        elif kind == 2:
            w = -np.abs(w)  # inhibitory (-256 gets clipped to -255)
        nwb = int(rng.integers(1, 9))
        exp = int(rng.integers(-8, 9))
        nmb = int(rng.choice([0, 8, 16, 24]))
        half = 1 << (max(nmb, 1) - 1)
        s = rng.integers(-half, half, n_in) * (rng.random(n_in) < rng.random())
        s = s.astype(np.int64)  # int64: lava's int32 dot would wrap for big graded sums
        ref, ref_w = _lava_dense_step(w, s, nwb, exp, nmb)
        eff = syn.loihi_dense_weights(w, nwb)
        assert np.array_equal(eff, ref_w)
        ours = syn.dense(eff, s, nmb, exp)
        # and the raw kernel used by the ProcessModel
        out = np.empty(n_out, dtype=np.int64)
        syn.dense_fixed(np.ascontiguousarray(eff.T), s, nmb == 0, exp, out)
        mismatches += int(np.sum(ours != ref)) + int(np.sum(out != ref))
        cases += 1
    assert cases == 400 and mismatches == 0


def test_dense_kernel_explicit_sign_mode_matches_lava():
    rng = np.random.default_rng(1)
    for mode in (syn.SignMode.MIXED, syn.SignMode.EXCITATORY, syn.SignMode.INHIBITORY):
        for _ in range(30):
            w = rng.integers(-256, 256, (9, 13))
            s = (rng.random(13) < 0.5).astype(np.int64)
            nwb = int(rng.integers(1, 9))
            ref, ref_w = _lava_dense_step(w, s, nwb, -1, 0, sign_mode=mode)
            eff = syn.loihi_dense_weights(w, nwb, mode)
            assert np.array_equal(eff, ref_w)
            assert np.array_equal(syn.dense(eff, s, 0, -1), ref)


def test_conv_kernel_matches_lava_model_code():
    """Random geometry/groups, binary and graded input, 24-bit wrap exercised: 0 mismatches."""
    rng = np.random.default_rng(2)
    mismatches = wrapped = 0
    for case in range(250):
        groups, cg, kg = (int(v) for v in rng.integers(1, 4, 3))
        kx, ky = (int(v) for v in rng.integers(1, 5, 2))
        stride = tuple(int(v) for v in rng.integers(1, 4, 2))
        padding = tuple(int(v) for v in rng.integers(0, 3, 2))
        dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
        x = dilation[0] * (kx - 1) + 1 + int(rng.integers(0, 9)) - 2 * padding[0]
        y = dilation[1] * (ky - 1) + 1 + int(rng.integers(0, 9)) - 2 * padding[1]
        x, y = max(x, 1), max(y, 1)
        if x + 2 * padding[0] < dilation[0] * (kx - 1) + 1 or y + 2 * padding[1] < dilation[1] * (ky - 1) + 1:
            continue
        w = rng.integers(-256, 256, (groups * kg, kx, ky, cg))
        nmb = int(rng.choice([0, 8, 16, 24]))
        # graded magnitude: keeps |sum| < 2^31 - 2^23, where lava's float->int32 path is exact
        half = {0: 2, 8: 1 << 7, 16: 1 << 15, 24: 1 << 16}[nmb]
        s = rng.integers(-half, half, (x, y, groups * cg)) * (rng.random((x, y, groups * cg)) < 0.5)
        ref = _lava_conv_step(w, s.astype(np.int32), stride, padding, dilation, groups, nmb)
        ours = syn.conv(s, w, stride, padding, dilation, groups, nmb)
        assert ours.shape == ref.shape
        mismatches += int(np.sum(ours != ref))
        wrapped += _wrapped(w, s, stride, padding, dilation, groups, nmb, ref)
        if case % 50 == 0:  # the accumulate kernel alone (no wrap) equals the float model's sum
            acc = np.zeros(ref.shape, dtype=np.int64)
            syn.conv_accumulate(s.astype(np.int64), syn.conv_kernel_layout(w), stride[0], stride[1],
                                padding[0], padding[1], dilation[0], dilation[1], groups, nmb == 0, acc)
            assert np.array_equal(((acc + (1 << 23)) % (1 << 24)) - (1 << 23), ref)
    assert mismatches == 0
    assert wrapped > 5  # big graded sums went through the 24-bit wrap


def test_conv_wrap_boundary():
    """A single graded event just beyond +2^23 wraps to the negative side, as lava does."""
    w = np.full((1, 1, 1, 1), 255)
    s = np.full((1, 1, 1), (1 << 23) // 255 + 1)
    ref = _lava_conv_step(w, s.astype(np.int32), (1, 1), (0, 0), (1, 1), 1, 24)
    ours = syn.conv(s, w, num_message_bits=24)
    assert ours[0, 0, 0] < 0 and np.array_equal(ours, ref)


def test_conv_model_run_spk_matches_lava_model_code():
    """Our fixed_pt Conv model (int32 sums written into a_buf, wrap skipped for bounded binary
    sums) against lava-nc's model code, step by step, binary and graded (24-bit wrap) input."""
    import importlib

    ours_cls = importlib.import_module("lava_dl.proc.synapse_models").PyConvModelFixed
    rng = np.random.default_rng(8)
    wrapped = 0
    for case in range(40):
        groups = int(rng.integers(1, 3))
        cg, kg = (int(v) for v in rng.integers(1, 4, 2))
        kx, ky = (int(v) for v in rng.integers(1, 4, 2))
        stride = tuple(int(v) for v in rng.integers(1, 3, 2))
        padding = tuple(int(v) for v in rng.integers(0, 2, 2))
        dilation = (1, 1) if case % 2 else (2, 1)
        shape = (int(rng.integers(6, 12)), int(rng.integers(6, 12)), groups * cg)
        w = rng.integers(-256, 256, (groups * kg, kx, ky, cg))
        nmb = 0 if case % 3 == 0 else 24
        model = ours_cls({})
        model.weight = w.astype(np.int32)
        model.kernel_size = np.array(w.shape[1:3])
        model.stride, model.padding, model.dilation = np.array(stride), np.array(padding), np.array(dilation)
        model.groups = np.array([groups])
        model.num_message_bits = np.array([nmb])
        model.weight_exp = np.array([0])
        model.a_buf = np.zeros(syn.conv_output_shape(shape, w.shape, stride, padding, dilation), np.int32)
        model.a_out = _OutStub(model.a_buf.shape)
        for _ in range(3):
            half = 2 if nmb == 0 else 1 << 16
            s = (rng.integers(-half, half, shape) * (rng.random(shape) < 0.4)).astype(np.int32)
            model.s_in = _InStub(s)
            model.run_spk()
            ref = _lava_conv_step(w, s, stride, padding, dilation, groups, nmb)
            assert model.a_buf.dtype == np.int32 and np.array_equal(model.a_buf, ref)
            wrapped += _wrapped(w, s, stride, padding, dilation, groups, nmb, ref)
    assert wrapped > 3


# ----------------------------------------------------------------------------- (b) Lava runs


def _dense_graph(cls, data, weights, **kwargs):
    src = Source(data=data)
    proc = cls(weights=weights, **kwargs)
    sink = Sink(shape=(weights.shape[0],), buffer=data.shape[1])
    src.s_out.connect(proc.s_in)
    proc.a_out.connect(sink.a_in)
    return proc, sink


@pytest.mark.parametrize("num_message_bits", [0, 16])
def test_dense_lava_run_matches_lava_dense(num_message_bits):
    rng = np.random.default_rng(3)
    steps = 6
    w = rng.integers(-256, 256, (24, 40))
    data = rng.integers(-300, 300, (40, steps)) * (rng.random((40, steps)) < 0.3)
    kw = dict(num_weight_bits=6, weight_exp=-2, num_message_bits=num_message_bits)
    ours, sink_o = _dense_graph(Dense, data, w, **kw)
    ref, sink_r = _dense_graph(LavaDense, data, w, **kw)
    out_o, w_o = run_and_read(ours, steps, [sink_o.data, ours.weights])
    out_r, w_r = run_and_read(ref, steps, [sink_r.data, ref.weights])
    assert np.all(out_o[:, 0] == 0)  # one step of latency
    assert np.abs(out_o).max() > 0
    assert np.array_equal(out_o, out_r)
    assert np.array_equal(w_o, w_r)


def test_conv_lava_run_matches_lava_conv():
    rng = np.random.default_rng(4)
    steps = 5
    w = rng.integers(-256, 256, (6, 3, 2, 2))
    data = rng.integers(-50, 50, (9, 7, 4, steps)) * (rng.random((9, 7, 4, steps)) < 0.4)
    geometry = dict(input_shape=(9, 7, 4), padding=(1, 0), stride=(2, 1), dilation=(1, 2), groups=2)
    outs = []
    for cls in (Conv, LavaConv):
        src = Source(data=data)
        proc = cls(weight=w, num_message_bits=24, **geometry)
        sink = Sink(shape=proc.output_shape, buffer=steps)
        src.s_out.connect(proc.s_in)
        proc.a_out.connect(sink.a_in)
        outs.append(run_and_read(proc, steps, [sink.data])[0])
    assert tuple(Conv(weight=w, **geometry).output_shape) == (5, 5, 6)
    assert np.abs(outs[0]).max() > 0
    assert np.array_equal(outs[0], outs[1])


def test_lossless_weights_through_lava_and_float_model():
    """optimize_weight_bits' tuple fed to our Dense in Lava gives W @ s exactly (worst case: all-negative)."""
    w = np.array([[-256, -1, -3], [-2, 0, -255]])
    w_int, nwb, exp, mode = syn.optimize_weight_bits(w)
    data = np.array([[1, 0, 1, 1], [1, 1, 0, 1], [0, 1, 1, 1]])
    proc, sink = _dense_graph(Dense, data, w_int, num_weight_bits=nwb, weight_exp=exp, sign_mode=mode)
    out = run_and_read(proc, 4, [sink.data], run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))[0]
    assert np.array_equal(out[:, 1:], (w @ data)[:, :3])
    # floating_pt model (default tag): W @ s * 2**weight_exp
    proc, sink = _dense_graph(Dense, data, w_int, num_weight_bits=nwb, weight_exp=exp, sign_mode=mode)
    out = run_and_read(proc, 4, [sink.data], run_cfg=Loihi1SimCfg())[0]
    assert np.array_equal(out[:, 1:], (w @ data)[:, :3])


# ----------------------------------------------------------------------------- (c) lossless


def _check_lossless(w, rng):
    w_int, nwb, exp, mode = syn.optimize_weight_bits(w)
    assert 1 <= nwb <= 9 and w_int.shape == w.shape
    eff = syn.loihi_dense_weights(w_int, nwb, mode)
    s_bin = rng.integers(0, 2, w.shape[1])
    s_grad = rng.integers(-1000, 1000, w.shape[1])
    assert np.array_equal(syn.dense(eff, s_bin, 0, exp), w @ s_bin)
    assert np.array_equal(syn.dense(eff, s_grad, 16, exp), w @ s_grad)
    # the same tuple is lossless in lava-nc's own Dense model too
    ref, _ = _lava_dense_step(w_int, s_grad, nwb, exp, 16, sign_mode=mode)
    assert np.array_equal(ref, w @ s_grad)
    return nwb, exp, mode


def test_optimize_weight_bits_lossless_random():
    rng = np.random.default_rng(5)
    for case in range(600):
        shape = tuple(int(v) for v in rng.integers(1, 12, 2))
        w = rng.integers(-256, 255, shape)
        kind = case % 5
        if kind == 1:
            w = (w // 2) * 2  # the quantize_8bit grid
        elif kind == 2:
            w = w >> int(rng.integers(1, 8))  # small weights: scaled up, weight_exp < 0
        elif kind == 3:
            w = -np.abs(w)
        elif kind == 4:
            w = np.abs(np.maximum(w, -255)) << 0
        _check_lossless(w, rng)


@pytest.mark.parametrize("w", [
    np.zeros((3, 4), dtype=int),
    np.full((2, 3), -256),
    np.array([[-256, -1]]),
    np.array([[-256, -2, -4]]),
    np.array([[-1]]),
    np.array([[0, -1], [0, 0]]),
    np.array([[0, 1], [3, 255]]),
    np.array([[-256, 254]]),
    np.array([[-256, 1]]),
    np.array([[2, -2]]),
    np.full((4, 4), 7),
])
def test_optimize_weight_bits_lossless_edge_cases(w):
    _check_lossless(w, np.random.default_rng(6))


def _netx_reference(w):
    """The netx 0.6 recipe of reference-hdf5.md §5.4 (correct for MIXED / EXCITATORY matrices)."""
    wmax, wmin = w.max(), w.min()
    if wmax < 0:
        mode, scale = syn.SignMode.INHIBITORY, -256 / wmin
    elif wmin >= 0:
        mode, scale = syn.SignMode.EXCITATORY, 255 / wmax
    else:
        mode, scale = syn.SignMode.MIXED, min(127 / wmax, -128 / wmin)
    mixed = int(mode == syn.SignMode.MIXED)
    sb = int(np.floor(np.log2(scale))) + mixed
    n = 8
    while n > 0 and np.sum(np.abs(w / 2**n - np.round(w / 2**n))) != 0:
        n -= 1
    n -= mixed
    return w << sb, 8 - sb - n, -sb, mode


def test_optimize_weight_bits_equals_netx_where_netx_is_lossless():
    """Matrices with a positive entry: same tuple as netx (small weights scaled to full 8 bits)."""
    rng = np.random.default_rng(7)
    for case in range(300):
        w = rng.integers(-256, 255, (5, 6)) >> int(rng.integers(0, 8))
        w = (w // 2) * 2 if case % 2 else w
        if case % 3 == 0:
            w = np.abs(np.maximum(w, -255))
        if w.max() <= 0:  # netx is wrong there (all-zero / all-nonpositive): covered above
            continue
        ours = syn.optimize_weight_bits(w)
        ref = _netx_reference(w)
        assert np.array_equal(ours[0], ref[0]) and ours[1:] == ref[1:], (w, ours, ref)
    w_int, nwb, exp, mode = syn.optimize_weight_bits(np.array([[2, -4], [6, 0]]))
    assert (nwb, exp, mode) == (3, -5, syn.SignMode.MIXED)
    assert np.array_equal(w_int, np.array([[64, -128], [192, 0]]))


# ----------------------------------------------------------------------------- (d) errors


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(weights=np.ones(3)), ValueError, "2-D"),
    (dict(weights=np.ones((2, 2, 2))), ValueError, "2-D"),
    (dict(weights=np.full((2, 2), 0.5)), ValueError, "integers"),
    (dict(weights=np.full((2, 2), 300)), ValueError, r"\[-256, 255\]"),
    (dict(weights=np.array([["a"]])), TypeError, "numeric"),
    (dict(weights=np.ones((2, 2)), num_weight_bits=0), ValueError, "num_weight_bits"),
    (dict(weights=np.ones((2, 2)), num_weight_bits=2.0), TypeError, "num_weight_bits"),
    (dict(weights=np.ones((2, 2)), weight_exp=40), ValueError, "weight_exp"),
    (dict(weights=np.ones((2, 2)), num_message_bits=-1), ValueError, "num_message_bits"),
    (dict(weights=np.ones((2, 2)), sign_mode=7), ValueError, "sign_mode"),
])
def test_dense_bad_input(kwargs, err, match):
    with pytest.raises(err, match=match):
        Dense(**kwargs)


_W = np.ones((4, 3, 3, 2), dtype=int)


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(weight=np.ones((4, 3, 3)), input_shape=(8, 8, 2)), ValueError, "4-D"),
    (dict(weight=_W, input_shape=(8, 8)), ValueError, "input_shape"),
    (dict(weight=_W, input_shape=(8, 8, 3), groups=2), ValueError, "divisible"),
    (dict(weight=np.ones((3, 3, 3, 1)), input_shape=(8, 8, 2), groups=2), ValueError, "divisible"),
    (dict(weight=_W, input_shape=(8, 8, 3)), ValueError, "in/groups"),
    (dict(weight=_W, input_shape=(2, 8, 2)), ValueError, "does not fit along x"),
    (dict(weight=_W, input_shape=(8, 4, 2), dilation=(1, 2)), ValueError, "does not fit along y"),
    (dict(weight=_W, input_shape=(8, 8, 2), stride=0), ValueError, "stride"),
    (dict(weight=_W, input_shape=(8, 8, 2), padding=(1, 2, 3)), TypeError, "padding"),
    (dict(weight=_W * 0.5, input_shape=(8, 8, 2)), ValueError, "integers"),
    (dict(weight=_W * 256, input_shape=(8, 8, 2)), ValueError, r"\[-256, 255\]"),
    (dict(weight=_W, input_shape=(8, 8, 2), weight_exp=40), ValueError, "weight_exp"),
    (dict(weight=_W, input_shape=(8, 8, 2), groups=1.5), TypeError, "groups"),
])
def test_conv_bad_input(kwargs, err, match):
    with pytest.raises(err, match=match):
        Conv(**kwargs)


def test_optimize_weight_bits_bad_input():
    with pytest.raises(ValueError, match=r"\[-256, 255\]"):
        syn.optimize_weight_bits(np.array([[300, 1]]))
    with pytest.raises(ValueError, match="integers"):
        syn.optimize_weight_bits(np.array([[0.5, 1]]))


def test_core_synapse_imports_neither_lava_nor_torch():
    import subprocess
    import sys

    code = ("import sys, lava_dl.core.synapse; "
            "bad = [m for m in sys.modules if m.startswith(('torch', 'lava.'))]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
