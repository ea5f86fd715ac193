"""lava-dl's ``slayer.neuron.dynamics.adaptive_phase_th``: adaptive threshold and refractory state
tested at the phase crossings of a resonator.

ADRF's threshold unit and phase gate (:func:`lava_dl.core.resonator.phase_probe`), run over
given resonator states by :func:`lava_dl.core.resonator.threshold_forward`. No gradient, as
in lava-dl.
"""

from __future__ import annotations

import torch

from lava_dl.slayer.neuron.dynamics import any_rank
from lava_dl.slayer.neuron.dynamics.adaptive_threshold import (
    persistent_ref_state,
    persistent_th_state,
    threshold_dynamics,
)

__all__ = ["dynamics", "persistent_ref_state", "persistent_th_state"]


@any_rank(2)
def dynamics(re_input: torch.Tensor, im_input: torch.Tensor, im_state, ref_state, ref_decay, th_state,
             th_decay, th_scale: float, th0: float, w_scale: float,
             debug: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive threshold dynamics gated by the phase: a spike needs ``re >= θ + r`` while ``im``
    crosses from negative to non-negative.

    Parameters
    ----------
    re_input, im_input : torch.Tensor
        ``N, C, (H, W,) T`` real and imaginary resonator states (real units).
    im_state : torch.Tensor or float
        Imaginary state before the first step.
    ref_state, ref_decay, th_state, th_decay, th_scale, th0, w_scale
        As :func:`lava_dl.slayer.neuron.dynamics.adaptive_threshold.dynamics`.
    debug : bool
        Ignored.

    Returns
    -------
    threshold, refractory : torch.Tensor
        The threshold and refractory state tested at each step, without gradient.
    """
    return threshold_dynamics(re_input, im_input, im_state, ref_state, ref_decay, th_state, th_decay,
                              th_scale, th0, w_scale)
