"""The Open Neuromorphic (ONM) SNN library benchmark: lava_dl beside its peers (issue 11, item 3).

Setup (as in the ONM blog post): one Linear layer (n -> n, no bias) followed by one LIF
layer, batch 16, T = 500 time steps, binary input spikes (10 %), forward + backward of the
sum of the output spikes, n = 4096, 8192, 16384. Each row is the median time of
``--repeats`` steps after ``--warmup`` steps (CUDA events on the GPU, ``perf_counter`` on
the CPU) and, on the GPU, the peak memory (``torch.cuda.max_memory_allocated`` after
``reset_peak_memory_stats``). ``setup s`` is the import and the first step (JIT / torch
compilation included), kept out of the step time.

Every library applies the Linear layer to the whole sequence at once (the same weights,
uniform in +-2/sqrt(n)) and then runs its own LIF layer:

* ``lava_dl`` (ours): ``lava_dl.slayer.neuron.cuba.Neuron``;
* ``lava-dl 0.6.0``: ``lava.lib.dl.slayer.block.cuba.Dense`` (its CUDA extensions are
  JIT-compiled by ``torch.utils.cpp_extension`` into ``$TORCH_EXTENSIONS_DIR``, for the
  device's own architecture; ``--prebuild-lava-dl`` compiles them ahead, in the background);
* ``spikingjelly``: ``layer.Linear`` + ``neuron.LIFNode(step_mode='m')``, input (T, B, n);
  0.0.0.0.14 (the ONM version) with its ``cupy`` backend, or its ``torch`` backend when
  cupy fails; 2.x (no backend argument: it picks native CUDA, Triton or torch itself);
* ``norse``: ``LIFCell`` over a Python time loop, eager and with the cell ``torch.compile``-d;
* ``snntorch``: ``snntorch.Leaky`` over a Python time loop.

Each variant's failure becomes a ``skipped: <reason>`` row; the others go on. A variant
whose single step exceeds ``--max-seconds`` is timed with fewer repeats, and its larger
sizes are skipped (said in the status column).

Peers missing from the environment can come as wheels (``--wheels DIR``): each wheel is
unzipped (pure-Python wheels need no installer) into ``--site/<wheel stem>`` and put on
``sys.path``; several spikingjelly versions each get their own rows.

Run ``python benchmarks/bench_onm_peers.py [--device cuda|cpu] [--sizes 4096,8192,16384]
[--steps 500] [--batch 16] [--repeats 10] [--peers lava_dl,lava-dl,spikingjelly,norse,snntorch]
[--wheels DIR]``; ``benchmarks/gpu_check.py`` runs it as its section 4.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import statistics
import sys
import time
import traceback
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BATCH, STEPS, RATE = 16, 500, 0.1
#: CUBA parameters of ours and of lava-dl 0.6.0.
PARAMS = dict(threshold=1.25, current_decay=0.25, voltage_decay=0.03, tau_grad=0.03, scale_grad=3)
PEERS = ("lava_dl", "lava-dl", "spikingjelly", "norse", "snntorch")
BUILD_DIR = Path(os.environ.get("TORCH_EXTENSIONS_DIR", "/tmp/onm_torch_extensions"))
PREBUILD_LOG = BUILD_DIR / "lava_dl_prebuild.json"

Step = Callable[[], None]


@dataclass
class Config:
    """The benchmark's shared settings."""

    device: torch.device
    steps: int = STEPS
    batch: int = BATCH
    repeats: int = 10
    warmup: int = 3
    max_seconds: float = 60.0


@dataclass
class Row:
    """One line of the table."""

    library: str
    variant: str
    n: int
    ms: float | None = None
    peak_mib: float | None = None
    setup_s: float | None = None
    status: str = "ok"


