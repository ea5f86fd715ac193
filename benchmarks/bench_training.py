"""Training-step time of a CUBA Dense 200-256-10 network (batch 32, T=100, quantized, 1 thread).

Compares, in one run, side by side:

* ``floor``: the same network's synapses alone (quantized linear layers, no neurons);
* ``lava_dl``: the slayer CUBA blocks (compiled integer forward + compiled BPTT);
* ``torch loop``: the same neuron written as a per-time-step torch loop with a
  surrogate spike (how lava-dl trains on CPU).

Variants are interleaved step by step (rotating order) so that they share the
machine's noise. Prints the median step times and the median per-round ratio to
the floor. Target: lava_dl <= 1.5x floor.
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


def build(kind: str) -> torch.nn.Module:
    blocks = [slayer.block.cuba.Dense(PARAMS, a, b, weight_scale=2) for a, b in zip(SIZES, SIZES[1:])]
    if kind == "floor":
        for block in blocks:
            block.neuron = None
            block.delay_shift = False
    elif kind == "torch loop":
        for block in blocks:
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
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = (torch.rand(BATCH, SIZES[0], STEPS) < 0.1).float()
    y = torch.randint(0, SIZES[-1], (BATCH,))
    kinds = ["floor", "lava_dl", "torch loop"]
    trainers = {k: Trainer(build(k)) for k in kinds}
    for trainer in trainers.values():
        trainer.step(x, y)  # warm-up: Numba compile / cache load, allocator
    times = {k: [] for k in kinds}
    ratios = {k: [] for k in kinds}
    for i in range(args.repeats):  # interleaved step by step, rotating the order, to share the noise
        order = kinds[i % 3:] + kinds[:i % 3]
        t = {k: trainers[k].step(x, y) for k in order}
        for k in kinds:
            times[k].append(t[k])
            ratios[k].append(t[k] / t["floor"])
    print(f"CUBA Dense {SIZES[0]}-{SIZES[1]}-{SIZES[2]}, batch {BATCH}, T={STEPS}, 1 torch thread, "
          f"forward+backward+SGD step, median of {args.repeats} interleaved steps")
    print(f"{'variant':<12} {'ms/step':>9} {'x floor':>8}")
    for k in kinds:
        print(f"{k:<12} {statistics.median(times[k]) * 1e3:9.2f} {statistics.median(ratios[k]):8.2f}")
    print("x floor: median over rounds of (variant time / floor time) measured in the same round")


if __name__ == "__main__":
    main()
