"""lava-dl's module paths, signatures and return tuples, and netx's lava-dl defaults.

lava-dl code ports by rewriting ``lava.lib.dl`` to ``lava_dl``: the modules it imports exist
(``slayer.neuron.dynamics.*``, ``slayer.spike``, ``slayer.axon.delta``, ``slayer.dendrite``,
``slayer.synapse.layer``/``complex``, ``netx.blocks.process``/``models``), its functional
dynamics and neuron methods return its tuples, and each is the same machinery as ours: the
functional dynamics give the neurons' states, ``spike(*dynamics(x))`` gives ``forward(x)``.
netx resets files written by lava_dl as slayer evaluates them and other files as lava-dl's
netx did, unless ``reset_mode`` is given.
"""

from __future__ import annotations

import importlib
import io

import h5py
import numpy as np
import pytest
import torch

from lava_dl import netx, slayer
from lava_dl.slayer.neuron import adrf, adrf_iz, alif, cuba, rf, rf_iz, sigma_delta
from lava_dl.slayer.neuron._resonator import ResonatorNeuron
from lava_dl.slayer.neuron.dynamics import (
    adaptive_phase_th,
    adaptive_resonator,
    adaptive_threshold,
    leaky_integrator,
    resonator,
)

S = 4096  # state scale of the neurons (weight scale 64 << 6)


# --------------------------------------------------------------------------
# module paths
# --------------------------------------------------------------------------

PATHS = [
    ("lava_dl.slayer.neuron.dynamics.leaky_integrator", ("dynamics", "persistent_state")),
    ("lava_dl.slayer.neuron.dynamics.resonator",
     ("dynamics", "persistent_real_state", "persistent_imag_state")),
    ("lava_dl.slayer.neuron.dynamics.adaptive_threshold", ("dynamics", "persistent_ref_state")),
    ("lava_dl.slayer.neuron.dynamics.adaptive_resonator", ("dynamics", "persistent_th_state")),
    ("lava_dl.slayer.neuron.dynamics.adaptive_phase_th", ("dynamics", "persistent_ref_state")),
    # our earlier contents of the dynamics module stay where they were
    ("lava_dl.slayer.neuron.dynamics", ("BlockLayout", "LeakyIntegrator", "SpikingIntegrator", "CubaDynamics",
                                        "AlifDynamics", "input_dtype", "message_dtype")),
    ("lava_dl.slayer.spike", ("Spike", "complex")),
    ("lava_dl.slayer.spike.complex", ("Spike",)),
    ("lava_dl.slayer.axon", ("delay", "Delay", "Delta")),
    ("lava_dl.slayer.axon.delta", ("Delta",)),
    ("lava_dl.slayer.dendrite", ("Sigma",)),
    ("lava_dl.slayer.dendrite.sigma", ("Sigma",)),
    ("lava_dl.slayer.synapse.layer", ("Dense", "Conv", "Pool", "ConvTranspose", "Unpool")),
    ("lava_dl.slayer.synapse.complex", ("Dense", "Conv", "Pool", "ConvTranspose", "Unpool")),
    ("lava_dl.slayer.synapse", ("Dense", "Conv", "complex", "layer", "conv_weight_to_lava")),
    ("lava_dl.slayer.complex_synapse", ("Dense", "Conv", "Pool", "ConvTranspose", "Unpool")),
    ("lava_dl.netx.blocks.process",
     ("Input", "Dense", "Conv", "ComplexInput", "ComplexDense", "RecurrentDense")),
    ("lava_dl.netx.blocks.models", ("PyInputModel", "PyDenseModel", "PyConvModel", "PyComplexDenseModel",
                                    "PyComplexInputModel", "AbstractPyBlockModel")),
    ("lava_dl.netx.utils", ("NetDict",)),
]


@pytest.mark.parametrize("module, names", PATHS, ids=[p[0] for p in PATHS])
def test_module_paths(module, names):
    mod = importlib.import_module(module)
    for name in names:
        assert hasattr(mod, name), f"{module}.{name}"


def test_paths_are_the_same_objects():
    """Each lava-dl path names our one class, and attribute access reaches the submodules."""
    from lava_dl.proc import netx_blocks

    assert slayer.synapse.layer.Dense is slayer.synapse.Dense
    assert slayer.synapse.complex.Conv is slayer.complex_synapse.Conv
    assert slayer.axon.Delta is slayer.axon.delta.Delta is sigma_delta.Delta
    assert slayer.dendrite.Sigma is slayer.dendrite.sigma.Sigma is sigma_delta.Sigma
    assert slayer.neuron.dynamics.resonator is resonator
    assert netx.blocks.process.Dense is netx.blocks.Dense is netx_blocks.Dense
    assert netx.blocks.models.PyDenseModel.implements_process is netx_blocks.Dense


# --------------------------------------------------------------------------
# functional dynamics: an independent oracle, and the neurons' own states
# --------------------------------------------------------------------------

def _grid(shape, seed, amplitude=40, density=0.3):
    """Input on the 1/64 grid (quantized weights times spikes)."""
    gen = torch.Generator().manual_seed(seed)
    values = torch.randint(-amplitude, amplitude + 1, shape, generator=gen).float() / 64
    return values * (torch.rand(shape, generator=gen) < density)


def test_leaky_integrator_equals_plain_integer_loop():
    """``y = rs0(y (4096 - d), 12) + trunc(x w)``, reset after ``y >= threshold``; decay truncated."""
    x = _grid((2, 3, 50), 0, amplitude=200)
    decay = torch.tensor([517.8])
    for threshold in (None, 0.75):
        out = leaky_integrator.dynamics(x, decay, torch.tensor([0.25]), S, threshold)
        y = np.full(6, int(0.25 * S), np.int64)
        ref = np.empty((6, 50))
        rows = x.reshape(6, 50).numpy()
        for t in range(50):
            prod = y * (S - 517)
            y = np.sign(prod) * (np.abs(prod) >> 12) + np.trunc(rows[:, t] * S).astype(np.int64)
            ref[:, t] = y
            if threshold is not None:
                y = np.where(y >= threshold * S, 0, y)
        np.testing.assert_array_equal(out.reshape(6, 50).numpy() * S, ref)
    assert (out.reshape(6, 50).numpy() * S >= 0.75 * S).any()


