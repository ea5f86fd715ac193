"""Numba compile time of lava_dl's kernels, cold vs cached, and kernel reuse in Lava workers.

Each measurement runs in a fresh interpreter with its own ``NUMBA_CACHE_DIR``:

1. cold: empty cache, first call of every kernel (compile + write cache);
2. cached: same cache directory, new interpreter (load only);
3. Lava run: a source -> Dense -> CubaLIF -> sink graph on Loihi1SimCfg fixed_pt with
   ``NUMBA_DEBUG_CACHE=1``. A run compiles (or loads) its models' kernels in the host before
   Lava forks (``lava_dl.runtime.warm_up_models``); here that call is made first by hand, so that
   the cache events it causes come before the marker: the run itself (its own warm-up finds the
   kernels compiled) and its workers must neither compile nor even load anything (0 cache events
   after the marker), and the first step is fast.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

WARM = textwrap.dedent("""
    import time, numpy as np
    t0 = time.perf_counter()
    import lava_dl, torch
    from lava_dl.slayer.neuron import cuba
    from lava_dl.lava_glue import warm_up
    from lava_dl.core import cuba as core
    t1 = time.perf_counter()
    warm_up(core.SPEC)
    n = cuba.Neuron(threshold=1.0, current_decay=0.1, voltage_decay=0.1)
    x = torch.zeros(1, 4, 8, requires_grad=True)
    n(x).sum().backward()
    t2 = time.perf_counter()
    print(f"RESULT {t1 - t0:.3f} {t2 - t1:.3f}")
""")

LAVA = textwrap.dedent("""
    import sys, time, numpy as np
    import lava_dl
    from lava.magma.core.run_configs import Loihi1SimCfg
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.io.sink import RingBuffer as Sink
    from lava_dl.proc.cuba import CubaLIF
    from lava_dl.proc.dense import Dense
    src = Source(data=(np.random.default_rng(0).random((64, 50)) < 0.2).astype(int))
    dense = Dense(weights=np.random.default_rng(1).integers(-50, 50, (32, 64)))
    lif = CubaLIF(shape=(32,), du=1024, dv=128, vth=20)
    sink = Sink(shape=(32,), buffer=50)
    src.s_out.connect(dense.s_in); dense.a_out.connect(lif.a_in); lif.s_out.connect(sink.a_in)
    from lava_dl import runtime
    from lava_dl.netx.fused import leaf_models
    runtime.warm_up_models(leaf_models([dense, lif], "fixed_pt").items())  # what the run does first
    print("MARKER host warm-up done", flush=True)
    t0 = time.perf_counter()
    lif.run(condition=RunSteps(1), run_cfg=Loihi1SimCfg(select_tag="fixed_pt"))
    t1 = time.perf_counter()
    lif.run(condition=RunSteps(49), run_cfg=Loihi1SimCfg(select_tag="fixed_pt"))
    t2 = time.perf_counter()
    spikes = sink.data.get().sum()
    lif.stop()
    print(f"RESULT {t1 - t0:.3f} {(t2 - t1) / 49 * 1e3:.3f} {int(spikes)}", flush=True)
""")


def run(code: str, cache: str, debug: bool = False) -> str:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    if debug:
        env["NUMBA_DEBUG_CACHE"] = "1"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return done.stdout


def result(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("RESULT")][-1].split()[1:]


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        cold = result(run(WARM, cache))
        cached = result(run(WARM, cache))
        out = run(LAVA, cache, debug=True)
        after = out.split("MARKER", 1)[1]
        events = sum(1 for line in after.splitlines() if line.startswith("[cache]"))
        first_step, per_step, spikes = result(out)
    print(f"{'measurement':<44} {'value':>10}")
    print(f"{'import lava_dl + torch (s)':<44} {float(cold[0]):>10.2f}")
    print(f"{'compile CUBA kernels, empty cache (s)':<44} {float(cold[1]):>10.2f}")
    print(f"{'load CUBA kernels from cache (s)':<44} {float(cached[1]):>10.2f}")
    print(f"{'cold / cached':<44} {float(cold[1]) / max(float(cached[1]), 1e-9):>10.1f}")
    print(f"{'Lava: Numba cache events in workers':<44} {events:>10d}")
    print(f"{'Lava: first RunSteps(1) incl. compile (s)':<44} {float(first_step):>10.3f}")
    print(f"{'Lava: later steps (ms/step, 4 processes)':<44} {float(per_step):>10.3f}")
    print(f"{'Lava: output spikes (sanity)':<44} {int(spikes):>10d}")


if __name__ == "__main__":
    main()
