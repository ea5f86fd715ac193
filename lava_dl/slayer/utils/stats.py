"""Loss and accuracy bookkeeping over epochs (lava-dl's ``slayer.utils.stats``).

:class:`LearningStats` holds a :class:`LearningStat` for training, validation and
testing. During an epoch :class:`~lava_dl.slayer.utils.Assistant` (or the user)
accumulates ``loss_sum``, ``correct_samples`` and ``num_samples``; ``update()`` at the
end of the epoch appends the epoch's loss and accuracy to the logs and resets the sums.

Differences from lava-dl (fixes):

* ``LearningStats.load`` reads back what ``save`` wrote (lava-dl's did nothing).
* ``save`` writes every epoch of every logged phase, ``nan`` for an epoch without a value
  (lava-dl dropped those, shifting the columns), with all the digits of the value (lava-dl
  wrote 6 decimals, so a loss below 5e-7 was saved as 0) and names the accuracy columns
  by the accuracy logs (lava-dl used the loss logs' presence).
* ``update`` on a phase that saw no samples this epoch logs ``None`` and leaves the best
  values alone (lava-dl raised ``TypeError`` comparing ``None`` with the best value once a
  phase had been used before).
* ``plot`` draws on its own matplotlib figures (no pyplot state), saves PNGs when given a
  ``path`` and returns the figures, which a notebook cell ending with the call shows inline
  (lava-dl drew into pyplot's figures 1 and 2; ``plt.savefig`` after ``plot`` does not see ours).
* ``str`` of a phase keeps lava-dl's spacing, and no longer fails for a best accuracy without a
  best loss (lava-dl returned ``None``).
* ``save``, ``load`` and ``plot`` take a ``path`` that is a file-name prefix, as lava-dl's
  (``'trained/'`` writes ``trained/loss.txt``), or an existing directory.
"""

from __future__ import annotations

import math
import os
import typing as ty

_PHASES = ("training", "validation", "testing")
_COLUMN_NAMES = {"training": "Train", "validation": "Valid", "testing": "Test"}


class LearningStat:
    """Loss and accuracy of one phase (training, validation or testing).

    Attributes
    ----------
    loss_sum : float
        Sum over the epoch's samples of the loss (an ``Assistant`` adds ``loss * batch``).
    correct_samples : int
        Correctly classified samples this epoch.
    num_samples : int
        Samples seen this epoch.
    min_loss : float or None
        Lowest epoch loss logged so far.
    max_accuracy : float or None
        Highest epoch accuracy logged so far.
    loss_log, accuracy_log : list of float or None
        One entry per :meth:`update` (``None``: no value that epoch).
    best_loss, best_accuracy : bool
        Whether the last :meth:`update` set a new ``min_loss`` / ``max_accuracy``.
    loss_str, loss_unit, accuracy_str, accuracy_unit : str
        Names and units used when printing, plotting and saving.
    """

    def __init__(self) -> None:
        self.loss_sum = 0.0
        self.correct_samples = 0
        self.num_samples = 0
        self.min_loss: float | None = None
        self.max_accuracy: float | None = None
        self.loss_log: list[float | None] = []
        self.accuracy_log: list[float | None] = []
        self.best_loss = False
        self.best_accuracy = False
        self.loss_str = "loss"
        self.loss_unit = ""
        self.accuracy_str = "accuracy"
        self.accuracy_unit = ""

    def reset(self) -> None:
        """Zero the epoch's sums (the logs and best values stay)."""
        self.loss_sum = 0.0
        self.correct_samples = 0
        self.num_samples = 0

    @property
    def loss(self) -> float | None:
        """Mean loss per sample this epoch (``None`` before any sample)."""
        return self.loss_sum / self.num_samples if self.num_samples > 0 else None

    @property
    def accuracy(self) -> float | None:
        """Fraction of correct samples this epoch (``None`` before any sample)."""
        return self.correct_samples / self.num_samples if self.num_samples > 0 else None

    @property
    def valid_loss_log(self) -> bool:
        """Whether the loss log holds at least one value."""
        return any(v is not None for v in self.loss_log)

    @property
    def valid_accuracy_log(self) -> bool:
        """Whether the accuracy log holds at least one value."""
        return any(v is not None for v in self.accuracy_log)

    def update(self) -> None:
        """Append this epoch's loss and accuracy to the logs and update the best values.

        Does not reset the sums (:meth:`LearningStats.update` does).
        """
        self._append(self.loss, self.accuracy)

    def _append(self, loss: float | None, accuracy: float | None) -> None:
        self.loss_log.append(loss)
        self.best_loss = loss is not None and (self.min_loss is None or loss < self.min_loss)
        if self.best_loss:
            self.min_loss = loss
        self.accuracy_log.append(accuracy)
        self.best_accuracy = accuracy is not None and (self.max_accuracy is None
                                                       or accuracy > self.max_accuracy)
        if self.best_accuracy:
            self.max_accuracy = accuracy

    def _restore(self, loss_log: list[float | None], accuracy_log: list[float | None]) -> None:
        """Replace the logs, replaying :meth:`update` over them (best values and flags included)."""
        self.loss_log, self.accuracy_log = [], []
        self.min_loss, self.max_accuracy = None, None
        self.best_loss = self.best_accuracy = False
        for loss, accuracy in zip(loss_log, accuracy_log):
            self._append(loss, accuracy)
        self.reset()

    def __str__(self) -> str:
        """``loss = ... (min = ...)    accuracy = ... (max = ...)`` with lava-dl's spacing (logs line up
        with lava-dl's); empty before any sample."""
        loss = self.loss
        if loss is None:
            return ""
        text = f"{self.loss_str} = {loss:11.5f}"
        accuracy = self.accuracy
        if accuracy is None:
            return text if self.min_loss is None else f"{text} (min = {self.min_loss:11.5f})"
        if self.min_loss is None:
            text += f"  {self.loss_unit}{' ' * 24}"
        else:
            text += f" (min = {self.min_loss:11.5f}) {self.loss_unit}    "
        text += f"{self.accuracy_str} = {accuracy:7.5f} "
        if self.max_accuracy is not None:
            text += f"(max = {self.max_accuracy:7.5f}) "
        return text + self.accuracy_unit


