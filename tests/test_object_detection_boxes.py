"""Bounding-box metrics and utilities of ``lava_dl.slayer.object_detection`` against
hand-computed answers (IoUs of simple boxes, NMS cases, AP of tiny rankings, round trips,
flips and resizes of known boxes, boxes drawn at known pixels)."""

from __future__ import annotations

import copy
import math
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from lava_dl.slayer.object_detection.boundingbox import metrics, utils
from lava_dl.slayer.object_detection.dataset import utils as dutils

# boxes as (x_center, y_center, width, height)
A = [1.0, 1.0, 2.0, 2.0]  # [0, 2] x [0, 2]
B = [2.0, 1.0, 2.0, 2.0]  # [1, 3] x [0, 2]: IoU(A, B) = 2 / 6
FAR = [10.0, 10.0, 1.0, 1.0]


def t(rows):
    return torch.tensor(rows, dtype=torch.float32)


# ---------------------------------------------------------------- overlap measures
def test_bbox_iou_pairwise_orientation_and_shape():
    iou = metrics.bbox_iou(t([A, FAR]), t([B, A, FAR]))
    expected = t([[1 / 3, 1, 0], [0, 0, 1]])
    assert iou.shape == (2, 3)
    assert torch.allclose(iou, expected, atol=1e-6)
    # leading dimensions are kept; extra columns are ignored
    iou = metrics.bbox_iou(t([A + [0.5, 1], FAR + [0.2, 0]]).reshape(2, 1, 6), t([B, A, FAR]))
    assert iou.shape == (2, 1, 3)
    assert torch.allclose(iou.reshape(2, 3), expected, atol=1e-6)


def test_wh_iou():
    iou = metrics.wh_iou(t([[2, 2], [1, 4]]), t([[1, 4], [2, 2], [4, 4]]))
    expected = t([[2 / 6, 1, 4 / 16], [1, 2 / 6, 4 / 16]])
    assert torch.allclose(iou, expected, atol=1e-6)


def test_bbox_ciou_known_values_and_gradient():
    # identical boxes: 1
    assert torch.allclose(metrics.bbox_ciou(t([A, B]), t([A, B])), torch.ones(2), atol=1e-6)
    # translation by 1: IoU 1/3, centers 1 apart, enclosing box 3 x 2 (diagonal^2 = 13)
    assert metrics.bbox_ciou(t([A]), t([B])).item() == pytest.approx(1 / 3 - 1 / 13, abs=1e-6)
    # concentric 2 x 2 and 4 x 2: IoU 1/2, no distance term, aspect-ratio term only
    v = 4 / math.pi**2 * (math.atan(1) - math.atan(2)) ** 2
    expected = 0.5 - v / (1 - 0.5 + v) * v
    assert metrics.bbox_ciou(t([[0, 0, 2, 2]]), t([[0, 0, 4, 2]])).item() == pytest.approx(expected, abs=1e-6)
    # differentiable
    pred = t([[1.2, 0.9, 1.5, 2.5]]).requires_grad_()
    metrics.bbox_ciou(pred, t([A])).sum().backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="as many boxes"):
        metrics.bbox_ciou(t([A, B]), t([A, B, FAR]))


def test_overlap_bad_shapes():
    with pytest.raises(ValueError, match="bbox2"):
        metrics.bbox_iou(t([A]), t([[1, 2, 3]]))
    with pytest.raises(ValueError, match="bbox1"):
        metrics.wh_iou(t([1.0]), t([[1, 2]]))


# ---------------------------------------------------------------- average precision
def test_compute_ap_hand_cases():
    # one true positive out of 2 objects: precision 1 up to recall 0.5, then a 0.01 drop to 0
    assert metrics.compute_ap(np.array([1.0]), np.array([0.5])) == pytest.approx(0.505)
    assert metrics.compute_ap(np.array([1.0, 1.0]), np.array([0.5, 1.0])) == pytest.approx(1.0)
    assert metrics.compute_ap(np.array([0.0, 0.0]), np.array([0.0, 0.0])) == pytest.approx(0.0)
    # ranking TP, FP, TP of 2 objects: precision 1 below recall 0.5, 2/3 from 0.5 to 1
    ap = metrics.compute_ap(np.array([1, 0.5, 2 / 3]), np.array([0.5, 0.5, 1.0]))
    assert ap == pytest.approx(0.49 + 0.01 * (1 + 2 / 3) / 2 + 0.5 * 2 / 3, abs=1e-6)
    with pytest.raises(ValueError, match="same length"):
        metrics.compute_ap(np.array([1.0]), np.array([]))


