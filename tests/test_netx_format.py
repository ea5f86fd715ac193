"""netx hdf5 format: record writer round trip and clear errors for malformed files (no fixtures needed)."""

from __future__ import annotations

import pathlib

import h5py
import numpy as np
import pytest

import lava_dl  # noqa: F401  (installs the Python 3.11 fix for lava-nc)
from lava_dl.core.synapse import optimize_weight_bits
from lava_dl.netx import Hdf5FormatError, hdf5, record

CUBA_DENSE = {"type": "CUBA", "iDecay": 4096, "vDecay": 415, "vThMant": 6, "refDelay": 1,
              "gradedSpike": False}

# --------------------------------------------------------------------------
# record.py round trip
# --------------------------------------------------------------------------


def test_record_dtypes_and_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    w_conv = rng.integers(-64, 64, size=(4, 2, 3, 3)) * 2
    w_dense = rng.integers(-64, 64, size=(5, 4 * 3 * 3)) * 2
    path = tmp_path / "net.net"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        record.write_input(layer.create_group("0"), (2, 5, 5),
                           neuron={"type": "CUBA", "iDecay": 4096, "vDecay": 100, "vThMant": 10},
                           weight=36, bias=34)
        record.write_conv(layer.create_group("1"), (4, 3, 3), w_conv, 2, 4, 3, bias=np.arange(4) * 2,
                          neuron={"type": "CUBA", "iDecay": np.array([1, 2, 3, 4]), "vDecay": 7,
                                  "vThMant": 20, "gradedSpike": False})
        record.write_flatten(layer.create_group("2"), (36, 1, 1))
        record.write_dense(layer.create_group("3"), (5,), w_dense, bias=np.arange(5) * 2,
                           neuron=CUBA_DENSE)
    with h5py.File(path, "r") as f:
        g = f["layer/1"]
        assert g["type"].dtype == np.dtype("S10") and g["type"].shape == (1,)
        assert g["shape"].dtype == np.int64 and g["weight"].dtype == np.float32
        assert g["kernelSize"][()].tolist() == [3, 3] and g["groups"].dtype == np.int64
        assert h5py.check_string_dtype(g["neuron/type"].dtype) is not None and g["neuron/type"].shape == ()
        assert g["neuron/vDecay"].dtype == np.int64 and g["neuron/gradedSpike"].dtype == np.bool_
        assert f["layer/0/weight"].shape == (1,) and f["layer/0/weight"].dtype == np.float32
    net = hdf5.Network(net_config=path)
    assert [type(b).__name__ for b in net.layers] == ["Input", "Conv", "Dense"]
    conv, dense = net.layers[1], net.layers[2]
    assert conv.shape == (3, 3, 4) and conv.inp.shape == (5, 5, 2)
    np.testing.assert_array_equal(conv.synapse.weight.init, w_conv[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))
    np.testing.assert_array_equal(conv.neuron.du.init[1, 2], [1, 2, 3, 4])
    np.testing.assert_array_equal(conv.neuron.bias_mant.init[2, 0], np.arange(4) * 2)
    np.testing.assert_array_equal(dense.neuron.bias_mant.init, np.arange(5) * 2)
    assert dense.inp.shape == (36,) and net.in_layer.transform == {"weight": 36, "bias": 34}


# --------------------------------------------------------------------------
# (e) malformed files
# --------------------------------------------------------------------------


def _write(path, build):
    with h5py.File(path, "w") as f:
        build(f.create_group("layer"))
    return path


def _dense_ok(layer, name="0", **kw):
    args = dict(shape=(3,), weight=np.ones((3, 4)) * 2, neuron=CUBA_DENSE)
    args.update(kw)
    record.write_dense(layer.create_group(name), **args)


def test_missing_field(tmp_path):
    def build(layer):
        _dense_ok(layer)
        del layer["0/weight"]

    with pytest.raises(Hdf5FormatError, match=r"layer 0, field 'weight'.*missing"):
        hdf5.Network(net_config=_write(tmp_path / "a.net", build))

    def build2(layer):
        _dense_ok(layer)
        del layer["0/neuron/vDecay"]

    with pytest.raises(Hdf5FormatError, match=r"layer 0, field 'neuron/vDecay'"):
        hdf5.Network(net_config=_write(tmp_path / "b.net", build2))


