"""Readers of the BDD100K and Prophesee automotive datasets, on small synthetic datasets
written in the on-disk layout of the real ones."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lava_dl.slayer.object_detection.boundingbox.utils import tensor_from_annotation
from lava_dl.slayer.object_detection.dataset import BDD, PropheseeAutomotive


# ------------------------------------------------------------------------------ BDD100K
def _write_bdd(root, split, videos):
    """videos: {name: [(image array HxWx3 uint8, [(category, x1, y1, x2, y2), ...]), ...]}"""
    label_dir = root / "labels" / "box_track_20" / split
    label_dir.mkdir(parents=True, exist_ok=True)
    for video, frames in videos.items():
        image_dir = root / "images" / "track" / split / video
        image_dir.mkdir(parents=True, exist_ok=True)
        entries = []
        for number, (array, boxes) in enumerate(frames):
            name = f"{video}-{number + 1:07d}.png"  # lossless, so pixel values can be checked
            Image.fromarray(array).save(image_dir / name)
            entries.append({"name": name, "videoName": video, "frameIndex": number,
                            "labels": [{"id": str(k), "category": c,
                                        "attributes": {"occluded": False},
                                        "box2d": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}}
                                       for k, (c, x1, y1, x2, y2) in enumerate(boxes)]})
        (label_dir / f"{video}.json").write_text(json.dumps(entries))


def _frame(value, height=20, width=40):
    array = np.full((height, width, 3), value, dtype=np.uint8)
    array[2, 3] = (255, 0, 10)  # marker pixel
    return array


@pytest.fixture()
def bdd_root(tmp_path):
    _write_bdd(tmp_path, "val", {
        "b1": [(_frame(10 * k), [("car", 4, 2, 12, 10), ("pedestrian", 20, 5, 30, 15)]) for k in range(3)],
        "a0": [(_frame(100), [("bus", 0, 0, 40, 20)])] * 2,
    })
    _write_bdd(tmp_path, "train", {"c2": [(_frame(50), [("truck", 1, 1, 5, 5)])]})
    return tmp_path


def test_bdd_sample(bdd_root):
    data = BDD(root=str(bdd_root), size=(20, 40), seq_len=4)
    assert len(data) == 2
    assert data.classes == ["bus", "car", "pedestrian", "truck"]  # both splits
    assert data.idx_map["car"] == 1
    frames, anns = data[1]  # "b1" (sorted after "a0")
    assert frames.shape == (3, 20, 40, 4) and frames.dtype == torch.float32
    assert torch.allclose(frames[:, 2, 3, 0], torch.tensor([1.0, 0.0, 10 / 255]))
    assert torch.allclose(frames[:, 0, 0, :3], torch.tensor([0.0, 10, 20]) / 255)
    assert torch.equal(frames[..., 3], frames[..., 2])  # padded with the last frame
    assert len(anns) == 4
    assert anns[3] is not anns[2]
    boxes = tensor_from_annotation(anns[0], normalized=False)
    # largest box first: pedestrian 10x10, then car 8x8
    assert torch.allclose(boxes, torch.tensor([[25.0, 10, 10, 10, 1, 2], [8, 6, 8, 8, 1, 1]]))


def test_bdd_resize(bdd_root):
    data = BDD(root=str(bdd_root), size=(10, 80), seq_len=2)
    frames, anns = data[1]
    assert frames.shape == (3, 10, 80, 2)
    assert anns[0]["annotation"]["size"] == {"height": 10, "width": 80}
    car = anns[0]["annotation"]["object"][0]
    assert car["bndbox"] == {"xmin": 8.0, "ymin": 1.0, "xmax": 24.0, "ymax": 5.0}
    assert torch.allclose(frames[:, 5, 40, 0], torch.zeros(3))


def test_bdd_augment(bdd_root):
    data = BDD(root=str(bdd_root), size=(20, 40), seq_len=4, augment_prob=1.0)
    np.random.seed(0)
    torch.manual_seed(0)
    frames, anns = data[1]
    assert frames.shape == (3, 20, 40, 4)
    # grayscale: the three channels are equal
    assert torch.equal(frames[0], frames[1]) and torch.equal(frames[1], frames[2])
    # flip: the car box x 4..12 becomes 28..36 in every frame, padded ones included
    for ann in anns:
        car = [obj for obj in ann["annotation"]["object"] if obj["name"] == "car"][0]
        assert car["bndbox"] == {"xmin": 28.0, "ymin": 2.0, "xmax": 36.0, "ymax": 10.0}
    # the marker pixel moved to the mirrored column (blurred, so brightest near there)
    red = frames[0, 2, :, 0]
    assert int(red.argmax()) == 40 - 1 - 3


def test_bdd_flip_only(bdd_root, monkeypatch):
    draws = iter([0.0, 1.0, 1.0, 1.0])  # flip yes, blur/jitter/grayscale no
    monkeypatch.setattr(np.random, "random", lambda: next(draws))
    frames, _ = BDD(root=str(bdd_root), size=(20, 40), seq_len=4, augment_prob=0.5)[1]
    assert torch.allclose(frames[:, 2, 36, 0], torch.tensor([1.0, 0.0, 10 / 255]))


def test_bdd_random_start(bdd_root):
    data = BDD(root=str(bdd_root), size=(20, 40), seq_len=2, randomize_seq=True)
    starts = set()
    for seed in range(20):
        np.random.seed(seed)
        frames, _ = data[1]
        starts.add(round(float(frames[0, 0, 0, 0]) * 255))
    assert starts == {0, 10}  # both possible starts, including the last one
    np.random.seed(0)
    frames, _ = BDD(root=str(bdd_root), size=(20, 40), seq_len=8, randomize_seq=True)[0]
    assert frames.shape[-1] == 8


def test_bdd_errors(bdd_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="box_other_20"):
        BDD(root=str(bdd_root), dataset="other")
    (bdd_root / "labels" / "box_track_20" / "val" / "bad.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(ValueError, match="bad.json"):
        BDD(root=str(bdd_root))
    (bdd_root / "labels" / "box_track_20" / "val" / "bad.json").write_text(
        json.dumps([{"name": "x", "labels": [{"category": "car"}]}]))
    with pytest.raises(ValueError, match="box2d"):
        BDD(root=str(bdd_root))


# --------------------------------------------------------------------------- Prophesee
EV = np.dtype([("t", "<u4"), ("_", "<i4")])
BOX = np.dtype([("ts", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
                ("class_id", "u1"), ("confidence", "<f4"), ("track_id", "<u4")])


def _write_dat(path, events, height=100, width=120, header=True):
    """events: list of (t, x, y, p)"""
    with open(path, "wb") as file:
        if header:
            file.write(b"% Data file containing Event2D events.\n% Version 2\n")
            file.write(f"% Height {height}\n% Width {width}\n".encode())
            file.write(bytes([0, 8]))
        data = np.zeros(len(events), dtype=EV)
        for k, (t, x, y, p) in enumerate(events):
            data[k] = (t, x | (y << 14) | (p << 28))
        data.tofile(file)


def _write_boxes(path, boxes):
    """boxes: list of (t, x, y, w, h, class_id)"""
    np.save(path, np.array([(t, x, y, w, h, c, 1.0, k) for k, (t, x, y, w, h, c) in enumerate(boxes)],
                           dtype=BOX))


def _recording(t0=200000, slices=6, dt=1000):
    """Sensor 100 x 120. Events: in each 1 ms slice a dense 50x50 patch (polarity 1) at
    x, y 10..59 and one polarity-0 event at (110, 90); boxes in slices 0, 1 and 4."""
    events = []
    for k in range(slices):
        t = t0 + k * dt
        events += [(t + 1, x, y, 1) for y in range(10, 60) for x in range(10, 60)]
        events.append((t + 2, 110, 90, 0))
        events.append((t + 3, 5000, 3, 1))  # outside the sensor: dropped
    boxes = [(t0 + 10, 10, 10, 50, 50, 1),
             (t0 + 10, 60, 20, 40, 45, 0),  # no events inside: dropped in the first frame
             (t0 + 10, 0, 10, 50, 50, 0),  # touches the left border: dropped
             (t0 + 20, 1, 1, 10, 60, 0),  # side < 20: dropped
             (t0 + dt + 5, 12, 11, 44, 46, 1),
             (t0 + dt + 6, 65, 50, 40, 40, 0),  # diagonal < 60: dropped
             (t0 + 4 * dt + 5, 60, 20, 40, 45, 0)]
    return events, boxes


@pytest.fixture()
def psee_root(tmp_path):
    (tmp_path / "label_map_dictionary.json").write_text(json.dumps({"0": "car", "1": "pedestrian"}))
    (tmp_path / "val").mkdir()
    events, boxes = _recording()
    _write_dat(tmp_path / "val" / "rec_b_td.dat", events)
    _write_boxes(tmp_path / "val" / "rec_b_bbox.npy", boxes)
    # a recording whose only box is before 0.1 s: never gives a frame
    _write_dat(tmp_path / "val" / "rec_a_td.dat", [(10, 1, 1, 1), (50000, 2, 2, 0)])
    _write_boxes(tmp_path / "val" / "rec_a_bbox.npy", [(10, 10, 10, 50, 50, 0)])
    return tmp_path


def test_prophesee_sample(psee_root):
    data = PropheseeAutomotive(root=str(psee_root), size=(100, 120), seq_len=4)
    assert len(data) == 2
    assert data.classes == ["car", "pedestrian"] and data.idx_map == {0: "car", 1: "pedestrian"}
    assert data.get_name(1) == "rec_b"
    frames, anns = data[1]
    assert frames.shape == (2, 100, 120, 4) and frames.dtype == torch.float32
    assert set(frames.unique().tolist()) == {0.0, 1.0}
    assert frames[0, 10:60, 10:60].eq(1).all() and frames[1, 10:60, 10:60].eq(0).all()
    assert frames[1, 90, 110].eq(1).all() and frames[0, 90, 110].eq(0).all()
    assert frames.sum() == 4 * (2500 + 1)
    assert len(anns) == 4
    # slice 0: only the pedestrian box
    assert torch.allclose(tensor_from_annotation(anns[0], normalized=False),
                          torch.tensor([[35.0, 35, 50, 50, 1, 1]]))
    assert anns[0]["annotation"]["object"][0]["name"] == "pedestrian"
    assert anns[0]["annotation"]["size"] == {"height": 100, "width": 120}
    assert torch.allclose(tensor_from_annotation(anns[1], normalized=False),
                          torch.tensor([[34.0, 34, 44, 46, 1, 1]]))
    # slices 2 and 3 have no boxes: they repeat slice 1's, as separate dictionaries
    assert anns[2] == anns[1] and anns[3] == anns[1] and anns[2] is not anns[1]
    # reading again gives the same sample (starts at the recording's beginning)
    again, _ = data[1]
    assert torch.equal(again, frames)


def test_prophesee_resize_and_flip(psee_root):
    data = PropheseeAutomotive(root=str(psee_root), size=(50, 240), seq_len=5, augment_prob=1.0)
    frames, anns = data[1]
    assert frames.shape == (2, 50, 240, 5)
    # patch x 10..59 -> flipped to 60..109 -> resized (x2) to 120..219; y 10..59 -> 5..29
    assert frames[0, 5:30, 120:220].eq(1).all() and frames[0].sum() == 5 * 2500
    assert frames[1, 45, 18:20].eq(1).all() and frames[1].sum() == 5 * 2  # (110, 90) -> x 9 -> 18, 19
    # slice 4: the car box x 60..100 -> flipped 20..60 -> resized 40..120
    car = anns[4]["annotation"]["object"][0]
    assert car["name"] == "car"
    assert car["bndbox"] == {"xmin": 40.0, "ymin": 10.0, "xmax": 120.0, "ymax": 32.5}
    for k in (1, 2, 3):  # the repeated box is flipped once
        assert anns[k]["annotation"]["object"][0]["bndbox"] == {"xmin": 128.0, "ymin": 5.5,
                                                                "xmax": 216.0, "ymax": 28.5}


def test_prophesee_random_start_and_retry(psee_root):
    data = PropheseeAutomotive(root=str(psee_root), size=(100, 120), seq_len=3, randomize_seq=True)
    np.random.seed(1)
    frames, anns = data[0]  # rec_a never gives frames: another recording is used
    assert frames.shape == (2, 100, 120, 3) and len(anns) == 3
    assert frames[0].sum() == 3 * 2500
    with pytest.raises(ValueError, match="no recording"):
        PropheseeAutomotive(root=str(psee_root), seq_len=50)[1]


def test_prophesee_header_without_size(psee_root):
    events, boxes = _recording()
    _write_dat(psee_root / "val" / "rec_b_td.dat", events, header=False)
    frames, _ = PropheseeAutomotive(root=str(psee_root), size=(240, 304), seq_len=2)[1]
    assert frames.shape == (2, 240, 304, 2) and frames[0, 10:60, 10:60].eq(1).all()


def test_prophesee_errors(psee_root):
    with pytest.raises(FileNotFoundError, match="train"):
        PropheseeAutomotive(root=str(psee_root), train=True)
    (psee_root / "val" / "rec_c_td.dat").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="rec_c_bbox.npy"):
        PropheseeAutomotive(root=str(psee_root))
    np.save(psee_root / "val" / "rec_c_bbox.npy", np.zeros(3, dtype=[("t", "<u8"), ("x", "<f4")]))
    with pytest.raises(ValueError, match="'class_id'"):
        PropheseeAutomotive(root=str(psee_root))[2]
    (psee_root / "label_map_dictionary.json").unlink()
    with pytest.raises(FileNotFoundError, match="label_map_dictionary.json"):
        PropheseeAutomotive(root=str(psee_root))
