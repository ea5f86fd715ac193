"""Complex synapses for the resonator neurons (lava-dl ``slayer.synapse.complex``).

A complex synapse is two independent real synapses of
:mod:`lava_dl.slayer.synapse` (``real`` and ``imag``) fed by the same real input;
``forward`` returns the ``(real, imag)`` pair that the RF/ADRF neurons take.
Deployed, ``real.weight`` and ``imag.weight`` are the hdf5 ``weight/real`` and
``weight/imag`` datasets, driving the neuron's ``a_real_in`` and ``a_imag_in`` ports.
"""

from __future__ import annotations

import typing as ty

import torch
from torch import nn

from lava_dl.slayer import synapse as _synapse
from lava_dl.slayer.synapse import IntOrPair, PreHook


class _ComplexSynapse(nn.Module):
    """Pair of real synapses sharing geometry and pre-hook."""

    real: _synapse.Dense | _synapse.Conv | _synapse.Pool | _synapse.ConvTranspose | _synapse.Unpool
    imag: _synapse.Dense | _synapse.Conv | _synapse.Pool | _synapse.ConvTranspose | _synapse.Unpool
    complex = True

    def _mirror(self) -> None:
        for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups"):
            if hasattr(self.real, name):  # Pool/Unpool have no channel attributes nor groups
                setattr(self, name, getattr(self.real, name))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(real(x), imag(x))`` for a real input (same layout as the real synapse)."""
        return self.real(x), self.imag(x)

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

    def effective_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(real, imag)`` weights as used by ``forward`` (after the pre-hook)."""
        return self.real.effective_weight(), self.imag.effective_weight()


class Dense(_ComplexSynapse):
    """Complex fully connected synapse (lava-dl ``slayer.synapse.complex.Dense``).

    Parameters
    ----------
    in_neurons : int or tuple of int
        Input size (see :class:`lava_dl.slayer.synapse.Dense`).
    out_neurons : int
        Output size.
    weight_scale : float, default 1
        Multiplies torch's default initial weights (both synapses).
    weight_norm : bool, default False
        Train both weights with weight normalisation.
    pre_hook_fx : callable, optional
        Weight quantizer applied to both weights at every forward.

    Attributes
    ----------
    real, imag : lava_dl.slayer.synapse.Dense
        Weights ``(out_neurons, c, y, x, 1)`` each.
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups
        Those of ``real``.
    """

    def __init__(self, in_neurons: int | ty.Sequence[int], out_neurons: int, weight_scale: float = 1,
                 weight_norm: bool = False, pre_hook_fx: PreHook = None) -> None:
        super().__init__()
        self.real = _synapse.Dense(in_neurons, out_neurons, weight_scale, weight_norm, pre_hook_fx)
        self.imag = _synapse.Dense(in_neurons, out_neurons, weight_scale, weight_norm, pre_hook_fx)
        self._mirror()


class Conv(_ComplexSynapse):
    """Complex convolution synapse (lava-dl ``slayer.synapse.complex.Conv``).

    Parameters
    ----------
    in_features, out_features : int
        Input and output channels.
    kernel_size, stride, padding, dilation : int or (int, int)
        Geometry in ``(H, W)`` order (see :class:`lava_dl.slayer.synapse.Conv`).
    groups : int, default 1
        Channel groups.
    weight_scale, weight_norm, pre_hook_fx
        As :class:`Dense`.

    Attributes
    ----------
    real, imag : lava_dl.slayer.synapse.Conv
        Weights ``(out, in / groups, kH, kW, 1)`` each.
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups
        Those of ``real``.
    """

    def __init__(self, in_features: int, out_features: int, kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: IntOrPair = 0, dilation: IntOrPair = 1, groups: int = 1, weight_scale: float = 1,
                 weight_norm: bool = False, pre_hook_fx: PreHook = None) -> None:
        super().__init__()
        args = (in_features, out_features, kernel_size, stride, padding, dilation, groups, weight_scale,
                weight_norm, pre_hook_fx)
        self.real = _synapse.Conv(*args)
        self.imag = _synapse.Conv(*args)
        self._mirror()

    def output_size(self, input_size: IntOrPair) -> tuple[int, int]:
        """Output ``(H, W)`` for an input ``(H, W)``."""
        return self.real.output_size(input_size)


