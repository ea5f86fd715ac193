"""Shift a signal along time (lava-dl's ``slayer.utils.time.shift``): :func:`lava_dl.slayer.axon.delay`."""

from __future__ import annotations

import torch


def shift(input: torch.Tensor, shift_val, sampling_time: float = 1) -> torch.Tensor:
    """Move every value ``trunc(shift_val / sampling_time)`` steps later (earlier if negative).

    The steps left empty are zero; the input gradient is the reverse shift. This is
    :func:`lava_dl.slayer.axon.delay` (one implementation), also accepting lava-dl's
    2-D ``(C, T)`` inputs.

    Parameters
    ----------
    input : torch.Tensor
        ``N, C, (H, W, ...,) T`` or ``C, T``, time last, on the CPU.
    shift_val : float, int or torch.Tensor
        The shift in units of ``sampling_time``: a scalar for every position, or a tensor
        with one value per position ``prod(input.shape[1:-1])`` (for a 2-D input, a scalar).
    sampling_time : float, default 1
        Duration of one time step.

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``input``.

    Examples
    --------
    >>> shift(torch.tensor([[1.0, 2.0, 3.0]]), 1)
    tensor([[0., 1., 2.]])
    """
    from lava_dl.slayer.axon.delay import delay  # axon imports slayer.utils: import on use

    if isinstance(input, torch.Tensor) and input.dim() == 2:
        return delay(input.unsqueeze(0), shift_val, sampling_time).squeeze(0)
    if isinstance(input, torch.Tensor) and input.dim() < 2:
        raise ValueError(f"shift: expected an input with at least two dimensions (time last), "
                         f"got shape {tuple(input.shape)}")
    return delay(input, shift_val, sampling_time)
