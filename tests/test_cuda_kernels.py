"""CUDA training kernels (issue 11 items 1-2: CUBA, ALIF, sigma-delta, RF, RF-IZ, ADRF, ADRF-IZ, the axonal
delays, and CUBA's current and voltage integrators one at a time): same rule functions, same results as
the CPU.

Without a GPU: the kernels run in numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, which
must be set before numba.cuda is imported, hence a subprocess running
``tests/_cuda_sim_check.py``) against the CPU kernels: spikes, messages, states and
gradients bit for bit (on a GPU, gradients within ``GRAD_RTOL`` (1e-6) of the largest
gradient, for FMA contraction). The kernels are also compiled to PTX by the real CUDA
target (needs libNVVM, from the ``nvidia-cuda-nvcc-cu12`` wheel of ``numba-cuda[cu12]``),
which proves that the scalar rule functions compile for the GPU. On a GPU machine,
``benchmarks/gpu_check.py`` runs the same equivalence on the device.
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
from lava_dl.slayer.neuron import alif, cuba, rf, sigma_delta
from lava_dl.slayer.neuron.dynamics import AlifDynamics, CubaDynamics, LeakyIntegrator, SpikingIntegrator

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


#: Cases per family that ``tests/_cuda_sim_check.py`` runs (see its ``main``).
SIM_CASES = {"cuba": 18, "alif": 11, "sigma_delta": 28, "resonator": 24, "delay": 22, "integrator": 14}


@needs_numba_cuda
@pytest.mark.parametrize("family", sorted(SIM_CASES))
@pytest.mark.parametrize("shape", ["2,5,8", "2,130,3"])
def test_simulator_matches_cpu_kernels(family, shape):
    """Binary and graded spikes, with and without the records, float32 and float64 input (CUBA:
    with and without the one-step delay; ALIF: from random adaptation and refractory states, and
    a slayer ALIF neuron with persistent state on a channels-last input; sigma-delta: the encoder in
    its three input modes, ReLU or identity, with and without cum_error, the σ integrator, and
    Delta -> SigmaDelta (with and without a norm) -> Sigma with persistent states on a channels-last
    input; resonators: all four families from random states, and each family's slayer neuron with
    persistent state and per-channel rotations on a channels-last input; axonal delays: the learnable
    ``Delay`` and ``delay()`` with scalar, negative and per-position delays, float, int32 and bool
    inputs, stored as torch makes them, time-major or channels-last, the CPU kernels out of reach of
    the CUDA path; CUBA's integrators one at a time: ``LeakyIntegrator`` with per-channel decays and
    initial states, ``SpikingIntegrator`` with binary and graded spikes, with and without a bias, both
    also channels-last, a slayer CUBA neuron with a norm and persistent state, and lava-dl's functional
    ``leaky_integrator``; CUBA and ALIF also with lava-dl's decay gradients); ``2,130,3`` spans two
    thread blocks. Messages, records, states, output layouts and gradients (input, decays, thresholds,
    delays) bit for bit.
    """
    proc = _run([str(ROOT / "tests" / "_cuda_sim_check.py"), "--shape", shape, "--family", family],
                simulator=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("ok ") == SIM_CASES[family], proc.stdout
    assert proc.stdout.count(f"ok   {family} ") == SIM_CASES[family], proc.stdout


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
    compiled = {line.split()[0] for line in proc.stdout.splitlines()}
    assert compiled == {"cuba_forward", "cuba_forward_graded", "cuba_backward", "cuba_backward_graded",
                        "alif_forward", "alif_forward_graded", "alif_forward_float64",
                        "sigma_forward", "sigma_forward_float64", "sigma_backward", "sigma_backward_float64",
                        "sigma_delta_forward", "sigma_delta_forward_float64", "sigma_delta_backward",
                        "sigma_delta_backward_float64", "resonator_forward", "resonator_forward_graded",
                        "resonator_forward_float64", "resonator_backward", "resonator_backward_graded",
                        "shift_rows", "shift_rows_float64", "shift_rows_int64", "shift_rows_bool",
                        "shift_rows_adjoint", "shift_rows_adjoint_float64", "current_forward",
                        "current_forward_float64", "voltage_forward", "voltage_forward_graded",
                        "voltage_forward_float64", "integrator_backward", "integrator_backward_float64",
                        "integrator_backward_graded"}, \
        proc.stdout


def test_slayer_imports_without_lava_or_numba_cuda():
    """The GPU machine has no Lava: slayer must not import it, nor numba.cuda before a CUDA tensor."""
    code = ("import sys, lava_dl.slayer, lava_dl.slayer.neuron.cuba, lava_dl.slayer.neuron.alif, "
            "lava_dl.slayer.neuron.sigma_delta, lava_dl.slayer.neuron.rf, lava_dl.slayer.neuron.adrf_iz; "
            "bad = [m for m in sys.modules if m == 'lava' or m.startswith(('lava.', 'numba.cuda'))]; "
            "print(bad); sys.exit(bool(bad))")
    proc = _run(["-c", code], simulator=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _cuba_args(x, du, dv):
    rows = x[..., 0].numel()
    zeros = torch.zeros(rows, dtype=torch.int64)
    return (x, du, dv, zeros, zeros, 64.0, np.full(rows, 640, np.int64), (0.16, 0.2, 1.0), False, False, None,
            np.zeros(rows, np.float32))


def _alif_args(x, du, dv):
    rows = x[..., 0].numel()
    states = np.zeros((4, rows), np.int64)
    params = tuple(np.full(rows, value, np.int64) for value in (0, 0, 640, 64))
    return (x, du, dv, states, np.empty_like(states), 64.0, params, (0.0, 0.2, 1.0), False, False)


def _leaky_args(x, du, dv):
    return (x, du, torch.zeros(x[..., 0].numel(), dtype=torch.int64), 64.0)


def _spiking_args(x, du, dv):
    rows = x[..., 0].numel()
    return (x, du, torch.zeros(rows, dtype=torch.int64), 64.0, np.zeros(rows, np.int64),
            np.full(rows, 640, np.int64), (0.16, 0.2, 1.0), False)


#: The autograd functions of the neurons on CUBA's integrators, with their arguments for an input and decays.
_DYNAMICS = [(CubaDynamics, _cuba_args), (AlifDynamics, _alif_args), (LeakyIntegrator, _leaky_args),
             (SpikingIntegrator, _spiking_args)]
_DYNAMICS_IDS = ["cuba", "alif", "leaky", "spiking"]


def test_missing_numba_cuda_names_tensor_device_and_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "lava_dl.core.cuda_kernels", None)  # import fails
    x = torch.empty((2, 3, 4), device="meta")
    with pytest.raises(RuntimeError, match=r"'x' is on meta.*pip install lava_dl\[cuda\]"):
        _cuda.kernels(x, "x")


@pytest.mark.parametrize("dynamics, args", _DYNAMICS, ids=_DYNAMICS_IDS)
def test_mismatched_devices_raise(dynamics, args):
    x = torch.zeros((2, 3, 4))
    du = torch.zeros(6, device="meta")
    with pytest.raises(ValueError, match=r"input is on cpu but (current_)?decay is on meta"):
        dynamics.apply(*args(x, du, torch.zeros(6)))


@pytest.mark.parametrize("dynamics, args", _DYNAMICS, ids=_DYNAMICS_IDS)
def test_unsupported_device_raises(dynamics, args):
    x = torch.zeros((2, 3, 4), device="meta")
    with pytest.raises(NotImplementedError, match=r"CPU and CUDA tensors only \(got an input on meta.*"
                                                  r"pip install lava_dl\[cuda\]"):
        dynamics.apply(*args(x, torch.zeros(6, device="meta"), torch.zeros(6, device="meta")))


def test_functional_leaky_integrator_runs_on_the_input_device():
    """lava-dl's functional leaky integrator makes no host copy: an input on a device other than CPU
    or CUDA reaches the kernels' device error (it used to be copied to the host)."""
    from lava_dl.slayer.neuron.dynamics import leaky_integrator

    x = torch.zeros((2, 3, 4), device="meta")
    with pytest.raises(NotImplementedError, match=r"CPU and CUDA tensors only \(got an input on meta"):
        leaky_integrator.dynamics(x, 100.0, 0.0, 4096)



def _channels_last_run(family: str, channels_last: bool) -> list[torch.Tensor]:
    """Spikes and gradients (input, per-channel decays) of a neuron on a conv-shaped input."""
    torch.manual_seed(0)
    shape = (2, 3, 4, 5, 6)

    def conv_input(seed: int) -> torch.Tensor:
        x = torch.randint(-40, 120, shape, generator=torch.Generator().manual_seed(seed)) / 64
        if channels_last:  # stored N, T, H, W, C, as the conv synapses produce it
            x = x.permute(0, 4, 2, 3, 1).contiguous().permute(0, 4, 2, 3, 1)
        return x.requires_grad_(True)

    x = conv_input(0)
    common = dict(shared_param=False, shape=shape[1:4], requires_grad=True)
    decays = dict(threshold=0.5, current_decay=(0.1, 0.5), voltage_decay=(0.0, 0.2), **common)
    if family == "alif":
        neuron = alif.Neuron(threshold_step=0.125, threshold_decay=0.1, refractory_decay=0.3, **decays)
    elif family == "rf":
        neuron = rf.Neuron(threshold=0.2, period=(5, 15), decay=(0.05, 0.2), **common)
    elif family == "sigma_delta":  # a per-channel learnable threshold
        neuron = sigma_delta.Neuron(threshold=0.25, tau_grad=0.5, scale_grad=1.0,
                                    activation=torch.nn.functional.relu, **common)
    else:
        neuron = cuba.Neuron(**decays)
        neuron.fused = family == "cuba"  # "cuba_two_stage": current and voltage in two kernels
    spikes = neuron((x, conv_input(5)) if family == "rf" else x)
    (spikes * torch.randn(shape, generator=torch.Generator().manual_seed(1))).sum().backward()
    return [spikes.detach(), x.grad, *(p.grad for p in neuron.parameters() if p.grad is not None)]


@pytest.mark.parametrize("family", ["cuba", "alif", "cuba_two_stage", "rf", "sigma_delta"])
def test_decay_gradients_do_not_depend_on_the_input_layout(family):
    """The CPU kernels run a channels-last input in (H, W, C) neuron order, the CUDA kernels in the
    logical order: the per-channel decay gradients must come back per logical row either way
    (they were summed into the wrong channels for channels-last inputs)."""
    logical, channels_last = _channels_last_run(family, False), _channels_last_run(family, True)
    assert float(logical[0].abs().sum()) > 0
    # spikes, input gradient, and the per-channel parameters' gradients (two decays; sigma-delta: threshold)
    assert len(logical) == len(channels_last) == (3 if family == "sigma_delta" else 4)
    names = ("spikes", "grad_x", "first parameter gradient", "second parameter gradient")
    for name, a, b in zip(names, logical, channels_last):
        assert torch.equal(a, b), name
    assert all(g.shape == (3,) and float(g.abs().sum()) > 0 for g in logical[2:])  # one value per channel


def _sigma_delta_encode(x: torch.Tensor, theta: torch.Tensor):
    """``_EncodeFn`` of a sigma-delta neuron (σ mode, ReLU) on ``x`` with per-row threshold ``theta``."""
    rows = x[..., 0].numel()
    states = tuple(np.zeros(rows, np.int64) for _ in range(4))
    vth_s = np.full(rows, 1 << 14, np.int64)
    return sigma_delta._EncodeFn.apply(x, theta, 2.0**18, 1, states, vth_s, 1, 0, 6, (1.0, 1.0), x.dtype)


def _resonator_dynamics(x: torch.Tensor, decay: torch.Tensor, x_im: torch.Tensor | None = None):
    """``ResonatorDynamics`` of an RF neuron on ``(x, x_im)`` with per-row rotations ``decay``."""
    from lava_dl.slayer.neuron._resonator import ResonatorDynamics

    rows = x[..., 0].numel()
    states = tuple(np.zeros(rows, np.int64) for _ in range(4))
    params = tuple(np.full(rows, value, np.int64) for value in (0, 0, 640, 0))
    config = (0, states, 64.0, params, (0.3, 1.0), False, False)
    return ResonatorDynamics.apply(x, x if x_im is None else x_im, decay, decay, config)


@pytest.mark.parametrize("run", [_sigma_delta_encode, _resonator_dynamics], ids=["sigma_delta", "resonator"])
def test_mismatched_devices_raise_for_sigma_delta_and_resonators(run):
    """A parameter on another device than the input is named with both devices."""
    x = torch.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"input is on cpu but (theta|sin_decay) is on meta"):
        run(x, torch.zeros(6, device="meta"))


