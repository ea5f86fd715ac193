"""Bad input to training layers and export (issue 10 item 6): every case raises a named error.

Inputs (dtype, time axis, shape, NaN/inf/overflow), parameters (NaN weights, thresholds,
surrogate-gradient arguments, decays set out of range after construction) and export
(NaN weights, weights the 8-bit quantizer would clamp, neuron parameters out of range).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lava_dl import slayer
from lava_dl.core import records
from lava_dl.slayer.block.base import ExportError

CUBA = dict(threshold=1.25, current_decay=0.25, voltage_decay=0.03)
ALIF = dict(threshold=1.0, threshold_step=0.5, current_decay=0.25, voltage_decay=0.03, threshold_decay=0.1,
            refractory_decay=0.1)
RF = dict(threshold=1.0, period=8.0, decay=0.05)
SDNN = dict(threshold=0.1, activation=F.relu)
FAMILIES = {"cuba": CUBA, "alif": ALIF, "rf": RF, "adrf_iz": dict(RF, threshold_step=0.5, threshold_decay=0.1,
                                                                  refractory_decay=0.1),
            "sigma_delta": SDNN}


def _dense(family: str = "cuba", n_in: int = 6, n_out: int = 4, **params):
    return getattr(slayer.block, family).Dense({**FAMILIES[family], **params}, n_in, n_out)


def _x(n_in: int = 6, steps: int = 8, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(2, n_in, steps, generator=gen) < 0.5).float()


def _export(block, tmp_path, **kwargs):
    with h5py.File(tmp_path / "net.net", "w") as f:
        block.export_hdf5(f.create_group("layer").create_group("0"), **kwargs)
    return tmp_path / "net.net"


# ---- input tensors --------------------------------------------------------------------------------

@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool, torch.float16, torch.bfloat16])
def test_non_float_input_is_a_type_error(family, dtype):
    block = _dense(family)
    with pytest.raises(TypeError, match=rf"{family}\.Dense: input must be a float32 or float64 tensor, got "
                                        rf"dtype {dtype}.*x\.float\(\)"):
        block(_x().to(dtype))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_float64_input_still_runs(family):
    block = _dense(family)
    assert block(_x().double()).shape[-1] == 8


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_empty_time_axis(family):
    with pytest.raises(ValueError, match="time axis .* is empty"):
        _dense(family)(_x()[..., :0])


def test_empty_time_axis_conv_recurrent_and_neuron():
    with pytest.raises(ValueError, match="time axis .* is empty"):
        slayer.block.cuba.Conv(CUBA, 2, 3, 3)(torch.zeros(1, 2, 5, 5, 0))
    with pytest.raises(ValueError, match="time axis .* is empty"):
        slayer.block.cuba.Recurrent(CUBA, 6, 4)(_x()[..., :0])
    with pytest.raises(ValueError, match="time axis .* is empty"):
        slayer.neuron.cuba.Neuron(**CUBA)(torch.zeros(2, 3, 0))


def test_shape_errors_name_expected_and_got():
    with pytest.raises(ValueError, match=r"expected 6 input channels .* got shape \(2, 5, 8\)"):
        _dense()(torch.zeros(2, 5, 8))
    with pytest.raises(ValueError, match=r"expects input N, C, \(H, W,\) T .* got shape \(6, 8\)"):
        _dense()(torch.zeros(6, 8))
    neuron = slayer.neuron.cuba.Neuron(**CUBA, shape=(4,))
    with pytest.raises(ValueError, match=r"has shape \(4,\), got input of shape \(2, 3, 8\)"):
        neuron(torch.zeros(2, 3, 8))


def test_neuron_alone_rejects_integer_and_half_input():
    neuron = slayer.neuron.cuba.Neuron(**CUBA)
    with pytest.raises(TypeError, match="CUBA Neuron: .*got dtype torch.int64"):
        neuron(torch.ones(2, 3, 4, dtype=torch.int64))
    with pytest.raises(TypeError, match="got dtype torch.float16"):
        neuron(torch.ones(2, 3, 4, dtype=torch.float16))


# ---- NaN, inf, overflow in the forward ------------------------------------------------------------

@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_one_nan_in_the_input_raises(family):
    x = _x()
    x[1, 2, 5] = float("nan")
    with pytest.raises(ValueError, match=r"holds [0-9]+ NaN and 0 inf values .*set_input_checks\(False\)"):
        _dense(family)(x)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_all_non_finite_input_raises(value):
    with pytest.raises(ValueError, match="NaN and .* inf values"):
        _dense()(torch.full((2, 6, 8), value))


def test_overflowing_input_raises():
    """1e30 has no integer input: a Lava port carries int32 messages (|64 x| < 2^31)."""
    with pytest.raises(ValueError, match=r"beyond the deployable range .*floor\(x \* 64\) must fit"):
        _dense()(torch.full((2, 6, 8), 1e30))
    neuron = slayer.neuron.cuba.Neuron(**CUBA)
    with pytest.raises(ValueError, match="beyond the deployable range"):
        neuron(torch.full((1, 2, 3), 2.0**25))
    assert neuron(torch.full((1, 2, 3), 2.0**25 - 2)).shape == (1, 2, 3)  # the largest float32 allowed


def test_sigma_delta_input_limit_uses_its_input_grid():
    """The sigma-delta neuron's input is trunc(z 2^(12+e)): the int32 limit is 2^31 / 2^18 = 8192."""
    neuron = slayer.neuron.sigma_delta.Neuron(**SDNN)
    assert neuron.input_unit == 2.0**18
    with pytest.raises(ValueError, match="beyond the deployable range"):
        neuron(torch.full((1, 2, 3), 8192.0, dtype=torch.float64))


