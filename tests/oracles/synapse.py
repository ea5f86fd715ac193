"""Dense synapse and slayer weight quantizer references (``reference-neurons.md`` §1.2 and §3)."""

from __future__ import annotations

import typing as ty

from tests.oracles.fixed import shift

MIXED, EXCITATORY, INHIBITORY = 1, 2, 3


def sign_mode(weights: ty.Sequence[ty.Sequence[int]]) -> int:
    """The sign mode Lava derives from a matrix: EXCITATORY if all >= 0, INHIBITORY if all <= 0."""
    flat = [int(w) for row in weights for w in row]
    if min(flat) >= 0:
        return EXCITATORY
    if max(flat) <= 0:
        return INHIBITORY
    return MIXED


def loihi_weights(weights: ty.Sequence[ty.Sequence[int]], num_weight_bits: int = 8,
                  mode: int | None = None) -> list[list[int]]:
    """The weights a Loihi Dense uses: clipped to 8 bits for the sign mode, LSBs truncated.

    INHIBITORY works on the negated magnitudes (range ``[0, 255]``), MIXED keeps
    ``[-256, 255]``; then ``8 - num_weight_bits + [MIXED]`` low bits are cleared with an
    arithmetic (floor) shift pair.
    """
    mode = sign_mode(weights) if mode is None else mode
    mixed = 1 if mode == MIXED else 0
    drop = max(0, 8 - num_weight_bits + mixed)
    out = []
    for row in weights:
        new_row = []
        for w in row:
            w = -int(w) if mode == INHIBITORY else int(w)
            w = max(-256 * mixed, min(255, w))
            w = (w >> drop) << drop
            new_row.append(-w if mode == INHIBITORY else w)
        out.append(new_row)
    return out


def dense_step(weights: ty.Sequence[ty.Sequence[int]], s: ty.Sequence[int], num_message_bits: int,
               weight_exp: int) -> list[int]:
    """``a = W s`` (binary input when ``num_message_bits == 0``: nonzero counts 1), then
    ``a << weight_exp`` (ASR for a negative exponent). No saturation."""
    values = [(1 if int(x) != 0 else 0) if num_message_bits == 0 else int(x) for x in s]
    return [shift(sum(int(w) * x for w, x in zip(row, values)), weight_exp) for row in weights]


def quantize_8bit(weight_real: float, scale: int = 64) -> int:
    """slayer's 8-bit weight quantizer, descaled: ``clamp(rne(w W / 2) * 2, -256, 254)``.

    Python's ``round`` rounds half to even, as ``torch.round`` does.
    """
    return max(-256, min(254, round(weight_real * scale / 2) * 2))
