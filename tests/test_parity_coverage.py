"""slayer == export -> netx -> Lava fixed_pt for the options the random parity networks leave out.

Per-channel decays and thresholds (``shared_param=False``), non-square kernels with
asymmetric stride, padding, dilation and groups, ``Affine`` readouts (with and without
dynamics), Dense ``mask``, dropout (eval mode), weight normalisation and netx's
``sparse_fc_layer=True`` (CSR ``Sparse`` synapses for every dense record), over the neuron
families. Spikes (sigma-delta: the ``Sigma`` output) and every neuron block's final states
must be equal, exactly. Each test also checks that the option is really in effect (the
file holds per-channel arrays, the mask removes weights, dropout acts in training mode...),
so that a test cannot pass by not exercising it.

Timing as in :mod:`tests.test_parity_layers` (spiking families: slayer index ``t`` is sink
column ``t``) and :mod:`tests.test_parity_sigma_delta` (sigma-delta: column ``t + N``).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi1SimCfg
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source
from lava.proc.monitor.process import Monitor

from lava_dl import netx, slayer
from lava_dl.slayer.block import sigma_delta as sd
from tests.lava_run import run_and_read
from tests.test_parity import FAMILIES, _active_output, _export, _neuron_params, _randomise, _synapses
from tests.test_parity_layers import STEPS, _final_states, _lava_layout
from tests.test_parity_sigma_delta import _check_parity as _check_sdnn_parity
from tests.test_parity_sigma_delta import _graded_input

#: Sigma-delta networks here use spike_exp 6 and graded network input ``x * 2^12``.
_SD_UNIT = 1 << 12


def _spiking_parity(net, in_shape, x, tmp_path, out_scale: float = 1.0, **network_kwargs):
    """Export ``net`` (spiking families), run it in Lava on the batch-1 binary input ``x``, compare the
    output (times ``out_scale``) and every neuron block's final states with slayer's; return the
    Lava network (stopped) for further checks."""
    y = _active_output(net, x)
    expected = y[0].numpy() * out_scale
    assert np.abs(expected).sum() > 0, "degenerate network: no output spikes"
    path = tmp_path / "net.net"
    _export(net, path)
    lava_net = netx.hdf5.Network(net_config=str(path), reset_interval=STEPS,
                                 input_shape=_lava_layout(x).shape[:-1] if len(in_shape) == 3 else None,
                                 **network_kwargs)
    source = Source(data=_lava_layout(x))
    sink = Sink(shape=lava_net.out.shape, buffer=STEPS)
    source.s_out.connect(lava_net.inp)
    lava_net.out.connect(sink.a_in)
    layers = [layer for layer in lava_net.layers if hasattr(layer, "neuron")]
    names = [type(layer.neuron).spec.state_names for layer in layers]
    reads = [sink.data] + [getattr(layer.neuron, n) for layer, ns in zip(layers, names) for n in ns]
    out, *values = run_and_read(lava_net, STEPS, reads)
    np.testing.assert_array_equal(out, expected)
    finals = _final_states(net, x, STEPS - 1)
    assert len(finals) == len(layers)
    for i, (layer, ns, final) in enumerate(zip(layers, names, finals)):
        assert set(final) == set(ns), i
        shape = tuple(layer.shape)  # Lava (x, y, c) or (n,)
        for name in ns:
            state = final[name].reshape(shape[::-1])  # slayer (C, H, W)
            state = state.transpose(2, 1, 0) if len(shape) == 3 else state
            np.testing.assert_array_equal(values.pop(0), state, err_msg=f"block {i} state {name}")
    return lava_net


def _spikes(rng, in_shape, rate=0.3):
    return torch.from_numpy((rng.random((1, *in_shape, STEPS)) < rate).astype(np.float32))


def _sd_params(rng, **extra):
    return dict(threshold=int(rng.integers(1, 12)) / 64, activation=F.relu, **extra)


def _sd_parity(net, in_shape, rng, tmp_path, **network_kwargs):
    """A sigma-delta network without Input block (graded network input, spike_exp 6): output and
    states equal (:func:`tests.test_parity_sigma_delta._check_parity`)."""
    net.eval()
    with torch.no_grad():
        for block in net:
            if hasattr(block, "synapse") and block.synapse.weight.requires_grad:
                block.synapse.weight.mul_(3)
    x = _graded_input(rng, (1, *in_shape, 20), _SD_UNIT)
    _check_sdnn_parity(net, x, in_shape, 6, False, tmp_path, **network_kwargs)


def _file_field(path, key):
    with h5py.File(path, "r") as f:
        return f[key][()]


# ---- per-channel parameters ------------------------------------------------------------------------

def _per_channel_params(family, rng):
    """Random neuron arguments with a (min, max) range per decay and ``shared_param=False``."""
    params = dict(_neuron_params(family, rng, False), shared_param=False)
    for key in ("current_decay", "voltage_decay", "threshold_decay", "refractory_decay"):
        if key in params:
            low = float(rng.uniform(0, 0.5))
            params[key] = (low, low + float(rng.uniform(0.2, 0.5)))
    return params


@pytest.mark.parametrize("family", ["cuba", "alif"])
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_per_channel_decays(family, kind, tmp_path):
    """``shared_param=False``: every decay is an array of one integer per channel in the file, and the
    deployed network equals slayer's."""
    rng = np.random.default_rng(10 * FAMILIES.index(family) + (kind == "conv"))
    torch.manual_seed(3)
    blocks = getattr(slayer.block, family)
    if kind == "dense":
        net = torch.nn.Sequential(blocks.Dense(_per_channel_params(family, rng), 20, 12),
                                  blocks.Dense(_per_channel_params(family, rng), 12, 6))
        in_shape = (20,)
    else:
        conv1 = blocks.Conv(_per_channel_params(family, rng), 2, 4, 3, padding=1, input_shape=(7, 7))
        conv2 = blocks.Conv(_per_channel_params(family, rng), 4, 3, 3, stride=2, input_shape=(7, 7))
        c, h, w = conv2.neuron.shape
        net = torch.nn.Sequential(conv1, conv2, blocks.Flatten(),
                                  blocks.Dense(_per_channel_params(family, rng), c * h * w, 5))
        in_shape = (2, 7, 7)
    _randomise(net, rng, with_norm=False)
    net.eval()
    _spiking_parity(net, in_shape, _spikes(rng, in_shape), tmp_path)
    keys = ("iDecay", "vDecay") + (("thDecay", "refDecay") if family == "alif" else ())
    for key in keys:
        value = np.asarray(_file_field(tmp_path / "net.net", f"layer/0/neuron/{key}"))
        assert value.shape == (net[0].neuron.num_channels,) and len(np.unique(value)) > 1, key


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_sigma_delta_per_channel_thresholds(kind, tmp_path):
    """Sigma-delta ``shared_param=False``: one ``vThMant`` per channel (lava-dl could not export it)."""
    rng = np.random.default_rng(31 + (kind == "conv"))
    torch.manual_seed(4)
    per_channel = dict(activation=F.relu, threshold=4 / 64, shared_param=False)
    if kind == "dense":
        first = sd.Dense(per_channel, 12, 10)
        net = torch.nn.Sequential(first, sd.Output(_sd_params(rng), 10, 4))
        in_shape = (12,)
    else:
        first = sd.Conv(per_channel, 2, 4, 3, input_shape=(6, 6))
        net = torch.nn.Sequential(first, sd.Flatten(), sd.Output(_sd_params(rng), 4 * 16, 4))
        in_shape = (2, 6, 6)
    with torch.no_grad():
        thresholds = rng.integers(0, 16, first.neuron.num_channels) / 64
        first.neuron.delta_threshold.copy_(torch.from_numpy(thresholds))
    _sd_parity(net, in_shape, rng, tmp_path)
    value = np.asarray(_file_field(tmp_path / "net.net", "layer/0/neuron/vThMant"))
    assert value.shape == (first.neuron.num_channels,) and len(np.unique(value)) > 1


