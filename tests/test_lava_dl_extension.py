"""lava-dl's extension API: the abstract blocks of ``slayer.block.base``, the family mixins
(``block.cuba.AbstractCuba`` ...), neurons written on lava-dl's base-class contract, and
``device_params`` read as lava-dl's property or called as lava_dl's method."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lava_dl  # noqa: F401
from lava_dl import slayer
from lava_dl.slayer import synapse
from lava_dl.slayer.block import base, cuba, sigma_delta

CUBA = dict(threshold=0.5, current_decay=0.5, voltage_decay=0.1)


# ---- device_params: lava-dl's property and lava_dl's method --------------------------------------

FAMILY_NEURONS = {
    "cuba": lambda: slayer.neuron.cuba.Neuron(**CUBA),
    "alif": lambda: slayer.neuron.alif.Neuron(threshold=0.5, threshold_step=0.2, current_decay=0.5,
                                              voltage_decay=0.1, threshold_decay=0.1, refractory_decay=0.1),
    "rf": lambda: slayer.neuron.rf.Neuron(threshold=0.5, period=10, decay=0.1),
    "sigma_delta": lambda: slayer.neuron.sigma_delta.Neuron(threshold=0.25, activation=F.relu),
}


@pytest.mark.parametrize("family", sorted(FAMILY_NEURONS))
def test_device_params_is_lava_dls_property_and_lava_dls_method(family):
    neuron = FAMILY_NEURONS[family]()
    fields = neuron.device_params
    assert isinstance(fields, dict)
    assert dict(fields) == neuron.device_params() == dict(neuron.device_params.items())
    assert fields["vThMant"] == neuron.v_th_mant
    # lava-dl code edits what the property returned (e.g. to add ``sigma_output``): the neuron keeps its own
    fields["sigma_output"] = True
    fields["vThMant"] = 1
    assert "sigma_output" not in neuron.device_params and neuron.device_params["vThMant"] == neuron.v_th_mant
    assert type(pickle.loads(pickle.dumps(fields))) is dict


def test_device_params_with_another_threshold_mantissa():
    neuron = slayer.neuron.cuba.Neuron(**CUBA)
    assert neuron.device_params(v_th_mant=7)["vThMant"] == 7
    assert neuron.device_params["vThMant"] == 32


def test_device_params_of_a_neuron_without_threshold():
    """An Affine readout's neuron has no threshold: its default fields raise, but fields with another
    threshold mantissa (what the Affine export writes) can still be computed."""
    neuron = slayer.neuron.cuba.Neuron(threshold=None, current_decay=0.5, voltage_decay=0.1)
    assert neuron.device_params(v_th_mant=7)["vThMant"] == 7
    for read in (lambda: neuron.device_params(), lambda: dict(neuron.device_params.items())):
        with pytest.raises(ValueError, match="no threshold"):
            read()


def test_dendrite_sigma_device_params_property():
    sigma = slayer.dendrite.Sigma()
    assert dict(sigma.device_params) == sigma.device_params() == {"type": "SDNN", "sigma_output": True}


# ---- abstract blocks + lava_dl's family mixins equal the concrete blocks ------------------------

class _Dense(cuba.AbstractCuba, base.AbstractDense):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.synapse = synapse.Dense(**self.synapse_params)
        if "pre_hook_fx" not in kwargs:
            self.synapse.pre_hook_fx = self.neuron.quantize_8bit
        del self.synapse_params


def _with_synapse(kind: str, mixin: type, abstract: type) -> type:
    """A block class written the way lava-dl's family modules write them."""
    def __init__(self, *args, **kwargs):
        super(block, self).__init__(*args, **kwargs)
        self.synapse = getattr(synapse, kind)(**self.synapse_params)
        self.synapse.pre_hook_fx = self.neuron.quantize_8bit
        del self.synapse_params

    block = type(f"My{kind}", (mixin, abstract), {"__init__": __init__})
    return block


class _Recurrent(cuba.AbstractCuba, base.AbstractRecurrent):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.input_synapse = synapse.Dense(**self.synapse_params)
        self.recurrent_synapse = synapse.Dense(**self.recurrent_params)
        self.input_synapse.pre_hook_fx = self.neuron.quantize_8bit
        self.recurrent_synapse.pre_hook_fx = self.neuron.quantize_8bit
        del self.synapse_params, self.recurrent_params


