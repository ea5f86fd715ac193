"""A fused network's static schedule gives the results of its general schedule, step for step.

Where every model of a :class:`lava_dl.netx.fused.LocalGraph` can say which kernel calls its
step amounts to (``lava_dl_plan``), the graph runs those calls on fixed arrays instead of
passing messages through its ports. The reference is the same graph built with
``static=False``: the output and every Var and port buffer must be equal after every step,
through Var arrays replaced and written in place between steps, and an input of another dtype
(a step the general schedule runs), for every network family of the repository's lava-dl
fixtures, one sample and a batch.

Also here: a Var set between steps (``weights.set`` in a Lava run, a fused network's ``set``)
takes effect at the next step, as in lava-nc's models. The synapse models lay their weights
out once; before, they kept using the old layout.
"""

from __future__ import annotations

import numpy as np
import pytest
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess

from lava_dl import netx
from lava_dl.core import synapse as syn
from lava_dl.netx import fused
from lava_dl.proc.conv import Conv
from lava_dl.proc.cuba import CubaLIF
from lava_dl.proc.dense import Dense
from tests.test_netx_export import LOCAL, LOCAL_NAMES, _kwargs, _need
from tests.test_quiet_messages import _snapshot

STEPS = 16


def _graphs(path, batch: int, **kwargs) -> tuple:
    net = netx.hdf5.Network(str(path), **kwargs)
    models = fused.leaf_models(net.layers, "fixed_pt")
    return net, [fused.LocalGraph(models, net.inp, net.out, batch=batch, static=static)
                 for static in (True, False)]


def _replace(model, name: str, change) -> None:
    """Give ``model`` a new array for Var ``name`` (as a fused network's ``set`` does)."""
    value = getattr(model, name).copy()
    change(value)
    setattr(model, name, value)


@pytest.fixture
def static_steps(monkeypatch) -> list:
    """Grows by one for every step a static schedule runs."""
    ran, original = [], fused._Plan.step

    def step(self, message):
        ran.append(1)
        return original(self, message)

    monkeypatch.setattr(fused._Plan, "step", step)
    return ran


def _frame(rng, shape, graded: bool) -> np.ndarray:
    if graded:
        return rng.integers(-300, 300, shape).astype(np.int32)
    return (rng.random(shape) < 0.3).astype(np.int32)


@pytest.mark.parametrize("batch", [0, 2])
@pytest.mark.parametrize("name", LOCAL_NAMES)
def test_static_schedule_equals_general_schedule(name, batch, static_steps):
    path = LOCAL / f"{name}.net"
    _need(path)
    net, (static, general) = _graphs(path, batch, **_kwargs(name))
    rng = np.random.default_rng(11)
    shape = ((batch,) if batch else ()) + tuple(net.inp.shape)
    graded = name.startswith("sdnn")
    for t in range(STEPS):
        message = _frame(rng, shape, graded)
        if t == 6:  # Var arrays replaced between steps: a neuron parameter, weights
            for graph in (static, general):
                for model in graph.order:
                    if hasattr(model, "_lava_dl_buffers") and hasattr(model, "du"):
                        _replace(model, "du", lambda du: du.__setitem__(..., (du + 700) % 4096))
                    if type(model).__name__ in ("PyDenseModelFixed", "PyDelayDenseModelFixed"):
                        _replace(model, "weights", lambda w: np.negative(w, out=w))
        if t == 9:  # a synapse's activation written in place (the Var holds what it sends next; a
            # DelayDense's delay line, whose first column it sends next)
            for graph in (static, general):
                for model in graph.order:
                    sent = getattr(model, "lava_dl_sent_var", None)
                    if sent or type(model).__name__ == "PyDelayDenseModelFixed":
                        getattr(model, sent or "a_buff")[..., ::3] = 1000
        if t == 11:  # another dtype: the general schedule runs this step
            message = message.astype(np.int64)
        out = static.step(message).copy()
        expected = general.step(message).copy()
        assert np.array_equal(out, expected), f"step {t}: output"
        for i, (a, b) in enumerate(zip(_snapshot(static), _snapshot(general), strict=True)):
            assert np.array_equal(a, b), f"step {t}: array {i}"
    assert general._plan is None
    # all but three steps: the first, the one after the weights changed (a synapse lays new weights out
    # in its step) and the one of another dtype
    assert len(static_steps) == STEPS - 3, len(static_steps)


