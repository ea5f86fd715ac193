"""Members of lava-dl 0.6's public API that lava_dl adds on its own machinery.

``Neuron.ref_delay`` (CUBA, ALIF), ``alif.Neuron.v_th_step``, ``reset_parameters`` of the
norms, ``BDD.flip_lr``, the ``shape`` of the synapses and complex synapses, the complex
``grad_norm``, ``SequentialNetwork.{input,flatten,average,dense}_block``; and what an audit of
code written for lava-dl found missing: a bias assigned to a synapse, the synapses' ``nn.Conv3d``
attributes, ``axon.delay`` of a series, ``netx.hdf5.Network.input_shape``.
"""

from __future__ import annotations

import inspect
import json
import math

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from lava_dl import slayer
from lava_dl.slayer.auto import Hdf5FormatError, SequentialNetwork
from lava_dl.slayer.neuron import alif, cuba
from lava_dl.slayer.neuron.norm import MeanOnlyBatchNorm, WgtScaleBatchNorm
from lava_dl.slayer.object_detection.dataset import BDD
from lava_dl.slayer.synapse import complex as complex_synapse
from lava_dl.slayer.synapse import layer as synapse_layer

CUBA = dict(threshold=0.75, current_decay=0.25, voltage_decay=0.03)
ALIF = dict(threshold=0.75, threshold_step=0.3, current_decay=0.25, voltage_decay=0.03,
            threshold_decay=0.1, refractory_decay=0.1)


# ---- neurons -------------------------------------------------------------------------------------

def test_ref_delay_is_the_exported_constant():
    neurons = [cuba.Neuron(**CUBA), alif.Neuron(**ALIF)]
    for neuron in neurons:
        assert neuron.ref_delay == 1
        assert neuron.device_params()["refDelay"] == neuron.ref_delay


@pytest.mark.parametrize("step, scale, expected", [(0.3, 64, 19), (61.5 / 7, 7, 61), (0.0, 64, 0)])
def test_alif_v_th_step_is_the_exported_field(step, scale, expected, tmp_path):
    neuron = alif.Neuron(**{**ALIF, "threshold_step": step, "threshold": 1.0}, scale=scale)
    assert neuron.v_th_step == expected == int(step * scale)
    assert neuron.device_params()["vThStep"] == neuron.v_th_step
    assert neuron.threshold_step == expected / scale  # 61 / 7 * 7 < 61 in floating point: kept as 61
    # the block export writes the same field
    block = slayer.block.alif.Dense({**ALIF, "threshold_step": step}, 3, 2)
    with h5py.File(tmp_path / "a.net", "w") as f:
        block.export_hdf5(f.create_group("0"))
        assert int(f["0/neuron/vThStep"][()]) == block.neuron.v_th_step == int(step * 64)


def test_alif_threshold_step_setter_and_dynamics():
    neuron = alif.Neuron(threshold=0.5, threshold_step=0.25, current_decay=1.0, voltage_decay=0.0,
                         threshold_decay=0.0, refractory_decay=1.0)
    neuron.threshold_step = 0.5
    assert neuron.v_th_step == 32 and neuron.device_params()["vThStep"] == 32
    with pytest.raises(ValueError, match="vThStep"):
        neuron.threshold_step = -1.0
    x = torch.zeros(1, 1, 6)
    x[..., 0] = 4.0  # one strong input: the voltage stays above the threshold (no reset)
    _, voltage, threshold, _ = neuron.dynamics(x)
    spikes = neuron.spike(voltage, threshold, torch.zeros_like(threshold))
    assert spikes[0, 0, 0] == 1
    # each spike raises the adaptive threshold by exactly v_th_step / scale
    assert torch.allclose(threshold[0, 0, 1] - threshold[0, 0, 0], torch.tensor(neuron.v_th_step / 64))


# ---- norms ------------------------------------------------------------------------------------------

def test_mean_only_batch_norm_reset_parameters():
    norm = MeanOnlyBatchNorm(num_features=3).train()
    norm(torch.randn(4, 3, 5) + 2.0)
    assert torch.all(norm.running_mean != 0)
    norm.reset_parameters()
    assert torch.equal(norm.running_mean, torch.zeros(3))
    # inside a neuron: a training forward moves the mean, reset zeroes it
    neuron = cuba.Neuron(**CUBA, norm=MeanOnlyBatchNorm).train()
    neuron(torch.rand(2, 4, 8))
    assert neuron.norm.running_mean.abs().sum() > 0
    neuron.norm.reset_parameters()
    assert torch.equal(neuron.norm.running_mean, torch.zeros(4))
    assert torch.equal(neuron.norm.bias, torch.zeros(4))


