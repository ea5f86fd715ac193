"""Random slayer networks of every neuron family: exported, loaded by netx, run on Loihi1SimCfg fixed_pt.

Lava's output spikes and every block's final neuron states must equal slayer's exactly.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source

from lava_dl import netx, slayer
from lava_dl.slayer.neuron.norm import MeanOnlyBatchNorm
from tests.lava_run import run_and_read

STEPS = 32


FAMILIES = ("cuba", "alif", "rf", "rf_iz", "adrf", "adrf_iz")
#: Resonators take a complex input; their (input-side, complex) norm cannot be deployed.
RESONATORS = ("rf", "rf_iz", "adrf", "adrf_iz")
ADAPTIVE = ("alif", "adrf", "adrf_iz")


def _neuron_params(family, rng, with_norm, graded=False):
    """Random neuron arguments; for resonators ``with_norm`` selects per-channel periods/decays instead."""
    if family in RESONATORS:
        period = float(rng.uniform(4, 24))
        decay = float(rng.uniform(0, 0.25))
        params = dict(threshold=int(rng.integers(16, 200)) / 64)
        if with_norm:  # per-channel rotation (period and decay ranges spread over the channels)
            params.update(shared_param=False, period=(period, period * float(rng.uniform(1, 2))),
                          decay=(decay, decay + float(rng.uniform(0, 0.1))))
        else:
            params.update(period=period, decay=decay)
    else:
        params = dict(
            threshold=int(rng.integers(16, 200)) / 64,
            current_decay=float(rng.integers(0, 4097)) / 4096,
            voltage_decay=float(rng.integers(0, 4097)) / 4096,
            norm=MeanOnlyBatchNorm if with_norm else None,
        )
    if family in ADAPTIVE:
        params.update(threshold_step=int(rng.integers(0, 100)) / 64,
                      threshold_decay=float(rng.integers(0, 4097)) / 4096,
                      refractory_decay=float(rng.integers(0, 4097)) / 4096)
    if graded:
        params["graded_spike"] = True
    return params


def _synapses(block):
    """The real synapses of a block (``real`` and ``imag`` of a complex one)."""
    synapse = getattr(block, "synapse", None)
    if synapse is None:
        return []
    return [synapse.real, synapse.imag] if getattr(synapse, "complex", False) else [synapse]


def _randomise(net, rng, with_norm):
    with torch.no_grad():
        for block in net:
            for synapse in _synapses(block):
                synapse.weight.mul_(float(rng.uniform(2, 6)))
            norm = getattr(getattr(block, "neuron", None), "norm", None)
            if with_norm and norm is not None:
                norm.running_mean.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, norm.running_mean.shape)))


def _dense_net(family, rng, with_norm, graded=False):
    blocks = getattr(slayer.block, family)
    sizes = [int(rng.integers(10, 40))]
    depth = int(rng.integers(2 if graded else 1, 4))
    sizes += [int(s) for s in rng.integers(5, 30, depth)]
    layers = [blocks.Dense(_neuron_params(family, rng, with_norm, graded), a, b)
              for a, b in zip(sizes, sizes[1:])]
    return torch.nn.Sequential(*layers), (sizes[0],)


def _conv_net(family, rng, with_norm, graded=False):
    blocks = getattr(slayer.block, family)
    channels, size = int(rng.integers(1, 4)), int(rng.integers(7, 12))
    mid = int(rng.integers(2, 6))
    kernel, stride, padding = int(rng.integers(2, 4)), int(rng.integers(1, 3)), int(rng.integers(0, 2))
    conv1 = blocks.Conv(_neuron_params(family, rng, with_norm, graded), channels, mid, kernel, stride=stride,
                        padding=padding, input_shape=(size, size))
    out_h = conv1.neuron.shape[1:]
    groups = 1 if mid % 2 else 2
    conv2 = blocks.Conv(_neuron_params(family, rng, with_norm, graded), mid, 2 * groups, 3, padding=1,
                        groups=groups, input_shape=out_h)
    flat = 2 * groups * out_h[0] * out_h[1]
    dense = blocks.Dense(_neuron_params(family, rng, with_norm, graded), flat, int(rng.integers(3, 12)))
    net = torch.nn.Sequential(conv1, conv2, blocks.Flatten(), dense)
    return net, (channels, size, size)


def _active_output(net, x):
    """slayer output for ``x``; weights scaled up (x1.5, at most 8 times) until spikes reach the output."""
    with torch.no_grad():
        y = net(x)
        for _ in range(8):
            if y.sum() > 0:
                break
            for block in net:
                for synapse in _synapses(block):
                    synapse.weight.mul_(1.5)
            y = net(x)
    return y


def _export(net, path):
    # the random networks scale their weights past the 8-bit range on purpose: deploy the clamped
    # weights the forward used (export raises on clamping unless asked)
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(net):
            block.export_hdf5(layer.create_group(str(i)), clip_weights=True)


def _run_lava(path, spikes_lava_layout, input_shape, state_names):
    # reset_interval: the sample starts at step 1 as a fresh slayer call (needed with bias).
    net = netx.hdf5.Network(net_config=str(path), input_shape=input_shape, reset_interval=STEPS)
    source = Source(data=spikes_lava_layout)
    sink = Sink(shape=net.out.shape, buffer=STEPS)
    source.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    reads = [sink.data] + [getattr(block.neuron, n) for block in net.layers for n in state_names]
    out, *states = run_and_read(net, STEPS, reads)
    k = len(state_names)
    return out, [dict(zip(state_names, states[i:i + k])) for i in range(0, len(states), k)]


def _slayer_final_states(net, x):
    """Every neuron block's integer states after slayer index STEPS - 2 (= Lava's last step)."""
    finals = []
    with torch.no_grad():
        for block in net:
            neuron = getattr(block, "neuron", None)
            if neuron is not None:
                z = block.synapse(x)
                parts = z if isinstance(z, tuple) else (z,)  # complex synapse: (real, imag)
                neuron.persistent_state = True
                neuron._states.clear()
                cut = tuple(p[..., : STEPS - 1] for p in parts)
                neuron(cut if isinstance(z, tuple) else cut[0])
                neuron.persistent_state = False
                shape = parts[0].shape[1:-1]
                finals.append({n: t.reshape(shape).numpy() for n, t in neuron._states.items()})
            x = block(x)
    return finals


def _to_lava_layout(array):
    return array if array.ndim == 1 else array.transpose(2, 1, 0)


def _graded_scale(net) -> float:
    """Lava's output message per slayer output unit: the state scale S for a graded last block."""
    neuron = net[-1].neuron
    return float(neuron.s_scale) if neuron.graded_spike else 1.0


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("seed", range(11))
def test_random_network_parity(family, kind, seed, tmp_path):
    _check_parity(family, kind, seed, tmp_path, graded=False)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("seed", range(3))
