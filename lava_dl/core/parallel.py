"""Training kernels run over several CPU threads, on disjoint blocks of samples.

The training kernels of this package (:func:`lava_dl.core.cuba.cuba_forward` and the
others) take ``(B, T, K)`` arrays whose ``B`` blocks are independent: each block's
neurons read and write only their own rows. :class:`Blockwise` calls such a kernel
once per contiguous range of blocks, from a small pool of threads (the kernels are
compiled ``nogil``, so the calls run at once), each call on views of the same arrays.
Every value is then computed by the same compiled code on the same data as in a
single call, so the results are bit for bit those of the single-threaded kernel;
with one thread the kernel is called directly (no pool, no overhead).

Which threads: when the process has already loaded GNU OpenMP (torch's CPU build
does: its intra-op pool), the ranges run on that runtime's own team, through
``GOMP_parallel`` (a ctypes callback per team thread, which takes ranges ``i, i + n,
...``). Those are the threads that torch's operations have just used and that spin,
waiting for work, for milliseconds after each parallel region: a pool of threads of
our own would share the cores with them (on two cores the kernels then ran no faster
on two threads than on one). Otherwise (no OpenMP runtime loaded, or in a forked
child, whose OpenMP team does not exist) a :class:`~concurrent.futures.ThreadPoolExecutor`
of ours runs them.

Why threads over blocks rather than Numba's ``parallel=True``: the kernels stay the
one definition that Lava's single-threaded ProcessModels also run (no second
compiled variant), any number of threads can call them at once (Numba's
``workqueue`` layer aborts on concurrent use, and its OpenMP layer terminates a
process that forks after using it: Lava forks its workers). A forked child never
uses the parent's threads: :func:`os.register_at_fork` drops the pool and the
OpenMP route in the child, which starts a pool of its own if it ever runs a kernel
in parallel.

This module does not import torch: the caller says how many threads to use (the
slayer layers pass ``torch.get_num_threads()``).
"""

from __future__ import annotations

import ctypes
import inspect
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_workers = 0
#: ``False`` until looked up, then the :class:`_OpenMP` route or ``None``.
_openmp: _OpenMP | None | bool = False