class _KWTA(cuba.AbstractCuba, base.AbstractKWTA):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.synapse = synapse.Dense(**self.synapse_params)
        self.synapse.pre_hook_fx = self.neuron.quantize_8bit
        del self.synapse_params


class _Affine(cuba.AbstractCuba, base.AbstractAffine):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.synapse = synapse.Dense(**self.synapse_params)
        self.synapse.pre_hook_fx = self.neuron.quantize_8bit
        self.neuron.threshold = None
        del self.synapse_params


class _Input(cuba.AbstractCuba, base.AbstractInput):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.neuron is not None:
            self.pre_hook_fx = self.neuron.quantize_8bit


def _spikes(*shape):
    return (torch.rand(*shape) < 0.3).float()


CASES = {
    "Dense": (cuba.Dense, _Dense, (CUBA, 20, 10), dict(weight_scale=4), (2, 20, 16)),
    "Dense+delay": (cuba.Dense, _Dense, (CUBA, 20, 10), dict(weight_scale=4, delay=True), (2, 20, 16)),
    "Conv": (cuba.Conv, _with_synapse("Conv", cuba.AbstractCuba, base.AbstractConv), (CUBA, 2, 4, 3),
             dict(weight_scale=4, padding=1), (2, 2, 8, 8, 16)),
    "ConvT": (cuba.ConvT, _with_synapse("ConvTranspose", cuba.AbstractCuba, base.AbstractConvT),
              (CUBA, 2, 3, 3), dict(weight_scale=4, stride=2), (2, 2, 5, 5, 12)),
    "Pool": (cuba.Pool, _with_synapse("Pool", cuba.AbstractCuba, base.AbstractPool), (CUBA, 2),
             dict(weight_scale=2), (2, 3, 8, 8, 12)),
    "Unpool": (cuba.Unpool, _with_synapse("Unpool", cuba.AbstractCuba, base.AbstractUnpool), (CUBA, 2),
               dict(weight_scale=2), (2, 3, 4, 4, 12)),
    "Recurrent": (cuba.Recurrent, _Recurrent, (CUBA, 20, 10), dict(weight_scale=4), (2, 20, 16)),
    "KWTA": (cuba.KWTA, _KWTA, (CUBA, 20, 10, 3), dict(weight_scale=4), (2, 20, 16)),
    "Affine": (cuba.Affine, _Affine, (CUBA, 20, 10), dict(weight_scale=4), (2, 20, 16)),
    "Input": (cuba.Input, _Input, (CUBA,), dict(weight=2.0, bias=0.25), (2, 6, 16)),
}


