"""The bootstrap behaviour shared by every bootstrap block (lava-dl's ``bootstrap.block.base``).

:class:`AbstractBlock` is a mixin placed before a slayer block: the block keeps its parameters,
neuron, export and deployment, and its ``forward`` takes a ``mode``:

* ``Mode.SNN``: the slayer block (synapse, neuron, one-step latency);
* ``Mode.SAMPLE``: the same, also recording the points ``(mean z, spike rate)`` in :attr:`f`;
* ``Mode.ANN``: ``f(norm(z))`` (then dropout): the fitted activation of the synaptic input ``z``
  of whatever time steps the input has (one, in lava-dl's tutorial); no latency;
* ``Mode.FIT``: fit :attr:`f` (keeping a random half of the points), then ``Mode.ANN``.

Differences from lava-dl:

* ``delay_shift`` defaults to the slayer block's: lava-dl's bootstrap docstrings said False, but
  its blocks kept the slayer defaults, and its Dense and Conv blocks trained with True, as here.
* Learnable axonal delays (``delay=True``) raise ``ValueError``: lava-dl's bootstrap blocks
  created them, never applied them in any mode, and exported them.
"""

from __future__ import annotations

import torch

from lava_dl.bootstrap.ann_sampler import AnnSampler
from lava_dl.bootstrap.routine import Mode
from lava_dl.slayer._eager import eager


class AbstractBlock:
    """Mixin giving a slayer block the bootstrap modes (see the module)."""

    def _init_bootstrap(self) -> None:
        if self.delay is not None:
            raise ValueError(f"{type(self).__module__}.{type(self).__name__}: learnable axonal delays "
                             "(delay=True) are not supported by bootstrap blocks")
        #: The fitted ANN activation and its sampled points.
        self.f = AnnSampler()
        self.mode = Mode.SAMPLE

    def fit(self) -> None:
        """Fit the ANN activation to the sampled points, then forget a random half of them."""
        self.f.fit()
        self.f.soft_clear()

    def _synaptic_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the block's neuron receives for the input ``x``."""
        return self._neuron_input(self.synapse(x))

    def _forward_ann(self, x: torch.Tensor) -> torch.Tensor:
        z = self._synaptic_input(x)
        if self.neuron.norm is not None:
            z = self.neuron.norm(z)
        return self.neuron._apply_dropout(self.f(z))

    def _forward_snn(self, x: torch.Tensor, sample: bool) -> torch.Tensor:
        z = self._synaptic_input(x)
        spikes = self.neuron(z)
        if sample:
            self.f.append(spikes, z)
        return spikes

    @eager
    def forward(self, x: torch.Tensor, mode: Mode = Mode.ANN):
        """The block's output in ``mode`` (with ``count_log``, also the mean event rate)."""
        mode = Mode(mode)
        if mode is Mode.FIT:
            self.fit()
        if mode in (Mode.ANN, Mode.FIT):
            return self._log(self._forward_ann(x))
        return self._finish(self._forward_snn(x, sample=mode is Mode.SAMPLE))
