"""Training kernels on several CPU threads (issue 11, item 4).

The kernels run over disjoint blocks of samples (:mod:`lava_dl.core.parallel`) on
``torch.get_num_threads()`` threads: every output and gradient must equal the
single-threaded run bit for bit, for batches that do and do not divide evenly, and the
threads must survive Lava forking its workers between two training steps.
"""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
import torch

from lava_dl import slayer
from lava_dl.core import parallel

PARAMS = dict(threshold=1.25, current_decay=0.25, voltage_decay=0.03, tau_grad=0.03, scale_grad=3)
ALIF = dict(PARAMS, threshold_step=0.5, refractory_decay=0.1, threshold_decay=0.1)
STEPS = 24


@pytest.fixture(autouse=True)
def _restore_threads(monkeypatch):
    # the small shapes here are split over threads too (see test_small_kernels_stay_on_one_thread)
    monkeypatch.setattr(parallel, "MIN_ELEMENTS_PER_THREAD", 1)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_small_kernels_stay_on_one_thread(monkeypatch):
    """Fewer threads than asked when a kernel's first block argument is small: at most one per
    ``MIN_ELEMENTS_PER_THREAD`` elements."""
    monkeypatch.setattr(parallel, "MIN_ELEMENTS_PER_THREAD", 1 << 15)

    def kernel(x, out):
        out[:] = x.shape[0]
        return x.shape[0]

    blocks = parallel.Blockwise(kernel, "x", "out")
    small = np.zeros((32, 1000))  # 32000 elements: one thread
    assert blocks(small, np.zeros(32), threads=2) == [32]
    large = np.zeros((32, 3000))  # 96000: two of the three threads asked for
    assert blocks(large, np.zeros(32), threads=3) == [16, 16]


@pytest.fixture(params=["openmp", "pool"])
def route(request, monkeypatch):
    """The two ways of running the ranges: torch's OpenMP team, or the module's own thread pool."""
    if request.param == "pool":
        monkeypatch.setattr(parallel, "_openmp", None)
    else:
        if parallel._openmp_route() is None:
            pytest.skip("torch has not loaded GNU OpenMP here (the thread pool runs the kernels)")
    return request.param


