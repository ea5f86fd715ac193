"""Equivalence of the CUDA kernels with the CPU kernels, run by tests/test_cuda_kernels.py.

Run as a script in its own process (``NUMBA_ENABLE_CUDASIM=1`` for numba's CUDA simulator,
which must be set before numba.cuda is first imported), or on a GPU machine with
``--device cuda`` (benchmarks/gpu_check.py). Exits non-zero on the first mismatch; prints
one line per case. ``--family`` picks the neurons: CUBA (16 cases), ALIF (10), sigma-delta (28:
the encoder, the σ integrator and Delta/SigmaDelta/Sigma modules), the resonators (24: RF, RF-IZ,
ADRF, ADRF-IZ), the axonal delays (22: ``slayer.axon.Delay`` and ``delay()``), CUBA's integrators
one at a time (13: ``LeakyIntegrator``, ``SpikingIntegrator``, a CUBA neuron with a norm and the
functional ``leaky_integrator``) or all.

Spikes, messages, current and voltage records, the last message and the persistent
states must be equal bit for bit. Gradients (input and decays) too in the simulator; on a
GPU they must agree to float rounding: ``|cuda - cpu| <= GRAD_RTOL * max|cpu|`` elementwise,
per tensor.
"""

from __future__ import annotations

import argparse
import copy
import sys

import numpy as np
import torch

from lava_dl.slayer import _cuda
from lava_dl.slayer.neuron.dynamics import AlifDynamics, CubaDynamics

#: Gradient bound on a GPU, relative to the largest gradient of the tensor (float32 storage:
#: 2^-23 ~ 1.2e-7; FMA contraction on a GPU changes float64 intermediates only).
GRAD_RTOL = 1e-6


def compare(cpu: dict, other: dict, exact_grads: bool) -> tuple[list[str], float]:
    """Mismatch messages between two result dicts of tensors, and the largest gradient error
    relative to its tensor's largest gradient. Non-gradients must be equal bit for bit (and so
    must gradients with ``exact_grads``)."""
    errors = []
    worst = 0.0
    for name in cpu:
        a, b = cpu[name], other[name]
        if a.shape != b.shape or a.dtype != b.dtype:
            errors.append(f"{name}: {a.shape}/{a.dtype} vs {b.shape}/{b.dtype}")
        elif name.startswith("grad") and not exact_grads:
            bound = GRAD_RTOL * float(a.abs().max()) + 1e-30
            err = float((a.double() - b.double()).abs().max())
            worst = max(worst, err / bound * GRAD_RTOL)
            if err > bound:
                errors.append(f"{name}: max error {err:.3g} > {bound:.3g}")
        elif not torch.equal(a, b):
            errors.append(f"{name}: {int((a != b).sum())} of {a.numel()} values differ")
    if float(cpu["spikes"].abs().sum()) == 0:
        errors.append("no spikes: the case tests nothing")
    return errors, worst


def case(device: str, graded: bool, delay: bool, record: bool, dtype=torch.float32, shape=(2, 5, 8), seed=0,
         lava_dl_decay=False):
    """Run CubaDynamics on the CPU and the CUDA path on ``device`` (with ``lava_dl_decay``: lava-dl's
    decay gradients).

    Returns the mismatch messages and the largest gradient error relative to its tensor's
    largest gradient.
    """
    gen = torch.Generator().manual_seed(seed)
    n, k, steps = shape
    rows = n * k
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 1.5).to(dtype)
    du = torch.randint(0, 4097, (rows,), generator=gen).to(torch.float32)
    dv = torch.randint(0, 4097, (rows,), generator=gen).to(torch.float32)
    u0 = torch.randint(-3000, 3000, (rows,), generator=gen)
    v0 = torch.randint(-3000, 3000, (rows,), generator=gen)
    vth = np.full(rows, 40 << 6, np.int64)
    surrogate = (40 / 64, 0.3, 1.0)
    results = []
    # in the simulator the "device" tensors are CPU tensors: call the CUDA path directly
    on_device = _cuda.CubaDynamicsCuda if device == "cpu" else CubaDynamics
    for dev, fn in (("cpu", CubaDynamics), (device, on_device)):
        xd = x.clone().to(dev).requires_grad_(True)
        dud = du.clone().to(dev).requires_grad_(True)
        dvd = dv.clone().to(dev).requires_grad_(True)
        first = torch.full((n, k, 1), 0.25, dtype=dtype) if delay else None
        last = np.zeros(rows, np.float32)
        out = fn.apply(xd, dud, dvd, u0, v0, 64.0, vth, surrogate, graded, record, first, last, False,
                       lava_dl_decay)
        spikes = out[0] if record else out
        gen2 = torch.Generator().manual_seed(seed + 1)
        weight = torch.randn(spikes.shape, generator=gen2, dtype=torch.float64).to(dev)
        loss = (spikes.to(torch.float64) * weight).sum()
        if record:
            loss = loss + (out[1].double() * weight).sum() * 0.1 + (out[2].double() * weight).sum()
        loss.backward()
        results.append({"spikes": spikes.detach().cpu(), "last": torch.from_numpy(last),
                        **({"u": out[1].detach().cpu(), "v": out[2].detach().cpu()} if record else {}),
                        "grad_x": xd.grad.cpu(), "grad_du": dud.grad.cpu(), "grad_dv": dvd.grad.cpu()})
    cpu, other = results
    return compare(cpu, other, exact_grads=device == "cpu")


