"""lava-dl's ``slayer.neuron.dynamics.adaptive_resonator``: the rotation with an adaptive threshold
and refractory state on the imaginary part.

The ADRF-IZ rule of :mod:`lava_dl.core.resonator` (rotation, then
:func:`lava_dl.core.alif.threshold_unit` on ``im``; no reset of ``re``/``im``) through
:class:`lava_dl.slayer.neuron._resonator.ResonatorDynamics`.
"""

from __future__ import annotations

import numpy as np
import torch

from lava_dl.core import resonator as _res
from lava_dl.slayer.neuron._resonator import ResonatorDynamics
from lava_dl.slayer.neuron.dynamics import any_rank, per_row, state_rows, truncated
from lava_dl.slayer.neuron.dynamics.adaptive_threshold import (
    decay_rows,
    persistent_ref_state,
    persistent_th_state,
)

__all__ = ["dynamics", "persistent_ref_state", "persistent_th_state"]


@any_rank(2)
def dynamics(real_input: torch.Tensor, imag_input: torch.Tensor, sin_decay, cos_decay, ref_decay, th_decay,
             real_state, imag_state, ref_state, th_state, th_scale: float, th0: float, w_scale: float,
             debug: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Adaptive resonator: rotation, spike when ``im >= threshold + refractory``.

    Parameters
    ----------
    real_input, imag_input : torch.Tensor
        ``N, C, (H, W,) T`` inputs (CPU, or CUDA: the CUDA kernels).
    sin_decay, cos_decay : torch.Tensor or float
        Rotation integers (one value or one per channel; truncated, gradients straight through).
    ref_decay, th_decay : torch.Tensor or float
        Refractory and threshold decays in units of 1/4096 (truncated; no gradient).
    real_state, imag_state, ref_state, th_state : torch.Tensor or float
        States before the first step (real units); ``th_state`` is the whole threshold
        (``th0`` plus adaptation).
    th_scale : float
        Threshold increase per spike.
    th0 : float
        Base threshold.
    w_scale : int
        Integer units per real unit.
    debug : bool
        Ignored.

    Returns
    -------
    real, imag, threshold, refractory : torch.Tensor
        Per step: the states, and the threshold and refractory state tested at that step
        (before its spike update). Gradients flow to the inputs and the rotation only.

    Notes
    -----
    Saturation and input grid as in :func:`lava_dl.slayer.neuron.dynamics.resonator.dynamics`.
    """
    x = real_input
    rows = x[..., 0].numel()
    base = int(th0 * w_scale)
    step = int(th_scale * w_scale)
    states = (state_rows(real_state, x, w_scale).numpy(), state_rows(imag_state, x, w_scale).numpy(),
              state_rows(th_state, x, w_scale).numpy() - base, state_rows(ref_state, x, w_scale).numpy())
    params = (decay_rows(th_decay, x), decay_rows(ref_decay, x), np.full(rows, base, np.int64),
              np.full(rows, step, np.int64))
    config = (_res.ADRF_IZ_CODE, states, float(w_scale), params, (1.0, 1.0), False, True)
    _, real, imag, threshold, refractory = ResonatorDynamics.apply(
        real_input, imag_input, per_row(truncated(sin_decay, x), x), per_row(truncated(cos_decay, x), x),
        config)
    return real, imag, threshold, refractory