@pytest.mark.parametrize("threshold", [None, 0.75])
def test_leaky_integrator_decay_gradients(threshold):
    """``decay_gradient="lava-dl"`` gives lava-dl's decay gradient, ``sum_{t>=1} g[t] y[t-1]`` with ``g`` the
    adjoint ``g[t] = g_out[t] + (1 - d/4096) g[t+1]`` and ``y`` the returned (pre-reset) state, from a
    numpy recursion; the default gives the exact one, ``-1/4096`` times it taken on the states after
    their resets (and from the initial state at t = 0)."""
    x = _grid((2, 3, 50), 4, amplitude=200)
    weight = torch.randn(2, 3, 50, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    grads = {}
    for mode in ("exact", "lava-dl"):
        decay = torch.tensor([517.0], requires_grad=True)
        out = leaky_integrator.dynamics(x, decay, 0.25, S, threshold, decay_gradient=mode)
        (out.double() * weight).sum().backward()
        grads[mode] = float(decay.grad)
    y = out.detach().reshape(6, 50).double().numpy()
    g_out = weight.reshape(6, 50).numpy()
    g = np.zeros_like(g_out)
    g[:, -1] = g_out[:, -1]
    for t in range(48, -1, -1):
        g[:, t] = g_out[:, t] + (1 - 517 / 4096) * g[:, t + 1]
    lava_dl = float((g[:, 1:] * y[:, :-1]).sum())
    after_reset = y if threshold is None else np.where(y >= threshold, 0.0, y)
    previous = np.concatenate([np.full((6, 1), 0.25), after_reset[:, :-1]], axis=1)
    exact = float(-(g * previous).sum() / 4096)
    assert grads["lava-dl"] == pytest.approx(lava_dl, rel=1e-5)
    assert grads["exact"] == pytest.approx(exact, rel=1e-5)
    assert (threshold is None) or abs(lava_dl + 4096 * exact) > 1e-3 * abs(lava_dl)
    with pytest.raises(ValueError, match="decay_gradient"):
        leaky_integrator.dynamics(x, 517.0, 0.0, S, decay_gradient="other")


def test_leaky_integrator_is_cuba_voltage():
    """With ``current_decay = 1`` a CUBA neuron's voltage is the leaky integrator of its input, reset
    by Loihi's strict ``v > vth << 6`` (lava-dl's ``>=`` one unit higher)."""
    neuron = cuba.Neuron(threshold=0.5, current_decay=1.0, voltage_decay=0.1)
    x = _grid((2, 4, 60), 1)
    _, voltage = neuron.dynamics(x)
    ref = leaky_integrator.dynamics(x, torch.tensor([float(neuron.cx_voltage_decay)]), 0.0, S, 0.5 + 1 / S)
    assert (neuron.spike(voltage) > 0).any()
    torch.testing.assert_close(voltage, ref, rtol=0, atol=0)


def test_resonator_dynamics_are_rf_iz_and_adrf_iz_states():
    x = (_grid((2, 3, 80), 2), _grid((2, 3, 80), 3))
    neuron = rf_iz.Neuron(threshold=0.4, period=12, decay=0.05)
    real, imag = neuron.dynamics(x)
    sin, cos = (torch.tensor([float(v)]) for v in (neuron.cx_sin_decay, neuron.cx_cos_decay))
    ref = resonator.dynamics(*x, sin, cos, 0.0, 0.0, S, threshold=neuron.threshold)
    assert (neuron.spike(real, imag) > 0).any()
    for got, want in zip((real, imag), ref):
        torch.testing.assert_close(got, want, rtol=0, atol=0)

    neuron = adrf_iz.Neuron(threshold=0.4, threshold_step=0.25, period=12, decay=0.05, threshold_decay=0.1,
                            refractory_decay=0.2)
    states = neuron.dynamics(x)
    theta, step = neuron.threshold, neuron.threshold_step  # on the 1/64 grid
    ref = adaptive_resonator.dynamics(*x, sin, cos, torch.tensor([float(neuron.cx_refractory_decay)]),
                                      torch.tensor([float(neuron.cx_threshold_decay)]), 0.0, 0.0, 0.0, theta,
                                      step, theta, S)
    assert (neuron.spike(*states) > 0).any()
    for got, want in zip(states, ref):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_threshold_dynamics_reproduce_the_fused_kernels():
    """``adaptive_threshold`` on an ALIF voltage and ``adaptive_phase_th`` on ADRF states give the
    thresholds whose spikes are those of the fused ALIF / ADRF kernels."""
    x = _grid((2, 3, 80), 4, amplitude=120)
    neuron = alif.Neuron(threshold=0.5, threshold_step=0.2, current_decay=0.2, voltage_decay=0.05,
                         threshold_decay=0.05, refractory_decay=0.3)
    _, voltage, threshold, refractory = neuron.dynamics(x)
    theta, step = neuron.threshold, neuron.threshold_step  # on the 1/64 grid
    dref, dth = (torch.tensor([float(d)]) for d in (neuron.cx_refractory_decay, neuron.cx_threshold_decay))
    th, ref = adaptive_threshold.dynamics(voltage, 0.0, dref, theta, dth, step, theta, S)
    torch.testing.assert_close((th, ref), (threshold, refractory), rtol=0, atol=0)
    spikes = neuron.forward(x)
    assert spikes.sum() > 0
    assert torch.equal((voltage >= th + ref).float(), spikes)

    xc = (_grid((2, 3, 80), 5, amplitude=120), _grid((2, 3, 80), 6, amplitude=120))
    neuron = adrf.Neuron(threshold=0.3, threshold_step=0.1, period=9, decay=0.05, threshold_decay=0.1,
                         refractory_decay=0.3)
    real, imag, threshold, refractory = neuron.dynamics(xc)
    theta, step = neuron.threshold, neuron.threshold_step
    dref, dth = (torch.tensor([float(d)]) for d in (neuron.cx_refractory_decay, neuron.cx_threshold_decay))
    th, ref = adaptive_phase_th.dynamics(real, imag, 0.0, 0.0, dref, theta, dth, step, theta, S)
    torch.testing.assert_close((th, ref), (threshold, refractory), rtol=0, atol=0)
    assert torch.equal(neuron.spike(real, imag, th, ref), neuron.forward(xc))


def test_functional_dynamics_gradients():
    x = _grid((2, 3, 30), 7).requires_grad_()
    decay = torch.tensor([300.0], requires_grad=True)
    leaky_integrator.dynamics(x, decay, 0.0, S, 0.5).sum().backward()
    assert x.grad.abs().sum() > 0 and decay.grad is not None
    xr, xi = (_grid((2, 3, 30), s).requires_grad_() for s in (8, 9))
    sin, cos = torch.tensor([700.0], requires_grad=True), torch.tensor([3900.0], requires_grad=True)
    real, imag = resonator.dynamics(xr, xi, sin, cos, 0.0, 0.0, S)
    (real.sum() + imag.sum()).backward()
    assert xr.grad.abs().sum() > 0 and sin.grad is not None and cos.grad is not None


# lava-dl's functional dynamics as ``f(inputs, decays, states)``: the inputs, decays (one value or
# one per channel) and initial states (one value or one per (batch, neuron)) each function takes
FUNCTIONAL = {
    "leaky_integrator": (1, lambda x, d, s: leaky_integrator.dynamics(x[0], d[0], s[0], S, 0.75)),
    "resonator": (2, lambda x, d, s: resonator.dynamics(*x, d[0], d[1], s[0], s[1], S, threshold=0.4)),
    "adaptive_threshold": (1, lambda x, d, s: adaptive_threshold.dynamics(x[0], s[0], d[2], s[1], d[3], 0.25,
                                                                          0.5, S)),
    "adaptive_phase_th": (2, lambda x, d, s: adaptive_phase_th.dynamics(*x, s[0], s[1], d[2], s[2], d[3],
                                                                        0.25, 0.5, S)),
    "adaptive_resonator": (2, lambda x, d, s: adaptive_resonator.dynamics(*x, d[0], d[1], d[2], d[3], s[0],
                                                                          s[1], s[2], s[3], 0.25, 0.5, S)),
}
#: per-channel decays (sin, cos, refractory, threshold; truncated by the functions) and per-row states
#: (N = 2, C = 3; the third and fourth are whole thresholds, at or above θ0 = 0.5)
DECAYS = ([700.4, 650.9, 820.2], [3900.7, 3950.1, 3800.5], [100.5, 400.2, 1000.9], [2000.2, 50.7, 600.0])
STATES = ([[0.25, -0.5, 0.125], [0.0, 1.0, -0.25]], [[0.5, 0.0, -0.75], [0.25, 0.125, 0.0]],
          [[0.5, 0.75, 0.625], [1.0, 0.5, 0.5625]], [[0.5, 0.625, 1.25], [0.75, 0.5, 0.5]])


def _functional_inputs(count: int) -> tuple[torch.Tensor, ...]:
    return tuple(_grid((2, 3, 60), 30 + i, amplitude=120, density=0.4) for i in range(count))


def _outputs(result) -> tuple[torch.Tensor, ...]:
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("name", FUNCTIONAL)
def test_functional_dynamics_per_channel_decays_and_per_row_states(name):
    """Per-channel decays and per-(batch, neuron) states (plain tensors or float64 Parameters) give,
    row by row, what each row alone gives with its channel's decays and its states as numbers."""
    count, fn = FUNCTIONAL[name]
    x = _functional_inputs(count)
    parts = [_outputs(fn(tuple(v[n:n + 1, c:c + 1] for v in x), [d[c] for d in DECAYS],
                         [s[n][c] for s in STATES])) for n in range(2) for c in range(3)]
    expected = tuple(torch.cat([p[i].reshape(1, -1) for p in parts]).reshape(2, 3, -1)
                     for i in range(len(parts[0])))
    for make in (torch.tensor, lambda v: torch.nn.Parameter(torch.tensor(v, dtype=torch.float64))):
        got = _outputs(fn(x, [make(d) for d in DECAYS], [make(s) for s in STATES]))
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert g.dtype == torch.float32
            torch.testing.assert_close(g.detach(), e, rtol=0, atol=0)
    # the per-row values matter: one shared value (the first) gives other numbers
    shared = _outputs(fn(x, [d[0] for d in DECAYS], [s[0][0] for s in STATES]))
    assert any(not torch.equal(g, e) for g, e in zip(shared, expected))


@pytest.mark.parametrize("name", FUNCTIONAL)
def test_functional_dynamics_take_any_form_of_a_shared_value_and_keep_the_input_dtype(name):
    """A shared decay or state given as a number, a 0-d or one-element tensor, a float64 Parameter or
    one value per row gives the same numbers; a float64 input gives float64 outputs (the same values:
    the inputs lie on the 1/64 grid)."""
    count, fn = FUNCTIONAL[name]
    x = _functional_inputs(count)
    decays, states = [d[1] for d in DECAYS], [s[1][2] for s in STATES]
    want = _outputs(fn(x, decays, states))
    assert any(bool((w != 0).any()) for w in want)
    forms = (torch.tensor, lambda v: torch.tensor([v]),
             lambda v: torch.nn.Parameter(torch.tensor([v], dtype=torch.float64)))
    for form in forms:
        got = _outputs(fn(x, [form(d) for d in decays], [form(s) for s in states]))
        for g, w in zip(got, want):
            torch.testing.assert_close(g.detach(), w, rtol=0, atol=0)
    got = _outputs(fn(x, decays, [torch.full((2, 3), s) for s in states]))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=0)
    got = _outputs(fn(tuple(v.double() for v in x), decays, states))
    for g, w in zip(got, want):
        assert g.dtype == torch.float64 and g.device == x[0].device
        torch.testing.assert_close(g.detach(), w.double(), rtol=0, atol=0)


