"""Lava fixed_pt process models of every family against the independent oracles of ``tests/oracles``.

One Lava graph (``Loihi1SimCfg(select_tag='fixed_pt')``), run once for the module, holds one
population per family (CubaLIF, ALIF, RF, RF_IZ, ADRF, ADRF_IZ, SigmaDelta, Delta, Sigma). Each
population is:

* random neurons (per-neuron parameters over the full integer ranges, biases, graded spikes,
  three seeds) with random inputs from tiny to beyond 24 bits;
* the constructed boundary cases of :mod:`tests.oracles.cases` (v at exactly ``vth << 6`` and
  +-1, states at exactly +-2^23, decays 0 and 4096, ...);
* neurons fed by Dense synapses holding the extreme weights -256 and 255 at every weight
  exponent from -8 to 7 (8 and 9 weight bits, all three sign modes).

Inputs reach the neurons through ``lava_dl.proc.dense.Dense`` (one step of latency) and every
population is reset before Lava step 2, so Lava step ``t`` is oracle step ``t - 2``. The output
messages of every step and all carried states at three checkpoints must equal the oracle's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi1SimCfg
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source

from lava_dl.proc.alif import ALIF
from lava_dl.proc.cuba import CubaLIF
from lava_dl.proc.dense import Dense
from lava_dl.proc.resonator import ADRF, ADRF_IZ, RF, RF_IZ
from lava_dl.proc.sigma_delta import Delta, Sigma, SigmaDelta
from tests.oracles import Trace, cases, simulate, synapse
from tests.oracles.cases import make_oracle

STEPS = 40  # oracle steps; Lava runs STEPS + 1 (the input arrives one step late)
RANDOM_PER_SEED = 30
SEEDS = (0, 1, 2)
#: Lava steps after which all states are read (oracle step = Lava step - 2).
CHECKPOINTS = (12, 27, STEPS + 1)
RESET = dict(reset_interval=1000, reset_offset=2)

PROCESSES = {
    "CUBA": (CubaLIF, ("du", "dv", "vth", "bias_mant", "bias_exp", "graded")),
    "ALIF": (ALIF, ("du", "dv", "dth", "dref", "vth", "vth_step", "bias_mant", "bias_exp", "graded")),
    "RF": (RF, ("sin_decay", "cos_decay", "vth", "graded")),
    "RF_IZ": (RF_IZ, ("sin_decay", "cos_decay", "vth", "graded")),
    "ADRF": (ADRF, ("sin_decay", "cos_decay", "dth", "dref", "vth", "vth_step", "graded")),
    "ADRF_IZ": (ADRF_IZ, ("sin_decay", "cos_decay", "dth", "dref", "vth", "vth_step", "graded")),
    "SIGMA_DELTA": (SigmaDelta, ("vth", "bias", "act_mode", "cum_error", "spike_exp", "state_exp")),
    "DELTA": (Delta, ("vth", "cum_error", "spike_exp", "state_exp")),
    "SIGMA": (Sigma, ()),
}
DEFAULTS = dict(bias_mant=0, bias_exp=0, graded=0, dth=0, dref=0, vth_step=0, bias=0, act_mode=1, cum_error=0,
                spike_exp=6, state_exp=6)

#: Weight rows of every weight-test synapse (3 binary inputs), MIXED sign mode.
WEIGHT_ROWS = [[-256, 0, 0], [255, 0, 0], [255, 255, -256], [-255, -1, 1]]
#: ``(weight_exp, num_weight_bits, rows)`` of the weight-test synapses.
WEIGHT_SYNAPSES = ([(e, 9, WEIGHT_ROWS) for e in range(-8, 8)]
                   + [(e, 8, WEIGHT_ROWS) for e in (-3, 0, 5)]
                   # INHIBITORY (-256 is clipped to -255) and EXCITATORY matrices
                   + [(2, 8, [[-256, -255, -1], [-1, 0, -128], [-255, -255, -255], [0, -3, -256]]),
                      (-2, 7, [[255, 254, 1], [1, 0, 128], [255, 255, 255], [0, 3, 255]])])


@dataclass
class Population:
    """One family's neurons, their oracle input and where each group sits."""

    params: list[dict]
    ports: list[np.ndarray]  # source data per port, (n, STEPS) (zero on the weight-test rows)
    boundary: slice
    weights: slice
    trace: Trace | None = None


