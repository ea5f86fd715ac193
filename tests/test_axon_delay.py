"""Axonal delays: slayer ``Delay``/``delay`` against numpy, the Lava AxonDelay line, DelayDense vs lava-nc."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
import torch
from lava.magma.core.run_configs import Loihi1SimCfg
from lava.proc.dense.models import PyDelayDenseModelBitAcc as LavaDelayDenseFixed
from lava.proc.dense.models import PyDelayDenseModelFloat as LavaDelayDenseFloat
from lava.proc.dense.process import DelayDense as LavaDelayDense
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source
from lava.utils.weightutils import SignMode as LavaSignMode

from lava_dl.core import delay as dly
from lava_dl.core import synapse as syn
from lava_dl.proc.delay import AxonDelay, DelayDense
from lava_dl.slayer.axon import Delay, delay
from tests.lava_run import run_and_read

FIXED = Loihi1SimCfg(select_tag="fixed_pt")
FLOAT = Loihi1SimCfg(select_tag="floating_pt")


# ----------------------------------------------------------------------------- references


def _shift_ref(x: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """``y[:, c, ..., t] = x[:, c, ..., t - steps[c]]`` (zeros outside), by explicit slicing."""
    y = np.zeros_like(x)
    for c, k in enumerate(np.asarray(steps).reshape(-1)):
        k = int(k)
        if k >= 0:
            if k < x.shape[-1]:
                y[:, c, ..., k:] = x[:, c, ..., :x.shape[-1] - k]
        elif -k < x.shape[-1]:
            y[:, c, ..., :k] = x[:, c, ..., -k:]
    return y


def _lava_dl_delay_grad(g: np.ndarray, y: np.ndarray, sampling_time: float, grad_scale: float) -> np.ndarray:
    """lava-dl 0.6's delay gradient: ``conv(y, [-1, 1] / Ts)`` (a causal convolution, i.e.
    ``(y[t-1] - y[t]) / Ts``), times ``g``, summed over batch and time, times ``Ts``, summed
    over the spatial positions of a channel (its ``repeat``), times ``grad_scale``."""
    prev = np.concatenate([np.zeros_like(y[..., :1]), y[..., :-1]], axis=-1)
    diff = (prev - y) / sampling_time
    per_position = (g * diff).sum(axis=(0, -1)) * sampling_time
    return per_position.reshape(y.shape[1], -1).sum(axis=1) * grad_scale


def _time_major(t: torch.Tensor) -> bool:
    return t.movedim(-1, 1).is_contiguous()


# ----------------------------------------------------------------------------- slayer Delay


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(3, 5, 17), (2, 4, 3, 2, 11)])
@pytest.mark.parametrize("sampling_time", [1, 0.5])
def test_delay_module_forward_is_a_per_channel_shift(dtype, shape, sampling_time):
    rng = np.random.default_rng(0)
    channels = shape[1]
    x = torch.tensor(rng.normal(size=shape), dtype=dtype)
    m = Delay(sampling_time=sampling_time, num_channels=channels)
    # fractional delays away from step boundaries; one beyond the sequence length
    values = np.array([0.3, 2.7, 1.0, 4.49, 40.2][:channels]) * sampling_time
    with torch.no_grad():
        m.delay.copy_(torch.tensor(values))
    y = m(x)
    steps = np.trunc(values / sampling_time + 1e-9).astype(int)
    assert y.dtype == dtype and y.shape == x.shape and _time_major(y)
    assert np.array_equal(y.detach().numpy(), _shift_ref(x.numpy(), steps))
    # a time-major input (what synapses produce) gives the same result
    xt = x.movedim(-1, 1).contiguous().movedim(1, -1)
    assert torch.equal(m(xt), y)


@pytest.mark.parametrize("shape, grad_scale, sampling_time", [((4, 3, 23), 1, 1), ((2, 3, 4, 5, 19), 0.25, 1),
                                                              ((3, 2, 2, 3, 13), 2, 0.5)])
def test_delay_module_gradients_equal_lava_dl_formula(shape, grad_scale, sampling_time):
    """float64 with integer-valued data: every sum is exact, so the gradients must be equal."""
    rng = np.random.default_rng(1)
    channels = shape[1]
    x_np = rng.integers(-3, 4, shape).astype(np.float64)
    g_np = rng.integers(-5, 6, shape).astype(np.float64)
    values = rng.uniform(0, 6, channels) * sampling_time
    m = Delay(sampling_time=sampling_time, grad_scale=grad_scale, num_channels=channels).double()
    with torch.no_grad():
        m.delay.copy_(torch.tensor(values))
    x = torch.tensor(x_np, requires_grad=True)
    y = m(x)
    y.backward(torch.tensor(g_np))
    steps = np.trunc(m.delay.detach().numpy() / sampling_time).astype(int)
    y_ref = _shift_ref(x_np, steps)
    assert np.array_equal(y.detach().numpy(), y_ref)
    assert np.array_equal(x.grad.numpy(), _shift_ref(g_np, -steps))  # reverse shift
    gd = _lava_dl_delay_grad(g_np, y_ref, sampling_time, grad_scale)
    assert np.any(gd != 0)
    assert m.delay.grad.dtype == torch.float64 and np.array_equal(m.delay.grad.numpy(), gd)


def _stored(x: torch.Tensor, layout: str) -> torch.Tensor:
    """``x`` (``N, C, H, W, T``) with the same values stored time-major (``N, T, C, H, W`` memory) or
    channels-last (``N, T, H, W, C``: a conv synapse's output)."""
    if layout == "time-major":
        return x.movedim(-1, 1).contiguous().movedim(1, -1)
    return x.permute(0, 4, 2, 3, 1).contiguous().permute(0, 4, 2, 3, 1)


@pytest.mark.parametrize("layout", ["time-major", "channels-last"])
def test_delay_on_stored_activations_equals_references(layout):
    """Activations as blocks store them (step rows contiguous, neurons in any order) take a row-wise
    kernel: the same shifts, reverse-shift input gradient and lava-dl delay gradient (exact:
    integer-valued float64 data), and the output keeps the input's layout."""
    rng = np.random.default_rng(3)
    shape = (2, 3, 4, 5, 19)
    x_np = rng.integers(-3, 4, shape).astype(np.float64)
    g_np = rng.integers(-5, 6, shape).astype(np.float64)
    m = Delay(grad_scale=0.5, num_channels=3).double()
    with torch.no_grad():
        m.delay.copy_(torch.tensor([0.2, 3.7, 25.0]))  # 0, 3 and beyond the 19 steps
    leaf = torch.tensor(x_np, requires_grad=True)
    x = _stored(leaf, layout)
    assert x.stride() != leaf.stride()
    y = m(x)
    assert y.stride() == x.stride()
    y.backward(_stored(torch.tensor(g_np), layout))
    steps = np.array([0, 3, 25])
    y_ref = _shift_ref(x_np, steps)
    assert np.array_equal(y.detach().numpy(), y_ref)
    assert np.array_equal(leaf.grad.numpy(), _shift_ref(g_np, -steps))
    gd = _lava_dl_delay_grad(g_np, y_ref, 1, 0.5)
    assert np.any(gd != 0) and np.array_equal(m.delay.grad.numpy(), gd)
    # one delay per position (C, H, W order), fixed
    per_position = rng.integers(0, 6, shape[1:-1])
    moved = delay(_stored(torch.tensor(x_np), layout), torch.tensor(per_position, dtype=torch.float64))
    expected = np.zeros_like(x_np)
    for index in np.ndindex(*shape[1:-1]):
        k = per_position[index]
        expected[(slice(None), *index, slice(k, None))] = x_np[(slice(None), *index, slice(0, shape[-1] - k))]
    assert np.array_equal(moved.numpy(), expected)


def test_delay_module_gradients_float32_random():
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.normal(size=(3, 6, 30)), dtype=torch.float32, requires_grad=True)
    m = Delay(max_delay=8, grad_scale=3)
    y = m(x)  # lazy initialisation: delays in [0, 1), i.e. no shift
    assert torch.equal(y, x) and m.shape == (6,) and m.delay.dtype == torch.float32
    with torch.no_grad():
        m.delay.copy_(torch.tensor(rng.uniform(0, 8, 6)))
    y = m(x)
    g = torch.tensor(rng.normal(size=y.shape), dtype=torch.float32)
    y.backward(g)
    steps = np.trunc(m.delay.detach().numpy()).astype(int)
    assert np.array_equal(x.grad.numpy(), _shift_ref(g.numpy(), -steps))
    gd = _lava_dl_delay_grad(g.double().numpy(), y.detach().double().numpy(), 1, 3)
    assert m.delay.grad.dtype == torch.float32
    np.testing.assert_allclose(m.delay.grad.numpy(), gd, rtol=1e-5, atol=1e-4)
    # through a following op (non-contiguous, expanded gradient) and a frozen delay
    m.delay.requires_grad_(False)
    x.grad = None
    m(x).sum().backward()
    assert np.array_equal(x.grad.numpy(), _shift_ref(np.ones(x.shape, np.float32), -steps))