def test_wgt_scale_batch_norm_reset_parameters():
    norm = WgtScaleBatchNorm(num_features=3).train()
    norm(torch.randn(4, 3, 5) * 3 + 1.0)
    assert torch.all(norm.running_mean != 0) and torch.all(norm.running_var > 0)
    norm.reset_parameters()
    assert torch.equal(norm.running_mean, torch.zeros(3))
    assert torch.equal(norm.running_var, torch.zeros(1))


# ---- BDD.flip_lr ---------------------------------------------------------------------------------------

def _bdd_root(root, frames: int = 2):
    label_dir = root / "labels" / "box_track_20" / "val"
    image_dir = root / "images" / "track" / "val" / "v0"
    label_dir.mkdir(parents=True)
    image_dir.mkdir(parents=True)
    entries = []
    for k in range(frames):
        array = np.random.default_rng(k).integers(0, 256, (6, 9, 3), dtype=np.uint8)
        Image.fromarray(array).save(image_dir / f"f{k}.png")
        entries.append({"name": f"f{k}.png", "labels": [{"category": "car",
                                                          "box2d": {"x1": 1, "y1": 1, "x2": 4, "y2": 3}}]})
    (label_dir / "v0.json").write_text(json.dumps(entries))
    return root


def test_bdd_flip_lr(tmp_path):
    data = BDD(root=str(_bdd_root(tmp_path)), size=(6, 9), seq_len=2)
    array = np.random.default_rng(3).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    image = Image.fromarray(array)
    flipped = data.flip_lr(image)
    assert isinstance(flipped, Image.Image)
    assert np.array_equal(np.asarray(flipped), array[:, ::-1])
    assert np.array_equal(np.asarray(image), array)  # the input is left alone


def test_bdd_flip_augmentation_uses_flip_lr(tmp_path, monkeypatch):
    data = BDD(root=str(_bdd_root(tmp_path)), size=(6, 9), seq_len=2, augment_prob=1.0)
    calls = []

    def spy(img):
        calls.append(img.size)
        return BDD.flip_lr(data, img)

    monkeypatch.setattr(data, "flip_lr", spy)
    data[0]
    assert calls == [(9, 6), (9, 6)]


# ---- synapse shape and grad_norm -----------------------------------------------------------------------

def test_synapse_shape():
    dense = synapse_layer.Dense(4, 3)
    assert isinstance(dense, synapse_layer.GenericLayer)
    assert dense.shape == dense.weight.shape == torch.Size((3, 4, 1, 1, 1))
    assert dense(torch.rand(2, 4, 5)).shape[1] == dense.shape[0]
    conv = synapse_layer.Conv(2, 5, 3, padding=1)
    assert conv.shape == torch.Size((5, 2, 3, 3, 1))
    assert conv(torch.rand(1, 2, 6, 6, 4)).shape[1] == conv.shape[0]
    conv.enable_weight_norm()
    assert conv.shape == torch.Size((5, 2, 3, 3, 1))
    conv.disable_weight_norm()
    assert conv.shape == conv.weight.shape


def test_complex_synapse_shape_and_grad_norm():
    dense = complex_synapse.Dense(4, 3)
    assert isinstance(dense, complex_synapse.ComplexLayer)
    assert dense.shape == dense.real.weight.shape == torch.Size((3, 4, 1, 1, 1))
    conv = complex_synapse.Conv(2, 5, 3)
    assert conv.shape == torch.Size((5, 2, 3, 3, 1))
    assert dense.grad_norm == 0
    real, imag = dense(torch.rand(2, 4, 5))
    (real.sum() + 2 * imag.pow(2).sum()).backward()
    parts = [torch.linalg.vector_norm(w.grad).item() / w.grad.numel()
             for w in (dense.real.weight, dense.imag.weight)]
    assert dense.grad_norm == pytest.approx(math.sqrt(parts[0] ** 2 + parts[1] ** 2), rel=1e-12)
    assert dense.grad_norm == pytest.approx(math.hypot(dense.real.grad_norm, dense.imag.grad_norm))
    assert dense.grad_norm > 0


# ---- SequentialNetwork.*_block ------------------------------------------------------------------------

