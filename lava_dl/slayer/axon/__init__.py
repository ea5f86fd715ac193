"""Axonal delays (lava-dl ``slayer.axon``): a fixed :func:`delay` and the learnable :class:`Delay`."""

from lava_dl.slayer.axon.delay import Delay, delay

__all__ = ["Delay", "delay"]
