"""The oracles themselves: their helpers, their boundary constructions, and lava-nc's own models.

Nothing from ``lava_dl`` is under test here. These tests make sure the references in
``tests/oracles`` are right (or differ from lava-nc only where the reference document says
lava_dl follows Loihi instead), so that ``test_oracle_slayer`` / ``test_oracle_lava`` can use
them as ground truth.
"""

from __future__ import annotations

import importlib
from fractions import Fraction

import numpy as np
import pytest

from tests.oracles import cases, fixed, simulate, synapse
from tests.oracles.cases import MAX24, P23, boundary_cases, make_oracle

ALL_FAMILIES = tuple(cases.FAMILIES)


class _Port:
    """Stands in for a Lava port of a model stepped in-process."""

    def __init__(self, value=None):
        self.value = value

    def recv(self):
        return self.value

    def send(self, value):
        self.value = value


def _lava_nc_model(path: str, proc_params: dict | None = None):
    module, name = path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    return cls(proc_params or {})


def test_integer_helpers():
    rng = np.random.default_rng(0)
    for x in rng.integers(-(1 << 40), 1 << 40, 2000).tolist() + [0, 1, -1, 4095, -4095, 4096, -4096]:
        for n in (0, 1, 6, 12):
            assert fixed.rs0(x, n) == int(Fraction(x, 1 << n))  # int() of a Fraction truncates
            assert fixed.asr(x, n) == (Fraction(x, 1 << n).__floor__())
    wrapped = [fixed.wrap24(v) for v in (P23 - 1, P23, -P23, -P23 - 1, 3 * P23)]
    assert wrapped == [P23 - 1, -P23, -P23, P23 - 1, -P23]
    assert [fixed.sat24(v) for v in (P23, -P23, P23 - 1, 5)] == [MAX24, -MAX24, MAX24, 5]
    assert [fixed.wrap32(v) for v in (1 << 31, -(1 << 31) - 1)] == [-(1 << 31), (1 << 31) - 1]
    assert fixed.abs32(-(1 << 31)) == -(1 << 31) and fixed.abs32(-5) == 5
    assert [fixed.shift(-255, e) for e in (-1, -8, 0, 2)] == [-128, -1, -255, -1020]
    decayed = [fixed.decay(x, d) for x, d in ((-4097, 1), (4097, 1), (100, 4096), (-7, 0))]
    assert decayed == [-4095, 4095, 0, -7]
    assert [synapse.quantize_8bit(w / 64) for w in (255, 254, 253, -256, -257, 3, 1, -1, -3)] == \
        [254, 254, 252, -256, -256, 4, 0, 0, -4]


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_boundary_constructions_land(family):
    """Every constructed case reaches the states it is built for (else it would test nothing)."""
    built = boundary_cases(family)
    assert built
    ports = len(cases.FAMILIES[family].ports)
    for case in built:
        trace = simulate([make_oracle(family, case.params)], cases.case_inputs([case], ports))
        for step, name, expected in case.checks:
            table = trace.states[name[6:]] if name.startswith("after_") else trace.records[name]
            assert table[0, step] == expected, (case.name, step, name, table[0, : step + 2].tolist())


def test_decay_extremes_closed_form():
    """du = 0 integrates (wrapping), dv = 4096 forgets: u, v in closed form."""
    rng = np.random.default_rng(1)
    a = rng.integers(-(1 << 16), 1 << 16, (20, 40))
    trace = simulate([make_oracle("CUBA", dict(du=0, dv=4096, vth=(1 << 18) - 1)) for _ in range(20)], a)
    u = (np.cumsum(a << 6, axis=1) + P23) % (1 << 24) - P23
    assert np.array_equal(trace.records["u"], u)
    assert np.array_equal(trace.records["v"], np.clip(u, -MAX24, MAX24))
    trace = simulate([make_oracle("CUBA", dict(du=4096, dv=4096, vth=100)) for _ in range(20)], a)
    assert np.array_equal(trace.records["u"], a << 6)
    assert np.array_equal(trace.records["s"], ((a << 6) > 6400).astype(np.int64))


def test_cuba_matches_lava_nc_lif():
    """lava-nc's bit-accurate LIF (its du carries a hidden +1, hence du - 1), stepped in-process.

    The input stays below the magnitudes where lava-nc's wrap of exactly ``+-2^23`` differs from
    two's complement (reference §2.1 [QUIRK]); the oracle wraps like Loihi's adder.
    """
    rng = np.random.default_rng(2)
    n, steps = 600, 40
    params = cases.random_params("CUBA", rng, n)
    for p in params:
        p["du"] = max(p["du"], 1)
        p["graded"] = 0
    a = rng.integers(-(1 << 15), 1 << 15, (n, steps)) >> rng.integers(0, 10, (n, 1))
    model = _lava_nc_model("lava.proc.lif.models.PyLifModelBitAcc")
    col = {k: np.array([p[k] for p in params]) for k in ("du", "dv", "vth", "bias_mant", "bias_exp")}
    model.u = np.zeros(n, np.int32)
    model.v = np.zeros(n, np.int32)
    model.du, model.dv, model.vth = col["du"] - 1, col["dv"], col["vth"]
    model.bias_mant, model.bias_exp = col["bias_mant"], col["bias_exp"]
    model.scale_bias()
    model.scale_threshold()
    trace = simulate([make_oracle("CUBA", p) for p in params], a)
    wrapped = 0
    for t in range(steps):
        model.subthr_dynamics(activation_in=a[:, t])
        s = model.spiking_activation()
        model.v[s] = 0
        u = trace.records["u"][:, t]
        wrapped += int(np.sum(u != np.clip(u, -P23 + 1, P23 - 1)))
        assert np.array_equal(s, trace.records["s"][:, t] == 1), t
        assert np.array_equal(model.u, trace.states["u"][:, t]), t
        assert np.array_equal(model.v, trace.states["v"][:, t]), t
    assert wrapped == 0
    assert 0 < trace.records["s"].sum() < trace.records["s"].size


