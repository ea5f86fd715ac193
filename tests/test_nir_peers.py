"""NIR with peer frameworks: snnTorch's and Norse's own exports imported onto Lava, ours loaded there.

Timing: a peer's neuron sees its input within the step; a deployed lava_dl layer sees it one
step later (Lava's synaptic latency), so the output of a network of ``L`` weighted layers on
Lava at step ``t`` is the peer's output at step ``t - L``: comparisons drop the first ``L``
Lava steps and the last ``L`` peer steps. Agreement is the fraction of (sample, neuron, step)
entries that are equal; ``spike_match`` the fraction of spikes present in both.

Neurons: NIR (and Loihi) reset the voltage to 0 when it crosses the threshold (strictly, ``v >
theta``). snnTorch neurons are built with ``reset_mechanism="zero", reset_delay=False``: its
default (subtract the threshold) is not what its NIR export says (``v_reset = 0``) and Loihi's
CUBA cannot do it; ``Synaptic`` with a delayed zero reset holds the voltage at 0 for one more step.
Parameters are per neuron (snnTorch's export of scalar ``beta`` fails nir's type check).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir", reason="the 'nir' package is not installed (pip install lava_dl[nir])")

from lava_dl import netx, slayer  # noqa: E402
from lava_dl import nir as lnir  # noqa: E402

STEPS, BATCH = 80, 4


def _snntorch():
    return pytest.importorskip("snntorch", reason="snnTorch is not installed (pip install lava_dl[peers])")


def _norse():
    return pytest.importorskip("norse.torch", reason="Norse is not installed (pip install norse --no-deps)")


def _agreement(lava: np.ndarray, peer: np.ndarray, layers: int) -> tuple[float, float]:
    a, p = lava[..., layers:], peer[..., : peer.shape[-1] - layers]
    both = np.logical_and(a > 0, p > 0).sum()
    return float((a == p).mean()), float(both / max(1, (a > 0).sum(), (p > 0).sum()))


def _spikes(rng, shape, rate=0.2):
    return (rng.random((BATCH, *shape, STEPS)) < rate).astype(np.float32)


def _lava_layout(x: np.ndarray) -> np.ndarray:
    return x if x.ndim == 3 else x.transpose(0, 3, 2, 1, 4)  # (B, C, H, W, T) -> (B, W, H, C, T)


def _from_lava_layout(y: np.ndarray) -> np.ndarray:
    return y if y.ndim == 3 else y.transpose(0, 3, 2, 1, 4)


def _lava(path, x: np.ndarray) -> np.ndarray:
    kwargs = dict(reset_interval=STEPS, num_workers=1)
    if x.ndim == 5:
        kwargs["input_shape"] = _lava_layout(x).shape[1:-1]
    return _from_lava_layout(netx.simulate(path, _lava_layout(x).astype(np.int32), **kwargs))


# ------------------------------------------------------------------------------------------ snnTorch


def _snn_leaky(snn, shape, beta=0.9, threshold=1.0, output=False):
    return snn.Leaky(
        beta=torch.full(shape, beta),
        threshold=torch.full(shape, threshold),
        init_hidden=True,
        output=output,
        reset_mechanism="zero",
        reset_delay=False,
    )


def _snn_synaptic(snn, n, alpha=0.8, beta=0.9, threshold=1.0, output=False):
    return snn.Synaptic(
        alpha=torch.full((n,), alpha),
        beta=torch.full((n,), beta),
        threshold=torch.full((n,), threshold),
        init_hidden=True,
        output=output,
        reset_mechanism="zero",
        reset_delay=False,
    )


def _snn_dense(snn, bias=False):
    return torch.nn.Sequential(
        torch.nn.Linear(20, 32, bias=bias),
        _snn_leaky(snn, (32,)),
        torch.nn.Linear(32, 8, bias=False),
        _snn_synaptic(snn, 8, output=True),
    )


def _snn_recurrent(snn):
    return torch.nn.Sequential(
        torch.nn.Linear(12, 16),
        snn.RLeaky(
            beta=torch.full((16,), 0.85),
            threshold=torch.full((16,), 1.0),
            linear_features=16,
            init_hidden=True,
            reset_mechanism="zero",
            reset_delay=False,
        ),
        torch.nn.Linear(16, 6, bias=False),
        _snn_leaky(snn, (6,), output=True),
    )


def _snn_conv(snn):
    return torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1, bias=False),
        _snn_leaky(snn, (4, 8, 8), beta=0.8),
        torch.nn.AvgPool2d(2),
        _snn_leaky(snn, (4, 4, 4), beta=0.8, threshold=0.5),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 6, bias=False),
        _snn_leaky(snn, (6,), beta=0.8, output=True),
    )


def _snn_run(net, x: np.ndarray) -> np.ndarray:
    import snntorch.utils

    snntorch.utils.reset(net)
    out = []
    with torch.no_grad():
        for t in range(x.shape[-1]):
            o = net(torch.from_numpy(x[..., t]))
            out.append((o[0] if isinstance(o, tuple) else o).numpy())
    return np.stack(out, -1)


def _snn_export(net, in_shape):
    from snntorch.export_nir import export_to_nir

    return export_to_nir(net, torch.zeros(1, *in_shape), ignore_dims=[0])


def _on_grid(net, bias=False):
    """Parameters on Loihi's grid, so the import is exact: weights (and biases) on multiples of 1/32,
    thresholds on odd multiples of 1/64 (a sum of weights never ties with them), decays on
    multiples of 1/4096."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.weight.copy_(torch.round(m.weight * 32) / 32)
                if m.bias is not None:
                    m.bias.copy_(torch.round(m.bias * 32) / 32 if bias else torch.zeros_like(m.bias))
            if isinstance(getattr(m, "threshold", None), torch.Tensor):
                m.threshold.copy_(torch.round(m.threshold * 32) / 32 + 1 / 64)
            for name in ("alpha", "beta"):
                if hasattr(m, name) and isinstance(getattr(m, name), torch.Tensor):
                    getattr(m, name).copy_(1 - torch.round((1 - getattr(m, name)) * 4096) / 4096)


