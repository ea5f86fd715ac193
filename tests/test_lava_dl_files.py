"""Files and numbers written by lava-dl 0.6.0 itself: we load them and reproduce them.

The fixtures in ``tests/fixtures/lava_dl_0.6`` (see its README) were made by
``scripts/make_lava_dl_fixtures.py`` with lava-dl 0.6.0's own slayer blocks on the CPU: for
each small network, the ``.net`` written by lava-dl's ``export_hdf5``, a seeded input,
lava-dl's slayer output (and per-block outputs) and the gradients of lava-dl's backward for
``loss = sum(output * cotangent)``. The networks are defined once, in that script, as
functions of a ``slayer`` module: the tests build them with ``lava_dl.slayer`` (lava-dl's
``lava.lib.dl.slayer`` import rewritten) and load lava-dl's parameters into them.

For every fixture:

1. netx loads the ``.net`` and Lava (``Loihi1SimCfg(select_tag='fixed_pt')``) reproduces
   lava-dl's slayer output exactly (both samples streamed with ``reset_interval``);
2. :class:`~lava_dl.slayer.auto.SequentialNetwork` loads the ``.net`` and its forward equals
   lava-dl's output exactly, and so does every block of the network built with our blocks;
   our export of that network writes lava-dl's file (same datasets, dtypes and values);
3. our backward equals lava-dl's gradients (float32 tolerance) for every weight, delay,
   threshold and the input. lava-dl's decay gradients are wrong ([QUIRK] in
   reference-neurons.md §1.3: leaky-integrator decay gradient with the opposite sign and
   without the 1/4096 factor, resonator decay gradient without 1/4096); for those the oracle
   is the autograd of a plain per-time-step torch loop written here.

Where lava-dl's deployment semantics are wrong the test states the corrected expectation:
lava-dl's export drops ``cum_error`` [BUG]; lava-dl's netx moves dense axonal delays onto the
layer's input synapses [DIVERGENCE]; lava-dl's netx cannot run ALIF, ADRF adaptation, pool or
recurrent records at all, and loses RF decays in a float round trip [DIVERGENCE]; its dense
record without neuron (Affine ``dynamics=False``) deploys as an integrator whose voltage is
the running sum of the per-step output [DIVERGENCE, reference-hdf5.md §5.3].
"""

from __future__ import annotations

import io
import pathlib
import re

import h5py
import numpy as np
import pytest
import torch

import lava_dl  # noqa: F401  (installs the lava-nc Python 3.11 fix before Lava is imported)
from lava_dl import netx, slayer
from lava_dl.slayer.auto import SequentialNetwork
from scripts.make_lava_dl_fixtures import BATCH, CASES, INIT_BATCH, make_input
from tests.lava_run import run_and_read

FIX = pathlib.Path(__file__).resolve().parent / "fixtures" / "lava_dl_0.6"
S = 4096.0  # state scale: real value * S = Loihi integer
SPIKING = [n for n, c in CASES.items() if not c.graded and not n.startswith("cuba_affine")]
GRADED = [n for n, c in CASES.items() if c.graded]
#: Parameters with lava-dl's wrong decay gradient (tested against a torch loop instead).
DECAY_GRADIENTS = {"cuba_dense": ("0.neuron.current_decay", "0.neuron.voltage_decay"),
                   "rf_grad": ("0.neuron.sin_decay", "0.neuron.cos_decay")}


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

def _data(name: str) -> dict[str, np.ndarray]:
    with np.load(FIX / f"{name}.npz") as npz:
        return {k: npz[k] for k in npz.files}


def _our_name(name: str) -> str:
    """Our state-dict name of a lava-dl one (torch's parametrized weight norm; sigma-delta threshold)."""
    return (name.replace("synapse.weight_g", "synapse.parametrizations.weight.original0")
            .replace("synapse.weight_v", "synapse.parametrizations.weight.original1")
            .replace("neuron.delta.threshold", "neuron.delta_threshold"))


def _build(name: str, data: dict) -> torch.nn.Sequential:
    """The fixture's network made with our blocks, holding lava-dl's parameters (eval mode)."""
    case = CASES[name]
    torch.manual_seed(case.seed)
    net = case.build(slayer)
    net.eval()
    with torch.no_grad():  # fixes shapes, as the generator's first pass
        net(torch.zeros(INIT_BATCH, *case.input_shape, case.steps))
    # lava-dl's own state dict, loaded strictly: its names and entries are translated on loading
    # (lava_dl.slayer._lava_dl_state)
    net.load_state_dict({k[len("param/"):]: torch.from_numpy(v) for k, v in data.items()
                         if k.startswith("param/")})
    return net