def _image_case():
    # targets: two class-0 objects, one class-1 object (rows x, y, w, h, conf, label)
    targets = t([[10, 10, 4, 4, 1, 0], [30, 10, 4, 4, 1, 0], [10, 30, 4, 4, 1, 1]])
    outputs = t([
        [10, 10, 4, 4, 0.9, 0],  # TP (class 0)
        [10, 10, 4, 4, 0.8, 0],  # duplicate: FP
        [30, 10, 4, 4, 0.7, 0],  # TP
        [30, 10, 4, 4, 0.6, 1],  # class 1 on a class-0 object: FP
    ])
    return outputs, targets


def test_average_precision_metrics_hand_case():
    outputs, targets = _image_case()
    precision, recall, ap, f1, classes = metrics.average_precision_metrics([outputs], [targets], 0.5)
    assert np.array_equal(classes[0], [0, 1])
    assert precision[0].shape == (2, 1)
    assert precision[0][:, 0] == pytest.approx([2 / 3, 0])
    assert recall[0][:, 0] == pytest.approx([1, 0])
    assert ap[0][:, 0] == pytest.approx([0.49 + 0.01 * (1 + 2 / 3) / 2 + 0.5 * 2 / 3, 0], abs=1e-6)
    assert f1[0][:, 0] == pytest.approx([0.8, 0])
    # the matching follows the confidence, not the row order
    shuffled = outputs[torch.tensor([3, 1, 2, 0])]
    again = metrics.average_precision_metrics([shuffled], [targets], 0.5)
    for got, want in zip(again, (precision, recall, ap, f1, classes)):
        assert np.allclose(got[0], want[0])


def test_average_precision_metrics_thresholds_and_missing_images():
    target = t([[0, 0, 10, 10, 1, 0]])
    low = [0, 0, 10, 4, 0.9, 0]  # IoU 0.4, ranked first
    high = [0, 0, 10, 9, 0.8, 0]  # IoU 0.9
    _, recall, ap, _, _ = metrics.average_precision_metrics([t([low, high])], [target], [0.3, 0.5, 0.95])
    # at 0.3 the first prediction matches; at 0.5 the second still can; at 0.95 none
    assert recall[0][0] == pytest.approx([1, 1, 0])
    # 0.3: precision 1 up to recall 1, then 1/2 at recall 1 (the FP), 0 at 1.01
    assert ap[0][0, 0] == pytest.approx(1 - 0.01 * 0.5 / 2)
    # 0.5: FP then TP -> precision 1/2 at recall 1: 0.5 + tail
    assert ap[0][0, 1] == pytest.approx(0.5) and ap[0][0, 2] == 0
    # no prediction (None or empty) scores zero per target class; no target: skipped
    outputs = [None, torch.zeros(0, 6), t([high])]
    out = metrics.average_precision_metrics(outputs, [target, target, torch.zeros(0, 6)], 0.5)
    assert len(out[2]) == 2 and all(np.array_equal(a, [[0.0]]) for a in out[2])
    with pytest.raises(ValueError, match="each output"):
        metrics.average_precision_metrics([t([[0, 0, 1, 1, 0.5]])], [target], 0.5)


def test_apstats():
    outputs, targets = _image_case()
    stats = metrics.APstats(np.linspace(0.5, 0.95, 10))
    assert np.array_equal(stats.ap_scores(), np.zeros(10))
    stats.update([outputs], [targets])
    stats.update([t([[10, 10, 4, 4, 0.9, 1]])], [t([[10, 10, 4, 4, 1, 1]])])  # perfect: AP 1
    class0 = 0.49 + 0.01 * (1 + 2 / 3) / 2 + 0.5 * 2 / 3
    expected = (class0 + 0 + 1) / 3  # every threshold: the boxes are exact
    assert stats.count == 3
    assert stats.ap_scores() == pytest.approx([expected] * 10, abs=1e-6)
    assert stats[:] == pytest.approx(expected, abs=1e-6)
    assert stats[0.55] == pytest.approx(expected, abs=1e-6)
    assert stats[np.float64(0.95)] == pytest.approx(expected, abs=1e-6)
    assert stats[0] == pytest.approx(expected, abs=1e-6)
    with pytest.raises(RuntimeError, match="not recorded"):
        stats[0.52]
    single = metrics.APstats(0.5)
    single.update([outputs], [targets])
    assert single[0.5] == pytest.approx((class0 + 0) / 2, abs=1e-6)
    single.reset()
    assert single.count == 0 and single[:] == 0


