"""Pool, ConvTranspose/ConvT and Unpool synapses: torch layers, integer kernels and Lava Processes.

Oracles: explicit window-sum loops, ``F.avg_pool2d``, ``F.conv_transpose2d``/``conv_transpose3d``,
lava-nc's own ``Conv`` (Process and ``utils.conv``) with the equivalent depthwise kernel, and
our ``Conv`` for the fixed-point ``weight_exp``/24-bit-wrap semantics. Fixed-point checks are
exact integer equalities.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lava.magma.core.run_configs import Loihi1SimCfg
from lava.proc.conv import utils as lava_conv_utils
from lava.proc.conv.process import Conv as LavaConv
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source

from lava_dl.core import synapse as core
from lava_dl.proc.conv import Conv, ConvT, Pool, Unpool
from lava_dl.slayer import complex_synapse, synapse
from lava_dl.slayer.quantize import quantize_8bit
from tests.lava_run import run_and_read


def _hook(weight):
    """8-bit quantizer returning the integer weights (what is exported to Lava)."""
    return quantize_8bit(weight, scale=64, descale=True)


def _wrap24(v):
    return ((np.asarray(v, dtype=np.int64) + (1 << 23)) & 0xFFFFFF) - (1 << 23)


def _shift(v, exp):
    v = np.asarray(v, dtype=np.int64)
    return v << exp if exp >= 0 else v >> -exp


def _torch_int(syn, x):
    """``syn`` on a float64 ``N, C, H, W, T`` array, as exact int64."""
    with torch.no_grad():
        y = syn(torch.from_numpy(np.asarray(x, dtype=np.float64))).numpy()
    assert np.array_equal(y, np.rint(y))
    return np.rint(y).astype(np.int64)


def _window_sum_loop(x, kernel, stride, padding, dilation):
    """Per-channel cross-correlation of ``x (C, H, W)`` with ``kernel (kH, kW)``, by explicit loops."""
    c, h, w = x.shape
    kh, kw = kernel.shape
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((c, ho, wo), dtype=np.int64)
    for ch in range(c):
        for i in range(ho):
            for j in range(wo):
                for a in range(kh):
                    for b in range(kw):
                        r = i * stride[0] - padding[0] + a * dilation[0]
                        q = j * stride[1] - padding[1] + b * dilation[1]
                        if 0 <= r < h and 0 <= q < w:
                            out[ch, i, j] += int(x[ch, r, q]) * int(kernel[a, b])
    return out


# ----------------------------------------------------------------------------- torch synapses


@pytest.mark.parametrize("kernel, stride, padding, dilation, size", [
    (2, None, 0, 1, (7, 9)),                  # odd sizes: floor, no implicit padding (lava-dl 293/101)
    ((3, 2), (2, 1), (1, 0), (1, 2), (8, 7)),
    ((2, 3), (1, 3), (0, 1), (2, 1), (5, 11)),
    (3, 2, 1, 1, (6, 6)),
])
def test_pool_equals_window_sum_loop(kernel, stride, padding, dilation, size):
    rng = np.random.default_rng(0)
    pool = synapse.Pool(kernel, stride, padding, dilation, weight_scale=3)
    k = pool.weight.detach().numpy()[0, 0, :, :, 0].astype(np.int64)
    assert pool.weight.shape == (1, 1, *pool.kernel_size, 1) and not pool.weight.requires_grad
    assert np.all(k == 3)
    x = rng.integers(-9, 10, (2, 3, *size, 4)) * (rng.random((2, 3, *size, 4)) < 0.6)
    y = _torch_int(pool, x)
    assert y.shape[2:4] == pool.output_size(size)
    for n in range(2):
        for t in range(4):
            ref = _window_sum_loop(x[n, :, :, :, t], k, pool.stride, pool.padding, pool.dilation)
            assert np.array_equal(y[n, :, :, :, t], ref)
    # a non-uniform kernel (the Lava Pool takes any shared kernel) is a cross-correlation
    with torch.no_grad():
        pool.weight.copy_(torch.from_numpy(rng.integers(-5, 6, pool.weight.shape)).float())
    k = pool.weight.detach().numpy()[0, 0, :, :, 0].astype(np.int64)
    y = _torch_int(pool, x)
    assert np.array_equal(y[1, :, :, :, 2], _window_sum_loop(x[1, :, :, :, 2], k, pool.stride, pool.padding,
                                                             pool.dilation))


def test_pool_equals_avg_pool_times_area_and_floor_size():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.integers(0, 5, (2, 3, 9, 7, 5)).astype(np.float64))
    for kernel, stride, padding in (((2, 2), None, 0), ((3, 2), (2, 1), (1, 1)), ((3, 3), 1, 0)):
        pool = synapse.Pool(kernel, stride, padding)
        y = pool(x)
        ref = F.avg_pool2d(x.movedim(-1, 1).flatten(0, 1), kernel, pool.stride, padding,
                           count_include_pad=True) * (pool.kernel_size[0] * pool.kernel_size[1])
        ref = ref.reshape(2, 5, 3, *ref.shape[-2:]).movedim(1, -1)
        assert y.dtype == torch.float64 and torch.equal(y, ref.round()) and torch.allclose(y, ref)
    # floor mode, no implicit padding: 9 x 7 with a 2 x 2 window -> 4 x 3 (lava-dl gives 5 x 4)
    assert synapse.Pool(2).output_size((9, 7)) == (4, 3)
    assert synapse.Pool(2)(x).shape == (2, 3, 4, 3, 5)
    assert synapse.Pool((3, 2), stride=(2, 1), padding=1, dilation=(1, 2)).output_size((8, 7)) == (4, 7)


@pytest.mark.parametrize("seed", range(8))
def test_conv_transpose_equals_functional(seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    groups = int(rng.integers(1, 4))
    cin, cout = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    k = tuple(int(v) for v in rng.integers(1, 5, 2))
    stride = tuple(int(v) for v in rng.integers(1, 4, 2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
    padding = tuple(int(rng.integers(0, dilation[i] * (k[i] - 1) // 2 + 1)) for i in range(2))
    h, w = (int(v) for v in rng.integers(1, 8, 2) | 1)  # odd sizes
    syn = synapse.ConvTranspose(cin, cout, k, stride, padding, dilation, groups, weight_scale=16,
                                pre_hook_fx=_hook)
    assert syn.weight.shape == (cin, cout // groups, *k, 1)
    assert (syn.in_channels, syn.out_channels, syn.groups) == (cin, cout, groups)
    x = rng.integers(-20, 21, (2, cin, h, w, 3)).astype(np.float64)
    y = syn(torch.from_numpy(x))
    assert y.dtype == torch.float64 and y.shape[2:4] == syn.output_size((h, w))
    wq = _hook(syn.weight)[..., 0].double().detach()
    for t in range(3):
        ref = F.conv_transpose2d(torch.from_numpy(x[..., t]), wq, stride=stride, padding=padding,
                                 groups=groups, dilation=dilation)
        assert torch.equal(y[..., t], ref)
    # lava-dl's forward: a 3-D transposed convolution with a unit time kernel
    ref3 = F.conv_transpose3d(torch.from_numpy(x), _hook(syn.weight).double(), stride=(*stride, 1),
                              padding=(*padding, 0), groups=groups, dilation=(*dilation, 1))
    assert torch.equal(y, ref3)


@pytest.mark.parametrize("kernel, stride, padding, dilation", [
    (2, None, 0, 1), ((3, 2), (2, 1), (1, 0), (1, 2)), ((2, 3), 3, (0, 1), 1)])
def test_unpool_equals_functional(kernel, stride, padding, dilation):
    rng = np.random.default_rng(2)
    unpool = synapse.Unpool(kernel, stride, padding, dilation, weight_scale=0.5, pre_hook_fx=_hook)
    assert unpool.weight.shape == (1, 1, *unpool.kernel_size, 1) and not unpool.weight.requires_grad
    x = rng.integers(-9, 10, (2, 3, 5, 7, 3)).astype(np.float64)
    y = unpool(torch.from_numpy(x))
    assert y.shape == (2, 3, *unpool.output_size((5, 7)), 3)
    ones = torch.full((1, 1, *unpool.kernel_size), 32.0, dtype=torch.float64)
    for c in range(3):
        for t in range(3):
            ref = F.conv_transpose2d(torch.from_numpy(x[:, c:c + 1, :, :, t]), ones, stride=unpool.stride,
                                     padding=unpool.padding, dilation=unpool.dilation)
            assert torch.equal(y[:, c:c + 1, :, :, t], ref)
    if stride is None:  # default stride = kernel: every input copied into its own block
        block = np.ones(unpool.kernel_size) * 32
        assert np.array_equal(y[1, 2, :, :, 0].numpy(), np.kron(x[1, 2, :, :, 0], block))


def test_outputs_time_major_gradients_and_weight_norm():
    torch.manual_seed(3)
    convt = synapse.ConvTranspose(4, 6, 3, stride=2, groups=2, weight_scale=4, pre_hook_fx=_hook)
    for syn in (synapse.Pool(2), convt, synapse.Unpool(2)):
        x = torch.rand(2, 4, 5, 6, 3, requires_grad=True)
        y = syn(x)
        # time-major; ConvTranspose channels-last (memory N, T, H, W, C) like Conv
        memory_order = y.permute(0, 4, 2, 3, 1) if syn is convt else y.movedim(-1, 1)
        assert memory_order.is_contiguous() and not y.is_contiguous()
        x_time_major = x.detach().movedim(-1, 1).contiguous().movedim(1, -1)
        assert torch.equal(syn(x_time_major), y)
        y.square().sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
    assert convt.weight.grad is not None and convt.weight.grad.abs().sum() > 0
    # weight norm on ConvTranspose (dim 0, as lava-dl) and its removal
    syn = synapse.ConvTranspose(2, 3, (2, 3), weight_norm=True)
    x = torch.rand(1, 2, 4, 4, 2)
    y = syn(x)
    assert syn.weight_norm
    syn.disable_weight_norm()
    assert set(syn.state_dict()) == {"weight"} and torch.equal(syn(x), y)
    pool = synapse.Pool(2, weight_norm=True)
    assert pool.weight_norm and torch.equal(pool(x), synapse.Pool(2)(x))


def test_attributes_state_dicts_and_complex():
    pool = synapse.Pool((3, 2), padding=(1, 0))
    assert (pool.kernel_size, pool.stride, pool.padding, pool.dilation) == ((3, 2), (3, 2), (1, 0), (1, 1))
    assert not hasattr(pool, "in_channels") and not hasattr(pool, "out_channels")
    assert synapse.Pool(2, stride=1).stride == (1, 1)
    convt = synapse.ConvTranspose(4, 6, (3, 2), stride=(2, 1), groups=2)
    assert convt.state_dict()["weight"].shape == (4, 3, 3, 2, 1)
    assert convt.output_size((5, 4)) == (11, 5)
    unpool = synapse.Unpool(2)
    assert unpool.stride == (2, 2) and unpool.output_size((3, 5)) == (6, 10)
    assert set(unpool.state_dict()) == {"weight"}

    x = torch.rand(2, 4, 6, 5, 3)
    for cls, args in ((complex_synapse.Pool, (2,)), (complex_synapse.ConvTranspose, (4, 2, 3, 2)),
                      (complex_synapse.Unpool, ((2, 3),))):
        syn = cls(*args, weight_scale=2, pre_hook_fx=_hook)
        assert syn.complex and syn.pre_hook_fx is _hook
        re, im = syn(x)
        assert torch.equal(re, syn.real(x)) and torch.equal(im, syn.imag(x))
        assert re.shape[2:4] == syn.output_size((6, 5)) and syn.kernel_size == syn.real.kernel_size
    cplx = complex_synapse.ConvTranspose(4, 2, 3, stride=2)
    assert (cplx.in_channels, cplx.out_channels, cplx.stride) == (4, 2, (2, 2))
    assert not hasattr(complex_synapse.Pool(2), "in_channels")


def test_torch_errors():
    with pytest.raises(ValueError, match="input W=3 .* smaller than the dilated kernel"):
        synapse.Pool((2, 3), dilation=(1, 2))(torch.rand(1, 2, 4, 3, 2))
    with pytest.raises(ValueError, match="input H=1"):
        synapse.Pool(2).output_size((1, 4))
    with pytest.raises(ValueError, match="no output along W"):
        synapse.ConvTranspose(2, 2, 1, padding=(0, 1))(torch.rand(1, 2, 3, 1, 2))
    with pytest.raises(ValueError, match="no output along H"):
        synapse.Unpool(2, padding=(2, 0)).output_size((1, 3))
    with pytest.raises(ValueError, match="2 input channels"):
        synapse.ConvTranspose(2, 2, 3)(torch.rand(1, 3, 5, 5, 2))
    with pytest.raises(ValueError, match="5-D input"):
        synapse.Pool(2)(torch.rand(1, 4, 4, 2))
    with pytest.raises(ValueError, match="divisible by groups"):
        synapse.ConvTranspose(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match="stride"):
        synapse.Unpool(2, stride=0)
    with pytest.raises(TypeError, match="kernel_size"):
        synapse.Pool((1, 2, 3))
    for fx in (synapse.pool_weight_to_lava, synapse.unpool_weight_to_lava):
        with pytest.raises(ValueError, match="pool_weight_to_lava"):
            fx(np.zeros((2, 1, 3, 3, 1)))
    with pytest.raises(ValueError, match="conv_transpose_weight_to_lava"):
        synapse.conv_transpose_weight_to_lava(np.zeros((2, 3, 3)))


def test_weight_conversions():
    w = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5, 1)
    lava = synapse.conv_transpose_weight_to_lava(w)
    assert lava.shape == (2, 5, 4, 3) and lava[1, 0, 0, 2] == w[1, 2, 3, 4, 0]
    k = np.arange(6).reshape(1, 1, 2, 3, 1)
    assert np.array_equal(synapse.pool_weight_to_lava(k), np.array([[5, 2], [4, 1], [3, 0]]))
    assert np.array_equal(synapse.unpool_weight_to_lava(k[..., 0]), synapse.pool_weight_to_lava(k))


# ----------------------------------------------------------------------------- integer kernels


def test_core_conv_transpose_equals_torch_and_is_the_adjoint_of_conv():
    rng = np.random.default_rng(4)
    for _ in range(120):
        groups = int(rng.integers(1, 3))
        cin, kg = groups * int(rng.integers(1, 3)), int(rng.integers(1, 3))
        kx, ky = (int(v) for v in rng.integers(1, 4, 2))
        stride, dilation = rng.integers(1, 4, 2), rng.integers(1, 3, 2)
        padding = np.array([rng.integers(0, dilation[0] * (kx - 1) // 2 + 1),
                            rng.integers(0, dilation[1] * (ky - 1) // 2 + 1)])
        x, y = (int(v) for v in rng.integers(1, 7, 2))
        w = rng.integers(-256, 256, (cin, kx, ky, kg))
        s = rng.integers(-50, 51, (x, y, cin)) * (rng.random((x, y, cin)) < 0.5)
        ours = core.conv_transpose(s, w, stride, padding, dilation, groups, 16)
        # torch: (C, H, W) layout, (y, x) geometry, kernel flipped back
        ref = F.conv_transpose2d(torch.from_numpy(s.transpose(2, 1, 0)[None].astype(np.float64)),
                                 torch.from_numpy(w[:, ::-1, ::-1].transpose(0, 3, 2, 1).astype(np.float64)),
                                 stride=tuple(stride[::-1]), padding=tuple(padding[::-1]), groups=groups,
                                 dilation=tuple(dilation[::-1]))[0].numpy().transpose(2, 1, 0)
        assert np.array_equal(ours, ref)
        # <Conv_w(r), s> == <r, ConvT_w(s)> for the same weight array
        r = rng.integers(-50, 51, ours.shape)
        try:
            conv_r = core.conv(r, w, stride, padding, dilation, groups, 16)
        except ValueError:
            continue
        if conv_r.shape == s.shape:
            assert int(np.sum(conv_r * s)) == int(np.sum(r * ours))


def test_core_pool_equals_lava_nc_conv_utils_and_unpool_equals_torch():
    rng = np.random.default_rng(5)
    for _ in range(60):
        c = int(rng.integers(1, 4))
        kx, ky = (int(v) for v in rng.integers(1, 4, 2))
        stride, padding, dilation = rng.integers(1, 3, 2), rng.integers(0, 2, 2), rng.integers(1, 3, 2)
        x = int(dilation[0] * (kx - 1) + 1 + rng.integers(0, 5))
        y = int(dilation[1] * (ky - 1) + 1 + rng.integers(0, 5))
        k = rng.integers(-16, 17, (kx, ky))
        s = rng.integers(-30, 31, (x, y, c)) * (rng.random((x, y, c)) < 0.6)
        ours = core.pool(s, k, stride=stride, padding=padding, dilation=dilation, num_message_bits=8)
        depthwise = np.broadcast_to(k[None, :, :, None], (c, kx, ky, 1)).astype(np.int64)
        ref = lava_conv_utils.conv(s, depthwise, (kx, ky), stride, padding, dilation, c)
        assert np.array_equal(ours, ref)
        binary = core.pool(s, k, stride=stride, padding=padding, dilation=dilation)
        assert np.array_equal(binary, lava_conv_utils.conv((s != 0).astype(np.int64), depthwise, (kx, ky),
                                                           stride, padding, dilation, c))
        full = (np.array([x, y]) - 1) * stride + dilation * (np.array([kx, ky]) - 1) + 1
        if np.any(full <= 2 * padding):
            with pytest.raises(ValueError, match="no output along"):
                core.pool(s, k, stride=stride, padding=padding, dilation=dilation, transposed=True)
            continue
        up = core.pool(s, k, stride=stride, padding=padding, dilation=dilation, num_message_bits=8,
                       transposed=True)
        kt = torch.from_numpy(k[::-1, ::-1].T.astype(np.float64).copy())[None, None]
        for ch in range(c):
            img = torch.from_numpy(s[None, None, :, :, ch].transpose(0, 1, 3, 2) * 1.0)
            ref = F.conv_transpose2d(img, kt, stride=tuple(stride[::-1]), padding=tuple(padding[::-1]),
                                     dilation=tuple(dilation[::-1]))[0, 0].numpy().T
            assert np.array_equal(up[:, :, ch], ref)


# ----------------------------------------------------------------------------- Lava runs

SHAPE = (9, 7, 4)  # (x, y, c) = (W, H, C)
STEPS = 4


def _data():
    rng = np.random.default_rng(6)
    big = rng.integers(-(1 << 16), 1 << 16, (*SHAPE, STEPS))
    return big * (rng.random((*SHAPE, STEPS)) < 0.6)


def _to_torch(data):
    return data.transpose(2, 1, 0, 3)[None]  # (x, y, c, T) -> (1, C, H, W, T)


def _from_torch(y):
    return y[0].transpose(2, 1, 0, 3)


def _cases(data):
    """Processes fed by one source, with their expected unwrapped sums (torch synapses, integer weights)."""
    rng = np.random.default_rng(7)
    torch.manual_seed(7)
    x, xb = _to_torch(data), _to_torch((data != 0).astype(np.int64))
    cases = {}

    def add(name, proc, ref, exp=0):
        cases[name] = (proc, ref, exp)

    def rev(pair):
        return pair[::-1]

    # Pool with a small non-uniform kernel: equal to lava-nc's Conv (float32 inside: sums kept < 2**23)
    p1 = synapse.Pool((3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    with torch.no_grad():
        p1.weight.copy_(torch.from_numpy(rng.integers(-8, 9, p1.weight.shape)).float())
    k1 = synapse.pool_weight_to_lava(p1.weight.detach().numpy()).astype(np.int64)
    g1 = dict(input_shape=SHAPE, stride=rev(p1.stride), padding=rev(p1.padding), dilation=rev(p1.dilation))
    dw1 = np.broadcast_to(k1[None, :, :, None], (SHAPE[2], *k1.shape, 1)).copy()
    for nmb, xin in ((24, x), (0, xb)):
        ref = _from_torch(_torch_int(p1, xin))
        add(f"pool{nmb}", Pool(kernel=k1, num_message_bits=nmb, **g1), ref)
        add(f"lavanc{nmb}", LavaConv(weight=dw1, groups=SHAPE[2], num_message_bits=nmb, **g1), ref)
    # Pool with a full-range kernel: graded sums wrap; weight_exp then wrap, as our Conv
    p3 = synapse.Pool((2, 3), stride=(1, 2), padding=(0, 1))
    with torch.no_grad():
        p3.weight.copy_(torch.from_numpy(rng.integers(-256, 256, p3.weight.shape)).float())
    k3 = synapse.pool_weight_to_lava(p3.weight.detach().numpy()).astype(np.int64)
    g3 = dict(input_shape=SHAPE, stride=rev(p3.stride), padding=rev(p3.padding))
    dw3 = np.broadcast_to(k3[None, :, :, None], (SHAPE[2], *k3.shape, 1)).copy()
    ref3 = _from_torch(_torch_int(p3, x))
    add("pool_wrap", Pool(kernel=k3, num_message_bits=24, **g3), ref3)
    add("pool_exp", Pool(kernel=k3, num_message_bits=24, weight_exp=-1, **g3), ref3, -1)
    add("conv_exp", Conv(weight=dw3, groups=SHAPE[2], num_message_bits=24, weight_exp=-1, **g3), ref3, -1)
    # sum pool (lava-dl default kernel) of binary spikes shifted past 2**23 by a positive weight_exp
    p2 = synapse.Pool(3, weight_scale=255)
    ref2 = _from_torch(_torch_int(p2, xb))
    add("pool_bin_exp", Pool(kernel=255, kernel_size=3, input_shape=SHAPE, weight_exp=13), ref2, 13)
    add("conv_bin_exp", Conv(weight=np.full((SHAPE[2], 3, 3, 1), 255), input_shape=SHAPE, groups=SHAPE[2],
                             stride=3, weight_exp=13), ref2, 13)
    # ConvTranspose on 8-bit quantized weights
    t1 = synapse.ConvTranspose(4, 6, (3, 2), stride=(2, 3), padding=(1, 0), dilation=(1, 2), groups=2,
                               weight_scale=16, pre_hook_fx=_hook)
    w1 = synapse.conv_transpose_weight_to_lava(_hook(t1.weight).detach().numpy())
    gt1 = dict(input_shape=SHAPE, stride=rev(t1.stride), padding=rev(t1.padding), dilation=rev(t1.dilation),
               groups=2)
    reft1 = _from_torch(_torch_int(t1, x))
    add("convt24", ConvT(weight=w1, num_message_bits=24, **gt1), reft1)
    add("convt0", ConvT(weight=w1, **gt1), _from_torch(_torch_int(t1, xb)))
    add("convt_exp", ConvT(weight=w1, num_message_bits=24, weight_exp=-3, **gt1), reft1, -3)
    t2 = synapse.ConvTranspose(4, 3, (2, 3), padding=(0, 1), weight_scale=16, pre_hook_fx=_hook)
    w2 = synapse.conv_transpose_weight_to_lava(_hook(t2.weight).detach().numpy())
    add("convt_exp_pos",
        ConvT(weight=w2, input_shape=SHAPE, padding=(1, 0), num_message_bits=24, weight_exp=1),
        _from_torch(_torch_int(t2, x)), 1)
    # Unpool: quantized default kernel, and a non-uniform one with overlapping windows
    u1 = synapse.Unpool(2, weight_scale=0.5, pre_hook_fx=_hook)
    ku1 = synapse.unpool_weight_to_lava(_hook(u1.weight).detach().numpy())
    add("unpool24", Unpool(kernel=ku1, input_shape=SHAPE, num_message_bits=24),
        _from_torch(_torch_int(u1, x)))
    u2 = synapse.Unpool((3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    with torch.no_grad():
        u2.weight.copy_(torch.from_numpy(rng.integers(-256, 256, u2.weight.shape)).float())
    ku2 = synapse.unpool_weight_to_lava(u2.weight.detach().numpy()).astype(np.int64)
    gu2 = dict(input_shape=SHAPE, stride=rev(u2.stride), padding=rev(u2.padding), dilation=rev(u2.dilation))
    add("unpool0", Unpool(kernel=ku2, **gu2), _from_torch(_torch_int(u2, xb)))
    add("unpool_exp", Unpool(kernel=ku2, num_message_bits=24, weight_exp=-1, **gu2),
        _from_torch(_torch_int(u2, x)), -1)
    return cases


def _run(cases, data, run_cfg=None):
    src = Source(data=data)
    sinks = {}
    for name, (proc, _, _) in cases.items():
        src.s_out.connect(proc.s_in)
        sinks[name] = Sink(shape=proc.output_shape, buffer=STEPS)
        proc.a_out.connect(sinks[name].a_in)
    first = next(iter(cases.values()))[0]
    outs = run_and_read(first, STEPS, [sink.data for sink in sinks.values()], run_cfg=run_cfg)
    return dict(zip(sinks, outs, strict=True))


def _expected(ref, exp):
    """Fixed point with one step of latency: step t + 1 shows wrap24(shift(sum_t, exp))."""
    out = np.zeros(ref.shape, dtype=np.int64)
    out[..., 1:] = _wrap24(_shift(ref[..., :-1], exp))
    return out


@pytest.fixture(scope="module")
def fixed_run():
    data = _data()
    cases = _cases(data)
    return cases, _run(cases, data)


def test_lava_fixed_equals_torch_exactly(fixed_run):
    cases, outs = fixed_run
    for name, (proc, ref, exp) in cases.items():
        assert tuple(proc.output_shape) == ref.shape[:3], name
        assert np.array_equal(outs[name], _expected(ref, exp)), name
        assert np.all(outs[name][..., 0] == 0) and np.abs(outs[name]).max() > 0, name


def test_lava_pool_equals_lava_nc_conv(fixed_run):
    _, outs = fixed_run
    for nmb in (24, 0):
        assert np.array_equal(outs[f"pool{nmb}"], outs[f"lavanc{nmb}"])


def test_lava_wrap_and_weight_exp_as_conv(fixed_run):
    cases, outs = fixed_run
    assert np.array_equal(outs["pool_exp"], outs["conv_exp"])
    assert np.array_equal(outs["pool_bin_exp"], outs["conv_bin_exp"])
    # the cases really wrap (and the shift comes first: wrap24(sum >> 1) != wrap24(sum) >> 1)
    for name in ("pool_wrap", "pool_exp", "pool_bin_exp", "convt24", "unpool_exp"):
        _, ref, exp = cases[name]
        assert np.any(np.abs(_shift(ref, exp)) >= 1 << 23), name
    _, ref, _ = cases["pool_exp"]
    assert not np.array_equal(_wrap24(_shift(ref, -1)), _shift(_wrap24(ref), -1))


def test_lava_floating_pt_agrees_with_fixed_where_nothing_wraps(fixed_run):
    cases_fixed, outs_fixed = fixed_run
    data = _data()
    names = ("pool24", "pool_wrap", "convt24", "convt_exp_pos", "unpool24", "unpool0")
    cases = {k: v for k, v in _cases(data).items() if k in names}
    outs = _run(cases, data, Loihi1SimCfg(select_tag="floating_pt"))
    for name in names:
        _, ref, exp = cases[name]
        unwrapped = np.zeros(ref.shape)
        unwrapped[..., 1:] = ref[..., :-1] * 2.0**exp
        assert np.array_equal(outs[name], unwrapped), name
        fits = np.abs(unwrapped) < 1 << 23
        assert fits.any()
        assert np.array_equal(outs[name][fits], outs_fixed[name][fits]), name
    assert not np.all(np.abs(cases["convt24"][1]) < 1 << 23)  # the float model does not wrap


# ----------------------------------------------------------------------------- Process errors

_WT = np.ones((4, 3, 3, 2), dtype=int)


@pytest.mark.parametrize("cls, kwargs, err, match", [
    (ConvT, dict(weight=np.ones((4, 3, 3)), input_shape=(8, 8, 4)), ValueError, "4-D"),
    (ConvT, dict(weight=_WT, input_shape=(8, 8, 3)), ValueError, "in = 3"),
    (ConvT, dict(weight=_WT, input_shape=(8, 8, 4), groups=3), ValueError, "divisible by groups"),
    (ConvT, dict(weight=_WT, input_shape=(1, 8, 4), padding=(2, 0)), ValueError, "no output along x"),
    (ConvT, dict(weight=_WT, input_shape=(8, 1, 4), padding=(0, 2)), ValueError, "no output along y"),
    (ConvT, dict(weight=_WT, input_shape=(8, 8, 4), stride=0), ValueError, "stride"),
    (ConvT, dict(weight=_WT, input_shape=(8, 8, 4), dilation=(1, 2, 3)), TypeError, "dilation"),
    (ConvT, dict(weight=_WT * 0.5, input_shape=(8, 8, 4)), ValueError, "integers"),
    (ConvT, dict(weight=_WT * 256, input_shape=(8, 8, 4)), ValueError, r"\[-256, 255\]"),
    (ConvT, dict(weight=_WT, input_shape=(8, 8, 4), weight_exp=40), ValueError, "weight_exp"),
    (ConvT, dict(weight=_WT, input_shape=(8, 8, 4), num_message_bits=-1), ValueError, "num_message_bits"),
    (ConvT, dict(weight=_WT, input_shape=(8, 8)), ValueError, "input_shape"),
    (Pool, dict(kernel=1, input_shape=(8, 8, 2)), ValueError, "kernel_size is required"),
    (Pool, dict(kernel=np.ones((2, 3)), kernel_size=(3, 2), input_shape=(8, 8, 2)), ValueError,
     "kernel_size"),
    (Pool, dict(kernel=np.ones((2, 2, 1)), input_shape=(8, 8, 2)), ValueError, "kernel.* 2-D"),
    (Pool, dict(kernel=300, kernel_size=2, input_shape=(8, 8, 2)), ValueError, r"\[-256, 255\]"),
    (Pool, dict(kernel=1, kernel_size=3, input_shape=(8, 2, 2)), ValueError, "does not fit along y"),
    (Pool, dict(kernel=1, kernel_size=3, input_shape=(8, 8, 2), dilation=(4, 1)), ValueError,
     "does not fit along x"),
    (Pool, dict(kernel=1, kernel_size=2, input_shape=(8, 8, 2), stride=0), ValueError, "stride"),
    (Pool, dict(kernel=1, kernel_size=0, input_shape=(8, 8, 2)), ValueError, "kernel_size"),
    (Pool, dict(kernel="a", kernel_size=2, input_shape=(8, 8, 2)), TypeError, "numeric"),
    (Unpool, dict(kernel=1, kernel_size=2, input_shape=(1, 4, 2), padding=(1, 0)), ValueError,
     "no output along x"),
    (Unpool, dict(kernel=1, kernel_size=2, input_shape=(4, 4, 2), weight_exp=1.5), TypeError, "weight_exp"),
])
def test_process_bad_geometry(cls, kwargs, err, match):
    with pytest.raises(err, match=match):
        cls(**kwargs)


def test_process_attributes():
    p = Pool(kernel=np.arange(6).reshape(2, 3), input_shape=(9, 7, 4), padding=(1, 0))
    assert p.output_shape == (5, 2, 4) and p.input_shape == (9, 7, 4)
    assert np.asarray(p.stride.get()).tolist() == [2, 3] and int(p.groups.get()) == 4
    assert p.s_in.shape == (9, 7, 4) and p.a_out.shape == (5, 2, 4)
    u = Unpool(kernel=1, kernel_size=(2, 3), input_shape=(3, 2, 5))
    assert u.output_shape == (6, 6, 5) and u.weight.get().shape == (2, 3)
    t = ConvT(weight=np.ones((4, 3, 2, 5)), input_shape=(3, 4, 4), stride=2, groups=2)
    assert t.output_shape == (7, 8, 10)
