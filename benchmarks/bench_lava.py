"""Lava steps/s of lava_dl's Dense/Conv/CubaLIF processes vs lava-nc's Dense/Conv/LIF.

Each case builds the same graph twice, once from lava_dl's processes and once from
lava-nc's built-in ``lava.proc.dense.process.Dense``, ``lava.proc.conv.process.Conv`` and
``lava.proc.lif.process.LIF``, with the same weights, parameters and input, and runs both
on ``Loihi1SimCfg(select_tag='fixed_pt')``:

* ``chain``: RingBuffer source (10 % spikes) -> 4 x (Dense 128x128 -> LIF 128) -> sink;
* ``conv``: a PilotNet-size first layer: RingBuffer source 3x66x200 (torch ``C, H, W``;
  Lava ``(x, y, c) = (200, 66, 3)``, 15 % spikes) -> Conv 24 channels, 3x3, stride 2 ->
  LIF ``(99, 32, 24)`` -> sink;
* ``sparse``: RingBuffer source 4096 (5 % spikes) -> Sparse 1024x4096 (2 % of the entries stored)
  -> LIF 1024 -> sink (lava-nc: ``lava.proc.sparse.process.Sparse``).

Timing: a first ``run`` (compile, runtime start-up, Numba JIT or cache load, first
steps) is excluded; then both graphs, which stay alive side by side, run ``repeats``
timed chunks of ``RunSteps(n)`` in turn (ours, lava-nc, ours, ...), so that they share
the machine's noise. The table shows the median steps/s over the chunks and the
ratio ours / lava-nc.

Output check: the sink is a small digest process that stores, for every step, the
number of output spikes and the CRC-32 of the packed spike vector (a RingBuffer sink
of 76k neurons could not be read back: ``Var.get`` costs ~16 us per element). It is
read once at the end; the digests of both graphs are compared over the steps that
both have run (the faster graph may run more steps).

Run ``python benchmarks/bench_lava.py`` (about 1-2 minutes) or ``--quick``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402

import numpy as np  # noqa: E402

import lava_dl  # noqa: E402,F401  (installs the lava-nc Python 3.11 fix first)

# isort: split
from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi1SimCfg  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.conv.process import Conv as LavaConv  # noqa: E402
from lava.proc.dense.process import Dense as LavaDense  # noqa: E402
from lava.proc.io.source import RingBuffer as Source  # noqa: E402
from lava.proc.lif.process import LIF as LavaLIF  # noqa: E402
from lava.proc.sparse.process import Sparse as LavaSparse  # noqa: E402
from scipy import sparse  # noqa: E402

from lava_dl.proc.conv import Conv  # noqa: E402
from lava_dl.proc.cuba import CubaLIF  # noqa: E402
from lava_dl.proc.dense import Dense  # noqa: E402
from lava_dl.proc.sparse import Sparse  # noqa: E402

#: LIF parameters of both cases (lava_dl's ``du``; lava-nc's LIF gets ``du - 1``).
LIF_PARAMS = dict(du=1024, dv=256)


class SpikeDigest(AbstractProcess):
    """Sink that keeps, per step, the spike count and the CRC-32 of the packed spikes.

    Parameters
    ----------
    shape : tuple of int
        Shape of the input port.
    buffer : int
        Number of steps recorded (row ``(t - 1) % buffer`` holds step ``t``).
    """

    def __init__(self, *, shape: tuple[int, ...], buffer: int) -> None:
        super().__init__(shape=shape, buffer=buffer)
        self.a_in = InPort(shape=shape)
        self.digest = Var(shape=(buffer, 2), init=0)


@implements(proc=SpikeDigest, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeDigestModel(PyLoihiProcessModel):
    """Model of :class:`SpikeDigest` (nonzero inputs count as spikes)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    digest: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def run_spk(self) -> None:
        s = np.asarray(self.a_in.recv()).reshape(-1) != 0
        row = self.digest[(self.time_step - 1) % self.digest.shape[0]]
        row[0] = np.count_nonzero(s)
        row[1] = zlib.crc32(np.packbits(s).tobytes())


