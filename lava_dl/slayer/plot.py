"""Pictures of spikes and neuron states: a raster plot and a state-trace plot.

lava-dl 0.6.0 has no public plotting module (only ``Event.show`` / ``Event.anim``); these
helpers are this project's, used by :meth:`lava_dl.slayer.io.Event.show`, the notebooks and
anyone who wants to look at a spike tensor. matplotlib is imported on first use. Each helper
draws into ``ax`` (a new pyplot figure when ``None``, so notebooks show it inline), returns
the axes, and with ``path=`` saves the figure (PNG, or any format matplotlib infers from the
suffix). Tensors are slayer's: neurons first, time last; the time axis is in
``sampling_time`` units (milliseconds for lava-dl data).

Examples
--------
>>> from lava_dl.slayer import plot
>>> ax = plot.raster(output[0], label="output")              # doctest: +SKIP
>>> plot.raster(target[0], ax=ax, label="target", path="raster.png")  # doctest: +SKIP
>>> plot.state_trace(voltage[0, :3], threshold=1.25, spikes=spikes[0, :3], path="v.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lava_dl.slayer.io import _to_numpy as _numpy

__all__ = ["raster", "state_trace"]


def _axes(fig: Any = None, ax: Any = None) -> Any:
    """``ax``, else the first axes of ``fig`` (created if needed), else a new pyplot figure's axes."""
    if ax is not None:
        return ax
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure()
    return fig.axes[0] if fig.axes else fig.add_subplot(1, 1, 1)


def _finish(ax: Any, path: str | os.PathLike | None, dpi: float = 100, show: bool = False) -> None:
    """Save the figure of ``ax`` to ``path``; with ``show``, call ``pyplot.show()`` instead."""
    if path is not None:
        ax.figure.savefig(os.fspath(path), dpi=dpi, bbox_inches="tight")
    elif show:
        import matplotlib.pyplot as plt

        with warnings.catch_warnings():  # non-interactive backends (Agg) only warn
            warnings.filterwarnings("ignore", message=".*non-interactive.*")
            plt.show()


def _spike_points(spikes: Any, sampling_time: float) -> tuple[np.ndarray, np.ndarray, str]:
    """(times, neuron indices, x-label) of a spike tensor or an Event."""
    from lava_dl.slayer.io import Event

    if isinstance(spikes, Event):
        if spikes.dim == 1:
            width = int(spikes.x.max()) + 1 if len(spikes) else 1
            neuron = spikes.c.astype(np.int64) * width + spikes.x
        else:
            height = int(spikes.y.max()) + 1 if len(spikes) else 1
            width = int(spikes.x.max()) + 1 if len(spikes) else 1
            neuron = (spikes.c.astype(np.int64) * height + spikes.y) * width + spikes.x
        return np.asarray(spikes.t, dtype=float), neuron, "time (ms)"
    array = _numpy(spikes)
    if array.ndim == 0:
        raise ValueError("raster expects a spike tensor (neurons..., T) or an Event; got a scalar")
    array = array.reshape(-1, array.shape[-1])
    neuron, step = np.nonzero(array)
    return step * sampling_time, neuron, "time"


def raster(
    spikes: Any,
    *,
    sampling_time: float = 1.0,
    ax: Any = None,
    color: Any = None,
    label: str | None = None,
    marker: str = "|",
    markersize: float | None = None,
    title: str | None = None,
    path: str | os.PathLike | None = None,
    dpi: float = 100,
) -> Any:
    """Raster plot: one mark per spike at (time, neuron).

    Parameters
    ----------
    spikes : array_like, torch.Tensor or Event
        Spike tensor with time last; all leading dimensions are flattened in C order into
        the neuron index (so ``(neurons, T)``, ``(C, H, W, T)`` or a single ``(T,)`` train).
        Any non-zero entry is a spike (graded spikes included). An
        :class:`~lava_dl.slayer.io.Event` is drawn at its times (ms) with neuron index
        ``c * X + x`` (1-D) or ``(c * H + y) * W + x`` (2-D).
    sampling_time : float
        Duration of one time step (default 1): the x axis is ``step * sampling_time``.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into (overlay several rasters with ``label``); a new figure if ``None``.
    color, label, marker, markersize
        Passed to ``Axes.plot`` (one ``Line2D`` without line per call).
    title : str, optional
        Axes title.
    path : str or os.PathLike, optional
        Save the figure there.
    dpi : float
        Resolution of the saved figure.

    Returns
    -------
    matplotlib.axes.Axes
        The axes; the spikes are its last ``Line2D`` (x: times, y: neuron indices).
    """
    times, neuron, xlabel = _spike_points(spikes, sampling_time)
    ax = _axes(ax=ax)
    ax.plot(times, neuron, linestyle="none", marker=marker, color=color, label=label, markersize=markersize)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("neuron")
    if title is not None:
        ax.set_title(title)
    if label is not None:
        ax.legend(loc="upper right")
    _finish(ax, path, dpi)
    return ax


