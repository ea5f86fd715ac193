"""Reuse of the large scratch buffers of the compiled neuron kernels.

A training step allocates several activation-sized buffers per layer (messages,
recorded voltages, gradients). Freed, malloc hands such blocks back to the
operating system, and the next step page-faults every 4 KiB page in again: a
quarter or more of a CUBA layer's time in training. :func:`empty` keeps the blocks
and hands one out again only when nothing refers to it any more (no array, view
or tensor made from it is alive), so reuse can never be observed.
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np

from lava_dl.core.fixed_point import jit

#: Buffers smaller than this come straight from numpy (malloc keeps those).
MIN_BYTES = 1 << 18
#: Most free bytes the pool keeps; beyond it the oldest free blocks are dropped.
_limit = 1 << 30
_blocks: list[np.ndarray] = []  # raw uint8 blocks, oldest first
_lock = threading.Lock()


def _references(blocks: list[np.ndarray], i: int) -> int:
    return sys.getrefcount(blocks[i])


#: Count of :func:`_references` for a block that only the pool refers to.
_UNREFERENCED = _references([np.empty(1, np.uint8)], 0)


def _free_indices() -> list[int]:
    return [i for i in range(len(_blocks)) if _references(_blocks, i) == _UNREFERENCED]


def empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-contiguous array, from a pooled block when one is free."""
    dtype = np.dtype(dtype)
    count = int(math.prod(shape)) if isinstance(shape, tuple) else int(np.prod(shape, dtype=np.int64))
    nbytes = count * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype)
    with _lock:
        # the oldest free block of that size (the size compared first: it is cheaper to test)
        reuse = next((i for i in range(len(_blocks))
                      if _blocks[i].nbytes == nbytes and _references(_blocks, i) == _UNREFERENCED), None)
        if reuse is not None:
            block = _blocks.pop(reuse)
        else:
            block = np.empty(nbytes, np.uint8)
            _trim(_limit - nbytes)
        _blocks.append(block)  # most recently used last
        return block.view(dtype).reshape(shape)


def _trim(free_bytes_allowed: int) -> None:
    """Drop the oldest free blocks until the free ones total at most ``free_bytes_allowed``."""
    free = _free_indices()
    total = sum(_blocks[i].nbytes for i in free)
    dropped = set()
    for i in free:
        if total <= free_bytes_allowed:
            break
        total -= _blocks[i].nbytes
        dropped.add(i)
    _blocks[:] = [b for i, b in enumerate(_blocks) if i not in dropped]


def set_limit(nbytes: int) -> None:
    """Keep at most ``nbytes`` of free buffers for reuse (0 turns reuse off and releases them)."""
    global _limit
    with _lock:
        _limit = int(nbytes)
        _trim(_limit)


@jit
def swap_middle_axes(src, dst):
    """``dst[g, j, i, k] = src[g, i, j, k]`` for 4-d arrays, ``dst`` C-contiguous (cast to its dtype).

    The transposing copy of a folded layer's activations, group by group (see
    :class:`lava_dl.slayer.neuron.dynamics.BlockLayout`): rows of a few values, where numpy's
    strided copy costs three times as much.
    """
    for g in range(src.shape[0]):
        for i in range(src.shape[1]):
            for j in range(src.shape[2]):
                row = dst[g, j, i]
                for k in range(src.shape[3]):
                    row[k] = src[g, i, j, k]