# ---------------------------------------------------------------- non-maximum suppression
def _raw(rows):
    """Raw predictions x, y, w, h, objectness, 2 class scores."""
    return t(rows)


def test_nms_suppresses_same_class_overlaps_only():
    pred = _raw([
        [5, 5, 10, 10, 0.9, 1.0, 0.0],  # kept (best)
        [6, 5, 10, 10, 0.8, 1.0, 0.0],  # IoU 90/110 with the first, same class: suppressed
        [6, 5, 10, 10, 0.7, 0.0, 1.0],  # same place, other class: kept
        [50, 50, 10, 10, 0.95, 0.2, 0.5],  # far: kept, score 0.95 * 0.5
        [80, 80, 10, 10, 0.4, 1.0, 0.0],  # objectness below conf_threshold
    ])
    out = utils.non_maximum_suppression([pred], conf_threshold=0.5, nms_threshold=0.4)[0]
    expected = t([[5, 5, 10, 10, 0.9, 0], [6, 5, 10, 10, 0.7, 1], [50, 50, 10, 10, 0.475, 1]])
    assert torch.allclose(out, expected)
    out = utils.nms([pred], conf_threshold=0.5, nms_threshold=0.4, merge_conf=False)[0]
    assert out[:, 4].tolist() == pytest.approx([0.95, 0.9, 0.7])
    assert utils.nms([pred], 0.5, 0.4, max_detections=2)[0].shape == (2, 6)
    assert utils.nms([pred], 0.5, 0.4, max_iterations=0)[0].shape == (4, 6)


def test_nms_chain_rule_thresholds_ties_and_empty():
    # boxes 10 wide at x = 0, 6, 12: neighbours overlap with IoU 40 / 160 = 0.25, ends do not
    chain = _raw([[0, 0, 10, 10, 0.9, 1, 0], [6, 0, 10, 10, 0.8, 1, 0], [12, 0, 10, 10, 0.7, 1, 0]])
    # a box is dropped when any higher-scoring box overlaps it, even a dropped one
    assert utils.nms([chain], 0.1, 0.2)[0][:, 0].tolist() == [0]
    assert utils.nms([chain], 0.1, 0.25)[0][:, 0].tolist() == [0, 6, 12]  # IoU must exceed it
    assert utils.nms([chain], 0.9)[0].shape == (0, 6)  # objectness must exceed conf_threshold
    ties = _raw([[0, 0, 1, 1, 0.6, 1, 0], [5, 0, 1, 1, 0.6, 1, 0], [9, 0, 1, 1, 0.6, 1, 0]])
    assert utils.nms([ties])[0][:, 0].tolist() == [0, 5, 9]
    single = utils.nms([_raw([[1, 2, 3, 4, 0.9, 0.1, 0.8]])])[0]
    assert torch.allclose(single, t([[1, 2, 3, 4, 0.72, 1]]))
    assert [o.shape for o in utils.nms([torch.zeros(0, 7), chain], 0.1, 0.2)] == [(0, 6), (1, 6)]
    with pytest.raises(ValueError, match="num_boxes, >= 6"):
        utils.nms([torch.rand(3, 5)])


# ---------------------------------------------------------------- conversions
def _annotation():
    return {"annotation": {"size": {"height": 100, "width": 200}, "object": [
        {"id": 1, "name": "car", "bndbox": {"xmin": 20, "ymin": 10, "xmax": 60, "ymax": 30}},
        {"id": 0, "name": "ped", "confidence": 0.5,
         "bndbox": {"xmin": 100, "ymin": 0, "xmax": 200, "ymax": 100}},
        {"id": 1, "name": "car", "bndbox": {"xmin": 5, "ymin": 5, "xmax": 5, "ymax": 9}},  # empty: dropped
    ]}}