def test_conversions_take_tensors_with_gradient():
    """The weight conversions and an FIR response take tensors that require gradients (as
    parameters are) like arrays (lava-dl's ``np.asarray`` of such a tensor raises)."""
    weight = torch.nn.Parameter(torch.randn(4, 2, 3, 5, 1, generator=torch.Generator().manual_seed(0)))
    np.testing.assert_array_equal(slayer.synapse.conv_weight_to_lava(weight),
                                  slayer.synapse.conv_weight_to_lava(weight.detach().numpy()))
    np.testing.assert_array_equal(slayer.synapse.conv_weight_to_lava(weight),
                                  weight.detach().numpy()[..., 0][:, :, ::-1, ::-1].transpose(0, 3, 2, 1))
    pool = torch.nn.Parameter(torch.arange(6.0).reshape(1, 1, 2, 3))
    np.testing.assert_array_equal(slayer.synapse.pool_weight_to_lava(pool),
                                  np.arange(6.0).reshape(2, 3)[::-1, ::-1].T)
    response = torch.tensor([1.0, 0.5, 0.25], requires_grad=True)
    fir = slayer.utils.filter.FIR(fir_response=response)
    assert torch.equal(fir.filter, torch.tensor([1.0, 0.5, 0.25])) and not fir.filter.requires_grad


