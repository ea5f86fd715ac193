"""Filtering along time (lava-dl's ``slayer.utils.filter``): :func:`conv`, :func:`corr`, :class:`FIR`,
:class:`FIRBank`."""

from lava_dl.slayer.utils.filter.conv import conv, corr
from lava_dl.slayer.utils.filter.fir import FIR, FIRBank

__all__ = ["FIR", "FIRBank", "conv", "corr"]
