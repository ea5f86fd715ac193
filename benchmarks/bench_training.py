"""Training-step time of a CUBA Dense 200-256-10 network (batch 32, T=100, quantized).

Compares, in one run, side by side:

* ``floor``: the same network's synapses alone (quantized linear layers, no neurons);
* ``lava_dl``: the slayer CUBA blocks (compiled integer forward + compiled BPTT);
* ``torch loop``: the same neuron written as a per-time-step torch loop with a
  surrogate spike (how lava-dl trains on CPU).

Variants are interleaved step by step (rotating order) so that they share the
machine's noise. Prints the median step times and the median per-round ratio to
the floor. Target: lava_dl <= 1.25x floor on 1 thread.

``--threads 1,2`` runs every variant at each torch thread count (interleaved too) and
adds a thread-scaling table (issue 11 item 4, target >= 1.7x on 2 threads for lava_dl).
``--kinds floor,lava_dl`` skips the slow torch loop. ``--net conv`` times bench_layers.py's conv
network instead (2x32x32 -> Conv 16 -> Conv 32 stride 2 -> Dense 10, batch 32, T=30).

On a machine shared with other work, report its load (``uptime``) with the tables: torch's
OpenMP threads spin while they wait, so two threads slow down badly when the cores are busy.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import lava_dl  # noqa: F401
from lava_dl import slayer

BATCH, STEPS, SIZES = 32, 100, (200, 256, 10)
PARAMS = dict(threshold=1.25, current_decay=0.25, voltage_decay=0.03, tau_grad=0.03, scale_grad=3)


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, theta, tau, scale):
        ctx.save_for_backward(v)
        ctx.c = (theta, tau, scale)
        return (v > theta).to(v.dtype)

    @staticmethod
    def backward(ctx, g):
        (v,) = ctx.saved_tensors
        theta, tau, scale = ctx.c
        return g * scale / (2 * tau) * torch.exp(-(v - theta).abs() / tau), None, None, None


class LoopNeuron(torch.nn.Module):
    """CUBA-LIF as a Python loop over time (float dynamics with integer rounding, like lava-dl's CPU path)."""

    #: States start from zero in every forward (no state carried between calls), and the
    #: block's delay shift must not carry the last output either.
    persistent_state = False

    def __init__(self, neuron):
        super().__init__()
        self.ref = neuron

    def forward(self, x):
        n = self.ref
        s_scale = n.s_scale
        du = torch.round(n.current_decay) / 4096
        dv = torch.round(n.voltage_decay) / 4096
        theta, tau, scale = n.surrogate
        u = torch.zeros_like(x[..., 0])
        v = torch.zeros_like(x[..., 0])
        out = []
        for t in range(x.shape[-1]):
            u = torch.trunc(u * (1 - du) * s_scale) / s_scale + x[..., t]
            v = torch.trunc(v * (1 - dv) * s_scale) / s_scale + u
            s = _Spike.apply(v, theta, tau, scale)
            v = v * (1 - s.detach())
            out.append(s)
        return torch.stack(out, dim=-1)


#: ``--net conv``: bench_layers.py's conv network (input 2x32x32 -> Conv 16 3x3 -> Conv 32 3x3 stride 2
#: -> Flatten -> Dense 10, 10 % input spikes), here at batch 32 and T=30.
CONV_STEPS, CONV_INPUT = 30, (2, 32, 32)


def build(kind: str, net: str = "dense") -> torch.nn.Module:
    if net == "conv":
        blk = slayer.block.cuba
        blocks = [blk.Conv(PARAMS, 2, 16, 3, padding=1, weight_scale=2),
                  blk.Conv(PARAMS, 16, 32, 3, stride=2, padding=1, weight_scale=2),
                  blk.Flatten(), blk.Dense(PARAMS, 32 * 16 * 16, 10, weight_scale=2)]
    else:
        blocks = [slayer.block.cuba.Dense(PARAMS, a, b, weight_scale=2) for a, b in zip(SIZES, SIZES[1:])]
    if kind == "floor":
        for block in blocks:
            if hasattr(block, "synapse"):
                block.neuron = None
                block.delay_shift = False
    elif kind == "torch loop":
        for block in blocks:
            if hasattr(block, "synapse"):
                block.neuron = LoopNeuron(block.neuron)
    return torch.nn.Sequential(*blocks)


class Trainer:
    """One network with its optimiser; :meth:`step` times one training step."""

    def __init__(self, net: torch.nn.Module):
        self.net = net
        self.opt = torch.optim.SGD(net.parameters(), lr=1e-3)

    def step(self, x, y) -> float:
        start = time.perf_counter()
        out = self.net(x)
        loss = torch.nn.functional.cross_entropy(out.sum(-1), y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=60, help="timed steps per variant")
    parser.add_argument("--threads", default="1",
                        help="comma-separated torch thread counts, e.g. 1,2 (the neuron kernels use torch's "
                             "threads too); with several, a thread-scaling table follows")
    parser.add_argument("--kinds", default="floor,lava_dl,torch loop", help="variants to run")
    parser.add_argument("--net", choices=("dense", "conv"), default="dense",
                        help=f"dense {SIZES} at T={STEPS}, or the conv network at T={CONV_STEPS}")
    args = parser.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",")]
    torch.manual_seed(0)
    x = (torch.rand(BATCH, SIZES[0], STEPS) < 0.1).float()
    y = torch.randint(0, SIZES[-1], (BATCH,))
    kinds = args.kinds.split(",")
    if args.net == "conv":
        torch.manual_seed(0)
        x = (torch.rand(BATCH, *CONV_INPUT, CONV_STEPS) < 0.1).float()
        title = f"CUBA conv 2x32x32-c16-c32s2-10, batch {BATCH}, T={CONV_STEPS}"
    else:
        title = f"CUBA Dense {SIZES[0]}-{SIZES[1]}-{SIZES[2]}, batch {BATCH}, T={STEPS}"
    trainers = {}
    for k in kinds:
        torch.manual_seed(1)  # the same synapse weights in every variant
        trainers[k] = Trainer(build(k, args.net))
    runs = [(k, n) for n in thread_counts for k in kinds]
    for k, n in runs:
        torch.set_num_threads(n)
        trainers[k].step(x, y)  # warm-up: Numba compile / cache load, allocator, thread pools
    times = {r: [] for r in runs}
    for i in range(args.repeats):  # interleaved step by step, rotating the order, to share the noise
        order = runs[i % len(runs):] + runs[:i % len(runs)]
        for k, n in order:
            torch.set_num_threads(n)
            times[(k, n)].append(trainers[k].step(x, y))
    print(f"{title}, forward+backward+SGD step, median of {args.repeats} interleaved steps")
    print(f"{'variant':<12} {'threads':>7} {'ms/step':>9} {'x floor':>8}")
    for k, n in runs:
        line = f"{k:<12} {n:7d} {statistics.median(times[(k, n)]) * 1e3:9.2f}"
        if "floor" in kinds:
            ratio = [a / b for a, b in zip(times[(k, n)], times[("floor", n)])]
            line += f" {statistics.median(ratio):8.2f}"
        print(line)
    if "floor" in kinds:
        print("x floor: median over rounds of (variant time / floor time at the same threads), same round")
    if len(thread_counts) > 1:
        base = thread_counts[0]
        print(f"\nthread scaling: median over rounds of (time on {base} thread(s) / time on n threads)")
        print(f"{'variant':<12} " + " ".join(f"{n:>7d}" for n in thread_counts[1:]))
        for k in kinds:
            cells = [statistics.median(a / b for a, b in zip(times[(k, base)], times[(k, n)]))
                     for n in thread_counts[1:]]
            print(f"{k:<12} " + " ".join(f"{c:7.2f}" for c in cells))


if __name__ == "__main__":
    main()