def alif_case(device: str, graded: bool, record: bool, dtype=torch.float32, shape=(2, 5, 8), seed=0,
              lava_dl_decay=False):
    """Run AlifDynamics on the CPU and the CUDA path on ``device`` from random states (adaptation
    and refractory states included) and random decays (with ``lava_dl_decay``: lava-dl's decay
    gradients); returns what :func:`compare` returns."""
    gen = torch.Generator().manual_seed(seed)
    rows = shape[0] * shape[1]
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 3.0 + 1.0).to(dtype)
    du = torch.randint(0, 2049, (rows,), generator=gen).to(torch.float32)
    dv = torch.randint(0, 2049, (rows,), generator=gen).to(torch.float32)
    init = torch.stack([torch.randint(-5000, 5000, (rows,), generator=gen),
                        torch.randint(-5000, 5000, (rows,), generator=gen),
                        torch.randint(0, 3000, (rows,), generator=gen),
                        torch.randint(0, 3000, (rows,), generator=gen)]).numpy()
    params = (torch.randint(0, 4097, (rows,), generator=gen).numpy(),  # dth
              torch.randint(0, 4097, (rows,), generator=gen).numpy(),  # dref
              torch.randint(2, 12, (rows,), generator=gen).numpy() << 6,  # th0
              torch.randint(0, 8, (rows,), generator=gen).numpy() << 6)  # th_step
    surrogate = (0.0, 0.3, 1.0)
    results = []
    on_device = _cuda.AlifDynamicsCuda if device == "cpu" else AlifDynamics
    for dev, fn in (("cpu", AlifDynamics), (device, on_device)):
        xd = x.clone().to(dev).requires_grad_(True)
        dud = du.clone().to(dev).requires_grad_(True)
        dvd = dv.clone().to(dev).requires_grad_(True)
        final = np.empty_like(init)
        out = fn.apply(xd, dud, dvd, init.copy(), final, 64.0, params, surrogate, graded, record,
                       lava_dl_decay)
        spikes = out[0] if record else out
        weight = torch.randn(spikes.shape, generator=torch.Generator().manual_seed(seed + 1),
                             dtype=torch.float64).to(dev)
        loss = (spikes.to(torch.float64) * weight).sum()
        if record:
            loss = loss + (out[1].double() * weight).sum() * 0.1 + (out[2].double() * weight).sum()
        loss.backward()
        results.append({"spikes": spikes.detach().cpu(), "final": torch.from_numpy(final),
                        **({"u": out[1].detach().cpu(), "v": out[2].detach().cpu()} if record else {}),
                        "grad_x": xd.grad.cpu(), "grad_du": dud.grad.cpu(), "grad_dv": dvd.grad.cpu()})
    cpu, other = results
    return compare(cpu, other, exact_grads=device == "cpu")


def alif_neuron_case(device: str, graded: bool, dtype=torch.float32, seed=0):
    """Two calls of a slayer ALIF neuron with persistent state, per-channel learnable decays and a
    channels-last ``(N, C, H, W, T)`` input, on the CPU and the CUDA path: the neuron's glue (states
    carried between calls, per-row parameters, layouts) on top of :func:`alif_case`."""
    from lava_dl.slayer.neuron import alif

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    shape = (2, 3, 4, 5, 6)
    x = (torch.randint(-40, 120, shape, generator=gen) / 64).to(dtype)
    x = x.permute(0, 4, 2, 3, 1).contiguous().permute(0, 4, 2, 3, 1)  # stored as N, T, H, W, C
    reference = alif.Neuron(threshold=0.5, threshold_step=0.125, current_decay=(0.1, 0.5),
                            voltage_decay=(0.0, 0.2), threshold_decay=0.1, refractory_decay=0.3,
                            shared_param=False, shape=shape[1:4], persistent_state=True, requires_grad=True,
                            graded_spike=graded)
    results = []
    for on_device in (False, True):
        neuron = copy.deepcopy(reference).to(device if on_device else "cpu")
        if on_device and device == "cpu":  # the simulator: CPU tensors through the CUDA path
            neuron_module = sys.modules[alif.__name__]
            original, neuron_module.AlifDynamics = neuron_module.AlifDynamics, _cuda.AlifDynamicsCuda
        try:
            xd = x.clone().to(neuron.device).requires_grad_(True)
            first = neuron(xd)
            second = neuron(xd * 0.5)
        finally:
            if on_device and device == "cpu":
                neuron_module.AlifDynamics = original
        weight = torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
        loss = ((first.double() + second.double()) * weight.to(first.device)).sum()
        loss.backward()
        results.append({"spikes": torch.cat([first, second], -1).detach().cpu(),
                        **{f"state_{k}": v.cpu() for k, v in neuron._states.items()},
                        "grad_x": xd.grad.cpu(), "grad_du": neuron.current_decay.grad.cpu(),
                        "grad_dv": neuron.voltage_decay.grad.cpu()})
    cpu, other = results
    return compare(cpu, other, exact_grads=device == "cpu")


def _swap(module, **replacements):
    """Replace attributes of ``module`` (the simulator's way onto the CUDA path with CPU tensors);
    returns the originals, for :func:`_restore`."""
    originals = {name: getattr(module, name) for name in replacements}
    for name, value in replacements.items():
        setattr(module, name, value)
    return originals


def _restore(module, originals: dict) -> None:
    for name, value in originals.items():
        setattr(module, name, value)


def _weight(shape, seed: int, device) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(device)


#: Input modes of the sigma-delta encoder kernel (lava_dl.core.sigma_delta.MODE_*).
SD_MODES = {"plain": 0, "sigma": 1, "shift": 2}