@pytest.mark.parametrize("case", ["dense", "dense_bias", "recurrent", "conv"])
def test_snntorch_export_imports_onto_lava(case, tmp_path):
    """snnTorch's own NIR export on Lava: exact parameters agree >= 99% with snnTorch's float run."""
    snn = _snntorch()
    torch.manual_seed(3)
    rng = np.random.default_rng(3)
    if case == "conv":
        net, in_shape, layers = _snn_conv(snn), (2, 8, 8), 3
        with torch.no_grad():
            net[0].weight.mul_(4.0)
            net[5].weight.mul_(4.0)
    elif case == "recurrent":
        net, in_shape, layers = _snn_recurrent(snn), (12,), 2
        with torch.no_grad():
            net[0].weight.mul_(2.5)
            net[2].weight.mul_(2.5)
    else:
        net, in_shape, layers = _snn_dense(snn, bias=case == "dense_bias"), (20,), 2
        with torch.no_grad():
            net[0].weight.mul_(2.0)
            net[2].weight.mul_(2.0)
    _on_grid(net, bias=case == "dense_bias")
    graph = _snn_export(net, in_shape)
    result = lnir.from_nir(graph, tmp_path / "snn.net")
    assert result.dt == pytest.approx(1e-4)  # snnTorch's step, read from r = tau / dt
    assert all(r.exact for r in result.report), result.table()
    x = _spikes(rng, in_shape)
    peer = _snn_run(net, x)
    lava = _lava(result.path, x)
    agree, match = _agreement(lava, peer, layers)
    print(f"snnTorch {case}: agreement {agree:.4f}, spikes matched {match:.4f}, rate {peer.mean():.3f}")
    assert 0.02 < peer.mean() < 0.6, "degenerate network"
    assert agree >= 0.99 and match >= 0.95


