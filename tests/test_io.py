"""slayer.io (events, lava-dl's spike files, tensors, tonic) and slayer.plot.

Expectations are hand-built byte strings and arrays. A second group checks the same
files and tensors against lava-dl 0.6.0's own ``slayer.io`` when its wheel is available
(``benchmarks/_lava_dl_ref.py``), and skips with the reason otherwise.
"""

from __future__ import annotations

import importlib.util
import pathlib

import matplotlib
import numpy as np
import pytest
import torch

from lava_dl import slayer
from lava_dl.slayer import io, plot

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ------------------------------------------------------------------ Event
def test_registered_in_slayer():
    assert slayer.io is io and slayer.plot is plot


def test_event_keeps_channels_and_caller_arrays():
    c = np.array([1, 1, 1])
    event = io.Event(np.array([0, 1, 2]), None, c, [0.5, 1.0, 2.0])
    assert event.dim == 1 and event.y is None and not event.graded and event.p is None
    np.testing.assert_array_equal(event.c, [1, 1, 1])  # lava-dl would have shifted them to 0
    np.testing.assert_array_equal(c, [1, 1, 1])
    assert len(event) == 3


def test_event_converts_whole_floats_and_torch():
    event = io.Event(torch.tensor([1.0, 2.0]), np.array([3.0, 4.0]), [True, False], torch.tensor([0, 5]))
    assert event.x.dtype == np.int64 and event.y.dtype == np.int64 and event.c.dtype == np.int64
    np.testing.assert_array_equal(event.x, [1, 2])
    np.testing.assert_array_equal(event.y, [3, 4])
    np.testing.assert_array_equal(event.c, [1, 0])
    np.testing.assert_array_equal(event.t, [0, 5])


@pytest.mark.parametrize(
    "args, message",
    [
        (([0, 1], None, [0], [0, 1]), "lengths"),
        (([0.5, 1], None, [0, 0], [0, 1]), "x must hold integers; entry 0 is 0.5"),
        (([0, 1], [0, 1.25], [0, 0], [0, 1]), "y must hold integers; entry 1"),
        (([0, 1], None, [0, 0], [0, np.nan]), "t must be finite; entry 1"),
        (([[0, 1]], None, [0, 0], [0, 1]), "one-dimensional"),
        (([0, 1], None, [0, 0], [0, 1], [1.0]), "lengths"),
    ],
)
def test_event_rejects_bad_arrays(args, message):
    with pytest.raises(ValueError, match=message):
        io.Event(*args)


def test_empty_event():
    event = io.Event([], [], [], [])
    assert len(event) == 0
    np.testing.assert_array_equal(event.to_tensor(dim=(2, 3, 4, 5)), np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="pass dim"):
        event.to_tensor()


# ------------------------------------------------------------ to/fill tensor
def test_to_tensor_1d_infers_shape_and_rounds_half_even():
    # bins: round(0)=0, round(1.4)=1, round(2.5)=2 (half to even), round(3.5)=4
    event = io.Event([0, 2, 2, 1], None, [0, 0, 1, 0], [0.0, 1.4, 2.5, 3.5])
    tensor = event.to_tensor()
    expected = np.zeros((2, 3, 5))  # C = 2, X = 3, T = round(3.5) + 1 (lava-dl: round(4.5) = 4)
    expected[0, 0, 0] = 1
    expected[0, 2, 1] = 1
    expected[1, 2, 2] = 1
    expected[0, 1, 4] = 1
    assert tensor.dtype == np.float64
    np.testing.assert_array_equal(tensor, expected)