# ---- convolution geometry ------------------------------------------------------------------------

def _asymmetric(rng, low, high):
    """An (H, W) pair of two different integers in [low, high], in random order."""
    a, b = rng.choice(np.arange(low, high + 1), 2, replace=False)
    return int(a), int(b)


@pytest.mark.parametrize("family", [*FAMILIES, "sigma_delta"])
def test_conv_geometry(family, tmp_path):
    """Non-square kernels, asymmetric stride, padding and dilation, grouped convolutions and a
    non-square input, in both convolutions of a conv -> conv -> flatten -> dense network."""
    seed = ([*FAMILIES, "sigma_delta"]).index(family)
    rng = np.random.default_rng(400 + seed)
    torch.manual_seed(seed)
    blocks = getattr(slayer.block, family)

    def params():
        return _sd_params(rng) if family == "sigma_delta" else _neuron_params(family, rng, False)

    in_shape = (2, 13, 15) if seed % 2 else (4, 16, 12)
    groups1 = 2 if seed % 2 == 0 else 1
    conv1 = blocks.Conv(params(), in_shape[0], 4, _asymmetric(rng, 1, 3), stride=_asymmetric(rng, 1, 2),
                        padding=_asymmetric(rng, 0, 1), dilation=_asymmetric(rng, 1, 2), groups=groups1,
                        input_shape=in_shape[1:])
    conv2 = blocks.Conv(params(), 4, 6, _asymmetric(rng, 2, 3), stride=_asymmetric(rng, 1, 2),
                        padding=_asymmetric(rng, 0, 2), dilation=_asymmetric(rng, 1, 2), groups=2,
                        input_shape=conv1.neuron.shape[1:])
    c, h, w = conv2.neuron.shape
    last = (sd.Output if family == "sigma_delta" else blocks.Dense)(params(), c * h * w, 5)
    net = torch.nn.Sequential(conv1, conv2, blocks.Flatten(), last)
    for conv in (conv1, conv2):
        syn = conv.synapse
        for name in ("kernel_size", "stride", "padding", "dilation"):
            pair = tuple(getattr(syn, name))[-2:]
            assert pair[0] != pair[1], (name, pair)
    if family == "sigma_delta":
        _sd_parity(net, in_shape, rng, tmp_path)
    else:
        _randomise(net, rng, with_norm=False)
        net.eval()
        _spiking_parity(net, in_shape, _spikes(rng, in_shape), tmp_path)


