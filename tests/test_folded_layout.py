"""Narrow layers run folded: several samples' neurons in one kernel block (issue 11 item 4).

A layer of fewer than ``FOLD_WIDTH`` neurons hands the kernels ``G`` blocks ``(G, T, N/G*K)``
(one per thread that would run it) instead of N blocks of K neurons. Each family must give,
folded and unfolded, the same outputs, recorded states, carried states and gradients, bit for
bit, and its tensors must keep the memory layout they have unfolded.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lava_dl import slayer
from lava_dl.slayer.neuron import adrf, adrf_iz, alif, cuba, rf, rf_iz
from lava_dl.slayer.neuron import dynamics as dyn
from lava_dl.slayer.neuron import sigma_delta as sd
from lava_dl.slayer.neuron.norm import MeanOnlyBatchNorm

SHAPE = (5, 6)  # N samples of 6 neurons: folded into one block of 30
STEPS = 40

CUBA = dict(threshold=0.5, current_decay=(0.05, 0.4), voltage_decay=(0.02, 0.2), tau_grad=0.1, scale_grad=2,
            requires_grad=True, shared_param=False, shape=(6,), persistent_state=True)
RESONATOR = dict(threshold=0.3, period=(6.0, 20.0), decay=(0.02, 0.1), requires_grad=True, shared_param=False,
                 shape=(6,), persistent_state=True)
ADAPTIVE = dict(threshold_step=0.25, threshold_decay=0.1, refractory_decay=0.2)


def _real_input(seed: int, shape=SHAPE) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    values = torch.randint(-150, 151, (*shape, STEPS), generator=gen).float() / 64
    return values * (torch.rand(values.shape, generator=gen) < 0.5)


def _complex_input(seed: int, shape=SHAPE) -> tuple[torch.Tensor, torch.Tensor]:
    return _real_input(seed, shape), _real_input(seed + 100, shape)


def _fold_into_groups(monkeypatch, threads: int) -> None:
    """Let small layers fold into several groups, as large ones do with ``threads`` threads."""
    monkeypatch.setattr(dyn, "kernel_threads", lambda: threads)
    monkeypatch.setattr(dyn, "MIN_ELEMENTS_PER_THREAD", 1)


#: name -> (neuron factory, input factory); each neuron carries its states between calls.
CASES = {
    "cuba": (lambda: cuba.Neuron(**CUBA), _real_input),
    "cuba graded": (lambda: cuba.Neuron(**CUBA, graded_spike=True), _real_input),
    "cuba norm": (lambda: cuba.Neuron(**CUBA, norm=MeanOnlyBatchNorm), _real_input),
    "alif": (lambda: alif.Neuron(**CUBA, **ADAPTIVE), _real_input),
    "rf": (lambda: rf.Neuron(**RESONATOR), _complex_input),
    "rf_iz": (lambda: rf_iz.Neuron(**RESONATOR), _complex_input),
    "adrf": (lambda: adrf.Neuron(**RESONATOR, **ADAPTIVE), _complex_input),
    "adrf_iz": (lambda: adrf_iz.Neuron(**RESONATOR, **ADAPTIVE), _complex_input),
    "sigma_delta": (lambda: sd.Neuron(0.05, F.relu, cum_error=True, requires_grad=True, tau_grad=0.5,
                                      scale_grad=2.0, persistent_state=True), _real_input),
    "sigma_delta norm": (lambda: sd.Neuron(0.05, F.relu, requires_grad=True, norm=MeanOnlyBatchNorm,
                                           persistent_state=True), _real_input),
    "sigma": (lambda: sd.Sigma(persistent_state=True), _real_input),
    "delta": (lambda: sd.Delta(0.05, cum_error=True, requires_grad=True, persistent_state=True), _real_input),
}


@pytest.fixture
def layouts(monkeypatch):
    """Records ``(folded, kernel blocks)`` of each BlockLayout built."""
    seen: list[tuple[bool, int]] = []
    original = dyn.BlockLayout.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        seen.append((self.folded, self.blocks))

    monkeypatch.setattr(dyn.BlockLayout, "__init__", spy)
    return seen


def _outputs(neuron, inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    """Two calls (the second from carried states): every output and every gradient."""
    results = []
    for call in range(2):
        leaves = [x.detach().clone().requires_grad_() for x in inputs]
        if hasattr(neuron, "run"):
            arg = leaves[0] if len(leaves) == 1 else tuple(leaves)
            out = neuron.run(arg)
            out = [o for o in out if o is not None]
        else:
            out = neuron.dynamics(leaves[0]) if isinstance(neuron, sd.Neuron) else neuron(leaves[0])
            out = list(out) if isinstance(out, tuple) else [out]
        gen = torch.Generator().manual_seed(call)
        loss = sum((o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum() for o in out
                   if o.requires_grad)
        neuron.zero_grad()
        loss.backward()
        results += [o.detach() for o in out] + [leaf.grad for leaf in leaves]
        results += [p.grad.clone() for p in neuron.parameters() if p.grad is not None]
    results += [s.clone() for s in neuron._states.values() if isinstance(s, torch.Tensor)]
    return results


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("name", CASES)
def test_folded_equals_unfolded(name, groups, layouts, monkeypatch):
    make, make_input = CASES[name]
    torch.manual_seed(3)
    neuron = make()
    if groups == 1:
        inputs = make_input(7)  # 5 samples of 6 neurons: one group of 30
    else:
        _fold_into_groups(monkeypatch, threads=3)
        inputs = make_input(7, (12, 6))  # 12 samples of 6: 72 neurons, two groups of 36
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    folded_neuron, plain_neuron = copy.deepcopy(neuron), copy.deepcopy(neuron)

    folded = _outputs(folded_neuron, inputs)
    assert layouts and all(layout == (True, groups) for layout in layouts), layouts
    layouts.clear()
    monkeypatch.setattr(dyn, "FOLD_WIDTH", 0)
    plain = _outputs(plain_neuron, inputs)
    assert layouts and not any(folded for folded, _ in layouts)

    assert len(folded) == len(plain) > 4
    assert any(bool(torch.count_nonzero(t)) for t in folded[1:])
    for i, (a, b) in enumerate(zip(folded, plain)):
        assert a.shape == b.shape and a.dtype == b.dtype, i
        assert a.stride() == b.stride(), (i, a.stride(), b.stride())  # the same memory layout
        assert torch.equal(a, b), i


def test_block_with_synaptic_delay_folded_equals_unfolded(layouts, monkeypatch):
    """A CUBA block writes its messages one step late into the folded array (step 0 from the carry)."""
    torch.manual_seed(4)
    block = slayer.block.cuba.Dense(dict(threshold=0.3, current_decay=0.2, voltage_decay=0.1,
                                         persistent_state=True), 12, 7, weight_scale=3)
    x = (torch.rand(6, 12, STEPS) < 0.4).float()
    runs = []
    for width in (dyn.FOLD_WIDTH, 0):
        monkeypatch.setattr(dyn, "FOLD_WIDTH", width)
        net = copy.deepcopy(block)
        outs = []
        for _ in range(2):  # the second call starts from the carried last message
            leaf = x.clone().requires_grad_()
            out = net(leaf)
            out.backward(torch.linspace(-1, 1, out.numel()).reshape(out.shape))
            outs += [out.detach(), leaf.grad, net.synapse.weight.grad.clone()]
            net.zero_grad()
        runs.append(outs)
    assert layouts[0][0] and not layouts[-1][0]
    assert torch.count_nonzero(runs[0][0]) > 0
    for a, b in zip(*runs):
        assert a.stride() == b.stride()
        assert torch.equal(a, b)


def test_threads_do_not_change_a_folded_layer(monkeypatch, layouts):
    """One group on one thread, two groups on two threads (each its own kernel call): the same."""
    from lava_dl.core import parallel

    torch.manual_seed(5)
    neuron = cuba.Neuron(**CUBA)
    x = _real_input(9, (12, 6))
    monkeypatch.setattr(parallel, "MIN_ELEMENTS_PER_THREAD", 1)
    results = []
    for threads in (1, 2):
        _fold_into_groups(monkeypatch, threads)
        results.append(_outputs(copy.deepcopy(neuron), (x,)))
    assert {blocks for _, blocks in layouts} == {1, 2}
    for a, b in zip(*results):
        assert torch.equal(a, b)


# ---- BlockLayout itself ----------------------------------------------------------------------------

@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@pytest.mark.parametrize("time_major", [True, False])
def test_folded_layout_round_trip(dtype, time_major, groups, monkeypatch):
    n, k, steps = 4, 16, 5  # 64 neurons: two groups of 32 on two threads
    _fold_into_groups(monkeypatch, groups)
    x = torch.arange(n * k * steps, dtype=torch.float64).reshape(n, k, steps)
    if time_major:
        x = x.movedim(-1, 1).contiguous().movedim(1, -1)
    layout = dyn.BlockLayout(x)
    per_group = n // groups
    assert layout.folded and (layout.blocks, layout.steps, layout.width) == (groups, steps, per_group * k)
    arr = layout.array(x, dtype)
    assert arr.shape == (groups, steps, per_group * k) and arr.dtype == dtype
    # block g, step t: the neurons of the group's samples, sample by sample
    expected = x.reshape(groups, per_group, k, steps).permute(0, 3, 1, 2).reshape(arr.shape)
    assert np.array_equal(arr, expected.numpy().astype(dtype))
    back = layout.tensor(arr)
    assert torch.equal(back, x.to(back.dtype))
    assert back.movedim(-1, 1).is_contiguous()  # stored N, T, K as unfolded outputs are
    per = np.arange(n * k)
    assert np.shares_memory(layout.per_neuron(per), per)
    with pytest.raises(RuntimeError, match="folded"):
        layout.empty(np.float32)


@pytest.mark.parametrize("shape, folded", [((1, 6, 5), False), ((3, 32, 5), False), ((3, 31, 5), True),
                                           ((2, 2, 3, 4, 5), True)])
def test_which_layouts_fold(shape, folded):
    x = torch.zeros(shape)
    assert dyn.BlockLayout(x).folded == folded
    assert not dyn.BlockLayout(x, fold=False).folded


@pytest.mark.parametrize("shape, threads, groups", [
    ((8, 16, 5), 1, 1),  # one thread: one group
    ((8, 16, 5), 4, 4),  # 128 neurons: four rows of 32
    ((8, 16, 5), 8, 4),  # ... not eight rows of 16
    ((5, 16, 5), 4, 1),  # two rows of 40 would split a sample: one group
    ((6, 16, 5), 4, 3),  # 96 neurons, three rows of 32
])
def test_fold_groups(shape, threads, groups, monkeypatch):
    _fold_into_groups(monkeypatch, threads)
    layout = dyn.BlockLayout(torch.zeros(shape))
    assert layout.folded and layout.blocks == groups and layout.blocks * layout.width == shape[0] * shape[1]


def test_small_layers_fold_into_one_group(monkeypatch):
    monkeypatch.setattr(dyn, "kernel_threads", lambda: 8)
    layout = dyn.BlockLayout(torch.zeros(32, 10, 100))  # 32k elements: one thread's worth
    assert layout.folded and layout.blocks == 1


def test_channels_last_never_folds():
    x = torch.zeros(2, 2, 3, 4, 5).permute(0, 4, 2, 3, 1).contiguous().permute(0, 4, 2, 3, 1)
    layout = dyn.BlockLayout(x)
    assert layout.permuted and not layout.folded
