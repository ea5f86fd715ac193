"""NIR in and out (lava_dl.nir): exact round trips of CUBA networks, float graphs, errors."""

from __future__ import annotations

import dataclasses

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


def test_quantize_balances_each_rows_rounding_errors():
    """At scale 2 the even grid is the integers w (integer weight 2 w). Row 0 (w = 100.45, 0.4,
    0.35, 0.3, -0.3): nearest gives 100, 0, 0, 0, 0, errors summing to -1.2 grid steps; the value
    closest to a tie (100.45) rounds up instead: 101, sum -0.2. Row 1 (errors -0.3, +0.2, sum
    -0.1) keeps the nearest integers."""
    w = np.array([[100.45, 0.4, 0.35, 0.3, -0.3], [2.3, 4.8, 0.0, 0.0, 0.0]])
    q = lnir.quantize(w, None, scale=2.0)
    assert q.weight.tolist() == [[202, 0, 0, 0, 0], [4, 10, 0, 0, 0]]
    assert q.report.weight_error == pytest.approx(0.55 / 100.45)  # one weight moved past the tie
    assert q.report.row_sum_error == pytest.approx(0.2 / 100.45)  # |101 - 100.45 - 0.4 - 0.35 - 0.3 + 0.3|
    # a pool's kernel stays one value (nearest): balancing would make its taps differ
    pool = lnir.quantize(np.full((1, 1, 2, 2), 10.4), None, scale=2.0, record="pool")
    assert pool.weight.reshape(-1).tolist() == [20, 20, 20, 20]
    # a balanced weight beyond rtol (0.55 / 2.45 > 0.2) falls back to nearest (0.45 / 2.45 <= 0.2)
    coarse = lnir.quantize(np.array([[2.45, 0.4, 0.35, 0.3]]), None, scale=2.0, rtol=0.2)
    assert coarse.weight.tolist() == [[4, 0, 0, 0]]
    assert "row_sum" in lnir.NirImport(path="", report=[q.report], dt=1.0).table()


def test_error_unsupported_node(tmp_path):
    @dataclasses.dataclass(eq=False)
    class Softmax(nir.NIRNode):
        axis: int = 0

        def __post_init__(self):
            self.input_type = {"input": np.array([3])}
            self.output_type = {"output": np.array([3])}

    graph = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((3, 4))), Softmax(), type_check=False)
    with pytest.raises(lnir.NirError, match="node 'softmax'.*Softmax nodes are not supported"):
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


# ------------------------------------------------------------------ graphs with skip connections


def _reference(graph, x: np.ndarray) -> np.ndarray:
    """NIR's meaning, stepped in float64 with dt = 1: a node's inputs are summed, edges act within
    the step, IF integrates ``r * input`` and resets to 0 when ``v > v_threshold``, Threshold
    is ``input > threshold``, Delay holds whole steps. ``x``: ``(*input shape, steps)``; returns
    ``(*output shape, steps)``."""
    order, pending = [], dict(graph.nodes)
    while pending:
        for name in list(pending):
            if all(a in order for a, b in graph.edges if b == name):
                order.append(name)
                del pending[name]
    state = {n: 0.0 for n in order}
    history: dict[str, list] = {n: [] for n in order}
    out = []
    for t in range(x.shape[-1]):
        value = {}
        for name in order:
            node = graph.nodes[name]
            kind = type(node).__name__
            inp = sum(value[a] for a, b in graph.edges if b == name) if kind != "Input" else x[..., t]
            if kind in ("Input", "Output"):
                value[name] = inp
            elif kind == "Linear":
                value[name] = node.weight @ inp
            elif kind == "Affine":
                value[name] = node.weight @ inp + node.bias
            elif kind == "Scale":
                value[name] = node.scale * inp
            elif kind == "Flatten":
                value[name] = np.asarray(inp).reshape(-1)
            elif kind == "Threshold":
                value[name] = (inp > node.threshold).astype(np.float64)
            elif kind == "Conv1d":
                conv = torch.nn.functional.conv1d(
                    torch.from_numpy(np.asarray(inp, np.float64)[None]),
                    torch.from_numpy(node.weight),
                    padding=node.padding,
                )
                value[name] = conv[0].numpy()
            elif kind == "Conv2d":
                conv = torch.nn.functional.conv2d(
                    torch.from_numpy(np.asarray(inp, np.float64)[None]),
                    torch.from_numpy(node.weight),
                    padding=tuple(node.padding),
                )
                value[name] = conv[0].numpy()
            elif kind == "IF":
                v = state[name] + node.r * inp
                spikes = v > node.v_threshold
                state[name] = np.where(spikes, 0.0, v)
                value[name] = spikes.astype(np.float64)
            elif kind == "Delay":
                steps = int(np.asarray(node.delay).reshape(-1)[0])
                history[name].append(inp)
                value[name] = history[name][-1 - steps] if len(history[name]) > steps else 0.0 * inp
            else:
                raise AssertionError(kind)
        out.append(value["output"])
    return np.stack(out, axis=-1)