# ---------------------------------------------------------------------------
# timing and the shared setup
# ---------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    """Wait for the device's queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_step(step: Step, device: torch.device, repeats: int = 10,
              warmup: int = 3) -> tuple[float, float | None]:
    """Median milliseconds of ``step()`` after ``warmup`` calls, and its peak memory.

    Parameters
    ----------
    step : callable
        One forward + backward pass.
    device : torch.device
        CUDA: timed with CUDA events, peak from ``torch.cuda.max_memory_allocated``;
        CPU: timed with ``time.perf_counter``, no peak (``None``).
    repeats, warmup : int
        Timed and untimed calls.

    Returns
    -------
    tuple of float and (float or None)
        Median milliseconds per call and peak memory in MiB.
    """
    cuda = device.type == "cuda"
    for _ in range(warmup):
        step()
    sync(device)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(max(1, repeats)):
        if cuda:
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            step()
            end.record()
            end.synchronize()
            times.append(begin.elapsed_time(end))
        else:
            start = time.perf_counter()
            step()
            times.append((time.perf_counter() - start) * 1e3)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None
    return statistics.median(times), peak


def input_spikes(shape: tuple[int, ...], device: torch.device, seed: int = 0) -> torch.Tensor:
    """Binary spikes at :data:`RATE`, float32."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return (torch.rand(shape, generator=gen) < RATE).float().to(device)


def linear_weight(n: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """The Linear layer's (n, n) weight shared by all libraries, uniform in +-2/sqrt(n)."""
    gen = torch.Generator(device="cpu").manual_seed(seed + 1)
    return ((torch.rand(n, n, generator=gen) * 2 - 1) * (2.0 / n**0.5)).to(device)


def _linear(n: int, cfg: Config) -> torch.nn.Linear:
    linear = torch.nn.Linear(n, n, bias=False)
    with torch.no_grad():
        linear.weight.copy_(linear_weight(n, torch.device("cpu")))
    return linear.to(cfg.device)


def backward_of_sum(params: list[torch.nn.Parameter], forward: Callable[[], torch.Tensor]) -> Step:
    """A step that clears the gradients of ``params`` and back-propagates ``forward().sum()``."""

    def step() -> None:
        for p in params:
            p.grad = None
        forward().sum().backward()

    return step


# ---------------------------------------------------------------------------
# the variants: each builder returns the step for ``n`` neurons
# ---------------------------------------------------------------------------


def build_floor(n: int, cfg: Config) -> Step:
    """The Linear layer alone (the floor of every variant)."""
    linear = _linear(n, cfg)
    x = input_spikes((cfg.batch, cfg.steps, n), cfg.device)
    return backward_of_sum([linear.weight], lambda: linear(x))


def build_ours(n: int, cfg: Config, quantize: bool = False) -> Step:
    """lava_dl: Linear on (N, T, n), then the CUBA neuron on the (N, n, T) view."""
    from lava_dl.slayer.neuron.cuba import Neuron

    linear = _linear(n, cfg)
    neuron = Neuron(**PARAMS).to(cfg.device)
    x = input_spikes((cfg.batch, cfg.steps, n), cfg.device)

    def forward() -> torch.Tensor:
        weight = neuron.quantize_8bit(linear.weight) if quantize else linear.weight
        return neuron(torch.nn.functional.linear(x, weight).movedim(1, -1))

    return backward_of_sum([linear.weight], forward)


def build_lava_dl(n: int, cfg: Config) -> Step:
    """Intel lava-dl 0.6.0: ``slayer.block.cuba.Dense`` on (N, n, T)."""
    slayer = _import_lava_dl()
    block = slayer.block.cuba.Dense(PARAMS, n, n).to(cfg.device)
    with torch.no_grad():
        weight = block.synapse.weight
        weight.copy_(linear_weight(n, cfg.device).reshape(weight.shape))
    x = input_spikes((cfg.batch, n, cfg.steps), cfg.device)
    return backward_of_sum(list(block.parameters()), lambda: block(x))