def test_to_tensor_2d_sampling_time():
    event = io.Event([1, 0, 1], [0, 1, 0], [0, 1, 0], [0.0, 4.0, 5.0])
    tensor = event.to_tensor(sampling_time=2)  # bins 0, 2, round(2.5) = 2; T = round(2.5) + 1 = 3
    expected = np.zeros((2, 2, 2, 3))
    expected[0, 0, 1, 0] = 0.5
    expected[1, 1, 0, 2] = 0.5
    expected[0, 0, 1, 2] = 0.5
    np.testing.assert_array_equal(tensor, expected)
    with pytest.raises(ValueError, match=r"\(C, H, W, T\)"):
        event.to_tensor(dim=(2, 2, 4))


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_fill_tensor_or_sum_and_window(kind):
    # two events in bin (c0, y0, x1, t2); one outside x; one outside t; one negative t
    event = io.Event([1, 1, 5, 0, 0], [0, 0, 0, 1, 1], [0, 0, 0, 1, 1], [2.0, 2.2, 1.0, 9.0, -3.0])
    zeros = np.zeros if kind == "numpy" else torch.zeros
    or_filled = event.fill_tensor(zeros((2, 2, 2, 4)))
    sum_filled = event.fill_tensor(zeros((2, 2, 2, 4)), binning_mode="sum")
    expected = np.zeros((2, 2, 2, 4))
    expected[0, 0, 1, 2] = 1
    np.testing.assert_array_equal(np.asarray(or_filled), expected)
    expected[0, 0, 1, 2] = 2
    np.testing.assert_array_equal(np.asarray(sum_filled), expected)
    with pytest.raises(ValueError, match="binning_mode"):
        event.fill_tensor(zeros((2, 2, 2, 4)), binning_mode="max")
    with pytest.raises(ValueError, match="C, H, W, T"):
        event.fill_tensor(zeros((2, 2, 4)))


def test_fill_tensor_1d_layouts_and_graded():
    event = io.Event([0, 1, 1], None, [0, 0, 0], [0, 2, 2], payload=[3.0, 1.0, 0.5])
    four = event.fill_tensor(torch.zeros(1, 1, 2, 2), sampling_time=2)  # lava-dl's C, 1, X, T
    three = event.fill_tensor(np.zeros((1, 2, 2)), sampling_time=2)
    expected = np.array([[[1.5, 0.0], [0.0, 0.75]]])  # payload / sampling_time, summed
    np.testing.assert_array_equal(four.numpy()[:, 0], expected)
    np.testing.assert_array_equal(three, expected)


def test_fill_tensor_random_shift_matches_lava_dl_draw():
    event = io.Event([0, 0], None, [0, 0], [3.0, 7.0])
    np.random.seed(5)
    expected_shift = np.random.randint(max(3, 7 - 10, 10 - 7, 1))
    np.random.seed(5)
    tensor = event.fill_tensor(np.zeros((1, 1, 1, 10)), random_shift=True)
    expected = np.zeros((1, 1, 1, 10))
    expected[0, 0, 0, [3 - expected_shift, 7 - expected_shift]] = 1
    np.testing.assert_array_equal(tensor, expected)


def test_tensor_to_event_hand_built():
    tensor = np.zeros((2, 3, 4))
    tensor[1, 0, 3] = 1
    tensor[0, 2, 1] = 1
    event = io.tensor_to_event(tensor, sampling_time=1)
    assert event.dim == 1 and not event.graded
    np.testing.assert_array_equal(event.c, [0, 1])  # C order
    np.testing.assert_array_equal(event.x, [2, 0])
    np.testing.assert_array_equal(event.t, [1, 3])

    graded = torch.zeros(1, 2, 2, 3)
    graded[0, 1, 0, 2] = 0.25
    event = io.tensor_to_event(graded, sampling_time=2)
    assert event.dim == 2 and event.graded
    np.testing.assert_array_equal(event.y, [1])
    np.testing.assert_array_equal(event.x, [0])
    np.testing.assert_array_equal(event.t, [4])
    np.testing.assert_array_equal(event.p, [0.5])
    with pytest.raises(TypeError, match="numpy array or torch tensor"):
        io.tensor_to_event([[0, 1]])
    with pytest.raises(ValueError, match=r"got shape \(2, 3\)"):
        io.tensor_to_event(np.zeros((2, 3)))


@pytest.mark.parametrize("sampling_time", [1, 2, 0.5])
def test_tensor_event_tensor_round_trip(sampling_time):
    rng = np.random.default_rng(1)
    binary = (rng.random((2, 4, 5, 6)) < 0.3) / sampling_time
    graded = rng.random((2, 4, 5, 6)) * (rng.random((2, 4, 5, 6)) < 0.3)
    for tensor in (binary, graded):
        event = io.tensor_to_event(torch.from_numpy(tensor), sampling_time)
        assert event.graded == (tensor is graded)
        back = event.fill_tensor(np.zeros_like(tensor), sampling_time)
        np.testing.assert_allclose(back, tensor, rtol=1e-15, atol=0)


