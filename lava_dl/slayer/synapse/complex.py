"""Complex synapses for the resonator neurons (lava-dl ``slayer.synapse.complex``).

A complex synapse is two independent real synapses of
:mod:`lava_dl.slayer.synapse.layer` (``real`` and ``imag``, same class and arguments)
fed by the same real input; ``forward`` returns the ``(real, imag)`` pair that the
RF/ADRF neurons take. Deployed, ``real.weight`` and ``imag.weight`` are the hdf5
``weight/real`` and ``weight/imag`` datasets, driving the neuron's ``a_real_in``
and ``a_imag_in`` ports.

Every class takes exactly the arguments of its real counterpart (its signature is
that class's) and mirrors its geometry attributes (``in_channels``,
``out_channels``, ``kernel_size``, ``stride``, ``padding``, ``dilation``,
``groups``, where the real class has them).
"""

from __future__ import annotations

import inspect
import math
import typing as ty

import torch
from torch import nn

from lava_dl.slayer._eager import eager
from lava_dl.slayer.synapse import layer as _synapse
from lava_dl.slayer.synapse.layer import IntOrPair, PreHook

_GEOMETRY = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups")


class _ComplexSynapse(nn.Module):
    """Pair of real synapses of class ``real_class`` sharing geometry and pre-hook."""

    real_class: ty.ClassVar[type]
    complex = True

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.__signature__ = inspect.signature(cls.real_class)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()
        self.real = self.real_class(*args, **kwargs)
        self.imag = self.real_class(*args, **kwargs)
        for name in _GEOMETRY:
            if hasattr(self.real, name):  # Pool/Unpool have no channel attributes nor groups
                setattr(self, name, getattr(self.real, name))

    @eager
    def forward(self, input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(real(input), imag(input))`` for a real input (same layout as the real synapse)."""
        return self.real(input), self.imag(input)

    def output_size(self, input_size: IntOrPair) -> tuple[int, int]:
        """Output ``(H, W)`` for an input ``(H, W)`` (convolution-like synapses)."""
        return self.real.output_size(input_size)

    @property
    def pre_hook_fx(self) -> PreHook:
        """Weight pre-hook (quantizer) shared by both synapses."""
        if self.real.pre_hook_fx != self.imag.pre_hook_fx:
            raise RuntimeError("the real and imaginary synapses have different pre_hook_fx")
        return self.real.pre_hook_fx

    @pre_hook_fx.setter
    def pre_hook_fx(self, fx: PreHook) -> None:
        self.real.pre_hook_fx = fx
        self.imag.pre_hook_fx = fx

    @property
    def weight_norm(self) -> bool:
        """Whether both weights are weight-normalised."""
        return self.real.weight_norm and self.imag.weight_norm

    def enable_weight_norm(self) -> None:
        """Weight-normalise both weights."""
        self.real.enable_weight_norm()
        self.imag.enable_weight_norm()

    def disable_weight_norm(self) -> None:
        """Remove weight norm from both (before export)."""
        self.real.disable_weight_norm()
        self.imag.disable_weight_norm()

    @property
    def grad_norm(self) -> float:
        """Gradient flow monitor (lava-dl's): ``sqrt(real.grad_norm**2 + imag.grad_norm**2)``.

        Each part is the real synapse's :attr:`~lava_dl.slayer.synapse.layer.Dense.grad_norm`
        (norm of its weight's gradient over its number of entries, 0 before any gradient).

        Returns
        -------
        float
            0.0 while neither weight has a gradient.
        """
        return math.hypot(self.real.grad_norm, self.imag.grad_norm)

    @property
    def shape(self) -> torch.Size:
        """Shape of the synapse (lava-dl's): the shape of one of its two equal weights.

        Returns
        -------
        torch.Size
            ``real.shape`` (``imag`` has the same).
        """
        return self.real.shape

    def effective_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(real, imag)`` weights as used by ``forward`` (after the pre-hook)."""
        return self.real.effective_weight(), self.imag.effective_weight()


#: lava-dl's name for the base class of the complex synapses (``isinstance`` checks of lava-dl code).
ComplexLayer = _ComplexSynapse


class Dense(_ComplexSynapse):
    """Complex fully connected synapse (lava-dl ``slayer.synapse.complex.Dense``).

    Arguments of :class:`lava_dl.slayer.synapse.Dense`; ``real`` and ``imag`` have weights
    ``(out_neurons, c, y, x, 1)`` each.
    """

    real_class = _synapse.Dense


class Conv(_ComplexSynapse):
    """Complex convolution synapse (lava-dl ``slayer.synapse.complex.Conv``).

    Arguments of :class:`lava_dl.slayer.synapse.Conv`; weights ``(out, in / groups, kH, kW, 1)`` each.
    """

    real_class = _synapse.Conv


class Pool(_ComplexSynapse):
    """Complex pooling synapse (lava-dl ``slayer.synapse.complex.Pool``).

    Arguments of :class:`lava_dl.slayer.synapse.Pool`; fixed kernels ``(1, 1, kH, kW, 1)`` each.
    """

    real_class = _synapse.Pool


class ConvTranspose(_ComplexSynapse):
    """Complex transposed convolution synapse (lava-dl ``slayer.synapse.complex.ConvTranspose``).

    Arguments of :class:`lava_dl.slayer.synapse.ConvTranspose`; weights ``(in, out / groups, kH, kW, 1)``
    each.
    """

    real_class = _synapse.ConvTranspose


class Unpool(_ComplexSynapse):
    """Complex unpooling synapse (lava-dl ``slayer.synapse.complex.Unpool``).

    Arguments of :class:`lava_dl.slayer.synapse.Unpool`; fixed kernels ``(1, 1, kH, kW, 1)`` each.
    """

    real_class = _synapse.Unpool