def _dense(kind: str, seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    if kind == "sdnn":
        sd = dict(threshold=2 / 64, activation=torch.nn.functional.relu)
        blocks = [slayer.block.sigma_delta.Dense(sd, 12, 20, weight_scale=4),
                  slayer.block.sigma_delta.Dense(sd, 20, 6, weight_scale=4)]
    elif kind in ("rf", "adrf"):
        rf = dict(threshold=8 / 64, period=6.0, decay=0.05)
        if kind == "adrf":
            rf.update(threshold_step=4 / 64, threshold_decay=0.1, refractory_decay=0.1)
        blocks = [getattr(slayer.block, kind).Dense(rf, 12, 20, weight_scale=6),
                  getattr(slayer.block, kind).Dense(rf, 20, 6, weight_scale=6)]
    elif kind == "alif":
        blocks = [slayer.block.alif.Dense(ALIF, 12, 20, weight_scale=4),
                  slayer.block.alif.Dense(ALIF, 20, 6, weight_scale=4)]
    elif kind == "cuba-norm":  # the two-stage kernels (a norm between current and voltage)
        norm = slayer.neuron.norm.MeanOnlyBatchNorm
        blocks = [slayer.block.cuba.Dense(dict(PARAMS, norm=norm), 12, 20, weight_scale=4),
                  slayer.block.cuba.Dense(dict(PARAMS, norm=norm), 20, 6, weight_scale=4)]
    else:
        blocks = [slayer.block.cuba.Dense(PARAMS, 12, 20, weight_scale=4),
                  slayer.block.cuba.Dense(PARAMS, 20, 6, weight_scale=4)]
    return torch.nn.Sequential(*blocks)


def _conv(seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    blk = slayer.block.cuba
    return torch.nn.Sequential(blk.Conv(PARAMS, 2, 4, 3, padding=1, weight_scale=4),
                               blk.Conv(PARAMS, 4, 6, 3, stride=2, padding=1, weight_scale=4),
                               blk.Flatten(), blk.Dense(PARAMS, 6 * 4 * 4, 5, weight_scale=4))


def _step(kind: str, batch: int, threads: int, decay_grads: bool = True):
    """One forward + backward on ``threads`` torch threads (None: as set): output, input gradient and
    parameter gradients."""
    if threads is not None:
        torch.set_num_threads(threads)
    net = _conv() if kind == "conv" else _dense(kind)
    if decay_grads:
        for name, p in net.named_parameters():
            if "decay" in name:
                p.requires_grad_(True)
    gen = torch.Generator().manual_seed(batch)
    shape = (batch, 2, 8, 8) if kind == "conv" else (batch, 12)
    x = (torch.rand(*shape, STEPS, generator=gen) < 0.3).float().requires_grad_(True)
    out = net(x)
    weights = torch.rand(out.shape, generator=gen)
    (out * weights).sum().backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    return out.detach().clone(), x.grad.clone(), grads


def _compare(a, b, exact_grads: bool = True, where=()) -> None:
    (out_a, gx_a, g_a), (out_b, gx_b, g_b) = a, b
    assert torch.equal(out_a, out_b), where
    assert sorted(g_a) == sorted(g_b)
    assert any("decay" in n for n in g_a) or where[0] == "sdnn"
    for name, x, y in [("input", gx_a, gx_b), *((n, g_a[n], g_b[n]) for n in g_a)]:
        if exact_grads:
            assert torch.equal(x, y), (*where, name)
        else:
            torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6, msg=f"{where} {name}")


@pytest.mark.parametrize("kind", ["cuba", "alif", "cuba-norm", "conv", "sdnn", "rf", "adrf"])
@pytest.mark.parametrize("batch", [4, 5, 1])
def test_kernel_threads_give_the_single_threaded_results(kind, batch, route, monkeypatch):
    """Kernels on 2 and 3 threads (torch's own ops kept on one): every value bit for bit."""
    single = _step(kind, batch, 1)
    assert single[0].sum() > 0
    for threads in (2, 3):
        # the kernels read torch.get_num_threads() when they run
        with monkeypatch.context() as patch:
            patch.setattr(torch, "get_num_threads", lambda threads=threads: threads)
            _compare(_step(kind, batch, None), single, where=(kind, batch, threads, route))


@pytest.mark.parametrize("kind", ["cuba", "alif", "conv"])
def test_two_torch_threads(kind):
    """``torch.set_num_threads(2)``: forward bit for bit; the gradients differ from one thread at most by
    the rounding of torch's own reductions (oneDNN's conv weight gradient, MKL products), never by
    the neuron kernels (see the test above)."""
    single = _step(kind, 5, 1)
    _compare(_step(kind, 5, 2), single, exact_grads=False, where=(kind,))


@pytest.mark.parametrize("kind", ["cuba", "alif"])
def test_two_torch_threads_neuron_alone_exact(kind):
    """A neuron without synapse on 2 torch threads: spikes and all gradients bit for bit."""
    def run(threads):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        neuron = slayer.neuron.alif.Neuron(**ALIF) if kind == "alif" else slayer.neuron.cuba.Neuron(**PARAMS)
        for p in neuron.parameters():
            p.requires_grad_(True)
        gen = torch.Generator().manual_seed(1)
        x = (2 * torch.rand(7, 33, STEPS, generator=gen)).requires_grad_(True)
        out = neuron(x)
        (out * torch.rand(out.shape, generator=gen)).sum().backward()
        return out.detach(), x.grad, {n: p.grad for n, p in neuron.named_parameters() if p.grad is not None}

    _compare(run(2), run(1), where=(kind,))


def _recorder(x, scale, out, shared):
    """A kernel stand-in recording the block ranges it is called on."""
    out[:] = x * scale
    return (x.shape[0], shared.shape[0])


def test_blockwise_splits_evenly_and_calls_directly_on_one_thread(route):
    kernel = parallel.Blockwise(_recorder, "x", "out")
    x = np.arange(7 * 3, dtype=np.float64).reshape(7, 3)
    out = np.zeros_like(x)
    shared = np.zeros(5)
    assert kernel(x, 2.0, out, shared) == [(7, 5)]
    assert kernel(x, 2.0, out, shared, threads=3) == [(3, 5), (2, 5), (2, 5)]
    assert np.array_equal(out, 2 * x)
    assert kernel(x[:2], 1.0, out[:2], shared, threads=8) == [(1, 5), (1, 5)]
    assert parallel.block_ranges(32, 2) == [(0, 16), (16, 32)]
    with pytest.raises(ValueError, match="unknown"):
        parallel.Blockwise(_recorder, "nope")


def test_blockwise_waits_for_every_range_before_raising(route):
    def kernel(x, out):
        if x[0] == 0:
            raise RuntimeError("first range")
        out[:] = 1.0

    x = np.arange(6.0)
    out = np.zeros(6)
    with pytest.raises(RuntimeError, match="first range"):
        parallel.Blockwise(kernel, "x", "out")(x, out, threads=3)
    assert np.array_equal(out[2:], np.ones(4))


_FORKS: list[int] = []
os.register_at_fork(before=lambda: _FORKS.append(1))


def test_openmp_route_is_torchs_runtime_and_can_be_turned_off(monkeypatch):
    if parallel._find_openmp() is None:
        pytest.skip("torch has not loaded GNU OpenMP here (the thread pool runs the kernels)")
    monkeypatch.setenv("LAVA_DL_KERNEL_POOL", "1")
    assert parallel._find_openmp() is None


def _train_step(net, x, y):
    out = net(x)
    loss = torch.nn.functional.cross_entropy(out.sum(-1), y)
    net.zero_grad()
    loss.backward()
    return out.detach().clone(), [p.grad.clone() for p in net.parameters() if p.grad is not None]


@pytest.mark.timeout(300)
def test_parallel_steps_survive_a_forking_lava_run(tmp_path, route):
    """Parallel step, Lava run of a netx network (forks its workers), parallel step again."""
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    from lava_dl import netx
    from tests.lava_run import run_and_read

    torch.set_num_threads(2)
    net = _dense("cuba")
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(6, 12, STEPS, generator=gen) < 0.3).float()
    y = torch.randint(0, 6, (6,), generator=gen)
    before = _train_step(net, x, y)
    if route == "pool":
        assert parallel._pool is not None  # the step ran on the pool

    path = tmp_path / "net.net"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(net):
            block.export_hdf5(layer.create_group(str(i)), clip_weights=True)
    lava_net = netx.hdf5.Network(net_config=str(path), reset_interval=STEPS)
    source = Source(data=x[0].numpy().astype(float))
    sink = Sink(shape=lava_net.out.shape, buffer=STEPS)
    source.s_out.connect(lava_net.inp)
    lava_net.out.connect(sink.a_in)
    forks_before = len(_FORKS)
    (spikes,) = run_and_read(lava_net, STEPS, [sink.data])
    assert spikes.shape == (6, STEPS)
    assert len(_FORKS) > forks_before  # Lava forked its workers from this threaded process

    after = _train_step(net, x, y)
    assert torch.equal(after[0], before[0])
    assert all(torch.equal(a, b) for a, b in zip(after[1], before[1]))
    torch.set_num_threads(1)
    single = _train_step(net, x, y)
    assert torch.equal(single[0], before[0])
    assert all(torch.equal(a, b) for a, b in zip(single[1], before[1]))