# --------------------------------------------------------------- binary files
ONE_D = bytes.fromhex("0001800001" "012C0009C4" "FFFFFFFFFF")
TWO_D = bytes.fromhex("0005000000" "22218005DC" "FFFF8186A0")


def test_encode_1d_bytes_and_read_back(tmp_path):
    path = tmp_path / "a.bs1"
    event = io.Event([1, 300, 65535], None, [1, 0, 1], [0.001, 2.5, 8388.607])
    io.encode_1d_spikes(path, event)
    assert path.read_bytes() == ONE_D
    back = io.read_1d_spikes(path)
    assert back.dim == 1 and back.x.dtype == np.int64 and back.t.dtype == np.float64
    np.testing.assert_array_equal(back.x, [1, 300, 65535])
    np.testing.assert_array_equal(back.c, [1, 0, 1])
    np.testing.assert_array_equal(back.t, np.array([1, 2500, 8388607]) / 1000)


def test_encode_2d_bytes_and_read_back(tmp_path):
    path = tmp_path / "a.bs2"
    io.encode_2d_spikes(str(path), io.Event([0, 34, 255], [5, 33, 255], [0, 1, 1], [0, 1.5, 100]))
    assert path.read_bytes() == TWO_D
    back = io.read_2d_spikes(path)
    np.testing.assert_array_equal(back.x, [0, 34, 255])
    np.testing.assert_array_equal(back.y, [5, 33, 255])
    np.testing.assert_array_equal(back.c, [0, 1, 1])
    np.testing.assert_array_equal(back.t, [0, 1.5, 100])


def test_read_empty_and_truncated_binary(tmp_path):
    empty = tmp_path / "empty.bs2"
    empty.write_bytes(b"")
    assert len(io.read_2d_spikes(empty)) == 0
    truncated = tmp_path / "cut.bs1"
    truncated.write_bytes(ONE_D[:-2])
    for reader in (io.read_1d_spikes, io.read_2d_spikes):
        with pytest.raises(ValueError, match=r"cut\.bs1: 13 bytes is not a whole number of 5-byte"):
            reader(truncated)


@pytest.mark.parametrize(
    "writer, event, message",
    [
        (io.encode_1d_spikes, io.Event([65536], None, [0], [0]), "event 0 has neuron id x = 65536"),
        (io.encode_1d_spikes, io.Event([0, 1], None, [0, 2], [0, 0]), "event 1 has polarity c = 2"),
        (io.encode_1d_spikes, io.Event([0], None, [0], [8388.608]), "time = 8388608 us"),
        (io.encode_1d_spikes, io.Event([0], None, [0], [-0.001]), "time = -1 us"),
        (io.encode_1d_spikes, io.Event([0], [0], [0], [0]), "stores 1-D events; the Event is 2-D"),
        (io.encode_1d_spikes, io.Event([0], None, [0], [0], [0.5]), "graded payload"),
        (io.encode_2d_spikes, io.Event([0, 256], [0, 0], [0, 0], [0, 0]), "event 1 has x = 256"),
        (io.encode_2d_spikes, io.Event([0], [-1], [0], [0]), "event 0 has y = -1"),
        (io.encode_2d_spikes, io.Event([0], None, [0], [0]), "stores 2-D events"),
        (io.encode_np_spikes, io.Event([0], None, [0], [0], [2.0]), "graded payload"),
    ],
)
def test_writers_reject_what_they_cannot_store(tmp_path, writer, event, message):
    path = tmp_path / "out.bin"
    with pytest.raises(ValueError, match=message) as error:
        writer(path, event)
    assert "out.bin" in str(error.value)
    assert not path.exists()


