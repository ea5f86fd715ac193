"""lava_dl's CSR synapses (:mod:`lava_dl.proc.sparse`): lava-nc's ``Sparse`` and ``DelaySparse`` with
lava_dl's kernels.

Oracles: lava-nc's own ``PySparseModelBitAcc`` / ``PyDelaySparseModelBitAcc`` (and float models) on
the same matrices and inputs, in the same Lava run; and lava_dl's Dense / DelayDense on the dense form
of the matrix, which must send the same integers. Then the Vars (``weights.get`` returns the matrix the
weight rule made, ``set`` takes effect), netx's ``sparse_fc_layer=True`` (now on these synapses: static
schedule, batches, per-layer Lava graph, all equal to the dense synapses), and bad arguments.
"""

from __future__ import annotations

import numpy as np
import pytest
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi1SimCfg
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source
from lava.proc.sparse import process as nc
from scipy import sparse

from lava_dl import netx
from lava_dl.core import delay as dly
from lava_dl.core import synapse as syn
from lava_dl.netx import fused
from lava_dl.proc.delay import DelayDense
from lava_dl.proc.dense import Dense
from lava_dl.proc.sparse import DelaySparse, Sparse
from tests.test_netx_export import LOCAL, _kwargs, _need
from tests.test_quiet_messages import _snapshot

STEPS = 12


def _matrix(rng, shape, density=0.25, lo=-256, hi=256):
    dense = rng.integers(lo, hi, shape) * (rng.random(shape) < density)
    return sparse.csr_matrix(dense)


def _inputs(rng, n_in, graded: bool) -> np.ndarray:
    if graded:
        return rng.integers(-3000, 3000, (n_in, STEPS)).astype(np.int32)
    return (rng.random((n_in, STEPS)) < 0.3).astype(np.int32)


def _run_side_by_side(pairs: list, data: np.ndarray, select_tag: str = "fixed_pt") -> list:
    """One Lava run: one source into every synapse of ``pairs`` (a flat list), a sink after each;
    the sinks' recordings in that order."""
    source = Source(data=data)
    sinks = []
    for proc in pairs:
        sink = Sink(shape=proc.a_out.shape, buffer=STEPS)
        source.s_out.connect(proc.s_in)
        proc.a_out.connect(sink.a_in)
        sinks.append(sink)
    try:
        source.run(condition=RunSteps(num_steps=STEPS), run_cfg=Loihi1SimCfg(select_tag=select_tag))
        return [sink.data.get() for sink in sinks]
    finally:
        source.stop()


#: (num_message_bits, weight_exp, num_weight_bits, sign of the weights)
CASES = [(0, 0, 8, "mixed"), (0, -3, 6, "mixed"), (0, 2, 7, "excitatory"), (0, -1, 8, "inhibitory"),
         (16, -6, 8, "mixed"), (16, 0, 5, "excitatory")]


def _signed(matrix, sign: str):
    if sign == "excitatory":
        return abs(matrix)
    if sign == "inhibitory":
        return -abs(matrix)
    return matrix


@pytest.mark.parametrize("graded", [False, True])
def test_sparse_equals_lava_nc_sparse(graded):
    """Every case of weight exponent, weight bits and sign mode: what lava_dl's Sparse sends equals what
    lava-nc's sends, step for step, and so does DelaySparse with lava-nc's DelaySparse."""
    rng = np.random.default_rng(3 + graded)
    n_out, n_in = 23, 37
    data = _inputs(rng, n_in, graded)
    bits = 16 if graded else 0
    procs = []
    for message_bits, exp, weight_bits, sign in CASES:
        if (message_bits > 0) != graded:
            continue
        w = _signed(_matrix(rng, (n_out, n_in)), sign)
        args = dict(weights=w, weight_exp=exp, num_weight_bits=weight_bits, num_message_bits=message_bits)
        procs += [nc.Sparse(**args), Sparse(**args)]
    w = _matrix(rng, (n_out, n_in))
    delays = sparse.csr_matrix(rng.integers(0, 6, (n_out, n_in)) * (w.toarray() != 0))
    for exp in (0, -4):
        args = dict(weights=w, delays=delays, weight_exp=exp, num_message_bits=bits)
        procs += [nc.DelaySparse(**args), DelaySparse(**args)]
    procs += [nc.DelaySparse(weights=w, delays=3, num_message_bits=bits), DelaySparse(weights=w, delays=3,
                                                                                   num_message_bits=bits)]
    out = _run_side_by_side(procs, data)
    for i in range(0, len(out), 2):
        assert np.abs(out[i]).sum() > 0, f"synapse pair {i // 2}: nothing sent"
        assert np.array_equal(out[i + 1], out[i]), f"synapse pair {i // 2} ({type(procs[i]).__name__})"


