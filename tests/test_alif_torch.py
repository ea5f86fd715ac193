"""slayer ALIF neuron: forward equals the Lava fixed-point step, backward equals autograd of a torch loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lava_dl.core import alif as core
from lava_dl.slayer.neuron import alif
from lava_dl.slayer.neuron.norm import MeanOnlyBatchNorm

_EMPTY = np.zeros((0, 0, 0), np.int32)


def _grid_input(shape, seed, amplitude=48):
    """Synaptic input on the 1/scale grid (what quantized weights produce)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(-amplitude, amplitude, shape, generator=gen).float() / 64


def _neuron(rng, **kwargs):
    args = dict(threshold=int(rng.integers(16, 400)) / 64, threshold_step=int(rng.integers(0, 200)) / 64,
                current_decay=int(rng.integers(0, 4097)) / 4096,
                voltage_decay=int(rng.integers(0, 4097)) / 4096,
                threshold_decay=int(rng.integers(0, 4097)) / 4096,
                refractory_decay=int(rng.integers(0, 4097)) / 4096)
    args.update(kwargs)
    return alif.Neuron(**args)


def _lava_reference(x_int, neuron, x_shape):
    """Step the Lava ProcessModel rule (core.fixed_step) over time: spikes, u, v, th, r per step."""
    rows, steps = x_int.shape
    values = neuron.spec_values()
    like = torch.zeros(x_shape)
    per_row = {k: np.broadcast_to(np.asarray(values[k]), (rows,)) for k in ("vth", "vth_step")}
    for key, param in (("du", neuron.current_decay), ("dv", neuron.voltage_decay),
                       ("dth", neuron.threshold_decay), ("dref", neuron.refractory_decay)):
        per_row[key] = torch.round(neuron.per_row(param.detach(), like)).to(torch.int64).numpy()
    states = [np.zeros(rows, np.int32) for _ in range(4)]
    s = np.zeros(rows, np.int32)
    keys = ("du", "dv", "dth", "dref", "vth", "vth_step")
    params = [np.ascontiguousarray(per_row[k], np.int32) for k in keys]
    params += [np.zeros(rows, np.int32), np.zeros(rows, np.int32), np.zeros(rows, np.int32)]
    out = [np.zeros((rows, steps), np.int64) for _ in range(5)]
    for t in range(steps):
        core.fixed_step(*states, x_int[:, t].astype(np.int64), *params, s)
        for rec, value in zip(out, [s, *states]):
            rec[:, t] = value
    return out


@pytest.mark.parametrize("seed", range(4))
def test_forward_equals_lava_step(seed):
    rng = np.random.default_rng(seed)
    shared = seed % 2 == 0
    kwargs = {} if shared else dict(shared_param=False, shape=(7,), current_decay=(0.05, 0.6),
                                    voltage_decay=(0.0, 0.2), threshold_decay=(0.0, 0.3),
                                    refractory_decay=(0.1, 0.9))
    neuron = _neuron(rng, persistent_state=True, **kwargs)
    x = _grid_input((3, 7, 60), seed, amplitude=int(rng.integers(40, 4000)))
    current, voltage, spikes = neuron.run(x)
    x_int = (x * 64).reshape(-1, 60).numpy().astype(np.int64)
    s_ref, u_ref, v_ref, th_ref, r_ref = _lava_reference(x_int, neuron, x.shape)
    assert 0 < s_ref.sum() < s_ref.size
    assert np.array_equal(spikes.reshape(-1, 60).numpy(), s_ref)
    assert np.array_equal((current * 4096).reshape(-1, 60).numpy(), u_ref)
    assert np.array_equal((voltage * 4096).reshape(-1, 60).numpy(), v_ref)
    for name, ref in zip("u v th r".split(), (u_ref, v_ref, th_ref, r_ref)):
        assert np.array_equal(neuron._states[name].numpy(), ref[:, -1]), name

    # the kernel's records of the adaptation and refractory states, step by step
    rows = x_int.shape[0]
    like = torch.zeros(x.shape)
    du = torch.round(neuron.per_row(neuron.current_decay.detach(), like)).to(torch.int64).numpy()
    dv = torch.round(neuron.per_row(neuron.voltage_decay.detach(), like)).to(torch.int64).numpy()
    # the kernel takes (B, T, K) arrays: here (rows, T, 1), per-neuron values (rows, 1)
    records = [np.empty((rows, 60, 1), np.int32) for _ in range(5)]
    s = np.empty((rows, 60, 1), np.float32)
    init = np.zeros((4, rows, 1), np.int64)
    final = np.empty_like(init)
    params = [p.reshape(rows, 1) for p in (du, dv, *neuron._params(x))]
    core.alif_forward(x.reshape(-1, 60, 1).numpy(), float(neuron.s_scale), *params, init, False, final, s,
                      *records)
    s = s[..., 0]
    _, u_rec, v_rec, th_rec, r_rec = (r[..., 0] for r in records)
    for rec, ref in zip((s, u_rec, v_rec, th_rec, r_rec), (s_ref, u_ref, v_ref, th_ref, r_ref)):
        assert np.array_equal(rec, ref)