class Pool(_ComplexSynapse):
    """Complex pooling synapse (lava-dl ``slayer.synapse.complex.Pool``).

    Parameters
    ----------
    kernel_size, stride, padding, dilation : int or (int, int)
        Geometry in ``(H, W)`` order; ``stride`` defaults to ``kernel_size`` (see
        :class:`lava_dl.slayer.synapse.Pool`).
    weight_scale, weight_norm, pre_hook_fx
        As :class:`Dense` (``weight_scale`` is the value of every kernel tap).

    Attributes
    ----------
    real, imag : lava_dl.slayer.synapse.Pool
        Fixed kernels ``(1, 1, kH, kW, 1)`` each.
    kernel_size, stride, padding, dilation
        Those of ``real``.
    """

    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None, padding: IntOrPair = 0,
                 dilation: IntOrPair = 1, weight_scale: float = 1, weight_norm: bool = False,
                 pre_hook_fx: PreHook = None) -> None:
        super().__init__()
        args = (kernel_size, stride, padding, dilation, weight_scale, weight_norm, pre_hook_fx)
        self.real = _synapse.Pool(*args)
        self.imag = _synapse.Pool(*args)
        self._mirror()

    def output_size(self, input_size: IntOrPair) -> tuple[int, int]:
        """Output ``(H, W)`` for an input ``(H, W)``."""
        return self.real.output_size(input_size)


class ConvTranspose(_ComplexSynapse):
    """Complex transposed convolution synapse (lava-dl ``slayer.synapse.complex.ConvTranspose``).

    Parameters
    ----------
    in_features, out_features : int
        Input and output channels.
    kernel_size, stride, padding, dilation : int or (int, int)
        Geometry in ``(H, W)`` order (see :class:`lava_dl.slayer.synapse.ConvTranspose`).
    groups : int, default 1
        Channel groups.
    weight_scale, weight_norm, pre_hook_fx
        As :class:`Dense`.

    Attributes
    ----------
    real, imag : lava_dl.slayer.synapse.ConvTranspose
        Weights ``(in, out / groups, kH, kW, 1)`` each.
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups
        Those of ``real``.
    """

    def __init__(self, in_features: int, out_features: int, kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: IntOrPair = 0, dilation: IntOrPair = 1, groups: int = 1, weight_scale: float = 1,
                 weight_norm: bool = False, pre_hook_fx: PreHook = None) -> None:
        super().__init__()
        args = (in_features, out_features, kernel_size, stride, padding, dilation, groups, weight_scale,
                weight_norm, pre_hook_fx)
        self.real = _synapse.ConvTranspose(*args)
        self.imag = _synapse.ConvTranspose(*args)
        self._mirror()

    def output_size(self, input_size: IntOrPair) -> tuple[int, int]:
        """Output ``(H, W)`` for an input ``(H, W)``."""
        return self.real.output_size(input_size)


class Unpool(_ComplexSynapse):
    """Complex unpooling synapse (lava-dl ``slayer.synapse.complex.Unpool``).

    Parameters
    ----------
    kernel_size, stride, padding, dilation : int or (int, int)
        Geometry in ``(H, W)`` order; ``stride`` defaults to ``kernel_size`` (see
        :class:`lava_dl.slayer.synapse.Unpool`).
    weight_scale, weight_norm, pre_hook_fx
        As :class:`Dense` (``weight_scale`` is the value of every kernel tap).

    Attributes
    ----------
    real, imag : lava_dl.slayer.synapse.Unpool
        Fixed kernels ``(1, 1, kH, kW, 1)`` each.
    kernel_size, stride, padding, dilation
        Those of ``real``.
    """

    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None, padding: IntOrPair = 0,
                 dilation: IntOrPair = 1, weight_scale: float = 1, weight_norm: bool = False,
                 pre_hook_fx: PreHook = None) -> None:
        super().__init__()
        args = (kernel_size, stride, padding, dilation, weight_scale, weight_norm, pre_hook_fx)
        self.real = _synapse.Unpool(*args)
        self.imag = _synapse.Unpool(*args)
        self._mirror()

    def output_size(self, input_size: IntOrPair) -> tuple[int, int]:
        """Output ``(H, W)`` for an input ``(H, W)``."""
        return self.real.output_size(input_size)