def sigma_delta_case(device: str, mode: str, relu: bool, cum_error: bool, dtype=torch.float32,
                     shape=(2, 5, 8), seed=0):
    """Run the sigma-delta encoder (``_EncodeFn``: input mode, activation, delta encoding) on the CPU
    and the CUDA path on ``device`` from random states and per-row thresholds; messages, final states
    and the input and threshold gradients (lava-dl's relaxation) are compared."""
    from lava_dl.slayer.neuron import sigma_delta as sd

    gen = torch.Generator().manual_seed(seed)
    rows = shape[0] * shape[1]
    in_unit = 64.0 if mode == "shift" else float(1 << 18)
    x = (torch.randint(-400, 400, shape, generator=gen) / in_unit * (1 if mode == "shift" else 16)).to(dtype)
    theta = (torch.randint(1, 12, (rows,), generator=gen) / 64).to(torch.float32)
    vth_s = (torch.trunc(theta.double() * 64).to(torch.int64).numpy() << 12)
    states = tuple(torch.randint(-20000, 20000, (rows,), generator=gen).numpy() for _ in range(4))
    results = []
    on_device = _cuda.SigmaDeltaCuda if device == "cpu" else sd._EncodeFn
    for dev, fn in (("cpu", sd._EncodeFn), (device, on_device)):
        xd = x.clone().to(dev).requires_grad_(True)
        th = theta.clone().to(dev).requires_grad_(True)
        finals = tuple(v.copy() for v in states)
        y = fn.apply(xd, th, in_unit, SD_MODES[mode], finals, vth_s.copy(), int(relu), int(cum_error), 6,
                     (0.5, 1.0), dtype)
        (y.double() * _weight(shape, seed + 1, dev)).sum().backward()
        results.append({"spikes": y.detach().cpu(),
                        **{f"state_{i}": torch.from_numpy(v) for i, v in enumerate(finals)},
                        "grad_x": xd.grad.cpu(), "grad_theta": th.grad.cpu()})
    cpu, other = results
    return compare(cpu, other, exact_grads=device == "cpu")


def sigma_case(device: str, dtype=torch.float32, shape=(2, 5, 8), seed=0):
    """Run the σ integrator (``_SigmaFn``) on the CPU and the CUDA path on ``device`` from a random
    state; output, final state and input gradient are compared."""
    from lava_dl.slayer.neuron import sigma_delta as sd

    gen = torch.Generator().manual_seed(seed)
    rows = shape[0] * shape[1]
    unit = float(1 << 18)
    x = (torch.randint(-4000, 4000, shape, generator=gen) / unit).to(dtype)
    state = torch.randint(-20000, 20000, (rows,), generator=gen).numpy()
    results = []
    on_device = _cuda.SigmaCuda if device == "cpu" else sd._SigmaFn
    for dev, fn in (("cpu", sd._SigmaFn), (device, on_device)):
        xd = x.clone().to(dev).requires_grad_(True)
        final = state.copy()
        y = fn.apply(xd, final, unit, dtype)
        (y.double() * _weight(shape, seed + 1, dev)).sum().backward()
        results.append({"spikes": y.detach().cpu(), "final": torch.from_numpy(final),
                        "grad_x": xd.grad.cpu()})
    cpu, other = results
    return compare(cpu, other, exact_grads=device == "cpu")


def sigma_delta_network_case(device: str, norm: bool, seed=0):
    """Delta encoder, a sigma-delta neuron (per-channel learnable threshold, persistent states,
    optionally a mean-only batch norm between σ and the encoder) and the Sigma output, called twice
    on a channels-last ``(N, C, H, W, T)`` input, on the CPU and the CUDA path: the modules' glue
    (carried states, per-row thresholds, layouts) on top of :func:`sigma_delta_case`."""
    from lava_dl.slayer.neuron import norm as norms
    from lava_dl.slayer.neuron import sigma_delta as sd

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    shape = (2, 3, 4, 5, 6)
    x = (torch.randint(-200, 200, shape, generator=gen) / 64).to(torch.float32)
    x = x.permute(0, 4, 2, 3, 1).contiguous().permute(0, 4, 2, 3, 1)  # stored as N, T, H, W, C
    modules = torch.nn.ModuleList([
        sd.Delta(threshold=0.1, persistent_state=True, requires_grad=True),
        sd.Neuron(threshold=0.05, activation=torch.nn.functional.relu, tau_grad=0.5, cum_error=True,
                  shared_param=False, shape=shape[1:4], persistent_state=True, requires_grad=True,
                  norm=norms.MeanOnlyBatchNorm if norm else None),
        sd.Sigma(persistent_state=True)])
    results = []
    for on_device in (False, True):
        net = copy.deepcopy(modules).to(device if on_device else "cpu")
        swapped = None
        if on_device and device == "cpu":  # the simulator: CPU tensors through the CUDA path
            swapped = _swap(sd, _EncodeFn=_cuda.SigmaDeltaCuda, _SigmaFn=_cuda.SigmaCuda)
        try:
            xd = x.clone().to(device if on_device else "cpu").requires_grad_(True)
            outputs = []
            for scale in (1.0, 0.5):
                encoded = net[0](xd * scale)
                outputs.append(net[2](net[1](encoded * 0.75)))
        finally:
            if swapped:
                _restore(sd, swapped)
        out = torch.cat(outputs, -1)
        (out.double() * _weight(out.shape, seed + 1, out.device)).sum().backward()
        results.append({"spikes": out.detach().cpu(),
                        **{f"state{i}_{k}": v.cpu() for i, m in enumerate(net) for k, v in m._states.items()},
                        "grad_x": xd.grad.cpu(),
                        **{f"grad_{name}": p.grad.cpu() for name, p in net.named_parameters()
                           if p.grad is not None}})
    cpu, other = results
    if len(cpu) != len(other):
        return [f"results {sorted(cpu)} vs {sorted(other)}"], 0.0
    return compare(cpu, other, exact_grads=device == "cpu")