def test_resonator_imaginary_part_is_checked():
    neuron = slayer.neuron.rf.Neuron(**RF)
    real, imag = torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)
    imag[0, 1, 3] = float("inf")
    with pytest.raises(ValueError, match=r"0 NaN and 1 inf values .*index \(0, 1, 3\)"):
        neuron((real, imag))


def test_nan_in_recurrent_and_neuronless_blocks():
    x = _x()
    x[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        slayer.block.cuba.Recurrent(CUBA, 6, 4)(x)
    with pytest.raises(ValueError, match=r"cuba\.Flatten: the input holds 1 NaN"):
        slayer.block.cuba.Flatten()(x)


def test_opt_out_switch_and_context():
    x = _x()
    x[1, 2, 5] = float("nan")
    block = _dense()
    assert slayer.input_checks_enabled()
    with slayer.set_input_checks(False):
        assert not slayer.input_checks_enabled()
        assert block(x).shape == (2, 4, 8)  # runs (NaN reaches the kernel, as before)
    assert slayer.input_checks_enabled()
    with pytest.raises(ValueError, match="NaN"):
        block(x)
    slayer.set_input_checks(False)
    try:
        block(x)
    finally:
        slayer.set_input_checks(True)
    with pytest.raises(ValueError, match="NaN"):
        block(x)
    # the structure checks stay on
    with slayer.set_input_checks(False), pytest.raises(TypeError):
        block(x.int())


# ---- parameters at forward ------------------------------------------------------------------------

@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_nan_weight_is_named(family):
    block = _dense(family)
    synapse = block.synapse.real if getattr(block.synapse, "complex", False) else block.synapse
    with torch.no_grad():
        synapse.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"parameter 'synapse\.(real\.)?weight' holds 1 NaN/inf values"):
        block(_x())


def test_nan_learnable_decay_is_named():
    block = _dense(requires_grad=True)
    with torch.no_grad():
        block.neuron.voltage_decay.fill_(float("nan"))
    with pytest.raises(ValueError, match="'neuron.voltage_decay' holds 1 NaN"):
        block(_x())


@pytest.mark.parametrize("threshold", [-1.0, -0.01, float("nan"), float("inf")])
def test_bad_threshold_at_construction_and_later(threshold):
    with pytest.raises(ValueError, match="threshold"):
        slayer.neuron.cuba.Neuron(**{**CUBA, "threshold": threshold})
    with pytest.raises(ValueError, match="threshold"):
        _dense("alif", threshold=threshold)
    neuron = slayer.neuron.cuba.Neuron(**CUBA)
    with pytest.raises(ValueError, match="threshold"):
        neuron.threshold = threshold
    assert neuron.threshold == 1.25


def test_zero_threshold_and_none_are_valid():
    assert slayer.neuron.cuba.Neuron(**{**CUBA, "threshold": 0}).v_th_mant == 0
    neuron = slayer.neuron.cuba.Neuron(**{**CUBA, "threshold": None})
    assert neuron.v_th_mant == -1 and neuron(torch.full((1, 2, 4), 3.0)).sum() == 0


@pytest.mark.parametrize("name,value", [("tau_grad", 0), ("tau_grad", -1.0), ("tau_grad", float("nan")),
                                        ("scale_grad", float("nan")), ("scale_grad", 0), ("scale_grad", -2.0),
                                        ("scale_grad", float("inf"))])
