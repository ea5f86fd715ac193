"""Spike events: the :class:`Event` container, lava-dl's spike files, tensors and tonic.

Same names, arguments and return conventions as ``lava.lib.dl.slayer.io`` (lava-dl 0.6.0);
the readers and writers are vectorised numpy (no per-event Python loop) and check what
they read and write.

Events carry ``x``, ``y`` (``None`` for one-dimensional data), ``c`` (channel: the
polarity in the binary files) and ``t`` (time in **milliseconds**), plus an optional
graded payload ``p``. Dense spike tensors are ``C, H, W, T`` (``C, X, T`` for 1-D data),
time last, as everywhere in ``lava_dl.slayer``.

File formats (all readable and writable by lava-dl 0.6.0; byte-identical files for the same
events, see *Differences from lava-dl* for the two cases where lava-dl's writer was wrong):

``read_1d_spikes`` / ``encode_1d_spikes`` (lava-dl's ``*.bs1`` files)
    5 bytes (40 bits, big-endian) per event: bits 39-24 neuron id (0..65535), bit 23
    polarity (0 OFF, 1 ON), bits 22-0 time in microseconds (0..8 388 607 us). No header.
``read_2d_spikes`` / ``encode_2d_spikes`` (``*.bs2`` files, the N-MNIST / N-Caltech101 format)
    5 bytes per event: bits 39-32 x (0..255), bits 31-24 y (0..255), bit 23 polarity,
    bits 22-0 time in microseconds.
``read_np_spikes`` / ``encode_np_spikes`` (``*.npy``)
    A float ``N x 3`` (x, polarity, time) or ``N x 4`` (x, y, polarity, time) numpy array,
    one row per event, time in units of ``time_unit`` seconds (milliseconds by default).

A file that cannot be what it claims (a size that is not a whole number of 5-byte events,
a ``.npy`` array of the wrong shape or type, non-integer addresses) raises ``ValueError``
naming the file and the problem; a writer given an event it cannot represent (an address or
time outside the field, a polarity other than 0/1, a graded payload the format has no room
for) raises ``ValueError`` naming the file and the first offending event. Nothing is
wrapped, clipped or silently dropped.

Tonic (optional extra, never imported here: its events are plain numpy structured arrays):
:func:`tonic_to_event` / :func:`event_to_tonic` convert tonic's ``x, y, t, p`` (or the
audio-like ``x, t, p``) arrays, and :class:`ToSlayerTensor` is a transform for
``tonic.transforms.Compose`` producing ``C, H, W, T`` (or ``C, T``) torch tensors.

Differences from lava-dl 0.6.0 (its bugs, fixed here)
-----------------------------------------------------
* ``Event`` no longer shifts the channels so that the smallest becomes 0 (lava-dl does
  ``c -= c.min()``, in place on the caller's array): a recording with only ON events kept
  ON = channel 1 instead of landing in the OFF channel, and the caller's array is untouched.
  An empty ``Event`` is allowed (lava-dl's ``c.min()`` raised). For 1-D events ``y`` is
  ``None`` (lava-dl stored ``np.asarray(None)``).
* ``to_tensor()`` infers ``round(max(t) / sampling_time) + 1`` time bins; lava-dl's
  ``round(max(t) / sampling_time + 1)`` (round half to even) lost the last event when
  ``max(t) / sampling_time`` was ``k + 0.5`` with ``k`` odd (one bin more when ``k`` even).
* ``fill_tensor(..., binning_mode='SUM')`` really sums events that fall in the same bin
  (lava-dl's fancy-index ``+=`` counted each bin once, i.e. behaved like ``'OR'``).
* A graded event's payload is written as ``payload / sampling_time``, the inverse of
  :func:`tensor_to_event` (which multiplies by ``sampling_time``, as lava-dl does); lava-dl
  wrote the bare payload, so a tensor -> event -> tensor round trip changed the values
  whenever ``sampling_time != 1``. With ``sampling_time=1`` nothing changes.
* ``encode_1d_spikes`` writes neuron ids >= 256 correctly (lava-dl wrote
  ``(x >> 8) & 0xFF00``, always 0, as the high byte, so ids 256.. came back as ``x % 256``).
* ``encode_np_spikes`` honours ``time_unit`` (lava-dl always wrote milliseconds, so a file
  written with another ``time_unit`` read back scaled); the default is unchanged.
* Values that do not fit a field raise instead of being wrapped by ``np.uint8``; graded
  payloads raise in the writers instead of being dropped; non-integer addresses raise
  instead of being truncated.
* :meth:`Event.show` draws a still picture (a raster for 1-D events, the per-polarity event
  image for 2-D) with :mod:`lava_dl.slayer.plot`, which renders the same in scripts,
  notebooks and files (``path=``); lava-dl's ``show`` started an animation it did not
  return. :meth:`Event.anim` is the animation, as in lava-dl, and can also save it as a GIF
  with Pillow (``path=``). Its 2-D frames include events at the very end (lava-dl's
  ``ceil(max(t) / interval)`` frames left out events at a whole multiple of the frame
  interval), and graded 1-D events with equal payloads no longer divide by zero.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "Event",
    "tensor_to_event",
    "read_1d_spikes",
    "encode_1d_spikes",
    "read_2d_spikes",
    "encode_2d_spikes",
    "read_np_spikes",
    "encode_np_spikes",
    "tonic_to_event",
    "event_to_tonic",
    "ToSlayerTensor",
]

PathLike = str | os.PathLike

_EVENT_BYTES = 5
_TIME_BITS = 23
_MAX_TIME_US = (1 << _TIME_BITS) - 1  # 8 388 607 us


def _to_numpy(value: Any) -> np.ndarray:
    """``value`` as a numpy array (torch tensors are detached and moved to the CPU)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _as_vector(value: Any, name: str) -> np.ndarray:
    array = _to_numpy(value)
    if array.ndim != 1:
        raise ValueError(
            f"Event {name} must be one-dimensional (one entry per event); got shape {array.shape}"
        )
    if array.dtype == bool:
        return array.astype(np.int64)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"Event {name} must be numeric; got dtype {array.dtype}")
    return array