#: Family codes of the resonator kernels (lava_dl.core.resonator.*_CODE).
RESONATOR_FAMILIES = {"rf": 0, "rf_iz": 1, "adrf": 2, "adrf_iz": 3}


def resonator_case(device: str, family: str, graded: bool, record: bool, dtype=torch.float32, shape=(2, 5, 8),
                   seed=0):
    """Run ResonatorDynamics of ``family`` on the CPU and the CUDA path on ``device`` from random states
    (adaptation and refractory states included) with random rotations, thresholds and decays; spikes,
    records, final states and the input and rotation gradients are compared."""
    from lava_dl.slayer.neuron._resonator import ResonatorDynamics

    gen = torch.Generator().manual_seed(seed)
    rows = shape[0] * shape[1]
    x_re = (torch.randn(shape, generator=gen, dtype=torch.float64) * 3.0 + 0.5).to(dtype)
    x_im = (torch.randn(shape, generator=gen, dtype=torch.float64) * 3.0).to(dtype)
    sin_d = torch.randint(300, 1800, (rows,), generator=gen).to(torch.float32)
    cos_d = torch.randint(2000, 3600, (rows,), generator=gen).to(torch.float32)
    states = (torch.randint(-3000, 3000, (rows,), generator=gen).numpy(),
              torch.randint(-3000, 3000, (rows,), generator=gen).numpy(),
              torch.randint(0, 2000, (rows,), generator=gen).numpy(),
              torch.randint(0, 2000, (rows,), generator=gen).numpy())
    params = (torch.randint(0, 4097, (rows,), generator=gen).numpy(),  # dth
              torch.randint(0, 4097, (rows,), generator=gen).numpy(),  # dref
              torch.randint(1, 6, (rows,), generator=gen).numpy() << 6,  # th0
              torch.randint(0, 8, (rows,), generator=gen).numpy() << 6)  # th_step
    adaptive = family in ("adrf", "adrf_iz")
    results = []
    on_device = _cuda.ResonatorDynamicsCuda if device == "cpu" else ResonatorDynamics
    for dev, fn in (("cpu", ResonatorDynamics), (device, on_device)):
        xr = x_re.clone().to(dev).requires_grad_(True)
        xi = x_im.clone().to(dev).requires_grad_(True)
        sd = sin_d.clone().to(dev).requires_grad_(True)
        cd = cos_d.clone().to(dev).requires_grad_(True)
        finals = tuple(v.copy() for v in states)
        config = (RESONATOR_FAMILIES[family], finals, 64.0, params, (0.3, 1.0), graded, record)
        out = fn.apply(xr, xi, sd, cd, config)
        spikes = out[0] if record else out
        weight = _weight(shape, seed + 1, dev)
        loss = (spikes.double() * weight).sum()
        if record:
            loss = loss + (out[1].double() * weight).sum() * 0.1 + (out[2].double() * weight).sum() * 0.2
        loss.backward()
        records = {}
        if record:
            records = {"re": out[1].detach().cpu(), "im": out[2].detach().cpu()}
            if adaptive:
                records.update(theta=out[3].cpu(), ref=out[4].cpu())
        results.append({"spikes": spikes.detach().cpu(), **records,
                        **{f"state_{i}": torch.from_numpy(v) for i, v in enumerate(finals)},
                        "grad_x_re": xr.grad.cpu(), "grad_x_im": xi.grad.cpu(), "grad_sin": sd.grad.cpu(),
                        "grad_cos": cd.grad.cpu()})
    cpu, other = results
    return compare(cpu, other, exact_grads=device == "cpu")


def resonator_neuron_case(device: str, family: str, seed=0):
    """Two calls of a slayer resonator neuron of ``family`` with persistent state, per-channel
    learnable rotations and a channels-last complex ``(N, C, H, W, T)`` input, on the CPU and the
    CUDA path: the neuron's glue on top of :func:`resonator_case`."""
    import importlib

    from lava_dl.slayer.neuron import _resonator

    neuron_cls = importlib.import_module(f"lava_dl.slayer.neuron.{family}").Neuron
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    shape = (2, 3, 4, 5, 6)

    def conv_input() -> torch.Tensor:
        x = (torch.randint(-100, 200, shape, generator=gen) / 64).to(torch.float32)
        return x.permute(0, 4, 2, 3, 1).contiguous().permute(0, 4, 2, 3, 1)  # stored as N, T, H, W, C

    x_re, x_im = conv_input(), conv_input()
    common = dict(threshold=0.3, period=(5, 15), decay=(0.05, 0.2), shared_param=False, shape=shape[1:4],
                  persistent_state=True, requires_grad=True)
    if family.startswith("adrf"):
        common.update(threshold_step=0.125, threshold_decay=0.1, refractory_decay=0.3)
    reference = neuron_cls(**common)
    results = []
    for on_device in (False, True):
        neuron = copy.deepcopy(reference).to(device if on_device else "cpu")
        swapped = None
        if on_device and device == "cpu":  # the simulator: CPU tensors through the CUDA path
            swapped = _swap(_resonator, ResonatorDynamics=_cuda.ResonatorDynamicsCuda)
        try:
            xr = x_re.clone().to(neuron.device).requires_grad_(True)
            xi = x_im.clone().to(neuron.device).requires_grad_(True)
            first = neuron((xr, xi))
            second = neuron((xr * 0.5, xi))
        finally:
            if swapped:
                _restore(_resonator, swapped)
        out = torch.cat([first, second], -1)
        (out.double() * _weight(out.shape, seed + 1, out.device)).sum().backward()
        results.append({"spikes": out.detach().cpu(),
                        **{f"state_{k}": v.cpu() for k, v in neuron._states.items()},
                        "grad_x_re": xr.grad.cpu(), "grad_x_im": xi.grad.cpu(),
                        "grad_sin": neuron.sin_decay.grad.cpu(), "grad_cos": neuron.cos_decay.grad.cpu()})
    cpu, other = results
    return compare(cpu, other, exact_grads=device == "cpu")


