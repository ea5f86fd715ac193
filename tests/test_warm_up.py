"""Kernels compiled in the host before Lava forks: exactly those of the graph's models.

A Lava run calls :func:`lava_dl.runtime.warm_up_models` on its (Process, ProcessModel) pairs just
before it starts the workers; each lava_dl model compiles the kernels its steps will call, with the
argument types they will have. ``tests/_warm_up_check.py`` checks in a fresh interpreter that, after
the hooks, stepping the models of every lava-dl fixture compiles nothing more.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi1SimCfg
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source

import lava_dl  # noqa: F401
from lava_dl import netx, runtime
from lava_dl.proc.delay import AxonDelay
from lava_dl.proc.dense import Dense
from tests.lava_run import run_and_read

ROOT = pathlib.Path(__file__).resolve().parents[1]
CFG = Loihi1SimCfg(select_tag="fixed_pt")


@pytest.mark.parametrize("matrices", ["laid out", "large"])
def test_steps_compile_nothing_after_warm_up(matrices):
    """Every fixture's models (all families; dense, sparse, conv, convT, pool, unpool, recurrent and
    delayed synapses; a fused network), fixed and float: after their hooks, Lava's per-step methods
    and a static schedule compile no further kernel signature. And only what is needed is compiled:
    building a dense CUBA network compiles nothing, warming it no conv, sparse, delay or float kernel.
    With every matrix taken as large (not laid out: one-entry stand-ins), the same holds."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = [sys.executable, str(ROOT / "tests" / "_warm_up_check.py")]
    args += ["--large"] if matrices == "large" else []
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert sum(line.endswith(" ok") for line in lines) >= 46, proc.stdout  # 23 networks x 2 tags
    assert any(line.startswith("cuba_conv (fused)") and line.endswith(" ok") for line in lines)
    if matrices == "laid out":
        assert any(line.startswith("cuba_dense (only its kernels)") and line.endswith(" ok")
                   for line in lines)


def test_a_lava_run_warms_exactly_its_models(monkeypatch):
    """The run hands the hook its own processes with the models Lava selected, before the workers
    start: lava_dl's models with their hooks, lava-nc's (the RingBuffers) without one."""
    import multiprocessing

    seen: list = []
    children: list = []
    original = runtime.warm_up_models

    def record(pairs):
        pairs = list(pairs)
        seen.extend(pairs)
        children.append(len(multiprocessing.active_children()))  # no worker forked yet
        original(pairs)

    monkeypatch.setattr(runtime, "warm_up_models", record)
    weights = np.array([[2, -4, 6], [0, 4, 6]])
    dense = Dense(weights=weights)
    source = Source(data=np.ones((3, 4), np.int32))
    sink = Sink(shape=(2,), buffer=4)
    source.s_out.connect(dense.s_in)
    dense.a_out.connect(sink.a_in)
    before = len(multiprocessing.active_children())
    (out,) = run_and_read(sink, 4, [sink.data], CFG)
    assert children == [before]
    assert out[:, 1:].T.tolist() == [[4, 10]] * 3  # one step of synaptic latency
    models = {proc: model for proc, model in seen}
    assert set(models) == {dense, source, sink}
    assert models[dense].__name__ == "PyDenseModelFixed" and hasattr(models[dense], "lava_dl_warm_up")
    assert not hasattr(models[source], "lava_dl_warm_up")


def test_simulate_warms_the_models_before_forking_its_workers(monkeypatch):
    """``simulate`` over several workers compiles the network's kernels in the calling process first,
    so that its forked workers inherit them (else each worker loads them from Numba's cache at every
    call); the result is unchanged."""
    from lava_dl.netx.fused import leaf_models

    path = ROOT / "tests" / "fixtures" / "lava_dl_0.6" / "cuba_dense.net"
    x = (np.random.default_rng(0).random((4, *netx.hdf5.Network(net_config=str(path)).inp.shape, 6)) < 0.3)
    expected = netx.simulate(str(path), x.astype(np.int32), num_workers=1)
    seen: list = []
    monkeypatch.setattr(runtime, "warm_up_models", lambda pairs: seen.append(dict(pairs)))
    np.testing.assert_array_equal(netx.simulate(str(path), x.astype(np.int32), num_workers=2), expected)
    (models,) = seen
    assert [type(p).__name__ for p in models] == [type(p).__name__ for p in leaf_models(
        netx.hdf5.Network(net_config=str(path)).layers, "fixed_pt")]
    assert all(hasattr(model, "lava_dl_warm_up") for model in models.values())


def test_a_large_matrix_is_not_laid_out_again_in_the_host(monkeypatch):
    """Above ``WARM_UP_ENTRIES`` stored weights the hook applies the weight rule to a one-entry stand-in,
    not to the matrix (which the worker lays out anyway: a second layout in the host would cost as much,
    seconds for 10^7 entries); up to it, to the matrix itself."""
    from scipy.sparse import csr_matrix

    from lava_dl.core import synapse
    from lava_dl.netx.fused import leaf_models
    from lava_dl.proc.sparse import Sparse

    shapes = []
    for name in ("loihi_dense_weights", "loihi_sparse_weights"):
        rule = getattr(synapse, name)
        monkeypatch.setattr(synapse, name, lambda w, *a, _rule=rule: shapes.append(w.shape) or _rule(w, *a))
    rng = np.random.default_rng(0)
    small, large = (300, 200), (1100, 1000)  # 60k and 1.1M entries
    procs = [Dense(weights=rng.integers(-100, 100, small)), Dense(weights=rng.integers(-100, 100, large)),
             Sparse(weights=csr_matrix(rng.integers(-100, 100, large)))]
    runtime.warm_up_models(leaf_models(procs, "fixed_pt").items())
    # (the sparse rule applies the dense one to the stored values, a 1 x nnz row)
    assert shapes == [small, (1, 1), (1, 1), (1, 1)]


def test_a_failing_hook_leaves_the_error_to_the_model(caplog):
    """A hook that fails is skipped (the others still run; a debug log line says so): the model meets
    the same error at its first step, where the runtime reports it with the process named."""
    calls = []

    class Failing:
        @classmethod
        def lava_dl_warm_up(cls, proc):
            calls.append(("failing", proc))
            raise ValueError("bad weights")

    class Fine:
        @classmethod
        def lava_dl_warm_up(cls, proc):
            calls.append(("fine", proc))

    with caplog.at_level("DEBUG", logger="lava_dl.runtime"):
        runtime.warm_up_models([("a", Failing), ("b", None), ("c", object), ("d", Fine)])
    assert calls == [("failing", "a"), ("fine", "d")]
    assert "warm-up of Failing for a skipped: ValueError('bad weights')" in caplog.text


def test_an_error_met_while_warming_up_is_raised_by_the_run():
    """Delays written into the Var's ``init`` after construction beyond ``max_delay``: the hook's layout
    fails in the host (skipped), then the model's first step raises it through the worker-error path."""
    line = AxonDelay(shape=(3,), delays=[0, 1, 2], max_delay=2)
    line.delays.init = np.array([0, 1, 5])
    source = Source(data=np.ones((3, 4), np.int32))
    sink = Sink(shape=(3,), buffer=4)
    source.s_out.connect(line.s_in)
    line.s_out.connect(sink.a_in)
    with sink:
        with pytest.raises(runtime.ProcessError, match=r"delays must lie in \[0, 2\]") as info:
            sink.run(condition=RunSteps(num_steps=2), run_cfg=CFG)
    assert info.value.exc_type == "ValueError"
