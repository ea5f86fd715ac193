"""lava-dl's ``slayer.neuron.dynamics.leaky_integrator``: leaky integration, optionally with reset.

The front end of CUBA's voltage rule (:func:`lava_dl.core.cuba.voltage_update`: the state
decays by ``rs0(y (4096 - d), 12)``, adds ``trunc(x * w_scale)`` and saturates to 24 bits),
through :class:`lava_dl.slayer.neuron.dynamics.SpikingIntegrator`: forward in integers,
compiled adjoint backward, on the CPU or on the input's CUDA device.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lava_dl.slayer.neuron.dynamics import SpikingIntegrator, any_rank, per_row, state_rows, truncated

#: Scaled threshold that no 24-bit state exceeds: integration without reset.
_NO_RESET = np.int64(1) << 40

__all__ = ["dynamics", "persistent_state"]


@any_rank(1)
def dynamics(input: torch.Tensor, decay, state, w_scale: float, threshold: float | None = None,
             debug: bool = False, decay_gradient: str = "exact") -> torch.Tensor:
    """Leaky integrator ``y[t] = (1 - decay / 4096) y[t-1] + x[t]``, reset to 0 after ``y >= threshold``.

    Parameters
    ----------
    input : torch.Tensor
        ``N, C, (H, W,) T`` real input. A CUDA input runs the CUDA kernels of the same rule on its
        device (no host copy).
    decay : torch.Tensor or float
        Decay in units of 1/4096: one value, or one per channel (truncated to an integer, as
        lava-dl does; the gradient passes straight through).
    state : torch.Tensor or float
        State before the first step (real units): one value or one per ``(batch, neuron)``.
    w_scale : int
        Integer units per real unit of the state (lava-dl's neurons pass ``scale << 6``).
    threshold : float, optional
        Reset threshold (real units); ``None`` or ``<= 0``: no reset.
    debug : bool
        Ignored (lava-dl compares its CUDA kernel against its CPU loop with it).
    decay_gradient : {"exact", "lava-dl"}
        Gradient of ``decay``: the derivative of the integer rule (default), or lava-dl's
        (``-4096`` times it, read on the state before its reset; see the ``decay_gradient``
        argument of :class:`lava_dl.slayer.neuron.cuba.Neuron`).

    Returns
    -------
    torch.Tensor
        The state after each step, before any reset, in real units (a multiple of
        ``1 / w_scale``), shaped like ``input``.

    Notes
    -----
    Differences from lava-dl, in the deployed rule's favour: the state saturates to
    24 bits (lava-dl's grows without bound), the input enters as ``trunc(x * w_scale)``
    in float64 (lava-dl multiplies in the input's dtype), and ``decay`` gets the exact
    gradient unless ``decay_gradient="lava-dl"`` (lava-dl's has the opposite sign and no
    ``1/4096`` factor, and reads the state before its reset).
    """
    if decay_gradient not in ("exact", "lava-dl"):
        raise ValueError(f"leaky_integrator.dynamics: decay_gradient must be 'exact' or 'lava-dl', "
                         f"got {decay_gradient!r}")
    rows = input[..., 0].numel()
    vth = _NO_RESET if threshold is None or threshold * w_scale <= 0 else math.ceil(threshold * w_scale) - 1
    _, output = SpikingIntegrator.apply(
        input, per_row(truncated(decay, input), input), state_rows(state, input, w_scale), float(w_scale),
        np.zeros(rows, np.int64), np.full(rows, vth, np.int64), (0.0, 1.0, 1.0), False,
        decay_gradient == "lava-dl")
    return output


def persistent_state(state: torch.Tensor, spike: torch.Tensor) -> torch.Tensor:
    """The state carried to the next call: ``state`` where the last step did not spike, else 0.

    Parameters
    ----------
    state : torch.Tensor
        State at the last step.
    spike : torch.Tensor
        Spikes at the last step.

    Returns
    -------
    torch.Tensor
        The carried state.
    """
    return torch.where(spike > 0, torch.zeros_like(state), state)