# --------------------------------------------------------------------------
# neurons: lava-dl's dynamics / spike / states, the same numbers as forward
# --------------------------------------------------------------------------

def _spike_args(family: str, states: tuple) -> tuple:
    """The states lava-dl's ``spike`` takes: CUBA the voltage, ALIF voltage, threshold and refractory
    state, the resonators all of them."""
    return {"cuba": states[1:], "alif": states[1:]}.get(family, states)


def _families():
    real = _grid((3, 4, 70), 10, amplitude=100)
    pair = (_grid((3, 4, 70), 11, amplitude=100), _grid((3, 4, 70), 12, amplitude=100))
    adaptive = dict(threshold_step=0.2, threshold_decay=0.1, refractory_decay=0.2)
    return {
        "cuba": (lambda **kw: cuba.Neuron(0.5, 0.2, 0.05, **kw), real, 2),
        "alif": (lambda **kw: alif.Neuron(0.5, current_decay=0.2, voltage_decay=0.05, **adaptive, **kw),
                 real, 4),
        "rf": (lambda **kw: rf.Neuron(0.2, 10, 0.05, **kw), pair, 2),
        "rf_iz": (lambda **kw: rf_iz.Neuron(0.3, 10, 0.05, **kw), pair, 2),
        "adrf": (lambda **kw: adrf.Neuron(0.2, period=10, decay=0.05, **adaptive, **kw), pair, 4),
        "adrf_iz": (lambda **kw: adrf_iz.Neuron(0.3, period=10, decay=0.05, **adaptive, **kw), pair, 4),
    }


FAMILIES = list(_families())


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("graded", [False, True])
def test_spike_of_dynamics_is_forward(family, graded):
    make, x, length = _families()[family]
    states = make(graded_spike=graded).dynamics(x)
    assert isinstance(states, tuple) and len(states) == length
    spikes = make(graded_spike=graded)(x)
    assert spikes.abs().sum() > 0
    assert torch.equal(make(graded_spike=graded).spike(*_spike_args(family, states)), spikes)


@pytest.mark.parametrize("family", FAMILIES)
def test_persistent_states_split_calls(family):
    """With persistent state, two calls give the states and spikes of one call (lava-dl's test),
    and the ``*_state`` attributes restart the neuron when zeroed."""
    make, x, _ = _families()[family]
    neuron = make(persistent_state=True)
    whole = neuron.dynamics(x)
    whole_spikes = neuron.spike(*_spike_args(family, whole))
    for name in ("current_state", "voltage_state", "real_state", "imag_state", "refractory_state"):
        if hasattr(type(neuron), name):
            setattr(neuron, name, getattr(neuron, name) * 0)
    if hasattr(type(neuron), "threshold_state"):
        neuron.threshold_state = neuron.threshold_state * 0 + neuron.threshold  # back at θ0
    first, second = (tuple(v[..., :33] for v in x), tuple(v[..., 33:] for v in x)) if isinstance(x, tuple) \
        else (x[..., :33], x[..., 33:])
    parts = [neuron.dynamics(first)]
    spikes = [neuron.spike(*_spike_args(family, parts[0]))]
    parts.append(neuron.dynamics(second))
    spikes.append(neuron.spike(*_spike_args(family, parts[1])))
    for got_a, got_b, want in zip(*parts, whole):
        assert torch.equal(torch.cat([got_a, got_b], dim=-1), want)
    assert torch.equal(torch.cat(spikes, dim=-1), whole_spikes)


def test_state_attributes():
    neuron = cuba.Neuron(0.5, 0.2, 0.05, persistent_state=True)
    assert torch.equal(neuron.voltage_state, torch.zeros(1))
    x = _grid((3, 4, 40), 13, amplitude=100)
    current, voltage = neuron.dynamics(x)
    spikes = neuron.spike(voltage)
    assert neuron.current_state.shape == (3, 4)
    assert torch.equal(neuron.current_state, current[..., -1])
    assert torch.equal(neuron.voltage_state, voltage[..., -1] * (spikes[..., -1] == 0))
    neuron.voltage_state = 0.25  # one value for every neuron
    assert torch.equal(neuron.voltage_state, torch.full((1,), 0.25))
    neuron.dynamics(x[..., :1])
    assert neuron.voltage_state.shape == (3, 4)
    assert (neuron.cx_current_decay, neuron.cx_voltage_decay) == (round(0.2 * S), round(0.05 * S))
    assert neuron.device == torch.device("cpu")
    threshold_neuron = alif.Neuron(0.5, 0.2, 0.2, 0.05, 0.1, 0.2, persistent_state=True)
    assert torch.equal(threshold_neuron.threshold_state, torch.full((1,), 0.5))  # θ0 before the first call


