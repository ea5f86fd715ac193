"""Elementary functions that the compiler can vectorise inside Numba loops.

``math.exp`` in a Numba loop becomes one libm call per element (Numba vectorises it
only with Intel SVML, which the pip llvmlite does not ship), and the exponential of
the surrogate gradient then dominates a training backward pass. :func:`exp_nonpositive`
is plain arithmetic plus a bit cast, so LLVM turns a loop of it into SIMD code.
"""

from __future__ import annotations

import math

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from lava_dl.core.fixed_point import inline

_LOG2E = 1.0 / math.log(2.0)
_LN2 = math.log(2.0)
#: Taylor coefficients of ``2^f = exp(f ln 2)`` up to degree 8; for ``|f| <= 1/2`` the
#: truncation error is below 1e-10, far under float32 resolution.
_C1, _C2, _C3, _C4, _C5, _C6, _C7, _C8 = (_LN2**n / math.factorial(n) for n in range(1, 9))
#: Below this the result underflows float32 (and 2^k stays a normal float64).
_LOWEST = -700.0


@intrinsic
def _int64_bits_as_float64(typingctx, bits):
    """Reinterpret the 64 bits of an int64 as a float64 (no conversion)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@inline
def exp_nonpositive(x):
    """``exp(x)`` for ``x <= 0`` in float64 arithmetic (relative error < 1e-9), vectorisable.

    ``x = (k + f) ln 2`` with integer ``k`` and ``|f| <= 1/2``; ``2^f`` from its Taylor
    polynomial and ``2^k`` written directly into the exponent bits.
    """
    y = max(float(x), _LOWEST) * _LOG2E
    k = math.floor(y + 0.5)
    f = y - k
    p = _C8
    p = p * f + _C7
    p = p * f + _C6
    p = p * f + _C5
    p = p * f + _C4
    p = p * f + _C3
    p = p * f + _C2
    p = p * f + _C1
    p = p * f + 1.0
    return p * _int64_bits_as_float64((int(k) + 1023) << 52)
