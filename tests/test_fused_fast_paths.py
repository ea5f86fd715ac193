"""The shortcuts that make fused networks and ``netx.simulate`` fast give the results of the plain paths.

* The Lava step kernels run their loop with a parameter that no neuron uses folded to a
  constant (CUBA without bias, sigma-delta without ``cum_error``): a population mixing
  neurons with and without it must step as its two parts stepped separately (one part
  taking the folded loop, the other the general one).
* A batch of messages goes through the virtual ports' transforms as one gather when the
  transforms only move elements, and sample by sample otherwise.
* An in-process out port sends the buffer a model computed its message in without a copy, and
  takes over the array a synapse sends (handing back its previous buffer).
* A batch gives every model's per-sample Vars C-ordered, writable arrays of their own.
"""

from __future__ import annotations

import numpy as np
import pytest

from lava_dl.core import cuba, sigma_delta
from lava_dl.netx import fused

RNG = np.random.default_rng(7)
N = 301  # not a multiple of any vector width


def _split_equals_whole(step, states, inputs, params, part):
    """Step the whole population once and its two parts (``part`` and the rest) separately;
    return whether states and messages are equal (all int32, compared exactly)."""
    whole_states = [s.copy() for s in states]
    whole_out = np.zeros(N, np.int32)
    step(*whole_states, *inputs, *params, whole_out)
    ok = True
    for index in (part, ~part):
        sub_states = [np.ascontiguousarray(s[index]) for s in states]
        sub_out = np.zeros(int(index.sum()), np.int32)
        step(*sub_states, *[np.ascontiguousarray(x[index]) for x in inputs],
             *[np.ascontiguousarray(p[index]) for p in params], sub_out)
        ok &= np.array_equal(sub_out, whole_out[index])
        ok &= all(np.array_equal(a, b[index]) for a, b in zip(sub_states, whole_states))
    return ok, whole_out


def test_cuba_step_with_and_without_bias():
    part = RNG.random(N) < 0.5
    for _ in range(20):
        states = [RNG.integers(-(1 << 20), 1 << 20, N).astype(np.int32) for _ in range(2)]
        a_in = RNG.integers(-3000, 3000, N).astype(np.int32)
        bias_mant = np.where(part, 0, RNG.integers(-(1 << 12), 1 << 12, N)).astype(np.int32)
        params = [RNG.integers(0, 4097, N), RNG.integers(0, 4097, N), RNG.integers(0, 200, N), bias_mant,
                  RNG.integers(-7, 8, N), RNG.integers(0, 2, N)]
        params = [p.astype(np.int32) for p in params]
        ok, out = _split_equals_whole(cuba.fixed_step, states, [a_in], params, part)
        assert ok
    assert np.any(out[part]) and np.any(out[~part])


@pytest.mark.parametrize("kernel", ["delta", "sigma_delta"])
def test_sigma_delta_steps_with_and_without_cum_error(kernel):
    part = RNG.random(N) < 0.5
    cum_error = np.where(part, 0, 1).astype(np.int32)
    fired = np.zeros(2, bool)
    for _ in range(20):
        a_in = RNG.integers(-(1 << 14), 1 << 14, N).astype(np.int32)
        vth = RNG.integers(0, 1 << 8, N).astype(np.int32)
        exps = [np.full(N, 6, np.int32), np.full(N, 6, np.int32)]
        if kernel == "delta":
            step = sigma_delta.delta_fixed_step
            states = [RNG.integers(-(1 << 24), 1 << 24, N).astype(np.int32) for _ in range(3)]
            params = [vth, cum_error, *exps]
        else:
            step = sigma_delta.sigma_delta_fixed_step
            states = [RNG.integers(-(1 << 24), 1 << 24, N).astype(np.int32) for _ in range(4)]
            bias = RNG.integers(-(1 << 10), 1 << 10, N).astype(np.int32)
            params = [vth, bias, RNG.integers(0, 2, N).astype(np.int32), cum_error, *exps]
        ok, out = _split_equals_whole(step, states, [a_in], params, part)
        assert ok
        fired |= [np.any(out[part]), np.any(out[~part])]
    assert fired.all()


