"""YOLO base (decode, targets, loss) and the SDNN YOLO models of ``lava_dl.slayer.object_detection``."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch

from lava_dl.slayer.object_detection.models import tiny_yolov3_str, yolo_kp, yolo_kp_events
from lava_dl.slayer.object_detection.yolo_base import YOLOBase, YOLOLoss, YOLOtarget, _yolo, _yolo_target

# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------

def test_yolo_decode_matches_hand_computation():
    # 1 anchor, H=2, W=3, one class; zeros except one cell
    x = torch.zeros(1, 1, 2, 3, 6, 1)
    x[0, 0, 1, 2, :, 0] = torch.tensor([math.log(3.0), -math.log(3.0), 10.0, math.log(2.0), 0.0, 0.0])
    anchors = torch.tensor([[0.5, 2.0]])
    y = _yolo(x, anchors, clamp_max=5.0)
    assert y.shape == x.shape
    # a zero cell (row 0, col 1): centre of the cell, anchor-sized box, confidence 1/2, class prob 1
    torch.testing.assert_close(y[0, 0, 0, 1, :, 0],
                               torch.tensor([1.5 / 3, 0.5 / 2, 0.5 / 3, 2.0 / 2, 0.5, 1.0]))
    # the set cell (row 1, col 2): sigmoid(log 3) = 3/4, sigmoid(-log 3) = 1/4, tw clamped to 5
    torch.testing.assert_close(y[0, 0, 1, 2, :, 0],
                               torch.tensor([(0.75 + 2) / 3, (0.25 + 1) / 2, math.exp(5.0) * 0.5 / 3,
                                             2.0 * 2.0 / 2, 0.5, 1.0]))


def test_yolo_decode_class_softmax_and_nan_error():
    x = torch.zeros(1, 2, 1, 1, 7, 1)
    x[0, 1, 0, 0, 5:, 0] = torch.tensor([0.0, math.log(3.0)])
    y = _yolo(x, torch.ones(2, 2))
    torch.testing.assert_close(y[0, 1, 0, 0, 5:, 0], torch.tensor([0.25, 0.75]))
    x[0, 0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(RuntimeError, match="NaN or inf"):
        _yolo(x, torch.ones(2, 2))
    with pytest.raises(ValueError, match="anchors"):
        _yolo(torch.zeros(1, 2, 1, 1, 7, 1), torch.ones(3, 2))


def test_yolo_raw_layout_and_flattened_boxes():
    base = YOLOBase(num_classes=1, anchors=[[(1.0, 1.0), (2.0, 2.0)]])
    assert base.num_output == 2 * 6
    n, h, w, t = 1, 2, 3, 2
    x = torch.arange(n * 12 * h * w * t, dtype=torch.float32).reshape(n, 12, h, w, t)
    raw = base.yolo_raw(x)
    assert raw.shape == (n, 2, h, w, 6, t)
    # channel a * 6 + p of the head output is prediction p of anchor a
    assert raw[0, 1, 1, 2, 4, 1] == x[0, 1 * 6 + 4, 1, 2, 1]
    boxes = base.yolo(raw * 0, base.anchors[0])
    assert boxes.shape == (n, 2 * h * w, 6, t)
    with pytest.raises(ValueError, match="yolo_raw"):
        base.yolo_raw(torch.zeros(1, 13, 2, 2, 1))


def test_yolo_target_decoding():
    t = torch.zeros(1, 1, 2, 2, 6)
    t[0, 0, 1, 0] = torch.tensor([0.5, 0.25, 1.0, 0.5, 1.0, 2.0])
    y = _yolo_target(t, torch.ones(1, 2), num_classes=3)
    assert y.shape == (1, 1, 2, 2, 8, 1)
    expected = torch.tensor([0.25, 0.625, 0.5, 0.25, 1.0, 0.0, 0.0, 1.0])
    torch.testing.assert_close(y[0, 0, 1, 0, :, 0], expected)
    with pytest.raises(ValueError, match="num_classes"):
        _yolo_target(t, torch.ones(1, 2))


# --------------------------------------------------------------------------------------------
# targets
# --------------------------------------------------------------------------------------------

def test_target_assigns_box_to_cell_and_best_anchor():
    target = YOLOtarget(anchors=[[(0.3, 0.3), (0.1, 0.1)]], scales=[(4, 4)], num_classes=3)
    out = target.forward(torch.tensor([[0.6, 0.3, 0.28, 0.32, 1.0, 2.0]]))
    assert len(out) == 1 and out[0].shape == (2, 4, 4, 6)
    # centre (0.6, 0.3) lies in row int(0.3*4) = 1, column int(0.6*4) = 2; anchor 0 fits best
    torch.testing.assert_close(out[0][0, 1, 2], torch.tensor([0.4, 0.2, 1.12, 1.28, 1.0, 2.0]))
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, 1, 2] = True
    assert (out[0][..., 4][~mask] == 0).all()  # the other anchor's IoU (0.11) is below 0.5: not ignored


def test_target_ignores_free_anchor_above_threshold_and_keeps_earlier_assignment():
    anchors = [[(0.3, 0.3), (0.25, 0.3), (0.02, 0.02)]]
    target = YOLOtarget(anchors=anchors, scales=[(2, 2)], num_classes=2, ignore_iou_thres=0.5)
    boxes = torch.tensor([[0.3, 0.3, 0.3, 0.3, 1.0, 0.0],      # best: anchor 0
                          [0.4, 0.2, 0.02, 0.02, 1.0, 1.0]])   # same cell, best: anchor 2
    out = target.forward(boxes)[0]
    assert out[0, 0, 0, 4] == 1 and out[0, 0, 0, 5] == 0      # kept for the first object
    assert out[1, 0, 0, 4] == -1                              # IoU 0.83 with the first: ignored
    assert out[2, 0, 0, 4] == 1 and out[2, 0, 0, 5] == 1
    # a second object of the same size in the same cell takes the next free anchor
    out = target.forward(torch.tensor([[0.3, 0.3, 0.3, 0.3, 1.0, 0.0],
                                       [0.2, 0.2, 0.3, 0.3, 1.0, 1.0]]))[0]
    assert out[0, 0, 0, 5] == 0 and out[1, 0, 0, 4] == 1 and out[1, 0, 0, 5] == 1


def test_target_one_anchor_per_scale_and_border_and_errors():
    target = YOLOtarget(anchors=[[(0.5, 0.5)], [(0.1, 0.1)]], scales=[(2, 2), (4, 3)], num_classes=1)
    out = target.forward(torch.tensor([[1.0, 1.0, 0.2, 0.2, 1.0, 0.0]]))
    assert [o.shape for o in out] == [(1, 2, 2, 6), (1, 3, 4, 6)]
    assert out[0][0, 1, 1, 4] == 1 and out[1][0, 2, 3, 4] == 1  # border centre clamped into the grid
    assert all((o[..., 4] == 1).sum() == 1 for o in out)
    assert all((o == 0).all() for o in target.forward(torch.zeros(0, 6)))
    with pytest.raises(ValueError, match="scales"):
        YOLOtarget(anchors=[[(0.5, 0.5)]], scales=[(2, 2), (4, 4)], num_classes=1)
    with pytest.raises(ValueError, match=r"\(objects, 6\)"):
        target.forward(torch.zeros(2, 5))


def test_collate_fn_shapes():
    target = YOLOtarget(anchors=[[(0.3, 0.3), (0.1, 0.1)]], scales=[(4, 4)], num_classes=3)

    def ann(xmin, xmax, label):
        return {"annotation": {"size": {"height": 100, "width": 100},
                               "object": [{"id": label, "name": str(label),
                                           "bndbox": {"xmin": xmin, "xmax": xmax, "ymin": 10, "ymax": 40}}]}}

    batch = [(torch.rand(3, 8, 8, 2), [ann(10, 40, 1), ann(20, 50, 2)]),
             (torch.rand(3, 8, 8, 2), [ann(50, 90, 0), ann(55, 95, 0)])]
    frames, targets, boxes = target.collate_fn(batch)
    assert frames.shape == (2, 3, 8, 8, 2)
    assert len(targets) == 1 and targets[0].shape == (2, 2, 4, 4, 6, 2)
    assert len(boxes) == 2 and len(boxes[0]) == 2 and boxes[1][0].shape == (1, 6)
    assert (targets[0][..., 4, :] == 1).sum() == 4


# --------------------------------------------------------------------------------------------
# loss
# --------------------------------------------------------------------------------------------

def _perfect_prediction(target: torch.Tensor, anchors: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Raw predictions that reproduce ``target`` (N, A, H, W, 6, T) exactly."""
    shape = (*target.shape[:4], 5 + num_classes, target.shape[-1])
    p = torch.full(shape, -30.0)
    p[..., 0:2, :] = 0.0
    p[..., 2:4, :] = 0.0
    obj = target[..., 4, :] == 1
    a = anchors.reshape(1, -1, 1, 1, 2, 1).expand(*target.shape[:4], 2, target.shape[-1])
    xy = target[..., 0:2, :].clamp(1e-6, 1 - 1e-6)
    wh = torch.log(target[..., 2:4, :].clamp(min=1e-6) / a)
    for k in range(2):
        p[..., k, :] = torch.where(obj, torch.logit(xy[..., k, :]), p[..., k, :])
        p[..., 2 + k, :] = torch.where(obj, wh[..., k, :], p[..., 2 + k, :])
    p[..., 4, :] = torch.where(obj, torch.tensor(30.0), torch.tensor(-30.0))
    label = target[..., 5, :].long()
    for c in range(num_classes):
        p[..., 5 + c, :] = torch.where(obj & (label == c), torch.tensor(30.0), torch.tensor(-30.0))
    return p