def test_float_models_equal_lava_nc_float_models():
    """floating_pt: lava-nc's float Sparse and DelaySparse (integer-valued matrices, so the sums are
    exact whatever their order)."""
    rng = np.random.default_rng(8)
    w = _matrix(rng, (11, 19))
    delays = sparse.csr_matrix(rng.integers(0, 4, (11, 19)) * (w.toarray() != 0))
    data = _inputs(rng, 19, True)
    procs = [nc.Sparse(weights=w, num_message_bits=8), Sparse(weights=w, num_message_bits=8),
             nc.Sparse(weights=w), Sparse(weights=w),
             nc.DelaySparse(weights=w, delays=delays, num_message_bits=8),
             DelaySparse(weights=w, delays=delays, num_message_bits=8)]
    out = _run_side_by_side(procs, data.astype(float), "floating_pt")
    for i in range(0, len(out), 2):
        assert np.abs(out[i]).sum() > 0
        assert np.array_equal(out[i + 1], out[i]), i // 2


@pytest.mark.parametrize("seed", range(40))
def test_sparse_kernels_equal_dense_kernels(seed):
    """The sparse kernels on a matrix's stored entries give the dense kernels' sums on its dense form,
    exactly: binary and graded input, weight rules of every sign mode (the sign mode given or derived,
    implicit zeros counted), extreme weights, empty rows and columns, a batch of rows; and the delayed
    synapses' buffers after several steps."""
    rng = np.random.default_rng(seed)
    n_out, n_in = int(rng.integers(1, 40)), int(rng.integers(1, 60))
    density = float(rng.choice([0.0, 0.05, 0.3, 1.0]))
    lo, hi = [(-256, 256), (0, 256), (-255, 1), (-256, -255)][seed % 4]
    w = _matrix(rng, (n_out, n_in), density, lo, hi)
    bits, mode = int(rng.integers(1, 10)), [None, syn.SignMode.MIXED][seed % 5 == 0]
    effective = syn.loihi_sparse_weights(syn.as_csr_weights(w, "test"), bits, mode)
    assert np.array_equal(effective.toarray(), syn.loihi_dense_weights(w.toarray(), bits, mode))
    starts, rows, values = syn.sparse_columns(effective)
    wt = np.ascontiguousarray(effective.toarray().T)
    for binary in (True, False):
        s = (rng.random((3, n_in)) < 0.4) * rng.integers(-2**20, 2**20, (3, n_in))
        s = s.astype(np.int32)
        exp = int(rng.integers(-8, 9))
        got, expected = np.zeros((3, n_out), np.int32), np.zeros((3, n_out), np.int32)
        syn.sparse_fixed_rows(starts, rows, values, s, binary, exp, np.zeros(n_out, np.int64), got)
        syn.dense_fixed_rows(wt, s, binary, exp, np.zeros(n_out, np.int64), expected)
        assert np.array_equal(got, expected), binary
    depth = int(rng.integers(1, 6))
    delays = rng.integers(0, depth, (n_out, n_in)).astype(np.int32)
    stored_rows = np.repeat(np.arange(n_out), np.diff(effective.indptr))  # stored zeros included
    entry_delays = delays[stored_rows, effective.indices]
    *layout, entry = syn.sparse_columns(effective, entries=(entry_delays,))
    a, b = np.zeros((n_out, depth), np.int32), np.zeros((n_out, depth), np.int32)
    for _ in range(4):
        s = ((rng.random(n_in) < 0.5) * rng.integers(-500, 500, n_in)).astype(np.int64)
        dly.delay_sparse_fixed(*layout, entry, s, False, -2, a, np.zeros(a.shape, np.int64))
        dt = np.ascontiguousarray(delays.T)
        dly.delay_dense_fixed(wt, dt, s, False, -2, b, np.zeros(b.shape, np.int64))
        assert np.array_equal(a, b)