def state_trace(
    states: Any,
    *,
    sampling_time: float = 1.0,
    ax: Any = None,
    labels: Sequence[str] | None = None,
    spikes: Any = None,
    threshold: float | None = None,
    title: str | None = None,
    ylabel: str = "state",
    path: str | os.PathLike | None = None,
    dpi: float = 100,
) -> Any:
    """Plot state variables (current, voltage, threshold, ...) against time.

    Parameters
    ----------
    states : array_like, torch.Tensor or mapping
        One trace ``(T,)``, several ``(n, T)`` (leading dimensions are flattened), or a
        mapping ``{label: (T,) trace}``.
    sampling_time : float
        Duration of one time step (default 1).
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure if ``None``.
    labels : sequence of str, optional
        Legend labels, one per trace (the mapping's keys when ``states`` is a mapping).
    spikes : array_like or torch.Tensor, optional
        Spikes shaped like the traces (``(T,)`` or ``(n, T)``): each is marked on its trace
        (at ``threshold`` when given, else at the trace's value) in the trace's colour.
    threshold : float, optional
        Draw a dashed horizontal line at this value.
    title, ylabel : str, optional
        Axes title and y label.
    path : str or os.PathLike, optional
        Save the figure there.
    dpi : float
        Resolution of the saved figure.

    Returns
    -------
    matplotlib.axes.Axes
        The axes; trace ``i`` is ``ax.lines[i]`` (x: times, y: values).

    Raises
    ------
    ValueError
        When ``labels`` or ``spikes`` do not match the traces, or traces differ in length.
    """
    if isinstance(states, Mapping):
        labels = list(states) if labels is None else labels
        traces = [_numpy(value).reshape(-1) for value in states.values()]
        if len({len(trace) for trace in traces}) > 1:
            lengths = {key: len(trace) for key, trace in zip(states, traces)}
            raise ValueError(f"state traces differ in length: {lengths}")
        traces = np.stack(traces) if traces else np.zeros((0, 0))
    else:
        traces = _numpy(states)
        traces = traces.reshape(-1, traces.shape[-1]) if traces.ndim else traces.reshape(1, 1)
    if labels is not None and len(labels) != len(traces):
        raise ValueError(f"{len(labels)} labels for {len(traces)} traces")
    marks = None
    if spikes is not None:
        marks = _numpy(spikes)
        marks = marks.reshape(-1, marks.shape[-1]) if marks.ndim else marks.reshape(1, 1)
        if marks.shape != traces.shape:
            raise ValueError(f"spikes of shape {marks.shape} do not match the traces' shape {traces.shape}")

    ax = _axes(ax=ax)
    time = np.arange(traces.shape[1]) * sampling_time
    lines = []
    for index, trace in enumerate(traces):
        label = None if labels is None else labels[index]
        (line,) = ax.plot(time, trace, label=label)
        lines.append(line)
    if marks is not None:
        for line, trace, mark in zip(lines, traces, marks):
            step = np.flatnonzero(mark)
            height = np.full(len(step), threshold, dtype=float) if threshold is not None else trace[step]
            ax.plot(time[step], height, linestyle="none", marker="v", color=line.get_color())
    if threshold is not None:
        ax.axhline(threshold, linestyle="--", color="gray", linewidth=1)
    ax.set_xlabel("time")
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    if labels is not None:
        ax.legend(loc="upper right")
    _finish(ax, path, dpi)
    return ax