def _reset_after_fork() -> None:
    """In a forked child: forget the parent's pool and OpenMP team (their threads do not exist here)."""
    global _lock, _pool, _pool_workers, _openmp
    _lock = threading.Lock()
    _pool = None
    _pool_workers = 0
    _openmp = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class _OpenMP:
    """Ranges of blocks run on the team of the GNU OpenMP runtime loaded in this process."""

    def __init__(self, lib: ctypes.CDLL):
        self._parallel = lib.GOMP_parallel
        self._parallel.argtypes = [_CALLBACK, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        self._parallel.restype = None
        self._thread_num = lib.omp_get_thread_num
        self._num_threads = lib.omp_get_num_threads
        self._jobs: dict[int, tuple] = {}
        self._keys = itertools.count(1)
        self._callback = _CALLBACK(self._team_member)  # kept alive with the object

    def _team_member(self, key) -> None:
        # runs on each team thread (the caller is thread 0), holding the GIL only to dispatch:
        # the kernels are nogil. Exceptions are kept for the caller (a ctypes callback drops them).
        kernel, calls, results, errors = self._jobs[key]
        first, step = self._thread_num(), self._num_threads()
        for i in range(first, len(calls), step):
            try:
                results[i] = kernel(*calls[i])
            except BaseException as exc:  # noqa: BLE001 - re-raised by run()
                errors.append(exc)

    def run(self, kernel, calls: list) -> list:
        """``[kernel(*call) for call in calls]``, the calls spread over a team of ``len(calls)`` threads."""
        results: list = [None] * len(calls)
        errors: list = []
        key = next(self._keys)
        self._jobs[key] = (kernel, calls, results, errors)
        try:
            self._parallel(self._callback, key, len(calls), 0)
        finally:
            del self._jobs[key]
        if errors:
            raise errors[0]
        return results


def _find_openmp() -> _OpenMP | None:
    """The route through the GNU OpenMP runtime already loaded (by torch), or ``None``.

    Only a runtime already in the process is used (loading a second one would start a
    second team); ``LAVA_DL_KERNEL_POOL=1`` forces the thread pool.
    """
    if os.environ.get("LAVA_DL_KERNEL_POOL", "") not in ("", "0"):
        return None
    try:
        with open(f"/proc/{os.getpid()}/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/libgomp" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
            if hasattr(lib, "GOMP_parallel"):
                return _OpenMP(lib)
        except OSError:
            continue
    return None


def _openmp_route() -> _OpenMP | None:
    global _openmp
    if _openmp is False:
        with _lock:
            if _openmp is False:
                _openmp = _find_openmp()
    return _openmp


def _executor(workers: int) -> ThreadPoolExecutor:
    """The shared pool, with at least ``workers`` threads (grown on demand)."""
    global _pool, _pool_workers
    with _lock:
        if _pool is None or _pool_workers < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lava_dl-kernel")
            _pool_workers = workers
        return _pool


#: Elements of a kernel's first block argument per thread below which :class:`Blockwise` uses fewer
#: threads: handing a call to another thread costs tens of microseconds, as much as a kernel of a
#: few ten thousand neuron-steps takes.
MIN_ELEMENTS_PER_THREAD = 1 << 15


def block_ranges(blocks: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ranges covering ``range(blocks)``, sizes differing by at most one.

    Parameters
    ----------
    blocks : int
        Number of blocks (``B``).
    parts : int
        Number of ranges, at most ``blocks``.

    Returns
    -------
    list of (int, int)
        ``(start, stop)`` of each range, in order.
    """
    base, extra = divmod(blocks, parts)
    ranges, start = [], 0
    for i in range(parts):
        stop = start + base + (i < extra)
        ranges.append((start, stop))
        start = stop
    return ranges


class Blockwise:
    """A kernel over independent blocks, callable on several threads.

    Parameters
    ----------
    kernel : numba dispatcher
        A ``nogil`` kernel whose blocks are independent (each reads and writes only its
        own slice of the block axis).
    axis0 : str
        Names of the arguments whose axis 0 is the block axis (``(B, ...)`` arrays).
    axis1 : tuple of str, optional
        Names of the arguments whose axis 1 is the block axis (e.g. ``(4, B, K)`` states).

    Notes
    -----
    An argument listed here whose block axis is not ``B`` long (an empty ``(0, 0, 0)``
    placeholder for an optional record) is passed unchanged to every call; all other
    arguments (scalars, shared tables) too. The block count ``B`` is the length of axis 0
    of the first argument listed in ``axis0``.
    """

    def __init__(self, kernel, *axis0: str, axis1: tuple[str, ...] = ()):
        self.kernel = kernel
        names = list(inspect.signature(getattr(kernel, "py_func", kernel)).parameters)
        unknown = [n for n in (*axis0, *axis1) if n not in names]
        if unknown or not axis0:
            name = getattr(kernel, "__name__", kernel)
            raise ValueError(f"{name}: unknown or missing block arguments {unknown}")
        self._split = tuple((names.index(n), 0) for n in axis0) + tuple((names.index(n), 1) for n in axis1)
        self._count = names.index(axis0[0])
        self.__doc__ = f"{kernel.__name__} run over blocks of its arguments {', '.join((*axis0, *axis1))}."

    def __call__(self, *args, threads: int = 1):
        """Run the kernel on ``args`` over ``threads`` threads (at most one per block).

        Parameters
        ----------
        *args
            The kernel's arguments, positionally.
        threads : int, optional
            Threads to use, the calling one included; 1 (the default) calls the kernel once.

        Returns
        -------
        list
            The kernel's return value for each range of blocks, in block order (one value
            with a single call).
        """
        first = args[self._count]
        blocks = first.shape[0]
        parts = min(int(threads), blocks, max(1, first.size // MIN_ELEMENTS_PER_THREAD))
        if parts <= 1:
            return [self.kernel(*args)]
        calls = [self._slice(args, blocks, start, stop) for start, stop in block_ranges(blocks, parts)]
        openmp = _openmp_route()
        if openmp is not None:
            return openmp.run(self.kernel, calls)
        pool = _executor(parts - 1)
        futures = [pool.submit(self.kernel, *call) for call in calls[1:]]
        try:
            first = self.kernel(*calls[0])
        finally:
            wait(futures)  # never return while a thread still writes into the arrays
        return [first, *(f.result() for f in futures)]

    def _slice(self, args, blocks: int, start: int, stop: int) -> list:
        call = list(args)
        for index, axis in self._split:
            arr = args[index]
            if arr.shape[axis] == blocks:
                call[index] = arr[start:stop] if axis == 0 else arr[:, start:stop]
        return call