def test_delay_module_clamps_in_place():
    x = torch.ones(1, 3, 12)
    m = Delay(max_delay=3, num_channels=3)
    with torch.no_grad():
        m.delay.copy_(torch.tensor([-1.0, 2.5, 10.0]))
    y = m(x)
    assert m.delay.tolist() == [0.0, 2.5, 3.0]
    assert y[0].sum(-1).tolist() == [12, 10, 9]
    m = Delay(num_channels=2)
    with torch.no_grad():
        m.delay.copy_(torch.tensor([-4.0, 50.0]))
    m.clamp()
    assert m.delay.tolist() == [0.0, 50.0]
    assert torch.all(m(torch.ones(1, 2, 12))[0, 1] == 0)


def test_delay_module_initialisation_and_state_dict():
    lazy = Delay()
    assert lazy.shape is None and not lazy.init
    torch.manual_seed(0)
    x = torch.rand(2, 7, 4, 4, 5, dtype=torch.float64)
    lazy.double()(x)
    assert lazy.shape == (7,) and lazy.delay.dtype == torch.float64
    assert torch.all((lazy.delay >= 0) & (lazy.delay < 1))
    eager = Delay(num_channels=7, max_delay=62)
    assert eager.shape == (7,) and eager.init
    fresh = Delay()
    fresh.load_state_dict(eager.state_dict())
    assert fresh.shape == (7,) and torch.equal(fresh.delay, eager.delay)
    with pytest.raises(ValueError, match="channels"):
        eager(torch.zeros(1, 3, 4))
    assert "channels=7" in repr(eager)


