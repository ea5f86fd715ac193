"""Loihi fixed-point primitives shared by every integer kernel.

All functions are Numba ``inline='always'`` scalar helpers working on int64.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: Fractional bits of every decay constant (decays are fractions of 4096).
DECAY_BITS = 12
DECAY_UNITY = 1 << DECAY_BITS
#: Loihi aligns 8-bit synaptic sums with the 24-bit state by this left shift.
STATE_EXP = 6
#: Width of neuron state registers.
STATE_BITS = 24
STATE_MAX = (1 << (STATE_BITS - 1)) - 1
STATE_MIN = -(1 << (STATE_BITS - 1))

#: Graded spikes of the spiking families carry the spiking state register (24 bits,
#: in units of ``2^-(STATE_EXP + 6)`` with the weight scale 64) as their payload.
GRADED_MESSAGE_BITS = STATE_BITS
#: Exponent a synapse adds to its weights when its input is such a payload: the
#: weighted sum (units ``2^-(12 + STATE_EXP)``) is floored onto the receiving
#: neuron's ``a_in`` grid (units ``2^-6``), as Loihi's synapse shifts it.
GRADED_MESSAGE_EXP = -(STATE_EXP + 6)

jit = numba.njit(cache=True, nogil=True)
inline = numba.njit(cache=True, nogil=True, inline="always")
#: :data:`jit` that lets the compiler fuse a float multiply and add into one FMA (fast-math's ``contract``
#: flag alone: no reassociation, no approximations). For float loops bound by their multiplies and adds,
#: such as the surrogate's exponential polynomial (about 25 % faster); each fused operation rounds
#: once instead of twice, so float results may differ from plain ``jit`` in their last bit.
jit_fma = numba.njit(cache=True, nogil=True, fastmath={"contract"})


@inline
def any_nonzero(values, start, stop):
    """Whether ``values[start:stop]`` (a 1-d integer or float array) holds a nonzero entry.

    A branch-free count that the compiler vectorises: the synapse kernels test a block of
    inputs with it before they look at single values, so that zero input (the common case
    of sigma-delta messages) costs a fraction of a scalar scan.
    """
    block = values[start:stop]  # indices from 0: no negative-index test per element, so it vectorises
    count = 0
    for i in range(block.shape[0]):
        count += block[i] != 0
    return count > 0


@inline
def rs0(x: int, n: int) -> int:
    """Sign-magnitude right shift: ``sign(x) * (|x| >> n)`` (round toward zero).

    Branch-free: adding ``2^n - 1`` to negative values before the arithmetic shift
    turns its floor into a truncation (``x`` is int64).
    """
    x = np.int64(x)
    return (x + ((x >> 63) & ((np.int64(1) << n) - 1))) >> n


@inline
def input_to_int(x, state_scale):
    """Real synaptic input ``x`` as Loihi's scaled integer input ``a_in << 6``.

    ``a_in = floor(x * W)`` with the weight scale ``W = state_scale / 64``: exact for
    inputs on the ``1/W`` grid (binary spikes through quantized weights) and the
    floor that the synapse applies to a sum of graded payloads (see
    :data:`GRADED_MESSAGE_EXP`).
    """
    return np.int64(math.floor(x * (state_scale * (1.0 / (1 << STATE_EXP))))) << STATE_EXP


@inline
def graded_message(payload, graded, unit):
    """Message of a spike: ``payload * unit`` for graded spikes, else 1."""
    return payload * unit if graded else 1


@inline
def decay(x: int, d: int) -> int:
    """Loihi decay ``rs0(x * (4096 - d), 12)`` with ``d`` in [0, 4096]."""
    return rs0(x * (DECAY_UNITY - d), DECAY_BITS)


@inline
def wrap24(x: int) -> int:
    """Two's-complement wrap into the signed 24-bit range (what Loihi's adder does)."""
    return ((x + (1 << 23)) & 0xFFFFFF) - (1 << 23)


@inline
def saturate24(x: int) -> int:
    """Saturate into the symmetric 24-bit range ``[-(2^23 - 1), 2^23 - 1]`` (Lava/Loihi v)."""
    return min(max(x, -STATE_MAX), STATE_MAX)


@inline
def shift(x: int, e: int) -> int:
    """``x << e`` for ``e >= 0`` and arithmetic right shift by ``-e`` otherwise."""
    if e >= 0:
        return x << e
    return x >> (-e)


def as_int_array(values, shape, dtype=np.int32) -> np.ndarray:
    """Broadcast ``values`` to ``shape`` as a C-contiguous integer array."""
    arr = np.asarray(values)
    if arr.dtype.kind == "f" and not np.all(np.mod(arr, 1) == 0):
        raise ValueError(f"expected integer values, got {arr!r}")
    return np.ascontiguousarray(np.broadcast_to(arr, shape).astype(dtype))
