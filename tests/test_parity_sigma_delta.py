"""Random sigma-delta (SDNN) slayer networks: exported, loaded by netx, run on Loihi1SimCfg fixed_pt.

Lava's output (the ``Sigma`` values) and every block's final states (``sigma``, ``act``,
``residue``, ``error``) must equal slayer's exactly.

Timing alignment: sigma-delta blocks have no ``delay_shift`` while every Lava synapse adds
one step, so a block with ``n`` synapses in front of it computes at Lava ``time_step``
``t + 1 + n`` what slayer computes at index ``t`` (``n = 0`` for the ``Input`` block's
``Delta``; the first weighted block has ``n = 1`` when there is no ``Input`` block). The
network output at slayer index ``t`` is therefore sink column ``t + N`` (``N`` synapses in
all). The input is padded with ``N`` zero steps so that every block's last compared index
is inside the run: after ``T + N`` Lava steps, block ``j`` holds slayer's states after index
``T + N - 1 - n_j`` of the padded input.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source

from lava_dl import netx
from lava_dl.slayer.block import sigma_delta as sd
from lava_dl.slayer.neuron import sigma_delta as sd_neuron
from lava_dl.slayer.neuron.norm import MeanOnlyBatchNorm
from tests.lava_run import run_and_read

STEPS = 20
SPIKE_EXPS = (6, 4, 6, 0, 6, 2)


def _params(rng, spike_exp, with_norm, activation=F.relu):
    return dict(threshold=int(rng.integers(0, 24)) / 64, activation=activation, spike_exp=spike_exp,
                norm=MeanOnlyBatchNorm if with_norm else None)


def _input_block(rng, spike_exp, shape):
    weight = 1.0 if rng.random() < 0.5 else float(rng.uniform(0.5, 2.0))
    bias = 0.0 if rng.random() < 0.5 else float(rng.uniform(-0.3, 0.3))
    return sd.Input(_params(rng, spike_exp, False), weight=weight, bias=bias, shape=shape)


def _dense_net(rng, spike_exp, with_norm, with_input):
    sizes = [int(rng.integers(8, 30))] + [int(s) for s in rng.integers(5, 25, int(rng.integers(1, 4)))]
    blocks = [_input_block(rng, spike_exp, (sizes[0],))] if with_input else []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        activation = None if i == 0 and rng.random() < 0.2 else F.relu
        blocks.append(sd.Dense(_params(rng, spike_exp, with_norm, activation), a, b))
    blocks.append(sd.Output(_params(rng, spike_exp, False), sizes[-1], int(rng.integers(2, 8))))
    return torch.nn.Sequential(*blocks), (sizes[0],)


def _conv_net(rng, spike_exp, with_norm, with_input):
    channels, size = int(rng.integers(1, 4)), int(rng.integers(6, 11))
    mid = int(rng.integers(2, 6))
    kernel, stride, padding = int(rng.integers(2, 4)), int(rng.integers(1, 3)), int(rng.integers(0, 2))
    blocks = [_input_block(rng, spike_exp, (channels, size, size))] if with_input else []
    conv1 = sd.Conv(_params(rng, spike_exp, with_norm), channels, mid, kernel, stride=stride, padding=padding,
                    input_shape=(size, size))
    out_hw = conv1.neuron.shape[1:]
    groups = 1 if mid % 2 else 2
    conv2 = sd.Conv(_params(rng, spike_exp, with_norm), mid, 2 * groups, 3, padding=1, groups=groups,
                    input_shape=out_hw)
    flat = 2 * groups * out_hw[0] * out_hw[1]
    blocks += [conv1, conv2, sd.Flatten()]
    if rng.random() < 0.5:
        hidden = int(rng.integers(4, 12))
        blocks.append(sd.Dense(_params(rng, spike_exp, with_norm), flat, hidden))
        flat = hidden
    blocks.append(sd.Output(_params(rng, spike_exp, False), flat, int(rng.integers(2, 6))))
    return torch.nn.Sequential(*blocks), (channels, size, size)


def _randomise(net, rng, with_norm):
    with torch.no_grad():
        for block in net:
            if hasattr(block, "synapse"):
                block.synapse.weight.mul_(float(rng.uniform(1.5, 4)))
            norm = getattr(getattr(block, "neuron", None), "norm", None)
            if with_norm and norm is not None:
                norm.running_mean.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, norm.running_mean.shape)))


def _graded_input(rng, shape, unit):
    """A random walk on the ``1/unit`` grid (graded, sparse changes, values within ±3)."""
    steps = rng.integers(-unit // 4, unit // 4 + 1, shape) * (rng.random(shape) < 0.4)
    walk = np.clip(np.cumsum(steps, axis=-1), -3 * unit, 3 * unit)
    return torch.from_numpy(walk / unit)


def _synapses_in_front(net) -> list[int]:
    """Number of Lava synapses in front of each neuron block (= its Lava delay vs slayer)."""
    count, delays = 0, []
    for block in net:
        count += hasattr(block, "synapse")
        if getattr(block, "neuron", None) is not None:
            delays.append(count)
    return delays


def _export(net, path):
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(net):
            block.export_hdf5(layer.create_group(str(i)))


def _source_data(net, x, spike_exp):
    """Lava source data (Lava layout, time last) for the slayer input ``x`` (batch 1)."""
    first = net[0]
    if isinstance(first, sd.Input):
        with torch.no_grad():
            z = first.neuron_input(x).to(torch.float64)
        data = torch.trunc(z * 64)  # the Delta process's integer input (netx never applies the transform)
    else:
        data = x.to(torch.float64) * 2.0 ** (6 + spike_exp)  # graded messages into the first synapse
    data = data.numpy().astype(np.int64)
    assert np.array_equal(data, data.astype(np.float64))
    return _to_lava_layout(data[0])


def _to_lava_layout(array):
    """Torch ``(C, H, W, ...)`` -> Lava ``(x, y, c, ...)``; 1-D neuron axes unchanged."""
    if array.ndim >= 3:
        return np.transpose(array, (2, 1, 0, *range(3, array.ndim)))
    return array


def _run_lava(path, data, steps, *, input_shape, graded_input, reset_interval, spike_exp, **network_kwargs):
    net = netx.hdf5.Network(net_config=str(path), input_shape=input_shape, reset_interval=reset_interval,
                            spike_exp=spike_exp, input_message_bits=16 if graded_input else 0,
                            **network_kwargs)
    source = Source(data=data)
    sink = Sink(shape=net.out.shape, buffer=steps)
    source.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    names = [type(block.neuron).spec.state_names for block in net.layers]
    reads = [sink.data] + [getattr(block.neuron, n) for block, ns in zip(net.layers, names) for n in ns]
    out, *values = run_and_read(net, steps, reads)
    states, i = [], 0
    for ns in names:
        states.append(dict(zip(ns, values[i:i + len(ns)])))
        i += len(ns)
    return out, states, [type(block.neuron).__name__ for block in net.layers]


def _slayer_states(net, x, lengths):
    """Final integer states of every neuron block ``j`` after slayer index ``lengths[j] - 1``."""
    neurons = [block.neuron for block in net if getattr(block, "neuron", None) is not None]
    finals = []
    try:
        for neuron in neurons:
            neuron.persistent_state = True
        for j, neuron in enumerate(neurons):
            for other in neurons:
                other._states.clear()
            with torch.no_grad():
                net(x[..., : lengths[j]])
            shape = neuron.shape
            finals.append({n: _to_lava_layout(v.reshape(shape).numpy()) for n, v in neuron._states.items()})
    finally:
        for neuron in neurons:
            neuron.persistent_state = False
            neuron._states.clear()
    return finals


def _build(kind, seed):
    rng = np.random.default_rng(2000 * (kind == "conv") + seed)
    torch.manual_seed(seed)
    spike_exp = SPIKE_EXPS[seed % len(SPIKE_EXPS)]
    with_norm, with_input = seed % 2 == 1, seed % 4 < 2
    net, in_shape = (_dense_net if kind == "dense" else _conv_net)(rng, spike_exp, with_norm, with_input)
    _randomise(net, rng, with_norm)
    net.eval()
    return rng, net, in_shape, spike_exp, with_norm, with_input


def _check_parity(net, x, in_shape, spike_exp, with_reset, tmp_path, **network_kwargs):
    """Run ``net`` in slayer and (exported) in Lava on the batch-1 input ``x``; compare exactly.

    ``network_kwargs`` go to :class:`lava_dl.netx.hdf5.Network` (e.g. ``sparse_fc_layer``)."""
    with_input = isinstance(net[0], sd.Input)
    delays = _synapses_in_front(net)
    total = delays[-1]
    x_pad = torch.cat([x, torch.zeros(*x.shape[:-1], total, dtype=x.dtype)], dim=-1)
    steps = x.shape[-1] + total
    with torch.no_grad():
        y = net(x_pad)
    path = tmp_path / "net.net"
    _export(net, path)
    lava_shape = _to_lava_layout(np.empty(in_shape)).shape
    out, lava_states, kinds = _run_lava(
        path, _source_data(net, x_pad, spike_exp), steps, input_shape=lava_shape, graded_input=not with_input,
        reset_interval=steps if with_reset else None, spike_exp=spike_exp, **network_kwargs)
    assert kinds == ["Delta"] * with_input + ["SigmaDelta"] * (len(delays) - 1 - with_input) + ["Sigma"]

    # Output: slayer index t == sink column t + total; Sigma sends σ in units 2^(12 + spike_exp).
    expected = y[0].numpy() * 2.0 ** (12 + spike_exp)
    assert np.array_equal(expected, np.trunc(expected))
    assert np.any(expected != 0), "degenerate network: zero output"
    np.testing.assert_array_equal(out[:, total:], expected[:, : steps - total])

    slayer_states = _slayer_states(net, x_pad, [steps - n for n in delays])
    assert len(slayer_states) == len(lava_states)
    for j, (lava_block, slayer_block) in enumerate(zip(lava_states, slayer_states)):
        assert set(lava_block) == set(slayer_block), j
        for name, value in lava_block.items():
            np.testing.assert_array_equal(value, slayer_block[name], err_msg=f"block {j} state {name}")


def _messages(net, x):
    """Output of every neuron block of ``net`` for ``x``."""
    outs = []
    with torch.no_grad():
        for block in net:
            x = block(x)
            if getattr(block, "neuron", None) is not None:
                outs.append(x)
    return outs


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("seed", range(12))
def test_random_sdnn_parity(kind, seed, tmp_path):
    rng, net, in_shape, spike_exp, with_norm, with_input = _build(kind, seed)
    unit = 32 if with_input else 1 << (6 + spike_exp)
    x = _graded_input(rng, (1, *in_shape, STEPS), unit)
    assert all(torch.any(m != 0) for m in _messages(net, x)), "a block never sends a message"
    _check_parity(net, x, in_shape, spike_exp, with_norm, tmp_path)


@pytest.mark.parametrize("spike_exp", [6, 3])
def test_conv_sums_wrap_to_24_bits(spike_exp, tmp_path):
    """Lava's Conv wraps synaptic sums to 24 bits (|z| >= 2^(11 - spike_exp)); slayer's Conv block too."""
    rng = np.random.default_rng(spike_exp)
    torch.manual_seed(spike_exp)
    params = dict(threshold=1 / 64, activation=None, spike_exp=spike_exp)
    conv = sd.Conv(params, 2, 3, 3, padding=1, input_shape=(5, 5))
    net = torch.nn.Sequential(conv, sd.Flatten(), sd.Output(dict(params, activation=F.relu), 75, 3))
    with torch.no_grad():
        conv.synapse.weight.copy_(torch.from_numpy(rng.integers(-120, 120, conv.synapse.weight.shape) / 32))
    net.eval()
    unit = 1 << (6 + spike_exp)
    amp = 4 * unit << (6 - spike_exp)  # |x| < 4 * 2^(6 - spike_exp): messages within 16 bits
    x = torch.from_numpy(rng.integers(-amp, amp, (1, 2, 5, 5, 8)) / unit)
    with torch.no_grad():
        z = conv.synapse(x)
    assert float(z.abs().max()) >= 2.0 ** (11 - spike_exp), "no sum beyond 24 bits: test is vacuous"
    _check_parity(net, x, (2, 5, 5), spike_exp, False, tmp_path)


@pytest.mark.parametrize("with_input", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_stream_of_samples_reset_interval(seed, with_input, tmp_path):
    """Samples back to back with ``reset_interval``: every sample equals its own slayer call (bias too)."""
    rng = np.random.default_rng(700 + seed)
    torch.manual_seed(seed)
    spike_exp = (6, 3, 6)[seed]
    net, in_shape = _dense_net(rng, spike_exp, True, with_input)
    _randomise(net, rng, True)
    net.eval()
    samples = 4
    unit = 32 if with_input else 1 << (6 + spike_exp)
    x = _graded_input(rng, (samples, *in_shape, STEPS), unit)
    with torch.no_grad():
        y = net(x)
    path = tmp_path / "net.net"
    _export(net, path)
    total = _synapses_in_front(net)[-1]
    stream = torch.cat([*x.unbind(0), torch.zeros(*in_shape, total, dtype=x.dtype)], dim=-1)[None]
    steps = samples * STEPS + total
    out, _, _ = _run_lava(path, _source_data(net, stream, spike_exp), steps, input_shape=None,
                          graded_input=not with_input, reset_interval=STEPS, spike_exp=spike_exp)
    out = out[:, total:].reshape(-1, samples, STEPS).transpose(1, 0, 2)
    expected = y.numpy() * 2.0 ** (12 + spike_exp)
    assert np.all(np.any(expected != 0, axis=(1, 2))), "degenerate sample: zero output"
    np.testing.assert_array_equal(out, expected)


def test_blocks_export_lava_dl_records(tmp_path):
    """Input: ``input`` + SDNN neuron; Output: ``dense`` + ``sigma_output``; bias only from the norm."""
    params = dict(threshold=0.25, activation=F.relu)
    net = torch.nn.Sequential(sd.Input(params, shape=(6,)),
                              sd.Dense({**params, "norm": MeanOnlyBatchNorm}, 6, 5),
                              sd.Dense(params, 5, 4), sd.Output(params, 4, 3))
    assert all(not b.delay_shift for b in net)
    assert all(b.synapse.weight.dtype == torch.float64 for b in net[1:])
    net.eval()
    _export(net, tmp_path / "net.net")
    with h5py.File(tmp_path / "net.net", "r") as f:
        layer = f["layer"]
        assert [layer[str(i)]["type"][0] for i in range(4)] == [b"input", b"dense", b"dense", b"dense"]
        neuron = {k: v[()] for k, v in layer["0/neuron"].items()}
        assert neuron == {"type": b"SDNN", "activation": b"relu", "vThMant": 16}
        assert "bias" in layer["1"] and "bias" not in layer["2"] and "bias" not in layer["3"]
        out = {k: v[()] for k, v in layer["3/neuron"].items()}
        assert out == {"type": b"SDNN", "activation": b"relu", "vThMant": 16, "sigma_output": True}


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("seed", range(2))
def test_cum_error_parity(kind, seed, tmp_path):
    """``cum_error=True`` on every encoder (Input and hidden blocks) is exported as ``neuron/cumError``
    and deployed: Lava's output and states (``error`` included) equal slayer's exactly, and the
    output differs from the same network with ``cum_error`` off (the flag matters here)."""
    rng, net, in_shape, spike_exp, with_norm, with_input = _build(kind, seed)
    encoders = [block.neuron for block in net
                if isinstance(getattr(block, "neuron", None), (sd_neuron.Delta, sd_neuron.Neuron))]
    unit = 32 if with_input else 1 << (6 + spike_exp)
    x = _graded_input(rng, (1, *in_shape, STEPS), unit)
    with torch.no_grad():
        off = net(x)
    for neuron in encoders:
        neuron.cum_error = True
    with torch.no_grad():
        on = net(x)
    assert not torch.equal(on, off), "cum_error does not change this network's output: test is vacuous"
    _check_parity(net, x, in_shape, spike_exp, with_norm, tmp_path)
    with h5py.File(tmp_path / "net.net", "r") as f:
        flags = [bool(f[f"layer/{i}/neuron/cumError"][()]) for i, block in enumerate(net)
                 if getattr(block, "neuron", None) in encoders]
    assert flags == [True] * len(encoders)


def test_cum_error_loads_into_slayer(tmp_path):
    """``SequentialNetwork`` loads ``neuron/cumError``: same forward, same file again; a file with
    ``cumError = False`` written out loads like one without the field."""
    from lava_dl.slayer.auto import SequentialNetwork
    from tests.test_auto import _assert_same_files

    rng, net, in_shape, spike_exp, _, _ = _build("dense", 0)
    assert spike_exp == 6 and isinstance(net[0], sd.Input)  # SequentialNetwork loads spike_exp 6
    net[0].neuron.cum_error = net[1].neuron.cum_error = True
    x = _graded_input(rng, (2, *in_shape, STEPS), 32)
    with torch.no_grad():
        expected = net(x)
    _export(net, tmp_path / "a.net")
    loaded = SequentialNetwork(tmp_path / "a.net").eval()
    flags = [getattr(block.neuron, "cum_error", None) for block in loaded.blocks]
    assert flags[:2] == [True, True] and all(f is not True for f in flags[2:])
    with torch.no_grad():
        assert torch.equal(loaded(x), expected)
    loaded.export_hdf5(tmp_path / "b.net")
    _assert_same_files(tmp_path / "a.net", tmp_path / "b.net")

    with h5py.File(tmp_path / "a.net", "r+") as f:
        f["layer/0/neuron/cumError"][()] = False
        del f["layer/1/neuron/cumError"]
    plain = SequentialNetwork(tmp_path / "a.net")
    assert plain.blocks[0].neuron.cum_error is False and plain.blocks[1].neuron.cum_error is False
