"""Resonator kernels (RF, RF-IZ, ADRF, ADRF-IZ) against lava-nc's models and an independent numpy model."""

from __future__ import annotations

import numpy as np
import pytest

from lava_dl.core import resonator as res

STEPS = 300
ROWS_PER_SET = 24
SAT = 2**23 - 1


class _Port:
    """Stands in for a Lava port: ``recv`` returns the array given, ``send`` keeps it."""

    def __init__(self, value=None):
        self.value = value

    def recv(self):
        return self.value

    def send(self, value):
        self.value = value


def _lava_parameter_sets(rng, count):
    """Random (period, alpha, vThMant) and the integers lava-nc's RF process derives from them."""
    from lava.proc.rf.process import RF

    sets = []
    for k in range(count):
        period = float(rng.uniform(2.5, 60.0))
        alpha = float(rng.choice([0.0, rng.uniform(0.0, 0.3)]))
        vth = int(rng.choice([0, rng.integers(1, 64), rng.integers(64, 1 << 17)]))
        proc = RF(shape=(1,), period=period, alpha=alpha, state_exp=6, decay_bits=12, vth=vth)
        sin_d, cos_d = int(proc.sin_decay.init), int(proc.cos_decay.init)
        # the integers lava-nc uses: int32 truncation of (1 - alpha) sin|cos(2 pi / period) * 4096
        assert sin_d == int(np.int32((1 - alpha) * np.sin(np.pi * 2 * 1 / period) * 4096))
        assert cos_d == int(np.int32((1 - alpha) * np.cos(np.pi * 2 * 1 / period) * 4096))
        assert int(proc.vth.init) == vth << 6
        sets.append((sin_d, cos_d, vth))
        if k == 0:
            sets.append((4096, 0, 7))  # period 4, alpha 0: |sin| reaches 4096
    return sets


def _inputs(rng, rows, steps):
    """Sparse integer synaptic sums; some rows are driven hard enough to saturate 24 bits."""
    amp = rng.choice([40, 600, 20000, 1 << 17], size=(rows, 1))
    active = rng.random((rows, steps)) < rng.uniform(0.05, 0.6, size=(rows, 1))
    a_re = (rng.integers(-1, 2, (rows, steps)) * rng.random((rows, steps)) * amp).astype(np.int64) * active
    a_im = (rng.integers(-1, 2, (rows, steps)) * rng.random((rows, steps)) * amp).astype(np.int64) * active
    return a_re, a_im


def _run_lava_model(model_cls, sin_d, cos_d, vth, a_re, a_im):
    """Step lava-nc's fixed-point model (its own ``run_spk``) with per-neuron parameters."""
    rows, steps = a_re.shape
    model = model_cls({"shape": (rows,)})
    model.real = np.zeros(rows, np.int32)
    model.imag = np.zeros(rows, np.int32)
    model.sin_decay = sin_d.astype(np.int32)
    model.cos_decay = cos_d.astype(np.int32)
    model.state_exp = np.array([6], np.int32)
    model.decay_bits = np.array([12], np.int32)
    model.vth = (vth.astype(np.int64) << 6).astype(np.int32)
    model.s_out = _Port()
    out = np.zeros((3, rows, steps), np.int64)
    for t in range(steps):
        model.a_real_in = _Port(a_re[:, t].astype(np.int32))
        model.a_imag_in = _Port(a_im[:, t].astype(np.int32))
        model.run_spk()
        out[0, :, t] = model.s_out.value
        out[1, :, t] = model.real
        out[2, :, t] = model.imag
    return out


def _run_ours(spec, params, a_re, a_im, graded=0):
    rows, steps = a_re.shape
    states = [np.zeros(rows, np.int32) for _ in spec.states]
    params = [np.ascontiguousarray(p, np.int32) for p in params] + [np.full(rows, graded, np.int32)]
    s = np.zeros(rows, np.int32)
    out = np.zeros((1 + len(states), rows, steps), np.int64)
    for t in range(steps):
        a_t = (np.ascontiguousarray(a_re[:, t]), np.ascontiguousarray(a_im[:, t]))
        spec.fixed_step(*states, *a_t, *params, s)
        out[0, :, t] = s
        for k, st in enumerate(states):
            out[1 + k, :, t] = st
    return out