def build_spikingjelly(n: int, cfg: Config, backend: str | None) -> Step:
    """SpikingJelly: ``layer.Linear`` + ``neuron.LIFNode`` (multi-step) on (T, B, n)."""
    from spikingjelly.activation_based import functional, layer, neuron

    linear = layer.Linear(n, n, bias=False, step_mode="m")
    with torch.no_grad():
        linear.weight.copy_(linear_weight(n, torch.device("cpu")))
    lif = neuron.LIFNode(step_mode="m", **({} if backend is None else {"backend": backend}))
    net = torch.nn.Sequential(linear, lif).to(cfg.device)
    x = input_spikes((cfg.steps, cfg.batch, n), cfg.device)

    def forward() -> torch.Tensor:
        functional.reset_net(net)
        return net(x)

    return backward_of_sum([linear.weight], forward)


def _time_loop(cell, current: torch.Tensor, state):
    """The spikes of ``spikes, state = cell(current[t], state)`` over the time steps of
    ``current`` (T, B, n), stacked: how Norse's and snnTorch's cells are run."""
    out = []
    for step_input in current:
        spikes, state = cell(step_input, state)
        out.append(spikes)
    return torch.stack(out)


def build_norse(n: int, cfg: Config, compile_cell: bool) -> Step:
    """Norse: ``LIFCell`` over the time steps of (T, B, n); the cell compiled or eager."""
    from norse.torch import LIFCell
    from norse.torch.functional.lif import LIFFeedForwardState

    linear = _linear(n, cfg)
    cell = LIFCell().to(cfg.device)
    run = torch.compile(cell) if compile_cell else cell
    x = input_spikes((cfg.steps, cfg.batch, n), cfg.device)

    def forward() -> torch.Tensor:
        current = linear(x)
        zeros = torch.zeros_like(current[0])
        return _time_loop(run, current, LIFFeedForwardState(v=zeros, i=zeros))

    return backward_of_sum([linear.weight], forward)


def build_snntorch(n: int, cfg: Config) -> Step:
    """snnTorch: ``Leaky`` over the time steps of (T, B, n)."""
    import snntorch

    linear = _linear(n, cfg)
    lif = snntorch.Leaky(beta=0.9).to(cfg.device)
    x = input_spikes((cfg.steps, cfg.batch, n), cfg.device)

    def forward() -> torch.Tensor:
        current = linear(x)
        return _time_loop(lif, current, torch.zeros_like(current[0]))

    return backward_of_sum([linear.weight], forward)


# ---------------------------------------------------------------------------
# finding the peers: wheels, lava-dl, spikingjelly versions
# ---------------------------------------------------------------------------

#: Directories of unzipped wheels, by distribution name (several for spikingjelly).
WHEEL_DIRS: dict[str, list[Path]] = {}


def add_wheels(wheel_dir: Path, site: Path) -> dict[str, list[Path]]:
    """Unzip every wheel of ``wheel_dir`` into ``site/<stem>`` and register it.

    All but lava-dl and spikingjelly are appended to ``sys.path`` at once; those two are
    put on it by their variants (lava-dl's ``lava`` namespace, one spikingjelly at a time).

    Parameters
    ----------
    wheel_dir : Path
        Folder of ``*.whl`` files (pure Python).
    site : Path
        Where to unzip them (reused when already there).

    Returns
    -------
    dict
        :data:`WHEEL_DIRS`.
    """
    for wheel in sorted(wheel_dir.glob("*.whl")):
        target = site / wheel.name[: -len(".whl")]
        if not (target / ".complete").exists():
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(target)
            (target / ".complete").touch()
        name = wheel.name.split("-")[0].lower().replace("_", "-")
        WHEEL_DIRS.setdefault(name, []).append(target)
        if name not in ("lava-dl", "spikingjelly") and str(target) not in sys.path:
            sys.path.append(str(target))
    return WHEEL_DIRS