def test_batched_transform_gathers_moves_and_maps_the_rest():
    sample = (4, 3, 2)
    batch = RNG.integers(-100, 100, (5, *sample)).astype(np.int32)
    moves = [lambda x: np.transpose(x, (1, 0, 2)), lambda x: x.reshape(-1)]
    transform = fused._Transform(moves, True, sample)
    assert transform.gather is not None
    result = transform(batch)
    assert result.shape == (5, 24)
    assert np.array_equal(result, np.stack([np.transpose(row, (1, 0, 2)).reshape(-1) for row in batch]))

    arithmetic = fused._Transform([lambda x: x * 2], True, sample)
    assert arithmetic.gather is None
    assert np.array_equal(arithmetic(batch), batch * 2)

    single = fused._Transform(moves, False, sample)
    assert np.array_equal(single(batch[0]), np.transpose(batch[0], (1, 0, 2)).reshape(-1))

    floats = batch.astype(np.float64) / 3
    expected = np.stack([np.transpose(row, (1, 0, 2)).reshape(-1) for row in floats])
    assert np.array_equal(transform(floats), expected)

    flatten = fused._Transform([lambda x: x.reshape(-1)], True, sample)
    assert flatten.reshape_only and not transform.reshape_only
    flat = flatten(batch)
    assert flat.shape == (5, 24) and np.shares_memory(flat, batch)  # a view: nothing moves
    assert np.array_equal(flat, batch.reshape(5, -1))


class _Graph:
    time_step = 3
    batch = 0


def test_out_port_sends_its_own_buffer_without_a_copy_and_copies_anything_else():
    offered = fused._OutPort("model.s_out", (2, 3), np.int32, _Graph(), offer_buffer=True)
    buffer = offered.lava_dl_buffer
    assert buffer is offered.buf
    buffer[...] = 7
    offered.send(buffer)
    assert offered.stamp == 3 and np.all(offered.buf == 7)
    message = np.arange(6, dtype=np.int64).reshape(2, 3)
    offered.send(message)
    assert offered.buf is buffer and np.array_equal(offered.buf, message)
    message[0, 0] = 99  # the port holds a copy
    assert offered.buf[0, 0] == 0

    plain = fused._OutPort("synapse.a_out", (2, 3), np.int32, _Graph())
    assert plain.lava_dl_buffer is None
    with pytest.raises(AssertionError):
        plain.send(np.zeros(5))


@pytest.mark.parametrize("batch", [1, 3])
def test_batched_state_arrays_are_c_ordered_writable_copies(batch, tmp_path):
    """Each model's per-sample Vars get a C-ordered, writable array of their own (a read-only
    broadcast view fails the kernels; another memory order makes the neuron models copy every
    Var in and out at every step)."""
    import h5py
    import torch

    from lava_dl import netx, slayer

    torch.manual_seed(3)
    params = dict(threshold=0.5, current_decay=0.5, voltage_decay=0.1)
    blocks = [slayer.block.cuba.Dense(params, 12, 10, weight_scale=2), slayer.block.cuba.Dense(params, 10, 4)]
    path = tmp_path / "chain.net"
    with h5py.File(path, "w") as f:
        layers = f.create_group("layer")
        for i, block in enumerate(blocks):
            block.export_hdf5(layers.create_group(str(i)), clip_weights=True)
    net = netx.hdf5.Network(net_config=str(path))
    graph = fused.LocalGraph(fused.leaf_models(net.layers, "fixed_pt"), net.inp, net.out, batch=batch)
    checked = 0
    for model in graph.instances.values():
        for name in type(model).lava_dl_batch_vars:
            value = getattr(model, name)
            assert value.shape[0] == batch and value.flags.c_contiguous and value.flags.writeable, name
            checked += 1
    assert checked > 0
    graph.step(np.ones((batch, 12), np.int32))
    neurons = [m for m in graph.instances.values() if hasattr(m, "_lava_dl_buffers")]
    assert neurons and all(m._lava_dl_buffers[2] == () for m in neurons)  # no Var copied per step


