"""Object detection with spiking (sigma-delta) networks (lava-dl's ``slayer.object_detection``).

``boundingbox`` (also ``bbox``): box overlaps, non-maximum suppression, average precision,
annotation tensors and pictures; ``models``: lava-dl's YOLO networks (``tiny_yolov3_str``,
``yolo_kp``, ``yolo_kp_events``) on the slayer blocks; ``YOLOBase``, ``YOLOLoss`` and
``YOLOtarget``: the YOLO head, loss and training targets; ``dataset``: the dataset helpers.
"""

from lava_dl.slayer.object_detection import boundingbox, dataset, models
from lava_dl.slayer.object_detection import boundingbox as bbox
from lava_dl.slayer.object_detection.yolo_base import YOLOBase, YOLOLoss, YOLOtarget

__all__ = ["bbox", "boundingbox", "dataset", "models", "YOLOtarget", "YOLOLoss", "YOLOBase"]