# ---------------------------------------------------------------- numpy files
def test_encode_np_spikes_columns(tmp_path):
    io.encode_np_spikes(tmp_path / "one.npy", io.Event([3, 1], None, [0, 1], [0.5, 2.0]))
    np.testing.assert_array_equal(np.load(tmp_path / "one.npy"), [[3, 0, 0.5], [1, 1, 2.0]])
    io.encode_np_spikes(tmp_path / "two", io.Event([3], [4], [1], [7.0]))  # np.save adds .npy
    saved = np.load(tmp_path / "two.npy")
    assert saved.dtype == np.float64
    np.testing.assert_array_equal(saved, [[3, 4, 1, 7.0]])
    io.encode_np_spikes(tmp_path / "us.npy", io.Event([3], None, [1], [7.0]), time_unit=1e-6)
    np.testing.assert_array_equal(np.load(tmp_path / "us.npy"), [[3, 1, 7000.0]])
    back = io.read_np_spikes(tmp_path / "us.npy", time_unit=1e-6)
    np.testing.assert_array_equal(back.t, [7000.0 * 1e-6 * 1e3])


def test_read_np_spikes_hand_arrays(tmp_path):
    np.save(tmp_path / "one.npy", np.array([[4, 1, 250], [0, 0, 1000]], dtype=np.int32))
    event = io.read_np_spikes(tmp_path / "one.npy", time_unit=1e-6)
    assert event.dim == 1
    np.testing.assert_array_equal(event.x, [4, 0])
    np.testing.assert_array_equal(event.c, [1, 0])
    np.testing.assert_array_equal(event.t, np.array([250, 1000]) * 1e-6 * 1e3)
    np.save(tmp_path / "two.npy", np.array([[4.0, 2.0, 1.0, 0.3]]))
    event = io.read_np_spikes(tmp_path / "two.npy")
    assert event.dim == 2 and event.x.dtype == np.int64
    np.testing.assert_array_equal([event.x[0], event.y[0], event.c[0]], [4, 2, 1])
    assert event.t[0] == 0.3 * 1e-3 * 1e3  # lava-dl's arithmetic, bit for bit


def test_read_np_spikes_rejects_bad_files(tmp_path):
    cases = {
        "cols.npy": np.zeros((2, 5)),
        "flat.npy": np.zeros(6),
        "text.npy": np.array([["a", "b", "c"]]),
        "half.npy": np.array([[0.5, 0, 1.0]]),
        "nan.npy": np.array([[1, 0, np.nan]]),
    }
    messages = {
        "cols.npy": r"got shape \(2, 5\)",
        "flat.npy": r"got shape \(6,\)",
        "text.npy": "numeric",
        "half.npy": "x must hold integers",
        "nan.npy": "t must be finite",
    }
    for name, array in cases.items():
        np.save(tmp_path / name, array)
        with pytest.raises(ValueError, match=messages[name]) as error:
            io.read_np_spikes(tmp_path / name)
        assert name in str(error.value)
    np.save(tmp_path / "obj.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "garbage.npy").write_bytes(b"not a numpy file at all")
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((100, 3)))
    (tmp_path / "short.npy").write_bytes(good.read_bytes()[:-16])
    for name in ("obj.npy", "garbage.npy", "short.npy"):
        with pytest.raises(ValueError, match=f"{name}: not a readable numpy"):
            io.read_np_spikes(tmp_path / name)
    with pytest.raises(ValueError, match="'xytp' is not supported"):
        io.read_np_spikes(good, fmt="xytp")


def test_large_file_round_trip_is_vectorised(tmp_path):
    n = 500_000
    rng = np.random.default_rng(2)
    event = io.Event(rng.integers(0, 256, n), rng.integers(0, 256, n), rng.integers(0, 2, n),
                     rng.integers(0, 1 << 23, n) / 1000)
    io.encode_2d_spikes(tmp_path / "big.bs2", event)
    assert (tmp_path / "big.bs2").stat().st_size == 5 * n
    back = io.read_2d_spikes(tmp_path / "big.bs2")
    for name in "xyct":
        np.testing.assert_array_equal(getattr(back, name), getattr(event, name))