@pytest.mark.parametrize("spec_name, model_path", [
    ("RF", "lava.proc.rf.models.PyRFModelFixed"),
    ("RF_IZ", "lava.proc.rf_iz.models.PyRF_IZModelFixed"),
])
def test_fixed_step_matches_lava_nc(spec_name, model_path):
    import importlib

    module, cls = model_path.rsplit(".", 1)
    model_cls = getattr(importlib.import_module(module), cls)
    spec = getattr(res, spec_name)
    rng = np.random.default_rng(7 if spec_name == "RF" else 8)
    sets = _lava_parameter_sets(rng, 20)
    rows = len(sets) * ROWS_PER_SET
    sin_d, cos_d, vth = (np.repeat(np.array(col, np.int64), ROWS_PER_SET) for col in zip(*sets))
    a_re, a_im = _inputs(rng, rows, STEPS)
    ref = _run_lava_model(model_cls, sin_d, cos_d, vth, a_re, a_im)
    ours = _run_ours(spec, (sin_d, cos_d, vth), a_re, a_im)
    assert rows * STEPS >= 10_000
    assert ref[0].sum() > 100, "too few spikes to be a test"
    assert np.abs(ref[1:]).max() == SAT, "saturation not exercised"
    np.testing.assert_array_equal(ours[0], ref[0], err_msg="spikes")
    np.testing.assert_array_equal(ours[1], ref[1], err_msg="real state")
    np.testing.assert_array_equal(ours[2], ref[2], err_msg="imaginary state")


# --------------------------------------------------------------------------
# ADRF / ADRF-IZ: an independent, vectorised numpy model of the reference equations
# --------------------------------------------------------------------------


def _rs0(x, n=12):
    return np.sign(x) * (np.abs(x) >> n)


def _adrf_reference(iz, sin_d, cos_d, dth, dref, vth, vth_step, a_re, a_im):
    """reference-neurons.md §2.5/§2.6 with Lava's 24-bit saturation; absolute threshold θ."""
    rows, steps = a_re.shape
    th0 = vth << 6
    step = vth_step << 6
    re = np.zeros(rows, np.int64)
    im = np.zeros(rows, np.int64)
    theta = th0.copy()
    r = np.zeros(rows, np.int64)
    out = np.zeros((5, rows, steps), np.int64)
    for t in range(steps):
        re_t = np.clip(_rs0(cos_d * re) - _rs0(sin_d * im) + (a_re[:, t] << 6), -SAT, SAT)
        im_t = np.clip(_rs0(sin_d * re) + _rs0(cos_d * im) + (a_im[:, t] << 6), -SAT, SAT)
        r_t = _rs0(r * (4096 - dref))
        theta_t = _rs0((theta - th0) * (4096 - dth)) + th0
        if iz:
            s = im_t >= theta_t + r_t
        else:
            s = (re_t >= theta_t + r_t) & (im_t >= 0) & (im < 0)
        theta = np.where(s, np.minimum(theta_t - th0 + step, SAT) + th0, theta_t)
        r = np.where(s, np.minimum(r_t + 2 * theta_t, SAT), r_t)
        re, im = re_t, im_t
        out[:, :, t] = s, re, im, theta - th0, r
    return out


@pytest.mark.parametrize("spec_name", ["ADRF", "ADRF_IZ"])
def test_adaptive_fixed_step_matches_numpy_model(spec_name):
    spec = getattr(res, spec_name)
    rng = np.random.default_rng(11 if spec_name == "ADRF" else 12)
    rows = 600
    period = rng.uniform(4, 50, rows)
    decay = rng.choice([0.0, 0.02, 0.2], rows)
    sin_d = np.floor(4096 * (1 - decay) * np.sin(2 * np.pi / period)).astype(np.int64)
    cos_d = np.floor(4096 * (1 - decay) * np.cos(2 * np.pi / period)).astype(np.int64)
    dth = rng.integers(0, 4097, rows)
    dref = rng.integers(0, 4097, rows)
    vth = rng.choice([0, 5, 60, 900, 30000], rows)
    vth_step = rng.choice([0, 3, 200, (1 << 17) - 1], rows)
    a_re, a_im = _inputs(rng, rows, STEPS)
    ref = _adrf_reference(spec_name == "ADRF_IZ", sin_d, cos_d, dth, dref, vth, vth_step, a_re, a_im)
    ours = _run_ours(spec, (sin_d, cos_d, dth, dref, vth, vth_step), a_re, a_im)
    assert ref[0].sum() > 200
    assert np.abs(ref[1:3]).max() == SAT and ref[3].max() == SAT, "saturation not exercised"
    for k, name in enumerate(("spikes", "re", "im", "th", "r")):
        np.testing.assert_array_equal(ours[k], ref[k], err_msg=name)


# --------------------------------------------------------------------------
# Training kernel == Lava step; float model close to the fixed one
# --------------------------------------------------------------------------


