"""Focused tests for rules that ``scripts/mutation_check.py`` found unguarded.

Each test pins one behaviour with an expectation worked out by hand from Loihi's and lava-dl
0.6's documented semantics (never from the code under test), and compares exactly. The
mutation each one kills is named in its docstring.
"""

from __future__ import annotations

import h5py
import numpy as np
import torch

from lava_dl.core import alif as core_alif
from lava_dl.core import records, synapse
from lava_dl.core.synapse import optimize_weight_bits
from lava_dl.netx import hdf5
from lava_dl.slayer.block import cuba as cuba_blocks
from lava_dl.slayer.neuron import alif, cuba

#: A CUBA hdf5 neuron group (lava-dl's fields).
CUBA_FIELDS = {"type": "CUBA", "iDecay": 4096, "vDecay": 415, "vThMant": 6, "refDelay": 1,
               "gradedSpike": False}


def test_cuba_input_floors_negative_off_grid_sums():
    """A synaptic sum off the 1/64 grid enters as ``a_in = floor(64 x)`` (mutation ``input-trunc``).

    Loihi's synapse floors a graded sum onto the neuron's ``a_in`` grid (an arithmetic right
    shift), so ``x = -1/128`` gives ``a_in = -1``, not 0. CUBA with ``iDecay = 0`` (the current
    keeps everything) and ``vDecay = 4096`` (``v = u``), threshold ``1/64`` (``vth << 6 = 64``),
    graded spikes. In state units (``S = 4096``): step 0 ``u = v = -64`` (no spike); step 1
    ``a_in = 3``, ``u = v = -64 + 192 = 128 > 64``: a spike carrying ``128 / 4096 = 1/32``.
    (Truncation would give ``u = 0`` at step 0 and the payload ``3/64`` at step 1.)
    """
    neuron = cuba.Neuron(threshold=1 / 64, current_decay=0.0, voltage_decay=1.0, graded_spike=True)
    x = torch.tensor([[[-1 / 128, 3 / 64]]], dtype=torch.float32)
    with torch.no_grad():
        out = neuron(x)
    assert out.tolist() == [[[0.0, 1 / 32]]]


#: An ALIF hdf5 neuron group as lava-dl 0.6 writes it (``thDecay`` is the threshold-adaptation
#: decay, ``refDecay`` the refractory decay: lava-dl's ``alif.Neuron.device_params``), with every
#: field distinct so that no two can be confused.
ALIF_FIELDS = {"type": "ALIF", "iDecay": 1000, "vDecay": 2000, "thDecay": 256, "refDecay": 3072,
               "vThMant": 80, "vThStep": 24, "refDelay": 1, "gradedSpike": False}


def test_alif_hdf5_keys_name_the_right_decays():
    """``thDecay`` is the threshold-adaptation decay, ``refDecay`` the refractory decay (mutation
    ``alif-keys-swapped``), in the spec, on loading and on export.

    The lava-dl 0.6 fixture ``alif.net`` does not tell them apart: with its two decays swapped
    every output of that network stays the same (no spike flips).
    """
    assert core_alif.SPEC.param_for_hdf5_key("thDecay").name == "dth"
    assert core_alif.SPEC.param_for_hdf5_key("refDecay").name == "dref"
    args = alif.neuron_params(ALIF_FIELDS)
    assert args["threshold_decay"] == 256 / 4096
    assert args["refractory_decay"] == 3072 / 4096
    neuron = alif.Neuron(threshold=1.25, threshold_step=0.375, current_decay=1000 / 4096,
                         voltage_decay=2000 / 4096, threshold_decay=256 / 4096, refractory_decay=3072 / 4096)
    fields = neuron.device_params()
    assert (fields["thDecay"], fields["refDecay"]) == (256, 3072)
    assert (fields["iDecay"], fields["vDecay"], fields["vThMant"], fields["vThStep"]) == (1000, 2000, 80, 24)


