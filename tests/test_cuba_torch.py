"""slayer CUBA neuron: forward equals the Lava fixed-point step, backward equals autograd of a torch loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lava_dl.core import cuba as core
from lava_dl.slayer.neuron import cuba


def _grid_input(shape, seed, amplitude=48):
    """Synaptic input on the 1/scale grid (what quantized weights produce)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(-amplitude, amplitude, shape, generator=gen).float() / 64


def _lava_reference(x_int, du, dv, vth):
    """Run the Lava ProcessModel step (core.fixed_step) over time: spikes, u, pre-reset v."""
    rows, steps = x_int.shape
    u = np.zeros(rows, np.int32)
    v = np.zeros(rows, np.int32)
    s = np.zeros(rows, np.int32)
    p = [np.full(rows, val, np.int32) for val in (du, dv, vth, 0, 0, 0)]
    spikes, us, vs = (np.zeros((rows, steps), np.int64) for _ in range(3))
    for t in range(steps):
        v_before = v.copy()
        u_before = u.copy()
        core.fixed_step(u, v, x_int[:, t].astype(np.int64), *p, s)
        spikes[:, t], us[:, t] = s, u
        # recorded (pre-reset) voltage: recompute from the update rule's inputs
        vs[:, t] = np.where(s == 1, _pre_reset(v_before, u, dv), v)
        del u_before
    return spikes, us, vs


def _pre_reset(v_prev, u, dv):
    d = v_prev.astype(np.int64) * (4096 - dv)
    decayed = np.sign(d) * (np.abs(d) >> 12)
    return np.clip(decayed + u, -(2**23 - 1), 2**23 - 1)


@pytest.mark.parametrize("seed", range(4))
def test_forward_equals_lava_step(seed):
    rng = np.random.default_rng(seed)
    threshold = int(rng.integers(1, 3000)) / 64
    cd, vd = rng.integers(0, 4097, 2) / 4096
    neuron = cuba.Neuron(threshold=threshold, current_decay=cd, voltage_decay=vd)
    x = _grid_input((3, 7, 60), seed, amplitude=int(rng.integers(8, 4000)))
    current, voltage, spikes = neuron.run(x)
    x_int = (x * 64).reshape(-1, 60).numpy().astype(np.int64)
    s_ref, u_ref, v_ref = _lava_reference(x_int, round(cd * 4096), round(vd * 4096), neuron.v_th_mant)
    assert s_ref.sum() > 0
    assert np.array_equal(spikes.reshape(-1, 60).numpy(), s_ref)
    assert np.array_equal((current * 4096).reshape(-1, 60).numpy(), u_ref)
    assert np.array_equal((voltage * 4096).reshape(-1, 60).numpy(), v_ref)


def test_strict_threshold_for_large_thresholds():
    """v exactly at threshold does not spike, even where float32 would lose lava-dl's eps."""
    for mant in (5, 4096, 100000):
        neuron = cuba.Neuron(threshold=mant / 64, current_decay=1.0, voltage_decay=1.0)
        x = torch.tensor([[[mant / 64, mant / 64 + 1 / 64]]])
        spikes = neuron(x)
        assert spikes.tolist() == [[[0.0, 1.0]]]


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, v_th, theta, tau, scale):
        ctx.save_for_backward(v)
        ctx.c = (theta, tau, scale)
        return (v > v_th).to(v.dtype)

    @staticmethod
    def backward(ctx, g):
        (v,) = ctx.saved_tensors
        theta, tau, scale = ctx.c
        return g * scale / (2 * tau) * torch.exp(-(v - theta).abs() / tau), None, None, None, None


def _ste(value_float, value_exact):
    return value_float + (value_exact - value_float).detach()


