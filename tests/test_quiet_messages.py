"""Quiet messages inside a fused network give the results of computing every message.

Inside :class:`lava_dl.netx.fused.LocalGraph`, a settled sigma-delta/Delta step that sent
zeros says so on its port (``send_quiet``); a synapse whose input is quiet skips its sums and
sends quiet zeros in turn, and a neuron whose last settled step was idle skips its step while
no input arrives. The reference is the same graph with every in port answering "not quiet"
and nothing derived from Vars kept between steps (everything computed): every port buffer and
every Var must be equal at every step, through busy, held, zero and changing input, with Vars
written between steps, one sample or a batch.
The settled kernels' return codes are checked directly (a Delta neuron whose last input was
not zero is not idle: zero input is a change for it).
"""

from __future__ import annotations

import numpy as np
import pytest
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess

from lava_dl.core import sigma_delta as sd
from lava_dl.core.spec import SETTLED_BUSY, SETTLED_IDLE, SETTLED_QUIET
from lava_dl.lava_glue import SendFirstModel
from lava_dl.netx import fused
from lava_dl.proc.dense import Dense
from lava_dl.proc.sigma_delta import Delta, SigmaDelta

N = sd.QUIET_BLOCK + 44  # a full block and a short one


class _Boundary(AbstractProcess):
    """The graph's input and output ports (as a netx Network's ``inp``/``out``)."""

    def __init__(self, n: int, m: int) -> None:
        super().__init__()
        self.inp = InPort(shape=(n,))
        self.out = OutPort(shape=(m,))


def _graph(rng, batch: int):
    """input -> Delta -> Dense -> Delta (fed by a synapse) -> Dense -> SigmaDelta -> output."""
    exps = dict(spike_exp=0, state_exp=6)
    first = Delta(shape=(N,), vth=rng.integers(0, 30, N), cum_error=rng.random(N) < 0.3, **exps)
    w1 = Dense(weights=rng.integers(-20, 20, (N, N)) * (rng.random((N, N)) < 0.05), num_message_bits=16)
    second = Delta(shape=(N,), vth=rng.integers(0, 30, N), cum_error=np.zeros(N, bool), reset_interval=13,
                   reset_offset=4, reset_hold=True, **exps)
    w2 = Dense(weights=rng.integers(-20, 20, (40, N)) * (rng.random((40, N)) < 0.2), num_message_bits=16)
    last = SigmaDelta(shape=(40,), vth=rng.integers(0, 30, 40), bias=rng.integers(-50, 50, 40),
                      act_mode=rng.integers(0, 2, 40), cum_error=rng.random(40) < 0.5, reset_interval=11,
                      **exps)
    boundary = _Boundary(N, 40)
    boundary.inp.connect(first.a_in)
    first.s_out.connect(w1.s_in)
    w1.a_out.connect(second.a_in)
    second.s_out.connect(w2.s_in)
    w2.a_out.connect(last.a_in)
    last.s_out.connect(boundary.out)
    procs = [first, w1, second, w2, last]
    graph = fused.LocalGraph(fused.leaf_models(procs, "fixed_pt"), boundary.inp, boundary.out, batch=batch)
    return graph, [graph.instances[p] for p in procs]