def test_forward_with_norm_equals_lava_step_with_bias():
    """A norm acts on the input: it deploys as the input-side bias of fixed_step."""
    rng = np.random.default_rng(5)
    neuron = _neuron(rng, norm=MeanOnlyBatchNorm, threshold=2.0, shape=(5,))
    neuron.norm.eval()
    with torch.no_grad():
        neuron.norm.running_mean.fill_(-0.25)
    x = _grid_input((2, 5, 40), 5, amplitude=100)
    _, _, spikes = neuron.run(x)
    rows = 10
    s_ref = np.zeros((rows, 40), np.int64)
    states = [np.zeros(rows, np.int32) for _ in range(4)]
    values = neuron.spec_values()
    params = [np.full(rows, values[k], np.int32) for k in ("du", "dv", "dth", "dref", "vth", "vth_step")]
    params += [np.full(rows, 16, np.int32), np.full(rows, 6, np.int32)]  # 0.25 * 64 << 6
    params += [np.zeros(rows, np.int32)]  # binary spikes
    s = np.zeros(rows, np.int32)
    x_int = (x * 64).reshape(rows, 40).numpy().astype(np.int64)
    for t in range(40):
        core.fixed_step(*states, x_int[:, t], *params, s)
        s_ref[:, t] = s
    assert s_ref.sum() > 0
    assert np.array_equal(spikes.reshape(rows, 40).numpy(), s_ref)


class _Spike(torch.autograd.Function):
    """``margin >= 0`` with lava-dl's Laplace surrogate (or the one-sided graded one) at the margin."""

    @staticmethod
    def forward(ctx, margin, tau, scale, graded):
        ctx.save_for_backward(margin)
        ctx.c = (tau, scale, graded)
        return (margin >= 0).to(margin.dtype)

    @staticmethod
    def backward(ctx, g):
        (margin,) = ctx.saved_tensors
        tau, scale, graded = ctx.c
        if graded:
            rho = scale * torch.exp(margin.clamp(max=0) / tau)
        else:
            rho = scale / (2 * tau) * torch.exp(-margin.abs() / tau)
        return g * rho, None, None, None


def _ste(value_float, value_exact):
    return value_float + (value_exact - value_float).detach()


def _torch_loop(x, cd, vd, neuron, u_rec, v_rec, margin_rec):
    """The same math as a plain autograd loop (integer values enter through straight-through).

    The threshold ``θ + r`` (recorded as ``v - margin``) has no gradient, as in lava-dl.
    """
    rows, steps = x.shape
    s_scale = neuron.s_scale
    du = _ste(cd, torch.round(cd))
    dv = _ste(vd, torch.round(vd))
    u = torch.zeros(rows, dtype=torch.float64)
    v = torch.zeros(rows, dtype=torch.float64)
    _, tau, scale = neuron.surrogate
    spikes, currents, voltages = [], [], []
    for t in range(steps):
        u = _ste(u * (1 - du / 4096) + x[:, t], u_rec[:, t] / s_scale)
        v = _ste(v * (1 - dv / 4096) + u, v_rec[:, t] / s_scale)
        threshold = (v_rec[:, t] - margin_rec[:, t]) / s_scale
        s = _Spike.apply(v - threshold, tau, scale, neuron.graded_spike)
        if neuron.graded_spike:  # payload v; the gradient is the surrogate alone, as in the kernels
            s = _ste(s, s * v.detach())
        spikes.append(s)
        currents.append(u)
        voltages.append(v)
    return [torch.stack(z, dim=1) for z in (spikes, currents, voltages)]


