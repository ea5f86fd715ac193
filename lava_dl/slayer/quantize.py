"""Weight quantizers with straight-through gradients (reference-neurons.md §1.2).

The one definition of slayer's rounding: :func:`quantize` (lava-dl's
``slayer.utils.quantize``), the neurons' 8-bit weight quantizer
:func:`quantize_8bit` and lava-dl's synapse pre-hook :func:`quantize_hook_fx`, all
re-exported by :mod:`lava_dl.slayer.utils.quantize`.
"""

from __future__ import annotations

from enum import IntEnum, unique

import torch


@unique
class MODE(IntEnum):
    """Quantization modes of :func:`quantize` (lava-dl's ``slayer.utils.QUANTIZE_MODE``)."""

    ROUND = 0
    FLOOR = 1


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


def quantize(input: torch.Tensor, step: float = 1, mode: str | MODE = "round") -> torch.Tensor:
    """Quantize ``input`` to multiples of ``step`` with a straight-through (identity) gradient.

    Parameters
    ----------
    input : torch.Tensor
        Values to quantize.
    step : float, default 1
        Quantization step (> 0).
    mode : {'round', 'floor'} or MODE, default 'round'
        ``'round'`` (``MODE.ROUND``): round half to even (``torch.round``);
        ``'floor'`` (``MODE.FLOOR``): round down.

    Returns
    -------
    torch.Tensor
        Quantized tensor; its gradient w.r.t. ``input`` is the identity.

    Examples
    --------
    >>> quantize(torch.tensor([0.3, 0.8]), step=0.5)
    tensor([0.5000, 1.0000])
    """
    if isinstance(mode, MODE):
        mode = _MODES[int(mode)]
    if mode not in _MODES:
        raise ValueError(f"quantize: mode must be one of {_MODES} or a MODE member, got {mode!r}")
    if not step > 0:
        raise ValueError(f"quantize: step must be > 0, got {step}")
    return _Quantize.apply(input, float(step), mode == "floor")


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


def quantize_hook_fx(x: torch.Tensor, scale: int = 1 << 6, num_bits: int = 8,
                     descale: bool = False) -> torch.Tensor:
    """lava-dl's synapse pre-hook quantizer: steps of ``2 / scale``, clamped to ``num_bits`` magnitude bits.

    ``clamp(quantize(x, 2 / scale), -2^(num_bits+1) / scale, (2^(num_bits+1) - 2) / scale)``,
    times ``scale`` when ``descale``. As in lava-dl, ``num_bits`` counts the magnitude bits
    of the integer weight ``x * scale / 2`` (range ``[-2^num_bits, 2^num_bits - 1]``): with
    the defaults the integer weights are the even numbers in ``[-512, 510]``, twice the range
    of the neurons' :func:`quantize_8bit` (``[-256, 254]``).

    Parameters
    ----------
    x : torch.Tensor
        Real-valued weights.
    scale : int, default 64
        Weight value that maps to the integer 1 (the weight scale).
    num_bits : int, default 8
        Magnitude bits of ``x * scale / 2``.
    descale : bool, default False
        Return the integer weights (``x * scale``) instead of the real ones.

    Returns
    -------
    torch.Tensor
        Quantized weights; the gradient passes straight through the rounding and is zero
        where the clamp is active.
    """
    if not scale > 0:
        raise ValueError(f"quantize_hook_fx: scale must be > 0, got {scale}")
    if int(num_bits) != num_bits or num_bits < 1:
        raise ValueError(f"quantize_hook_fx: num_bits must be a positive integer, got {num_bits}")
    low = -2 * (1 << int(num_bits))
    high = 2 * ((1 << int(num_bits)) - 1)
    q = quantize(x, step=2 / scale).clamp(low / scale, high / scale)
    return q * scale if descale else q
