"""Checks at the boundary of slayer neurons and blocks: input tensors and parameter values.

Every neuron family and every block calls these from its generic base class
(:class:`lava_dl.slayer.neuron.base.Neuron`, :class:`lava_dl.slayer.block.base`), so
a bad input is reported where it enters, with what was expected, instead of failing
deep inside torch or a compiled kernel, or silently giving other numbers.

Structure (always checked): the input is a ``float32`` or ``float64`` tensor with at
least three axes ``N, C, (H, W,) T`` and a time axis of length >= 1.

Values (checked by default, one reduction over the input per neuron call and one
``isfinite`` per block parameter): no NaN or inf in the input of a neuron or in the
parameters of a block, and every input value ``x`` of a neuron must give an integer
input ``a_in = floor(x * unit)`` (``unit``: the neuron's
:attr:`~lava_dl.slayer.neuron.base.Neuron.input_unit`, 64 for the spiking families)
that a Lava port can carry: Lava's ports hold int32 messages, so
``|a_in| < 2^31`` (``|x| < 2^25 = 33554432`` at the default scale). Values beyond it
(e.g. ``1e30``) have no integer model (the float-to-integer conversion overflows).
Within that range the spiking families wrap the input to 24 bits exactly as the
deployed synapse and neuron do.

Tensors whose values are known without looking skip the scan: a neuron marks the
binary spikes it produces (:func:`mark_bound`, ``|x| <= 1``), a block marks its synapse's
output when the synapse input carries a bound (``|z| <= max|x| * sum|W|``, see
:func:`bound_linear_output`), and :func:`check_values` accepts a marked tensor whose bound
lies inside the range at once. A mark holds only for the tensor's current contents: an
in-place change (which bumps the tensor's version counter) voids it, and views and
copies start unmarked.

Turn the value checks off with :func:`set_input_checks` (``set_input_checks(False)``
globally, or ``with set_input_checks(False): ...`` for a block of code); the structure
checks and the checks of the neurons' own parameters (decays and thresholds in the
ranges of the family's definition) stay on.
"""

from __future__ import annotations

import math
import typing as ty

import torch
from torch import nn

from lava_dl.core.switch import Restore, Switch
from lava_dl.slayer._eager import eager

__all__ = ["set_input_checks", "input_checks_enabled", "check_tensor", "check_values",
           "check_finite_parameters", "mark_bound", "marked_bound", "marked_binary", "bound_linear_output",
           "INPUT_LIMIT"]

#: Bound on the integer input of a neuron: Lava ports carry int32 messages.
INPUT_LIMIT = 2.0**31

_FLOATS = (torch.float32, torch.float64)
_CHECKS = Switch()
#: Tensor attribute holding ``(bound, version, data pointer, binary)`` of :func:`mark_bound` (a copy
#: made with the attribute, e.g. by pickling or ``copy.deepcopy``, has other memory: no mark).
_MARK = "_lava_dl_bound"
#: Headroom of a propagated bound for the rounding of a float sum (any order, FMA or not):
#: a sum of n terms rounds by at most a factor 1 + n 2^-24 / (1 - n 2^-24), far below 2 for
#: any synapse that fits in memory.
_ROUNDING_HEADROOM = 2.0


def set_input_checks(enabled: bool) -> Restore:
    """Turn the value checks of the forward pass (NaN, inf, out-of-range input; non-finite block
    parameters) on or off.

    Called as a function it sets the switch for the whole process; used in a ``with``
    statement it restores the previous setting on exit.

    Parameters
    ----------
    enabled : bool
        ``False`` skips the value checks (saves one reduction over each neuron's input and
        one ``isfinite`` over each block parameter per call).

    Returns
    -------
    lava_dl.core.switch.Restore
        Restores the previous setting when used as a context manager.

    Examples
    --------
    >>> from lava_dl import slayer
    >>> with slayer.set_input_checks(False):
    ...     out = block(x)          # x is not scanned for NaN / inf
    """
    return _CHECKS.set(enabled)


def input_checks_enabled() -> bool:
    """Whether the value checks of the forward pass are on (see :func:`set_input_checks`)."""
    return _CHECKS.enabled