def _if(shape, threshold):
    return nir.IF(r=np.ones(shape), v_threshold=np.full(shape, threshold), v_reset=np.zeros(shape))


def _grid(rng, shape):
    """Weights on slayer's grid (multiples of 1/64), so that the import is exact."""
    return rng.integers(-40, 80, shape) / 64


def _skip_graph(kind: str):
    """Three IF layers: ``if1 -> w2 -> if2 -> w3 -> if3`` plus ``if1 -> w3s -> if3`` (``skip``),
    the same with a 2-step Delay on the skip edge (``skip_delay``), or two parallel branches
    ``if1 -> a``, ``if1 -> b`` summed into ``if3`` (``branches``)."""
    rng = np.random.default_rng(5)
    nodes = {
        "input": nir.Input(input_type=np.array([6])),
        "w1": nir.Linear(weight=_grid(rng, (8, 6))),
        "if1": _if(8, 0.75),
        "w2": nir.Linear(weight=_grid(rng, (8, 8))),
        "if2": _if(8, 0.5),
        "w3": nir.Linear(weight=_grid(rng, (5, 8))),
        "w3s": nir.Linear(weight=_grid(rng, (5, 8))),
        "if3": _if(5, 0.5),
        "output": nir.Output(output_type=np.array([5])),
    }
    main = [("input", "w1"), ("w1", "if1"), ("if1", "w2"), ("w2", "if2"), ("w3", "if3"), ("w3s", "if3")]
    main.append(("if3", "output"))
    if kind == "skip":
        edges = main + [("if2", "w3"), ("if1", "w3s")]
    elif kind == "skip_delay":
        nodes["d"] = nir.Delay(delay=np.full(8, 2.0))
        edges = main + [("if2", "w3"), ("if1", "d"), ("d", "w3s")]
    else:
        nodes["w3b"] = nir.Linear(weight=_grid(rng, (8, 8)))
        nodes["if3b"] = _if(8, 0.5)
        edges = main + [("if1", "w3b"), ("w3b", "if3b"), ("if3b", "w3s"), ("if2", "w3")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1.0}, type_check=False)