def test_graded_spike_network_parity(family, kind, seed, tmp_path):
    """Graded spikes (payload = the spiking state) in random layers: Lava equals slayer exactly."""
    _check_parity(family, kind, 100 + seed, tmp_path, graded=True)


def _check_parity(family, kind, seed, tmp_path, graded):
    rng = np.random.default_rng(1000 * (kind == "conv") + seed)
    torch.manual_seed(seed)
    with_norm = seed % 2 == 1  # resonators: per-channel parameters instead of a norm
    net, in_shape = (_dense_net if kind == "dense" else _conv_net)(family, rng, with_norm, graded)
    if graded and seed % 2:
        net[-1].neuron.graded_spike = False  # graded hidden layers into a binary output layer
    _randomise(net, rng, with_norm)
    net.eval()
    x = torch.from_numpy((rng.random((1, *in_shape, STEPS)) < rng.uniform(0.1, 0.4)).astype(np.float32))
    y = _active_output(net, x)
    path = tmp_path / "net.net"
    _export(net, path)
    # Lava layout: dense (n, T); conv (x, y, c, T) = (W, H, C, T).
    x_lava = x[0].numpy() if x.dim() == 3 else x[0].permute(2, 1, 0, 3).numpy()
    state_names = getattr(slayer.neuron, family).Neuron.spec.state_names
    out, lava_states = _run_lava(path, x_lava, x_lava.shape[:-1] if kind == "conv" else None, state_names)
    expected = y[0].numpy() * _graded_scale(net)
    assert np.abs(expected).sum() > 0, "degenerate network: no output spikes"
    assert np.array_equal(out, expected)
    slayer_states = _slayer_final_states(net, x)
    assert len(slayer_states) == len(lava_states)
    for lava_block, slayer_block in zip(lava_states, slayer_states):
        assert set(slayer_block) == set(state_names)
        for name in state_names:
            assert np.array_equal(lava_block[name], _to_lava_layout(slayer_block[name])), name


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("family", FAMILIES)
def test_stream_of_samples_reset_mode_slayer(family, seed, tmp_path):
    """Samples back to back with reset_interval: every sample equals its own slayer call, bias included."""
    rng = np.random.default_rng(500 + seed)
    torch.manual_seed(seed)
    net, in_shape = _dense_net(family, rng, with_norm=True)
    _randomise(net, rng, with_norm=True)
    net.eval()
    samples = 4
    x = torch.from_numpy((rng.random((samples, *in_shape, STEPS)) < 0.3).astype(np.float32))
    with torch.no_grad():
        y = net(x)
    path = tmp_path / "net.net"
    _export(net, path)
    stream = np.concatenate(list(x.numpy()), axis=-1)
    lava = netx.hdf5.Network(net_config=str(path), reset_interval=STEPS)
    source = Source(data=stream)
    sink = Sink(shape=lava.out.shape, buffer=samples * STEPS)
    source.s_out.connect(lava.inp)
    lava.out.connect(sink.a_in)
    (out,) = run_and_read(lava, samples * STEPS, [sink.data])
    out = out.reshape(-1, samples, STEPS).transpose(1, 0, 2)
    assert y.sum() > 0
    assert np.array_equal(out, y.numpy())


