"""YOLO building blocks of lava-dl's ``slayer.object_detection``: target encoding, loss and network base.

* :class:`YOLOtarget` turns the bounding boxes of a frame into one target tensor per prediction
  scale (which anchor of which cell is responsible for which object) and collates data-set
  samples into batches.
* :class:`YOLOLoss` is the multi-part YOLO loss (coordinates, objectness, no-object, class and
  complete-IoU terms) evaluated on the raw network output.
* :class:`YOLOBase` is the base ``torch.nn.Module`` of the SDNN YOLO models
  (:mod:`lava_dl.slayer.object_detection.models`): anchors as a buffer, the raw-output reshaping
  (:meth:`YOLOBase.yolo_raw`) and the decoding into boxes (:meth:`YOLOBase.yolo`).

Tensor conventions
------------------
A bounding box is ``(x_center, y_center, width, height, confidence, label)`` with coordinates
normalised to the image size (``[0, 1]``). The raw output of a prediction head is
``(batch, anchor, height, width, prediction, time)`` with ``prediction = (tx, ty, tw, th,
objectness, class logits...)``; a target tensor of one scale is ``(batch, anchor, height, width,
6, time)`` holding ``(x offset in the cell, y offset in the cell, width and height in cells,
objectness, label)``, where objectness is 1 (responsible anchor), 0 (no object) or -1 (ignored).

Differences from lava-dl
------------------------
* :meth:`YOLOtarget.forward` marks an anchor as ignored (objectness -1) when it is free and its
  width/height IoU with the object exceeds ``ignore_iou_thres`` (the usual YOLOv3 rule).
  lava-dl's condition ``not (taken and iou > thres)`` ignored every other free anchor whatever
  its IoU and overwrote anchors already assigned to a previous object (objectness 1) with -1,
  silently dropping that object. An anchor is "taken" only by an assignment (1), so an anchor
  that an earlier object merely ignored can still be assigned. Cell indices of boxes centred on
  the far border (``x = 1`` or ``y = 1``) are clamped into the grid (lava-dl indexed past it).
* :class:`YOLOLoss` no longer modifies the target tensors in place (lava-dl replaced their
  width/height by the log-space values, so a second evaluation with the same targets gave a
  different loss), and a term over an empty set of cells (no object in a frame or at a scale)
  contributes zero instead of NaN.
* :meth:`YOLOBase.init_model` measures the head sizes in training mode whatever the module's mode
  and leaves the module's buffers (batch-norm running means) and mode as they were; lava-dl failed
  in evaluation mode and updated the running means with its random probe input.
* ``_yolo_target`` takes the one-hot width as ``num_classes`` (lava-dl always used
  ``x.shape[-1] - 5``, i.e. one class for the targets :class:`YOLOtarget` makes, and failed on any
  other label).
* Bad arguments (mismatched anchors and scales, wrong tensor ranks) raise ``ValueError`` naming the
  problem; NaN/inf in a decoded prediction raise ``RuntimeError`` naming the offending parts.
"""

from __future__ import annotations

import contextlib
import typing as ty

import numpy as np
import torch
import torch.nn.functional as F

from lava_dl.core import records
from lava_dl.slayer import quantize as _quantize
from lava_dl.slayer.object_detection.boundingbox.metrics import bbox_ciou, wh_iou
from lava_dl.slayer.object_detection.boundingbox.utils import tensor_from_annotation
from lava_dl.slayer.utils import event_rate, quantize_hook_fx

__all__ = ["YOLOtarget", "YOLOLoss", "YOLOBase"]

#: Default anchors of :class:`YOLOBase` (three scales of three anchors, ``(width, height)``).
_DEFAULT_ANCHORS = (
    ((0.28, 0.22), (0.38, 0.48), (0.90, 0.78)),
    ((0.07, 0.15), (0.15, 0.11), (0.14, 0.29)),
    ((0.02, 0.03), (0.04, 0.07), (0.08, 0.06)),
)