@pytest.mark.parametrize("make", [
    lambda: cuba.Neuron(0.5, 0.2, 0.05, shared_param=False),
    lambda: alif.Neuron(0.5, 0.2, (0.1, 0.3), 0.05, 0.1, 0.2, shared_param=False),
    lambda: rf.Neuron(0.2, (8, 40), (0.01, 0.1), shared_param=False),
    lambda: adrf_iz.Neuron(0.3, 0.2, (8, 40), 0.05, 0.1, 0.2, shared_param=False),
    lambda: sigma_delta.Neuron(0.1, None, shared_param=False),
], ids=["cuba", "alif", "rf", "adrf_iz", "sigma_delta"])
def test_shape_inferred_on_first_call(make):
    """lava-dl builds neurons without a shape: per-channel parameters are drawn at the first call
    (one value before it); a neuron given its shape draws them at construction."""
    neuron = make()
    assert neuron.shape is None
    params = [p for p in neuron.parameters()]
    assert all(p.numel() == 1 for p in params)
    x = _grid((2, 5, 20), 14)
    neuron((x, x) if isinstance(neuron, ResonatorNeuron) else x)
    assert neuron.shape == (5,)
    assert all(p.numel() == 5 for p in params)  # the same Parameter objects (optimizers keep them)


def test_known_shape_stays_known():
    neuron = cuba.Neuron(0.5, 0.2, 0.05, shared_param=False, shape=(5,))
    assert neuron.shape == (5,) and neuron.current_decay.numel() == 5
    with pytest.raises(ValueError, match="shape"):
        neuron(torch.zeros(1, 4, 3))


def test_sigma_delta_stages_compose_to_forward():
    """lava-dl's ``neuron.sigma`` and ``neuron.delta`` are the neuron's own stages."""
    x = _grid((2, 4, 50), 15, amplitude=60)
    neuron = sigma_delta.Neuron(threshold=0.1, activation=None)
    staged = neuron.delta(neuron.sigma(x))
    assert staged.abs().sum() > 0
    assert torch.equal(staged, sigma_delta.Neuron(threshold=0.1, activation=None)(x))
    persistent = sigma_delta.Neuron(threshold=0.1, activation=None, persistent_state=True)
    persistent.delta(persistent.sigma(x))
    assert torch.equal(persistent.sigma.pre_state, x.sum(-1))
    persistent.sigma.pre_state *= 0
    persistent.delta.pre_state = persistent.delta.pre_state * 0
    persistent.delta.residual_state *= 0
    assert torch.equal(persistent.delta(persistent.sigma(x)), staged)


def test_spike_functions():
    v = torch.tensor([[[0.2, 0.5, 0.7, -0.1]]], requires_grad=True)
    spikes = slayer.spike.Spike.apply(v, 0.5, 0.25, 2.0, False, 0, 1)
    assert spikes.tolist() == [[[0.0, 1.0, 1.0, 0.0]]]
    spikes.sum().backward()
    expected = 2.0 / (2 * 0.25) * torch.exp(-(v.detach() - 0.5).abs() / 0.25)  # lava-dl's surrogate
    torch.testing.assert_close(v.grad, expected)
    graded = slayer.spike.Spike.apply(v.detach(), 0.5, 0.25, 2.0, True, 0, 2)
    torch.testing.assert_close(graded, torch.tensor([[[0.0, 0.25, 0.35, 0.0]]]))
    real = torch.tensor([[[0.6, 0.6, 0.6, 0.1]]])
    imag = torch.tensor([[[-0.2, 0.1, 0.3, -0.1]]])
    phase = slayer.spike.complex.Spike.apply(real, imag, 0.5, 1.0, 1.0, False, 0.3, 1)
    assert phase.tolist() == [[[0.0, 1.0, 0.0, 0.0]]]  # imag crosses zero upwards at step 1 only


# --------------------------------------------------------------------------
# netx: lava-dl's defaults, Network signature, net_config, block arguments
# --------------------------------------------------------------------------

def _exported(tmp_path) -> str:
    """A two-block CUBA network written by our exporter (stamped ``producer = lava_dl``)."""
    params = dict(threshold=0.5, current_decay=0.2, voltage_decay=0.05)
    blocks = [slayer.block.cuba.Dense(params, 6, 5), slayer.block.cuba.Dense(params, 5, 3)]
    path = tmp_path / "ours.net"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(blocks):
            block.export_hdf5(layer.create_group(str(i)))
    return str(path)


def _unstamped(path: str, tmp_path) -> str:
    other = tmp_path / "legacy.net"
    with h5py.File(path, "r") as src, h5py.File(other, "w") as dst:
        for key in src:
            src.copy(key, dst)
    return str(other)


def test_reset_and_delay_modes_follow_the_producer(tmp_path):
    ours = _exported(tmp_path)
    legacy = _unstamped(ours, tmp_path)
    assert netx.hdf5.default_modes(ours) == ("slayer", "axonal")
    assert netx.hdf5.default_modes(legacy) == ("lava-dl", "lava-dl")
    assert netx.hdf5.default_modes(legacy, reset_mode="slayer") == ("slayer", "lava-dl")
    net = netx.hdf5.Network(ours, reset_interval=10)
    assert (net.reset_mode, net.delay_mode) == ("slayer", "axonal")
    net = netx.hdf5.Network(legacy, reset_interval=10)
    assert (net.reset_mode, net.delay_mode) == ("lava-dl", "lava-dl")
    assert netx.hdf5.Network(ours, reset_interval=10, reset_mode="lava-dl").reset_mode == "lava-dl"
    assert netx.hdf5.Network(legacy, reset_interval=10, reset_mode="slayer").reset_mode == "slayer"
    with pytest.raises(ValueError, match="reset_mode"):
        netx.hdf5.Network(ours, reset_mode="sometimes")


def test_reset_phases_differ_by_mode(tmp_path):
    """The second block is reset where slayer starts its sample (held at step ``offset + 1``) for our
    files, and one step later (staggered: block ``k`` before step ``offset + 1 + k``) for legacy ones."""
    ours = _exported(tmp_path)
    legacy = _unstamped(ours, tmp_path)
    slayer_block = netx.hdf5.Network(ours, reset_interval=10).layers[1].neuron
    lava_dl_block = netx.hdf5.Network(legacy, reset_interval=10).layers[1].neuron
    assert slayer_block.proc_params["reset_offset"] != lava_dl_block.proc_params["reset_offset"]


