"""Training-step time of every slayer neuron family: compiled kernels vs a torch loop vs the synapse floor.

For each family (cuba, alif, rf, rf_iz, adrf, adrf_iz, sigma_delta) one network,
dense 200-256-10, batch 32, T=100, forward + backward + SGD step, 1 torch thread,
is timed in three variants built from the same seed (identical weights):

* ``floor``: the network's synapses alone (8-bit quantized dense layers; a complex
  synapse's two outputs are added so the next layer gets one tensor);
* ``lava_dl``: the real slayer neuron of the family (``lava_dl.slayer.neuron.<family>.Neuron``:
  compiled integer forward + compiled surrogate-gradient backward) behind the same
  synapses (``lava_dl.slayer.complex_synapse.Dense`` for the resonators);
* ``loop``: the same neuron math as a per-time-step Python loop of torch ops with
  surrogate-gradient spike autograd functions (how lava-dl trains on the CPU); state
  rounding to the ``1/S`` grid is kept with straight-through gradients.

Spiking families get the one-step synaptic delay of a slayer block (lava_dl and loop);
sigma-delta blocks have none. Variants are interleaved step by step so that they share
the machine's noise; each ratio is the median of ratios measured within one round.
The first step of each network (Numba compile / cache load) is excluded.

Run ``python benchmarks/bench_training_families.py [--repeats N] [--quick] [--profile FAMILY]``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

import lava_dl  # noqa: F401
from lava_dl import slayer
from lava_dl.slayer.utils import delay_shift

BATCH, STEPS, SIZES = 32, 100, (200, 256, 10)
FAMILIES = ("cuba", "alif", "rf", "rf_iz", "adrf", "adrf_iz", "sigma_delta")
VARIANTS = ("floor", "lava_dl", "loop")
COMPLEX = frozenset({"rf", "rf_iz", "adrf", "adrf_iz"})

_RESONATOR = dict(period=12.0, decay=0.1, tau_grad=1.0, scale_grad=1.0)
_ADAPTIVE = dict(threshold_step=0.25, threshold_decay=0.05, refractory_decay=0.25)
#: Neuron arguments per family (chosen so that both layers spike at realistic rates).
PARAMS = {
    "cuba": dict(threshold=1.25, current_decay=0.25, voltage_decay=0.03, tau_grad=0.03, scale_grad=3),
    "alif": dict(threshold=1.25, current_decay=0.25, voltage_decay=0.03, tau_grad=0.03, scale_grad=3,
                 **_ADAPTIVE),
    "rf": dict(threshold=0.5, **_RESONATOR),
    "rf_iz": dict(threshold=0.5, **_RESONATOR),
    "adrf": dict(threshold=0.5, **_RESONATOR, **_ADAPTIVE),
    "adrf_iz": dict(threshold=0.5, **_RESONATOR, **_ADAPTIVE),
    "sigma_delta": dict(threshold=0.1, activation=F.relu),
}
#: Initial weight scale of the synapses (multiplies torch's fan-in uniform init).
WEIGHT_SCALE = {"cuba": 2, "alif": 2, "rf": 3, "rf_iz": 3, "adrf": 3, "adrf_iz": 3, "sigma_delta": 2}


# ---------------------------------------------------------------------------
# Autograd pieces of the torch loops
# ---------------------------------------------------------------------------


class _Grid(torch.autograd.Function):
    """``trunc(a * S) / S`` (the integer state grid) with a straight-through gradient."""

    @staticmethod
    def forward(ctx, a, s_scale):
        return torch.trunc(a * s_scale).div_(s_scale)

    @staticmethod
    def backward(ctx, g):
        return g, None


def _grid(a: torch.Tensor, s_scale: float) -> torch.Tensor:
    return _Grid.apply(a, s_scale)


class _RealSpike(torch.autograd.Function):
    """``H(v - thr)`` (``>`` if ``strict``) with lava-dl's surrogate ``scale/(2 tau) exp(-|v-thr|/tau)``.

    ``thr`` (float or tensor) gets no gradient, as in lava-dl.
    """

    @staticmethod
    def forward(ctx, v, thr, tau, scale, strict):
        ctx.save_for_backward(v)
        ctx.c = (thr, tau, scale)
        return (v > thr if strict else v >= thr).to(v.dtype)

    @staticmethod
    def backward(ctx, g):
        (v,) = ctx.saved_tensors
        thr, tau, scale = ctx.c
        return g * (scale / (2 * tau)) * torch.exp(-(v - thr).abs() / tau), None, None, None, None


class _PhaseSpike(torch.autograd.Function):
    """RF phase spike ``H(re - thr) [im_prev < 0] [im >= 0]`` with lava-dl's complex surrogate."""

    @staticmethod
    def forward(ctx, re, im, im_prev, thr, tau, scale):
        ctx.save_for_backward(re, im)
        ctx.c = (thr, tau, scale)
        return ((re >= thr) & (im_prev < 0) & (im >= 0)).to(re.dtype)

    @staticmethod
    def backward(ctx, g):
        re, im = ctx.saved_tensors
        thr, tau, scale = ctx.c
        d_re = torch.exp(-(re - thr).abs() / tau) / (2 * tau)
        d_im = torch.exp(-im.abs() / tau) / (2 * tau)
        step = 0.5 * (1 + torch.sign(re - thr) * (1 - 2 * tau * d_re))
        g_im = -g * (scale / tau) * torch.sign(im) * d_im * step
        return g * scale * d_re * d_im, g_im, None, None, None, None


