"""Bootstrap modes and the scheduler that switches a network between them (lava-dl's
``bootstrap.routine``).

Differences from lava-dl:

* Every iteration over a :class:`LayerMode` starts again at the first layer (lava-dl's kept
  counting, so a second pass over the same object ran every layer in the base mode).
* ``str(LayerMode)`` separates the crossover from the mode (``"Mode: ANN, crossover at: 2"``).
"""

from __future__ import annotations

import typing as ty
from enum import Enum

from lava_dl.slayer.utils.stats import LearningStat


class Mode(Enum):
    """How a bootstrap block runs.

    ``SNN``: spiking; ``ANN``: the fitted piecewise-linear activation of the mean synaptic input;
    ``SAMPLE``: spiking, recording (synaptic input rate, spike rate) points; ``FIT``: fit the
    activation to the recorded points, then run as ``ANN``.
    """

    SNN = 0
    ANN = 1
    SAMPLE = 2
    FIT = 3


class LayerMode:
    """The modes of a network's blocks, in order: iterating gives one :class:`Mode` per block.

    Parameters
    ----------
    crossover : int
        Number of leading blocks that run as ``SNN`` whatever the base mode (hybrid training).
    base_mode : Mode
        Mode of the other blocks; ``SAMPLE`` applies to every block.

    Examples
    --------
    >>> [m.name for _, m in zip(range(3), LayerMode(1, Mode.ANN))]
    ['SNN', 'ANN', 'ANN']
    """

    def __init__(self, crossover: int, base_mode: Mode) -> None:
        self.crossover = int(crossover)
        self.base_mode = Mode(base_mode)

    def __str__(self) -> str:
        text = f"Mode: {self.base_mode.name}"
        return text + (f", crossover at: {self.crossover}" if self.crossover else "")

    def __iter__(self) -> ty.Iterator[Mode]:
        layer = 0
        while True:
            if self.base_mode is Mode.SAMPLE:
                yield Mode.SAMPLE
            elif layer < self.crossover:
                yield Mode.SNN
            else:
                yield self.base_mode
            layer += 1


class Scheduler:
    """Chooses the mode of every training and evaluation iteration.

    In a training epoch that is a multiple of ``sample_period`` the first ``num_sample_iter``
    iterations sample the SNN, the next one fits the activations, the rest train the ANN; other
    training epochs train the ANN only. Evaluation runs the SNN in those epochs and the ANN in the
    others. Each epoch listed in ``crossover_epochs`` moves one more leading block to SNN mode for
    good (counted at the epoch's first training iteration).

    Parameters
    ----------
    num_sample_iter : int
        Sampling iterations at the start of a sampling epoch.
    sample_period : int
        Epochs between sampling epochs.
    crossover_epochs : sequence of int, optional
        Epochs at which the crossover advances by one block.

    Attributes
    ----------
    crossover : int
        Leading blocks that run as SNN.
    snn_stat : lava_dl.slayer.utils.LearningStat
        Loss and accuracy of the SNN evaluations (see :meth:`sync_snn_stat`).
    """

    def __init__(self, num_sample_iter: int = 10, sample_period: int = 10,
                 crossover_epochs: ty.Sequence[int] | None = None) -> None:
        if int(sample_period) < 1:
            raise ValueError(f"Scheduler: sample_period must be a positive number of epochs, "
                             f"got {sample_period}")
        if int(num_sample_iter) < 0:
            raise ValueError(f"Scheduler: num_sample_iter must be >= 0, got {num_sample_iter}")
        self.num_sample_iter = int(num_sample_iter)
        self.sample_period = int(sample_period)
        self.crossover_epochs = crossover_epochs
        self.crossover = 0
        self.snn_stat = LearningStat()

    def mode(self, epoch: int, iteration: int, train: bool = True) -> LayerMode:
        """The blocks' modes in training (``train=True``) or evaluation iteration ``iteration`` of
        ``epoch``."""
        sampling_epoch = epoch % self.sample_period == 0
        if not train:
            return LayerMode(self.crossover, Mode.SNN if sampling_epoch else Mode.ANN)
        if self.crossover_epochs is not None and epoch in self.crossover_epochs and iteration == 0:
            self.crossover += 1
        if sampling_epoch and iteration < self.num_sample_iter:
            return LayerMode(self.crossover, Mode.SAMPLE)
        if sampling_epoch and iteration == self.num_sample_iter:
            return LayerMode(self.crossover, Mode.FIT)
        return LayerMode(self.crossover, Mode.ANN)

    def sync_snn_stat(self, stat: LearningStat) -> None:
        """Copy the running sums of ``stat`` (an SNN evaluation's) into :attr:`snn_stat`."""
        self.snn_stat.num_samples = stat.num_samples
        self.snn_stat.loss_sum = stat.loss_sum
        self.snn_stat.correct_samples = stat.correct_samples

    def update_snn_stat(self) -> None:
        """Log :attr:`snn_stat`'s epoch (loss, accuracy, best) and reset its sums."""
        self.snn_stat.update()
        self.snn_stat.reset()