def _as_index(value: Any, name: str) -> np.ndarray:
    """An integer address array; float input must hold whole numbers (it is not truncated)."""
    array = _as_vector(value, name)
    if np.issubdtype(array.dtype, np.integer):
        return array
    bad = ~np.isfinite(array) | (array != np.round(array))
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise ValueError(f"Event {name} must hold integers; entry {index} is {array[index]!r}")
    return array.astype(np.int64)


def _as_finite(value: Any, name: str) -> np.ndarray:
    array = _as_vector(value, name)
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array)
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise ValueError(f"Event {name} must be finite; entry {index} is {array[index]!r}")
    return array


class Event:
    """Spike events: addresses, times and an optional graded payload.

    Parameters
    ----------
    x_event : array_like of int
        x address of each event (the neuron id for 1-D data).
    y_event : array_like of int or None
        y address of each event; ``None`` for 1-D data.
    c_event : array_like of int
        Channel of each event (the polarity for event cameras and the binary files).
    t_event : array_like of int or float
        Time of each event in milliseconds.
    payload : array_like of float, optional
        Graded payload of each event; ``None`` (default) for binary spikes.

    Attributes
    ----------
    x, y, c : numpy.ndarray
        Integer addresses (``y`` is ``None`` when ``dim == 1``). Integer input keeps its
        dtype; float input must hold whole numbers and becomes ``int64``.
    t : numpy.ndarray
        Times in milliseconds (dtype as given).
    p : numpy.ndarray or None
        Graded payload, ``None`` for binary events.
    dim : int
        1 for ``(x, c, t)`` events, 2 for ``(x, y, c, t)`` events.
    graded : bool
        Whether the events carry a payload.

    Raises
    ------
    ValueError
        When the arrays differ in length, are not one-dimensional, hold non-integer
        addresses or non-finite times / payloads.

    Notes
    -----
    Unlike lava-dl 0.6.0 the channels are kept as given (lava-dl subtracted their minimum,
    so a recording of ON events only moved to channel 0) and the caller's arrays are never
    modified.
    """

    def __init__(
        self,
        x_event: Any,
        y_event: Any | None,
        c_event: Any,
        t_event: Any,
        payload: Any | None = None,
    ) -> None:
        self.dim = 1 if y_event is None else 2
        self.graded = payload is not None
        self.x = _as_index(x_event, "x")
        self.y = None if y_event is None else _as_index(y_event, "y")
        self.c = _as_index(c_event, "c")
        self.t = _as_finite(t_event, "t")
        self.p = _as_finite(payload, "payload") if self.graded else None
        lengths = {"x": len(self.x), "c": len(self.c), "t": len(self.t)}
        if self.y is not None:
            lengths["y"] = len(self.y)
        if self.p is not None:
            lengths["payload"] = len(self.p)
        if len(set(lengths.values())) > 1:
            raise ValueError(f"Event arrays must have one entry per event; got lengths {lengths}")

    def __len__(self) -> int:
        return len(self.t)

    def __repr__(self) -> str:
        span = f", t=[{self.t.min()}, {self.t.max()}] ms" if len(self) else ""
        kind = "graded" if self.graded else "binary"
        return f"Event(dim={self.dim}, {len(self)} {kind} events{span})"

    # ------------------------------------------------------------------ tensors
    def to_tensor(self, sampling_time: float = 1, dim: tuple[int, ...] | None = None) -> np.ndarray:
        """The events binned into a dense numpy array.

        Parameters
        ----------
        sampling_time : float
            Width of a time bin in milliseconds (default 1). Event ``t`` goes to bin
            ``round(t / sampling_time)`` (numpy's round-half-to-even, as lava-dl).
        dim : tuple of int, optional
            Shape of the result: ``(C, X, T)`` for 1-D events, ``(C, H, W, T)`` for 2-D.
            Inferred when ``None``: one more than the largest address in each dimension
            and ``round(max(t) / sampling_time) + 1`` time bins, so the last event is in
            (lava-dl's ``round(max(t) / sampling_time + 1)`` dropped it when
            ``max(t) / sampling_time`` was an odd number plus one half).

        Returns
        -------
        numpy.ndarray
            float64 array of shape ``dim``, filled as :meth:`fill_tensor` with
            ``binning_mode='OR'`` (binary events are ``1 / sampling_time``).

        Raises
        ------
        ValueError
            When ``dim`` has the wrong length or cannot be inferred (no events).
        """
        if dim is None:
            if len(self) == 0:
                raise ValueError("cannot infer the tensor shape of an Event without events; pass dim")
            bins = int(np.round(self.t.max() / sampling_time)) + 1
            spatial = [self.x.max() + 1] if self.dim == 1 else [self.y.max() + 1, self.x.max() + 1]
            dim = (int(self.c.max()) + 1, *(int(s) for s in spatial), bins)
        dim = tuple(int(d) for d in dim)
        if len(dim) != self.dim + 2:
            expected = "(C, X, T)" if self.dim == 1 else "(C, H, W, T)"
            raise ValueError(f"dim of a {self.dim}-D Event must be {expected}; got {dim}")
        if min(dim) < 1:
            raise ValueError(f"tensor shape {dim} has an empty dimension (negative addresses or times?)")
        frame = np.zeros(dim if self.dim == 2 else (dim[0], 1, dim[1], dim[2]))
        return self.fill_tensor(frame, sampling_time).reshape(dim)

    def fill_tensor(
        self,
        empty_tensor: np.ndarray | torch.Tensor,
        sampling_time: float = 1,
        random_shift: bool = False,
        binning_mode: str = "OR",
    ) -> np.ndarray | torch.Tensor:
        """Write the events into ``empty_tensor`` (in place) and return it.

        Parameters
        ----------
        empty_tensor : numpy.ndarray or torch.Tensor
            ``C, H, W, T`` tensor (for 1-D events ``C, 1, X, T`` as lava-dl, or ``C, X, T``).
            Events outside it (addresses or time bins beyond its shape, or negative) are
            not written: the tensor is the window being filled.
        sampling_time : float
            Width of a time bin in milliseconds (default 1); event ``t`` goes to bin
            ``round(t / sampling_time)``.
        random_shift : bool
            Shift all events back by a random whole number of bins drawn with
            ``np.random.randint`` exactly as lava-dl does (same draw for the same seed).
        binning_mode : {'OR', 'SUM'}
            ``'OR'``: a bin holding one or more binary events is ``1 / sampling_time``.
            ``'SUM'``: events in the same bin add up. Graded events always use ``'SUM'``
            with value ``payload / sampling_time``.

        Returns
        -------
        numpy.ndarray or torch.Tensor
            ``empty_tensor``, filled.

        Raises
        ------
        ValueError
            For an unknown ``binning_mode`` or a tensor of the wrong number of dimensions.
        """
        mode = str(binning_mode).upper()
        if mode not in ("OR", "SUM"):
            raise ValueError(f"binning_mode must be 'OR' or 'SUM'; got {binning_mode!r}")
        if self.graded:
            mode = "SUM"
        shape = tuple(empty_tensor.shape)
        if self.dim == 2 and len(shape) != 4:
            raise ValueError(f"a 2-D Event fills a C, H, W, T tensor; got shape {shape}")
        if self.dim == 1 and len(shape) not in (3, 4):
            raise ValueError(f"a 1-D Event fills a C, 1, X, T (or C, X, T) tensor; got shape {shape}")
        steps = shape[-1]

        t_start = 0
        if random_shift and len(self):
            first = int(self.t.min() / sampling_time)
            last = int(self.t.max() / sampling_time)
            t_start = np.random.randint(max(first, last - steps, steps - last, 1))

        t_bin = np.round(self.t / sampling_time).astype(np.int64) - t_start
        c_bin = self.c.astype(np.int64, copy=False)
        x_bin = self.x.astype(np.int64, copy=False)
        if self.dim == 2:
            index = [c_bin, self.y.astype(np.int64, copy=False), x_bin, t_bin]
            bounds = [shape[0], shape[1], shape[2], steps]
        elif len(shape) == 4:
            index = [c_bin, np.zeros_like(x_bin), x_bin, t_bin]
            bounds = [shape[0], 1, shape[2], steps]
        else:
            index = [c_bin, x_bin, t_bin]
            bounds = [shape[0], shape[1], steps]
        valid = np.ones(len(self), dtype=bool)
        for values, bound in zip(index, bounds):
            valid &= (values >= 0) & (values < bound)
        index = [values[valid] for values in index]
        if self.graded:
            values = self.p[valid] / sampling_time
        else:
            values = np.full(int(valid.sum()), 1 / sampling_time)

        if isinstance(empty_tensor, torch.Tensor):
            device = empty_tensor.device
            torch_index = tuple(torch.as_tensor(i, device=device) for i in index)
            torch_values = torch.as_tensor(values, dtype=empty_tensor.dtype, device=device)
            empty_tensor.index_put_(torch_index, torch_values, accumulate=mode == "SUM")
        elif mode == "SUM":
            np.add.at(empty_tensor, tuple(index), values)
        else:
            empty_tensor[tuple(index)] = values
        return empty_tensor

    # ------------------------------------------------------------ visualisation
    def show(
        self,
        fig: Any = None,
        frame_rate: float = 24,
        pre_compute_frames: bool = True,
        repeat: bool = False,
        path: PathLike | None = None,
    ) -> None:
        """Draw the events as a still picture.

        1-D events: a raster (:func:`lava_dl.slayer.plot.raster`: time in ms against
        neuron ``c * X + x``). 2-D events: the event image, ON (channel 1) red, channel 2
        green, OFF (channel 0) blue, brightness = event count relative to the channel's
        busiest pixel.

        Parameters
        ----------
        fig : matplotlib.figure.Figure, optional
            Figure to draw into (its first axes, created if needed); a new pyplot figure
            when ``None``.
        frame_rate, pre_compute_frames, repeat
            Accepted for lava-dl compatibility (they belong to :meth:`anim`); unused.
        path : str or os.PathLike, optional
            Save the picture there (PNG or any format matplotlib knows) instead of calling
            ``pyplot.show()``.
        """
        from lava_dl.slayer import plot

        _ = frame_rate, pre_compute_frames, repeat
        ax = plot._axes(fig)
        if self.dim == 1:
            plot.raster(self, ax=ax)
        else:
            ax.imshow(_event_image(self))
            ax.set_xlabel("x")
            ax.set_ylabel("y")
        plot._finish(ax, path, show=path is None)

    def anim(
        self,
        fig: Any = None,
        frame_rate: float = 24,
        pre_compute_frames: bool = True,
        repeat: bool = True,
        path: PathLike | None = None,
    ) -> Any:
        """The events as a matplotlib animation (optionally saved as a GIF).

        Parameters
        ----------
        fig : matplotlib.figure.Figure, optional
            Figure to animate; a new one when ``None``. It is closed (as in lava-dl) so that
            notebooks do not also show it as a still.
        frame_rate : float
            Frames per second; one frame spans ``1000 / frame_rate`` ms of event time.
        pre_compute_frames : bool
            For 2-D events, compute all frames up front (faster playback) instead of on
            demand.
        repeat : bool
            Whether the animation loops when played.
        path : str or os.PathLike, optional
            Save the animation there with matplotlib's ``PillowWriter`` at ``frame_rate``
            (a ``.gif``), as lava-dl's tutorials do with the returned object.

        Returns
        -------
        matplotlib.animation.FuncAnimation
            The animation (``anim.save(name, animation.PillowWriter(fps=24))`` works too).

        Raises
        ------
        ValueError
            For an Event without events.
        """
        import matplotlib.pyplot as plt
        from matplotlib import animation

        if len(self) == 0:
            raise ValueError("cannot animate an Event without events")
        if fig is None:
            fig = plt.figure()
        interval = 1e3 / frame_rate
        first = int(np.floor(self.t.min() / interval))
        count = int(np.floor(self.t.max() / interval)) - first + 1
        ax = fig.axes[0] if fig.axes else fig.add_subplot(1, 1, 1)
        if self.dim == 1:
            update, frames = _raster_animation(self, ax, interval, first, count)
        else:
            update, frames = _image_animation(self, ax, interval, first, count, pre_compute_frames)
        result = animation.FuncAnimation(fig, update, frames=frames, interval=interval, repeat=repeat)
        if path is not None:
            result.save(os.fspath(path), writer=animation.PillowWriter(fps=frame_rate))
        plt.close(fig)
        return result


