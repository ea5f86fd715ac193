"""Bootstrap blocks: slayer blocks that also run as an ANN (:mod:`lava_dl.bootstrap`)."""

from lava_dl.bootstrap.block import base, cuba

__all__ = ["base", "cuba"]