def _torch_loop(x, cd, vd, neuron, u_rec, v_rec, lava_dl_decay=False):
    """The same math as a plain autograd loop (integer values enter through straight-through).

    With ``lava_dl_decay`` the voltage decay acts, for the gradient, on the previous step's voltage
    before its reset (what lava-dl's decay gradient reads); the values are the recorded ones either way.
    """
    rows, steps = x.shape
    s_scale = neuron.s_scale
    du = _ste(cd, torch.round(cd))
    dv = _ste(vd, torch.round(vd))
    u = torch.zeros(rows, dtype=torch.float64)
    v = torch.zeros(rows, dtype=torch.float64)
    theta, tau, scale = neuron.surrogate
    v_before_reset = v
    out = []
    for t in range(steps):
        u = _ste(u * (1 - du / 4096) + x[:, t], u_rec[:, t] / s_scale)
        v_new = _ste((v_before_reset if lava_dl_decay else v) * (1 - dv / 4096) + u, v_rec[:, t] / s_scale)
        s = _Spike.apply(v_new, neuron.v_th_mant * 64 / s_scale, theta, tau, scale)
        v = v_new - (v_new * s).detach()
        v_before_reset = v_new
        out.append(s)
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("seed", range(3))
def test_backward_equals_autograd_of_torch_loop(seed):
    torch.manual_seed(seed)
    neuron = cuba.Neuron(threshold=0.5, current_decay=0.2, voltage_decay=0.05, requires_grad=True)
    x = _grid_input((2, 5, 40), seed, amplitude=40).requires_grad_()
    current, voltage, spikes = neuron.run(x)
    weights = torch.randn_like(spikes)
    (spikes * weights).sum().backward()

    x2 = x.detach().reshape(-1, 40).double().requires_grad_()
    cd = neuron.current_decay.detach().double().clone().requires_grad_()
    vd = neuron.voltage_decay.detach().double().clone().requires_grad_()
    u_rec = (current.detach() * neuron.s_scale).reshape(-1, 40).double()
    v_rec = (voltage.detach() * neuron.s_scale).reshape(-1, 40).double()
    s_loop = _torch_loop(x2, cd, vd, neuron, u_rec, v_rec)
    assert torch.equal(s_loop.float(), spikes.detach().reshape(-1, 40))
    (s_loop * weights.reshape(-1, 40).double()).sum().backward()

    assert x.grad.abs().sum() > 0
    torch.testing.assert_close(x.grad.reshape(-1, 40).double(), x2.grad, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(neuron.current_decay.grad.double(), cd.grad, rtol=1e-4, atol=1e-9)
    torch.testing.assert_close(neuron.voltage_decay.grad.double(), vd.grad, rtol=1e-4, atol=1e-9)


def _time_major(x: torch.Tensor) -> torch.Tensor:
    """The same values stored time-major (memory ``N, T, ...``), as the synapses produce them."""
    return x.movedim(-1, 1).contiguous().movedim(1, -1)


@pytest.mark.parametrize("shape, graded",
                         [((3, 7, 60), False), ((2, 3, 4, 5, 30), False), ((3, 7, 60), True)])
def test_time_major_input_gives_identical_results(shape, graded):
    """Time-major input (read in place) and time-last input: identical states, spikes and gradients."""
    results = []
    for layout in (lambda t: t, _time_major):
        torch.manual_seed(0)  # same random per-channel decays for both neurons
        neuron = cuba.Neuron(threshold=0.5, current_decay=(0.1, 0.3), voltage_decay=(0.02, 0.1),
                             shared_param=False, shape=shape[1:-1], requires_grad=True, graded_spike=graded)
        x = layout(_grid_input(shape, 5, amplitude=60)).requires_grad_()
        current, voltage, spikes = neuron.run(x)
        weights = torch.randn(shape, generator=torch.Generator().manual_seed(1))
        ((spikes * weights).sum() + (voltage * weights).sum() * 1e-3).backward()
        results.append((x.stride(), current, voltage, spikes, x.grad, neuron.current_decay.grad,
                        neuron.voltage_decay.grad))
    (stride_a, *values_a), (stride_b, *values_b) = results
    assert stride_a != stride_b and stride_b[-1] != 1
    assert values_a[2].sum() > 0
    for a, b in zip(values_a, values_b):
        assert torch.equal(a, b)

def test_persistent_state_split_equals_one_run():
    x = _grid_input((2, 4, 50), 11, amplitude=60)
    one = cuba.Neuron(threshold=1.0, current_decay=0.1, voltage_decay=0.1, persistent_state=True)
    two = cuba.Neuron(threshold=1.0, current_decay=0.1, voltage_decay=0.1, persistent_state=True)
    full = one(x)
    split = torch.cat([two(x[..., :17]), two(x[..., 17:])], dim=-1)
    assert torch.equal(full, split)


def test_per_channel_decays_and_export():
    neuron = cuba.Neuron(threshold=1.0, current_decay=(0.1, 0.5), voltage_decay=0.2, shared_param=False,
                         shape=(6,))
    params = neuron.device_params()
    assert params["type"] == "CUBA" and params["iDecay"].shape == (6,)
    assert params["vThMant"] == 64 and params["refDelay"] == 1 and params["gradedSpike"] is False
    assert np.all((params["iDecay"] >= 409) & (params["iDecay"] <= 2048))
    # the exported integers are the stored decays rounded half to even, per channel
    with torch.no_grad():
        neuron.current_decay.copy_(torch.tensor([409.4, 409.5, 410.5, 2047.5, 0.5, 4095.6]))
    assert neuron.device_params()["iDecay"].tolist() == [409, 410, 410, 2048, 0, 4096]


def test_graded_spike_payload_is_voltage():
    neuron = cuba.Neuron(threshold=0.5, current_decay=1.0, voltage_decay=1.0, graded_spike=True)
    x = torch.tensor([[[0.25, 0.75, 1.5]]])
    assert neuron(x).tolist() == [[[0.0, 0.75, 1.5]]]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(current_decay=1.5), "current_decay"),
        (dict(voltage_decay=-0.1), "voltage_decay"),
        (dict(threshold=5000.0), "vThMant"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = dict(threshold=1.0, current_decay=0.1, voltage_decay=0.1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        cuba.Neuron(**args)


def test_wrong_input_shape_is_named():
    neuron = cuba.Neuron(threshold=1.0, current_decay=0.1, voltage_decay=0.1, shape=(5,))
    with pytest.raises(ValueError, match="shape"):
        neuron(torch.zeros(2, 4, 10))
    assert math.isfinite(neuron.surrogate[1])


def test_block_delay_shift_forward_and_gradient():
    """A block's one-step latency: output = [0, spikes[..., :-1]], gradient shifted back, memory kept."""
    from lava_dl import slayer

    torch.manual_seed(6)
    block = slayer.block.cuba.Dense(dict(threshold=0.5, current_decay=0.2, voltage_decay=0.1), 12, 9,
                                    weight_scale=3)
    x = (torch.rand(2, 12, 30) < 0.4).float()
    out = block(x)
    synaptic = block.synapse(x).detach().requires_grad_()
    spikes = block.neuron(synaptic)
    assert out.movedim(-1, 1).is_contiguous()
    assert torch.equal(out[..., 0], torch.zeros_like(out[..., 0]))
    assert torch.equal(out[..., 1:], spikes[..., :-1]) and spikes.sum() > 0
    weights = torch.randn(out.shape)
    grad_out = torch.autograd.grad((block(x) * weights).sum(), block.synapse.weight)[0]
    grad_ref = torch.autograd.grad((torch.cat([torch.zeros_like(spikes[..., :1]), spikes[..., :-1]], -1)
                                    * weights).sum(), synaptic)[0]
    grad_weight_ref = torch.autograd.grad(block.synapse(x), block.synapse.weight, grad_ref)[0]
    assert torch.allclose(grad_out, grad_weight_ref, rtol=1e-5, atol=1e-6) and grad_out.abs().sum() > 0


@pytest.mark.parametrize("graded", [False, True])
def test_fused_delay_equals_shift_of_the_output(graded):
    """The kernel writing messages one step late == shifting the undelayed output (values and gradients)."""
    from lava_dl.slayer.neuron.base import Neuron as BaseNeuron

    results = []
    for delayed in (cuba.Neuron.delayed, BaseNeuron.delayed):
        torch.manual_seed(7)
        neuron = cuba.Neuron(threshold=0.5, current_decay=(0.1, 0.3), voltage_decay=(0.02, 0.1),
                             shared_param=False, shape=(6,), requires_grad=True, graded_spike=graded,
                             persistent_state=True)
        x = _time_major(_grid_input((3, 6, 40), 8, amplitude=60)).requires_grad_()
        first = torch.rand(3, 6, 1)
        outputs = []
        for part in (x[..., :25], x[..., 25:]):  # two calls: states carried between them
            out, last = delayed(neuron, part, first)
            outputs += [out, last]
        weights = torch.randn(3, 6, 40, generator=torch.Generator().manual_seed(9))
        (torch.cat(outputs[0::2], -1) * weights).sum().backward()
        results.append((*outputs, x.grad, neuron.current_decay.grad, neuron.voltage_decay.grad,
                        neuron._states["u"], neuron._states["v"]))
    assert results[0][0][..., 1:].sum() > 0
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_graded_payloads_are_float64_and_summed_exactly():
    """Graded messages are float64, the next synapse sums them in float64, the neuron floors the sum."""
    from lava_dl import slayer

    torch.manual_seed(3)
    params = dict(threshold=0.5, current_decay=0.5, voltage_decay=0.1)
    graded = slayer.block.cuba.Dense(dict(params, graded_spike=True), 16, 12, weight_scale=4)
    after = slayer.block.cuba.Dense(dict(threshold=0.5, current_decay=0.5, voltage_decay=0.1), 12, 5,
                                    weight_scale=4)
    x = (torch.rand(2, 16, 30) < 0.5).float()
    payload = graded(x)
    assert payload.dtype == torch.float64 and payload.sum() > 0
    assert torch.all(payload * 4096 == torch.round(payload * 4096))  # v / S, v an integer
    z = after.synapse(payload)
    assert z.dtype == torch.float64
    w_int = torch.round(after.synapse.effective_weight().reshape(5, 12) * 64).to(torch.int64)
    exact = torch.einsum("oi,nit->not", w_int, torch.round(payload * 4096).to(torch.int64))  # integers
    assert torch.equal(torch.round(z * 2**18).to(torch.int64), exact)
    # the neuron's input a_in is floor(sum / 4096), at every step: with current_decay 1 the current
    # is a_in << 6 (step 0 of the delayed payload is all zeros, so it alone would prove nothing)
    remainder = exact % 4096
    assert torch.any((exact < 0) & (remainder != 0)) and torch.any((exact > 0) & (remainder != 0))
    neuron = cuba.Neuron(threshold=0.5, current_decay=1.0, voltage_decay=0.1)
    current, _, _ = neuron.run(z)
    assert torch.equal(torch.round(current * 4096).to(torch.int64),
                       torch.div(exact, 4096, rounding_mode="floor") * 64)


def test_graded_export_needs_scale_64():
    neuron = cuba.Neuron(threshold=1.0, current_decay=0.1, voltage_decay=0.1, graded_spike=True, scale=128)
    with pytest.raises(ValueError, match="scale = 64"):
        neuron.device_params()


def test_output_can_be_modified_in_place():
    """The kernels' outputs are plain tensors (not views), so in-place ops after the neuron work."""
    neuron = cuba.Neuron(threshold=0.5, current_decay=0.2, voltage_decay=0.1)
    x = _time_major(_grid_input((2, 6, 20), 4, amplitude=60)).requires_grad_()
    out = neuron(x)
    out.mul_(2.0)
    out.sum().backward()
    assert out._base is None and x.grad is not None


@pytest.mark.parametrize("graded", [False, True])
def test_two_stage_path_equals_fused(graded):
    """The two-stage kernels (used when a norm sits between current and voltage) give the fused results."""
    results = []
    for fused in (True, False):
        torch.manual_seed(0)
        neuron = cuba.Neuron(threshold=0.5, current_decay=(0.1, 0.3), voltage_decay=(0.02, 0.1),
                             shared_param=False, shape=(6,), requires_grad=True, graded_spike=graded)
        neuron.fused = fused
        x = _time_major(_grid_input((3, 6, 40), 12, amplitude=60)).requires_grad_()
        current, voltage, spikes = neuron.run(x)
        weights = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
        ((spikes * weights).sum() + (voltage * weights).sum() * 1e-3).backward()
        results.append((current, voltage, spikes, x.grad, neuron.current_decay.grad,
                        neuron.voltage_decay.grad))
    (*exact_a, gx_a, gu_a, gv_a), (*exact_b, gx_b, gu_b, gv_b) = results
    assert exact_a[2].sum() > 0
    for a, b in zip(exact_a, exact_b):
        assert torch.equal(a, b)
    for a, b in ((gx_a, gx_b), (gu_a, gu_b), (gv_a, gv_b)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("family, fused", [("cuba", True), ("cuba", False), ("alif", True)])
def test_lava_dl_decay_gradient(family, fused, monkeypatch):
    """``decay_gradient="lava-dl"``: the decays get lava-dl's gradient, the derivative with respect to the
    retention factor ``1 - d/4096`` taken on the states before their reset: -4096 times the exact one
    where the state never resets (CUBA's current, both of ALIF's), and for CUBA's voltage the
    derivative of a torch loop whose decay acts on the pre-reset voltage. Everything else is unchanged."""
    from lava_dl.slayer.neuron import alif

    monkeypatch.setattr(cuba.Neuron, "fused", fused)
    x = _grid_input((2, 5, 40), 1, amplitude=40)
    grads = {}
    for mode in ("exact", "lava-dl"):
        torch.manual_seed(0)
        if family == "cuba":
            neuron = cuba.Neuron(threshold=0.5, current_decay=0.2, voltage_decay=0.05, requires_grad=True,
                                 decay_gradient=mode)
        else:
            neuron = alif.Neuron(threshold=0.5, threshold_step=0.1, current_decay=0.2, voltage_decay=0.05,
                                 threshold_decay=0.1, refractory_decay=0.1, requires_grad=True,
                                 decay_gradient=mode)
        xm = x.clone().requires_grad_()
        spikes = neuron(xm)
        (spikes * torch.linspace(-1, 1, spikes.numel()).reshape(spikes.shape)).sum().backward()
        grads[mode] = (xm.grad, neuron.current_decay.grad, neuron.voltage_decay.grad, spikes)
    exact, lava_dl = grads["exact"], grads["lava-dl"]
    assert torch.equal(exact[3], lava_dl[3]) and exact[3].any()
    assert torch.equal(exact[0], lava_dl[0])
    never_reset = exact[1:3] if family == "alif" else exact[1:2]
    for e, d in zip(never_reset, lava_dl[1:3]):
        assert e.abs().sum() > 0
        assert torch.equal(d, -4096 * e)
    if family == "cuba":  # the voltage resets: lava-dl's gradient reads the voltage before the reset
        assert not torch.allclose(lava_dl[2], -4096 * exact[2], rtol=1e-3)

    if family == "cuba":  # the retention factor's derivative, from autograd of the torch loop
        neuron = cuba.Neuron(threshold=0.5, current_decay=0.2, voltage_decay=0.05, requires_grad=True,
                             decay_gradient="lava-dl")
        current, voltage, spikes = neuron.run(x)
        weights = torch.randn_like(spikes)
        (spikes * weights).sum().backward()
        keep_u = (1 - neuron.current_decay.detach().double() / 4096).requires_grad_()
        keep_v = (1 - neuron.voltage_decay.detach().double() / 4096).requires_grad_()
        u_rec = (current.detach() * neuron.s_scale).reshape(-1, 40).double()
        v_rec = (voltage.detach() * neuron.s_scale).reshape(-1, 40).double()
        s_loop = _torch_loop(x.reshape(-1, 40).double(), 4096 * (1 - keep_u), 4096 * (1 - keep_v), neuron,
                             u_rec, v_rec, lava_dl_decay=True)
        (s_loop * weights.reshape(-1, 40).double()).sum().backward()
        torch.testing.assert_close(neuron.current_decay.grad.double(), keep_u.grad, rtol=1e-4, atol=1e-9)
        torch.testing.assert_close(neuron.voltage_decay.grad.double(), keep_v.grad, rtol=1e-4, atol=1e-9)


def test_lava_dl_decay_gradient_is_refused_where_lava_dl_has_none():
    from lava_dl.slayer.neuron import rf

    with pytest.raises(TypeError, match="decay_gradient"):
        rf.Neuron(threshold=0.5, period=8, decay=0.1, decay_gradient="lava-dl")
    with pytest.raises(ValueError, match="'exact' or 'lava-dl'"):
        cuba.Neuron(threshold=0.5, current_decay=0.2, voltage_decay=0.05, decay_gradient="sign-flipped")