@pytest.mark.parametrize(
    "kind, records",
    [
        ("skip", ["dense", "dense", "concat", "dense", "concat", "dense"]),
        ("skip_delay", ["dense", "dense", "concat", "dense", "concat", "dense"]),
        ("branches", ["dense", "dense", "concat", "dense", "concat", "dense"]),
    ],
)
def test_skip_connection_imports_and_lava_sums_like_nir(kind, records, tmp_path):
    graph = _skip_graph(kind)
    result = lnir.from_nir(graph, tmp_path / "skip.net")
    with h5py.File(result.path) as f:
        assert [f["layer"][str(i)]["type"][0].decode() for i in range(len(f["layer"]))] == records
        if kind != "branches":  # the relay (layer 3) holds if1 back: 1 step + its axonal delay
            if kind == "skip":
                assert "delay" not in f["layer/3"]
            else:
                assert f["layer/3/delay"][()].tolist() == [2] * 8
            assert f["layer/2/layers"][()].tolist() == [1, 0]
    assert all(r.exact for r in result.report)
    rng = np.random.default_rng(1)
    x = (rng.random((3, 6, STEPS)) < 0.4).astype(np.int32)
    lava = netx.simulate(result.path, x, reset_interval=STEPS, num_workers=1)
    expected = np.stack([_reference(graph, s) for s in x])
    assert expected.sum() > 20
    # three layers deep: Lava's output at step t is NIR's at t - 3
    assert np.array_equal(lava[..., 3:], expected[..., : STEPS - 3])


def test_conv_skip_connection_matches_nir(tmp_path):
    rng = np.random.default_rng(6)

    def conv(c_out, c_in):
        w = _grid(rng, (c_out, c_in, 3, 3))
        return nir.Conv2d(
            input_shape=(6, 6), weight=w, stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(c_out)
        )

    nodes = {
        "input": nir.Input(input_type=np.array([2, 6, 6])),
        "c1": conv(3, 2),
        "n1": _if((3, 6, 6), 0.75),
        "c2": conv(3, 3),
        "n2": _if((3, 6, 6), 0.5),
        "c3": conv(4, 3),
        "c3s": conv(4, 3),
        "n3": _if((4, 6, 6), 0.5),
        "output": nir.Output(output_type=np.array([4, 6, 6])),
    }
    edges = [("input", "c1"), ("c1", "n1"), ("n1", "c2"), ("c2", "n2"), ("n2", "c3"), ("c3", "n3")]
    edges += [("n1", "c3s"), ("c3s", "n3"), ("n3", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1.0}, type_check=False)
    result = lnir.from_nir(graph, tmp_path / "conv_skip.net")
    x = (rng.random((2, 2, 6, 6, STEPS)) < 0.4).astype(np.int32)
    lava_x = x.transpose(0, 3, 2, 1, 4)
    lava = netx.simulate(
        result.path, lava_x, reset_interval=STEPS, num_workers=1, input_shape=lava_x.shape[1:-1]
    )
    expected = np.stack([_reference(graph, s) for s in x]).transpose(0, 3, 2, 1, 4)
    assert expected.sum() > 100
    assert np.array_equal(lava[..., 3:], expected[..., : STEPS - 3])


def test_skip_connection_errors(tmp_path):
    graph = _skip_graph("skip")
    lnir.from_nir(graph, tmp_path / "s.net")
    with pytest.raises(lnir.NirError, match="layer 2, parameter 'type': a concat record has no exact NIR"):
        lnir.to_nir(tmp_path / "s.net")
    edges = [e for e in graph.edges if e != ("if1", "w3s")] + [("input", "w3s")]
    graph.nodes["w3s"] = nir.Linear(weight=np.ones((5, 6)))
    from_input = nir.NIRGraph(nodes=graph.nodes, edges=edges, metadata={"dt": 1.0}, type_check=False)
    with pytest.raises(lnir.NirError, match="node 'w3s'.*skip connection .* from the graph Input"):
        lnir.from_nir(from_input, tmp_path / "x.net")


