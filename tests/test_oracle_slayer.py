"""slayer neurons (quantized forward) against the independent oracles of ``tests/oracles``.

Every family: random per-channel parameters and inputs (several seeds), and the constructed
boundary cases of :mod:`tests.oracles.cases` (threshold equality, 24-bit wrap and saturation,
decays 0 and 4096). Spikes (or graded messages), every recorded state per step and every
carried state after every step (persistent state, one step per call) must equal the oracle's.
Dense blocks carry the extreme 8-bit weights into every family.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lava_dl.slayer import block as slayer_block
from lava_dl.slayer.neuron import adrf, adrf_iz, alif, cuba, rf, rf_iz, sigma_delta
from tests.oracles import cases, simulate, synapse
from tests.oracles.cases import make_oracle

NEURON_FAMILIES = ("CUBA", "ALIF", "RF", "RF_IZ", "ADRF", "ADRF_IZ", "SIGMA_DELTA")
ENCODERS = ("DELTA", "SIGMA")
MODULES = {"CUBA": cuba, "ALIF": alif, "RF": rf, "RF_IZ": rf_iz, "ADRF": adrf, "ADRF_IZ": adrf_iz}
#: Per-channel parameters (the rest is one value per layer).
CHANNEL_KEYS = ("du", "dv", "dth", "dref", "sin_decay", "cos_decay")
DECAY_ATTRS = {"du": "current_decay", "dv": "voltage_decay", "dth": "threshold_decay",
               "dref": "refractory_decay", "sin_decay": "sin_decay", "cos_decay": "cos_decay"}
STATES = 4096  # slayer's state scale S at scale 64


def _neuron_args(family: str, p: dict) -> dict:
    """slayer constructor arguments for the layer-wide values of ``p`` (decays are set afterwards)."""
    if family == "SIGMA_DELTA":
        return dict(threshold=1.0, activation=F.relu if p.get("act_mode", 1) == 1 else None,
                    cum_error=bool(p.get("cum_error", 0)), spike_exp=p.get("spike_exp", 6))
    if family == "DELTA":
        return dict(threshold=p["vth"] / 64, cum_error=bool(p.get("cum_error", 0)),
                    spike_exp=p.get("spike_exp", 6))
    if family == "SIGMA":
        return dict(spike_exp=p.get("spike_exp", 6))
    args = dict(threshold=p["vth"] / 64, graded_spike=bool(p.get("graded", 0)))
    if family in ("CUBA", "ALIF"):
        args.update(current_decay=0.5, voltage_decay=0.5)
    else:
        args.update(period=10.0, decay=0.1)
    if family in ("ALIF", "ADRF", "ADRF_IZ"):
        args.update(threshold_step=p["vth_step"] / 64, threshold_decay=0.5, refractory_decay=0.5)
    return args


def _set_channel_values(neuron, family: str, channel_params: list[dict]) -> None:
    """Overwrite the stored per-channel integers (decays, rotations; sigma-delta thresholds)."""
    with torch.no_grad():
        for key, attr in DECAY_ATTRS.items():
            if key in channel_params[0]:
                getattr(neuron, attr).data = torch.tensor([float(p[key]) for p in channel_params])
        if family == "SIGMA_DELTA":
            neuron.delta_threshold.data = torch.tensor([p["vth"] / 64 for p in channel_params])


def _build(family: str, channel_params: list[dict], persistent: bool = False):
    """A slayer neuron of ``len(channel_params)`` channels with exactly these integer parameters."""
    p = channel_params[0]
    channels = len(channel_params)
    if family == "SIGMA_DELTA":
        neuron = sigma_delta.Neuron(**_neuron_args(family, p), shared_param=False, shape=(channels,),
                                    persistent_state=persistent)
    elif family == "DELTA":
        neuron = sigma_delta.Delta(**_neuron_args(family, p), persistent_state=persistent)
    elif family == "SIGMA":
        neuron = sigma_delta.Sigma(**_neuron_args(family, p), persistent_state=persistent)
    else:
        neuron = MODULES[family].Neuron(**_neuron_args(family, p), shared_param=False, shape=(channels,),
                                        persistent_state=persistent)
    _set_channel_values(neuron, family, channel_params)
    return neuron


def _in_unit(family: str, p: dict) -> float:
    """Integer input units per real slayer input unit."""
    if family in ("SIGMA_DELTA", "SIGMA"):
        return float(1 << (12 + p.get("spike_exp", 6)))
    return 64.0


def _message_unit(family: str, p: dict) -> float:
    """Integer message units per real slayer output unit."""
    if family in ("SIGMA_DELTA", "DELTA"):
        return float(1 << (6 + p.get("spike_exp", 6)))
    if family == "SIGMA":
        return float(1 << (12 + p.get("spike_exp", 6)))
    return float(STATES) if p.get("graded", 0) else 1.0


def _as_input(family: str, p: dict, ports: list[np.ndarray], batch: int, channels: int):
    """slayer input (``(N, C, T)`` tensors, a pair for the resonators) for integer rows ``(N*C, T)``."""
    dtype = torch.float64 if family in ("SIGMA_DELTA", "SIGMA", "DELTA") else torch.float32
    unit = _in_unit(family, p)
    tensors = [torch.from_numpy(a.reshape(batch, channels, -1) / unit).to(dtype) for a in ports]
    return tuple(tensors) if len(tensors) == 2 else tensors[0]


def _ints(t: torch.Tensor, unit: float) -> np.ndarray:
    """Real slayer values as the integers they stand for (exactly, or the test fails)."""
    values = t.detach().to(torch.float64).reshape(-1, t.shape[-1]).numpy() * unit
    ints = np.round(values).astype(np.int64)
    assert np.array_equal(ints, values), "slayer value is not on the integer grid"
    return ints


def _records(family: str, neuron, x, p: dict) -> dict[str, np.ndarray]:
    """One forward over the whole sequence: messages and the recorded states per step, as integers."""
    m = _message_unit(family, p)
    with torch.no_grad():
        if family in ("CUBA", "ALIF"):
            current, voltage, spikes = neuron.run(x)
            return {"s": _ints(spikes, m), "u": _ints(current, STATES), "v": _ints(voltage, STATES)}
        if family in ("RF", "RF_IZ"):
            real, imag, spikes = neuron.run(x)
            return {"s": _ints(spikes, m), "re": _ints(real, STATES), "im": _ints(imag, STATES)}
        if family in ("ADRF", "ADRF_IZ"):
            real, imag, theta, ref, spikes = neuron.run(x)
            return {"s": _ints(spikes, m), "re": _ints(real, STATES), "im": _ints(imag, STATES),
                    "theta": _ints(theta, STATES), "ref": _ints(ref, STATES)}
        if family == "SIGMA_DELTA":
            sigma, y = neuron.dynamics(x)
            return {"s": _ints(y, m), "sigma": _ints(sigma, _in_unit(family, p))}
        return {"s": _ints(neuron(x), m)}


def _stepped(family: str, neuron, x, p: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One call per step with persistent state: messages and the carried states after every step."""
    steps = (x[0] if isinstance(x, tuple) else x).shape[-1]
    messages, states = [], {}
    with torch.no_grad():
        for t in range(steps):
            x_t = tuple(v[..., t:t + 1] for v in x) if isinstance(x, tuple) else x[..., t:t + 1]
            messages.append(_ints(neuron(x_t), _message_unit(family, p)))
            for name, value in neuron._states.items():
                states.setdefault(name, []).append(value.numpy().reshape(-1, 1).astype(np.int64))
    return np.concatenate(messages, axis=1), {k: np.concatenate(v, axis=1) for k, v in states.items()}