def test_out_port_of_a_send_first_model_takes_the_array_over():
    """A synapse's port keeps the array sent (no copy) and hands back its previous buffer; an array
    it cannot keep (another dtype or shape) is copied and returned to the sender."""
    port = fused._OutPort("synapse.a_out", (2, 3), np.int32, _Graph())
    assert port.lava_dl_exchange is not None
    first = port.buf
    sent = np.arange(6, dtype=np.int32).reshape(2, 3)
    back = port.exchange(sent)
    assert back is first and port.buf is sent and port.stamp == 3
    wide = np.ones((2, 3), np.int64)
    assert port.exchange(wide) is wide and port.buf is sent and np.all(port.buf == 1)
    offered = fused._OutPort("neuron.s_out", (2, 3), np.int32, _Graph(), offer_buffer=True)
    assert offered.lava_dl_exchange is None


def test_dense_sums_in_the_narrowest_exact_dtype():
    """Binary Dense sums are made in int16 when the largest column sum of |W| fits, else wider:
    a column summing to 2**15 with every input spiking must not wrap."""
    from lava_dl.core import synapse as syn

    assert [syn.sum_dtype(b) for b in (0, 2**15 - 1, 2**15, 2**31 - 1, 2**31)] == [
        np.int16, np.int16, np.int32, np.int32, np.int64]
    n_in, n_out, batch = 200, 9, 3
    for bound in (2**15 - 1, 2**15, 2**15 + 255):
        w = RNG.integers(-255, 256, (n_out, n_in))
        w[0] = 0
        w[0, : bound // 255] = 255
        w[0, bound // 255] = bound % 255  # column 0: |w| sums to bound exactly
        s = (RNG.random((batch, n_in)) < 0.5).astype(np.int32)
        s[0] = 1
        wt = np.ascontiguousarray(w.T, dtype=np.int16)
        acc = np.zeros(n_out, syn.sum_dtype(int(np.abs(w).sum(axis=1).max())))
        for exp in (0, 3, -2):
            out = np.full((batch, n_out), 7, np.int32)
            syn.dense_fixed_rows(wt, s, True, exp, acc, out)
            exact = s.astype(np.int64) @ w.T
            expected = (exact << exp) if exp >= 0 else (exact >> -exp)
            assert np.array_equal(out, expected.astype(np.int32)), (bound, exp)
        assert out[0, 0] == bound >> 2


def test_dense_model_sums_past_int16(tmp_path):
    """The Dense model picks its sum dtype from its weights: a column of |W| summing past 2**15,
    every input spiking, gives the exact (shifted) sum."""
    from lava.magma.core.process.ports.ports import InPort, OutPort
    from lava.magma.core.process.process import AbstractProcess

    from lava_dl.proc.dense import Dense

    class Boundary(AbstractProcess):
        def __init__(self, n, m):
            super().__init__()
            self.inp, self.out = InPort(shape=(n,)), OutPort(shape=(m,))

    n_in = 200
    w = np.zeros((2, n_in), np.int32)
    w[0, :150] = 255  # 38250 > 2**15 - 1
    w[1, :100] = -255
    dense = Dense(weights=w, weight_exp=-1)
    boundary = Boundary(n_in, 2)
    boundary.inp.connect(dense.s_in)
    dense.a_out.connect(boundary.out)
    graph = fused.LocalGraph(fused.leaf_models([dense], "fixed_pt"), boundary.inp, boundary.out)
    graph.step(np.ones(n_in, np.int32))
    # MIXED sign mode drops one LSB: 255 -> 254 (150 * 254 = 38100 > 2**15 - 1), -255 -> -256
    assert list(graph.step(np.zeros(n_in, np.int32))) == [150 * 254 >> 1, -100 * 256 >> 1]


@pytest.mark.parametrize("bound, exp", [(2**15 - 1, 0), (2**15 - 1, 9), (2**15 - 1, -2), (2**15, 0)])
def test_conv_sums_in_int16_where_the_kernel_bound_fits(bound, exp, monkeypatch):
    """Binary input to a conv whose largest sum of |w| fits 16 bits is summed in int16, then shifted
    (and wrapped, past 2**23) as the wide sums are: the same activations as with wide sums only."""
    from lava.magma.core.process.ports.ports import InPort, OutPort
    from lava.magma.core.process.process import AbstractProcess

    from lava_dl.core import synapse as syn
    from lava_dl.proc.conv import Conv

    class Boundary(AbstractProcess):
        def __init__(self, n, m):
            super().__init__()
            self.inp, self.out = InPort(shape=n), OutPort(shape=m)

    weight = RNG.integers(-255, 256, (3, 3, 3, 16))
    weight[0] = 0
    flat = weight[0].reshape(-1)  # output channel 0: w >= 0 sums to bound exactly
    flat[: bound // 255] = 255
    flat[bound // 255] = bound % 255

    spikes = (RNG.random((3, 5, 5, 16)) < 0.6).astype(np.int32)
    spikes[0] = 1

    def run(wide: bool):
        if wide:
            monkeypatch.setattr(syn, "sum_dtype", lambda b: np.int64)
        conv = Conv(weight=weight, input_shape=(5, 5, 16), padding=1, weight_exp=exp)
        boundary = Boundary((5, 5, 16), (5, 5, 3))
        boundary.inp.connect(conv.s_in)
        conv.a_out.connect(boundary.out)
        graph = fused.LocalGraph(fused.leaf_models([conv], "fixed_pt"), boundary.inp, boundary.out)
        outs = [graph.step(frame).copy() for frame in [*spikes, np.zeros((5, 5, 16), np.int32)]]
        model = graph.instances[conv]
        monkeypatch.undo()
        return outs[1:], model

    narrow, model = run(False)
    assert syn.conv_sum_bound(model._plan[0]) == bound
    assert (model._narrow is not None) == (bound < 2**15)
    wide, reference = run(True)
    assert reference._narrow is None
    assert all(np.array_equal(a, b) for a, b in zip(narrow, wide))
    full = (bound << exp) if exp >= 0 else bound >> -exp
    assert narrow[0][2, 2, 0] == (full if full < 2**23 else (full + 2**23) % 2**24 - 2**23)


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("n_in", [6000, 300])
@pytest.mark.parametrize("w_dtype", [np.int32, np.float32])
def test_dense_sums_with_and_without_row_prefetch(binary, n_in, w_dtype):
    """Rows added one by one (float32 weights into float64 sums do not add as whole vectors): a weight
    matrix above ``PREFETCH_BYTES`` has the rows of the next nonzero inputs fetched ahead (a hint, no
    change to any sum). Those paths, and the register sums of int32 weights, give ``W @ s`` exactly."""
    from lava_dl.core import synapse as syn

    n_out = 100
    wt = RNG.integers(-255, 256, (n_in, n_out)).astype(w_dtype)
    assert (wt.nbytes > syn.PREFETCH_BYTES) == (n_in == 6000)
    s = RNG.integers(-(1 << 20), 1 << 20, n_in) * (RNG.random(n_in) < 0.1)
    s[-3:] = 7  # the last rows, where no row is ahead to fetch
    out = np.full(n_out, 5, np.int64 if w_dtype == np.int32 else np.float64)
    syn.dense_accumulate(wt, s.astype(out.dtype), binary, out)
    expected = (s != 0).astype(np.int64) @ wt.astype(np.int64) if binary else s @ wt.astype(np.int64)
    assert np.array_equal(out, expected)
