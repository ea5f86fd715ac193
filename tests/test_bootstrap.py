"""lava_dl.bootstrap: lava-dl's bootstrap (ANN-SNN) training API.

The scheduler's mode sequence, the piecewise-linear fit against hand-computed lines, the
blocks in every mode against the slayer blocks and independent computations, and a small
training run through the scheduler that exports to netx.
"""

from __future__ import annotations

import io

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lava_dl  # noqa: F401  (installs the lava-nc Python 3.11 fix first)
from lava_dl import bootstrap, netx, slayer
from lava_dl.bootstrap import Mode
from lava_dl.bootstrap.ann_sampler import AnnSampler
from lava_dl.bootstrap.routine import LayerMode, Scheduler

PARAMS = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.03, "tau_grad": 1, "scale_grad": 1}


def _modes(layer_mode: LayerMode, n: int) -> list[str]:
    return [m.name for _, m in zip(range(n), layer_mode)]


# ---- routine -------------------------------------------------------------------------

def test_scheduler_training_modes():
    scheduler = Scheduler(num_sample_iter=2, sample_period=3)
    seen = {(epoch, i): scheduler.mode(epoch, i).base_mode.name for epoch in range(4) for i in range(4)}
    assert [seen[0, i] for i in range(4)] == ["SAMPLE", "SAMPLE", "FIT", "ANN"]
    assert [seen[1, i] for i in range(4)] == ["ANN"] * 4
    assert [seen[2, i] for i in range(4)] == ["ANN"] * 4
    assert [seen[3, i] for i in range(4)] == ["SAMPLE", "SAMPLE", "FIT", "ANN"]


def test_scheduler_evaluation_modes_and_crossover():
    scheduler = Scheduler(num_sample_iter=1, sample_period=2, crossover_epochs=[1, 3])
    assert scheduler.mode(0, 0, train=False).base_mode is Mode.SNN
    assert scheduler.mode(1, 0, train=False).base_mode is Mode.ANN
    assert scheduler.crossover == 0  # evaluation never moves the crossover
    scheduler.mode(1, 0)
    scheduler.mode(1, 1)  # only the epoch's first iteration counts
    assert scheduler.crossover == 1
    assert _modes(scheduler.mode(1, 2), 3) == ["SNN", "ANN", "ANN"]
    assert _modes(scheduler.mode(2, 0), 3) == ["SAMPLE"] * 3  # sampling runs every block as an SNN
    scheduler.mode(3, 0)
    assert _modes(scheduler.mode(3, 1, train=False), 4) == ["SNN", "SNN", "ANN", "ANN"]


def test_layer_mode_restarts_at_the_first_layer_and_prints():
    layer_mode = LayerMode(2, Mode.ANN)
    assert _modes(layer_mode, 3) == ["SNN", "SNN", "ANN"]
    assert _modes(layer_mode, 3) == ["SNN", "SNN", "ANN"]  # a second pass starts again
    assert str(layer_mode) == "Mode: ANN, crossover at: 2"
    assert str(LayerMode(0, Mode.SNN)) == "Mode: SNN"


def test_scheduler_snn_stat():
    scheduler = Scheduler()
    stats = slayer.utils.LearningStats()
    stats.testing.num_samples, stats.testing.loss_sum, stats.testing.correct_samples = 10, 5.0, 7
    scheduler.sync_snn_stat(stats.testing)
    assert scheduler.snn_stat.accuracy == 0.7 and scheduler.snn_stat.loss == 0.5
    scheduler.update_snn_stat()
    assert scheduler.snn_stat.accuracy_log == [0.7] and scheduler.snn_stat.best_accuracy
    assert scheduler.snn_stat.num_samples == 0


@pytest.mark.parametrize("kwargs", [{"sample_period": 0}, {"num_sample_iter": -1}])
def test_scheduler_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Scheduler(**kwargs)


# ---- ann_sampler ---------------------------------------------------------------------

def _line_sampler(slope: float, offset: float, num_centers: int = 5) -> AnnSampler:
    """A sampler whose points lie on ``a = slope * z + offset`` for rates 0 .. 1 in steps of 1/64."""
    sampler = AnnSampler(num_centers=num_centers)
    a = np.arange(65) / 64
    z = (a - offset) / slope
    sampler.append(torch.from_numpy(a)[:, None].repeat(1, 4), torch.from_numpy(z)[:, None].repeat(1, 4))
    return sampler


