"""The settled step kernels of the sigma-delta families skip quiet neurons and give the results of
the plain kernels; the Lava models use them only while the promise they rely on holds.

* Kernel level: from states a plain step left, :func:`sigma_delta_settled_step` and
  :func:`delta_settled_step` equal :func:`sigma_delta_fixed_step` / :func:`delta_fixed_step` step
  after step, on inputs that are zero (or unchanged) in whole blocks, in parts of blocks and
  nowhere, with and without ``cum_error``.
* Model level: a Var set through Lava's runtime between two runs (which breaks the promise) is
  honoured: the Lava run equals the independent oracle of ``tests/oracles`` with the same set.
"""

from __future__ import annotations

import numpy as np
import pytest
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi1SimCfg
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source

from lava_dl.core import sigma_delta as sd
from lava_dl.proc.sigma_delta import SigmaDelta
from tests.oracles import simulate
from tests.oracles.cases import make_oracle

N = 3 * sd.QUIET_BLOCK + 17  # blocks of every kind, and a short last one


def _params(rng, cum_error: bool) -> dict:
    vth = rng.integers(0, 40, N)
    vth[:5] = 0  # fires on any change
    return dict(vth=vth, bias=rng.integers(-200, 200, N), act_mode=rng.integers(0, 2, N),
                cum_error=(rng.random(N) < 0.5) if cum_error else np.zeros(N, bool),
                spike_exp=rng.integers(0, 4, N), state_exp=np.full(N, 6))


def _inputs(rng, steps: int, hold: bool) -> list[np.ndarray]:
    """Per step: block 0 quiet (zero, or the last input with ``hold``), block 1 active in a few
    neurons only, block 2 random, the rest alternating."""
    frames, last = [], rng.integers(-5000, 5000, N)
    for t in range(steps):
        x = last.copy() if hold else np.zeros(N, np.int64)
        few = sd.QUIET_BLOCK + rng.choice(sd.QUIET_BLOCK, 3, replace=False)
        x[few] = rng.integers(-5000, 5000, 3)
        x[2 * sd.QUIET_BLOCK:3 * sd.QUIET_BLOCK] = rng.integers(-5000, 5000, sd.QUIET_BLOCK)
        if t % 2:
            x[3 * sd.QUIET_BLOCK:] = rng.integers(-5000, 5000, N - 3 * sd.QUIET_BLOCK)
        frames.append(x)
        last = x
    return frames


@pytest.mark.parametrize("cum_error", [False, True])
@pytest.mark.parametrize("family", ["sigma_delta", "delta"])
def test_settled_step_equals_fixed_step(family, cum_error):
    rng = np.random.default_rng(5 + cum_error)
    p = _params(rng, cum_error)
    if family == "sigma_delta":
        plain, settled = sd.sigma_delta_fixed_step, sd.sigma_delta_settled_step
        names = ("vth", "bias", "act_mode", "cum_error", "spike_exp", "state_exp")
        params = [p[k].astype(np.int32) for k in names]
        states = [np.zeros(N, np.int32) for _ in range(4)]
    else:
        plain, settled = sd.delta_fixed_step, sd.delta_settled_step
        params = [p[k].astype(np.int32) for k in ("vth", "cum_error", "spike_exp", "state_exp")]
        states = [np.zeros(N, np.int32) for _ in range(3)]
    first = rng.integers(-5000, 5000, N)
    out = np.zeros(N, np.int32)
    plain(*states, first, *params, out)  # the states a plain step leaves: settled
    a, b = [s.copy() for s in states], [s.copy() for s in states]
    sent = skipped_any = 0
    for x in _inputs(rng, 12, hold=family == "delta"):
        out_a, out_b = np.full(N, 7, np.int32), np.full(N, 7, np.int32)
        plain(*a, x, *params, out_a)
        settled(*b, x, *params, out_b)
        assert np.array_equal(out_a, out_b)
        assert all(np.array_equal(u, v) for u, v in zip(a, b))
        sent += np.count_nonzero(out_a)
        skipped_any |= not out_a[:sd.QUIET_BLOCK].any()
    assert sent > 0 and skipped_any


