"""Training as users scale it out: mixed precision (issue 11, item 5).

Half-precision activations under ``torch.autocast`` cannot hold the fixed-point grid the integer
model runs on, so the neurons refuse them with a clear error instead of computing something else.
"""

from __future__ import annotations

import pytest
import torch

import lava_dl  # noqa: F401
from lava_dl import slayer

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
