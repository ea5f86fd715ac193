"""Neuron normalisation that deploys exactly (as a per-channel bias)."""

from __future__ import annotations

import torch
from torch import nn

from lava_dl.slayer._eager import eager


class MeanOnlyBatchNorm(nn.Module):
    """Subtract the (quantized) per-channel mean; deployed as the neuron bias.

    Parameters
    ----------
    num_features : int, optional
        Number of channels (axis 1). Neurons pass it when their shape is known;
        without it the running mean is sized at the first call.
    momentum : float
        Running-mean update factor.
    pre_hook_fx : callable, optional
        Quantizer applied to the mean (neurons install their 8-bit quantizer so the
        subtracted mean lies on the weight grid).
    """

    def __init__(self, num_features: int | None = None, momentum: float = 0.1, pre_hook_fx=None):
        super().__init__()
        self.momentum = float(momentum)
        self.pre_hook_fx = pre_hook_fx
        self.num_features = num_features
        self.register_buffer("running_mean", torch.zeros(num_features if num_features else 0))

    def reset_parameters(self) -> None:
        """Zero the running mean (in place; its size is kept)."""
        self.running_mean.zero_()

    def _quantized(self, mean: torch.Tensor, descale: bool = False) -> torch.Tensor:
        if self.pre_hook_fx is None:
            return mean
        if descale:
            return self.pre_hook_fx(mean, descale=True)
        return self.pre_hook_fx(mean)

    @eager
    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        channels = inp.shape[1]
        if self.running_mean.numel() == 0:
            self.running_mean = torch.zeros(channels, device=inp.device)
            self.num_features = channels
        if self.running_mean.numel() != channels:
            raise ValueError(f"MeanOnlyBatchNorm has {self.running_mean.numel()} features, got input "
                             f"with {channels} channels")
        if self.training:
            dims = [d for d in range(inp.dim()) if d != 1]
            mean = inp.mean(dim=dims)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
        else:
            mean = self.running_mean
        view = [1, channels] + [1] * (inp.dim() - 2)
        return inp - self._quantized(mean).reshape(view)

    @property
    def bias(self) -> torch.Tensor:
        """Deployed integer bias ``-q(running_mean) * scale`` (one per channel)."""
        return -self._quantized(self.running_mean, descale=True)


class WgtScaleBatchNorm(nn.Module):
    """Batch norm that divides by a power of two: ``(x - q(mean)) / 2**e`` (lava-dl's).

    ``mean`` is per channel (axis 1); the variance is one value over all elements;
    ``e = clamp(ceil(log2(sqrt(var + eps))), -weight_exp_bits, weight_exp_bits)``, so that
    hardware could scale by a shift of the weight exponent. Training uses the batch's statistics
    and updates the running ones with ``momentum`` (the variance's correction is lava-dl's
    ``n / (n + 1)``, ``n`` the elements per channel); evaluation uses the running ones.

    Deployment: the mean deploys as the neuron bias (:attr:`bias`), but the hdf5 format has no
    place for the scale (lava-dl wrote ``neuron/weight_exp``, which its netx ignored, so its
    deployed network ran unscaled); the blocks refuse to export a neuron whose scale is not 1
    (``ExportError``) rather than deploy a different network.

    Parameters
    ----------
    num_features : int, optional
        Number of channels; without it the running mean is sized at the first call.
    momentum : float
        Running-statistics update factor.
    weight_exp_bits : int
        Largest exponent magnitude of the scale.
    eps : float
        Added to the variance.
    pre_hook_fx : callable, optional
        Quantizer applied to the mean (neurons install their 8-bit quantizer).
    """

    def __init__(self, num_features: int | None = None, momentum: float = 0.1, weight_exp_bits: int = 3,
                 eps: float = 1e-5, pre_hook_fx=None):
        super().__init__()
        self.num_features = num_features
        self.momentum = float(momentum)
        self.weight_exp_bits = int(weight_exp_bits)
        self.eps = float(eps)
        self.pre_hook_fx = pre_hook_fx
        self.register_buffer("running_mean", torch.zeros(num_features if num_features else 1))
        self.register_buffer("running_var", torch.zeros(1))
        #: Whether training updates the running statistics.
        self.update = True

    def reset_parameters(self) -> None:
        """Zero the running statistics."""
        self.running_mean.zero_()
        self.running_var.zero_()

    def _quantized(self, mean: torch.Tensor, descale: bool = False) -> torch.Tensor:
        if self.pre_hook_fx is None:
            return mean
        return self.pre_hook_fx(mean, descale=True) if descale else self.pre_hook_fx(mean)

    def _exponent(self, var: torch.Tensor) -> torch.Tensor:
        return torch.ceil(torch.log2(torch.sqrt(var + self.eps)))

    def std(self, var: torch.Tensor) -> torch.Tensor:
        """The power of two the input is divided by for the variance ``var``."""
        return torch.pow(2.0, self._exponent(var).clamp(-self.weight_exp_bits, self.weight_exp_bits))

    @property
    def bias(self) -> torch.Tensor:
        """Deployed integer bias ``-q(running_mean) * scale`` (one per channel)."""
        return -self._quantized(self.running_mean, descale=True)

    @property
    def weight_exp(self) -> torch.Tensor:
        """``ceil(log2(sqrt(running_var + eps)))``, unclamped, as lava-dl exported it."""
        return self._exponent(self.running_var)

    @eager
    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        channels = inp.shape[1]
        if self.num_features is None:
            self.num_features = channels
            if self.running_mean.numel() != channels:
                self.running_mean = torch.zeros(channels, device=inp.device)
        if self.running_mean.numel() != channels:
            raise ValueError(f"WgtScaleBatchNorm has {self.running_mean.numel()} features, got input with "
                             f"{channels} channels")
        if self.training and self.update:
            mean = inp.reshape(inp.shape[0], channels, -1).mean(dim=(0, 2))
            var = inp.var(unbiased=False).reshape(1)
            n = inp.numel() / channels
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * n / (n + 1))
        else:
            mean, var = self.running_mean, self.running_var
        view = [1, channels] + [1] * (inp.dim() - 2)
        return (inp - self._quantized(mean).reshape(view)) / self.std(var).reshape([1] * inp.dim())