# ------------------------------------------------------ the Oxford fixture
@pytest.mark.parametrize("name", ["input", "output", "ground_truth"])
def test_oxford_fixture(fixtures_dir, name):
    path = fixtures_dir / "oxford" / f"{name}.npy"
    raw = np.load(path)
    event = io.read_np_spikes(path)
    assert event.dim == 1 and len(event) == len(raw)
    np.testing.assert_array_equal(event.x, raw[:, 0])
    np.testing.assert_array_equal(event.c, np.zeros(len(raw)))
    np.testing.assert_array_equal(event.t, raw[:, 2] * 1e-3 * 1e3)
    tensor = event.fill_tensor(torch.zeros(1, 1, 200, 2000)).squeeze()
    assert tensor.shape == (200, 2000)
    bins = {(int(x), int(np.round(t))) for x, t in zip(raw[:, 0], raw[:, 2] * 1e-3 * 1e3)}
    assert int(tensor.sum()) == len(bins)
    neuron, step = np.nonzero(tensor.numpy())
    assert set(zip(neuron.tolist(), step.tolist())) == bins


# ---------------------------------------------------------------------- tonic
DVS = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
AUDIO = np.dtype([("t", np.int64), ("x", np.int64), ("p", np.int64)])


def _dvs(rows):
    return np.array([tuple(row) for row in rows], dtype=DVS)


def test_tonic_event_round_trip():
    events = _dvs([(3, 1, 1500, 1), (0, 2, 250, 0)])
    event = io.tonic_to_event(events)
    assert event.dim == 2
    np.testing.assert_array_equal(event.t, [1.5, 0.25])
    np.testing.assert_array_equal(event.c, [1, 0])
    back = io.event_to_tonic(event)
    assert back.dtype == DVS
    np.testing.assert_array_equal(back, events)
    audio = np.array([(100, 7, 0), (2000, 3, 1)], dtype=AUDIO)
    event = io.tonic_to_event(audio)
    assert event.dim == 1
    np.testing.assert_array_equal(io.event_to_tonic(event), audio)
    booleans = np.array([(1, 0, 5, True)], dtype=[("x", int), ("y", int), ("t", float), ("p", bool)])
    assert io.tonic_to_event(booleans).c.tolist() == [1]
    with pytest.raises(ValueError, match=r"lack field\(s\) \['p'\]"):
        io.tonic_to_event(np.zeros(2, dtype=[("x", int), ("t", int)]))
    with pytest.raises(ValueError, match="polarity -1"):
        io.tonic_to_event(_dvs([(0, 0, 0, -1)]))
    with pytest.raises(ValueError, match="graded"):
        io.event_to_tonic(io.Event([0], None, [0], [0], [1.0]))


def test_tonic_compose_with_own_transforms():
    tonic_transforms = pytest.importorskip("tonic.transforms")
    events = _dvs([(0, 1, 0, 0), (3, 2, 1400, 1), (5, 3, 2600, 1), (7, 0, 9000, 0), (2, 3, 2700, 1)])
    transform = tonic_transforms.Compose([
        tonic_transforms.Downsample(spatial_factor=0.5),
        tonic_transforms.CropTime(max=5000),
        io.ToSlayerTensor(sensor_size=(4, 2, 2), sampling_time=1.0, num_steps=4, binning_mode="SUM"),
    ])
    tensor = transform(events)
    expected = torch.zeros(2, 2, 4, 4)  # P, H, W, T; x // 2, y // 2, round(t / 1000 us)
    expected[0, 0, 0, 0] = 1
    expected[1, 1, 1, 1] = 1
    expected[1, 1, 2, 3] = 1
    expected[1, 1, 1, 3] = 1
    assert tensor.dtype == torch.float32
    torch.testing.assert_close(tensor, expected, rtol=0, atol=0)


def test_tonic_to_frame_agrees():
    tonic_transforms = pytest.importorskip("tonic.transforms")
    rng = np.random.default_rng(3)
    n, steps = 400, 20
    # times within the first half of each 1 ms bin, so tonic's floor binning equals round()
    t = np.sort(rng.integers(0, steps, n) * 1000 + rng.integers(0, 500, n))
    t[0] = 0
    events = np.zeros(n, dtype=DVS)
    events["x"], events["y"], events["p"], events["t"] = rng.integers(0, 6, n), rng.integers(0, 5, n), \
        rng.integers(0, 2, n), t
    frames = tonic_transforms.ToFrame(sensor_size=(6, 5, 2), time_window=1000)(events)  # T, P, H, W
    ours = io.ToSlayerTensor((6, 5, 2), num_steps=frames.shape[0], binning_mode="SUM")(events)
    np.testing.assert_array_equal(ours.numpy(), np.moveaxis(frames, 0, -1))


