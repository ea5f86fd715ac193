"""Training as users scale it out: mixed precision, DataParallel, moving modules (issue 11, item 5).

Half-precision activations under ``torch.autocast`` cannot hold the fixed-point grid the integer
model runs on, so the neurons refuse them with a clear error instead of computing something else.
``torch.nn.DataParallel`` wraps a network of our autograd functions. The state a network carries
between calls (``persistent_state``: the neurons' integer states, a block's last output, a recurrent
block's last spikes) and its buffers follow ``module.to(device)``/``module.to(dtype)``: a dtype move
runs the same ``nn.Module._apply`` path as a device move, and the ``meta`` device stands in for a
GPU on a CPU-only machine. (DistributedDataParallel is not tested here: a gloo process group under
pytest aborted intermittently.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lava_dl  # noqa: F401
from lava_dl import slayer
from lava_dl.slayer.neuron.norm import MeanOnlyBatchNorm

PARAMS = dict(threshold=0.5, current_decay=0.3, voltage_decay=0.1, requires_grad=True)
BATCH, STEPS = 4, 30


def _network() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(slayer.block.cuba.Dense(PARAMS, 20, 30, weight_scale=4),
                               slayer.block.cuba.Dense(PARAMS, 30, 10, weight_scale=4))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_half_precision_raises_a_clear_error(dtype):
    net = _network()
    x = (torch.rand(BATCH, 20, STEPS, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    assert net(x).dtype == torch.float32  # float32 runs
    with pytest.raises(TypeError, match=r"float32 or float64.*x\.float\(\)"):
        with torch.autocast("cpu", dtype=dtype):
            net(x)


def _input(seed: int, channels: int = 20) -> torch.Tensor:
    return (torch.rand(BATCH, channels, STEPS, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


@pytest.mark.skipif(torch.cuda.is_available(), reason="with GPUs DataParallel scatters to them")
def test_data_parallel_on_cpu_gives_the_bare_modules_output_and_gradients():
    """Without GPUs DataParallel calls the module itself: same spikes and gradients, bit for bit."""
    results = []
    for wrap in (False, True):
        net = _network()
        model = torch.nn.DataParallel(net) if wrap else net
        out = model(_input(1))
        (out * torch.arange(out[0].numel(), dtype=torch.float32).reshape(out.shape[1:])).sum().backward()
        results.append([out.detach(), *(p.grad.clone() for p in net.parameters())])
    assert float(results[0][0].sum()) > 0
    assert len(results[0]) == len(results[1]) > 1
    for bare, wrapped in zip(*results):
        assert torch.equal(bare, wrapped)


PERSISTENT = dict(PARAMS, persistent_state=True)
ALIF_PARAMS = dict(PERSISTENT, threshold_step=0.1, threshold_decay=0.1, refractory_decay=0.2)


def _stateful_network() -> torch.nn.Sequential:
    """Blocks that carry state between calls: a delayed CUBA Dense (its last output), a recurrent
    CUBA block (its last spikes) and a delayed ALIF Dense with an input norm (a buffer)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        slayer.block.cuba.Dense(PERSISTENT, 20, 30, weight_scale=4, delay_shift=True),
        slayer.block.cuba.Recurrent(PERSISTENT, 30, 16, weight_scale=4),
        slayer.block.alif.Dense(dict(ALIF_PARAMS, norm=MeanOnlyBatchNorm), 16, 10, weight_scale=4,
                                delay_shift=True))


def _carried_tensors(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every tensor the network carries between calls besides its parameters and buffers."""
    carried = {}
    for name, module in net.named_modules():
        for key, value in getattr(module, "_states", {}).items():
            carried[f"{name}._states[{key}]"] = value
        for key in ("_last_output", "_spike_state"):
            if isinstance(getattr(module, key, None), torch.Tensor):
                carried[f"{name}.{key}"] = getattr(module, key)
    return carried


def test_carried_state_follows_a_dtype_move():
    """A network run in float32, moved to float64 and run on: the same spikes as one run in float64
    throughout (binary input: the fixed-point model gives identical spikes in both dtypes)."""
    moved = _stateful_network()
    moved(_input(1))
    moved.to(torch.float64)
    reference = _stateful_network().to(torch.float64)
    reference(_input(1).double())
    second_moved, second_reference = moved(_input(2).double()), reference(_input(2).double())
    assert float(second_reference.detach().sum()) > 0
    assert torch.equal(second_moved, second_reference)
    for name, value in _carried_tensors(moved).items():
        if not value.is_floating_point():
            assert value.dtype == torch.int64, name  # integer states stay integers


def test_carried_state_follows_a_device_move():
    """``module.to(device)`` moves the carried state with the parameters (the meta device stands in
    for a GPU); integer states keep their dtype."""
    net = _stateful_network()
    net(_input(1))
    before = _carried_tensors(net)
    assert len(before) == 12  # the 3 neurons' states (2 + 2 + 4), 3 last outputs, 1 last spikes
    net.to("meta")
    assert all(p.device.type == "meta" for p in net.parameters())
    for name, value in _carried_tensors(net).items():
        assert value.device.type == "meta", name
        assert value.dtype == before[name].dtype, name


def test_buffers_follow_a_dtype_move():
    """The input norm's running mean (a registered buffer) follows ``.to(float64)`` and keeps working."""
    net = _stateful_network()
    net(_input(1))
    norm = net[2].neuron.norm
    mean = norm.running_mean.clone()
    assert mean.abs().sum() > 0
    net.to(torch.float64)
    assert norm.running_mean.dtype == torch.float64
    assert torch.equal(norm.running_mean, mean.double())


def test_distributed_data_parallel_gloo_two_ranks():
    """DDP with the gloo backend, 2 spawned CPU ranks (``tests/_ddp_check.py``): outputs exact per
    half batch, all-reduced gradients equal to one process's over the whole batch / 2."""
    script = Path(__file__).with_name("_ddp_check.py")
    env = dict(os.environ, PYTHONPATH=str(script.parents[1]))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0 and "ddp ok" in done.stdout, done.stdout + done.stderr
