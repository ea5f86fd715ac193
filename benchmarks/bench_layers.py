"""Speed of lava_dl's conv training and of its Pool / ConvT / delay layers on Lava (issue 7, item 7).

Three parts, each printing its own table (``--parts a,b,c``; each part runs in 1-3 minutes):

(a) ``train``: one training step (forward + backward + SGD step, cross-entropy on the
    spike counts) of a conv CUBA network, batch 4, T=300, 1 torch thread::

        input 2x32x32 -> Conv 16 (3x3, pad 1) -> Conv 32 (3x3, stride 2, pad 1)
                      -> Flatten -> Dense 10

    built three times with the same synapse weights and timed step by step, interleaved
    (rotating order) so that the variants share the machine's noise:

    * ``floor``: lava_dl's blocks without neurons (the synapses alone, no latency shift);
    * ``lava_dl``: ``lava_dl.slayer.block.cuba`` blocks;
    * ``lava-dl 0.6``: Intel lava-dl 0.6.0's own ``lava.lib.dl.slayer.block.cuba`` blocks on
      the CPU, i.e. its per-time-step torch loops (lava-dl JIT-compiles C++/CUDA only when
      CUDA is available). It is installed from the wheel into the gitignored
      ``benchmarks/.cache`` by :mod:`_lava_dl_ref` and skipped, with the reason, when that
      fails.

    In one process, lava-dl 0.6 shares the allocator setting that importing lava_dl makes
    (large tensors on transparent huge pages), which speeds lava-dl up too. So (a) ends with
    both libraries as their users run them: each in a fresh Python process of its own
    (``--child``), one process at a time (processes alive side by side perturb each other
    through the kernel's page allocator: an idle one doubled the floor's step), rotating over
    ``--own-rounds`` rounds of 3 steps: ``lava_dl`` as imported, ``lava-dl 0.6`` with torch's
    default allocator (``THP_MEM_ALLOC_ENABLE=0``), and ``lava_dl, no THP`` (the setting
    switched off, to separate the allocator's share of the ratio from the kernels').

    Then a torch-profiler breakdown of a few steps of lava_dl (and one of lava-dl 0.6):
    conv forward / conv backward / dense / neuron forward / neuron backward / other.

(b) ``pool+delay``: the same lava_dl network with a Pool block and with ``delay=True``
    (learnable axonal delays, set to 0-7 steps) vs without::

        base   : Conv 16 -> Conv 32 (stride 2) -> Flatten -> Dense 10
        +pool  : Conv 16 -> Pool 2x2 -> Conv 32 (stride 1) -> Flatten -> Dense 10
        +delay : base, every weighted block with delay=True
        +both  : +pool, every weighted block (the Pool too) with delay=True

    (the pooled net's second conv has the same output size and MACs as the base net's,
    so ``+pool`` adds exactly one Pool layer of 16x16x16 neurons). Target: +both within
    1.5x of base.

(c) ``lava``: Lava ``Loihi1SimCfg(select_tag='fixed_pt')`` steps/s after warm-up of graphs
    ``source -> synapse -> sink`` at PilotNet size (first-layer output 24x33x100, Lava
    ``(x, y, c) = (100, 33, 24)``, 15 % spikes), lava_dl's process vs lava-nc's equivalent:

    * ``pool``: ``lava_dl.proc.conv.Pool`` 2x2 (stride 2) vs lava-nc ``Conv`` with the
      depthwise kernel ``(24, 2, 2, 1)``, ``groups=24``;
    * ``convT``: ``lava_dl.proc.conv.ConvT`` 24->24 3x3 stride 2 vs lava-nc ``Conv`` 3x3
      stride 1, padding 2, with the flipped / transposed kernel on the zero-stuffed input
      (199x65: the equivalent forward convolution; lava-nc has no transposed conv);
    * ``delay``: dense 256x256, 10 % input spikes, per-synapse delays in [0, 62]:
      ``lava_dl.proc.delay.DelayDense`` vs lava-nc ``DelayDense``;
    * ``axon``: per-input delays in [0, 62]: ``lava_dl.proc.delay.AxonDelay`` + ``lava_dl``
      ``Dense`` vs ``lava_dl`` ``DelayDense`` vs lava-nc ``DelayDense`` (delay matrix with
      equal columns).

    The sink keeps, per step, the sum and the CRC-32 of the int32 synaptic output; the
    digests of the graphs of one case are compared over the steps all have run.

All variants run in one process, so lava-dl 0.6 uses the same torch allocator as lava_dl:
importing ``lava_dl`` sets ``THP_MEM_ALLOC_ENABLE=1`` (large tensors on transparent huge pages),
which speeds up both sides' convolutions (see the README's conventions).

Parts run in the order a, b, c, the training parts before Lava forks its workers. (The
forward kernels once wrote unkept records through AVX-512 masked stores into an empty
array, which ran 5-20x slower after any fork; they now write to scratch rows, so the order
no longer matters for lava_dl, but it keeps the runs comparable with earlier tables.)

Run ``python benchmarks/bench_layers.py [--parts a,b,c] [--quick] [--repeats N] [--own-rounds N]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from collections import defaultdict  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

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
from lava.magma.core.run_configs import Loihi1SimCfg  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.conv.process import Conv as LavaConv  # noqa: E402
from lava.proc.dense.process import DelayDense as LavaDelayDense  # noqa: E402
from lava.proc.io.source import RingBuffer as Source  # noqa: E402

from lava_dl import slayer  # noqa: E402
from lava_dl.proc.conv import ConvT, Pool  # noqa: E402
from lava_dl.proc.delay import AxonDelay, DelayDense  # noqa: E402
from lava_dl.proc.dense import Dense  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lava_dl_ref  # noqa: E402
from bench_lava import Graph  # noqa: E402  (one runner for the Lava benchmarks)

# ---------------------------------------------------------------------------
# (a), (b): training steps
# ---------------------------------------------------------------------------

BATCH, STEPS, IN_SHAPE, IN_RATE = 4, 300, (2, 32, 32), 0.1
PARAMS = dict(threshold=1.25, current_decay=0.25, voltage_decay=0.03, tau_grad=0.03, scale_grad=3)


def conv_net(slayer_module, pool: bool = False, delay: bool = False, seed: int = 0) -> nn.Sequential:
    """The (a) network from ``slayer_module`` (lava_dl's or lava-dl's); ``pool``/``delay`` as in (b)."""
    torch.manual_seed(seed)
    blk = slayer_module.block.cuba
    kw = dict(delay=True) if delay else {}
    layers = [blk.Conv(PARAMS, 2, 16, 3, padding=1, weight_scale=2, **kw)]
    if pool:
        layers += [blk.Pool(PARAMS, 2, in_channels=16, input_shape=(32, 32), **kw),
                   blk.Conv(PARAMS, 16, 32, 3, stride=1, padding=1, weight_scale=2, **kw)]
    else:
        layers += [blk.Conv(PARAMS, 16, 32, 3, stride=2, padding=1, weight_scale=2, **kw)]
    layers += [blk.Flatten(), blk.Dense(PARAMS, 32 * 16 * 16, 10, weight_scale=2, **kw)]
    gen = torch.Generator().manual_seed(seed + 1)
    for layer in layers:
        if getattr(layer, "delay", None) is not None and layer.delay.shape is not None:
            with torch.no_grad():  # whole steps 0..7 (+0.5, away from the truncation edges)
                d = layer.delay.delay
                d.copy_(torch.randint(0, 8, d.shape, generator=gen).to(d.dtype) + 0.5)
    return nn.Sequential(*layers)


def floor_net(seed: int = 0) -> nn.Sequential:
    """lava_dl's network without neurons and without the one-step latency (synapses alone)."""
    net = conv_net(slayer, seed=seed)
    for block in net:
        if hasattr(block, "synapse"):
            block.neuron = None
            block.delay_shift = False
    return net


