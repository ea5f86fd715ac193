"""Dendrites (lava-dl ``slayer.dendrite``): the σ integrator :class:`Sigma` (module :mod:`.sigma`)."""

from lava_dl.slayer.dendrite.sigma import Sigma

__all__ = ["Sigma"]
