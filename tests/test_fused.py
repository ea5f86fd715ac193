"""A whole netx network as one Lava process (``fused=True``) and outside Lava (``netx.simulate``).

The per-layer Lava graph is the reference: the fused process must record the same output
spikes/messages at the same steps and leave the same layer states (read through the layers'
own Vars), for spiking and sigma-delta networks, with recurrent, KWTA, delay, pool and concat
layers. ``simulate`` is also compared with every Lava run of ``test_lava_dl_files`` and
``test_parity_layers`` (lava-dl's recorded outputs and slayer's).
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi1SimCfg
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source

from lava_dl import netx, runtime, slayer
from tests.lava_run import run_and_read
from tests.test_parity import FAMILIES, _active_output, _export, _randomise
from tests.test_parity_layers import _network, _randomise_delays

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "lava_dl_0.6"
OWN = pathlib.Path(__file__).resolve().parent / "fixtures" / "lava_dl_0.6"
STEPS = 24


def _run(path, data, steps, fused, state_names=(), select_tag="fixed_pt", **kwargs):
    """Sink output and the named states of every neuron layer after ``steps`` steps."""
    net = netx.hdf5.Network(net_config=str(path), fused=fused, **kwargs)
    source = Source(data=data)
    sink = Sink(shape=net.out.shape, buffer=steps)
    source.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    reads = [sink.data] + [getattr(layer.neuron, name) for layer in net.layers if hasattr(layer, "neuron")
                           for name in state_names if hasattr(layer.neuron, name)]
    assert len(reads) > len(state_names) or not state_names
    return run_and_read(net, steps, reads, Loihi1SimCfg(select_tag=select_tag))


def _assert_same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert np.array_equal(x, y), f"read {i} differs"


def _exported(kind: str, family: str, tmp_path) -> tuple[pathlib.Path, np.ndarray, dict]:
    """A random network of ``kind`` (see tests/test_parity_layers.py) exported, and an input."""
    rng = np.random.default_rng(7 + len(kind))
    torch.manual_seed(3)
    net, in_shape = _network(kind, family, rng)
    _randomise(net, rng, with_norm=False)
    _randomise_delays(net, rng)
    net.eval()
    x = (rng.random((*in_shape, STEPS)) < 0.4).astype(np.float32)
    _active_output(net, torch.from_numpy(x[None]))
    path = tmp_path / f"{kind}.net"
    _export(net, path)
    data = x if x.ndim == 2 else x.transpose(2, 1, 0, 3)
    data = np.concatenate([data, data[..., ::-1]], axis=-1)  # two samples, reset in between
    kwargs = {"reset_interval": STEPS}
    if x.ndim == 4:
        kwargs["input_shape"] = data.shape[:-1]
    return path, data, kwargs


@pytest.mark.parametrize("kind, family", [("recurrent", "alif"), ("kwta", "cuba"), ("delay_conv", "rf_iz"),
                                          ("pool", "adrf_iz"), ("delay_dense", "cuba"), ("average", "rf")])
def test_fused_equals_layer_graph(kind, family, tmp_path):
    """Output and every neuron state: the fused process equals the per-layer graph."""
    path, data, kwargs = _exported(kind, family, tmp_path)
    names = getattr(slayer.neuron, family).Neuron.spec.state_names
    layered = _run(path, data, 2 * STEPS, False, names, **kwargs)
    fused = _run(path, data, 2 * STEPS, True, names, **kwargs)
    assert layered[0].any(), "degenerate network: no output"
    _assert_same(layered, fused)
    assert np.array_equal(netx.simulate(path, data, **kwargs), layered[0])
    # a batch stepped together (every model handling the batch axis) equals sample by sample
    other = np.random.default_rng(1).permutation(data, axis=-1)
    batch = netx.simulate(path, np.stack([data, other, data]), num_workers=1, **kwargs)
    assert np.array_equal(batch[0], layered[0]) and np.array_equal(batch[2], layered[0])
    assert np.array_equal(batch[1], netx.simulate(path, other, **kwargs))


def test_fused_skip_connection_and_float_models(tmp_path):
    """A concat record (skip connection) fused, with the fixed_pt and the floating_pt models."""
    from tests.test_parity_layers import _Skip

    rng = np.random.default_rng(5)
    blocks = slayer.block.cuba
    params = dict(threshold=0.5, current_decay=0.25, voltage_decay=0.1)
    first, second = blocks.Dense(params, 12, 8), blocks.Dense(params, 8, 6)
    net = _Skip(first, second, blocks.Dense(params, 14, 5))
    _randomise(net.children(), rng, with_norm=False)
    with torch.no_grad():
        for block in (first, second, net.last):
            block.synapse.weight.mul_(2)
    path = tmp_path / "skip.net"
    net.export(path, (14,))
    data = (rng.random((12, STEPS)) < 0.5).astype(float)
    for tag in ("fixed_pt", "floating_pt"):
        layered = _run(path, data, STEPS, False, ("u", "v"), select_tag=tag)
        fused = _run(path, data, STEPS, True, ("u", "v"), select_tag=tag)
        assert layered[0].any()
        _assert_same(layered, fused)
        assert np.array_equal(netx.simulate(path, data, select_tag=tag), layered[0])


@pytest.mark.skipif(not (SHARED / "pilotnet_sdnn").is_dir(), reason="shared fixtures absent")
@pytest.mark.parametrize("sparse", [False, True])
def test_fused_pilotnet_sdnn(sparse):
    """lava-dl's recorded PilotNet output, fused (sparse: lava_dl's CSR synapses inside), and its
    states; simulate gives the same."""
    d = SHARED / "pilotnet_sdnn"
    frame = np.load(d / "input.npy")
    gt = np.load(d / "output.npy")
    steps = gt.shape[-1]
    data = np.repeat(frame, steps, axis=-1).astype(np.int32)
    fused = _run(d / "network.net", data, steps, True, ("sigma", "act", "residue"), sparse_fc_layer=sparse)
    assert np.array_equal(fused[0], gt)
    if not sparse:
        layered = _run(d / "network.net", data, steps, False, ("sigma", "act", "residue"))
        _assert_same(layered, fused)
    assert np.array_equal(netx.simulate(d / "network.net", data, sparse_fc_layer=sparse), gt)
    # batched: the two samples stepped together
    twice = netx.simulate(d / "network.net", np.stack([data, data]), num_workers=1, sparse_fc_layer=sparse)
    assert np.array_equal(twice[0], gt) and np.array_equal(twice[1], gt)


def test_fused_var_set_reaches_the_layer(tmp_path):
    """``set`` on a layer Var of a fused network changes what that layer computes (lava-dl's
    tutorials drive an input layer through its bias), exactly as in the per-layer graph."""
    path, data, kwargs = _exported("delay_dense", "cuba", tmp_path)
    outs = []
    for fused in (False, True):
        net = netx.hdf5.Network(net_config=str(path), fused=fused, **kwargs)
        source = Source(data=data)
        sink = Sink(shape=net.out.shape, buffer=4 * STEPS)
        source.s_out.connect(net.inp)
        net.out.connect(sink.a_in)
        cfg = Loihi1SimCfg(select_tag="fixed_pt")
        try:
            net.run(condition=RunSteps(num_steps=2 * STEPS), run_cfg=cfg)
            bias = net.layers[0].neuron.bias_mant
            bias.set(np.full(bias.shape, 3000))
            net.run(condition=RunSteps(num_steps=2 * STEPS), run_cfg=cfg)
            outs.append((sink.data.get(), bias.get(), net.layers[0].neuron.v.get()))
        finally:
            net.stop()
    assert np.all(outs[1][1] == 3000)
    _assert_same(outs[0], outs[1])


def test_fused_network_rejects_outside_connections(tmp_path):
    """A probe on a layer of a fused network would record nothing: refused at compile time."""
    path, data, kwargs = _exported("delay_dense", "cuba", tmp_path)
    net = netx.hdf5.Network(net_config=str(path), fused=True, **kwargs)
    probe = Sink(shape=net.layers[0].out.shape, buffer=4)
    net.layers[0].out.connect(probe.a_in)
    with pytest.raises(NotImplementedError, match="outside the fused network"):
        net.compile(Loihi1SimCfg(select_tag="fixed_pt"))


def test_monitor_probe_on_a_layer(tmp_path):
    """A Monitor (a RefPort) on a layer's state records it in the per-layer graph; a fused network
    cannot serve one: refused at compile time, naming what to do instead."""
    from lava.proc.monitor.process import Monitor

    path, data, kwargs = _exported("delay_dense", "cuba", tmp_path)
    for fused in (False, True):
        net = netx.hdf5.Network(net_config=str(path), fused=fused, **kwargs)
        Source(data=data).s_out.connect(net.inp)
        monitor = Monitor()
        voltage = net.layers[0].neuron.v
        monitor.probe(voltage, STEPS)
        with net:
            if fused:
                with pytest.raises(NotImplementedError, match="RefPort.*fused=False"):
                    net.run(condition=RunSteps(num_steps=STEPS), run_cfg=Loihi1SimCfg(select_tag="fixed_pt"))
                continue
            net.run(condition=RunSteps(num_steps=STEPS), run_cfg=Loihi1SimCfg(select_tag="fixed_pt"))
            recorded = monitor.get_data()[voltage.process.name][voltage.name]
            assert recorded.shape == (STEPS, *voltage.shape) and recorded.any()
            assert np.array_equal(recorded[-1], voltage.get())


def test_simulate_batch_in_parallel(tmp_path, monkeypatch):
    """A batch: each sample as its own fresh run; in worker processes or here, the same."""
    path, data, kwargs = _exported("recurrent", "cuba", tmp_path)
    rng = np.random.default_rng(11)
    batch = (rng.random((5, *data.shape)) < 0.4).astype(np.float32)
    together = netx.simulate(path, batch, num_workers=2, **kwargs)
    alone = np.stack([netx.simulate(path, sample, num_workers=1, **kwargs) for sample in batch])
    out_shape = tuple(netx.hdf5.Network(net_config=str(path), **kwargs).out.shape)
    assert together.shape == (5, *out_shape, 2 * STEPS)
    assert together.dtype == np.int32
    assert np.array_equal(together, alone)
    assert together.any()
    # the input repeats beyond its length, as a RingBuffer's
    longer = netx.simulate(path, batch[0], num_steps=2 * STEPS + 5, **kwargs)
    assert np.array_equal(longer[..., :2 * STEPS], alone[0])
    # in groups of samples (the last one short), or one by one: the same
    for group_size in (1, 2):
        grouped = netx.simulate(path, batch, num_workers=1, group_size=group_size, **kwargs)
        assert np.array_equal(grouped, alone)
    # a per-sample state over GROUP_STATE_BYTES makes one-by-one the default
    monkeypatch.setattr(netx.fused, "GROUP_STATE_BYTES", 0)
    assert netx.fused._Job(netx.fused.leaf_models(netx.hdf5.Network(net_config=str(path), **kwargs).layers,
                                                  "fixed_pt"), None, None, 1, np.int32).group_size == 1
    assert np.array_equal(netx.simulate(path, batch, num_workers=1, **kwargs), alone)
    monkeypatch.undo()
    # a batch of one sample is a batch too (its state arrays must be writable copies)
    single = netx.simulate(path, batch[:1], num_workers=1, **kwargs)
    assert single.shape == (1, *out_shape, 2 * STEPS)
    assert np.array_equal(single[0], alone[0])


def test_simulate_a_built_network_and_a_fused_one(tmp_path):
    """A Network built once (a loop of calls need not read the file each time) and a fused one, built
    here or from ``fused=True``, give what the file gives; the built Network is left as it was."""
    path, data, kwargs = _exported("recurrent", "cuba", tmp_path)
    rng = np.random.default_rng(5)
    batch = (rng.random((3, *data.shape)) < 0.4).astype(np.int32)
    expected = netx.simulate(path, batch, num_workers=1, **kwargs)
    assert expected.any()
    net = netx.hdf5.Network(net_config=str(path), **kwargs)
    for _ in range(2):  # a second call on the same Network: the same
        assert np.array_equal(netx.simulate(net, batch, num_workers=1), expected)
    assert np.array_equal(netx.simulate(net, batch[1]), expected[1])
    fused = netx.hdf5.Network(net_config=str(path), fused=True, **kwargs)
    assert np.array_equal(netx.simulate(fused, batch, num_workers=2), expected)
    Source(data=batch[0]).s_out.connect(fused.inp)  # its own port: its layers are stepped here all the same
    assert np.array_equal(netx.simulate(fused, batch, num_workers=1), expected)
    assert np.array_equal(netx.simulate(path, batch, fused=True, num_workers=1, **kwargs), expected)
    # ... and a Lava run of the Network afterwards still records what simulate gave
    source, sink = Source(data=batch[0]), Sink(shape=net.out.shape, buffer=2 * STEPS)
    source.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    (recorded,) = run_and_read(net, 2 * STEPS, [sink.data])
    assert np.array_equal(recorded, expected[0])
    with pytest.raises(ValueError, match=r"the network arguments \['reset_interval'\] apply to a file"):
        netx.simulate(net, batch, reset_interval=4)
    with pytest.raises(ValueError, match=rf"input port receives from {source.name}.s_out; simulate plays"):
        netx.simulate(net, batch)  # (now connected to the source)


def test_simulate_input_frames_in_blocks(tmp_path, monkeypatch):
    """The time-last input is made time-major a block of steps at a time: blocks of 16 steps over
    an input of 37 played past its end give what one block of all steps gives."""
    path, data, kwargs = _exported("delay_dense", "cuba", tmp_path)
    rng = np.random.default_rng(4)
    long = (rng.random((3, *data.shape[:-1], 37)) < 0.3).astype(np.int32)
    whole = netx.simulate(path, long, num_steps=2 * 37 + 3, num_workers=1, **kwargs)
    single = netx.simulate(path, long[1], num_steps=2 * 37 + 3, **kwargs)
    monkeypatch.setattr(netx.fused, "FRAME_BLOCK_BYTES", 1)  # 16 steps per block
    blocks = netx.simulate(path, long, num_steps=2 * 37 + 3, num_workers=1, **kwargs)
    assert np.array_equal(blocks, whole) and np.array_equal(single, whole[1])
    assert np.array_equal(netx.simulate(path, long[1], num_steps=2 * 37 + 3, **kwargs), single)
    assert whole.any()


def test_simulate_rejects_bad_input(tmp_path):
    path, data, kwargs = _exported("delay_dense", "cuba", tmp_path)
    with pytest.raises(ValueError, match="sample shape"):
        netx.simulate(path, data[:-1], **kwargs)
    with pytest.raises(ValueError, match="expected"):
        netx.simulate(path, data[0], **kwargs)
    # what the Lava run refuses (runtime input checks), simulate refuses with the same error type
    for value, reason in ((np.nan, "non-finite"), (np.inf, "non-finite"), (0.5, "fractional"),
                          (2.0**31, "beyond its message width"), (-(2**40), "beyond its message width")):
        bad = data.astype(float if isinstance(value, float) else np.int64)
        bad[0, 0] = value
        with pytest.raises(runtime.InputError, match=f"simulate: inputs hold .*{reason}"):
            netx.simulate(path, bad, **kwargs)
    with pytest.raises(ValueError, match="select_tag"):
        netx.simulate(path, data, select_tag="bit_accurate", **kwargs)
    with pytest.raises(ValueError, match=">= 1"):
        netx.simulate(path, data, num_steps=0, **kwargs)
    with pytest.raises(ValueError, match="group_size"):
        netx.simulate(path, data, group_size=0, **kwargs)


def test_simulate_casts_as_lava_with_the_input_checks_off(tmp_path):
    """With the checks off, fractional and too wide inputs are cast to the RingBuffer's int32 as Lava
    casts them (truncated, wrapped), and a float network takes fractional values as they are."""
    path, data, kwargs = _exported("delay_dense", "cuba", tmp_path)
    raw = data.astype(np.int64) * 3 + (np.arange(data.shape[-1]) % 2) * 2**32  # wraps to data * 3
    fractional = data * 3 + 0.75  # truncates to data * 3
    expected = netx.simulate(path, data * 3, **kwargs)
    with runtime.set_input_checks(False):
        assert np.array_equal(netx.simulate(path, raw, **kwargs), expected)
        assert np.array_equal(netx.simulate(path, fractional, **kwargs), expected)
    floats = netx.simulate(path, fractional, select_tag="floating_pt", **kwargs)
    assert floats.dtype == np.float64 and floats.shape == expected.shape


@pytest.mark.parametrize("family", FAMILIES)
def test_simulate_every_family(family, tmp_path):
    """Every spiking family, conv + pool front (simulate vs the per-layer Lava graph)."""
    path, data, kwargs = _exported("pool", family, tmp_path)
    (layered,) = _run(path, data, 2 * STEPS, False, **kwargs)
    assert np.array_equal(netx.simulate(path, data, **kwargs), layered)


@pytest.mark.skipif(not (SHARED / "tiny.net").is_file(), reason="shared fixtures absent")
def test_fused_legacy_lava_dl_file():
    """A file of lava-dl's legacy format (``LOIHI`` neurons, conv with input record), with lava-dl's
    staggered resets: fused and simulated equal the per-layer graph, states included."""
    data = (np.random.default_rng(0).random((16, 16, 3, 40)) < 0.3).astype(np.int32)
    layered = _run(SHARED / "tiny.net", data, 40, False, ("u", "v"), reset_interval=17)
    fused = _run(SHARED / "tiny.net", data, 40, True, ("u", "v"), reset_interval=17)
    assert layered[0].any()
    _assert_same(layered, fused)
    assert np.array_equal(netx.simulate(SHARED / "tiny.net", data, reset_interval=17), layered[0])