def test_network_signature_and_net_config(tmp_path):
    ours = _exported(tmp_path)
    net = netx.hdf5.Network(ours, 1)  # lava-dl's positional (net_config, num_layers)
    assert len(net) == 1
    config = net.net_config
    assert isinstance(config, netx.utils.NetDict)
    assert len(config["layer"]) == 2 and config["layer"][0]["type"] == "dense"
    assert config["layer"][1]["neuron"]["type"] == "CUBA"
    weight = config["layer"][0]["weight"]
    assert weight.dtype == np.int64 and weight.shape == (5, 6)
    config.close()


def test_blocks_take_lava_dl_arguments():
    from lava.proc.lif.process import LIF
    from lava.proc.rf.process import RF

    from lava_dl.proc.cuba import CubaLIF

    weight = np.arange(-6, 6).reshape(3, 4) * 8
    dense = netx.blocks.process.Dense(shape=(3,), neuron_params={"neuron_proc": CubaLIF, "vth": 10},
                                      weight=weight, num_weight_bits=8, weight_exponent=1)
    assert type(dense) is netx.blocks.process.Dense
    np.testing.assert_array_equal(dense.synapse.weights.init, weight)
    assert int(dense.synapse.weight_exp.init) == 1
    lif = netx.blocks.process.Dense(shape=(3,), neuron_params={"neuron_proc": LIF, "vth": 10, "du": 4095,
                                                               "dv": 1024}, weight=weight)
    assert isinstance(lif.neuron, LIF)
    complex_dense = netx.blocks.process.ComplexDense(
        shape=(3,), neuron_params={"neuron_proc": RF, "vth": 10, "period": 10, "alpha": 0.05},
        weight_real=weight, weight_imag=-weight)
    np.testing.assert_array_equal(complex_dense.imag_synapse.weights.init, -weight)
    with pytest.raises(ValueError, match="weight"):
        netx.blocks.process.Dense(shape=(3,), neuron_params={"neuron_proc": CubaLIF, "vth": 10})