#: How the delay cases store their ``(N, C, ..., T)`` input: as torch makes it (time last), time-major
#: (what dense synapses produce) or channels-last time-major (``N, T, H, W, C``: a convolution's output).
DELAY_LAYOUTS = ("contiguous", "time-major", "channels-last")


def _stored(x: torch.Tensor, layout: str) -> torch.Tensor:
    """``x`` with the same values stored in ``layout`` (:data:`DELAY_LAYOUTS`; channels-last: 5-D)."""
    if layout == "contiguous":
        return x.contiguous()
    if layout == "time-major":
        return x.movedim(-1, 1).contiguous().movedim(1, -1)
    return x.permute(0, 4, 2, 3, 1).contiguous().permute(0, 4, 2, 3, 1)


def _delay_paths(device: str):
    """``(device, cuda_path)`` of the two runs of a delay case: the CPU kernels, then the CUDA path
    on ``device`` (``cpu``: the simulator)."""
    return (("cpu", False), (device, True))


class _NoCpuKernels:
    """Stands for a module of CPU kernels (:mod:`lava_dl.core.delay` in ``lava_dl.slayer.axon.delay``,
    :mod:`lava_dl.core.cuba` in ``lava_dl.slayer.neuron.dynamics``) during a CUDA-path run: any use
    of a CPU kernel there fails the case."""

    def __getattr__(self, name):
        raise AssertionError(f"the CUDA path called the CPU kernel {name}")


def _run_delay(cuda_path: bool, fn):
    """``fn()``, with ``cuda_path`` on the CUDA path of the axonal delays and the CPU kernels out of
    reach (in the simulator, CPU tensors are sent to the CUDA kernels by replacing
    ``lava_dl.slayer.axon.delay._uses_cuda_kernels``)."""
    import importlib

    axon_delay = importlib.import_module("lava_dl.slayer.axon.delay")  # the package exports delay()
    swapped = None
    if cuda_path:
        swapped = _swap(axon_delay, _uses_cuda_kernels=lambda x: True, _core=_NoCpuKernels())
    try:
        return fn()
    finally:
        if swapped:
            _restore(axon_delay, swapped)


def delay_module_case(device: str, dtype, shape, layout: str, learn: bool = True, seed=0):
    """``slayer.axon.Delay`` (per-channel learnable delays: zero steps, a few steps, beyond the sequence)
    on the CPU and the CUDA path: the shifted output and its memory layout, the input gradient (the
    reverse shift) and, with ``learn``, lava-dl's delay gradient. Forward and backward both run on
    the path of the forward call.

    Everything is compared bit for bit in the simulator. One sum may differ there in its last bits
    (none has so far): the delay gradient of a ``contiguous`` input with more than one position per
    channel, whose per-position sums the CPU adds up in ``shift_time_adjoint`` and the CUDA path with
    torch (the row kernels' order, as for time-major inputs); it is then held to ``GRAD_RTOL``."""
    from lava_dl.slayer.axon import Delay

    gen = torch.Generator().manual_seed(seed)
    steps, channels = shape[-1], shape[1]
    x = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
    values = torch.rand(channels, generator=gen, dtype=torch.float64) * (steps + 3)
    values[0] = 0.4  # zero steps
    if channels > 1:
        values[1] = steps + 2.5  # beyond the sequence: all zeros
    torch.manual_seed(seed)
    reference = Delay(max_delay=steps + 3, grad_scale=0.5, num_channels=channels).to(dtype)
    with torch.no_grad():
        reference.delay.copy_(values)
    weight = _stored(_weight(shape, seed + 1, "cpu"), layout)
    results = []
    for dev, cuda_path in _delay_paths(device):
        module = copy.deepcopy(reference).to(dev)
        module.delay.requires_grad_(learn)
        xd = _stored(x.clone(), layout).to(dev).requires_grad_(True)

        def run(module=module, xd=xd, dev=dev):
            y = module(xd)
            (y.double() * weight.to(dev)).sum().backward()
            return y

        y = _run_delay(cuda_path, run)
        result = {"spikes": y.detach().cpu(), "stride": torch.tensor(y.stride()), "grad_x": xd.grad.cpu()}
        if learn:
            result["grad_delay"] = module.delay.grad.cpu()
        results.append(result)
    cpu, other = results
    exact = device == "cpu"
    errors, worst = compare(cpu, other, exact_grads=exact)
    if exact and layout == "contiguous" and len(shape) > 3 and errors \
            and all(e.startswith("grad_delay:") for e in errors):
        pick = ("spikes", "grad_delay")
        errors, worst = compare({k: cpu[k] for k in pick}, {k: other[k] for k in pick}, exact_grads=False)
    return errors, worst


