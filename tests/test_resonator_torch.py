"""slayer resonator neurons: forward equals the Lava step, backward equals autograd of a torch loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lava_dl.slayer import complex_synapse
from lava_dl.slayer.neuron import adrf, adrf_iz, rf, rf_iz

FAMILIES = {"rf": rf, "rf_iz": rf_iz, "adrf": adrf, "adrf_iz": adrf_iz}
ADAPTIVE = {"adrf", "adrf_iz"}
IZ = {"rf_iz", "adrf_iz"}


def _make(name, **kwargs):
    args = dict(threshold=0.5, period=9.0, decay=0.05)
    if name in ADAPTIVE:
        args.update(threshold_step=0.25, threshold_decay=0.1, refractory_decay=0.2)
    args.update(kwargs)
    return FAMILIES[name].Neuron(**args)


def _grid_input(shape, seed, amplitude=48):
    """Complex synaptic input on the 1/scale grid (what quantized weights produce)."""
    gen = torch.Generator().manual_seed(seed)
    real = torch.randint(-amplitude, amplitude + 1, shape, generator=gen).float() / 64
    imag = torch.randint(-amplitude, amplitude + 1, shape, generator=gen).float() / 64
    keep = (torch.rand(shape, generator=gen) < 0.3).float()
    return real * keep, imag * keep


def _lava_reference(neuron, x_re, x_im):
    """Step the Lava kernel (spec.fixed_step) over time; returns spikes and per-step states."""
    spec = neuron.spec
    rows, steps = x_re.shape
    # dense layout N, C, T: row = n * C + c; per-channel values repeat for every sample
    per_row = {k: np.resize(np.asarray(v), rows) for k, v in neuron.spec_values().items()}
    params = [np.ascontiguousarray(np.resize(per_row.get(p.name, p.default), rows), np.int32)
              for p in spec.params]
    states = [np.zeros(rows, np.int32) for _ in spec.states]
    s = np.zeros(rows, np.int32)
    out = np.zeros((1 + len(states), rows, steps), np.int64)
    a_re = (x_re * 64).numpy().astype(np.int64)
    a_im = (x_im * 64).numpy().astype(np.int64)
    for t in range(steps):
        a_t = (np.ascontiguousarray(a_re[:, t]), np.ascontiguousarray(a_im[:, t]))
        spec.fixed_step(*states, *a_t, *params, s)
        out[0, :, t] = s
        for k, st in enumerate(states):
            out[1 + k, :, t] = st
    return out


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("shared", [True, False])
def test_forward_equals_lava_step(name, shared):
    kwargs = {} if shared else dict(shared_param=False, shape=(6,), period=(5.0, 30.0), decay=(0.0, 0.1))
    neuron = _make(name, threshold=0.3, **kwargs)
    x_re, x_im = _grid_input((3, 6, 200), 5, amplitude=400)
    out = neuron.run((x_re, x_im))
    real, imag, spikes = out[0], out[1], out[-1]
    rows = 18
    ref = _lava_reference(neuron, x_re.reshape(rows, -1), x_im.reshape(rows, -1))
    s = spikes.reshape(rows, -1).numpy()
    assert ref[0].sum() > 10
    np.testing.assert_array_equal(s, ref[0])
    re_int = (real * neuron.s_scale).reshape(rows, -1).numpy().astype(np.int64)
    im_int = (imag * neuron.s_scale).reshape(rows, -1).numpy().astype(np.int64)
    if name == "rf_iz":  # recorded states are pre-reset; Lava keeps the reset ones
        th0 = neuron.v_th_mant << 6
        re_int = np.where(s > 0, 0, re_int)
        im_int = np.where(s > 0, th0 - 1, im_int)
    np.testing.assert_array_equal(re_int, ref[1])
    np.testing.assert_array_equal(im_int, ref[2])
    if name in ADAPTIVE:
        # the recorded threshold θ0 + th and refractory state r of step t are the ones its spike test
        # used; Lava's states after step t add the spike's update: th += Δθ, r += 2 (θ0 + th)
        th_int, r_int = ((o * neuron.s_scale).reshape(rows, -1).numpy().astype(np.int64) for o in out[2:4])
        fired = ref[0] != 0
        step = neuron.spec_values()["vth_step"] << 6
        np.testing.assert_array_equal(th_int - (neuron.v_th_mant << 6) + fired * step, ref[3])
        np.testing.assert_array_equal(r_int + fired * 2 * th_int, ref[4])
        assert step > 0 and (ref[4] > 0).any()


def test_saturation_is_deployed_behaviour():
    neuron = _make("rf", threshold=1.0, period=100.0, decay=0.0)
    x = torch.full((1, 1, 40), 30000 / 64.0)
    real, imag, _ = neuron.run((x, x))
    assert (real * neuron.s_scale).abs().max().item() == 2**23 - 1


@pytest.mark.parametrize("name, graded", [(n, False) for n in FAMILIES] + [("rf", True), ("rf_iz", True)])
def test_graded_spike_payload(name, graded):
    neuron = _make(name, graded_spike=graded, threshold=0.2)
    x_re, x_im = _grid_input((2, 3, 100), 2, amplitude=300)
    out = neuron.run((x_re, x_im))
    real, imag, spikes = out[0], out[1], out[-1]
    assert spikes.sum() > 0
    if graded:
        payload = imag if name in IZ else real
        assert torch.equal(spikes, payload * (spikes != 0))
    else:
        assert set(spikes.unique().tolist()) <= {0.0, 1.0}


# --------------------------------------------------------------------------
# Backward: autograd of a plain torch loop of the same math
# --------------------------------------------------------------------------


def _ste(value_float, value_exact):
    return value_float + (value_exact - value_float).detach()


class _ComplexSpike(torch.autograd.Function):
    """lava-dl's complex spike surrogate; forward returns the given spikes."""

    @staticmethod
    def forward(ctx, re, im, thr, spikes, tau, scale, graded):
        ctx.save_for_backward(re, im, thr)
        ctx.c = (tau, scale, graded)
        return spikes

    @staticmethod
    def backward(ctx, g):
        re, im, thr = ctx.saved_tensors
        tau, scale, graded = ctx.c
        if graded:
            d_re = torch.exp(-(thr - re).clamp(min=0) / tau)
        else:
            d_re = torch.exp(-(re - thr).abs() / tau) / (2 * tau)
        d_im = torch.exp(-im.abs() / tau) / (2 * tau)
        step = 0.5 * (1 + torch.sign(re - thr) * (1 - 2 * tau * d_re))
        g_re = g * scale * d_re * d_im
        return g_re, -g * scale / tau * torch.sign(im) * d_im * step, None, None, None, None, None