def test_tonic_audio_and_errors():
    audio = np.array([(0, 1, 0), (1000, 2, 0), (2000, 0, 1)], dtype=AUDIO)
    tensor = io.ToSlayerTensor((3, 1, 2), sampling_time=1.0)(audio)  # C = P * X = 6, T = 3
    expected = torch.zeros(6, 3)
    expected[1, 0] = expected[2, 1] = expected[3, 2] = 1
    torch.testing.assert_close(tensor, expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"x = 3, outside sensor_size \(3, 1, 2\)"):
        io.ToSlayerTensor((3, 1, 2))(np.array([(0, 3, 0)], dtype=AUDIO))
    with pytest.raises(ValueError, match="y = 5"):
        io.ToSlayerTensor((8, 5, 2))(_dvs([(0, 5, 0, 0)]))
    with pytest.raises(ValueError, match="num_steps"):
        io.ToSlayerTensor((8, 5, 2))(_dvs([]))
    assert io.ToSlayerTensor((8, 5, 2), num_steps=3)(_dvs([])).shape == (2, 5, 8, 3)


# ---------------------------------------------------------------------- plots
def test_raster_plots_spikes_and_saves_png(tmp_path):
    from PIL import Image

    spikes = torch.zeros(3, 5)
    spikes[0, 1] = spikes[2, 1] = spikes[2, 4] = 1
    ax = plot.raster(spikes, sampling_time=2.0, path=tmp_path / "r.png", title="out")
    line = ax.lines[-1]
    np.testing.assert_array_equal(line.get_xdata(), [2.0, 2.0, 8.0])
    np.testing.assert_array_equal(line.get_ydata(), [0, 2, 2])
    assert ax.get_title() == "out"
    with Image.open(tmp_path / "r.png") as image:
        assert image.format == "PNG" and image.size[0] > 100
    event = io.Event([1, 0], None, [0, 1], [3.0, 4.0])  # neuron = c * X + x with X = 2
    line = plot.raster(event).lines[-1]
    np.testing.assert_array_equal(line.get_xdata(), [3.0, 4.0])
    np.testing.assert_array_equal(line.get_ydata(), [1, 2])


def test_state_trace(tmp_path):
    voltage = np.array([[0.0, 0.5, 1.2, 0.0], [0.1, 0.2, 0.3, 0.4]])
    spikes = np.array([[0, 0, 1, 0], [0, 0, 0, 0]])
    ax = plot.state_trace(voltage, spikes=spikes, threshold=1.0, labels=["a", "b"], sampling_time=0.5,
                          path=tmp_path / "v.png")
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [0, 0.5, 1.0, 1.5])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), voltage[1])
    np.testing.assert_array_equal(ax.lines[2].get_xdata(), [1.0])  # spike marker of trace a
    np.testing.assert_array_equal(ax.lines[2].get_ydata(), [1.0])  # at the threshold
    assert (tmp_path / "v.png").stat().st_size > 0
    ax = plot.state_trace({"u": torch.arange(3.0), "v": [1, 2, 3]})
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["u", "v"]
    with pytest.raises(ValueError, match="2 labels for 1 traces"):
        plot.state_trace(np.zeros(4), labels=["a", "b"])
    with pytest.raises(ValueError, match="do not match"):
        plot.state_trace(np.zeros((2, 4)), spikes=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="differ in length"):
        plot.state_trace({"u": [1, 2], "v": [1]})


def test_event_show(tmp_path):
    fig = plt.figure()
    io.Event([0, 2], None, [0, 0], [1.0, 5.0]).show(fig, path=tmp_path / "one.png")
    np.testing.assert_array_equal(fig.axes[0].lines[-1].get_ydata(), [0, 2])
    assert (tmp_path / "one.png").stat().st_size > 0
    fig = plt.figure()
    # ON (c=1) red, OFF (c=0) blue, brightness = count / max count of that channel
    io.Event([0, 0, 1, 1], [0, 0, 0, 1], [1, 1, 1, 0], [0, 1, 2, 3]).show(fig, path=tmp_path / "two.png")
    image = fig.axes[0].images[0].get_array()
    expected = np.zeros((2, 2, 3))
    expected[0, 0, 0], expected[0, 1, 0], expected[1, 1, 2] = 1.0, 0.5, 1.0
    np.testing.assert_array_equal(np.asarray(image), expected)


