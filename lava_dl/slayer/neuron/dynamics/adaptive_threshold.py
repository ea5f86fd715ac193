"""lava-dl's ``slayer.neuron.dynamics.adaptive_threshold``: the adaptive threshold and refractory
state driven by a given voltage.

The threshold unit of ALIF (:func:`lava_dl.core.alif.threshold_unit`), run over a state
series by :func:`lava_dl.core.resonator.threshold_forward`. Like lava-dl's, it has no gradient.
"""

from __future__ import annotations

import numpy as np
import torch

from lava_dl.slayer.neuron.dynamics import any_rank, per_row, state_rows, threshold_records

__all__ = ["dynamics", "persistent_ref_state", "persistent_th_state"]


def decay_rows(value, x: torch.Tensor) -> np.ndarray:
    """A decay (a number, or a tensor of one value or one per channel, on any device) truncated
    to int64, one per ``(batch, neuron)`` row of ``x``, as a numpy array."""
    value = torch.trunc(torch.as_tensor(value, dtype=torch.float64).detach().cpu())
    return np.ascontiguousarray(per_row(value, x).to(torch.int64).numpy())


def _series(x: torch.Tensor, w_scale: float) -> np.ndarray:
    """``trunc(x * w_scale)`` as an int64 ``(rows, T)`` array."""
    scaled = torch.trunc(x.detach().cpu().to(torch.float64) * w_scale).to(torch.int64)
    return scaled.reshape(-1, x.shape[-1]).numpy()


def threshold_dynamics(v: torch.Tensor, im: torch.Tensor | None, im_state, ref_state, ref_decay, th_state,
                       th_decay, th_scale: float, th0: float,
                       w_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Shared body of :func:`dynamics` and of ``adaptive_phase_th.dynamics`` (``im`` gates by phase)."""
    rows = v[..., 0].numel()
    base = int(th0 * w_scale)
    params = (decay_rows(th_decay, v), decay_rows(ref_decay, v), np.full(rows, base, np.int64),
              np.full(rows, int(th_scale * w_scale), np.int64))
    gate = {} if im is None else {"im": _series(im, w_scale), "im0": state_rows(im_state, v, w_scale).numpy()}
    theta, refractory = threshold_records(_series(v, w_scale), params,
                                          state_rows(th_state, v, w_scale).numpy() - base,
                                          state_rows(ref_state, v, w_scale).numpy(), **gate)

    def tensor(arr):
        return (torch.from_numpy(arr).to(torch.float64) / w_scale).to(v.dtype).reshape(v.shape).to(v.device)

    return tensor(theta), tensor(refractory)


@any_rank(1)
def dynamics(input: torch.Tensor, ref_state, ref_decay, th_state, th_decay, th_scale: float, th0: float,
             w_scale: float, debug: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive threshold and refractory dynamics of the voltage ``input``.

    Per step: ``r = (1 - ref_decay/4096) r``, ``θ = θ0 + (1 - th_decay/4096) (θ - θ0)``; a
    spike when ``input >= θ + r`` adds ``th_scale`` to ``θ`` and ``2 θ`` to ``r``.

    Parameters
    ----------
    input : torch.Tensor
        ``N, C, (H, W,) T`` voltage (real units, leaky dynamics already applied).
    ref_state, th_state : torch.Tensor or float
        Refractory state and whole threshold before the first step (real units).
    ref_decay, th_decay : torch.Tensor or float
        Decays in units of 1/4096 (one value or one per channel; truncated).
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
    threshold, refractory : torch.Tensor
        The threshold and refractory state tested at each step (before its spike update),
        shaped like ``input``, without gradient.
    """
    return threshold_dynamics(input, None, None, ref_state, ref_decay, th_state, th_decay, th_scale, th0,
                              w_scale)


def persistent_ref_state(ref_state: torch.Tensor, spike: torch.Tensor,
                         th_state: torch.Tensor) -> torch.Tensor:
    """Refractory state carried to the next call: ``+ 2 θ`` where the last step spiked."""
    return torch.where(spike > 0, ref_state + 2 * th_state, ref_state)


def persistent_th_state(th_state: torch.Tensor, spike: torch.Tensor, th_step: float) -> torch.Tensor:
    """Threshold carried to the next call: ``+ th_step`` where the last step spiked."""
    return torch.where(spike > 0, th_state + th_step, th_state)