def test_var_set_between_runs_is_honoured():
    """Between two runs of zero input (where a settled step skips every block), ``sigma.set``
    moves each activation: the neurons must respond as the oracle does."""
    rng = np.random.default_rng(11)
    n, first, second = sd.QUIET_BLOCK + 9, 6, 6
    p = _params(rng, cum_error=False)
    p = {k: v[:n] for k, v in p.items()}
    p["spike_exp"] = np.zeros(n, int)
    p["act_mode"] = np.zeros(n, int)  # identity: every change of sigma reaches act
    data = np.zeros((n, first + second + 1), np.int64)
    data[:, :3] = rng.integers(-50000, 50000, (n, 3))
    new_sigma = rng.integers(-(1 << 20), 1 << 20, n)

    neuron = SigmaDelta(shape=(n,), **{k: v.astype(int) for k, v in p.items()})
    source, sink = Source(data=data), Sink(shape=(n,), buffer=first + second + 1)
    source.s_out.connect(neuron.a_in)
    neuron.s_out.connect(sink.a_in)
    cfg = Loihi1SimCfg(select_tag="fixed_pt")
    try:
        neuron.run(condition=RunSteps(num_steps=first), run_cfg=cfg)
        neuron.sigma.set(new_sigma)
        neuron.run(condition=RunSteps(num_steps=second + 1), run_cfg=cfg)
        lava_out, lava_sigma = sink.data.get(), neuron.sigma.get()
    finally:
        neuron.stop()

    oracles = [make_oracle("SIGMA_DELTA", {k: int(v[i]) for k, v in p.items()}) for i in range(n)]
    head = simulate(oracles, data[:, :first])
    for oracle, value in zip(oracles, new_sigma):
        oracle.sigma = int(value)
    tail = simulate(oracles, data[:, first:])
    expected = np.concatenate([head.records["s"], tail.records["s"]], axis=1)
    assert np.array_equal(lava_out, expected)
    assert np.array_equal(lava_sigma, tail.states["sigma"][:, -1])
    assert np.count_nonzero(expected[:, first:]) > n // 2  # the set makes most neurons send


def test_reset_is_honoured():
    """A reset (``reset_interval``) zeroes the states before a step of zero input; with a bias the
    activation moves (0 -> bias), so the step after it must be a full one: as the oracle with
    fresh neurons from the reset step on."""
    rng = np.random.default_rng(12)
    n, steps, interval = sd.QUIET_BLOCK + 9, 14, 9
    p = _params(rng, cum_error=False)
    p = {k: v[:n] for k, v in p.items()}
    p["spike_exp"] = np.zeros(n, int)
    p["act_mode"] = np.zeros(n, int)
    p["bias"] = rng.integers(100, 1000, n) * rng.choice([-1, 1], n)
    data = np.zeros((n, steps), np.int64)
    data[:, :3] = rng.integers(-50000, 50000, (n, 3))

    neuron = SigmaDelta(shape=(n,), reset_interval=interval, **{k: v.astype(int) for k, v in p.items()})
    source, sink = Source(data=data), Sink(shape=(n,), buffer=steps)
    source.s_out.connect(neuron.a_in)
    neuron.s_out.connect(sink.a_in)
    try:
        neuron.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi1SimCfg(select_tag="fixed_pt"))
        lava_out = sink.data.get()
    finally:
        neuron.stop()

    def oracles():
        return [make_oracle("SIGMA_DELTA", {k: int(v[i]) for k, v in p.items()}) for i in range(n)]

    reset_at = interval - 1  # Lava step `interval` (time_step starts at 1) resets before its dynamics
    expected = np.concatenate([simulate(oracles(), data[:, :reset_at]).records["s"],
                               simulate(oracles(), data[:, reset_at:]).records["s"]], axis=1)
    assert np.array_equal(lava_out, expected)
    assert np.count_nonzero(expected[:, reset_at]) > n // 2  # the bias moves the reset neurons