def test_alif_threshold_and_refractory_decays_act_as_named():
    """slayer ALIF with the decays of :data:`ALIF_FIELDS` loaded, against a hand-computed run.

    Parameters (integers): ``iDecay = 4096`` and ``vDecay = 4096`` (``v`` equals this step's
    input ``a_in << 6``), ``vth = 1`` (``θ0 = 64``), ``vThStep = 2`` (``Δθ = 128``),
    ``thDecay = 2048`` (the adaptation halves), ``refDecay = 0`` (the refractory state stays).
    Input ``a_in = 1, 0, 20, 20`` (``v = 64, 0, 1280, 1280``):

    * step 0: ``v = 64 >= θ0 + 0 + 0``: spike; ``th = 128``, ``r = 2 θ0 = 128``;
    * step 1: ``th = 64``, ``r = 128``; ``v = 0``: no spike;
    * step 2: ``th = 32``, ``r = 128``: threshold ``64 + 32 + 128 = 224 <= 1280``: spike;
      ``th = 32 + 128 = 160``, ``r = 128 + 2 (64 + 32) = 320``;
    * step 3: ``th = 80``, ``r = 320``: threshold ``464 <= 1280``: spike.

    With the two decays swapped (``dth = 0``, ``dref = 2048``) the run is the same up to step 2,
    so step 3 is checked through the states: the refractory state must have kept 320 and the
    adaptation decayed to 80 (swapped: 160 and 160).
    """
    fields = dict(ALIF_FIELDS, iDecay=4096, vDecay=4096, thDecay=2048, refDecay=0, vThMant=1, vThStep=2)
    neuron = alif.Neuron(**alif.neuron_params(fields), persistent_state=True)
    x = torch.tensor([[[1 / 64, 0.0, 20 / 64, 20 / 64]]], dtype=torch.float32)
    with torch.no_grad():
        spikes = neuron(x)
    assert spikes.tolist() == [[[1.0, 0.0, 1.0, 1.0]]]
    # after step 3's spike: th = 80 + 128 = 208, r = 320 + 2 (64 + 80) = 608
    assert neuron.state("th", x).tolist() == [208]
    assert neuron.state("r", x).tolist() == [608]


def test_sigma_output_messages_carry_their_scale(tmp_path):
    """A Sigma output sends σ, ``2^(12 + spike_exp)`` integer units per real unit, and a synapse
    behind it scales its weights by that (mutation ``sigma-output-exp``).

    File: a sigma-delta hidden layer, a Sigma output layer, then a CUBA layer reading the
    output. CUBA's ``a_in`` is in weight units, so the last synapse's weight exponent is the
    lossless one of its integer weights (:func:`optimize_weight_bits`) plus ``-(12 + 6) = -18``.
    """
    path = tmp_path / "sigma.net"
    weight = np.ones((2, 3)) * 2
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        records.write_dense(layer.create_group("0"), shape=(3,), weight=np.ones((3, 4)) * 2,
                            neuron={"type": "SDNN", "vThMant": 4, "activation": "relu"})
        records.write_dense(layer.create_group("1"), shape=(3,), weight=np.ones((3, 3)) * 2,
                            neuron={"type": "SDNN", "sigma_output": True})
        records.write_dense(layer.create_group("2"), shape=(2,), weight=weight,
                            neuron=CUBA_FIELDS)
    net = hdf5.Network(net_config=str(path))
    sigma, reader = net.layers[1], net.layers[2]
    assert sigma.output_message_exp == -18
    _, _, weight_exp, _ = optimize_weight_bits(weight)
    assert int(reader.synapse.weight_exp.init) == weight_exp - 18


