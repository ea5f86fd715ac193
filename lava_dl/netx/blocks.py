"""netx blocks (Lava processes): :class:`Input`, :class:`Dense`, :class:`Conv`.

The Process classes are defined in :mod:`lava_dl.proc.netx_blocks` (where
Lava's compiler finds their models); they are re-exported here for lava-dl
compatible imports (``netx.blocks.Dense`` ...).
"""

from lava_dl.proc.netx_blocks import AbstractBlock, Conv, Dense, Input, broadcast_bias

__all__ = ["AbstractBlock", "Input", "Dense", "Conv", "broadcast_bias"]
