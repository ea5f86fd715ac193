"""Fast readout vs Lava's ``Var.get()``, and the runtime's memory over many runs.

Prints three tables (``.venv/bin/python benchmarks/bench_readout.py [--quick]``):

1. readout: what is read, elements, ``Var.get()`` seconds (Lava's element-by-element path,
   :func:`lava_dl.runtime.lava_get`), fast readout seconds (:func:`lava_dl.runtime.read`, median
   of 5), ratio, values identical (values and dtype) — PilotNet SDNN's first conv layer's largest
   state (per-layer and fused network), a 75k-element RingBuffer sink buffer on that layer, and
   the network's output sink buffer;
2. leaks: RSS of the host over build/run/stop cycles of ``mnist.net`` (100, ``--quick``: 20),
   with the child processes and the process registry afterwards, and the host + worker RSS
   during a long run (100k steps, ``--quick``: 10k);
3. input checks: steps/s of ``mnist.net`` fed by a float RingBuffer with lava_dl's input checks
   on and off.
"""

from __future__ import annotations

import argparse
import gc
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache"))

from lava.magma.core.process.process import ProcessServer  # noqa: E402
from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi1SimCfg  # noqa: E402
from lava.proc.io.sink import RingBuffer as Sink  # noqa: E402
from lava.proc.io.source import RingBuffer as Source  # noqa: E402

from lava_dl import netx, runtime  # noqa: E402

FIX = ROOT.parent / "shared" / "fixtures" / "lava_dl_0.6"
CFG = Loihi1SimCfg(select_tag="fixed_pt")


def _time(fn, repeat: int = 1):
    best = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        best.append(time.perf_counter() - t0)
    return value, float(np.median(best))


def readout_rows() -> list[tuple]:
    d = FIX / "pilotnet_sdnn"
    frame = np.load(d / "input.npy")
    steps = 4
    rows = []
    for fused in (False, True):
        net = netx.hdf5.Network(net_config=d / "network.net", fused=fused)
        conv = net.layers[1]
        src = Source(data=np.repeat(frame, steps, axis=-1))
        out_sink = Sink(shape=net.out.shape, buffer=steps)
        src.s_out.connect(net.inp)
        net.out.connect(out_sink.a_in)
        targets = []
        if not fused:
            conv_sink = Sink(shape=conv.out.shape, buffer=steps)
            conv.out.connect(conv_sink.a_in)
        with net:
            out_sink.run(condition=RunSteps(num_steps=steps), run_cfg=CFG)
            state = max(conv.neuron.vars, key=lambda v: (int(np.prod(v.shape)), v.name == "sigma"))
            label = "fused" if fused else "per-layer"
            targets.append((f"pilotnet conv-0 `{state.name}` ({label})", state))
            if not fused:
                targets.append(("RingBuffer sink on conv-0 (4 steps)", conv_sink.data))
                targets.append(("RingBuffer sink on the output", out_sink.data))
            for what, var in targets:
                slow, slow_s = _time(lambda var=var: runtime.lava_get(var))
                fast, fast_s = _time(lambda var=var: runtime.read(var), repeat=5)
                same = fast.dtype == slow.dtype and fast.shape == slow.shape and np.array_equal(fast, slow)
                rows.append((what, fast.size, slow_s, fast_s, slow_s / fast_s, "yes" if same else "NO"))
    return rows


def _rss_mb(pid="self") -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def _children() -> list[int]:
    out = subprocess.run(["ps", "--ppid", str(os.getpid()), "-o", "pid=,args="], capture_output=True,
                         text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines()
            if line.strip() and "resource_tracker" not in line and "ps --ppid" not in line]


def _mnist(data: np.ndarray, buffer: int):
    net = netx.hdf5.Network(net_config=FIX / "mnist.net")
    src, sink = Source(data=data), Sink(shape=net.out.shape, buffer=buffer)
    src.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    return net, sink


