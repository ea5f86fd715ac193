"""Equivalence of the CUDA kernels with the CPU kernels, run by tests/test_cuda_kernels.py.

Run as a script in its own process (``NUMBA_ENABLE_CUDASIM=1`` for numba's CUDA simulator,
which must be set before numba.cuda is first imported), or on a GPU machine with
``--device cuda`` (benchmarks/gpu_check.py). Exits non-zero on the first mismatch; prints
one line per case. ``--family`` picks the neurons: CUBA (16 cases), ALIF (10) or both.

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


def case(device: str, graded: bool, delay: bool, record: bool, dtype=torch.float32, shape=(2, 5, 8), seed=0):
    """Run CubaDynamics on the CPU and the CUDA path on ``device``.

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
        out = fn.apply(xd, dud, dvd, u0, v0, 64.0, vth, surrogate, graded, record, first, last)
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


def alif_case(device: str, graded: bool, record: bool, dtype=torch.float32, shape=(2, 5, 8), seed=0):
    """Run AlifDynamics on the CPU and the CUDA path on ``device`` from random states (adaptation
    and refractory states included) and random decays; returns what :func:`compare` returns."""
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
        out = fn.apply(xd, dud, dvd, init.copy(), final, 64.0, params, surrogate, graded, record)
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


def _report(tag: str, errors: list[str], worst: float) -> bool:
    detail = ": " + "; ".join(errors) if errors else f" (max grad error {worst:.2g} of max|grad|)"
    print(("ok   " if not errors else "FAIL ") + tag + detail)
    return bool(errors)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (simulator: NUMBA_ENABLE_CUDASIM=1) or cuda")
    parser.add_argument("--shape", default="2,5,8", help="N,K,T")
    parser.add_argument("--family", default="all", choices=("cuba", "alif", "all"))
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
    if args.family in ("alif", "all"):
        for graded in (False, True):
            for record in (False, True):
                for dtype in dtypes:
                    errors, worst = alif_case(args.device, graded, record, dtype, shape)
                    tag = f"alif graded={graded:d} record={record:d}"
                    failed += _report(f"{tag} {str(dtype)[6:]} {shape}", errors, worst)
            errors, worst = alif_neuron_case(args.device, graded)
            failed += _report(f"alif neuron graded={graded:d} persistent channels-last", errors, worst)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
