"""SDNN YOLO models of lava-dl's ``slayer.object_detection.models``.

* :mod:`~lava_dl.slayer.object_detection.models.tiny_yolov3_str` -- strided Tiny YOLOv3, two heads;
* :mod:`~lava_dl.slayer.object_detection.models.yolo_kp` -- single-head YOLO for Kapoho Point
  (exports to hdf5);
* :mod:`~lava_dl.slayer.object_detection.models.yolo_kp_events` -- YOLO-KP with CUBA-LIF input
  layers for event frames.

Each module has a ``Network`` class built on
:class:`~lava_dl.slayer.object_detection.yolo_base.YOLOBase`.
"""

from lava_dl.slayer.object_detection.models import tiny_yolov3_str, yolo_kp, yolo_kp_events

__all__ = ["tiny_yolov3_str", "yolo_kp", "yolo_kp_events"]