def _import_lava_dl():
    """``lava.lib.dl.slayer`` 0.6.0 from a wheel of ``--wheels`` or via :mod:`_lava_dl_ref`."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _lava_dl_ref

    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    os.environ["TORCH_EXTENSIONS_DIR"] = str(BUILD_DIR)
    if "lava-dl" in WHEEL_DIRS and "lava.lib.dl.slayer" not in sys.modules:
        _lava_dl_ref.TARGET = WHEEL_DIRS["lava-dl"][0]  # unzipped: no pip install needed
    slayer, reason = _lava_dl_ref.import_slayer()
    if slayer is None:
        raise RuntimeError(reason)
    if torch.cuda.is_available():  # lava-dl's own setting is sm_80 code only for cc >= 8
        major, minor = torch.cuda.get_device_capability()
        importlib.import_module("lava.lib.dl.slayer.jitconfig").TORCH_CUDA_ARCH_LIST = f"{major}.{minor}"
    return slayer


def prebuild_lava_dl() -> dict:
    """JIT-compile lava-dl's CUDA extensions used by the CUBA Dense block; log to :data:`PREBUILD_LOG`."""
    report: dict = {}
    start = time.perf_counter()
    try:
        _import_lava_dl()
        for module, attribute in (("lava.lib.dl.slayer.neuron.dynamics.leaky_integrator", "leaky_integrator"),
                                  ("lava.lib.dl.slayer.utils.time.shift", "shift")):
            begin = time.perf_counter()
            getattr(importlib.import_module(module).Accelerated, attribute)
            report[attribute] = round(time.perf_counter() - begin, 1)
    except Exception as exc:  # noqa: BLE001 - the benchmark reports it
        report["error"] = f"{type(exc).__name__}: {exc}"[:500]
    report["seconds"] = round(time.perf_counter() - start, 1)
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    PREBUILD_LOG.write_text(json.dumps(report))
    return report


def wait_prebuild(timeout: float = 300.0) -> dict | None:
    """Wait for a background ``--prebuild-lava-dl`` (marked by ``BUILD_DIR/prebuild.started``)."""
    if not (BUILD_DIR / "prebuild.started").exists():
        return None
    deadline = time.monotonic() + timeout
    while not PREBUILD_LOG.exists() and time.monotonic() < deadline:
        time.sleep(1)
    return json.loads(PREBUILD_LOG.read_text()) if PREBUILD_LOG.exists() else {"error": "prebuild timed out"}


@contextlib.contextmanager
def spikingjelly_from(path: Path | None) -> Iterator[str]:
    """Import spikingjelly from ``path`` (or whatever is importable), yield its version, unload it."""

    def unload() -> None:
        for name in [m for m in sys.modules if m == "spikingjelly" or m.startswith("spikingjelly.")]:
            del sys.modules[name]

    unload()
    if path is not None:
        sys.path.insert(0, str(path))
    try:
        from importlib.metadata import distributions

        import spikingjelly

        where = [str(path)] if path is not None else sys.path
        found = [d.version for d in distributions(name="spikingjelly", path=where)]
        yield getattr(spikingjelly, "__version__", None) or (found[0] if found else "?")
    finally:
        if path is not None and str(path) in sys.path:
            sys.path.remove(str(path))
        unload()


# ---------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------


def _version(module: str) -> str:
    from importlib.metadata import version

    try:
        return version(module)
    except Exception:  # noqa: BLE001 - unknown version
        return getattr(importlib.import_module(module), "__version__", "?")


