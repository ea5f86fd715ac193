"""Repeat a tensor along a new time axis (lava-dl's ``slayer.utils.time.replicate``)."""

from __future__ import annotations

import torch


def replicate(input: torch.Tensor, num_steps: int) -> torch.Tensor:
    """Repeat ``input`` over ``num_steps`` time steps on a new last axis.

    Parameters
    ----------
    input : torch.Tensor
        Any shape (lava-dl required at least two dimensions; here a 1-D or 0-D tensor works too).
    num_steps : int
        Number of time steps (>= 0).

    Returns
    -------
    torch.Tensor
        ``input.shape + (num_steps,)``, a new tensor with ``out[..., t] == input`` for every ``t``
        (same dtype: integer labels stay integer).

    Examples
    --------
    >>> replicate(torch.tensor([1, 2]), 3)
    tensor([[1, 1, 1],
            [2, 2, 2]])
    """
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"replicate: expected a torch.Tensor, got {type(input).__name__}")
    if isinstance(num_steps, bool) or int(num_steps) != num_steps or num_steps < 0:
        raise ValueError(f"replicate: num_steps must be a non-negative integer, got {num_steps!r}")
    return input.unsqueeze(-1).expand(*input.shape, int(num_steps)).contiguous()
