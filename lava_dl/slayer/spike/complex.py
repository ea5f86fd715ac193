"""lava-dl's ``slayer.spike.complex.Spike``: phase-crossing spike of a resonator."""

from __future__ import annotations

import numpy as np
import torch

from lava_dl.core import resonator as _res
from lava_dl.slayer._eager import KernelFunction
from lava_dl.slayer.spike.spike import _float64

__all__ = ["Spike"]


class Spike(KernelFunction):
    """Spike where the real part reaches the threshold while the imaginary part crosses zero upwards.

    ``Spike.apply(real, imag, threshold, tau_rho, scale_rho, graded_spike, imag_last, scale)``:
    a spike at step ``t`` when ``real[t] >= threshold`` and ``imag[t-1] < 0 <= imag[t]``
    (``imag_last`` is ``imag[-1]``, a number or one value per neuron); with ``graded_spike``
    it carries ``real / scale``. lava-dl's signature.

    The backward pass is :func:`lava_dl.core.resonator.complex_surrogate`, the derivative the
    RF and ADRF kernels use.
    """

    @staticmethod
    def forward(ctx, real, imag, threshold, tau_rho, scale_rho, graded_spike, imag_last, scale):
        last = torch.as_tensor(imag_last, dtype=imag.dtype, device=imag.device)
        before = torch.cat([last.expand(imag.shape[:-1]).unsqueeze(-1), imag[..., :-1]], dim=-1)
        fired = (real >= threshold) & (before < 0) & (imag >= 0)
        spikes = (fired * real / scale if graded_spike else fired).to(real.dtype)
        ctx.save_for_backward(real, imag, torch.as_tensor(threshold, dtype=real.dtype, device=real.device))
        ctx.config = (float(tau_rho), float(scale_rho), bool(graded_spike))
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        real, imag, threshold = ctx.saved_tensors
        tau_rho, scale_rho, graded = ctx.config
        grad_re = np.empty(real.shape, np.float64)
        grad_im = np.empty(real.shape, np.float64)
        _res.complex_spike_backward(_float64(grad_spikes, real.shape), _float64(real - threshold, real.shape),
                                    _float64(imag, real.shape), tau_rho, scale_rho, graded, grad_re, grad_im)

        def tensor(arr):
            return torch.from_numpy(arr).to(dtype=real.dtype, device=real.device)

        return tensor(grad_re), tensor(grad_im), None, None, None, None, None, None
