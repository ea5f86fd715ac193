"""Image and event-frame helpers of the object-detection datasets (lava-dl's
``slayer.object_detection.dataset.utils``).

Event frames are numpy arrays whose first two axes are height and width (any further
axes, e.g. polarity, are carried along).

Differences from lava-dl: ``flip_lr``/``flip_ud`` and the event helpers check their input
and raise ``TypeError``/``ValueError`` naming what is wrong; ``resize_events_frame`` is
vectorized (same nearest-neighbour samples as lava-dl's nested loops).
"""

from __future__ import annotations

import numpy as np
from PIL.Image import Image, Transpose

__all__ = ["Width", "Height", "flip_lr", "flip_ud", "resize_events_frame", "fliplr_events"]

#: Type alias of a width in pixels.
Width = int
#: Type alias of a height in pixels.
Height = int


def _check_image(image, where: str) -> None:
    if not isinstance(image, Image):
        raise TypeError(f"{where}: expected a PIL image, got {type(image).__name__}")


def flip_lr(image: Image) -> Image:
    """Mirror a PIL image left to right.

    Parameters
    ----------
    image : PIL.Image.Image
        Input image.

    Returns
    -------
    PIL.Image.Image
        New, mirrored image.
    """
    _check_image(image, "flip_lr")
    return image.transpose(Transpose.FLIP_LEFT_RIGHT)


def flip_ud(image: Image) -> Image:
    """Mirror a PIL image upside down.

    Parameters
    ----------
    image : PIL.Image.Image
        Input image.

    Returns
    -------
    PIL.Image.Image
        New, mirrored image.
    """
    _check_image(image, "flip_ud")
    return image.transpose(Transpose.FLIP_TOP_BOTTOM)


def _check_events(events, where: str) -> np.ndarray:
    events = np.asarray(events)
    if events.ndim < 2:
        raise ValueError(f"{where}: events must be an array (height, width, ...), got shape {events.shape}")
    return events


def resize_events_frame(events: np.array, size: tuple[Height, Width]) -> np.array:
    """Resize an event frame by nearest-neighbour sampling.

    Output pixel ``(r, c)`` takes input pixel ``(floor(r * H / h), floor(c * W / w))``
    for an input of size ``(H, W)`` and an output of size ``(h, w)``, so counts are
    neither summed nor interpolated.

    Parameters
    ----------
    events : np.ndarray
        Event frame ``(H, W, ...)``.
    size : (Height, Width)
        Output size ``(h, w)``.

    Returns
    -------
    np.ndarray
        Resized frame ``(h, w, ...)`` of the same dtype.
    """
    events = _check_events(events, "resize_events_frame")
    if len(size) != 2 or min(int(size[0]), int(size[1])) < 1:
        raise ValueError(f"resize_events_frame: size must be a positive (height, width), got {size!r}")
    height, width = events.shape[:2]
    rows = np.arange(int(size[0])) * height // int(size[0])
    cols = np.arange(int(size[1])) * width // int(size[1])
    return events[rows[:, None], cols[None, :]]


def fliplr_events(events: np.array) -> np.array:
    """Mirror an event frame left to right (along its width, axis 1).

    Parameters
    ----------
    events : np.ndarray
        Event frame ``(H, W, ...)``.

    Returns
    -------
    np.ndarray
        Mirrored view of the frame.
    """
    return np.fliplr(_check_events(events, "fliplr_events"))
