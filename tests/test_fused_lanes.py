"""Parallel lanes of a static schedule (lava_dl.netx.fused._Lanes): calls that share no array run in
helper threads, with the results of the calls in order, bit for bit."""

from __future__ import annotations

import gc
import multiprocessing
import threading
import weakref

import numpy as np
import pytest

from lava_dl import netx
from lava_dl.netx import fused
from tests.test_fused import STEPS, _exported


def _record(*arrays):
    return None


class _Model:
    def step(self, *arrays):
        return None

    def other(self, *arrays):
        return None


def test_independent_groups_follow_shared_memory_and_owners():
    a = np.zeros(10)
    b = a[5:]  # a view: shares a's memory
    c, d, e = np.zeros(3), np.zeros(4), np.zeros(5)
    model = _Model()
    calls = [(_record, (a,)),                 # 0
             (_record, (c,)),                 # 1
             (_record, (b, np.zeros(2))),     # 2: shares a
             (model.step, (d,)),              # 3
             (model.other, (np.zeros(1),)),   # 4: the same model as 3
             (_record, ([(e, c)], 7)),        # 5: c, nested in a list
             (np.copyto, (d[:0], d[:0])),     # 6: empty views of d: no shared bytes with 3
             (np.add, (np.ones(2), np.ones(2), np.zeros(2)))]  # 7: a builtin (its __self__ is a module)
    groups = sorted(fused._independent_groups(calls))
    assert groups == [[0, 2], [1, 5], [3, 4], [6], [7]]


def _graphs(kind: str, family: str, tmp_path, monkeypatch):
    """The same exported network as two LocalGraphs: one thread, and lanes forced (any work, any
    balance, decided after one timed step, up to three lanes)."""
    path, data, kwargs = _exported(kind, family, tmp_path)
    monkeypatch.setattr(fused, "PARALLEL_MIN_SECONDS", 0.0)
    monkeypatch.setattr(fused, "PARALLEL_MAX_SHARE", 1.0)
    monkeypatch.setattr(fused, "CALIBRATION_STEPS", 1)
    graphs = []
    for threads in (1, 3):
        net = netx.hdf5.Network(net_config=str(path), **kwargs)
        graphs.append(fused.LocalGraph(fused.leaf_models(net.layers, "fixed_pt"), net.inp, net.out,
                                       threads=threads))
    frames = [np.ascontiguousarray(data[..., t % data.shape[-1]]).astype(np.int32)
              for t in range(4 * STEPS)]
    return graphs, frames


def _vars(graph) -> list:
    return [np.array(value) for model in graph.instances.values()
            for _, value in sorted(vars(model).items()) if isinstance(value, np.ndarray)]


@pytest.mark.parametrize("kind, family", [("pool", "cuba"), ("delay_conv", "rf_iz"), ("recurrent", "alif"),
                                          ("delay_dense", "cuba"), ("kwta", "cuba")])
def test_lanes_give_the_sequential_results(kind, family, tmp_path, monkeypatch):
    """Outputs at every step and every Var after the run: lanes equal one thread, with the periodic
    resets' general steps in between and a Var written mid-run (the schedule is made again)."""
    (single, lanes), frames = _graphs(kind, family, tmp_path, monkeypatch)
    used = 0
    for t, frame in enumerate(frames):
        if t == 2 * STEPS:
            before = lanes._plan
            for graph in (single, lanes):  # a neuron's threshold written: both schedules are made again
                model = next(m for m in graph.instances.values() if hasattr(m, "vth"))
                model.vth = model.vth + 1
        out_single, out_lanes = single.step(frame).copy(), lanes.step(frame).copy()
        assert np.array_equal(out_single, out_lanes), f"step {t + 1}"
        plan = lanes._plan
        used += plan is not None and plan.lanes is not None
        assert single._plan is None or single._plan.lanes is None
    assert used > 2 * STEPS, "the lanes were not used"
    assert lanes._plan is not before and lanes._plan.lanes is not None  # made again, in lanes again
    assert any(len(plan_lanes) > 1 for plan_lanes in lanes._plan.lanes.lanes)
    for x, y in zip(_vars(single), _vars(lanes), strict=True):
        assert np.array_equal(x, y)


def _lanes_graph(tmp_path, monkeypatch):
    (_, graph), frames = _graphs("pool", "cuba", tmp_path, monkeypatch)
    for frame in frames[:4]:
        graph.step(frame)
    assert graph._plan.lanes is not None
    return graph, frames


