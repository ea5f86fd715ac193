"""slayer.utils: time/filter/quantize/int helpers, LearningStats, Assistant and an end-to-end training run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lava_dl import slayer
from lava_dl.slayer import utils
from lava_dl.slayer.utils import Assistant, LearningStats

CUBA = dict(threshold=1.0, current_decay=0.25, voltage_decay=0.1)


# -- module paths ---------------------------------------------------------------------------------

def test_lava_dl_module_paths():
    from lava_dl.slayer.utils import QUANTIZE_MODE, dotdict, event_rate, quantize, quantize_hook_fx  # noqa: F401
    from lava_dl.slayer.utils.assistant import Assistant as AssistantClass
    from lava_dl.slayer.utils.filter import FIR, FIRBank, conv, corr  # noqa: F401
    from lava_dl.slayer.utils.filter.conv import conv as conv_fn
    from lava_dl.slayer.utils.int_utils import Q2Zero, right_shift_to_zero  # noqa: F401
    from lava_dl.slayer.utils.recurrent import custom_recurrent  # noqa: F401
    from lava_dl.slayer.utils.stats import LearningStat  # noqa: F401
    from lava_dl.slayer.utils.stats import LearningStats as StatsClass
    from lava_dl.slayer.utils.time.replicate import replicate
    from lava_dl.slayer.utils.time.shift import shift
    from lava_dl.slayer.utils.utils import diagonal_mask, staticproperty  # noqa: F401

    assert utils.time.shift is shift and utils.time.replicate is replicate
    assert utils.filter.conv is conv_fn
    assert AssistantClass is Assistant and StatsClass is LearningStats
    # one quantizer definition
    assert utils.quantize is slayer.quantize.quantize
    assert QUANTIZE_MODE is slayer.quantize.MODE
    # slayer's internal helpers keep their import path
    from lava_dl.slayer.utils import _DelayShift, _empty_time_major, delay_shift  # noqa: F401


# -- time ----------------------------------------------------------------------------------------

def test_time_shift_and_replicate():
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    assert utils.time.shift(x, 2).tolist() == [[[0.0, 0.0, 1.0, 2.0]]]
    assert utils.time.shift(x, -1).tolist() == [[[2.0, 3.0, 4.0, 0.0]]]
    assert utils.time.shift(x, 1, sampling_time=0.5).tolist() == [[[0.0, 0.0, 1.0, 2.0]]]
    assert utils.time.shift(x[0], 1).tolist() == [[0.0, 1.0, 2.0, 3.0]]          # 2-D (C, T)
    per_channel = torch.arange(8.0).reshape(1, 2, 4)
    assert utils.time.shift(per_channel, torch.tensor([1.0, -2.0])).tolist() == \
        [[[0.0, 0.0, 1.0, 2.0], [6.0, 7.0, 0.0, 0.0]]]
    x.requires_grad_()
    utils.time.shift(x, 1).backward(torch.tensor([[[1.0, 10.0, 100.0, 1000.0]]]))
    assert x.grad.tolist() == [[[10.0, 100.0, 1000.0, 0.0]]]                       # reverse shift
    labels = torch.tensor([3, 1])
    replicated = utils.time.replicate(labels, 3)
    assert replicated.tolist() == [[3, 3, 3], [1, 1, 1]] and replicated.dtype == torch.int64
    assert utils.time.replicate(torch.ones(2, 3, 4), 5).shape == (2, 3, 4, 5)


# -- filter --------------------------------------------------------------------------------------

def test_conv_and_corr_against_numpy():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 40, generator=generator, dtype=torch.float64)
    h = torch.rand(7, generator=generator, dtype=torch.float64)
    conv_ref = np.stack([np.convolve(row, h.numpy())[:40] for row in x.reshape(-1, 40).numpy()])
    corr_ref = np.stack([np.convolve(row, h.numpy()[::-1])[-40:] for row in x.reshape(-1, 40).numpy()])
    assert np.allclose(utils.filter.conv(x, h).reshape(-1, 40).numpy(), conv_ref)
    assert np.allclose(utils.filter.corr(x, h).reshape(-1, 40).numpy(), corr_ref)
    assert np.allclose(utils.filter.conv(x, h, sampling_time=0.5).reshape(-1, 40).numpy(), 0.5 * conv_ref)
    impulse = torch.tensor([1.0, 0.0, 0.0])
    assert utils.filter.conv(impulse, torch.tensor([1.0, 0.5])).tolist() == [1.0, 0.5, 0.0]


def test_conv_filter_gradient():
    x = torch.tensor([[1.0, 2.0, 3.0]])
    h = torch.tensor([0.5, 0.25], requires_grad=True)
    weight = torch.tensor([[1.0, 10.0, 100.0]])
    (utils.filter.conv(x, h) * weight).sum().backward()
    # d/dh[k] sum_t w[t] x[t - k]: k=0: 1 + 20 + 300; k=1: 10 * 1 + 100 * 2
    assert h.grad.tolist() == [321.0, 210.0]


def test_fir_and_fir_bank():
    fir = utils.filter.FIR(time_constant=2, length=4)
    assert torch.allclose(fir.filter, torch.exp(-torch.arange(4) / 2.0))
    impulse = torch.zeros(1, 1, 6)
    impulse[..., 0] = 1
    assert torch.allclose(fir(impulse)[0, 0, :4], fir.filter)
    bank = utils.filter.FIRBank(num_filter=2, filter_length=3)
    with torch.no_grad():
        bank.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]]).reshape(2, 1, 1, 1, 3))
    assert np.allclose(bank.impulse_response, [[3.0, 2.0, 1.0], [1.0, 0.0, 0.0]])
    x = torch.rand(2, 3, 10)
    out = bank(x)
    assert out.shape == (2, 6, 10)
    for f, response in enumerate(bank.impulse_response.copy()):
        assert torch.allclose(out[:, 3 * f: 3 * f + 3], utils.filter.conv(x, torch.tensor(response)))


# -- quantize and integer helpers -----------------------------------------------------------------

def test_quantize_modes_and_hook():
    x = torch.tensor([0.3, 0.8, -0.8])
    assert utils.quantize(x, step=0.5).tolist() == [0.5, 1.0, -1.0]
    assert utils.quantize(x, step=0.5, mode=utils.QUANTIZE_MODE.FLOOR).tolist() == [0.0, 0.5, -1.0]
    assert utils.quantize(x, 0.5, utils.QUANTIZE_MODE.ROUND).tolist() == [0.5, 1.0, -1.0]
    # steps of 2/64, integer weights even in [-512, 510] for 8 bits
    w = torch.tensor([0.05, 10.0, -10.0], requires_grad=True)
    q = utils.quantize_hook_fx(w)
    assert q.tolist() == [0.0625, 510 / 64, -512 / 64]
    assert utils.quantize_hook_fx(w, descale=True).tolist() == [4.0, 510.0, -512.0]
    assert utils.quantize_hook_fx(w, num_bits=4, descale=True).tolist() == [4.0, 30.0, -32.0]
    q.sum().backward()
    assert w.grad.tolist() == [1.0, 0.0, 0.0]   # straight through, zero where clamped


def test_int_utils():
    from lava_dl.slayer.utils.int_utils import Q2Zero, right_shift_to_zero

    x = torch.tensor([-7, 7, -8, 0, -1], dtype=torch.int32)
    shifted = right_shift_to_zero(x, 1)
    assert shifted.tolist() == [-3, 3, -4, 0, 0] and shifted.dtype == torch.int32
    with pytest.raises(TypeError, match="torch.int32 or torch.int64"):
        right_shift_to_zero(torch.tensor([1.5]), 1)
    y = torch.tensor([-2.7, 2.7], requires_grad=True)
    out = Q2Zero.apply(y)
    out.sum().backward()
    assert out.tolist() == [-2.0, 2.0] and y.grad.tolist() == [1.0, 1.0]


def test_small_utilities():
    d = utils.dotdict(a=1)
    d.b = 2
    assert d["b"] == 2 and d.a == 1 and d.missing is None
    del d.a
    assert "a" not in d
    assert utils.diagonal_mask(4, 3).tolist() == [[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]]
    assert utils.diagonal_mask(3, 1).tolist() == torch.eye(3).tolist()
    with pytest.raises(ValueError, match="num_diagonals"):
        utils.diagonal_mask(3, 0)
    x = torch.tensor([[5.0, 0.0, 1.0, 0.0, 2.0]])   # step 0 left out: 2 of 4 non-zero
    assert utils.event_rate(x) == 0.5
    assert utils.event_rate(torch.tensor([[1.0], [0.0]])) == 0.5   # single step: all counted

    class Holder:
        @utils.staticproperty
        def value():
            return 7

    assert Holder.value == 7 and Holder().value == 7


# -- recurrent -----------------------------------------------------------------------------------

def test_custom_recurrent_against_explicit_loop():
    from lava_dl.slayer.utils.recurrent import (
        custom_recurrent,
        custom_recurrent_ground_truth_1,
        custom_recurrent_ground_truth_2,
    )

    torch.manual_seed(3)
    z = torch.randn(2, 5, 20)
    params = dict(CUBA, threshold=0.5, shared_param=True, requires_grad=True)

    def pair():
        neuron = slayer.neuron.cuba.Neuron(**params, shape=(5,))
        synapse = slayer.synapse.Dense(5, 5, weight_scale=3)
        synapse.pre_hook_fx = neuron.quantize_8bit
        return neuron, synapse

    runs = [pair() for _ in range(4)]
    for _, synapse in runs[1:]:
        synapse.weight.data.copy_(runs[0][1].weight.data)

    # explicit reference: a persistent neuron called once per step on z[t] + R s[t-1]
    neuron, synapse = runs[3]
    neuron.persistent_state = True
    matrix = neuron.quantize_8bit(synapse.weight.reshape(5, 5))
    spikes, outs = torch.zeros(2, 5), []
    for t in range(20):
        spikes = neuron((z[..., t] + spikes @ matrix.T).unsqueeze(-1))[..., 0]
        outs.append(spikes)
    reference = torch.stack(outs, dim=-1)
    assert reference.sum() > 0

    outputs = [fn(z, n, s) for fn, (n, s) in zip(
        (custom_recurrent, custom_recurrent_ground_truth_1, custom_recurrent_ground_truth_2), runs)]
    grad = torch.rand_like(reference)
    for out in [*outputs, reference]:
        out.backward(grad)
    for out, (n, s) in zip(outputs, runs):
        assert torch.equal(out, reference)
        assert torch.allclose(s.weight.grad, runs[3][1].weight.grad, atol=1e-6)
        assert torch.allclose(n.current_decay.grad, runs[3][0].current_decay.grad, atol=1e-6)


# -- LearningStats -------------------------------------------------------------------------------

def filled_stats() -> LearningStats:
    stats = LearningStats()
    epochs = [(3.0, 4.0, 5), (1.5, 4.5, 8), (1.0 / 3, 2.0, 7)]   # train loss, test loss, train correct
    for epoch, (train_loss, test_loss, correct) in enumerate(epochs):
        stats.training.loss_sum, stats.training.num_samples = train_loss * 10, 10
        stats.training.correct_samples = correct
        if epoch != 1:   # no testing in epoch 1
            stats.testing.loss_sum, stats.testing.num_samples = test_loss * 4, 4
            stats.testing.correct_samples = 3
        stats.update()
    return stats


def test_learning_stats_update_and_best():
    stats = LearningStats()
    stats.training.loss_sum, stats.training.num_samples, stats.training.correct_samples = 6.0, 4, 3
    assert stats.training.loss == 1.5 and stats.training.accuracy == 0.75
    assert "loss =     1.50000" in str(stats) and "accuracy = 0.75000" in str(stats)
    stats.update()
    assert stats.training.num_samples == 0 and stats.training.loss is None
    assert stats.training.best_loss and stats.training.best_accuracy
    stats = filled_stats()
    training, testing = stats.training, stats.testing
    assert training.loss_log == [3.0, 1.5, 1.0 / 3]
    assert training.accuracy_log == [0.5, 0.8, 0.7]
    assert training.min_loss == 1.0 / 3 and training.max_accuracy == 0.8
    assert training.best_loss and not training.best_accuracy
    # a phase without samples in an epoch logs None and keeps its best values
    assert testing.loss_log == [4.0, None, 2.0] and testing.min_loss == 2.0 and testing.best_loss
    assert stats.validation.loss_log == [None, None, None] and not stats.validation.valid_loss_log


def test_learning_stats_save_load_round_trip(tmp_path):
    stats = filled_stats()
    stats.save(str(tmp_path) + "/")
    assert (tmp_path / "loss.txt").read_text().splitlines()[0].split() == ["#", "Train", "Test"]
    restored = LearningStats()
    restored.load(tmp_path)   # an existing directory works as well as lava-dl's prefix
    for phase in ("training", "validation", "testing"):
        before, after = getattr(stats, phase), getattr(restored, phase)
        assert after.loss_log == before.loss_log      # exact: every digit is written
        assert after.accuracy_log == before.accuracy_log
        assert (after.min_loss, after.max_accuracy) == (before.min_loss, before.max_accuracy)
        assert (after.best_loss, after.best_accuracy) == (before.best_loss, before.best_accuracy)


def test_learning_stats_load_lava_dl_file_and_errors(tmp_path):
    # the layout lava-dl wrote: '#' header, 12.6f columns, CRLF line ends
    (tmp_path / "loss.txt").write_bytes(b"# Train        Test        \r\n    0.500000     0.750000 \r\n"
                                        b"    0.250000     0.700000 \r\n")
    stats = LearningStats()
    stats.load(str(tmp_path) + "/")
    assert stats.training.loss_log == [0.5, 0.25] and stats.testing.loss_log == [0.75, 0.7]
    assert stats.testing.min_loss == 0.7 and stats.testing.best_loss
    assert stats.training.accuracy_log == [None, None]
    (tmp_path / "loss.txt").write_text("# Train\n0.5 0.7\n")
    with pytest.raises(ValueError, match="line 2: expected 1 values"):
        stats.load(str(tmp_path) + "/")
    (tmp_path / "loss.txt").write_text("0.5\n")
    with pytest.raises(ValueError, match="not a LearningStats file"):
        stats.load(str(tmp_path) + "/")


def test_learning_stats_plot_writes_png(tmp_path):
    from matplotlib.figure import Figure

    loss_figure, accuracy_figure = filled_stats().plot(figsize=(4, 3), path=str(tmp_path) + "/")
    assert isinstance(loss_figure, Figure) and isinstance(accuracy_figure, Figure)
    for name in ("loss.png", "accuracy.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert LearningStats().plot() == (None, None)   # nothing logged, nothing drawn


def test_learning_stats_plot_shows_in_a_notebook(monkeypatch):
    """A cell ending with ``stats.plot()`` shows the figures (IPython's display protocol), as lava-dl's
    pyplot figures did, not the tuple's text."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    figures = filled_stats().plot()
    figures._ipython_display_()
    assert shown == list(figures) and len(shown) == 2
    shown.clear()
    type(figures)((figures[0], None))._ipython_display_()  # a curve without data is skipped
    assert shown == [figures[0]]


# -- Assistant -----------------------------------------------------------------------------------

def separable_spikes(num_samples=64, channels=12, steps=40, seed=0):
    """Two classes of Poisson spike trains: class 0 fires on the first half of the channels."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_samples) % 2
    rates = torch.full((num_samples, channels), 0.03)
    rates[labels == 0, : channels // 2] = 0.4
    rates[labels == 1, channels // 2:] = 0.4
    spikes = (torch.rand(num_samples, channels, steps, generator=generator) < rates[..., None]).float()
    return spikes, labels


class CubaNet(torch.nn.Module):
    def __init__(self, channels=12, hidden=16, outputs=2):
        super().__init__()
        self.blocks = torch.nn.ModuleList([
            slayer.block.cuba.Dense(CUBA, channels, hidden),
            slayer.block.cuba.Dense(CUBA, hidden, outputs),
        ])

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


def test_assistant_trains_cuba_classifier_end_to_end():
    torch.manual_seed(0)
    spikes, labels = separable_spikes()
    net = CubaNet()
    stats = LearningStats()
    assistant = Assistant(net, slayer.loss.SpikeRate(true_rate=0.3, false_rate=0.02),
                          torch.optim.Adam(net.parameters(), lr=0.003), stats,
                          classifier=slayer.classifier.Rate.predict)
    for _ in range(6):
        for start in range(0, 64, 16):
            output = assistant.train(spikes[start:start + 16], labels[start:start + 16])
            assert output.shape == (16, 2, 40)
        assistant.valid(spikes, labels)
        stats.update()
    training = stats.training
    assert training.loss_log[-1] < 0.5 * training.loss_log[0]
    assert training.accuracy_log[0] <= 0.6 and training.accuracy_log[-1] >= 0.9
    assert stats.validation.accuracy_log[0] <= 0.6 and stats.validation.accuracy_log[-1] >= 0.9


def test_assistant_spike_time_regression_loss_decreases():
    torch.manual_seed(1)
    spikes, labels = separable_spikes(num_samples=16)
    target = torch.zeros(16, 2, 40)
    target[labels == 0, 0, 5::6] = 1           # a spike every 6 steps on the class's channel
    target[labels == 1, 1, 5::6] = 1
    net = CubaNet()
    stats = LearningStats()
    assistant = Assistant(net, slayer.loss.SpikeTime(time_constant=2, length=10),
                          torch.optim.Adam(net.parameters(), lr=0.01), stats)
    for _ in range(6):
        assistant.train(spikes, target)
        stats.update()
    assert stats.training.loss_log[-1] < 0.7 * stats.training.loss_log[0]
    assert stats.training.accuracy_log == [0.0] * 6   # regression: no classifier, nothing correct


class Linear(torch.nn.Module):
    """``output = w * x`` per sample, with optional extra return values."""

    def __init__(self, returns=("output",)):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(2.0))
        self.returns = returns

    def forward(self, x):
        values = {"output": self.w * x, "net_loss": self.w ** 2, "count": torch.tensor([0.5])}
        result = tuple(values[name] for name in self.returns)
        return result[0] if len(result) == 1 else result


def mse(output, target):
    return ((output - target) ** 2).sum()


def test_assistant_lam_count_log_and_stats_by_hand():
    net = Linear(("output", "net_loss", "count"))
    stats = LearningStats()
    assistant = Assistant(net, mse, torch.optim.SGD(net.parameters(), lr=0.1), stats, count_log=True, lam=0.5)
    x, target = torch.ones(2, 1, 3), torch.zeros(2, 1, 3)
    output, count = assistant.train(x, target)
    assert count.tolist() == [0.5] and output.shape == (2, 1, 3)
    # loss = 6 w^2 = 24 (logged without the lam term, times batch 2); gradient 12 w + 0.5 * 2 w = 26
    assert stats.training.loss_sum == 48.0 and stats.training.num_samples == 2
    assert net.w.item() == pytest.approx(2.0 - 0.1 * 26.0)
    output, count = assistant.test(x, target)
    assert net.w.item() == pytest.approx(-0.6)   # no step when testing
    assert stats.testing.loss_sum == pytest.approx(2 * 6 * 0.36)


def test_assistant_valid_works_without_net_device():
    net = Linear()
    stats = LearningStats()
    assistant = Assistant(net, mse, torch.optim.SGD(net.parameters(), lr=0.1), stats)
    assistant.valid(torch.ones(3, 1, 2), torch.ones(3, 1, 2))   # lava-dl read net.device here
    # loss = sum (2 - 1)^2 over 6 elements = 6 per batch, times batch 3
    assert stats.validation.num_samples == 3 and stats.validation.loss_sum == pytest.approx(18.0)


def test_assistant_wrong_network_returns():
    optimizer = torch.optim.SGD(Linear().parameters(), lr=0.1)
    x, target = torch.ones(2, 1, 3), torch.zeros(2, 1, 3)
    with pytest.raises(TypeError, match="must return the output tensor alone"):
        Assistant(Linear(("output", "count")), mse, optimizer).train(x, target)
    with pytest.raises(TypeError, match=r"must return \(output, count\), got a single Tensor"):
        Assistant(Linear(), mse, optimizer, count_log=True).train(x, target)
    with pytest.raises(TypeError, match=r"must return \(output, net_loss\), got a tuple of 3 values"):
        Assistant(Linear(("output", "net_loss", "count")), mse, optimizer, lam=1.0).train(x, target)

    class Squeezing(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor(1.0))

        def forward(self, x):
            return (self.w * x).sum(0)

    with pytest.raises(ValueError, match=r"output has shape \(1, 3\).*must match the input's \(2"):
        Assistant(Squeezing(), mse, optimizer).train(x, target)
    classifier = Assistant(Linear(), lambda o, t: o.sum() * 0, optimizer, classifier=lambda o: o.argmax(1))
    with pytest.raises(ValueError, match=r"prediction has shape \(2, 3\) but the target has shape \(2,\)"):
        classifier.train(x, torch.zeros(2, dtype=torch.long))


def test_assistant_nan_loss_raises_and_keeps_weights():
    net = Linear()
    assistant = Assistant(net, mse, torch.optim.SGD(net.parameters(), lr=0.1))
    x = torch.ones(2, 1, 3)
    x[0, 0, 1] = float("nan")
    with pytest.raises(FloatingPointError, match=r"Assistant.train: the loss error\(output, target\) is nan"):
        assistant.train(x, torch.zeros(2, 1, 3))
    assert net.w.item() == 2.0


def test_assistant_progress_bar(capsys):
    spikes, labels = separable_spikes(num_samples=8)
    net = CubaNet()
    stats = LearningStats()
    quiet = Assistant(net, slayer.loss.SpikeRate(0.3, 0.02), torch.optim.Adam(net.parameters()), stats,
                      classifier=slayer.classifier.Rate.predict)
    quiet.train(spikes, labels)
    assert capsys.readouterr().err == ""   # off by default, as lava-dl printed nothing
    shown = Assistant(net, slayer.loss.SpikeRate(0.3, 0.02), torch.optim.Adam(net.parameters()), stats,
                      classifier=slayer.classifier.Rate.predict, progress=True)
    shown.train(spikes[:4], labels[:4])
    shown.train(spikes[4:], labels[4:])
    stats.update()
    shown.test(spikes, labels)
    shown.close_progress()
    err = capsys.readouterr().err
    assert "Training epoch 0" in err and "Testing epoch 1" in err
    assert "2batch" in err.replace(" ", "")
    loss = stats.training.loss_log[-1]
    assert f"loss={loss:.5g}" in err and "accuracy=" in err
    assert not math.isnan(loss)