@pytest.mark.parametrize("kind", ["skip", "skip_delay", "branches", "conv"])
def test_skip_connection_to_slayer_equals_lava_and_fine_tunes(kind, tmp_path):
    """to_slayer on a graph with joins: slayer's output is the Lava run's (``netx.simulate``) exactly,
    before and after a few quantization-aware fine-tuning steps (exported with the clamped weights
    the forward used)."""
    if kind == "conv":
        rng = np.random.default_rng(6)
        nodes = {
            "input": nir.Input(input_type=np.array([2, 6, 6])),
            "output": nir.Output(output_type=np.array([3, 6, 6])),
        }
        for name, c_out, c_in, threshold in (
            ("1", 3, 2, 0.75), ("2", 3, 3, 0.5), ("3", 3, 3, 0.5), ("3s", 3, 3, 0.5)
        ):
            nodes[f"c{name}"] = nir.Conv2d(
                input_shape=(6, 6), weight=_grid(rng, (c_out, c_in, 3, 3)), stride=1, padding=1, dilation=1,
                groups=1, bias=np.zeros(c_out),
            )
            if name != "3s":
                nodes[f"n{name}"] = _if((c_out, 6, 6), threshold)
        edges = [("input", "c1"), ("c1", "n1"), ("n1", "c2"), ("c2", "n2"), ("n2", "c3"), ("c3", "n3")]
        edges += [("n1", "c3s"), ("c3s", "n3"), ("n3", "output")]
        graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1.0}, type_check=False)
        x = (rng.random((2, 2, 6, 6, STEPS)) < 0.4).astype(np.float32)
        lava_x = x.transpose(0, 3, 2, 1, 4)  # N, C, H, W, T -> Lava's N, W, H, C, T
        kwargs = dict(input_shape=lava_x.shape[1:-1])
    else:
        graph = _skip_graph(kind)
        x = (np.random.default_rng(1).random((3, 6, STEPS)) < 0.4).astype(np.float32)
        lava_x, kwargs = x, {}
    for node in graph.nodes.values():  # even integers: what slayer's 8-bit quantizer represents
        if isinstance(node, (nir.Linear, nir.Conv2d)):
            node.weight = 2 * np.round(node.weight * 32) / 64
    net, result = lnir.to_slayer(graph, tmp_path / "skip.net")
    assert "Concat" in [type(b).__name__ for b in net.blocks]

    def slayer_out() -> np.ndarray:
        with torch.no_grad():
            y = net.eval()(torch.from_numpy(x)).numpy()
        return y if y.ndim == 3 else y.transpose(0, 3, 2, 1, 4)

    def lava_out(path) -> np.ndarray:
        lava_in = lava_x.astype(np.int32)
        return netx.simulate(str(path), lava_in, reset_interval=STEPS, num_workers=1, **kwargs)

    before = slayer_out()
    assert before.sum() > 10
    assert np.array_equal(before, lava_out(result.path))

    optimizer = torch.optim.Adam(net.parameters(), lr=0.02)
    net.train()
    for _ in range(5):  # towards a rate of one half everywhere
        optimizer.zero_grad()
        (net(torch.from_numpy(x)) - 0.5).square().mean().backward()
        optimizer.step()
    tuned = tmp_path / "tuned.net"
    net.export_hdf5(tuned, clip_weights=True)
    with h5py.File(result.path) as a, h5py.File(tuned) as b:
        assert any(not np.array_equal(a[f"layer/{i}/weight"][()], b[f"layer/{i}/weight"][()])
                   for i in range(len(a["layer"])) if "weight" in a[f"layer/{i}"])  # the integers moved
    after = slayer_out()
    assert after.sum() > 0
    assert np.array_equal(after, lava_out(tuned))


# ------------------------------------------------------------- Conv1d, Scale, Threshold, v_reset, bias


def _chain(*nodes, in_shape, out_shape):
    """``input -> nodes[0] -> ... -> output`` named n0, n1, ... (types not checked)."""
    named = {"input": nir.Input(input_type=np.array(in_shape))}
    named.update({f"n{i}": node for i, node in enumerate(nodes)})
    named["output"] = nir.Output(output_type=np.array(out_shape))
    order = list(named)
    edges = list(zip(order[:-1], order[1:]))
    return nir.NIRGraph(nodes=named, edges=edges, metadata={"dt": 1.0}, type_check=False)


