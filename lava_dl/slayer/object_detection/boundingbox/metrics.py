"""Bounding-box overlap measures and average-precision metrics (lava-dl's
``slayer.object_detection.boundingbox.metrics``).

Boxes are given as ``(x_center, y_center, width, height)`` in the first four entries of
the last dimension; further entries (confidence, label, ...) are ignored by the overlap
functions. Detection tensors for the metrics are ``(num_boxes, >= 6)`` rows
``x, y, w, h, confidence, ..., label`` (label last); target tensors are
``(num_boxes, >= 5)`` rows ``x, y, w, h, ..., label``.

Differences from lava-dl (fixes):

- ``bbox_iou`` returns ``iou[i, j] = IoU(bbox1[i], bbox2[j])``. lava-dl computed the
  ``(len(bbox2), len(bbox1))`` matrix and *reshaped* (not transposed) it, so for two sets
  of different sizes the entries were scrambled (its NMS, comparing a set with itself,
  was unaffected).
- ``bbox_ciou``: the center-distance term is the squared distance between the box
  centers as in the CIoU paper. lava-dl's formula reduced to a quarter of the squared
  distance between the right (and bottom) edges, so two boxes with equal right edges
  had no distance penalty. YOLO losses built on it therefore differ from lava-dl's
  whenever the centers differ.
- ``compute_ap`` integrates the interpolated precision over recall starting at recall
  0. lava-dl prepended recall 1, which made the recall samples non-monotonic, and
  ``np.interp`` then returned precision 1 for every recall below 1: its AP was about 1
  for any detector.
- ``average_precision_metrics``: a prediction is matched only against targets of its own
  class (lava-dl matched it to the best-overlapping target of any class once its label
  occurred in the image); a target is consumed only by a prediction that counts as a
  true positive, separately for each IoU threshold (lava-dl let a prediction below the
  threshold use up the target); predictions are matched in decreasing confidence order
  (lava-dl used the given order, which is the same after ``non_maximum_suppression``);
  the F1 score is ``2 p r / (p + r)`` (lava-dl omitted the 2); a list of thresholds
  works (lava-dl raised ``TypeError`` comparing a float with a list); an image whose
  prediction is ``None`` scores zero for each target class like an empty prediction
  tensor (lava-dl skipped it, so missed images did not lower the score).
- ``APstats[iou]`` with a float threshold raises ``RuntimeError`` when the threshold was
  not recorded (lava-dl created the error without raising it and returned ``None``),
  compares thresholds with a tolerance of 1e-9, accepts numpy floats and works for a
  single scalar threshold and for a list of thresholds (lava-dl failed on both).
- Inputs of the wrong shape raise ``ValueError`` naming the argument.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["EPS", "bbox_iou", "wh_iou", "bbox_ciou", "compute_ap", "average_precision_metrics", "APstats"]

#: Small constant added to denominators (union areas, counts) against division by zero.
EPS = 1e-10

_trapezoid = getattr(np, "trapezoid", None) or np.trapz


def _check_boxes(boxes: torch.Tensor, name: str, where: str, columns: int = 4) -> None:
    if not isinstance(boxes, torch.Tensor):
        raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(boxes).__name__}")
    if boxes.dim() < 1 or boxes.shape[-1] < columns:
        raise ValueError(f"{where}: {name} must have at least {columns} entries in its last dimension, "
                         f"got shape {tuple(boxes.shape)}")


def _corners(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flattened ``xmin, xmax, ymin, ymax`` of ``(x_center, y_center, width, height)`` boxes."""
    x, y, w, h = (boxes[..., k].reshape(-1) for k in range(4))
    return x - 0.5 * w, x + 0.5 * w, y - 0.5 * h, y + 0.5 * h