def test_tensor_from_annotation_values_order_and_limits():
    tensor = utils.tensor_from_annotation(_annotation())
    # largest box first; normalized by the frame size
    expected = t([[0.75, 0.5, 0.5, 1.0, 0.5, 0], [0.2, 0.2, 0.2, 0.2, 1, 1]])
    assert tensor.dtype == torch.float32 and torch.allclose(tensor, expected)
    pixels = utils.tensor_from_annotation(_annotation(), normalized=False)
    assert torch.allclose(pixels[1], t([40, 20, 40, 20, 1, 1]))
    assert torch.equal(utils.tensor_from_annotation(_annotation(), num_objects=1), tensor[:1])
    assert utils.tensor_from_annotation(_annotation(), device=torch.device("cpu")).device.type == "cpu"
    empty = {"annotation": {"size": {"height": 4, "width": 4}, "object": []}}
    assert utils.tensor_from_annotation(empty).shape == (0, 6)
    with pytest.raises(ValueError, match="missing"):
        utils.tensor_from_annotation({"size": {}})


def test_annotation_tensor_round_trip():
    tensor = utils.tensor_from_annotation(_annotation())
    ann = utils.annotation_from_tensor(tensor, {"height": 100, "width": 200}, ["ped", "car"])
    objects = ann["annotation"]["object"]
    assert [o["name"] for o in objects] == ["ped", "car"]
    assert objects[1]["bndbox"] == pytest.approx({"xmin": 20, "ymin": 10, "xmax": 60, "ymax": 30})
    assert objects[0]["confidence"] == 0.5 and objects[0]["id"] == 0
    assert torch.allclose(utils.tensor_from_annotation(ann), tensor)
    # confidence filter and unnormalized coordinates
    few = utils.annotation_from_tensor(tensor, {"height": 100, "width": 200}, ["ped", "car"],
                                       confidence_th=0.6)
    assert [o["name"] for o in few["annotation"]["object"]] == ["car"]
    raw = utils.annotation_from_tensor(t([[40, 20, 40, 20, 1, 1]]), {"height": 1, "width": 1}, ["a", "b"],
                                       normalized=False)
    assert raw["annotation"]["object"][0]["bndbox"] == {"xmin": 20, "ymin": 10, "xmax": 60, "ymax": 30}
    with pytest.raises(ValueError, match="object_names"):
        utils.annotation_from_tensor(t([[0.5, 0.5, 0.1, 0.1, 1, 7]]), {"height": 1, "width": 1}, ["a"])


def test_box_format_conversions():
    xyxy = t([[0, 10, 4, 16, 0.9, 2]])
    xywh = utils.xxyy_to_xywh([xyxy])[0]
    assert torch.equal(xywh, t([[2, 13, 4, 6, 0.9, 2]]))
    assert torch.equal(utils.xywh_to_xxyy([xywh])[0], xyxy)
    rand = torch.rand(8, 6)
    assert torch.allclose(utils.xxyy_to_xywh(utils.xywh_to_xxyy([rand]))[0], rand, atol=1e-6)
    onehot = utils.onehot_to_labels([t([[1, 2, 3, 4, 0.5, 0.2, 0.8], [1, 2, 3, 4, 0.1, 0.9, 0.1]])],
                                    conf_threshold=0.2)[0]
    assert torch.allclose(onehot, t([[1, 2, 3, 4, 0.4, 1]]))
    plain = utils.onehot_to_labels([t([[1, 2, 3, 4, 0.5, 0.2, 0.8]])], merge_conf=False)[0]
    assert torch.allclose(plain, t([[1, 2, 3, 4, 0.5, 1]]))
    boxes = [t([[100, 50, 20, 10, 1, 0]])]
    same = utils.normalize_bboxes(boxes, 100, 200)
    assert same is boxes and torch.allclose(boxes[0], t([[0.5, 0.5, 0.1, 0.1, 1, 0]]))  # in place
    assert torch.allclose(utils.denormalize_bboxes(boxes, 100, 200)[0], t([[100, 50, 20, 10, 1, 0]]))


