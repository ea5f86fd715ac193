"""Small tensor utilities shared by neurons and blocks."""

from __future__ import annotations

import torch


class _DelayShift(torch.autograd.Function):
    """``[first, x[..., :-1]]`` along time, in ``x``'s memory order (a time-major input stays so)."""

    @staticmethod
    def forward(ctx, x, first):
        out = torch.empty_like(x)
        out[..., 1:] = x[..., :-1]
        out[..., :1] = first
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_x = torch.empty_like(grad)
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
        Same shape and memory order as ``x`` (unlike ``torch.cat``, which would make a
        time-major tensor time-last with a transposing copy).
    """
    if first is None:
        first = torch.zeros((), dtype=x.dtype)
    return _DelayShift.apply(x, first.detach())
