#!/usr/bin/env python
"""Mutation check: does the test suite catch small, deliberate errors in the core rules?

Rerunnable by hand, not part of CI (a full run takes tens of minutes). For every mutation of
:data:`MUTATIONS` the script

1. works in a copy of the repository (its tracked and untracked-but-not-ignored files, as
   ``git ls-files -co --exclude-standard`` lists them) in a fresh temporary directory, with
   ``../shared`` linked beside it as the tests expect; the checkout itself is never touched;
2. applies one small textual mutation: the exact string ``old`` becomes ``new`` in one file.
   ``old`` must occur exactly once in that file, otherwise the script stops before running
   anything (so that the list stays honest when the code moves on);
3. runs the mutation's tests in the copy (``pytest -x`` with the interpreter running this
   script, ``cwd`` and ``PYTHONPATH`` the copy, and a Numba cache of its own inside the
   temporary directory), then restores the file (content and modification time);
4. records the result: ``killed`` (a test failed), ``error`` (collection or import error, a
   test error or a crash: counts as killed), ``timeout`` (counts as killed), ``survived`` (the
   tests passed) or ``no tests`` (the selection collected nothing: a broken list entry).

A mutation that crashes a Lava process (e.g. a kernel reading out of bounds) can leave its test
waiting for ever: each test has ``--test-timeout`` seconds (pytest-timeout) and each pytest run
``--timeout`` seconds before its process group is killed.

Before the mutations the test files of the selections run once, unmutated, in one pytest
(``--no-baseline`` skips this; selections with ``-k`` run one by one): a selection that fails
there cannot judge a mutation, so its mutations are reported as ``baseline failed`` instead of
being run. The copy is taken once, at the start: files that change in the checkout during a
run do not reach it.

Numba caches compiled kernels per source file and validates an entry against that file only,
not against the modules it inlines. Before and after each mutated run the cache entries of
the mutated module and of every module that imports it (transitively) are deleted, so no
kernel compiled from other source than the one under test is ever loaded.

The script prints one line per mutation as it finishes, then a table (id, file, description,
tests, result, seconds) and a summary line. The exit status is 0 when every mutation was
killed, 1 when one survived (or its tests collected nothing or failed unmutated), 2 when a
mutation no longer applies.

Usage::

    .venv/bin/python scripts/mutation_check.py            # every mutation, one copy
    .venv/bin/python scripts/mutation_check.py --list     # the list (checked to apply), no run
    .venv/bin/python scripts/mutation_check.py --only cuba-lava-threshold-ge,alif-keys-swapped
    .venv/bin/python scripts/mutation_check.py --jobs 2 --keep

Each entry names the tests that should kill it: chosen to be fast but sufficient (the
independent oracles of ``tests/oracles``, the files written by lava-dl 0.6.0, the parity and
netx tests, and ``tests/test_mutation_guards.py`` for the rules nothing else pinned), with an
optional ``-k`` expression. A full run with ``--jobs 1`` takes 17 to 30 minutes on two shared
cores (3 to 8 of them the baseline, which also compiles the copy's Numba kernels).
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import dataclasses
import os
import pathlib
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from xml.etree import ElementTree

REPO = pathlib.Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------------------------
# Test selections (paths relative to the repository root)
# --------------------------------------------------------------------------------------------

ORACLE_SELF = "tests/test_oracle_self.py"
ORACLE_SLAYER = "tests/test_oracle_slayer.py"
ORACLE_LAVA = "tests/test_oracle_lava.py"
LAVA_DL_FILES = "tests/test_lava_dl_files.py"
PARITY = "tests/test_parity.py"
PARITY_COVERAGE = "tests/test_parity_coverage.py"
PARITY_LAYERS = "tests/test_parity_layers.py"
PARITY_SD = "tests/test_parity_sigma_delta.py"
NETX_FORMAT = "tests/test_netx_format.py"
NETX_FIXTURES = "tests/test_netx_fixtures.py"
AUTO = "tests/test_auto.py"
AXON_DELAY = "tests/test_axon_delay.py"
POOL_CONVT = "tests/test_pool_convt_synapses.py"
SYNAPSE_LAVA = "tests/test_synapse_lava.py"
SYNAPSE_TORCH = "tests/test_synapse_torch.py"
SD_CORE = "tests/test_sigma_delta_core.py"
SD_TORCH = "tests/test_sigma_delta_torch.py"
RES_CORE = "tests/test_resonator_core.py"
RES_TORCH = "tests/test_resonator_torch.py"
ALIF_TORCH = "tests/test_alif_torch.py"
CUBA_TORCH = "tests/test_cuba_torch.py"
CUBA_LAVA = "tests/test_cuba_lava.py"
BLOCKS_TORCH = "tests/test_blocks_torch.py"
GUARDS = "tests/test_mutation_guards.py"

#: Parts of the lava-dl 0.6.0 file tests (test_lava_dl_files.py).
LDF_LAVA = f"{LAVA_DL_FILES}::test_lava_reproduces_lava_dl"
LDF_LAVA_SD = f"{LAVA_DL_FILES}::test_lava_reproduces_lava_dl_sigma_delta"
LDF_DELAYS = f"{LAVA_DL_FILES}::test_lava_dl_delay_placement"
LDF_CUM_ERROR = f"{LAVA_DL_FILES}::test_cum_error_network_exported_here_reproduces_lava_dl"
LDF_AUTO = f"{LAVA_DL_FILES}::test_auto_loads_lava_dl_file"
LDF_BLOCKS = f"{LAVA_DL_FILES}::test_blocks_forward_and_export"
LDF_GRAD = f"{LAVA_DL_FILES}::test_gradients_equal_lava_dl"
LDF_SURROGATE = f"{LAVA_DL_FILES}::test_surrogate_constants_pinned"

#: The three independent-oracle files (about 20 s together on a warm cache).
ORACLES = (ORACLE_SELF, ORACLE_SLAYER, ORACLE_LAVA)


@dataclasses.dataclass(frozen=True)
class Mutation:
    """One deliberate error: ``old`` becomes ``new`` (exactly once) in ``file``.

    Attributes
    ----------
    id : str
        Short unique name (``--only``).
    file : str
        Path relative to the repository root.
    description : str
        What the mutation breaks (one line).
    old, new : str
        The exact text replaced and its replacement.
    tests : tuple of str
        pytest arguments: test files or node ids, relative to the repository root.
    k : str or None
        Optional ``-k`` expression.
    """

    id: str
    file: str
    description: str
    old: str
    new: str
    tests: tuple[str, ...]
    k: str | None = None

    @property
    def selection(self) -> tuple[tuple[str, ...], str | None]:
        """The test selection (tests, -k), the key of the baseline runs."""
        return self.tests, self.k

    def tests_label(self) -> str:
        """Compact description of the selection for the table."""
        names = []
        for t in self.tests:
            name = t.removeprefix("tests/test_").replace(".py", "").replace("::test_", "::")
            names.append(name)
        label = "+".join(names)
        return f"{label} -k {self.k!r}" if self.k else label


M = Mutation
CORE = "lava_dl/core"
#: The mutations. Families: CUBA, sigma-delta (Delta, SigmaDelta, Sigma; delta, cum_error),
#: ALIF, RF, RF-IZ, ADRF, ADRF-IZ. Records: input, dense, conv, pool, convT, unpool, flatten,
#: average, concat, dense_rec, delay.
MUTATIONS: tuple[Mutation, ...] = (
    # ---- shared fixed-point rules -----------------------------------------------------------
    M("rs0-floor", f"{CORE}/fixed_point.py",
      "rounding: rs0 floors instead of rounding toward zero",
      "return (x + ((x >> 63) & ((np.int64(1) << n) - 1))) >> n",
      "return x >> n",
      (ORACLE_SELF, ORACLE_SLAYER)),
    M("input-trunc", f"{CORE}/fixed_point.py",
      "rounding: synaptic input truncated instead of floored",
      "np.int64(math.floor(x * (state_scale",
      "np.int64(math.trunc(x * (state_scale",
      (GUARDS, ORACLE_SLAYER, LDF_BLOCKS)),
    M("sat24-asymmetric", f"{CORE}/fixed_point.py",
      "wrap: 24-bit saturation down to -2^23 instead of -(2^23 - 1)",
      "return min(max(x, -STATE_MAX), STATE_MAX)",
      "return min(max(x, STATE_MIN), STATE_MAX)",
      ORACLES),
    M("shift-right-off-by-one", f"{CORE}/fixed_point.py",
      "shift: negative exponents shift one bit too far",
      "    return x >> (-e)",
      "    return x >> (1 - e)",
      (ORACLE_SELF, SYNAPSE_LAVA, PARITY_LAYERS)),
    M("graded-exp", f"{CORE}/fixed_point.py",
      "shift: graded-spike synapse exponent -11 instead of -12",
      "GRADED_MESSAGE_EXP = -(STATE_EXP + 6)",
      "GRADED_MESSAGE_EXP = -(STATE_EXP + 5)",
      (LDF_LAVA, LDF_LAVA_SD, PARITY_COVERAGE, PARITY_LAYERS)),
    # ---- CUBA --------------------------------------------------------------------------------
    M("cuba-current-saturates", f"{CORE}/cuba.py",
      "wrap: CUBA current saturates instead of wrapping at 24 bits",
      "return wrap24(decay(u, du) + a_scaled)",
      "return saturate24(decay(u, du) + a_scaled)",
      ORACLES),
    M("cuba-voltage-wraps", f"{CORE}/cuba.py",
      "wrap: CUBA voltage wraps instead of saturating",
      "return saturate24(decay(v, dv) + current + bias_scaled)",
      "return wrap24(decay(v, dv) + current + bias_scaled)",
      ORACLES),
    M("cuba-lava-nc-du", f"{CORE}/cuba.py",
      "decay: lava-nc LIF's hidden +1 on the current decay",
      "return wrap24(decay(u, du) + a_scaled)",
      "return wrap24(decay(u, du + 1) + a_scaled)",
      ORACLES),
    M("cuba-lava-threshold-ge", f"{CORE}/cuba.py",
      "comparison: Lava CUBA spikes at v >= vth (not v > vth)",
      "spike = vol > (np.int64(vth[i]) << STATE_EXP)",
      "spike = vol >= (np.int64(vth[i]) << STATE_EXP)",
      (ORACLE_LAVA, ORACLE_SELF)),
    M("cuba-slayer-threshold-ge", f"{CORE}/cuba.py",
      "comparison: slayer CUBA spikes at v >= vth",
      "    if v > vth_scaled:",
      "    if v >= vth_scaled:",
      (ORACLE_SLAYER, LDF_BLOCKS)),
    M("cuba-bias-exp", f"{CORE}/cuba.py",
      "shift: CUBA bias exponent off by one in Lava",
      "shift(np.int64(bias_mant[i]), bias_exp[i]))",
      "shift(np.int64(bias_mant[i]), bias_exp[i] - 1))",
      (ORACLE_LAVA, PARITY_COVERAGE)),
    M("cuba-latency", f"{CORE}/cuba.py",
      "timing: the fused CUBA block kernel drops the synaptic latency",
      "            row = t + delay\n",
      "            row = t\n",
      (LDF_BLOCKS, PARITY_LAYERS)),
    M("surrogate-height", f"{CORE}/cuba.py",
      "surrogate: spike surrogate peak scale/tau instead of scale/(2 tau)",
      "return scale_rho if graded else scale_rho / (2.0 * tau_rho)",
      "return scale_rho if graded else scale_rho / tau_rho",
      (LDF_GRAD,)),
    M("cuba-scale-rho", "lava_dl/core/spec.py",
      "surrogate: CUBA/ALIF SCALE_RHO_MULT 0.2 instead of 0.1",
      "scale_rho_mult: float = 0.1",
      "scale_rho_mult: float = 0.2",
      (LDF_SURROGATE, LDF_GRAD)),
    M("cuba-tau-rho", f"{CORE}/cuba.py",
      "surrogate: CUBA TAU_RHO_MULT 50 instead of 100",
      '    name="CUBA",\n',
      '    name="CUBA",\n    tau_rho_mult=50.0,\n',
      (LDF_SURROGATE, LDF_GRAD)),
    # ---- ALIF --------------------------------------------------------------------------------
    M("alif-threshold-gt", f"{CORE}/alif.py",
      "comparison: ALIF spikes at v > theta + r (not >=)",
      "    spike = margin >= 0\n",
      "    spike = margin > 0\n",
      ORACLES),
    M("alif-refractory-theta", f"{CORE}/alif.py",
      "ALIF refractory jump theta instead of 2 theta",
      "ref_t = saturate24(ref_t + 2 * theta)",
      "ref_t = saturate24(ref_t + theta)",
      ORACLES),
    M("alif-keys-swapped", f"{CORE}/alif.py",
      "hdf5 keys: ALIF thDecay and refDecay swapped",
      'Param("dth", "thDecay", 0, DECAY_UNITY, 0, "threshold-adaptation decay, fraction of 4096"),\n'
      '        Param("dref", "refDecay",',
      'Param("dth", "refDecay", 0, DECAY_UNITY, 0, "threshold-adaptation decay, fraction of 4096"),\n'
      '        Param("dref", "thDecay",',
      (GUARDS, LDF_AUTO, LDF_LAVA)),
    M("alif-tau-rho", f"{CORE}/alif.py",
      "surrogate: ALIF TAU_RHO_MULT 50 instead of 100",
      '    name="ALIF",\n',
      '    name="ALIF",\n    tau_rho_mult=50.0,\n',
      (LDF_SURROGATE, LDF_GRAD)),
    M("alif-bias-on-voltage", f"{CORE}/alif.py",
      "ALIF bias added to the voltage instead of the current (Lava)",
      "        drive = (np.int64(a_in[i]) << STATE_EXP) + shift(np.int64(bias_mant[i]), bias_exp[i])\n"
      "        cur = current_update(np.int64(u[i]), drive, du[i])\n"
      "        vol = voltage_update(np.int64(v[i]), cur, dv[i], 0)",
      "        drive = np.int64(a_in[i]) << STATE_EXP\n"
      "        cur = current_update(np.int64(u[i]), drive, du[i])\n"
      "        vol = voltage_update(np.int64(v[i]), cur, dv[i], shift(np.int64(bias_mant[i]), bias_exp[i]))",
      (ORACLE_LAVA, PARITY_COVERAGE)),
    # ---- resonators --------------------------------------------------------------------------
    M("rotation-single-rounding", f"{CORE}/resonator.py",
      "rounding: resonator real part rounded once instead of per product",
      "new_re = rs0(cos_d * re, DECAY_BITS) - rs0(sin_d * im, DECAY_BITS) + a_re",
      "new_re = rs0(cos_d * re - sin_d * im, DECAY_BITS) + a_re",
      ORACLES),
    M("rotation-no-saturation", f"{CORE}/resonator.py",
      "wrap: resonator states not saturated at 24 bits",
      "return saturate24(new_re), saturate24(new_im)",
      "return new_re, new_im",
      ORACLES),
    M("rf-crossing-le", f"{CORE}/resonator.py",
      "comparison: RF phase crossing from im <= 0 (not im < 0)",
      "spike = margin >= 0 and im < 0 and im_t >= 0",
      "spike = margin >= 0 and im <= 0 and im_t >= 0",
      ORACLES),
    M("rf-iz-reset", f"{CORE}/resonator.py",
      "RF-IZ Izhikevich reset im = theta instead of theta - 1",
      "            im_next = th0 - 1\n",
      "            im_next = th0\n",
      ORACLES),
    M("adrf-crossing-gt", f"{CORE}/resonator.py",
      "comparison: ADRF phase crossing needs im_t > 0 (not >= 0)",
      "return value if im_before < 0 and im_t >= 0 else",
      "return value if im_before < 0 and im_t > 0 else",
      ORACLES),
    M("adrf-iz-real-part", f"{CORE}/resonator.py",
      "ADRF-IZ thresholds the real part instead of the imaginary part",
      "spike, margin, adapt, ref = threshold_unit(im_t, adapt, ref,",
      "spike, margin, adapt, ref = threshold_unit(re_t, adapt, ref,",
      ORACLES),
    M("adrf-iz-payload", f"{CORE}/resonator.py",
      "ADRF-IZ graded payload is the real part",
      "return im_t if family == RF_IZ_CODE or family == ADRF_IZ_CODE else re_t",
      "return im_t if family == RF_IZ_CODE else re_t",
      ORACLES),
    M("resonator-weight-keys", f"{CORE}/resonator.py",
      "hdf5 keys: weight/real and weight/imag swapped",
      '{"a_real_in": "weight/real", "a_imag_in": "weight/imag"}',
      '{"a_real_in": "weight/imag", "a_imag_in": "weight/real"}',
      (LDF_AUTO, LDF_LAVA)),
    M("rf-scale-rho", f"{CORE}/resonator.py",
      "surrogate: RF SCALE_RHO_MULT 1 instead of 10",
      '"RF": (0.5, 10.0),',
      '"RF": (0.5, 1.0),',
      (LDF_SURROGATE, LDF_GRAD)),
    M("rf-iz-tau-rho", f"{CORE}/resonator.py",
      "surrogate: RF-IZ TAU_RHO_MULT 50 instead of 100",
      '"RF_IZ": (100.0, 0.1),',
      '"RF_IZ": (50.0, 0.1),',
      (LDF_SURROGATE, LDF_GRAD)),
    M("adrf-scale-rho", f"{CORE}/resonator.py",
      "surrogate: ADRF SCALE_RHO_MULT 0.2 instead of 0.1",
      '"ADRF": (100.0, 0.1),',
      '"ADRF": (100.0, 0.2),',
      (LDF_SURROGATE, LDF_GRAD)),
    M("adrf-iz-tau-rho", f"{CORE}/resonator.py",
      "surrogate: ADRF-IZ TAU_RHO_MULT 50 instead of 100",
      '"ADRF_IZ": (100.0, 0.1),',
      '"ADRF_IZ": (50.0, 0.1),',
      (LDF_SURROGATE, LDF_GRAD)),
    # ---- sigma-delta -------------------------------------------------------------------------
    M("delta-threshold-gt", f"{CORE}/sigma_delta.py",
      "comparison: delta fires at |delta| > vth (not >=)",
      "        fire = abs32(delta) >= vth_s\n",
      "        fire = abs32(delta) > vth_s\n",
      ORACLES),
    M("cum-error-ignored", f"{CORE}/sigma_delta.py",
      "cum_error: the encoder fires on delta, not on the accumulated error",
      "error = wrap32(error + delta)\n        fire = abs32(error) >= vth_s",
      "error = wrap32(error + delta)\n        fire = abs32(delta) >= vth_s",
      ORACLES),
    M("cum-error-no-clear", f"{CORE}/sigma_delta.py",
      "cum_error: the error is not cleared when a message is sent",
      "    if cum_error != 0 and abs32(msg) > 0:\n        error = 0\n",
      "    if cum_error != 0 and abs32(msg) > 0:\n        error = error\n",
      ORACLES),
    M("delta-no-residue", f"{CORE}/sigma_delta.py",
      "delta: the residue of an unsent delta is dropped",
      "return delta, msg, wrap32(delta - msg), error",
      "return delta, msg, 0, error",
      ORACLES),
    M("sd-message-shift", f"{CORE}/sigma_delta.py",
      "shift: Lava SigmaDelta message shifted by state_exp + 1",
      "sigma[i], act[i], residue[i], error[i] = sig, new, res, err\n        s_out[i] = msg >> state_exp[i]",
      "sigma[i], act[i], residue[i], error[i] = sig, new, res, err\n"
      "        s_out[i] = msg >> (state_exp[i] + 1)",
      (ORACLE_LAVA, ORACLE_SELF)),
    M("sd-slayer-message-exact", f"{CORE}/sigma_delta.py",
      "rounding: slayer sigma-delta message not floored",
      "np.float64(msg >> state_exp) * out_scale",
      "np.float64(msg) / (1 << state_exp) * out_scale",
      (ORACLE_SLAYER, LDF_BLOCKS)),
    M("sd-bias-exp", f"{CORE}/sigma_delta.py",
      "shift: Lava SigmaDelta bias exponent off by one",
      "new = activation(sig, scaled(np.int64(bias[i]), e), act_mode[i])",
      "new = activation(sig, scaled(np.int64(bias[i]), e - 1), act_mode[i])",
      (ORACLE_LAVA, PARITY_SD, PARITY_COVERAGE)),
    M("sd-cum-error-key", f"{CORE}/sigma_delta.py",
      "hdf5 keys: cum_error stored as neuron/cum_error",
      '_CUM = Param("cum_error", "cumError",',
      '_CUM = Param("cum_error", "cum_error",',
      (NETX_FORMAT, LDF_CUM_ERROR)),
    M("sd-vth-key", f"{CORE}/sigma_delta.py",
      "hdf5 keys: sigma-delta threshold stored as neuron/vTh",
      '    "vth",\n    "vThMant",\n',
      '    "vth",\n    "vTh",\n',
      (LDF_AUTO, LDF_LAVA_SD)),
    M("sigma-output-exp", f"{CORE}/sigma_delta.py",
      "shift: Sigma output message exponent 6 instead of 12",
      '"message_exp_offset": 2 * STATE_EXP,',
      '"message_exp_offset": STATE_EXP,',
      (GUARDS, LDF_LAVA_SD, PARITY_SD)),
    M("sd-delay-shift", f"{CORE}/sigma_delta.py",
      "timing: netx treats SigmaDelta as delaying its output by one step",
      '        "slayer_delay_shift": False,\n        "message_exp_offset": STATE_EXP,',
      '        "slayer_delay_shift": True,\n        "message_exp_offset": STATE_EXP,',
      (LDF_LAVA_SD, PARITY_SD)),
    M("sd-threshold-gradient", f"{CORE}/sigma_delta.py",
      "surrogate: sigma-delta threshold gradient without 1/theta",
      "exp_nonpositive(min(-sub, 0.0) * inv_tau) * inv_theta",
      "exp_nonpositive(min(-sub, 0.0) * inv_tau)",
      (LDF_GRAD, SD_TORCH)),
    # ---- synapses and weights ----------------------------------------------------------------
    M("dense-clip-255", f"{CORE}/synapse.py",
      "quantization: MIXED dense weights clipped at -255 (not -256)",
      "w = np.clip(w, -256 * mixed, 255)",
      "w = np.clip(w, -255 * mixed, 255)",
      (ORACLE_SELF, SYNAPSE_LAVA)),
    M("quantize-clip", "lava_dl/slayer/quantize.py",
      "quantization: 8-bit quantizer clips at -254 (not -256)",
      "-256, 254)",
      "-254, 254)",
      (ORACLE_SLAYER, LDF_BLOCKS)),
    M("dense-inputs-reversed", "lava_dl/netx/hdf5.py",
      "weight layout: netx dense weight columns (inputs) in reverse order",
      "weight = _dense_weight(rec, shape_out[0], n_in, key)\n",
      "weight = _dense_weight(rec, shape_out[0], n_in, key)[:, ::-1]\n",
      (LDF_LAVA, PARITY_LAYERS)),
    M("conv-kernel-unflipped", f"{CORE}/synapse.py",
      "weight layout: Lava conv taps without the kernel flip",
      "q = p + pad - dil * (kernel - 1 - i)",
      "q = p + pad - dil * i",
      (SYNAPSE_LAVA, PARITY_LAYERS)),
    M("conv-wrap-saturates", f"{CORE}/synapse.py",
      "wrap: convolution sums saturate instead of wrapping at 24 bits",
      "        of[i] = wrap24(of[i])\n",
      "        of[i] = min(max(of[i], -(1 << 23)), (1 << 23) - 1)\n",
      (SYNAPSE_LAVA, POOL_CONVT)),
    M("convt-kernel-unflipped", f"{CORE}/synapse.py",
      "weight layout: ConvT kernel not flipped",
      "w = np.asarray(weight)[:, ::-1, ::-1, :]",
      "w = np.asarray(weight)",
      (POOL_CONVT, PARITY_LAYERS)),
    M("unpool-kernel-half-flipped", f"{CORE}/synapse.py",
      "weight layout: Unpool kernel flipped along x only",
      "        k = k[::-1, ::-1]\n",
      "        k = k[::-1, :]\n",
      (POOL_CONVT, PARITY_LAYERS)),
    M("netx-conv-flip", "lava_dl/netx/hdf5.py",
      "weight layout: netx flips conv kernels along H only",
      "flipped = weight[:, :, ::-1, ::-1]",
      "flipped = weight[:, :, ::-1, :]",
      (LDF_LAVA, PARITY_LAYERS)),
    M("netx-conv-xy", "lava_dl/netx/hdf5.py",
      "weight layout: netx conv kernel kx/ky swapped",
      "else flipped.transpose(0, 3, 2, 1))",
      "else flipped.transpose(0, 2, 3, 1))",
      (LDF_LAVA, PARITY_LAYERS)),
    M("netx-pool-layout", "lava_dl/netx/hdf5.py",
      "weight layout: netx pool kernel not transposed to (x, y)",
      "flipped[0, 0].T if shared",
      "flipped[0, 0] if shared",
      (GUARDS, POOL_CONVT, PARITY_LAYERS, LDF_LAVA)),
    # ---- records and netx --------------------------------------------------------------------
    M("input-shape-order", "lava_dl/core/records.py",
      "input record shape written in (x, y, c) order",
      'write_type(group, "input")\n    _write_shape(group, shape)',
      'write_type(group, "input")\n    _write_shape(group, tuple(shape)[::-1])',
      (LDF_BLOCKS, PARITY_LAYERS)),
    M("conv-channel-keys", "lava_dl/core/records.py",
      "hdf5 keys: conv inChannels/outChannels swapped",
      'write_type(group, "conv")\n    _write_shape(group, shape)\n'
      '    group.create_dataset("inChannels", data=np.int64(in_channels))\n'
      '    group.create_dataset("outChannels", data=np.int64(out_channels))',
      'write_type(group, "conv")\n    _write_shape(group, shape)\n'
      '    group.create_dataset("inChannels", data=np.int64(out_channels))\n'
      '    group.create_dataset("outChannels", data=np.int64(in_channels))',
      (LDF_BLOCKS, PARITY_LAYERS)),
    M("flatten-order", "lava_dl/netx/hdf5.py",
      "layout: netx flatten in (x, y, c) order instead of torch's",
      "prev.out.transpose([2, 1, 0]).flatten().connect(block.inp)",
      "prev.out.flatten().connect(block.inp)",
      (LDF_LAVA, PARITY_LAYERS)),
    M("average-groups", "process_models/average_models.py",
      "layout: Average sums interleaved groups",
      "s.reshape(-1, int(self.group_size[0])).sum(axis=1)",
      "s.reshape(int(self.group_size[0]), -1).sum(axis=0)",
      (PARITY_LAYERS, PARITY_COVERAGE, NETX_FORMAT)),
    M("concat-align", "lava_dl/netx/hdf5.py",
      "timing: concat does not align its inputs",
      "align = [max(emits) - e for e in emits]",
      "align = [0 for e in emits]",
      (PARITY_LAYERS, PARITY_COVERAGE, NETX_FORMAT)),
    M("concat-order", "lava_dl/netx/hdf5.py",
      "layout: lava-dl concat lists the previous layer last",
      "            ids = [prev_id, *ids]\n",
      "            ids = [*ids, prev_id]\n",
      (GUARDS, NETX_FORMAT, PARITY_LAYERS)),
    M("recurrent-transpose", "lava_dl/netx/hdf5.py",
      "weight layout: netx dense_rec weight transposed",
      '            weights[port] = _optimized(rec, key, weight)\n        out = {"weights_rec": weights}',
      '            weights[port] = _optimized(rec, key, weight.T)\n        out = {"weights_rec": weights}',
      (LDF_LAVA, PARITY_LAYERS, PARITY_COVERAGE)),
    M("reset-mode-swapped", "lava_dl/netx/hdf5.py",
      "timing: lava-dl and slayer per-sample reset phases swapped",
      'reset_mode = "slayer" if stamped else "lava-dl"',
      'reset_mode = "lava-dl" if stamped else "slayer"',
      (LDF_LAVA, PARITY_LAYERS)),
    M("netx-reset-phase", "lava_dl/netx/hdf5.py",
      "timing: reset of delaying blocks one step late",
      "    return reset_offset + synapses_in_front, True",
      "    return reset_offset + synapses_in_front + 1, True",
      (LDF_LAVA,)),
    # ---- delays ------------------------------------------------------------------------------
    M("delay-mode-swapped", "lava_dl/netx/hdf5.py",
      "timing: lava-dl and lava_dl delay placements swapped",
      'delay_mode = "axonal" if stamped else "lava-dl"',
      'delay_mode = "lava-dl" if stamped else "axonal"',
      (LDF_DELAYS, NETX_FORMAT, AXON_DELAY)),
    M("axon-delay-line", f"{CORE}/delay.py",
      "timing: Lava axonal delay line one step too long",
      "out[i] = history[(head - delays[i]) % depth, i]",
      "out[i] = history[(head - delays[i] - 1) % depth, i]",
      (AXON_DELAY, LDF_LAVA)),
    M("synapse-delay", f"{CORE}/delay.py",
      "timing: DelayDense synaptic delays one step too long",
      "acc[i, d_row[i]] += ",
      "acc[i, min(d_row[i] + 1, acc.shape[1] - 1)] += ",
      (AXON_DELAY, LDF_LAVA)),
    M("slayer-delay-round", "lava_dl/slayer/axon/delay.py",
      "rounding: slayer axonal delay rounded, not truncated",
      "shifts = torch.trunc(delay.detach().reshape(-1) / sampling_time)",
      "shifts = torch.round(delay.detach().reshape(-1) / sampling_time)",
      (AXON_DELAY, LDF_BLOCKS)),
    M("delay-export-round", "lava_dl/slayer/block/base.py",
      "rounding: exported delay rounded, not floored",
      "return torch.floor(self.delay.delay.detach())",
      "return torch.round(self.delay.delay.detach())",
      (GUARDS, AXON_DELAY, LDF_BLOCKS)),
)


# --------------------------------------------------------------------------------------------
# The copy
# --------------------------------------------------------------------------------------------


class MutationError(RuntimeError):
    """A mutation of the list no longer applies (its text is not found exactly once)."""


def check_mutations(mutations: tuple[Mutation, ...], root: pathlib.Path) -> list[str]:
    """Problems of the list against the files under ``root`` (empty when every mutation applies).

    Parameters
    ----------
    mutations : tuple of Mutation
        The mutations to check.
    root : pathlib.Path
        Repository root whose files are read (never written).

    Returns
    -------
    list of str
        One message per mutation that does not apply, or per duplicated id.
    """
    problems = []
    seen: set[str] = set()
    for m in mutations:
        if m.id in seen:
            problems.append(f"{m.id}: duplicated id")
        seen.add(m.id)
        path = root / m.file
        if not path.is_file():
            problems.append(f"{m.id}: {m.file} does not exist")
            continue
        count = path.read_text().count(m.old)
        if count != 1:
            problems.append(f"{m.id}: the text to mutate occurs {count} times in {m.file} (expected once): "
                            f"{m.old!r}")
        if m.old == m.new:
            problems.append(f"{m.id}: old and new text are equal")
    return problems


def repository_files(root: pathlib.Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files of the repository at ``root`` (that exist)."""
    out = subprocess.run(["git", "-C", str(root), "ls-files", "-co", "--exclude-standard", "-z"],
                         check=True, capture_output=True).stdout.decode()
    return sorted({f for f in out.split("\0") if f and (root / f).is_file()})


