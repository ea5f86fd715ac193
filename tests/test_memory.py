"""Reuse of the kernels' scratch buffers: a block is handed out again only once nothing refers to it."""

from __future__ import annotations

import numpy as np
import torch

from lava_dl.slayer import _memory


def test_buffer_reused_only_when_unreferenced():
    _memory.set_limit(0)  # drop free blocks left by other tests: the freed block below is the only one
    try:
        _check_reuse()
    finally:
        _memory.set_limit(1 << 30)


def _check_reuse():
    shape = (300, 1000)  # above the pooling threshold
    first = _memory.empty(shape, np.float32)
    first[...] = 1.0
    # alive through a tensor view made from it: never handed out again
    view = torch.from_numpy(first).movedim(0, 1)
    del first
    second = _memory.empty(shape, np.float32)
    assert not np.shares_memory(second, view.numpy())
    second_address = second.__array_interface__["data"][0]
    del second
    third = _memory.empty((1000, 300), np.float32)  # same size, other shape: the freed block
    assert third.__array_interface__["data"][0] == second_address
    assert float(view.sum()) == 300 * 1000  # untouched


def test_small_buffers_bypass_the_pool_and_limit_releases():
    before = len(_memory._blocks)
    small = _memory.empty((10, 10), np.int32)
    assert small.shape == (10, 10) and len(_memory._blocks) == before
    _memory.set_limit(0)
    try:
        assert all(_memory._references(_memory._blocks, i) > _memory._UNREFERENCED
                   for i in range(len(_memory._blocks)))
    finally:
        _memory.set_limit(1 << 30)