def test_bad_surrogate_arguments(name, value):
    with pytest.raises(ValueError, match=name):
        slayer.neuron.cuba.Neuron(**CUBA, **{name: value})
    with pytest.raises(ValueError, match=name):
        slayer.neuron.sigma_delta.Neuron(**SDNN, **{name: value})
    neuron = slayer.neuron.alif.Neuron(**ALIF)
    with pytest.raises(ValueError, match=name):
        setattr(neuron, name, value)


@pytest.mark.parametrize("family,attribute,key", [("cuba", "current_decay", "du"),
                                                  ("cuba", "voltage_decay", "dv"),
                                                  ("alif", "threshold_decay", "dth"),
                                                  ("alif", "refractory_decay", "dref"),
                                                  ("rf", "sin_decay", "sin_decay")])
@pytest.mark.parametrize("value", [6144.0, -1.0])
def test_decay_set_out_of_range_after_construction(family, attribute, key, value, tmp_path):
    if key == "sin_decay" and value < 0:
        value = -6144.0  # the rotations' range is [-4096, 4096]
    block = _dense(family)
    with torch.no_grad():
        getattr(block.neuron, attribute).fill_(value)
    pattern = rf"Neuron\.{attribute}: {key} .* must lie in \[-?[0-9]+, 4096\], got values in \[{int(value)}"
    with pytest.raises(ValueError, match=pattern):
        block(_x())
    with pytest.raises(ExportError, match=rf"'/layer/0': .*{attribute}"):
        _export(block, tmp_path)


def test_learnable_decay_out_of_range_is_clamped_at_use_and_export(tmp_path):
    """requires_grad neurons clamp their decays into [0, 4096] before use (lava-dl's rule); export too."""
    block = _dense(requires_grad=True)
    with torch.no_grad():
        block.neuron.current_decay.fill_(6144.0)
    block(_x())
    with torch.no_grad():
        block.neuron.current_decay.fill_(6144.0)  # as an optimiser step after the last forward
    with h5py.File(_export(block, tmp_path, clip_weights=True)) as f:
        assert f["layer/0/neuron/iDecay"][()] == 4096


def test_sigma_delta_threshold_set_negative_later(tmp_path):
    block = _dense("sigma_delta")
    with torch.no_grad():
        block.neuron.delta_threshold.fill_(-0.5)
    with pytest.raises(ValueError, match=r"vth .* must lie in \[0, 131071\], got values in \[-32"):
        block(_x())
    with pytest.raises(ExportError, match="vth"):
        _export(block, tmp_path)


# ---- export ---------------------------------------------------------------------------------------

def test_negative_threshold_never_exports_minus_one(tmp_path):
    """A neuron without threshold (None) runs, but has no vThMant: export raises (no -1 in the file)."""
    block = _dense(threshold=None)
    block(_x())
    with pytest.raises(ExportError, match="no threshold"):
        _export(block, tmp_path)


def test_affine_exports_its_marker_threshold(tmp_path):
    block = slayer.block.cuba.Affine(CUBA, 6, 4)
    block(_x())
    with h5py.File(_export(block, tmp_path)) as f:
        assert f["layer/0/neuron/vThMant"][()] == (1 << 18) - 1


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_nan_weight_export(family, tmp_path):
    block = _dense(family)
    synapse = block.synapse.real if getattr(block.synapse, "complex", False) else block.synapse
    with torch.no_grad():
        synapse.weight[1, 2] = float("nan")
    with pytest.raises(ExportError, match=rf"{family}\.Dense export to hdf5 group '/layer/0': .*NaN"):
        _export(block, tmp_path)
    with pytest.raises(ExportError, match="NaN"):  # clipping does not turn NaN into a number
        _export(block, tmp_path, clip_weights=True)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_weights_beyond_the_range_raise_naming_how_far(family, tmp_path):
    block = _dense(family)
    with torch.no_grad():
        for p in block.synapse.parameters():
            p.fill_(0.5).mul_(1000)  # 500 real = 32000 integer
    with pytest.raises(ExportError, match=r"'/layer/0': synapse weight.*24 of 24 quantized values lie "
                                          r"outside the deployable range \[-256, 254\] "
                                          r".*32000 to 32000, up to 126x"):
        _export(block, tmp_path)


def test_clip_weights_opt_in_writes_the_clamped_weights(tmp_path):
    block = _dense()
    with torch.no_grad():
        block.synapse.weight.mul_(1000)
    expected = block.synapse.pre_hook_fx(block.synapse.weight, descale=True).detach().numpy()
    with h5py.File(_export(block, tmp_path, clip_weights=True)) as f:
        weight = f["layer/0/weight"][()]
    assert weight.min() >= -256 and weight.max() <= 254 and np.array_equal(weight, expected.reshape(4, 6))