def _network_file(path):
    torch.manual_seed(0)
    blocks = slayer.block.cuba
    params = dict(threshold=0.5, current_decay=0.2, voltage_decay=0.05)
    net = [
        blocks.Input(params, weight=1.5, bias=0.25, shape=(2, 3, 3)),
        blocks.Flatten(),
        blocks.Dense({**params, "norm": MeanOnlyBatchNorm}, 18, 10, delay=True),
        blocks.Dense(params, 10, 6),
        blocks.Average(3),
    ]
    with torch.no_grad():
        for block in net:
            synapse = getattr(block, "synapse", None)
            if synapse is not None:
                synapse.weight.mul_(4)
        net[2].neuron.norm.running_mean.copy_(torch.linspace(-0.5, 0.5, 10))
        net[2].delay.delay.copy_(torch.arange(10) % 3)
    x = torch.zeros(1, 2, 3, 3, 2)
    for block in net:  # one forward: the Flatten block learns its shape
        x = block(x)
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(net):
            block.export_hdf5(layer.create_group(str(i)), clip_weights=True)
    return path


def test_block_methods_equal_the_network_blocks(tmp_path):
    path = _network_file(tmp_path / "net.net")
    net = SequentialNetwork(path).eval()
    x = torch.from_numpy((np.random.default_rng(1).random((2, 2, 3, 3, 12)) < 0.5).astype(np.float32))
    methods = [net.input_block, net.flatten_block, net.dense_block, net.dense_block, net.average_block]
    with h5py.File(path, "r") as f:
        built = [method(f[f"layer/{i}"]).eval() for i, method in enumerate(methods)]
    assert len(net.blocks) == 5  # the methods do not append
    for i, (block, ours) in enumerate(zip(built, net.blocks)):
        assert type(block) is type(ours)
        y = ours(x)
        assert torch.equal(block(x), y), i
        x = y
    assert x.shape == (2, 3, 12)  # average output: 3 groups, 12 steps
    assert x.abs().sum() > 0  # the comparison saw activity
    # the network still builds and exports as before
    net.export_hdf5(tmp_path / "again.net")
    again = SequentialNetwork(tmp_path / "again.net").eval()
    assert len(again.blocks) == 5


def test_block_methods_values_and_errors(tmp_path):
    path = _network_file(tmp_path / "net.net")
    net = SequentialNetwork(path, weight_norm=True)
    with h5py.File(path, "r") as f:
        dense = net.dense_block(f["layer/2"])
        assert dense.synapse.weight_norm  # built as the network builds its blocks
        dense.synapse.disable_weight_norm()
        w = f["layer/2/weight"][()]
        assert np.array_equal(dense.synapse.weight.detach().numpy().reshape(w.shape) * 64, w)
        assert np.array_equal(dense.delay.delay.detach().numpy().reshape(-1), f["layer/2/delay"][()])
        assert net.average_block(f["layer/4"]).num_outputs == 3
        assert tuple(net.flatten_block(f["layer/1"]).shape) == (18, 1, 1)  # the record's
        assert tuple(net.input_block(f["layer/0"]).neuron.shape) == (2, 3, 3)
        with pytest.raises(Hdf5FormatError, match="layer 1.*'type'"):
            net.dense_block(f["layer/1"])
        with pytest.raises(Hdf5FormatError, match="'input'"):
            net.input_block(f["layer/3"])


def test_alif_pickled_before_the_property_loads():
    neuron = alif.Neuron(**ALIF)
    state = neuron.__dict__.copy()
    state["threshold_step"] = state.pop("_v_th_step") / 64  # the former layout
    old = alif.Neuron.__new__(alif.Neuron)
    old.__setstate__(state)
    assert old.v_th_step == 19 and old.threshold_step == 19 / 64
    assert old.device_params()["vThStep"] == 19


# ---- found by running code written for lava-dl ----------------------------------------------------

def test_a_bias_assigned_to_a_synapse_is_added_and_trained():
    dense = synapse_layer.Dense(3, 2)
    assert dense.bias is None and "bias" not in dense.state_dict()
    with torch.no_grad():
        dense.weight.zero_()
    dense.bias = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    y = dense(torch.zeros(1, 3, 4))
    assert torch.equal(y, torch.tensor([1.0, -2.0]).reshape(1, 2, 1).expand(1, 2, 4))
    y.sum().backward()
    assert torch.equal(dense.bias.grad, torch.tensor([4.0, 4.0])) and "bias" in dense.state_dict()
    conv = synapse_layer.Conv(2, 3, 3, padding=1)
    x = torch.rand(1, 2, 4, 4, 2)
    expected = conv(x) + torch.tensor([0.5, 0.0, 1.5]).reshape(1, 3, 1, 1, 1)
    conv.bias = torch.nn.Parameter(torch.tensor([0.5, 0.0, 1.5]))
    assert torch.allclose(conv(x), expected)
    pool = synapse_layer.Pool(2)
    pool.bias = torch.nn.Parameter(torch.tensor([0.25]))  # one value for every channel
    assert torch.equal(pool(torch.zeros(1, 3, 4, 4, 1)), torch.full((1, 3, 2, 2, 1), 0.25))
    conv.bias = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="a bias of 2 values does not fit 3 output channels"):
        conv(x)