@pytest.mark.parametrize("pre_compute", [True, False])
def test_event_anim_gif(tmp_path, pre_compute):
    from PIL import Image

    event = io.Event([0, 3, 1, 2], [0, 2, 1, 0], [1, 0, 1, 2], [0.0, 10.0, 50.0, 90.0])
    fig = plt.figure(figsize=(4, 3), dpi=10)  # 40 x 30 pixels: 10 x 10 per event pixel
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    event.anim(fig, frame_rate=20, pre_compute_frames=pre_compute, path=tmp_path / "a.gif")  # 50 ms frames
    expected = np.zeros((2, 3, 4, 3), dtype=np.uint8)
    expected[0, 0, 0] = (255, 0, 0)  # ON at t=0
    expected[0, 2, 3] = (0, 0, 255)  # OFF at t=10
    expected[1, 1, 1] = (255, 0, 0)  # ON at t=50
    expected[1, 0, 2] = (0, 255, 0)  # channel 2 at t=90
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 2 and gif.size == (40, 30)
        for index in range(2):
            gif.seek(index)
            pixels = np.asarray(gif.convert("RGB"))[5::10, 5::10]
            np.testing.assert_array_equal(pixels, expected[index])


def test_event_anim_1d_returns_animation(tmp_path):
    from matplotlib import animation
    from PIL import Image

    for payload in (None, [1.0, 2.0, 3.0]):
        anim = io.Event([0, 1, 2], None, [0, 0, 0], [0.0, 40.0, 90.0], payload).anim(frame_rate=20)
        assert isinstance(anim, animation.FuncAnimation)
        anim.save(tmp_path / "r.gif", writer=animation.PillowWriter(fps=20))
        with Image.open(tmp_path / "r.gif") as gif:
            assert gif.n_frames == 2
    with pytest.raises(ValueError, match="without events"):
        io.Event([], None, [], []).anim()