def _full(family: str, p: dict) -> dict:
    names = PROCESSES[family][1]
    return {k: p.get(k, DEFAULTS.get(k)) for k in names}


def _populations() -> tuple[dict[str, Population], np.ndarray]:
    """Parameters and oracle inputs of every family, all padded to one size ``n``."""
    weight_rows = len(WEIGHT_SYNAPSES) * len(WEIGHT_ROWS)
    built = {family: cases.boundary_cases(family, STEPS) for family in PROCESSES}
    n = len(SEEDS) * RANDOM_PER_SEED + max(len(b) for b in built.values()) + weight_rows
    pops = {}
    for family, boundary in built.items():
        nports = len(cases.FAMILIES[family].ports)
        params, ports = [], [[] for _ in range(nports)]
        pad = n - len(SEEDS) * RANDOM_PER_SEED - len(boundary) - weight_rows
        for k, seed in enumerate(SEEDS):
            rng = np.random.default_rng(1000 + 10 * seed + len(family))
            count = RANDOM_PER_SEED + (pad if k == len(SEEDS) - 1 else 0)
            rand = cases.random_params(family, rng, count)
            params += rand
            inputs = cases.random_inputs(family, rng, [_full(family, p) | p for p in rand], STEPS)
            for port, data in zip(ports, inputs):
                port.append(data)
        start = len(params)
        params += [case.params for case in boundary]
        for port, data in zip(ports, cases.case_inputs(boundary, nports)):
            port.append(data)
        rng = np.random.default_rng(2000 + len(family))
        wparams = cases.random_params(family, rng, weight_rows)
        for p in wparams:
            if "graded" in p:
                p["graded"] = 1
        params += wparams
        for port in ports:
            port.append(np.zeros((weight_rows, STEPS), np.int64))
        params = [_full(family, p) for p in params]
        assert len(params) == n
        pops[family] = Population(params, [np.concatenate(p) for p in ports],
                                  slice(start, start + len(boundary)), slice(n - weight_rows, n))
    weight_input = (np.random.default_rng(3).random((3, STEPS)) < 0.5).astype(np.int64)
    weight_input[:, :4] = [[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1]]
    return pops, weight_input


def _weight_matrices(n: int, rows: slice) -> list[np.ndarray]:
    """The ``(n, 3)`` weight matrix of every weight-test synapse (its block of rows in ``rows``)."""
    out = []
    k = len(WEIGHT_ROWS)
    for i, (_, _, block) in enumerate(WEIGHT_SYNAPSES):
        w = np.zeros((n, 3), np.int64)
        w[rows.start + i * k: rows.start + (i + 1) * k] = block
        out.append(w)
    return out


def _selector(n: int, offset: int, total: int) -> np.ndarray:
    """Dense weights passing source rows ``offset ... offset + n`` to neurons ``0 ... n``."""
    w = np.zeros((n, total), np.int64)
    w[np.arange(n), offset + np.arange(n)] = 1
    return w


