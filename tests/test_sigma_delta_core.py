"""Sigma-delta kernels of :mod:`lava_dl.core.sigma_delta` against lava-nc's own models (in-process)."""

from __future__ import annotations

import numpy as np
import pytest

from lava_dl.core import sigma_delta as sd


class _In:
    """Stub input port: ``recv`` returns the next queued array."""

    def __init__(self):
        self.data = None

    def recv(self):
        return self.data


class _Out:
    """Stub output port: ``send`` keeps the last array."""

    def __init__(self):
        self.data = None

    def send(self, data):
        self.data = np.array(data)


def _lava_model(cls, proc_params: dict, **vars_):
    model = cls.__new__(cls)
    cls.__init__(model, proc_params)
    model.a_in, model.s_out = _In(), _Out()
    for name, value in vars_.items():
        setattr(model, name, value)
    return model


def _step(model, a_in):
    model.a_in.data = a_in
    model.run_spk()
    return model.s_out.data


def _inputs(rng, n, steps, unit):
    """Random graded inputs of magnitude ~ a few thresholds, with runs of zeros and repeats."""
    data = (rng.standard_normal((n, steps)) * 3 * unit[:, None]).astype(np.int64)
    data[rng.random((n, steps)) < 0.3] = 0
    repeat = rng.random((n, steps)) < 0.2
    for t in range(1, steps):
        data[repeat[:, t], t] = data[repeat[:, t], t - 1]
    return data


def _params(rng, n):
    spike_exp = rng.integers(0, 7, n)
    state_exp = np.full(n, 6)
    vth = rng.integers(0, 1 << 11, n) >> rng.integers(0, 11, n)
    return vth, spike_exp, state_exp


@pytest.mark.parametrize("act_mode", [sd.ACT_UNIT, sd.ACT_RELU])
@pytest.mark.parametrize("cum_error", [0, 1])
def test_sigma_delta_fixed_matches_lava(act_mode, cum_error):
    from lava.proc.sdn.models import PySigmaDeltaModelFixed

    rng = np.random.default_rng(10 * act_mode + cum_error)
    n, steps = 500, 40  # 20,000 neuron-steps
    vth, spike_exp, state_exp = _params(rng, n)
    bias = rng.integers(-300, 300, n)
    e = spike_exp + state_exp
    zeros = np.zeros(n, np.int32)
    ref = _lava_model(
        PySigmaDeltaModelFixed,
        {"act_mode": act_mode},
        vth=(vth << e).astype(np.int32),
        bias=(bias << e).astype(np.int32),
        sigma=zeros.copy(),
        act=zeros.copy(),
        residue=zeros.copy(),
        error=zeros.copy(),
        spike_exp=spike_exp.astype(np.int32),
        state_exp=state_exp.astype(np.int32),
        cum_error=bool(cum_error),
    )
    states = [np.zeros(n, np.int32) for _ in sd.SIGMA_DELTA.states]
    params = [
        np.asarray(p, np.int32)
        for p in (vth, bias, np.full(n, act_mode), np.full(n, cum_error), spike_exp, state_exp)
    ]
    out = np.zeros(n, np.int32)
    data = _inputs(rng, n, steps, (vth.astype(np.int64) + 1) << e)
    mismatches = sent = 0
    for t in range(steps):
        s_ref = _step(ref, data[:, t].astype(np.int32))
        sd.SIGMA_DELTA.fixed_step(*states, data[:, t], *params, out)
        sent += int(np.count_nonzero(s_ref))
        mismatches += int(np.sum(out != s_ref))
        for name, ours in zip(sd.SIGMA_DELTA.state_names, states):
            mismatches += int(np.sum(ours != getattr(ref, name)))
    assert 0 < sent < n * steps
    assert mismatches == 0


@pytest.mark.parametrize("cum_error", [0, 1])
def test_delta_fixed_matches_lava(cum_error):
    from lava.proc.sdn.models import PyDeltaModelFixed

    rng = np.random.default_rng(20 + cum_error)
    n, steps = 500, 40
    vth, spike_exp, state_exp = _params(rng, n)
    e = spike_exp + state_exp
    zeros = np.zeros(n, np.int32)
    ref = _lava_model(
        PyDeltaModelFixed,
        {},
        vth=(vth << e).astype(np.int32),
        act=zeros.copy(),
        residue=zeros.copy(),
        error=zeros.copy(),
        spike_exp=spike_exp.astype(np.int32),
        state_exp=state_exp.astype(np.int32),
        cum_error=bool(cum_error),
    )
    states = [np.zeros(n, np.int32) for _ in sd.DELTA.states]
    params = [np.asarray(p, np.int32) for p in (vth, np.full(n, cum_error), spike_exp, state_exp)]
    out = np.zeros(n, np.int32)
    data = _inputs(rng, n, steps, vth.astype(np.int64) + 1)
    mismatches = sent = 0
    for t in range(steps):
        s_ref = _step(ref, data[:, t].astype(np.int32))
        sd.DELTA.fixed_step(*states, data[:, t], *params, out)
        sent += int(np.count_nonzero(s_ref))
        mismatches += int(np.sum(out != s_ref))
        for name, ours in zip(sd.DELTA.state_names, states):
            mismatches += int(np.sum(ours != getattr(ref, name)))
    assert 0 < sent < n * steps
    assert mismatches == 0