def _records(neuron, x):
    """Integer current, voltage and surrogate margin of the kernel, ``(rows, T)`` float64."""
    rows, steps = x[..., 0].numel(), x.shape[-1]
    du = torch.round(neuron.per_row(neuron.current_decay.detach(), x)).to(torch.int64).numpy()
    dv = torch.round(neuron.per_row(neuron.voltage_decay.detach(), x)).to(torch.int64).numpy()
    records = [np.empty((rows, steps, 1), np.int32) for _ in range(3)]
    init = np.zeros((4, rows, 1), np.int64)
    xs = x.detach().reshape(rows, steps, 1).numpy()
    params = [p.reshape(rows, 1) for p in (du, dv, *neuron._params(x))]
    core.alif_forward(xs, float(neuron.s_scale), *params, init, neuron.graded_spike,
                      np.empty_like(init), np.empty((rows, steps, 1), np.float32),
                      records[0], records[1], records[2], _EMPTY, _EMPTY)
    margin, u, v = (torch.from_numpy(r[..., 0].astype(np.float64)) for r in records)
    return u, v, margin


@pytest.mark.parametrize("seed, graded, use_states", [(0, False, False), (1, False, True), (2, True, True)])
def test_backward_equals_autograd_of_torch_loop(seed, graded, use_states):
    rng = np.random.default_rng(seed)
    neuron = _neuron(rng, threshold=0.5, threshold_step=0.25, current_decay=0.2, voltage_decay=0.05,
                     tau_grad=0.5, requires_grad=True, graded_spike=graded)
    x = _grid_input((2, 5, 40), seed, amplitude=40).requires_grad_()
    current, voltage, spikes = neuron.run(x)
    weights = [torch.randn_like(spikes) for _ in range(3)]
    loss = (spikes * weights[0]).sum()
    if use_states:
        loss = loss + (current * weights[1]).sum() + (voltage * weights[2]).sum()
    loss.backward()

    x2 = x.detach().reshape(-1, 40).double().requires_grad_()
    cd = neuron.current_decay.detach().double().clone().requires_grad_()
    vd = neuron.voltage_decay.detach().double().clone().requires_grad_()
    u_rec, v_rec, margin_rec = _records(neuron, x.detach())
    assert torch.equal(u_rec / neuron.s_scale, current.detach().reshape(-1, 40).double())
    assert torch.equal(v_rec / neuron.s_scale, voltage.detach().reshape(-1, 40).double())
    s_loop, u_loop, v_loop = _torch_loop(x2, cd, vd, neuron, u_rec, v_rec, margin_rec)
    assert torch.equal(s_loop.float(), spikes.detach().reshape(-1, 40))
    assert 0 < (s_loop != 0).sum() < s_loop.numel()
    loss_loop = (s_loop * weights[0].reshape(-1, 40).double()).sum()
    if use_states:
        loss_loop = loss_loop + (u_loop * weights[1].reshape(-1, 40).double()).sum()
        loss_loop = loss_loop + (v_loop * weights[2].reshape(-1, 40).double()).sum()
    loss_loop.backward()

    assert x.grad.abs().sum() > 0
    torch.testing.assert_close(x.grad.reshape(-1, 40).double(), x2.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(neuron.current_decay.grad.double(), cd.grad, rtol=1e-4, atol=1e-9)
    torch.testing.assert_close(neuron.voltage_decay.grad.double(), vd.grad, rtol=1e-4, atol=1e-9)


def test_no_grad_and_eval_paths_match():
    neuron = _neuron(np.random.default_rng(1), requires_grad=True)
    x = _grid_input((2, 3, 30), 1, amplitude=200)
    spikes = neuron(x.requires_grad_())
    with torch.no_grad():
        again = neuron(x)
    assert not again.requires_grad
    assert torch.equal(spikes.detach(), again)


def test_persistent_state_split_equals_one_run():
    one = _neuron(np.random.default_rng(11), persistent_state=True)
    two = _neuron(np.random.default_rng(11), persistent_state=True)
    x = _grid_input((2, 4, 50), 11, amplitude=600)
    full = one(x)
    split = torch.cat([two(x[..., :17]), two(x[..., 17:33]), two(x[..., 33:])], dim=-1)
    assert full.sum() > 0
    assert torch.equal(full, split)
    for name in ("u", "v", "th", "r"):
        assert torch.equal(one._states[name], two._states[name]), name
    # a different batch size restarts from zero
    assert torch.equal(two(x[:1]), _neuron(np.random.default_rng(11))(x[:1]))


def test_graded_spike_payload_is_voltage():
    neuron = alif.Neuron(threshold=0.5, threshold_step=0.0, current_decay=1.0, voltage_decay=1.0,
                         threshold_decay=1.0, refractory_decay=1.0, graded_spike=True)
    x = torch.tensor([[[0.25, 0.5, 1.5]]])
    assert neuron(x).tolist() == [[[0.0, 0.5, 1.5]]]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(current_decay=1.5), "current_decay"),
        (dict(voltage_decay=-0.1), "voltage_decay"),
        (dict(threshold_decay=2.0), "threshold_decay"),
        (dict(refractory_decay=-1.0), "refractory_decay"),
        (dict(threshold_step=-1.0), "threshold_step"),
        (dict(threshold_step=5000.0), "threshold_step"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = dict(threshold=1.0, threshold_step=0.1, current_decay=0.1, voltage_decay=0.1, threshold_decay=0.1,
                refractory_decay=0.1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        alif.Neuron(**args)


def test_wrong_input_is_named():
    neuron = alif.Neuron(threshold=1.0, threshold_step=0.1, current_decay=0.1, voltage_decay=0.1,
                         threshold_decay=0.1, refractory_decay=0.1, shape=(5,))
    with pytest.raises(ValueError, match="shape"):
        neuron(torch.zeros(2, 4, 10))
    with pytest.raises(ValueError, match="expects input"):
        neuron(torch.zeros(5, 10))


def test_disabled_threshold_never_spikes():
    """threshold=None (as Affine blocks use) means no spike at any voltage, like CUBA."""
    neuron = alif.Neuron(threshold=None, threshold_step=0.5, current_decay=1.0, voltage_decay=0.0,
                         threshold_decay=0.1, refractory_decay=0.1)
    x = torch.full((1, 3, 20), 2.0)
    current, voltage, spikes = neuron.run(x)
    assert spikes.sum() == 0 and voltage[..., -1].min() > 0


@pytest.mark.parametrize("graded", [False, True])
def test_time_major_input_gives_identical_results(graded):
    """Time-major input (read in place) and time-last input: identical states, spikes and gradients."""
    results = []
    for time_major in (False, True):
        torch.manual_seed(0)
        neuron = alif.Neuron(threshold=0.5, threshold_step=0.25, current_decay=(0.1, 0.3),
                             voltage_decay=(0.02, 0.1), threshold_decay=0.1, refractory_decay=0.2,
                             shared_param=False, shape=(5, 3, 2), requires_grad=True, graded_spike=graded,
                             persistent_state=True)
        x = torch.randint(-40, 60, (2, 5, 3, 2, 30), generator=torch.Generator().manual_seed(2)) / 64
        if time_major:
            x = x.movedim(-1, 1).contiguous().movedim(1, -1)
        x.requires_grad_()
        current, voltage, spikes = neuron.run(x)
        weights = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
        ((spikes * weights).sum() + (voltage * weights).sum() * 1e-3).backward()
        results.append((current, voltage, spikes, x.grad, neuron.current_decay.grad,
                        neuron.voltage_decay.grad, *(neuron._states[n] for n in "u v th r".split())))
    assert results[0][2].sum() > 0
    for a, b in zip(*results):
        assert torch.equal(a, b)