@pytest.mark.parametrize("family", RESONATORS)
@pytest.mark.parametrize("seed", range(2))
def test_resonator_input_block_parity(family, seed, tmp_path):
    """A resonator Input block (same drive on both parts) then dense blocks: spikes and states equal Lava."""
    rng = np.random.default_rng(700 + seed)
    torch.manual_seed(seed)
    blocks = getattr(slayer.block, family)
    dense, in_shape = _dense_net(family, rng, with_norm=seed % 2 == 1)
    _randomise(dense, rng, with_norm=False)
    net = torch.nn.Sequential(blocks.Input(_neuron_params(family, rng, False), weight=1.5, bias=0.25,
                                           shape=in_shape), *dense)
    net.eval()
    x = torch.from_numpy((rng.random((1, *in_shape, STEPS)) < 0.3).astype(np.float32))
    y = _active_output(net, x)
    path = tmp_path / "net.net"
    _export(net, path)
    with h5py.File(path, "r") as f:
        assert f["layer/0/type"][0] == b"input" and "neuron" in f["layer/0"]
        weight, bias = float(f["layer/0/weight"][0]), float(f["layer/0/bias"][0])
    # netx never applies the input record's transform (reference-hdf5 §3.1): the source does
    drive = weight * x[0].numpy() + bias
    state_names = getattr(slayer.neuron, family).Neuron.spec.state_names
    out, lava_states = _run_lava(path, drive, None, state_names)
    assert y.sum() > 0, "degenerate network: no output spikes"
    assert np.array_equal(out, y[0].numpy())
    # the input neurons see the source at every step (no synapse in front): all STEPS steps
    neuron = net[0].neuron
    with torch.no_grad():
        neuron.persistent_state = True
        neuron._states.clear()
        real_drive = net[0]._drive(x)  # the block's transform, in real units
        neuron((real_drive, real_drive))
        neuron.persistent_state = False
    input_states = {n: t.reshape(in_shape).numpy() for n, t in neuron._states.items()}
    slayer_states = [input_states] + _slayer_final_states(net[1:], net[0](x))
    assert len(slayer_states) == len(lava_states)
    for lava_block, slayer_block in zip(lava_states, slayer_states):
        assert set(slayer_block) == set(state_names)
        for name in state_names:
            assert np.array_equal(lava_block[name], slayer_block[name]), name


@pytest.mark.parametrize("family", RESONATORS)
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_resonator_complex_weight_records(family, kind, tmp_path):
    """Complex blocks write float32 ``weight/real`` and ``weight/imag`` (quantized, no ``weight``)."""
    rng = np.random.default_rng(3)
    net, in_shape = (_dense_net if kind == "dense" else _conv_net)(family, rng, with_norm=False)
    with torch.no_grad():
        net(torch.zeros(1, *in_shape, 4))  # fixes the Flatten shape
    path = tmp_path / "net.net"
    _export(net, path)
    with h5py.File(path, "r") as f:
        for i, block in enumerate(net):
            if not _synapses(block):
                continue
            rec = f[f"layer/{i}"]
            assert isinstance(rec["weight"], h5py.Group) and set(rec["weight"]) == {"real", "imag"}
            for part in ("real", "imag"):
                data = rec[f"weight/{part}"]
                assert data.dtype == np.float32
                synapse = getattr(block.synapse, part)
                expected = block.neuron.quantize_8bit(synapse.weight, descale=True).detach().numpy()
                assert np.array_equal(data[()], expected.reshape(data.shape))
                assert np.array_equal(data[()], np.round(data[()]))


@pytest.mark.parametrize("family", RESONATORS)
def test_resonator_norm_not_exportable(family, tmp_path):
    """A norm on a resonator neuron (input-side, complex) has no deployed counterpart: export raises."""
    rng = np.random.default_rng(0)
    params = dict(_neuron_params(family, rng, with_norm=False), norm=MeanOnlyBatchNorm)
    block = getattr(slayer.block, family).Dense(params, 8, 4)
    with h5py.File(tmp_path / "net.net", "w") as f, pytest.raises(NotImplementedError, match="norm"):
        block.export_hdf5(f.create_group("layer/0"))
