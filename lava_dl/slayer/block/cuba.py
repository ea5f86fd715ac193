"""CUBA-LIF blocks (the generic blocks of :mod:`lava_dl.slayer.block.base` bound to ``cuba.Neuron``)."""

from lava_dl.slayer.block import base as _base
from lava_dl.slayer.neuron import cuba as _cuba

Input = _base.bind(_base.Input, _cuba.Neuron, __name__)
Flatten = _base.bind(_base.Flatten, _cuba.Neuron, __name__)
Dense = _base.bind(_base.Dense, _cuba.Neuron, __name__)
Affine = _base.bind(_base.Affine, _cuba.Neuron, __name__)
Conv = _base.bind(_base.Conv, _cuba.Neuron, __name__)

__all__ = ["Input", "Flatten", "Dense", "Affine", "Conv"]
