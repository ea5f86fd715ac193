"""NIR in and out (lava_dl.nir): exact round trips of CUBA networks, float graphs, errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir", reason="the 'nir' package is not installed (pip install lava_dl[nir])")

from lava_dl import netx, slayer  # noqa: E402
from lava_dl import nir as lnir  # noqa: E402

STEPS = 24
PARAMS = dict(threshold=0.6, current_decay=0.25, voltage_decay=0.03)


def _randomise(blocks, rng):
    with torch.no_grad():
        for block in blocks:
            if isinstance(block, slayer.block.cuba.Pool):  # NIR's SumPool2d: one weight for every tap
                continue
            for name, p in block.named_parameters():
                if "weight" in name:
                    p.copy_(torch.from_numpy(rng.normal(0.0, 0.8, p.shape)).float())


def _run(blocks, in_shape, rng):
    x = torch.from_numpy((rng.random((1, *in_shape, STEPS)) < 0.3).astype(np.float32))
    with torch.no_grad():
        for block in blocks:
            x_out = block(x)
            x = x_out
    return x


def _export(blocks, path):
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(blocks):
            block.export_hdf5(layer.create_group(str(i)))


def _records(path):
    """Every dataset of every record as float64 values, neuron-less input records left out."""
    out = []
    with h5py.File(path, "r") as f:
        for i in range(len(f["layer"])):
            group = f["layer"][str(i)]
            if group["type"][0] == b"input" and "neuron" not in group:
                continue
            values = {}
            group.visititems(
                lambda name, obj, values=values: (
                    values.__setitem__(
                        name, obj[()] if obj.dtype.kind in "OS" else np.asarray(obj[()], np.float64)
                    )
                    if isinstance(obj, h5py.Dataset)
                    else None
                )
            )
            out.append(values)
    return out


def _same_records(a, b):
    ra, rb = _records(a), _records(b)
    assert len(ra) == len(rb)
    for x, y in zip(ra, rb):
        assert sorted(x) == sorted(y)
        for key in x:
            assert np.array_equal(np.asarray(x[key]), np.asarray(y[key])), key


def _lava_layout(x: np.ndarray) -> np.ndarray:
    return x if x.ndim == 2 else x.transpose(2, 1, 0, 3)


def _round_trip(blocks, in_shape, tmp_path, seed):
    rng = np.random.default_rng(seed)
    _randomise(blocks, rng)
    _run(blocks, in_shape, rng)
    original = tmp_path / "original.net"
    _export(blocks, original)
    graph = lnir.to_nir(blocks)
    assert lnir.to_nir(original).edges == graph.edges  # blocks and the file give one graph
    nir.write(tmp_path / "net.nir", graph)
    result = lnir.from_nir(tmp_path / "net.nir", tmp_path / "back.net")
    assert all(
        r.exact and r.scale == 64 and r.weight_error == 0 and r.threshold_error == 0 for r in result.report
    )
    _same_records(original, result.path)
    x = (rng.random((3, *in_shape, STEPS)) < 0.3).astype(np.int32)
    x = np.stack([_lava_layout(s) for s in x])
    kwargs = dict(reset_interval=STEPS, num_workers=1)
    if len(in_shape) == 3:
        kwargs["input_shape"] = x.shape[1:-1]
    a = netx.simulate(original, x, **kwargs)
    b = netx.simulate(result.path, x, **kwargs)
    assert a.sum() > 0, "degenerate network: no output spikes"
    assert np.array_equal(a, b)
    return graph, result


@pytest.mark.parametrize(
    "params, nodes",
    [
        (PARAMS, {"CubaLIF"}),
        (dict(threshold=0.6, current_decay=1.0, voltage_decay=0.1), {"LIF"}),
        (dict(threshold=0.6, current_decay=1.0, voltage_decay=0.0), {"IF"}),
        (dict(threshold=0.6, current_decay=0.0, voltage_decay=0.2), {"I", "LIF"}),
    ],
)
def test_dense_round_trip(params, nodes, tmp_path):
    blocks = torch.nn.Sequential(
        slayer.block.cuba.Dense(params, 12, 16), slayer.block.cuba.Dense(params, 16, 6)
    )
    graph, _ = _round_trip(blocks, (12,), tmp_path, 1)
    kinds = {type(n).__name__ for n in graph.nodes.values()}
    assert nodes <= kinds and graph.metadata["dt"] == 1.0


def test_conv_pool_flatten_dense_round_trip(tmp_path):
    blocks = torch.nn.Sequential(
        slayer.block.cuba.Conv(PARAMS, 2, 4, 3, padding=1),
        slayer.block.cuba.Pool(PARAMS, 2),
        slayer.block.cuba.Flatten(),
        slayer.block.cuba.Dense(PARAMS, 4 * 4 * 4, 8, delay=True),
        slayer.block.cuba.Dense(PARAMS, 8, 5),
    )
    with torch.no_grad():
        blocks[3].delay.delay.copy_(
            torch.arange(8, dtype=torch.float32).reshape(blocks[3].delay.delay.shape) % 3
        )
    graph, result = _round_trip(blocks, (2, 8, 8), tmp_path, 2)
    assert {"Conv2d", "SumPool2d", "Flatten", "Delay"} <= {type(n).__name__ for n in graph.nodes.values()}
    assert [r.record for r in result.report] == ["conv", "pool", "dense", "dense"]


def test_recurrent_round_trip(tmp_path):
    blocks = torch.nn.Sequential(
        slayer.block.cuba.Dense(PARAMS, 10, 12),
        slayer.block.cuba.Recurrent(PARAMS, 12, 8),
        slayer.block.cuba.Dense(PARAMS, 8, 4),
    )
    graph, result = _round_trip(blocks, (10,), tmp_path, 3)
    assert ("layer1_cubalif", "layer1_rec") in graph.edges and ("layer1_rec", "layer1_cubalif") in graph.edges
    assert result.report[1].record == "dense_rec"


def _float_graph(threshold=0.7, weight_scale=1.0, tau_syn=3.3):
    rng = np.random.default_rng(7)
    w1 = rng.normal(0, 0.5, (16, 10)) * weight_scale
    w2 = rng.normal(0, 0.5, (5, 16))

    def lif(n, th):
        return nir.CubaLIF(
            tau_syn=np.full(n, tau_syn),
            tau_mem=np.full(n, 7.1),
            r=np.full(n, 7.0),
            v_leak=np.zeros(n),
            v_threshold=np.full(n, th),
            w_in=np.full(n, 4.0),
        )

    return nir.NIRGraph.from_list(
        nir.Affine(weight=w1, bias=np.zeros(16)), lif(16, threshold), nir.Linear(weight=w2), lif(5, 0.2)
    )


def test_float_graph_imports_quantized_and_slayer_matches_lava(tmp_path):
    graph = _float_graph()
    net, result = lnir.to_slayer(graph, tmp_path / "float.net")
    assert [r.exact for r in result.report] == [False, False]
    for r in result.report:
        assert 0 < r.weight_error < 0.01 and r.threshold_error < 0.01 and r.tau_syn_error < 0.01
    assert "weight" in result.table()
    with h5py.File(result.path) as f:
        neuron = f["layer/0/neuron"]
        assert neuron["iDecay"][()] == round(4096 / 3.3) and neuron["vDecay"][()] == round(4096 / 7.1)
    rng = np.random.default_rng(0)
    x = (rng.random((1, 10, STEPS)) < 0.5).astype(np.float32)
    with torch.no_grad():
        y = net.eval()(torch.from_numpy(x))[0].numpy()
    lava = netx.simulate(result.path, x[0].astype(np.int32), reset_interval=STEPS, num_workers=1)
    assert y.sum() > 0
    assert np.array_equal(y, lava)


def test_quantize_float_to_integers():
    q = lnir.quantize(np.array([[0.5, -0.25], [1.0, 0.1]]), 2.0, tau_syn=np.inf, tau_mem=4.0, dt=1.0)
    assert q.report.scale == pytest.approx(254.0) and not q.report.exact
    assert q.i_decay == 0 and q.v_decay == 1024 and q.v_th_mant == 508
    assert np.all(q.weight % 2 == 0) and q.weight.max() == 254
    exact = lnir.quantize(np.array([[10 / 64, -4 / 64]]), 80 / 64, tau_syn=4.0, tau_mem=4096 / 123)
    assert exact.report.exact and exact.weight.tolist() == [[10, -4]] and exact.v_th_mant == 80


def test_error_unsupported_node(tmp_path):
    graph = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((3, 4))), nir.Threshold(threshold=np.ones(3)))
    with pytest.raises(lnir.NirError, match="Threshold"):
        lnir.from_nir(graph, tmp_path / "x.net")


def test_error_threshold_out_of_range(tmp_path):
    with pytest.raises(lnir.NirError, match="v_threshold"):
        lnir.from_nir(_float_graph(threshold=-1.0), tmp_path / "x.net")
    with pytest.raises(lnir.NirError, match="v_threshold"):  # below the weights' resolution
        lnir.from_nir(_float_graph(threshold=1e-5), tmp_path / "x.net")


def test_error_weights_beyond_8_bits(tmp_path):
    with pytest.raises(lnir.NirError, match="parameter 'weight'.*8 bits"):
        lnir.from_nir(_float_graph(threshold=50.0, weight_scale=1e-3), tmp_path / "x.net")
    with pytest.raises(lnir.NirError, match="beyond the 8-bit range"):
        lnir.quantize(np.array([[5.0]]), 1.0, scale=64.0)


def test_error_decay_and_cycles(tmp_path):
    with pytest.raises(lnir.NirError, match="tau_syn"):
        lnir.from_nir(_float_graph(tau_syn=0.5), tmp_path / "x.net")
    lif = nir.LIF(tau=np.full(3, 4.0), r=np.full(3, 4.0), v_leak=np.zeros(3), v_threshold=np.ones(3))
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([4])),
            "w": nir.Linear(weight=np.ones((3, 4))),
            "lif": lif,
            "output": nir.Output(output_type=np.array([3])),
        },
        edges=[("input", "w"), ("w", "lif"), ("lif", "lif"), ("lif", "output")],
        type_check=False,
    )
    with pytest.raises(lnir.NirError, match="cycle"):
        lnir.from_nir(graph, tmp_path / "x.net")


def test_error_non_cuba_family_export(tmp_path):
    alif = dict(
        threshold=1.0,
        threshold_step=0.5,
        current_decay=0.25,
        voltage_decay=0.03,
        threshold_decay=0.1,
        refractory_decay=0.1,
    )
    blocks = torch.nn.Sequential(slayer.block.cuba.Dense(PARAMS, 6, 5), slayer.block.alif.Dense(alif, 5, 3))
    _run(blocks, (6,), np.random.default_rng(0))
    with pytest.raises(lnir.NirError, match=r"block 1 \(.*alif.Dense\).*adaptation"):
        lnir.to_nir(blocks)
    sdnn = dict(threshold=0.1, tau_grad=0.5, scale_grad=1.0, activation=torch.nn.functional.relu)
    path = tmp_path / "sd.net"
    sd_blocks = torch.nn.Sequential(slayer.block.sigma_delta.Dense(sdnn, 6, 4))
    _run(sd_blocks, (6,), np.random.default_rng(0))
    _export(sd_blocks, path)
    with pytest.raises(lnir.NirError, match="layer 0.*neuron/type.*sigma-delta"):
        lnir.to_nir(path)


def test_module_imports_nothing_heavy():
    import subprocess
    import sys

    code = "import sys, lava_dl.nir; print(sorted(m for m in ('nir', 'torch', 'lava') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]
