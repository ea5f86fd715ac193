"""lava_dl.runtime: fast readout, worker errors, shutdown, leaks and input checks on Lava."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess, ProcessServer
from lava.magma.core.process.variable import Var, VarServer
from lava.magma.core.resources import CPU
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi1SimCfg
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source

import lava_dl.lava_glue  # noqa: F401  (installs lava_dl.runtime)
from lava_dl import netx, runtime
from lava_dl.proc.cuba import CubaLIF
from lava_dl.proc.dense import Dense
from tests.conftest import FIXTURES, REPO

MNIST = FIXTURES / "mnist.net"
CFG = Loihi1SimCfg(select_tag="fixed_pt")
pytestmark = pytest.mark.timeout(120)


# --------------------------------------------------------------------------
# A process whose model raises at a chosen step
# --------------------------------------------------------------------------

class Boom(Exception):
    """The test error."""


class Raiser(AbstractProcess):
    """Passes its input on; its model raises :class:`Boom` at step ``at_step``."""

    def __init__(self, *, shape, at_step: int = 3, name: str | None = None):
        super().__init__(shape=shape, at_step=at_step, name=name)
        self.s_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.at_step = Var(shape=(1,), init=at_step)

    def lava_dl_process_models(self) -> list:
        """Models for Lava's compiler (lava_dl's discovery hook; no directory scan)."""
        return [PyRaiserModel]


@implements(proc=Raiser, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyRaiserModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    at_step: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def run_spk(self) -> None:
        x = self.s_in.recv()
        if self.time_step == int(self.at_step[0]):
            raise Boom(f"boom at step {self.time_step}")
        self.s_out.send(x)


def _children() -> set[int]:
    """Live child processes of this interpreter, without the multiprocessing resource tracker."""
    out = subprocess.run(["ps", "--ppid", str(os.getpid()), "-o", "pid=,args="], capture_output=True,
                         text=True).stdout
    return {int(line.split()[0]) for line in out.splitlines()
            if line.strip() and "resource_tracker" not in line and " ps " not in f" {line} "}


def _shm_names(proc) -> list[str]:
    handles = proc.runtime._messaging_infrastructure.smm._shared_memory_handles
    return [h.name.lstrip("/") for h in handles]


def _left(names: list[str]) -> list[str]:
    return [n for n in names if os.path.exists(f"/dev/shm/{n}")]


def _chain(where: str, n: int = 8, steps: int = 20):
    """source -> [Raiser] -> Dense -> CubaLIF -> [Raiser] -> Dense -> CubaLIF -> [Raiser] -> sink."""
    src = Source(data=np.ones((n, steps)))
    procs: list = []
    for stage in ("up", "mid", "down"):
        if stage == where:
            procs.append(Raiser(shape=(n,), name="bad"))
        if stage != "down":
            procs += [Dense(weights=np.eye(n, dtype=int) * 5), CubaLIF(shape=(n,), du=400, dv=400, vth=10)]
    sink = Sink(shape=(n,), buffer=steps)
    prev = src.s_out
    for p in procs:
        prev.connect(p.s_in if hasattr(p, "s_in") else p.a_in)
        prev = p.s_out if hasattr(p, "s_out") else p.a_out
    prev.connect(sink.a_in)
    return src, procs, sink


# --------------------------------------------------------------------------
# Fast readout
# --------------------------------------------------------------------------

def test_read_equals_lava_get_and_is_fast():
    rng = np.random.default_rng(0)
    n, steps = 64, 50
    src = Source(data=(rng.random((n, steps)) < 0.3).astype(float))
    dense = Dense(weights=rng.integers(-60, 60, (n, n)))
    lif = CubaLIF(shape=(n,), du=400, dv=300, vth=20)
    sink = Sink(shape=(n,), buffer=steps)
    src.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    lif.s_out.connect(sink.a_in)
    with sink:
        sink.run(condition=RunSteps(num_steps=steps), run_cfg=CFG)
        variables = list(lif.vars) + list(dense.vars) + [sink.data, src.data]
        for var in variables:
            fast, slow = runtime.read(var), runtime.lava_get(var)
            assert type(fast) is type(slow), var.name
            assert fast.dtype == slow.dtype == np.float64, var.name
            assert fast.shape == slow.shape, var.name
            np.testing.assert_array_equal(fast, slow, err_msg=var.name)
        assert np.count_nonzero(runtime.read(sink.data)) > 0
        assert [a.shape for a in runtime.read_many([lif.u, sink.data])] == [(n,), (n, steps)]
        assert np.array_equal(sink.data.get(), runtime.read(sink.data))  # Var.get itself is fast
        t0 = time.perf_counter()
        runtime.lava_get(sink.data)
        slow_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(5):
            runtime.read(sink.data)
        fast_s = (time.perf_counter() - t0) / 5
        assert slow_s / fast_s > 20, (slow_s, fast_s)


def test_read_follows_aliases_on_fused_and_per_layer_networks():
    data = (np.random.default_rng(1).random((784, 12)) < 0.2).astype(float)
    results = []
    for fused in (False, True):
        net = netx.hdf5.Network(net_config=MNIST, fused=fused)
        src, sink = Source(data=data), Sink(shape=net.out.shape, buffer=12)
        src.s_out.connect(net.inp)
        net.out.connect(sink.a_in)
        with net:
            sink.run(condition=RunSteps(num_steps=12), run_cfg=CFG)
            neuron = net.layers[0].neuron
            if fused:
                assert neuron.v.aliased_var is not None
            fast = [runtime.read(v) for v in (neuron.u, neuron.v, sink.data)]
            slow = [runtime.lava_get(v) for v in (neuron.u, neuron.v)]
            for a, b in zip(fast, slow):
                assert a.dtype == b.dtype == np.float64
                np.testing.assert_array_equal(a, b)
            results.append(fast)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    assert np.count_nonzero(results[0][0]) > 0 and np.count_nonzero(results[0][1]) > 0


# --------------------------------------------------------------------------
# Context manager, forgotten stop(), SIGINT
# --------------------------------------------------------------------------

def test_with_network_stops_on_exception():
    before = _children()
    net = netx.hdf5.Network(net_config=MNIST)
    src, sink = Source(data=np.zeros((784, 5))), Sink(shape=net.out.shape, buffer=5)
    src.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    t0 = time.monotonic()
    with pytest.raises(KeyError, match="user error"):
        with net as entered:
            assert entered is net
            sink.run(condition=RunSteps(num_steps=5), run_cfg=CFG)
            assert _children() - before
            names = _shm_names(sink)
            raise KeyError("user error")
    assert time.monotonic() - t0 < 30
    assert not runtime.live_runtimes()
    assert _children() <= before
    assert _left(names) == []


_SCRIPT = textwrap.dedent("""
    import os, sys, subprocess, numpy as np
    sys.path.insert(0, {repo!r})
    from lava_dl import netx
    from lava.proc.io.source import RingBuffer
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi1SimCfg
    net = netx.hdf5.Network(net_config={mnist!r})
    src = RingBuffer(data=np.zeros((784, 5)))
    sink = Sink(shape=net.out.shape, buffer=5)
    src.s_out.connect(net.inp); net.out.connect(sink.a_in)
    blocking = sys.argv[1] == "forget"
    sink.run(condition=RunSteps(5 if blocking else 10**8, blocking=blocking),
             run_cfg=Loihi1SimCfg(select_tag="fixed_pt"))
    kids = subprocess.run(["ps", "--ppid", str(os.getpid()), "-o", "pid="], capture_output=True,
                          text=True).stdout.split()
    print("CHILDREN", " ".join(kids), flush=True)
    if not blocking:
        sink.wait()
