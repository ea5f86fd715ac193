"""slayer blocks beyond dense/conv: shapes, state handling and records (no Lava)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from lava_dl import slayer
from lava_dl.slayer.block import base

CUBA = dict(threshold=0.5, current_decay=0.25, voltage_decay=0.03)


@pytest.mark.parametrize("family", ["cuba", "alif", "rf", "rf_iz", "adrf", "adrf_iz"])
def test_every_family_has_every_block(family):
    module = getattr(slayer.block, family)
    for name in base.BLOCK_NAMES:
        cls = getattr(module, name)
        assert issubclass(cls, getattr(base, name)) and cls.__module__ == module.__name__


def test_pool_output_shape_is_floor_mode():
    """lava-dl issue 293: a 6x7 input pooled 2x2 with stride 2 gives 3x3 (lava-dl gave 3x4)."""
    pool = slayer.block.cuba.Pool(CUBA, kernel_size=(2, 2), stride=2, padding=0)
    assert pool(torch.rand(1, 8, 6, 7, 5)).shape == (1, 8, 3, 3, 5)
    odd = slayer.block.cuba.Pool(CUBA, kernel_size=3, stride=2)  # lava-dl issue 101: odd stride
    assert odd(torch.rand(2, 4, 16, 16, 4)).shape == (2, 4, 7, 7, 4)
    with pytest.raises(ValueError, match="H=2"):
        slayer.block.cuba.Pool(CUBA, 3)(torch.rand(1, 1, 2, 5, 3))


@pytest.mark.parametrize("kind", ["Recurrent", "KWTA"])
def test_recurrent_state_does_not_leak_between_calls(kind):
    torch.manual_seed(0)
    cls = getattr(slayer.block.cuba, kind)
    block = cls(CUBA, 6, 5, num_winners=2) if kind == "KWTA" else cls(CUBA, 6, 5)
    with torch.no_grad():
        block.synapse.weight.mul_(6)
    x = (torch.rand(3, 6, 12) < 0.5).float()
    with torch.no_grad():
        first, second = block(x), block(x)
        assert first.sum() > 0 and torch.equal(first, second)
        # with persistent state the second call continues from the first
        block.neuron.persistent_state = True
        one = block(torch.cat([x, x], dim=-1))
        block._spike_state = block._last_output = None
        block.neuron._states.clear()
        split = torch.cat([block(x), block(x)], dim=-1)
    assert torch.equal(one, split)


def test_kwta_recurrent_matrix_and_bias():
    block = slayer.block.cuba.KWTA(dict(CUBA, threshold=4.0), 8, 10, num_winners=3, self_excitation=0.25)
    weight = block.recurrent_weight()
    assert torch.equal(weight * 64, torch.where(torch.eye(10) > 0, torch.tensor(16.0), torch.tensor(-64.0)))
    # lava-dl's offset threshold (N - 2K) / N / scale = 4 * 4 / 10 / 64 = 1.6 / 64: 8-bit quantized
    # to even integers over 64, i.e. 2 / 64
    assert float(block.recurrent_bias()) * 64 == 2.0
    big = slayer.block.cuba.KWTA(dict(CUBA, threshold=100.0), 8, 10, num_winners=1)
    assert float(big.recurrent_bias()) * 64 == 80.0  # 100 * 8 / 10 / 64 = 80 / 64


def test_average_and_time_decimation(tmp_path):
    x = torch.arange(2 * 6 * 4, dtype=torch.float32).reshape(2, 6, 4)
    avg = slayer.block.cuba.Average(3)
    assert torch.equal(avg(x), x.reshape(2, 3, 2, 4).mean(dim=2))
    with pytest.raises(ValueError, match="do not split into 4 equal groups"):
        slayer.block.cuba.Average(4)(x)
    dec = slayer.block.cuba.TimeDecimation(4)
    y = dec(torch.ones(1, 2, 6))
    assert torch.equal(y, torch.tensor([[[1.0, 0.5], [1.0, 0.5]]]))  # padded with zeros to 8 steps
    with pytest.raises(ValueError, match="power of 2"):
        slayer.block.cuba.TimeDecimation(3)
    with h5py.File(tmp_path / "n.net", "w") as f:
        avg.export_hdf5(f.create_group("a"))
        assert f["a/type"][0] == b"average" and f["a/shape"][()].tolist() == [3, 1, 1]
        with pytest.raises(NotImplementedError, match="time base"):
            dec.export_hdf5(f.create_group("d"))


def test_exported_delay_is_the_floor_of_the_clamped_delay(tmp_path):
    block = slayer.block.cuba.Dense(CUBA, 4, 3, delay=True)
    with torch.no_grad():
        block.delay.delay.copy_(torch.tensor([0.9, 5.5, 80.0]))
    with h5py.File(tmp_path / "n.net", "w") as f:
        block.export_hdf5(f.create_group("0"))
        assert f["0/delay"].dtype == np.float32 and f["0/delay"][()].tolist() == [0.0, 5.0, 62.0]
        assert f.attrs["producer"] == "lava_dl"


def test_count_log_returns_the_event_rate():
    block = slayer.block.cuba.Dense(CUBA, 4, 3, count_log=True)
    with torch.no_grad():
        block.synapse.weight.fill_(1.0)
    out, rate = block(torch.ones(2, 4, 5))
    assert isinstance(rate, float) and rate == float((out != 0).float().mean()) and rate > 0


def _family_neuron(family: str):
    """A neuron of ``family`` with per-channel parameters (4 channels)."""
    import torch.nn.functional as F

    from lava_dl.slayer import neuron

    if family == "sigma_delta":
        return neuron.sigma_delta.Neuron(threshold=0.05, activation=F.relu, shape=(4, 3, 5))
    base = dict(threshold=0.3, shared_param=False, shape=(4, 3, 5), persistent_state=True)
    if family in ("cuba", "alif"):
        base.update(current_decay=(0.1, 0.5), voltage_decay=(0.05, 0.3))
    else:
        base.update(period=(5.0, 12.0), decay=(0.02, 0.2))
    if family in ("alif", "adrf", "adrf_iz"):
        base.update(threshold_step=0.1, threshold_decay=0.1, refractory_decay=0.2)
    return getattr(neuron, family).Neuron(**base)


@pytest.mark.parametrize("family", ["cuba", "alif", "rf", "rf_iz", "adrf", "adrf_iz", "sigma_delta"])
def test_channels_last_input_gives_the_same_numbers(family):
    """Convolutions hand over channels-last (N, T, H, W, C) activations; neurons read them in place and
    must compute exactly what they compute on the same values in any other memory order."""
    torch.manual_seed(0)
    neuron = _family_neuron(family)
    dtype = torch.float64 if family == "sigma_delta" else torch.float32
    values = torch.round(torch.randn(2, 4, 3, 5, 9, dtype=dtype) * 32) / 64
    channels_last = values.permute(0, 4, 2, 3, 1).contiguous().permute(0, 4, 2, 3, 1)
    assert channels_last.permute(0, 4, 2, 3, 1).is_contiguous()
    outputs = []
    for x in (values, channels_last):
        x = x.clone().requires_grad_()
        neuron._states.clear()
        drive = (x, 0.5 * x) if family in ("rf", "rf_iz", "adrf", "adrf_iz") else x
        y = neuron(drive)
        (y * torch.linspace(0.5, 1.5, y.numel(), dtype=y.dtype).reshape(y.shape)).sum().backward()
        states = {k: v.clone() for k, v in neuron._states.items()}
        outputs.append((y.detach(), x.grad.clone(), states))
    (y0, g0, s0), (y1, g1, s1) = outputs
    assert y0.abs().sum() > 0 and torch.equal(y0, y1)
    assert torch.equal(g0, g1)
    assert s0.keys() == s1.keys() and all(torch.equal(s0[k], s1[k]) for k in s0)


def test_flatten_after_a_conv_block_reads_its_spikes_as_a_view(monkeypatch):
    """A Flatten block asks the conv block's neuron before it for spikes stored in C, H, W order
    (``logical_output``): from the second call on no copy is made, and every value, gradient and
    decay gradient is the same as with the channels-last spikes copied."""
    params = dict(threshold=0.5, current_decay=0.2, voltage_decay=0.1, requires_grad=True)

    def step(net, x):
        out = net(x)
        (out * torch.linspace(0.5, 1.5, out.numel()).reshape(out.shape)).sum().backward()
        grads = [p.grad.clone() for p in net.parameters()]
        net.zero_grad()
        return out.detach(), grads

    def network():
        torch.manual_seed(3)
        return torch.nn.Sequential(slayer.block.cuba.Conv(params, 2, 8, 3, padding=1, weight_scale=4),
                                   slayer.block.cuba.Flatten(),
                                   slayer.block.cuba.Dense(params, 8 * 6 * 6, 5, weight_scale=4))

    x = (torch.rand(2, 2, 6, 6, 9, generator=torch.Generator().manual_seed(4)) < 0.4).float()
    net = network()
    results = [step(net, x) for _ in range(2)]
    assert net[0].neuron.logical_output
    spikes = net[0](x)
    assert spikes.movedim(-1, 1).is_contiguous() and spikes.sum() > 0
    assert net[1](spikes).data_ptr() == spikes.data_ptr()  # a view
    monkeypatch.setattr(base, "_prefer_logical_output", lambda x: None)
    reference = network()
    expected = [step(reference, x) for _ in range(2)]
    assert not reference[0].neuron.logical_output
    for (out, grads), (ref_out, ref_grads) in zip(results, expected):
        assert torch.equal(out, ref_out)
        assert all(torch.equal(g, r) for g, r in zip(grads, ref_grads))


def test_block_outputs_save_and_load_with_torch(tmp_path):
    """A block's output tensor (tagged internally with its neuron) saves with ``torch.save`` and loads
    with ``torch.load``'s default ``weights_only`` loader, and deep-copies (third-party code saves
    network outputs)."""
    import copy

    torch.manual_seed(0)
    params = dict(threshold=0.3, current_decay=0.5, voltage_decay=0.1)
    cuba = slayer.block.cuba
    net = torch.nn.Sequential(cuba.Conv(params, 1, 2, 3, weight_scale=4), cuba.Flatten())
    with torch.no_grad():
        spikes = net[0]((torch.rand(1, 1, 5, 5, 6) < 0.5).float())
        out = net[1](spikes)
    torch.save({"out": out, "spikes": spikes}, tmp_path / "out.pt")
    loaded = torch.load(tmp_path / "out.pt")
    assert torch.equal(loaded["out"], out) and torch.equal(loaded["spikes"], spikes) and out.sum() > 0
    assert torch.equal(copy.deepcopy(spikes), spikes)