@pytest.mark.parametrize("kwargs, match", [
    (dict(sampling_time=0), "sampling_time"),
    (dict(max_delay=-1), "max_delay"),
    (dict(grad_scale=float("nan")), "grad_scale"),
    (dict(num_channels=0), "num_channels"),
    (dict(num_channels=2.0), "num_channels"),
])
def test_delay_module_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Delay(**kwargs)


def test_delay_module_bad_input():
    m = Delay(num_channels=2)
    with pytest.raises(ValueError, match="3-D"):
        m(torch.zeros(2, 5))
    with pytest.raises(TypeError, match="dtype"):
        m(torch.zeros(1, 2, 5, dtype=torch.int32))
    with pytest.raises(TypeError, match="Tensor"):
        m(np.zeros((1, 2, 5)))


def test_delay_devices_other_than_cpu_and_cuda_raise():
    """Neither CPU nor CUDA: a clear error naming the device (no host copy, no kernel)."""
    x = torch.zeros((1, 2, 5), device="meta")
    with pytest.raises(NotImplementedError, match=r"CPU and CUDA tensors only.*got an input on meta"):
        Delay(num_channels=2).to("meta")(x)
    with pytest.raises(NotImplementedError, match=r"CPU and CUDA tensors only.*got an input on meta"):
        delay(x, 1)