@pytest.fixture(scope="module")
def lava_results():
    """Build and run the graph once; return ``{family: (population, sink data, {step: states})}``."""
    pops, weight_input = _populations()
    n = len(next(iter(pops.values())).params)
    # oracle input: what the source sends through the identity synapses, plus the weight-test
    # synapses' output (Loihi weight handling, the same on every input port)
    weighted = np.zeros((n, STEPS), np.int64)
    for (exp, bits, _), w in zip(WEIGHT_SYNAPSES, _weight_matrices(n, pops["CUBA"].weights)):
        eff = synapse.loihi_weights(w.tolist(), bits)
        for t in range(STEPS):
            weighted[:, t] += synapse.dense_step(eff, weight_input[:, t], 0, exp)
    for family, pop in pops.items():
        neurons = [make_oracle(family, p) for p in pop.params]
        pop.trace = simulate(neurons, [port + weighted for port in pop.ports])

    data = np.concatenate([port for pop in pops.values() for port in pop.ports])
    source = Source(data=data)
    weight_source = Source(data=weight_input)
    matrices = _weight_matrices(n, pops["CUBA"].weights)
    weight_synapses = [Dense(weights=w, weight_exp=exp, num_weight_bits=bits)
                       for (exp, bits, _), w in zip(WEIGHT_SYNAPSES, matrices)]
    for syn in weight_synapses:
        weight_source.s_out.connect(syn.s_in)
    procs, sinks, offset = {}, {}, 0
    for family, pop in pops.items():
        cls, names = PROCESSES[family]
        proc = cls(shape=(n,), **RESET, **{k: np.array([p[k] for p in pop.params]) for k in names})
        for port_name in cls.spec.in_ports:
            harness = Dense(weights=_selector(n, offset, data.shape[0]), num_message_bits=24)
            offset += n
            source.s_out.connect(harness.s_in)
            harness.a_out.connect(getattr(proc, port_name))
            for syn in weight_synapses:
                syn.a_out.connect(getattr(proc, port_name))
        sink = Sink(shape=(n,), buffer=STEPS + 1)
        proc.s_out.connect(sink.a_in)
        procs[family], sinks[family] = proc, sink
    cfg = Loihi1SimCfg(select_tag="fixed_pt")
    checkpoints = {family: {} for family in pops}
    done = 0
    failed = False
    try:
        for stop in CHECKPOINTS:
            source.run(condition=RunSteps(num_steps=stop - done), run_cfg=cfg)
            done = stop
            for family, proc in procs.items():
                names = type(proc).spec.state_names
                checkpoints[family][stop - 2] = {s: getattr(proc, s).get() for s in names}
        return {family: (pops[family], sinks[family].data.get(), checkpoints[family]) for family in pops}
    except Exception:
        failed = True  # stop() would block forever after a worker error (see tests/lava_run.py)
        raise
    finally:
        if not failed:
            source.stop()


def _first_diff(got, want):
    bad = np.argwhere(got != want)
    if not bad.size:
        return None
    r, t = bad[0]
    return int(r), int(t), int(got[r, t]), int(want[r, t])


@pytest.mark.parametrize("family", list(PROCESSES))
def test_lava_messages_equal_oracle(lava_results, family):
    """Every output message of every step: random, boundary and weight-test neurons."""
    pop, sink, _ = lava_results[family]
    got = sink[:, 1:].astype(np.int64)  # Lava step t + 2 -> sink column t + 1
    want = pop.trace.records["s"]
    for name, rows in (("random", slice(0, pop.boundary.start)), ("boundary", pop.boundary),
                       ("weights", pop.weights)):
        assert np.array_equal(got[rows], want[rows]), (name, _first_diff(got[rows], want[rows]))
        assert np.count_nonzero(want[rows]) > 0, name


@pytest.mark.parametrize("family", list(PROCESSES))
def test_lava_states_equal_oracle(lava_results, family):
    """All carried states (u, v, th, r, re, im, sigma, act, residue, error) at three checkpoints."""
    pop, _, checkpoints = lava_results[family]
    assert sorted(checkpoints) == [c - 2 for c in CHECKPOINTS]
    for step, states in checkpoints.items():
        assert set(states) == set(pop.trace.states)
        for name, values in states.items():
            want = pop.trace.states[name][:, step]
            got = np.asarray(values).astype(np.int64)
            assert np.array_equal(got, want), (step, name, _first_diff(got[:, None], want[:, None]))


def test_boundary_rows_reach_their_targets(lava_results):
    """The oracle traces of the Lava run hit the constructed values (the cases test what they claim)."""
    for family, (pop, _, _) in lava_results.items():
        built = cases.boundary_cases(family, STEPS)
        for i, case in enumerate(built):
            row = pop.boundary.start + i
            for step, name, expected in case.checks:
                table = pop.trace.states[name[6:]] if name.startswith("after_") else pop.trace.records[name]
                assert table[row, step] == expected, (family, case.name, step, name)