def _lava_layout(x: np.ndarray) -> np.ndarray:
    """One sample ``(C, H, W, T)`` -> Lava ``(x, y, c, T)``; dense ``(N, T)`` unchanged."""
    return x if x.ndim == 2 else x.transpose(2, 1, 0, 3)


def _stream(samples: np.ndarray, pad: int = 0) -> np.ndarray:
    """The samples back to back in Lava layout, then ``pad`` zero steps."""
    parts = [_lava_layout(s) for s in samples]
    return np.concatenate([*parts, np.zeros((*parts[0].shape[:-1], pad))], axis=-1)


def _run(path, data: np.ndarray, steps: int, **kwargs) -> np.ndarray:
    """Run the netx network of ``path`` fed by ``data``; return its output sink (``steps`` columns).

    The expectations are lava-dl's *slayer* outputs, so slayer's per-sample resets are asked for
    (``reset_mode='slayer'``; a file written by lava-dl defaults to lava-dl's staggered netx resets).
    """
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    kwargs.setdefault("reset_mode", "slayer")
    net = netx.hdf5.Network(net_config=str(path), **kwargs)
    source = Source(data=data)
    sink = Sink(shape=net.out.shape, buffer=steps)
    source.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    (out,) = run_and_read(net, steps, [sink.data])
    # the same models stepped outside Lava record the same
    assert np.array_equal(netx.simulate(str(path), data, num_steps=steps, **kwargs), out)
    return out


def _per_sample(out: np.ndarray, steps: int) -> np.ndarray:
    """Sink columns of ``BATCH`` back-to-back samples -> ``(BATCH, n, steps)``."""
    return out.reshape(-1, BATCH, steps).transpose(1, 0, 2)


def test_fixtures_present_and_inputs_reproducible():
    """Every case has its two files; the stored input is the one the script's seed gives."""
    assert FIX.is_dir()
    for name, case in CASES.items():
        data = _data(name)
        assert (FIX / f"{name}.net").is_file()
        np.testing.assert_array_equal(data["input"], make_input(case))
        assert str(data["meta/lava_dl"]) == "0.6.0"


# --------------------------------------------------------------------------
# (1) netx + Lava reproduce lava-dl's slayer output
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name", SPIKING)
def test_lava_reproduces_lava_dl(name):
    """Binary-spike networks: the samples streamed with ``reset_interval``; Lava column ``t`` of a
    sample is slayer index ``t`` (every block delays by one step in slayer, as Lava's synapses).

    The delay fixture deploys with ``delay_mode='axonal'`` (slayer's semantics); lava-dl's own
    placement is checked in :func:`test_lava_dl_delay_placement`.
    """
    case, data = CASES[name], _data(name)
    x = data["input"]
    kwargs = {"reset_interval": case.steps}
    if len(case.input_shape) == 3:
        kwargs["input_shape"] = _lava_layout(x[0]).shape[:-1]
    if case.delays:
        kwargs["delay_mode"] = "axonal"
    out = _run(FIX / f"{name}.net", _stream(x), BATCH * case.steps, **kwargs)
    expected = data["output"]
    assert expected.sum() > 0
    np.testing.assert_array_equal(_per_sample(out, case.steps), expected)


def test_lava_dl_delay_placement():
    """[DIVERGENCE] lava-dl's netx puts a dense record's delays on its input synapses (the default
    for files without our producer stamp): the same as slayer for time-invariant neurons (no
    bias, zero start, no reset), so one sample without resets is reproduced exactly."""
    case, data = CASES["cuba_delay"], _data("cuba_delay")
    out = _run(FIX / "cuba_delay.net", _stream(data["input"][:1]), case.steps)
    np.testing.assert_array_equal(out, data["output"][0])


