"""lava-dl's record-by-record construction API: ``netx.hdf5.Network.create_*`` / ``get_neuron_params``.

lava-dl code that builds a network one record at a time (as lava-dl's own ``Network`` did
internally) calls these static methods with a ``NetDict`` record and connects the blocks
itself. The loop below is that pattern, written here against the public methods; the graph
it builds must run exactly as ``Network`` built from the same file with lava-dl's staggered
resets (``reset_mode="lava-dl"``), and for ``tiny.net`` as lava-dl's recorded output.
"""

from __future__ import annotations

import pathlib

import h5py
import numpy as np
import pytest

import lava_dl  # noqa: F401  (installs the Python 3.11 fix for lava-nc)
from lava_dl import netx
from lava_dl.netx.hdf5 import NetxFormatError, NetxTypeError, NetxUnsupportedError
from lava_dl.netx.utils import NetDict
from tests.lava_run import run_and_read

FIX = pathlib.Path(__file__).resolve().parent / "fixtures" / "lava_dl_0.6"
SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "lava_dl_0.6"
Network = netx.hdf5.Network


def build_record_by_record(path, reset_interval: int, reset_offset: int = 0, input_shape=None,
                           sparse: bool = False):
    """Blocks of ``path`` made with ``Network.create_*`` and connected as lava-dl connected them."""
    records = NetDict(path)["layer"]
    blocks, rows = [], []
    message_bits, shape, flatten_next = 0, input_shape, False
    phase = reset_offset + 1  # lava-dl: block k resets at reset_offset + 1 + k
    for i in range(len(records)):
        config = records[i]
        kind = config["type"]
        resets = dict(reset_interval=reset_interval, reset_offset=phase)
        if kind == "flatten":
            flatten_next = True
            continue
        if kind == "input":
            if "neuron" not in config:
                shape = tuple(config["shape"][::-1])
                continue
            block, row = Network.create_input(config, **resets)
        elif kind in ("dense", "dense_rec"):
            block, row = Network.create_dense(config, input_message_bits=message_bits, sparse_synapse=sparse,
                                              rec=kind == "dense_rec", **resets)
        else:
            create = getattr(Network, f"create_{kind}")
            block, row = create(config, input_shape=blocks[-1].shape if blocks else shape,
                                input_message_bits=message_bits, **resets)
        if blocks:
            source = blocks[-1].out
            if flatten_next:
                source = source.transpose([2, 1, 0]).flatten()
            source.connect(block.inp)
        flatten_next = False
        blocks.append(block)
        rows.append(row)
        phase += 1
        message_bits = block.output_message_bits
    return blocks, rows


def _run_both(path, data: np.ndarray, reset_interval: int, input_shape=None, sparse: bool = False):
    """The record-by-record graph and ``Network`` (lava-dl resets) fed by one source in one Lava run."""
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    blocks, rows = build_record_by_record(path, reset_interval, input_shape=input_shape, sparse=sparse)
    kwargs = {} if input_shape is None else {"input_shape": input_shape}
    net = Network(net_config=str(path), reset_interval=reset_interval, reset_mode="lava-dl",
                  sparse_fc_layer=sparse, **kwargs)
    steps = data.shape[-1]
    source = Source(data=data)
    sinks = [Sink(shape=blocks[-1].out.shape, buffer=steps), Sink(shape=net.out.shape, buffer=steps)]
    source.s_out.connect(blocks[0].inp)
    source.s_out.connect(net.inp)
    blocks[-1].out.connect(sinks[0].a_in)
    net.out.connect(sinks[1].a_in)
    ours, reference = run_and_read(source, steps, [sink.data for sink in sinks])
    return ours, reference, rows, net, blocks


@pytest.mark.parametrize("name, sparse", [("cuba_conv", False), ("cuba_pool", False), ("cuba_convt", False),
                                          ("cuba_unpool", False), ("cuba_recurrent", False), ("alif", False),
                                          ("rf_iz", False), ("cuba_delay", False), ("cuba_dense", True)])
def test_record_by_record_graph_runs_as_the_network(name, sparse):
    with np.load(FIX / f"{name}.npz") as npz:
        x = npz["input"]  # (batch, C, (H, W,) T) binary spikes
    reset_interval = x.shape[-1]
    samples = [s if s.ndim == 2 else s.transpose(2, 1, 0, 3) for s in x]  # Lava (x, y, c, T)
    data = np.concatenate(samples, axis=-1).astype(np.int32)
    input_shape = samples[0].shape[:-1] if samples[0].ndim == 4 else None
    ours, reference, rows, net, blocks = _run_both(FIX / f"{name}.net", data, reset_interval, input_shape,
                                                   sparse)
    kinds = {type(b.synapse).__name__ for b in [*blocks, *net.layers]}
    assert kinds == ({"Sparse"} if sparse else kinds - {"Sparse"})
    assert np.abs(reference).sum() > 0
    np.testing.assert_array_equal(ours, reference)
    assert rows == str(net).splitlines()[1:]  # the same summary-table rows