def copy_synapses(src: nn.Module, dst: nn.Module) -> None:
    """Give ``dst`` the synapse weights of ``src`` (same layout in lava_dl and lava-dl)."""
    weights = {k: v for k, v in src.state_dict().items() if k.endswith("synapse.weight")}
    missing = [k for k in weights if k not in dst.state_dict()]
    if missing:
        raise KeyError(f"synapse weights {missing} not found in the lava-dl network")
    dst.load_state_dict(weights, strict=False)


class Trainer:
    """One network with its optimiser; :meth:`step` times one training step."""

    def __init__(self, net: nn.Module):
        self.net = net
        self.opt = torch.optim.SGD(net.parameters(), lr=1e-3)

    def step(self, x, y) -> float:
        start = time.perf_counter()
        out = self.net(x)
        loss = F.cross_entropy(out.sum(-1), y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return time.perf_counter() - start


#: The variants of :func:`own_processes`: name -> (``--child`` variant, ``THP_MEM_ALLOC_ENABLE``).
OWN_PROCESS_VARIANTS = {
    "lava_dl": ("lava_dl", "1"),
    "lava-dl 0.6": ("lava-dl", "0"),
    "lava_dl, no THP": ("lava_dl", "0"),
}


def run_child(variant: str, thp: str, steps: int) -> tuple[list[float] | None, str | None]:
    """Time ``steps`` training steps (after one warm-up) in a fresh Python process (``--child``):
    the step times, or ``None`` and the reason the child gave or its error output."""
    env = dict(os.environ, THP_MEM_ALLOC_ENABLE=thp)
    command = [sys.executable, os.path.abspath(__file__), "--child", variant, "--repeats", str(steps)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    last = done.stdout.strip().splitlines()[-1:] or [""]
    if done.returncode or not last[0].startswith("times "):
        return None, (last[0].removeprefix("skip ") if last[0].startswith("skip ") else done.stderr[-500:])
    return [float(v) for v in last[0].split()[1:]], None


def child(variant: str, steps: int) -> None:
    """Body of ``--child``: build :func:`part_a`'s network (same seeds; the lava-dl network gets
    lava_dl's synapse weights) and input, run a warm-up step and print ``times`` and the seconds
    of ``steps`` more (or ``skip`` and a reason)."""
    torch.set_num_threads(1)
    x, y = inputs()
    net = conv_net(slayer)
    if variant == "lava-dl":
        with contextlib.redirect_stdout(io.StringIO()):
            ref, reason = _lava_dl_ref.import_slayer()
        if ref is None:
            print(f"skip {reason}")
            return
        theirs = conv_net(ref)
        copy_synapses(net, theirs)
        net = theirs
    trainer = Trainer(net)
    trainer.step(x, y)  # warm-up
    print("times", *(repr(trainer.step(x, y)) for _ in range(steps)))


def own_processes(rounds: int, steps: int) -> None:
    """lava_dl and lava-dl 0.6 each in a fresh process of its own, as their users run them, one
    process at a time (concurrent ones perturb each other through the kernel's page allocator),
    alternating over ``rounds`` rounds of ``steps`` steps; prints the medians and ratios."""
    times: dict[str, list[float]] = {k: [] for k in OWN_PROCESS_VARIANTS}
    per_round: dict[str, list[float]] = {k: [] for k in OWN_PROCESS_VARIANTS}
    names = list(OWN_PROCESS_VARIANTS)
    for i in range(rounds):
        for name in names[i % len(names):] + names[:i % len(names)]:
            measured, why = run_child(*OWN_PROCESS_VARIANTS[name], steps)
            if measured is None:
                print(f"(a, own processes) {name}: skipped ({why.strip()})")
                return
            times[name] += measured
            per_round[name].append(statistics.median(measured))
    print(f"\n(a) the same step in processes of their own, one at a time: {rounds} rounds x {steps} steps, "
          f"rotating order; lava_dl as imported (THP allocator on), lava-dl 0.6 and 'no THP' with torch's "
          f"default allocator (THP_MEM_ALLOC_ENABLE=0)")
    print(f"{'variant':<16} {'ms/step':>9} {'/ lava_dl':>10}")
    for name in names:
        ratio = statistics.median(a / b for a, b in zip(per_round[name], per_round["lava_dl"]))
        print(f"{name:<16} {statistics.median(times[name]) * 1e3:9.1f} {ratio:10.2f}")
    ratio = statistics.median(a / b for a, b in zip(per_round["lava-dl 0.6"], per_round["lava_dl, no THP"]))
    print(f"lava-dl 0.6 / lava_dl, each as it runs by default: "
          f"{statistics.median(a / b for a, b in zip(per_round['lava-dl 0.6'], per_round['lava_dl'])):.2f}x "
          f"(target >= 10x); both with torch's default allocator: {ratio:.2f}x "
          f"(ratios: medians of per-round ratios of median step times)")


def interleave(trainers: dict[str, Trainer], x, y, repeats: int, base: str):
    """Step every trainer once per round (rotating order); return the step times and the per-round
    ratios to ``base``."""
    names = list(trainers)
    times = {k: [] for k in names}
    ratios = {k: [] for k in names}
    for i in range(repeats):
        order = names[i % len(names):] + names[:i % len(names)]
        t = {k: trainers[k].step(x, y) for k in order}
        for k in names:
            times[k].append(t[k])
            ratios[k].append(t[k] / t[base])
    return times, ratios


def inputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(BATCH, *IN_SHAPE, STEPS, generator=gen) < IN_RATE).float()
    y = torch.randint(0, 10, (BATCH,), generator=gen)
    return x, y


# --- profile breakdown -----------------------------------------------------

CATEGORIES = ("conv fwd", "conv bwd", "dense fwd+bwd", "neuron fwd", "neuron bwd", "other ops")
#: Backward nodes that belong to neither a synapse nor a neuron (layout, loss, quantizer, grads).
_OTHER_BACKWARD = ("_Quantize", "Permute", "View", "Reshape", "UnsafeView", "Transpose", "TBackward",
                   "Clone", "Expand", "Squeeze", "Unsqueeze", "Select", "Slice", "Sum", "Mean", "NllLoss",
                   "LogSoftmax", "torch::autograd::AccumulateGrad", "AccumulateGrad", "Copy", "ToCopy")
_EVAL = "autograd::engine::evaluate_function: "


def _classify(event) -> str:
    """Category of one profiler event, from its innermost classifiable ancestor."""
    chain = []
    e = event
    while e is not None:
        chain.append(e.name)
        e = e.cpu_parent
    for name in chain:
        if name.startswith("Optimizer."):
            return "other ops"
        if name.startswith(_EVAL):
            node = name[len(_EVAL):]
            if "Convolution" in node:
                return "conv bwd"
            if node.startswith(("MmBackward", "AddmmBackward", "LinearBackward", "BmmBackward",
                                "BinaryLinearBackward")):
                return "dense fwd+bwd"
            if node.startswith(_OTHER_BACKWARD):
                return "other ops"
            return "neuron bwd"
    if "fwd:synapse" in chain:
        if any("conv" in n for n in chain):
            return "conv fwd"
        if any(n in ("aten::mm", "aten::linear", "aten::matmul", "aten::addmm", "aten::bmm") for n in chain):
            return "dense fwd+bwd"
        return "other ops"  # the weight quantizer
    if "fwd:block" in chain:
        return "neuron fwd"  # neuron and latency/axonal delay shift of the block
    return "other ops"


def _mark(module: nn.Module, name: str) -> list:
    """Wrap ``module``'s forward calls in a profiler range ``name``; return the hook handles."""
    ranges = []

    def pre(mod, args):
        rf = torch.profiler.record_function(name)
        rf.__enter__()
        ranges.append(rf)

    def post(mod, args, out):
        ranges.pop().__exit__(None, None, None)

    return [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]


def breakdown(trainer: Trainer, x, y, steps: int) -> tuple[dict[str, float], float]:
    """Profile ``steps`` training steps; return ms/step per category (self CPU time) and the wall ms/step."""
    from torch.profiler import ProfilerActivity, profile

    handles = []
    for block in trainer.net:
        if hasattr(block, "synapse"):
            handles += _mark(block, "fwd:block") + _mark(block.synapse, "fwd:synapse")
    try:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            for _ in range(steps):
                trainer.step(x, y)
            wall = time.perf_counter() - start
    finally:
        for h in handles:
            h.remove()
    cats: dict[str, float] = defaultdict(float)
    for event in prof.events():
        cats[_classify(event)] += event.self_cpu_time_total / 1e3 / steps
    return cats, wall * 1e3 / steps


def part_a(repeats: int, profile_steps: int, own_rounds: int = 3) -> None:
    torch.set_num_threads(1)
    x, y = inputs()
    with contextlib.redirect_stdout(io.StringIO()):  # lava-dl prints a dataset-toolbox warning
        ref, reason = _lava_dl_ref.import_slayer()
    ours = conv_net(slayer)
    nets = {"floor": floor_net(), "lava_dl": ours}
    if ref is not None:
        theirs = conv_net(ref)
        copy_synapses(ours, theirs)
        nets["lava-dl 0.6"] = theirs
    trainers = {k: Trainer(n) for k, n in nets.items()}
    # activity and agreement of the hidden layers before training (same weights)
    notes = []
    with torch.no_grad():
        h_ours = [ours[0](x)]
        h_ours.append(ours[1](h_ours[0]))
        if ref is not None:
            h_ref = [theirs[0](x)]
            h_ref.append(theirs[1](h_ref[0]))
    for i, h in enumerate(h_ours):
        note = f"  conv{i + 1} spikes: lava_dl {float((h != 0).float().mean()):.3f}"
        if ref is not None:
            note += (f", lava-dl 0.6 {float((h_ref[i] != 0).float().mean()):.3f}, "
                     f"equal outputs {float((h == h_ref[i]).float().mean()):.4f}")
        notes.append(note)

    for trainer in trainers.values():
        trainer.step(x, y)  # warm-up: Numba compile / cache load, allocator
    times, ratios = interleave(trainers, x, y, repeats, base="lava_dl")

    print(f"(a) conv CUBA net 2x32x32 -> Conv16 3x3 -> Conv32 3x3/2 -> Flatten -> Dense10, batch {BATCH}, "
          f"T={STEPS}, input {IN_RATE:.0%} spikes, 1 torch thread, forward+backward+SGD step, "
          f"median of {repeats} interleaved steps")
    print(f"{'variant':<22} {'ms/step':>9} {'/ lava_dl':>10}")
    for k in trainers:
        print(f"{k:<22} {statistics.median(times[k]) * 1e3:9.1f} {statistics.median(ratios[k]):10.2f}")
    if ref is None:
        print(f"lava-dl 0.6: skipped ({reason})")
    if ref is not None:
        ratio = statistics.median(ratios["lava-dl 0.6"])
        print(f"lava-dl 0.6 / lava_dl = {ratio:.2f}x, both in this process (lava-dl sharing lava_dl's "
              "allocator setting); ratios are medians of per-round ratios")
    print("hidden-layer event rates before training (same weights):")
    print("\n".join(notes))

    if profile_steps:
        profiled = {"lava_dl": breakdown(trainers["lava_dl"], x, y, profile_steps)}
        if ref is not None:
            profiled["lava-dl 0.6"] = breakdown(trainers["lava-dl 0.6"], x, y, 1)
        print(f"\n(a) where the time goes (torch profiler, self CPU time per step; lava_dl: {profile_steps} "
              f"step(s), lava-dl 0.6: 1 step; profiled steps run slower than unprofiled ones)")
        header = f"{'category':<26}"
        for k in profiled:
            header += f" {k + ' ms':>15} {'%':>6}"
        print(header)
        rows = [*CATEGORIES, "untracked (Python etc.)", "profiled step"]
        for cat in rows:
            line = f"{cat:<26}"
            for cats, wall in profiled.values():
                if cat == "profiled step":
                    value = wall
                elif cat.startswith("untracked"):
                    value = wall - sum(cats.values())
                else:
                    value = cats.get(cat, 0.0)
                line += f" {value:15.1f} {100 * value / wall:6.1f}"
            print(line)
        print("conv fwd/bwd: the synapses' conv2d and its backward (lava-dl: conv3d, for its Dense too); "
              "dense: the 8192->10\nmatmuls; neuron fwd/bwd: neuron dynamics, spike function and the blocks' "
              "latency shift; other ops:\nweight quantizer, layout copies outside the conv, loss, SGD.")
    if own_rounds:
        del trainers, nets, ours
        if ref is not None:
            del theirs
        own_processes(own_rounds, steps=3)


def part_b(repeats: int) -> None:
    torch.set_num_threads(1)
    x, y = inputs()
    nets = {"base": conv_net(slayer), "+pool": conv_net(slayer, pool=True),
            "+delay": conv_net(slayer, delay=True), "+both": conv_net(slayer, pool=True, delay=True)}
    trainers = {k: Trainer(n) for k, n in nets.items()}
    for trainer in trainers.values():
        trainer.step(x, y)
    times, ratios = interleave(trainers, x, y, repeats, base="base")
    print(f"(b) lava_dl, the (a) net with a Pool 2x2 block and delay=True blocks (delays 0-7 steps), batch "
          f"{BATCH}, T={STEPS}, 1 thread, median of {repeats} interleaved steps")
    print(f"{'variant':<8} {'ms/step':>9} {'/ base':>8}")
    for k in trainers:
        print(f"{k:<8} {statistics.median(times[k]) * 1e3:9.1f} {statistics.median(ratios[k]):8.2f}")
    print(f"+both / base = {statistics.median(ratios['+both']):.2f}x (target <= 1.5x)")


# ---------------------------------------------------------------------------
# (c): Lava processes
# ---------------------------------------------------------------------------


class ValueDigest(AbstractProcess):
    """Sink that keeps, per step, the sum and the CRC-32 of its int32 input (row ``(t - 1) % buffer``)."""

    def __init__(self, *, shape: tuple[int, ...], buffer: int) -> None:
        super().__init__(shape=shape, buffer=buffer)
        self.a_in = InPort(shape=shape)
        self.digest = Var(shape=(buffer, 2), init=0)


@implements(proc=ValueDigest, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyValueDigestModel(PyLoihiProcessModel):
    """Model of :class:`ValueDigest`."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    digest: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def run_spk(self) -> None:
        a = np.ascontiguousarray(self.a_in.recv(), dtype=np.int32)
        row = self.digest[(self.time_step - 1) % self.digest.shape[0]]
        row[0] = int(a.sum(dtype=np.int64))
        row[1] = zlib.crc32(a.tobytes())


def _graph(name: str, data: np.ndarray, procs: list, chunk: int, buffer: int) -> Graph:
    """Chain ``Source(data) -> procs... -> ValueDigest``; each proc has ``s_in`` and ``a_out``/``s_out``."""
    src = Source(data=data)
    out = src.s_out
    for proc in procs:
        out.connect(proc.s_in)
        out = proc.a_out if hasattr(proc, "a_out") else proc.s_out
    sink = ValueDigest(shape=tuple(int(v) for v in out.shape), buffer=buffer)
    out.connect(sink.a_in)
    cfg = Loihi1SimCfg(select_tag="fixed_pt", exception_proc_model_map={sink: PyValueDigestModel})
    return Graph(name, src, sink, cfg, chunk)


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
    nonzero = int(np.count_nonzero(digests[0][:, 0]))
    med = {name: statistics.median(r) for name, r in rates.items()}
    ref = med[graphs[-1].name]
    rows = []
    for g in graphs:
        r = med[g.name]
        rows.append(f"{case:<6} {g.name:<24} {r:9.1f} {1e3 / r:9.3f} {r / ref:8.2f} {first[g.name]:8.2f} "
                    f"{g.steps_done:6d}  {'identical' if same else 'DIFFERENT'} over {common} steps "
                    f"({nonzero} with nonzero sum)")
    return rows


def convt_as_conv_weight(weight: np.ndarray) -> np.ndarray:
    """lava_dl ``ConvT`` weight ``(in, kx, ky, out)`` -> lava-nc ``Conv`` weight ``(out, kx, ky, in)``
    of the equivalent forward convolution of the zero-stuffed input (spatially flipped)."""
    return np.ascontiguousarray(weight[:, ::-1, ::-1, :].transpose(3, 1, 2, 0))


def stuff(data: np.ndarray, stride: int) -> np.ndarray:
    """Insert ``stride - 1`` zeros between the (x, y) positions of ``data`` ``(x, y, c, t)``."""
    x, y = data.shape[:2]
    out = np.zeros(((x - 1) * stride + 1, (y - 1) * stride + 1, *data.shape[2:]), data.dtype)
    out[::stride, ::stride] = data
    return out


def part_c(repeats: int, scale: float) -> None:
    rng = np.random.default_rng(0)
    warmup, period = 10, 50
    rows = []

    def chunks(ours: int, theirs: int) -> tuple[int, int]:
        return max(2, int(ours * scale)), max(2, int(theirs * scale))

    # PilotNet first-layer output, torch (C, H, W) = (24, 33, 100) -> Lava (x, y, c) = (100, 33, 24)
    shape = (100, 33, 24)
    data = (rng.random((*shape, period)) < 0.15).astype(np.int32)

    # pool 2x2 (sum pooling, kernel value 64 = 1.0 at weight exponent 6)
    n_ours, n_lava = chunks(400, 100)
    buffer = warmup + repeats * max(n_ours, n_lava)
    graphs = [
        _graph("lava_dl Pool", data, [Pool(input_shape=shape, kernel=64, kernel_size=2)], n_ours, buffer),
        _graph("lava-nc Conv depthwise", data,
               [LavaConv(weight=np.full((24, 2, 2, 1), 64), input_shape=shape, stride=2, groups=24)],
               n_lava, buffer),
    ]
    rows += measure("pool", graphs, warmup, repeats)

    # convT 24->24 3x3 stride 2 -> (201, 67, 24)
    weight = rng.integers(-128, 128, (24, 3, 3, 24))
    stuffed = stuff(data, 2)
    n_ours, n_lava = chunks(200, 4)
    buffer = warmup + repeats * max(n_ours, n_lava)
    graphs = [
        _graph("lava_dl ConvT", data, [ConvT(weight=weight, input_shape=shape, stride=2)], n_ours, buffer),
        _graph("lava-nc Conv (stuffed)", stuffed,
               [LavaConv(weight=convt_as_conv_weight(weight), input_shape=stuffed.shape[:3], padding=2)],
               n_lava, buffer),
    ]
    rows += measure("convT", graphs, warmup, repeats)

    # dense 256x256 with per-synapse delays
    n = 256
    spikes = (rng.random((n, period)) < 0.10).astype(np.int32)
    w = rng.integers(-128, 128, (n, n))
    delays = rng.integers(0, 63, (n, n))
    n_ours, n_lava = chunks(1000, 40)
    buffer = warmup + repeats * max(n_ours, n_lava)
    graphs = [
        _graph("lava_dl DelayDense", spikes, [DelayDense(weights=w, delays=delays, max_delay=62)], n_ours,
               buffer),
        _graph("lava-nc DelayDense", spikes, [LavaDelayDense(weights=w, delays=delays, max_delay=62)], n_lava,
               buffer),
    ]
    rows += measure("delay", graphs, warmup, repeats)

    # per-input (axonal) delays: AxonDelay + Dense == DelayDense with equal columns
    d_in = rng.integers(0, 63, n)
    d_mat = np.broadcast_to(d_in, (n, n)).copy()
    graphs = [
        _graph("lava_dl AxonDelay+Dense", spikes,
               [AxonDelay(shape=(n,), delays=d_in, max_delay=62), Dense(weights=w)], n_ours, buffer),
        _graph("lava_dl DelayDense", spikes, [DelayDense(weights=w, delays=d_mat, max_delay=62)], n_ours,
               buffer),
        _graph("lava-nc DelayDense", spikes, [LavaDelayDense(weights=w, delays=d_mat, max_delay=62)], n_lava,
               buffer),
    ]
    rows += measure("axon", graphs, warmup, repeats)

    print(f"(c) Lava Loihi1SimCfg(select_tag='fixed_pt'), source -> synapse -> sink, steps/s after "
          f"{warmup} warm-up steps (median of {repeats} interleaved chunks)")
    print("pool/convT: input (x, y, c) = (100, 33, 24), 15% spikes; delay/axon: 256 -> 256, 10% spikes, "
          "delays 0..62")
    print(f"{'case':<6} {'impl':<24} {'steps/s':>9} {'ms/step':>9} {'x lava-nc':>8} {'first s':>8} "
          f"{'steps':>6}  output check (per-step sum and CRC-32 of the int32 output)")
    for row in rows:
        print(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="a,b,c", help="comma-separated subset of a, b, c")
    parser.add_argument("--quick", action="store_true", help="few repeats, for a smoke run")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed rounds per part (default a: 7, b: 9, c: 5; --quick: 2)")
    parser.add_argument("--profile-steps", type=int, default=3,
                        help="profiled lava_dl steps in (a) (0: no profile)")
    parser.add_argument("--own-rounds", type=int, default=None,
                        help="(a) rounds of lava_dl / lava-dl in processes of their own "
                             "(default 3, --quick 1; 0: none)")
    parser.add_argument("--child", choices=("lava-dl", "lava_dl"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repeats or 3)
        return
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"a", "b", "c"}
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}")
    parts = sorted(parts)  # a, b before c: Lava forks (see the module docstring)
    for i, part in enumerate(parts):
        if i:
            print()
        if part == "a":
            profile_steps = min(args.profile_steps, 1) if args.quick else args.profile_steps
            own_rounds = args.own_rounds if args.own_rounds is not None else (1 if args.quick else 3)
            part_a(args.repeats or (2 if args.quick else 7), profile_steps, own_rounds)
        elif part == "b":
            part_b(args.repeats or (2 if args.quick else 9))
        else:
            part_c(args.repeats or (2 if args.quick else 5), 0.25 if args.quick else 1.0)


if __name__ == "__main__":
    main()