# ---------------------------------------------------------------------------
# Per-time-step torch loops, one per family
# ---------------------------------------------------------------------------


def _decay(param: torch.Tensor) -> float:
    """Retention factor ``1 - round(d) / 4096`` of a shared decay parameter."""
    return 1.0 - float(torch.round(param.detach()).item()) / 4096


class _Loop(nn.Module):
    """Base of the loops: reads the fixed parameters of the real neuron ``ref`` (not trained)."""

    def __init__(self, ref: nn.Module):
        super().__init__()
        self.s = float(ref.s_scale)
        self.theta, self.tau, self.scale = ref.surrogate
        self.th0 = ref.v_th_mant * 64 / ref.s_scale  # θ0 = (vThMant << 6) / S
        if hasattr(ref, "threshold_decay"):  # adaptive families
            self.kth, self.kref = _decay(ref.threshold_decay), _decay(ref.refractory_decay)
            self.th_step = ref.threshold_step

    def _adaptive_init(self, x):
        return torch.full_like(x, self.th0), torch.zeros_like(x)

    def _adapt(self, th, r):
        """Decay the threshold adaptation and refractory state (no gradient, as in lava-dl)."""
        r = torch.trunc(r * (self.kref * self.s)) / self.s
        th = torch.trunc((th - self.th0) * (self.kth * self.s)) / self.s + self.th0
        return th, r

    def _after_spike(self, th, r, s):
        s = s.detach()
        return th + self.th_step * s, r + 2 * th * s


class CubaLoop(_Loop):
    """CUBA-LIF: ``u = q(u ku) + x``, ``v = q(v kv) + u``, spike ``v > θ``, reset ``v = 0`` (value only)."""

    def __init__(self, ref):
        super().__init__(ref)
        self.ku, self.kv = _decay(ref.current_decay), _decay(ref.voltage_decay)

    def forward(self, x):
        u = v = torch.zeros_like(x[..., 0])
        out = []
        for t in range(x.shape[-1]):
            u = _grid(u * self.ku, self.s) + x[..., t]
            v = _grid(v * self.kv, self.s) + u
            s = _RealSpike.apply(v, self.th0, self.tau, self.scale, True)
            v = v - (v * s).detach()  # reset; the adjoint ignores it (linear), as lava-dl's
            out.append(s)
        return torch.stack(out, dim=-1)


class AlifLoop(CubaLoop):
    """ALIF: CUBA integrators without v reset; spike ``v >= θ[t] + r[t]``; θ, r jump after a spike."""


    def forward(self, x):
        u = v = torch.zeros_like(x[..., 0])
        th, r = self._adaptive_init(u)
        out = []
        for t in range(x.shape[-1]):
            u = _grid(u * self.ku, self.s) + x[..., t]
            v = _grid(v * self.kv, self.s) + u
            th, r = self._adapt(th, r)
            s = _RealSpike.apply(v, th + r, self.tau, self.scale, False)
            th, r = self._after_spike(th, r, s)
            out.append(s)
        return torch.stack(out, dim=-1)