def test_tiny_record_by_record_reproduces_lava_dl():
    """tiny.net built with create_input / create_conv (lava-dl's loop) gives lava-dl's recorded output."""
    if not SHARED.is_dir():
        pytest.skip(f"shared fixtures not found at {SHARED}")
    from lava.proc.io.sink import RingBuffer as Sink

    steps_per_sample = 17
    blocks, _ = build_record_by_record(SHARED / "tiny.net", steps_per_sample)
    assert [type(b).__name__ for b in blocks] == ["Input", "Conv", "Conv"]
    blocks[0].neuron.bias_mant.init = np.load(SHARED / "tinynet/input_bias.npy").astype(np.int32)
    steps = steps_per_sample + len(blocks)
    sink = Sink(shape=blocks[-1].out.shape, buffer=steps)
    blocks[-1].out.connect(sink.a_in)
    (result,) = run_and_read(blocks[0], steps, [sink.data])
    expected = np.load(SHARED / "tinynet/output.npy")[0].transpose(2, 1, 0, 3)  # (x, y, c, T)
    assert expected.sum() > 0
    np.testing.assert_array_equal(result[..., 2:17], expected[..., 1:16])


def test_sigma_delta_record_by_record_runs_as_the_network():
    """Graded messages: the Delta input's 16-bit messages reach the next block's synapse in its units."""
    rng = np.random.default_rng(3)
    path = FIX / "sdnn_dense.net"
    n_in = int(np.prod(NetDict(path)["layer"][0]["shape"]))
    data = rng.integers(-300, 300, size=(n_in, 24)).astype(np.int32)
    ours, reference, *_ = _run_both(path, data, reset_interval=12)
    assert np.abs(reference).sum() > 0
    np.testing.assert_array_equal(ours, reference)


def test_create_methods_take_h5py_groups_and_lava_dl_phases():
    path = FIX / "cuba_dense.net"
    with h5py.File(path, "r") as f:
        block, row = Network.create_dense(f["layer"]["1"], reset_interval=10, reset_offset=3)
        params = Network.get_neuron_params(f["layer"]["1"]["neuron"], reset_interval=10, reset_offset=3)
    net = Network(net_config=str(path), reset_interval=10, reset_offset=1, reset_mode="lava-dl")
    # lava-dl's Network gives block k the phase reset_offset + 1 + k: block 1 of reset_offset=1 has phase 3
    assert int(np.asarray(block.neuron.reset_offset.init).reshape(-1)[0]) == 3
    assert int(np.asarray(net.layers[1].neuron.reset_offset.init).reshape(-1)[0]) == 3
    assert params["reset_offset"] == 3 and params["reset_interval"] == 10
    assert params["neuron_proc"] is type(net.layers[1].neuron)
    np.testing.assert_array_equal(block.synapse.weights.init, net.layers[1].synapse.weights.init)
    assert row == str(net).splitlines()[2]
    # lava-dl's other pattern: the neuron dict into a netx block with lava-dl's arguments
    weight = NetDict(path)["layer"][1]["weight"]
    by_hand = netx.blocks.process.Dense(shape=(weight.shape[0],), neuron_params=params, weight=weight)
    np.testing.assert_array_equal(by_hand.synapse.weights.init, block.synapse.weights.init)
    for var in ("du", "dv", "vth", "reset_offset", "reset_interval"):
        np.testing.assert_array_equal(getattr(by_hand.neuron, var).init, getattr(block.neuron, var).init)


def test_create_methods_name_bad_calls(tmp_path):
    records = NetDict(FIX / "cuba_pool.net")["layer"]
    with pytest.raises(NetxFormatError, match=r"layer 0.*'conv' record; expected 'dense'"):
        Network.create_dense(records[0])
    with pytest.raises(NetxFormatError, match=r"layer 1.*needs input_shape"):
        Network.create_pool(records[1])
    with pytest.raises(NetxUnsupportedError, match=r"layer 2.*'flatten' record is not a block"):
        netx.hdf5.create_block(records[2])
    with h5py.File(tmp_path / "joins.net", "w") as f:
        for i, kind in enumerate(("average", "concat")):
            f.create_dataset(f"layer/{i}/type", data=kind.encode())
            f.create_dataset(f"layer/{i}/shape", data=np.array([2, 1, 1]))
        for i, create in enumerate((Network.create_average, Network.create_concat)):
            with pytest.raises(NotImplementedError, match=rf"layer {i}.*record is not a block of its own"):
                create(f["layer"][str(i)])  # NotImplementedError: lava-dl's exception for these
    with pytest.raises(NetxFormatError, match=r"layer 2.*'flatten' record; expected 'average'"):
        Network.create_average(records[2])
    with pytest.raises(ValueError, match="reset_interval must be >= 1"):
        Network.create_dense(records[3], reset_interval=0)
    with pytest.raises(ValueError, match="reset_interval must be >= 1"):
        Network.get_neuron_params(records[3]["neuron"], reset_interval=-2)
    with pytest.raises(NetxTypeError, match="open hdf5 group"):
        Network.create_dense(str(FIX / "cuba_pool.net"))
    rec = NetDict(FIX / "cuba_recurrent.net")["layer"]
    with pytest.raises(NetxFormatError, match=r"layer 1.*'dense_rec' record; expected 'dense'"):
        Network.create_dense(rec[1])  # lava-dl built it without its recurrent weights
    with pytest.raises(NetxFormatError, match=r"layer 2.*'dense' record; expected 'dense_rec'"):
        Network.create_dense(rec[2], rec=True)