# ---- Affine readouts -----------------------------------------------------------------------------

def _monitored_run(lava_net, source, variables, steps):
    """Run ``steps`` steps; return each of ``variables`` after every step, ``(steps, *shape)``."""
    monitors = []
    for var in variables:
        monitor = Monitor()
        monitor.probe(target=var, num_steps=steps)
        monitors.append((monitor, var))
    source.s_out.connect(lava_net.inp)
    failed = False
    try:
        lava_net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi1SimCfg(select_tag="fixed_pt"))
        return [monitor.get_data()[var.process.name][var.name] for monitor, var in monitors]
    except Exception:
        failed = True
        raise
    finally:
        if not failed:
            lava_net.stop()


@pytest.mark.parametrize("family", ["cuba", "alif"])
@pytest.mark.parametrize("dynamics", [True, False])
def test_affine_readout(family, dynamics, tmp_path):
    """Dense -> Affine. ``dynamics=True``: the readout neuron's voltage (threshold marker
    ``2^18 - 1``, never spikes) equals slayer's output. ``dynamics=False`` (no neuron group):
    netx's integrator accumulates the synaptic input in ``u``, so its per-step increment equals
    slayer's output (the per-step synaptic sum), times ``2^12``. The Affine block does not shift,
    so slayer index ``t`` is Lava step ``t + 2``."""
    rng = np.random.default_rng(50 + 2 * FAMILIES.index(family) + dynamics)
    torch.manual_seed(5)
    blocks = getattr(slayer.block, family)
    hidden = blocks.Dense(_neuron_params(family, rng, False), 16, 10)
    affine = blocks.Affine(_neuron_params(family, rng, False), 10, 4, dynamics=dynamics)
    net = torch.nn.Sequential(hidden, affine)
    _randomise(net, rng, with_norm=False)
    net.eval()
    x = _spikes(rng, (16,), 0.4)
    with torch.no_grad():
        spikes = hidden(x)
        y = net(x)[0].numpy()
    assert spikes.sum() > 0 and np.abs(y).sum() > 0, "degenerate network"
    path = tmp_path / "net.net"
    _export(net, path)
    with h5py.File(path, "r") as f:
        assert ("neuron" in f["layer/1"]) == dynamics
        if dynamics:
            assert f["layer/1/neuron/vThMant"][()] == (1 << 18) - 1
    lava_net = netx.hdf5.Network(net_config=str(path), reset_interval=STEPS)
    neuron = lava_net.layers[1].neuron
    steps = STEPS
    (state,) = _monitored_run(lava_net, Source(data=_lava_layout(x)), [neuron.v if dynamics else neuron.u],
                              steps)
    state = np.asarray(state).reshape(steps, -1).T  # (neuron, step); column k is Lava step k + 1
    scale = float(affine.neuron.s_scale)
    if dynamics:
        np.testing.assert_array_equal(state[:, 1:], y[:, : steps - 1] * scale)
    else:
        increments = np.diff(state, axis=1, prepend=0)
        np.testing.assert_array_equal(increments[:, 1:], y[:, : steps - 1] * scale)