@eager
def check_tensor(x, where: str, min_dim: int = 3) -> None:
    """Raise unless ``x`` is a float32/float64 tensor ``N, C, (H, W,) T`` with ``T >= 1``.

    Parameters
    ----------
    x : object
        The input.
    where : str
        Name of the receiving layer, used in the messages.
    min_dim : int
        Least number of axes.

    Raises
    ------
    TypeError
        ``x`` is no tensor, or its dtype is not float32/float64 (integer, bool, half,
        bfloat16 or complex), naming the dtype and the conversion to use.
    ValueError
        Fewer than ``min_dim`` axes, or an empty time axis.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: expected a torch.Tensor input, got {type(x).__name__}")
    if x.dtype not in _FLOATS:
        if x.dtype in (torch.float16, torch.bfloat16):
            hint = ("half precision cannot hold the fixed-point grid of the integer model exactly; "
                    "convert with x.float()")
        elif x.is_complex():
            hint = "pass a real tensor (a complex neuron takes a (real, imag) pair of real tensors)"
        else:
            hint = "convert it with x.float() (e.g. integer or boolean spike tensors)"
        raise TypeError(f"{where}: input must be a float32 or float64 tensor, got dtype {x.dtype}; {hint}")
    if x.dim() < min_dim:
        raise ValueError(f"{where} expects input N, C, (H, W,) T (time last, at least {min_dim} axes); got "
                         f"shape {tuple(x.shape)}")
    if x.shape[-1] == 0:
        raise ValueError(f"{where}: the time axis (last) of the input is empty (shape {tuple(x.shape)}); "
                         "give at least one time step")


def _in_memory_order(x: torch.Tensor) -> torch.Tensor:
    """``x`` with its axes permuted into memory order: a time-major view becomes contiguous, which
    torch reduces many times faster (the reduction over all elements is the same)."""
    return x.permute(sorted(range(x.dim()), key=lambda d: -x.stride(d)))


def _first_index(mask: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in torch.nonzero(mask)[0])


@eager
def mark_bound(x: torch.Tensor, bound: float, binary: bool = False) -> torch.Tensor:
    """Record that every value of ``x`` is finite with ``|x| <= bound`` (proven by its producer,
    e.g. ``bound=1`` for binary spikes), so that :func:`check_values` need not scan it.

    The mark holds for ``x``'s current contents only (an in-place change voids it). Inference tensors
    (made under ``torch.inference_mode``) have no version counter to tell such a change, so they are
    not marked: their checks scan them.

    Parameters
    ----------
    x : torch.Tensor
        The tensor (returned, marked).
    bound : float
        Finite bound on ``|x|``.
    binary : bool
        Every value is 0 or 1 (a non-graded neuron's spikes; see :func:`marked_binary`).
    """
    bound = float(bound)
    if math.isfinite(bound) and not x.is_inference():
        setattr(x, _MARK, (bound, x._version, x.data_ptr(), bool(binary) and bound == 1.0))
    return x


@eager
def marked_bound(x: torch.Tensor) -> float | None:
    """The bound of :func:`mark_bound` if ``x`` is marked and unchanged since, else None."""
    mark = getattr(x, _MARK, None)
    if mark is None or x.is_inference() or mark[1] != x._version or mark[2] != x.data_ptr():
        return None
    return mark[0]


def marked_binary(x: torch.Tensor) -> bool:
    """Whether ``x`` is marked (:func:`mark_bound`) as holding only 0s and 1s and is unchanged since:
    a synapse may then sum in any order exactly (:mod:`lava_dl.slayer.synapse._events`)."""
    return marked_bound(x) is not None and getattr(x, _MARK)[3]


@eager
def bound_linear_output(z: torch.Tensor, x: torch.Tensor,
                        weight: torch.Tensor | ty.Callable[[], torch.Tensor]) -> None:
    """Mark the output ``z`` of a linear synapse (dense, convolution, pooling, transposed) with
    weights ``weight`` applied to the input ``x``.

    Every output of such a synapse is a sum of products ``w x`` that uses each weight at
    most once, so ``|z| <= max|x| * sum|w|`` (times a headroom for rounding). ``max|x|`` is
    ``x``'s mark, or a scan of ``x`` when ``x`` is smaller than ``z`` (a scan of ``z``
    would cost more); otherwise, or when the bound is not finite, ``z`` stays unmarked and is
    scanned where it is checked. Does nothing when the value checks are off.

    Parameters
    ----------
    z : torch.Tensor
        Synapse output.
    x : torch.Tensor
        Synapse input.
    weight : torch.Tensor or callable
        The weights the synapse used (after its pre-hook), or a function returning them
        (called only when a bound is computed).
    """
    if not _CHECKS.enabled or not isinstance(z, torch.Tensor) or not isinstance(x, torch.Tensor):
        return
    bound = marked_bound(x)
    if bound is None:
        if not 0 < x.numel() < z.numel():
            return
        lo, hi = (float(v) for v in torch.aminmax(_in_memory_order(x.detach())))
        bound = max(-lo, hi)  # NaN stays NaN: no mark
    with torch.no_grad():
        weight = weight() if callable(weight) else weight
        total = float(weight.detach().abs().sum(dtype=torch.float64))
    mark_bound(z, bound * total * _ROUNDING_HEADROOM)


@eager
def check_values(x: torch.Tensor, where: str, unit: float | None = None) -> None:
    """Raise if ``x`` holds NaN or inf, or (with ``unit``) a value whose integer input
    ``floor(x * unit)`` does not fit a Lava port's int32 message. Skipped when the value
    checks are off (:func:`set_input_checks`).

    Parameters
    ----------
    x : torch.Tensor
        Floating input (any shape).
    where : str
        Name of the receiving layer, used in the messages.
    unit : float, optional
        Integer input units per real unit (the neuron's ``input_unit``).

    Raises
    ------
    ValueError
        Naming how many values are NaN, inf or beyond the range, the first index of one,
        and how to turn the check off.
    """
    if not _CHECKS.enabled or not x.numel():
        return
    limit = INPUT_LIMIT / unit if unit else float("inf")
    bound = marked_bound(x)
    if bound is not None and bound < limit:
        return
    lo, hi = (float(v) for v in torch.aminmax(_in_memory_order(x.detach())))
    if math.isfinite(lo) and math.isfinite(hi) and -limit <= lo and hi < limit:
        return
    x = x.detach()
    nan, inf = torch.isnan(x), torch.isinf(x)
    off = "lava_dl.slayer.set_input_checks(False) skips this check"
    if nan.any() or inf.any():
        raise ValueError(
            f"{where}: the input holds {int(nan.sum())} NaN and {int(inf.sum())} inf values of {x.numel()} "
            f"(first at index {_first_index(nan | inf)} of shape {tuple(x.shape)}); the integer model has no "
            f"value for them (check the data and the layers before this one; {off})")
    beyond = (x < -limit) | (x >= limit)
    raise ValueError(
        f"{where}: {int(beyond.sum())} input values of {x.numel()} lie beyond the deployable range "
        f"(values from {lo:g} to {hi:g}, first at index {_first_index(beyond)}): the integer input "
        f"floor(x * {unit:g}) must fit the int32 message of a Lava port, i.e. -{limit:g} <= x < {limit:g} "
        f"({off})")


@eager
def check_finite_parameters(module: nn.Module, where: str) -> None:
    """Raise naming the first parameter of ``module`` (recursively) that holds NaN or inf.

    Parameters
    ----------
    module : torch.nn.Module
        Block or neuron.
    where : str
        Name of the layer, used in the message.

    Raises
    ------
    ValueError
        ``"<where>: parameter '<name>' holds <k> NaN/inf values of <n>"``.
    """
    for name, param in module.named_parameters():
        size = param.numel()
        if not size or not param.dtype.is_floating_point:
            continue
        if size == 1:  # a shared value (decays, thresholds): one read, no reduction
            if math.isfinite(param.item()):
                continue
        else:
            lo, hi = (float(v) for v in torch.aminmax(_in_memory_order(param.detach())))  # NaN propagates
            if math.isfinite(lo) and math.isfinite(hi):
                continue
        bad = int((~torch.isfinite(param.detach())).sum())
        raise ValueError(f"{where}: parameter '{name}' holds {bad} NaN/inf values of {param.numel()} "
                         f"(shape {tuple(param.shape)}); a diverged training step or a bad assignment "
                         "put them there (e.g. lower the learning rate, clip the gradients)")
