"""Reader of the Prophesee automotive event-camera detection datasets (lava-dl's
``slayer.object_detection.dataset.prophesee_automotive``), e.g. the GEN1 automotive
dataset, https://www.prophesee.ai/2020/01/24/prophesee-gen1-automotive-detection-dataset/.

Layout read under ``root`` (the split is ``train`` or ``val``)::

    label_map_dictionary.json          {"0": "car", "1": "pedestrian", ...}
    {split}/{recording}_td.dat         events of one recording
    {split}/{recording}_bbox.npy       its boxes

The files are read here directly (lava-dl needed Prophesee's dataset toolbox):

- ``*_td.dat``: text header lines starting with ``'% '`` (``% Height H`` and
  ``% Width W`` give the sensor size), then, if there was a header, two bytes (event type,
  event size = 8), then little-endian events of 8 bytes: ``uint32`` timestamp in
  microseconds (non-decreasing) and an ``int32`` packing ``x`` (bits 0-13), ``y`` (bits
  14-27) and the polarity ``p`` (bit 28).
- ``*_bbox.npy``: a numpy structured array, sorted by time, with fields ``t`` (or ``ts``,
  microseconds), ``x``, ``y``, ``w``, ``h`` (pixels) and ``class_id``.

A recording is cut into slices of ``delta_t`` milliseconds; each slice gives one frame
``(2, height, width)`` of 0/1 values (channel 0: events of polarity 1, channel 1: polarity
0) and one annotation of the boxes timestamped in the slice. Boxes are kept, as with
Prophesee's ``filter_boxes(boxes, 1e5, 60, 20)`` that lava-dl applied, when their time is
past 0.1 s, their diagonal at least 60 and both sides at least 20 pixels, and when they
lie strictly inside the frame. The clip starts at the first slice with a box covered by
more than ``events_ratio`` active pixels per pixel of its area; a later slice without boxes
repeats the previous annotation. A sample is a float32 tensor ``(2, height, width,
seq_len)`` resized to ``size`` (nearest neighbour) and a list of ``seq_len`` annotation
dictionaries (layout of ``boundingbox.utils``) scaled to ``size``.

Differences from lava-dl (fixes):

- With ``randomize_seq`` the events and the boxes start at the *same* random time (lava-dl
  drew two independent times, so the boxes did not match the events); without it every
  sample starts at the recording's beginning (lava-dl continued from where the previous
  read of the same recording had stopped).
- When a recording gives fewer than ``seq_len`` frames, even read from its start, the
  other recordings are tried once each in random order, and a ``ValueError`` is raised if
  none gives a full clip (lava-dl's retry loop could run forever, skipped the last
  recording, and failed with a single recording).
- Every frame has its own annotation dictionary: lava-dl repeated the same dictionary
  for frames without boxes, so the in-place flip and resize of the boxes were applied to
  it once per frame (an even number of flips undid the flip; each further resize
  truncated the scaled coordinates to integers).
- Recordings are listed in sorted order (lava-dl: ``os.listdir`` order) and opened only
  while read (lava-dl kept every file open); box ``'id'`` values are Python ints.
- A ``.dat`` header without ``Height``/``Width`` gives the GEN1 sensor size 240 x 304
  (lava-dl failed on it); missing folders or files, malformed files and missing fields
  raise ``FileNotFoundError``/``ValueError`` naming the path and field.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lava_dl.slayer.object_detection.boundingbox import utils as bbutils
from lava_dl.slayer.object_detection.boundingbox.utils import Height, Width
from lava_dl.slayer.object_detection.dataset.utils import fliplr_events, resize_events_frame

__all__ = ["PropheseeAutomotive"]

_EVENT_DTYPE = np.dtype([('t', '<u4'), ('xyp', '<i4')])
_GEN1_SIZE = (240, 304)
_SKIP_TS = 100000  # boxes up to 0.1 s are dropped (Prophesee's filter_boxes, as called by lava-dl)
_MIN_BOX_DIAG = 60
_MIN_BOX_SIDE = 20


def _read_dat(path: str) -> tuple[np.ndarray, tuple[int, int]]:
    """Memory-mapped raw events of a ``.dat`` file and the sensor size (height, width)."""
    size = [None, None]
    header_lines = 0
    with open(path, 'rb') as file:
        while True:
            position = file.tell()
            line = file.readline()
            if not line.startswith(b'% '):
                break
            header_lines += 1
            words = line.split()
            if len(words) > 2 and words[1] in (b'Height', b'Width'):
                try:
                    size[words[1] == b'Width'] = int(words[2])
                except ValueError as error:
                    raise ValueError(f"PropheseeAutomotive: {path}: bad header line {line!r}") from error
        file.seek(position)
        if header_lines:
            kind = file.read(2)
            if len(kind) < 2:
                raise ValueError(f"PropheseeAutomotive: {path}: header ends before the event type and size")
            if kind[1] != _EVENT_DTYPE.itemsize:
                raise ValueError(f"PropheseeAutomotive: {path}: event size {kind[1]} bytes, expected 8 "
                                 "(2D events)")
        start = file.tell()
        file.seek(0, os.SEEK_END)
        length = (file.tell() - start) // _EVENT_DTYPE.itemsize
    if length == 0:
        events = np.zeros(0, dtype=_EVENT_DTYPE)
    else:
        events = np.memmap(path, dtype=_EVENT_DTYPE, mode='r', offset=start, shape=(length,))
    if size[0] is None or size[1] is None:
        size = list(_GEN1_SIZE)
    return events, (int(size[0]), int(size[1]))


def _read_boxes(path: str) -> np.ndarray:
    """Boxes of a ``_bbox.npy`` file, with the time field named ``t``."""
    try:
        boxes = np.load(path, mmap_mode='r')
    except (ValueError, OSError) as error:
        raise ValueError(f"PropheseeAutomotive: {path} is not a numpy .npy file ({error})") from error
    names = boxes.dtype.names or ()
    time = 't' if 't' in names else 'ts'
    missing = [field for field in (time, 'x', 'y', 'w', 'h', 'class_id') if field not in names]
    if boxes.ndim != 1 or missing:
        raise ValueError(f"PropheseeAutomotive: {path} must hold a 1-d structured array with fields "
                         f"'t' (or 'ts'), 'x', 'y', 'w', 'h', 'class_id'; missing {missing}")
    if time != 't':
        boxes = boxes.copy()
        boxes.dtype.names = tuple('t' if name == 'ts' else name for name in names)
    return boxes


class PropheseeAutomotive(Dataset):
    """Prophesee automotive event-camera object-detection dataset.

    Parameters
    ----------
    root : str, optional
        Folder holding ``label_map_dictionary.json`` and the ``train``/``val`` folders (see
        the module docstring), by default ``'./'``.
    delta_t : int, optional
        Duration of one frame in milliseconds, by default 1.
    size : (Height, Width), optional
        Frame size of the returned tensors, by default ``(448, 448)``.
    train : bool, optional
        Read the ``train`` split if True, else the ``val`` split (default).
    seq_len : int, optional
        Frames per sample, by default 32.
    events_ratio : float, optional
        Least active pixels (summed over both polarities) per pixel of a box's area for
        the box to start a clip, by default 0.07.
    randomize_seq : bool, optional
        Start each clip at a random time if True; by default False (recording's start).
    augment_prob : float, optional
        Probability of the left-right flip of events and boxes, by default 0.0.

    Attributes
    ----------
    classes : list of str
        Class names in the order of the label map file.
    idx_map : dict
        Class id (int) to class name.
    """

    def __init__(self,
                 root: str = './',
                 delta_t: int = 1,
                 size: tuple[Height, Width] = (448, 448),
                 train: bool = False,
                 seq_len: int = 32,
                 events_ratio: float = 0.07,
                 randomize_seq: bool = False,
                 augment_prob: float = 0.0) -> None:
        super().__init__()
        if int(seq_len) < 1:
            raise ValueError(f"PropheseeAutomotive: seq_len must be at least 1, got {seq_len}")
        if delta_t <= 0:
            raise ValueError(f"PropheseeAutomotive: delta_t must be positive (milliseconds), got {delta_t}")
        if len(size) != 2 or min(int(size[0]), int(size[1])) < 1:
            raise ValueError(f"PropheseeAutomotive: size must be a positive (height, width), got {size!r}")
        self.size = (int(size[0]), int(size[1]))
        self.delta_t = int(round(delta_t * 1000))  # microseconds
        self.seq_len = int(seq_len)
        self.events_ratio = events_ratio
        self.randomize_seq = randomize_seq
        self.augment_prob = augment_prob

        label_map = os.path.join(root, 'label_map_dictionary.json')
        if not os.path.isfile(label_map):
            raise FileNotFoundError(f"PropheseeAutomotive: label map {label_map} not found")
        try:
            with open(label_map) as file:
                data = json.load(file)
            self.idx_map = {int(key): str(value) for key, value in data.items()}
        except (json.JSONDecodeError, AttributeError, ValueError) as error:
            raise ValueError(f"PropheseeAutomotive: {label_map} must be a JSON object mapping class ids "
                             f"to names, like {{\"0\": \"car\"}} ({error})") from error
        self.classes = list(self.idx_map.values())

        self.dataset_path = os.path.join(root, 'train' if train else 'val')
        if not os.path.isdir(self.dataset_path):
            raise FileNotFoundError(f"PropheseeAutomotive: split folder {self.dataset_path} not found")
        self.td_files, self.bbox_files = [], []
        for name in sorted(os.listdir(self.dataset_path)):
            if not name.endswith('.dat'):
                continue
            bbox = os.path.join(self.dataset_path, name.split('_td.dat')[0] + '_bbox.npy')
            if not os.path.isfile(bbox):
                raise FileNotFoundError(f"PropheseeAutomotive: box file {bbox} of "
                                        f"{os.path.join(self.dataset_path, name)} not found")
            self.td_files.append(os.path.join(self.dataset_path, name))
            self.bbox_files.append(bbox)

    def get_name(self, index: int) -> str:
        """Recording name (file name without ``_td.dat``) of a sample.

        Parameters
        ----------
        index : int
            Sample index.

        Returns
        -------
        str
            Recording name.
        """
        return os.path.basename(self.td_files[index]).split('_td.dat')[0]

    def _objects(self, boxes: np.ndarray, frame: np.ndarray, first: bool) -> list[dict[str, Any]]:
        height, width = frame.shape[:2]
        diag = boxes['w'].astype(np.float64) ** 2 + boxes['h'].astype(np.float64) ** 2
        keep = ((boxes['t'] > _SKIP_TS) & (diag >= _MIN_BOX_DIAG ** 2)
                & (boxes['w'] >= _MIN_BOX_SIDE) & (boxes['h'] >= _MIN_BOX_SIDE))
        objects = []
        for box in boxes[keep]:
            x, y, w, h = int(box['x']), int(box['y']), int(box['w']), int(box['h'])
            if w <= 0 or h <= 0 or not (x > 0 and y > 0 and x + w < width and y + h < height):
                continue
            if first:
                active = np.count_nonzero(frame[y:y + h, x:x + w])
                if active / (w * h) <= self.events_ratio:
                    continue
            class_id = int(box['class_id'])
            if class_id not in self.idx_map:
                raise ValueError(f"PropheseeAutomotive: class_id {class_id} is not in the label map "
                                 f"(ids {sorted(self.idx_map)})")
            objects.append({'id': class_id, 'name': self.idx_map[class_id],
                            'bndbox': {'xmin': x, 'ymin': y, 'xmax': x + w, 'ymax': y + h}})
        return objects

    def _read_clip(self, events: np.ndarray, boxes: np.ndarray, sensor: tuple[int, int],
                   start: int) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
        height, width = sensor
        images, annotations = [], []
        times = events['t']
        box_times = boxes['t']
        slice_start = start
        while len(images) < self.seq_len:
            first = int(np.searchsorted(times, slice_start, side='left'))
            if first >= len(times):
                break
            slice_end = slice_start + self.delta_t
            last = int(np.searchsorted(times, slice_end, side='left'))
            packed = np.asarray(events['xyp'][first:last])
            x = packed & 0x3FFF
            y = (packed >> 14) & 0x3FFF
            p = (packed >> 28) & 1
            valid = (x < width) & (y < height)
            frame = np.zeros((height, width, 2), dtype=np.uint8)
            frame[y[valid], x[valid], 1 - p[valid]] = 1
            in_slice = np.asarray(boxes[int(np.searchsorted(box_times, slice_start, side='left')):
                                        int(np.searchsorted(box_times, slice_end, side='left'))])
            slice_start = slice_end

            objects = self._objects(in_slice, frame, first=not images)
            if objects:
                annotations.append({'annotation': {'size': {'height': height, 'width': width},
                                                   'object': objects}})
            elif annotations:
                previous = annotations[-1]['annotation']
                annotations.append({'annotation': {
                    'size': dict(previous['size']),
                    'object': [{**obj, 'bndbox': dict(obj['bndbox'])} for obj in previous['object']]}})
            else:
                continue
            images.append(frame)
        return images, annotations

    def _read_recording(self, index: int) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
        events, sensor = _read_dat(self.td_files[index])
        boxes = _read_boxes(self.bbox_files[index])
        start = 0
        if self.randomize_seq and len(events):
            duration_s = int(events['t'][-1]) * 1e-6
            span_s = (duration_s - 0.1) - self.seq_len * self.delta_t / 1e6
            start = max(int(span_s * np.random.random() * 1e6), 0)
        images, annotations = self._read_clip(events, boxes, sensor, start)
        if len(images) < self.seq_len and start > 0:
            images, annotations = self._read_clip(events, boxes, sensor, 0)
        return images, annotations

    def __getitem__(self, index: int) -> tuple[torch.Tensor, list[dict[str, Any]]]:
        """One clip of event frames.

        Parameters
        ----------
        index : int
            Recording index.

        Returns
        -------
        torch.Tensor
            Event frames, float32 ``(2, height, width, seq_len)`` of 0/1 values.
        list of dict
            One annotation per frame, boxes in pixels of the resized frames.
        """
        if not -len(self) <= index < len(self):
            raise IndexError(f"PropheseeAutomotive: index {index} out of range for {len(self)} recordings")
        index %= len(self)
        images, annotations = self._read_recording(index)
        if len(images) < self.seq_len:
            for other in np.random.permutation(len(self)):
                if other == index:
                    continue
                images, annotations = self._read_recording(int(other))
                if len(images) == self.seq_len:
                    break
            else:
                raise ValueError(f"PropheseeAutomotive: no recording of {self.dataset_path} gives "
                                 f"{self.seq_len} frames of {self.delta_t / 1000} ms with boxes "
                                 f"(requested recording: {self.td_files[index]})")

        if np.random.random() < self.augment_prob:  # left-right flip
            images = [fliplr_events(image) for image in images]
            annotations = [bbutils.fliplr_bounding_boxes(ann) for ann in annotations]

        frames = torch.stack([torch.from_numpy(np.ascontiguousarray(resize_events_frame(image, self.size)))
                              .float().permute(2, 0, 1) for image in images], dim=-1)
        annotations = [bbutils.resize_bounding_boxes(ann, self.size) for ann in annotations]
        return frames, annotations

    def __len__(self) -> int:
        """Number of recordings in the split."""
        return len(self.td_files)