@pytest.mark.parametrize("spec", res.SPECS, ids=lambda s: s.name)
def test_training_forward_equals_lava_step(spec):
    rng = np.random.default_rng(3)
    rows, steps = 200, 120
    adaptive = spec.extra["adaptive"]
    sin_d = rng.integers(1, 2000, rows)
    cos_d = rng.integers(0, 3500, rows)
    vth = rng.choice([0, 10, 300], rows)
    dth = rng.integers(0, 4097, rows)
    dref = rng.integers(0, 4097, rows)
    vth_step = rng.integers(0, 100, rows)
    a_re, a_im = _inputs(rng, rows, steps)
    params = (sin_d, cos_d, dth, dref, vth, vth_step) if adaptive else (sin_d, cos_d, vth)
    lava = _run_ours(spec, params, a_re, a_im)

    scale = 4096.0
    # the kernel's (B, T, K) layout, here one neuron per block: (rows, T, 1), per neuron (rows, 1)
    states = [np.zeros((rows, 1), np.int64) for _ in range(4)]
    s = np.zeros((rows, steps, 1), np.float32)
    re_rec, im_rec = (np.zeros((rows, steps, 1), np.int32) for _ in range(2))
    margin = np.zeros((rows, steps, 1), np.int64)
    th_rec, r_rec = (np.zeros((rows, steps, 1), np.int32) for _ in range(2))
    per_neuron = [np.ascontiguousarray(p.reshape(rows, 1)) for p in (sin_d, cos_d, dth, dref, vth << 6,
                                                                     vth_step << 6)]
    x_re, x_im = (a_re / 64.0)[..., None], (a_im / 64.0)[..., None]
    res.resonator_forward(spec.extra["family_code"], x_re, x_im, scale, *per_neuron, *states, False, s,
                          re_rec, im_rec, margin, th_rec, r_rec)
    s, re_rec, im_rec = s[..., 0], re_rec[..., 0], im_rec[..., 0]
    states = [st[:, 0] for st in states]
    assert lava[0].sum() > 100, "too few spikes to be a test"
    np.testing.assert_array_equal(s, lava[0])
    if spec.name != "RF_IZ":  # RF-IZ records pre-reset states, the Lava state is post-reset
        np.testing.assert_array_equal(re_rec, lava[1])
        np.testing.assert_array_equal(im_rec, lava[2])
    np.testing.assert_array_equal(states[0], lava[1][:, -1])
    np.testing.assert_array_equal(states[1], lava[2][:, -1])
    if adaptive:
        np.testing.assert_array_equal(states[2], lava[3][:, -1])
        np.testing.assert_array_equal(states[3], lava[4][:, -1])
        # the records are the threshold and refractory state each step's spike test used: Lava's states
        # after the step add the spike's update (th += Δθ, r += 2 (θ0 + th))
        th_rec, r_rec, fired = th_rec[..., 0].astype(np.int64), r_rec[..., 0].astype(np.int64), lava[0] != 0
        step = (vth_step << 6)[:, None]
        np.testing.assert_array_equal(th_rec - (vth << 6)[:, None] + fired * step, lava[3])
        np.testing.assert_array_equal(r_rec + fired * 2 * th_rec, lava[4])
        threshold = th_rec + r_rec
    else:
        threshold = np.broadcast_to((vth << 6)[:, None], (rows, steps))
    # the surrogate's margin: the spiking state (pre-reset; IZ: imaginary part) minus the threshold
    spiking = im_rec if spec.name in ("RF_IZ", "ADRF_IZ") else re_rec
    np.testing.assert_array_equal(margin[..., 0], spiking.astype(np.int64) - threshold)


@pytest.mark.parametrize("spec", res.SPECS, ids=lambda s: s.name)
def test_float_step_tracks_fixed_step(spec):
    rows, steps = 8, 60
    adaptive = spec.extra["adaptive"]
    params = ([600, 3900, 40, 300, 20, 5, 0] if adaptive else [600, 3900, 20, 0])
    p = [np.full(rows, v, np.int32) for v in params]
    fixed = [np.zeros(rows, np.int32) for _ in spec.states]
    flt = [np.zeros(rows) for _ in spec.states]
    s_fixed = np.zeros(rows, np.int32)
    s_float = np.zeros(rows)
    total = np.zeros(2)
    for t in range(steps):
        a = np.full(rows, 30 if t % 9 == 0 else 0, np.int64)
        spec.fixed_step(*fixed, a, -a, *p, s_fixed)
        spec.float_step(*flt, a.astype(float), -a.astype(float), *p, s_float)
        total += s_fixed.sum(), s_float.sum()
        if t < 15:
            np.testing.assert_allclose(flt[0], fixed[0], atol=20)
    assert total[0] > 0 and total[1] > 0


def test_specs_describe_the_hdf5_fields():
    assert [s.hdf5_type for s in res.SPECS] == ["RF_PHASE", "RF_IZHIKEVICH", "ADRF_PHASE", "ADRF_IZHIKEVICH"]
    for spec in res.SPECS:
        assert spec.in_ports == ("a_real_in", "a_imag_in")
        keys = {p.hdf5_key for p in spec.params}
        assert {"sinDecay", "cosDecay", "vThMant"} <= keys
        assert ({"thDecay", "refDecay", "vThStep"} <= keys) == spec.extra["adaptive"]
        assert "refDelay" not in spec.extra["hdf5_constants"]
        with pytest.raises(ValueError, match="sin_decay"):
            spec.param("sin_decay").check(4097)