def test_sparse_sends_what_dense_sends_in_lava():
    """The same matrix in a Sparse and a Dense (and a DelaySparse and a DelayDense) synapse of one Lava
    run: the same messages."""
    rng = np.random.default_rng(12)
    w = _matrix(rng, (17, 29), 0.4)
    delays = rng.integers(0, 4, (17, 29)) * (w.toarray() != 0)
    data = _inputs(rng, 29, False)
    procs = [Dense(weights=w.toarray(), weight_exp=-1), Sparse(weights=w, weight_exp=-1),
             DelayDense(weights=w.toarray(), delays=delays), DelaySparse(weights=w, delays=delays)]
    out = _run_side_by_side(procs, data)
    assert np.abs(out[0]).sum() > 0 and np.abs(out[2]).sum() > 0
    assert np.array_equal(out[1], out[0]) and np.array_equal(out[3], out[2])


def test_weights_get_and_set():
    """``weights.get()`` after a run is the csr_matrix the weight rule made (stored positions kept, also
    where truncation made zeros: lava-nc's model drops them and its ``get`` then fails); ``set`` with the
    same positions takes effect at the next step; other positions are refused."""
    rng = np.random.default_rng(2)
    dense = _matrix(rng, (6, 9), 0.5, -60, 60).toarray()
    dense[0, :2] = 1, 5  # truncated to 0 with 6 weight bits (MIXED: 3 LSBs dropped)
    w = sparse.csr_matrix(dense)
    w2 = w.copy()
    w2.data = rng.integers(-255, 256, w2.nnz)
    data = (rng.random((9, 6)) < 0.5).astype(np.int32)
    source, proc, sink = Source(data=data), Sparse(weights=w, num_weight_bits=6), Sink(shape=(6,), buffer=6)
    source.s_out.connect(proc.s_in)
    proc.a_out.connect(sink.a_in)
    cfg = Loihi1SimCfg(select_tag="fixed_pt")
    try:
        proc.run(condition=RunSteps(num_steps=3), run_cfg=cfg)
        got = proc.weights.get()
        assert sparse.issparse(got)
        assert np.array_equal(got.toarray(), syn.loihi_dense_weights(w.toarray(), 6))
        assert got[0, 0] == 0 and got[0, 1] == 0
        proc.weights.set(w2)
        proc.run(condition=RunSteps(num_steps=3), run_cfg=cfg)
        recorded = sink.data.get()
        with pytest.raises(ValueError, match=f"Var.set of 'weights' \\(Sparse\\): a sparse value must store "
                                             f"exactly the Var's {w.nnz} positions"):
            proc.weights.set(sparse.csr_matrix(np.ones((6, 9))))
        with pytest.raises(ValueError, match=r"must have the Var's shape \(6, 9\)"):
            proc.weights.set(sparse.csr_matrix(np.ones((6, 8))))
    finally:
        proc.stop()
    for t in range(1, 6):  # step t + 1 records the sums of step t's input
        weights = w if t <= 3 else w2
        expected = syn.dense(syn.loihi_dense_weights(weights.toarray(), 6), data[:, t - 1])
        assert np.array_equal(recorded[:, t], expected), t


@pytest.mark.parametrize("batch", [0, 2])
@pytest.mark.parametrize("name", ["cuba_dense", "cuba_delay", "cuba_recurrent", "alif", "rf_iz"])
def test_sparse_fc_layer_static_schedule_and_batch(name, batch):
    """netx's ``sparse_fc_layer=True`` on lava_dl's CSR synapses: the static schedule runs them and
    equals the general one (output and every array after every step), and both equal the network on
    dense synapses, one sample and a batch stepped together."""
    path = LOCAL / f"{name}.net"
    _need(path)
    graphs = []
    for sparse_fc_layer, static in ((True, True), (True, False), (False, True)):
        net = netx.hdf5.Network(str(path), sparse_fc_layer=sparse_fc_layer, **_kwargs(name))
        models = fused.leaf_models(net.layers, "fixed_pt")
        kinds = {type(p).__name__ for p in models}
        assert ("Sparse" in kinds or "DelaySparse" in kinds) == sparse_fc_layer, kinds
        graphs.append(fused.LocalGraph(models, net.inp, net.out, batch=batch, static=static))
    static, general, dense = graphs
    rng = np.random.default_rng(4)
    shape = ((batch,) if batch else ()) + tuple(net.inp.shape)
    sent = 0
    for t in range(STEPS):
        message = (rng.random(shape) < 0.4).astype(np.int32)
        out = static.step(message).copy()
        assert np.array_equal(out, general.step(message)), t
        assert np.array_equal(out, dense.step(message)), t
        sent += int(np.abs(out).sum())
        for i, (a, b) in enumerate(zip(_snapshot(static), _snapshot(general), strict=True)):
            assert np.array_equal(a, b), f"step {t}: array {i}"
    assert sent > 0
    assert static._plan is not None and static._plan.calls[0], "no static schedule"


