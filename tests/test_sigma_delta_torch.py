"""Sigma-delta training layers against the Lava per-step kernels and a plain torch reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lava_dl.core import sigma_delta as core
from lava_dl.slayer.neuron import sigma_delta as sd
from lava_dl.slayer.neuron.norm import MeanOnlyBatchNorm


def _graded_input(rng, shape, e, amp=200):
    """Synaptic sums as Lava sees them: integers in units 2^(12+e), as float64 reals."""
    a = rng.integers(-amp, amp, shape) * rng.integers(1, 1 << (6 + e), shape)
    a[rng.random(shape) < 0.3] = 0
    return a, torch.from_numpy(a / 2.0 ** (12 + e))


def _lava_run(spec, a, params, steps):
    """Run ``spec.fixed_step`` over time on flat neurons; return (messages (n, T), final states)."""
    n = a.shape[0]
    states = [np.zeros(n, np.int32) for _ in spec.states]
    par = [np.broadcast_to(np.asarray(params[p.name], np.int32), (n,)).copy() for p in spec.params]
    out = np.zeros(n, np.int32)
    msgs = np.zeros((n, steps), np.int64)
    for t in range(steps):
        spec.fixed_step(*states, a[:, t].astype(np.int64), *par, out)
        msgs[:, t] = out
    return msgs, dict(zip(spec.state_names, states))


@pytest.mark.parametrize("activation", [F.relu, None])
@pytest.mark.parametrize("cum_error", [False, True])
@pytest.mark.parametrize("spike_exp", [0, 3, 6])
def test_neuron_forward_equals_fixed_step(activation, cum_error, spike_exp):
    rng = np.random.default_rng(spike_exp + 10 * cum_error)
    shape, steps = (8, 5, 5), 50  # 8 x 25 neurons x 50 steps = 10,000 neuron-steps
    a, x = _graded_input(rng, (8, 5, 5, steps), spike_exp)
    neuron = sd.Neuron(
        threshold=0.15, activation=activation, cum_error=cum_error, spike_exp=spike_exp, persistent_state=True
    )
    y = neuron(x)
    mode = core.ACT_RELU if activation is not None else core.ACT_UNIT
    params = dict(
        vth=neuron.v_th_mant,
        bias=0,
        act_mode=mode,
        cum_error=int(cum_error),
        spike_exp=spike_exp,
        state_exp=6,
    )
    msgs, states = _lava_run(core.SIGMA_DELTA, a.reshape(-1, steps), params, steps)
    got = (y * 2.0 ** (6 + spike_exp)).reshape(-1, steps).numpy()
    assert np.count_nonzero(msgs) > 0
    assert np.array_equal(got, msgs)
    for name in core.SIGMA_DELTA.state_names:
        assert np.array_equal(neuron._states[name].numpy(), states[name]), name
    assert neuron.device_params() == {
        "type": "SDNN",
        "activation": "relu" if activation else "identity",
        "vThMant": 9,
        **({"cumError": True} if cum_error else {}),
    }
    assert neuron.shape == shape[1:]


def test_norm_deploys_as_bias():
    rng = np.random.default_rng(3)
    steps = 40
    a, x = _graded_input(rng, (3, 6, steps), 6)
    neuron = sd.Neuron(threshold=0.1, activation=F.relu, norm=MeanOnlyBatchNorm)
    neuron.train()
    neuron(x)  # updates the running mean
    neuron.eval()
    y = neuron(x)
    bias = neuron.bias
    assert np.any(bias != 0)
    params = dict(
        vth=neuron.v_th_mant, bias=np.tile(bias, 3), act_mode=1, cum_error=0, spike_exp=6, state_exp=6
    )
    msgs, _ = _lava_run(core.SIGMA_DELTA, a.reshape(-1, steps), params, steps)
    assert np.array_equal((y * 4096).reshape(-1, steps).numpy(), msgs)


def test_delta_and_sigma_forward_equal_fixed_step():
    rng = np.random.default_rng(4)
    steps = 60
    raw = rng.integers(-300, 300, (8, 25, steps))
    raw[..., 1::3] = raw[..., 0::3][..., : raw[..., 1::3].shape[-1]]  # repeats -> small deltas
    for e in (2, 6):
        enc = sd.Delta(threshold=0.5, spike_exp=e, cum_error=True, persistent_state=True)
        y = enc(torch.from_numpy(raw / 64.0).float())
        params = dict(vth=32, cum_error=1, spike_exp=e, state_exp=6)
        msgs, states = _lava_run(core.DELTA, raw.reshape(-1, steps), params, steps)
        assert np.array_equal((y.double() * 2.0 ** (6 + e)).reshape(-1, steps).numpy(), msgs)
        for name in core.DELTA.state_names:
            assert np.array_equal(enc._states[name].numpy(), states[name])
    a, x = _graded_input(rng, (8, 25, steps), 6)
    out = sd.Sigma()(x)
    msgs, _ = _lava_run(core.SIGMA, a.reshape(-1, steps), {}, steps)
    assert np.array_equal((out * 2.0**18).reshape(-1, steps).numpy(), msgs)


def test_float32_input_on_grid_is_exact():
    rng = np.random.default_rng(5)
    a, x = _graded_input(rng, (2, 10, 30), 6, amp=60)
    n64 = sd.Neuron(threshold=0.05, activation=F.relu)
    n32 = sd.Neuron(threshold=0.05, activation=F.relu)
    assert torch.equal(n64(x).float(), n32(x.float()))


def _reference(x, theta, act_fn, cum_error, spike_exp, tau_grad, scale_grad):
    """Plain torch sigma-delta in float64 with lava-dl's straight-through gradients."""
    unit = 2.0 ** (12 + spike_exp)
    sigma = torch.cumsum(x, dim=-1)
    act = act_fn(sigma)
    th = torch.trunc(theta.detach() * 64) / 64
    prev = torch.zeros_like(act[..., 0])
    res = torch.zeros_like(prev)
    err = torch.zeros_like(prev)
    outs, deltas = [], []
    for t in range(x.shape[-1]):
        delta = act[..., t].detach() - prev + res
        if cum_error:
            err = err + delta
            fire = err.abs() >= th
        else:
            fire = delta.abs() >= th
        y = torch.where(fire, delta, torch.zeros_like(delta))
        if cum_error:
            err = torch.where(y != 0, torch.zeros_like(err), err)
        res = delta - y
        prev = act[..., t].detach()
        outs.append(torch.floor(y * unit / 64) / (unit / 64))
        deltas.append(delta)
    out = torch.stack(outs, -1)
    delta = torch.stack(deltas, -1)
    # straight-through: ∂out/∂Δ = 1 with Δ[t] = act[t] - act[t-1]
    diff = act - F.pad(act[..., :-1], (1, 0))
    thc = th.clamp(min=1 / 4096.0)
    sub = delta.abs() - thc
    coef = torch.where(sub > 0, -delta * scale_grad * torch.exp(-sub / tau_grad) / thc, -torch.sign(delta))
    return out + (diff - diff.detach()) + coef.detach() * (theta - theta.detach())