def bbox_iou(bbox1: torch.tensor, bbox2: torch.tensor) -> torch.tensor:
    """Intersection over union of every box of one set with every box of another.

    Parameters
    ----------
    bbox1 : torch.tensor
        Boxes ``(..., >= 4)`` in ``(x_center, y_center, width, height)`` format.
    bbox2 : torch.tensor
        Boxes ``(..., >= 4)`` in the same format, on the same device.

    Returns
    -------
    torch.tensor
        IoUs of shape ``bbox1.shape[:-1] + bbox2.shape[:-1]``; entry ``[i, j]`` is the IoU
        of ``bbox1[i]`` and ``bbox2[j]``. ``EPS`` is added to each union.
    """
    _check_boxes(bbox1, "bbox1", "bbox_iou")
    _check_boxes(bbox2, "bbox2", "bbox_iou")
    xmin1, xmax1, ymin1, ymax1 = (v[:, None] for v in _corners(bbox1))
    xmin2, xmax2, ymin2, ymax2 = (v[None, :] for v in _corners(bbox2))
    dx = (torch.minimum(xmax1, xmax2) - torch.maximum(xmin1, xmin2)).clamp(min=0)
    dy = (torch.minimum(ymax1, ymax2) - torch.maximum(ymin1, ymin2)).clamp(min=0)
    intersection = dx * dy
    area1 = (xmax1 - xmin1) * (ymax1 - ymin1)
    area2 = (xmax2 - xmin2) * (ymax2 - ymin2)
    union = (area1 + area2) - intersection + EPS
    return (intersection / union).reshape(*bbox1.shape[:-1], *bbox2.shape[:-1])


def wh_iou(bbox1: torch.tensor, bbox2: torch.tensor) -> torch.tensor:
    """IoU of every box of one set with every box of another from their sizes alone,
    i.e. as if each pair of boxes shared the same center (their maximal overlap).

    Parameters
    ----------
    bbox1 : torch.tensor
        Box sizes ``(..., >= 2)`` as ``(width, height)``.
    bbox2 : torch.tensor
        Box sizes ``(..., >= 2)`` as ``(width, height)``.

    Returns
    -------
    torch.tensor
        IoUs of shape ``bbox1.shape[:-1] + bbox2.shape[:-1]``; entry ``[i, j]`` compares
        ``bbox1[i]`` with ``bbox2[j]``.
    """
    _check_boxes(bbox1, "bbox1", "wh_iou", columns=2)
    _check_boxes(bbox2, "bbox2", "wh_iou", columns=2)
    w1, h1 = bbox1[..., 0].reshape(-1, 1), bbox1[..., 1].reshape(-1, 1)
    w2, h2 = bbox2[..., 0].reshape(1, -1), bbox2[..., 1].reshape(1, -1)
    intersection = torch.minimum(w1, w2) * torch.minimum(h1, h2)
    union = w1 * h1 + w2 * h2 - intersection + EPS
    return (intersection / union).reshape(*bbox1.shape[:-1], *bbox2.shape[:-1])