def test_sigma_fixed_matches_lava():
    from lava.proc.sdn.models import PySigmaModelFixed

    rng = np.random.default_rng(30)
    n, steps = 500, 40
    ref = _lava_model(PySigmaModelFixed, {}, sigma=np.zeros(n, np.int32))
    sigma, out = np.zeros(n, np.int32), np.zeros(n, np.int32)
    mismatches = 0
    for _ in range(steps):
        a_in = rng.integers(-(1 << 20), 1 << 20, n)
        s_ref = _step(ref, a_in.astype(np.int32))
        sd.SIGMA.fixed_step(sigma, a_in, out)
        mismatches += int(np.sum(out != s_ref) + np.sum(sigma != ref.sigma))
    assert mismatches == 0


def test_int32_wrap_like_lava():
    """Values beyond int32 wrap exactly as lava-nc's int32 numpy arithmetic does."""
    from lava.proc.sdn.models import PySigmaDeltaModelFixed

    n = 4
    big = np.array([(1 << 31) - 5, -(1 << 31) + 5, (1 << 30), 7], np.int64)
    one = np.ones(n, np.int32)
    ref = _lava_model(
        PySigmaDeltaModelFixed,
        {"act_mode": sd.ACT_UNIT},
        vth=(one << 12),
        bias=one * 0,
        sigma=big.astype(np.int32),
        act=np.zeros(n, np.int32),
        residue=np.zeros(n, np.int32),
        error=np.zeros(n, np.int32),
        spike_exp=one * 6,
        state_exp=one * 6,
        cum_error=False,
    )
    states = [big.astype(np.int32), np.zeros(n, np.int32), np.zeros(n, np.int32), np.zeros(n, np.int32)]
    params = [one, 0 * one, 0 * one, 0 * one, 6 * one, 6 * one]
    out = np.zeros(n, np.int32)
    a_in = np.array([10, -10, 1 << 30, 3], np.int64)
    with np.errstate(over="ignore"):
        s_ref = _step(ref, a_in.astype(np.int32))
    sd.SIGMA_DELTA.fixed_step(*states, a_in, *params, out)
    assert np.array_equal(out, s_ref)
    assert np.array_equal(states[0], ref.sigma)


@pytest.mark.parametrize("act_mode", [sd.ACT_UNIT, sd.ACT_RELU])
@pytest.mark.parametrize("cum_error", [0, 1])
def test_float_steps_match_lava_float_models(act_mode, cum_error):
    from lava.proc.sdn.models import PyDeltaModelFloat, PySigmaDeltaModelFloat, PySigmaModelFloat

    rng = np.random.default_rng(40 + 10 * act_mode + cum_error)
    n, steps = 300, 40
    vth, spike_exp, state_exp = _params(rng, n)
    bias = rng.integers(-300, 300, n)
    unit = 2.0 ** (spike_exp + state_exp)
    zf = np.zeros(n)
    sd_ref = _lava_model(
        PySigmaDeltaModelFloat,
        {"act_mode": act_mode},
        vth=vth * unit,
        bias=bias * unit,
        sigma=zf.copy(),
        act=zf.copy(),
        residue=zf.copy(),
        error=zf.copy(),
        spike_exp=spike_exp,
        state_exp=state_exp,
        cum_error=bool(cum_error),
    )
    d_ref = _lava_model(
        PyDeltaModelFloat,
        {},
        vth=vth * unit,
        act=zf.copy(),
        residue=zf.copy(),
        error=zf.copy(),
        spike_exp=spike_exp,
        state_exp=state_exp,
        cum_error=bool(cum_error),
    )
    s_ref = _lava_model(PySigmaModelFloat, {}, sigma=zf.copy())
    i32 = [
        np.asarray(p, np.int32)
        for p in (vth, bias, np.full(n, act_mode), np.full(n, cum_error), spike_exp, state_exp)
    ]
    sd_states = [np.zeros(n) for _ in range(4)]
    d_states = [np.zeros(n) for _ in range(3)]
    sigma = np.zeros(n)
    out = np.zeros(n)
    mismatches = sent = 0
    for _ in range(steps):
        a_in = rng.standard_normal(n) * unit * (vth + 1) * 3
        a_in[rng.random(n) < 0.3] = 0.0
        ref_out = _step(sd_ref, a_in)
        sd.SIGMA_DELTA.float_step(*sd_states, a_in, *i32, out)
        sent += int(np.count_nonzero(ref_out))
        mismatches += int(np.sum(out != ref_out))
        mismatches += sum(
            int(np.sum(o != getattr(sd_ref, k))) for k, o in zip(sd.SIGMA_DELTA.state_names, sd_states)
        )
        ref_out = _step(d_ref, a_in)
        sd.DELTA.float_step(*d_states, a_in, i32[0], i32[3], i32[4], i32[5], out)
        mismatches += int(np.sum(out != ref_out))
        mismatches += sum(int(np.sum(o != getattr(d_ref, k))) for k, o in zip(sd.DELTA.state_names, d_states))
        ref_out = _step(s_ref, a_in)
        sd.SIGMA.float_step(sigma, a_in, out)
        mismatches += int(np.sum(out != ref_out) + np.sum(sigma != s_ref.sigma))
    assert sent > 0
    assert mismatches == 0