@pytest.mark.parametrize("batch", [0, 2])
@pytest.mark.parametrize("name", ["sdnn_dense", "sdnn_cum_error"])
def test_static_schedule_with_quiet_messages(name, batch, static_steps):
    """Sigma-delta networks on held inputs: their messages become quiet (zeros that the sender says are
    zeros), and the static schedule skips what the general one skips (idle neurons without input,
    synapses and element moves of quiet input) with the same arrays after every step: inputs held,
    changed, zeros, back; a Var replaced between steps (the schedule is made again, its flags from the
    ports' quiet messages) and a step of the general schedule in between."""
    path = LOCAL / f"{name}.net"
    _need(path)
    net, (static, general) = _graphs(path, batch, **_kwargs(name))
    rng = np.random.default_rng(17)
    shape = ((batch,) if batch else ()) + tuple(net.inp.shape)
    first, second = _frame(rng, shape, True), _frame(rng, shape, True)
    zeros = np.zeros(shape, np.int32)
    sequence = [first] * 7 + [second] * 6 + [zeros] * 6 + [first] * 4 + [zeros] * 5
    quiet = []
    for t, message in enumerate(sequence):
        if t == 16:  # a neuron's threshold replaced (a fused network's set): the schedule is made again
            for graph in (static, general):
                model = next(m for m in graph.order if hasattr(m, "vth"))
                _replace(model, "vth", lambda vth: vth.__iadd__(1))
        if t == 20:
            message = message.astype(np.int64)  # another dtype: a general step in between
        out = static.step(message).copy()
        assert np.array_equal(out, general.step(message)), f"step {t}: output"
        for i, (a, b) in enumerate(zip(_snapshot(static), _snapshot(general), strict=True)):
            assert np.array_equal(a, b), f"step {t}: array {i}"
        plan = static._plan
        quiet.append(0 if plan is None else sum(bool(flag[0]) for flag in plan.flags.values()))
    assert max(quiet[9:13]) > 0 and max(quiet[14:19]) > 0, quiet  # held input: quiet messages
    assert len(static_steps) >= len(sequence) - 4, len(static_steps)


@pytest.mark.parametrize("batch", [0, 2])
@pytest.mark.parametrize("name", ["cuba_dense", "cuba_recurrent", "alif", "adrf_iz"])
def test_static_schedule_with_periodic_resets(name, batch, static_steps):
    """Steps in which a layer resets its states run the general schedule; the static one goes on
    after them (netx staggers the layers' resets: several such steps per interval)."""
    path = LOCAL / f"{name}.net"
    _need(path)
    net, (static, general) = _graphs(path, batch, reset_interval=5, **_kwargs(name))
    rng = np.random.default_rng(3)
    shape = ((batch,) if batch else ()) + tuple(net.inp.shape)
    resets = {(int(m.reset_interval[0]), int(m.reset_offset[0]) % 5) for m in general.order
              if hasattr(m, "reset_interval")}
    assert len(resets) > 1  # staggered
    general_steps = 0
    for t in range(1, 21):
        message = _frame(rng, shape, False)
        before = len(static_steps)
        out = static.step(message).copy()
        reset = any(t % i == o for i, o in resets)
        assert (len(static_steps) > before) == (t > 1 and not reset), t
        general_steps += reset
        assert np.array_equal(out, general.step(message)), t
        for i, (a, b) in enumerate(zip(_snapshot(static), _snapshot(general), strict=True)):
            assert np.array_equal(a, b), f"step {t}: array {i}"
    assert general_steps > 1 and static_steps


@pytest.mark.parametrize("batch", [0, 2])
@pytest.mark.parametrize("reset_interval", [None, 7])
def test_static_schedule_with_axonal_delay_lines(batch, reset_interval, static_steps):
    """AxonDelay lines (a lava_dl file's axonal delays; here lava-dl's delay fixture read with
    ``delay_mode='axonal'``) take part: a line's head follows the time step, the steps that zero the
    lines (or reset the neurons) run the general schedule, and delays replaced between steps are used
    from the next step."""
    path = LOCAL / "cuba_delay.net"
    _need(path)
    net, (static, general) = _graphs(path, batch, delay_mode="axonal", reset_interval=reset_interval)
    lines = [[m for m in graph.order if type(m).__name__ == "PyAxonDelayModelFixed"]
             for graph in (static, general)]
    assert len(lines[0]) == 2 and all(np.ptp(m.delays) > 0 for m in lines[0])
    resets = {(int(m.reset_interval[0]), int(m.reset_offset[0]) % int(m.reset_interval[0]))
              for m in general.order if getattr(m, "reset_interval", [0])[0] > 0}
    assert len(resets) == (2 if reset_interval else 0)  # two blocks (a line resets with its block)
    rng = np.random.default_rng(8)
    shape = ((batch,) if batch else ()) + tuple(net.inp.shape)
    for t in range(1, 25):
        if t == 12:
            for line in lines:
                line[1].delays = np.roll(line[1].delays, 1)
        message = _frame(rng, shape, False)
        before = len(static_steps)
        out = static.step(message).copy()
        general_step = t == 1 or any(t % i == o for i, o in resets)
        assert (len(static_steps) > before) != general_step, t
        assert np.array_equal(out, general.step(message)), t
        for i, (a, b) in enumerate(zip(_snapshot(static), _snapshot(general), strict=True)):
            assert np.array_equal(a, b), f"step {t}: array {i}"
    assert len(static_steps) > 5


