"""Bounding-box metrics and utilities of object detection (lava-dl's
``slayer.object_detection.boundingbox``)."""

from . import metrics, utils

__all__ = ["metrics", "utils"]
