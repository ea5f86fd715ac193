"""Channel-wise join of earlier layers' outputs: the slayer side of a ``concat`` record.

A skip connection in a ``.net`` file is a ``concat`` record whose ``layers`` field lists the
record indices of earlier layers; their outputs are joined along the channel axis (axis 1 of
slayer's ``N, C, (H, W,) T``) and feed the next record. slayer joins the outputs at the same
time index: netx delays the paths that reach the join earlier in Lava so that they meet at
that index too (see :class:`lava_dl.netx.hdf5.Network`), so the join itself adds no latency.
:class:`lava_dl.slayer.auto.SequentialNetwork` builds this block for such records and feeds it.
"""

from __future__ import annotations

import typing as ty

import h5py
import torch

from lava_dl.core import records
from lava_dl.slayer import checks as _checks
from lava_dl.slayer._eager import eager
from lava_dl.slayer.block.base import _Block

__all__ = ["Concat"]


class Concat(_Block):
    """Join the outputs of earlier layers along the channel axis (a ``concat`` record).

    Parameters
    ----------
    layers : sequence of int
        Record indices of the joined layers, as the ``concat`` record stores them (netx also
        joins the record just before the concat when the list omits it).
    shape : sequence of int
        Joined shape in torch order: ``(C,)`` for dense outputs (or the record's
        ``(C, 1, 1)``), ``(C, H, W)`` for convolutional ones.
    count_log : bool
        Also return the mean event rate of the output.

    Examples
    --------
    >>> join = Concat(layers=[0, 1], shape=(14,))
    >>> joined = join([first_output, second_output])   # N, 8, T and N, 6, T -> N, 14, T
    """

    def __init__(self, layers: ty.Sequence[int], shape: ty.Sequence[int], count_log: bool = False) -> None:
        super().__init__(delay_shift=False, count_log=count_log)
        self.layers = tuple(int(i) for i in layers)
        self.shape = tuple(int(s) for s in shape)

    @eager
    def forward(self, inputs: ty.Sequence[torch.Tensor]):
        """Concatenate ``inputs`` (``N, C_k, (H, W,) T`` each, in ``layers`` order) along axis 1."""
        joined = torch.cat(list(inputs), dim=1)
        bounds = [_checks.marked_bound(part) for part in inputs]
        if all(bound is not None for bound in bounds):  # keeps the synapses' exact fast path for spikes
            _checks.mark_bound(joined, max(bounds), all(_checks.marked_binary(part) for part in inputs))
        return self._finish(joined)

    def export_hdf5(self, handle: h5py.Group) -> None:
        """Write this block as an hdf5 ``concat`` record into the group ``handle``."""
        records.write_concat(handle, shape=self.shape, layers=self.layers)