def _lava_vs_reference(graph, result, x, lava_x, layers, **kwargs):
    lava = netx.simulate(result.path, lava_x, reset_interval=STEPS, num_workers=1, **kwargs)
    expected = np.stack([_reference(graph, s) for s in x])
    assert expected.sum() > 10
    assert np.array_equal(lava[..., layers:], expected[..., : STEPS - layers])


def test_threshold_maps_onto_a_cuba_neuron_without_state(tmp_path):
    rng = np.random.default_rng(11)
    graph = _chain(
        nir.Linear(weight=_grid(rng, (7, 6))),
        nir.Threshold(threshold=np.full(7, 0.5)),
        nir.Linear(weight=_grid(rng, (4, 7))),
        _if(4, 0.75),
        in_shape=[6],
        out_shape=[4],
    )
    result = lnir.from_nir(graph, tmp_path / "th.net")
    with h5py.File(result.path) as f:
        neuron = f["layer/0/neuron"]
        assert (neuron["iDecay"][()], neuron["vDecay"][()], neuron["vThMant"][()]) == (4096, 4096, 32)
    x = (rng.random((3, 6, STEPS)) < 0.5).astype(np.int32)
    _lava_vs_reference(graph, result, x, x, 2)


def test_threshold_after_a_neuron_is_an_error(tmp_path):
    graph = _chain(
        nir.Linear(weight=np.ones((3, 4))),
        _if(3, 0.5),
        nir.Threshold(threshold=np.full(3, 0.5)),
        nir.Linear(weight=np.ones((2, 3))),
        _if(2, 0.5),
        in_shape=[4],
        out_shape=[2],
    )
    with pytest.raises(lnir.NirError, match="node 'n2'.*Threshold node before 'n3'"):
        lnir.from_nir(graph, tmp_path / "x.net")


def test_scale_folds_into_the_weights(tmp_path):
    rng = np.random.default_rng(12)
    w1, w2 = _grid(rng, (6, 5)), _grid(rng, (3, 6))
    graph = _chain(
        nir.Scale(scale=np.array([1.0, 0.5, -1.0, 1.0, 0.5])),
        nir.Linear(weight=w1),
        nir.Scale(scale=np.full(6, 2.0)),
        _if(6, 0.75),
        nir.Linear(weight=w2),
        _if(3, 0.5),
        in_shape=[5],
        out_shape=[3],
    )
    result = lnir.from_nir(graph, tmp_path / "scale.net")
    assert result.report[0].exact
    with h5py.File(result.path) as f:
        folded = f["layer/0/weight"][()]
    expected = np.rint(w1 * 64).astype(int) * np.array([2, 1, -2, 2, 1])  # 2 * row, column scale
    assert folded.tolist() == expected.tolist()
    x = (rng.random((3, 5, STEPS)) < 0.5).astype(np.int32)
    _lava_vs_reference(graph, result, x, x, 2)


def test_scale_errors(tmp_path):
    graded = _chain(
        nir.Linear(weight=np.ones((3, 4))),
        _if(3, 0.5),
        nir.Scale(scale=np.full(3, 2.0)),
        in_shape=[4],
        out_shape=[3],
    )
    with pytest.raises(lnir.NirError, match="node 'n2'.*Scale node that is part of no layer"):
        lnir.from_nir(graded, tmp_path / "x.net")
    conv = nir.Conv2d(
        input_shape=(4, 4), weight=np.ones((2, 1, 3, 3)), stride=1, padding=1, dilation=1, groups=1, bias=None
    )
    per_pixel = _chain(
        nir.Scale(scale=np.arange(16.0).reshape(1, 4, 4)),
        conv,
        _if((2, 4, 4), 0.5),
        in_shape=[1, 4, 4],
        out_shape=[2, 4, 4],
    )
    with pytest.raises(lnir.NirError, match="node 'n0', parameter 'scale': differs within a channel"):
        lnir.from_nir(per_pixel, tmp_path / "x.net")


