"""Loading a ``.net`` back into slayer (``lava_dl.slayer.auto``): export -> load -> export round trips.

Small random networks of every family and every record type (input with and without
neuron and transform, flatten, average, dense, Affine with and without dynamics,
dense_rec as Recurrent and KWTA, conv, convT, pool, unpool, sigma-delta output; complex
weights, per-channel decays and thresholds, norm biases, axonal delays, graded spikes) are
exported, loaded with :class:`SequentialNetwork` and exported again: every dataset of the
two files must be byte-identical, the loaded network's forward must equal the original's
exactly, and a gradient step on it must work. Malformed files raise errors that name the
layer and the field. Skip connections (``concat`` records) are also checked against
``lava_dl.netx.simulate``, the only Lava-side import (inside that test); the rest is the
training side alone.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lava_dl import slayer
from lava_dl.core import records
from lava_dl.slayer.auto import (
    AFFINE_THRESHOLD,
    Hdf5FormatError,
    SequentialNetwork,
    get_classes,
    get_neuron_params,
)
from lava_dl.slayer.neuron.norm import MeanOnlyBatchNorm
from tests.conftest import FIXTURES

STEPS = 24
BATCH = 2
RESONATORS = ("rf", "rf_iz", "adrf", "adrf_iz")
ADAPTIVE = ("alif", "adrf", "adrf_iz")
SPIKING = ("cuba", "alif", *RESONATORS)


# ---- random networks --------------------------------------------------------------------------

def _params(family: str, rng, per_channel: bool = False, norm: bool = False, graded: bool = False) -> dict:
    """Random neuron arguments of a spiking family (per-channel ranges with ``per_channel``)."""
    params: dict = dict(threshold=int(rng.integers(16, 120)) / 64, graded_spike=graded)
    if family in RESONATORS:  # low thresholds keep the phase-spiking networks active
        params["threshold"] = int(rng.integers(2, 24)) / 64
        period, decay = float(rng.uniform(4.5, 8)), float(rng.uniform(0, 0.1))
        if per_channel:
            params.update(shared_param=False, period=(period, period * 1.5), decay=(decay, decay + 0.1))
        else:
            params.update(period=period, decay=decay)
    else:
        low, high = sorted(rng.uniform(0, 1, 2))
        if per_channel:
            params.update(shared_param=False, current_decay=(float(low), float(high)),
                          voltage_decay=(float(low) / 2, float(high) / 2))
        else:
            params.update(current_decay=float(rng.uniform(0, 1)), voltage_decay=float(rng.uniform(0, 0.5)))
        params["norm"] = MeanOnlyBatchNorm if norm else None
    if family in ADAPTIVE:
        params.update(threshold_step=int(rng.integers(0, 60 if family == "alif" else 8)) / 64,
                      threshold_decay=(0.01, 0.2) if per_channel else float(rng.uniform(0, 0.3)),
                      refractory_decay=(0.05, 0.3) if per_channel else float(rng.uniform(0, 0.3)))
    return params


def _sd_params(rng, per_channel: bool = False, norm: bool = False, activation=F.relu) -> dict:
    return dict(threshold=int(rng.integers(1, 12)) / 64, activation=activation, shared_param=not per_channel,
                norm=MeanOnlyBatchNorm if norm else None)


def _randomise(net: torch.nn.Module, rng, gain: tuple[float, float] = (2, 5)) -> None:
    """Random weights (scaled up by ``gain`` to make the networks active), norm means, delays, KWTA
    self-excitations, per-channel sigma-delta thresholds."""
    with torch.no_grad():
        for block in net:
            synapses = [getattr(block, n, None) for n in ("synapse", "recurrent_synapse")]
            for synapse in [s for s in synapses if s is not None]:
                parts = [synapse.real, synapse.imag] if getattr(synapse, "complex", False) else [synapse]
                for part in parts:  # pool kernels too (fixed, but exported like any weight)
                    part.weight.mul_(float(rng.uniform(*gain)))
            neuron = getattr(block, "neuron", None)
            norm = getattr(neuron, "norm", None)
            if norm is not None:
                norm.running_mean.copy_(torch.from_numpy(rng.uniform(-1, 1, norm.running_mean.shape)))
            if getattr(neuron, "delta_threshold", None) is not None and neuron.delta_threshold.numel() > 1:
                mantissas = rng.integers(1, 12, neuron.delta_threshold.shape)
                neuron.delta_threshold.copy_(torch.from_numpy(mantissas / 64 + rng.uniform(0, 1 / 64)))
            delay = getattr(block, "delay", None)
            if delay is not None:
                delay.delay.copy_(torch.from_numpy(rng.uniform(0, 3, delay.delay.shape)))
            if hasattr(block, "self_excitation"):
                block.self_excitation.fill_(float(rng.uniform(0, 1)))


def _dense_net(family: str, rng) -> tuple[torch.nn.Sequential, tuple[int, ...]]:
    """Input (neuron, transform) -> Dense (norm, per-channel, delay) -> Recurrent -> KWTA -> Dense (graded)
    -> Dense -> Average."""
    blocks = getattr(slayer.block, family)
    norm = family not in RESONATORS
    n_in = 10
    net = torch.nn.Sequential(
        blocks.Input(_params(family, rng), weight=float(rng.uniform(0.5, 2)),
                     bias=float(rng.uniform(-0.3, 0.3)), shape=(n_in,)),
        blocks.Dense(_params(family, rng, per_channel=True, norm=norm), n_in, 12, delay=True),
        blocks.Recurrent(_params(family, rng, norm=norm), 12, 9, delay=True),
        blocks.KWTA(_params(family, rng), 9, 8, num_winners=int(rng.integers(1, 5))),
        blocks.Dense(_params(family, rng, graded=True), 8, 6),
        blocks.Dense(_params(family, rng), 6, 6),
        blocks.Average(3),
    )
    return net, (n_in,)


def _conv_net(family: str, rng) -> tuple[torch.nn.Sequential, tuple[int, ...]]:
    """Conv (norm, per-channel, delay) -> Pool -> ConvT (groups) -> Unpool (delay) -> Flatten -> Dense."""
    blocks = getattr(slayer.block, family)
    norm = family not in RESONATORS
    c, size = 2, 9
    conv = blocks.Conv(_params(family, rng, per_channel=True, norm=norm), c, 4, 3, stride=(1, 2), padding=1,
                       delay=True, input_shape=(size, size))
    pool = blocks.Pool(_params(family, rng, per_channel=True), 2, stride=(2, 1), in_channels=4,
                       input_shape=conv.neuron.shape[1:])
    conv_t = blocks.ConvT(_params(family, rng, norm=norm), 4, 4, (2, 3), stride=(1, 2), padding=(0, 1),
                          groups=2, input_shape=pool.neuron.shape[1:])
    unpool = blocks.Unpool(_params(family, rng), 2, in_channels=4, input_shape=conv_t.neuron.shape[1:],
                           delay=True)
    flat = int(np.prod(unpool.neuron.shape))
    net = torch.nn.Sequential(conv, pool, conv_t, unpool, blocks.Flatten(), blocks.Dense(_params(family, rng),
                                                                                       flat, 5))
    return net, (c, size, size)


def _affine_net(family: str, rng) -> tuple[torch.nn.Sequential, tuple[int, ...]]:
    """Input without neuron -> Dense -> Affine readout (with dynamics for even seeds' families)."""
    blocks = getattr(slayer.block, family)
    dynamics = family == "alif"
    net = torch.nn.Sequential(blocks.Input(shape=(8,)), blocks.Dense(_params(family, rng), 8, 7),
                              blocks.Affine(_params(family, rng, norm=dynamics), 7, 3, dynamics=dynamics))
    return net, (8,)


def _sdnn_net(rng) -> tuple[torch.nn.Sequential, tuple[int, ...]]:
    """Sigma-delta: Input (per-channel threshold) -> Conv (norm) -> Pool -> ConvT -> Unpool -> Flatten
    -> Dense (norm, per-channel, delay) -> Output (delay)."""
    sd = slayer.block.sigma_delta
    c, size = 2, 6
    inp = sd.Input(_sd_params(rng, per_channel=True), weight=1.5, bias=0.25, shape=(c, size, size))
    conv = sd.Conv(_sd_params(rng, norm=True, activation=None), c, 3, 3, padding=1, input_shape=(size, size))
    pool = sd.Pool(_sd_params(rng), 2, in_channels=3, input_shape=(size, size))
    conv_t = sd.ConvT(_sd_params(rng), 3, 2, 2, stride=2, input_shape=pool.neuron.shape[1:])
    unpool = sd.Unpool(_sd_params(rng), (1, 2), stride=(1, 2), in_channels=2,
                       input_shape=conv_t.neuron.shape[1:])
    flat = int(np.prod(unpool.neuron.shape))
    net = torch.nn.Sequential(inp, conv, pool, conv_t, unpool, sd.Flatten(),
                              sd.Dense(_sd_params(rng, per_channel=True, norm=True), flat, 6, delay=True),
                              sd.Output(_sd_params(rng), 6, 3, delay=True))
    return net, (c, size, size)


NETWORKS = [("dense", f) for f in SPIKING] + [("conv", f) for f in SPIKING] + \
    [("affine", "cuba"), ("affine", "alif"), ("sdnn", "sigma_delta")]


def _build(kind: str, family: str, seed: int):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    if kind == "dense":
        net, shape = _dense_net(family, rng)
    elif kind == "conv":
        net, shape = _conv_net(family, rng)
    elif kind == "affine":
        net, shape = _affine_net(family, rng)
    else:
        net, shape = _sdnn_net(rng)
    _randomise(net, rng, (6, 12) if family in RESONATORS else (2, 5))
    if kind == "sdnn":
        x = torch.from_numpy(rng.normal(0, 1, (BATCH, *shape, STEPS))).float()
    else:
        x = torch.from_numpy((rng.random((BATCH, *shape, STEPS)) < 0.4).astype(np.float32))
    return net.eval(), x


# ---- file comparison ----------------------------------------------------------------------------

def _export(blocks, path) -> None:
    # _randomise scales the weights past the 8-bit range on purpose: write the clamped weights
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(blocks):
            block.export_hdf5(layer.create_group(str(i)), clip_weights=True)


def _datasets(path, root: str = "/") -> dict:
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = (obj.dtype, obj.shape, obj[()])
        f[root].visititems(visit)
        if root == "/":
            out["@attrs"] = dict(f.attrs)
    return out


def _assert_same_files(path_a, path_b, root: str = "/") -> None:
    """Same keys, and every dataset of the same dtype, shape and bytes."""
    a, b = _datasets(path_a, root), _datasets(path_b, root)
    assert sorted(a) == sorted(b)
    for key in a:
        if key == "@attrs":
            assert a[key] == b[key]
            continue
        (dtype_a, shape_a, value_a), (dtype_b, shape_b, value_b) = a[key], b[key]
        assert dtype_a == dtype_b, key
        assert shape_a == shape_b, key
        if dtype_a.kind == "O":
            assert value_a == value_b, key
        else:
            assert np.asarray(value_a).tobytes() == np.asarray(value_b).tobytes(), key


def _output(y):
    return y[0] if isinstance(y, tuple) else y


# ---- round trips ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, family", NETWORKS)
def test_round_trip(kind, family, tmp_path):
    net, x = _build(kind, family, seed=len(kind) * 31 + len(family))
    with torch.no_grad():
        expected = net(x)
    first, second = tmp_path / "a.net", tmp_path / "b.net"
    _export(net, first)

    loaded = SequentialNetwork(first).eval()
    assert [type(b).__name__ for b in loaded.blocks] == [type(b).__name__ for b in net]
    for block, original in zip(loaded.blocks, net):  # family-neutral blocks (Flatten, ...) load as cuba's
        if getattr(original, "neuron", None) is not None and kind != "affine":
            assert type(block).__module__ == type(original).__module__
    loaded.export_hdf5(second)
    _assert_same_files(first, second)

    with torch.no_grad():
        got = loaded(x)
    assert got.dtype == expected.dtype and torch.equal(got, expected)
    assert expected.abs().sum() > 0  # the comparison is not vacuous

    # fine-tuning: a gradient step changes the weights and the result still exports
    loaded.train()
    trainable = [p for p in loaded.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trainable]
    optimizer = torch.optim.SGD(trainable, lr=0.05)
    out = loaded(x)
    loss = (out.double() - 0.5).square().mean()
    optimizer.zero_grad()
    loss.backward()
    grads = [p.grad for p in trainable if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    optimizer.step()
    assert any(not torch.equal(p, b) for p, b in zip(trainable, before))
    # the large step pushes weights far past the 8-bit range: the forward clamps them, so does this export
    loaded.export_hdf5(tmp_path / "tuned.net", clip_weights=True)


def test_exact_neuron_values(tmp_path):
    """Per-channel decays, resonator rotations (even ones the period/decay arguments cannot give) and
    sigma-delta thresholds are the stored integers."""
    rng = np.random.default_rng(3)
    rf = slayer.block.rf.Dense(_params("rf", rng, per_channel=True), 4, 5)
    with torch.no_grad():  # sin 0 (infinite period) and cos < 0 (period below 4): outside the constructor
        rf.neuron.sin_decay.copy_(torch.tensor([0.0, 100.4, 3000.0, 12.0, 2000.0]))
        rf.neuron.cos_decay.copy_(torch.tensor([4000.0, -50.0, 2000.0, 7.0, 0.0]))
    cuba = slayer.block.cuba.Dense(_params("cuba", rng, per_channel=True), 5, 3)
    _export([rf, cuba], tmp_path / "a.net")
    loaded = SequentialNetwork(tmp_path / "a.net")
    assert loaded.blocks[0].neuron.sin_decay.tolist() == [0.0, 100.0, 3000.0, 12.0, 2000.0]
    assert loaded.blocks[0].neuron.cos_decay.tolist() == [4000.0, -50.0, 2000.0, 7.0, 0.0]
    assert not loaded.blocks[1].neuron.shared_param
    assert torch.equal(loaded.blocks[1].neuron.current_decay, torch.round(cuba.neuron.current_decay.detach()))
    loaded.export_hdf5(tmp_path / "b.net")
    _assert_same_files(tmp_path / "a.net", tmp_path / "b.net")


def test_options_and_open_file(tmp_path):
    """``network_config`` as an open file; persistent_state, weight_norm, count_log and reduction."""
    net, x = _build("dense", "cuba", seed=5)
    with torch.no_grad():
        expected = net(x)
    _export(net, tmp_path / "a.net")
    with h5py.File(tmp_path / "a.net", "r") as f:
        loaded = SequentialNetwork(f, weight_norm=True, count_log=True, reduction="sum").eval()
    assert loaded.blocks[1].synapse.weight_norm and loaded.blocks[2].recurrent_synapse.weight_norm
    with torch.no_grad():
        out, counts = loaded(x)
    assert counts.shape == (1, len(loaded.blocks))
    assert torch.equal(out, expected.reshape(BATCH, expected.shape[1], -1).sum(-1))
    loaded.export_hdf5(tmp_path / "b.net")  # removes the weight norm
    _assert_same_files(tmp_path / "a.net", tmp_path / "b.net")

    mean = SequentialNetwork(tmp_path / "a.net", reduction="mean", persistent_state=True).eval()
    assert all(b.neuron.persistent_state for b in mean.blocks if getattr(b, "neuron", None) is not None)
    with pytest.raises(ValueError, match="reduction"):
        SequentialNetwork(tmp_path / "a.net", reduction="max")


@pytest.mark.parametrize("name", ["mnist.net", "oxford/Trained/network.net", "pilotnet_sdnn/network.net"])
def test_lava_dl_files(name, tmp_path):
    """lava-dl 0.6's own files load and export again unchanged."""
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"lava-dl 0.6 fixture {path} not found")
    SequentialNetwork(path).export_hdf5(tmp_path / "b.net")
    original, exported = _datasets(path, "layer"), _datasets(tmp_path / "b.net", "layer")
    for key, (dtype, shape, value) in original.items():
        assert exported[key][:2] == (dtype, shape), key
        assert np.asarray(exported[key][2]).tobytes() == np.asarray(value).tobytes() or dtype.kind == "O", key
        assert dtype.kind != "O" or exported[key][2] == value, key
    # the only additions: the default input transform (weight 64, bias 0) lava-dl's SDNN input omits
    added = {key: exported[key][2].tolist() for key in set(exported) - set(original)}
    assert added in ({}, {"0/weight": [64.0], "0/bias": [0.0]})


# ---- helpers ------------------------------------------------------------------------------------

def test_get_classes():
    for type_name, family in (("CUBA", "cuba"), ("LOIHI", "cuba"), (None, "cuba"), ("ALIF", "alif"),
                              ("RF_PHASE", "rf"), ("RF_IZHIKEVICH", "rf_iz"), ("ADRF_PHASE", "adrf"),
                              ("ADRF_IZHIKEVICH", "adrf_iz"), (b"SDNN", "sigma_delta")):
        neuron, block = get_classes(type_name)
        assert neuron is getattr(slayer.neuron, family) and block is getattr(slayer.block, family)
    with pytest.raises(NotImplementedError, match="LIF"):
        get_classes("LIF")


def test_neuron_params_inverse():
    """Every family's ``neuron_params`` inverts its export (lava-dl's bugs fixed)."""
    alif = slayer.neuron.alif.neuron_params({"type": "ALIF", "iDecay": 1024, "vDecay": 128, "thDecay": 64,
                                             "refDecay": 32, "vThMant": 80, "vThStep": 12, "refDelay": 1,
                                             "gradedSpike": False})
    assert alif == dict(current_decay=0.25, voltage_decay=1 / 32, threshold_decay=1 / 64,
                        refractory_decay=1 / 128, threshold=1.25, threshold_step=12 / 64, graded_spike=False)
    adrf = slayer.neuron.adrf.neuron_params({"type": b"ADRF_PHASE", "sinDecay": 1000, "cosDecay": 3000,
                                             "thDecay": 0, "refDecay": 0, "vThMant": 80, "vThStep": 5})
    assert isinstance(adrf["period"], float) and isinstance(adrf["decay"], float)
    neuron = slayer.neuron.adrf.Neuron(**adrf)
    assert neuron.spec_values()["sin_decay"] == 1000 and neuron.spec_values()["cos_decay"] == 3000
    assert neuron.threshold_step == 5 / 64
    sdnn = slayer.neuron.sigma_delta.neuron_params({"type": "SDNN", "activation": "identity", "vThMant": 3})
    assert sdnn == dict(threshold=3 / 64, activation=None)
    per_channel = slayer.neuron.cuba.neuron_params({"iDecay": np.array([0, 2048]), "vDecay": 4096,
                                                    "vThMant": 10})
    assert per_channel["shared_param"] is False and per_channel["current_decay"].tolist() == [0, 0.5]
    for bad, match in (({"iDecay": 1, "vDecay": 1, "vThMant": 10, "tauRho": 1.0}, "neuron/tauRho"),
                       ({"iDecay": 1, "vDecay": 1}, "neuron/vThMant"),
                       ({"iDecay": 5000, "vDecay": 1, "vThMant": 1}, "neuron/iDecay"),
                       ({"iDecay": 1, "vDecay": 1, "vThMant": 1, "refDelay": 2}, "neuron/refDelay"),
                       ({"type": "ALIF", "iDecay": 1, "vDecay": 1, "vThMant": 1}, "neuron/type")):
        with pytest.raises(ValueError, match=match):
            slayer.neuron.cuba.neuron_params(bad)


def test_get_neuron_params(tmp_path):
    with h5py.File(tmp_path / "n.h5", "w") as f:
        records.write_neuron(f, {"type": "CUBA", "iDecay": 4096, "vDecay": 415, "vThMant": 6, "refDelay": 1,
                                 "gradedSpike": False})
        params = get_neuron_params(f["neuron"], slayer.neuron.cuba)
        # lava-dl's argument names
        by_keyword = get_neuron_params(neuron_handle=f["neuron"], neuron_class=slayer.neuron.cuba)
    assert params == dict(current_decay=1.0, voltage_decay=415 / 4096, threshold=6 / 64, graded_spike=False)
    assert by_keyword == params


# ---- malformed and unsupported files ----------------------------------------------------------------

CUBA = {"type": "CUBA", "iDecay": 1024, "vDecay": 128, "vThMant": 80, "refDelay": 1, "gradedSpike": False}
RF = {"type": "RF_PHASE", "sinDecay": 1000, "cosDecay": 3000, "vThMant": 80, "gradedSpike": False}
W = np.full((3, 4), 2.0, np.float32)
COMPLEX_W = {"real": W, "imag": W}


def _file(tmp_path, *writers) -> str:
    path = str(tmp_path / "bad.net")
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, write in enumerate(writers):
            write(layer.create_group(str(i)))
    return path


def _dense(**kwargs):
    return lambda g: records.write_dense(g, kwargs.pop("shape", (3,)), kwargs.pop("weight", W), **kwargs)


def _input_with_weight(g):
    records.write_input(g, (4,))
    g.create_dataset("weight", data=[64.0])


def _wrong_in_features(g):
    records.write_dense(g, (3,), W, neuron=CUBA)
    del g["inFeatures"]
    g.create_dataset("inFeatures", data=5)


def _conv(shape, in_channels):
    return lambda g: records.write_conv(g, shape, np.zeros((2, 1, 3, 3)), in_channels, 2, 3, neuron=CUBA)


#: case: (records, error, message start); the records follow one another in the file.
MALFORMED = {
    "unknown layer type": ([lambda g: records.write_type(g, "lstm")], NotImplementedError,
                           "layer 0, field 'type'"),
    "unknown neuron type": ([_dense(neuron={"type": "LIF"})], NotImplementedError,
                            "layer 0, field 'neuron/type'"),
    "unknown neuron field": ([_dense(neuron={**CUBA, "tauRho": 1.0})], Hdf5FormatError,
                             "layer 0, field 'neuron/tauRho'"),
    "missing neuron field": ([_dense(neuron={"type": "CUBA", "iDecay": 1})], Hdf5FormatError,
                             "layer 0, field 'neuron/vDecay'"),
    "refractory delay": ([_dense(neuron={**CUBA, "refDelay": 2})], Hdf5FormatError,
                         "layer 0, field 'neuron/refDelay'"),
    "odd weight": ([_dense(weight=W + 1, neuron=CUBA)], NotImplementedError, "layer 0, field 'weight'"),
    "fractional weight": ([_dense(weight=W + 0.5, neuron=CUBA)], Hdf5FormatError, "layer 0, field 'weight'"),
    "dense size": ([_dense(shape=(4,), neuron=CUBA)], Hdf5FormatError, "layer 0, field 'outFeatures'"),
    "weight size": ([_wrong_in_features], Hdf5FormatError, "layer 0, field 'weight'"),
    "conv channels": ([_conv((2, 4, 4), 2)], Hdf5FormatError, "layer 0, field 'inChannels'"),
    "conv shape": ([lambda g: records.write_input(g, (1, 6, 6)), _conv((2, 3, 3), 1)], Hdf5FormatError,
                   "layer 1, field 'shape'"),
    "dense after conv": ([lambda g: records.write_input(g, (1, 2, 2)), _dense(neuron=CUBA)], Hdf5FormatError,
                         "layer 1, field 'inFeatures'"),
    "dense size after input": ([lambda g: records.write_input(g, (5,)), _dense(neuron=CUBA)], Hdf5FormatError,
                               "layer 1, field 'inFeatures'"),
    "delay range": ([_dense(neuron=CUBA, delay=[0, 70, 1])], Hdf5FormatError, "layer 0, field 'delay'"),
    "delay count": ([_dense(neuron=CUBA, delay=[1, 2])], Hdf5FormatError, "layer 0, field 'delay'"),
    "input transform without neuron": ([_input_with_weight], NotImplementedError, "layer 0, field 'weight'"),
    "resonator bias": ([_dense(weight=COMPLEX_W, bias=np.zeros(3), neuron=RF)], NotImplementedError,
                       "layer 0, field 'bias'"),
    "real weight for a resonator": ([_dense(neuron=RF)], NotImplementedError, "layer 0, field 'weight'"),
    "complex weight for cuba": ([_dense(weight=COMPLEX_W, neuron=CUBA)], NotImplementedError,
                                "layer 0, field 'weight'"),
    "kwta form": ([_dense(neuron=CUBA, weight_rec=np.eye(3) * 4, bias_rec=np.zeros(3))], NotImplementedError,
                  "layer 0, field 'weight_rec'"),
    "affine delay": ([_dense(delay=[1, 1, 1])], NotImplementedError, "layer 0, field 'delay'"),
    "per-channel threshold": ([_dense(neuron={**CUBA, "vThMant": [1, 2, 3]})], NotImplementedError,
                              "layer 0, field 'neuron/vThMant'"),
    "no layer group": ([], Hdf5FormatError, "the file has no 'layer' group"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_raise_named_errors(case, tmp_path):
    writers, error, message = MALFORMED[case]
    path = _file(tmp_path, *writers)
    if not writers:
        with h5py.File(path, "w"):
            pass
    with pytest.raises(error) as info:
        SequentialNetwork(path)
    assert str(info.value).startswith(message), str(info.value)


def test_affine_marker(tmp_path):
    """A dense record whose threshold is the integrator marker loads as Affine(dynamics=True)."""
    affine = SequentialNetwork(_file(tmp_path, _dense(neuron={**CUBA, "vThMant": AFFINE_THRESHOLD})))
    assert type(affine.blocks[0]).__name__ == "Affine" and affine.blocks[0].dynamics


# ---- skip connections (concat records) -------------------------------------------------------------

class _SkipNet(torch.nn.Module):
    """``a = first(x); b = second(a); last(join)``: ``join`` concatenates ``a`` and ``b`` channel-wise in
    ``order`` (``'ab'`` or ``'ba'``), optionally flattened. Exported as records ``0`` (first), ``1``
    (second), ``2`` (concat listing ``layers``), ``3`` (flatten, if any) and the last."""

    def __init__(self, first, second, last, order: str, layers: list[int], flatten=None):
        super().__init__()
        self.first, self.second, self.last, self.flatten = first, second, last, flatten
        self.order, self.layers = order, layers

    def forward(self, x):
        a = self.first(x)
        b = self.second(a)
        joined = torch.cat([a, b] if self.order == "ab" else [b, a], dim=1)
        return self.last(joined if self.flatten is None else self.flatten(joined))

    def export(self, path, joined_shape) -> None:
        with h5py.File(path, "w") as f:
            layer = f.create_group("layer")
            self.first.export_hdf5(layer.create_group("0"), clip_weights=True)
            self.second.export_hdf5(layer.create_group("1"), clip_weights=True)
            records.write_concat(layer.create_group("2"), joined_shape, self.layers)
            tail = [self.last] if self.flatten is None else [self.flatten, self.last]
            for i, block in enumerate(tail, start=3):
                block.export_hdf5(layer.create_group(str(i)), clip_weights=True)


def _skip_case(case: str, rng):
    """(network, joined shape, input, Lava input, netx arguments, output offset, output unit) of a case.

    Binary input into spiking blocks: Lava's output step t is slayer's index t (parity tests). Graded
    input into sigma-delta blocks, which add no step in slayer: three synapses to the output, so Lava's
    step t + 3, in units 2^(12 + spike_exp) = 2^18 (``test_parity_layers``' sigma-delta cases). The
    ``reset_interval`` of the whole sample holds each block in reset until its input arrives, as the
    norm biases need (``test_parity``'s streams with bias).
    """
    if case == "cuba_dense":  # lava-dl's form: the list omits the previous record (netx joins it first)
        cuba = slayer.block.cuba
        first = cuba.Dense(_params("cuba", rng), 16, 8)
        second = cuba.Dense(_params("cuba", rng, norm=True), 8, 6)
        net = _SkipNet(first, second, cuba.Dense(_params("cuba", rng), 14, 5), order="ba", layers=[0])
        x = torch.from_numpy((rng.random((BATCH, 16, STEPS)) < 0.4).astype(np.float32))
        return net, (14,), x, x.numpy().astype(np.int32), dict(reset_interval=STEPS), 0, 1
    if case == "alif_conv":
        alif = slayer.block.alif
        first = alif.Conv(_params("alif", rng, per_channel=True), 2, 3, 3, padding=1, input_shape=(6, 6))
        second = alif.Conv(_params("alif", rng), 3, 2, 3, padding=1, input_shape=(6, 6), delay=True)
        net = _SkipNet(first, second, alif.Dense(_params("alif", rng), 5 * 36, 5), order="ab", layers=[0, 1],
                       flatten=alif.Flatten())
        x = torch.from_numpy((rng.random((BATCH, 2, 6, 6, STEPS)) < 0.4).astype(np.float32))
        lava_x = x.permute(0, 3, 2, 1, 4).numpy().astype(np.int32)  # N, C, H, W, T -> N, W, H, C, T
        return net, (5, 6, 6), x, lava_x, dict(input_shape=lava_x.shape[1:-1], reset_interval=STEPS), 0, 1
    assert case == "sigma_delta_dense"
    sd = slayer.block.sigma_delta
    net = _SkipNet(sd.Dense(_sd_params(rng), 12, 8), sd.Dense(_sd_params(rng, norm=True), 8, 6),
                   sd.Output(_sd_params(rng), 14, 4), order="ab", layers=[0, 1])
    unit = 1 << 12  # graded network input: x * 2^(6 + spike_exp)
    active = rng.random((BATCH, 12, STEPS)) < 0.5
    lava_x = rng.integers(-unit // 2, unit, (BATCH, 12, STEPS)) * active
    x = torch.from_numpy(lava_x / unit)
    lava_x = np.concatenate([lava_x, np.zeros((BATCH, 12, 3), lava_x.dtype)], axis=-1)  # room for the offset
    return net, (14,), x, lava_x, dict(input_message_bits=16, reset_interval=STEPS + 3), 3, 2.0 ** 18


@pytest.mark.parametrize("case", ["cuba_dense", "alif_conv", "sigma_delta_dense"])
def test_skip_connection_matches_original_and_lava(case, tmp_path):
    """A concat record: the loaded network equals the original module and ``netx.simulate`` (at the
    deployment's offset) exactly, and export -> load -> export is byte-identical."""
    from lava_dl import netx  # the one Lava-side reference of this file

    rng = np.random.default_rng(40 + len(case))
    torch.manual_seed(4)
    net, joined, x, lava_x, netx_kwargs, offset, unit = _skip_case(case, rng)
    _randomise([net.first, net.second, net.last], rng, (2, 4))
    net.eval()
    with torch.no_grad():
        expected = net(x)
    assert expected.abs().sum() > 0  # the comparisons are not vacuous
    first, second = tmp_path / "a.net", tmp_path / "b.net"
    net.export(first, joined)

    loaded = SequentialNetwork(first).eval()
    assert type(loaded.blocks[2]).__name__ == "Concat" and loaded.blocks[2].layers == tuple(net.layers)
    with torch.no_grad():
        got = loaded(x)
    assert got.dtype == expected.dtype and torch.equal(got, expected)
    with torch.no_grad():
        _, counts = SequentialNetwork(first, count_log=True).eval()(x)
    assert counts.shape == (1, len(loaded.blocks))

    lava = netx.simulate(str(first), lava_x, num_steps=lava_x.shape[-1], num_workers=1, **netx_kwargs)
    assert np.array_equal(lava[..., offset:], expected.numpy() * unit)

    loaded.export_hdf5(second)
    _assert_same_files(first, second)

    # fine-tuning: the gradient reaches the first block along both paths into the concat
    loaded.train()
    out = loaded(x)
    (out.double() - 0.5).square().mean().backward()
    grad = loaded.blocks[0].synapse.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_skip_connection_chain_after_join(tmp_path):
    """Several concats, one joining a concat: each kept output reaches every concat that lists it."""
    rng = np.random.default_rng(8)
    cuba = slayer.block.cuba
    blocks = [cuba.Dense(_params("cuba", rng), 10, 6), cuba.Dense(_params("cuba", rng), 6, 5),
              cuba.Dense(_params("cuba", rng), 11, 4), cuba.Dense(_params("cuba", rng), 15, 3)]
    _randomise(blocks, rng, (2, 4))
    x = torch.from_numpy((rng.random((BATCH, 10, STEPS)) < 0.5).astype(np.float32))
    with torch.no_grad():
        a = blocks[0](x)
        b = blocks[1](a)
        ab = torch.cat([a, b], dim=1)
        c = blocks[2](ab)
        expected = blocks[3](torch.cat([ab, c], dim=1))
    path = tmp_path / "a.net"
    with h5py.File(path, "w") as f:  # 0 a, 1 b, 2 concat(0, 1), 3 c, 4 concat(2, 3), 5 out
        layer = f.create_group("layer")
        blocks[0].export_hdf5(layer.create_group("0"), clip_weights=True)
        blocks[1].export_hdf5(layer.create_group("1"), clip_weights=True)
        records.write_concat(layer.create_group("2"), (11,), [0, 1])
        blocks[2].export_hdf5(layer.create_group("3"), clip_weights=True)
        records.write_concat(layer.create_group("4"), (15, 1, 1), [2, 3])
        blocks[3].export_hdf5(layer.create_group("5"), clip_weights=True)
    loaded = SequentialNetwork(path).eval()
    with torch.no_grad():
        got = loaded(x)
    assert expected.sum() > 0 and torch.equal(got, expected)
    loaded.export_hdf5(tmp_path / "b.net")
    _assert_same_files(path, tmp_path / "b.net")


def _concat(shape, layers):
    return lambda g: records.write_concat(g, shape, layers)


W3 = np.full((3, 3), 2.0, np.float32)

#: case: (records, message start); each file must raise Hdf5FormatError.
BAD_CONCATS = {
    "first record": ([_concat((3,), [0])], "layer 0, field 'type'"),
    "later layer": ([_dense(neuron=CUBA), _dense(weight=W3, neuron=CUBA), _concat((6,), [0, 3])],
                    "layer 2, field 'layers'"),
    "itself": ([_dense(neuron=CUBA), _dense(weight=W3, neuron=CUBA), _concat((6,), [2])],
               "layer 2, field 'layers'"),
    "negative index": ([_dense(neuron=CUBA), _dense(weight=W3, neuron=CUBA), _concat((6,), [-1])],
                       "layer 2, field 'layers'"),
    "input without neuron": ([lambda g: records.write_input(g, (4,)), _dense(neuron=CUBA),
                              _concat((7,), [0])], "layer 2, field 'layers'"),
    "after a flatten": ([_conv((2, 2, 2), 1), lambda g: records.write_flatten(g, (8, 1, 1)),
                         _concat((8,), [0])], "layer 2, field 'type'"),
    "dense with conv": ([lambda g: records.write_input(g, (1, 2, 2), neuron=CUBA),
                         lambda g: records.write_flatten(g, (4, 1, 1)), _dense(neuron=CUBA),
                         _concat((7,), [0])], "layer 3, field 'layers'"),
    "different sizes": ([lambda g: records.write_input(g, (1, 4, 4), neuron=CUBA), _conv((2, 2, 2), 1),
                         _concat((3, 2, 2), [0])], "layer 2, field 'layers'"),
    "wrong shape": ([_dense(neuron=CUBA), _dense(weight=W3, neuron=CUBA), _concat((5,), [0, 1])],
                    "layer 2, field 'shape'"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONCATS))
def test_bad_concat_records_raise_named_errors(case, tmp_path):
    writers, message = BAD_CONCATS[case]
    with pytest.raises(Hdf5FormatError) as info:
        SequentialNetwork(_file(tmp_path, *writers))
    assert str(info.value).startswith(message), str(info.value)