def test_block_export_refuses_a_synapse_bias(tmp_path):
    block = slayer.block.cuba.Dense(CUBA, 3, 2)
    block.synapse.bias = torch.nn.Parameter(torch.zeros(2))
    with h5py.File(tmp_path / "b.h5", "w") as f:
        block.export_hdf5(f.create_group("zero"))  # a zero bias changes nothing
        block.synapse.bias.data.fill_(0.5)
        with pytest.raises(ValueError, match="the synapse has a bias, which no hdf5 field holds"):
            block.export_hdf5(f.create_group("nonzero"))


def test_recurrent_synapse_bias_is_added_every_step():
    """lava-dl's recurrent blocks ignored a bias assigned to the recurrent synapse; here it is part of the
    feedback ``R s[t-1] + b``, checked against a loop over single steps of the same neuron."""
    torch.manual_seed(0)
    block = slayer.block.cuba.Recurrent(CUBA, 4, 3, weight_scale=3)
    bias = torch.tensor([0.125, -0.25, 0.5])
    block.recurrent_synapse.bias = torch.nn.Parameter(bias)
    x = (torch.rand(2, 4, 9) < 0.5).float()
    with torch.no_grad():
        out = block(x)
        z = block.input_synapse(x)
        weight = block.recurrent_synapse.effective_weight().reshape(3, 3)
        neuron = cuba.Neuron(**CUBA, persistent_state=True)
        neuron.load_state_dict(block.neuron.state_dict())
        spikes, expected = torch.zeros(2, 3), []
        for t in range(9):
            spikes = neuron((z[..., t] + spikes @ weight.T + bias).unsqueeze(-1))[..., 0]
            expected.append(spikes)
    expected = torch.stack(expected, dim=-1)
    assert torch.equal(out, torch.cat([torch.zeros_like(expected[..., :1]), expected[..., :-1]], dim=-1))
    assert out.sum() > 0


def test_synapses_have_lava_dls_conv3d_attributes():
    conv, transposed = synapse_layer.Conv(2, 3, 3), synapse_layer.ConvTranspose(2, 3, 3)
    assert conv._pre_hook_fx is None and conv.complex is False and conv.padding_mode == "zeros"
    assert conv.transposed is False and transposed.transposed is True and conv.output_padding == (0, 0, 0)
    conv._pre_hook_fx = cuba.Neuron(**CUBA).quantize_8bit  # lava-dl's private name writes the hook
    assert conv.pre_hook_fx is conv._pre_hook_fx
    assert complex_synapse.Dense(3, 2).complex is True


def test_axon_delay_of_a_series_or_a_batch_of_series():
    x = torch.arange(1.0, 7.0)
    assert torch.equal(slayer.axon.delay(x, 2), torch.tensor([0.0, 0, 1, 2, 3, 4]))
    batch = torch.stack([x, 10 * x])
    expected = torch.tensor([[2.0, 3, 4, 5, 6, 0], [20, 30, 40, 50, 60, 0]])
    assert torch.equal(slayer.axon.delay(batch, -1), expected)
    with pytest.raises(ValueError, match="at least 3-D"):
        slayer.axon.delay(batch, torch.tensor([1.0, 2.0]))  # a delay per position needs N, C, ..., T


def test_netx_network_input_shape(tmp_path):
    from lava_dl import netx

    path = tmp_path / "n.net"
    with h5py.File(path, "w") as f:
        block = slayer.block.cuba.Dense(CUBA, 4, 3)
        block(torch.zeros(1, 4, 2))
        block.export_hdf5(f.create_group("layer/0"))
    assert netx.hdf5.Network(net_config=str(path), input_shape=(4,)).input_shape == (4,)
    assert netx.hdf5.Network(net_config=str(path)).input_shape == (4,)


def test_lava_dl_state_dict_of_a_delay_never_run_loads():
    """lava-dl saves an axonal delay that never ran as a one-value placeholder (its channels come
    with the first input); loading it keeps the block's own delays instead of failing on the size."""
    block = slayer.block.cuba.Dense(CUBA, 6, 4, delay=True)
    saved = {key: value.clone() for key, value in block.state_dict().items()}
    saved["delay.delay"] = torch.tensor([0.3])
    before = block.delay.delay.detach().clone()
    block.load_state_dict(saved)
    assert torch.equal(block.delay.delay, before)
    saved["delay.delay"] = torch.arange(4.0)  # a delay that ran loads as saved
    block.load_state_dict(saved)
    assert torch.equal(block.delay.delay.detach(), torch.arange(4.0))


