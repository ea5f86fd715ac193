"""Neuron dropout: a dropped neuron stays silent for the whole sequence."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lava_dl.slayer._eager import eager


class Dropout(nn.Module):
    """Drop whole neurons (all time steps) with probability ``p``; kept ones are scaled by ``1/(1-p)``."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must lie in [0, 1), got {p}")
        self.p = float(p)
        self.inplace = inplace

    @eager
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        shape = input.shape
        out = F.dropout3d(input.reshape(shape[0], -1, 1, 1, shape[-1]), self.p, self.training, self.inplace)
        return out.reshape(shape)