# ---- Dense mask, dropout, weight normalisation ---------------------------------------------------

@pytest.mark.parametrize("family", ["cuba", "rf", "sigma_delta"])
def test_dense_mask(family, tmp_path):
    """A fixed 0/1 connectivity mask: the file holds the masked weights (zeros where masked)."""
    rng = np.random.default_rng(60 + ([*FAMILIES, "sigma_delta"]).index(family))
    torch.manual_seed(6)
    blocks = getattr(slayer.block, family)
    mask1 = torch.from_numpy((rng.random((12, 20)) < 0.5).astype(np.float32))
    mask2 = torch.from_numpy((rng.random((6, 12)) < 0.6).astype(np.float32))
    if family == "sigma_delta":
        net = torch.nn.Sequential(sd.Dense(_sd_params(rng), 20, 12, mask=mask1),
                                  sd.Output(_sd_params(rng), 12, 6, mask=mask2))
        _sd_parity(net, (20,), rng, tmp_path)
    else:
        net = torch.nn.Sequential(blocks.Dense(_neuron_params(family, rng, False), 20, 12, mask=mask1),
                                  blocks.Dense(_neuron_params(family, rng, False), 12, 6, mask=mask2))
        _randomise(net, rng, with_norm=False)
        net.eval()
        _spiking_parity(net, (20,), _spikes(rng, (20,)), tmp_path)
    with h5py.File(tmp_path / "net.net", "r") as f:
        for i, mask in enumerate((mask1, mask2)):
            rec = f[f"layer/{i}"]
            complex_ = isinstance(rec["weight"], h5py.Group)
            parts = [rec["weight/real"][()], rec["weight/imag"][()]] if complex_ else [rec["weight"][()]]
            for weight in parts:
                assert not np.any(weight[mask.numpy() == 0])
                assert np.any(weight[mask.numpy() == 1])
            raw = [s.weight.detach().reshape(mask.shape) for s in _synapses(net[i])]
            assert any(torch.any(w[mask == 0] != 0) for w in raw), "the mask removes nothing"


@pytest.mark.parametrize("family", ["cuba", "alif", "sigma_delta"])
def test_dropout_eval_mode(family, tmp_path):
    """Neuron dropout changes the training forward, and in eval mode the block deploys as without it."""
    rng = np.random.default_rng(70 + ([*FAMILIES, "sigma_delta"]).index(family))
    torch.manual_seed(7)
    blocks = getattr(slayer.block, family)
    drop = dict(dropout=slayer.neuron.dropout.Dropout(p=0.4))
    if family == "sigma_delta":
        net = torch.nn.Sequential(sd.Dense(_sd_params(rng, **drop), 20, 12),
                                  sd.Dense(_sd_params(rng, **drop), 12, 8), sd.Output(_sd_params(rng), 8, 4))
        x = _graded_input(rng, (1, 20, 20), _SD_UNIT)
    else:
        net = torch.nn.Sequential(blocks.Dense({**_neuron_params(family, rng, False), **drop}, 20, 12),
                                  blocks.Dense({**_neuron_params(family, rng, False), **drop}, 12, 6))
        _randomise(net, rng, with_norm=False)
        x = _spikes(rng, (20,), 0.4)
        _active_output(net, x)
    with torch.no_grad():
        trained = net.train()(x)
        deployed = net.eval()(x)
    assert not torch.equal(trained, deployed), "dropout does not act in training mode: test is vacuous"
    if family == "sigma_delta":
        _sd_parity(net, (20,), rng, tmp_path)
    else:
        _spiking_parity(net, (20,), x, tmp_path)