def _loss_setup():
    anchors = [[(0.3, 0.3), (0.1, 0.1)]]
    target = YOLOtarget(anchors=anchors, scales=[(4, 4)], num_classes=3)
    t = torch.stack([target.forward(torch.tensor([[0.6, 0.3, 0.28, 0.32, 1.0, 2.0],
                                                  [0.1, 0.8, 0.05, 0.12, 1.0, 0.0]]))[0]], dim=0)
    t = t.unsqueeze(-1)  # N, A, H, W, 6, T=1
    return torch.tensor(anchors), t


def test_loss_near_zero_for_perfect_prediction_and_positive_otherwise():
    anchors, t = _loss_setup()
    loss_fn = YOLOLoss(anchors, label_smoothing=0.0)
    p = _perfect_prediction(t, anchors[0], 3)
    before = t.clone()
    loss, parts = loss_fn([p], [t])
    assert parts.shape == (5,)
    assert float(loss) < 1e-4, parts
    torch.testing.assert_close(t, before)  # the targets are not modified
    loss2, _ = loss_fn([p], [t])
    assert float(loss2) == float(loss)
    # a wrong class and a shifted box give a positive class loss and coordinate/IoU losses
    q = p.clone()
    q[0, 0, 1, 2, 5:, 0] = torch.tensor([30.0, -30.0, -30.0])
    q[0, 0, 1, 2, 0, 0] += 2.0
    q.requires_grad_(True)
    loss, parts = loss_fn([q], [t])
    assert parts[0] > 1e-3 and parts[3] > 1.0 and parts[4] > 1e-3
    assert math.isclose(float(loss.detach()), float(parts.sum()), rel_tol=1e-5)
    loss.backward()
    assert torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0
    assert loss_fn.samples == 3