class ResonatorLoop(_Loop):
    """RF / RF-IZ / ADRF / ADRF-IZ: one rotation helper, family-specific spike, reset and adaptation."""

    def __init__(self, ref, family: str):
        super().__init__(ref)
        self.family = family
        self.sin = float(torch.round(ref.sin_decay.detach()).item()) / 4096
        self.cos = float(torch.round(ref.cos_decay.detach()).item()) / 4096

    def _rotate(self, re, im, x_re, x_im):
        """``re' = q(c re) - q(s im) + x_re``, ``im' = q(s re) + q(c im) + x_im`` (RS0 of each product)."""
        s, c, S = self.sin, self.cos, self.s
        return (_grid(re * c, S) - _grid(im * s, S) + x_re,
                _grid(re * s, S) + _grid(im * c, S) + x_im)

    def forward(self, x):
        x_re, x_im = x
        re = im = torch.zeros_like(x_re[..., 0])
        adaptive = self.family in ("adrf", "adrf_iz")
        if adaptive:
            th, r = self._adaptive_init(re)
        out = []
        for t in range(x_re.shape[-1]):
            im_prev = im
            re, im = self._rotate(re, im, x_re[..., t], x_im[..., t])
            thr = self.th0
            if adaptive:
                th, r = self._adapt(th, r)
                thr = th + r
            if self.family in ("rf", "adrf"):
                s = _PhaseSpike.apply(re, im, im_prev.detach(), thr, self.tau, self.scale)
            else:
                s = _RealSpike.apply(im, thr, self.tau, self.scale, False)
            if self.family == "rf_iz":  # Izhikevich reset, gradient passes through (linear adjoint)
                fired = s.detach()
                re = re - (re * fired).detach()
                im = im + ((self.th0 - 1 / self.s - im) * fired).detach()
            if adaptive:
                th, r = self._after_spike(th, r, s)
            out.append(s)
        return torch.stack(out, dim=-1)


class SigmaDeltaLoop(_Loop):
    """Sigma-delta: ``σ += z``, ``a = relu(σ)``, delta encoder with residue; straight-through ``∂y/∂Δ``."""

    def __init__(self, ref):
        super().__init__(ref)
        self.vth = ref.v_th_mant / 64
        self.msg_unit = ref.message_unit

    def forward(self, x):
        sigma = prev = res = torch.zeros_like(x[..., 0])
        out = []
        for t in range(x.shape[-1]):
            sigma = sigma + x[..., t]
            act = torch.relu(sigma)
            diff = act - prev
            delta = diff.detach() + res
            y = delta * (delta.abs() >= self.vth)
            res = delta - y
            msg = torch.floor(y * self.msg_unit) / self.msg_unit
            out.append(diff + (msg - diff).detach())
            prev = act
        return torch.stack(out, dim=-1)


def loop_neuron(family: str, ref: nn.Module) -> nn.Module:
    """The torch-loop stand-in for the real neuron ``ref`` of ``family``."""
    if family == "cuba":
        return CubaLoop(ref)
    if family == "alif":
        return AlifLoop(ref)
    if family in COMPLEX:
        return ResonatorLoop(ref, family)
    return SigmaDeltaLoop(ref)


# ---------------------------------------------------------------------------
# Network, timing
# ---------------------------------------------------------------------------


class Layer(nn.Module):
    """Synapse, then the neuron (or nothing for the floor), then the optional one-step delay."""

    def __init__(self, synapse: nn.Module, neuron: nn.Module | None, shift: bool):
        super().__init__()
        self.synapse, self.neuron, self.shift = synapse, neuron, shift

    def forward(self, x):
        z = self.synapse(x)
        if self.neuron is None:
            return z[0] + z[1] if isinstance(z, tuple) else z
        if not self.shift:
            return self.neuron(z)
        if hasattr(self.neuron, "delayed"):  # lava_dl neurons: as a slayer block runs them
            return self.neuron.delayed(z)[0]
        return delay_shift(self.neuron(z))