class Figures(tuple):
    """A tuple of matplotlib figures (``None`` entries skipped) that IPython displays as the figures."""

    def _ipython_display_(self) -> None:
        from IPython.display import display

        for figure in self:
            if figure is not None:
                display(figure)


class LearningStats:
    """Training, validation and testing statistics over epochs.

    Parameters
    ----------
    loss_str : str, default 'loss'
        Name of the loss (also the saved file's name, ``<loss_str>.txt``).
    loss_unit : str, default ''
        Unit printed after loss values.
    accuracy_str : str, default 'accuracy'
        Name of the accuracy (also the saved file's name, ``<accuracy_str>.txt``).
    accuracy_unit : str, default ''
        Unit printed after accuracy values.

    Attributes
    ----------
    training, validation, testing : LearningStat
        The three phases.
    lines_printed : int
        Lines written by the last :meth:`print` (overwritten by the next one).

    Examples
    --------
    >>> stats = LearningStats()
    >>> stats.training.loss_sum, stats.training.num_samples = 3.0, 2
    >>> stats.update()
    >>> stats.training.loss_log
    [1.5]
    """

    def __init__(self, loss_str: str = "loss", loss_unit: str = "", accuracy_str: str = "accuracy",
                 accuracy_unit: str = "") -> None:
        self.lines_printed = 0
        for phase in _PHASES:
            stat = LearningStat()
            stat.loss_str, stat.loss_unit = loss_str, loss_unit
            stat.accuracy_str, stat.accuracy_unit = accuracy_str, accuracy_unit
            setattr(self, phase, stat)

    def _stats(self) -> list[tuple[str, LearningStat]]:
        return [(phase, getattr(self, phase)) for phase in _PHASES]

    def update(self) -> None:
        """End the epoch: log every phase's loss and accuracy and reset their sums."""
        for _, stat in self._stats():
            stat.update()
            stat.reset()

    def new_line(self) -> None:
        """Make the next :meth:`print` start below the previous output instead of overwriting it."""
        self.lines_printed = 0

    def __str__(self) -> str:
        parts = [f"Train {self.training}"]
        if str(self.validation):
            parts.append(f"Valid {self.validation}")
        if str(self.testing):
            parts.append(f"Test  {self.testing}")
        return " | ".join(parts)

    def print(self, epoch: int, iter: int | None = None, time_elapsed: float | None = None,
              header: ty.Sequence[str] | None = None, dataloader=None) -> None:
        """Print the current statistics in place (over the previous :meth:`print`'s lines).

        Parameters
        ----------
        epoch : int
            Current epoch.
        iter : int, optional
            Iteration within the epoch.
        time_elapsed : float, optional
            Seconds elapsed (printed in ms).
        header : sequence of str, optional
            Lines printed above the statistics.
        dataloader : torch.utils.data.DataLoader, optional
            With ``iter``, the progress through its dataset is printed.
        """
        if self.lines_printed:
            print(f"\033[{self.lines_printed}A", end="")  # cursor up over the previous print
        lines = [str(h) for h in header] if header is not None else []
        status = f"Epoch {epoch:4d}"
        if dataloader is not None and iter is not None:
            total = len(dataloader.dataset)
            done = min(iter * (dataloader.batch_size or 1), total)
            status += f": {done:{len(str(total))}d}/{total} ({100.0 * iter / max(len(dataloader), 1):.0f}%)"
        elif iter is not None:
            status += f": i = {iter:5d}"
        if time_elapsed is not None:
            status += f", {time_elapsed * 1000:12.4f} ms elapsed"
        lines.append(status)
        lines.extend(str(self).split(" | "))
        for line in lines:
            print("\033[2K" + line)  # clear the line, then write it
        self.lines_printed = len(lines)

    def plot(self, figures: tuple[int, int] = (1, 2), figsize: tuple[float, float] | None = None,
             path: str | os.PathLike | None = None):
        """Plot the loss (log scale) and accuracy curves per epoch.

        Parameters
        ----------
        figures : tuple of int, default (1, 2)
            lava-dl's pyplot figure numbers; accepted for compatibility and unused (the
            figures are not pyplot figures).
        figsize : tuple of float, optional
            Width and height of each figure in inches.
        path : str or os.PathLike, optional
            Prefix (or existing directory) of the PNG files ``loss.png`` and
            ``accuracy.png``; ``None`` saves nothing.

        Returns
        -------
        Figures
            ``(loss_figure, accuracy_figure)`` as ``matplotlib.figure.Figure`` objects
            (``None`` for a curve without data), a tuple that a notebook cell shows as the
            figures themselves (where lava-dl's pyplot figures appeared inline).
        """
        del figures
        loss_figure = self._figure("loss", figsize)
        accuracy_figure = self._figure("accuracy", figsize)
        if path is not None:
            if loss_figure is not None:
                loss_figure.savefig(_file(path, "loss.png"))
            if accuracy_figure is not None:
                accuracy_figure.savefig(_file(path, "accuracy.png"))
        return Figures((loss_figure, accuracy_figure))

    def _figure(self, kind: str, figsize):
        curves = [(name, getattr(stat, f"{kind}_log")) for name, stat in
                  (("Training", self.training), ("Validation", self.validation), ("Testing", self.testing))
                  if getattr(stat, f"valid_{kind}_log")]
        if not curves:
            return None
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=figsize)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for name, log in curves:
            values = [math.nan if v is None else v for v in log]
            axes.plot(range(len(values)), values, label=name)
        label, unit = getattr(self.training, f"{kind}_str"), getattr(self.training, f"{kind}_unit")
        if kind == "loss" and all(v is None or v > 0 for _, log in curves for v in log):
            axes.set_yscale("log")
        axes.set_xlabel("Epoch")
        axes.set_ylabel(f"{label.capitalize()} {unit}".strip())
        axes.legend()
        return figure

    def save(self, path: str | os.PathLike = "") -> None:
        """Write the loss log to ``<path><loss_str>.txt`` and the accuracy log to
        ``<path><accuracy_str>.txt`` (if any phase logged an accuracy).

        One row per epoch, one column per phase that logged a value (header
        ``# Train Valid Test``), ``nan`` for an epoch without a value. The values are
        written with all their digits (:meth:`load` restores them exactly).

        Parameters
        ----------
        path : str or os.PathLike, default ''
            File-name prefix, as lava-dl (``'trained/'``), or an existing directory.
        """
        self._save_log(_file(path, self.training.loss_str + ".txt"), "loss")
        if any(stat.valid_accuracy_log for _, stat in self._stats()):
            self._save_log(_file(path, self.training.accuracy_str + ".txt"), "accuracy")

    def _save_log(self, filename: str, kind: str) -> None:
        columns = [(phase, getattr(stat, f"{kind}_log")) for phase, stat in self._stats()
                   if getattr(stat, f"valid_{kind}_log")]
        epochs = max((len(log) for _, log in columns), default=0)
        with open(filename, "w") as file:
            file.write("#" + "".join(f" {_COLUMN_NAMES[phase]:<24}" for phase, _ in columns).rstrip() + "\n")
            for epoch in range(epochs):
                row = [log[epoch] if epoch < len(log) else None for _, log in columns]
                file.write(" ".join(f"{'nan' if v is None else repr(float(v)):>24}" for v in row) + "\n")

    def load(self, path: str | os.PathLike = "") -> None:
        """Restore the logs written by :meth:`save` (lava-dl's files read too).

        The logs of the phases in the files are replaced (other phases get ``None`` for
        every epoch); ``min_loss``/``max_accuracy`` and the last epoch's
        ``best_loss``/``best_accuracy`` are recomputed, and the epoch sums reset, so
        training can continue where it stopped.

        Parameters
        ----------
        path : str or os.PathLike, default ''
            As for :meth:`save`.

        Raises
        ------
        FileNotFoundError
            No loss file at ``path``.
        ValueError
            A file that is not a stats file (bad header, rows of the wrong width, text
            that is not a number).
        """
        losses = _read_log(_file(path, self.training.loss_str + ".txt"))
        accuracy_file = _file(path, self.training.accuracy_str + ".txt")
        accuracies = _read_log(accuracy_file) if os.path.exists(accuracy_file) else {}
        lengths = {len(log) for log in (*losses.values(), *accuracies.values())}
        if len(lengths) > 1:
            raise ValueError(f"LearningStats.load: the loss and accuracy files at {os.fspath(path)!r} log "
                             f"different numbers of epochs ({sorted(lengths)})")
        epochs = lengths.pop() if lengths else 0
        for phase, stat in self._stats():
            stat._restore(losses.get(phase, [None] * epochs), accuracies.get(phase, [None] * epochs))


