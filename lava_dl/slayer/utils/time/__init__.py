"""Time-axis manipulation (lava-dl's ``slayer.utils.time``): :func:`shift` and :func:`replicate`."""

from lava_dl.slayer.utils.time.replicate import replicate
from lava_dl.slayer.utils.time.shift import shift

__all__ = ["replicate", "shift"]
