"""The oracles' own integer helpers, on plain Python ints (arbitrary precision, no numpy).

Written from ``reference-neurons.md`` §0 (notation) and kept apart from
``lava_dl.core.fixed_point`` on purpose: a wrong shared rule there must not
leak into the references the tests compare it with.
"""

from __future__ import annotations

#: 24-bit signed register bounds.
MAX24 = (1 << 23) - 1
MIN24 = -(1 << 23)


def rs0(x: int, n: int) -> int:
    """``RS0(x, n)``: sign-magnitude right shift, ``sign(x) * (|x| >> n)`` (round toward zero)."""
    magnitude = abs(x) >> n
    return magnitude if x >= 0 else -magnitude


def asr(x: int, n: int) -> int:
    """``ASR(x, n)``: arithmetic right shift, ``floor(x / 2^n)`` (Python's ``>>`` on ints)."""
    return x >> n


def shift(x: int, e: int) -> int:
    """``x << e`` for ``e >= 0``, else ``ASR(x, -e)`` (Loihi's exponent rule for biases and weights)."""
    return x << e if e >= 0 else x >> -e


def decay(x: int, d: int) -> int:
    """Loihi's 12-bit decay ``RS0(x * (4096 - d), 12)`` for a decay ``d`` in ``[0, 4096]``."""
    return rs0(x * (4096 - d), 12)


def wrap24(x: int) -> int:
    """Two's-complement wrap into ``[-2^23, 2^23 - 1]`` (what a 24-bit adder does)."""
    return ((x + (1 << 23)) % (1 << 24)) - (1 << 23)


def sat24(x: int) -> int:
    """Saturate into the symmetric 24-bit range ``[-(2^23 - 1), 2^23 - 1]``."""
    return max(-MAX24, min(MAX24, x))


def wrap32(x: int) -> int:
    """Two's-complement wrap into int32 (numpy ``int32`` arithmetic, as lava-nc's sigma-delta models)."""
    return ((x + (1 << 31)) % (1 << 32)) - (1 << 31)


def abs32(x: int) -> int:
    """``numpy.abs`` of an int32 value: ``abs(-2^31)`` stays ``-2^31``."""
    return wrap32(-x) if x < 0 else x