def _frame_index(event: Event, interval: float, first: int) -> np.ndarray:
    return np.floor(event.t / interval).astype(np.int64) - first


def _event_frames(event: Event, frame: np.ndarray, count: int, height: int, width: int) -> np.ndarray:
    """RGB frames (``count, H, W, 3``): event ``i`` lights pixel ``(y, x)`` of frame ``frame[i]``.

    ON (channel 1) is red, channel 2 green, OFF (channel 0) blue, as in lava-dl.
    """
    frames = np.zeros((count, height, width, 3), dtype=np.float32)
    for channel, colour in ((1, 0), (2, 1), (0, 2)):
        mask = event.c == channel
        frames[frame[mask], event.y[mask], event.x[mask], colour] = 1
    return frames


def _event_image(event: Event) -> np.ndarray:
    """RGB image (``H, W, 3`` in [0, 1]) of event counts per channel (ON red, 2 green, OFF blue)."""
    height = int(event.y.max()) + 1 if len(event) else 1
    width = int(event.x.max()) + 1 if len(event) else 1
    image = np.zeros((height, width, 3))
    for channel, colour in ((1, 0), (2, 1), (0, 2)):
        mask = event.c == channel
        np.add.at(image[..., colour], (event.y[mask], event.x[mask]), 1)
    peak = image.max(axis=(0, 1), keepdims=True)
    return np.divide(image, peak, out=np.zeros_like(image), where=peak > 0)