def test_static_schedule_refused_until_a_var_changes():
    """A graph whose models refused a static schedule (here: a synapse with a bias) does not ask them
    again at every step, only after a Var changed (the bias set to zero at step 5)."""
    static, general, synapse = _three_synapses(np.random.default_rng(2), bias=300)
    asked, made = [], fused._Plan.make

    def counting(graph):
        asked.append(graph.time_step)
        return made(graph)

    rng = np.random.default_rng(1)
    fused._Plan.make = counting
    try:
        for t in range(1, 11):
            if t == 5:
                for graph in (static, general):
                    _replace(graph.instances[synapse], "a_bias", lambda b: b.__setitem__(..., 0))
            message = (rng.random(9) < 0.6).astype(np.int32)
            assert np.array_equal(static.step(message), general.step(message)), t
            assert (static._plan is not None) == (t >= 5), t
    finally:
        fused._Plan.make = made
    assert asked == [2, 5]


class _Boundary(AbstractProcess):
    def __init__(self, n, m) -> None:
        super().__init__()
        self.inp, self.out = InPort(shape=n), OutPort(shape=m)


def _synapse_graph(proc, in_shape, out_shape, static: bool):
    boundary = _Boundary(in_shape, out_shape)
    boundary.inp.connect(proc.s_in)
    proc.a_out.connect(boundary.out)
    graph = fused.LocalGraph(fused.leaf_models([proc], "fixed_pt"), boundary.inp, boundary.out, static=static)
    return graph, graph.instances[proc]


def _three_synapses(rng, bias: int):
    """input -> neuron -> three Dense synapses (the last with ``bias``) -> one neuron -> output: the
    static and the general graph, and the biased synapse."""
    n, m = 9, 6
    boundary = _Boundary((n,), (m,))
    first = CubaLIF(shape=(n,), du=0, dv=0, vth=0)  # passes its input spikes on
    synapses = [Dense(weights=rng.integers(-255, 256, (m, n)), weight_exp=exp) for exp in (3, 0, 2)]
    synapses[2].a_bias.init = np.full(m, bias)
    last = CubaLIF(shape=(m,), du=300, dv=200, vth=5000)
    boundary.inp.connect(first.a_in)
    for synapse in synapses:
        first.s_out.connect(synapse.s_in)
        synapse.a_out.connect(last.a_in)
    last.s_out.connect(boundary.out)
    models = fused.leaf_models([first, *synapses, last], "fixed_pt")
    static, general = (fused.LocalGraph(models, boundary.inp, boundary.out, static=kind)
                       for kind in (True, False))
    return static, general, synapses[2]


@pytest.mark.parametrize("bias", [0, 300])
def test_static_schedule_sums_several_sources(bias, static_steps):
    """Three synapses into one neuron port: their messages are summed in the port's dtype (as Lava's
    port adds them). A synapse with a bias sends its sums plus the bias (a new array every step):
    then the general schedule runs."""
    rng = np.random.default_rng(9)
    static, general, _ = _three_synapses(rng, bias)
    synapses = [p for p in general.instances if type(p).__name__ == "Dense"]
    active = np.zeros(3, bool)
    for t in range(12):
        message = (rng.random(9) < 0.6).astype(np.int32)
        assert np.array_equal(static.step(message), general.step(message)), t
        active |= [bool(general.instances[s].a_buff.any()) for s in synapses]
        for i, (a, b) in enumerate(zip(_snapshot(static), _snapshot(general), strict=True)):
            assert np.array_equal(a, b), f"step {t}: array {i}"
    assert active.all()
    assert len(static_steps) == (0 if bias else 11)