# ------------------------------------------------------ against lava-dl 0.6.0
@pytest.fixture(scope="module")
def lava_io():
    spec = importlib.util.spec_from_file_location("_lava_dl_ref", REPO / "benchmarks" / "_lava_dl_ref.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ref, reason = module.import_slayer()
    if ref is None:
        pytest.skip(f"lava-dl 0.6.0 unavailable: {reason}")
    return ref.io


def _random_events(n, dim, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, n)
    c = np.r_[0, 1, rng.integers(0, 2, n - 2)]  # both polarities: lava-dl's c -= c.min() is a no-op
    t = rng.integers(0, 1 << 23, n) / 1000
    y = rng.integers(0, 256, n) if dim == 2 else None
    return x, y, c, t


@pytest.mark.parametrize("dim", [1, 2])
def test_lava_dl_binary_files_interchange(tmp_path, lava_io, dim):
    x, y, c, t = _random_events(2000, dim, seed=dim)
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    write = io.encode_1d_spikes if dim == 1 else io.encode_2d_spikes
    read = io.read_1d_spikes if dim == 1 else io.read_2d_spikes
    ref_write = lava_io.encode_1d_spikes if dim == 1 else lava_io.encode_2d_spikes
    ref_read = lava_io.read_1d_spikes if dim == 1 else lava_io.read_2d_spikes
    copy = None if y is None else y.copy()
    write(ours, io.Event(x, y, c, t))
    ref_write(str(theirs), lava_io.Event(x.copy(), copy, c.copy(), t.copy()))
    assert ours.read_bytes() == theirs.read_bytes()
    for mine, ref in ((read(theirs), ref_read(str(ours))), (read(ours), ref_read(str(theirs)))):
        for name in ("x", "c", "t") + (("y",) if dim == 2 else ()):
            np.testing.assert_array_equal(getattr(mine, name), getattr(ref, name))


def test_lava_dl_1d_high_neuron_ids(tmp_path, lava_io):
    x = np.array([5, 256, 1000, 65535])
    c = np.array([0, 1, 0, 1])
    t = np.array([0.0, 1.0, 2.0, 3.0])
    io.encode_1d_spikes(tmp_path / "ours", io.Event(x, None, c, t))
    np.testing.assert_array_equal(lava_io.read_1d_spikes(str(tmp_path / "ours")).x, x)
    # lava-dl's writer loses the high byte of ids >= 256 (its bug, fixed here)
    lava_io.encode_1d_spikes(str(tmp_path / "theirs"), lava_io.Event(x.copy(), None, c.copy(), t.copy()))
    np.testing.assert_array_equal(io.read_1d_spikes(tmp_path / "theirs").x, x % 256)


def test_lava_dl_numpy_files_interchange(tmp_path, lava_io):
    for dim in (1, 2):
        x, y, c, t = _random_events(500, dim, seed=10 + dim)
        io.encode_np_spikes(tmp_path / f"ours{dim}.npy", io.Event(x, y, c, t))
        copy = None if y is None else y.copy()
        theirs = lava_io.Event(x.copy(), copy, c.copy(), t)
        lava_io.encode_np_spikes(str(tmp_path / f"theirs{dim}.npy"), theirs)
        assert (tmp_path / f"ours{dim}.npy").read_bytes() == (tmp_path / f"theirs{dim}.npy").read_bytes()
        mine = io.read_np_spikes(tmp_path / f"theirs{dim}.npy")
        ref = lava_io.read_np_spikes(str(tmp_path / f"ours{dim}.npy"))
        for name in ("x", "c", "t") + (("y",) if dim == 2 else ()):
            np.testing.assert_array_equal(getattr(mine, name), getattr(ref, name))


def test_lava_dl_tensors(lava_io):
    torch.manual_seed(0)
    graded = torch.rand(2, 5, 6, 7)
    graded[graded > 0.5] = 0
    binary = (graded > 0).float()
    for tensor in (graded, graded.numpy(), binary, graded[:, 0]):
        mine, ref = io.tensor_to_event(tensor), lava_io.tensor_to_event(tensor)
        assert mine.graded == ref.graded and mine.dim == (4 if tensor.ndim == 4 else 3) - 2
        for name in ("x", "c", "t") + (("y",) if tensor.ndim == 4 else ()):
            np.testing.assert_array_equal(getattr(mine, name), np.asarray(getattr(ref, name)))
        np.testing.assert_array_equal(mine.to_tensor(), ref.to_tensor())
        shape = (2, 5, 6, 7) if tensor.ndim == 4 else (2, 1, 6, 7)
        filled = mine.fill_tensor(torch.zeros(shape))
        np.testing.assert_array_equal(filled, ref.fill_tensor(torch.zeros(shape)))


def test_lava_dl_oxford_tensors(fixtures_dir, lava_io):
    for name in ("input", "output", "ground_truth"):
        path = fixtures_dir / "oxford" / f"{name}.npy"
        mine, ref = io.read_np_spikes(path), lava_io.read_np_spikes(str(path))
        for field in "xct":
            np.testing.assert_array_equal(getattr(mine, field), getattr(ref, field))
        torch.testing.assert_close(mine.fill_tensor(torch.zeros(1, 1, 200, 2000)),
                                   ref.fill_tensor(torch.zeros(1, 1, 200, 2000)), rtol=0, atol=0)


def test_lava_dl_differences_documented(lava_io):
    # only ON events: lava-dl moves them to channel 0, lava_dl keeps channel 1
    assert lava_io.Event(np.array([0]), None, np.array([1]), np.array([0.0])).c.tolist() == [0]
    assert io.Event([0], None, [1], [0.0]).c.tolist() == [1]
    # SUM binning: lava-dl counts a doubly hit bin once
    ref = lava_io.Event(np.array([0, 0]), None, np.array([0, 0]), np.array([1.0, 1.0]))
    assert ref.fill_tensor(np.zeros((1, 1, 1, 2)), binning_mode="SUM")[0, 0, 0, 1] == 1
    mine = io.Event([0, 0], None, [0, 0], [1.0, 1.0])
    assert mine.fill_tensor(np.zeros((1, 1, 1, 2)), binning_mode="SUM")[0, 0, 0, 1] == 2