def test_wrong_weight_shape(tmp_path):
    def build(layer):
        _dense_ok(layer)
        _dense_ok(layer, "1", shape=(2,), weight=np.ones((2, 5)) * 2)

    with pytest.raises(Hdf5FormatError, match=r"layer 1, field 'weight'"):
        hdf5.Network(net_config=_write(tmp_path / "w.net", build))

    def build_conv(layer):
        record.write_input(layer.create_group("0"), (2, 8, 8))
        record.write_conv(layer.create_group("1"), (4, 6, 6), np.ones((4, 3, 3, 3)), 2, 4, 3,
                          neuron=CUBA_DENSE)

    with pytest.raises(Hdf5FormatError, match=r"layer 1, field 'weight'"):
        hdf5.Network(net_config=_write(tmp_path / "c.net", build_conv))

    def build_geom(layer):
        record.write_input(layer.create_group("0"), (2, 8, 8))
        record.write_conv(layer.create_group("1"), (4, 5, 5), np.ones((4, 2, 3, 3)), 2, 4, 3,
                          neuron=CUBA_DENSE)

    with pytest.raises(Hdf5FormatError, match=r"layer 1, field 'shape'"):
        hdf5.Network(net_config=_write(tmp_path / "g.net", build_geom))


def test_unknown_layer_and_neuron_type(tmp_path):
    def build(layer):
        _dense_ok(layer)
        record.write_type(layer.create_group("1"), "magic")

    with pytest.raises(Hdf5FormatError, match=r"layer 1, field 'type'.*magic"):
        hdf5.Network(net_config=_write(tmp_path / "t.net", build))

    def build_neuron(layer):
        _dense_ok(layer, neuron={**CUBA_DENSE, "type": "FOO"})

    with pytest.raises(Hdf5FormatError, match=r"layer 0, field 'neuron/type'.*FOO"):
        hdf5.Network(net_config=_write(tmp_path / "n.net", build_neuron))

    def build_pool(layer):
        _dense_ok(layer)
        record.write_type(layer.create_group("1"), "pool")

    with pytest.raises(Hdf5FormatError, match=r"layer 1, field 'shape': required field is missing"):
        hdf5.Network(net_config=_write(tmp_path / "p.net", build_pool))

    def build_comp(layer):
        _dense_ok(layer)
        record.write_type(layer.create_group("1"), "dense_comp")

    with pytest.raises(NotImplementedError, match=r"layer 1.*dense_comp"):
        hdf5.Network(net_config=_write(tmp_path / "c.net", build_comp))


def test_non_contiguous_layer_names(tmp_path):
    def build(layer):
        _dense_ok(layer, "0")
        _dense_ok(layer, "2", shape=(3,), weight=np.ones((3, 3)) * 2)

    with pytest.raises(Hdf5FormatError, match="contiguous"):
        hdf5.Network(net_config=_write(tmp_path / "nc.net", build))


def test_neuron_type_forms(tmp_path):
    """``neuron/type`` as a (1,) S10 array is read like the usual scalar vlen string."""

    def build(layer):
        _dense_ok(layer)
        del layer["0/neuron/type"]
        layer["0/neuron"].create_dataset("type", (1,), "S10", [b"LOIHI"])

    net = hdf5.Network(net_config=_write(tmp_path / "s.net", build))
    assert int(net.out_layer.neuron.vth.init[0]) == 6


def test_unrepresentable_weights_are_named(tmp_path):
    with pytest.raises(Hdf5FormatError, match=r"layer 0, field 'weight'.*non-integer"):
        hdf5.Network(net_config=_write(tmp_path / "a.net", lambda layer: _dense_ok(
            layer, weight=np.full((3, 4), 2.5))))
    with pytest.raises(Hdf5FormatError, match=r"layer 0, field 'weight'"):
        hdf5.Network(net_config=_write(tmp_path / "b.net", lambda layer: _dense_ok(
            layer, weight=np.full((3, 4), 300.0))))