def delay_function_case(device: str, dtype, shape, kind: str, layout: str = "contiguous", seed=0):
    """``slayer.axon.delay`` (a fixed shift: ``kind`` ``scalar`` 2.9 steps, ``negative`` -1.5 steps,
    or ``per-position`` delays, one per ``C, H, W`` position, with ``sampling_time`` 0.5) on the CPU
    and the CUDA path: output, its memory layout and, for float inputs, the input gradient."""
    from lava_dl.slayer.axon import delay

    gen = torch.Generator().manual_seed(seed)
    floating = dtype in (torch.float32, torch.float64)
    if floating:
        x = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
    else:
        x = torch.randint(0, 3, shape, generator=gen).to(dtype)
    sampling_time = 1.0
    if kind == "scalar":
        value = 2.9
    elif kind == "negative":
        value = -1.5
    else:
        positions = x[0, ..., 0].numel()
        value = torch.randint(0, shape[-1] + 2, (positions,), generator=gen).to(torch.float64) * 0.5 + 0.2
        sampling_time = 0.5
    weight = _stored(_weight(shape, seed + 1, "cpu"), layout)
    results = []
    for dev, cuda_path in _delay_paths(device):
        xd = _stored(x.clone(), layout).to(dev).requires_grad_(floating)

        def run(xd=xd, dev=dev):
            y = delay(xd, value, sampling_time)
            if floating:
                (y.double() * weight.to(dev)).sum().backward()
            return y

        y = _run_delay(cuda_path, run)
        if y.dtype != dtype:
            return [f"{dev} output of dtype {y.dtype}, not {dtype}"], 0.0
        out = y.detach().cpu()
        result = {"spikes": out.view(torch.uint8) if dtype == torch.bool else out,  # compare() sums |spikes|
                  "stride": torch.tensor(y.stride())}
        if floating:
            result["grad_x"] = xd.grad.cpu()
        results.append(result)
    cpu, other = results
    return compare(cpu, other, exact_grads=device == "cpu")


def _delay_cases(device: str, shape: tuple[int, ...]):
    """The delay cases: ``(tag, thunk)`` pairs on ``shape`` ``(N, C, T)`` and a 5-D ``(N, 3, 4, 5, T)``."""
    conv = (shape[0], 3, 4, 5, shape[2])
    dtypes = (torch.float32, torch.float64)
    cases = []
    for dtype in dtypes:
        name = str(dtype)[6:]
        for layout in DELAY_LAYOUTS[:2]:
            cases.append((f"delay module {layout} {name} {shape}",
                          lambda d=dtype, lay=layout: delay_module_case(device, d, shape, lay)))
        for layout in DELAY_LAYOUTS:
            cases.append((f"delay module {layout} {name} {conv}",
                          lambda d=dtype, lay=layout: delay_module_case(device, d, conv, lay)))
        for kind in ("scalar", "negative", "per-position"):
            cases.append((f"delay function {kind} contiguous {name} {shape}",
                          lambda d=dtype, k=kind: delay_function_case(device, d, shape, k)))
    cases += [
        (f"delay module channels-last frozen-delay float32 {conv}",
         lambda: delay_module_case(device, torch.float32, conv, "channels-last", learn=False)),
        (f"delay module contiguous frozen-delay float64 {shape}",
         lambda: delay_module_case(device, torch.float64, shape, "contiguous", learn=False)),
        (f"delay function per-position channels-last float32 {conv}",
         lambda: delay_function_case(device, torch.float32, conv, "per-position", "channels-last")),
        (f"delay function per-position time-major float64 {conv}",
         lambda: delay_function_case(device, torch.float64, conv, "per-position", "time-major")),
        (f"delay function scalar contiguous int32 {shape}",
         lambda: delay_function_case(device, torch.int32, shape, "scalar")),
        (f"delay function per-position time-major bool {conv}",
         lambda: delay_function_case(device, torch.bool, conv, "per-position", "time-major")),
    ]
    return cases


def _integrator_functions(device: str, name: str):
    """The CPU and the CUDA-path autograd function of ``name`` (``LeakyIntegrator`` or
    ``SpikingIntegrator``): in the simulator the CUDA path's test class, on a GPU the function itself."""
    from lava_dl.slayer.neuron import dynamics

    cpu = getattr(dynamics, name)
    return cpu, getattr(_cuda, f"{name}Cuda") if device == "cpu" else cpu


def leaky_case(device: str, dtype=torch.float32, shape=(2, 5, 8), layout="contiguous", seed=0):
    """``LeakyIntegrator`` (a CUBA neuron's current) on the CPU and the CUDA path on ``device``, with
    per-channel decays (one learnable value per channel, broadcast to the rows) and random initial
    states, on an input stored as ``layout`` (:data:`DELAY_LAYOUTS`): the output (under
    :func:`compare`'s ``spikes``) and the input and decay gradients."""
    from lava_dl.slayer.neuron.dynamics import per_row

    gen = torch.Generator().manual_seed(seed)
    rows = int(np.prod(shape[:-1]))
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 1.5).to(dtype)
    decay = torch.randint(0, 4097, (shape[1],), generator=gen).to(torch.float32)
    y0 = torch.randint(-3000, 3000, (rows,), generator=gen)
    results = []
    for dev, fn in zip(("cpu", device), _integrator_functions(device, "LeakyIntegrator")):
        xd = _stored(x.clone(), layout).to(dev).requires_grad_(True)
        dd = decay.clone().to(dev).requires_grad_(True)
        y = fn.apply(xd, per_row(dd, xd), y0, 64.0)
        (y.double() * _weight(shape, seed + 1, dev)).sum().backward()
        results.append({"spikes": y.detach().cpu(), "grad_x": xd.grad.cpu(), "grad_decay": dd.grad.cpu()})
    cpu, other = results
    return compare(cpu, other, exact_grads=device == "cpu")