def test_delay_module_on_another_device_than_its_input_raises():
    m = Delay(num_channels=2).to("meta")
    with pytest.raises(ValueError, match=r"input is on cpu but delay is on meta"):
        m(torch.zeros((1, 2, 5)))


def test_delay_cuda_path_without_numba_cuda_names_the_extra(monkeypatch):
    """The CUDA path (taken here by CPU tensors) explains what to install when numba-cuda is missing."""
    axon_delay = importlib.import_module("lava_dl.slayer.axon.delay")
    monkeypatch.setitem(sys.modules, "lava_dl.core.cuda_kernels", None)  # import fails
    monkeypatch.setattr(axon_delay, "_uses_cuda_kernels", lambda x: True)
    with pytest.raises(RuntimeError, match=r"pip install lava_dl\[cuda\]"):
        Delay(num_channels=2)(torch.zeros((1, 2, 5)))
    with pytest.raises(RuntimeError, match=r"pip install lava_dl\[cuda\]"):
        delay(torch.zeros((1, 2, 5)), 1)


# ----------------------------------------------------------------------------- slayer delay()


def test_delay_function_shift_and_gradient():
    rng = np.random.default_rng(3)
    x_np = rng.normal(size=(2, 3, 4, 9))
    for val, ts, k in [(2, 1, 2), (2.9, 1, 2), (3, 2, 1), (-1.5, 1, -1), (0, 1, 0), (20, 1, 20),
                       (torch.tensor(4.0), 2, 2)]:
        x = torch.tensor(x_np, requires_grad=True)
        y = delay(x, val, ts)
        assert _time_major(y)
        assert np.array_equal(y.detach().numpy(), _shift_ref(x_np, np.full(3, k)))
        g = rng.normal(size=x_np.shape)
        y.backward(torch.tensor(g))
        assert np.array_equal(x.grad.numpy(), _shift_ref(g, np.full(3, -k)))
    # per position (lava-dl's shift with a tensor), and integer tensors
    per = torch.arange(12, dtype=torch.float32).reshape(3, 4) % 5
    y = delay(torch.tensor(x_np), per)
    ref = _shift_ref(x_np.reshape(2, 12, 1, 9), per.reshape(-1).numpy().astype(int)).reshape(x_np.shape)
    assert np.array_equal(y.numpy(), ref)
    xi = torch.arange(10, dtype=torch.int32).reshape(1, 1, 10)
    assert delay(xi, 3).tolist() == [[[0, 0, 0, 0, 1, 2, 3, 4, 5, 6]]]
    with pytest.raises(ValueError, match="sampling_time"):
        delay(xi, 1, 0)
    with pytest.raises(ValueError, match="one value per position"):
        delay(xi, torch.ones(3))
    with pytest.raises(ValueError, match="finite"):
        delay(xi, float("inf"))


# ----------------------------------------------------------------------------- core kernels


def _delay_line_ref(x: np.ndarray, d: np.ndarray, reset_interval: int = 0,
                    reset_offset: int = 0) -> np.ndarray:
    """``y[i, t] = x[i, t - d[i]]`` within the current sample (resets before 1-based steps
    ``s`` with ``s % R == offset % R``), else 0."""
    n, steps = x.shape
    y = np.zeros_like(x)
    start = 0
    for t in range(steps):
        if reset_interval and (t + 1) % reset_interval == reset_offset % reset_interval:
            start = t
        for i in range(n):
            if t - d[i] >= start:
                y[i, t] = x[i, t - d[i]]
    return y