def test_graded_spikes_set_the_next_synapse(tmp_path):
    """A graded CUBA layer sends 24-bit payloads; the next synapse takes them with exponent -12."""
    graded = dict(CUBA_DENSE, gradedSpike=True)

    def build(layer):
        _dense_ok(layer, neuron=graded)
        _dense_ok(layer, "1", shape=(2,), weight=np.ones((2, 3)) * 4)

    net = hdf5.Network(net_config=_write(tmp_path / "a.net", build))
    first, second = net.layers
    assert first.output_message_bits == 24 and first.output_message_exp == -12
    assert int(first.neuron.graded.init.max()) == 1 and int(second.neuron.graded.init.max()) == 0
    # the lossless exponent of the weights, minus 12 for the payload
    _, _, weight_exp, _ = optimize_weight_bits(np.ones((2, 3)) * 4)
    assert second.input_message_bits == 24 and int(second.synapse.weight_exp.init) == weight_exp - 12
    assert second.output_message_bits == 0 and second.output_message_exp == 0


@pytest.mark.parametrize("sender, receiver, shift", [
    (dict(CUBA_DENSE, gradedSpike=True), "SDNN", 0),    # payload 2^12 per unit, SD input 2^12 per unit
    (CUBA_DENSE, "SDNN", 12),                           # binary spikes into sigma-delta units
    ({"type": "SDNN", "vThMant": 4, "activation": "relu"}, "CUBA", -12),  # SD messages onto a_in
    (dict(CUBA_DENSE, gradedSpike=True), "CUBA", -12),
])
def test_message_exponents_between_families(tmp_path, sender, receiver, shift):
    """Every synapse brings its sender's messages into its receiver's input units."""
    neuron = {"type": "SDNN", "vThMant": 4, "activation": "relu"} if receiver == "SDNN" else CUBA_DENSE

    def build(layer):
        _dense_ok(layer, neuron=sender)
        _dense_ok(layer, "1", shape=(2,), weight=np.ones((2, 3)) * 2, neuron=neuron)

    second = hdf5.Network(net_config=_write(tmp_path / "a.net", build)).layers[1]
    _, _, weight_exp, _ = optimize_weight_bits(np.ones((2, 3)) * 2)
    assert int(second.synapse.weight_exp.init) == weight_exp + shift


def test_undeployable_neuron_options_are_refused(tmp_path):
    mixed = dict(CUBA_DENSE, gradedSpike=np.array([True, False, True]))
    with pytest.raises(Hdf5FormatError, match=r"layer 0, field 'neuron/gradedSpike'"):
        hdf5.Network(net_config=_write(tmp_path / "m.net", lambda layer: _dense_ok(layer, neuron=mixed)))
    refractory = dict(CUBA_DENSE, refDelay=3)
    with pytest.raises(NotImplementedError, match=r"layer 0, field 'neuron/refDelay'"):
        hdf5.Network(net_config=_write(tmp_path / "b.net", lambda layer: _dense_ok(layer, neuron=refractory)))


def test_network_runs_with_floating_pt_models(tmp_path):
    """The netx sub-graphs serve both tags; without decays the float models give the same spikes."""
    from lava.magma.core.run_configs import Loihi1SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    from tests.lava_run import run_and_read

    rng = np.random.default_rng(4)
    weight = rng.integers(-40, 60, (6, 10)) * 2
    neuron = dict(CUBA_DENSE, vDecay=0, vThMant=40)
    path = _write(tmp_path / "n.net",
                  lambda layer: _dense_ok(layer, shape=(6,), weight=weight, neuron=neuron))
    data = (rng.random((10, 30)) < 0.4).astype(int)
    results = []
    for tag in ("fixed_pt", "floating_pt"):
        net = hdf5.Network(net_config=path)
        source, sink = Source(data=data), Sink(shape=(6,), buffer=30)
        source.s_out.connect(net.inp)
        net.out.connect(sink.a_in)
        results.append(run_and_read(net, 30, [sink.data], run_cfg=Loihi1SimCfg(select_tag=tag))[0])
    assert results[0].sum() > 0
    assert np.array_equal(results[0], results[1])


