"""Reader of the Berkeley Deep Drive BDD100K multi-object-tracking videos (lava-dl's
``slayer.object_detection.dataset.bdd100k``), https://bdd-data.berkeley.edu/.

Layout read under ``root`` (``dataset`` is ``'track'`` for MOT 2020, the split is ``train``
or ``val``)::

    labels/box_{dataset}_20/{split}/{video}.json      one JSON file per video
    images/{dataset}/{split}/{video}/{frame name}      the frames of that video

A label file is a list of frames ``{'name': file name, 'labels': [{'category': str,
'box2d': {'x1': ., 'y1': ., 'x2': ., 'y2': .}}, ...]}`` in temporal order.

A sample is a clip of ``seq_len`` frames: a float32 tensor ``(3, height, width, seq_len)``
with values in ``[0, 1]`` and a list of ``seq_len`` annotation dictionaries (layout of
``boundingbox.utils``) whose boxes are scaled to ``size``.

Only torch, numpy and Pillow are needed (lava-dl used torchvision's transforms; the resize
is the same PIL bilinear resize, the blur the same 5x5 Gaussian with reflected borders).

Differences from lava-dl (fixes):

- The class list is the sorted union of the categories of *both* splits present on disk,
  so ``train=True`` and ``train=False`` give the same class indices (lava-dl used the
  split's own categories, which could differ between splits).
- ``randomize_seq`` may start a clip at any frame that leaves ``seq_len`` frames,
  including the last such one, and works for videos of at most ``seq_len`` frames
  (lava-dl's ``np.random.randint(max(n - seq_len, 0))`` failed on them and never chose
  the last start).
- Every frame of a clip gets its own annotation dictionary: lava-dl repeated the same
  dictionary to pad short videos, so the in-place flip and resize of the boxes hit the
  padded frames several times (a flip applied twice undid itself; each further resize
  truncated the scaled coordinates to integers).
- The Gaussian blur uses one sigma for the whole clip (lava-dl drew one per frame, in
  threads, so in no fixed order); ``ColorJitter()`` with default arguments, a no-op in
  lava-dl, is a no-op here too (its random draw is kept so seeds give the same flips).
- Video files are listed in sorted order (lava-dl used ``os.listdir`` order).
- Missing folders, label files of the wrong format, an empty video or a missing frame
  raise ``FileNotFoundError``/``ValueError`` naming the path and field; a frame without
  ``'labels'`` (or with ``null``) has no objects.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from lava_dl.slayer.object_detection.boundingbox import utils as bbutils
from lava_dl.slayer.object_detection.boundingbox.utils import Height, Width
from lava_dl.slayer.object_detection.dataset.utils import flip_lr as _flip_lr

__all__ = ["BDD"]

_URL = "https://bdd-data.berkeley.edu/portal.html#download"
_BOX_KEYS = (("xmin", "x1"), ("ymin", "y1"), ("xmax", "x2"), ("ymax", "y2"))


def _read_label_file(path: str) -> list[dict[str, Any]]:
    """Frames of one BDD100K label file, checked for the fields the reader uses."""
    try:
        with open(path) as file:
            data = json.load(file)
    except json.JSONDecodeError as error:
        raise ValueError(f"BDD: {path} is not a valid JSON file ({error})") from error
    if not isinstance(data, list):
        raise ValueError(f"BDD: {path} must hold a list of frames, got {type(data).__name__}")
    for number, frame in enumerate(data):
        where = f"BDD: {path}, frame {number}"
        if not isinstance(frame, dict) or not isinstance(frame.get("name"), str):
            raise ValueError(f"{where}: each frame needs a string field 'name'")
        labels = frame.get("labels") or []
        if not isinstance(labels, list):
            raise ValueError(f"{where}: field 'labels' must be a list")
        for label in labels:
            if not isinstance(label, dict) or "category" not in label:
                raise ValueError(f"{where}: each label needs a field 'category'")
            box = label.get("box2d")
            if not isinstance(box, dict) or any(key not in box for _, key in _BOX_KEYS):
                raise ValueError(f"{where}: label of category {label['category']!r} needs a field "
                                 "'box2d' with keys 'x1', 'y1', 'x2', 'y2'")
    return data


def _gaussian_blur(image: Image.Image, sigma: float, kernel_size: int = 5) -> Image.Image:
    """Blur an RGB image with a separable Gaussian kernel and reflected borders."""
    half = (kernel_size - 1) / 2
    kernel = torch.exp(-0.5 * (torch.linspace(-half, half, kernel_size) / sigma) ** 2)
    kernel = kernel / kernel.sum()
    kernel2d = (kernel[:, None] * kernel[None, :]).expand(3, 1, kernel_size, kernel_size)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    pad = kernel_size // 2
    padded = torch.nn.functional.pad(pixels, [pad] * 4, mode="reflect")
    blurred = torch.nn.functional.conv2d(padded, kernel2d, groups=3)[0]
    array = blurred.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(np.ascontiguousarray(array), mode="RGB")


def _grayscale(image: Image.Image) -> Image.Image:
    """ITU-R 601-2 luma of an RGB image, repeated in three channels."""
    return image.convert("L").convert("RGB")


def _to_tensor(image: Image.Image, size: tuple[Height, Width]) -> torch.Tensor:
    """Bilinear resize to ``size`` and a float32 ``(3, height, width)`` tensor in ``[0, 1]``."""
    resized = image.resize((int(size[1]), int(size[0])), Image.BILINEAR)
    array = np.asarray(resized, dtype=np.uint8)
    return torch.from_numpy(array.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()


class BDD(Dataset):
    """Berkeley Deep Drive (BDD100K) video object-detection dataset.

    Parameters
    ----------
    root : str, optional
        Folder holding ``labels/`` and ``images/`` (see the module docstring), by default
        ``'./'``.
    dataset : str, optional
        BDD100K sub-dataset, by default ``'track'`` (MOT 2020).
    size : (Height, Width), optional
        Frame size of the returned tensors, by default ``(448, 448)``.
    train : bool, optional
        Read the ``train`` split if True, else the ``val`` split (default).
    seq_len : int, optional
        Frames per sample, by default 32; shorter videos repeat their last frame.
    randomize_seq : bool, optional
        Start each clip at a random frame if True; by default False (first frames).
    augment_prob : float, optional
        Probability of each augmentation (left-right flip of frames and boxes, Gaussian
        blur, color jitter, grayscale), by default 0.0.

    Attributes
    ----------
    classes : list of str
        Sorted category names; a box's ``'id'`` indexes this list.
    idx_map : dict
        Category name to index.
    """

    def __init__(self,
                 root: str = './',
                 dataset: str = 'track',
                 size: tuple[Height, Width] = (448, 448),
                 train: bool = False,
                 seq_len: int = 32,
                 randomize_seq: bool = False,
                 augment_prob: float = 0.0) -> None:
        super().__init__()
        if int(seq_len) < 1:
            raise ValueError(f"BDD: seq_len must be at least 1, got {seq_len}")
        if len(size) != 2 or min(int(size[0]), int(size[1])) < 1:
            raise ValueError(f"BDD: size must be a positive (height, width), got {size!r}")
        self.size = (int(size[0]), int(size[1]))
        self.seq_len = int(seq_len)
        self.randomize_seq = randomize_seq
        self.augment_prob = augment_prob
        split = 'train' if train else 'val'
        self.label_path = os.path.join(root, 'labels', f'box_{dataset}_20', split)
        self.image_path = os.path.join(root, 'images', dataset, split)
        if not os.path.isdir(self.label_path):
            raise FileNotFoundError(f"BDD: label folder {self.label_path} not found; download the "
                                    f"'MOT 2020 labels' from {_URL}")
        if not os.path.isdir(self.image_path):
            raise FileNotFoundError(f"BDD: image folder {self.image_path} not found; download the "
                                    f"'MOT 2020 images' from {_URL}")
        self.ids = sorted(name[:-len('.json')] for name in os.listdir(self.label_path)
                          if name.endswith('.json'))

        categories = set()
        for other in ('train', 'val'):
            folder = os.path.join(root, 'labels', f'box_{dataset}_20', other)
            if not os.path.isdir(folder):
                continue
            for name in sorted(os.listdir(folder)):
                if name.endswith('.json'):
                    for frame in _read_label_file(os.path.join(folder, name)):
                        categories.update(label['category'] for label in frame.get('labels') or [])
        self.classes = sorted(categories)
        self.idx_map = {name: index for index, name in enumerate(self.classes)}

    def _read_clip(self, index: int) -> tuple[list[Image.Image], list[dict[str, Any]]]:
        video = self.ids[index]
        label_file = os.path.join(self.label_path, video + '.json')
        frames = _read_label_file(label_file)
        if not frames:
            raise ValueError(f"BDD: {label_file} has no frames")
        start = 0
        if self.randomize_seq:
            start = int(np.random.randint(max(len(frames) - self.seq_len, 0) + 1))
        frames = frames[start:start + self.seq_len]

        images, annotations = [], []
        for frame in frames:
            path = os.path.join(self.image_path, video, frame['name'])
            if not os.path.isfile(path):
                raise FileNotFoundError(f"BDD: frame {path} (listed in {label_file}) not found")
            with Image.open(path) as file:
                image = file.convert('RGB')
            objects = []
            for label in frame.get('labels') or []:
                box = label['box2d']
                objects.append({'id': self.idx_map[label['category']],
                                'name': label['category'],
                                'bndbox': {key: box[bdd_key] for key, bdd_key in _BOX_KEYS}})
            images.append(image)
            annotations.append({'annotation': {'size': {'height': image.height, 'width': image.width},
                                               'object': objects}})
        while len(images) < self.seq_len:
            images.append(images[-1])
            annotations.append(copy.deepcopy(annotations[-1]))
        return images, annotations

    def flip_lr(self, img: Image.Image) -> Image.Image:
        """Mirror one frame left to right (the image half of the flip augmentation).

        Parameters
        ----------
        img : PIL.Image.Image
            Frame to mirror; it is not modified.

        Returns
        -------
        PIL.Image.Image
            A new image whose column ``x`` is column ``width - 1 - x`` of ``img``.
        """
        return _flip_lr(img)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, list[dict[str, Any]]]:
        """One clip of the dataset.

        Parameters
        ----------
        index : int
            Video index.

        Returns
        -------
        torch.Tensor
            Frames, float32 ``(3, height, width, seq_len)`` in ``[0, 1]``.
        list of dict
            One annotation per frame, boxes in pixels of the resized frames.
        """
        if not -len(self) <= index < len(self):
            raise IndexError(f"BDD: index {index} out of range for {len(self)} videos")
        images, annotations = self._read_clip(index % len(self))

        if np.random.random() < self.augment_prob:  # left-right flip
            images = [self.flip_lr(image) for image in images]
            annotations = [bbutils.fliplr_bounding_boxes(ann) for ann in annotations]
        if np.random.random() < self.augment_prob:  # Gaussian blur, 5x5, sigma in [0.1, 2]
            sigma = float(torch.empty(1).uniform_(0.1, 2.0))
            images = [_gaussian_blur(image, sigma) for image in images]
        np.random.random()  # lava-dl's ColorJitter() with default arguments: leaves the images as they are
        if np.random.random() < self.augment_prob:  # grayscale, three channels
            images = [_grayscale(image) for image in images]

        frames = torch.stack([_to_tensor(image, self.size) for image in images], dim=-1)
        annotations = [bbutils.resize_bounding_boxes(ann, self.size) for ann in annotations]
        return frames, annotations

    def __len__(self) -> int:
        """Number of videos in the split."""
        return len(self.ids)