def test_an_error_in_a_helper_lane_is_raised_by_the_step(tmp_path, monkeypatch):
    graph, frames = _lanes_graph(tmp_path, monkeypatch)

    def broken(*args):
        raise ArithmeticError("broken kernel")

    for parity in (0, 1):
        helper_lane = graph._plan.lanes.lanes[parity][1]
        helper_lane[0] = (broken, ())
    with pytest.raises(ArithmeticError, match="broken kernel"):
        graph.step(frames[4])
    with pytest.raises(ArithmeticError, match="broken kernel"):  # the helpers still answer
        graph.step(frames[5])


def _step_in_child(graph, frames, queue) -> None:
    queue.put(graph.step(frames[4]).copy())


def test_a_forked_child_makes_its_own_helpers(tmp_path, monkeypatch):
    """The parent's helper threads do not exist in a forked child: it starts its own (else its step
    would wait for an answer forever)."""
    graph, frames = _lanes_graph(tmp_path, monkeypatch)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_step_in_child, args=(graph, frames, queue), daemon=True)
    child.start()
    try:
        received = queue.get(timeout=60)
        child.join(timeout=60)
    finally:
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
    assert np.array_equal(received, graph.step(frames[4]))


def test_small_or_unbalanced_work_stays_on_one_thread(tmp_path, monkeypatch):
    (_, graph), frames = _graphs("pool", "cuba", tmp_path, monkeypatch)
    calls = (list(range(3)), list(range(3)))
    monkeypatch.setattr(fused, "_independent_groups", lambda calls: [[0], [1], [2]])
    assert fused._Lanes.make(calls, np.array([1.0, 1.0, 1.0]), graph) is not None
    monkeypatch.setattr(fused, "PARALLEL_MAX_SHARE", 0.8)  # one call is 90 % of the work
    assert fused._Lanes.make(calls, np.array([9.0, 0.5, 0.5]), graph) is None
    monkeypatch.setattr(fused, "PARALLEL_MIN_SECONDS", 1e-3)
    assert fused._Lanes.make(calls, np.array([1e-4, 1e-4, 1e-4]), graph) is None
    graph.threads = 1
    monkeypatch.setattr(fused, "PARALLEL_MIN_SECONDS", 0.0)
    assert fused._Lanes.make(calls, np.array([1.0, 1.0, 1.0]), graph) is None


def _lane_threads() -> int:
    return sum(thread.name == "lava_dl-fused-lane" for thread in threading.enumerate())


def _settled_lane_threads() -> int:
    """Lane threads once the graphs dropped so far are freed and their helpers have ended."""
    gc.collect()
    count = _lane_threads()
    for _ in range(100):
        threading.Event().wait(0.02)
        count, last = _lane_threads(), count
        if count == last:
            break
    return count


def test_a_dropped_graph_ends_its_helpers_and_is_freed(tmp_path, monkeypatch):
    """The helper threads keep nothing of the graph: dropped, it is freed and its helpers end (a
    simulate call, which makes a graph per run, ends them at once)."""
    before = _settled_lane_threads()
    graph, frames = _lanes_graph(tmp_path, monkeypatch)
    assert _lane_threads() == before + 2
    ref = weakref.ref(graph)
    del graph
    assert _settled_lane_threads() == before
    assert ref() is None
    path, data, kwargs = _exported("pool", "cuba", tmp_path)
    gc.disable()  # simulate ends its helpers itself, without waiting for the collector
    try:
        netx.simulate(path, data, **kwargs)
        for _ in range(100):
            if _lane_threads() == before:
                break
            threading.Event().wait(0.02)
        assert _lane_threads() == before
    finally:
        gc.enable()


def test_close_ends_the_helpers_and_stepping_goes_on(tmp_path, monkeypatch):
    graph, frames = _lanes_graph(tmp_path, monkeypatch)
    (single, _), _ = _graphs("pool", "cuba", tmp_path, monkeypatch)
    expected = [single.step(frame).copy() for frame in frames[:12]]
    graph.close()
    outs = [graph.step(frame).copy() for frame in frames[4:12]]  # a new schedule, new lanes
    assert graph._plan.lanes is not None
    for got, want in zip(outs, expected[4:], strict=True):
        assert np.array_equal(got, want)