def _records(group) -> dict:
    out: dict = {}
    def keep(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[()]

    group.visititems(keep)
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_abstract_block_with_family_mixin_equals_the_concrete_block(name, tmp_path):
    concrete_cls, abstract_cls, args, kwargs, shape = CASES[name]
    torch.manual_seed(0)
    concrete, written = concrete_cls(*args, **kwargs), abstract_cls(*args, **kwargs)
    x = _spikes(*shape)
    concrete(x)
    written(x)  # lazily shaped parts (a delay, a conv neuron's shape) take their shape
    written.load_state_dict(concrete.state_dict())  # strict: the same entries
    assert torch.equal(concrete(x), written(x))
    with h5py.File(tmp_path / "blocks.h5", "w") as f:
        concrete.export_hdf5(f.create_group("concrete"))
        written.export_hdf5(f.create_group("written"))
        ours, theirs = _records(f["concrete"]), _records(f["written"])
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        assert np.array_equal(ours[key], theirs[key]), key


def test_family_mixins_build_their_neuron_and_defaults():
    block = _Dense(CUBA, 20, 10, delay=True)
    assert isinstance(block.neuron, slayer.neuron.cuba.Neuron)
    assert block.delay is not None and not hasattr(block, "neuron_params")
    assert block.delay_shift is True
    sd = _with_synapse("Dense", sigma_delta.AbstractSDRelu, base.AbstractDense)(
        dict(threshold=0.1, activation=F.relu), 4, 3)
    assert isinstance(sd.neuron, slayer.neuron.sigma_delta.Neuron)
    assert sd.delay_shift is False  # lava-dl's sigma-delta default
    for module, name in ((slayer.block.alif, "AbstractALIF"), (slayer.block.rf, "AbstractRF"),
                         (slayer.block.rf_iz, "AbstractRFIz"), (slayer.block.adrf, "AbstractADRF"),
                         (slayer.block.adrf_iz, "AbstractADRFIZ")):
        assert getattr(module, name).neuron_class is module.Dense.neuron_class


def test_masked_abstract_dense_trains_and_exports_masked_weights(tmp_path):
    torch.manual_seed(1)
    mask = (torch.rand(10, 20) < 0.5).float()
    block = _Dense(CUBA, 20, 10, weight_scale=4, mask=mask)
    assert block.state_dict()["mask"].shape == (10, 20, 1, 1, 1)  # lava-dl's buffer
    block.synapse.weight.data.fill_(0.3)
    block(_spikes(2, 20, 8)).sum().backward()
    assert torch.equal(block.synapse.weight != 0, mask.reshape(block.synapse.weight.shape) != 0)
    block.synapse.weight.data.fill_(0.3)  # e.g. an optimizer step: export masks again
    with h5py.File(tmp_path / "m.h5", "w") as f:
        block.export_hdf5(f.create_group("0"))
        weight = f["0/weight"][()]
    assert np.all(weight[mask.numpy() == 0] == 0) and np.all(weight[mask.numpy() == 1] != 0)


def test_mask_of_the_wrong_shape_is_named():
    block = _Dense(CUBA, 20, 10, mask=torch.ones(10, 19))
    with pytest.raises(ValueError, match=r"mask of shape \(10, 19\) does not fit the synapse weight of shape "
                                         r"\(10, 20\)"):
        block(_spikes(1, 20, 4))


def test_subclass_that_builds_no_synapse_gets_a_named_error():
    class Forgetful(cuba.AbstractCuba, base.AbstractDense):
        pass

    with pytest.raises(RuntimeError, match="synapse not built"):
        Forgetful(CUBA, 4, 3)(_spikes(1, 4, 5))


# ---- a neuron family written on lava-dl's base-class contract ------------------------------------

class _SurrogateSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, voltage, threshold):
        ctx.save_for_backward(voltage)
        ctx.threshold = threshold
        return (voltage >= threshold).to(voltage.dtype)

    @staticmethod
    def backward(ctx, grad):
        (voltage,) = ctx.saved_tensors
        return grad * torch.exp(-(voltage - ctx.threshold).abs()), None


class IFNeuron(slayer.neuron.base.Neuron):
    """Leaky integrate-and-fire written as a lava-dl user would: lava-dl's base constructor,
    its own forward and a ``device_params`` property."""

    def __init__(self, threshold, leak=0.1, scale=64, norm=None, dropout=None, persistent_state=False,
                 shared_param=True, requires_grad=False):
        super().__init__(threshold=threshold, tau_grad=1, scale_grad=1, p_scale=1 << 12, w_scale=scale,
                         s_scale=scale * 64, norm=norm, dropout=dropout, persistent_state=persistent_state,
                         shared_param=shared_param, requires_grad=requires_grad)
        self.leak = torch.nn.Parameter(torch.tensor([leak * self.p_scale]), requires_grad=requires_grad)

    @property
    def device_params(self):
        return {"type": "IF", "leak": int(self.leak.item()), "vThMant": self.v_th_mant}

    def forward(self, x):
        if self.shape is None:
            self.shape = x.shape[1:-1]
        voltage, out = torch.zeros_like(x[..., 0]), []
        for t in range(x.shape[-1]):
            voltage = voltage * (1 - self.leak / self.p_scale) + x[..., t]
            spike = _SurrogateSpike.apply(voltage, self.threshold)
            voltage = voltage * (1 - spike)
            out.append(spike)
        return torch.stack(out, dim=-1)