# --------------------------------------------------------------------------
# delays, recurrent, pool and average records
# --------------------------------------------------------------------------


def _unstamp(path):
    """Make a file look like lava-dl 0.6's (no producer attribute)."""
    with h5py.File(path, "a") as f:
        del f.attrs["producer"]
    return path


def test_dense_delays_follow_the_producer(tmp_path):
    """lava_dl files: delays on the layer's outputs (AxonDelay); lava-dl files: on its input synapses."""
    delay = np.array([0, 3, 7], dtype=np.float32)

    def build(layer):
        _dense_ok(layer, delay=delay)

    path = _write(tmp_path / "d.net", build)
    axonal = hdf5.Network(net_config=path).layers[0]
    np.testing.assert_array_equal(axonal.axon.delays.init, [0, 3, 7])
    assert type(axonal.synapse).__name__ == "Dense"
    legacy = hdf5.Network(net_config=_unstamp(path)).layers[0]
    assert legacy.axon is None and type(legacy.synapse).__name__ == "DelayDense"
    np.testing.assert_array_equal(legacy.synapse.delays.init, np.repeat(delay[:, None], 4, axis=1))
    explicit = hdf5.Network(net_config=path, delay_mode="axonal").layers[0]
    assert explicit.axon is not None
    with pytest.raises(ValueError, match="delay_mode"):
        hdf5.Network(net_config=path, delay_mode="sideways")


@pytest.mark.parametrize("delay, message", [
    (np.array([0, 63, 1]), r"layer 0, field 'delay': delays must lie in \[0, 62\]"),
    (np.array([0, -1, 1]), r"layer 0, field 'delay': delays must lie in \[0, 62\]"),
    (np.array([0.5, 1, 1]), r"layer 0, field 'delay': holds non-integer values"),
    (np.array([1, 2]), r"layer 0, field 'delay': expected one delay per output neuron \(3\)"),
])
def test_bad_delays_are_named(tmp_path, delay, message):
    path = _write(tmp_path / "d.net", lambda layer: _dense_ok(layer, delay=delay))
    with pytest.raises(Hdf5FormatError, match=message):
        hdf5.Network(net_config=path)


def test_recurrent_record_checks(tmp_path):
    def build(layer):
        _dense_ok(layer, weight_rec=np.ones((3, 3)) * 2, bias_rec=np.full(3, -4))

    rec = hdf5.Network(net_config=_write(tmp_path / "r.net", build)).layers[0]
    assert type(rec).__name__ == "RecurrentDense"
    np.testing.assert_array_equal(rec.synapse_rec.a_bias.init, [-4, -4, -4])
    with h5py.File(tmp_path / "r.net", "a") as f:
        del f["layer/0/weight_rec"]
        f["layer/0/weight_rec"] = np.ones((3, 2), np.float32)
    with pytest.raises(Hdf5FormatError, match=r"layer 0, field 'weight_rec': the recurrent weight must be "
                                              r"square \(3, 3\)"):
        hdf5.Network(net_config=tmp_path / "r.net")
    with pytest.raises(ValueError, match="must be square"):
        _write(tmp_path / "w.net", lambda layer: _dense_ok(layer, weight_rec=np.ones((3, 2))))


def test_pool_and_average_records_checked(tmp_path):
    def pool_too_big(layer):
        record.write_input(layer.create_group("0"), (2, 3, 3))
        record.write_pool(layer.create_group("1"), (2, 1, 1), np.full((1, 1, 4, 4), 64), 4, 4,
                          neuron=CUBA_DENSE)

    with pytest.raises(Hdf5FormatError, match=r"layer 1, field 'kernelSize': the pool window"):
        hdf5.Network(net_config=_write(tmp_path / "p.net", pool_too_big))

    def after_average(layer):
        _dense_ok(layer)
        record.write_average(layer.create_group("1"), 3)
        _dense_ok(layer, "2", weight=np.ones((3, 3)) * 2)

    with pytest.raises(Hdf5FormatError, match=r"layer 2, field 'type': a 'dense' layer cannot follow the "
                                              r"'average' layer 1"):
        hdf5.Network(net_config=_write(tmp_path / "a.net", after_average))

    def uneven(layer):
        _dense_ok(layer)
        record.write_average(layer.create_group("1"), 2)

    with pytest.raises(Hdf5FormatError, match=r"layer 1, field 'shape': 3 neurons .* 2 equal groups"):
        hdf5.Network(net_config=_write(tmp_path / "u.net", uneven))