def _float_dense(snn, seed: int):
    """:func:`_snn_dense` with nn.Linear's own (float) initialisation, weights doubled (more spikes)."""
    torch.manual_seed(seed)
    net = _snn_dense(snn)
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[2].weight.mul_(2.0)
    return net


def test_snntorch_float_export_quantized(tmp_path):
    """A float snnTorch network (nn.Linear's initialisation): 8-bit weights cost agreement, measured.

    The weights are on slayer's even grid at the largest scale (254 / max |w|): a weight moves by
    at most one grid step (balanced rounding), relative ``2 / 254`` of the largest, and each
    neuron's rounding errors sum to at most half a step, ``1 / 254``. Measured agreement on
    these inputs (seeds 0, 1, 2): 0.9868, 0.9904, 0.9852 (nearest rounding: 0.9760, 0.9852,
    0.9812); on 512 other samples per seed 0.968, 0.989, 0.987 (nearest: 0.961, 0.986, 0.983).
    Not 99%: the loss is the 8-bit weights' (``test_float_network_loses_agreement_to_weights_only``);
    the fine-tune (``test_snntorch_import_fine_tuned_in_slayer_deploys_bit_exact``) adds little."""
    snn = _snntorch()
    agreements = []
    step = 2 / 254  # one grid step relative to the largest weight
    for seed in range(3):
        net = _float_dense(snn, seed)
        result = lnir.from_nir(_snn_export(net, (20,)), tmp_path / f"f{seed}.net")
        assert not any(r.exact for r in result.report)
        for r in result.report:
            assert r.weight_error <= step * (1 + 1e-9) and r.row_sum_error <= step / 2 * (1 + 1e-9)
            assert r.tau_mem_error < 1e-3
        x = _spikes(np.random.default_rng(seed), (20,), rate=0.1)
        agreements.append(_agreement(_lava(result.path, x), _snn_run(net, x), 2))
    print("snnTorch float dense (agreement, spikes matched):", [f"{a:.4f}/{m:.4f}" for a, m in agreements])
    assert min(a for a, _ in agreements) >= 0.98


def test_float_network_loses_agreement_to_weights_only(tmp_path):
    """Where the float network's agreement goes: the same deployed integers against two peers,
    the float network and a copy whose weights are the imported ones (``w_int / scale``). The copy
    differs from Lava only by the rounded thresholds and decays and Loihi's truncating decays:
    agreement 0.9992, 0.9992, 0.9992 (seeds 0, 1, 2) against 0.9868, 0.9904, 0.9852 for the float
    network. On 512 other
    samples per seed (measured outside the suite): 0.9975, 0.9993, 0.9967 against 0.968, 0.989,
    0.987; each other ingredient alone (threshold ``rint(theta scale)``, decays ``rint(4096 dt /
    tau)``, truncation) keeps >= 0.9967, the float layer-0 weights alone restore 0.990-0.996,
    9-bit weights (odd integers, which slayer's 8-bit quantizer does not hold) 0.982-0.993."""
    snn = _snntorch()
    for seed in range(3):
        net = _float_dense(snn, seed)
        result = lnir.from_nir(_snn_export(net, (20,)), tmp_path / f"float{seed}.net")
        copy = _snn_dense(snn)
        copy.load_state_dict(net.state_dict())
        with h5py.File(result.path) as f, torch.no_grad():
            for i, linear in enumerate((copy[0], copy[2])):  # unit input gain: real weight w_int / scale
                linear.weight.copy_(torch.from_numpy(f[f"layer/{i}/weight"][()] / result.report[i].scale))
        copied = lnir.from_nir(_snn_export(copy, (20,)), tmp_path / f"copy{seed}.net")
        with h5py.File(result.path) as a, h5py.File(copied.path) as b:
            for key in ("weight", "neuron/vThMant", "neuron/vDecay"):
                assert np.array_equal(a[f"layer/0/{key}"][()], b[f"layer/0/{key}"][()]), key
                assert np.array_equal(a[f"layer/1/{key}"][()], b[f"layer/1/{key}"][()]), key  # one network
        x = _spikes(np.random.default_rng(seed), (20,), rate=0.1)
        lava = _lava(result.path, x)
        agree_float, _ = _agreement(lava, _snn_run(net, x), 2)
        agree_copy, _ = _agreement(lava, _snn_run(copy, x), 2)
        print(f"seed {seed}: Lava vs the float peer {agree_float:.4f}, vs its copy {agree_copy:.4f}")
        assert agree_copy >= 0.99 and agree_copy > agree_float