def make_copy(dest: pathlib.Path) -> pathlib.Path:
    """Copy the repository's files into ``dest/repo``; link ``dest/shared`` to the shared folder.

    Returns the root of the copy. Modification times are kept (``shutil.copy2``).
    """
    root = dest / "repo"
    for rel in repository_files(REPO):
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target)
    shared = REPO.parent / "shared"
    if shared.is_dir():
        (dest / "shared").symlink_to(shared.resolve(), target_is_directory=True)
    return root


def module_graph(root: pathlib.Path) -> dict[str, set[str]]:
    """``{module file (relative path): files of the lava_dl modules it imports}`` for the copy.

    ``process_models/x.py`` counts as ``lava_dl.proc.x`` (Lava imports it under that name).
    """
    modules: dict[str, str] = {}
    for path in sorted(root.glob("lava_dl/**/*.py")) + sorted(root.glob("process_models/*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("process_models/"):
            name = "lava_dl.proc." + path.stem
        else:
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join(parts)
        modules.setdefault(name, rel)
    graph: dict[str, set[str]] = {rel: set() for rel in modules.values()}
    for name, rel in modules.items():
        package = name if rel.endswith("__init__.py") else name.rsplit(".", 1)[0]
        try:
            tree = ast.parse((root / rel).read_text())
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                # a dotted import also imports every package above it
                pieces = target.split(".")
                for i in range(1, len(pieces) + 1):
                    dep = modules.get(".".join(pieces[:i]))
                    if dep is not None and dep != rel:
                        graph[rel].add(dep)
    return graph


def dependents(graph: dict[str, set[str]], rel: str) -> set[str]:
    """``rel`` and every module file that imports it, directly or through others."""
    found = {rel}
    changed = True
    while changed:
        changed = False
        for module, deps in graph.items():
            if module not in found and deps & found:
                found.add(module)
                changed = True
    return found


def purge_numba_cache(cache: pathlib.Path, files: set[str]) -> int:
    """Delete the Numba cache entries of the module files ``files``; return how many were removed.

    Numba stores the entries of ``<dir>/<stem>.py`` as ``<cache>/<dir name>_<hash>/<stem>.*``.
    """
    removed = 0
    if not cache.is_dir():
        return 0
    for rel in files:
        path = pathlib.PurePosixPath(rel)
        parent = path.parent.name
        for sub in cache.glob(f"{parent}_*"):
            for entry in sub.glob(f"{path.stem}.*"):
                entry.unlink(missing_ok=True)
                removed += 1
    return removed


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Result:
    """Outcome of one mutation (or of one baseline selection)."""

    mutation: Mutation | None
    status: str
    seconds: float
    summary: str
    log: pathlib.Path | None = None

    @property
    def killed(self) -> bool:
        return self.status in ("killed", "error", "timeout")


_SUMMARY = re.compile(r"(\d+ (passed|failed|error|errors|skipped|deselected|xfailed|xpassed|warnings?)"
                      r"[^\n]*) in [\d.]+s")


class Worker:
    """One copy of the repository with its own Numba cache, running one pytest at a time."""

    def __init__(self, base: pathlib.Path, index: int, timeout: float, test_timeout: int) -> None:
        self.dir = base / f"job{index}"
        self.dir.mkdir(parents=True)
        self.root = make_copy(self.dir)
        self.cache = self.dir / "numba_cache"
        self.logs = base / "logs"
        self.logs.mkdir(exist_ok=True)
        self.timeout = timeout
        self.test_timeout = int(test_timeout)
        self.graph = module_graph(self.root)
        self.running: subprocess.Popen | None = None
        self.env = dict(os.environ)
        self.env.update(PYTHONPATH=str(self.root), NUMBA_CACHE_DIR=str(self.cache),
                        PYTHONDONTWRITEBYTECODE="1")

    def stop(self) -> None:
        """Kill the running pytest and everything it started (its own process group)."""
        proc = self.running
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()

    def verify(self) -> str:
        """Check that ``lava_dl`` (and the Lava process models) import from the copy; return the path."""
        code = ("import lava_dl, lava_dl.proc, lava_dl.core.cuba; print(lava_dl.__file__); "
                "print(lava_dl.core.cuba.__file__); print(*lava_dl.proc.__path__, sep='\\n')")
        out = subprocess.run([sys.executable, "-c", code], cwd=self.root, env=self.env, capture_output=True,
                             text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"cannot import lava_dl from the copy:\n{out.stderr}")
        paths = out.stdout.split()
        outside = [p for p in paths if not pathlib.Path(p).resolve().is_relative_to(self.root.resolve())]
        if outside:
            raise RuntimeError(f"lava_dl imports from outside the copy {self.root}: {outside}")
        return paths[0]

    def pytest(self, tests: tuple[str, ...], k: str | None, name: str, first_failure: bool = True,
               extra: tuple[str, ...] = ()) -> Result:
        """Run pytest (``-x`` unless ``first_failure`` is False) on ``tests`` in the copy; classify
        the outcome."""
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-header",
               "-W", "ignore::DeprecationWarning", f"--timeout={self.test_timeout}", *extra, *tests]
        if first_failure:
            cmd.insert(3, "-x")
        if k:
            cmd += ["-k", k]
        log = self.logs / f"{name}.log"
        start = time.monotonic()
        with open(log, "w") as fh:
            proc = subprocess.Popen(cmd, cwd=self.root, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            self.running = proc
            try:
                rc = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self.stop()
                rc = None
            finally:
                self.running = None
        seconds = time.monotonic() - start
        text = log.read_text(errors="replace")
        found = _SUMMARY.findall(text)
        summary = found[-1][0] if found else (text.strip().splitlines() or [""])[-1][:120]
        if rc is None:
            status, summary = "timeout", f"no result after {self.timeout:.0f} s"
        elif rc == 0:
            status = "survived"
        elif rc == 1:
            status = "error" if (" error" in summary and "failed" not in summary) else "killed"
        elif rc == 5:
            status = "no tests"
        else:  # 2: interrupted (collection error), 3: internal error, 4: usage error
            status = "error"
        return Result(None, status, seconds, summary, log)

    def run(self, m: Mutation) -> Result:
        """Apply ``m`` in the copy, run its tests, restore the file."""
        path = self.root / m.file
        original = path.read_bytes()
        stat = path.stat()
        text = original.decode()
        if text.count(m.old) != 1:
            raise MutationError(f"{m.id}: the text to mutate occurs {text.count(m.old)} times in {m.file}")
        stale = dependents(self.graph, m.file)
        try:
            path.write_text(text.replace(m.old, m.new))
            purge_numba_cache(self.cache, stale)
            result = self.pytest(m.tests, m.k, m.id)
        finally:
            path.write_bytes(original)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            purge_numba_cache(self.cache, stale)
        result.mutation = m
        return result


def _junit_failures(path: pathlib.Path) -> tuple[set[str], bool]:
    """Test files with a failing or erroring test case in a JUnit report, and whether some failure
    could not be placed in a file (e.g. an error outside any test module)."""
    files: set[str] = set()
    unplaced = False
    if not path.is_file():
        return files, True
    for case in ElementTree.parse(path).iter("testcase"):
        if case.find("failure") is None and case.find("error") is None:
            continue
        dotted = case.get("classname") or case.get("name") or ""
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            candidate = "/".join(parts[:i]) + ".py"
            if candidate.startswith("tests/"):
                files.add(candidate)
                break
        else:
            unplaced = True
    return files, unplaced


def run_baseline(worker: Worker, mutations: tuple[Mutation, ...]) -> dict[tuple, Result]:
    """Run the test selections of ``mutations`` unmutated; return those that fail, with their result.

    The selections without ``-k`` run together in one pytest (every test file once, no ``-x``;
    a JUnit report tells which files failed), the others one by one.
    """
    selections = list(dict.fromkeys(m.selection for m in mutations))
    plain = [sel for sel in selections if sel[1] is None]
    failed: dict[tuple, Result] = {}
    if plain:
        files = tuple(dict.fromkeys(t.split("::")[0] for sel in plain for t in sel[0]))
        report = worker.logs / "baseline.xml"
        print(f"baseline: {len(files)} test files of {len(plain)} selections, unmutated", flush=True)
        result = worker.pytest(files, None, "baseline", first_failure=False,
                               extra=("--junitxml", str(report)))
        bad_files, unplaced = _junit_failures(report)
        ok = result.status == "survived"
        print(f"  {'ok' if ok else 'FAILED'} ({result.summary}, {result.seconds:.0f} s)", flush=True)
        if not ok:
            if bad_files:
                print("  failing files: " + ", ".join(sorted(bad_files)), flush=True)
            for sel in plain:
                if unplaced or not bad_files or {t.split("::")[0] for t in sel[0]} & bad_files:
                    failed[sel] = result
    for sel in selections:
        if sel[1] is None:
            continue
        label = Mutation("", "", "", "", "", sel[0], sel[1]).tests_label()
        result = worker.pytest(sel[0], sel[1], f"baseline-{len(failed)}-{abs(hash(sel))}")
        print(f"  baseline {label}: {'ok' if result.status == 'survived' else result.status} "
              f"({result.summary}, {result.seconds:.0f} s)", flush=True)
        if result.status != "survived":
            failed[sel] = result
    return failed


def _fmt_table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def _select(ids: str | None) -> tuple[Mutation, ...]:
    if not ids:
        return MUTATIONS
    wanted = [i.strip() for i in ids.split(",") if i.strip()]
    known = {m.id: m for m in MUTATIONS}
    unknown = [i for i in wanted if i not in known]
    if unknown:
        raise SystemExit(f"unknown mutation id(s): {', '.join(unknown)} (see --list)")
    return tuple(known[i] for i in wanted)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", metavar="ID[,ID]", help="run only these mutations")
    parser.add_argument("--list", action="store_true", help="list the mutations (checked to apply) and exit")
    parser.add_argument("--jobs", type=int, default=1, help="parallel copies (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (copies and logs)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the unmutated run of each test selection")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds one pytest run may take before it counts as a timeout (default 900)")
    parser.add_argument("--test-timeout", type=int, default=300,
                        help="seconds one test may take (pytest-timeout; a mutation that crashes a Lava "
                             "process hangs its test until then), default 300")
    args = parser.parse_args(argv)

    mutations = _select(args.only)
    problems = check_mutations(mutations, REPO)
    if args.list:
        rows = [[m.id, m.file, m.description, m.tests_label()] for m in mutations]
        print(_fmt_table(rows, ["id", "file", "description", "tests"]))
        print(f"\n{len(mutations)} mutations")
    if problems:
        print("\nmutations that no longer apply:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    if args.list:
        return 0

    start = time.monotonic()
    base = pathlib.Path(tempfile.mkdtemp(prefix="lava_dl_mutation_"))
    print(f"temporary directory: {base}", flush=True)
    jobs = max(1, min(int(args.jobs), len(mutations)))
    workers: queue.Queue[Worker] = queue.Queue()
    every: list[Worker] = []

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        for i in range(jobs):
            worker = Worker(base, i, args.timeout, args.test_timeout)
            print(f"copy {i}: {worker.root}; lava_dl imports from {worker.verify()}", flush=True)
            workers.put(worker)
            every.append(worker)
        problems = check_mutations(mutations, every[0].root)
        if problems:  # the checkout changed between the check above and the copy
            print("\nmutations that do not apply to the copy:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 2
        lock = threading.Lock()

        def with_worker(fn, item):
            worker = workers.get()
            try:
                return fn(worker, item)
            finally:
                workers.put(worker)

        failed_baselines: dict[tuple, Result] = {}
        if not args.no_baseline:
            failed_baselines = run_baseline(every[0], mutations)

        results: list[Result] = []

        def mutate(worker: Worker, m: Mutation) -> Result:
            if m.selection in failed_baselines:
                result = Result(m, "baseline failed", 0.0, failed_baselines[m.selection].summary)
            else:
                result = worker.run(m)
            with lock:
                print(f"  {m.id}: {result.status} ({result.summary}, {result.seconds:.0f} s)", flush=True)
            return result

        print(f"mutations: {len(mutations)}", flush=True)
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            futures = [pool.submit(with_worker, mutate, m) for m in mutations]
            try:
                results = [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                for worker in every:
                    worker.stop()
                raise
    except KeyboardInterrupt:
        for worker in every:
            worker.stop()
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"kept: {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    total = time.monotonic() - start
    rows = []
    for r in results:
        m = r.mutation
        label = r.status if r.status != "error" else "killed (error)"
        if r.status == "timeout":
            label = "killed (timeout)"
        rows.append([m.id, m.file, m.description, m.tests_label(), label, f"{r.seconds:.0f}"])
    print()
    print(_fmt_table(rows, ["id", "file", "description", "tests", "result", "seconds"]))
    counts = {s: sum(r.status == s for r in results) for s in
              ("killed", "error", "timeout", "survived", "no tests", "baseline failed")}
    killed = counts["killed"] + counts["error"] + counts["timeout"]
    print(f"\n{len(results)} mutations: {killed} killed ({counts['error']} by an error, "
          f"{counts['timeout']} by a timeout), {counts['survived']} survived, {counts['no tests']} without "
          f"tests, {counts['baseline failed']} with failing baseline; {total:.0f} s")
    bad = [r for r in results if not r.killed]
    for r in bad:
        print(f"NOT KILLED {r.mutation.id} ({r.status}): {r.summary}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
