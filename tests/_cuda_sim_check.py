"""Equivalence of the CUDA kernels with the CPU kernels, run by tests/test_cuda_kernels.py.

Run as a script in its own process (``NUMBA_ENABLE_CUDASIM=1`` for numba's CUDA simulator,
which must be set before numba.cuda is first imported), or on a GPU machine with
``--device cuda`` (benchmarks/gpu_check.py). Exits non-zero on the first mismatch; prints
one line per case.

Spikes, messages, current and voltage records, the last message and the persistent
states must be equal bit for bit. Gradients (input and decays) must agree to float
rounding: ``|cuda - cpu| <= GRAD_RTOL * max|cpu|`` elementwise, per tensor.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from lava_dl.slayer import _cuda
from lava_dl.slayer.neuron.dynamics import CubaDynamics

#: Gradient bound, relative to the largest gradient of the tensor (float32 storage: 2^-23 ~ 1.2e-7;
#: FMA contraction on a GPU changes float64 intermediates only).
GRAD_RTOL = 1e-6


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
    errors = []
    worst = 0.0
    for name in cpu:
        a, b = cpu[name], other[name]
        if a.shape != b.shape or a.dtype != b.dtype:
            errors.append(f"{name}: {a.shape}/{a.dtype} vs {b.shape}/{b.dtype}")
        elif name.startswith("grad"):
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (simulator: NUMBA_ENABLE_CUDASIM=1) or cuda")
    parser.add_argument("--shape", default="2,5,8", help="N,K,T")
    args = parser.parse_args(argv)
    shape = tuple(int(v) for v in args.shape.split(","))
    failed = 0
    for graded in (False, True):
        for delay in (False, True):
            for record in (False, True):
                for dtype in (torch.float32, torch.float64):
                    errors, worst = case(args.device, graded, delay, record, dtype, shape)
                    tag = f"graded={graded:d} delay={delay:d} record={record:d} {str(dtype)[6:]} {shape}"
                    detail = f" (max grad error {worst:.2g} of max|grad|)"
                    if errors:
                        detail = ": " + "; ".join(errors)
                    print(("ok   " if not errors else "FAIL ") + tag + detail)
                    failed += bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