def spiking_case(device: str, graded: bool, bias: bool, dtype=torch.float32, shape=(2, 5, 8),
                 layout="contiguous", seed=0):
    """``SpikingIntegrator`` (a CUBA neuron's voltage after a norm) on the CPU and the CUDA path on
    ``device``, with per-channel decays, random initial voltages and, with ``bias``, a random bias per
    row, on an input stored as ``layout``: spikes (binary or graded), the recorded voltage and the
    current and decay gradients (through the surrogate and through the voltage output)."""
    from lava_dl.slayer.neuron.dynamics import per_row

    gen = torch.Generator().manual_seed(seed)
    rows = int(np.prod(shape[:-1]))
    cur = (torch.randn(shape, generator=gen, dtype=torch.float64) * 3.0 + 1.0).to(dtype)
    decay = torch.randint(0, 4097, (shape[1],), generator=gen).to(torch.float32)
    v0 = torch.randint(-3000, 3000, (rows,), generator=gen)
    bias_s = torch.randint(-300, 300, (rows,), generator=gen).numpy() if bias else np.zeros(rows, np.int64)
    vth = np.full(rows, 12 << 6, np.int64)
    results = []
    for dev, fn in zip(("cpu", device), _integrator_functions(device, "SpikingIntegrator")):
        cd = _stored(cur.clone(), layout).to(dev).requires_grad_(True)
        dd = decay.clone().to(dev).requires_grad_(True)
        spikes, v = fn.apply(cd, per_row(dd, cd), v0, 64.0, bias_s, vth, (12 / 64, 0.3, 1.0), graded)
        loss = (spikes.double() * _weight(shape, seed + 1, dev)).sum()
        (loss + 0.3 * (v.double() * _weight(shape, seed + 2, dev)).sum()).backward()
        results.append({"spikes": spikes.detach().cpu(), "v": v.detach().cpu(), "grad_cur": cd.grad.cpu(),
                        "grad_decay": dd.grad.cpu()})
    cpu, other = results
    return compare(cpu, other, exact_grads=device == "cpu")


def cuba_norm_case(device: str, graded: bool, seed=0, lava_dl_decay=False):
    """Two calls of a slayer CUBA neuron with a norm between current and voltage (the two integrators
    one at a time), persistent state, per-channel learnable decays and an ``(N, C, H, W, T)`` input
    stored time-major, on the CPU and the CUDA path. ``N H W T`` is a power of two, so that the norm's
    mean (a torch reduction) is exact on any device. Not channels-last: the CPU path would store that
    current channels-last and the CUDA path in the logical order, and torch's reductions in the
    norm's backward would then add up in different orders (float rounding)."""
    from lava_dl.slayer.neuron import cuba
    from lava_dl.slayer.neuron.norm import MeanOnlyBatchNorm

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    shape = (2, 3, 4, 2, 8)
    x = torch.randint(-40, 120, shape, generator=gen) / 64
    x = _stored(x, "time-major")
    reference = cuba.Neuron(threshold=0.5, current_decay=(0.1, 0.5), voltage_decay=(0.0, 0.2),
                            shared_param=False, shape=shape[1:4], persistent_state=True, requires_grad=True,
                            graded_spike=graded, norm=MeanOnlyBatchNorm,
                            decay_gradient="lava-dl" if lava_dl_decay else "exact")
    neuron_module = sys.modules[cuba.__name__]
    results = []
    for on_device in (False, True):
        neuron = copy.deepcopy(reference).to(device if on_device else "cpu")
        swapped = None
        if on_device and device == "cpu":  # the simulator: CPU tensors through the CUDA path
            swapped = _swap(neuron_module, LeakyIntegrator=_cuda.LeakyIntegratorCuda,
                            SpikingIntegrator=_cuda.SpikingIntegratorCuda)
        try:
            xd = x.clone().to(neuron.device).requires_grad_(True)
            out = torch.cat([neuron(xd), neuron(xd * 0.5)], -1)
        finally:
            if swapped:
                _restore(neuron_module, swapped)
        (out.double() * _weight(out.shape, seed + 1, out.device)).sum().backward()
        results.append({"spikes": out.detach().cpu(),
                        **{f"state_{k}": v.cpu() for k, v in neuron._states.items()},
                        "norm_mean": neuron.norm.running_mean.cpu(), "grad_x": xd.grad.cpu(),
                        "grad_du": neuron.current_decay.grad.cpu(),
                        "grad_dv": neuron.voltage_decay.grad.cpu()})
    cpu, other = results
    return compare(cpu, other, exact_grads=device == "cpu")


def functional_leaky_case(device: str, seed=0):
    """lava-dl's functional ``leaky_integrator.dynamics`` (per-channel learnable decay, an initial state
    per ``(batch, neuron)``, a reset threshold) on the CPU and the CUDA path: output and gradients."""
    from lava_dl.slayer.neuron.dynamics import leaky_integrator

    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(-200, 200, (2, 3, 40), generator=gen) / 64
    decay = torch.tensor([100.7, 517.2, 2000.9], dtype=torch.float64)
    state = torch.tensor([[0.25, -0.5, 0.125], [0.0, 1.0, -0.25]])
    results = []
    for dev, fn in zip(("cpu", device), _integrator_functions(device, "SpikingIntegrator")):
        swapped = _swap(leaky_integrator, SpikingIntegrator=fn)
        try:
            xd = x.clone().to(dev).requires_grad_(True)
            dd = decay.clone().to(dev).requires_grad_(True)
            out = leaky_integrator.dynamics(xd, dd, state.to(dev), 4096, 0.75)
        finally:
            _restore(leaky_integrator, swapped)
        (out * torch.arange(40, device=out.device)).sum().backward()
        results.append({"spikes": out.detach().cpu(), "grad_x": xd.grad.cpu(), "grad_decay": dd.grad.cpu()})
    cpu, other = results
    return compare(cpu, other, exact_grads=device == "cpu")


