"""lava-dl's ``netx.blocks.process``: the netx block Processes (defined in
:mod:`lava_dl.proc.netx_blocks`; the same classes, so ``type(net.layers[i])`` compares equal)."""

from lava_dl.proc.netx_blocks import (
    AbstractBlock,
    Average,
    ComplexDense,
    ComplexInput,
    Concat,
    Conv,
    ConvT,
    Dense,
    Input,
    Pool,
    RecurrentDense,
    Unpool,
)

__all__ = ["AbstractBlock", "Input", "ComplexInput", "Dense", "ComplexDense", "RecurrentDense", "Conv",
           "ConvT", "Pool", "Unpool", "Average", "Concat"]
