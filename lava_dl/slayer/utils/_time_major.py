"""Time-major tensor helpers shared by neurons, blocks and axons.

Internal; re-exported by :mod:`lava_dl.slayer.utils`.
"""

from __future__ import annotations

import numpy as np
import torch

from lava_dl.slayer._eager import KernelFunction


def _empty_time_major(like: torch.Tensor) -> torch.Tensor:
    """A new tensor shaped like ``like``, stored time-major, from the kernels' buffer pool."""
    if like.dtype not in (torch.float32, torch.float64) or like.device.type != "cpu" or like.dim() < 2:
        return torch.empty_like(like)
    from lava_dl.slayer.neuron.dynamics import BlockLayout

    out, _ = BlockLayout(like, fold=False).empty(np.float32 if like.dtype == torch.float32 else np.float64)
    return out


class _DelayShift(KernelFunction):
    """``[first, x[..., :-1]]`` along time, stored time-major (so a time-major input stays so)."""

    @staticmethod
    def forward(ctx, x, first):
        out = _empty_time_major(x)
        out[..., 1:] = x[..., :-1]
        out[..., :1] = first
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_x = _empty_time_major(grad)
        grad_x[..., :-1] = grad[..., 1:]
        grad_x[..., -1:] = 0
        return grad_x, None


def delay_shift(x: torch.Tensor, first: torch.Tensor | None = None) -> torch.Tensor:
    """Delay ``x`` (``..., T``) by one time step: ``[first, x[..., :-1]]``.

    Parameters
    ----------
    x : torch.Tensor
        Activations, time last.
    first : torch.Tensor, optional
        Step 0 of the result, shaped like ``x[..., :1]`` (default zeros); it gets no gradient.

    Returns
    -------
    torch.Tensor
        Same shape as ``x``, stored time-major (memory ``N, T, ...``) like the synapses'
        outputs (``torch.cat`` would store it time-last, a transposing copy).
    """
    if first is None:
        first = torch.zeros((), dtype=x.dtype)
    return _DelayShift.apply(x, first.detach())