@pytest.mark.parametrize("name", ["cuba_affine", "cuba_affine_nodyn"])
def test_lava_affine_readout(name):
    """Affine readouts never spike: the last layer's voltage is probed. Its slayer output has no
    step delay, so slayer index ``t`` of sample ``s`` is Lava column ``s T + t + 1``.

    ``dynamics=True``: ``v = S * output``. ``dynamics=False`` (no neuron group): lava-dl's netx
    integrator, ``v`` = running sum of the per-step output within the sample [DIVERGENCE]."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi1SimCfg
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.monitor.process import Monitor

    case, data = CASES[name], _data(name)
    steps = BATCH * case.steps + 1
    net = netx.hdf5.Network(net_config=str(FIX / f"{name}.net"), reset_interval=case.steps,
                            reset_mode="slayer")
    source = Source(data=_stream(data["input"], pad=1))
    source.s_out.connect(net.inp)
    monitor = Monitor()
    monitor.probe(net.out_layer.neuron.v, steps)
    net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi1SimCfg(select_tag="fixed_pt"))
    try:
        (probe,) = monitor.get_data().values()
        (v,) = probe.values()  # (steps, n)
    finally:
        net.stop()
    readout = _per_sample(v[1:].T, case.steps) / S
    expected = data["output"] if name == "cuba_affine" else np.cumsum(data["output"], axis=-1)
    assert np.abs(expected).sum() > 0
    np.testing.assert_array_equal(readout, expected)


def _sdnn_source(name: str, x: torch.Tensor) -> np.ndarray:
    """Integer input of the deployed ``Delta`` (netx never applies the input record's transform):
    ``trunc(64 z)`` with ``z = q8(x) q8(weight) + q8(bias)`` of the network's Input block."""
    net = _build(name, _data(name))
    with torch.no_grad():
        z = net[0].neuron_input(x).to(torch.float64).numpy()
    data = np.trunc(z * 64)
    assert np.array_equal(data, z * 64)
    return data


def _synapses(net) -> int:
    return sum(getattr(block, "synapse", None) is not None for block in net)


@pytest.mark.parametrize("name", GRADED)
def test_lava_reproduces_lava_dl_sigma_delta(name):
    """Sigma-delta: slayer has no step delay, each of the ``N`` Lava synapses adds one, so slayer
    index ``t`` is column ``t + N`` (input padded with ``N`` zero steps); Sigma sends
    ``output * 2^18``. lava-dl's export drops ``cum_error`` [BUG], so its file deploys the
    network without it: the expectation is lava-dl's output with ``cum_error`` off (stored)."""
    case, data = CASES[name], _data(name)
    lag = _synapses(_build(name, data))
    source = _sdnn_source(name, torch.from_numpy(data["input"]))
    out = _run(FIX / f"{name}.net", _stream(source, pad=lag), BATCH * case.steps + lag,
               reset_interval=case.steps)
    expected = data.get("output_without_cum_error", data["output"])
    assert np.abs(expected).sum() > 0
    np.testing.assert_array_equal(_per_sample(out[:, lag:], case.steps) / 2.0 ** 18, expected)


def test_cum_error_network_exported_here_reproduces_lava_dl(tmp_path):
    """The corrected deployment: the same network exported by us keeps ``cum_error`` and Lava
    reproduces lava-dl's slayer output with ``cum_error`` exactly."""
    name = "sdnn_cum_error"
    case, data = CASES[name], _data(name)
    net = _build(name, data)
    x = torch.from_numpy(data["input"])
    with torch.no_grad():
        net(x)
    path = tmp_path / "ours.net"
    _export(net, path)
    lag = _synapses(net)
    out = _run(path, _stream(_sdnn_source(name, x), pad=lag), BATCH * case.steps + lag,
               reset_interval=case.steps)
    assert not np.array_equal(data["output"], data["output_without_cum_error"])
    np.testing.assert_array_equal(_per_sample(out[:, lag:], case.steps) / 2.0 ** 18, data["output"])


# --------------------------------------------------------------------------
# (2) slayer forward and export
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(CASES))
def test_auto_loads_lava_dl_file(name):
    """``SequentialNetwork`` of lava-dl's file computes lava-dl's output (a file without
    ``cum_error``: the output with it off, as for Lava)."""
    data = _data(name)
    net = SequentialNetwork(str(FIX / f"{name}.net")).eval()
    with torch.no_grad():
        y = net(torch.from_numpy(data["input"]))
    np.testing.assert_array_equal(y.numpy(), data.get("output_without_cum_error", data["output"]))


