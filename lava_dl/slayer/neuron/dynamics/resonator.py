"""lava-dl's ``slayer.neuron.dynamics.resonator``: the complex rotation, optionally with
Izhikevich spike and reset.

The front end of the resonator kernels of :mod:`lava_dl.core.resonator` through
:class:`lava_dl.slayer.neuron._resonator.ResonatorDynamics`: without a threshold the RF
rotation alone, with one the RF-IZ rule (spike when ``im >= threshold``, then ``re = 0``,
``im = threshold - 1/w_scale``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lava_dl.core import resonator as _res
from lava_dl.slayer.neuron._resonator import ResonatorDynamics
from lava_dl.slayer.neuron.dynamics import any_rank, per_row, state_rows, truncated

#: Threshold no 24-bit state reaches: rotation without spikes.
_NO_SPIKE = np.int64(1) << 40

__all__ = ["dynamics", "persistent_real_state", "persistent_imag_state"]


@any_rank(2)
def dynamics(real_input: torch.Tensor, imag_input: torch.Tensor, sin_decay, cos_decay, real_state, imag_state,
             w_scale: float, threshold: float | None = None,
             debug: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Resonator ``z[t] = (cos + i sin) z[t-1] / 4096 + x[t]`` in Loihi's integers.

    Parameters
    ----------
    real_input, imag_input : torch.Tensor
        ``N, C, (H, W,) T`` real and imaginary inputs (CPU, or CUDA: the CUDA kernels).
    sin_decay, cos_decay : torch.Tensor or float
        Rotation integers ``4096 (1 - decay) sin|cos(2 pi / period)``: one value or one per
        channel (truncated, as lava-dl does; gradients pass straight through).
    real_state, imag_state : torch.Tensor or float
        States before the first step (real units), one value or one per ``(batch, neuron)``.
    w_scale : int
        Integer units per real unit of the states.
    threshold : float, optional
        Izhikevich threshold on the imaginary part (real units); ``None``: no spike, no reset.
    debug : bool
        Ignored.

    Returns
    -------
    real, imag : torch.Tensor
        The states after each step (before any reset), real units, shaped like the input.

    Notes
    -----
    The kernels saturate both states to 24 bits and take the input as Loihi's
    ``a_in = floor(x * w_scale / 64)`` (exact for inputs on that grid, e.g. binary spikes
    through quantized weights; lava-dl truncates ``x * w_scale``). The reset value
    ``threshold - 1/w_scale`` is lava-dl's when ``threshold * w_scale`` is an integer.
    """
    x = real_input
    rows = x[..., 0].numel()
    reset = threshold is not None and threshold * w_scale >= 0
    family = _res.RF_IZ_CODE if reset else _res.RF_CODE
    th0 = np.full(rows, math.ceil(threshold * w_scale) if reset else _NO_SPIKE, np.int64)
    zeros = np.zeros(rows, np.int64)
    states = (state_rows(real_state, x, w_scale).numpy(), state_rows(imag_state, x, w_scale).numpy(),
              zeros.copy(), zeros.copy())
    config = (family, states, float(w_scale), (zeros, zeros, th0, zeros), (1.0, 1.0), False, True)
    _, real, imag = ResonatorDynamics.apply(real_input, imag_input, per_row(truncated(sin_decay, x), x),
                                            per_row(truncated(cos_decay, x), x), config)
    return real, imag


def persistent_real_state(real_state: torch.Tensor, spike: torch.Tensor) -> torch.Tensor:
    """Real state carried to the next call: 0 where the last step spiked (Izhikevich reset)."""
    return torch.where(spike > 0, torch.zeros_like(real_state), real_state)


def persistent_imag_state(imag_state: torch.Tensor, spike: torch.Tensor, threshold: float,
                          scale: float) -> torch.Tensor:
    """Imaginary state carried to the next call: ``threshold - 1/scale`` where the last step spiked."""
    return torch.where(spike > 0, torch.full_like(imag_state, threshold - 1 / scale), imag_state)