def test_concat_without_previous_layer_puts_it_first(tmp_path):
    """A ``concat`` record whose ``layers`` omit the previous layer joins ``[previous, *layers]``
    (lava-dl's form, README "Skip connections"), in that channel order (mutation ``concat-order``).

    Layer 0 has 4 neurons, layer 1 (fed by layer 0) 3; the record lists only ``[0]``, so the
    joined 7 channels are layer 1's three, then layer 0's four.
    """
    path = tmp_path / "concat.net"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        records.write_dense(layer.create_group("0"), shape=(4,), weight=np.ones((4, 5)) * 2,
                            neuron=CUBA_FIELDS)
        records.write_dense(layer.create_group("1"), shape=(3,), weight=np.ones((3, 4)) * 2,
                            neuron=CUBA_FIELDS)
        records.write_concat(layer.create_group("2"), (7,), [0])
    net = hdf5.Network(net_config=str(path))
    first, second, concat = net.layers
    join = concat.join
    assert [tuple(p.shape) for p in join.inputs[:2]] == [(3,), (4,)]
    assert join.inputs[0].in_connections[0] is second.out
    assert join.inputs[1].in_connections[0] is first.out


def test_pool_kernel_deploys_in_lava_layout(tmp_path):
    """A non-square, non-uniform pool kernel deploys so that Lava's Pool computes torch's
    per-channel cross-correlation (mutation ``netx-pool-layout``).

    Kernel ``(kH, kW) = (2, 3)``, stride ``(2, 3)`` on a ``(2, 4, 6)`` input. Lava's layout is
    ``(x, y)`` with the kernel flipped (Lava convolves): ``lava[x, y] = torch[kH-1-y, kW-1-x]``.
    The deployed kernel applied by the Pool arithmetic must equal ``conv2d`` on every channel.
    """
    w = np.array([[[[2, 4, 6], [8, 10, 12]]]], dtype=np.float64)
    path = tmp_path / "pool.net"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        records.write_input(layer.create_group("0"), shape=(2, 4, 6))
        records.write_pool(layer.create_group("1"), shape=(2, 2, 2), weight=w, kernel_size=(2, 3),
                           stride=(2, 3), neuron=CUBA_FIELDS)
    pool = hdf5.Network(net_config=str(path)).layers[0].synapse
    kernel = np.asarray(pool.weight.init)
    assert kernel.tolist() == [[12, 6], [10, 4], [8, 2]]
    rng = np.random.default_rng(3)
    s = (rng.random((2, 4, 6)) < 0.5).astype(np.int64)  # (C, H, W)
    expected = torch.nn.functional.conv2d(torch.from_numpy(s).double()[:, None], torch.from_numpy(w),
                                          stride=(2, 3))[:, 0].numpy()  # (C, H', W')
    out = synapse.pool(s.transpose(2, 1, 0), kernel, stride=tuple(int(v) for v in pool.stride.init))
    assert np.array_equal(out, expected.transpose(2, 1, 0))


def test_exported_axonal_delay_is_the_whole_steps_trained(tmp_path):
    """The exported ``delay`` of a block is the number of whole steps its forward shifts each
    channel by, ``trunc(delay)`` (mutation ``delay-export-round``): delays 0.4, 1.6, 2.5, 3.0
    shift by 0, 1, 2, 3 steps and export as 0, 1, 2, 3.
    """
    torch.manual_seed(0)
    block = cuba_blocks.Dense({"threshold": 0.5, "current_decay": 1.0, "voltage_decay": 1.0}, 3, 4,
                              delay=True)
    x = (torch.rand(1, 3, 12) < 0.5).float()
    with torch.no_grad():
        block.synapse.weight.fill_(1.0)  # every input spike makes every neuron spike (next step)
        block(x)  # fixes the delay's shape
        block.delay.delay.data = torch.tensor([0.4, 1.6, 2.5, 3.0]).reshape(block.delay.delay.shape)
        delayed = block(x)
        delay, block.delay = block.delay, None
        plain = block(x)
        block.delay = delay
    assert all(0 < int(plain[0, c, :9].sum()) < 9 for c in range(4))
    for channel, steps in enumerate((0, 1, 2, 3)):
        expected = torch.cat([torch.zeros(steps), plain[0, channel, :12 - steps]])
        assert torch.equal(delayed[0, channel], expected)
    with h5py.File(tmp_path / "d.net", "w") as f:
        block.export_hdf5(f.create_group("0"))
        assert f["0/delay"][()].tolist() == [0.0, 1.0, 2.0, 3.0]