def test_snntorch_default_subtract_reset_is_not_loihi(tmp_path):
    """snnTorch's default reset subtracts the threshold; its export says v_reset = 0 (documented)."""
    snn = _snntorch()
    torch.manual_seed(3)
    net = _snn_dense(snn)
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[2].weight.mul_(2.0)
    _on_grid(net)
    for m in net.modules():
        if isinstance(m, (snn.Leaky, snn.Synaptic)):
            m.reset_mechanism = "subtract"
    result = lnir.from_nir(_snn_export(net, (20,)), tmp_path / "sub.net")
    x = _spikes(np.random.default_rng(3), (20,))
    agree, _ = _agreement(_lava(result.path, x), _snn_run(net, x), 2)
    print(f"snnTorch subtract reset: agreement {agree:.4f}")
    assert agree < 0.99


# ---------------------------------------------------------------------------------------------- Norse


def _norse_run(model, x: np.ndarray) -> np.ndarray:
    state, out = None, []
    with torch.no_grad():
        for t in range(x.shape[-1]):
            o, state = model(torch.from_numpy(x[..., t]), state)
            out.append(o.numpy())
    return np.stack(out, -1)


@pytest.mark.parametrize("cell", ["LIFBoxCell", "LIFCell"])
def test_norse_export_imports_onto_lava(cell, tmp_path):
    """Norse's own export, repaired with fix_norse (norse#411), on Lava: >= 99% agreement."""
    nt = _norse()
    torch.manual_seed(5)
    dt = 1e-3

    def neuron(n):
        cls = getattr(nt, cell)
        params = dict(  # every parameter per neuron: Norse's export writes them as they are
            tau_mem_inv=torch.full((n,), 1 / 8e-3),
            v_th=torch.full((n,), 1.0 + 1 / 64),
            v_leak=torch.zeros(n),
            v_reset=torch.zeros(n),
        )
        if cell == "LIFCell":
            params["tau_syn_inv"] = torch.full((n,), 1 / 4e-3)
            return cls(nt.LIFParameters(**params), dt=dt)
        return cls(nt.LIFBoxParameters(**params), dt=dt)

    model = nt.SequentialState(
        torch.nn.Linear(20, 32, bias=False), neuron(32), torch.nn.Linear(32, 8, bias=False), neuron(8)
    )
    with torch.no_grad():  # input gain dt / tau_mem = 1/8: weights on multiples of 1/8 import exactly
        for lin in (model[0], model[2]):
            lin.weight.copy_(torch.round(lin.weight * (32.0 if cell == "LIFBoxCell" else 16.0) * 8) / 8)
    graph = nt.to_nir(model, torch.zeros(1, 20), dt=dt)
    with pytest.raises(lnir.NirError, match="tau"):  # tau = dt / tau_mem_inv: below the step
        lnir.from_nir(graph, tmp_path / "raw.net", dt=dt)
    result = lnir.from_nir(lnir.fix_norse(graph, dt=dt), tmp_path / "norse.net")
    assert result.dt == dt and all(r.exact for r in result.report), result.table()
    x = _spikes(np.random.default_rng(5), (20,))
    peer = _norse_run(model, x)
    agree, match = _agreement(_lava(result.path, x), peer, 2)
    print(f"Norse {cell}: agreement {agree:.4f}, spikes matched {match:.4f}, rate {peer.mean():.3f}")
    assert 0.02 < peer.mean() < 0.6, "degenerate network"
    assert agree >= 0.99 and match >= 0.95