def bbox_ciou(bbox1: torch.tensor, bbox2: torch.tensor) -> torch.tensor:
    """Complete IoU (CIoU, https://arxiv.org/abs/1911.08287) of corresponding boxes.

    ``CIoU = IoU - d^2 / c^2 - alpha * v`` with ``d`` the distance between the box
    centers, ``c`` the diagonal of the smallest box enclosing both, ``v`` the aspect-ratio
    consistency ``4 / pi^2 (atan(w1 / h1) - atan(w2 / h2))^2`` and the trade-off
    ``alpha = v / (1 - IoU + v)``, which is treated as a constant (no gradient). It is
    differentiable and is used as a box-regression loss term.

    Parameters
    ----------
    bbox1 : torch.tensor
        Boxes ``(..., >= 4)`` in ``(x_center, y_center, width, height)`` format.
    bbox2 : torch.tensor
        Boxes ``(..., >= 4)`` in the same format; the same number of boxes as ``bbox1``
        (or one box, compared with each of ``bbox1``, or vice versa).

    Returns
    -------
    torch.tensor
        Flat tensor of the CIoU of each pair of boxes (boxes are taken in flattened order).
    """
    _check_boxes(bbox1, "bbox1", "bbox_ciou")
    _check_boxes(bbox2, "bbox2", "bbox_ciou")
    n1, n2 = bbox1[..., 0].numel(), bbox2[..., 0].numel()
    if n1 != n2 and 1 not in (n1, n2):
        raise ValueError(f"bbox_ciou: compares boxes pairwise and needs as many boxes in bbox1 as in bbox2 "
                         f"(or a single box in one of them), got {n1} and {n2}")
    xmin1, xmax1, ymin1, ymax1 = _corners(bbox1)
    xmin2, xmax2, ymin2, ymax2 = _corners(bbox2)
    dx = (torch.minimum(xmax1, xmax2) - torch.maximum(xmin1, xmin2)).clamp(min=0)
    dy = (torch.minimum(ymax1, ymax2) - torch.maximum(ymin1, ymin2)).clamp(min=0)
    intersection = dx * dy
    width1, height1 = xmax1 - xmin1, ymax1 - ymin1
    width2, height2 = xmax2 - xmin2, ymax2 - ymin2
    iou = intersection / (width1 * height1 + width2 * height2 - intersection + EPS)

    enclosing_w = torch.maximum(xmax1, xmax2) - torch.minimum(xmin1, xmin2)
    enclosing_h = torch.maximum(ymax1, ymax2) - torch.minimum(ymin1, ymin2)
    diagonal2 = enclosing_w**2 + enclosing_h**2 + EPS
    # (2 * center distance)^2 / 4 = squared distance between the centers
    center2 = ((xmin2 + xmax2 - xmin1 - xmax1) ** 2 + (ymin2 + ymax2 - ymin1 - ymax1) ** 2) / 4

    v = (4 / np.pi**2) * (torch.atan(width1 / (height1 + EPS)) - torch.atan(width2 / (height2 + EPS))) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + EPS)
    return iou - (center2 / diagonal2 + alpha * v)


def compute_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """Average precision: the area under a precision-recall curve.

    The curve is extended with precision 1 at recall 0 and precision 0 just past the
    last recall (``recall[-1] + 0.01``), made monotonic (each precision replaced by the
    largest precision at that or a higher recall), sampled at the 101 recalls
    ``0, 0.01, ..., 1`` (COCO) by linear interpolation and integrated with the
    trapezoidal rule.

    Parameters
    ----------
    precision : np.ndarray
        Precision after each ranked detection (1-D).
    recall : np.ndarray
        Recall after each ranked detection (1-D, non-decreasing, same length).

    Returns
    -------
    float
        Average precision in ``[0, 1]``.
    """
    precision = np.asarray(precision, dtype=np.float64).reshape(-1)
    recall = np.asarray(recall, dtype=np.float64).reshape(-1)
    if precision.size == 0 or precision.shape != recall.shape:
        raise ValueError(f"compute_ap: expected non-empty precision and recall of the same length, "
                         f"got {precision.size} and {recall.size} points")
    recall = np.concatenate(([0.0], recall, [recall[-1] + 0.01]))
    precision = np.concatenate(([1.0], precision, [0.0]))
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    samples = np.linspace(0, 1, 101)
    return float(_trapezoid(np.interp(samples, recall, envelope), samples))


def _thresholds(iou_threshold, where: str) -> np.ndarray:
    thresholds = np.asarray(iou_threshold, dtype=np.float64).reshape(-1)
    if thresholds.size == 0 or not np.all(np.isfinite(thresholds)):
        raise ValueError(f"{where}: iou_threshold must be a finite number or a non-empty list of them, "
                         f"got {iou_threshold!r}")
    return thresholds