def _file(path: str | os.PathLike, name: str) -> str:
    """``path`` joined with ``name`` if it is a directory, else ``path`` as a prefix (lava-dl)."""
    path = os.fspath(path)
    if path and os.path.isdir(path) and not path.endswith(os.sep):
        return os.path.join(path, name)
    return path + name


def _read_log(filename: str) -> dict[str, list[float | None]]:
    """Columns of a stats file by phase: ``{'training': [...], ...}`` (``nan`` read as None)."""
    with open(filename) as file:
        lines = [line.strip() for line in file.read().splitlines()]
    if not lines or not lines[0].startswith("#"):
        raise ValueError(f"{filename}: not a LearningStats file (expected a '# Train Valid Test' header)")
    names = {name: phase for phase, name in _COLUMN_NAMES.items()}
    header = lines[0][1:].split()
    unknown = [h for h in header if h not in names]
    if unknown or len(set(header)) != len(header):
        raise ValueError(f"{filename}: unexpected header columns {header} "
                         f"(expected some of Train, Valid, Test)")
    phases = [names[h] for h in header]
    columns: dict[str, list[float | None]] = {phase: [] for phase in phases}
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        fields = line.split()
        if len(fields) != len(phases):
            raise ValueError(f"{filename}, line {number}: expected {len(phases)} values "
                             f"({' '.join(header)}), found {len(fields)}")
        for phase, field in zip(phases, fields):
            try:
                value = float(field)
            except ValueError:
                raise ValueError(f"{filename}, line {number}: {field!r} is not a number") from None
            columns[phase].append(None if math.isnan(value) else value)
    return columns
