"""lava-dl's ``slayer.spike.Spike``: ``s = H(v - θ)`` with the surrogate derivative of the kernels."""

from __future__ import annotations

import numpy as np
import torch

from lava_dl.core import cuba as _cuba
from lava_dl.slayer._eager import KernelFunction

__all__ = ["Spike"]


def _float64(t: torch.Tensor, shape) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().to(torch.float64).expand(shape).numpy())


class Spike(KernelFunction):
    """Spike where the voltage reaches the threshold (lava-dl's signature).

    ``Spike.apply(voltage, threshold, tau_rho, scale_rho, graded_spike, voltage_last, scale)``:
    ``voltage`` is the (already reset) state, ``threshold`` a number or a tensor broadcast to
    it, ``tau_rho``/``scale_rho`` the width and height of the surrogate derivative,
    ``graded_spike`` makes a spike carry ``voltage / scale`` instead of 1, and
    ``voltage_last`` (the voltage before the first step) is accepted and unused, as in lava-dl.

    Returns the spikes, shaped and typed like ``voltage``. The backward pass is
    :func:`lava_dl.core.cuba.surrogate` at ``voltage - threshold`` (the kernels' rule).
    """

    @staticmethod
    def forward(ctx, voltage, threshold, tau_rho, scale_rho, graded_spike, voltage_last, scale):
        fired = voltage >= threshold
        spikes = (fired * voltage / scale if graded_spike else fired).to(voltage.dtype)
        ctx.save_for_backward(voltage, torch.as_tensor(threshold, dtype=voltage.dtype, device=voltage.device))
        ctx.config = (float(tau_rho), float(scale_rho), bool(graded_spike))
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        voltage, threshold = ctx.saved_tensors
        tau_rho, scale_rho, graded = ctx.config
        margin = _float64(voltage - threshold, voltage.shape)
        grad = np.empty_like(margin)
        _cuba.spike_backward(_float64(grad_spikes, voltage.shape), margin, 1.0, 0.0, tau_rho, scale_rho,
                             graded, grad)
        return (torch.from_numpy(grad).to(dtype=voltage.dtype, device=voltage.device),
                None, None, None, None, None, None)