def leak_rows(cycles: int, long_steps: int) -> list[tuple]:
    data = (np.random.default_rng(0).random((784, 10)) < 0.2).astype(float)

    def cycle():
        net, sink = _mnist(data, 10)
        with net:
            sink.run(condition=RunSteps(num_steps=10), run_cfg=CFG)
            return runtime.read(sink.data)

    ref = cycle()
    for _ in range(3):
        cycle()
    gc.collect()
    rss0, t0 = _rss_mb(), time.perf_counter()
    for _ in range(cycles):
        assert np.array_equal(cycle(), ref)
    gc.collect()
    rss1 = _rss_mb()
    rows = [(f"{cycles} build/run/stop cycles of mnist.net (host RSS)", rss0, rss1,
             100 * (rss1 - rss0) / rss0,
             f"{(time.perf_counter() - t0) / cycles:.2f} s/cycle; {len(_children())} child processes, "
             f"{len(ProcessServer().processes)} live processes after")]

    net, sink = _mnist(data, 10)
    with net:
        sink.run(condition=RunSteps(num_steps=long_steps, blocking=False), run_cfg=CFG)
        kids = _children()
        samples = []
        t0 = time.perf_counter()
        while True:
            time.sleep(1.0)
            total = _rss_mb() + sum(_rss_mb(k) for k in kids)
            samples.append(total)
            if not sink.runtime._is_running or len(samples) > 3600:
                break
            if sink.runtime.service_to_runtime[0].probe():
                break
        sink.wait()
        elapsed = time.perf_counter() - t0
    first = samples[min(2, len(samples) - 1)]
    rows.append((f"{long_steps}-step run of mnist.net (host + {len(kids)} workers RSS)", first, samples[-1],
                 100 * (samples[-1] - first) / first,
                 f"{long_steps / elapsed:.0f} steps/s; {len(samples)} samples, first at 3 s"))
    return rows


def check_cost_rows(steps: int = 2000) -> list[tuple]:
    from lava.magma.core.model.py.ports import PyInPortVectorDense
    from lava.proc.io.source import PySendModelFloat

    data = (np.random.default_rng(1).random((784, 100)) < 0.2).astype(float)
    cfg = Loihi1SimCfg(select_tag="fixed_pt", exception_proc_model_map={Source: PySendModelFloat})
    rows = []
    checked = PyInPortVectorDense.recv
    for label in ("on", "off", "on", "off"):
        PyInPortVectorDense.recv = checked if label == "on" else runtime._ORIG["recv"]
        try:
            net, sink = _mnist(data, 100)
            with net:
                sink.run(condition=RunSteps(num_steps=10), run_cfg=cfg)
                t0 = time.perf_counter()
                sink.run(condition=RunSteps(num_steps=steps))
                rows.append((label, steps / (time.perf_counter() - t0)))
        finally:
            PyInPortVectorDense.recv = checked
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 cycles and a 10k-step run")
    args = parser.parse_args()

    print("## Readout: Var.get() (Lava) vs lava_dl.runtime.read\n")
    print("| what is read | elements | Var.get() s | fast readout s | ratio | values identical |")
    print("|---|---:|---:|---:|---:|---|")
    for what, n, slow, fast, ratio, same in readout_rows():
        print(f"| {what} | {n} | {slow:.3f} | {fast:.5f} | {ratio:.0f}x | {same} |")

    print("\n## Input checks: mnist.net fed by a float RingBuffer, steps/s\n")
    print("| lava_dl input checks | steps/s |")
    print("|---|---:|")
    for label, rate in check_cost_rows():
        print(f"| {label} | {rate:.0f} |")

    cycles, steps = (20, 10_000) if args.quick else (100, 100_000)
    print("\n## Memory\n")
    print("| what | RSS before (MB) | RSS after (MB) | growth % | notes |")
    print("|---|---:|---:|---:|---|")
    for what, before, after, growth, note in leak_rows(cycles, steps):
        print(f"| {what} | {before:.1f} | {after:.1f} | {growth:+.2f} | {note} |")


if __name__ == "__main__":
    main()
