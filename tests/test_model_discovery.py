"""ProcessModel discovery: Lava's compiler re-executes every module of a Process's package to find its
models, for every process on every compile. ``lava_dl.lava_glue`` remembers the answer per class for
the Process classes of lava_dl and lava-nc (installed packages, whose models cannot change within an
interpreter); a user's Process is looked up as Lava does, every time."""

from __future__ import annotations

import numpy as np
from lava.magma.compiler.compiler_graphs import ProcGroupDiGraphs
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.lif.process import LIF

from lava_dl import lava_glue
from lava_dl.proc.cuba import CubaLIF


class UserProcess(AbstractProcess):
    """A Process of a user's own module."""

    def __init__(self) -> None:
        super().__init__()
        self.a_in = InPort(shape=(2,))


def test_lava_nc_and_lava_dl_models_are_looked_up_once_per_class(monkeypatch):
    calls = []
    lava_find = lava_glue._LAVA_FIND

    def counting(proc):
        calls.append(type(proc))
        return lava_find(proc)

    monkeypatch.setattr(lava_glue, "_LAVA_FIND", counting)
    find = ProcGroupDiGraphs._find_proc_models
    for make in (lambda: Sink(shape=(3,), buffer=2), lambda: LIF(shape=(2,)), lambda: CubaLIF(shape=(2,))):
        first, second = find(make()), find(make())
        assert [m.__name__ for m in first] == [m.__name__ for m in lava_find(make())]  # Lava's answer
        assert len(first) == len(second) and all(a is b for a, b in zip(first, second))
    # once per class at most (earlier tests may have asked already)
    assert all(calls.count(cls) <= 1 for cls in (Sink, LIF, CubaLIF))


def test_a_users_process_is_looked_up_every_time(monkeypatch):
    calls = []
    monkeypatch.setattr(lava_glue, "_LAVA_FIND", lambda proc: calls.append(type(proc)) or [])
    find = ProcGroupDiGraphs._find_proc_models
    assert find(UserProcess()) == [] and find(UserProcess()) == []
    assert calls == [UserProcess, UserProcess]


def test_a_run_of_lava_nc_processes_still_finds_their_models():
    """A RingBuffer source into lava-nc's LIF into a sink, twice (the second compile from the cache)."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi1SimCfg
    from lava.proc.io.source import RingBuffer as Source

    for _ in range(2):
        source = Source(data=np.full((2, 4), 3, np.int32))
        lif = LIF(shape=(2,), du=4095, dv=0, vth=5)
        sink = Sink(shape=(2,), buffer=4)
        source.s_out.connect(lif.a_in)
        lif.s_out.connect(sink.a_in)
        with sink:
            sink.run(condition=RunSteps(num_steps=4), run_cfg=Loihi1SimCfg(select_tag="fixed_pt"))
            out = sink.data.get()
        # current 3 per step (du = 4095: no memory), voltage 3, 6 -> spike at the second step, reset...
        assert out.T.tolist() == [[0, 0], [1, 1], [0, 0], [1, 1]]