def test_concat_records_checked(tmp_path):
    def build(layers, shape=(6,)):
        def write(layer):
            _dense_ok(layer)
            _dense_ok(layer, "1", weight=np.ones((3, 3)) * 2)
            record.write_concat(layer.create_group("2"), shape, layers)
        return write

    net = hdf5.Network(net_config=_write(tmp_path / "ok.net", build([0, 1])))
    assert type(net.layers[-1]).__name__ == "Concat" and net.layers[-1].shape == (6,)
    # lava-dl's form: the previous layer plus the listed ones
    assert hdf5.Network(net_config=_write(tmp_path / "p.net", build([0]))).layers[-1].shape == (6,)
    with pytest.raises(Hdf5FormatError, match=r"layer 2, field 'layers': layer 5 is a later or the same"):
        hdf5.Network(net_config=_write(tmp_path / "l.net", build([0, 5])))
    with pytest.raises(Hdf5FormatError, match=r"layer 2, field 'shape': record shape \[7\]"):
        hdf5.Network(net_config=_write(tmp_path / "s.net", build([0, 1], shape=(7,))))

    def mixed(layer):
        _dense_ok(layer)
        _dense_ok(layer, "1", weight=np.ones((3, 3)) * 2, neuron=dict(CUBA_DENSE, gradedSpike=True))
        record.write_concat(layer.create_group("2"), (6,), [0, 1])

    with pytest.raises(Hdf5FormatError, match=r"layer 2, field 'layers': the joined layers \[0, 1\] send "
                                              r"messages of different widths"):
        hdf5.Network(net_config=_write(tmp_path / "m.net", mixed))


def test_sigma_delta_cum_error_is_deployed(tmp_path):
    """``neuron/cumError`` (this package's field) sets the Delta and SigmaDelta ``cum_error``; a file
    without it (lava-dl's) deploys 0; a value other than 0/1 is refused, naming the field."""
    sdnn = {"type": "SDNN", "vThMant": 4, "activation": "relu"}

    def build(cum_input, cum_hidden):
        def write(layer):
            record.write_input(layer.create_group("0"), (4,),
                               neuron=dict(sdnn, **({} if cum_input is None else {"cumError": cum_input})))
            _dense_ok(layer, "1", shape=(3,), weight=np.ones((3, 4)) * 2,
                      neuron=dict(sdnn, **({} if cum_hidden is None else {"cumError": cum_hidden})))
        return write

    cases = ((True, None, [1, 0]), (None, True, [0, 1]), (False, None, [0, 0]))
    for cum_input, cum_hidden, expected in cases:
        net = hdf5.Network(net_config=_write(tmp_path / "c.net", build(cum_input, cum_hidden)))
        assert [type(b.neuron).__name__ for b in net.layers] == ["Delta", "SigmaDelta"]
        assert [int(np.unique(b.neuron.cum_error.init)[0]) for b in net.layers] == expected
    with pytest.raises(Hdf5FormatError, match=r"layer 1, field 'neuron/cumError'"):
        hdf5.Network(net_config=_write(tmp_path / "bad.net", build(None, 2)))


def test_recurrent_layer_row_reads_dense_as_lava_dl_prints_it():
    """lava-dl's network table names a ``dense_rec`` layer ``Dense`` (its recurrence is not a column)."""
    path = pathlib.Path(__file__).resolve().parent / "fixtures" / "lava_dl_0.6" / "cuba_recurrent.net"
    if not path.exists():
        pytest.skip(f"fixture {path} not found")
    with h5py.File(path, "r") as f:
        assert f["layer/1/type"][()][0] == b"dense_rec"
    rows = str(hdf5.Network(net_config=str(path))).split("\n")
    row = "|Dense     |    1|    1|{:5d}|     |     |     |     |     |False|"
    assert rows[1:] == [row.format(n) for n in (8, 7, 4)]