class _RealSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, thr, spikes, tau, scale, graded):
        ctx.save_for_backward(v, thr)
        ctx.c = (tau, scale, graded)
        return spikes

    @staticmethod
    def backward(ctx, g):
        v, thr = ctx.saved_tensors
        tau, scale, graded = ctx.c
        if graded:
            rho = scale * torch.exp((v - thr).clamp(max=0) / tau)
        else:
            rho = scale / (2 * tau) * torch.exp(-(v - thr).abs() / tau)
        return g * rho, None, None, None, None, None


def _torch_loop(name, neuron, x_re, x_im, sin_p, cos_p, rec):
    """The same math as a plain autograd loop (integer values enter through straight-through)."""
    re_rec, im_rec, thr_rec, spikes = rec
    s_scale = neuron.s_scale
    sin_d = _ste(sin_p, torch.round(sin_p)) / 4096
    cos_d = _ste(cos_p, torch.round(cos_p)) / 4096
    rows, steps = x_re.shape
    re = torch.zeros(rows, dtype=torch.float64)
    im = torch.zeros(rows, dtype=torch.float64)
    _, tau, scale = neuron.surrogate
    th0 = neuron.v_th_mant * 64 / s_scale
    out = []
    for t in range(steps):
        re_new = _ste(cos_d * re - sin_d * im + x_re[:, t], re_rec[:, t])
        im_new = _ste(sin_d * re + cos_d * im + x_im[:, t], im_rec[:, t])
        thr = thr_rec[:, t]
        if name in IZ:
            s = _RealSpike.apply(im_new, thr, spikes[:, t], tau, scale, neuron.graded_spike)
        else:
            s = _ComplexSpike.apply(re_new, im_new, thr, spikes[:, t], tau, scale, neuron.graded_spike)
        if name == "rf_iz":
            fired = (spikes[:, t] != 0).double()
            re = re_new - (re_new * fired).detach()
            im = im_new + ((th0 - 1 / s_scale - im_new) * fired).detach()
        else:
            re, im = re_new, im_new
        out.append(s)
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("graded", [False, True])
@pytest.mark.parametrize("path", ["spikes", "states"])
def test_backward_equals_autograd_of_torch_loop(name, graded, path):
    """Gradients through the spikes (surrogate + linear resonator) and through the recorded states."""
    steps, rows = 80, 8
    neuron = _make(name, threshold=0.3, requires_grad=True, graded_spike=graded, shared_param=False,
                   shape=(4,), period=(6.0, 20.0), decay=(0.02, 0.1))
    x_re, x_im = _grid_input((2, 4, steps), 9, amplitude=200)
    x_re.requires_grad_()
    x_im.requires_grad_()
    out = neuron.run((x_re, x_im))
    real, imag, spikes = out[0], out[1], out[-1]
    gen = torch.Generator().manual_seed(1)
    w_s, w_re, w_im = (torch.randn(spikes.shape, generator=gen) for _ in range(3))
    if path == "spikes":
        (spikes * w_s).sum().backward()
    else:
        ((real * w_re).sum() + (imag * w_im).sum()).backward()

    if name in ADAPTIVE:
        thr = (out[2] + out[3]).detach().reshape(rows, steps).double()
    else:
        thr = torch.full((rows, steps), neuron.v_th_mant * 64 / neuron.s_scale, dtype=torch.float64)
    rec = (real.detach().reshape(rows, steps).double(), imag.detach().reshape(rows, steps).double(), thr,
           spikes.detach().reshape(rows, steps).double())
    xr = x_re.detach().reshape(rows, steps).double().requires_grad_()
    xi = x_im.detach().reshape(rows, steps).double().requires_grad_()
    sin_p = neuron.sin_decay.detach().double().clone().requires_grad_()
    cos_p = neuron.cos_decay.detach().double().clone().requires_grad_()

    def view(p):
        return p.reshape(1, 4).expand(2, 4).reshape(-1)

    if path == "spikes":
        s_loop = _torch_loop(name, neuron, xr, xi, view(sin_p), view(cos_p), rec)
        assert torch.equal(s_loop.float(), spikes.detach().reshape(rows, steps))
        (s_loop * w_s.reshape(rows, steps).double()).sum().backward()
    else:
        _state_loss(name, neuron, xr, xi, view(sin_p), view(cos_p), rec, w_re.reshape(rows, steps).double(),
                    w_im.reshape(rows, steps).double()).backward()

    assert x_re.grad.abs().max() > 1e-5 and x_im.grad.abs().max() > 1e-5
    assert neuron.sin_decay.grad.abs().min() > 0 and neuron.cos_decay.grad.abs().min() > 0
    for ours, loop in ((x_re.grad.reshape(rows, steps), xr.grad), (x_im.grad.reshape(rows, steps), xi.grad),
                       (neuron.sin_decay.grad, sin_p.grad), (neuron.cos_decay.grad, cos_p.grad)):
        scale = loop.abs().max().item()
        torch.testing.assert_close(ours.double() / scale, loop / scale, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("graded", [False, True])
def test_time_major_input_equals_time_last(name, graded):
    """A time-major input (what the synapses return) is read in place and gives the same
    spikes, records and gradients as the same values stored time-last; outputs keep its order."""
    neuron = _make(name, threshold=0.3, requires_grad=True, graded_spike=graded, shared_param=False,
                   shape=(4, 3), period=(6.0, 20.0), decay=(0.02, 0.1))
    results = []
    for time_major in (False, True):
        x_re, x_im = _grid_input((2, 4, 3, 70), 11, amplitude=200)
        if time_major:
            x_re, x_im = (x.movedim(-1, 1).contiguous().movedim(1, -1) for x in (x_re, x_im))
        x_re.requires_grad_()
        x_im.requires_grad_()
        neuron.zero_grad()
        out = neuron.run((x_re, x_im))  # (real, imag, [threshold, refractory,] spikes)
        gen = torch.Generator().manual_seed(2)
        loss = sum((o * torch.randn(o.shape, generator=gen)).sum() for o in (out[0], out[1], out[-1]))
        loss.backward()
        if time_major:
            assert all(o.movedim(-1, 1).is_contiguous() for o in out)
            assert x_re.grad.movedim(-1, 1).is_contiguous() and x_im.grad.movedim(-1, 1).is_contiguous()
        results.append((*(o.detach() for o in out), x_re.grad, x_im.grad, neuron.sin_decay.grad.clone(),
                        neuron.cos_decay.grad.clone()))
    assert results[0][len(out) - 1].sum() > 0, "no spikes"
    for last, major in zip(*results):
        assert torch.equal(last, major)


def _state_loss(name, neuron, x_re, x_im, sin_p, cos_p, rec, w_re, w_im):
    """``Σ w_re re[t] + w_im im[t]`` through the same straight-through loop (no spikes)."""
    re_rec, im_rec, _, spikes = rec
    s_scale = neuron.s_scale
    sin_d = _ste(sin_p, torch.round(sin_p)) / 4096
    cos_d = _ste(cos_p, torch.round(cos_p)) / 4096
    th0 = neuron.v_th_mant * 64 / s_scale
    rows, steps = x_re.shape
    re = torch.zeros(rows, dtype=torch.float64)
    im = torch.zeros(rows, dtype=torch.float64)
    loss = 0
    for t in range(steps):
        re_new = _ste(cos_d * re - sin_d * im + x_re[:, t], re_rec[:, t])
        im_new = _ste(sin_d * re + cos_d * im + x_im[:, t], im_rec[:, t])
        loss = loss + (re_new * w_re[:, t]).sum() + (im_new * w_im[:, t]).sum()
        if name == "rf_iz":
            fired = (spikes[:, t] != 0).double()
            re = re_new - (re_new * fired).detach()
            im = im_new + ((th0 - 1 / s_scale - im_new) * fired).detach()
        else:
            re, im = re_new, im_new
    return loss


# --------------------------------------------------------------------------
# State handling, export, pipeline, errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_persistent_state_split_equals_one_run(name):
    x_re, x_im = _grid_input((2, 4, 90), 13, amplitude=300)
    one = _make(name, threshold=0.3, persistent_state=True)
    two = _make(name, threshold=0.3, persistent_state=True)
    full = one((x_re, x_im))
    split = torch.cat([two((x_re[..., :37], x_im[..., :37])), two((x_re[..., 37:], x_im[..., 37:]))], dim=-1)
    assert full.sum() > 0
    assert torch.equal(full, split)
    # without persistent_state every call starts from zero: the second part alone, as Lava computes it
    fresh = _make(name, threshold=0.3)
    fresh((x_re[..., :37], x_im[..., :37]))
    restarted = fresh((x_re[..., 37:], x_im[..., 37:]))
    ref = _lava_reference(fresh, x_re[..., 37:].reshape(8, -1), x_im[..., 37:].reshape(8, -1))
    np.testing.assert_array_equal(restarted.reshape(8, -1).numpy(), ref[0])
    assert not torch.equal(restarted, split[..., 37:]), "the states do not matter for this input"


@pytest.mark.parametrize("name", FAMILIES)
def test_device_params(name):
    neuron = _make(name, threshold=1.0, period=8.0, decay=0.1)
    params = neuron.device_params()
    types = {"rf": "RF_PHASE", "rf_iz": "RF_IZHIKEVICH", "adrf": "ADRF_PHASE", "adrf_iz": "ADRF_IZHIKEVICH"}
    assert params["type"] == types[name]
    assert params["sinDecay"] == round(4096 * 0.9 * np.sin(2 * np.pi / 8))
    assert params["cosDecay"] == round(4096 * 0.9 * np.cos(2 * np.pi / 8))
    assert params["vThMant"] == 64 and params["gradedSpike"] is False
    assert "refDelay" not in params
    if name in ADAPTIVE:
        assert (params["thDecay"], params["refDecay"], params["vThStep"]) == (410, 819, 16)
    else:
        assert "thDecay" not in params
    np.testing.assert_allclose(neuron.period, 8.0, rtol=1e-3)
    np.testing.assert_allclose(neuron.decay, 0.1, atol=1e-3)


def test_clamp_keeps_first_quadrant_and_gain():
    neuron = _make("rf", period=4.0, decay=0.0)
    assert neuron.device_params()["sinDecay"] == 4095
    neuron = _make("rf", period=(4.0, 50.0), decay=(0.0, 0.0), shared_param=False, shape=(8,), log_init=False)
    sin_d, cos_d = neuron.sin_decay.detach(), neuron.cos_decay.detach()
    assert (torch.sqrt(sin_d**2 + cos_d**2) <= 4095 + 1e-3).all()
    assert (sin_d >= 1).all() and (cos_d >= 0).all()


def test_complex_dense_drives_the_neuron():
    neuron = _make("adrf", threshold=0.1)
    syn = complex_synapse.Dense(5, 3, weight_scale=3, pre_hook_fx=neuron.quantize_8bit)
    assert syn.pre_hook_fx == neuron.quantize_8bit and syn.real.pre_hook_fx is syn.imag.pre_hook_fx
    assert syn.real.weight.shape == (3, 5, 1, 1, 1) and syn.in_channels == 5 and syn.out_channels == 3
    x = (torch.rand(2, 5, 60) < 0.3).float()
    spikes = neuron(syn(x))
    assert spikes.shape == (2, 3, 60)
    spikes.sum().backward()
    assert syn.real.weight.grad is not None and syn.imag.weight.grad is not None
    w_re, w_im = syn.effective_weights()
    assert torch.equal(w_re * 64, torch.round(w_re * 64))
    conv = complex_synapse.Conv(2, 4, 3, padding=1, weight_norm=True)
    out_re, out_im = conv(torch.rand(1, 2, 5, 5, 7))
    assert out_re.shape == out_im.shape == (1, 4, 5, 5, 7) and conv.weight_norm
    conv.disable_weight_norm()
    assert not conv.weight_norm and conv.kernel_size == (3, 3)


def test_complex_tensor_input_is_accepted():
    neuron = _make("rf")
    x_re, x_im = _grid_input((1, 2, 50), 4, amplitude=200)
    assert torch.equal(neuron((x_re, x_im)), _make("rf")(torch.complex(x_re, x_im)))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(period=3.0), ValueError, "period"),
        (dict(decay=1.5), ValueError, "decay"),
        (dict(period=(5.0, 10.0)), ValueError, "shared_param"),
        (dict(shared_param=False, shape=(3,), period=(3.0, 10.0)), ValueError, "period"),
        (dict(threshold=5000.0), ValueError, "vThMant"),
    ],
)
@pytest.mark.parametrize("name", ["rf", "adrf_iz"])
def test_bad_arguments(name, kwargs, error, message):
    with pytest.raises(error, match=message):
        _make(name, **kwargs)


