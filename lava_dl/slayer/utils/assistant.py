"""Training, validation and testing steps in one call each (lava-dl's ``slayer.utils.Assistant``)."""

from __future__ import annotations

import math
import typing as ty

import torch

from lava_dl.slayer.utils.stats import LearningStat, LearningStats

_PHASE_STATS = {"train": "training", "valid": "validation", "test": "testing"}


class Assistant:
    """One batch of training, validation or testing per call, with the statistics kept.

    ``train`` runs the network in training mode, evaluates ``error(output, target)``,
    adds ``lam`` times the network's own loss when ``lam`` is given, back-propagates and
    steps the optimizer. ``valid`` and ``test`` run in evaluation mode without gradients.
    All three add the batch to ``stats`` (loss times batch size, and the correctly
    classified samples when a ``classifier`` is given) and return the network's output.

    Parameters
    ----------
    net : torch.nn.Module
        The network. It returns ``output``, or a tuple ``(output, net_loss)`` when ``lam``
        is given, ``(output, count)`` with ``count_log`` or ``(output, net_loss, count)``
        with both.
    error : callable
        ``error(output, target) -> scalar tensor`` (e.g. a :mod:`lava_dl.slayer.loss` object).
    optimizer : torch.optim.Optimizer
        Optimizer of ``net``'s parameters.
    stats : LearningStats, optional
        Statistics to accumulate into (``None``: none kept).
    classifier : callable, optional
        ``classifier(output) -> prediction`` compared with the target to count correct
        samples (e.g. ``slayer.classifier.Rate.predict``); ``None``: regression, no accuracy.
    count_log : bool, default False
        The network also returns an event count, which the steps return as
        ``(output, count)``.
    lam : float, optional
        Weight of the network's own loss (e.g. a :class:`~lava_dl.slayer.loss.SparsityEnforcer`
        loss) added to the training loss; it is not part of the logged loss.
    progress : bool, default False
        Show a tqdm progress bar per phase and epoch (on stderr) with the running loss
        and accuracy. Off by default: lava-dl's Assistant printed nothing.

    Attributes
    ----------
    net, error, optimizer, stats, classifier, count_log, lam, progress
        As given.
    device : torch.device or None
        Device of the network's first parameter, found at the first step; inputs and
        targets are moved there (``None`` for a network without parameters: left as they are).

    Raises
    ------
    TypeError, ValueError
        (from the steps) when the network returns something other than what ``count_log``
        and ``lam`` announce, an output whose batch size differs from the input's, a
        non-scalar loss, or a classifier prediction shaped unlike the target.
    FloatingPointError
        (from the steps) when the loss or the network's loss is NaN or infinite: the
        optimizer is not stepped, so the weights stay as they were.

    Notes
    -----
    Differences from lava-dl: ``valid`` no longer reads a ``net.device`` attribute that
    plain ``torch.nn.Module`` networks do not have (lava-dl raised ``AttributeError``);
    malformed network outputs, non-finite losses and prediction/target shape mismatches
    (which lava-dl broadcast into a wrong accuracy) raise clear errors; the progress bar
    is new.

    Examples
    --------
    >>> assistant = Assistant(net, slayer.loss.SpikeRate(0.2, 0.03), optimizer, stats,
    ...                       classifier=slayer.classifier.Rate.predict)
    >>> for input, label in loader:
    ...     output = assistant.train(input, label)
    >>> stats.update()
    """

    def __init__(self, net: torch.nn.Module, error: ty.Callable, optimizer: torch.optim.Optimizer,
                 stats: LearningStats | None = None, classifier: ty.Callable | None = None,
                 count_log: bool = False, lam: float | None = None, progress: bool = False) -> None:
        if not callable(error):
            raise TypeError(f"Assistant: error must be callable as error(output, target), got "
                            f"{type(error).__name__}")
        if classifier is not None and not callable(classifier):
            raise TypeError(f"Assistant: classifier must be callable or None, got "
                            f"{type(classifier).__name__}")
        self.net = net
        self.error = error
        self.optimizer = optimizer
        self.stats = stats
        self.classifier = classifier
        self.count_log = count_log
        self.lam = lam
        self.progress = progress
        self.device: torch.device | None = None
        self._bars: dict[str, tuple[ty.Any, int | None]] = {}  # phase: (bar, epoch)

    def reduce_lr(self, factor: float = 10 / 3) -> None:
        """Divide the learning rate of every optimizer parameter group by ``factor`` (and say so).

        Parameters
        ----------
        factor : float, default 10/3
            Reduction factor (> 0).
        """
        if not factor > 0:
            raise ValueError(f"Assistant.reduce_lr: factor must be > 0, got {factor!r}")
        for group in self.optimizer.param_groups:
            print(f"\nLearning rate reduction from {group['lr']}")
            group["lr"] /= factor

    def train(self, input: torch.Tensor, target: torch.Tensor):
        """One training step on a batch.

        Parameters
        ----------
        input : torch.Tensor
            Network input, batch first.
        target : torch.Tensor
            Desired output or labels, as ``error`` expects them.

        Returns
        -------
        torch.Tensor or tuple
            The network output, or ``(output, count)`` with ``count_log``.
        """
        return self._step("train", input, target)

    def valid(self, input: torch.Tensor, target: torch.Tensor):
        """One validation step on a batch (evaluation mode, no gradients).

        Parameters and return value as for :meth:`train`.
        """
        return self._step("valid", input, target)

    def test(self, input: torch.Tensor, target: torch.Tensor):
        """One testing step on a batch (evaluation mode, no gradients).

        Parameters and return value as for :meth:`train`.
        """
        return self._step("test", input, target)

    def close_progress(self) -> None:
        """Close the progress bars (a new one starts at the next step)."""
        for bar, _ in self._bars.values():
            bar.close()
        self._bars.clear()

    # -- internals -------------------------------------------------------------------------

    def _step(self, phase: str, input: torch.Tensor, target: torch.Tensor):
        learn = phase == "train"
        self.net.train(learn)
        device = self._device()
        if device is not None:
            input = input.to(device)
            target = target.to(device) if isinstance(target, torch.Tensor) else target
        with torch.set_grad_enabled(learn):
            output, net_loss, count = self._unpack(phase, self.net(input), input)
            loss = self.error(output, target)
            _check_loss(phase, loss, "the loss error(output, target)")
            if learn and self.lam is not None:
                _check_loss(phase, net_loss, "the network's own loss (weighted by lam)")
        correct = self._correct(phase, output, target)
        stat = self._record(phase, loss, correct, input.shape[0])
        if learn:
            total = loss if self.lam is None else loss + self.lam * net_loss
            self.optimizer.zero_grad()
            total.backward()
            self.optimizer.step()
        if self.progress:
            self._show(phase, stat, loss, correct, input.shape[0])
        return output if count is None else (output, count)

    def _device(self) -> torch.device | None:
        if self.device is None:
            for parameter in self.net.parameters():
                self.device = parameter.device
                break
        return self.device

    def _unpack(self, phase: str, result, input: torch.Tensor):
        """Split the network's return value into ``(output, net_loss, count)``; check its form."""
        expected = ["output"] + (["net_loss"] if self.lam is not None else []) \
            + (["count"] if self.count_log else [])
        where = f"Assistant.{phase}"
        if len(expected) == 1:
            if isinstance(result, (tuple, list)):
                raise TypeError(f"{where}: the network returned a {type(result).__name__} of {len(result)} "
                                f"values, but with count_log=False and lam=None it must return the output "
                                f"tensor alone (set count_log=True and/or lam to use the extra values)")
            values = {"output": result}
        else:
            if not isinstance(result, (tuple, list)) or len(result) != len(expected):
                found = (f"a {type(result).__name__} of {len(result)} values"
                         if isinstance(result, (tuple, list)) else f"a single {type(result).__name__}")
                raise TypeError(f"{where}: with count_log={self.count_log} and lam={self.lam} the network "
                                f"must return ({', '.join(expected)}), got {found}")
            values = dict(zip(expected, result))
        output = values["output"]
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"{where}: the network output must be a torch.Tensor, got "
                            f"{type(output).__name__}")
        if output.dim() == 0 or output.shape[0] != input.shape[0]:
            raise ValueError(f"{where}: the network output has shape {tuple(output.shape)}, but its first "
                             f"(batch) dimension must match the input's ({input.shape[0]}, input shape "
                             f"{tuple(input.shape)})")
        return output, values.get("net_loss"), values.get("count")

    def _correct(self, phase: str, output: torch.Tensor, target) -> int | None:
        """Correctly classified samples of the batch (``None`` without classifier)."""
        if self.classifier is None:
            return None
        with torch.no_grad():
            prediction = self.classifier(output)
        if not isinstance(prediction, torch.Tensor) or not isinstance(target, torch.Tensor) \
                or prediction.shape != target.shape:
            shape, target_shape = _shape_or_type(prediction), _shape_or_type(target)
            raise ValueError(f"Assistant.{phase}: the classifier's prediction has shape {shape} but the "
                             f"target has shape {target_shape}; they must match to count correct samples")
        return int((prediction == target).sum().item())

    def _record(self, phase: str, loss: torch.Tensor, correct: int | None, batch: int) -> LearningStat | None:
        if self.stats is None:
            return None
        stat = getattr(self.stats, _PHASE_STATS[phase])
        stat.num_samples += batch
        stat.loss_sum += float(loss.detach()) * batch
        if correct is not None:
            stat.correct_samples += correct
        return stat

    def _show(self, phase: str, stat: LearningStat | None, loss: torch.Tensor, correct: int | None,
              batch: int) -> None:
        """Advance the phase's progress bar; a new bar starts with each epoch of ``stats``."""
        epoch = len(stat.loss_log) if stat is not None else None
        bar, bar_epoch = self._bars.get(phase, (None, None))
        if bar is not None and bar_epoch != epoch:
            bar.close()
            bar = None
        if bar is None:
            from tqdm import tqdm

            label = _PHASE_STATS[phase].capitalize()
            bar = tqdm(desc=label if epoch is None else f"{label} epoch {epoch}", unit="batch", leave=True)
            self._bars[phase] = (bar, epoch)
        if stat is not None:
            shown_loss, accuracy = stat.loss, stat.accuracy if correct is not None else None
        else:
            shown_loss = float(loss.detach())
            accuracy = correct / batch if correct is not None else None
        postfix = {"loss": f"{shown_loss:.5g}"}
        if accuracy is not None:
            postfix["accuracy"] = f"{accuracy:.4f}"
        bar.set_postfix(postfix, refresh=False)
        bar.update(1)


def _shape_or_type(value) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


def _check_loss(phase: str, loss, what: str) -> None:
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        found = f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"Assistant.{phase}: {what} must be a scalar tensor, got {found} "
                         f"(use a loss with reduction='sum' or 'mean')")
    value = float(loss.detach())
    if not math.isfinite(value):
        raise FloatingPointError(f"Assistant.{phase}: {what} is {value}; not stepping the optimizer "
                                 f"(check the network output and the target for NaN/inf values)")
