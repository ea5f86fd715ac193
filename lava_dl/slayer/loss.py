"""Losses of spike trains (lava-dl's ``slayer.loss``).

Outputs are spike tensors ``N, C, (H, W,) T`` (batch first, time last); the rate-based
losses flatten the dimensions between batch and time into the classes. Plain torch
losses work too. Every loss checks the shapes of what it is given and raises
``FloatingPointError`` when its value is NaN or infinite instead of letting training
step on it. Labels and targets may live on another device than the output (e.g. CPU labels
for a CUDA output): they are moved to the output's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lava_dl.slayer.classifier import MovingWindow, Rate
from lava_dl.slayer.utils.filter import FIR, conv

_REDUCTIONS = ("sum", "mean", "none")


def _check_reduction(reduction: str, where: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{where}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


def _check_output(output, where: str) -> torch.Tensor:
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"{where}: expected the output as a torch.Tensor, got {type(output).__name__}")
    if output.dim() < 2:
        raise ValueError(f"{where}: expected an output N, C, (H, W,) T with time last, "
                         f"got shape {tuple(output.shape)}")
    return output if output.is_floating_point() else output.float()


def _check_finite(loss: torch.Tensor, where: str, hint: str = "") -> torch.Tensor:
    bad = ~torch.isfinite(loss.detach())
    if bool(bad.any()):
        value = loss.detach().flatten()[bad.flatten()][0].item()
        raise FloatingPointError(f"{where}: the loss is {value}{hint}")
    return loss


def _labels(label, output: torch.Tensor, where: str, per_step: bool) -> torch.Tensor:
    """Integer class labels ``(N,)`` or, with ``per_step``, ``(N, T)`` (a ``(N,)`` label repeated)."""
    if not isinstance(label, torch.Tensor):
        raise TypeError(f"{where}: expected the labels as a torch.Tensor, got {type(label).__name__}")
    if label.is_floating_point() or label.is_complex() or label.dtype == torch.bool:
        raise TypeError(f"{where}: expected integer class labels, got dtype {label.dtype}")
    batch, classes, steps = output.shape[0], output.shape[1], output.shape[-1]
    allowed = [(batch,), (batch, steps)] if per_step else [(batch,)]
    if tuple(label.shape) not in allowed:
        expected = " or ".join(str(s) for s in allowed)
        raise ValueError(f"{where}: labels of shape {tuple(label.shape)} do not fit the output of shape "
                         f"{tuple(output.shape)}; expected {expected}"
                         + ("" if per_step else " (per-step labels need moving_window)"))
    if label.numel() and (int(label.min()) < 0 or int(label.max()) >= classes):
        raise ValueError(f"{where}: labels must lie in [0, {classes}) for an output with {classes} classes, "
                         f"got values in [{int(label.min())}, {int(label.max())}]")
    label = label.to(device=output.device, dtype=torch.long)
    if per_step and label.dim() == 1:
        label = label[:, None].expand(batch, steps)
    return label


class SpikeTime(torch.nn.Module):
    """Distance between output and target spike trains after a causal low-pass filter
    (van Rossum distance).

    ``L = reduce((h * s - h * s_hat)^2)`` over every element, with ``h`` the FIR filter
    ``exp(-k / time_constant)``, ``k = 0 .. length - 1``, convolved with itself
    ``filter_order - 1`` times (truncated to ``length``).

    Parameters
    ----------
    time_constant : float, default 5
        Time constant of the filter, in steps.
    length : int, default 100
        Length of the filter, in steps.
    filter_order : int, default 1
        Order of the filter (>= 1).
    reduction : {'sum', 'mean', 'none'}, default 'sum'
        Reduction of the squared errors.

    Notes
    -----
    Differences from lava-dl: output and target must have the same shape (lava-dl
    flattened both, so differently shaped tensors with equal sizes were compared element by
    element); the filter's gradient comes from autograd.

    Examples
    --------
    >>> loss = SpikeTime(time_constant=2, length=10)
    >>> loss(output, target)  # output, target: N, C, T spike trains
    """

    def __init__(self, time_constant: float = 5, length: int = 100, filter_order: int = 1,
                 reduction: str = "sum") -> None:
        super().__init__()
        if isinstance(filter_order, bool) or int(filter_order) != filter_order or filter_order < 1:
            raise ValueError(f"SpikeTime: filter_order must be a positive integer, got {filter_order!r}")
        self.filter = FIR(time_constant=time_constant, length=length)
        base = self.filter.filter.clone()
        response = base
        for _ in range(int(filter_order) - 1):
            response = conv(response, base)
        self.filter.filter = response
        self.reduction = _check_reduction(reduction, "SpikeTime")

    def forward(self, input: torch.Tensor, desired: torch.Tensor) -> torch.Tensor:
        """Loss between the output spikes ``input`` and the target spikes ``desired`` (same shape)."""
        input = _check_output(input, "SpikeTime")
        if not isinstance(desired, torch.Tensor) or desired.shape != input.shape:
            found = tuple(desired.shape) if isinstance(desired, torch.Tensor) else type(desired).__name__
            raise ValueError(f"SpikeTime: output shape {tuple(input.shape)} and target shape {found} differ; "
                             f"the target must be a spike train of the output's shape")
        # the filter is linear: filtering the difference once equals the difference of the filtered trains
        squared = self.filter(input - desired.to(device=input.device, dtype=input.dtype)) ** 2
        loss = squared.sum() if self.reduction == "sum" else squared.mean() if self.reduction == "mean" \
            else squared
        return _check_finite(loss, "SpikeTime", " (non-finite values in the output or the target)")


class SpikeRate(torch.nn.Module):
    """Squared error between output spike rates and target rates set by the labels.

    The target rate is ``true_rate`` for the labelled class and ``false_rate`` for the
    others; ``L = reduce((r - r_hat)^2)`` over samples and classes, with ``r`` the rate
    over the whole sample, or, with ``moving_window``, over samples, classes and steps with
    ``r(t)`` the moving-window rate (:class:`~lava_dl.slayer.classifier.MovingWindow`).

    Parameters
    ----------
    true_rate : float
        Target rate of the labelled class, in [0, 1].
    false_rate : float
        Target rate of the other classes, in [0, 1].
    moving_window : int, optional
        Window length; the labels are then ``(N, T)`` (one per step) or ``(N,)``
        (the same at every step).
    reduction : {'sum', 'mean', 'none'}, default 'sum'
        Reduction of the squared errors.

    Notes
    -----
    Differences from lava-dl: ``(N,)`` labels with ``moving_window`` work (lava-dl failed
    replicating them); labels are checked against the output (shape, integer type, range).

    Examples
    --------
    >>> loss = SpikeRate(true_rate=0.2, false_rate=0.03)
    >>> loss(output, label)  # output N, C, T; label N (int64)
    """

    def __init__(self, true_rate: float, false_rate: float, moving_window: int | None = None,
                 reduction: str = "sum") -> None:
        super().__init__()
        for name, value in (("true_rate", true_rate), ("false_rate", false_rate)):
            if not 0 <= value <= 1:
                raise ValueError(f"SpikeRate: {name} must lie in [0, 1], got {value!r}")
        self.true_rate = true_rate
        self.false_rate = false_rate
        self.reduction = _check_reduction(reduction, "SpikeRate")
        self.window = None if moving_window is None else MovingWindow(moving_window)

    def forward(self, input: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Loss of the output spikes ``input`` (``N, C, (H, W,) T``) for the class ``label``."""
        input = _check_output(input, "SpikeRate")
        input = input.reshape(input.shape[0], -1, input.shape[-1])
        label = _labels(label, input, "SpikeRate", per_step=self.window is not None)
        if self.window is None:
            rate = Rate.rate(input)
            one_hot = F.one_hot(label, num_classes=input.shape[1])
        else:
            rate = self.window.rate(input)
            one_hot = F.one_hot(label, num_classes=input.shape[1]).transpose(1, 2)  # N, C, T
        target = self.false_rate + (self.true_rate - self.false_rate) * one_hot.to(rate.dtype)
        loss = F.mse_loss(rate, target, reduction=self.reduction)
        return _check_finite(loss, "SpikeRate", " (non-finite values in the output)")


