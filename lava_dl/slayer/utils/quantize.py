"""Quantization (lava-dl's ``slayer.utils.quantize``): the definitions of :mod:`lava_dl.slayer.quantize`."""

from lava_dl.slayer.quantize import MODE, quantize, quantize_8bit, quantize_hook_fx

__all__ = ["MODE", "quantize", "quantize_8bit", "quantize_hook_fx"]