# ------------------------------------------------------------------------------------ ours, there


def _slayer_blocks(rng):
    params = dict(threshold=0.6, current_decay=0.25, voltage_decay=0.03)
    blocks = torch.nn.Sequential(
        slayer.block.cuba.Dense(params, 12, 16), slayer.block.cuba.Dense(params, 16, 6)
    )
    with torch.no_grad():
        for p in blocks.parameters():
            if p.ndim > 1:
                p.copy_(torch.from_numpy(rng.normal(0.0, 0.8, p.shape)).float())
        blocks(torch.zeros(1, 12, 4))
    return blocks


def _ours(tmp_path, dt):
    rng = np.random.default_rng(11)
    blocks = _slayer_blocks(rng)
    path = tmp_path / "ours.net"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(blocks):
            block.export_hdf5(layer.create_group(str(i)))
    x = _spikes(rng, (12,), rate=0.3)
    return lnir.to_nir(path, dt=dt), _lava(path, x), x


def test_our_graph_runs_in_snntorch(tmp_path):
    _snntorch()
    from snntorch.import_nir import import_from_nir

    graph, lava, x = _ours(tmp_path, dt=1e-4)  # snnTorch's import assumes dt = 1e-4
    model = import_from_nir(graph)
    state, out = None, []
    with torch.no_grad():
        for t in range(STEPS):
            o, state = model(torch.from_numpy(x[..., t])) if state is None else model(
                torch.from_numpy(x[..., t]), state
            )
            out.append(o.numpy())
    peer = np.stack(out, -1)
    agree, match = _agreement(lava, peer, 2)
    print(f"ours in snnTorch: agreement {agree:.4f}, spikes matched {match:.4f}, rate {lava.mean():.3f}")
    assert lava.mean() > 0.02 and agree >= 0.99


def test_our_graph_runs_in_norse(tmp_path):
    nt = _norse()
    graph, lava, x = _ours(tmp_path, dt=1.0)
    model = nt.from_nir(graph, dt=1.0)
    peer = _norse_run(model, x)
    agree, match = _agreement(lava, peer, 2)
    print(f"ours in Norse: agreement {agree:.4f}, spikes matched {match:.4f}, rate {lava.mean():.3f}")
    assert lava.mean() > 0.02 and agree >= 0.99


# ------------------------------------------------------------------------- quantization-aware fine-tune


def _snn_layers(net, x: np.ndarray) -> list[dict[str, torch.Tensor]]:
    """snnTorch's run, layer by layer: each weighted layer's input spikes, its drive (the
    ``Linear``'s output, the neuron's input) and its neuron's spikes, ``(B, N, T)`` each."""
    import snntorch.utils

    snntorch.utils.reset(net)
    pairs = [(net[i], net[i + 1]) for i in range(0, len(net), 2)]
    trace = [dict(inp=[], drive=[], spikes=[]) for _ in pairs]
    with torch.no_grad():
        for t in range(x.shape[-1]):
            s = torch.from_numpy(x[..., t])
            for layer, (linear, neuron) in zip(trace, pairs):
                drive = linear(s)
                out = neuron(drive)
                layer["inp"].append(s)
                layer["drive"].append(drive)
                s = out[0] if isinstance(out, tuple) else out
                layer["spikes"].append(s)
    return [{k: torch.stack(v, -1) for k, v in layer.items()} for layer in trace]