def test_fit_of_points_on_a_line_is_that_line_clipped():
    slope, offset = 0.8, 0.2
    sampler = _line_sampler(slope, offset)
    sampler.fit()
    # the top rate: the mean of the rates above 0.9 (the largest is 1)
    top = np.mean(np.arange(65)[np.arange(65) / 64 > 0.9] / 64)
    assert sampler.max == pytest.approx(top, abs=1e-12)
    np.testing.assert_allclose(sampler.slopes, slope, rtol=1e-12)
    z0 = -offset / slope  # zero crossing
    np.testing.assert_allclose(sampler.centers[0], [z0, 0.0], atol=1e-12)
    np.testing.assert_allclose(sampler.centers[-1], [(top - offset) / slope, top], atol=1e-12)
    np.testing.assert_allclose(sampler.centers[:, 1], slope * sampler.centers[:, 0] + offset, atol=1e-12)
    assert sampler.scale == pytest.approx(sampler.centers[-1, 0] / top)

    z = torch.linspace(-1.0, 2.0, 301, dtype=torch.float64).requires_grad_()
    a = sampler(z)
    expected = np.clip(slope * (z.detach().numpy() - z0), 0, top)
    np.testing.assert_allclose(a.detach().numpy(), expected, atol=1e-9)
    a.sum().backward()
    inside = (z.detach().numpy() > z0) & (z.detach().numpy() <= sampler.centers[-1, 0])
    np.testing.assert_allclose(z.grad.numpy(), np.where(inside, slope * sampler.scale, 0) + sampler.eps,
                               rtol=1e-12)


def test_refit_blends_new_points_with_the_previous_centers():
    sampler = _line_sampler(0.5, 0.0, num_centers=1)
    sampler.fit()
    # one center: the fit runs through (0, 0) and it
    assert sampler.centers.shape == (4, 2) and np.array_equal(sampler.centers[1], [0.0, 0.0])
    old_center = sampler.centers[2].copy()
    sampler.clear()
    rates = torch.tensor([[0.3, 0.4, 0.5]], dtype=torch.float64)
    sampler.append(rates[..., None], torch.tensor([[1.0, 1.5, 2.0]], dtype=torch.float64)[..., None])
    sampler.fit()
    # one band: 0.1 * median of the new points + 0.9 * the previous center
    blended = 0.1 * np.array([1.5, 0.4]) + 0.9 * old_center
    np.testing.assert_allclose(sampler.centers[2], blended, atol=1e-12)


def test_overlapping_segments_take_the_later_one():
    """A refit may leave the centers out of order in z: where segments overlap the later one counts."""
    sampler = AnnSampler()
    sampler.centers = np.array([[0.0, 0.0], [2.0, 0.5], [1.0, 0.6], [3.0, 1.0]])
    sampler.slopes = np.array([0.25, 0.1, 0.2])
    sampler.max = 1.0
    sampler.scale = 3.0
    z = torch.tensor([0.5, 1.5, 2.5, 3.5], requires_grad=True)
    a = sampler(z)
    # 0.5: segment 0; 1.5: segments 0 and 2 overlap, 2 wins; 2.5: segment 2; 3.5: beyond the last
    np.testing.assert_allclose(a.detach().numpy(), [0.125, 0.6 + 0.2 * 0.5, 0.6 + 0.2 * 1.5, 1.0], rtol=1e-6)
    a.sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), [0.75 + 1e-5, 0.6 + 1e-5, 0.6 + 1e-5, 1e-5], rtol=1e-6)


def test_sampler_errors():
    sampler = AnnSampler()
    with pytest.raises(RuntimeError, match="not fitted"):
        sampler(torch.zeros(3))
    with pytest.raises(RuntimeError, match="no sampled points"):
        sampler.fit()
    with pytest.raises(ValueError, match="same shape"):
        sampler.append(torch.zeros(2, 3, 4), torch.zeros(2, 3, 5))
    # two rate bands whose points share one input: an infinite slope
    sampler.append(torch.tensor([[0.2, 0.5]])[..., None], torch.tensor([[1.0, 1.0]])[..., None])
    with pytest.raises(RuntimeError, match="undefined slope"):
        sampler.fit()
    with pytest.raises(ValueError, match="sample_range"):
        AnnSampler(sample_range=(0.9, 0.1))


def test_soft_clear_keeps_half_of_the_points_and_plot_returns_a_figure():
    sampler = _line_sampler(1.0, 0.0)
    n = sampler.z.size
    pairs = set(zip(sampler.z.tolist(), sampler.a.tolist()))
    sampler.fit()
    figure = sampler.plot()
    assert len(figure.axes[0].lines) == 3
    sampler.soft_clear()
    assert sampler.z.size == n - n // 2
    assert set(zip(sampler.z.tolist(), sampler.a.tolist())) <= pairs