def test_conv1d_runs_as_a_conv_record_with_unit_width(tmp_path):
    rng = np.random.default_rng(13)
    conv = nir.Conv1d(
        input_shape=10, weight=_grid(rng, (3, 2, 3)), stride=1, padding=1, dilation=1, groups=1, bias=None
    )
    graph = _chain(
        conv,
        _if((3, 10), 0.5),
        nir.Flatten(input_type={"input": np.array([3, 10])}, start_dim=0),
        nir.Linear(weight=_grid(rng, (4, 30))),
        _if(4, 0.5),
        in_shape=[2, 10],
        out_shape=[4],
    )
    result = lnir.from_nir(graph, tmp_path / "c1.net")
    with h5py.File(result.path) as f:
        assert f["layer/1/weight"].shape == (3, 2, 3, 1) and f["layer/1/shape"][()].tolist() == [3, 10, 1]
    x = (rng.random((3, 2, 10, STEPS)) < 0.4).astype(np.int32)
    lava_x = x[:, :, :, None].transpose(0, 3, 2, 1, 4)  # (C, N) as (C, N, 1), Lava's (x, y, c)
    _lava_vs_reference(graph, result, x, lava_x, 2, input_shape=lava_x.shape[1:-1])


def test_conv1d_error(tmp_path):
    conv = nir.Conv1d(
        input_shape=10, weight=np.ones((3, 2, 4)), stride=1, padding="same", dilation=1, groups=1, bias=None
    )
    graph = _chain(conv, _if((3, 10), 0.5), in_shape=[2, 10], out_shape=[3, 10])
    with pytest.raises(lnir.NirError, match="node 'n0', parameter 'padding'.*odd kernels"):
        lnir.from_nir(graph, tmp_path / "x.net")


def _lif(n, tau, v_reset):
    return nir.LIF(
        tau=np.full(n, tau),
        r=np.full(n, tau),
        v_leak=np.zeros(n),
        v_threshold=np.full(n, 0.5),
        v_reset=np.full(n, v_reset),
    )


def test_v_reset(tmp_path):
    w = nir.Linear(weight=np.full((3, 4), 0.25))
    zero = lnir.from_nir(_chain(w, _lif(3, 1.0, 0.0), in_shape=[4], out_shape=[3]), tmp_path / "a.net")
    # tau = dt: the voltage is rewritten every step, so the reset value never shows
    other = lnir.from_nir(_chain(w, _lif(3, 1.0, 0.3), in_shape=[4], out_shape=[3]), tmp_path / "b.net")
    _same_records(zero.path, other.path)
    with h5py.File(other.path) as f:
        assert f["layer/0/neuron/vDecay"][()] == 4096
    with pytest.raises(lnir.NirError, match="node 'n1', parameter 'v_reset'"):
        lnir.from_nir(_chain(w, _lif(3, 4.0, 0.3), in_shape=[4], out_shape=[3]), tmp_path / "c.net")


def test_synapse_bias(tmp_path):
    affine = nir.Affine(weight=np.full((3, 4), 0.25), bias=np.full(3, 0.125))
    result = lnir.from_nir(_chain(affine, _if(3, 1.0), in_shape=[4], out_shape=[3]), tmp_path / "a.net")
    with h5py.File(result.path) as f:
        assert f["layer/0/bias"][()].tolist() == [8, 8, 8] and f["layer/0/neuron/vThMant"][()] == 64
    cuba = nir.CubaLIF(
        tau_syn=np.full(3, 3.0),
        tau_mem=np.full(3, 4.0),
        r=np.full(3, 4.0),
        v_leak=np.zeros(3),
        v_threshold=np.ones(3),
        w_in=np.full(3, 3.0),
    )
    with pytest.raises(lnir.NirError, match=r"node 'n0', parameter 'bias'.*\(tau_syn > dt\)"):
        lnir.from_nir(_chain(affine, cuba, in_shape=[4], out_shape=[3]), tmp_path / "b.net")