@pytest.mark.parametrize("family, path", [("RF", "lava.proc.rf.models.PyRFModelFixed"),
                                          ("RF_IZ", "lava.proc.rf_iz.models.PyRF_IZModelFixed")])
def test_resonators_match_lava_nc(family, path):
    """lava-nc's fixed RF / RF_IZ models (per-neuron integer decays set directly), stepped in-process."""
    rng = np.random.default_rng(3)
    n, steps = 400, 50
    params = cases.random_params(family, rng, n)
    for p in params:
        p["graded"] = 0
    a_re, a_im = cases.random_inputs(family, rng, params, steps)
    model = _lava_nc_model(path, {"shape": (n,)})
    model.real = np.zeros(n, np.int32)
    model.imag = np.zeros(n, np.int32)
    model.sin_decay = np.array([p["sin_decay"] for p in params], np.int32)
    model.cos_decay = np.array([p["cos_decay"] for p in params], np.int32)
    model.state_exp = np.array([6], np.int32)
    model.decay_bits = np.array([12], np.int32)
    model.vth = np.array([p["vth"] << 6 for p in params], np.int32)
    model.s_out = _Port()
    trace = simulate([make_oracle(family, p) for p in params], (a_re, a_im))
    for t in range(steps):
        model.a_real_in = _Port(a_re[:, t].astype(np.int32))
        model.a_imag_in = _Port(a_im[:, t].astype(np.int32))
        model.run_spk()
        assert np.array_equal(model.s_out.value, trace.records["s"][:, t]), t
        assert np.array_equal(model.real, trace.states["re"][:, t]), t
        assert np.array_equal(model.imag, trace.states["im"][:, t]), t
    assert np.any(np.abs(trace.records["re"]) == MAX24)
    assert 0 < trace.records["s"].sum()


@pytest.mark.parametrize("cum_error", [0, 1])
@pytest.mark.parametrize("family, path", [("SIGMA_DELTA", "lava.proc.sdn.models.PySigmaDeltaModelFixed"),
                                          ("DELTA", "lava.proc.sdn.models.PyDeltaModelFixed")])
def test_sigma_delta_matches_lava_nc(family, path, cum_error):
    """lava-nc's fixed SigmaDelta / Delta models, stepped in-process (vth, bias pre-scaled as its
    Process does)."""
    rng = np.random.default_rng(4 + cum_error)
    n, steps = 300, 50
    params = cases.random_params(family, rng, n)
    (a,) = cases.random_inputs(family, rng, params, steps)
    act_mode = 1
    for p in params:
        p["cum_error"] = cum_error  # lava-nc takes one cum_error and one activation per process
        if family == "SIGMA_DELTA":
            p["act_mode"] = act_mode
    model = _lava_nc_model(path, {"act_mode": act_mode})
    e = np.array([p["spike_exp"] for p in params], np.int32)
    for name in ("act", "residue", "error", "sigma"):
        setattr(model, name, np.zeros(n, np.int32))
    model.vth = (np.array([p["vth"] for p in params]) << (e + 6)).astype(np.int32)
    model.bias = (np.array([p.get("bias", 0) for p in params]) << (e + 6)).astype(np.int32)
    model.cum_error = bool(cum_error)
    model.spike_exp, model.state_exp = e, np.full(n, 6, np.int32)
    model.s_out = _Port()
    trace = simulate([make_oracle(family, p) for p in params], a)
    for t in range(steps):
        model.a_in = _Port(a[:, t].astype(np.int32))
        model.run_spk()
        assert np.array_equal(model.s_out.value, trace.records["s"][:, t]), t
        for name in trace.states:
            assert np.array_equal(getattr(model, name), trace.states[name][:, t]), (name, t)
    assert np.count_nonzero(trace.records["s"]) > 0


def test_dense_weights_match_lava_nc_helpers():
    """The Dense oracle's weight handling equals lava-nc's clip/truncate helpers for every sign mode."""
    from lava.utils import weightutils as wu

    rng = np.random.default_rng(5)
    modes = {synapse.MIXED: wu.SignMode.MIXED, synapse.EXCITATORY: wu.SignMode.EXCITATORY,
             synapse.INHIBITORY: wu.SignMode.INHIBITORY}
    for lo, hi in ((-256, 256), (0, 256), (-256, 1)):
        w = rng.integers(lo, hi, (12, 9))
        w[0, :3] = [lo, hi - 1, 0]
        mode = synapse.sign_mode(w.tolist())
        for bits in range(1, 10 if mode == synapse.MIXED else 9):
            ref = wu.clip_weights(w, sign_mode=modes[mode], num_bits=8)
            ref = wu.truncate_weights(ref, sign_mode=modes[mode], num_weight_bits=bits)
            assert np.array_equal(np.array(synapse.loihi_weights(w.tolist(), bits)), ref), (lo, bits)