def _image_animation(event: Event, ax: Any, interval: float, first: int, count: int, pre_compute: bool):
    height, width = int(event.y.max()) + 1, int(event.x.max()) + 1
    image = ax.imshow(np.zeros((height, width, 3), dtype=np.float32))
    frame_of_event = _frame_index(event, interval, first)
    if pre_compute:
        frames = _event_frames(event, frame_of_event, count, height, width)

        def update(index):
            image.set_data(frames[index])
            return (image,)

        return update, count

    def update_lazy(index):
        mask = frame_of_event == index
        sub = Event(event.x[mask], event.y[mask], event.c[mask], event.t[mask])
        image.set_data(_event_frames(sub, np.zeros(len(sub), dtype=np.int64), 1, height, width)[0])
        return (image,)

    return update_lazy, count


def _raster_animation(event: Event, ax: Any, interval: float, first: int, count: int):
    neurons = int(event.x.max()) + 1
    t_min, t_max = float(event.t.min()), float(event.t.max())
    margin = max(0.05 * (t_max - t_min), interval)
    ax.set_xlim(t_min - margin, t_max + margin)
    ax.set_ylim(-0.5, neurons - 0.5)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("neuron")
    if event.graded:
        span = float(event.p.max() - event.p.min())
        weight = (event.p - event.p.min()) / span if span > 0 else np.ones(len(event))
        dots = ax.scatter([], [], s=[], c="C0")
    else:
        (dots,) = ax.plot([], [], "|", color="C0")
    (scan,) = ax.plot([], [], color="C1")

    def update(index):
        t_end = (first + index + 1) * interval
        shown = event.t < t_end
        if event.graded:
            dots.set_offsets(np.column_stack([event.t[shown], event.x[shown]]))
            dots.set_sizes(20 * weight[shown] + 2)
            dots.set_alpha(0.2 + 0.8 * weight[shown])
        else:
            dots.set_data(event.t[shown], event.x[shown])
        scan.set_data([t_end, t_end], [-0.5, neurons - 0.5])
        return dots, scan

    return update, count


