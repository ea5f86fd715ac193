"""Bounding-box utilities of object detection (lava-dl's
``slayer.object_detection.boundingbox.utils``): non-maximum suppression, conversions
between box tensors and annotation dictionaries, box geometry (formats, normalization,
resizing, flipping) and rendering of detections into images and videos.

Box tensors hold one object per row: ``x_center, y_center, width, height, confidence,
label`` (raw network predictions: ``x, y, w, h, objectness, class scores...``).
Annotations are dictionaries in the Pascal-VOC-like layout used by lava-dl's datasets::

    {'annotation': {'size': {'height': h, 'width': w},
                    'object': [{'id': label, 'name': name, 'confidence': c (optional),
                                'bndbox': {'xmin': ., 'ymin': ., 'xmax': ., 'ymax': .}}, ...]}}

Only torch, numpy and Pillow are needed (lava-dl also imported torchvision and cv2).

Differences from lava-dl (fixes):

- ``non_maximum_suppression`` sorts by score with a stable sort, so equal scores keep
  their input order (lava-dl's unstable ``argsort`` left it unspecified); otherwise it
  keeps the same boxes in the same order (see its docstring for the exact rule).
- ``xywh_to_xxyy`` returns the corners ``(x - w/2, y - h/2, x + w/2, y + h/2)``; lava-dl
  returned ``(x, y, x + w, y + h)``, treating the center as the top-left corner.
- ``tensor_from_annotation`` works for any ``device`` (lava-dl's ``torch.FloatTensor(...,
  device=...)`` failed for CUDA), returns a ``(0, 6)`` tensor when no object is left
  (lava-dl: shape ``(0,)``), reads numeric strings in the box coordinates, treats
  ``num_objects=0`` as "no object" (lava-dl returned all of them) and orders objects of
  equal area deterministically (later object first, as lava-dl's sort did for small
  lists).
- ``merge_annotations`` puts the merged objects under ``['annotation']['object']`` like
  every other annotation (lava-dl put them at the top level only, so the result did not
  round-trip through ``tensor_from_annotation``); the top-level ``'object'`` key is kept
  as an alias of the same list for code written against lava-dl.
- ``resize_bounding_boxes``, ``flipud_bounding_boxes`` and ``fliplr_bounding_boxes`` no
  longer truncate the coordinates to integers before transforming them (lava-dl lost up
  to a pixel per box edge, before scaling); the new frame size is stored as given.
- ``mark_bounding_boxes`` skips boxes lying entirely outside the image (Pillow raised
  on them in lava-dl), draws on an RGB copy of a grayscale/palette image (colored boxes
  cannot be drawn on those), and converts a float tensor image by clamping to
  ``[0, 1]`` before scaling to 0..255 (values outside wrapped around in lava-dl).
- ``create_frames`` accepts one-channel (grayscale) inputs (lava-dl failed on them) and,
  like ``render_events_img``, clamps pixel values instead of letting them wrap around in
  the ``uint8`` conversion. ``create_frames_events`` writes its "Ground Truth" caption
  inside the frame (lava-dl anchored it right of x = 5, i.e. outside the image).
- ``create_video`` and ``create_video_events`` write an animated GIF with Pillow when
  ``output_path`` ends with ``.gif`` (no extra dependency). Otherwise they write
  ``output_path + '.mp4'`` with OpenCV as lava-dl did, and raise ``ImportError`` naming
  ``opencv-python`` when ``cv2`` is not installed.
- Inputs of the wrong shape or type raise ``ValueError``/``TypeError`` naming the argument.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from PIL import Image as Img
from PIL import ImageDraw
from PIL.Image import Image

from .metrics import bbox_iou

__all__ = [
    "RGB", "Width", "Height", "non_maximum_suppression", "nms", "annotation_from_tensor",
    "tensor_from_annotation", "onehot_to_labels", "xxyy_to_xywh", "xywh_to_xxyy", "normalize_bboxes",
    "denormalize_bboxes", "merge_annotations", "mark_bounding_boxes", "resize_bounding_boxes",
    "flipud_bounding_boxes", "fliplr_bounding_boxes", "create_frames", "create_frames_events",
    "create_video", "create_video_events", "render_events_img",
]

_CPU = torch.device("cpu")

#: Type alias of one 0..255 color channel value.
RGB = int
#: Type alias of a width in pixels.
Width = int
#: Type alias of a height in pixels.
Height = int


def _check_rows(tensor, name: str, where: str, columns: int) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() != 2 or tensor.shape[1] < columns:
        raise ValueError(f"{where}: {name} must be a (num_boxes, >= {columns}) tensor, "
                         f"got shape {tuple(tensor.shape)}")


def _suppression_pass(detections: torch.Tensor, nms_threshold: float) -> torch.Tensor:
    """Mask of the score-sorted detections that no higher-scoring detection of the same
    class overlaps by more than ``nms_threshold``."""
    ious = bbox_iou(detections, detections)
    same_class = (detections[:, 5:6] == detections[:, 5:6].T).to(ious.dtype)
    overlaps = (ious * same_class > nms_threshold).triu(1)
    return ~overlaps.any(dim=0)


def non_maximum_suppression(predictions: list[torch.tensor],
                            conf_threshold: float = 0.5,
                            nms_threshold: float = 0.4,
                            merge_conf: bool = True,
                            max_detections: int = 300,
                            max_iterations: int = 100) -> list[torch.tensor]:
    """Non-maximum suppression of raw box predictions, image by image.

    For each image, boxes whose objectness is not above ``conf_threshold`` are dropped;
    each remaining box gets its most likely class as label and a score (objectness times
    that class's score when ``merge_conf``, else the objectness), and the boxes are
    sorted by decreasing score (stable). A box is then suppressed when any
    higher-scoring box of the same class overlaps it with an IoU above
    ``nms_threshold``, whether or not that box is suppressed itself (lava-dl's rule,
    which suppresses a little more than greedy NMS on chains of overlapping boxes). The
    pass is repeated on the survivors until nothing changes, at most ``max_iterations``
    times (one pass already reaches the fixed point; ``max_iterations=0`` disables the
    suppression). At most ``max_detections`` of the best boxes are returned.

    Parameters
    ----------
    predictions : list of torch.tensor
        Predictions of each image, ``(num_boxes, 5 + num_classes)`` rows
        ``x_center, y_center, width, height, objectness, class scores...``.
    conf_threshold : float, optional
        Objectness a box must exceed to be considered, by default 0.5.
    nms_threshold : float, optional
        IoU above which the lower-scoring of two same-class boxes is suppressed, by
        default 0.4.
    merge_conf : bool, optional
        Whether the score multiplies the objectness with the class score, by default
        True.
    max_detections : int, optional
        Most boxes returned per image, by default 300.
    max_iterations : int, optional
        Most suppression passes, by default 100.

    Returns
    -------
    list of torch.tensor
        Kept boxes of each image, ``(num_kept, 6)`` rows
        ``x_center, y_center, width, height, score, label``, by decreasing score.
    """
    if max_detections < 0:
        raise ValueError(f"non_maximum_suppression: max_detections must be >= 0, got {max_detections}")
    result = []
    for pred in predictions:
        _check_rows(pred, "each prediction", "non_maximum_suppression", 6)
        filtered = pred[pred[:, 4] > conf_threshold]
        if filtered.shape[0] == 0:
            result.append(torch.zeros((0, 6), dtype=pred.dtype, device=pred.device))
            continue
        class_conf, labels = filtered[:, 5:].max(dim=1, keepdim=True)
        scores = filtered[:, 4:5] * class_conf if merge_conf else filtered[:, 4:5]
        detections = torch.cat([filtered[:, :4], scores, labels.to(filtered.dtype)], dim=-1)
        if detections.shape[0] > 1:
            order = torch.sort(scores[:, 0], descending=True, stable=True).indices
            detections = detections[order]
            for _ in range(max_iterations):
                keep = _suppression_pass(detections, nms_threshold)
                if bool(keep.all()):
                    break
                detections = detections[keep]
        result.append(detections[:max_detections])
    return result


def annotation_from_tensor(tensor: torch.tensor,
                           frame_size: dict[str, int],
                           object_names: Iterable[str],
                           confidence_th: float = 0.01,
                           normalized: bool = True) -> dict[str, Any]:
    """Annotation dictionary of the boxes of one image.

    Parameters
    ----------
    tensor : torch.tensor
        Boxes ``(..., >= 6)`` rows ``x_center, y_center, width, height, confidence,
        label`` of one image (no batch).
    frame_size : dict
        Frame size ``{'height': h, 'width': w}``, stored as the annotation's size.
    object_names : sequence of str
        Object name of each class label.
    confidence_th : float, optional
        Boxes with a lower confidence are left out, by default 0.01.
    normalized : bool, optional
        Whether the box coordinates are normalized to ``[0, 1]`` (they are then scaled
        to pixels with ``frame_size``), by default True.

    Returns
    -------
    dict
        ``{'annotation': {'size': frame_size, 'object': [...]}}`` with objects
        ``{'id': label, 'name': name, 'confidence': conf,
        'bndbox': {'xmin': ., 'ymin': ., 'xmax': ., 'ymax': .}}``.
    """
    where = "annotation_from_tensor"
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{where}: tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() < 1 or tensor.shape[-1] < 6:
        raise ValueError(f"{where}: tensor must have rows of at least 6 values "
                         f"(x, y, w, h, confidence, label), got shape {tuple(tensor.shape)}")
    if normalized:
        height, width = frame_size["height"], frame_size["width"]
    else:
        height = width = 1
    names = list(object_names)
    rows = tensor.detach().reshape(-1, tensor.shape[-1]).cpu().numpy()
    xmin = (rows[:, 0] - rows[:, 2] / 2) * width
    ymin = (rows[:, 1] - rows[:, 3] / 2) * height
    xmax = (rows[:, 0] + rows[:, 2] / 2) * width
    ymax = (rows[:, 1] + rows[:, 3] / 2) * height
    objects = []
    for i in range(rows.shape[0]):
        confidence = rows[i, 4].item()
        if confidence < confidence_th:
            continue
        label = int(rows[i, 5])
        if not 0 <= label < len(names):
            raise ValueError(f"{where}: label {label} has no entry in object_names ({len(names)} names)")
        objects.append({
            "id": label,
            "name": names[label],
            "confidence": confidence,
            "bndbox": {"xmin": xmin[i].item(), "ymin": ymin[i].item(),
                       "xmax": xmax[i].item(), "ymax": ymax[i].item()},
        })
    return {"annotation": {"size": frame_size, "object": objects}}


def tensor_from_annotation(ann: dict[str, Any],
                           device: torch.device = _CPU,
                           num_objects: int | None = None,
                           normalized: bool = True) -> torch.tensor:
    """Box tensor of the objects of one annotation dictionary.

    Objects with an empty box (``xmax <= xmin`` or ``ymax <= ymin``) are left out; the
    others are sorted by decreasing box area (equal areas: later object first).

    Parameters
    ----------
    ann : dict
        Annotation ``{'annotation': {'size': {'height': h, 'width': w}, 'object': [...]}}``
        (see the module docstring); an object without ``'confidence'`` gets 1.
    device : torch.device, optional
        Device of the returned tensor, by default the CPU.
    num_objects : int, optional
        Most objects returned (the largest ones); all of them when None (default).
    normalized : bool, optional
        Whether to normalize the coordinates to ``[0, 1]`` by the annotation's size, by
        default True.

    Returns
    -------
    torch.tensor
        ``(num_objects, 6)`` float32 tensor, one object per row:
        ``x_center, y_center, width, height, confidence, label``.
    """
    where = "tensor_from_annotation"
    try:
        annotation = ann["annotation"]
        objects = annotation["object"]
    except (KeyError, TypeError) as error:
        raise ValueError(f"{where}: expected {{'annotation': {{'size': ..., 'object': [...]}}}}, "
                         f"missing {error}") from None
    if num_objects is not None and num_objects < 0:
        raise ValueError(f"{where}: num_objects must be >= 0 or None, got {num_objects}")
    if normalized:
        height = int(annotation["size"]["height"])
        width = int(annotation["size"]["width"])
    else:
        height = width = 1
    boxes, areas = [], []
    for obj in objects:
        box = obj["bndbox"]
        xmin, xmax = float(box["xmin"]), float(box["xmax"])
        ymin, ymax = float(box["ymin"]), float(box["ymax"])
        if xmax <= xmin or ymax <= ymin:
            continue
        boxes.append([(xmin + xmax) / width / 2, (ymin + ymax) / height / 2,
                      (xmax - xmin) / width, (ymax - ymin) / height,
                      float(obj.get("confidence", 1.0)), float(obj["id"])])
        areas.append((xmax - xmin) * (ymax - ymin))
    order = np.argsort(np.asarray(areas, dtype=np.float64), kind="stable")[::-1]
    if num_objects is not None:
        order = order[:num_objects]
    rows = [boxes[i] for i in order]
    return torch.tensor(rows, dtype=torch.float32, device=device).reshape(len(rows), 6)


def onehot_to_labels(predictions: list[torch.tensor],
                     conf_threshold: float = 0.0,
                     merge_conf: bool = True) -> list[torch.tensor]:
    """Replace the class scores of raw predictions by the most likely class label.

    Parameters
    ----------
    predictions : list of torch.tensor
        Raw predictions of each image, ``(num_boxes, 5 + num_classes)`` rows
        ``x, y, w, h, objectness, class scores...``.
    conf_threshold : float, optional
        Boxes whose (merged) confidence is not above it are dropped, by default 0.
    merge_conf : bool, optional
        Whether the confidence is the objectness times the best class score (else the
        objectness alone), by default True.

    Returns
    -------
    list of torch.tensor
        ``(num_kept, 6)`` rows ``x, y, w, h, confidence, label`` of each image.
    """
    result = []
    for pred in predictions:
        _check_rows(pred, "each prediction", "onehot_to_labels", 6)
        class_conf, labels = pred[:, 5:].max(dim=1, keepdim=True)
        confidence = pred[:, 4:5] * class_conf if merge_conf else pred[:, 4:5].clone()
        rows = torch.cat([pred[:, :4], confidence, labels.to(pred.dtype)], dim=1)
        result.append(rows[rows[:, 4] > conf_threshold])
    return result


def xxyy_to_xywh(predictions: list[torch.tensor]) -> list[torch.tensor]:
    """Convert boxes from corners ``(x_min, y_min, x_max, y_max)`` to
    ``(x_center, y_center, width, height)``; other columns are copied unchanged.

    Parameters
    ----------
    predictions : list of torch.tensor
        ``(num_boxes, >= 4)`` tensors of each image.

    Returns
    -------
    list of torch.tensor
        Converted copies.
    """
    result = []
    for pred in predictions:
        _check_rows(pred, "each prediction", "xxyy_to_xywh", 4)
        out = pred.clone()
        out[:, 0] = (pred[:, 0] + pred[:, 2]) / 2
        out[:, 1] = (pred[:, 1] + pred[:, 3]) / 2
        out[:, 2] = pred[:, 2] - pred[:, 0]
        out[:, 3] = pred[:, 3] - pred[:, 1]
        result.append(out)
    return result


def xywh_to_xxyy(predictions: list[torch.tensor]) -> list[torch.tensor]:
    """Convert boxes from ``(x_center, y_center, width, height)`` to corners
    ``(x_min, y_min, x_max, y_max)``; other columns are copied unchanged.

    Parameters
    ----------
    predictions : list of torch.tensor
        ``(num_boxes, >= 4)`` tensors of each image.

    Returns
    -------
    list of torch.tensor
        Converted copies.
    """
    result = []
    for pred in predictions:
        _check_rows(pred, "each prediction", "xywh_to_xxyy", 4)
        out = pred.clone()
        out[:, 0] = pred[:, 0] - pred[:, 2] / 2
        out[:, 1] = pred[:, 1] - pred[:, 3] / 2
        out[:, 2] = pred[:, 0] + pred[:, 2] / 2
        out[:, 3] = pred[:, 1] + pred[:, 3] / 2
        result.append(out)
    return result


def _scale_bboxes(predictions, height, width, where: str, divide: bool):
    for pred in predictions:
        _check_rows(pred, "each prediction", where, 4)
        if not pred.is_floating_point():
            raise TypeError(f"{where}: boxes are scaled in place and must be floating point, "
                            f"got {pred.dtype}")
        if divide:
            pred[:, [0, 2]] /= width
            pred[:, [1, 3]] /= height
        else:
            pred[:, [0, 2]] *= width
            pred[:, [1, 3]] *= height
    return predictions


def normalize_bboxes(predictions: list[torch.tensor], height: Height, width: Width) -> list[torch.tensor]:
    """Divide box coordinates by the frame size (pixels to ``[0, 1]``), in place.

    Parameters
    ----------
    predictions : list of torch.tensor
        ``(num_boxes, >= 4)`` float tensors ``x_center, y_center, width, height, ...``;
        they are modified in place.
    height : Height
        Frame height.
    width : Width
        Frame width.

    Returns
    -------
    list of torch.tensor
        The same list, with its tensors normalized.
    """
    return _scale_bboxes(predictions, height, width, "normalize_bboxes", divide=True)


def denormalize_bboxes(predictions: list[torch.tensor], height: Height, width: Width) -> list[torch.tensor]:
    """Multiply box coordinates by the frame size (``[0, 1]`` to pixels), in place.

    Parameters
    ----------
    predictions : list of torch.tensor
        ``(num_boxes, >= 4)`` float tensors ``x_center, y_center, width, height, ...``;
        they are modified in place.
    height : Height
        Frame height.
    width : Width
        Frame width.

    Returns
    -------
    list of torch.tensor
        The same list, with its tensors in pixels.
    """
    return _scale_bboxes(predictions, height, width, "denormalize_bboxes", divide=False)


def merge_annotations(ann0: dict[str, Any], ann1: dict[str, Any]) -> dict[str, Any]:
    """Merge the objects of two annotations of frames of the same size.

    Parameters
    ----------
    ann0 : dict
        First annotation.
    ann1 : dict
        Second annotation; its frame size must equal the first's.

    Returns
    -------
    dict
        ``{'annotation': {'size': size, 'object': objects0 + objects1}}``, plus the
        same object list under a top-level ``'object'`` key (lava-dl's layout).
    """
    size0, size1 = ann0["annotation"]["size"], ann1["annotation"]["size"]
    if size0["height"] != size1["height"] or size0["width"] != size1["width"]:
        raise ValueError(f"merge_annotations: the frame sizes differ: {size0} and {size1}")
    objects = list(ann0["annotation"]["object"]) + list(ann1["annotation"]["object"])
    return {"annotation": {"size": dict(size0), "object": objects}, "object": objects}


def _tensor_to_pil(image: torch.Tensor) -> Image:
    """PIL image of a ``(C, H, W)`` / ``(H, W)`` tensor (floats in ``[0, 1]``, or uint8)."""
    array = image.detach().cpu().squeeze()
    if array.dim() == 2:
        array = array.unsqueeze(0)
    if array.dim() != 3 or array.shape[0] not in (1, 3, 4):
        raise ValueError(f"mark_bounding_boxes: a tensor image must be (C, H, W) with 1, 3 or 4 channels "
                         f"or (H, W), got shape {tuple(image.shape)}")
    if array.is_floating_point():
        array = (array.clamp(0, 1) * 255).to(torch.uint8)
    elif array.dtype != torch.uint8:
        raise TypeError(f"mark_bounding_boxes: a tensor image must be floating point or uint8, "
                        f"got {array.dtype}")
    pixels = array.permute(1, 2, 0).numpy()
    if pixels.shape[2] == 1:
        return Img.fromarray(pixels[:, :, 0])
    return Img.fromarray(np.ascontiguousarray(pixels))


def mark_bounding_boxes(image: Image | torch.tensor,
                        objects: list[dict[str, Any]],
                        box_color_map: list[tuple[RGB, RGB, RGB]] = (),
                        box_color: tuple[RGB, RGB, RGB] = (0, 255, 0),
                        text_color: tuple[RGB, RGB, RGB] = (0, 0, 255),
                        thickness: int = 5) -> Image:
    """Draw the boxes and names of annotated objects into an image.

    Each box is clipped to the image, drawn with a line width of
    ``max(int(thickness * confidence), 1)`` pixels and labeled with the object name on a
    40 x 10 pixel tag at its top-left corner. Boxes entirely outside the image are
    skipped.

    Parameters
    ----------
    image : PIL.Image.Image or torch.tensor
        Image to draw on. An RGB(A) PIL image is drawn on in place; other PIL modes are
        converted to a new RGB image; a tensor ``(C, H, W)`` (floats in ``[0, 1]`` or
        uint8) is converted to a new PIL image.
    objects : list of dict
        Objects (``annotation['annotation']['object']``) with ``'id'``, ``'name'``,
        ``'bndbox'`` in pixels and optionally ``'confidence'`` (default 1).
    box_color_map : list of (R, G, B), optional
        Color of each class label (label modulo its length). When given it overrides
        ``box_color``, and the text gets the inverse color. By default empty.
    box_color : (R, G, B), optional
        Box color, by default green.
    text_color : (R, G, B), optional
        Text color, by default blue.
    thickness : int, optional
        Line width of a box of confidence 1, by default 5.

    Returns
    -------
    PIL.Image.Image
        The marked image.
    """
    if isinstance(image, torch.Tensor):
        image = _tensor_to_pil(image)
    elif not isinstance(image, Image):
        raise TypeError(f"mark_bounding_boxes: image must be a PIL image or a torch.Tensor, "
                        f"got {type(image).__name__}")
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")
    draw = ImageDraw.Draw(image)
    for obj in objects:
        bndbox = obj["bndbox"]
        confidence = obj.get("confidence", 1)
        box = [int(max(float(bndbox["xmin"]), 0)),
               int(max(float(bndbox["ymin"]), 0)),
               int(min(float(bndbox["xmax"]), image.width - 1)),
               int(min(float(bndbox["ymax"]), image.height - 1))]
        if box[2] < box[0] or box[3] < box[1]:
            continue
        if box_color_map:
            box_color = tuple(box_color_map[int(obj["id"]) % len(box_color_map)])
            text_color = tuple(255 - c for c in box_color)
        draw.rectangle(box, outline=box_color, width=max(int(thickness * confidence), 1))
        draw.rectangle([box[0], box[1], box[0] + 40, box[1] + 10], outline=box_color, fill=box_color)
        draw.text((box[0], box[1]), str(obj["name"]), fill=text_color)
    return image


def resize_bounding_boxes(annotation: dict[str, Any], size: tuple[Height, Width]) -> dict[str, Any]:
    """Scale an annotation's boxes to a new frame size, in place.

    Parameters
    ----------
    annotation : dict
        Annotation (see the module docstring); modified in place.
    size : (Height, Width)
        New frame size.

    Returns
    -------
    dict
        The same annotation, with the new size and scaled boxes.
    """
    ann = annotation["annotation"]
    if len(size) != 2:
        raise ValueError(f"resize_bounding_boxes: size must be (height, width), got {size!r}")
    height = float(ann["size"]["height"])
    width = float(ann["size"]["width"])
    if height <= 0 or width <= 0:
        raise ValueError(f"resize_bounding_boxes: the annotation's size must be positive, got {ann['size']}")
    scale_y, scale_x = size[0] / height, size[1] / width
    ann["size"]["height"] = size[0]
    ann["size"]["width"] = size[1]
    for obj in ann["object"]:
        box = obj["bndbox"]
        for key, scale in (("xmin", scale_x), ("xmax", scale_x), ("ymin", scale_y), ("ymax", scale_y)):
            box[key] = float(box[key]) * scale
    return annotation


def _flip(annotation: dict[str, Any], axis: str) -> dict[str, Any]:
    ann = annotation["annotation"]
    extent = int(ann["size"]["width" if axis == "x" else "height"])
    low, high = f"{axis}min", f"{axis}max"
    for obj in ann["object"]:
        box = obj["bndbox"]
        box[low], box[high] = extent - _number(box[high]), extent - _number(box[low])
    return annotation


def _number(value):
    return value if isinstance(value, (int, float)) else float(value)


def flipud_bounding_boxes(annotation: dict[str, Any]) -> dict[str, Any]:
    """Flip an annotation's boxes upside down (``y -> height - y``), in place.

    Parameters
    ----------
    annotation : dict
        Annotation (see the module docstring); modified in place.

    Returns
    -------
    dict
        The same annotation, flipped.
    """
    return _flip(annotation, "y")


def fliplr_bounding_boxes(annotation: dict[str, Any]) -> dict[str, Any]:
    """Flip an annotation's boxes left to right (``x -> width - x``), in place.

    Parameters
    ----------
    annotation : dict
        Annotation (see the module docstring); modified in place.

    Returns
    -------
    dict
        The same annotation, flipped.
    """
    return _flip(annotation, "x")


def _check_frames_input(inputs, where: str, channels: tuple[int, ...]) -> None:
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 5:
        shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise ValueError(f"{where}: inputs must be an N, C, H, W, T tensor, got {shape}")
    if inputs.shape[1] not in channels:
        raise ValueError(f"{where}: inputs must have {' or '.join(map(str, channels))} channels, "
                         f"got shape {tuple(inputs.shape)}")
    if inputs.shape[-1] == 0:
        raise ValueError(f"{where}: inputs have no time step, got shape {tuple(inputs.shape)}")


def _random_color_map(classes) -> list[tuple[int, int, int]]:
    return [(np.random.randint(256), np.random.randint(256), np.random.randint(256))
            for _ in range(len(classes))]


def _frame_image(frame: torch.Tensor) -> Image:
    """RGB image of a ``(C, H, W)`` frame with values in ``[0, 1]``."""
    pixels = np.uint8(np.clip(frame.detach().cpu().numpy().transpose(1, 2, 0) * 255, 0, 255))
    if pixels.shape[2] == 1:
        return Img.fromarray(pixels[:, :, 0]).convert("RGB")
    return Img.fromarray(pixels)


def _side_by_side(render, inputs, targets, predictions, classes, batch, box_color_map) -> list[Image]:
    if box_color_map is None:
        box_color_map = _random_color_map(classes)
    frames = []
    for t in range(inputs.shape[-1]):
        panels = []
        for boxes, caption in ((predictions[t][batch], "Prediction"), (targets[t][batch], "Ground Truth")):
            image = render(inputs[batch, :, :, :, t])
            annotation = annotation_from_tensor(boxes, {"height": image.height, "width": image.width},
                                                classes, confidence_th=0)
            marked = mark_bounding_boxes(image, annotation["annotation"]["object"],
                                         box_color_map=box_color_map, thickness=5)
            ImageDraw.Draw(marked).text((5, 5), caption, fill=(255, 255, 255), anchor="lt")
            panels.append(marked)
        frame = Img.new("RGB", (panels[0].width + panels[1].width, panels[0].height))
        frame.paste(panels[0], (0, 0))
        frame.paste(panels[1], (panels[0].width, 0))
        frames.append(frame)
    return frames


def create_frames(inputs: torch.tensor,
                  targets: torch.tensor,
                  predictions: torch.tensor,
                  classes: list[str],
                  batch: int | None = 0,
                  box_color_map: list[tuple[RGB, RGB, RGB]] | None = None) -> list[Image]:
    """Frames showing the predicted (left) and ground-truth (right) boxes over the input
    images of one sample.

    Parameters
    ----------
    inputs : torch.tensor
        Images ``N, C, H, W, T`` with values in ``[0, 1]``, C = 3 (RGB) or 1 (gray).
    targets : sequence
        Ground-truth boxes indexed ``targets[t][batch]``: ``(num_boxes, 6)`` tensors
        ``x_center, y_center, width, height, confidence, label``, normalized to
        ``[0, 1]``.
    predictions : sequence
        Predicted boxes, indexed and formatted like ``targets``.
    classes : list of str
        Name of each class label.
    batch : int, optional
        Sample of the batch to render, by default 0.
    box_color_map : list of (R, G, B), optional
        Color of each class; random colors (from numpy's global generator) when None.

    Returns
    -------
    list of PIL.Image.Image
        One RGB image of size ``(2 W, H)`` per time step.
    """
    _check_frames_input(inputs, "create_frames", (1, 3))
    return _side_by_side(_frame_image, inputs, targets, predictions, classes, batch, box_color_map)


def create_frames_events(inputs: torch.tensor,
                         targets: torch.tensor,
                         predictions: torch.tensor,
                         classes: list[str],
                         batch: int | None = 0,
                         box_color_map: list[tuple[RGB, RGB, RGB]] | None = None) -> list[Image]:
    """Frames showing the predicted (left) and ground-truth (right) boxes over the event
    frames of one sample (rendered with :func:`render_events_img`).

    Parameters
    ----------
    inputs : torch.tensor
        Event frames ``N, 2, H, W, T`` (two polarities, values in ``[0, 1]``).
    targets : sequence
        Ground-truth boxes indexed ``targets[t][batch]`` (see :func:`create_frames`).
    predictions : sequence
        Predicted boxes, indexed and formatted like ``targets``.
    classes : list of str
        Name of each class label.
    batch : int, optional
        Sample of the batch to render, by default 0.
    box_color_map : list of (R, G, B), optional
        Color of each class; random colors (from numpy's global generator) when None.

    Returns
    -------
    list of PIL.Image.Image
        One RGB image of size ``(2 W, H)`` per time step.
    """
    _check_frames_input(inputs, "create_frames_events", (2,))
    return _side_by_side(render_events_img, inputs, targets, predictions, classes, batch, box_color_map)


def _write_video(frames: list[Image], output_path: str, where: str) -> None:
    if str(output_path).lower().endswith(".gif"):
        frames[0].save(output_path, save_all=True, append_images=frames[1:], duration=100, loop=0)
        return
    try:
        import cv2
    except ImportError:
        message = (f"{where}: writing an .mp4 video needs OpenCV (pip install opencv-python); give an "
                   f"output_path ending in '.gif' to write an animated GIF with Pillow instead")
        raise ImportError(message) from None
    width, height = frames[0].size
    video = cv2.VideoWriter(str(output_path) + ".mp4", cv2.VideoWriter_fourcc(*"mp4v"), 10, (width, height))
    try:
        for frame in frames:
            video.write(cv2.cvtColor(np.asarray(frame), cv2.COLOR_RGB2BGR))
    finally:
        video.release()


def create_video(inputs: torch.tensor,
                 targets: torch.tensor,
                 predictions: torch.tensor,
                 output_path: str,
                 classes: list[str],
                 batch: int | None = 0,
                 box_color_map: list[tuple[RGB, RGB, RGB]] | None = None) -> None:
    """Write the frames of :func:`create_frames` as a 10 frames-per-second video.

    Parameters
    ----------
    inputs : torch.tensor
        Images ``N, C, H, W, T`` (see :func:`create_frames`).
    targets : sequence
        Ground-truth boxes indexed ``targets[t][batch]``.
    predictions : sequence
        Predicted boxes indexed ``predictions[t][batch]``.
    output_path : str
        A path ending in ``.gif`` writes an animated GIF there (Pillow); any other path
        writes ``output_path + '.mp4'`` (needs OpenCV, ``pip install opencv-python``).
    classes : list of str
        Name of each class label.
    batch : int, optional
        Sample of the batch to render, by default 0.
    box_color_map : list of (R, G, B), optional
        Color of each class; random when None.
    """
    frames = create_frames(inputs, targets, predictions, classes, batch, box_color_map)
    _write_video(frames, output_path, "create_video")


def create_video_events(inputs: torch.tensor,
                        targets: torch.tensor,
                        predictions: torch.tensor,
                        output_path: str,
                        classes: list[str],
                        batch: int | None = 0,
                        box_color_map: list[tuple[RGB, RGB, RGB]] | None = None) -> None:
    """Write the frames of :func:`create_frames_events` as a 10 frames-per-second video.

    Parameters
    ----------
    inputs : torch.tensor
        Event frames ``N, 2, H, W, T`` (see :func:`create_frames_events`).
    targets : sequence
        Ground-truth boxes indexed ``targets[t][batch]``.
    predictions : sequence
        Predicted boxes indexed ``predictions[t][batch]``.
    output_path : str
        A path ending in ``.gif`` writes an animated GIF there (Pillow); any other path
        writes ``output_path + '.mp4'`` (needs OpenCV, ``pip install opencv-python``).
    classes : list of str
        Name of each class label.
    batch : int, optional
        Sample of the batch to render, by default 0.
    box_color_map : list of (R, G, B), optional
        Color of each class; random when None.
    """
    frames = create_frames_events(inputs, targets, predictions, classes, batch, box_color_map)
    _write_video(frames, output_path, "create_video_events")


def render_events_img(inputs: np.ndarray) -> Image:
    """RGB image of a two-polarity event frame: the first channel in red, the second in
    blue.

    Parameters
    ----------
    inputs : np.ndarray
        Event frame ``(C >= 2, H, W)`` (array or tensor) with values in ``[0, 1]``;
        values outside are clamped.

    Returns
    -------
    PIL.Image.Image
        ``W x H`` RGB image.
    """
    if isinstance(inputs, torch.Tensor):
        inputs = inputs.detach().cpu().numpy()
    inputs = np.asarray(inputs)
    if inputs.ndim != 3 or inputs.shape[0] < 2:
        raise ValueError(f"render_events_img: inputs must be (C >= 2, H, W), got shape {inputs.shape}")
    pixels = np.zeros((inputs.shape[1], inputs.shape[2], 3), dtype=np.uint8)
    pixels[:, :, 0] = np.clip(255 * inputs[0].astype(np.float64), 0, 255)
    pixels[:, :, 2] = np.clip(255 * inputs[1].astype(np.float64), 0, 255)
    return Img.fromarray(pixels)


#: Short alias of :func:`non_maximum_suppression`.
nms = non_maximum_suppression
