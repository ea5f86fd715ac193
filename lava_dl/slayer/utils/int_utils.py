"""Integer shifts that round toward zero, as Loihi's sign-magnitude arithmetic does
(lava-dl's ``slayer.utils.int_utils``)."""

from __future__ import annotations

import torch


def right_shift_to_zero(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Right shift that rounds toward zero: ``sign(x) * (|x| >> bits)``.

    The torch counterpart of :func:`lava_dl.core.fixed_point.rs0`.

    Parameters
    ----------
    x : torch.Tensor
        ``torch.int32`` or ``torch.int64`` values.
    bits : int
        Number of bits to shift (>= 0).

    Returns
    -------
    torch.Tensor
        Same dtype as ``x``.

    Examples
    --------
    >>> right_shift_to_zero(torch.tensor([-7, 7], dtype=torch.int32), 1)
    tensor([-3,  3], dtype=torch.int32)
    """
    if not isinstance(x, torch.Tensor) or x.dtype not in (torch.int32, torch.int64):
        found = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"right_shift_to_zero: expected a torch.int32 or torch.int64 tensor, found {found}")
    if int(bits) != bits or bits < 0:
        raise ValueError(f"right_shift_to_zero: bits must be a non-negative integer, got {bits!r}")
    magnitude = torch.abs(x) >> int(bits)
    return torch.where(x < 0, -magnitude, magnitude).to(x.dtype)


class Q2Zero(torch.autograd.Function):
    """Round toward zero (``torch.trunc``) with a straight-through (identity) gradient.

    ``Q2Zero.apply(x)``: the autograd-compliant counterpart of :func:`right_shift_to_zero`
    for values already divided by the shift's power of two.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return torch.trunc(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        return grad_output