def test_in_range_weights_export_unchanged(tmp_path):
    block = _dense()
    with h5py.File(_export(block, tmp_path)) as f:
        weight = f["layer/0/weight"][()]
    assert np.array_equal(weight, block.synapse.pre_hook_fx(block.synapse.weight, descale=True).detach()
                          .numpy().reshape(4, 6))


def test_input_block_weight_and_norm_bias_are_checked(tmp_path):
    block = slayer.block.cuba.Input(CUBA, weight=1000.0, shape=(6,))
    with pytest.raises(ExportError, match="input weight: .*outside the deployable range"):
        _export(block, tmp_path)
    dense = _dense(norm=slayer.neuron.norm.MeanOnlyBatchNorm)
    dense.neuron.norm.running_mean.fill_(-100.0)
    with pytest.raises(ExportError, match="norm bias"):
        _export(dense, tmp_path)


def test_custom_hook_outside_loihi_weight_range(tmp_path):
    """lava-dl's quantize_hook_fx clamps to [-512, 510]: beyond Loihi's [-256, 255], export names it."""
    block = slayer.block.cuba.Dense(CUBA, 6, 4, pre_hook_fx=slayer.quantize.quantize_hook_fx)
    with torch.no_grad():
        block.synapse.weight.fill_(6.0)  # 384 integer: inside the hook's range, outside Loihi's
    with pytest.raises(ExportError, match=r"outside Loihi's weight range \[-256, 255\]"):
        _export(block, tmp_path)


def test_records_writer_rejects_non_finite_values(tmp_path):
    with h5py.File(tmp_path / "w.net", "w") as f:
        group = f.create_group("layer/1")
        weight = np.zeros((3, 4))
        weight[0, 1] = np.nan
        with pytest.raises(ValueError, match=r"/layer/1/weight: 1 of 12 values are NaN or inf"):
            records.write_dense(group, (3,), weight)
        with pytest.raises(ValueError, match=r"/layer/2/bias: 1 of 3 values are NaN or inf"):
            records.write_dense(f.create_group("layer/2"), (3,), np.zeros((3, 4)), bias=[0, np.inf, 0])


def test_marked_spikes_skip_the_scan_and_an_unmarked_nan_still_raises(monkeypatch):
    """A neuron's binary spikes carry a bound (no NaN/inf possible): the next block does not scan
    them. A copy, or the same tensor changed in place, is scanned again and its NaN raises."""
    from lava_dl.slayer import checks

    conv = slayer.block.cuba.Conv(CUBA, 2, 4, 3, padding=1, weight_scale=4)
    x = (torch.rand(2, 2, 5, 5, 8, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    spikes = conv(x)
    assert checks.marked_bound(spikes) == 1.0
    scans = []
    real_aminmax = torch.aminmax
    monkeypatch.setattr(torch, "aminmax", lambda *a, **k: scans.append(a[0].shape) or real_aminmax(*a, **k))
    flat = slayer.block.cuba.Flatten()(spikes)
    assert scans == [] and checks.marked_bound(flat) == 1.0
    bad = spikes.clone()
    bad[1, 2, 3, 4, 5] = float("nan")
    assert checks.marked_bound(bad) is None
    with pytest.raises(ValueError, match=r"cuba\.Flatten: the input holds 1 NaN"):
        slayer.block.cuba.Flatten()(bad)
    spikes[0, 0, 0, 0, 0] = float("inf")  # in place: the mark no longer holds
    with pytest.raises(ValueError, match=r"cuba\.Flatten: the input holds 0 NaN and 1 inf"):
        slayer.block.cuba.Flatten()(spikes)


def test_synapse_output_bound_skips_the_neuron_scan_only_when_it_proves_the_range(monkeypatch):
    """A block bounds its synapse output by max|x| * sum|W| (x marked, or scanned when smaller than
    the output); a bound beyond the input range leaves the neuron's scan, which raises."""
    from lava_dl.slayer import checks

    dense = _dense(n_in=6, n_out=4)
    spikes = checks.mark_bound(_x(), 1.0)
    z = dense.synapse(spikes)
    checks.bound_linear_output(z, spikes, dense.synapse.effective_weight())
    assert checks.marked_bound(z) is not None and checks.marked_bound(z) >= z.abs().max()
    big = checks.mark_bound(torch.full((2, 6, 8), 1e30), 1e30)
    with pytest.raises(ValueError, match="beyond the deployable range"):
        dense(big)
    with checks.set_input_checks(False):
        unmarked = dense.synapse(spikes)
        checks.bound_linear_output(unmarked, spikes, dense.synapse.effective_weight())
    assert checks.marked_bound(unmarked) is None