def test_bad_adaptive_arguments():
    with pytest.raises(ValueError, match="threshold_step"):
        _make("adrf", threshold_step=-1.0)
    with pytest.raises(ValueError, match="threshold_decay"):
        _make("adrf", threshold_decay=2.0)


def test_bad_inputs_are_named():
    neuron = _make("rf_iz", shape=(5,))
    with pytest.raises(TypeError, match="complex input"):
        neuron(torch.zeros(2, 5, 10))
    with pytest.raises(ValueError, match="imaginary"):
        neuron((torch.zeros(2, 5, 10), torch.zeros(2, 5, 11)))
    with pytest.raises(ValueError, match="shape"):
        neuron((torch.zeros(2, 4, 10), torch.zeros(2, 4, 10)))


def test_per_channel_export_and_input_norms():
    from lava_dl.slayer.neuron.norm import MeanOnlyBatchNorm

    neuron = _make("adrf_iz", shared_param=False, shape=(5,), period=(5.0, 40.0), decay=(0.0, 0.2),
                   threshold_decay=(0.1, 0.3), norm=MeanOnlyBatchNorm)
    params = neuron.device_params()
    for key in ("sinDecay", "cosDecay", "thDecay", "refDecay"):
        assert params[key].shape == (5,)
    assert np.all(np.diff(neuron.period) < 0)  # log-spaced frequencies, increasing with the channel
    assert neuron.real_norm is not neuron.imag_norm
    x_re, x_im = _grid_input((2, 5, 30), 3)
    assert neuron((x_re, x_im)).shape == (2, 5, 30)