""")


def _script(tmp_path, mode: str) -> subprocess.Popen:
    path = tmp_path / "script.py"
    path.write_text(_SCRIPT.format(repo=str(REPO), mnist=str(MNIST)))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(REPO / ".numba_cache"))
    return subprocess.Popen([sys.executable, str(path), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _gone(pids: list[int], wait: float = 5.0) -> list[int]:
    deadline = time.monotonic() + wait
    while True:
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _kids(line: str) -> list[int]:
    assert line.startswith("CHILDREN"), line
    return [int(p) for p in line.split()[1:]]


def test_script_that_forgets_stop_exits_cleanly(tmp_path):
    proc = _script(tmp_path, "forget")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    kids = _kids(out.strip().splitlines()[-1])
    assert len(kids) >= 8  # the workers were running when the script ended
    assert _gone(kids) == []


def test_sigint_during_run_stops_the_workers(tmp_path):
    proc = _script(tmp_path, "sigint")
    kids = _kids(proc.stdout.readline().strip())
    assert len(kids) >= 8
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert _gone(kids) == []


def test_killed_host_leaves_no_workers(tmp_path):
    proc = _script(tmp_path, "sigint")
    kids = _kids(proc.stdout.readline().strip())
    proc.kill()
    proc.communicate(timeout=30)
    assert _gone(kids) == []


# --------------------------------------------------------------------------
# Worker errors
# --------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["up", "mid", "down"])
def test_worker_error_raises_with_its_text_and_stop_returns(where):
    before = _children()
    src, procs, sink = _chain(where)
    t0 = time.monotonic()
    sink.create_runtime(run_cfg=CFG)
    names = _shm_names(sink)
    with pytest.raises(runtime.ProcessError) as info:
        sink.run(condition=RunSteps(num_steps=10))
    assert time.monotonic() - t0 < 20
    error = info.value
    text = str(error)
    assert "Boom: boom at step 3" in text and "'bad'" in text and "Raiser" in text
    assert error.exc_type == "Boom" and error.exc_text == "boom at step 3"
    assert isinstance(error.__cause__, Boom)
    assert "run_spk" in error.worker_traceback and "raise Boom" in error.worker_traceback
    t0 = time.monotonic()
    sink.stop()
    assert time.monotonic() - t0 < 1
    assert _children() <= before
    assert _left(names) == []
    with pytest.raises(runtime.ProcessError, match="stopped after a worker error"):
        sink.run(condition=RunSteps(num_steps=1))


def test_stop_without_run_returns():
    before = _children()
    src, procs, sink = _chain("none")
    sink.create_runtime(run_cfg=CFG)
    t0 = time.monotonic()
    sink.stop()
    assert time.monotonic() - t0 < 5
    assert _children() <= before


# --------------------------------------------------------------------------
# Input that Lava would mangle
# --------------------------------------------------------------------------

BAD = [(np.nan, "non-finite"), (2.0 ** 40, "beyond its message width"), (0.5, "fractional")]


def _net_with_input(data: np.ndarray):
    net = netx.hdf5.Network(net_config=MNIST)
    src, sink = Source(data=data), Sink(shape=net.out.shape, buffer=data.shape[-1])
    src.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    return net, src, sink


@pytest.mark.parametrize("bad, message", BAD)
def test_bad_ringbuffer_data_raises_before_running(bad, message):
    """Lava's fixed-point RingBuffer model casts its float data to int32 at build (NaN -> -2^31)."""
    data = np.zeros((784, 10))
    data[5, 3] = bad
    net, src, sink = _net_with_input(data)
    before = _children()
    with net:
        with pytest.raises(runtime.InputError, match=message) as info:
            sink.run(condition=RunSteps(num_steps=10), run_cfg=CFG)
    assert "Var 'data'" in str(info.value) and "RingBuffer" in str(info.value)
    assert _children() <= before
    with pytest.raises(RuntimeError, match="failed to start"):
        sink.run(condition=RunSteps(num_steps=10))