def _compare(family: str, channel_params: list[dict], ports: list[np.ndarray], batch: int,
             what: str) -> dict[str, np.ndarray]:
    """Run slayer twice (whole sequence; one step per call) and the oracle; assert equality."""
    channels = len(channel_params)
    row_params = [channel_params[r % channels] for r in range(batch * channels)]
    trace = simulate([make_oracle(family, q) for q in row_params], ports)
    x = _as_input(family, channel_params[0], ports, batch, channels)
    records = _records(family, _build(family, channel_params), x, channel_params[0])
    for name, values in records.items():
        want = trace.records[name]
        assert np.array_equal(values, want), (what, name, _first_diff(values, want))
    messages, states = _stepped(family, _build(family, channel_params, persistent=True), x, channel_params[0])
    want = trace.records["s"]
    assert np.array_equal(messages, want), (what, "stepped s", _first_diff(messages, want))
    assert set(states) == set(trace.states), (what, sorted(states))
    for name, values in states.items():
        want = trace.states[name]
        assert np.array_equal(values, want), (what, name, _first_diff(values, want))
    return trace.records


def _first_diff(got: np.ndarray, want: np.ndarray):
    """``(row, step, got, want)`` of the first mismatch, for assertion messages."""
    bad = np.argwhere(got != want)
    if not bad.size:
        return None
    r, t = bad[0]
    return int(r), int(t), int(got[r, t]), int(want[r, t])


LAYER_KEYS = ("vth", "vth_step", "graded", "act_mode", "cum_error", "spike_exp")


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("family", NEURON_FAMILIES + ENCODERS)
def test_random_forward_equals_oracle(family, seed):
    """Random per-channel integers (full decay and rotation ranges), inputs from tiny to 24-bit overflow."""
    rng = np.random.default_rng(100 * seed + len(family))
    batch, channels, steps = 3, 24, 48
    channel_params = cases.random_params(family, rng, channels)
    # layer-wide choices per seed: graded spikes (seed 1); sigma-delta ReLU / identity, cum_error, spike_exp
    layer = dict(graded=int(seed == 1), act_mode=int(seed != 2), cum_error=int(seed >= 1),
                 spike_exp=(6, 3, 0)[seed])
    for p in channel_params:
        p.pop("bias_mant", None)  # slayer neurons have no bias parameter (a norm deploys as one)
        p.pop("bias_exp", None)
        p.pop("bias", None)
        for key in LAYER_KEYS:
            if key in p and not (family == "SIGMA_DELTA" and key == "vth"):
                p[key] = layer.get(key, channel_params[0][key])
    if family in ("DELTA", "SIGMA"):
        channels = 1
        channel_params = channel_params[:1]
        batch = 60
    row_params = [channel_params[r % channels] for r in range(batch * channels)]
    ports = cases.random_inputs(family, rng, row_params, steps)
    records = _compare(family, channel_params, ports, batch, f"seed {seed}")
    spikes = records["s"]
    assert 0 < np.count_nonzero(spikes) < spikes.size