def test_sparse_fc_layer_per_layer_lava_graph_and_simulate():
    """A lava-dl file with synaptic delays (DelaySparse) run by Lava layer by layer, fused, and by
    ``simulate``: all record what the dense synapses record."""
    path = LOCAL / "cuba_delay.net"
    _need(path)
    rng = np.random.default_rng(6)
    net = netx.hdf5.Network(str(path))
    data = (rng.random((*net.inp.shape, STEPS)) < 0.4).astype(np.int32)
    expected = netx.simulate(path, data)
    assert np.abs(expected).sum() > 0
    for fused_net in (False, True):
        net = netx.hdf5.Network(str(path), sparse_fc_layer=True, fused=fused_net)
        source, sink = Source(data=data), Sink(shape=net.out.shape, buffer=STEPS)
        source.s_out.connect(net.inp)
        net.out.connect(sink.a_in)
        try:
            net.run(condition=RunSteps(num_steps=STEPS), run_cfg=Loihi1SimCfg(select_tag="fixed_pt"))
            assert np.array_equal(sink.data.get(), expected), fused_net
        finally:
            net.stop()
    assert np.array_equal(netx.simulate(path, np.stack([data, data]), sparse_fc_layer=True, num_workers=1)[1],
                          expected)


def test_bad_arguments_are_named():
    ok = sparse.csr_matrix(np.eye(3))
    with pytest.raises(ValueError, match=r"Sparse: weights must lie in \[-256, 255\]"):
        Sparse(weights=sparse.csr_matrix(np.full((2, 2), 300)))
    with pytest.raises(ValueError, match="Sparse: weights must be integers"):
        Sparse(weights=sparse.csr_matrix(np.full((2, 2), 0.5)))
    with pytest.raises(ValueError, match="Sparse: weights must be finite"):
        Sparse(weights=sparse.csr_matrix(np.array([[np.nan, 1.0]])))
    with pytest.raises(ValueError, match="Sparse: weights must be a 2-D"):
        Sparse(weights=np.ones(4))
    with pytest.raises(ValueError, match="Sparse: weight_exp"):
        Sparse(weights=ok, weight_exp=40)
    with pytest.raises(ValueError, match=r"Sparse: a_bias must be a scalar or hold one value per output \(3"):
        Sparse(weights=ok, a_bias=[1, 2])
    with pytest.raises(ValueError, match=r"DelaySparse: delays must have the weights' shape \(3, 3\)"):
        DelaySparse(weights=ok, delays=sparse.csr_matrix(np.ones((2, 3))))
    with pytest.raises(ValueError, match="DelaySparse: delays"):
        DelaySparse(weights=ok, delays=-1)
    with pytest.raises(ValueError, match="DelaySparse: delays"):
        DelaySparse(weights=ok, delays=64)
    with pytest.raises(ValueError, match="DelaySparse: delays"):
        DelaySparse(weights=ok, delays=5, max_delay=3)
    # an entry without weight may hold any delay: it delays nothing
    assert DelaySparse(weights=ok, delays=np.eye(3) * 2 + 90 * (1 - np.eye(3))).a_buff.shape == (3, 3)


def test_duplicates_and_stored_zeros():
    """Duplicate entries are summed and stored zeros dropped, as the dense form has them."""
    coo = sparse.coo_matrix((np.array([3, 4, 0, 7]), (np.array([0, 0, 1, 2]), np.array([1, 1, 0, 2]))),
                            shape=(3, 3))
    proc = Sparse(weights=coo)
    init = proc.weights.init
    assert init.nnz == 2 and init[0, 1] == 7 and init[2, 2] == 7