def test_delay_line_kernel():
    rng = np.random.default_rng(4)
    x = rng.integers(-50, 50, (7, 40)) * (rng.random((7, 40)) < 0.5)
    d = rng.integers(0, 9, 7)
    assert np.array_equal(dly.delay_line(x, d, 12, num_message_bits=16), _delay_line_ref(x, d))
    assert np.array_equal(dly.delay_line(x, d, num_message_bits=0), _delay_line_ref((x != 0).astype(int), d))
    got = dly.delay_line(x, d, 8, num_message_bits=16, reset_interval=6, reset_offset=2)
    assert np.array_equal(got, _delay_line_ref(x, d, 6, 2))


class _InStub:
    def __init__(self):
        self.data = None

    def recv(self):
        return np.zeros(self.data.shape, dtype=bool) + self.data


class _OutStub:
    def __init__(self):
        self.sent = []

    def send(self, data):
        self.sent.append(np.array(data))


def _lava_delay_dense_run(model_cls, w, d, data, max_delay, nmb, params):
    """lava-nc's DelayDense model code, called step by step; returns what a_out sent, (n_out, T)."""
    model = model_cls(params)
    fixed = model_cls is LavaDelayDenseFixed
    model.weights = np.asarray(w, dtype=np.int32 if fixed else float)
    model.delays = np.asarray(d, dtype=np.int32)
    model.a_buff = np.zeros((w.shape[0], max_delay + 1), dtype=np.int32 if fixed else float)
    model.num_message_bits = np.array([nmb])
    model.s_in, model.a_out = _InStub(), _OutStub()
    for t in range(data.shape[1]):
        model.s_in.data = data[:, t]
        model.run_spk()
    return np.stack(model.a_out.sent, axis=1)


def test_delay_dense_kernel_matches_lava_model_code():
    """Random weights/delays/inputs, weight_exp of both signs, binary and graded (32-bit wrap):
    0 mismatches, fixed and float."""
    rng = np.random.default_rng(5)
    mismatches = wrapped = 0
    for case in range(60):
        n_out, n_in = (int(v) for v in rng.integers(1, 20, 2))
        w = rng.integers(-256, 256, (n_out, n_in))
        if case % 3 == 1:
            w = np.abs(w)
        max_delay = int(rng.integers(0, 8))
        d = rng.integers(0, max_delay + 1, (n_out, n_in))
        nwb = int(rng.integers(1, 9))
        exp = int(rng.integers(-8, 9))
        nmb = 0 if case % 2 else 24
        half = 2 if nmb == 0 else 1 << 20
        steps = 25
        data = rng.integers(-half, half, (n_in, steps)) * (rng.random((n_in, steps)) < 0.4)
        mode = [None, syn.SignMode.MIXED, syn.SignMode.EXCITATORY][case % 3]
        params = {"num_weight_bits": nwb, "weight_exp": exp}
        if mode is not None:
            params["sign_mode"] = LavaSignMode(int(mode))
        ref = _lava_delay_dense_run(LavaDelayDenseFixed, w, d, data.astype(np.int64), max_delay, nmb, params)
        ours = dly.delay_dense(syn.loihi_dense_weights(w, nwb, mode), d, data, nmb, exp, max_delay)
        mismatches += int(np.sum(ours != ref))
        wrapped += int(np.any(np.abs(ours.astype(np.int64)) >= 1 << 30))
        # floating point: lava-nc's model (no weight_exp) on integer-valued data
        ref_f = _lava_delay_dense_run(LavaDelayDenseFloat, w, d, data.astype(float), max_delay, nmb, {})
        a_buff = np.zeros((n_out, max_delay + 1))
        wt, dt = np.ascontiguousarray(w.T, dtype=float), np.ascontiguousarray(d.T, dtype=np.int32)
        for t in range(steps):
            mismatches += int(np.sum(a_buff[:, 0] != ref_f[:, t]))
            dly.delay_dense_float(wt, dt, data[:, t].astype(float), nmb == 0, 1.0, a_buff)
    assert mismatches == 0
    assert wrapped > 3


