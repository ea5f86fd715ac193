"""CUDA training kernels (issue 11 items 1-2, CUBA): same rule functions, same results as the CPU.

Without a GPU: the kernels run in numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, which
must be set before numba.cuda is imported, hence a subprocess running
``tests/_cuda_sim_check.py``) against the CPU kernels: spikes, messages and states bit for
bit, gradients within ``GRAD_RTOL`` (1e-6) of the largest gradient (the simulator gives them
exactly). The kernels are also compiled to PTX by the real CUDA target (needs libNVVM, from
the ``nvidia-cuda-nvcc-cu12`` wheel of ``numba-cuda[cu12]``), which proves that the scalar
rule functions compile for the GPU. On a GPU machine, ``benchmarks/gpu_check.py`` runs the
same equivalence on the device.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lava_dl.slayer import _cuda
from lava_dl.slayer.neuron.dynamics import CubaDynamics

ROOT = Path(__file__).resolve().parents[1]
HAS_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None
needs_numba_cuda = pytest.mark.skipif(not HAS_NUMBA_CUDA,
                                      reason="numba-cuda not installed (pip install lava_dl[cuda])")


def _run(args: list[str], simulator: bool, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    if simulator:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@needs_numba_cuda
@pytest.mark.parametrize("shape", ["2,5,8", "2,130,3"])
def test_simulator_matches_cpu_kernels(shape):
    """Binary and graded spikes, with and without the one-step delay and the records, float32 and
    float64 input; ``2,130,3`` spans two thread blocks."""
    proc = _run([str(ROOT / "tests" / "_cuda_sim_check.py"), "--shape", shape], simulator=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("ok ") == 16, proc.stdout


_PTX_SCRIPT = """
import sys
from numba.cuda.cudadrv.error import NvvmSupportError
from lava_dl.core import cuda_kernels
try:
    ptx = cuda_kernels.compile_ptx((8, 0))
except Exception as err:  # without the CUDA toolkit wheels: no NVVM, or no NVRTC to find it
    if not isinstance(err, NvvmSupportError) and type(err).__name__ != "DynamicLibNotFoundError":
        raise
    print("NO_NVVM", type(err).__name__, err)
    sys.exit(0)
for name, text in ptx.items():
    assert ".target sm_80" in text and ".entry" in text, name
    print(name, len(text))
"""


@needs_numba_cuda
def test_kernels_compile_to_ptx():
    """The real CUDA target compiles the kernels, rule functions included (no GPU needed)."""
    proc = _run(["-c", _PTX_SCRIPT], simulator=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if proc.stdout.startswith("NO_NVVM"):
        pytest.skip(f"CUDA toolkit libraries not found ({proc.stdout.strip()[:200]}): "
                    f"pip install numba-cuda[cu12]")
    assert len(proc.stdout.splitlines()) == 4, proc.stdout


def test_slayer_imports_without_lava_or_numba_cuda():
    """The GPU machine has no Lava: slayer must not import it, nor numba.cuda before a CUDA tensor."""
    code = ("import sys, lava_dl.slayer, lava_dl.slayer.neuron.cuba; "
            "bad = [m for m in sys.modules if m == 'lava' or m.startswith(('lava.', 'numba.cuda'))]; "
            "print(bad); sys.exit(bool(bad))")
    proc = _run(["-c", code], simulator=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _cuba_args(x, du, dv):
    rows = x[..., 0].numel()
    zeros = torch.zeros(rows, dtype=torch.int64)
    return (x, du, dv, zeros, zeros, 64.0, np.full(rows, 640, np.int64), (0.16, 0.2, 1.0), False, False, None,
            np.zeros(rows, np.float32))


def test_missing_numba_cuda_names_tensor_device_and_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "lava_dl.core.cuda_kernels", None)  # import fails
    x = torch.empty((2, 3, 4), device="meta")
    with pytest.raises(RuntimeError, match=r"'x' is on meta.*pip install lava_dl\[cuda\]"):
        _cuda.kernels(x, "x")


def test_mismatched_devices_raise():
    x = torch.zeros((2, 3, 4))
    du = torch.zeros(6, device="meta")
    with pytest.raises(ValueError, match=r"input is on cpu but current_decay is on meta"):
        CubaDynamics.apply(*_cuba_args(x, du, torch.zeros(6)))


def test_unsupported_device_raises():
    x = torch.zeros((2, 3, 4), device="meta")
    with pytest.raises(NotImplementedError, match=r"CPU tensors only \(got an input on meta"):
        CubaDynamics.apply(*_cuba_args(x, torch.zeros(6, device="meta"), torch.zeros(6, device="meta")))