def test_sparse_fc_layer_keeps_the_sign_mode_netx_chose(tmp_path):
    """An all-negative matrix holding -256 and odd entries fits Loihi only in MIXED mode
    (``optimize_weight_bits``' fallback): netx gives its sign mode to the sparse synapse as to the
    dense one, so -256 stays -256 (derived from the matrix, as lava-nc's Sparse derives it, the
    mode would be INHIBITORY and clip it to -255)."""
    import h5py

    from lava_dl.netx import record

    rng = np.random.default_rng(10)
    weight = -rng.integers(1, 128, (5, 8)) * 2 + 1  # odd, negative
    weight[:, 0] = -256
    assert syn.optimize_weight_bits(weight)[3] == syn.SignMode.MIXED
    neuron = {"type": "CUBA", "iDecay": 4096, "vDecay": 0, "vThMant": 1 << 16, "refDelay": 1,
              "gradedSpike": False}
    path = tmp_path / "negative.net"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        record.write_dense(layer.create_group("0"), shape=(5,), weight=weight, neuron=neuron)
    currents = []
    for sparse_fc_layer in (False, True):
        net = netx.hdf5.Network(str(path), sparse_fc_layer=sparse_fc_layer)
        graph = fused.LocalGraph(fused.leaf_models(net.layers, "fixed_pt"), net.inp, net.out)
        for _ in range(3):
            graph.step(np.eye(8, dtype=np.int32)[0])  # input 0 only: its column is -256
        currents.append(graph.instances[net.layers[0].neuron].u.copy())
    expected = syn.dense(syn.loihi_dense_weights(*syn.optimize_weight_bits(weight)[:2],
                                                 syn.SignMode.MIXED), np.eye(8)[0])
    assert np.array_equal(currents[1], currents[0])
    assert np.array_equal(currents[0], expected << 6)


def test_lava_nc_classes_and_models():
    """lava_dl's synapses are instances of lava-nc's classes (lava-dl's code checks for those) and Lava's
    compiler still gives them lava_dl's models, for both tags."""
    w = sparse.csr_matrix(np.eye(3, dtype=int))
    for proc in (Sparse(weights=w), DelaySparse(weights=w, delays=1)):
        assert isinstance(proc, nc.Sparse)
        for tag in ("fixed_pt", "floating_pt"):
            model = fused.leaf_models([proc], tag)[proc]
            assert model.__module__.endswith("_models") and "lava_dl" in model.__module__, model
    assert isinstance(DelaySparse(weights=w, delays=1), nc.DelaySparse)


@pytest.mark.parametrize("fused_net", [False, True])
def test_sparse_weights_are_read_fast(fused_net, monkeypatch):
    """``weights.get()`` of a sparse Var crosses from the worker in one shared-memory copy, as a dense
    Var's does (Lava's path, one message per stored value, is not taken), with Lava's result: lava_dl's
    and lava-nc's Sparse in a Lava graph, and a fused network's synapse."""
    from lava_dl import runtime

    rng = np.random.default_rng(14)
    if fused_net:
        net = netx.hdf5.Network(str(LOCAL / "cuba_dense.net"), sparse_fc_layer=True, fused=True)
        source = Source(data=np.zeros((*net.inp.shape, 3), np.int32))
        source.s_out.connect(net.inp)
        synapses = [layer.synapse for layer in net.layers
                    if isinstance(getattr(layer, "synapse", None), Sparse)]
    else:
        w = _matrix(rng, (20, 30), 0.3, -128, 128) * 2  # even: lava-nc's truncation keeps every entry
        synapses = [Sparse(weights=w), nc.Sparse(weights=w)]
        source = Source(data=_inputs(rng, 30, False))
        for synapse in synapses:
            source.s_out.connect(synapse.s_in)
    assert synapses
    original, taken = runtime._ORIG["get_var"], []

    def lava_path(*args, **kwargs):
        taken.append(1)
        return original(*args, **kwargs)

    try:
        source.run(condition=RunSteps(num_steps=3), run_cfg=Loihi1SimCfg(select_tag="fixed_pt"))
        for synapse in synapses:
            slow = runtime.lava_get(synapse.weights)
            monkeypatch.setitem(runtime._ORIG, "get_var", lava_path)
            fast = synapse.weights.get()
            monkeypatch.setitem(runtime._ORIG, "get_var", original)
            assert not taken, "Lava's element-by-element path was taken"
            assert sparse.issparse(fast) and fast.nnz == slow.nnz > 0
            assert np.array_equal(fast.toarray(), slow.toarray())
    finally:
        monkeypatch.setitem(runtime._ORIG, "get_var", original)
        source.stop()