def test_delay_dense_latency_is_one_plus_delay():
    w = np.array([[10, 20], [30, 40]])
    d = np.array([[0, 3], [5, 1]])
    s = np.zeros((2, 12), dtype=int)
    s[0, 2] = 1  # one spike of input 0 at step 2
    out = dly.delay_dense(w, d, s)
    assert np.flatnonzero(out[0]).tolist() == [3] and out[0, 3] == 10  # 2 + 1 + 0
    assert np.flatnonzero(out[1]).tolist() == [8] and out[1, 8] == 30  # 2 + 1 + 5


# ----------------------------------------------------------------------------- Lava runs


def _axon_graph(data, **kwargs):
    src = Source(data=data)
    proc = AxonDelay(shape=data.shape[:-1], **kwargs)
    sink = Sink(shape=data.shape[:-1], buffer=data.shape[-1])
    src.s_out.connect(proc.s_in)
    proc.s_out.connect(sink.a_in)
    return proc, sink


@pytest.mark.parametrize("num_message_bits, run_cfg", [(0, FIXED), (24, FIXED), (0, FLOAT), (24, FLOAT)])
def test_axon_delay_lava_run_is_a_shift(num_message_bits, run_cfg):
    rng = np.random.default_rng(6)
    steps = 30
    data = rng.integers(-1000, 1000, (3, 4, steps)) * (rng.random((3, 4, steps)) < 0.4)
    d = rng.integers(0, 7, (3, 4))
    d[0, 0] = 0
    proc, sink = _axon_graph(data, delays=d, max_delay=9, num_message_bits=num_message_bits)
    out = run_and_read(proc, steps, [sink.data], run_cfg=run_cfg)[0]
    x = data if num_message_bits else (data != 0).astype(int)
    ref = _delay_line_ref(x.reshape(12, steps), d.reshape(-1)).reshape(data.shape)
    assert np.abs(ref).max() > 1 or num_message_bits == 0
    assert np.array_equal(out, ref)


def test_axon_delay_lava_reset_clears_history():
    rng = np.random.default_rng(7)
    steps = 32
    data = rng.integers(1, 100, (6, steps))
    d = np.array([0, 1, 3, 5, 7, 7])
    proc, sink = _axon_graph(data, delays=d, max_delay=7, num_message_bits=16, reset_interval=8,
                             reset_offset=1)
    out = run_and_read(proc, steps, [sink.data])[0]
    ref = _delay_line_ref(data, d, 8, 1)
    assert np.array_equal(out, ref)
    assert np.all(out[5, 8:15] == 0) and np.any(_delay_line_ref(data, d)[5, 8:15] != 0)


def _dense_graph(cls, data, weights, **kwargs):
    src = Source(data=data)
    proc = cls(weights=weights, **kwargs)
    sink = Sink(shape=(weights.shape[0],), buffer=data.shape[1])
    src.s_out.connect(proc.s_in)
    proc.a_out.connect(sink.a_in)
    return proc, sink


@pytest.mark.parametrize("num_message_bits", [0, 16])
@pytest.mark.parametrize("run_cfg", [FIXED, FLOAT], ids=["fixed", "float"])
def test_delay_dense_lava_run_matches_lava_delay_dense(num_message_bits, run_cfg):
    rng = np.random.default_rng(8)
    steps = 40
    w = rng.integers(-256, 256, (9, 14))
    d = rng.integers(0, 6, (9, 14))
    data = rng.integers(-300, 300, (14, steps)) * (rng.random((14, steps)) < 0.3)
    fixed = run_cfg is FIXED
    kw = dict(num_weight_bits=6, weight_exp=-2) if fixed else {}
    kw["num_message_bits"] = num_message_bits
    outs = []
    for cls in (DelayDense, LavaDelayDense):
        proc, sink = _dense_graph(cls, data, w, delays=d, max_delay=7, **kw)
        outs.append(run_and_read(proc, steps, [sink.data, proc.a_buff], run_cfg=run_cfg))
    (out_o, buf_o), (out_r, buf_r) = outs
    assert np.all(out_o[:, 0] == 0) and np.abs(out_o).max() > 0
    assert np.array_equal(out_o, out_r)
    assert np.array_equal(buf_o, buf_r)