def _distillation_loss(model, result, layers, band: float = 0.05) -> torch.Tensor:
    """How far slayer's voltages are from the peer's where it matters: near the threshold.

    Each block gets the peer's input spikes (teacher forcing) and its quantized weights' drive
    is compared with the peer's, in slayer's real units (the peer's times the layer's scale /
    64). The difference goes through the block's deployed current and voltage decays and is
    cleared where the peer's neuron spiked (its reset): that is the voltage error a neuron would
    carry into each step with the peer's inputs and resets, linear in the weights. Steps are
    weighted by ``exp(-|v_peer - theta| / (band theta))``, the peer's voltage filtered the same
    way: a spike flips where the voltage is near the threshold. Normalised by ``theta^2``.
    """
    total = torch.zeros(())
    for block, report, layer in zip(model.blocks, result.report, layers):
        neuron = block.neuron
        keep_u = 1.0 - float(np.asarray(neuron.cx_current_decay).mean()) / 4096
        keep_v = 1.0 - float(np.asarray(neuron.cx_voltage_decay).mean()) / 4096
        theta = float(neuron.threshold)
        target = layer["drive"] * (report.scale / lnir.WEIGHT_SCALE)
        error_in = block.synapse(layer["inp"]) - target
        u_err = v_err = u_peer = v_peer = torch.zeros_like(target[..., 0])
        errors, voltages = [], []
        for t in range(target.shape[-1]):
            u_err, u_peer = keep_u * u_err + error_in[..., t], keep_u * u_peer + target[..., t]
            v_err, v_peer = keep_v * v_err + u_err, keep_v * v_peer + u_peer
            errors.append(v_err)
            voltages.append(v_peer)
            kept = 1.0 - layer["spikes"][..., t]
            v_err, v_peer = v_err * kept, v_peer * kept
        weight = torch.exp(-(torch.stack(voltages, -1) - theta).abs() / (band * theta))
        total = total + (weight * torch.stack(errors, -1) ** 2).sum() / weight.sum() / theta**2
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_snntorch_import_fine_tuned_in_slayer_deploys_bit_exact(seed, tmp_path):
    """A float snnTorch network through NIR into slayer (to_slayer), fine-tuned towards snnTorch's
    own voltages (:func:`_distillation_loss` on 256 training samples): slayer's forward
    (quantization-aware) predicts Lava exactly, before and after, and the agreement with
    snnTorch on 512 other samples does not drop. Measured (seeds 0, 1, 2): loss -15%, -18%,
    -16%; held-out agreement 0.9724 -> 0.9732, 0.9890 -> 0.9892, 0.9882 -> 0.9883 (on the 4
    test samples 0.9868, 0.9904, 0.9852 -> 0.9868, 0.9904, 0.9832). Small: the integers can
    only move between grid points, and the best choice of them (exact coordinate descent on the
    same loss, measured outside the suite) gains at most 0.3 points; the gap to 99% is the 8-bit
    weights' (``test_float_network_loses_agreement_to_weights_only``). Plain SGD on the
    straight-through gradient (step: 5% of a grid step for the largest gradient), keeping the
    quantized state of lowest loss: each integer moves by at most two grid steps. (Adam on MSE of
    output spikes lowered the agreement, 0.977 -> 0.947 on seed 0's test input; Adam on this loss
    wanders between grid points and raises it.)"""
    snn = _snntorch()
    peer_net = _float_dense(snn, seed)
    model, result = lnir.to_slayer(_snn_export(peer_net, (20,)), tmp_path / "imported.net")
    x = _spikes(np.random.default_rng(seed), (20,), rate=0.1)
    rng = np.random.default_rng(1000 + seed)
    train = _snn_layers(peer_net, (rng.random((256, 20, STEPS)) < 0.1).astype(np.float32))
    held_out = (np.random.default_rng(2000 + seed).random((512, 20, STEPS)) < 0.1).astype(np.float32)
    peer_held_out = _snn_run(peer_net, held_out)

    def slayer_out(inputs):
        with torch.no_grad():
            return model.eval()(torch.from_numpy(inputs)).numpy()

    before = slayer_out(x)
    assert np.array_equal(before, _lava(result.path, x))
    agree_before = _agreement(slayer_out(held_out), peer_held_out, 2)[0]
    weights = [block.synapse.weight for block in model.blocks]
    loss = _distillation_loss(model, result, train)
    loss.backward()
    grid_step = 2 / lnir.WEIGHT_SCALE
    opt = torch.optim.SGD(weights, lr=0.05 * grid_step / max(float(w.grad.abs().max()) for w in weights))
    loss_before = best_loss = loss.item()
    best = [w.detach().clone() for w in weights]
    for _ in range(150):
        opt.step()
        opt.zero_grad()
        loss = _distillation_loss(model, result, train)
        if loss.item() < best_loss:
            best_loss, best = loss.item(), [w.detach().clone() for w in weights]
        loss.backward()
    with torch.no_grad():
        for w, kept in zip(weights, best):
            w.copy_(kept)
    assert best_loss < loss_before
    model.export_hdf5(tmp_path / "tuned.net")  # raises if the forward clamped a weight
    after = slayer_out(x)
    assert np.array_equal(after, _lava(tmp_path / "tuned.net", x))  # 100% of what slayer predicts for Lava
    agree_after = _agreement(slayer_out(held_out), peer_held_out, 2)[0]
    peer = _snn_run(peer_net, x)
    print(
        f"fine-tune seed {seed}: loss {loss_before:.3e} -> {best_loss:.3e}, held-out agreement with "
        f"snnTorch {agree_before:.4f} -> {agree_after:.4f}; test input "
        f"{_agreement(before, peer, 2)[0]:.4f} -> {_agreement(after, peer, 2)[0]:.4f}"
    )
    with h5py.File(result.path) as a, h5py.File(tmp_path / "tuned.net") as b:
        moved = [a[f"layer/{i}/weight"][()] - b[f"layer/{i}/weight"][()] for i in (0, 1)]
    assert any(np.any(m) for m in moved)  # the integers did move
    assert max(np.abs(m).max() for m in moved) <= 4  # two grid steps at most
    assert agree_after >= agree_before