def _export(net, path) -> None:
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(net):
            block.export_hdf5(layer.create_group(f"{i}"))


def _datasets(f: h5py.File) -> dict[str, np.ndarray]:
    out = {}
    f.visititems(lambda key, obj: out.__setitem__(key, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_blocks_forward_and_export(name):
    """Our blocks with lava-dl's parameters: every block's output equals lava-dl's exactly, and
    the export writes lava-dl's datasets (names, dtypes, shapes, values). Our additions:
    ``neuron/cumError`` (lava-dl drops cum_error [BUG]) and the sigma-delta Input's identity
    transform (weight 64, bias 0) where lava-dl's Input has none (netx ignores both)."""
    data = _data(name)
    net = _build(name, data)
    y = torch.from_numpy(data["input"])
    with torch.no_grad():
        for i, block in enumerate(net):
            y = block(y)
            np.testing.assert_array_equal(y.numpy(), data[f"block/{i}"], err_msg=f"block {i}")
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(net):
            block.export_hdf5(layer.create_group(f"{i}"))
        ours = _datasets(f)
    with h5py.File(FIX / f"{name}.net", "r") as f:
        theirs = _datasets(f)
    extra = {k: v for k, v in ours.items() if k not in theirs}
    for key, value in extra.items():
        if key.endswith("neuron/cumError"):
            assert bool(value) and name == "sdnn_cum_error", key
        else:
            assert name == "sdnn_cum_error" and key in ("layer/0/weight", "layer/0/bias"), key
            assert float(value[0]) == (64.0 if key.endswith("weight") else 0.0)
    assert set(theirs) <= set(ours), sorted(set(theirs) - set(ours))
    for key, value in theirs.items():
        mine = ours[key]
        assert np.asarray(mine).dtype == np.asarray(value).dtype, key
        np.testing.assert_array_equal(mine, value, err_msg=key)


# --------------------------------------------------------------------------
# (3) gradients
# --------------------------------------------------------------------------

def _assert_grad(ours: np.ndarray, ref: np.ndarray, what: str, rtol: float = 1e-5) -> None:
    """float32 agreement: elementwise ``rtol``, plus ``rtol`` of the largest magnitude absolute."""
    assert np.abs(ref).max() > 0, f"{what}: zero reference gradient (vacuous)"
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=rtol * float(np.abs(ref).max()), err_msg=what)


def _backward(name: str, data: dict):
    net = _build(name, data)
    x = torch.from_numpy(data["input"]).requires_grad_(True)
    y = net(x)
    (y * torch.from_numpy(data["cotangent"])).sum().backward()
    return net, x


@pytest.mark.parametrize("name", list(CASES))
def test_gradients_equal_lava_dl(name):
    """Every gradient lava-dl computes (weights, weight-norm g and v, axonal delays, recurrent
    weights, sigma-delta threshold, input) equals ours, except the decays (their own test)
    and the sigma-delta Input transform (:func:`test_sigma_delta_input_transform_is_learnable`).
    A masked Dense: lava-dl zeroes the masked weights in place (``weight.data *= mask``), so
    their gradient is that of a free weight; ours masks inside the graph (gradient 0 there)."""
    data = _data(name)
    net, x = _backward(name, data)
    params = dict(net.named_parameters())
    checked = 0
    for key in (k[len("grad/"):] for k in data if k.startswith("grad/")):
        ref = data[f"grad/{key}"]
        if key == "input":
            _assert_grad(x.grad.numpy(), ref, "input")
        elif key in DECAY_GRADIENTS.get(name, ()) or (name == "sdnn_dense" and key in ("0.weight", "0.bias")):
            continue
        else:
            grad = params[_our_name(key)].grad.numpy().reshape(ref.shape)
            if key == "0.synapse.weight" and name == "cuba_mask_wnorm":
                mask = data["param/0.mask"].astype(bool)
                assert np.array_equal(net[0].mask.numpy().reshape(mask.shape), mask)
                assert not np.any(grad[~mask])
                grad, ref = grad[mask], ref[mask]
            _assert_grad(grad, ref, key)
        checked += 1
    assert checked >= 3


def test_sigma_delta_input_transform_is_learnable():
    data = _data("sdnn_dense")
    net, _ = _backward("sdnn_dense", data)
    for key in ("0.weight", "0.bias"):
        grad = dict(net.named_parameters())[key].grad
        assert grad is not None, f"{key}: no gradient"
        _assert_grad(grad.numpy(), data[f"grad/{key}"], key)


def test_affine_default_dynamics_is_lava_dl_s():
    assert slayer.block.cuba.Affine({"threshold": 1.0, "current_decay": 0.5, "voltage_decay": 0.5},
                                    4, 3).dynamics is True


# ---- plain torch loops: the oracle where lava-dl's gradient is wrong -------------------------

def _trunc(x: torch.Tensor) -> torch.Tensor:
    """``trunc`` with a straight-through gradient (Loihi's rounding toward zero)."""
    return x + (torch.trunc(x) - x).detach()


def _round(x: torch.Tensor) -> torch.Tensor:
    """Round-half-even with a straight-through gradient (how a stored decay is used)."""
    return x + (torch.round(x) - x).detach()


def _decayed(state: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``rs0(state_int * keep_int, 12)`` in real units (``keep`` = 4096 - decay, integer-valued)."""
    return _trunc(state * S * keep / 4096) / S


class _Spike(torch.autograd.Function):
    """Binary spike ``v >= thr`` with lava-dl's surrogate ``scale / (2 tau) exp(-|v - thr| / tau)``."""

    @staticmethod
    def forward(ctx, v, thr, tau, scale):
        ctx.save_for_backward(v)
        ctx.constants = (thr, tau, scale)
        return (v >= thr).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        thr, tau, scale = ctx.constants
        return grad * scale / (2 * tau) * torch.exp(-(v - thr).abs() / tau), None, None, None


class _PhaseSpike(torch.autograd.Function):
    """RF spike ``[re >= thr] [im[t-1] < 0] [im >= 0]`` with lava-dl's complex surrogate
    (reference-neurons.md §1.4); ``im[t-1]`` gets no gradient."""

    @staticmethod
    def forward(ctx, re, im, im_prev, thr, tau, scale):
        ctx.save_for_backward(re, im)
        ctx.constants = (thr, tau, scale)
        return ((re >= thr) & (im_prev < 0) & (im >= 0)).to(re.dtype)

    @staticmethod
    def backward(ctx, grad):
        re, im = ctx.saved_tensors
        thr, tau, scale = ctx.constants
        d_re = torch.exp(-(re - thr).abs() / tau) / (2 * tau)
        d_im = torch.exp(-im.abs() / tau) / (2 * tau)
        step = 0.5 * (1 + torch.sign(re - thr) * (1 - 2 * tau * d_re))
        grad_im = -grad * scale / tau * torch.sign(im) * d_im * step
        return grad * scale * d_re * d_im, grad_im, None, None, None, None


def _leaf(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array, np.float64), requires_grad=True)


def _step_delay(spikes: list[torch.Tensor]) -> torch.Tensor:
    """slayer's block latency: output index ``t`` is the spike of step ``t - 1``."""
    return torch.stack([torch.zeros_like(spikes[0]), *spikes[:-1]], dim=-1)


def _cuba_loop(z, du, dv, theta, mean=0.0):
    """CUBA neuron of lava-dl, one step at a time: ``u`` and ``v`` leaky integrators (the norm's
    mean subtracted from ``u`` before ``v``), spike ``v >= θ + 0.01/S`` (lava-dl's eps: Loihi's
    strict ``>``), reset ``v = 0`` by value only (lava-dl's adjoint ignores resets)."""
    thr = theta + 0.01 / S
    u = v = torch.zeros_like(z[..., 0])
    spikes = []
    for t in range(z.shape[-1]):
        u = _decayed(u, 4096 - du) + z[..., t]
        v = _decayed(v, 4096 - dv) + u - mean
        s = _Spike.apply(v, thr, 100 * theta, 0.1)  # TAU_RHO_MULT 100, SCALE_RHO_MULT 0.1
        v = v - (v * s).detach()
        spikes.append(s)
    return _step_delay(spikes)


def test_cuba_decay_gradients_torch_loop():
    """``cuba_dense`` (block 0: norm bias, learnable decays; block 1: per-channel decays) as a
    plain torch loop: its forward equals lava-dl's, its weight and input gradients equal
    lava-dl's, and its decay gradients equal ours. lava-dl's own decay gradient [QUIRK] is
    ``-4096`` times the true one for the current (never reset) and differs for the voltage
    (lava-dl uses the pre-reset voltage)."""
    data = _data("cuba_dense")
    p = {k[len("param/"):]: v for k, v in data.items() if k.startswith("param/")}
    x = _leaf(data["input"])
    w0, w1 = _leaf(p["0.synapse.weight"][..., 0, 0, 0]), _leaf(p["1.synapse.weight"][..., 0, 0, 0])
    du0, dv0 = _leaf(p["0.neuron.current_decay"]), _leaf(p["0.neuron.voltage_decay"])
    mean = torch.tensor(p["0.neuron.norm.running_mean"], dtype=torch.float64)[:, None]
    h = _cuba_loop(torch.einsum("oi,bit->bot", w0, x), _round(du0), _round(dv0), 1.25, mean[..., 0])
    du1 = torch.round(torch.tensor(p["1.neuron.current_decay"], dtype=torch.float64))
    dv1 = torch.round(torch.tensor(p["1.neuron.voltage_decay"], dtype=torch.float64))
    y = _cuba_loop(torch.einsum("oi,bit->bot", w1, h), du1, dv1, 1.25)
    np.testing.assert_array_equal(y.detach().numpy(), data["output"])
    (y * torch.from_numpy(data["cotangent"]).double()).sum().backward()
    for name, leaf in (("0.synapse.weight", w0), ("1.synapse.weight", w1), ("input", x)):
        _assert_grad(leaf.grad.numpy().reshape(data[f"grad/{name}"].shape), data[f"grad/{name}"], name)

    net, _ = _backward("cuba_dense", data)
    ours = {k: p.grad.numpy() for k, p in net.named_parameters() if "decay" in k and p.grad is not None}
    assert set(ours) == set(DECAY_GRADIENTS["cuba_dense"])
    _assert_grad(ours["0.neuron.current_decay"], du0.grad.numpy(), "current decay")
    _assert_grad(ours["0.neuron.voltage_decay"], dv0.grad.numpy(), "voltage decay")
    _assert_grad(-data["grad/0.neuron.current_decay"] / 4096, du0.grad.numpy(), "lava-dl's current decay")


def test_lava_dl_decay_gradient_equals_lava_dl():
    """``cuba_dense`` with ``decay_gradient="lava-dl"``: block 0's learnable decays (a norm: the
    two-stage kernels) get lava-dl's own gradients, voltage decay included (the fused kernel is
    checked against a torch loop in ``test_cuba_torch``)."""
    data = _data("cuba_dense")
    net = _build("cuba_dense", data)
    neurons = [block.neuron for block in net]
    for neuron in neurons:  # as decay_gradient="lava-dl" at construction sets it
        neuron.lava_dl_decay_gradient = True
    x = torch.from_numpy(data["input"])
    (net(x) * torch.from_numpy(data["cotangent"])).sum().backward()
    ours = {k: p.grad.numpy() for k, p in net.named_parameters() if "decay" in k and p.grad is not None}
    assert set(ours) == set(DECAY_GRADIENTS["cuba_dense"])
    for name, grad in ours.items():
        _assert_grad(grad, data[f"grad/{name}"], f"lava-dl's {name}")
    assert slayer.neuron.cuba.Neuron(threshold=1, current_decay=0.1, voltage_decay=0.1,
                                     decay_gradient="lava-dl").lava_dl_decay_gradient


def test_rf_decay_gradients_torch_loop():
    """``rf_grad`` (RF dense, learnable ``sin_decay``/``cos_decay``) as a plain torch loop: forward
    and weight/input gradients equal lava-dl's; decay gradients equal ours, which are lava-dl's
    divided by 4096 (lava-dl omits the factor [QUIRK])."""
    data = _data("rf_grad")
    p = {k[len("param/"):]: v for k, v in data.items() if k.startswith("param/")}
    x = _leaf(data["input"])
    w_re = _leaf(p["0.synapse.real.weight"][..., 0, 0, 0])
    w_im = _leaf(p["0.synapse.imag.weight"][..., 0, 0, 0])
    sin_p, cos_p = _leaf(p["0.neuron.sin_decay"]), _leaf(p["0.neuron.cos_decay"])
    sin_d, cos_d = _round(sin_p), _round(cos_p)
    z_re, z_im = torch.einsum("oi,bit->bot", w_re, x), torch.einsum("oi,bit->bot", w_im, x)
    theta = 0.5
    re = im = torch.zeros_like(z_re[..., 0])
    spikes = []
    for t in range(z_re.shape[-1]):
        re, im, im_prev = (_decayed(re, cos_d) - _decayed(im, sin_d) + z_re[..., t],
                           _decayed(re, sin_d) + _decayed(im, cos_d) + z_im[..., t], im)
        spikes.append(_PhaseSpike.apply(re, im, im_prev.detach(), theta, 0.5 * theta, 10.0))  # RF: 0.5, 10
    y = _step_delay(spikes)
    np.testing.assert_array_equal(y.detach().numpy(), data["output"])
    (y * torch.from_numpy(data["cotangent"]).double()).sum().backward()
    for name, leaf in (("0.synapse.real.weight", w_re), ("0.synapse.imag.weight", w_im), ("input", x)):
        _assert_grad(leaf.grad.numpy().reshape(data[f"grad/{name}"].shape), data[f"grad/{name}"], name)

    net, _ = _backward("rf_grad", data)
    ours = dict(net.named_parameters())
    for name, leaf in (("0.neuron.sin_decay", sin_p), ("0.neuron.cos_decay", cos_p)):
        _assert_grad(ours[name].grad.numpy(), leaf.grad.numpy(), name)
        _assert_grad(data[f"grad/{name}"] / 4096, leaf.grad.numpy(), f"lava-dl's {name}")


# ---- surrogate constants -------------------------------------------------------------------

#: lava-dl 0.6.0's literal surrogate multipliers (``TAU_RHO_MULT``, ``SCALE_RHO_MULT`` at the top
#: of ``lava/lib/dl/slayer/neuron/<family>.py``). Sigma-delta passes ``tau_grad``/``scale_grad``
#: to its delta unit unchanged (multipliers 1): pinned by the ``sdnn_dense`` threshold gradient,
#: whose block sets ``tau_grad = 0.5``, ``scale_grad = 2``.
LAVA_DL_SURROGATE = {"cuba": (100, 0.1), "alif": (100, 0.1), "rf": (0.5, 10), "rf_iz": (100, 0.1),
                     "adrf": (100, 0.1), "adrf_iz": (100, 0.1)}


@pytest.mark.parametrize("family", sorted(LAVA_DL_SURROGATE))
def test_surrogate_constants_pinned(family):
    """Each family's multipliers equal lava-dl's literals, and a neuron's surrogate width and height
    are ``TAU_RHO_MULT * tau_grad * threshold`` and ``SCALE_RHO_MULT * scale_grad``."""
    tau_mult, scale_mult = LAVA_DL_SURROGATE[family]
    neuron_cls = getattr(slayer.neuron, family).Neuron
    assert (neuron_cls.spec.tau_rho_mult, neuron_cls.spec.scale_rho_mult) == (tau_mult, scale_mult)
    params = {"threshold": 0.75, "tau_grad": 0.5, "scale_grad": 3.0}
    if family in ("cuba", "alif"):
        params.update(current_decay=0.5, voltage_decay=0.5)
    else:
        params.update(period=8.0, decay=0.1)
    if family in ("alif", "adrf", "adrf_iz"):
        params.update(threshold_step=0.25, threshold_decay=0.5, refractory_decay=0.5)
    theta, tau, scale = neuron_cls(**params).surrogate
    assert theta == 0.75
    assert tau == pytest.approx(tau_mult * 0.5 * 0.75, rel=1e-12)
    assert scale == pytest.approx(scale_mult * 3.0, rel=1e-12)


def test_lava_dl_source_constants():
    """When lava-dl 0.6.0's source is at hand (the benchmarks' cache), its literals are the table's."""
    root = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / ".cache" / "lava_dl-0.6.0"
    neuron_dir = root / "lava" / "lib" / "dl" / "slayer" / "neuron"
    if not neuron_dir.is_dir():
        pytest.skip(f"lava-dl 0.6.0 source not found at {neuron_dir}")
    for family, expected in LAVA_DL_SURROGATE.items():
        source = (neuron_dir / f"{family}.py").read_text()
        values = tuple(float(re.search(rf"^{key} = ([0-9.]+)$", source, re.M).group(1))
                       for key in ("TAU_RHO_MULT", "SCALE_RHO_MULT"))
        assert values == expected, family