class AbstractIF(torch.nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.neuron_params is not None:
            self.neuron = IFNeuron(**self.neuron_params)
        del self.neuron_params


class IFDense(AbstractIF, base.AbstractDense):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.synapse = synapse.Dense(**self.synapse_params)
        self.synapse.pre_hook_fx = self.neuron.quantize_8bit
        del self.synapse_params


class IFRecurrent(AbstractIF, base.AbstractRecurrent):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.input_synapse = synapse.Dense(**self.synapse_params)
        self.recurrent_synapse = synapse.Dense(**self.recurrent_params)
        del self.synapse_params, self.recurrent_params


def test_lava_dl_contract_neuron_attributes():
    neuron = IFNeuron(0.3, norm=slayer.neuron.norm.MeanOnlyBatchNorm)
    assert neuron.threshold == int(0.3 * 64) / 64 == neuron.tau_rho
    assert neuron.v_th_mant == 19 and neuron.weight_exponent == 0
    assert (neuron.w_scale, neuron.s_scale, neuron.p_scale) == (64, 4096, 4096)
    assert neuron.shape is None and neuron.num_neurons is None and neuron.requires_grad is False
    assert neuron.norm.pre_hook_fx == neuron.quantize_8bit
    assert float(neuron.quantize_8bit(torch.tensor([0.3]), descale=True)) == 20.0
    with pytest.raises(ValueError, match="s_scale"):
        slayer.neuron.base.Neuron.__new__(IFNeuron)._init_lava_dl_contract(0.3, w_scale=64, s_scale=8)


def test_custom_neuron_block_forward_gradient_and_export(tmp_path):
    torch.manual_seed(2)
    block = IFDense(dict(threshold=0.3, leak=0.2), 12, 5, weight_scale=3)
    x = _spikes(3, 12, 20)
    out = block(x)
    # expected: quantized synapse, the neuron's own dynamics, one step of delay
    weight = block.neuron.quantize_8bit(block.synapse.weight).reshape(5, 12)
    drive = torch.einsum("oi,nit->not", weight, x)
    expected = block.neuron(drive)
    expected = torch.cat([torch.zeros_like(expected[..., :1]), expected[..., :-1]], dim=-1)
    assert torch.equal(out, expected) and out.sum() > 0
    out.sum().backward()
    assert block.synapse.weight.grad is not None and block.synapse.weight.grad.abs().sum() > 0
    with h5py.File(tmp_path / "if.h5", "w") as f:
        block.export_hdf5(f.create_group("0"))
        record = _records(f["0"])
    assert record["neuron/type"].decode() == "IF"
    assert record["neuron/leak"] == 819 and record["neuron/vThMant"] == 19
    assert np.array_equal(record["weight"], block.synapse.pre_hook_fx(block.synapse.weight, descale=True)
                          .detach().reshape(5, 12).numpy())


def test_recurrent_block_refuses_a_neuron_of_another_family():
    block = IFRecurrent(dict(threshold=0.3), 6, 4)
    with pytest.raises(NotImplementedError, match="defined outside lava_dl"):
        block(_spikes(1, 6, 5))


# ---- lava-dl's state dict names --------------------------------------------------------------------

def test_kwta_state_dict_with_lava_dls_names_loads_strictly():
    torch.manual_seed(3)
    kwta = cuba.KWTA(CUBA, 20, 10, 3, weight_scale=4)
    saved = {("synapse.weight" if key == "input_synapse.weight" else key): value.clone()
             for key, value in kwta.state_dict().items()}
    saved["spike_state"] = torch.zeros(1)  # lava-dl's unused buffer
    other = cuba.KWTA(CUBA, 20, 10, 3, weight_scale=4)
    other.load_state_dict(saved)
    assert torch.equal(other.input_synapse.weight, kwta.input_synapse.weight)
    written = _KWTA(CUBA, 20, 10, 3, weight_scale=4)
    written.load_state_dict(kwta.state_dict())  # input_synapse.* into the subclass's ``synapse``
    x = _spikes(2, 20, 12)
    assert torch.equal(written(x), kwta(x))


def test_input_shape_is_settable_as_lava_dl_code_sets_it():
    block = cuba.Input(CUBA)
    block.input_shape = torch.Size([3, 4, 5])
    assert block.shape == (3, 4, 5) == block.input_shape


def test_sigma_delta_output_takes_lava_dls_positional_arguments():
    params = dict(threshold=0.1, activation=F.relu)
    out = sigma_delta.Output(params, 10, 2, 2, False, True)  # weight_scale, weight_norm, count_log
    y, rate = out(torch.rand(1, 10, 4))
    assert y.shape == (1, 2, 4) and isinstance(rate, float)
    with pytest.raises(TypeError):
        sigma_delta.Output(params, 10, 2, 1, False, False, None)  # lava-dl's Output takes no 7th argument


def test_sigma_delta_set_bias_says_why_it_is_not_supported():
    neuron = slayer.neuron.sigma_delta.Neuron(threshold=0.1, activation=F.relu)
    with pytest.raises(NotImplementedError, match="never exported"):
        neuron.set_bias(torch.zeros(3))