def _integrator_cases(device: str, shape: tuple[int, ...]):
    """The cases of CUBA's integrators one at a time: ``(tag, thunk)`` pairs."""
    conv = (shape[0], 3, 4, 5, shape[2])
    cases = []
    for dtype in (torch.float32, torch.float64):
        name = str(dtype)[6:]
        cases.append((f"integrator leaky per-channel {name} {shape}",
                       lambda d=dtype: leaky_case(device, d, shape)))
        for graded in (False, True):
            for bias in (False, True) if dtype == torch.float32 else (True,):
                cases.append((f"integrator spiking graded={graded:d} bias={bias:d} {name} {shape}",
                              lambda d=dtype, g=graded, b=bias: spiking_case(device, g, b, d, shape)))
    cases.append((f"integrator leaky per-channel channels-last float32 {conv}",
                  lambda: leaky_case(device, torch.float32, conv, "channels-last")))
    cases.append((f"integrator spiking graded=0 bias=1 channels-last float32 {conv}",
                  lambda: spiking_case(device, False, True, torch.float32, conv, "channels-last")))
    for graded in (False, True):
        cases.append((f"integrator cuba neuron norm graded={graded:d} persistent time-major",
                      lambda g=graded: cuba_norm_case(device, g)))
    cases.append(("integrator cuba neuron norm lava-dl decay gradient persistent time-major",
                  lambda: cuba_norm_case(device, False, lava_dl_decay=True)))
    cases.append(("integrator functional leaky_integrator", lambda: functional_leaky_case(device)))
    return cases


def _report(tag: str, errors: list[str], worst: float) -> bool:
    detail = ": " + "; ".join(errors) if errors else f" (max grad error {worst:.2g} of max|grad|)"
    print(("ok   " if not errors else "FAIL ") + tag + detail)
    return bool(errors)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (simulator: NUMBA_ENABLE_CUDASIM=1) or cuda")
    parser.add_argument("--shape", default="2,5,8", help="N,K,T")
    parser.add_argument("--family", default="all",
                        choices=("cuba", "alif", "sigma_delta", "resonator", "delay", "integrator", "all"))
    args = parser.parse_args(argv)
    shape = tuple(int(v) for v in args.shape.split(","))
    dtypes = (torch.float32, torch.float64)
    failed = 0
    if args.family in ("cuba", "all"):
        for graded in (False, True):
            for delay in (False, True):
                for record in (False, True):
                    for dtype in dtypes:
                        errors, worst = case(args.device, graded, delay, record, dtype, shape)
                        tag = f"cuba graded={graded:d} delay={delay:d} record={record:d}"
                        failed += _report(f"{tag} {str(dtype)[6:]} {shape}", errors, worst)
        for delay in (False, True):
            errors, worst = case(args.device, False, delay, False, torch.float32, shape, lava_dl_decay=True)
            failed += _report(f"cuba lava-dl decay gradient delay={delay:d} float32 {shape}", errors, worst)
    if args.family in ("alif", "all"):
        for graded in (False, True):
            for record in (False, True):
                for dtype in dtypes:
                    errors, worst = alif_case(args.device, graded, record, dtype, shape)
                    tag = f"alif graded={graded:d} record={record:d}"
                    failed += _report(f"{tag} {str(dtype)[6:]} {shape}", errors, worst)
            errors, worst = alif_neuron_case(args.device, graded)
            failed += _report(f"alif neuron graded={graded:d} persistent channels-last", errors, worst)
        errors, worst = alif_case(args.device, False, False, torch.float32, shape, lava_dl_decay=True)
        failed += _report(f"alif lava-dl decay gradient float32 {shape}", errors, worst)
    if args.family in ("sigma_delta", "all"):
        for mode in SD_MODES:
            for relu in (False, True):
                for cum_error in (False, True):
                    for dtype in dtypes:
                        errors, worst = sigma_delta_case(args.device, mode, relu, cum_error, dtype, shape)
                        tag = f"sigma_delta {mode} relu={relu:d} cum_error={cum_error:d}"
                        failed += _report(f"{tag} {str(dtype)[6:]} {shape}", errors, worst)
        for dtype in dtypes:
            errors, worst = sigma_case(args.device, dtype, shape)
            failed += _report(f"sigma_delta sigma {str(dtype)[6:]} {shape}", errors, worst)
        for norm in (False, True):
            errors, worst = sigma_delta_network_case(args.device, norm)
            failed += _report(f"sigma_delta network norm={norm:d} persistent channels-last", errors, worst)
    if args.family in ("resonator", "all"):
        for family in RESONATOR_FAMILIES:
            for graded in (False, True):
                for record in (False, True):
                    errors, worst = resonator_case(args.device, family, graded, record, torch.float32, shape)
                    tag = f"resonator {family} graded={graded:d} record={record:d}"
                    failed += _report(f"{tag} float32 {shape}", errors, worst)
            errors, worst = resonator_case(args.device, family, False, True, torch.float64, shape)
            failed += _report(f"resonator {family} graded=0 record=1 float64 {shape}", errors, worst)
            errors, worst = resonator_neuron_case(args.device, family)
            failed += _report(f"resonator {family} neuron persistent channels-last", errors, worst)
    if args.family in ("delay", "all"):
        for tag, run in _delay_cases(args.device, shape):
            errors, worst = run()
            failed += _report(tag, errors, worst)
    if args.family in ("integrator", "all"):
        for tag, run in _integrator_cases(args.device, shape):
            errors, worst = run()
            failed += _report(tag, errors, worst)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