# ----------------------------------------------------------------------- tensors
def tensor_to_event(spike_tensor: np.ndarray | torch.Tensor, sampling_time: float = 1) -> Event:
    """The non-zero entries of a dense spike tensor as an :class:`Event`.

    Parameters
    ----------
    spike_tensor : numpy.ndarray or torch.Tensor
        ``C, X, T`` (1-D events) or ``C, H, W, T`` (2-D events) tensor.
    sampling_time : float
        Width of a time bin in milliseconds (default 1): entry ``[..., k]`` becomes an
        event at ``t = k * sampling_time`` with payload ``value * sampling_time``.

    Returns
    -------
    Event
        Events in the tensor's (C-order) element order. Binary (no payload) when every
        payload is 1 to within a total absolute deviation of 1e-6 (i.e. the tensor holds
        ``1 / sampling_time`` spikes), graded otherwise.

    Raises
    ------
    TypeError
        When ``spike_tensor`` is neither a numpy array nor a torch tensor.
    ValueError
        When it does not have 3 or 4 dimensions.
    """
    if not isinstance(spike_tensor, (np.ndarray, torch.Tensor)):
        raise TypeError(f"expected a numpy array or torch tensor; got {type(spike_tensor).__name__}")
    array = _to_numpy(spike_tensor)
    if array.ndim not in (3, 4):
        raise ValueError(
            f"expected a C, X, T (3-D) or C, H, W, T (4-D) spike tensor; got shape {tuple(array.shape)}"
        )
    index = np.nonzero(array)
    payload = array[index] * sampling_time
    t_event = index[-1] * sampling_time
    y_event = None if array.ndim == 3 else index[1]
    x_event = index[1] if array.ndim == 3 else index[2]
    if np.abs(payload - 1).sum() < 1e-6:
        return Event(x_event, y_event, index[0], t_event)
    return Event(x_event, y_event, index[0], t_event, payload)