def test_delay_dense_scalar_delay_and_default_max_delay():
    w = np.array([[3, -2, 1]])
    proc = DelayDense(weights=w, delays=2)
    assert proc.a_buff.shape == (1, 3) and np.array_equal(proc.delays.init, np.full((1, 3), 2))
    assert DelayDense(weights=w, delays=np.array([[0, 4, 1]]), max_delay=0).a_buff.shape == (1, 5)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(delays=1.5), ValueError, "integers"),
    (dict(delays=-1), ValueError, r"\[0, 62\]"),
    (dict(delays=63), ValueError, r"\[0, 62\] \(max_delay\)"),
    (dict(delays=5, max_delay=4), ValueError, r"\[0, 4\]"),
    (dict(delays=1, max_delay=64), ValueError, "max_delay"),
    (dict(delays=1, max_delay=2.0), TypeError, "max_delay"),
    (dict(delays=np.ones(3, int)), ValueError, "broadcast"),
    (dict(delays=True), TypeError, "delays"),
    (dict(delays="a"), TypeError, "delays"),
    (dict(delays=1, num_message_bits=-1), ValueError, "num_message_bits"),
    (dict(delays=1, reset_interval=-2), ValueError, "reset_interval"),
    (dict(delays=1, shape=(0,)), ValueError, "shape"),
])
def test_axon_delay_bad_arguments(kwargs, err, match):
    kwargs = {"shape": (2, 4), **kwargs}
    with pytest.raises(err, match=match):
        AxonDelay(**kwargs)


_W = np.ones((3, 4), dtype=int)


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(delays=np.ones(4, int)), ValueError, r"\(n_out, n_in\)"),
    (dict(delays=np.ones(3, int)), ValueError, r"\(n_out, n_in\)"),
    (dict(delays=np.ones((4, 3), int)), ValueError, r"\(n_out, n_in\)"),
    (dict(delays=np.full((3, 4), 0.5)), ValueError, "integers"),
    (dict(delays=-1), ValueError, r"\[0, 63\]"),
    (dict(delays=64), ValueError, "6-bit"),
    (dict(delays=3, max_delay=2), ValueError, r"\[0, 2\] \(max_delay\)"),
    (dict(delays=1, max_delay=64), ValueError, "max_delay"),
    (dict(delays=1, max_delay=1.5), TypeError, "max_delay"),
    (dict(delays=1, weight_exp=30), ValueError, "weight_exp"),
    (dict(delays=1, weights=np.full((3, 4), 0.5)), ValueError, "integers"),
    (dict(delays=1, weights=np.ones(4)), ValueError, "2-D"),
    (dict(delays=1, sign_mode=9), ValueError, "sign_mode"),
])
def test_delay_dense_bad_arguments(kwargs, err, match):
    kwargs = {"weights": _W, **kwargs}
    with pytest.raises(err, match=match):
        DelayDense(**kwargs)


def test_channels_last_input_same_shift_and_gradients():
    """Convolutions hand over channels-last (N, T, H, W, C) activations: the shift keeps that memory
    order and gives the same output and input gradient (exactly) and delay gradient (to rounding)."""
    torch.manual_seed(4)
    module = Delay(max_delay=8, num_channels=5)
    with torch.no_grad():
        module.delay.copy_(torch.tensor([0.0, 1.5, 3.2, 7.9, 2.0]))
    x = torch.randn(2, 5, 3, 4, 12)
    channels_last = x.permute(0, 4, 2, 3, 1).contiguous().permute(0, 4, 2, 3, 1)
    results = []
    for inp in (x, channels_last):
        inp = inp.clone().requires_grad_()
        module.delay.grad = None
        y = module(inp)
        (y * torch.linspace(-1, 2, y.numel()).reshape(y.shape)).sum().backward()
        results.append((y.detach(), inp.grad.clone(), module.delay.grad.clone(), y))
    (y0, g0, d0, _), (y1, g1, d1, out1) = results
    assert out1.permute(0, 4, 2, 3, 1).is_contiguous()  # the memory order is kept
    assert torch.equal(y0, y1) and torch.equal(g0, g1)
    torch.testing.assert_close(d0, d1, rtol=1e-6, atol=1e-6)
    assert d0.abs().sum() > 0


