"""Small general helpers (lava-dl's ``slayer.utils.utils``): ``dotdict``, ``staticproperty``,
``diagonal_mask`` and ``event_rate``."""

from __future__ import annotations

import typing as ty

import torch


class dotdict(dict):  # noqa: N801  (lava-dl's name)
    """A ``dict`` whose keys are also attributes: ``d.key`` is ``d["key"]``.

    As in lava-dl, reading a missing key as an attribute gives ``None`` (``d.missing is
    None``) rather than raising; names of the form ``__name__`` do raise
    ``AttributeError``, so that copying, pickling and protocol checks see a plain dict.

    Examples
    --------
    >>> params = dotdict(threshold=1.0)
    >>> params.threshold
    1.0
    >>> params.decay = 0.5
    >>> params["decay"]
    0.5
    """

    def __getattr__(self, name: str) -> ty.Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self.get(name)

    def __setattr__(self, name: str, value: ty.Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None


class staticproperty(property):  # noqa: N801  (lava-dl's name)
    """A read-only property of a class computed by a function without arguments.

    ``Owner.name`` (and ``instance.name``) calls the decorated function.

    Examples
    --------
    >>> class Config:
    ...     @staticproperty
    ...     def answer():
    ...         return 42
    >>> Config.answer
    42
    """

    def __get__(self, instance: ty.Any, owner: type | None = None) -> ty.Any:
        return self.fget()


def diagonal_mask(dim: int, num_diagonals: int) -> torch.Tensor:
    """Band matrix of ones around the main diagonal.

    Parameters
    ----------
    dim : int
        Size of the square mask.
    num_diagonals : int
        Number of diagonals set to one; an even number is rounded up to the next odd
        one (``1``: the identity, ``3``: the main diagonal and its two neighbours).

    Returns
    -------
    torch.Tensor
        ``(dim, dim)`` float mask, ``mask[i, j] = 1`` where ``|i - j| <= num_diagonals // 2``.
    """
    if int(dim) != dim or dim < 0:
        raise ValueError(f"diagonal_mask: dim must be a non-negative integer, got {dim!r}")
    if int(num_diagonals) != num_diagonals or num_diagonals < 1:
        raise ValueError(f"diagonal_mask: num_diagonals must be a positive integer, got {num_diagonals!r}")
    index = torch.arange(int(dim))
    return ((index[:, None] - index[None, :]).abs() <= int(num_diagonals) // 2).float()


def event_rate(x: torch.Tensor) -> float:
    """Fraction of non-zero entries (events) of ``x``.

    When ``x`` has more than one time step (last axis), step 0 is left out: it holds the
    initialisation events of a sigma-delta layer, not the steady-state traffic.

    Parameters
    ----------
    x : torch.Tensor
        Activations, time last.

    Returns
    -------
    float
        Mean of ``x != 0`` over the counted entries (0.0 for an empty tensor).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"event_rate: expected a torch.Tensor, got {type(x).__name__}")
    counted = x if x.dim() == 0 or x.shape[-1] == 1 else x[..., 1:]
    if counted.numel() == 0:
        return 0.0
    return (counted != 0).float().mean().item()