def test_legacy_file_default_gives_lava_dl_states(fixtures_dir):
    """lava-dl's ``Network(net_config, reset_interval=17)`` on its own tiny.net: lava-dl's output
    (staggered resets) without naming a reset mode."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi1SimCfg
    from lava.proc import io

    net = netx.hdf5.Network(fixtures_dir / "tiny.net", reset_interval=17, reset_offset=0)
    assert net.reset_mode == "lava-dl"
    net.in_layer.neuron.bias_mant.init = np.load(fixtures_dir / "tinynet/input_bias.npy").astype(np.int32)
    steps = 17 + len(net)
    sink = io.sink.RingBuffer(shape=net.out.shape, buffer=steps)
    net.out.connect(sink.a_in)
    net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi1SimCfg(select_tag="fixed_pt"))
    try:
        result = sink.data.get()
    finally:
        net.stop()
    gt = np.load(fixtures_dir / "tinynet/output.npy")[0].transpose(2, 1, 0, 3)
    assert gt.sum() > 0
    np.testing.assert_array_equal(result[..., 2:17], gt[..., 1:16])
    assert netx.hdf5.Network(fixtures_dir / "tiny.net", reset_interval=17, reset_mode="slayer").reset_mode \
        == "slayer"


def test_deferred_parameters_survive_copies():
    """A neuron copied before its first call draws its own per-channel parameters."""
    import copy

    neuron = rf.Neuron(0.2, (8, 40), (0.01, 0.1), shared_param=False)
    twin = copy.deepcopy(neuron)
    x = _grid((2, 5, 20), 16)
    twin((x, x))
    assert twin.sin_decay.numel() == 5 and neuron.sin_decay.numel() == 1


def test_small_lava_dl_names():
    """jitconfig, SYNAPSE_SIGN_MODE, num_delay_bits, PyNetworkModel, GenericLayer/ComplexLayer."""
    from lava_dl.slayer import jitconfig
    from lava_dl.slayer.synapse import complex as complex_synapse
    from lava_dl.slayer.synapse import layer

    assert jitconfig.TORCH_CUDA_ARCH_LIST is None and jitconfig.VERBOSE is False
    modes = netx.utils.SYNAPSE_SIGN_MODE
    assert (int(modes.MIXED), int(modes.EXCITATORY), int(modes.INHIBITORY)) == (1, 2, 3)
    assert netx.utils.optimize_weight_bits(np.array([[3, -5], [7, 1]]))[3] == modes.MIXED
    assert netx.utils.optimize_weight_bits(np.array([[3, 5], [7, 1]]))[3] == modes.EXCITATORY
    assert netx.utils.optimize_weight_bits(np.array([[-3, -5], [-7, -1]]))[3] == modes.INHIBITORY
    bits = [netx.utils.num_delay_bits(np.array([0, d])) for d in (0, 1, 3, 4, 7, 8, 62)]
    assert bits == [0, 1, 2, 3, 3, 4, 6]
    for bad, match in (([-1, 2], "negative"), ([63], "62"), ([1.5], "integers"), ([], "no delays")):
        with pytest.raises(ValueError, match=match):
            netx.utils.num_delay_bits(np.array(bad))
    from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

    model = netx.hdf5.PyNetworkModel
    assert model.implements_process is netx.hdf5.Network and model.implements_protocol is LoihiProtocol
    assert isinstance(slayer.synapse.Dense(3, 4), layer.GenericLayer)
    assert isinstance(slayer.synapse.Conv(2, 4, 3), layer.GenericLayer)
    assert isinstance(complex_synapse.Dense(3, 4), complex_synapse.ComplexLayer)


def test_step_delay():
    from lava_dl.slayer.block.base import step_delay

    class Block(torch.nn.Module):
        def __init__(self, persistent):
            super().__init__()
            self.neuron = cuba.Neuron(threshold=0.5, current_decay=0.5, voltage_decay=0.5,
                                      persistent_state=persistent)

    x = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) + 1
    plain = Block(False)
    for _ in range(2):
        out = step_delay(plain, x)
        assert torch.equal(out[..., 1:], x[..., :-1]) and not out[..., 0].any()
    persistent = Block(True)
    assert not step_delay(persistent, x)[..., 0].any()
    assert torch.equal(step_delay(persistent, x * 2)[..., 0], x[..., -1])  # the previous call's last step
    assert not step_delay(persistent, x[:1])[..., 0].any()  # another batch size: starts from zeros


def test_wgt_scale_batch_norm():
    from lava_dl.slayer.neuron.norm import WgtScaleBatchNorm

    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 6) * 3 + torch.tensor([1.0, -2.0, 0.5])[None, :, None, None]
    norm = WgtScaleBatchNorm(momentum=0.25)
    out = norm(x)
    mean = x.mean(dim=(0, 2, 3))
    var = x.var(unbiased=False)
    exponent = float(np.clip(np.ceil(np.log2(np.sqrt(float(var) + 1e-5))), -3, 3))
    torch.testing.assert_close(out, (x - mean[None, :, None, None]) / 2 ** exponent)
    n = x.numel() / 3
    torch.testing.assert_close(norm.running_mean, 0.25 * mean)
    torch.testing.assert_close(norm.running_var, 0.25 * var.reshape(1) * n / (n + 1))
    norm.eval()
    eval_exponent = float(np.clip(np.ceil(np.log2(np.sqrt(float(norm.running_var) + 1e-5))), -3, 3))
    torch.testing.assert_close(norm(x), (x - norm.running_mean[None, :, None, None]) / 2 ** eval_exponent)
    assert float(norm.weight_exp) == np.ceil(np.log2(np.sqrt(float(norm.running_var) + 1e-5)))

    # in a block: the mean is quantized and deploys as the bias; a scale other than 1 cannot deploy
    block = slayer.block.cuba.Dense({"threshold": 0.5, "current_decay": 1.0, "voltage_decay": 0.1,
                                     "norm": WgtScaleBatchNorm}, 4, 3)
    block(torch.rand(2, 4, 10))
    block.eval()
    assert isinstance(block.neuron.norm, WgtScaleBatchNorm) and block.neuron.norm.num_features == 3
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        with pytest.raises(slayer.block.base.ExportError, match="divides its input by"):
            block.export_hdf5(f.create_group("layer/0"))
        block.neuron.norm.running_var.fill_(0.5)  # scale 2^0
        block.neuron.norm.running_mean.copy_(torch.tensor([0.25, -0.5, 0.0]))
        block.export_hdf5(f.create_group("layer/1"))
        np.testing.assert_array_equal(f["layer/1/neuron/bias"][()] if "neuron/bias" in f["layer/1"]
                                      else f["layer/1/bias"][()], [-16.0, 32.0, 0.0])


def test_sequential_modules():
    """lava-dl's ``netx.sequential_modules`` (also ``netx.modules``): Quantize, Dequantize, FIFO and a
    post_forward that runs between calls."""
    import time

    from lava_dl.netx import sequential_modules as seq

    assert netx.modules is seq
    quantize = seq.Quantize(exp=6)
    np.testing.assert_array_equal(quantize(torch.tensor([0.5, -1.0, 0.0078125, 0.0234375])), [32, -64, 0, 2])
    assert quantize.time_step == 1
    with pytest.raises(ValueError, match="NaN"):
        quantize(np.array([np.nan]))
    dequantize = seq.Dequantize(exp=6, num_raw_bits=24)
    raw = np.array([64, (1 << 24) - 64, (1 << 23) - 1, 1 << 23])  # 1.0, -1.0, the largest, the smallest
    np.testing.assert_array_equal(dequantize(raw), [1.0, -1.0, ((1 << 23) - 1) / 64, -(1 << 23) / 64])
    with pytest.raises(ValueError, match="num_raw_bits"):
        seq.Dequantize(num_raw_bits=33)
    fifo = seq.FIFO(depth=2)
    assert [fifo(i) for i in range(5)] == [None, None, 0, 1, 2]
    with pytest.raises(ValueError, match="depth"):
        seq.FIFO(0)

    class Loader(seq.AbstractSeqModule):
        def __init__(self):
            super().__init__()
            self.loaded = []

        def forward(self, x):
            return list(self.loaded)

        def post_forward(self):
            time.sleep(0.01)
            self.loaded.append(len(self.loaded) + 1)

    loader = Loader()
    assert [loader(None) for _ in range(3)] == [[], [1], [1, 2]]  # each call waits for the last load


def test_loading_lava_dl_state_dict_entries():
    """State dicts saved by lava-dl load strictly (lava_dl.slayer._lava_dl_state): its names, and its
    entries without a counterpart here. The fixture tests load lava-dl's own saved networks."""
    sd_params = {"threshold": 0.1, "activation": torch.relu, "shared_param": False}
    block = slayer.block.sigma_delta.Dense(sd_params, 4, 3)
    saved = {"synapse.weight": torch.randn(3, 4, 1, 1, 1),
             "neuron.delta.threshold": torch.tensor([0.5, 0.25, 0.125]), "neuron.bias": torch.zeros(1)}
    block.load_state_dict(saved)
    assert torch.equal(block.neuron.delta_threshold.detach(), torch.tensor([0.5, 0.25, 0.125]))
    with pytest.raises(RuntimeError, match="set_bias bias is nonzero"):
        block.load_state_dict({**saved, "neuron.bias": torch.tensor([0.5])})

    params = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.03}
    mask = (torch.rand(3, 4) > 0.5).float()
    masked = slayer.block.cuba.Dense(params, 4, 3, mask=torch.ones(3, 4))
    decays = {"neuron.current_decay": torch.tensor([1024.0]), "neuron.voltage_decay": torch.tensor([123.0])}
    weight = torch.ones(3, 4, 1, 1, 1)
    masked.load_state_dict({**decays, "synapse.weight": weight, "mask": mask.reshape(3, 4, 1, 1, 1)})
    assert torch.equal(masked.mask.reshape(3, 4), mask)
    y = masked.synapse(torch.ones(1, 4, 1))
    assert torch.equal(y[0, :, 0], mask.sum(1))  # the loaded mask is the one applied
    with pytest.raises(RuntimeError, match="build this one with mask="):
        slayer.block.cuba.Dense(params, 4, 3).load_state_dict({**decays, "synapse.weight": weight,
                                                               "mask": mask})

    recurrent = slayer.block.cuba.Recurrent(params, 4, 3)
    state = {**decays, "input_synapse.weight": torch.randn(3, 4, 1, 1, 1),
             "recurrent_synapse.weight": torch.randn(3, 3, 1, 1, 1), "spike_state": torch.zeros(1)}
    recurrent.load_state_dict(state)

    sd_input = slayer.block.sigma_delta.Input({"threshold": 0.1, "activation": torch.relu}, weight=2.0,
                                              bias=0.5)
    # lava-dl's, saved without a transform
    sd_input.load_state_dict({"neuron.delta.threshold": torch.tensor([0.25])})
    assert float(sd_input.weight.detach()) == 1.0 and float(sd_input.bias.detach()) == 0.0
    cuba_input = slayer.block.cuba.Input(params, weight=2.0, bias=0.5)
    with pytest.raises(RuntimeError, match="Missing key"):
        cuba_input.load_state_dict(decays)  # no lava-dl name tells these entries apart: a partial load
    cuba_input.load_state_dict(decays, strict=False)
    assert float(cuba_input.weight.detach()) == 2.0