# ------------------------------------------------------------------ binary files
def _read_words(filename: PathLike) -> np.ndarray:
    """The 40-bit words of a binary spike file as an ``N x 5`` uint8 array (big-endian)."""
    data = Path(filename).read_bytes()
    if len(data) % _EVENT_BYTES:
        raise ValueError(
            f"{os.fspath(filename)}: {len(data)} bytes is not a whole number of 5-byte (40-bit) "
            f"spike events ({len(data) % _EVENT_BYTES} trailing bytes): truncated, or not a "
            "lava-dl binary spike file"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(-1, _EVENT_BYTES)


def _polarity_and_time(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    low = words[:, 2:].astype(np.int64)
    polarity = low[:, 0] >> 7
    time_us = ((low[:, 0] & 0x7F) << 16) | (low[:, 1] << 8) | low[:, 2]
    return polarity, time_us / 1000


def _check_range(filename: PathLike, name: str, values: np.ndarray, high: int, unit: str = "") -> None:
    bad = (values < 0) | (values > high)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{os.fspath(filename)}: event {index} has {name} = {values[index]}{unit}, outside the "
            f"format's range 0..{high}{unit} ({int(bad.sum())} such events); nothing was written"
        )


def _writable(filename: PathLike, td_event: Any, dim: int | None, what: str) -> Event:
    if not isinstance(td_event, Event):
        raise TypeError(f"{os.fspath(filename)}: expected an Event; got {type(td_event).__name__}")
    if dim is not None and td_event.dim != dim:
        raise ValueError(
            f"{os.fspath(filename)}: {what} stores {dim}-D events; the Event is {td_event.dim}-D"
        )
    if td_event.graded:
        raise ValueError(
            f"{os.fspath(filename)}: {what} stores binary spikes and has no room for the graded payload "
            "of this Event; drop it explicitly (Event(x, y, c, t)) if that is intended"
        )
    return td_event


def _write_words(filename: PathLike, address: np.ndarray, td_event: Event) -> None:
    """Validate polarity and time, pack ``address << 24 | c << 23 | t_us`` big-endian, write."""
    polarity = td_event.c.astype(np.int64, copy=False)
    _check_range(filename, "polarity c", polarity, 1)
    time_us = np.round(td_event.t * 1000).astype(np.int64)
    _check_range(filename, "time", time_us, _MAX_TIME_US, " us")
    words = (address.astype(np.uint64) << np.uint64(24)) | (polarity.astype(np.uint64) << np.uint64(23))
    words |= time_us.astype(np.uint64)
    data = words.astype(">u8").view(np.uint8).reshape(-1, 8)[:, 8 - _EVENT_BYTES:]
    Path(filename).write_bytes(data.tobytes())


def read_1d_spikes(filename: PathLike) -> Event:
    """Read a 1-D binary spike file (lava-dl's ``.bs1``).

    Parameters
    ----------
    filename : str or os.PathLike
        The file: 5 big-endian bytes per event, bits 39-24 neuron id, bit 23 polarity,
        bits 22-0 time in microseconds.

    Returns
    -------
    Event
        1-D event: ``x`` neuron id, ``c`` polarity (int64), ``t`` in milliseconds (float64).

    Raises
    ------
    ValueError
        When the file size is not a multiple of 5 bytes.
    """
    words = _read_words(filename)
    neuron = (words[:, 0].astype(np.int64) << 8) | words[:, 1]
    polarity, time_ms = _polarity_and_time(words)
    return Event(neuron, None, polarity, time_ms)


def encode_1d_spikes(filename: PathLike, td_event: Event) -> None:
    """Write a 1-D event as a binary spike file (lava-dl's ``.bs1``).

    Parameters
    ----------
    filename : str or os.PathLike
        Output file (overwritten).
    td_event : Event
        1-D binary event with ``x`` in 0..65535, ``c`` in {0, 1} and ``t`` in
        0..8388.607 ms; times are rounded to whole microseconds.

    Raises
    ------
    ValueError
        When the event is 2-D or graded, or a field does not fit; nothing is written then.
    """
    event = _writable(filename, td_event, 1, "a 1-D binary spike file")
    neuron = event.x.astype(np.int64, copy=False)
    _check_range(filename, "neuron id x", neuron, 0xFFFF)
    _write_words(filename, neuron, event)


def read_2d_spikes(filename: PathLike) -> Event:
    """Read a 2-D binary spike file (``.bs2``, the N-MNIST / N-Caltech101 format).

    Parameters
    ----------
    filename : str or os.PathLike
        The file: 5 big-endian bytes per event, bits 39-32 x, bits 31-24 y, bit 23
        polarity, bits 22-0 time in microseconds.

    Returns
    -------
    Event
        2-D event (int64 ``x``, ``y``, ``c``; ``t`` in milliseconds, float64).

    Raises
    ------
    ValueError
        When the file size is not a multiple of 5 bytes.
    """
    words = _read_words(filename)
    polarity, time_ms = _polarity_and_time(words)
    return Event(words[:, 0].astype(np.int64), words[:, 1].astype(np.int64), polarity, time_ms)


def encode_2d_spikes(filename: PathLike, td_event: Event) -> None:
    """Write a 2-D event as a binary spike file (``.bs2``).

    Parameters
    ----------
    filename : str or os.PathLike
        Output file (overwritten).
    td_event : Event
        2-D binary event with ``x`` and ``y`` in 0..255, ``c`` in {0, 1} and ``t`` in
        0..8388.607 ms; times are rounded to whole microseconds.

    Raises
    ------
    ValueError
        When the event is 1-D or graded, or a field does not fit; nothing is written then.
    """
    event = _writable(filename, td_event, 2, "a 2-D binary spike file")
    x_event = event.x.astype(np.int64, copy=False)
    y_event = event.y.astype(np.int64, copy=False)
    _check_range(filename, "x", x_event, 0xFF)
    _check_range(filename, "y", y_event, 0xFF)
    _write_words(filename, (x_event << 8) | y_event, event)


# ------------------------------------------------------------------- numpy files
def _check_fmt(fmt: str) -> None:
    if fmt != "xypt":
        raise ValueError(f"fmt={fmt!r} is not supported; the numpy spike format is 'xypt'")


def read_np_spikes(filename: PathLike, fmt: str = "xypt", time_unit: float = 1e-3) -> Event:
    """Read a numpy spike file (one event per row).

    Parameters
    ----------
    filename : str or os.PathLike
        ``.npy`` file holding an ``N x 3`` (x, polarity, time: 1-D events) or ``N x 4``
        (x, y, polarity, time: 2-D events) numeric array.
    fmt : str
        Column order; only lava-dl's ``'xypt'``.
    time_unit : float
        Seconds per unit of the time column (default ``1e-3``: milliseconds).

    Returns
    -------
    Event
        Times converted to milliseconds as ``column * time_unit * 1e3`` (lava-dl's
        arithmetic, so the values are bit-identical to lava-dl's reader).

    Raises
    ------
    ValueError
        When the file is not a readable ``.npy`` array, not 2-D with 3 or 4 columns, not
        numeric, or holds non-integer addresses or non-finite values.
    """
    _check_fmt(fmt)
    name = os.fspath(filename)
    try:
        array = np.load(filename, allow_pickle=False)
    except (ValueError, EOFError) as error:
        raise ValueError(f"{name}: not a readable numpy .npy spike file ({error})") from error
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{name}: expected one .npy array of events, got {type(array).__name__}")
    if array.ndim != 2 or array.shape[1] not in (3, 4):
        raise ValueError(
            f"{name}: expected an events x 3 (x, p, t) or events x 4 (x, y, p, t) array; "
            f"got shape {array.shape}"
        )
    if array.dtype.names is not None or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise ValueError(f"{name}: expected a numeric array of events; got dtype {array.dtype}")
    try:
        if array.shape[1] == 3:
            return Event(array[:, 0], None, array[:, 1], array[:, 2] * time_unit * 1e3)
        return Event(array[:, 0], array[:, 1], array[:, 2], array[:, 3] * time_unit * 1e3)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from error


def encode_np_spikes(filename: PathLike, td_event: Event, fmt: str = "xypt", time_unit: float = 1e-3) -> None:
    """Write an event as a numpy spike file (float64, one event per row).

    Parameters
    ----------
    filename : str or os.PathLike
        Output file; ``np.save`` appends ``.npy`` when missing.
    td_event : Event
        Binary event; 1-D gives columns (x, c, t), 2-D gives (x, y, c, t).
    fmt : str
        Column order; only ``'xypt'``.
    time_unit : float
        Seconds per unit of the time column (default ``1e-3``: milliseconds, where the
        file is byte-identical to lava-dl's).

    Raises
    ------
    ValueError
        For a graded event (the format has no payload column) or an unknown ``fmt``.
    """
    _check_fmt(fmt)
    event = _writable(filename, td_event, None, "the numpy spike format")
    columns = [event.x] + ([event.y] if event.dim == 2 else []) + [event.c, event.t / (time_unit * 1e3)]
    array = np.zeros((len(event), len(columns)))
    for index, column in enumerate(columns):
        array[:, index] = column
    np.save(filename, array)


# ------------------------------------------------------------------------- tonic
def tonic_to_event(events: np.ndarray, time_unit: float = 1e-6) -> Event:
    """A tonic event array as an :class:`Event`.

    Parameters
    ----------
    events : numpy.ndarray
        Structured array with fields ``x``, ``t``, ``p`` and optionally ``y`` (tonic's
        ``x, y, t, p`` camera events or ``x, t, p`` audio events). The polarity ``p``
        (bool or non-negative int) becomes the channel ``c``.
    time_unit : float
        Seconds per unit of ``t`` (default ``1e-6``: tonic's microseconds).

    Returns
    -------
    Event
        2-D when ``events`` has a ``y`` field, 1-D otherwise; ``t`` in milliseconds.

    Raises
    ------
    ValueError
        When a field is missing or a polarity is negative.
    """
    names = getattr(getattr(events, "dtype", None), "names", None)
    if names is None:
        raise ValueError("expected a tonic structured event array with fields x, (y,) t, p")
    missing = [field for field in ("x", "t", "p") if field not in names]
    if missing:
        raise ValueError(f"tonic events lack field(s) {missing}; they have {list(names)}")
    polarity = events["p"].astype(np.int64)
    if (polarity < 0).any():
        index = int(np.flatnonzero(polarity < 0)[0])
        raise ValueError(
            f"tonic event {index} has polarity {events['p'][index]}; channels must be >= 0 "
            "(map -1/+1 polarities to 0/1 first)"
        )
    y_event = events["y"] if "y" in names else None
    return Event(events["x"], y_event, polarity, events["t"] * (time_unit * 1e3))


def event_to_tonic(event: Event, time_unit: float = 1e-6) -> np.ndarray:
    """An :class:`Event` as a tonic structured event array.

    Parameters
    ----------
    event : Event
        Binary event (tonic events have no payload).
    time_unit : float
        Seconds per unit of the output ``t`` (default ``1e-6``: microseconds); times are
        rounded to whole units.

    Returns
    -------
    numpy.ndarray
        int64 fields ``x, y, t, p`` (2-D, tonic's camera layout) or ``t, x, p`` (1-D,
        tonic's audio layout), ``p`` = the channel ``c``.

    Raises
    ------
    ValueError
        For a graded event.
    """
    if event.graded:
        raise ValueError("tonic events have no payload field; this Event is graded")
    time = np.round(event.t / (time_unit * 1e3)).astype(np.int64)
    if event.dim == 2:
        fields = {"x": event.x, "y": event.y, "t": time, "p": event.c}
    else:
        fields = {"t": time, "x": event.x, "p": event.c}
    out = np.empty(len(event), dtype=[(name, np.int64) for name in fields])
    for name, values in fields.items():
        out[name] = values
    return out


@dataclass(frozen=True)
class ToSlayerTensor:
    """Tonic transform: events -> slayer spike tensor (time last).

    Use it last in ``tonic.transforms.Compose([...])``. Binning is :meth:`Event.fill_tensor`'s,
    so the tensor equals what lava-dl code building an ``Event`` and filling a tensor gets.

    Parameters
    ----------
    sensor_size : tuple of int
        Tonic's ``(W, H, P)`` (``(X, 1, P)`` for audio-like events).
    sampling_time : float
        Time bin in **milliseconds** (default 1); event ``t`` goes to bin
        ``round(t_ms / sampling_time)``.
    num_steps : int, optional
        Number of time bins ``T``; events in later bins are left out (the window). When
        ``None``, ``round(max(t_ms) / sampling_time) + 1`` (varies with the sample).
    time_unit : float
        Seconds per unit of the events' ``t`` (default ``1e-6``, tonic's microseconds).
    binning_mode : {'OR', 'SUM'}
        As in :meth:`Event.fill_tensor` (a spike is ``1 / sampling_time``).
    random_shift : bool
        As in :meth:`Event.fill_tensor`.
    dtype : torch.dtype
        Result dtype (default float32).

    Returns
    -------
    torch.Tensor
        Called on events: ``P, H, W, T`` for camera events; ``P * X, T`` for events without
        ``y`` (channel ``p * X + x``).

    Raises
    ------
    ValueError
        When an event lies outside ``sensor_size`` (a wrong sensor size is a bug, not a
        window) or there are no events and no ``num_steps``.
    """

    sensor_size: tuple[int, int, int]
    sampling_time: float = 1.0
    num_steps: int | None = None
    time_unit: float = 1e-6
    binning_mode: str = "OR"
    random_shift: bool = False
    dtype: torch.dtype = torch.float32

    def __call__(self, events: np.ndarray) -> torch.Tensor:
        event = tonic_to_event(events, self.time_unit)
        width, height, polarities = (int(s) for s in self.sensor_size)
        limits = {"x": (event.x, width), "p": (event.c, polarities)}
        if event.dim == 2:
            limits["y"] = (event.y, height)
        for name, (values, bound) in limits.items():
            bad = (values < 0) | (values >= bound)
            if bad.any():
                index = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"tonic event {index} has {name} = {values[index]}, outside sensor_size "
                    f"{tuple(self.sensor_size)} (0..{bound - 1})"
                )
        if self.num_steps is not None:
            steps = int(self.num_steps)
        elif len(event):
            steps = int(np.round(event.t.max() / self.sampling_time)) + 1
        else:
            raise ValueError("no events and num_steps is None: cannot infer the number of time steps")
        if event.dim == 2:
            tensor = torch.zeros((polarities, height, width, steps), dtype=self.dtype)
        else:
            tensor = torch.zeros((polarities, 1, width, steps), dtype=self.dtype)
        event.fill_tensor(tensor, self.sampling_time, self.random_shift, self.binning_mode)
        return tensor if event.dim == 2 else tensor.reshape(polarities * width, steps)
