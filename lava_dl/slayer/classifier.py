"""Classifiers reading a class out of output spike trains (lava-dl's ``slayer.classifier``).

Spike tensors are ``N, C, (H, W,) T``: batch first, time last; the dimensions between
are flattened into the classes. Graded spikes (any real values) are accepted, as in lava-dl.

Differences from lava-dl (fixes): an unknown confidence ``mode`` raises ``ValueError``
(lava-dl's ``Rate.confidence`` returned ``None``); ``MovingWindow.forward`` returns the
prediction (lava-dl's returned ``None``); inputs that are not tensors of at least
``(batch, time)`` raise a clear error; integer or boolean spike tensors are averaged as
floats (lava-dl's ``torch.mean`` raised on them); ``MovingWindow.predict`` flattens the
spatial dimensions into the classes like ``confidence`` does (lava-dl's took the argmax
over the channel axis only, returning ``N, H, W, T`` for a spatial output).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lava_dl.slayer.utils.filter import FIR

_CONFIDENCE_MODES = ("probability", "softmax", "logsoftmax")


def _check_spike(spike, where: str) -> torch.Tensor:
    """``spike`` as a float tensor of at least ``(batch, time)``; a clear error otherwise."""
    if not isinstance(spike, torch.Tensor):
        raise TypeError(f"{where}: expected a spike tensor N, C, (H, W,) T, got {type(spike).__name__}")
    if spike.dim() < 2:
        raise ValueError(f"{where}: expected a spike tensor with batch first and time last (at least 2-D), "
                         f"got shape {tuple(spike.shape)}")
    if spike.is_complex():
        raise TypeError(f"{where}: expected real-valued spikes, got dtype {spike.dtype}")
    return spike if spike.is_floating_point() else spike.float()


def _check_mode(mode: str, where: str) -> None:
    if mode not in _CONFIDENCE_MODES:
        raise ValueError(f"{where}: mode must be one of {_CONFIDENCE_MODES}, got {mode!r}")


def _confidence(rate: torch.Tensor, mode: str, eps: float) -> torch.Tensor:
    """Confidence over the classes (axis 1) of a rate."""
    if mode == "probability":
        return rate / (rate.sum(dim=1, keepdim=True) + eps)
    if mode == "softmax":
        return F.softmax(rate, dim=1)
    return F.log_softmax(rate, dim=1)


class Rate(torch.nn.Module):
    """Classify by the spike rate over the whole sample: the class with the most spikes wins.

    ``rate = mean_t spike``; ``confidence`` is ``rate / (sum(rate) + eps)`` (``'probability'``),
    ``softmax(rate)`` or ``log_softmax(rate)`` over the classes; ``predict`` is ``argmax(rate)``
    (the first class among ties).

    Calling a ``Rate()`` instance predicts. The methods are static, so
    ``Rate.predict`` can be given directly as an ``Assistant``'s classifier.

    Examples
    --------
    >>> spike = torch.zeros(1, 3, 4)
    >>> spike[0, 2, :3] = 1
    >>> Rate.predict(spike)
    tensor([2])
    """

    def forward(self, spike: torch.Tensor) -> torch.Tensor:
        """Predicted class per sample (see :meth:`predict`)."""
        return Rate.predict(spike)

    @staticmethod
    def rate(spike: torch.Tensor) -> torch.Tensor:
        """Mean over time (last axis) of ``spike``.

        Parameters
        ----------
        spike : torch.Tensor
            ``N, C, (H, W,) T`` spikes.

        Returns
        -------
        torch.Tensor
            ``N, C, (H, W)`` rates (spatial dimensions kept).
        """
        return torch.mean(_check_spike(spike, "Rate.rate"), dim=-1)

    @staticmethod
    def confidence(spike: torch.Tensor, mode: str = "probability", eps: float = 1e-6) -> torch.Tensor:
        """Confidence of each class from its spike rate.

        Parameters
        ----------
        spike : torch.Tensor
            ``N, C, (H, W,) T`` spikes.
        mode : {'probability', 'softmax', 'logsoftmax'}, default 'probability'
            ``rate / (sum(rate) + eps)``, ``softmax(rate)`` or ``log_softmax(rate)``.
        eps : float, default 1e-6
            Added to the rate sum in ``'probability'`` mode.

        Returns
        -------
        torch.Tensor
            ``N, K`` with ``K = C * H * W`` classes.
        """
        _check_mode(mode, "Rate.confidence")
        rate = Rate.rate(spike)
        return _confidence(rate.reshape(rate.shape[0], -1), mode, eps)

    @staticmethod
    def predict(spike: torch.Tensor) -> torch.Tensor:
        """Index of the class with the highest spike rate.

        Parameters
        ----------
        spike : torch.Tensor
            ``N, C, (H, W,) T`` spikes.

        Returns
        -------
        torch.Tensor
            ``N`` int64 class indices (into the flattened ``C, H, W`` classes).
        """
        rate = Rate.rate(spike)
        return torch.argmax(rate.reshape(rate.shape[0], -1), dim=1)


class MovingWindow(torch.nn.Module):
    """Classify at every time step by the spike rate over the last ``time_window`` steps.

    ``rate[t] = (1 / W) sum_{k=0}^{W-1} spike[t - k]`` (zero before the first step, so
    the first ``W - 1`` rates count a partial window); ``confidence`` and ``predict`` are
    :class:`Rate`'s applied at every step.

    Parameters
    ----------
    time_window : int
        Window length ``W`` in steps.
    mode : {'probability', 'softmax', 'logsoftmax'}, default 'probability'
        Default confidence mode.
    eps : float, default 1e-6
        Added to the rate sum in ``'probability'`` mode.

    Examples
    --------
    >>> classifier = MovingWindow(2)
    >>> spike = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]])
    >>> classifier(spike)
    tensor([[0, 0, 1]])
    """

    def __init__(self, time_window: int, mode: str = "probability", eps: float = 1e-6) -> None:
        super().__init__()
        if isinstance(time_window, bool) or int(time_window) != time_window or time_window < 1:
            raise ValueError(f"MovingWindow: time_window must be a positive integer, got {time_window!r}")
        _check_mode(mode, "MovingWindow")
        self.time_window = int(time_window)
        self.filter = FIR(fir_response=torch.ones(self.time_window) / self.time_window)
        self.mode = mode
        self.eps = eps

    def rate(self, spike: torch.Tensor) -> torch.Tensor:
        """Moving-window rate, same shape as ``spike`` (``N, C, (H, W,) T``)."""
        return self.filter(_check_spike(spike, "MovingWindow.rate"))

    def confidence(self, spike: torch.Tensor, mode: str | None = None) -> torch.Tensor:
        """Confidence of each class at every step.

        Parameters
        ----------
        spike : torch.Tensor
            ``N, C, (H, W,) T`` spikes.
        mode : str, optional
            As for :meth:`Rate.confidence`; ``None`` uses the object's ``mode``.

        Returns
        -------
        torch.Tensor
            ``N, K, T`` with ``K = C * H * W`` classes.
        """
        mode = self.mode if mode is None else mode
        _check_mode(mode, "MovingWindow.confidence")
        rate = self.rate(spike)
        return _confidence(rate.reshape(rate.shape[0], -1, rate.shape[-1]), mode, self.eps)

    def predict(self, spike: torch.Tensor) -> torch.Tensor:
        """Class with the highest moving-window rate at every step.

        Returns
        -------
        torch.Tensor
            ``N, T`` int64 class indices (into the flattened ``C, H, W`` classes).
        """
        rate = self.rate(spike)
        return torch.argmax(rate.reshape(rate.shape[0], -1, rate.shape[-1]), dim=1)

    def forward(self, spike: torch.Tensor) -> torch.Tensor:
        """Prediction at every step (see :meth:`predict`)."""
        return self.predict(spike)