@pytest.mark.parametrize("activation", [F.relu, None])
@pytest.mark.parametrize("cum_error", [False, True])
def test_backward_matches_plain_torch(activation, cum_error):
    rng = np.random.default_rng(6 + cum_error)
    _, x = _graded_input(rng, (3, 4, 25), 6)
    g = torch.from_numpy(rng.standard_normal((3, 4, 25)))
    neuron = sd.Neuron(
        threshold=0.2,
        activation=activation,
        cum_error=cum_error,
        requires_grad=True,
        tau_grad=0.5,
        scale_grad=2.0,
    )
    x1 = x.clone().requires_grad_()
    y = neuron(x1)
    (y * g).sum().backward()
    x2 = x.clone().requires_grad_()
    theta = torch.tensor([0.2], dtype=torch.float64, requires_grad=True)
    act_fn = activation if activation is not None else (lambda v: v)
    ref = _reference(x2, theta, act_fn, cum_error, 6, 0.5, 2.0)
    assert torch.equal(y.double(), ref.detach())
    (ref * g).sum().backward()
    assert torch.allclose(x1.grad, x2.grad, rtol=1e-12, atol=1e-12)
    assert torch.allclose(neuron.delta_threshold.grad.double(), theta.grad, rtol=1e-5)
    assert theta.grad.abs().item() > 0 and x1.grad.abs().sum() > 0
    assert torch.count_nonzero(y) > 0


def test_sigma_and_delta_backward():
    rng = np.random.default_rng(8)
    _, x = _graded_input(rng, (2, 3, 12), 6)
    g = torch.from_numpy(rng.standard_normal((2, 3, 12)))
    x1 = x.clone().requires_grad_()
    (sd.Sigma()(x1) * g).sum().backward()
    assert torch.allclose(x1.grad, g.flip(-1).cumsum(-1).flip(-1))
    x2 = (x * 64).round().div(64).requires_grad_()
    (sd.Delta(0.1)(x2) * g).sum().backward()
    assert torch.allclose(x2.grad, g - F.pad(g[..., 1:], (0, 1)))


