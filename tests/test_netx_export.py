"""``export_hdf5`` of the netx blocks and of ``Network``: a loaded network saved back to hdf5.

The round trip ``Network(file).export_hdf5(new)`` then ``Network(new)`` must run exactly as the
original (``netx.simulate`` outputs compared with ``np.array_equal``, with and without per-sample
resets), and the records must hold the same fields and values; Vars changed after loading are
what gets written. Files: lava-dl 0.6's own files (``tests/fixtures/lava_dl_0.6`` and the shared
fixtures in ``../shared/fixtures/lava_dl_0.6``; unstamped: lava-dl's reset and delay semantics)
and files written by lava_dl's slayer blocks (stamped ``producer = 'lava_dl'``).
"""

from __future__ import annotations

import pathlib
import shutil
import warnings

import h5py
import numpy as np
import pytest

import lava_dl  # noqa: F401  (installs the lava-nc Python 3.11 fix before Lava is imported)
from lava_dl import netx
from lava_dl.core import records
from lava_dl.netx.export import NetxExportError, NetxExportUnsupportedError, neuron_fields

REPO = pathlib.Path(__file__).resolve().parents[1]
LOCAL = REPO / "tests" / "fixtures" / "lava_dl_0.6"
SHARED = REPO.parent / "shared" / "fixtures" / "lava_dl_0.6"
PRODUCER = records.PRODUCER[0]
#: neuron fields netx only checks (lava-dl's legacy fields; a Delta input's activation, a Sigma
#: output's threshold and activation): not written back.
IGNORED_NEURON_FIELDS = {"theta", "wgtExp", "weight_exp", "scaleRho", "tauRho"}


def _need(path: pathlib.Path) -> None:
    if not path.exists():
        pytest.skip(f"fixture {path} not found")


def _cases():
    try:
        from scripts.make_lava_dl_fixtures import CASES
    except ImportError as err:  # pragma: no cover - the script is part of the repository
        pytest.skip(f"scripts.make_lava_dl_fixtures not importable: {err}")
    return CASES


def _kwargs(name: str) -> dict:
    """``input_shape`` for a fixture whose first record is a conv without input record."""
    case = _cases().get(name)
    return {"input_shape": case.input_shape[::-1]} if case and len(case.input_shape) == 3 else {}