def run_variant(library: str, variant: str, build: Callable[[int], Step], sizes: list[int], cfg: Config,
                setup_s: float = 0.0) -> list[Row]:
    """Time ``build(n)`` for each size; failures and budget cuts become rows.

    Parameters
    ----------
    library, variant : str
        The row's labels.
    build : callable
        ``n -> step``.
    sizes : list of int
        Neurons per layer, ascending.
    cfg : Config
        Shared settings.
    setup_s : float
        Import time, added to the first size's setup column.

    Returns
    -------
    list of Row
    """
    rows: list[Row] = []
    too_slow = None
    for n in sizes:
        row = Row(library, variant, n)
        rows.append(row)
        if too_slow:
            row.status = f"skipped: {too_slow}"
            continue
        try:
            start = time.perf_counter()
            step = build(n)
            step()  # first call: JIT / torch.compile
            sync(cfg.device)
            row.setup_s = time.perf_counter() - start + (setup_s if n == sizes[0] else 0.0)
            start = time.perf_counter()
            step()
            sync(cfg.device)
            one = time.perf_counter() - start
            repeats, warmup = cfg.repeats, max(0, cfg.warmup - 2)
            if one * (repeats + warmup) > cfg.max_seconds:
                warmup, repeats = 0, max(1, int(cfg.max_seconds / max(one, 1e-9)))
                row.status = f"ok ({repeats} repeats, budget {cfg.max_seconds:g} s)"
                if one > cfg.max_seconds / 2:
                    too_slow = f"one step at n={n} took {one:.1f} s (budget {cfg.max_seconds:g} s)"
            row.ms, row.peak_mib = time_step(step, cfg.device, repeats, warmup)
            del step
        except Exception as exc:  # noqa: BLE001 - report and go on
            traceback.print_exc()
            first_line = (str(exc).splitlines() or [""])[0][:120]
            row.status = f"skipped: {type(exc).__name__}: {first_line}"
            if isinstance(exc, torch.OutOfMemoryError):
                too_slow = f"out of memory at n={n}"
        finally:
            if cfg.device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


def _skipped(library: str, variant: str, sizes: list[int], reason: str) -> list[Row]:
    return [Row(library, variant, n, status=f"skipped: {reason}") for n in sizes]


def _imported(module: str) -> tuple[float, str]:
    start = time.perf_counter()
    importlib.import_module(module)
    return time.perf_counter() - start, _version(module.split(".")[0])


def peer_rows(peer: str, sizes: list[int], cfg: Config) -> list[Row]:
    """All rows of one peer (its variants); never raises."""
    try:
        if peer == "lava_dl":
            setup, version = _imported("lava_dl")
            return run_variant(f"lava_dl {version}", "ours", lambda n: build_ours(n, cfg), sizes, cfg, setup)
        if peer == "lava-dl":
            build = wait_prebuild()
            start = time.perf_counter()
            _import_lava_dl()
            rows = run_variant("lava-dl 0.6.0", "cuda" if cfg.device.type == "cuda" else "cpu",
                               lambda n: build_lava_dl(n, cfg), sizes, cfg, time.perf_counter() - start)
            if build is not None:
                for row in rows:
                    row.status += f" (JIT build beforehand: {build})"
            return rows
        if peer == "spikingjelly":
            return _spikingjelly_rows(sizes, cfg)
        if peer == "norse":
            setup, version = _imported("norse.torch")
            return (run_variant(f"norse {version}", "torch.compile(LIFCell)",
                                lambda n: build_norse(n, cfg, True), sizes, cfg, setup)
                    + run_variant(f"norse {version}", "eager LIFCell", lambda n: build_norse(n, cfg, False),
                                  sizes, cfg))
        if peer == "snntorch":
            setup, version = _imported("snntorch")
            return run_variant(f"snntorch {version}", "Leaky loop", lambda n: build_snntorch(n, cfg),
                               sizes, cfg, setup)
        return _skipped(peer, "-", sizes, f"unknown peer (choose from {', '.join(PEERS)})")
    except Exception as exc:  # noqa: BLE001 - import failures and the like
        traceback.print_exc()
        return _skipped(peer, "-", sizes, f"{type(exc).__name__}: {exc}"[:160])


def _spikingjelly_auto() -> str:
    """The LIF implementation spikingjelly 2.x says it selected (best effort: private state)."""
    try:
        selections = importlib.import_module("spikingjelly._ops.lif")._selection._selections
        names = sorted({getattr(s, "name", None) or "torch-reference" for s in selections.values()})
        return f"auto ({', '.join(names)})" if names else "auto"
    except Exception:  # noqa: BLE001 - only a label
        return "auto"