class SpikeMax(torch.nn.Module):
    """Negative log-likelihood of the labelled class, its probability read from spike rates.

    ``p = Rate.confidence(s, 'probability')`` (``r / (sum(r) + 1e-6)``) or
    ``softmax(r)``; ``L = reduce(-log p[label])`` over samples, or, with
    ``moving_window``, over samples and steps with moving-window rates.

    Parameters
    ----------
    moving_window : int, optional
        Window length; the labels are then ``(N, T)`` (one per step) or ``(N,)``
        (the same at every step).
    mode : {'probability', 'softmax', 'logsoftmax'}, default 'probability'
        How the rates become probabilities (``'logsoftmax'`` is ``'softmax'``: the loss takes the
        log-softmax of the rates either way, as lava-dl did for any mode but ``'probability'``).
    reduction : {'sum', 'mean', 'none'}, default 'sum'
        Reduction of the per-sample (per-step) losses.

    Raises
    ------
    FloatingPointError
        In ``'probability'`` mode, when the labelled class has no spikes (in its window):
        ``log(0)``. lava-dl returned ``inf`` and the next optimizer step filled the weights
        with NaN; use ``mode='softmax'`` or a rate loss until the network spikes.

    Notes
    -----
    Differences from lava-dl: in ``'probability'`` mode only the labelled class's
    probability goes through the logarithm (lava-dl took the log of every class's, so a
    single silent class, ``p = 0``, made every gradient NaN: ``0 / 0`` in the log's
    backward, although the loss itself was finite); any ``mode`` other than the three above
    raises (lava-dl treated every other string as ``'softmax'``; ``'logsoftmax'``, which lava-dl's
    NMNIST tutorial names, is kept); labels are checked against the output.
    """

    def __init__(self, moving_window: int | None = None, mode: str = "probability",
                 reduction: str = "sum") -> None:
        super().__init__()
        if mode not in ("probability", "softmax", "logsoftmax"):
            raise ValueError(f"SpikeMax: mode must be 'probability', 'softmax' or 'logsoftmax', got {mode!r}")
        self.window = None if moving_window is None else MovingWindow(moving_window)
        self.mode = mode
        self.reduction = _check_reduction(reduction, "SpikeMax")

    def forward(self, input: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Loss of the output spikes ``input`` (``N, C, (H, W,) T``) for the class ``label``."""
        input = _check_output(input, "SpikeMax")
        input = input.reshape(input.shape[0], -1, input.shape[-1])
        label = _labels(label, input, "SpikeMax", per_step=self.window is not None)
        if self.mode == "probability":
            probability = (Rate.confidence(input, "probability") if self.window is None
                           else self.window.confidence(input, "probability"))
            if self.window is not None:  # N, C, T -> (N T), C against the labels (N T)
                probability = probability.transpose(1, 2).reshape(-1, input.shape[1])
                label = label.reshape(-1)
            # log of the labelled class only: log of the whole vector gives 0/0 = NaN gradients
            # through every silent class (lava-dl's bug)
            nll = -torch.log(probability.gather(1, label[:, None])[:, 0])
            loss = nll.sum() if self.reduction == "sum" else nll.mean() if self.reduction == "mean" else nll
        else:
            log_p = (Rate.confidence(input, "logsoftmax") if self.window is None
                     else self.window.confidence(input, "logsoftmax"))
            if self.window is not None:
                log_p = log_p.transpose(1, 2).reshape(-1, input.shape[1])
                label = label.reshape(-1)
            loss = F.nll_loss(log_p, label, reduction=self.reduction)
        return _check_finite(loss, "SpikeMax", " (in 'probability' mode a labelled class without spikes "
                             "gives log(0); use mode='softmax' or a rate loss until the network spikes)"
                             if self.mode == "probability" else " (non-finite values in the output)")


class SpikeMoid(torch.nn.Module):
    """Binary cross-entropy of every class, its probability a sigmoid of the spike rate.

    ``p = sigmoid((r - theta) / alpha)``; ``L = reduce(-(y log p + (1 - y) log(1 - p)))``
    over samples and classes (``r``: rate over the whole sample) or, with
    ``moving_window``, over samples, classes and steps (``r(t)``: moving-window rate).
    The logarithms are clamped at -100 (``torch.nn.functional.binary_cross_entropy``).

    Parameters
    ----------
    moving_window : int, optional
        Window length; the targets are then ``(N, C, T)`` (per step) or ``(N, C)``
        (the same at every step).
    reduction : {'sum', 'mean', 'none'}, default 'sum'
        Reduction of the per-element losses.
    alpha : float, default 1
        Sigmoid temperature (> 0).
    theta : float, default 0
        Rate at which ``p = 0.5`` (lava-dl's docstring said 1; its code, followed here, 0).

    Notes
    -----
    The targets ``y`` are multi-hot: ``(N, C)`` values in [0, 1] (any number of
    classes true). Differences from lava-dl: targets are checked against the output
    (shape, values in [0, 1]); integer targets are accepted (as floats).
    """

    def __init__(self, moving_window: int | None = None, reduction: str = "sum", alpha: float = 1,
                 theta: float = 0) -> None:
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"SpikeMoid: alpha must be > 0, got {alpha!r}")
        self.window = None if moving_window is None else MovingWindow(moving_window)
        self.reduction = _check_reduction(reduction, "SpikeMoid")
        self.alpha = alpha
        self.theta = theta

    def forward(self, input: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Loss of the output spikes ``input`` (``N, C, (H, W,) T``) for the targets ``label``."""
        input = _check_output(input, "SpikeMoid")
        input = input.reshape(input.shape[0], -1, input.shape[-1])
        batch, classes, steps = input.shape
        if not isinstance(label, torch.Tensor):
            raise TypeError(f"SpikeMoid: expected the targets as a torch.Tensor, got {type(label).__name__}")
        allowed = [(batch, classes)] + ([(batch, classes, steps)] if self.window is not None else [])
        if tuple(label.shape) not in allowed:
            expected = " or ".join(str(s) for s in allowed)
            raise ValueError(f"SpikeMoid: targets of shape {tuple(label.shape)} do not fit the output of "
                             f"shape {tuple(input.shape)}; expected {expected}")
        label = label.to(device=input.device, dtype=input.dtype)
        if label.numel() and (float(label.min()) < 0 or float(label.max()) > 1):
            raise ValueError(f"SpikeMoid: targets must lie in [0, 1], got values in "
                             f"[{float(label.min())}, {float(label.max())}]")
        if self.window is None:
            probability = torch.sigmoid((Rate.rate(input) - self.theta) / self.alpha)
        else:
            if label.dim() == 2:
                label = label[..., None].expand(batch, classes, steps)
            probability = torch.sigmoid((self.window.rate(input) - self.theta) / self.alpha)
        loss = F.binary_cross_entropy(probability, label, reduction=self.reduction)
        return _check_finite(loss, "SpikeMoid", " (non-finite values in the output)")


class SparsityEnforcer:
    """Penalty on event rates above ``max_rate``, gathered layer by layer during a forward pass.

    Each :meth:`append` adds ``relu(mean(|x|) - max_rate)^2`` for one layer's activations
    ``x``; :attr:`loss` is ``lam`` times their sum. Call :meth:`clear` before each forward
    pass and return :attr:`loss` as the network's own loss (an ``Assistant`` with ``lam``
    adds it to the training loss).

    Parameters
    ----------
    max_rate : float, default 0.01
        Mean absolute activation above which the penalty starts.
    lam : float, default 1.0
        Weight of the penalty.

    Attributes
    ----------
    loss_list : list of torch.Tensor
        The penalties gathered since the last :meth:`clear`.
    """

    def __init__(self, max_rate: float = 0.01, lam: float = 1.0) -> None:
        if not math.isfinite(max_rate) or max_rate < 0:
            raise ValueError(f"SparsityEnforcer: max_rate must be a non-negative number, got {max_rate!r}")
        self.max_rate = max_rate
        self.lam = lam
        self.loss_list: list[torch.Tensor] = []

    def clear(self) -> None:
        """Forget the gathered penalties."""
        self.loss_list = []

    @property
    def loss(self) -> torch.Tensor:
        """``lam`` times the sum of the gathered penalties (a zero tensor when none)."""
        if not self.loss_list:
            return torch.zeros(())
        return self.lam * torch.stack([item.reshape(()) for item in self.loss_list]).sum()

    def append(self, x: torch.Tensor) -> None:
        """Gather the penalty of the activations ``x``.

        Parameters
        ----------
        x : torch.Tensor
            A layer's activations (any shape).
        """
        if not isinstance(x, torch.Tensor) or x.numel() == 0:
            raise ValueError("SparsityEnforcer.append: expected a non-empty torch.Tensor of activations")
        mean_rate = torch.mean(torch.abs(x if x.is_floating_point() else x.float()))
        self.loss_list.append(F.relu(mean_rate - self.max_rate) ** 2)