def test_resonator_parts_on_different_devices_raise():
    x = torch.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"input is on cpu but x_im is on meta"):
        _resonator_dynamics(x, torch.zeros(6), torch.zeros((2, 3, 4), device="meta"))


@pytest.mark.parametrize("run", [_sigma_delta_encode, _resonator_dynamics], ids=["sigma_delta", "resonator"])
def test_unsupported_device_raises_for_sigma_delta_and_resonators(run):
    """Neither CPU nor CUDA: the kernels' error names the device and the families that run on CUDA."""
    x = torch.zeros((2, 3, 4), device="meta")
    with pytest.raises(NotImplementedError, match=r"CPU and CUDA tensors only \(got an input on meta.*"
                                                  r"every neuron family"):
        run(x, torch.zeros(6, device="meta"))


@pytest.mark.parametrize("make", [
    lambda: sigma_delta.Neuron(threshold=0.1, activation=None),
    lambda: sigma_delta.Delta(threshold=0.1),
    lambda: sigma_delta.Sigma(),
], ids=["Neuron", "Delta", "Sigma"])
def test_sigma_delta_modules_reject_unsupported_devices_before_the_range_check(make):
    """A module's input on a device other than CPU or CUDA raises the kernels' device error before
    anything reads its values (with the value checks off, which would read them first)."""
    from lava_dl.slayer.checks import set_input_checks

    x = torch.zeros((2, 3, 4), device="meta")
    with set_input_checks(False), pytest.raises(NotImplementedError, match=r"got an input on meta"):
        make()(x)