def test_netx_resonator_layers_are_complex_dense_with_lava_ncs_var_names(tmp_path):
    """lava-dl built a complex dense record as ``ComplexDense`` and deployed lava-nc's RF processes,
    whose states are ``real``/``imag``: code tests the block type and probes those Vars."""
    from lava_dl import netx
    from lava_dl.netx.blocks.process import ComplexDense, Dense

    torch.manual_seed(0)
    path = tmp_path / "rf.net"
    with h5py.File(path, "w") as f:
        rf = slayer.block.rf.Dense(dict(threshold=0.5, period=10, decay=0.1), 4, 3)
        rf((torch.rand(1, 4, 3) < 0.5).float())
        rf.export_hdf5(f.create_group("layer/0"))
        cuba_block = slayer.block.cuba.Dense(CUBA, 3, 2)
        cuba_block(torch.zeros(1, 3, 2))
        cuba_block.export_hdf5(f.create_group("layer/1"))
    net = netx.hdf5.Network(net_config=str(path))
    assert type(net.layers[0]) is ComplexDense and type(net.layers[1]) is Dense
    neuron = net.layers[0].neuron
    assert neuron.real is neuron.re and neuron.imag is neuron.im
    assert (neuron.real.name, neuron.imag.name) == ("re", "im")  # Lava's names of the Vars stay
    assert net.layers[0].real_synapse is net.layers[0].synapses["a_real_in"]


# ---- lava-dl's argument names for keyword calls ----------------------------------------------------

def _keyword_cases():
    """(module, method, lava-dl's name of its tensor argument, an input) for every torch-side layer."""
    torch.manual_seed(0)
    spikes = (torch.rand(2, 4, 12) > 0.6).float()
    current = torch.rand(2, 4, 12)
    rf = dict(threshold=0.5, period=8, decay=0.1)
    norm = MeanOnlyBatchNorm(num_features=4)
    norm.eval()
    scale_norm = WgtScaleBatchNorm(num_features=4)
    scale_norm.eval()
    return [
        (cuba.Neuron(**CUBA), "forward", "input", current),
        (cuba.Neuron(**CUBA), "dynamics", "input", current),
        (alif.Neuron(**ALIF), "forward", "input", current),
        (alif.Neuron(**ALIF), "dynamics", "input", current),
        (slayer.neuron.sigma_delta.Neuron(threshold=0.1, activation=torch.relu), "forward", "input", current),
        (slayer.neuron.rf.Neuron(**rf), "forward", "input", (current, current)),
        (slayer.neuron.rf.Neuron(**rf), "dynamics", "input", (current, current)),
        (slayer.neuron.adrf.Neuron(**rf, threshold_step=0.1, threshold_decay=0.1, refractory_decay=0.1),
         "dynamics", "input", (current, current)),
        (slayer.neuron.Dropout(p=0.0), "forward", "input", current),
        (norm, "forward", "inp", current),
        (scale_norm, "forward", "inp", current),
        (slayer.axon.Delay(max_delay=3), "forward", "input", current),
        (slayer.axon.Delta(threshold=0.1), "forward", "input", current),
        (slayer.dendrite.Sigma(), "forward", "input", current),
        (slayer.synapse.Dense(4, 3), "forward", "input", spikes),
        (slayer.synapse.Conv(4, 3, 1), "forward", "input", spikes.reshape(2, 4, 1, 1, 12)),
        (slayer.synapse.Pool(1), "forward", "input", spikes.reshape(2, 4, 1, 1, 12)),
        (slayer.synapse.ConvTranspose(4, 3, 1), "forward", "input", spikes.reshape(2, 4, 1, 1, 12)),
        (slayer.synapse.Unpool(1), "forward", "input", spikes.reshape(2, 4, 1, 1, 12)),
        (complex_synapse.Dense(4, 3), "forward", "input", spikes),
    ]


@pytest.mark.parametrize("case", range(20))
def test_tensor_arguments_take_lava_dl_s_keyword(case):
    module, method, name, value = _keyword_cases()[case]
    call = getattr(module, method)
    assert list(inspect.signature(call).parameters)[0] == name
    with torch.no_grad():
        positional = call(value)
        by_keyword = call(**{name: value})
    for a, b in zip(*(r if isinstance(r, tuple) else (r,) for r in (positional, by_keyword))):
        assert torch.equal(a, b)
