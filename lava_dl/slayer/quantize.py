"""Weight quantizers with straight-through gradients (reference-neurons.md §1.2)."""

from __future__ import annotations

import torch

_MODES = ("round", "floor")


class _Quantize(torch.autograd.Function):
    """``round(x / step) * step`` (half to even) or ``floor``; identity gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, step: float, floor: bool) -> torch.Tensor:
        q = torch.floor(x / step) if floor else torch.round(x / step)
        return q * step

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None, None


def quantize(x: torch.Tensor, step: float = 1, mode: str = "round") -> torch.Tensor:
    """Quantize ``x`` to multiples of ``step`` with a straight-through (identity) gradient.

    Parameters
    ----------
    x : torch.Tensor
        Values to quantize.
    step : float, default 1
        Quantization step (> 0).
    mode : {'round', 'floor'}, default 'round'
        ``'round'``: round half to even (``torch.round``); ``'floor'``: round down.

    Returns
    -------
    torch.Tensor
        Quantized tensor; its gradient w.r.t. ``x`` is the identity.
    """
    if mode not in _MODES:
        raise ValueError(f"quantize: mode must be one of {_MODES}, got {mode!r}")
    if not step > 0:
        raise ValueError(f"quantize: step must be > 0, got {step}")
    return _Quantize.apply(x, float(step), mode == "floor")


def quantize_8bit(x: torch.Tensor, scale: int = 64, descale: bool = False) -> torch.Tensor:
    """Loihi 8-bit weight quantizer: ``clamp(rne(x * scale / 2) * 2 / scale, -256 / scale, 254 / scale)``.

    Parameters
    ----------
    x : torch.Tensor
        Real-valued weights.
    scale : int, default 64
        Weight scale ``W`` (integer weight = real weight * W).
    descale : bool, default False
        Return the integer weights (real weights times ``scale``): even integers in
        ``[-256, 254]``, as exported.

    Returns
    -------
    torch.Tensor
        Quantized weights. The gradient passes straight through the rounding and is
        zero where the clamp is active.
    """
    q = torch.clamp(quantize(x * scale, step=2), -256, 254)
    return q if descale else q / scale