@dataclasses.dataclass
class Graph:
    """A built graph: the process to run, its run config and its digest sink."""

    name: str
    root: AbstractProcess
    sink: SpikeDigest
    cfg: Loihi1SimCfg
    steps_per_chunk: int
    steps_done: int = 0
    failed: bool = False
    started: bool = False

    def run(self, steps: int) -> float:
        """Run ``steps`` steps; return the wall time in seconds."""
        start = time.perf_counter()
        try:
            self.root.run(condition=RunSteps(num_steps=steps), run_cfg=self.cfg)
        except Exception:
            self.failed = True
            raise
        finally:
            self.started = True
        self.steps_done += steps
        return time.perf_counter() - start

    def stop(self) -> None:
        """Release the workers (never after a worker error: ``stop`` would block)."""
        if self.started and not self.failed:
            self.root.stop()


def _lif(impl: str, shape: tuple[int, ...], vth: int) -> AbstractProcess:
    if impl == "ours":
        return CubaLIF(shape=shape, vth=vth, **LIF_PARAMS)
    return LavaLIF(shape=shape, du=LIF_PARAMS["du"] - 1, dv=LIF_PARAMS["dv"], vth=vth,
                   bias_mant=0, bias_exp=0)


def _finish(impl: str, src: Source, last_out, shape, buffer: int, steps_per_chunk: int) -> Graph:
    sink = SpikeDigest(shape=shape, buffer=buffer)
    last_out.connect(sink.a_in)
    # instance key: the model is taken as is (no model search in this script's directory)
    cfg = Loihi1SimCfg(select_tag="fixed_pt", exception_proc_model_map={sink: PySpikeDigestModel})
    return Graph(impl, src, sink, cfg, steps_per_chunk)


def build_chain(impl: str, data: np.ndarray, weights: list[np.ndarray], vth: int, buffer: int,
                steps_per_chunk: int) -> Graph:
    """Source -> len(weights) x (Dense -> LIF) -> digest, from lava_dl ("ours") or lava-nc."""
    src = Source(data=data)
    out = src.s_out
    for w in weights:
        dense = Dense(weights=w) if impl == "ours" else LavaDense(weights=w)
        lif = _lif(impl, (w.shape[0],), vth)
        out.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        out = lif.s_out
    return _finish(impl, src, out, (weights[-1].shape[0],), buffer, steps_per_chunk)


def build_conv(impl: str, data: np.ndarray, weight: np.ndarray, stride: int, vth: int, buffer: int,
               steps_per_chunk: int) -> Graph:
    """Source -> Conv -> LIF -> digest, from lava_dl ("ours") or lava-nc."""
    src = Source(data=data)
    cls = Conv if impl == "ours" else LavaConv
    conv = cls(weight=weight, input_shape=data.shape[:-1], stride=stride)
    shape = tuple(int(v) for v in conv.a_out.shape)
    lif = _lif(impl, shape, vth)
    src.s_out.connect(conv.s_in)
    conv.a_out.connect(lif.a_in)
    return _finish(impl, src, lif.s_out, shape, buffer, steps_per_chunk)


def build_sparse(impl: str, data: np.ndarray, weights, vth: int, buffer: int, steps_per_chunk: int) -> Graph:
    """Source -> Sparse -> LIF -> digest, from lava_dl ("ours") or lava-nc."""
    src = Source(data=data)
    synapse = (Sparse if impl == "ours" else LavaSparse)(weights=weights)
    lif = _lif(impl, (weights.shape[0],), vth)
    src.s_out.connect(synapse.s_in)
    synapse.a_out.connect(lif.a_in)
    return _finish(impl, src, lif.s_out, (weights.shape[0],), buffer, steps_per_chunk)