def test_axon_delays_set_between_steps_take_effect_and_are_checked():
    """New delays set after the first step (a fused network's ``set`` replaces the Var) are used from
    the next step, and checked again: one beyond ``max_delay`` raises instead of reading outside the
    line."""
    from lava.magma.core.process.ports.ports import InPort, OutPort
    from lava.magma.core.process.process import AbstractProcess

    from lava_dl.netx import fused

    class Boundary(AbstractProcess):
        def __init__(self) -> None:
            super().__init__()
            self.inp, self.out = InPort(shape=(3,)), OutPort(shape=(3,))

    line = AxonDelay(shape=(3,), delays=[0, 1, 2], max_delay=4, num_message_bits=8)
    boundary = Boundary()
    boundary.inp.connect(line.s_in)
    line.s_out.connect(boundary.out)
    graph = fused.LocalGraph(fused.leaf_models([line], "fixed_pt"), boundary.inp, boundary.out)
    model = graph.instances[line]
    frames = [np.full(3, t + 1, np.int32) for t in range(8)]  # step t sends t + 1
    outs = [graph.step(f).copy() for f in frames[:4]]
    assert outs[3].tolist() == [4, 3, 2]
    model.delays = np.array([3, 0, 4], np.int32)
    outs += [graph.step(f).copy() for f in frames[4:]]
    assert outs[4].tolist() == [2, 5, 1] and outs[7].tolist() == [5, 8, 4]
    model.delays = np.array([5, 0, 0], np.int32)
    with pytest.raises(ValueError, match=r"delays must lie in \[0, 4\]"):
        graph.step(frames[0])


def test_delay_dense_weights_and_delays_set_between_steps_take_effect():
    """A DelayDense whose weights and delays are replaced after its first steps (zero input so far)
    computes as one built with them: its laid-out copies are made again."""
    from lava.magma.core.process.ports.ports import InPort, OutPort
    from lava.magma.core.process.process import AbstractProcess

    from lava_dl.netx import fused

    class Boundary(AbstractProcess):
        def __init__(self) -> None:
            super().__init__()
            self.inp, self.out = InPort(shape=(6,)), OutPort(shape=(4,))

    rng = np.random.default_rng(12)
    (w1, w2), (d1, d2) = rng.integers(-128, 128, (2, 4, 6)), rng.integers(0, 4, (2, 4, 6))
    frames = [np.zeros(6, np.int32)] * 3 + [(rng.random(6) < 0.5).astype(np.int32) for _ in range(10)]
    outputs = []
    for weights, delays in ((w1, d1), (w2, d2)):
        synapse = DelayDense(weights=weights, delays=delays, max_delay=4)
        boundary = Boundary()
        boundary.inp.connect(synapse.s_in)
        synapse.a_out.connect(boundary.out)
        graph = fused.LocalGraph(fused.leaf_models([synapse], "fixed_pt"), boundary.inp, boundary.out)
        outs = [graph.step(f).copy() for f in frames[:3]]
        model = graph.instances[synapse]
        model.weights, model.delays = w2.astype(np.int32), d2.astype(np.int32)
        outputs.append(outs + [graph.step(f).copy() for f in frames[3:]])
    assert any(o.any() for o in outputs[1])
    for t, (a, b) in enumerate(zip(*outputs)):
        assert np.array_equal(a, b), t