def test_loss_without_objects_is_finite_no_object_term_only():
    anchors = torch.tensor([[(0.3, 0.3), (0.1, 0.1)]])
    t = torch.zeros(1, 2, 4, 4, 6, 2)
    p = torch.zeros(1, 2, 4, 4, 8, 2, requires_grad=True)
    loss, parts = YOLOLoss(anchors, lambda_noobj=10.0)([p], [t])
    # BCE(logit 0, target 0) = log 2 per step, two steps
    assert math.isclose(float(loss.detach()), 2 * 10.0 * math.log(2.0), rel_tol=1e-5)
    assert parts[0] == 0 and parts[1] == 0 and parts[3] == 0 and parts[4] == 0
    loss.backward()
    assert torch.isfinite(p.grad).all()
    with pytest.raises(ValueError, match="scales"):
        YOLOLoss(anchors)([p, p], [t, t])


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kp():
    torch.manual_seed(0)
    return yolo_kp.Network(num_classes=2)


def test_yolo_kp_shapes_init_model_and_modes(kp):
    x = torch.rand(1, 3, 64, 64, 2)
    kp.train()
    before = {k: v.clone() for k, v in kp.state_dict().items() if "running_mean" in k}
    kp.eval()
    kp.init_model((64, 64, 3))
    assert kp.scale == [(2, 2)] and not kp.training
    after = {k: v for k, v in kp.state_dict().items() if "running_mean" in k}
    assert all(torch.equal(before[k], after[k]) for k in before)
    kp.train()
    (raw,), count = kp(x)
    assert raw.shape == (1, 3, 2, 2, 7, 2)
    assert count.shape == (1, 1 + 9 + 2)
    kp.eval()
    with torch.no_grad():
        boxes, _ = kp(x)
    assert boxes.shape == (1, 12, 7, 2)
    assert ((boxes[..., 4, :] >= 0) & (boxes[..., 4, :] <= 1)).all()
    torch.testing.assert_close(boxes[..., 5:, :].sum(dim=-2), torch.ones(1, 12, 2, dtype=boxes.dtype))
    with pytest.raises(ValueError, match="RGB frames"):
        kp(torch.rand(1, 2, 64, 64, 1))


def test_yolo_kp_state_dict_round_trip_and_load_model(kp, tmp_path, capsys):
    path = tmp_path / "kp.pt"
    torch.save(kp.state_dict(), path)
    other = yolo_kp.Network(num_classes=2)
    other.load_state_dict(torch.load(path), strict=True)
    for key, value in kp.state_dict().items():
        torch.testing.assert_close(other.state_dict()[key], value)
    # another class count: everything but the head weight loads (lava-dl's behaviour)
    five = yolo_kp.Network(num_classes=5)
    five.load_model(str(path))
    assert "heads.0.weight was not loaded" in capsys.readouterr().out
    torch.testing.assert_close(five.state_dict()["blocks.8.neuron.norm.running_mean"],
                               kp.state_dict()["blocks.8.neuron.norm.running_mean"])