def measure(case: str, graphs: list[Graph], warmup: int, repeats: int) -> list[str]:
    """Warm up, run interleaved timed chunks, compare digests; return the table rows."""
    rates: dict[str, list[float]] = {g.name: [] for g in graphs}
    first: dict[str, float] = {}
    try:
        for g in graphs:
            first[g.name] = g.run(warmup)
        for _ in range(repeats):
            for g in graphs:
                rates[g.name].append(g.steps_per_chunk / g.run(g.steps_per_chunk))
        common = min(g.steps_done for g in graphs)
        digests = [np.asarray(g.sink.digest.get(), dtype=np.int64)[:common] for g in graphs]
    finally:
        for g in graphs:
            g.stop()
    same = all(np.array_equal(digests[0], d) for d in digests[1:])
    n_out = int(np.prod(graphs[0].sink.a_in.shape))
    activity = digests[0][:, 0].sum() / (common * n_out)
    med = {name: statistics.median(r) for name, r in rates.items()}
    rows = []
    for g in graphs:
        r = med[g.name]
        rows.append(f"{case:<6} {g.name:<8} {r:9.1f} {1e3 / r:9.3f} {r / med['lava-nc']:8.2f} "
                    f"{first[g.name]:9.2f} {g.steps_done:6d}  "
                    f"{'identical' if same else 'DIFFERENT'} over {common} steps, "
                    f"{activity:.1%} output spikes")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter timed chunks")
    parser.add_argument("--repeats", type=int, default=None, help="timed chunks per graph")
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 5)
    scale = 0.25 if args.quick else 1.0
    warmup = 10
    rng = np.random.default_rng(0)
    period = 50  # steps of input held by the sources (they cycle)

    # (i) chain
    n, layers = 128, 4
    chunk = {"ours": int(400 * scale), "lava-nc": int(400 * scale)}
    data = (rng.random((n, period)) < 0.10).astype(np.int32)
    weights = [rng.integers(-128, 160, (n, n)) for _ in range(layers)]
    buffer = warmup + repeats * max(chunk.values())
    graphs = [build_chain(impl, data, weights, 5000, buffer, chunk[impl]) for impl in ("ours", "lava-nc")]
    rows = measure("chain", graphs, warmup, repeats)

    # (ii) PilotNet-size conv layer: torch (C, H, W) = (3, 66, 200) -> Lava (x, y, c) = (200, 66, 3)
    chunk = {"ours": int(400 * scale), "lava-nc": max(4, int(20 * scale))}
    data = (rng.random((200, 66, 3, period)) < 0.15).astype(np.int32)
    weight = rng.integers(-128, 192, (24, 3, 3, 3))  # Lava layout (out, kx, ky, in)
    buffer = warmup + repeats * max(chunk.values())
    graphs = [build_conv(impl, data, weight, 2, 4000, buffer, chunk[impl]) for impl in ("ours", "lava-nc")]
    rows += measure("conv", graphs, warmup, repeats)

    # (iii) a large sparse synapse
    chunk = {"ours": int(400 * scale), "lava-nc": int(100 * scale)}
    data = (rng.random((4096, period)) < 0.05).astype(np.int32)
    weights = sparse.random(1024, 4096, density=0.02, format="csr", random_state=1,
                            data_rvs=lambda k: rng.integers(-128, 160, k))
    buffer = warmup + repeats * max(chunk.values())
    graphs = [build_sparse(impl, data, weights, 800, buffer, chunk[impl]) for impl in ("ours", "lava-nc")]
    rows += measure("sparse", graphs, warmup, repeats)

    print("Lava Loihi1SimCfg(select_tag='fixed_pt'), steps/s after warm-up "
          f"(median of {repeats} interleaved chunks)")
    print("chain: source 10% -> 4 x (Dense 128 -> LIF 128) -> sink;  "
          "conv: source 200x66x3 15% -> Conv 24ch 3x3 stride 2 -> LIF 99x32x24 -> sink;  "
          "sparse: source 4096 5% -> Sparse 1024x4096 (2% stored) -> LIF 1024 -> sink")
    print(f"{'case':<6} {'impl':<8} {'steps/s':>9} {'ms/step':>9} {'x lava':>8} {'first s':>9} "
          f"{'steps':>6}  output check")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