def test_nested_subgraph_inlined_like_the_flat_graph(tmp_path):
    """A recurrent layer written as a nested NIRGraph (as snnTorch used to) imports like the flat one."""
    rng = np.random.default_rng(2)
    n = 5
    lif = nir.LIF(tau=np.full(n, 4.0), r=np.full(n, 4.0), v_leak=np.zeros(n), v_threshold=np.full(n, 1.0))
    w_rec = nir.Linear(weight=rng.normal(0, 0.3, (n, n)))
    sub = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([n])),
            "lif": lif,
            "w_rec": w_rec,
            "output": nir.Output(output_type=np.array([n])),
        },
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
    )
    w_in = nir.Linear(weight=rng.normal(0, 0.8, (n, 6)))
    nested = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([6])),
            "fc": w_in,
            "rec": sub,
            "output": nir.Output(output_type=np.array([n])),
        },
        edges=[("input", "fc"), ("fc", "rec"), ("rec", "output")],
        type_check=False,
    )
    flat = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([6])),
            "fc": w_in,
            "lif": lif,
            "w_rec": w_rec,
            "output": nir.Output(output_type=np.array([n])),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
        type_check=False,
    )
    a = lnir.from_nir(nested, tmp_path / "nested.net")
    b = lnir.from_nir(flat, tmp_path / "flat.net")
    assert a.report[0].nodes == ("fc", "rec.lif", "rec.w_rec") and a.report[0].record == "dense_rec"
    with h5py.File(a.path) as fa, h5py.File(b.path) as fb:
        for key in ("weight", "weight_rec", "neuron/vThMant", "neuron/vDecay"):
            assert np.array_equal(fa[f"layer/0/{key}"][()], fb[f"layer/0/{key}"][()]), key