# ---- blocks --------------------------------------------------------------------------

def _pair(kind: str):
    torch.manual_seed(0)
    if kind == "dense":
        ours = bootstrap.block.cuba.Dense(PARAMS, 12, 16, weight_scale=2)
        reference = slayer.block.cuba.Dense(PARAMS, 12, 16, weight_scale=2)
        x = (torch.rand(3, 12, 30) < 0.3).float()
    else:
        ours = bootstrap.block.cuba.Conv(PARAMS, 2, 5, 3, padding=1, weight_scale=2)
        reference = slayer.block.cuba.Conv(PARAMS, 2, 5, 3, padding=1, weight_scale=2)
        x = (torch.rand(3, 2, 6, 6, 30) < 0.3).float()
    reference.load_state_dict(ours.state_dict())
    return ours, reference, x


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_snn_and_sample_modes_are_the_slayer_block(kind):
    ours, reference, x = _pair(kind)
    expected = reference(x).detach()
    assert expected.sum() > 0
    assert torch.equal(ours(x, mode=Mode.SNN).detach(), expected)
    assert ours.f.z.size == 0  # SNN mode samples nothing
    assert torch.equal(ours(x, Mode.SAMPLE).detach(), expected)
    # the points: time means of the spikes before the one-step latency and of the synaptic input
    z = ours.synapse(x).detach()
    spikes = torch.cat([expected[..., 1:], torch.zeros_like(expected[..., :1])], -1)
    with torch.no_grad():
        last = ours.neuron(z)[..., -1:]  # the step that the latency pushed out of the output
    spikes[..., -1:] = last
    np.testing.assert_array_equal(ours.f.a, spikes.mean(-1).numpy().ravel())
    np.testing.assert_allclose(ours.f.z, z.mean(-1).numpy().ravel(), rtol=1e-6)


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_fit_and_ann_modes(kind):
    ours, _, x = _pair(kind)
    ours(x, mode=Mode.SAMPLE)
    n = ours.f.z.size
    one_step = x.mean(-1, keepdim=True)
    np.random.seed(0)
    fitted = ours(one_step, mode=Mode.FIT)
    assert ours.f.centers is not None and ours.f.z.size == n - n // 2
    z = ours.synapse(one_step).detach()
    centers, slopes = ours.f.centers, ours.f.slopes
    assert np.all(np.diff(centers[:, 0]) > 0)  # in order here: the activation is np.interp's
    expected = np.interp(z.numpy(), centers[:, 0], centers[:, 1], left=0.0, right=ours.f.max)
    np.testing.assert_allclose(fitted.detach().numpy(), expected, atol=1e-6)
    ann = ours(one_step, mode=Mode.ANN)
    assert torch.equal(ann, fitted)  # no latency, no sampling in ANN mode
    assert ours.f.z.size == n - n // 2
    assert len(slopes) == len(centers) - 1
    # gradients reach the weights through the fitted activation
    ann.sum().backward()
    assert ours.synapse.weight.grad.abs().sum() > 0


def test_ann_mode_applies_the_norm_and_count_log():
    torch.manual_seed(1)
    block = bootstrap.block.cuba.Dense({**PARAMS, "norm": slayer.neuron.norm.MeanOnlyBatchNorm}, 6, 4,
                                       count_log=True)
    x = torch.rand(5, 6, 20)
    spikes, rate = block(x * 4, mode=Mode.SAMPLE)
    assert isinstance(rate, float) and rate == pytest.approx((spikes != 0).float().mean().item())
    block.f.fit()
    block.eval()
    out, rate = block(x, mode=Mode.ANN)
    z = block.neuron.norm(block.synapse(x))
    torch.testing.assert_close(out, block.f(z))
    assert rate == pytest.approx((out != 0).float().mean().item())


def test_input_affine_and_flatten_blocks():
    torch.manual_seed(2)
    inp = bootstrap.block.cuba.Input(PARAMS, weight=2, bias=0.25)
    x = torch.rand(2, 3, 4, 4, 10)
    reference = slayer.block.cuba.Input(PARAMS, weight=2, bias=0.25)
    assert torch.equal(inp(x, Mode.SNN), reference(x))
    assert inp.shape == (3, 4, 4)
    inp(x, Mode.SAMPLE)
    np.testing.assert_allclose(inp.f.z, (2 * x + 0.25).mean(-1).numpy().ravel(), rtol=1e-6)

    flat = bootstrap.block.cuba.Flatten()
    for mode in Mode:
        assert flat(x, mode).shape == (2, 48, 10)

    affine = bootstrap.block.cuba.Affine(PARAMS, 48, 3)
    y = flat(x, Mode.ANN)
    for mode in Mode:  # the synaptic output, whatever the mode
        torch.testing.assert_close(affine(y, mode), affine.synapse(y), rtol=0, atol=0)
    affine.fit()


