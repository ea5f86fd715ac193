"""Weight quantizers with straight-through gradients (reference-neurons.md §1.2).

The one definition of slayer's rounding: :func:`quantize` (lava-dl's
``slayer.utils.quantize``), the neurons' 8-bit weight quantizer
:func:`quantize_8bit` and lava-dl's synapse pre-hook :func:`quantize_hook_fx`, all
re-exported by :mod:`lava_dl.slayer.utils.quantize`.
"""

from __future__ import annotations

import contextlib
import contextvars
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


#: Label of the values being exported while :func:`no_clipping` is active (None: clamp silently).
_NO_CLIPPING: contextvars.ContextVar[str | None] = contextvars.ContextVar("no_clipping", default=None)
#: Set by :func:`allow_clipping`: :func:`no_clipping` then reports only NaN/inf.
_CLIPPING_ALLOWED: contextvars.ContextVar[bool] = contextvars.ContextVar("clipping_allowed", default=False)


@contextlib.contextmanager
def allow_clipping():
    """Inside this block :func:`no_clipping` lets the quantizers clamp again (NaN/inf still raise).

    What ``export_hdf5(..., clip_weights=True)`` of the blocks uses: the exported weights are
    then the clamped ones, exactly those the training forward used.
    """
    token = _CLIPPING_ALLOWED.set(True)
    try:
        yield
    finally:
        _CLIPPING_ALLOWED.reset(token)


@contextlib.contextmanager
def no_clipping(what: str):
    """Make :func:`quantize_8bit` and :func:`quantize_hook_fx` raise instead of clamping.

    Export uses it: the training forward clamps out-of-range weights (with zero gradient
    there), but a deployed network should not silently differ from the trained weights.

    Parameters
    ----------
    what : str
        What is being quantized (e.g. ``'synapse weight'``), used in the message.

    Raises
    ------
    ValueError
        From a quantizer called inside the block: the values hold NaN/inf, or quantized values
        lie beyond the clamp range (with how many and how far).
    """
    token = _NO_CLIPPING.set(what)
    try:
        yield
    finally:
        _NO_CLIPPING.reset(token)


def _check_clipping(q: torch.Tensor, low: float, high: float, unit: float) -> None:
    """Under :func:`no_clipping`, raise if ``q`` (quantized, before the clamp to ``[low, high]``) is not
    finite or would be clamped; ``unit`` turns ``q`` into integer weights for the message."""
    what = _NO_CLIPPING.get()
    if what is None or not q.numel():
        return
    q = q.detach()
    finite = torch.isfinite(q)
    if not bool(finite.all()):
        raise ValueError(f"{what}: {int((~finite).sum())} of {q.numel()} values are NaN or inf; a deployed "
                         "weight must be a number")
    if _CLIPPING_ALLOWED.get():
        return
    beyond = (q < low) | (q > high)
    if bool(beyond.any()):
        qmin, qmax = float(q.min()) * unit, float(q.max()) * unit
        lo, hi = low * unit, high * unit
        factor = max(qmin / lo if lo < 0 and qmin < lo else 0.0, qmax / hi if hi > 0 and qmax > hi else 0.0)
        raise ValueError(
            f"{what}: {int(beyond.sum())} of {q.numel()} quantized values lie outside the deployable range "
            f"[{lo:g}, {hi:g}] (integer values from {qmin:g} to {qmax:g}, up to {factor:.3g}x the limit); "
            "the training forward clamps them, export does not by default: scale the weights into range "
            "(e.g. a smaller weight_scale or a weight clamp during training), or export with "
            "clip_weights=True to write the clamped values the forward used")


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

    Notes
    -----
    Inside :func:`no_clipping` (block export) values that the clamp would change, or NaN/inf,
    raise ``ValueError`` instead.
    """
    q = quantize(x * scale, step=2)
    if _NO_CLIPPING.get() is not None:
        _check_clipping(q, -256, 254, 1.0)
    q = torch.clamp(q, -256, 254)
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
        where the clamp is active. Inside :func:`no_clipping` (block export) values that the
        clamp would change, or NaN/inf, raise ``ValueError`` instead.
    """
    if not scale > 0:
        raise ValueError(f"quantize_hook_fx: scale must be > 0, got {scale}")
    if int(num_bits) != num_bits or num_bits < 1:
        raise ValueError(f"quantize_hook_fx: num_bits must be a positive integer, got {num_bits}")
    low = -2 * (1 << int(num_bits))
    high = 2 * ((1 << int(num_bits)) - 1)
    q = quantize(x, step=2 / scale)
    if _NO_CLIPPING.get() is not None:
        _check_clipping(q, low / scale, high / scale, float(scale))
    q = q.clamp(low / scale, high / scale)
    return q * scale if descale else q