@pytest.mark.parametrize("family, kind", [("cuba", "dense"), ("alif", "conv"), ("rf_iz", "dense"),
                                          ("sigma_delta", "conv")])
def test_weight_norm(family, kind, tmp_path):
    """``weight_norm=True`` with the norms ``g`` moved away from ``|v|``: the forward's normalised
    weights are the exported ones (export removes the normalisation), and Lava equals slayer."""
    rng = np.random.default_rng(80 + ([*FAMILIES, "sigma_delta"]).index(family))
    torch.manual_seed(8)
    blocks = getattr(slayer.block, family)

    def params():
        return _sd_params(rng) if family == "sigma_delta" else _neuron_params(family, rng, False)

    last_cls = sd.Output if family == "sigma_delta" else blocks.Dense
    if kind == "dense":
        net = torch.nn.Sequential(blocks.Dense(params(), 20, 12, weight_norm=True),
                                  last_cls(params(), 12, 6, weight_norm=True))
        in_shape = (20,)
    else:
        conv = blocks.Conv(params(), 2, 4, 3, padding=1, input_shape=(6, 6), weight_norm=True)
        net = torch.nn.Sequential(conv, blocks.Flatten(), last_cls(params(), 4 * 36, 6, weight_norm=True))
        in_shape = (2, 6, 6)
    synapses = [s for block in net for s in _synapses(block)]
    assert synapses and all(s.weight_norm for s in synapses)
    before = []
    with torch.no_grad():
        for s in synapses:
            g = s.parametrizations.weight.original0
            g.mul_(torch.from_numpy(rng.uniform(1.5, 4, g.shape)).to(g.dtype))
            before.append(s.weight.detach().clone())
            assert not torch.allclose(before[-1], s.parametrizations.weight.original1)  # g matters
    if family == "sigma_delta":
        _sd_parity(net, in_shape, rng, tmp_path)
    else:
        net.eval()
        _spiking_parity(net, in_shape, _spikes(rng, in_shape), tmp_path)
    assert not any(s.weight_norm for s in synapses)  # the export removed it
    assert all(torch.equal(s.weight.detach(), w) for s, w in zip(synapses, before))


# ---- sparse_fc_layer -----------------------------------------------------------------------------

@pytest.mark.parametrize("family, graded", [*((f, False) for f in FAMILIES), ("cuba", True), ("alif", True),
                                            ("sigma_delta", False)])
def test_sparse_fc_layer(family, graded, tmp_path):
    """``sparse_fc_layer=True`` (lava-dl's option): every dense record runs on a CSR ``Sparse``
    synapse; outputs and states equal slayer's, binary and graded spikes and sigma-delta messages."""
    rng = np.random.default_rng(90 + 2 * ([*FAMILIES, "sigma_delta"]).index(family) + graded)
    torch.manual_seed(9)
    blocks = getattr(slayer.block, family)
    if family == "sigma_delta":
        net = torch.nn.Sequential(sd.Dense(_sd_params(rng), 20, 12), sd.Dense(_sd_params(rng), 12, 8),
                                  sd.Output(_sd_params(rng), 8, 4))
        _sd_parity(net, (20,), rng, tmp_path, sparse_fc_layer=True)
        lava_net = netx.hdf5.Network(net_config=str(tmp_path / "net.net"), sparse_fc_layer=True,
                                     input_message_bits=16)
    else:
        net = torch.nn.Sequential(*[blocks.Dense(_neuron_params(family, rng, False, graded), a, b)
                                    for a, b in ((20, 12), (12, 8), (8, 5))])
        _randomise(net, rng, with_norm=False)
        net.eval()
        scale = float(net[-1].neuron.s_scale) if graded else 1.0
        lava_net = _spiking_parity(net, (20,), _spikes(rng, (20,)), tmp_path, out_scale=scale,
                                   sparse_fc_layer=True)
    kinds = {type(s).__name__ for layer in lava_net.layers for s in getattr(layer, "synapses", {}).values()}
    kinds |= {type(layer.synapse).__name__ for layer in lava_net.layers if hasattr(layer, "synapse")}
    assert kinds == {"Sparse"}, kinds
