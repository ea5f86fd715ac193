"""Small stateful per-step modules for the host side of a network run (lava-dl's
``netx.sequential_modules``): encoders and decoders between real values and Loihi's fixed-point
messages, and a FIFO, called once per step around a Lava run.

A module counts its calls (``time_step``), computes in ``forward`` and may define
``post_forward``, which then runs in a background thread after each call (e.g. to load the next
input from disk) and is joined before the next call and at interpreter exit.

Differences from lava-dl: :class:`Quantize` refuses NaN and infinite values (lava-dl cast them to
arbitrary integers); torch tensors are accepted without this module importing torch.
"""

from __future__ import annotations

import atexit
import threading
import typing as ty
from collections import deque

import numpy as np

__all__ = ["AbstractSeqModule", "Quantize", "Dequantize", "FIFO"]


def _as_array(x) -> np.ndarray:
    """``x`` as a numpy array (a torch tensor is detached and copied to the host)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


class AbstractSeqModule:
    """Base of the sequential modules: ``module(*args)`` advances :attr:`time_step`, waits for the
    previous call's ``post_forward`` (if the subclass defines one), returns ``forward(*args)`` and
    then starts ``post_forward`` in a background thread.

    Examples
    --------
    >>> class Delay(AbstractSeqModule):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.last = 0
    ...     def forward(self, x):
    ...         out, self.last = self.last, x
    ...         return out
    >>> d = Delay(); [d(1), d(2), d.time_step]
    [0, 1, 2]
    """

    def __init__(self) -> None:
        #: Number of calls so far.
        self.time_step = 0
        self.has_post_fx = hasattr(self, "post_forward")
        self.post_fx_thread: threading.Thread | None = None
        atexit.register(self._join_post_fx_thread)

    def _join_post_fx_thread(self) -> None:
        if self.post_fx_thread is not None:
            self.post_fx_thread.join()
            self.post_fx_thread = None

    def forward(self, *args: ty.Any, **kwargs: ty.Any) -> ty.Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: ty.Any, **kwargs: ty.Any) -> ty.Any:
        self.time_step += 1
        self._join_post_fx_thread()
        result = self.forward(*args, **kwargs)
        if self.has_post_fx:
            self.post_fx_thread = threading.Thread(target=self.post_forward, daemon=True)
            self.post_fx_thread.start()
        return result


class Quantize(AbstractSeqModule):
    """Real values to fixed point: ``round(x * 2**exp)`` as integers (numpy's round half to even).

    Parameters
    ----------
    exp : int
        Fractional bits.
    """

    def __init__(self, exp: int = 0) -> None:
        super().__init__()
        self.exp = int(exp)

    def forward(self, x) -> np.ndarray:
        values = _as_array(x)
        if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            raise ValueError("Quantize: the input holds NaN or infinite values")
        return np.round(values * (1 << self.exp)).astype(int)


class Dequantize(AbstractSeqModule):
    """Fixed-point messages to real values: the low ``num_raw_bits`` bits read as a signed
    integer (sign-extended), divided by ``2**exp``.

    Parameters
    ----------
    exp : int
        Fractional bits.
    num_raw_bits : int
        Bits of the raw messages (at most 32), e.g. 24 for Loihi's graded spikes.
    """

    def __init__(self, exp: int = 0, num_raw_bits: int = 24) -> None:
        super().__init__()
        if not 0 < int(num_raw_bits) <= 32:
            raise ValueError(f"Dequantize: num_raw_bits must be in [1, 32], got {num_raw_bits}")
        self.exp = int(exp)
        self.shift_32 = 32 - int(num_raw_bits)

    def forward(self, x) -> np.ndarray:
        raw = _as_array(x).astype(np.int64).astype(np.int32)  # the low 32 bits
        if self.shift_32:
            raw = (raw << self.shift_32) >> self.shift_32
        return raw / (1 << self.exp)


class FIFO(AbstractSeqModule):
    """A FIFO of ``depth`` entries: each call stores its argument and returns the one stored
    ``depth`` calls earlier (``None`` for the first ``depth`` calls).

    Parameters
    ----------
    depth : int
        Number of calls an entry waits (at least 1).
    """

    def __init__(self, depth: int = 1) -> None:
        super().__init__()
        if int(depth) < 1:
            raise ValueError(f"FIFO: depth must be at least 1, got {depth}")
        self.buffer: deque = deque([None] * int(depth))

    def forward(self, x: ty.Any) -> ty.Any:
        self.buffer.append(x)
        return self.buffer.popleft()
