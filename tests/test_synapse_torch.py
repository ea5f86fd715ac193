"""slayer Dense/Conv synapses and quantizers against the integer Lava kernels."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from lava_dl.core import synapse as core
from lava_dl.slayer import synapse
from lava_dl.slayer.quantize import quantize, quantize_8bit

SCALE = 64


def _hook(weight, descale=False):
    return quantize_8bit(weight, scale=SCALE, descale=descale)


def _int_weight(syn) -> np.ndarray:
    return quantize_8bit(syn.weight, SCALE, descale=True).detach().numpy().astype(np.int64)


def test_synapse_modules_do_not_import_lava():
    import subprocess

    code = ("import sys, lava_dl.slayer.synapse, lava_dl.slayer.quantize; "
            "bad = [m for m in sys.modules if m.startswith('lava.') or m.startswith('lava_dl.proc')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_quantize_8bit_values_and_gradient():
    x = torch.linspace(-6, 6, 2001, dtype=torch.float64, requires_grad=True)
    q = quantize_8bit(x, descale=True)
    assert torch.all(q == torch.round(q)) and torch.all(q % 2 == 0)
    assert q.min() == -256 and q.max() == 254
    ref = torch.clamp(torch.round(x.detach() * SCALE / 2) * 2 / SCALE, -256 / SCALE, 254 / SCALE)
    assert torch.equal(quantize_8bit(x.detach()), ref)
    assert torch.equal(quantize_8bit(x.detach()) * SCALE, q.detach())
    quantize_8bit(x).sum().backward()
    rounded = torch.round(x.detach() * SCALE / 2) * 2  # the clamp acts on the rounded value
    inside = (rounded >= -256) & (rounded <= 254)
    assert inside.any() and (~inside).any()
    assert torch.all(x.grad[inside] == 1) and torch.all(x.grad[~inside] == 0)


def test_quantize_modes():
    x = torch.tensor([-1.5, -0.5, 0.5, 1.5, 2.5, 0.7], requires_grad=True)
    assert quantize(x).tolist() == [-2.0, -0.0, 0.0, 2.0, 2.0, 1.0]  # half to even
    assert quantize(x, step=0.5, mode="floor").tolist() == [-1.5, -0.5, 0.5, 1.5, 2.5, 0.5]
    quantize(x, step=0.25).sum().backward()
    assert torch.all(x.grad == 1)
    with pytest.raises(ValueError, match="mode"):
        quantize(x, mode="ceil")
    with pytest.raises(ValueError, match="step"):
        quantize(x, step=0)


def test_dense_matches_lava_kernel():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        n_in, n_out = (int(v) for v in rng.integers(1, 60, 2))
        syn = synapse.Dense(n_in, n_out, weight_scale=float(rng.uniform(5, 60)), pre_hook_fx=_hook)
        assert syn.weight.shape == (n_out, n_in, 1, 1, 1)
        s = (rng.random((3, n_in, 1)) < 0.4).astype(np.float32)
        out = syn(torch.from_numpy(s))
        assert out.shape == (3, n_out, 1)
        w_int = _int_weight(syn).reshape(n_out, n_in)
        assert w_int.min() >= -256 and w_int.max() <= 254
        for n in range(3):
            lava = core.dense(w_int, s[n, :, 0].astype(np.int64), num_message_bits=0)
            assert np.array_equal(torch.round(out[n, :, 0] * SCALE).detach().numpy().astype(np.int64), lava)


@pytest.mark.parametrize("seed", range(12))
def test_conv_matches_lava_kernel(seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    groups = int(rng.integers(1, 4))
    cin, cout = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
    k = tuple(int(v) for v in rng.integers(1, 5, 2))
    stride = tuple(int(v) for v in rng.integers(1, 4, 2))
    padding = tuple(int(v) for v in rng.integers(0, 3, 2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
    h = max(1, dilation[0] * (k[0] - 1) + 1 - 2 * padding[0] + int(rng.integers(0, 8)))
    w = max(1, dilation[1] * (k[1] - 1) + 1 - 2 * padding[1] + int(rng.integers(0, 8)))
    syn = synapse.Conv(cin, cout, k, stride=stride, padding=padding, dilation=dilation, groups=groups,
                       weight_scale=float(rng.uniform(5, 30)), pre_hook_fx=_hook)
    assert syn.weight.shape == (cout, cin // groups, *k, 1)
    s = (rng.random((2, cin, h, w, 1)) < 0.5).astype(np.float32)
    out = syn(torch.from_numpy(s))
    ho, wo = syn.output_size((h, w))
    assert out.shape == (2, cout, ho, wo, 1)
    w_lava = synapse.conv_weight_to_lava(_int_weight(syn))  # (out, kx, ky, in/groups)
    assert w_lava.shape == (cout, k[1], k[0], cin // groups)
    for n in range(2):
        s_lava = s[n, :, :, :, 0].transpose(2, 1, 0).astype(np.int64)  # (C, H, W) -> (x, y, c)
        lava = core.conv(s_lava, w_lava, stride[::-1], padding[::-1], dilation[::-1], groups, 0)
        ours = torch.round(out[n, ..., 0] * SCALE).detach().numpy().astype(np.int64).transpose(2, 1, 0)
        assert lava.shape == ours.shape and np.array_equal(ours, lava)


def test_time_steps_and_batch_are_independent():
    torch.manual_seed(1)
    syn = synapse.Conv(4, 6, 3, padding=1, groups=2, weight_scale=10, pre_hook_fx=_hook)
    x = (torch.rand(3, 4, 5, 7, 6) < 0.3).float()
    y = syn(x)
    for t in range(6):
        assert torch.allclose(y[..., t:t + 1], syn(x[..., t:t + 1]), atol=1e-6)
    dense = synapse.Dense(10, 4, weight_scale=10)
    z = dense(torch.rand(2, 10, 5))
    assert z.shape == (2, 4, 5)


def test_outputs_are_time_major_and_chain_without_copies():
    """Synapse outputs are stored time-major (``N, T, ...``; conv channels-last ``N, T, H, W, C``), so
    the next layer reads them in place."""
    torch.manual_seed(5)
    dense, conv = synapse.Dense(6, 4), synapse.Conv(3, 5, 3, padding=1)
    for syn, x in ((dense, torch.rand(2, 6, 7)), (conv, torch.rand(2, 3, 4, 5, 7))):
        y = syn(x)
        memory_order = y.movedim(-1, 1) if y.dim() == 3 else y.permute(0, 4, 2, 3, 1)
        assert memory_order.is_contiguous() and not y.is_contiguous()
        # values do not depend on the memory order of the input
        x_time_major = x.movedim(-1, 1).contiguous().movedim(1, -1)
        assert torch.allclose(syn(x_time_major), y, atol=1e-6)

def test_forward_equals_conv3d_of_lava_dl():
    """The fast forward equals lava-dl's 3-D convolution with a unit time kernel."""
    torch.manual_seed(2)
    syn = synapse.Conv(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
    x = torch.rand(2, 4, 9, 8, 5)
    ref = torch.nn.functional.conv3d(x, syn.weight, stride=(2, 1, 1), padding=(1, 0, 0), dilation=(1, 2, 1),
                                     groups=2)
    assert torch.allclose(syn(x), ref, atol=1e-5)
    dense = synapse.Dense(7, 3)
    x = torch.rand(2, 7, 4)
    ref = torch.nn.functional.conv3d(x[:, :, None, None, :], dense.weight)[:, :, 0, 0, :]
    assert torch.allclose(dense(x), ref, atol=1e-6)
    spatial = synapse.Dense((4, 3, 2), 5)  # (x, y, c): input N, 2, 3, 4, T
    x = torch.rand(2, 2, 3, 4, 6)
    assert torch.allclose(spatial(x), torch.nn.functional.conv3d(x, spatial.weight), atol=1e-5)


def test_gradients_flow():
    torch.manual_seed(3)
    for syn, x in ((synapse.Dense(8, 5, weight_scale=4, pre_hook_fx=_hook), torch.rand(2, 8, 3)),
                   (synapse.Conv(2, 3, 3, weight_scale=4, pre_hook_fx=_hook), torch.rand(2, 2, 6, 6, 3))):
        x.requires_grad_(True)
        syn(x).square().sum().backward()
        assert syn.weight.grad is not None and syn.weight.grad.abs().sum() > 0
        assert x.grad is not None and x.grad.abs().sum() > 0
    # the clamp of the 8-bit quantizer stops the gradient of out-of-range weights
    syn = synapse.Dense(3, 1, pre_hook_fx=_hook)
    with torch.no_grad():
        syn.weight.copy_(torch.tensor([10.0, 0.5, -10.0]).reshape(1, 3, 1, 1, 1))
    syn(torch.ones(1, 3, 1)).sum().backward()
    assert syn.weight.grad.flatten().tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize("make, x", [
    (lambda: synapse.Dense(6, 4, weight_norm=True, pre_hook_fx=_hook), torch.rand(2, 6, 3)),
    (lambda: synapse.Conv(2, 4, 3, weight_norm=True), torch.rand(2, 2, 5, 5, 3)),
])
def test_weight_norm_and_its_removal(make, x):
    torch.manual_seed(4)
    syn = make()
    assert syn.weight_norm and any("original" in k for k in syn.state_dict())
    y = syn(x)
    y.sum().backward()
    syn.disable_weight_norm()
    assert not syn.weight_norm and set(syn.state_dict()) == {"weight"}
    assert isinstance(syn.weight, torch.nn.Parameter)
    assert torch.allclose(syn(x), y, atol=1e-6)


def test_state_dict_layout_and_attributes():
    conv = synapse.Conv(4, 8, (3, 5), stride=2, padding=(1, 2), dilation=1, groups=2)
    assert conv.state_dict()["weight"].shape == (8, 2, 3, 5, 1)
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
            conv.groups) == (4, 8, (3, 5), (2, 2), (1, 2), (1, 1), 2)
    assert conv.output_size((11, 12)) == (6, 6)
    other = synapse.Conv(4, 8, (3, 5), groups=2)
    other.load_state_dict(conv.state_dict())
    dense = synapse.Dense(10, 3)
    assert dense.state_dict()["weight"].shape == (3, 10, 1, 1, 1)
    assert (dense.in_channels, dense.out_channels) == (10, 3)


