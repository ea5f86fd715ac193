"""Axonal delays and encoders (lava-dl ``slayer.axon``): a fixed :func:`delay`, the learnable
:class:`Delay` and the sigma-delta encoder :class:`Delta` (module :mod:`.delta`)."""

from lava_dl.slayer.axon.delay import Delay, delay


def __getattr__(name):
    if name in ("Delta", "delta"):
        import importlib

        module = importlib.import_module(f"{__name__}.delta")
        return module if name == "delta" else module.Delta
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Delay", "delay", "Delta"]