class NanSource(AbstractProcess):
    """Sends zeros, and NaN at step 3 (a value computed in the worker, not held in a Var)."""

    def __init__(self, *, shape):
        super().__init__(shape=shape)
        self.s_out = OutPort(shape=shape)

    def lava_dl_process_models(self) -> list:
        """Models for Lava's compiler."""
        return [PyNanSourceModel]


@implements(proc=NanSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyNanSourceModel(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)

    def run_spk(self) -> None:
        self.s_out.send(np.full(self.s_out.shape, np.nan if self.time_step == 3 else 0.0))


@pytest.mark.parametrize("bad, message", BAD)
def test_bad_message_into_a_network_raises_naming_the_layer(bad, message):
    """A float source sends the value as it is (Lava's floating-point RingBuffer model, or a
    process computing NaN): the network's input port refuses it."""
    from lava.proc.io.source import PySendModelFloat

    net = netx.hdf5.Network(net_config=MNIST)
    if np.isfinite(bad):
        data = np.zeros((784, 10))
        data[5, 3] = bad
        src = Source(data=data)
    else:
        src = NanSource(shape=(784,))
    sink = Sink(shape=net.out.shape, buffer=10)
    src.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    cfg = Loihi1SimCfg(select_tag="fixed_pt", exception_proc_model_map={Source: PySendModelFloat})
    with net:
        with pytest.raises(runtime.ProcessError, match=message) as info:
            sink.run(condition=RunSteps(num_steps=10), run_cfg=cfg)
    assert info.value.exc_type == "InputError"
    assert "layers[0]" in info.value.layer and "Network" in info.value.layer
    assert "input port 'a_in'" in str(info.value)


def test_var_set_refuses_mangled_values():
    n = 4
    src, procs, sink = _chain("none", n=n)
    lif = procs[1]
    with sink:
        sink.run(condition=RunSteps(num_steps=2), run_cfg=CFG)
        with pytest.raises(runtime.InputError, match="non-finite"):
            lif.v.set(np.full(n, np.nan))
        lif.v.set(np.full(n, 7.0))
        np.testing.assert_array_equal(runtime.read(lif.v), np.full(n, 7.0))


def test_parameter_written_out_of_range_raises_naming_it():
    """A parameter Var's ``init`` written after the Process was built (lava-dl's PilotNet tutorial sets
    ``neuron.du.init = -1``, lava-nc's LIF units) is checked when the model starts: an error naming the
    Var, its range and the unit difference, not a neuron whose current grows every step."""
    src, procs, sink = _chain("none", n=4)
    procs[1].du.init = -1
    with sink:
        with pytest.raises(runtime.ProcessError, match=r"du .* must lie in \[0, 4096\]") as info:
            sink.run(condition=RunSteps(num_steps=2), run_cfg=CFG)
    assert "lava-nc's du=-1 (no decay) is du=0 here" in str(info.value)
    assert info.value.exc_type == "ValueError"


def test_good_float_input_still_runs():
    net = netx.hdf5.Network(net_config=MNIST)
    data = (np.random.default_rng(2).random((784, 10)) < 0.2).astype(float)
    src, sink = Source(data=data), Sink(shape=net.out.shape, buffer=10)
    src.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    with net:
        sink.run(condition=RunSteps(num_steps=10), run_cfg=CFG)
        assert runtime.read(sink.data).shape == (10, 10)


def test_input_checks_off_give_lavas_casts():
    """``set_input_checks(False)``: fractional data runs as Lava runs it, truncated (the same output as
    the truncated data with the checks on); a ``with`` block restores the checks."""
    from lava.proc.io.source import PySendModelFloat

    rng = np.random.default_rng(4)
    data = (rng.random((784, 10)) < 0.2) * rng.choice([1.7, -1.7, 2.5], (784, 10))

    def run(values, cfg=CFG):
        net, src, sink = _net_with_input(values)
        with net:
            sink.run(condition=RunSteps(num_steps=10), run_cfg=cfg)
            states = runtime.read(net.layers[0].neuron.u).ravel()
            return np.concatenate([states, runtime.read(sink.data).ravel()])

    expected = run(np.trunc(data))
    assert runtime.input_checks_enabled()
    with runtime.set_input_checks(False):
        assert not runtime.input_checks_enabled()
        assert np.array_equal(run(data), expected)
        # a float source's message reaches the network as sent (Lava's port casts it)
        float_cfg = Loihi1SimCfg(select_tag="fixed_pt", exception_proc_model_map={Source: PySendModelFloat})
        assert np.array_equal(run(data, float_cfg), expected)
    assert runtime.input_checks_enabled()
    with pytest.raises(runtime.InputError, match="fractional"):
        run(data)
    assert np.any(expected)


# --------------------------------------------------------------------------
# Leaks
# --------------------------------------------------------------------------

def _rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def test_build_run_stop_cycles_leave_nothing_behind():
    data = (np.random.default_rng(3).random((784, 8)) < 0.2).astype(float)
    before = _children()

    def cycle():
        net = netx.hdf5.Network(net_config=MNIST)
        src, sink = Source(data=data), Sink(shape=net.out.shape, buffer=8)
        src.s_out.connect(net.inp)
        net.out.connect(sink.a_in)
        with net:
            sink.run(condition=RunSteps(num_steps=8), run_cfg=CFG)
            names = _shm_names(sink)
            out = runtime.read(sink.data)
        return out, names

    ref, _ = cycle()
    for _ in range(3):
        cycle()
    gc.collect()
    rss0 = _rss_mb()
    names = []
    for _ in range(20):
        out, seg = cycle()
        names += seg
        np.testing.assert_array_equal(out, ref)
    gc.collect()
    growth = (_rss_mb() - rss0) / rss0
    assert growth < 0.05, f"RSS grew {100 * growth:.1f}% over 20 cycles"
    assert _children() <= before
    assert _left(names) == []
    assert len(ProcessServer().processes) < 50 and len(VarServer().vars) < 500
    assert not runtime.live_runtimes()