def _to_btk(rows: np.ndarray, blocks: int) -> np.ndarray:
    """``(n, T)`` rows as the kernels' ``(blocks, T, n / blocks)`` arrays."""
    return np.ascontiguousarray(rows.reshape(blocks, -1, rows.shape[-1]).transpose(0, 2, 1))


def test_training_kernels_equal_fixed_step():
    """The fused training kernel reproduces fixed_step step by step."""
    rng = np.random.default_rng(50)
    n, steps = 400, 30
    for act_mode in (0, 1):
        for cum_error in (0, 1):
            vth, spike_exp, state_exp = _params(rng, n)
            e = 6 + 6
            spike_exp[:], state_exp[:] = 6, 6
            bias = rng.integers(-100, 100, n)
            data = _inputs(rng, n, steps, (vth.astype(np.int64) + 1) << e)
            states = [np.zeros(n, np.int32) for _ in range(4)]
            params = [
                np.asarray(p, np.int32)
                for p in (vth, bias, np.full(n, act_mode), np.full(n, cum_error), spike_exp, state_exp)
            ]
            out = np.zeros(n, np.int32)
            ref = np.zeros((n, steps), np.int64)
            for t in range(steps):
                sd.SIGMA_DELTA.fixed_step(*states, data[:, t], *params, out)
                ref[:, t] = out
            # the kernel's (B, T, K) layout: 8 samples of n / 8 neurons, time in the middle
            blocks = 8
            sig_state = np.zeros((blocks, n // blocks), np.int64)
            enc = [np.zeros((blocks, n // blocks), np.int64) for _ in range(3)]
            msg = np.empty((blocks, steps, n // blocks), np.float64)
            sd.fused_forward(
                _to_btk(data.astype(np.float64), blocks), 1.0, sd.MODE_SIGMA, 0,
                (bias.astype(np.int64) << e).reshape(blocks, -1),
                (vth.astype(np.int64) << e).reshape(blocks, -1),
                act_mode, cum_error, 6, 1.0, sig_state, *enc, msg,
                np.zeros((0, 0, 0), np.uint8), np.zeros((0, 0, 0), np.int32),
            )
            assert np.array_equal(msg, _to_btk(ref.astype(np.float64), blocks))
            assert np.array_equal(sig_state.ravel(), states[0])
            for ours, theirs in zip(enc, states[1:]):
                assert np.array_equal(ours.ravel(), theirs)


def test_specs_are_consistent():
    from lava_dl.lava_glue import warm_up

    for spec, role in ((sd.DELTA, "input"), (sd.SIGMA_DELTA, "hidden"), (sd.SIGMA, "output")):
        assert spec.hdf5_type == "SDNN"
        assert spec.extra["hdf5_role"] == role
        warm_up(spec)  # compiles with the dtypes the generated ProcessModels use
    assert sd.SIGMA_DELTA.param_for_hdf5_key("vThMant").name == "vth"
    for spec in (sd.DELTA, sd.SIGMA_DELTA):  # deployed from the file (neuron/cumError), default off
        param = spec.param_for_hdf5_key("cumError")
        assert param.name == "cum_error" and not param.required and param.default == 0
        assert "cum_error" not in spec.deploy_constants
    assert sd.SIGMA_DELTA.bias_param == "bias"
    assert sd.SIGMA_DELTA.param("spike_exp").default == 6
    assert sd.SIGMA_DELTA.param("state_exp").default == 6