def _spikingjelly_rows(sizes: list[int], cfg: Config) -> list[Row]:
    rows: list[Row] = []
    for path in WHEEL_DIRS.get("spikingjelly") or [None]:
        try:
            start = time.perf_counter()
            with spikingjelly_from(path) as version:
                from spikingjelly.activation_based import neuron

                setup = time.perf_counter() - start
                label = f"spikingjelly {version}"
                try:
                    backends = neuron.LIFNode(step_mode="m", backend="torch").supported_backends
                except TypeError:  # 2.x: no backend argument, it selects its own implementation
                    backends = None
                if backends is None:
                    auto = run_variant(label, "auto", lambda n: build_spikingjelly(n, cfg, None),
                                       sizes, cfg, setup)
                    variant = _spikingjelly_auto()  # known once it has run
                    for row in auto:
                        row.variant = variant
                    rows += auto
                    continue
                cupy_rows = (run_variant(label, "cupy", lambda n: build_spikingjelly(n, cfg, "cupy"),
                                         sizes, cfg, setup)
                             if cfg.device.type == "cuda" and "cupy" in backends
                             else _skipped(label, "cupy", sizes, "cupy backend needs CUDA"))
                rows += cupy_rows
                if any(row.ms is None for row in cupy_rows):
                    rows += run_variant(label, "torch", lambda n: build_spikingjelly(n, cfg, "torch"),
                                        sizes, cfg)
        except Exception as exc:  # noqa: BLE001 - one version's failure must not hide the others
            traceback.print_exc()
            rows += _skipped(f"spikingjelly ({path})", "-", sizes, f"{type(exc).__name__}: {exc}"[:160])
    return rows


def run_peers(peers: list[str], sizes: list[int], cfg: Config) -> list[Row]:
    """Rows of every peer, in the order given."""
    rows: list[Row] = []
    for peer in peers:
        rows += peer_rows(peer, sizes, cfg)
        print(f"   ({peer} done)", flush=True)
    return rows


def table(rows: list[Row]) -> str:
    """The rows as one markdown table."""
    lines = ["| library | variant | n | ms per fwd+bwd | peak MiB | setup s | status |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        ms = f"{r.ms:.2f}" if r.ms is not None else "-"
        peak = f"{r.peak_mib:.0f}" if r.peak_mib is not None else "-"
        setup = f"{r.setup_s:.1f}" if r.setup_s is not None else "-"
        lines.append(f"| {r.library} | {r.variant} | {r.n} | {ms} | {peak} | {setup} | {r.status} |")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared with ``gpu_check.py``."""
    parser.add_argument("--sizes", default="4096,8192,16384", help="neurons per layer, comma-separated")
    parser.add_argument("--steps", type=int, default=STEPS, help="time steps T")
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per row (the first counts)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time budget of one row")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated, from " + ",".join(PEERS))
    parser.add_argument("--wheels", type=Path, default=None, help="folder of peer wheels to unzip and use")
    parser.add_argument("--site", type=Path, default=Path("/tmp/onm_peers_site"),
                        help="where wheels are unzipped")


def config(args: argparse.Namespace, device: str) -> Config:
    """The :class:`Config` of parsed arguments."""
    return Config(torch.device(device), args.steps, args.batch, args.repeats, args.warmup, args.max_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        choices=("cuda", "cpu"))
    parser.add_argument("--prebuild-lava-dl", action="store_true",
                        help="only JIT-compile lava-dl's CUDA extensions (in the background)")
    args = parser.parse_args(argv)
    if args.wheels is not None and args.wheels.is_dir():
        add_wheels(args.wheels, args.site)
    if args.prebuild_lava_dl:
        print(json.dumps(prebuild_lava_dl()))
        return 0
    cfg = config(args, args.device)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    print(f"ONM benchmark on {cfg.device}: batch {cfg.batch}, T {cfg.steps}, input rate {RATE}, "
          f"median of {cfg.repeats} after {cfg.warmup} warm-ups, torch {torch.__version__}", flush=True)
    rows = run_peers([p.strip() for p in args.peers.split(",") if p.strip()], sizes, cfg)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