@pytest.mark.parametrize("family", NEURON_FAMILIES + ENCODERS)
def test_boundary_cases_equal_oracle(family):
    """The constructed cases (each a one-neuron layer): v at vth << 6 and +-1, +-2^23, decays 0/4096."""
    built = cases.boundary_cases(family)
    ports = len(cases.FAMILIES[family].ports)
    for case in built:
        params = {k: v for k, v in case.params.items() if k not in ("bias_mant", "bias_exp", "bias")}
        _compare(family, [params], cases.case_inputs([case], ports), 1, case.name)


def _block(family: str, p: dict, n_in: int, n_out: int):
    module = getattr(slayer_block, {"SIGMA_DELTA": "sigma_delta"}.get(family, family.lower()))
    args = _neuron_args(family, p)
    if family == "SIGMA_DELTA":
        args["threshold"] = p["vth"] / 64
    return module.Dense(args, n_in, n_out)


@pytest.mark.parametrize("family", NEURON_FAMILIES)
def test_dense_block_extreme_weights(family):
    """A Dense block with the extreme 8-bit weights (-256, 254, and values the quantizer moves to them)
    into each family: block output = oracle quantizer -> oracle synapse -> oracle neuron (-> one-step
    latency for the spiking families)."""
    rng = np.random.default_rng(7)
    n_in, steps = 4, 30
    weights_int = np.array([[-256, 0, 0, 0], [254, 0, 0, 0], [255, 0, 0, 0], [-257, 3, 1, -1],
                            [254, 254, 254, 254], [-256, -256, -256, -256], [-255, 255, -3, 0],
                            [-256, 254, 0, 0]])
    n_out = weights_int.shape[0]
    base = dict(du=1024, dv=256, dth=512, dref=256, sin_decay=1500, cos_decay=3600, vth=200, vth_step=40,
                act_mode=1, cum_error=0, spike_exp=6)
    p = {k: v for k, v in base.items() if k in _oracle_keys(family)}
    blk = _block(family, p, n_in, n_out)
    _set_channel_values(blk.neuron, family, [p] * n_out)
    synapses = [blk.synapse.real, blk.synapse.imag] if hasattr(blk.synapse, "real") else [blk.synapse]
    with torch.no_grad():
        for k, syn in enumerate(synapses):
            w = weights_int if k == 0 else -weights_int[::-1]
            syn.weight.data = torch.from_numpy(w / 64).to(syn.weight.dtype).reshape(syn.weight.shape)
    graded = family == "SIGMA_DELTA"
    if graded:  # graded messages on the 2^-12 grid
        msgs = rng.integers(-3000, 3000, (2, n_in, steps)) * (rng.random((2, n_in, steps)) < 0.6)
        x = torch.from_numpy(msgs / 4096.0)
    else:
        msgs = (rng.random((2, n_in, steps)) < 0.4).astype(np.int64)
        x = torch.from_numpy(msgs).float()
    with torch.no_grad():
        out = blk(x)
    real_weights = [weights_int if k == 0 else -weights_int[::-1] for k in range(len(synapses))]
    q = [[[synapse.quantize_8bit(w / 64) for w in row] for row in matrix] for matrix in real_weights]
    assert q[0][2][0] == 254 and q[0][3][:3] == [-256, 4, 0]
    ports = []
    for qk in q:
        a = np.zeros((2 * n_out, steps), np.int64)
        for b in range(2):
            for t in range(steps):
                a[b * n_out:(b + 1) * n_out, t] = synapse.dense_step(qk, msgs[b, :, t], 24 * graded, 0)
        ports.append(a)
    trace = simulate([make_oracle(family, p) for _ in range(2 * n_out)], ports)
    expected = trace.records["s"]
    if not graded:  # the block's one-step synaptic latency
        expected = np.concatenate([np.zeros((2 * n_out, 1), np.int64), expected[:, :-1]], axis=1)
    got = _ints(out, _message_unit(family, p))
    assert np.array_equal(got, expected), _first_diff(got, expected)
    assert np.count_nonzero(expected) > 0


def _oracle_keys(family: str) -> set[str]:
    return {"CUBA": {"du", "dv", "vth"}, "ALIF": {"du", "dv", "dth", "dref", "vth", "vth_step"},
            "RF": {"sin_decay", "cos_decay", "vth"}, "RF_IZ": {"sin_decay", "cos_decay", "vth"},
            "ADRF": {"sin_decay", "cos_decay", "dth", "dref", "vth", "vth_step"},
            "ADRF_IZ": {"sin_decay", "cos_decay", "dth", "dref", "vth", "vth_step"},
            "SIGMA_DELTA": {"vth", "act_mode", "cum_error", "spike_exp"}}[family]
