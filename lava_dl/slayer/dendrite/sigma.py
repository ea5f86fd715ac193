"""lava-dl's ``slayer.dendrite.sigma``: the σ integrator :class:`Sigma`
(:class:`lava_dl.slayer.neuron.sigma_delta.Sigma`, the deployed integer integrator)."""

from lava_dl.slayer.neuron.sigma_delta import Sigma

__all__ = ["Sigma"]