def test_merge_annotations():
    merged = utils.merge_annotations(_annotation(), _annotation())
    assert len(merged["annotation"]["object"]) == 6 and merged["object"] is merged["annotation"]["object"]
    assert utils.tensor_from_annotation(merged).shape == (4, 6)
    other = _annotation()
    other["annotation"]["size"]["width"] = 10
    with pytest.raises(ValueError, match="sizes differ"):
        utils.merge_annotations(_annotation(), other)


def test_resize_and_flip_known_boxes():
    ann = _annotation()
    ann["annotation"]["object"][0]["bndbox"]["xmin"] = 20.5
    resized = utils.resize_bounding_boxes(ann, (50, 400))
    assert resized is ann and ann["annotation"]["size"] == {"height": 50, "width": 400}
    expected = {"xmin": 41, "ymin": 5, "xmax": 120, "ymax": 15}
    assert ann["annotation"]["object"][0]["bndbox"] == pytest.approx(expected)
    lr = utils.fliplr_bounding_boxes(_annotation())
    assert lr["annotation"]["object"][0]["bndbox"] == {"xmin": 140, "ymin": 10, "xmax": 180, "ymax": 30}
    assert lr["annotation"]["object"][1]["bndbox"] == {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 100}
    ud = utils.flipud_bounding_boxes(_annotation())
    assert ud["annotation"]["object"][0]["bndbox"] == {"xmin": 20, "ymin": 70, "xmax": 60, "ymax": 90}
    # flipping twice is the identity; the flip of a box is where the flipped image shows it
    twice = utils.fliplr_bounding_boxes(utils.fliplr_bounding_boxes(_annotation()))
    assert twice == _annotation()


# ---------------------------------------------------------------- rendering
GREEN, BLUE, BLACK = (0, 255, 0), (0, 0, 255), (0, 0, 0)


def test_mark_bounding_boxes_pixels():
    image = Image.new("RGB", (30, 20))
    objects = [{"id": 0, "name": "x", "confidence": 0.2,
                "bndbox": {"xmin": 2, "ymin": 3, "xmax": 12, "ymax": 15}},
               {"id": 0, "name": "out", "bndbox": {"xmin": 40, "ymin": 30, "xmax": 50, "ymax": 40}}]
    marked = utils.mark_bounding_boxes(image, objects, thickness=5)
    assert marked is image  # drawn in place
    px = marked.load()
    assert px[7, 15] == GREEN and px[2, 14] == GREEN and px[12, 14] == GREEN  # bottom, left, right edges
    assert px[7, 14] == BLACK and px[20, 17] == BLACK  # inside below the tag, outside
    assert px[20, 4] == GREEN  # 40 x 10 name tag filled with the box color
    tag = [px[x, y] for x in range(2, 30) for y in range(3, 14)]
    assert any(b > 200 and g < 60 for _, g, b in tag)  # the name is written (antialiased blue) on the tag
    # color map: box in the class color, text inverted; tensor images become PIL images
    tensor = torch.zeros(3, 20, 30)
    tensor[:, 18, 25] = 0.5
    marked = utils.mark_bounding_boxes(tensor, objects[:1], box_color_map=[(255, 0, 0)])
    assert isinstance(marked, Image.Image) and marked.size == (30, 20)
    assert marked.getpixel((7, 15)) == (255, 0, 0) and marked.getpixel((25, 18)) == (127, 127, 127)
    gray = utils.mark_bounding_boxes(Image.new("L", (30, 20)), objects[:1])
    assert gray.mode == "RGB" and gray.getpixel((7, 15)) == GREEN


def _boxes(rows):
    return t(rows).reshape(-1, 6)


