"""Neuron normalisation that deploys exactly (as a per-channel bias)."""

from __future__ import annotations

import torch
from torch import nn


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

    def _quantized(self, mean: torch.Tensor, descale: bool = False) -> torch.Tensor:
        if self.pre_hook_fx is None:
            return mean
        if descale:
            return self.pre_hook_fx(mean, descale=True)
        return self.pre_hook_fx(mean)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        if self.running_mean.numel() == 0:
            self.running_mean = torch.zeros(channels, device=x.device)
            self.num_features = channels
        if self.running_mean.numel() != channels:
            raise ValueError(f"MeanOnlyBatchNorm has {self.running_mean.numel()} features, got input "
                             f"with {channels} channels")
        if self.training:
            dims = [d for d in range(x.dim()) if d != 1]
            mean = x.mean(dim=dims)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
        else:
            mean = self.running_mean
        view = [1, channels] + [1] * (x.dim() - 2)
        return x - self._quantized(mean).reshape(view)

    @property
    def bias(self) -> torch.Tensor:
        """Deployed integer bias ``-q(running_mean) * scale`` (one per channel)."""
        return -self._quantized(self.running_mean, descale=True)
