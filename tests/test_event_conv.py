"""The event-driven conv forward (lava_dl.slayer.synapse._events) gives conv2d's values and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lava_dl.slayer import synapse
from lava_dl.slayer.quantize import quantize_8bit
from lava_dl.slayer.synapse import _events


def _images(n, c, h, w, rate, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, h, w, c, generator=gen) < rate).float()
    return x.permute(0, 3, 1, 2)  # channels-last N, C, H, W


@pytest.fixture
def statuses(monkeypatch):
    """The status of every event-path run (the rate limit lifted, so that small images take it)."""
    seen = []
    kernel = _events.conv_events_blocks  # the event kernel over batch ranges (one status per range)

    def recording(*args, **kwargs):
        result = kernel(*args, **kwargs)
        seen.append(max(result))
        return result

    monkeypatch.setattr(_events, "conv_events_blocks", recording)
    monkeypatch.setattr(_events, "MAX_RATE", 1.0)
    return seen


def _weight(o, c, k, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return quantize_8bit(torch.randn(o, c, *k, generator=gen) * 2)


@pytest.mark.parametrize("geometry", [
    dict(k=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1)),
    dict(k=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1)),
    dict(k=(3, 2), stride=(2, 1), padding=(0, 1), dilation=(1, 2)),
    dict(k=(5, 5), stride=(3, 2), padding=(2, 0), dilation=(1, 1)),
    dict(k=(1, 1), stride=(1, 1), padding=(0, 0), dilation=(1, 1)),
])
def test_event_forward_and_gradients_equal_conv2d(geometry, statuses):
    images = _images(6, 9, 11, 10, 0.08).requires_grad_(True)
    weight = _weight(12, 9, geometry["k"]).requires_grad_(True)
    args = (geometry["stride"], geometry["padding"], geometry["dilation"])
    assert _events.usable(images, weight, 1)
    out = _events.SpikeConvolution.apply(images, weight, *args)
    ref_images = images.detach().clone().requires_grad_(True)
    ref_weight = weight.detach().clone().requires_grad_(True)
    ref = F.conv2d(ref_images, ref_weight, stride=args[0], padding=args[1], dilation=args[2])
    assert out.shape == ref.shape and out.stride() == ref.stride()
    assert torch.equal(out, ref)
    grad = torch.randn(ref.shape, generator=torch.Generator().manual_seed(2)).contiguous(
        memory_format=torch.channels_last)
    out.backward(grad)
    ref.backward(grad)
    assert torch.equal(images.grad, ref_images.grad)
    assert torch.equal(weight.grad, ref_weight.grad)
    assert statuses == [_events.DONE]


def test_event_path_falls_back_on_non_binary_or_dense_input(statuses, monkeypatch):
    weight = _weight(16, 8, (3, 3))
    graded = _images(2, 8, 7, 7, 0.1) * 0.5
    out = _events.SpikeConvolution.apply(graded, weight, (1, 1), (1, 1), (1, 1))
    assert torch.equal(out, F.conv2d(graded, weight, padding=1))
    monkeypatch.setattr(_events, "MAX_RATE", 0.5)
    dense = _images(4 * _events.RATE_SLACK_IMAGES, 8, 7, 7, 0.9)  # enough for every thread's range
    out = _events.SpikeConvolution.apply(dense, weight, (1, 1), (1, 1), (1, 1))
    assert torch.equal(out, F.conv2d(dense, weight, padding=1))
    assert statuses == [_events.NOT_BINARY, _events.TOO_DENSE]


def test_event_path_keeps_a_sparse_batch_with_a_few_dense_images(statuses, monkeypatch):
    """The limit is on the running average: two dense images among sparse ones stay on the event
    path (the same values as conv2d)."""
    monkeypatch.setattr(_events, "MAX_RATE", 0.5)
    weight = _weight(16, 8, (3, 3))
    images = _images(12, 8, 7, 7, 0.1)
    images[3:5] = _images(2, 8, 7, 7, 0.9)
    images = images.contiguous(memory_format=torch.channels_last)
    out = _events.SpikeConvolution.apply(images, weight, (1, 1), (1, 1), (1, 1))
    assert torch.equal(out, F.conv2d(images, weight, padding=1))
    assert statuses == [_events.DONE]


def test_exact_weights_needs_a_grid_and_bounded_sums():
    assert _events.exact_weights(_weight(4, 8, (3, 3)))
    assert not _events.exact_weights(torch.full((2, 2, 1, 1), 0.1))  # 0.1 is on no binary grid
    assert not _events.exact_weights(torch.full((1, 4, 1, 1), float(1 << 23)))  # sums beyond 2**24
    assert not _events.exact_weights(torch.tensor([[[[float("nan")]]]]))
    images = _images(1, 8, 4, 4, 0.2)
    assert not _events.usable(images, _weight(4, 8, (3, 3)), groups=2)
    assert not _events.usable(_images(1, 80, 4, 4, 0.2), _weight(4, 80, (3, 3)), groups=1)  # > MAX_CHANNELS


def test_two_channel_input_takes_the_event_path(statuses):
    """A first layer's few input channels (e.g. 2 DVS polarities) run by events too."""
    images, weight = _images(3, 2, 9, 9, 0.1, seed=4), _weight(16, 2, (3, 3))
    assert _events.usable(images, weight, groups=1)
    out = _events.SpikeConvolution.apply(images, weight, (1, 1), (1, 1), (1, 1))
    assert torch.equal(out, F.conv2d(images, weight, padding=1)) and statuses == [_events.DONE]