def _check_rows(tensor, name: str, columns: int) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"average_precision_metrics: {name} must be a torch.Tensor (or None), "
                        f"got {type(tensor).__name__}")
    if tensor.dim() != 2 or (tensor.shape[0] > 0 and tensor.shape[1] < columns):
        raise ValueError(f"average_precision_metrics: {name} must be a (num_boxes, >= {columns}) tensor, "
                         f"got shape {tuple(tensor.shape)}")


def _true_positives(pred_labels: np.ndarray, ious: np.ndarray, target_labels: np.ndarray,
                    thresholds: np.ndarray) -> np.ndarray:
    """Greedy matching of confidence-ordered predictions to same-class targets."""
    true_positives = np.zeros((len(pred_labels), len(thresholds)))
    matched = np.zeros((len(thresholds), len(target_labels)), dtype=bool)
    for p, label in enumerate(pred_labels):
        candidates = np.flatnonzero(target_labels == label)
        if candidates.size == 0:
            continue
        best = candidates[np.argmax(ious[p, candidates])]
        hit = (ious[p, best] > thresholds) & ~matched[:, best]
        true_positives[p] = hit
        matched[hit, best] = True
    return true_positives


def average_precision_metrics(
    outputs: list[torch.tensor],
    targets: list[torch.tensor],
    iou_threshold: float | np.ndarray | list[float],
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Precision, recall, average precision and F1 score of each target class of each
    image of a batch.

    In each image the predictions are taken in decreasing confidence and matched
    greedily, separately for each IoU threshold: a prediction is a true positive when
    its best-overlapping target of the same class overlaps it by more than the threshold
    (strictly) and was not matched before; otherwise it is a false positive. Each class
    present in the image's targets is then scored from the ranked predictions of that
    class (zeros when there are none). Images without targets are skipped (there is no
    class to score).

    Parameters
    ----------
    outputs : list of torch.tensor
        Predictions of each image, ``(num_pred, >= 6)`` rows
        ``x_center, y_center, width, height, confidence, ..., label`` (as returned by
        ``non_maximum_suppression``), or ``None`` for no prediction.
    targets : list of torch.tensor
        Ground truth of each image, ``(num_obj, >= 5)`` rows
        ``x_center, y_center, width, height, ..., label`` (as returned by
        ``tensor_from_annotation``), in the same coordinates as the predictions.
    iou_threshold : float or np.ndarray or list of floats
        IoU threshold(s) above which a prediction can be a true positive.

    Returns
    -------
    list of np.ndarray
        Final precision of each image, ``(num_classes, num_thresholds)``.
    list of np.ndarray
        Final recall of each image, ``(num_classes, num_thresholds)``.
    list of np.ndarray
        Average precision of each image, ``(num_classes, num_thresholds)``.
    list of np.ndarray
        F1 score of each image, ``(num_classes, num_thresholds)``.
    list of np.ndarray
        The target classes of each image (sorted), one per row of the arrays above.
    """
    where = "average_precision_metrics"
    thresholds = _thresholds(iou_threshold, where)
    num_iou = thresholds.size
    if len(outputs) != len(targets):
        raise ValueError(f"{where}: got {len(outputs)} outputs but {len(targets)} targets")
    precision_list, recall_list, ap_list, f1_list, classes_list = [], [], [], [], []
    for output, target in zip(outputs, targets):
        _check_rows(target, "each target", 5)
        if target.shape[0] == 0:
            continue
        if output is None:
            output = target.new_zeros((0, 6))
        _check_rows(output, "each output", 6)
        target_boxes = target[:, :4].detach().cpu()
        target_labels = target[:, -1].detach().cpu().numpy()
        order = np.argsort(-output[:, 4].detach().cpu().numpy(), kind="stable")
        output = output.detach().cpu()[torch.from_numpy(order)]
        pred_labels = output[:, -1].numpy()
        ious = bbox_iou(output[:, :4], target_boxes.to(output.dtype)).numpy()
        true_positives = _true_positives(pred_labels, ious, target_labels, thresholds)

        classes = np.unique(target_labels)
        precision = np.zeros((len(classes), num_iou))
        recall = np.zeros((len(classes), num_iou))
        average_precision = np.zeros((len(classes), num_iou))
        for k, c in enumerate(classes):
            selected = pred_labels == c
            if not selected.any():
                continue
            num_truth = int((target_labels == c).sum())
            tp_cum = true_positives[selected].cumsum(axis=0)
            fp_cum = (1 - true_positives[selected]).cumsum(axis=0)
            recall_curve = tp_cum / (num_truth + EPS)
            precision_curve = tp_cum / (tp_cum + fp_cum)
            recall[k] = recall_curve[-1]
            precision[k] = precision_curve[-1]
            for t in range(num_iou):
                average_precision[k, t] = compute_ap(precision_curve[:, t], recall_curve[:, t])
        precision_list.append(precision)
        recall_list.append(recall)
        ap_list.append(average_precision)
        f1_list.append(2 * precision * recall / (precision + recall + EPS))
        classes_list.append(classes)
    return precision_list, recall_list, ap_list, f1_list, classes_list


class APstats:
    """Running mean average precision over batches.

    Each :meth:`update` adds the average precision of every (image, target class) pair
    of a batch (see :func:`average_precision_metrics`); :meth:`ap_scores` is their mean
    per IoU threshold.

    Parameters
    ----------
    iou_threshold : float or np.ndarray or list of floats
        IoU threshold(s) above which a prediction can be a true positive.
    """

    def __init__(self, iou_threshold: float | np.ndarray | list[float]) -> None:
        self._thresholds = _thresholds(iou_threshold, "APstats")
        self.num_iou = self._thresholds.size
        self.iou_threshold = iou_threshold
        self.reset()

    def reset(self) -> None:
        """Forget all accumulated statistics."""
        self.ap_sum = np.zeros(self.num_iou)
        self.count = 0

    def update(self, predictions: list[torch.tensor], targets: list[torch.tensor]) -> None:
        """Accumulate the average precisions of a batch.

        Parameters
        ----------
        predictions : list of torch.tensor
            Predictions of each image (see :func:`average_precision_metrics`).
        targets : list of torch.tensor
            Ground truth of each image.
        """
        ap = average_precision_metrics(predictions, targets, self.iou_threshold)[2]
        if ap:
            ap = np.concatenate(ap)
            self.ap_sum += ap.sum(axis=0)
            self.count += ap.shape[0]

    def ap_scores(self) -> np.ndarray:
        """Mean average precision for each IoU threshold (zeros before any update).

        Returns
        -------
        np.ndarray
            mAP of each threshold, shape ``(num_thresholds,)``.
        """
        if self.count == 0:
            return self.ap_sum.copy()
        return self.ap_sum / self.count

    def __getitem__(self, iou: float | int | slice) -> float:
        """Select mAP scores.

        Parameters
        ----------
        iou : float or int or slice
            A float selects the recorded IoU threshold of that value; an int indexes the
            thresholds; ``[:]`` gives the mean over all thresholds (e.g. mAP@0.5:0.95);
            any other slice gives the selected scores as an array.

        Returns
        -------
        float
            The selected mAP score (an array for a partial slice).

        Raises
        ------
        RuntimeError
            If a float threshold was not recorded.
        """
        if isinstance(iou, slice) and iou == slice(None):
            return float(np.mean(self.ap_scores()))
        if isinstance(iou, (float, np.floating)):
            hits = np.flatnonzero(np.isclose(self._thresholds, float(iou), rtol=0, atol=1e-9))
            if hits.size == 0:
                raise RuntimeError(f"APstats: IoU threshold {iou} is not recorded; "
                                   f"use one of {self._thresholds.tolist()}")
            return self.ap_scores()[hits[0]].item()
        return self.ap_scores()[iou]