def test_functional_dynamics_take_any_rank():
    """lava-dl's functional dynamics ran on ``(T,)`` and ``(C, T)`` series too (its neuron_dynamics
    tutorial): the same numbers as the ``(1, 1, T)`` / ``(1, C, T)`` series, in the given shape."""
    x = _grid((1, 1, 60), 7, amplitude=200)[0, 0]
    decay = torch.tensor([409.0])
    one = leaky_integrator.dynamics(x, decay, 0.0, S, 0.5)
    assert one.shape == (60,)
    assert torch.equal(one, leaky_integrator.dynamics(x.reshape(1, 1, 60), decay, 0.0, S, 0.5).reshape(60))
    two = _grid((3, 60), 8, amplitude=200)
    per_channel = torch.tensor([409.0, 100.0, 3000.0])
    assert torch.equal(leaky_integrator.dynamics(two, per_channel, 0.0, S),
                       leaky_integrator.dynamics(two[None], per_channel, 0.0, S)[0])
    sin, cos = torch.tensor([400.0]), torch.tensor([3900.0])
    real, imag = resonator.dynamics(x, x * 0.5, sin, cos, 0.0, 0.0, S, threshold=0.3)
    ref = resonator.dynamics(x.reshape(1, 1, 60), (x * 0.5).reshape(1, 1, 60), sin, cos, 0.0, 0.0, S,
                             threshold=0.3)
    assert real.shape == imag.shape == (60,)
    assert torch.equal(real, ref[0].reshape(60)) and torch.equal(imag, ref[1].reshape(60))
    decays = torch.tensor([400.0])
    theta, refractory = adaptive_threshold.dynamics(one, 0.0, decays, 0.0, decays, 0.5, 0.2, S)
    assert theta.shape == refractory.shape == (60,)


def test_block_and_synapse_attributes_lava_dl_code_reads():
    """``slayer.neuron.Dropout``, ``synapse.grad_norm``, ``block.shape``, no ``neuron`` on blocks without
    one (lava-dl code tests ``hasattr(block, 'neuron')``), and lava-dl's stats line spacing."""
    from lava_dl.slayer.neuron.dropout import Dropout

    assert slayer.neuron.Dropout is Dropout
    params = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.03}
    for weight_norm in (False, True):
        block = slayer.block.cuba.Dense(params, 8, 4, weight_norm=weight_norm)
        assert block.synapse.grad_norm == 0 and block.synapse.weight_norm_enabled is weight_norm
        block(torch.rand(2, 8, 10) * 4).sum().backward()
        weight = block.synapse.parametrizations.weight.original0 if weight_norm else block.synapse.weight
        assert weight.grad is not None and weight.grad.abs().sum() > 0
        assert block.synapse.grad_norm == pytest.approx(float(weight.grad.norm()) / weight.grad.numel())
    assert block.shape == (4,)
    conv = slayer.block.sigma_delta.Conv({"threshold": 0.1, "activation": torch.relu}, 3, 4, 3, stride=2)
    conv(torch.rand(1, 3, 9, 9, 3))
    assert tuple(conv.shape) == (4, 4, 4)
    blocks = (slayer.block.cuba.Flatten(), slayer.block.cuba.Average(2), slayer.block.cuba.TimeDecimation(2),
              slayer.block.concat.Concat(layers=[0], shape=(3,)))
    assert not any(hasattr(b, "neuron") for b in blocks)

    stat = slayer.utils.LearningStat()
    stat.loss_sum, stat.correct_samples, stat.num_samples = 3.0, 3, 4
    assert str(stat) == "loss =     0.75000  " + " " * 24 + "accuracy = 0.75000 "
    stat.update()
    stat.loss_sum, stat.correct_samples, stat.num_samples = 2.0, 2, 4
    assert str(stat) == "loss =     0.50000 (min =     0.75000)     accuracy = 0.50000 (max = 0.75000) "


def test_lava_dl_output_block_state_loads():
    """lava-dl's sigma-delta Output kept a delta encoder and a norm it never applied: their entries load
    (dropped) into ours, which has neither."""
    from lava_dl.slayer.neuron.norm import MeanOnlyBatchNorm

    params = {"threshold": 0.1, "activation": torch.relu, "norm": MeanOnlyBatchNorm}
    out = slayer.block.sigma_delta.Output(params, 10, 1)
    out.load_state_dict({"synapse.weight": torch.randn(1, 10, 1, 1, 1),
                         "neuron.delta.threshold": torch.ones(1), "neuron.norm.running_mean": torch.zeros(1),
                         "neuron.bias": torch.zeros(1)})
    with pytest.raises(RuntimeError, match="Unexpected key"):  # a norm ours does apply is never dropped
        slayer.block.sigma_delta.Dense({"threshold": 0.1, "activation": torch.relu}, 10, 2).load_state_dict(
            {"synapse.weight": torch.randn(2, 10, 1, 1, 1), "neuron.delta.threshold": torch.ones(1),
             "neuron.norm.running_mean": torch.zeros(2)})
