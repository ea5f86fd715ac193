"""lava-dl's ``slayer.axon.delta``: the sigma-delta encoder :class:`Delta`
(:class:`lava_dl.slayer.neuron.sigma_delta.Delta`, the deployed integer encoder)."""

from lava_dl.slayer.neuron.sigma_delta import Delta

__all__ = ["Delta"]