def test_bad_bootstrap_blocks():
    with pytest.raises(ValueError, match="axonal delays"):
        bootstrap.block.cuba.Dense(PARAMS, 4, 4, delay=True)
    with pytest.raises(ValueError, match="neuron_params"):
        bootstrap.block.cuba.Input()


def test_export_is_the_slayer_blocks():
    ours, reference, x = _pair("dense")
    reference(x)
    ours(x, Mode.SNN)
    files = []
    for block in (ours, reference):
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as f:
            block.export_hdf5(f.create_group("layer/0"))
        with h5py.File(buffer, "r") as f:
            files.append({k: f["layer/0"][k][()] for k in f["layer/0"].keys() if k != "neuron"}
                         | {f"neuron/{k}": v[()] for k, v in f["layer/0/neuron"].items()})
    assert files[0].keys() == files[1].keys()
    for key in files[0]:
        np.testing.assert_array_equal(files[0][key], files[1][key], err_msg=key)


class _Network(torch.nn.Module):
    """lava-dl's bootstrap tutorial network, small: an input layer, two Dense, an Affine readout."""

    def __init__(self, steps: int = 12):
        super().__init__()
        self.steps = steps
        params = {"threshold": 1.25, "current_decay": 1, "voltage_decay": 0.03, "tau_grad": 1,
                  "scale_grad": 1}
        cuba = bootstrap.block.cuba
        self.blocks = torch.nn.ModuleList([
            cuba.Input(params, weight=1, bias=0),
            cuba.Dense(params, 36, 24, weight_norm=True, weight_scale=2),
            cuba.Dense(params, 24, 24, weight_norm=True, weight_scale=2),
            cuba.Affine(params, 24, 3, weight_norm=True, weight_scale=2),
        ])

    def forward(self, x, mode):
        n = x.shape[0]
        x = x.reshape(n, -1, 1) if mode.base_mode is Mode.ANN else slayer.utils.time.replicate(
            x.reshape(n, -1), self.steps)
        for block, block_mode in zip(self.blocks, mode):
            x = block(x, mode=block_mode)
        return x


def _patterns(n: int, generator: torch.Generator):
    """Three classes: one bright third of a 6x6 image each."""
    labels = torch.randint(0, 3, (n,), generator=generator)
    x = torch.rand(n, 6, 6, generator=generator) * 0.3
    for i, label in enumerate(labels):
        x[i, 2 * label:2 * label + 2] += 0.7
    return x, labels


def test_bootstrap_training_through_the_scheduler_learns_and_exports(tmp_path):
    torch.manual_seed(0)
    np.random.seed(0)
    generator = torch.Generator().manual_seed(0)
    train_x, train_y = _patterns(96, generator)
    test_x, test_y = _patterns(48, generator)
    net = _Network()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    scheduler = Scheduler(num_sample_iter=2, sample_period=3)
    seen = set()

    def snn_accuracy() -> float:
        net.eval()
        with torch.no_grad():
            rate = net(test_x, LayerMode(0, Mode.SNN)).mean(-1)
        return (rate.argmax(1) == test_y).float().mean().item()

    untrained = snn_accuracy()
    for epoch in range(6):
        net.train()
        for i in range(6):
            mode = scheduler.mode(epoch, i, net.training)
            seen.add(mode.base_mode)
            x, y = train_x[16 * i:16 * (i + 1)], train_y[16 * i:16 * (i + 1)]
            loss = F.cross_entropy(net(x, mode).mean(-1), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert seen == {Mode.SAMPLE, Mode.FIT, Mode.ANN}
    trained = snn_accuracy()
    assert trained >= 0.9 > untrained, (untrained, trained)

    path = tmp_path / "bootstrap.net"
    net(test_x[:1], LayerMode(0, Mode.SNN))  # shapes for export
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(net.blocks):
            block.export_hdf5(layer.create_group(f"{i}"))
    deployed = netx.hdf5.Network(net_config=str(path))
    assert [type(layer).__name__ for layer in deployed.layers] == ["Input", "Dense", "Dense", "Dense"]
