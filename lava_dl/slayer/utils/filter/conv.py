"""Causal convolution and anti-causal correlation along time (lava-dl's ``slayer.utils.filter.conv``).

Both are one depthwise ``torch.nn.functional.conv1d`` (every row of the input its own
group, sharing the filter), so autograd gives the gradients of the input *and* of the
filter (lava-dl computed no filter gradient and printed a message instead). The
depthwise form matters on the CPU: a single-channel ``conv1d`` over a batch of rows has
a backward pass ~20x slower.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _rows_and_filter(input: torch.Tensor, filter: torch.Tensor, where: str):
    if not isinstance(input, torch.Tensor) or not isinstance(filter, torch.Tensor):
        raise TypeError(f"{where}: input and filter must be torch.Tensors, got "
                        f"{type(input).__name__} and {type(filter).__name__}")
    if input.dim() == 0:
        raise ValueError(f"{where}: expected an input with a time axis (last), got a 0-D tensor")
    if filter.numel() == 0:
        raise ValueError(f"{where}: the filter is empty")
    if not input.is_floating_point():
        input = input.float()
    kernel = filter.flatten().to(dtype=input.dtype, device=input.device)
    return input.reshape(1, -1, input.shape[-1]), kernel


def _depthwise(padded_rows: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Cross-correlate every row of ``padded_rows`` (``1, R, T + L - 1``) with ``kernel`` (``L``)."""
    rows = padded_rows.shape[1]
    return F.conv1d(padded_rows, kernel.reshape(1, 1, -1).expand(rows, 1, -1), groups=rows)


def conv(input: torch.Tensor, filter: torch.Tensor, sampling_time: float = 1) -> torch.Tensor:
    """Causal convolution along the last (time) axis, truncated to the input length.

    ``out[..., t] = sampling_time * sum_k filter[k] * input[..., t - k]`` (zero before ``t = 0``).

    Parameters
    ----------
    input : torch.Tensor
        Signal, time last (any number of leading dimensions).
    filter : torch.Tensor
        Impulse response (flattened if not 1-D).
    sampling_time : float, default 1
        Duration of one time step (scales the sum).

    Returns
    -------
    torch.Tensor
        Same shape as ``input`` (lava-dl turned a 1-D input into ``(1, T)``).

    Examples
    --------
    >>> conv(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([1.0, 0.5]))
    tensor([1.0000, 0.5000, 0.0000])
    """
    rows, kernel = _rows_and_filter(input, filter, "conv")
    out = _depthwise(F.pad(rows, (kernel.numel() - 1, 0)), kernel.flip(0))
    return (out * sampling_time).reshape(input.shape)


def corr(input: torch.Tensor, filter: torch.Tensor, sampling_time: float = 1) -> torch.Tensor:
    """Correlation along the last (time) axis with future samples (the adjoint of :func:`conv`).

    ``out[..., t] = sampling_time * sum_k filter[k] * input[..., t + k]`` (zero past the end).

    Parameters
    ----------
    input : torch.Tensor
        Signal, time last (any number of leading dimensions).
    filter : torch.Tensor
        Correlation kernel (flattened if not 1-D).
    sampling_time : float, default 1
        Duration of one time step (scales the sum).

    Returns
    -------
    torch.Tensor
        Same shape as ``input``.

    Examples
    --------
    >>> corr(torch.tensor([0.0, 0.0, 1.0]), torch.tensor([1.0, 0.5]))
    tensor([0.0000, 0.5000, 1.0000])
    """
    rows, kernel = _rows_and_filter(input, filter, "corr")
    out = _depthwise(F.pad(rows, (0, kernel.numel() - 1)), kernel)
    return (out * sampling_time).reshape(input.shape)
