"""Finite impulse response filters along time (lava-dl's ``slayer.utils.filter.fir``)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lava_dl.slayer.utils.filter.conv import conv


class FIR(torch.nn.Module):
    """Fixed (not learned) causal FIR filter along time.

    Parameters
    ----------
    fir_response : array_like or torch.Tensor, optional
        Impulse response (a tensor on any device; copied). ``None``: the exponential
        ``exp(-k / time_constant)`` for ``k = 0 .. length - 1``.
    time_constant : float, default 1
        Time constant of the default exponential response (in steps).
    length : int, default 20
        Length of the default exponential response.
    sampling_time : float, default 1
        Duration of one time step (scales the output as in :func:`conv`).

    Attributes
    ----------
    filter : torch.Tensor
        The impulse response (a float32 buffer: it moves with the module).
    sampling_time : float
        As given.
    """

    def __init__(self, fir_response=None, time_constant: float = 1, length: int = 20,
                 sampling_time: float = 1) -> None:
        super().__init__()
        if fir_response is None:
            if not time_constant > 0:
                raise ValueError(f"FIR: time_constant must be > 0, got {time_constant!r}")
            if int(length) != length or length < 1:
                raise ValueError(f"FIR: length must be a positive integer, got {length!r}")
            fir_response = np.exp(-np.arange(int(length)) / time_constant)
        if isinstance(fir_response, torch.Tensor):  # any device, with or without gradient
            fir_response = fir_response.detach().cpu().numpy()
        response = torch.as_tensor(np.asarray(fir_response, dtype=np.float32)).flatten()
        if response.numel() == 0:
            raise ValueError("FIR: fir_response is empty")
        self.register_buffer("filter", response)
        self.sampling_time = sampling_time

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Filter ``input`` (time last); same shape out."""
        return conv(input, self.filter, self.sampling_time)


class FIRBank(torch.nn.Conv3d):
    """Bank of learnable causal FIR filters applied to every input channel.

    An input ``N, C, (...,) T`` gives ``N, num_filter * C, (...,) T``: output channel
    ``f * C + c`` is input channel ``c`` through filter ``f``. The weights are a
    ``Conv3d``'s (``(num_filter, 1, 1, 1, length)``, torch's default initialisation,
    times ``scale``), so lava-dl's state dicts load unchanged.

    Parameters
    ----------
    num_filter : int
        Number of filters.
    filter_length : float
        Time length of the filters; ``int(filter_length / sampling_time)`` taps.
    sampling_time : float, default 1
        Duration of one time step (scales the output).
    scale : float, default 1
        Multiplies the initial weights.

    Notes
    -----
    lava-dl padded the input by ``filter_length - 1`` steps whatever the number of taps, so
    with ``sampling_time != 1`` its outputs were shifted and longer than its inputs; here the
    padding is ``taps - 1`` and the output has the input's length.
    """

    def __init__(self, num_filter: int, filter_length: float, sampling_time: float = 1,
                 scale: float = 1) -> None:
        taps = int(filter_length / sampling_time)
        if taps < 1:
            raise ValueError(f"FIRBank: filter_length / sampling_time must be >= 1, got "
                             f"{filter_length!r} / {sampling_time!r}")
        super().__init__(1, int(num_filter), (1, 1, taps), bias=False)
        self.sampling_time = sampling_time
        if scale != 1:
            with torch.no_grad():
                self.weight.mul_(scale)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Filter every channel of ``input`` (``N, C, (...,) T``) with every filter."""
        if not isinstance(input, torch.Tensor) or input.dim() < 2:
            raise ValueError("FIRBank: expected an input N, C, (...,) T with time last")
        shape = list(input.shape)
        shape[1] = -1
        padded = F.pad(input.reshape(input.shape[0], 1, 1, -1, input.shape[-1]), (self.filter_length - 1, 0))
        return (F.conv3d(padded, self.weight) * self.sampling_time).reshape(shape)

    @property
    def num_filter(self) -> int:
        """Number of filters in the bank."""
        return self.out_channels

    @property
    def filter_length(self) -> int:
        """Number of taps of each filter."""
        return self.kernel_size[2]

    @property
    def impulse_response(self) -> np.ndarray:
        """Impulse responses, ``(num_filter, taps)``, tap 0 first."""
        return self.weight.detach().reshape(self.out_channels, -1).cpu().numpy()[:, ::-1]
