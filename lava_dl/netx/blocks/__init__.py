"""netx blocks (Lava processes): :class:`Input`, :class:`Dense`, :class:`Conv` ...

The Process classes are defined in :mod:`lava_dl.proc.netx_blocks` (where Lava's compiler
finds their models) and re-exported here and in :mod:`.process`; their SubProcessModels are
re-exported in :mod:`.models` (lava-dl's ``netx.blocks.process`` / ``netx.blocks.models``).
"""

from lava_dl.proc.netx_blocks import (
    AbstractBlock,
    ComplexDense,
    ComplexInput,
    Conv,
    Dense,
    Input,
    RecurrentDense,
    broadcast_bias,
)

__all__ = ["AbstractBlock", "Input", "ComplexInput", "Dense", "ComplexDense", "RecurrentDense", "Conv",
           "broadcast_bias", "process", "models"]


def __getattr__(name):
    if name in ("process", "models"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