def _anchor_tensor(anchors, where: str) -> torch.Tensor:
    """``anchors`` as a float tensor ``(scales, anchors per scale, 2)``, checked."""
    if torch.is_tensor(anchors):
        tensor = anchors.detach().to(torch.float32)
    else:
        try:
            tensor = torch.tensor(anchors, dtype=torch.float32)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: anchors must be a nested sequence (scales, anchors, 2) of numbers, "
                             f"got {anchors!r}") from err
    if tensor.dim() != 3 or tensor.shape[-1] != 2 or tensor.shape[0] < 1 or tensor.shape[1] < 1:
        raise ValueError(f"{where}: anchors must have shape (scales, anchors per scale, 2), "
                         f"got {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all() or (tensor <= 0).any():
        raise ValueError(f"{where}: anchor widths and heights must be finite and positive")
    return tensor


def _grid(height: int, width: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column index of every cell of a ``height x width`` grid, shaped ``(H, W)``."""
    rows = torch.arange(height, dtype=like.dtype, device=like.device)
    cols = torch.arange(width, dtype=like.dtype, device=like.device)
    return rows[:, None].expand(height, width), cols[None, :].expand(height, width)


def _yolo(x: torch.Tensor, anchors: torch.Tensor, clamp_max: float = 5.0) -> torch.Tensor:
    """Decode a raw head output into boxes normalised to the image.

    Parameters
    ----------
    x : torch.Tensor
        Raw prediction ``(batch, anchor, height, width, 5 + classes, time)``.
    anchors : torch.Tensor
        ``(anchor, 2)`` anchor widths and heights (in grid cells of this head).
    clamp_max : float
        Upper clamp of the raw width/height before the exponential.

    Returns
    -------
    torch.Tensor
        Same shape: ``x = (sigmoid(tx) + column) / W``, ``y = (sigmoid(ty) + row) / H``,
        ``w = exp(min(tw, clamp_max)) anchor_w / W``, ``h = exp(min(th, clamp_max)) anchor_h / H``,
        objectness ``sigmoid``, class probabilities ``softmax`` over the classes.
    """
    if x.dim() != 6 or x.shape[-2] < 5:
        raise ValueError("_yolo: expected a raw prediction (batch, anchor, height, width, 5 + classes, "
                         f"time), got shape {tuple(x.shape)}")
    if anchors.shape != (x.shape[1], 2):
        raise ValueError(f"_yolo: expected anchors of shape ({x.shape[1]}, 2) for {x.shape[1]} anchors, "
                         f"got {tuple(anchors.shape)}")
    height, width = x.shape[2], x.shape[3]
    rows, cols = _grid(height, width, x)
    cols = cols[None, None, :, :, None, None]
    rows = rows[None, None, :, :, None, None]
    anchors = anchors.to(dtype=x.dtype, device=x.device)
    anchor_w = anchors[:, 0].reshape(1, -1, 1, 1, 1, 1)
    anchor_h = anchors[:, 1].reshape(1, -1, 1, 1, 1, 1)
    parts = {
        "x": (torch.sigmoid(x[..., 0:1, :]) + cols) / width,
        "y": (torch.sigmoid(x[..., 1:2, :]) + rows) / height,
        "width": torch.exp(x[..., 2:3, :].clamp(max=clamp_max)) * anchor_w / width,
        "height": torch.exp(x[..., 3:4, :].clamp(max=clamp_max)) * anchor_h / height,
        "confidence": torch.sigmoid(x[..., 4:5, :]),
        "classes": torch.softmax(x[..., 5:, :], dim=-2),
    }
    bad = [name for name, value in parts.items() if not torch.isfinite(value).all()]
    if bad:
        raise RuntimeError(f"_yolo: NaN or inf in the decoded {', '.join(bad)}")
    return torch.cat(list(parts.values()), dim=-2)


def _yolo_target(x: torch.Tensor, anchors: torch.Tensor, num_classes: int | None = None) -> torch.Tensor:
    """Decode a target tensor of one scale into normalised boxes with one-hot classes.

    Parameters
    ----------
    x : torch.Tensor
        Target ``(batch, anchor, height, width, 5 + classes)``: cell offsets, width and height in
        cells, objectness, and the label in column 5.
    anchors : torch.Tensor
        ``(anchor, 2)``; only the anchor count matters (target sizes are not anchor-relative).
    num_classes : int, optional
        Width of the one-hot labels; default ``x.shape[-1] - 5`` (lava-dl's, which is 1 for
        the 6-field targets of :class:`YOLOtarget`).

    Returns
    -------
    torch.Tensor
        ``(batch, anchor, height, width, 5 + classes, 1)``: normalised ``x, y, w, h``, objectness,
        one-hot label.
    """
    if x.dim() != 5 or x.shape[-1] < 6:
        raise ValueError("_yolo_target: expected a target (batch, anchor, height, width, 5 + classes), "
                         f"got shape {tuple(x.shape)}")
    if anchors.shape[0] != x.shape[1]:
        raise ValueError(f"_yolo_target: {anchors.shape[0]} anchors for a target with {x.shape[1]}")
    height, width = x.shape[2], x.shape[3]
    rows, cols = _grid(height, width, x)
    boxes = torch.stack([(x[..., 0] + cols) / width, (x[..., 1] + rows) / height,
                         x[..., 2] / width, x[..., 3] / height, x[..., 4]], dim=-1)
    num_classes = x.shape[-1] - 5 if num_classes is None else int(num_classes)
    labels = x[..., 5].long()
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"_yolo_target: labels must lie in [0, {num_classes}), got [{int(labels.min())}, "
                         f"{int(labels.max())}]; pass num_classes")
    classes = F.one_hot(labels, num_classes=num_classes).to(x.dtype)
    return torch.cat([boxes, classes], dim=-1).unsqueeze(-1)


class YOLOtarget:
    """Encode bounding boxes as YOLO targets, one tensor per prediction scale.

    Every object is assigned, on each scale, to the cell holding its centre and to the anchor
    of best width/height IoU that is still free there (objectness 1, then cell offsets, size in
    cells and label). Other free anchors of that cell whose IoU exceeds ``ignore_iou_thres`` are
    ignored (objectness -1) so that the loss neither rewards nor penalises them.

    Parameters
    ----------
    anchors : sequence or torch.Tensor
        Anchors ``(scales, anchors per scale, 2)`` as ``(width, height)`` pairs.
    scales : sequence of (int, int)
        Grid size ``(W, H)`` of each prediction scale (x, y order), as
        :attr:`YOLOBase.scale` after :meth:`YOLOBase.init_model`.
    num_classes : int
        Number of object classes.
    ignore_iou_thres : float
        IoU above which a non-assigned anchor is ignored, default 0.5.
    """

    def __init__(self, anchors, scales, num_classes: int, ignore_iou_thres: float = 0.5) -> None:
        anchors = _anchor_tensor(anchors, "YOLOtarget").cpu()
        scales = [tuple(int(v) for v in s) for s in scales]
        if len(scales) != anchors.shape[0]:
            raise ValueError(f"YOLOtarget: {anchors.shape[0]} anchor scales but {len(scales)} grid scales "
                             f"(anchors {anchors.tolist()}, scales {scales})")
        if any(len(s) != 2 or min(s) < 1 for s in scales):
            raise ValueError(f"YOLOtarget: every scale must be a positive (W, H) pair, got {scales}")
        self.anchors = anchors
        self.scales = scales
        self.num_classes = int(num_classes)
        self.flat_anchors = anchors.reshape(-1, 2)
        self.ignore_iou_thres = float(ignore_iou_thres)
        self.num_scales, self.num_anchors = anchors.shape[0], anchors.shape[1]

    def forward(self, targets: torch.Tensor) -> list[torch.Tensor]:
        """Target tensors of one frame.

        Parameters
        ----------
        targets : torch.Tensor
            ``(objects, 6)`` boxes ``(x, y, w, h, confidence, label)`` normalised to the image
            (as :func:`~lava_dl.slayer.object_detection.boundingbox.utils.tensor_from_annotation`
            returns them); an empty tensor gives all-zero targets.

        Returns
        -------
        list of torch.Tensor
            One ``(anchors, H, W, 6)`` tensor per scale.
        """
        out = [torch.zeros(self.num_anchors, h, w, 6) for (w, h) in self.scales]
        if not torch.is_tensor(targets):
            raise TypeError(f"YOLOtarget: targets must be a tensor, got {type(targets).__name__}")
        if targets.numel() == 0:
            return out
        if targets.dim() != 2 or targets.shape[1] != 6:
            raise ValueError("YOLOtarget: targets must be (objects, 6) boxes (x, y, w, h, confidence, "
                             f"label), got shape {tuple(targets.shape)}")
        targets = targets.detach().cpu().to(torch.float32)
        for box in targets:
            x, y, width, height, _, label = box.tolist()
            ious = wh_iou(box[None, 2:4], self.flat_anchors).flatten()
            assigned = [False] * self.num_scales
            for flat in torch.argsort(ious, descending=True).tolist():
                scale, anchor = divmod(flat, self.num_anchors)
                grid_w, grid_h = self.scales[scale]
                row = min(max(int(y * grid_h), 0), grid_h - 1)
                col = min(max(int(x * grid_w), 0), grid_w - 1)
                cell = out[scale][anchor, row, col]
                taken = bool(cell[4] == 1)
                if not taken and not assigned[scale]:
                    cell[:] = torch.tensor([grid_w * x - col, grid_h * y - row, width * grid_w,
                                            height * grid_h, 1.0, float(int(label))])
                    assigned[scale] = True
                elif not taken and ious[flat] > self.ignore_iou_thres:
                    cell[4] = -1
        return out

    __call__ = forward

    def collate_fn(self, batch):
        """Collate ``(frames, annotations)`` samples for object detection.

        Parameters
        ----------
        batch : list of (torch.Tensor, list of dict)
            Samples of a data set: frames ``(C, H, W, T)`` and one annotation dictionary per time
            step (the format of
            :func:`~lava_dl.slayer.object_detection.boundingbox.utils.tensor_from_annotation`).

        Returns
        -------
        torch.Tensor
            Stacked frames ``(batch, C, H, W, T)``.
        list of torch.Tensor
            Per scale, the targets ``(batch, anchors, H, W, 6, T)``.
        list of list of torch.Tensor
            Per time step, the box tensor of every sample.
        """
        if not batch:
            raise ValueError("YOLOtarget.collate_fn: empty batch")
        frames, targets, boxes = [], [], []
        for frame, sample_annotations in batch:
            frames.append(frame)
            sample_boxes = [tensor_from_annotation(ann) for ann in sample_annotations]
            per_time = [self.forward(b) for b in sample_boxes]
            boxes.append(sample_boxes)
            targets.append([torch.stack([t[scale] for t in per_time], dim=-1)
                            for scale in range(self.num_scales)])
        steps = len(boxes[0])
        if any(len(b) != steps for b in boxes):
            raise ValueError("YOLOtarget.collate_fn: samples have different numbers of annotated time steps")
        return (torch.stack(frames),
                [torch.stack([t[scale] for t in targets]) for scale in range(self.num_scales)],
                [[b[t] for b in boxes] for t in range(steps)])


def _mean_or_zero(loss_fn, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``loss_fn(prediction, target)``, or a zero that keeps the graph when there is nothing to average."""
    if prediction.shape[0] == 0:
        return prediction.sum() * 0.0
    return loss_fn(prediction, target)


class YOLOLoss(torch.nn.Module):
    """YOLO loss on the raw head outputs.

    For each time step and scale the loss is the weighted sum of

    * coordinates: MSE of ``(sigmoid(tx), sigmoid(ty), tw, th)`` against ``(x offset, y offset,
      log(w / anchor_w), log(h / anchor_h))`` over the responsible anchors;
    * objectness: BCE of the objectness logit against ``(1 - alpha_iou) + alpha_iou * CIoU``
      (CIoU clamped at 0, no gradient) over the responsible anchors;
    * no-object: BCE of the objectness logit against 0 over the anchors without object
      (ignored anchors, objectness -1, count in neither);
    * class: cross entropy with label smoothing over the responsible anchors;
    * IoU: mean of ``(1 - CIoU)^2`` over the responsible anchors;

    with the weights ``lambda_coord``, ``lambda_obj``, ``lambda_noobj``, ``lambda_cls`` and
    ``lambda_iou``.

    Parameters
    ----------
    anchors : sequence or torch.Tensor
        Anchors ``(scales, anchors per scale, 2)``, those of the network.
    lambda_coord : float
        Coordinate loss weight, default 1.
    lambda_noobj : float
        No-object loss weight, default 10.
    lambda_obj : float
        Objectness loss weight, default 5.
    lambda_cls : float
        Class loss weight, default 1.
    lambda_iou : float
        IoU loss weight, default 1.
    alpha_iou : float
        Share of the CIoU in the objectness target, default 0.25.
    startup_samples : int
        Number of samples counted as start-up (kept for lava-dl compatibility; the loss does not
        use it), default 10000.
    label_smoothing : float
        Label smoothing of the class loss, default 0.1.

    Attributes
    ----------
    samples : int
        Number of samples (batch entries) seen by :meth:`forward`.
    """

    def __init__(self, anchors, lambda_coord: float = 1, lambda_noobj: float = 10.0, lambda_obj: float = 5.0,
                 lambda_cls: float = 1.0, lambda_iou: float = 1.0, alpha_iou: float = 0.25,
                 startup_samples: int = 10000, label_smoothing: float = 0.1) -> None:
        super().__init__()
        self.register_buffer("anchors", _anchor_tensor(anchors, "YOLOLoss"))
        self.num_scales, self.num_anchors = self.anchors.shape[0], self.anchors.shape[1]
        self.flat_anchors = self.anchors.reshape(-1, 2)
        self.mse = torch.nn.MSELoss(reduction="mean")
        self.bce = torch.nn.BCEWithLogitsLoss(reduction="mean")
        self.cel = torch.nn.CrossEntropyLoss(reduction="mean", label_smoothing=label_smoothing)
        self.lambda_coord = float(lambda_coord)
        self.lambda_noobj = float(lambda_noobj)
        self.lambda_obj = float(lambda_obj)
        self.lambda_cls = float(lambda_cls)
        self.lambda_iou = float(lambda_iou)
        self.alpha_iou = float(alpha_iou)
        self.startup_samples = startup_samples
        self.samples = 0

    def forward(self, predictions: ty.Sequence[torch.Tensor],
                targets: ty.Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss of a batch.

        Parameters
        ----------
        predictions : list of torch.Tensor
            Raw head outputs ``(batch, anchors, H, W, 5 + classes, T)``, one per scale (the
            training-mode output of the models).
        targets : list of torch.Tensor
            Targets ``(batch, anchors, H, W, 6, T)`` per scale (:meth:`YOLOtarget.collate_fn`).

        Returns
        -------
        torch.Tensor
            Scalar loss, summed over time steps and scales.
        torch.Tensor
            The five weighted parts (coordinates, objectness, no-object, class, IoU) summed over
            time steps and scales, detached.
        """
        if len(predictions) != self.num_scales or len(targets) != self.num_scales:
            raise ValueError(f"YOLOLoss: expected {self.num_scales} prediction and target scales, got "
                             f"{len(predictions)} and {len(targets)}")
        for p, t in zip(predictions, targets):
            if p.dim() != 6 or t.dim() != 6 or p.shape[:4] != t.shape[:4] or p.shape[-1] != t.shape[-1]:
                raise ValueError("YOLOLoss: predictions (N, A, H, W, P, T) and targets (N, A, H, W, 6, T) "
                                 f"do not match: {tuple(p.shape)} and {tuple(t.shape)}")
            if p.shape[1] != self.num_anchors or t.shape[-2] != 6:
                raise ValueError(f"YOLOLoss: expected {self.num_anchors} anchors and 6 target fields, got "
                                 f"predictions {tuple(p.shape)} and targets {tuple(t.shape)}")
        total = 0
        parts = []
        for step in range(predictions[0].shape[-1]):
            for p, t, a in zip(predictions, targets, self.anchors):
                loss, distribution = self.forward_scale(p[..., step], t[..., step].to(p.device),
                                                        a.to(p.device))
                total = total + loss
                parts.append(torch.stack([d.detach() for d in distribution]))
        self.samples += predictions[0].shape[0]
        return total, torch.stack(parts).sum(dim=0).cpu()

    def forward_scale(self, predictions: torch.Tensor, targets: torch.Tensor,
                      anchors: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Loss of one scale at one time step.

        Parameters
        ----------
        predictions : torch.Tensor
            Raw output ``(batch, anchors, H, W, 5 + classes)``.
        targets : torch.Tensor
            Targets ``(batch, anchors, H, W, 6)`` (not modified).
        anchors : torch.Tensor
            ``(anchors, 2)`` of this scale.

        Returns
        -------
        torch.Tensor
            The weighted loss.
        list of torch.Tensor
            Its five weighted parts (coordinates, objectness, no-object, class, IoU).
        """
        obj = targets[..., 4] == 1
        noobj = targets[..., 4] == 0
        anchors = anchors.reshape(1, -1, 1, 1, 2).to(predictions.dtype)
        targets = targets.to(predictions.dtype)

        no_object_loss = _mean_or_zero(self.bce, predictions[..., 4:5][noobj], targets[..., 4:5][noobj])

        p_obj = predictions[obj]
        t_obj = targets[obj]
        a_obj = anchors.expand(*predictions.shape[:4], 2)[obj]
        box_preds = torch.cat([torch.sigmoid(p_obj[:, 0:2]), torch.exp(p_obj[:, 2:4]) * a_obj], dim=-1)
        ious = bbox_ciou(box_preds, t_obj[:, :4]) if len(p_obj) else p_obj[:, 0] * 0.0
        weight = (1 - self.alpha_iou) + self.alpha_iou * ious.detach().clamp(0)
        object_loss = _mean_or_zero(self.bce, p_obj[:, 4], weight * t_obj[:, 4])
        iou_loss = torch.mean((1 - ious) ** 2) if len(p_obj) else p_obj.sum() * 0.0

        coord_pred = torch.cat([torch.sigmoid(p_obj[:, 0:2]), p_obj[:, 2:4]], dim=-1)
        coord_target = torch.cat([t_obj[:, 0:2], torch.log(t_obj[:, 2:4] / a_obj + 1e-16)], dim=-1)
        coord_loss = _mean_or_zero(self.mse, coord_pred, coord_target)
        cls_loss = _mean_or_zero(self.cel, p_obj[:, 5:], t_obj[:, 5].long())

        distribution = [self.lambda_coord * coord_loss, self.lambda_obj * object_loss,
                        self.lambda_noobj * no_object_loss, self.lambda_cls * cls_loss,
                        self.lambda_iou * iou_loss]
        return sum(distribution), distribution


class YOLOBase(torch.nn.Module):
    """Base of the temporal YOLO networks: anchors, raw-output layout and box decoding.

    Parameters
    ----------
    num_classes : int
        Number of object classes, default 20.
    anchors : sequence or torch.Tensor
        Anchors ``(scales, anchors per scale, 2)``; default three scales of three anchors.
    clamp_max : float
        Upper clamp of the raw width/height before the exponential of :meth:`yolo` (training
        stability), default 5.

    Attributes
    ----------
    anchors : torch.Tensor
        Buffer ``(scales, anchors per scale, 2)`` (saved in the state dict).
    num_output : int
        Output channels of a head, ``anchors per scale * (5 + num_classes)``.
    scale : list of (int, int) or None
        Grid ``(W, H)`` of each head, set by :meth:`init_model`.
    """

    def __init__(self, num_classes: int = 20, anchors=_DEFAULT_ANCHORS, clamp_max: float = 5.0) -> None:
        super().__init__()
        if int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"{type(self).__name__}: num_classes must be a positive integer, "
                             f"got {num_classes!r}")
        self.register_buffer("anchors", _anchor_tensor(anchors, type(self).__name__))
        self.num_scales, self.num_anchors = self.anchors.shape[0], self.anchors.shape[1]
        self.num_classes = int(num_classes)
        self.num_output = self.num_anchors * (5 + self.num_classes)
        self.clamp_max = clamp_max
        self.scale = None

    def yolo(self, x: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """Decoded boxes of one head.

        Parameters
        ----------
        x : torch.Tensor
            Raw head output ``(batch, anchors, H, W, 5 + classes, T)`` (:meth:`yolo_raw`).
        anchors : torch.Tensor
            ``(anchors, 2)`` of the head.

        Returns
        -------
        torch.Tensor
            ``(batch, anchors * H * W, 5 + classes, T)`` boxes ``(x, y, w, h, confidence,
            class probabilities)`` normalised to the image.
        """
        n, p, t = x.shape[0], x.shape[-2], x.shape[-1]
        return _yolo(x, anchors, self.clamp_max).reshape(n, -1, p, t)

    def yolo_raw(self, x: torch.Tensor) -> torch.Tensor:
        """Reorder a head's output ``(batch, anchors * (5 + classes), H, W, T)`` into
        ``(batch, anchors, H, W, 5 + classes, T)``.

        Parameters
        ----------
        x : torch.Tensor
            Output of the head's last layer.

        Returns
        -------
        torch.Tensor
            The raw prediction tensor (a view where possible).
        """
        if x.dim() != 5 or x.shape[1] % self.num_anchors:
            raise ValueError(f"yolo_raw: expected (batch, {self.num_anchors} * predictions, H, W, T), "
                             f"got shape {tuple(x.shape)}")
        n, _, h, w, t = x.shape
        return x.reshape(n, self.num_anchors, -1, h, w, t).permute(0, 1, 3, 4, 2, 5)

    def init_model(self, input_dim: tuple[int, int, int] = (448, 448, 3)) -> None:
        """Set :attr:`scale` (the ``(W, H)`` grid of every head) for inputs of size ``input_dim``.

        Runs one random frame through the network without gradient; the mode and the buffers
        (norm running means) are left as they were.

        Parameters
        ----------
        input_dim : (int, int, int)
            Input ``(H, W, C)``, default ``(448, 448, 3)``.
        """
        height, width, channels = input_dim
        buffers = {name: b.detach().clone() for name, b in self.named_buffers()}
        training = self.training
        try:
            self.train()
            with torch.no_grad():
                probe = torch.rand(1, channels, height, width, 1, device=self.anchors.device)
                heads = self.forward(probe)[0]
        finally:
            with torch.no_grad():
                for name, b in self.named_buffers():
                    if name in buffers and b.shape == buffers[name].shape:
                        b.copy_(buffers[name])
            self.train(training)
        self.scale = [(int(h.shape[3]), int(h.shape[2])) for h in heads]

    def validate_gradients(self) -> None:
        """Zero all gradients if any of them holds NaN or inf (skips a bad update)."""
        for param in self.parameters():
            grad = param.grad
            if grad is not None and not torch.isfinite(grad).all():
                self.zero_grad()
                return


# ---------------------------------------------------------------------------------------------
# Private helpers shared by the models of lava_dl.slayer.object_detection.models
# ---------------------------------------------------------------------------------------------

#: ImageNet normalisation of RGB frames ``(1, 3, 1, 1, 1)`` applied by the frame-based models.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _quantize_8bit(x: torch.Tensor, scale: int = 1 << 6, descale: bool = False) -> torch.Tensor:
    """The models' weight quantizer: :func:`~lava_dl.slayer.utils.quantize_hook_fx` with 8 bits."""
    return quantize_hook_fx(x, scale=scale, num_bits=8, descale=descale)


def _normalize(net: torch.nn.Module, frames: torch.Tensor) -> torch.Tensor:
    """ImageNet-normalised ``frames`` ``(N, 3, H, W, T)`` (the statistics follow the input's device)."""
    if frames.dim() != 5 or frames.shape[1] != 3:
        raise ValueError(f"{type(net).__name__}: expected RGB frames (batch, 3, height, width, time), "
                         f"got shape {tuple(frames.shape)}")
    if net.normalize_mean.device != frames.device:
        net.normalize_mean = net.normalize_mean.to(frames.device)
        net.normalize_std = net.normalize_std.to(frames.device)
    return (frames - net.normalize_mean) / net.normalize_std


def _run_blocks(blocks, x: torch.Tensor, count: list, sparsity_monitor=None, monitor_all: bool = True):
    """Run ``x`` through ``blocks``, logging each output's event rate in ``count`` and adding the
    outputs of the neuron blocks (every block when ``monitor_all``) to ``sparsity_monitor``."""
    for block in blocks:
        x = block(x)
        count.append(event_rate(x))
        if sparsity_monitor is not None and (monitor_all or hasattr(block, "neuron")):
            sparsity_monitor.append(x)
    return x


def _event_counts(count: list, device: torch.device) -> torch.Tensor:
    """Event-rate statistics ``(1, layers)`` as the models return them."""
    return torch.tensor([float(c) for c in count], dtype=torch.float32).reshape(1, -1).to(device)


def _grad_flow(blocks, path: str) -> list:
    """Gradient norm of every weighted block of ``blocks``, plotted to ``path + 'gradFlow.png'``."""
    import matplotlib.pyplot as plt

    grad = [b.synapse.grad_norm for b in blocks
            if hasattr(b, "synapse") and b.synapse.weight.requires_grad]
    plt.figure()
    plt.semilogy(grad)
    plt.savefig(path + "gradFlow.png")
    plt.close()
    return grad


def _load_model(net: torch.nn.Module, model_file: str, head_weights: ty.Sequence[str]) -> None:
    """Load a saved state dict (lava-dl's or ours) into ``net``, skipping the head weights whose shape
    differs (another number of classes) and printing the saved entries that were not loaded."""
    # map_location: lava-dl's trained files hold CUDA tensors (its loader failed without a GPU)
    saved = torch.load(model_file, map_location=net.anchors.device, weights_only=True)
    if not isinstance(saved, ty.Mapping):
        raise TypeError(f"load_model: {model_file} does not hold a state dict, got {type(saved).__name__}")
    saved = dict(saved)
    own = net.state_dict()
    present = [k for k in head_weights if k in saved]
    mismatch = any(k not in own or own[k].shape != saved[k].shape for k in present)
    skipped_values = {k: saved.pop(k) for k in present} if mismatch else {}
    result = net.load_state_dict(saved, strict=False)
    for key in [*skipped_values, *result.unexpected_keys]:
        print(f"Model parameter {key} was not loaded.")


def _export_sigma_head(handle, synapse: torch.nn.Module, sigma: torch.nn.Module,
                       clip_weights: bool = False) -> None:
    """Write a conv synapse followed by a sigma integrator as an hdf5 ``conv`` record with a sigma
    output neuron (``sigma_output``); the shapes are known after one forward. Weights that the
    quantizer would clamp raise unless ``clip_weights`` (then the clamped ones are written)."""
    if sigma.shape is None:
        raise RuntimeError("export_hdf5: the head's shape is unknown; run one forward before export")
    weight = synapse.weight
    if synapse.pre_hook_fx is not None:
        clipping = _quantize.allow_clipping() if clip_weights else contextlib.nullcontext()
        with clipping, _quantize.no_clipping("head synapse weight"):
            weight = synapse.pre_hook_fx(weight, descale=True)
    weight = weight.detach().cpu().numpy().astype(np.float64)
    if not np.all(np.isfinite(weight)) or not np.array_equal(weight, np.round(weight)):
        raise ValueError("export_hdf5: the head's deployed weights are not finite integers")
    records.write_conv(handle, shape=tuple(int(s) for s in sigma.shape),
                       weight=weight.reshape(weight.shape[:4]).astype(np.float32),
                       in_channels=synapse.in_channels, out_channels=synapse.out_channels,
                       kernel_size=tuple(synapse.kernel_size), stride=tuple(synapse.stride),
                       padding=tuple(synapse.padding), dilation=tuple(synapse.dilation),
                       groups=synapse.groups, neuron=sigma.device_params())
