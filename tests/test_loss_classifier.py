"""slayer.loss and slayer.classifier: values against hand computations and plain torch references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lava_dl import slayer
from lava_dl.slayer.classifier import MovingWindow, Rate
from lava_dl.slayer.loss import SparsityEnforcer, SpikeMax, SpikeMoid, SpikeRate, SpikeTime


def moving_average(x: torch.Tensor, window: int) -> torch.Tensor:
    """Causal mean of the last ``window`` steps, zero before the start (explicit loop)."""
    out = torch.zeros_like(x)
    for t in range(x.shape[-1]):
        out[..., t] = x[..., max(0, t - window + 1): t + 1].sum(-1) / window
    return out


def random_spikes(*shape, p=0.3, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=generator) < p).float()


# -- classifiers ---------------------------------------------------------------------------------

def test_rate_classifier_by_hand():
    spike = torch.tensor([[[1.0, 1.0, 0.0, 0.0],    # rate 0.5
                           [1.0, 1.0, 1.0, 0.0],    # 0.75
                           [0.0, 0.0, 0.0, 1.0]]])  # 0.25
    assert Rate.rate(spike).tolist() == [[0.5, 0.75, 0.25]]
    assert Rate.predict(spike).tolist() == [1]
    assert Rate()(spike).tolist() == [1]
    probability = Rate.confidence(spike)
    assert torch.allclose(probability, torch.tensor([[0.5, 0.75, 0.25]]) / (1.5 + 1e-6))
    exp = [math.exp(0.5), math.exp(0.75), math.exp(0.25)]
    softmax = Rate.confidence(spike, mode="softmax")
    assert torch.allclose(softmax, torch.tensor([[e / sum(exp) for e in exp]]))
    log_softmax = Rate.confidence(spike, mode="logsoftmax")
    assert torch.allclose(log_softmax, torch.tensor([[math.log(e / sum(exp)) for e in exp]]))


def test_rate_classifier_flattens_space_and_breaks_ties_to_first():
    spike = torch.zeros(2, 2, 3, 1, 5)
    spike[0, 1, 2, 0, :4] = 1   # class 1 * 3 + 2 = 5
    spike[1, 0, 1, 0, :2] = 1   # classes 1 and 4 tie: the first wins
    spike[1, 1, 1, 0, :2] = 1
    assert Rate.predict(spike).tolist() == [5, 1]
    assert Rate.confidence(spike).shape == (2, 6)
    assert Rate.rate(spike).shape == (2, 2, 3, 1)
    # integer and boolean spikes are averaged as floats
    assert Rate.predict(spike.to(torch.int32)).tolist() == [5, 1]
    assert Rate.rate(spike.bool()).dtype == torch.float32


def test_classifier_bad_input():
    with pytest.raises(TypeError, match="spike tensor"):
        Rate.predict([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="at least 2-D"):
        Rate.predict(torch.ones(5))
    with pytest.raises(ValueError, match="mode must be one of"):
        Rate.confidence(torch.ones(1, 2, 3), mode="probabilty")
    with pytest.raises(ValueError, match="time_window"):
        MovingWindow(0)
    with pytest.raises(ValueError, match="mode must be one of"):
        MovingWindow(3).confidence(torch.ones(1, 2, 3), mode="max")


def test_moving_window_classifier():
    spike = torch.tensor([[[1.0, 0.0, 0.0, 0.0],
                           [0.0, 1.0, 1.0, 0.0]]])
    window = MovingWindow(2)
    # window 2: ch0 (1, 1, 0, 0) / 2 ; ch1 (0, 1, 2, 1) / 2
    assert window.rate(spike).tolist() == [[[0.5, 0.5, 0.0, 0.0], [0.0, 0.5, 1.0, 0.5]]]
    assert window.predict(spike).tolist() == [[0, 0, 1, 1]]
    assert window(spike).tolist() == [[0, 0, 1, 1]]   # lava-dl's forward returned None
    confidence = window.confidence(spike)
    assert confidence.shape == (1, 2, 4)
    assert torch.allclose(confidence[0, :, 2], torch.tensor([0.0, 1.0]) / (1.0 + 1e-6))
    softmax_window = MovingWindow(2, mode="softmax")
    assert torch.allclose(softmax_window.confidence(spike), F.softmax(window.rate(spike), dim=1))
    x = random_spikes(3, 4, 20)
    assert torch.allclose(MovingWindow(5).rate(x), moving_average(x, 5))


# -- SpikeTime -----------------------------------------------------------------------------------

def test_spike_time_by_hand():
    a = math.exp(-1)
    output = torch.zeros(1, 1, 5)
    output[0, 0, 0] = 1
    target = torch.zeros(1, 1, 5)
    loss = SpikeTime(time_constant=1, length=3)
    # filtered output: 1, a, a^2, 0, 0; target filters to zeros
    assert loss(output, target).item() == pytest.approx(1 + a ** 2 + a ** 4, rel=1e-6)
    mean = SpikeTime(time_constant=1, length=3, reduction="mean")
    assert mean(output, target).item() == pytest.approx((1 + a ** 2 + a ** 4) / 5, rel=1e-6)
    # second order: the filter convolved with itself, truncated: 1, 2a, 3a^2
    second = SpikeTime(time_constant=1, length=3, filter_order=2)
    assert torch.allclose(second.filter.filter, torch.tensor([1, 2 * a, 3 * a ** 2]))


def test_spike_time_against_explicit_filter_and_gradient():
    output = random_spikes(2, 3, 30, seed=1).requires_grad_()
    target = random_spikes(2, 3, 30, seed=2)
    tau, length = 4.0, 10
    h = torch.exp(-torch.arange(length) / tau)

    def filtered(x):
        out = torch.zeros_like(x)
        for t in range(x.shape[-1]):
            for k in range(min(length, t + 1)):
                out[..., t] = out[..., t] + h[k] * x[..., t - k]
        return out

    reference = ((filtered(output) - filtered(target)) ** 2).sum()
    loss = SpikeTime(time_constant=tau, length=length)(output, target)
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)
    (grad,) = torch.autograd.grad(loss, output)
    (reference_grad,) = torch.autograd.grad(reference, output)
    assert torch.allclose(grad, reference_grad, atol=1e-5)


def test_spike_time_shape_mismatch_and_nan():
    loss = SpikeTime()
    with pytest.raises(ValueError, match=r"output shape \(1, 2, 5\) and target shape \(2, 1, 5\)"):
        loss(torch.zeros(1, 2, 5), torch.zeros(2, 1, 5))
    bad = torch.zeros(1, 2, 5)
    bad[0, 0, 1] = float("nan")
    with pytest.raises(FloatingPointError, match="SpikeTime: the loss is nan"):
        loss(bad, torch.zeros(1, 2, 5))
    with pytest.raises(ValueError, match="reduction"):
        SpikeTime(reduction="avg")


# -- SpikeRate -----------------------------------------------------------------------------------

def test_spike_rate_by_hand_and_gradient():
    output = torch.zeros(2, 3, 4)
    output[0, 0, :2] = 1      # rates sample 0: 0.5, 0, 0
    output[1, :, :] = 1       # rates sample 1: 1, 1, 1
    output.requires_grad_()
    label = torch.tensor([0, 2])
    loss = SpikeRate(true_rate=0.5, false_rate=0.1)(output, label)
    # sample 0: (0.5-0.5)^2 + (0-0.1)^2 * 2 ; sample 1: (1-0.1)^2 * 2 + (1-0.5)^2
    expected = 0.02 + 2 * 0.81 + 0.25
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    # d/ds[n, c, t] of sum (r - r_hat)^2 = 2 (r - r_hat) / T
    assert output.grad[1, 0, 0].item() == pytest.approx(2 * 0.9 / 4)
    assert output.grad[0, 1, 3].item() == pytest.approx(2 * -0.1 / 4)
    mean = SpikeRate(0.5, 0.1, reduction="mean")(output, label)
    assert mean.item() == pytest.approx(expected / 6, rel=1e-6)


def test_spike_rate_moving_window_matches_explicit_reference():
    output = random_spikes(2, 3, 12, seed=3)
    steps_label = torch.tensor([[0] * 6 + [1] * 6, [2] * 12])
    rate = moving_average(output, 4)
    one_hot = F.one_hot(steps_label, 3).permute(0, 2, 1).float()
    target = 0.1 + 0.7 * one_hot
    reference = ((rate - target) ** 2).sum()
    loss = SpikeRate(0.8, 0.1, moving_window=4)
    assert loss(output, steps_label).item() == pytest.approx(reference.item(), rel=1e-6)
    # one label per sample is repeated over time (lava-dl failed on it)
    per_sample = torch.tensor([1, 2])
    assert loss(output, per_sample).item() == pytest.approx(
        loss(output, per_sample[:, None].expand(2, 12)).item(), rel=1e-7)


def test_spike_rate_bad_labels():
    output = torch.zeros(2, 3, 4)
    loss = SpikeRate(0.5, 0.1)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        loss(output, torch.tensor([0, 3]))
    with pytest.raises(TypeError, match="integer class labels"):
        loss(output, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"labels of shape \(3,\) do not fit the output of shape \(2, 3, 4"):
        loss(output, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="per-step labels need moving_window"):
        loss(output, torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="true_rate"):
        SpikeRate(1.5, 0.1)


# -- SpikeMax ------------------------------------------------------------------------------------

def test_spike_max_probability_by_hand():
    output = torch.zeros(2, 3, 4)
    output[0, 0, :1] = 1
    output[0, 1, :3] = 1      # rates 0.25, 0.75, 0
    output[1, 2, :2] = 1      # rates 0, 0, 0.5
    label = torch.tensor([1, 2])
    loss = SpikeMax()(output, label)
    expected = -math.log(0.75 / (1.0 + 1e-6)) - math.log(0.5 / (0.5 + 1e-6))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_spike_max_probability_gradient_with_silent_classes():
    # lava-dl took log() of every class: a silent class (p = 0) made every gradient 0/0 = NaN
    output = torch.zeros(1, 3, 4)
    output[0, 0, :] = 1
    output[0, 1, :2] = 1      # rates 1, 0.5, 0 (class 2 silent)
    output.requires_grad_()
    SpikeMax()(output, torch.tensor([0])).backward()
    # L = -log(r0) + log(r0 + r1 + r2 + eps); dr/ds = 1/T
    total = 1.5 + 1e-6
    expected = torch.tensor([-1 / 1.0 + 1 / total, 1 / total, 1 / total]) / 4
    assert torch.isfinite(output.grad).all()
    assert torch.allclose(output.grad[0, :, 0], expected)
    assert torch.allclose(output.grad[0, :, 3], expected)


def test_spike_max_probability_moving_window():
    output = random_spikes(2, 3, 8, p=0.7, seed=8)
    output[:, :, 0] = 1       # every class spikes in every window
    label = torch.tensor([2, 0])
    rate = moving_average(output, 3)
    reference = 0.0
    for n in range(2):
        for t in range(8):
            reference -= math.log(rate[n, label[n], t].item() / (rate[n, :, t].sum().item() + 1e-6))
    loss = SpikeMax(moving_window=3)(output, label)
    assert loss.item() == pytest.approx(reference, rel=1e-5)


def test_spike_max_softmax_is_cross_entropy_of_rates():
    output = random_spikes(4, 5, 10, seed=4)
    label = torch.tensor([0, 4, 2, 2])
    rate = output.mean(-1)
    reference = F.cross_entropy(rate, label, reduction="sum")
    assert SpikeMax(mode="softmax")(output, label).item() == pytest.approx(reference.item(), rel=1e-6)
    # lava-dl's NMNIST tutorial names the mode 'logsoftmax': the same loss
    assert SpikeMax(mode="logsoftmax")(output, label).item() == SpikeMax(mode="softmax")(output, label).item()


def test_spike_max_moving_window_matches_explicit_reference():
    output = random_spikes(2, 3, 8, p=0.6, seed=5)
    label = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1], [2, 2, 2, 2, 2, 2, 2, 2]])
    rate = moving_average(output, 3)
    reference = 0.0
    for n in range(2):
        for t in range(8):
            reference -= torch.log_softmax(rate[n, :, t], dim=0)[label[n, t]].item()
    loss = SpikeMax(moving_window=3, mode="softmax")
    assert loss(output, label).item() == pytest.approx(reference, rel=1e-5)
    assert loss(output, torch.tensor([1, 2])).item() == pytest.approx(
        loss(output, torch.tensor([[1] * 8, [2] * 8])).item(), rel=1e-7)


def test_spike_max_silent_class_raises_instead_of_inf():
    output = torch.zeros(1, 3, 4)
    output[0, 0] = 1
    with pytest.raises(FloatingPointError, match="log\\(0\\)"):
        SpikeMax()(output, torch.tensor([1]))
    with pytest.raises(ValueError, match="mode"):
        SpikeMax(mode="log_softmax")


# -- SpikeMoid -----------------------------------------------------------------------------------

def bce(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p))


def test_spike_moid_global_by_formula():
    output = random_spikes(3, 4, 10, seed=6)
    target = torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]])
    alpha, theta = 0.2, 0.25
    p = torch.sigmoid((output.mean(-1) - theta) / alpha)
    loss = SpikeMoid(alpha=alpha, theta=theta)
    assert loss(output, target).item() == pytest.approx(bce(p, target).sum().item(), rel=1e-5)
    mean = SpikeMoid(alpha=alpha, theta=theta, reduction="mean")
    assert mean(output, target).item() == pytest.approx(bce(p, target).mean().item(), rel=1e-5)


def test_spike_moid_moving_window():
    output = random_spikes(2, 3, 9, seed=7)
    target = torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    p = torch.sigmoid((moving_average(output, 3) - 0.3) / 0.5)
    expanded = target[..., None].expand(2, 3, 9)
    loss = SpikeMoid(moving_window=3, alpha=0.5, theta=0.3)
    assert loss(output, target).item() == pytest.approx(bce(p, expanded).sum().item(), rel=1e-5)
    assert loss(output, expanded).item() == pytest.approx(bce(p, expanded).sum().item(), rel=1e-5)


def test_spike_moid_bad_targets():
    loss = SpikeMoid()
    with pytest.raises(ValueError, match=r"targets of shape \(2, 4\)"):
        loss(torch.zeros(2, 3, 5), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        loss(torch.zeros(2, 3, 5), torch.full((2, 3), 2.0))
    with pytest.raises(ValueError, match="alpha"):
        SpikeMoid(alpha=0)


# -- SparsityEnforcer ----------------------------------------------------------------------------

def test_sparsity_enforcer():
    enforcer = SparsityEnforcer(max_rate=0.1, lam=2.0)
    assert enforcer.loss.item() == 0.0
    enforcer.append(torch.tensor([0.3, -0.3, 0.3, -0.3]))    # mean |x| 0.3: (0.3 - 0.1)^2
    enforcer.append(torch.tensor([0.0, 0.1, 0.0, 0.0]))      # 0.025 < max_rate: 0
    assert len(enforcer.loss_list) == 2
    assert enforcer.loss.item() == pytest.approx(2.0 * 0.2 ** 2)
    x = torch.tensor([0.5, 0.5], requires_grad=True)
    enforcer.clear()
    enforcer.append(x)
    enforcer.loss.backward()   # d/dx 2 (mean|x| - 0.1)^2 = 2 * 2 * 0.4 * sign(x) / 2
    assert torch.allclose(x.grad, torch.tensor([0.8, 0.8]))


def test_modules_registered_on_slayer():
    assert slayer.loss.SpikeTime is SpikeTime
    assert slayer.classifier.Rate is Rate