def test_conv_synapse_takes_the_event_path_with_the_same_result(statuses):
    torch.manual_seed(0)
    conv = synapse.Conv(16, 8, 3, stride=2, padding=1, pre_hook_fx=quantize_8bit)
    gen = torch.Generator().manual_seed(3)
    spikes = (torch.rand(2, 5, 9, 9, 16, generator=gen) < 0.05).float()  # N, T, H, W, C
    x = spikes.permute(0, 4, 2, 3, 1)  # logical N, C, H, W, T stored time-major channels-last
    y = conv(x)
    weight = quantize_8bit(conv.weight)[..., 0]
    images = spikes.reshape(10, 9, 9, 16).permute(0, 3, 1, 2)
    ref = F.conv2d(images, weight, stride=2, padding=1)
    assert torch.equal(y, ref.reshape(2, 5, 8, 5, 5).permute(0, 2, 3, 4, 1))
    assert _graph_has(y.grad_fn, "SpikeConvolutionBackward") and statuses == [_events.DONE]


def _graph_has(node, name: str) -> bool:
    seen, todo = set(), [node]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if type(node).__name__ == name:
            return True
        todo.extend(f for f, _ in node.next_functions)
    return False


@pytest.mark.parametrize("shape", [(3, 8, 1, 1), (1, 8, 5, 1), (2, 8, 1, 6)])
def test_event_path_with_unit_axes(shape, statuses):
    n, c, h, w = shape
    images = _images(n, c, h, w, 0.3, seed=5)
    weight = _weight(16, c, (1, 1))
    out = _events.SpikeConvolution.apply(images, weight, (1, 1), (0, 0), (1, 1))
    assert torch.equal(out, F.conv2d(images, weight)) and statuses == [_events.DONE]


def test_dense_on_marked_binary_spikes_gives_f_linear_bit_for_bit():
    """A Dense synapse whose input a neuron marked binary takes the faster product (exact in any
    order on the weight grid) and gives F.linear's outputs and gradients bit for bit."""
    from lava_dl.slayer import checks

    torch.manual_seed(0)
    dense = synapse.Dense(96, 10, weight_scale=4, pre_hook_fx=quantize_8bit)
    gen = torch.Generator().manual_seed(1)
    spikes = (torch.rand(3, 7, 96, generator=gen) < 0.3).float()  # N, T, K: time-major memory
    x = checks.mark_bound(spikes.transpose(1, 2), 1.0, binary=True).requires_grad_()
    y = dense(x)
    assert _graph_has(y.grad_fn, "BinaryLinearBackward")
    weight = quantize_8bit(dense.weight).reshape(10, -1)
    ref_x = spikes.transpose(1, 2).clone().requires_grad_()
    ref = F.linear(ref_x.transpose(1, 2), weight).transpose(1, 2)
    assert torch.equal(y, ref)
    grad = torch.randn(ref.shape, generator=gen)
    y.backward(grad)
    dense_grad = dense.weight.grad.clone()
    dense.weight.grad = None
    ref.backward(grad)
    assert torch.equal(x.grad, ref_x.grad) and torch.equal(dense_grad, dense.weight.grad)
    unmarked = spikes.transpose(1, 2)
    assert not _graph_has(dense(unmarked).grad_fn, "BinaryLinearBackward")
    marked = checks.mark_bound(spikes.transpose(1, 2).clone(), 1.0, binary=True)
    marked[0, 0, 0] = 0.5  # changed in place: the mark no longer holds
    assert not checks.marked_binary(marked)
    assert not _graph_has(dense(marked).grad_fn, "BinaryLinearBackward")