def test_yolo_kp_export_loads_in_netx(kp, tmp_path):
    from lava_dl import netx

    kp.eval()
    with torch.no_grad():
        kp(torch.rand(1, 3, 64, 64, 1))
    path = tmp_path / "kp.net"
    kp.export_hdf5(str(path))
    net = netx.hdf5.Network(net_config=str(path))
    assert len(net.layers) == 1 + 9 + 1
    assert tuple(net.out.shape) == (2, 2, 3 * 7)  # netx's (x, y, c) order
    # a head weight beyond the 8-bit range: an error, or clamped on request
    saved = kp.heads[0].weight.detach().clone()
    with torch.no_grad():
        kp.heads[0].weight[0, 0] = 100.0
    try:
        with pytest.raises(ValueError):
            kp.export_hdf5(str(tmp_path / "big.net"))
        kp.export_hdf5(str(tmp_path / "big.net"), clip_weights=True)
        with h5py.File(tmp_path / "big.net") as f:
            assert f["layer/10/weight"][0, 0, 0, 0] == 510  # quantize_hook_fx's 8-bit maximum
    finally:
        with torch.no_grad():
            kp.heads[0].weight.copy_(saved)


def test_yolo_kp_sparsity_monitor(kp):
    from lava_dl.slayer.loss import SparsityEnforcer

    monitor = SparsityEnforcer(max_rate=0.0)
    kp.train()
    kp(torch.rand(1, 3, 64, 64, 1), sparsity_monitor=monitor)
    assert len(monitor.loss_list) == 9


def test_tiny_yolov3_str_shapes(tmp_path):
    torch.manual_seed(1)
    net = tiny_yolov3_str.Network(num_classes=1)
    x = torch.rand(1, 3, 64, 64, 1)
    net.init_model((64, 64, 3))
    assert net.scale == [(2, 2), (4, 4)]
    heads, count = net(x)
    assert [h.shape for h in heads] == [(1, 3, 2, 2, 6, 1), (1, 3, 4, 4, 6, 1)]
    assert count.shape == (1, 1 + 5 + 4 + 3 + 2 + 3)
    net.eval()
    with torch.no_grad():
        boxes, _ = net(x)
    assert boxes.shape == (1, 3 * 4 + 3 * 16, 6, 1)
    # the fine head's grid positions: column c of a 4-wide grid decodes into [c/4, (c+1)/4]
    xs = boxes[0, 12:, 0, 0].reshape(3, 4, 4)
    assert ((xs >= torch.arange(4) / 4) & (xs <= (torch.arange(4) + 1) / 4)).all()
    with pytest.raises(ValueError, match="2 scales"):
        tiny_yolov3_str.Network(anchors=[[(0.1, 0.1)]])
    # the heads train together with the loss
    net.train()
    target = YOLOtarget(net.anchors, net.scale, num_classes=1)
    t = [s.unsqueeze(0).unsqueeze(-1) for s in target.forward(torch.tensor([[0.5, 0.5, 0.3, 0.4, 1.0, 0.0]]))]
    loss, parts = YOLOLoss(net.anchors)(net(x)[0], t)
    loss.backward()
    assert np.isfinite(float(loss.detach())) and net.head1_blocks[1].weight.grad is not None
    grads = net.grad_flow(str(tmp_path) + "/")  # the Unpool kernel is fixed: no gradient
    assert len(grads) == 5 + 4 + 1 + 1 + 1 and (tmp_path / "gradFlow.png").exists()


def test_yolo_kp_events_shapes_and_export(tmp_path):
    from lava_dl import netx

    torch.manual_seed(2)
    net = yolo_kp_events.Network(num_classes=2)
    x = (torch.rand(1, 2, 64, 64, 3) < 0.3).float()
    (raw,), count = net(x)
    assert raw.shape == (1, 3, 2, 2, 7, 3) and count.shape == (1, 9 + 2)
    assert "input_blocks" not in dict(net.named_children())
    net.eval()
    with torch.no_grad():
        boxes, _ = net(x)
    assert boxes.shape == (1, 12, 7, 3)
    path = tmp_path / "kpe.net"
    net.export_hdf5(str(path))
    loaded = netx.hdf5.Network(net_config=str(path), input_shape=(64, 64, 2))
    assert len(loaded.layers) == 9 + 1
    with pytest.raises(ValueError, match="event frames"):
        net(torch.rand(1, 3, 64, 64, 1))
