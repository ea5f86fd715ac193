"""Bootstrap CUBA blocks (lava-dl's ``bootstrap.block.cuba``): the slayer CUBA blocks of
:mod:`lava_dl.slayer.block.cuba`, whose ``forward(x, mode)`` runs them as an SNN or as the ANN
fitted to it (:class:`lava_dl.bootstrap.block.base.AbstractBlock`). Arguments, parameters and
export are the slayer blocks'.

``Flatten`` ignores the mode. ``Affine`` returns its synaptic output in every mode, as lava-dl's
(its export is slayer's ``Affine``'s, a neuron that integrates the synaptic output).
"""

from __future__ import annotations

import torch

from lava_dl.bootstrap.block.base import AbstractBlock
from lava_dl.bootstrap.routine import Mode
from lava_dl.slayer._eager import eager
from lava_dl.slayer.block import cuba as _cuba

__all__ = ["Input", "Flatten", "Affine", "Dense", "Conv", "Mode"]

_NOTE = "\n\n    Bootstrap block: ``forward(x, mode=Mode.ANN)`` (see :mod:`lava_dl.bootstrap.block.base`)."


class Input(AbstractBlock, _cuba.Input):
    __doc__ = _cuba.Input.__doc__ + _NOTE

    def __init__(self, *args, **kwargs) -> None:
        _cuba.Input.__init__(self, *args, **kwargs)
        if self.neuron is None:
            raise ValueError("bootstrap.block.cuba.Input needs neuron_params: the block runs a neuron in "
                             "every mode")
        self._init_bootstrap()

    def _synaptic_input(self, x: torch.Tensor) -> torch.Tensor:
        self.shape = tuple(x.shape[1:-1])
        return self._drive(x)


class Flatten(_cuba.Flatten):
    __doc__ = _cuba.Flatten.__doc__ + "\n\n    Bootstrap block: ``forward(x, mode)`` ignores the mode."

    @eager
    def forward(self, x: torch.Tensor, mode: Mode = Mode.ANN):
        return _cuba.Flatten.forward(self, x)


class Affine(_cuba.Affine):
    __doc__ = (_cuba.Affine.__doc__ + "\n\n    Bootstrap block: ``forward(x, mode)`` returns the synaptic "
               "output in every mode (no neuron dynamics), as lava-dl's.")

    @eager
    def forward(self, x: torch.Tensor, mode: Mode = Mode.ANN):
        return self._log(self.synapse(x))

    def fit(self) -> None:
        """Nothing to fit: the block has no activation."""


class Dense(AbstractBlock, _cuba.Dense):
    __doc__ = _cuba.Dense.__doc__ + _NOTE

    def __init__(self, *args, **kwargs) -> None:
        _cuba.Dense.__init__(self, *args, **kwargs)
        self._init_bootstrap()


class Conv(AbstractBlock, _cuba.Conv):
    __doc__ = _cuba.Conv.__doc__ + _NOTE

    def __init__(self, *args, **kwargs) -> None:
        _cuba.Conv.__init__(self, *args, **kwargs)
        self._init_bootstrap()