def test_errors():
    with pytest.raises(ValueError, match="3-D input"):
        synapse.Dense(4, 2)(torch.rand(2, 4))
    with pytest.raises(ValueError, match="4 input channels"):
        synapse.Dense(4, 2)(torch.rand(2, 5, 3))
    with pytest.raises(ValueError, match="5-D input"):
        synapse.Conv(2, 2, 3)(torch.rand(2, 2, 5, 5))
    with pytest.raises(ValueError, match="2 input channels"):
        synapse.Conv(2, 2, 3)(torch.rand(1, 3, 5, 5, 2))
    with pytest.raises(ValueError, match="smaller than the dilated kernel"):
        synapse.Conv(2, 2, 3, dilation=2)(torch.rand(1, 2, 4, 9, 2))
    with pytest.raises(ValueError, match="divisible by groups"):
        synapse.Conv(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="in_features"):
        synapse.Conv(0, 4, 3)
    with pytest.raises(TypeError, match="kernel_size"):
        synapse.Conv(2, 4, (1, 2, 3))
    with pytest.raises(ValueError, match="stride"):
        synapse.Conv(2, 4, 3, stride=0)
    with pytest.raises(ValueError, match="spatial size"):
        synapse.Dense((4, 3, 2), 5)(torch.rand(1, 2, 4, 4, 1))
    with pytest.raises(ValueError, match="conv_weight_to_lava"):
        synapse.conv_weight_to_lava(np.zeros((2, 2, 3)))