def test_create_frames_side_by_side_and_video(tmp_path, monkeypatch):
    inputs = torch.zeros(2, 3, 20, 30, 2)
    # ground truth: pixels [3, 13] x [4, 14] -> normalized center (8/30, 9/20), size (10/30, 10/20)
    gt = _boxes([[8 / 30, 9 / 20, 10 / 30, 10 / 20, 1, 1]])
    targets = [[gt, gt], [gt, gt]]
    predictions = [[_boxes([]), _boxes([])], [_boxes([]), _boxes([])]]
    frames = utils.create_frames(inputs, targets, predictions, ["a", "b"], batch=1,
                                 box_color_map=[(255, 0, 0), (0, 0, 255)])
    assert len(frames) == 2 and frames[0].size == (60, 20)
    px = frames[0].load()
    assert px[30 + 8, 14] == (0, 0, 255)  # bottom edge of the ground-truth box, right panel
    assert px[8, 14] == BLACK  # no prediction on the left
    assert any(min(px[x, y]) > 150 for x in range(30) for y in range(15))  # "Prediction" caption (white)
    gray = utils.create_frames(torch.ones(1, 1, 20, 30, 1), [[gt]], [[gt]], ["a", "b"],
                               box_color_map=[(255, 0, 0), (0, 0, 255)])
    assert gray[0].getpixel((25, 18)) == (255, 255, 255)
    with pytest.raises(ValueError, match="N, C, H, W, T"):
        utils.create_frames(torch.zeros(3, 20, 30, 2), targets, predictions, ["a"])
    events = torch.zeros(1, 2, 20, 30, 1)
    events[0, 0, 18, 25, 0] = 1
    frames = utils.create_frames_events(events, [[gt]], [[_boxes([])]], ["a", "b"],
                                        box_color_map=[(255, 0, 0), (0, 0, 255)])
    assert frames[0].getpixel((25, 18)) == (255, 0, 0) and frames[0].getpixel((55, 18)) == (255, 0, 0)
    assert any(min(frames[0].getpixel((x, y))) > 150 for x in range(30, 60) for y in range(15))  # caption
    gif = tmp_path / "video.gif"
    inputs[:, :, :, :, 1] = 0.5  # distinct frames (Pillow merges identical consecutive ones)
    utils.create_video(inputs, targets, predictions, str(gif), ["a", "b"])
    with Image.open(gif) as video:
        assert video.n_frames == 2 and video.size == (60, 20)
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ImportError, match="opencv-python"):
        utils.create_video_events(events, [[gt]], [[gt]], str(tmp_path / "video"), ["a", "b"])


def test_render_events_img():
    events = np.zeros((2, 4, 5))
    events[0, 1, 2] = 1
    events[1, 3, 4] = 2  # clamped
    events[0, 0, 0] = -1  # clamped
    image = utils.render_events_img(events)
    assert image.size == (5, 4)
    assert image.getpixel((2, 1)) == (255, 0, 0) and image.getpixel((4, 3)) == (0, 0, 255)
    assert image.getpixel((0, 0)) == BLACK
    assert utils.render_events_img(torch.from_numpy(events)).getpixel((2, 1)) == (255, 0, 0)
    with pytest.raises(ValueError, match="C >= 2"):
        utils.render_events_img(np.zeros((1, 4, 5)))


# ---------------------------------------------------------------- dataset helpers
def test_dataset_utils():
    image = Image.fromarray(np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert np.array_equal(np.asarray(dutils.flip_lr(image)), [[2, 1, 0], [5, 4, 3]])
    assert np.array_equal(np.asarray(dutils.flip_ud(image)), [[3, 4, 5], [0, 1, 2]])
    with pytest.raises(TypeError, match="PIL image"):
        dutils.flip_lr(np.zeros((2, 3)))
    events = np.arange(12).reshape(3, 4)
    assert np.array_equal(dutils.resize_events_frame(events, (2, 2)), [[0, 2], [4, 6]])
    up = dutils.resize_events_frame(events, (6, 8))
    assert up.shape == (6, 8) and up.dtype == events.dtype and np.array_equal(up[::2, ::2], events)
    polar = np.stack([events, -events], axis=-1)
    assert dutils.resize_events_frame(polar, (2, 2)).shape == (2, 2, 2)
    assert np.array_equal(dutils.fliplr_events(events), events[:, ::-1])
    with pytest.raises(ValueError, match="height, width"):
        dutils.resize_events_frame(np.zeros(3), (2, 2))


def test_annotation_helpers_do_not_share_state():
    ann = _annotation()
    copy_before = copy.deepcopy(ann)
    utils.tensor_from_annotation(ann)
    utils.merge_annotations(ann, ann)
    assert ann == copy_before