def build(family: str, variant: str, seed: int = 0) -> nn.Sequential:
    """The 200-256-10 network of ``family`` in ``variant`` (same weights for every variant)."""
    torch.manual_seed(seed)
    neuron_cls = getattr(slayer.neuron, family).Neuron
    synapse_cls = slayer.complex_synapse.Dense if family in COMPLEX else slayer.synapse.Dense
    layers = []
    for a, b in zip(SIZES, SIZES[1:]):
        neuron = neuron_cls(**PARAMS[family], shape=(b,))
        synapse = synapse_cls(a, b, weight_scale=WEIGHT_SCALE[family], pre_hook_fx=neuron.quantize_8bit)
        if variant == "floor":
            neuron = None
        elif variant == "loop":
            neuron = loop_neuron(family, neuron)
        layers.append(Layer(synapse, neuron, shift=variant != "floor" and family != "sigma_delta"))
    return nn.Sequential(*layers)


class Trainer:
    """One network with its optimiser; :meth:`step` times one training step."""

    def __init__(self, net: nn.Sequential):
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


def activity(nets: dict, x: torch.Tensor) -> tuple[float, float, float]:
    """Hidden-layer event rate of lava_dl and loop, and the fraction of equal hidden outputs."""
    with torch.no_grad():
        a = nets["lava_dl"].net[0](x)
        b = nets["loop"].net[0](x)
    return float((a != 0).float().mean()), float((b != 0).float().mean()), float((a == b).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed steps per network (default 21, 5 with --quick)")
    parser.add_argument("--quick", action="store_true", help="few repeats, for a smoke run")
    parser.add_argument("--profile", choices=FAMILIES, default=None,
                        help="also cProfile a few lava_dl steps of this family")
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated subset")
    args = parser.parse_args()
    repeats = args.repeats or (5 if args.quick else 21)
    families = [f for f in args.families.split(",") if f]
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = (torch.rand(BATCH, SIZES[0], STEPS) < 0.1).float()
    y = torch.randint(0, SIZES[-1], (BATCH,))

    trainers, notes = {}, {}
    for fam in families:
        trainers[fam] = {v: Trainer(build(fam, v)) for v in VARIANTS}
        notes[fam] = activity(trainers[fam], x)
        for trainer in trainers[fam].values():
            trainer.step(x, y)  # warm-up: Numba compile / cache load, allocator

    times = {f: {v: [] for v in VARIANTS} for f in families}
    ratios = {f: {"lava/floor": [], "loop/lava": []} for f in families}
    for i in range(repeats):  # interleaved: every network steps once per round
        for fam in families:
            order = VARIANTS[i % 3:] + VARIANTS[:i % 3]
            t = {v: trainers[fam][v].step(x, y) for v in order}
            for v in VARIANTS:
                times[fam][v].append(t[v])
            ratios[fam]["lava/floor"].append(t["lava_dl"] / t["floor"])
            ratios[fam]["loop/lava"].append(t["loop"] / t["lava_dl"])

    print(f"Dense {SIZES[0]}-{SIZES[1]}-{SIZES[2]}, batch {BATCH}, T={STEPS}, 1 torch thread, "
          f"forward+backward+SGD step, median of {repeats} interleaved steps")
    print(f"{'family':<12} {'floor ms':>9} {'lava_dl ms':>11} {'loop ms':>9} {'lava_dl/floor':>14} "
          f"{'loop/lava_dl':>13}")
    for fam in families:
        med = {v: statistics.median(times[fam][v]) * 1e3 for v in VARIANTS}
        print(f"{fam:<12} {med['floor']:9.2f} {med['lava_dl']:11.2f} {med['loop']:9.2f} "
              f"{statistics.median(ratios[fam]['lava/floor']):14.2f} "
              f"{statistics.median(ratios[fam]['loop/lava']):13.2f}")
    print("\nhidden-layer event rate (lava_dl / loop) and agreement of the hidden outputs, first step:")
    for fam in families:
        rate_a, rate_b, same = notes[fam]
        print(f"  {fam:<12} {rate_a:.3f} / {rate_b:.3f}   equal {same:.4f}")
    print("float32 synapses throughout (sigma-delta: exact on its grid while |synaptic sum| < 64, "
          "checked by the neuron).")

    if args.profile:
        trainer = trainers[args.profile]["lava_dl"]
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(5):
            trainer.step(x, y)
        prof.disable()
        print(f"\ncProfile, 5 lava_dl steps of {args.profile} (tottime):")
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