@pytest.mark.parametrize("static", [True, False])
def test_dense_weights_replaced_between_steps_take_effect(static):
    rng = np.random.default_rng(4)
    w1, w2 = (rng.integers(-255, 256, (5, 12)) for _ in range(2))
    graph, model = _synapse_graph(Dense(weights=w1, weight_exp=1), (12,), (5,), static)
    frames = [(rng.random(12) < 0.5).astype(np.int32) for _ in range(6)]
    outs = [graph.step(f).copy() for f in frames[:3]]
    model.weights = w2.astype(np.int32)  # as a fused network's set, between steps 3 and 4
    outs += [graph.step(f).copy() for f in frames[3:]]
    outs.append(graph.step(np.zeros(12, np.int32)).copy())
    for t in range(1, 7):  # step t sends the sums of step t - 1's input
        weights = w1 if t <= 3 else w2
        expected = syn.dense(syn.loihi_dense_weights(weights), frames[t - 1], weight_exp=1)
        assert np.array_equal(outs[t], expected), t


@pytest.mark.parametrize("static", [True, False])
def test_conv_weights_replaced_between_steps_take_effect(static, static_steps):
    """Conv weights replaced between steps take effect at the next step, and a static schedule goes on
    from that step: the kernel is laid out again while the schedule is made (before, the schedule was
    refused once and never asked for again)."""
    rng = np.random.default_rng(5)
    w1, w2 = (rng.integers(-255, 256, (3, 3, 3, 2)) for _ in range(2))
    graph, model = _synapse_graph(Conv(weight=w1, input_shape=(6, 5, 2), padding=1), (6, 5, 2), (6, 5, 3),
                                  static)
    frames = [(rng.random((6, 5, 2)) < 0.5).astype(np.int32) for _ in range(8)]
    outs = [graph.step(f).copy() for f in frames[:3]]
    model.weight = w2.astype(np.int32)
    before = len(static_steps)
    outs += [graph.step(f).copy() for f in frames[3:]]
    outs.append(graph.step(np.zeros((6, 5, 2), np.int32)).copy())
    for t in range(1, 9):
        weight = w1 if t <= 3 else w2
        expected = syn.conv(frames[t - 1], weight, padding=1)
        assert np.array_equal(outs[t], expected), t
    assert len(static_steps) - before == (6 if static else 0)


def test_dense_weights_set_between_lava_runs_take_effect():
    """``weights.set`` between two runs of a Lava graph changes the sums of the next steps (lava-nc's
    Dense reads its weights every step; lava_dl's laid them out once and kept the old ones)."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi1SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    rng = np.random.default_rng(6)
    w1, w2 = (rng.integers(-255, 256, (4, 7)) for _ in range(2))
    data = (rng.random((7, 6)) < 0.5).astype(np.int32)
    source, dense, sink = Source(data=data), Dense(weights=w1), Sink(shape=(4,), buffer=6)
    source.s_out.connect(dense.s_in)
    dense.a_out.connect(sink.a_in)
    cfg = Loihi1SimCfg(select_tag="fixed_pt")
    try:
        dense.run(condition=RunSteps(num_steps=3), run_cfg=cfg)
        dense.weights.set(w2.astype(np.int32))
        dense.run(condition=RunSteps(num_steps=3), run_cfg=cfg)
        recorded = sink.data.get()
    finally:
        dense.stop()
    for t in range(1, 6):  # step t + 1 records the sums of step t's input
        weights = w1 if t <= 3 else w2
        expected = syn.dense(syn.loihi_dense_weights(weights), data[:, t - 1])
        assert np.array_equal(recorded[:, t], expected), t


def test_fused_lava_network_runs_its_static_schedule(tmp_path):
    """A fused Network inside Lava (no reset interval: every model takes part) records what the
    per-layer graph records, with a weight set between runs reaching both."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi1SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    path = LOCAL / "cuba_conv.net"
    _need(path)
    rng = np.random.default_rng(8)
    results = []
    in_shape = netx.hdf5.Network(str(path), **_kwargs("cuba_conv")).inp.shape
    data = (rng.random((*in_shape, 10)) < 0.4).astype(np.int32)
    for fuse in (False, True):
        net = netx.hdf5.Network(str(path), fused=fuse, **_kwargs("cuba_conv"))
        source, sink = Source(data=data), Sink(shape=net.out.shape, buffer=20)
        source.s_out.connect(net.inp)
        net.out.connect(sink.a_in)
        cfg = Loihi1SimCfg(select_tag="fixed_pt")
        synapse = net.layers[-1].synapse
        try:
            net.run(condition=RunSteps(num_steps=10), run_cfg=cfg)
            synapse.weights.set(-synapse.weights.get())
            net.run(condition=RunSteps(num_steps=10), run_cfg=cfg)
            results.append((sink.data.get(), net.layers[-1].neuron.v.get(), synapse.weights.get()))
        finally:
            net.stop()
    for a, b in zip(*results):
        assert np.array_equal(a, b)
    assert results[0][0].any()