@pytest.mark.parametrize("module", ["neuron", "delta", "sigma"])
def test_persistent_state_split(module):
    rng = np.random.default_rng(9)
    a, x = _graded_input(rng, (2, 7, 40), 6)

    def make():
        if module == "neuron":
            return sd.Neuron(0.1, F.relu, cum_error=True, persistent_state=True)
        if module == "delta":
            return sd.Delta(0.1, cum_error=True, persistent_state=True)
        return sd.Sigma(persistent_state=True)

    whole = make()(x)
    split = make()
    parts = torch.cat([split(x[..., :13]), split(x[..., 13:])], dim=-1)
    assert torch.equal(whole, parts)
    assert torch.count_nonzero(whole) > 0
    # not persistent: every call starts from zero, as Lava's SigmaDelta started on the second part
    fresh = sd.Neuron(0.1, F.relu, cum_error=True)
    fresh(x[..., :13])
    restarted = fresh(x[..., 13:])
    params = dict(vth=fresh.v_th_mant, bias=0, act_mode=1, cum_error=1, spike_exp=6, state_exp=6)
    msgs, _ = _lava_run(core.SIGMA_DELTA, a[..., 13:].reshape(14, -1), params, 27)
    assert np.array_equal((restarted * 4096).reshape(14, -1).numpy(), msgs)
    continued = sd.Neuron(0.1, F.relu, cum_error=True, persistent_state=True)
    continued(x[..., :13])
    assert not torch.equal(restarted, continued(x[..., 13:])), "the states do not matter for this input"


def test_per_channel_threshold_exports_array():
    neuron = sd.Neuron([0.1][0], F.relu, shared_param=False, shape=(3, 2))
    neuron.delta_threshold.data = torch.tensor([0.1, 0.2, 0.5])
    assert neuron.device_params()["vThMant"].tolist() == [6, 12, 32]
    rng = np.random.default_rng(10)
    a, x = _graded_input(rng, (2, 3, 2, 20), 6)
    y = neuron(x)
    vth = np.broadcast_to(np.array([6, 12, 32])[None, :, None], (2, 3, 2)).reshape(-1)
    params = dict(vth=vth, bias=0, act_mode=1, cum_error=0, spike_exp=6, state_exp=6)
    msgs, _ = _lava_run(core.SIGMA_DELTA, a.reshape(-1, 20), params, 20)
    assert np.array_equal((y * 4096).reshape(-1, 20).numpy(), msgs)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="bit-exactly"):
        sd.Neuron(0.1, torch.tanh)
    with pytest.raises(ValueError, match="cannot be deployed"):
        sd.Neuron(0.1, "sigmoid")
    with pytest.raises(ValueError, match="scale must be 64"):
        sd.Neuron(0.1, F.relu, scale=32)
    with pytest.raises(ValueError, match="threshold"):
        sd.Neuron(-1, F.relu)
    with pytest.raises(ValueError, match="spike_exp"):
        sd.Neuron(0.1, F.relu, spike_exp=9)
    with pytest.raises(ValueError, match="float64"):
        sd.Neuron(0.1, F.relu)(torch.full((1, 2, 3), 100.0))
    with pytest.raises(ValueError, match="N, C"):
        sd.Neuron(0.1, F.relu)(torch.zeros(3, 4))
    assert sd.activation_mode(lambda v: torch.clamp(v, min=0)) == (core.ACT_RELU, "relu")
    assert sd.activation_mode(torch.nn.Identity()) == (core.ACT_UNIT, "identity")
    sd.Neuron(0.1, F.relu, check_precision=False)(torch.full((1, 2, 3), 100.0))


def test_time_major_input_equals_time_last():
    """A time-major input (as the synapses produce) is read in place and gives the same numbers."""
    rng = np.random.default_rng(11)
    _, x = _graded_input(rng, (4, 6, 5, 30), 6)
    g = torch.from_numpy(rng.standard_normal(x.shape))
    x_tm = x.movedim(-1, 1).contiguous().movedim(1, -1)
    assert torch.equal(x_tm, x) and x_tm.stride() != x.stride()
    results = []
    for inp in (x, x_tm):
        neuron = sd.Neuron(0.1, F.relu, cum_error=True, requires_grad=True, tau_grad=0.5, scale_grad=2.0)
        leaf = inp.detach().requires_grad_()
        y = neuron(leaf)
        assert y.movedim(-1, 1).is_contiguous()  # outputs are stored time-major
        (y * g).sum().backward()
        results.append((y, leaf.grad, neuron.delta_threshold.grad))
    (y0, gx0, gt0), (y1, gx1, gt1) = results
    assert torch.count_nonzero(y0) > 0 and gx0.abs().sum() > 0
    assert torch.equal(y0, y1)
    assert torch.equal(gx0, gx1)
    assert torch.equal(gt0, gt1)