def _inputs(net, graded: bool, steps: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (2, *net.inp.shape, steps)
    if graded:
        return rng.integers(-300, 300, shape)
    return (rng.random(shape) < 0.3).astype(np.int32)


def _records(path) -> list[dict]:
    """``[{field: value}]`` of the layer records (neuron fields as ``neuron/<key>``)."""
    out = []
    with h5py.File(path, "r") as f:
        for i in range(len(f["layer"])):
            fields: dict = {}
            f["layer"][str(i)].visititems(
                lambda key, obj, fields=fields: fields.__setitem__(key, obj[()])
                if isinstance(obj, h5py.Dataset) else None)
            out.append(fields)
    return out


def _text(value) -> str:
    return records.decode_str(value)


def _assert_same_records(original, exported) -> None:
    """The exported records hold the original's meaningful fields with the same values (scalars and
    per-channel arrays compared broadcast; legacy ``LOIHI`` = ``CUBA``; the input transform, which netx
    never applies, may be added)."""
    ours, theirs = _records(exported), _records(original)
    added_input = _text(ours[0]["type"]) == "input" and "neuron/type" not in ours[0]
    if added_input and _text(theirs[0]["type"]) != "input":
        ours = ours[1:]  # the input shape netx needs when the first block is not an input block
    assert [_text(r["type"]) for r in ours] == [_text(r["type"]) for r in theirs]
    for i, (mine, ref) in enumerate(zip(ours, theirs)):
        kind = _text(ref["type"])
        role = ("output" if "neuron/sigma_output" in ref else "input" if kind == "input" else "hidden")
        for key, value in ref.items():
            name = key.split("/")[-1]
            if name in IGNORED_NEURON_FIELDS or key in ("type",):
                continue
            if role == "input" and key == "neuron/activation" or role == "output" and key in (
                    "neuron/vThMant", "neuron/activation"):
                continue
            assert key in mine, f"layer {i}: {key} not written"
            if key == "neuron/type":
                assert _text(mine[key]) == {"LOIHI": "CUBA"}.get(_text(value), _text(value)), f"layer {i}"
            elif np.asarray(value).dtype.kind in "OSU":
                assert _text(mine[key]) == _text(value), f"layer {i}: {key}"
            elif key == "shape" and kind in ("dense", "dense_rec", "flatten"):
                assert np.prod(mine[key]) == np.prod(value), f"layer {i}: {key}"
            else:
                ref_arr = np.asarray(value, dtype=np.float64)
                if key.startswith("weight") and ref_arr.ndim == 5:  # legacy trailing unit axis
                    ref_arr = ref_arr[..., 0]
                got = np.asarray(mine[key], dtype=np.float64)
                if got.shape != ref_arr.shape:
                    got = np.broadcast_to(got, np.broadcast_shapes(got.shape, ref_arr.shape))
                    ref_arr = np.broadcast_to(ref_arr, got.shape)
                np.testing.assert_array_equal(got, ref_arr, err_msg=f"layer {i}: {key}")
        extra = set(mine) - set(ref)
        allowed = {"neuron/gradedSpike", "neuron/refDelay"}
        if kind == "input":
            allowed |= {"weight", "bias"}
        assert extra <= allowed, f"layer {i}: unexpected fields {sorted(extra - allowed)}"


def _round_trip(path, tmp_path, graded: bool, steps: int = 12, **kwargs) -> tuple:
    net = netx.hdf5.Network(str(path), **kwargs)
    new = tmp_path / "exported.net"
    net.export_hdf5(new)
    x = _inputs(net, graded, steps)
    load = {k: v for k, v in kwargs.items() if k != "input_shape"}
    for reset in ({}, {"reset_interval": 5}):
        a = netx.simulate(str(path), x, num_workers=1, **kwargs, **reset)
        b = netx.simulate(str(new), x, num_workers=1, **load, **reset)
        assert np.array_equal(a, b), f"{path.name}: outputs differ after the round trip ({reset})"
    return net, new


# --------------------------------------------------------------------------
# lava-dl 0.6 files (unstamped): every family of the repository's fixtures, and the shared ones
# --------------------------------------------------------------------------

LOCAL_NAMES = ["cuba_dense", "cuba_conv", "cuba_pool", "cuba_convt", "cuba_unpool", "cuba_delay",
               "cuba_recurrent", "cuba_affine", "cuba_affine_nodyn", "alif", "rf", "rf_iz", "adrf",
               "adrf_iz", "sdnn_dense", "sdnn_cum_error"]


@pytest.mark.parametrize("name", LOCAL_NAMES)
def test_lava_dl_file_round_trip(name, tmp_path):
    path = LOCAL / f"{name}.net"
    _need(path)
    net, new = _round_trip(path, tmp_path, graded=name.startswith("sdnn"), **_kwargs(name))
    _assert_same_records(path, new)
    with h5py.File(new, "r") as f:
        assert PRODUCER not in f.attrs  # lava-dl's semantics kept: no lava_dl stamp
    assert netx.hdf5.Network(str(new)).reset_mode == net.reset_mode == "lava-dl"
    assert netx.hdf5.Network(str(new)).delay_mode == net.delay_mode == "lava-dl"


def test_lava_dl_delays_stay_on_the_synapses(tmp_path):
    """A lava-dl file's dense delays run on the input synapses (``DelayDense``); the export writes
    them per output neuron and without stamp, so they reload there."""
    path = LOCAL / "cuba_delay.net"
    _need(path)
    net, new = _round_trip(path, tmp_path, graded=False)
    reloaded = netx.hdf5.Network(str(new))
    for a, b in zip(net.layers, reloaded.layers):
        assert type(a.synapse).__name__ == type(b.synapse).__name__ == "DelayDense"
        np.testing.assert_array_equal(a.synapse.delays.init, b.synapse.delays.init)
    dense = [r for r in _records(new) if _text(r["type"]) == "dense"]
    assert dense[0]["delay"].shape == (8,) and dense[1]["delay"].shape == (5,)


@pytest.mark.parametrize("name", ["tiny.net", "mnist.net", "oxford/Trained/network.net"])
def test_shared_fixture_round_trip(name, tmp_path):
    _need(SHARED)
    path = SHARED / name
    _need(path)
    _round_trip(path, tmp_path, graded=False)
    _assert_same_records(path, tmp_path / "exported.net")


def test_mnist_keeps_integrator_and_simulation_group(tmp_path):
    """mnist's last record has no neuron group (lava-dl's integrator readout): written so again; the
    hidden layers' spikes (``num_layers=3``) are equal; lava-dl's ``simulation`` group is copied."""
    path = SHARED / "mnist.net"
    _need(path)
    net, new = _round_trip(path, tmp_path, graded=False)
    last = _records(new)[-1]
    assert not any(k.startswith("neuron") for k in last)
    x = _inputs(net, False, 16, seed=3) * 3000  # input currents that make the input neurons fire
    a = netx.simulate(str(path), x, num_workers=1, num_layers=3)
    assert a.any()
    assert np.array_equal(a, netx.simulate(str(new), x, num_workers=1, num_layers=3))
    with h5py.File(new, "r") as f, h5py.File(path, "r") as g:
        assert f["simulation/tSample"][()] == g["simulation/tSample"][()] == 16


@pytest.mark.parametrize("kwargs", [{}, {"sparse_fc_layer": True}])
def test_pilotnet_sdnn_round_trip_matches_ground_truth(kwargs, tmp_path):
    d = SHARED / "pilotnet_sdnn"
    _need(d)
    net = netx.hdf5.Network(str(d / "network.net"), **kwargs)
    new = tmp_path / "pilotnet.net"
    net.export_hdf5(new)
    frame, gt = np.load(d / "input.npy"), np.load(d / "output.npy")
    x = np.repeat(frame, gt.shape[-1], axis=-1)
    out = netx.simulate(str(new), x, **kwargs)
    np.testing.assert_array_equal(out, gt)
    _assert_same_records(d / "network.net", new)


def test_spike_exp_is_a_load_option(tmp_path):
    """``spike_exp`` is not in the file: the export warns, and the file loaded with the same option runs
    the same."""
    d = SHARED / "pilotnet_sdnn"
    _need(d)
    net = netx.hdf5.Network(str(d / "network.net"), spike_exp=0)
    with pytest.warns(UserWarning, match="spike_exp=0"):
        net.export_hdf5(tmp_path / "p.net")
    x = np.repeat(np.load(d / "input.npy"), 5, axis=-1)
    assert np.array_equal(netx.simulate(str(d / "network.net"), x, spike_exp=0),
                          netx.simulate(str(tmp_path / "p.net"), x, spike_exp=0))


# --------------------------------------------------------------------------
# Files written by lava_dl's slayer blocks (stamped)
# --------------------------------------------------------------------------

def _slayer_file(name: str, path: pathlib.Path) -> None:
    """The fixture network built with lava_dl's slayer blocks (lava-dl's parameters), exported."""
    import torch

    from lava_dl import slayer

    case = _cases()[name]
    torch.manual_seed(case.seed)
    net = case.build(slayer).eval()
    with np.load(LOCAL / f"{name}.npz") as npz:
        state = {k[len("param/"):]: torch.from_numpy(npz[k]) for k in npz.files if k.startswith("param/")}
    with torch.no_grad():
        net(torch.zeros(2, *case.input_shape, case.steps))
    net.load_state_dict(state)
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(net):
            block.export_hdf5(layer.create_group(str(i)))


SLAYER_NAMES = ["cuba_conv", "cuba_pool", "cuba_delay", "cuba_recurrent", "cuba_affine_nodyn", "alif", "rf",
                "sdnn_dense", "sdnn_cum_error"]


@pytest.mark.parametrize("name", SLAYER_NAMES)
def test_slayer_file_round_trip(name, tmp_path):
    _need(LOCAL / f"{name}.npz")
    path = tmp_path / "slayer.net"
    _slayer_file(name, path)
    net, new = _round_trip(path, tmp_path, graded=name.startswith("sdnn"), **_kwargs(name))
    _assert_same_records(path, new)
    with h5py.File(new, "r") as f:
        assert f.attrs[PRODUCER] == records.PRODUCER[1]
    reloaded = netx.hdf5.Network(str(new))
    modes = ("slayer", "axonal")
    assert (reloaded.reset_mode, reloaded.delay_mode) == (net.reset_mode, net.delay_mode) == modes
    if name == "cuba_delay":  # axonal delay lines, per output neuron
        for a, b in zip(net.layers, reloaded.layers):
            np.testing.assert_array_equal(a.axon.delays.init, b.axon.delays.init)
    if name == "sdnn_cum_error":
        assert any("neuron/cumError" in r for r in _records(new))


def test_concat_and_average_records(tmp_path):
    """Skip connections and group averages: the concat lists the joined record indices, the average its
    group count, and the network runs the same."""
    rng = np.random.default_rng(5)
    cuba = {"type": "CUBA", "iDecay": 1024, "vDecay": 512, "vThMant": 20, "refDelay": 1, "gradedSpike": False}
    path = tmp_path / "skip.net"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        records.write_input(layer.create_group("0"), (8,), neuron=cuba)
        records.write_dense(layer.create_group("1"), (6,), rng.integers(-60, 120, (6, 8)), neuron=cuba)
        records.write_dense(layer.create_group("2"), (5,), rng.integers(-60, 120, (5, 6)), neuron=cuba)
        records.write_concat(layer.create_group("3"), (11,), [1, 2])
        records.write_dense(layer.create_group("4"), (4,), rng.integers(-60, 120, (4, 11)), neuron=cuba)
        records.write_average(layer.create_group("5"), 2)
    _round_trip(path, tmp_path, graded=False, steps=20)
    new = _records(tmp_path / "exported.net")
    assert list(new[3]["layers"]) == [1, 2] and list(new[3]["shape"]) == [11]
    assert list(new[5]["shape"]) == [2, 1, 1]
    _assert_same_records(path, tmp_path / "exported.net")


# --------------------------------------------------------------------------
# Changed Vars are what gets written
# --------------------------------------------------------------------------

def test_changed_vars_are_written(tmp_path):
    """Weights, threshold, decay and bias changed through the Vars' ``init`` after loading: the export
    equals the original file edited the same way (records and outputs)."""
    path = LOCAL / "cuba_dense.net"
    _need(path)
    net = netx.hdf5.Network(str(path))
    dense, second = net.layers
    w = dense.synapse.weights.init.copy()
    w[:3] = 0  # keeps the sign mode and the weight bits: hdf5 weight rows 0..2 become 0
    dense.synapse.weights.init = w
    dense.neuron.vth.init = dense.neuron.vth.init + 7
    second.neuron.dv.init = np.full(second.shape, 100)
    bias = dense.neuron.bias_mant.init.copy()
    bias[1] += 5
    dense.neuron.bias_mant.init = bias
    new = tmp_path / "changed.net"
    net.export_hdf5(new)

    expected = tmp_path / "edited.net"
    shutil.copy(path, expected)
    with h5py.File(expected, "r+") as f:
        rec = f["layer/0"]
        weight = rec["weight"][()]
        weight[:3] = 0
        rec["weight"][...] = weight
        rec["neuron/vThMant"][...] = rec["neuron/vThMant"][()] + 7
        rec["bias"][1] = rec["bias"][1] + 5
        del f["layer/1/neuron/vDecay"]
        f["layer/1/neuron"].create_dataset("vDecay", data=np.int64(100))
    _assert_same_records(expected, new)
    x = _inputs(net, False, 20)
    a = netx.simulate(str(expected), x, num_workers=1)
    assert np.array_equal(a, netx.simulate(str(new), x, num_workers=1))
    assert not np.array_equal(a, netx.simulate(str(path), x, num_workers=1))


def test_values_of_a_paused_lava_run_are_written(tmp_path):
    """After a (small) Lava run the Vars are read from the runtime: a threshold set with ``Var.set``
    during the pause is written, and the exported file runs as the changed network."""
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    path = LOCAL / "cuba_dense.net"
    _need(path)
    net = netx.hdf5.Network(str(path))
    x = _inputs(net, False, 10, seed=2)[0]
    source, sink = Source(data=x), Sink(shape=net.out.shape, buffer=10)
    source.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi1SimCfg

    net.run(condition=RunSteps(num_steps=1), run_cfg=Loihi1SimCfg(select_tag="fixed_pt"))
    try:
        net.layers[1].neuron.vth.set(np.full(net.layers[1].shape, 3))
        new = tmp_path / "paused.net"
        net.export_hdf5(new)
    finally:
        net.stop()
    written = _records(new)  # 0: the input shape, 1 and 2: the two dense blocks
    assert int(written[2]["neuron/vThMant"]) == 3 and int(written[1]["neuron/vThMant"]) != 3
    assert net.layers[1].neuron.vth.init.max() != 3  # the init was not what got written


# --------------------------------------------------------------------------
# Single blocks
# --------------------------------------------------------------------------

def test_block_export_writes_the_block_record(tmp_path):
    """``block.export_hdf5(group)`` of Input, Dense and Conv blocks writes the record netx read."""
    path = SHARED / "pilotnet_sdnn" / "network.net"
    _need(path)
    net = netx.hdf5.Network(str(path))
    single = tmp_path / "blocks.net"
    with h5py.File(single, "w") as f:
        layer = f.create_group("layer")
        net.layers[0].export_hdf5(layer.create_group("0"))  # Input (Delta)
        net.layers[1].export_hdf5(layer.create_group("1"))  # Conv (SigmaDelta)
    theirs, ours = _records(path), _records(single)
    assert _text(ours[0]["type"]) == "input" and _text(ours[1]["type"]) == "conv"
    np.testing.assert_array_equal(ours[1]["weight"], theirs[1]["weight"])
    np.testing.assert_array_equal(ours[1]["bias"], theirs[1]["bias"])
    assert ours[1]["neuron/vThMant"] == theirs[1]["neuron/vThMant"]
    assert _text(ours[1]["neuron/activation"]) == "relu"
    with h5py.File(single, "w") as f:
        net.layers[5].export_hdf5(f.create_group("dense"))  # Dense after the flatten
        np.testing.assert_array_equal(f["dense/weight"][()], theirs[6]["weight"])
        assert f["dense/inFeatures"][()] == 2560


def test_complex_blocks(tmp_path):
    """ComplexInput and ComplexDense (lava-dl's resonator blocks) write complex weights and the RF
    neuron's fields; the file loads back as the same network."""
    from lava_dl.core.resonator import RF
    from lava_dl.netx.utils import neuron_process_for
    from lava_dl.proc.netx_blocks import ComplexDense, ComplexInput

    params = {"neuron_proc": neuron_process_for(RF), "sin_decay": 300, "cos_decay": 3900, "vth": 40}
    rng = np.random.default_rng(1)
    real, imag = rng.integers(-100, 100, (5, 6)), rng.integers(-100, 100, (5, 6))
    real[0, 0], imag[0, 0] = 41, -41  # odd: 8 weight bits of a mixed-sign matrix drop the LSB
    inp = ComplexInput(shape=(6,), neuron_params=params, transform={"weight": 64, "bias": 0})
    dense = ComplexDense(shape=(5,), neuron_params={**params, "vth": np.arange(5) + 10}, weight_real=real,
                         weight_imag=imag)
    path = tmp_path / "complex.net"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        inp.export_hdf5(layer.create_group("0"))
        dense.export_hdf5(layer.create_group("1"))
    rec = _records(path)
    # the weights the synapses apply (Loihi's truncation of lava-dl's 8-bit weight=) are written
    np.testing.assert_array_equal(rec[1]["weight/real"], (real >> 1) << 1)
    np.testing.assert_array_equal(rec[1]["weight/imag"], (imag >> 1) << 1)
    assert rec[1]["weight/real"][0, 0] == 40 and rec[1]["weight/imag"][0, 0] == -42
    np.testing.assert_array_equal(rec[1]["neuron/vThMant"], np.arange(5) + 10)
    assert _text(rec[0]["neuron/type"]) == "RF_PHASE" and rec[0]["neuron/cosDecay"] == 3900
    reloaded = netx.hdf5.Network(str(path))
    np.testing.assert_array_equal(reloaded.layers[1].neuron.vth.init, np.arange(5) + 10)
    again, fields = neuron_fields(reloaded.layers[1]), neuron_fields(dense)
    assert again.keys() == fields.keys()
    assert all(np.array_equal(again[k], fields[k]) for k in fields)


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

def test_unsupported_neuron_process_names_block_and_class(tmp_path):
    from lava.proc.lif.process import LIF

    from lava_dl.proc.netx_blocks import Dense

    block = Dense(shape=(3,), neuron_params={"neuron_proc": LIF, "du": 0, "dv": 0, "vth": 10},
                  weight=np.ones((3, 4)))
    with h5py.File(tmp_path / "x.net", "w") as f, pytest.raises(NetxExportUnsupportedError) as err:
        block.export_hdf5(f.create_group("0"))
    assert "LIF" in str(err.value) and "Dense block" in str(err.value) and block.name in str(err.value)
    assert isinstance(err.value, NotImplementedError)


def test_concat_block_alone_and_bad_values(tmp_path):
    path = LOCAL / "cuba_conv.net"
    _need(path)
    net = netx.hdf5.Network(str(path), **_kwargs("cuba_conv"))
    conv = net.layers[0]
    with h5py.File(tmp_path / "x.net", "w") as f:
        # a threshold that varies inside a channel has no hdf5 form
        vth = conv.neuron.vth.init.copy()
        vth[0, 0, 0] += 1
        conv.neuron.vth.init = vth
        with pytest.raises(NetxExportError, match="vary inside a channel"):
            conv.export_hdf5(f.create_group("a"))
        conv.neuron.vth.init = np.broadcast_to(vth[1:2, 1:2], vth.shape).copy()
        # weights beyond the synaptic range in hdf5 units
        conv.synapse.weight_exp.init = 3
        with pytest.raises(NetxExportError, match="outside the synaptic range"):
            conv.export_hdf5(f.create_group("b"))
    with pytest.raises(NetxExportError, match="loaded from this file"):
        net.export_hdf5(path)

    from lava_dl.proc.netx_blocks import Concat

    concat = Concat(sources=[net.layers[0].out, net.layers[0].out], shapes=[conv.shape, conv.shape],
                    align=[0, 0])
    with h5py.File(tmp_path / "y.net", "w") as f, pytest.raises(NetxExportUnsupportedError,
                                                                   match="Network.export_hdf5"):
        concat.export_hdf5(f.create_group("0"))


def test_written_file_is_checked_by_the_reader(tmp_path):
    """An exported file passes netx's validation and the training-side reader (slayer's auto network)."""
    path = LOCAL / "alif.net"
    _need(path)
    net = netx.hdf5.Network(str(path), **_kwargs("alif"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.export_hdf5(tmp_path / "a.net")
    import torch

    from lava_dl.slayer.auto import SequentialNetwork

    case = _cases()["alif"]
    with torch.no_grad():
        y = SequentialNetwork(str(tmp_path / "a.net")).eval()(torch.zeros(1, *case.input_shape, 4))
    assert y.shape[-1] == 4
