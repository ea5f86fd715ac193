"""Fast paths of the Python glue around the compiled neuron kernels (issue 11 item 4).

Every fast path must give what the general path gives: the same values, the same errors with
the same messages, and no reuse of memory that is still referenced.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lava_dl import slayer
from lava_dl.slayer import _memory, checks
from lava_dl.slayer.neuron import cuba
from lava_dl.slayer.neuron import dynamics as dyn
from lava_dl.slayer.synapse import layer as synapse_layer
from lava_dl.slayer.utils import delay_shift

PARAMS = dict(threshold=1.25, current_decay=0.25, voltage_decay=0.03, tau_grad=0.03, scale_grad=3)


def _general_finite_check(module, where):
    """The reduction-only check (what check_finite_parameters does for every parameter size)."""
    for name, param in module.named_parameters():
        if not param.numel() or not param.dtype.is_floating_point:
            continue
        lo, hi = (float(v) for v in torch.aminmax(param.detach().reshape(-1)))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            bad = int((~torch.isfinite(param.detach())).sum())
            raise ValueError(f"{where}: parameter '{name}' holds {bad} NaN/inf values of {param.numel()} "
                             f"(shape {tuple(param.shape)}); a diverged training step or a bad assignment "
                             "put them there (e.g. lower the learning rate, clip the gradients)")


def _message(fn, *args):
    try:
        fn(*args)
    except ValueError as err:
        return str(err)
    return None


# ---- check_finite_parameters: one read for a one-value parameter ---------------------------------

@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 0.0, 4096.0, -1e30])
@pytest.mark.parametrize("size", [1, 3])
def test_finite_check_matches_general_path(value, size):
    module = torch.nn.Module()
    module.p = torch.nn.Parameter(torch.full((size,), 7.0))
    module.p.data[-1] = value
    got = _message(checks.check_finite_parameters, module, "where")
    assert got == _message(_general_finite_check, module, "where")
    assert (got is None) == math.isfinite(value)


def test_scalar_nan_decay_raises_before_rounding():
    neuron = cuba.Neuron(**PARAMS)
    neuron.current_decay.data.fill_(float("nan"))  # no version bump
    x = torch.zeros(2, 3, 5)
    message = r"parameter 'current_decay' holds 1 NaN/inf values of 1 \(shape \(1,\)\)"
    with pytest.raises(ValueError, match=message):
        neuron(x)


# ---- Neuron.rounded / _check_spec_values: Python scalars -----------------------------------------

def _torch_rounded(param):
    values = torch.round(param.detach()).to(torch.int64).cpu().numpy()
    return values if values.size > 1 else int(values[0])


@pytest.mark.parametrize("value", [0.5, 1.5, 2.5, -2.5, 1023.5, 1024.4999, 4095.5, 6144.0, -0.0,
                                   2.0**40 + 0.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rounded_scalar_is_round_half_even(value, dtype):
    param = torch.nn.Parameter(torch.tensor([value], dtype=dtype))
    got = cuba.Neuron.rounded(param)
    assert type(got) is int
    assert got == _torch_rounded(param)


def test_rounded_per_channel_and_non_finite_take_the_general_path():
    per_channel = torch.tensor([0.5, 1.5, 2.5, 1023.7])
    np.testing.assert_array_equal(cuba.Neuron.rounded(per_channel), _torch_rounded(per_channel))
    assert isinstance(cuba.Neuron.rounded(per_channel), np.ndarray)
    for value in (float("nan"), float("inf")):
        odd = torch.tensor([value])
        assert cuba.Neuron.rounded(odd) == _torch_rounded(odd)  # whatever torch gives, unchanged


def test_out_of_range_scalar_decay_still_raises_the_range_error():
    neuron = cuba.Neuron(**PARAMS)
    neuron.current_decay.data.fill_(6144.0)
    with pytest.raises(ValueError, match=r"current_decay: du .* must lie in \[0, 4096\], got values in "
                                         r"\[6144, 6144\]"):
        neuron(torch.zeros(2, 3, 5))
    neuron.current_decay.data.fill_(4096.0)  # the upper end is deployable
    neuron(torch.zeros(2, 3, 5))
    neuron.voltage_decay.data.fill_(-0.6)  # rounds to -1
    with pytest.raises(ValueError, match=r"voltage_decay: dv .* got values in \[-1, -1\]"):
        neuron(torch.zeros(2, 3, 5))


def test_no_threshold_still_has_no_deployed_value():
    neuron = cuba.Neuron(**{**PARAMS, "threshold": None})
    neuron(torch.zeros(2, 3, 5))  # runs (never spikes)
    with pytest.raises(ValueError, match="has no deployed value vThMant"):
        neuron.device_params()


# ---- _rows_int: one rounding for a shared decay --------------------------------------------------

def _torch_rows_int(decay):
    return np.ascontiguousarray(torch.round(decay.detach()).to(torch.int64).cpu().numpy())


@pytest.mark.parametrize("value", [0.5, 2.5, 1023.5, 1024.0, 4095.5, -3.5, float("nan"), 2.0**70])
def test_rows_int_shared_value_matches_torch(value):
    param = torch.nn.Parameter(torch.tensor([value]))
    x = torch.zeros(4, 6, 3)
    rows = dyn.per_row(param, x)
    assert rows.stride(0) == 0  # the broadcast the fast path recognises
    got = dyn._rows_int(rows)
    np.testing.assert_array_equal(got, _torch_rows_int(rows))
    assert got.dtype == np.int64 and got.flags.c_contiguous and got.shape == (24,)


def test_rows_int_per_channel_matches_torch():
    param = torch.tensor([0.5, 1.5, 2.5, 3.5, 4095.5, 7.2])
    rows = dyn.per_row(param, torch.zeros(4, 6, 3))
    np.testing.assert_array_equal(dyn._rows_int(rows), _torch_rows_int(rows))


def test_rows_matches_view_count():
    for shape in [(4, 6, 3), (2, 3, 4, 5, 1), (1, 1, 7)]:
        x = torch.zeros(shape)
        assert dyn._rows(x) == x[..., 0].numel()


# ---- BlockLayout.tensor: identity layout without the permutation ---------------------------------

@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 3, 4, 5, 6)])
def test_layout_tensor_identity_is_the_general_view(shape):
    x = torch.zeros(shape)
    layout = dyn.BlockLayout(x, fold=False)  # (a narrow layout would fold: its tensor is a copy)
    assert not layout.permuted
    arr = np.arange(math.prod(shape), dtype=np.float32).reshape(layout.blocks, layout.steps, layout.width)
    fast = layout.tensor(arr)
    layout._identity = False  # the general path (its permutation is the identity)
    general = layout.tensor(arr)
    assert fast.shape == general.shape == x.shape
    assert fast.stride() == general.stride()
    assert fast.data_ptr() == general.data_ptr() == arr.ctypes.data
    assert torch.equal(fast, general)


# ---- delayed: step 0 written into the kernel's array ---------------------------------------------

@pytest.mark.parametrize("first_dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(4, 6, 9), (2, 3, 4, 5, 9)])
def test_delayed_first_step_matches_delay_shift(first_dtype, shape):
    torch.manual_seed(1)
    neuron = cuba.Neuron(**PARAMS)
    x = torch.randn(shape) * 2
    first = torch.rand(*shape[:-1], 1, dtype=first_dtype)
    spikes, last = neuron.delayed(x, first)
    reference = neuron(x)
    assert torch.equal(spikes, delay_shift(reference, first.to(reference.dtype)))
    assert torch.equal(last, reference[..., -1:])
    zero_first, _ = neuron.delayed(x)
    assert torch.equal(zero_first, delay_shift(reference, None))


def test_delayed_first_channels_last_takes_the_general_path():
    torch.manual_seed(2)
    neuron = cuba.Neuron(**PARAMS)
    x = torch.randn(2, 3, 4, 5, 6).permute(0, 4, 2, 3, 1).contiguous().permute(0, 4, 2, 3, 1)
    assert dyn.BlockLayout(x).permuted
    first = torch.rand(2, 3, 4, 5, 1)
    spikes, _ = neuron.delayed(x, first)
    assert torch.equal(spikes, delay_shift(neuron(x), first))


# ---- effective weight handed over by the synapse -------------------------------------------------

def _spy_bound(monkeypatch):
    seen = []
    original = checks.bound_linear_output

    def spy(z, x, weight):
        seen.append(weight() if callable(weight) else weight)
        return original(z, x, weight)

    monkeypatch.setattr(checks, "bound_linear_output", spy)
    return seen


def test_block_bounds_with_the_weight_its_synapse_used(monkeypatch):
    torch.manual_seed(3)
    block = slayer.block.cuba.Dense(PARAMS, 20, 8)
    seen = _spy_bound(monkeypatch)
    calls = []
    hook = block.synapse.pre_hook_fx
    block.synapse.pre_hook_fx = lambda w, **k: calls.append(1) or hook(w, **k)
    x = (torch.rand(3, 20, 10) < 0.3).float()
    block(x)
    assert len(calls) == 1  # quantized once: the bound reused the forward's weight
    assert len(seen) == 1 and not callable(seen[0])
    assert torch.equal(seen[0], block.synapse.effective_weight())
    assert not seen[0].requires_grad
    assert synapse_layer._FORWARD_WEIGHT not in block.synapse.__dict__  # handed over once


def test_handed_over_weight_gives_the_recomputed_bound():
    torch.manual_seed(4)
    block = slayer.block.cuba.Dense(PARAMS, 8, 20)
    x = torch.rand(3, 8, 10)  # unmarked, smaller than z: scanned, a bound is computed
    z = block.synapse(x)
    reference = z.detach().clone().transpose(1, 2).contiguous().transpose(1, 2)
    checks.bound_linear_output(z, x, synapse_layer.take_forward_weight(block.synapse))
    checks.bound_linear_output(reference, x, block.synapse.effective_weight)
    assert checks.marked_bound(z) is not None
    assert checks.marked_bound(z) == checks.marked_bound(reference)
    # taken once: a second take recomputes
    assert synapse_layer.take_forward_weight(block.synapse) == block.synapse.effective_weight


def test_stale_weight_is_never_handed_over(monkeypatch):
    torch.manual_seed(5)
    block = slayer.block.cuba.Dense(PARAMS, 20, 8)
    x = (torch.rand(3, 20, 10) < 0.3).float()
    block.synapse(x)  # keeps this weight, never taken
    with torch.no_grad():
        block.synapse.weight.mul_(-2)
    seen = _spy_bound(monkeypatch)
    block(x)
    assert torch.equal(seen[0], block.synapse.effective_weight())


def test_block_weight_nan_still_raises():
    block = slayer.block.cuba.Dense(PARAMS, 20, 8)
    block.synapse.weight.data[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"parameter 'synapse.weight' holds 1 NaN/inf values of 160"):
        block(torch.zeros(3, 20, 10))


# ---- memory pool ---------------------------------------------------------------------------------

@pytest.fixture
def empty_pool():
    saved = list(_memory._blocks)
    _memory._blocks.clear()
    yield
    _memory._blocks[:] = saved


def _address(arr):
    return arr.__array_interface__["data"][0]


def test_pool_never_hands_out_a_referenced_block(empty_pool):
    shape = (4, _memory.MIN_BYTES // 4)
    a = _memory.empty(shape, np.float32)
    b = _memory.empty(shape, np.float32)
    assert not np.shares_memory(a, b)
    view = a[1:]  # keeps a's block alive
    del a
    c = _memory.empty(shape, np.float32)
    assert not np.shares_memory(c, view) and not np.shares_memory(c, b)
    address = _address(c)
    del c
    d = _memory.empty(shape, np.float32)  # c's block is free again: reused
    assert _address(d) == address
    e = _memory.empty((_memory.MIN_BYTES // 2,), np.float64)  # the size of the others, all referenced
    assert not any(np.shares_memory(e, y) for y in (view, b, d))
    tensor = torch.from_numpy(_memory.empty(shape, np.float32))  # a tensor keeps its block too
    f = _memory.empty(shape, np.float32)
    assert not np.shares_memory(f, tensor.numpy())


def test_pool_reuses_the_oldest_free_block_of_the_size(empty_pool):
    shape = (_memory.MIN_BYTES // 4,)
    blocks = [_memory.empty(shape, np.float32) for _ in range(3)]
    addresses = [_address(arr) for arr in blocks]
    other = _memory.empty((_memory.MIN_BYTES // 2,), np.float32)  # another size, free below
    del other
    blocks[0] = blocks[2] = None  # the first and last are free, the middle one referenced
    again = _memory.empty(shape, np.float32)
    assert _address(again) == addresses[0]
    assert not np.shares_memory(again, blocks[1])
    after = _memory.empty(shape, np.float32)
    assert _address(after) == addresses[2]


@pytest.mark.parametrize("shape", [(3, np.int64(_memory.MIN_BYTES)), _memory.MIN_BYTES, (2, 3)])
def test_pool_shapes(shape, empty_pool):
    arr = _memory.empty(shape, np.uint8)
    assert arr.shape == np.empty(shape, np.uint8).shape and arr.dtype == np.uint8