def _inputs(rng, lead: tuple) -> list[np.ndarray]:
    """Busy frames, a held frame, zeros (the Delta neurons send the change, then fall quiet), a
    ramp (the first Delta sends the same change every step: the second one's input is held, then
    quiet when the ramp stops), a new frame held again; with a batch, one sample keeps changing
    for a while (nothing quiet)."""
    def frame():
        return rng.integers(-3000, 3000, (*lead, N)) * (rng.random((*lead, N)) < 0.3)

    frames = [frame() for _ in range(3)]
    held = frame()
    frames += [held] * 6 + [np.zeros((*lead, N), np.int64)] * 8
    slope = frame()
    slope = np.sign(slope) * (30 + np.abs(slope) // 8)  # above every threshold: sent every step
    frames += [slope * k for k in range(1, 6)] + [slope * 5] * 6
    held = frame()
    frames += [held] * 7 + [np.zeros((*lead, N), np.int64)] * 6
    if lead:
        for t in range(10, 13):
            frames[t] = frames[t].copy()
            frames[t][0] = frame()[0]
    return [f.astype(np.int32) for f in frames]


def _snapshot(graph) -> list[np.ndarray]:
    out = []
    for model in graph.order:
        for name in sorted(vars(type(model))):
            value = getattr(model, name, None)
            if isinstance(value, np.ndarray) and not name.startswith("_"):
                out.append(value.copy())
        out += [port.buf.copy() for port in fused._out_shims(model)]
    return out


@pytest.mark.parametrize("batch", [0, 3])
def test_quiet_messages_equal_computing_everything(batch, monkeypatch):
    rng = np.random.default_rng(21 + batch)
    state = rng.bit_generator.state
    graph, models = _graph(rng, batch)
    rng.bit_generator.state = state
    reference, reference_models = _graph(rng, batch)
    frames = _inputs(np.random.default_rng(5), (batch,) if batch else ())

    everything, kept = fused._InPort.quiet, SendFirstModel.derived
    seen = {"quiet port": 0, "idle neuron": 0, "quiet, not idle": 0, "zeroed synapse": 0, "busy": 0}
    for t, frame in enumerate(frames):
        if t == 12:  # Vars written between steps (as a fused network's set does) while all is quiet
            for ms in (models, reference_models):
                sigma = ms[-1].sigma
                sigma[...] = np.arange(sigma.size).reshape(sigma.shape) * 97 % 4001 - 2000
                ms[-1].sigma = sigma
                a_buff = ms[1].a_buff
                a_buff[..., ::7] = 1234
                ms[1].a_buff = a_buff
        if t == len(frames) - 4:  # a bias set on a quiet synapse: sent from the next step on
            for ms in (models, reference_models):
                bias = ms[3].a_bias
                bias[..., 3] = 5000
                ms[3].a_bias = bias
        out = graph.step(frame).copy()
        seen["quiet port"] += any(p.quiet for m in graph.order for p in fused._out_shims(m))
        seen["idle neuron"] += any(vars(m).get("_lava_dl_idle", False) for m in graph.order)
        seen["quiet, not idle"] += models[2].s_out.quiet and not vars(models[2])["_lava_dl_idle"]
        seen["zeroed synapse"] += any(vars(m).get("_lava_dl_zero") is not None for m in graph.order)
        seen["busy"] += bool(out.any())
        monkeypatch.setattr(fused._InPort, "quiet", lambda self: False)
        monkeypatch.setattr(SendFirstModel, "derived", lambda self, key, compute: compute())
        try:
            expected = reference.step(frame).copy()
        finally:
            monkeypatch.setattr(fused._InPort, "quiet", everything)
            monkeypatch.setattr(SendFirstModel, "derived", kept)
        assert np.array_equal(out, expected), f"step {t}: output"
        for i, (a, b) in enumerate(zip(_snapshot(graph), _snapshot(reference))):
            assert np.array_equal(a, b), f"step {t}: array {i}"
    assert all(count > 0 for count in seen.values()), seen


def test_settled_step_return_codes():
    rng = np.random.default_rng(3)
    exps = [np.zeros(N, np.int32), np.full(N, 6, np.int32)]
    vth, cum = np.full(N, 10, np.int32), np.zeros(N, np.int32)
    states = [np.zeros(N, np.int32) for _ in range(3)]
    out = np.zeros(N, np.int32)
    x = rng.integers(-3000, 3000, N).astype(np.int32)
    assert sd.delta_settled_step(*states, x, vth, cum, *exps, out) == SETTLED_BUSY
    # the same input again: nothing changes, zeros sent, but zero input would be a change
    assert sd.delta_settled_step(*states, x, vth, cum, *exps, out) == SETTLED_QUIET and not out.any()
    zero = np.zeros(N, np.int32)
    assert sd.delta_settled_step(*states, zero, vth, cum, *exps, out) == SETTLED_BUSY
    assert sd.delta_settled_step(*states, zero, vth, cum, *exps, out) == SETTLED_IDLE and not out.any()

    sd_states = [np.zeros(N, np.int32) for _ in range(4)]
    params = [vth, rng.integers(-50, 50, N).astype(np.int32), np.ones(N, np.int32), cum, *exps]
    assert sd.sigma_delta_settled_step(*sd_states, x, *params, out) == SETTLED_BUSY
    assert sd.sigma_delta_settled_step(*sd_states, zero, *params, out) == SETTLED_IDLE and not out.any()
