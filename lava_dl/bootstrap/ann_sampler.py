"""The ANN activation of a bootstrap block, fitted to its SNN's rates (lava-dl's
``bootstrap.ann_sampler``).

:class:`AnnSampler` collects points (mean synaptic input ``z``, spike rate ``a``) per neuron and
sample while the block runs as an SNN, and fits to them a piecewise-linear, non-decreasing
activation: zero below the first center, linear between centers, saturating at the top rate.

Differences from lava-dl (fixes):

* The activation before any fit, a fit without points, and a fit whose centers share an input
  rate (an undefined slope) raise ``RuntimeError`` saying so (lava-dl failed with a ``TypeError``
  or a ``ValueError`` from numpy, or fitted NaN slopes that trained on silently).
* ``plot`` draws on its own matplotlib figure (no pyplot state) and returns it.
"""

from __future__ import annotations

import typing as ty

import numpy as np
import torch

from lava_dl.slayer._eager import eager


class AnnSampler(torch.nn.Module):
    """Sampled (input rate, spike rate) points of a block and the activation fitted to them.

    Parameters
    ----------
    num_centers : int
        Centers of the piecewise-linear fit, one per band of spike rates.
    sample_range : (float, float)
        The bands split ``[low, high] * max_rate`` evenly; ``max_rate`` is the mean of the rates
        above ``high`` times the largest rate (at least 0.8).
    eps : float
        Added to the activation's derivative, so that no gradient is exactly zero.

    Attributes
    ----------
    z, a : numpy.ndarray
        The sampled mean synaptic inputs and spike rates.
    centers : numpy.ndarray or None
        ``(k, 2)`` corners ``(z, a)`` of the fit, from the zero crossing to the saturation
        point; ``None`` before the first :meth:`fit`.
    slopes : numpy.ndarray
        Slope of each of the ``k - 1`` segments.
    max : float
        Saturation rate.
    scale : float
        ``z / a`` at the saturation point: the activation's derivative is multiplied by it in
        the backward pass (a gradient of the order of 1 per unit of rate).
    alpha : float
        Weight of new points against the previous fit's centers when refitting.
    """

    def __init__(self, num_centers: int = 5, sample_range: ty.Sequence[float] = (0.1, 0.9),
                 eps: float = 1e-5) -> None:
        super().__init__()
        if int(num_centers) < 1:
            raise ValueError(f"AnnSampler: num_centers must be >= 1, got {num_centers}")
        low, high = (float(v) for v in sample_range)
        if not 0 <= low < high <= 1:
            raise ValueError(f"AnnSampler: sample_range must be (low, high) with 0 <= low < high <= 1, "
                             f"got {tuple(sample_range)}")
        self.z = np.array([])
        self.a = np.array([])
        self.slopes: np.ndarray | float = 1
        self.eps = float(eps)
        self.max = 1.0
        self.centers: np.ndarray | None = None
        self.num_centers = int(num_centers)
        self.sample_range = [low, high]
        self.scale = 1.0
        self.alpha = 0.1

    def append(self, a: torch.Tensor, z: torch.Tensor) -> None:
        """Add one point per neuron and sample: the time means of the spikes ``a`` and of the
        synaptic input ``z`` (both ``N, C, (H, W,) T``)."""
        if a.shape != z.shape:
            raise ValueError(f"AnnSampler.append: spikes {tuple(a.shape)} and synaptic input "
                             f"{tuple(z.shape)} "
                             "must have the same shape")
        self.a = np.append(self.a, a.detach().float().mean(dim=-1).cpu().numpy().ravel())
        self.z = np.append(self.z, z.detach().float().mean(dim=-1).cpu().numpy().ravel())

    @eager
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """The fitted activation of the synaptic input ``z`` (any shape)."""
        if self.centers is None:
            raise RuntimeError("AnnSampler: the activation is not fitted yet; run the block in Mode.SAMPLE "
                               "and then Mode.FIT (bootstrap.routine.Scheduler does) before Mode.ANN")
        return _PiecewiseLinear.apply(z, self.centers, self.slopes, self.max, self.scale, self.eps)

    def clear(self) -> None:
        """Forget every sampled point."""
        self.z = np.array([])
        self.a = np.array([])

    def soft_clear(self) -> None:
        """Forget a random half of the sampled points (numpy's global generator), keeping some history."""
        drop = np.random.permutation(len(self.z))[:len(self.z) // 2]
        self.z = np.delete(self.z, drop)
        self.a = np.delete(self.a, drop)

    def fit(self) -> None:
        """Fit the piecewise-linear activation to the sampled points.

        The spike rates are split into ``num_centers`` bands; a band's center is the median
        ``(z, a)`` of its points, blended with the previous fit's centers in the band (weight
        ``alpha`` for the new points) or, without new points, the previous centers' mean. The
        fit runs from the zero crossing of the first segment's extension through the centers to
        the saturation point, where the last segment's extension reaches :attr:`max`.
        """
        if self.a.size == 0:
            raise RuntimeError("AnnSampler.fit: no sampled points; run the block in Mode.SAMPLE first")
        low, high = self.sample_range
        saturated = self.a[self.a > high * self.a.max()]
        self.max = max(float(np.mean(saturated)) if saturated.size else 0.0, 0.8)
        bands = np.linspace(low * self.max, high * self.max, self.num_centers + 1)
        centers = []
        for lo, hi in zip(bands[:-1], bands[1:]):
            new = (self.a > lo) & (self.a <= hi)
            old = None
            if self.centers is not None:
                in_band = (self.centers[:, 1] > lo) & (self.centers[:, 1] <= hi)
                old = self.centers[in_band] if in_band.any() else None
            if new.any() and old is not None:
                centers.append([self.alpha * np.median(self.z[new]) + (1 - self.alpha) * old[:, 0].mean(),
                                self.alpha * np.median(self.a[new]) + (1 - self.alpha) * old[:, 1].mean()])
            elif new.any():
                centers.append([np.median(self.z[new]), np.median(self.a[new])])
            elif old is not None:
                centers.append([old[:, 0].mean(), old[:, 1].mean()])
        if not centers:  # no band has points: unit slope is the best guess
            centers = [[0.0, 0.0], [1.0, 1.0]]
        elif len(centers) == 1:
            centers = [[0.0, 0.0], centers[0]]
        centers = np.array(centers, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            inner = np.diff(centers[:, 1]) / np.diff(centers[:, 0])
        if not np.all(np.isfinite(inner)) or inner[0] == 0 or inner[-1] == 0:
            # an infinite slope, or a flat end segment whose extension never reaches 0 or the top rate
            raise RuntimeError(f"AnnSampler.fit: the fitted centers {centers.tolist()} give an undefined "
                               "slope (two centers at the same input) or a flat end segment (at the same "
                               "rate); sample more points or use fewer num_centers")
        slopes = np.abs(np.concatenate([inner[:1], inner, inner[-1:]]))
        first, last = centers[0], centers[-1]
        self.centers = np.vstack([[first[0] - first[1] / slopes[0], 0.0], centers,
                                  [last[0] + (self.max - last[1]) / slopes[-1], self.max]])
        self.slopes = slopes
        self.scale = float(self.centers[-1, 0] / self.centers[-1, 1])

    def plot(self, figsize: tuple[float, float] | None = None):
        """Plot the sampled points, the fitted activation and its centers.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib.figure import Figure

        if self.centers is None or self.z.size == 0:
            raise RuntimeError("AnnSampler.plot: nothing to plot; sample points and fit them first")
        figure = Figure(figsize=figsize)
        axes = figure.add_subplot()
        z = np.linspace(self.z.min(), self.z.max(), 1000)
        axes.plot(self.z, self.a, ".", alpha=0.05, label="data")
        axes.plot(z, self.forward(torch.from_numpy(z).float()).numpy(), label="slope fit")
        axes.plot(self.centers[:, 0], self.centers[:, 1], "o")
        axes.set_xlabel("mean synaptic input z")
        axes.set_ylabel("spike rate a")
        axes.legend()
        return figure


class _PiecewiseLinear(torch.autograd.Function):
    """``a(z)``: segment ``i`` (``zc[i] < z <= zc[i + 1]``) is ``ac[i] + slopes[i] (z - zc[i])``, a later
    segment winning where segments overlap (the centers need not be sorted by ``z``: a refit may
    reorder them), 0 outside every segment, plus ``top`` beyond the last center. Derivative
    ``slope * scale + eps`` (``eps`` alone outside the segments)."""

    @staticmethod
    def forward(ctx, z, centers, slopes, top, scale, eps):
        zc = torch.as_tensor(centers[:, 0], dtype=z.dtype, device=z.device)
        ac = torch.as_tensor(centers[:, 1], dtype=z.dtype, device=z.device)
        k = torch.as_tensor(slopes, dtype=z.dtype, device=z.device)
        a = torch.zeros_like(z)
        slope = torch.zeros_like(z)
        for i in range(k.numel()):
            inside = (z > zc[i]) & (z <= zc[i + 1])
            a = torch.where(inside, ac[i] + k[i] * (z - zc[i]), a)
            slope = torch.where(inside, k[i], slope)
        a = torch.where(z > zc[-1], top + a, a)
        ctx.save_for_backward(slope)
        ctx.scale, ctx.eps = scale, eps
        return a

    @staticmethod
    def backward(ctx, grad):
        (slope,) = ctx.saved_tensors
        return grad * (slope * ctx.scale + ctx.eps), None, None, None, None, None
