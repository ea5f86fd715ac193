"""NIR in and out: lava_dl networks as ``nir.NIRGraph`` and NIR graphs as ``.net`` files.

The Neuromorphic Intermediate Representation (``pip install lava_dl[nir]``) describes spiking
networks with float, continuous-time parameters. This module maps the CUBA family onto it and
back, through lava_dl's hdf5 ``.net`` records, so there is one mapping for files, slayer blocks,
Lava (:func:`to_lava`, built by :class:`lava_dl.netx.hdf5.Network`) and fine-tuning in slayer
(:func:`to_slayer`, :class:`lava_dl.slayer.auto.SequentialNetwork`).

Time. A NIR graph is read in discrete time with a step ``dt`` (forward Euler): over one step a
state ``x`` with time constant ``tau`` keeps ``1 - dt / tau`` of itself, and edges carry a
value within the step, except an edge that closes a cycle through a weighted node, which
carries the previous step's value (Loihi's recurrent synapse). ``dt`` is stored in the graph's
``metadata['dt']``; :func:`from_nir` reads it from there unless given, else takes the step
at which every neuron node has unit input gain (snnTorch's convention, ``dt = 1e-4``), else 1.
Nested graphs are inlined; :func:`fix_norse` repairs the time constants of Norse's export.
lava_dl's one-step synaptic latency is not part of NIR's meaning: a deployed layer runs one
step behind its input (see the README).

Units. Exported values are slayer's real units: a weight ``w`` (integer) is ``w / 64``, a
threshold mantissa ``vThMant`` is ``vThMant / 64``, a bias ``b`` is ``b / 64``; decays
``iDecay``/``vDecay`` (fractions of 4096 lost per step) become ``tau = 4096 * dt / decay``
(``inf`` for a decay of 0). Within a step, with ``x`` the summed weighted input:

=====================  ======================================================  =======================
lava_dl neuron (CUBA)  NIR nodes (parameters)                                  condition
=====================  ======================================================  =======================
CUBA                   ``CubaLIF`` (tau_syn, tau_mem, r = tau_mem / dt,        0 < iDecay < 4096,
                       w_in = tau_syn / dt, v_leak = b tau_mem / dt,           vDecay > 0
                       v_threshold, v_reset = 0)
current not kept       ``LIF`` (tau = tau_mem, r = tau / dt, v_leak, ...)      iDecay = 4096, vDecay > 0
no leak at all         ``IF`` (r = 1 / dt; a bias goes to the synapse bias)    iDecay = 4096, vDecay = 0
other decays           ``I`` (r = 1 / dt; iDecay = 0) or ``LI`` (tau_syn,      current stage, then
                       r = tau / dt), then ``LIF`` or ``IF``                   the voltage stage
Affine readout         ``CubaLI`` or ``LI`` (no threshold; output v)           as above
=====================  ======================================================  =======================

Records: ``dense`` -> ``Linear`` (``Affine`` with a bias), ``conv`` -> ``Conv2d`` (torch layout,
``input_shape`` (H, W)), ``pool`` -> ``SumPool2d`` (its uniform kernel value ``p`` becomes the
neuron's input gain ``p / 64``: ``w_in`` or ``r``), ``flatten`` -> ``Flatten`` (start_dim 0),
``dense_rec`` -> the dense nodes plus a ``Linear`` edge from the neuron back to its input, a
record ``delay`` -> ``Delay`` (``delay * dt``) after the neuron, ``dense`` without neuron
(``Affine(dynamics=False)``) -> ``Linear`` alone. Import reads the same nodes (also ``Affine``
weights with any bias into a neuron without current decay, ``AvgPool2d``, per-neuron
parameters) and folds every gain (``r``, ``w_in``, ``dt / tau``) into the weights; the float ->
integer step is :func:`quantize`, the one mapping, whose errors import reports per layer
(:class:`LayerQuantization`).

Skip connections and branches (import). A NIR node with several incoming edges receives their
sum (``nir.NIRGraph.check_types`` requires every edge into a node to carry the node's full input
type, so they cannot be a concatenation; nirtorch's executor sums them). A neuron fed by weighted
nodes ``W_k`` from layers ``x_k`` becomes one weighted record over ``concat(x_k)`` with the
``W_k`` side by side: exactly the sum. Lava (and slayer's time index) delays each layer's output
one step behind its input, so an input from a shallower layer (or through a ``Delay`` on its
branch) first goes through a relay record: identity weights into a CUBA neuron that keeps no
state (it re-emits each binary spike one step later) plus an axonal delay, until it meets the
deepest input at the NIR step it belongs to. netx's concat always joins the record just before
it, which gets zero weights when it is not an input. Dense (``Linear``/``Affine``) joins and
``Conv2d`` joins (equal geometry, ``groups = 1``) are supported; the graph input cannot be joined
or delayed (it is no layer). Such files run on Lava and :func:`lava_dl.netx.simulate`, and
:func:`to_slayer` loads them into ``SequentialNetwork`` (concat blocks join the outputs at one
slayer step, as netx aligns them on Lava) for fine-tuning with the same output as Lava. A
``concat`` record does not export: it pairs outputs of different depths at one slayer step,
which NIR's instantaneous edges could only express with an input from a later step.

More nodes (import). ``Conv1d`` on ``(C, N)`` is a ``conv`` record with kernel ``(K, 1)`` on
``(C, N, 1)`` (netx convolves in 2-D). ``Scale`` folds into the weights: ``W diag(s)`` on the way
into a weighted node (per input; per channel before a conv, one value before a pool),
``diag(s) W`` and the bias between a weighted node and its neuron; a Scale anywhere else (e.g. on
spikes into the Output: a graded output) raises. ``Threshold`` (``z = x > threshold``, no
state) after a weighted node is a CUBA neuron with ``iDecay = vDecay = 4096`` (a LIF with
``tau = dt``, ``r = 1``). A nonzero ``v_reset`` is exact only where ``tau_mem = dt`` (the voltage
is rewritten every step); elsewhere it raises, since shifting the voltage by ``v_reset`` would
start it at ``-v_reset``. A synapse bias into a neuron with ``tau_syn > dt`` raises: through the
current it ramps up from 0, Loihi's bias enters the voltage in full from the first step.

Not supported (a :class:`NirError` names the layer or node and the parameter): other families
(sigma-delta, RF, RF-IZ, ADRF, ADRF-IZ, ALIF's adaptation: NIR has no node), graded spikes,
input neurons, ``convT``/``unpool``/``average``/``concat`` records (export), several inputs or
outputs, the cases above, and cycles not through a weighted node.

This module imports numpy and h5py only; ``nir`` is imported when a function needs it, torch
only to export slayer blocks, Lava only in :func:`to_lava`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import typing as ty

import h5py
import numpy as np

from lava_dl.core import records
from lava_dl.core.delay import MAX_BLOCK_DELAY
from lava_dl.core.fixed_point import DECAY_UNITY
from lava_dl.core.synapse import WEIGHT_MAX, WEIGHT_MIN, optimize_weight_bits

__all__ = [
    "NirError",
    "LayerQuantization",
    "Quantized",
    "NirImport",
    "quantize",
    "to_nir",
    "write",
    "from_nir",
    "to_lava",
    "to_slayer",
    "fix_norse",
    "WEIGHT_SCALE",
]

#: slayer's weight scale: an integer weight ``w`` is the real weight ``w / 64``.
WEIGHT_SCALE = 64
#: ``vThMant`` that marks an ``Affine(dynamics=True)`` readout (no threshold).
READOUT_V_TH_MANT = (1 << 18) - 1
#: Largest threshold mantissa a float import chooses: ``vThMant << 6`` stays below the 24-bit voltage
#: saturation, so the neuron can still fire.
AUTO_V_TH_MAX = (1 << 17) - 1
#: Range of ``vThMant`` (CUBA spec) and of a bias (bias mantissa), accepted as they are.
V_TH_MAX = (1 << 18) - 1
BIAS_MIN, BIAS_MAX = -(1 << 16), (1 << 16) - 1
#: The grid of a float import: what slayer's 8-bit quantizer writes (even integers), so the
#: imported file also loads into slayer. Biases: the even range of slayer's MeanOnlyBatchNorm.
EVEN_WEIGHT_MIN, EVEN_WEIGHT_MAX = -256, 254
EVEN_BIAS_MIN, EVEN_BIAS_MAX = -254, 256

_FAMILY_NODES = {
    "SDNN": "sigma-delta neuron (NIR has no sigma-delta node)",
    "ALIF": "adaptive-threshold LIF (NIR has no node with threshold adaptation)",
    "RF_PHASE": "resonate-and-fire neuron (NIR has no resonator node)",
    "RF_IZHIKEVICH": "resonate-and-fire Izhikevich neuron (NIR has no resonator node)",
    "ADRF_PHASE": "adaptive resonate-and-fire neuron (NIR has no resonator node)",
    "ADRF_IZHIKEVICH": "adaptive resonate-and-fire Izhikevich neuron (NIR has no resonator node)",
}


class NirError(ValueError):
    """A network or graph that this mapping cannot express exactly.

    Parameters
    ----------
    where : str
        The layer (``"layer 3"``, a slayer block) or NIR node (``"node 'lif1'"``).
    parameter : str or None
        The parameter or field concerned (``'v_threshold'``, ``'weight'``, ``'neuron/type'``).
    reason : str
        What is wrong.
    """

    def __init__(self, where: str, parameter: str | None, reason: str) -> None:
        self.where, self.parameter, self.reason = where, parameter, reason
        text = f"{where}" + (f", parameter '{parameter}'" if parameter else "") + f": {reason}"
        super().__init__(text)


def _nir():
    try:
        import nir
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("lava_dl.nir needs the 'nir' package: pip install lava_dl[nir]") from err
    return nir


# ------------------------------------------------------------------------------------ quantization


@dataclasses.dataclass
class LayerQuantization:
    """What :func:`quantize` did to one layer (float -> Loihi integers).

    Errors are relative: ``weight_error`` is the largest ``|w_int / scale - w|`` over the
    layer's weights (recurrent ones included) divided by the largest ``|w|``; ``bias_error``
    likewise for biases; ``threshold_error`` is ``|vThMant / scale - theta| / theta``;
    ``tau_syn_error``/``tau_mem_error`` the largest ``|tau_int - tau| / tau`` with
    ``tau_int = 4096 dt / decay`` (``inf`` when a finite ``tau`` became a decay of 0).
    ``num_weight_bits``/``weight_exp`` are what Lava's synapse gets
    (:func:`lava_dl.core.synapse.optimize_weight_bits`: mantissa bits and exponent).
    ``row_sum_error`` is the largest ``|sum_j (w_int[i, j] / scale - w[i, j])|`` over the rows
    ``i`` (a neuron's error when all its inputs spike at once; feed-forward and recurrent weights
    separately) divided by the largest ``|w|``: balanced rounding (:func:`quantize`) keeps it
    within half a grid step, at the price of single weights up to one step away.
    """

    layer: int
    nodes: tuple[str, ...]
    record: str
    scale: float
    exact: bool
    weight_error: float = 0.0
    bias_error: float = 0.0
    threshold_error: float = 0.0
    tau_syn_error: float = 0.0
    tau_mem_error: float = 0.0
    num_weight_bits: int = 8
    weight_exp: int = 0
    row_sum_error: float = 0.0

    def row(self) -> str:
        """One line of :meth:`NirImport.table`."""
        return (
            f"{self.layer:>5}  {self.record:<9} {','.join(self.nodes):<34} {self.scale:>10.4g}  "
            f"{'yes' if self.exact else 'no':<5} {self.weight_error:>8.2e} {self.row_sum_error:>8.2e} "
            f"{self.threshold_error:>8.2e} "
            f"{self.bias_error:>8.2e} {self.tau_syn_error:>8.2e} {self.tau_mem_error:>8.2e} "
            f"{self.num_weight_bits:>4} {self.weight_exp:>4}"
        )


@dataclasses.dataclass
class Quantized:
    """Integer parameters of one layer (output of :func:`quantize`)."""

    weight: np.ndarray
    weight_rec: np.ndarray | None
    bias: np.ndarray | None
    v_th_mant: int
    i_decay: int | np.ndarray
    v_decay: int | np.ndarray
    report: LayerQuantization


def _decays(tau, dt: float, where: str, name: str) -> tuple[np.ndarray, float]:
    """Integer decays ``rne(4096 dt / tau)`` and the worst relative error of the time constant."""
    tau = np.asarray(tau, dtype=np.float64)
    if np.any(np.isnan(tau)) or np.any(tau <= 0):
        raise NirError(where, name, f"time constants must be positive, got values down to {np.nanmin(tau):g}")
    exact = DECAY_UNITY * dt / tau
    decay = np.rint(exact)
    if decay.max() > DECAY_UNITY:
        raise NirError(
            where,
            name,
            f"{tau.min():g} is below the step dt = {dt:g}: the decay "
            f"{exact.max():.6g}/4096 is beyond Loihi's 12-bit range [0, 4096]",
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        back = np.where(decay > 0, DECAY_UNITY * dt / np.maximum(decay, 1), np.inf)
        err = np.where(np.isinf(tau) & np.isinf(back), 0.0, np.abs(back - tau) / tau)
    err = np.where(np.isnan(err), np.inf, err)
    return decay.astype(np.int64), float(err.max()) if err.size else 0.0


def _balanced_round(x: np.ndarray) -> np.ndarray:
    """Round ``x`` to integers per row (axis 0) so that each row's rounding errors sum to at most 1/2.

    Rounding each value to the nearest integer leaves errors that add up along a row: a neuron
    whose inputs all spike (spikes are never negative) sees their sum, which grows like the
    square root of the fan-in. Here each row starts from the nearest integers and the
    ``round(sum of errors)`` values whose rounding was closest to a tie go the other way
    (``floor`` instead of ``ceil`` or back): every value stays within one unit of ``x`` (its
    floor or ceil, so within any range that holds ``x``), and the row's error sum lands within
    ``[-1/2, 1/2]``.

    Parameters
    ----------
    x : numpy.ndarray
        Values in grid units, axis 0 = rows (neurons or output channels).

    Returns
    -------
    numpy.ndarray
        Integers (as floats), same shape as ``x``.
    """
    flat = x.reshape(x.shape[0], -1)
    q = np.rint(flat)
    for row, values in zip(q, flat):
        err = row - values
        flips = int(np.rint(err.sum()))
        if flips == 0:
            continue
        direction = -np.sign(flips)  # +1: some values rounded down go up instead
        candidates = np.flatnonzero(err * direction < 0)
        closest_to_tie = candidates[np.argsort(-np.abs(err[candidates]), kind="stable")]
        row[closest_to_tie[: abs(flips)]] += direction
    return q.reshape(x.shape)


def _scalar_or_array(values: np.ndarray) -> int | np.ndarray:
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    return int(values[0]) if np.all(values == values[0]) else values


def _is_integral(x: np.ndarray) -> bool:
    return bool(np.all(np.abs(x - np.rint(x)) <= 1e-6 * np.maximum(1.0, np.abs(x))))


def quantize(
    weight,
    threshold=None,
    *,
    bias=None,
    weight_rec=None,
    tau_syn=None,
    tau_mem=None,
    dt: float = 1.0,
    scale: float | None = None,
    rtol: float = 0.05,
    where: str = "layer",
    layer: int = 0,
    nodes: ty.Sequence[str] = (),
    record: str = "dense",
) -> Quantized:
    """Map one CUBA layer's float parameters (slayer units, gains folded in) onto Loihi's integers.

    The one float -> integer mapping of :mod:`lava_dl.nir`. Binary spikes do not change when a
    neuron's weights, bias and threshold are multiplied by the same positive number, so each
    layer gets its own ``scale``:

    1. decays ``rne(4096 dt / tau)`` (``tau = inf`` -> 0, ``tau = dt`` -> 4096, no current stage
       is ``tau_syn = dt``); below ``dt`` raises;
    2. if ``scale`` is None and ``scale = 64`` (slayer's) makes every weight, the threshold and
       the bias integers in range (a network lava_dl exported), that scale: exact;
    3. else thresholds that differ between neurons are equalised (each neuron's row divided by
       its threshold) and ``scale`` is the largest at which weights fit slayer's 8-bit grid
       (even integers in [-256, 254]; Loihi's mantissa and exponent are then chosen by
       :func:`~lava_dl.core.synapse.optimize_weight_bits`), biases [-254, 256] and the
       threshold mantissa ``2^17 - 1`` (the 24-bit voltage can still exceed it);
    4. rounding to nearest (even) integers; weights (not a pool's uniform kernel) with balanced
       rows: each neuron's rounding errors sum to at most half a grid step (the values closest
       to a tie round the other way, each weight stays within one step; the measured cost of
       plain rounding, whose row errors add up, is in ``tests/test_nir_peers.py``), unless
       that moves a weight by more than ``rtol`` (then nearest).
       Nothing is clipped: a value outside its range at a
       given ``scale``, a negative threshold, or a largest weight or a threshold represented
       with a relative error above ``rtol`` (the weights would need more than 8 bits next to
       the threshold, or the threshold is below the weights' resolution) raise :class:`NirError`.

    Parameters
    ----------
    weight : array_like
        Float weights, axis 0 = the layer's neurons or channels (a pool: its ``(1, 1, kH, kW)``
        kernel, one "row").
    threshold : float or array_like, optional
        Per row; None for a readout (no threshold: ``vThMant = 2^18 - 1``).
    bias : array_like, optional
        Constant added to the voltage every step, per row.
    weight_rec : array_like, optional
        Recurrent weights ``(rows, rows)`` (row = target).
    tau_syn, tau_mem : float or array_like
        Time constants per row (``inf`` allowed), in the units of ``dt``.
    dt : float
        The step.
    scale : float, optional
        Force the scale (integer = ``scale * float``).
    rtol : float
        Largest relative error allowed on the largest weight and on the threshold.
    where, layer, nodes, record
        Names for messages and the report.

    Returns
    -------
    Quantized
        Integer weights, bias (None when all zero), ``vThMant``, decays (int, or an array per row
        when they differ) and the :class:`LayerQuantization` report.
    """
    w = np.asarray(weight, dtype=np.float64)
    rows = w.shape[0]
    w_rec = None if weight_rec is None else np.asarray(weight_rec, dtype=np.float64)
    b = np.zeros(rows) if bias is None else np.broadcast_to(np.asarray(bias, np.float64), (rows,)).copy()
    th = None if threshold is None else np.broadcast_to(np.asarray(threshold, np.float64), (rows,)).copy()
    for name, arr in (("weight", w), ("weight_rec", w_rec), ("bias", b), ("v_threshold", th)):
        if arr is not None and not np.all(np.isfinite(arr)):
            raise NirError(
                where,
                name,
                "holds NaN or infinite values (after folding r, w_in and dt / tau into the weights)",
            )
    if th is not None and np.any(th < 0):
        raise NirError(
            where,
            "v_threshold",
            f"a negative threshold ({th.min():g}) is outside Loihi's range [0, {V_TH_MAX}] (vThMant)",
        )
    du, tau_syn_err = _decays(
        np.broadcast_to(dt if tau_syn is None else tau_syn, (rows,)), dt, where, "tau_syn"
    )
    dv, tau_mem_err = _decays(
        np.broadcast_to(np.inf if tau_mem is None else tau_mem, (rows,)), dt, where, "tau_mem"
    )
    parts = [w.reshape(rows, -1)] + ([] if w_rec is None else [w_rec])
    every_w = np.concatenate([p.reshape(-1) for p in parts])

    exact = False
    if scale is None:
        uniform = th is None or np.all(th == th[0])
        cand = [x * WEIGHT_SCALE for x in (every_w, b)] + ([] if th is None else [th[:1] * WEIGHT_SCALE])
        if uniform and all(_is_integral(c) for c in cand):
            wi, bi = np.rint(cand[0]), np.rint(cand[1])
            ok = (
                wi.min(initial=0) >= WEIGHT_MIN
                and wi.max(initial=0) <= WEIGHT_MAX
                and bi.min() >= BIAS_MIN
                and bi.max() <= BIAS_MAX
                and (th is None or np.rint(th[0] * WEIGHT_SCALE) <= V_TH_MAX)
            )
            if ok:
                scale, exact = float(WEIGHT_SCALE), True
    if not exact and th is not None and not np.all(th == th[0]):
        if np.any(th == 0):
            raise NirError(
                where,
                "v_threshold",
                "thresholds of 0 beside nonzero ones cannot share one threshold mantissa",
            )
        w = w / th.reshape((rows,) + (1,) * (w.ndim - 1))
        w_rec = None if w_rec is None else w_rec / th[:, None]
        b = b / th
        th = np.ones(rows)
        parts = [w.reshape(rows, -1)] + ([] if w_rec is None else [w_rec])
        every_w = np.concatenate([p.reshape(-1) for p in parts])
    theta = None if th is None else float(th[0])
    if scale is None:
        limits = []
        if every_w.size and every_w.max() > 0:
            limits.append(EVEN_WEIGHT_MAX / every_w.max())
        if every_w.size and every_w.min() < 0:
            limits.append(-EVEN_WEIGHT_MIN / -every_w.min())
        if b.max() > 0:
            limits.append(EVEN_BIAS_MAX / b.max())
        if b.min() < 0:
            limits.append(-EVEN_BIAS_MIN / -b.min())
        if theta:
            limits.append(AUTO_V_TH_MAX / theta)
        scale = min(limits) if limits else float(WEIGHT_SCALE)
    scale = float(scale)
    if not math.isfinite(scale) or scale <= 0:
        raise NirError(where, "scale", f"must be finite and positive, got {scale}")

    def grid(x, balanced=False):  # exact: nearest integer; else slayer's even grid
        if exact:
            return np.rint(x * scale)
        return 2.0 * (_balanced_round(x * scale / 2.0) if balanced else np.rint(x * scale / 2.0))

    def rel(q, x):
        top = np.abs(x).max(initial=0.0)
        return float(np.abs(q / scale - x).max(initial=0.0) / top) if top > 0 else 0.0

    def worst_rel(q, q_rec):
        return max(rel(q, w), 0.0 if w_rec is None else rel(q_rec, w_rec))

    balanced = record != "pool"  # a pool's kernel stays uniform (one value, SumPool2d)
    w_int = grid(w, balanced)
    w_rec_int = None if w_rec is None else grid(w_rec, balanced)
    if balanced and not exact and worst_rel(w_int, w_rec_int) > rtol:  # too coarse to balance
        w_int, w_rec_int = grid(w), None if w_rec is None else grid(w_rec)
    b_int = grid(b)
    lo_w, hi_w = (WEIGHT_MIN, WEIGHT_MAX) if exact else (EVEN_WEIGHT_MIN, EVEN_WEIGHT_MAX)
    for name, arr in (("weight", w_int), ("weight_rec", w_rec_int)):
        if arr is not None and (arr.min() < lo_w or arr.max() > hi_w):
            raise NirError(
                where,
                name,
                f"at scale {scale:g} the weights become [{arr.min():g}, {arr.max():g}], "
                f"beyond the 8-bit range [{lo_w}, {hi_w}]",
            )
    if (
        b_int.min() < EVEN_BIAS_MIN * (not exact) + BIAS_MIN * exact
        or b_int.max() > EVEN_BIAS_MAX * (not exact) + BIAS_MAX * exact
    ):
        raise NirError(
            where,
            "bias",
            f"at scale {scale:g} the bias becomes [{b_int.min():g}, {b_int.max():g}], beyond the bias range",
        )
    if theta is None:
        vth = READOUT_V_TH_MANT
    else:
        vth = int(np.rint(theta * scale))
        if vth > V_TH_MAX:
            raise NirError(
                where,
                "v_threshold",
                f"at scale {scale:g} the threshold {theta:g} becomes vThMant = "
                f"{vth}, beyond Loihi's range [0, {V_TH_MAX}]",
            )

    def row_sum_rel(q, x):
        top = np.abs(every_w).max(initial=0.0)
        rows_err = (q / scale - x).reshape(rows, -1).sum(axis=1)
        return float(np.abs(rows_err).max(initial=0.0) / top) if top > 0 else 0.0

    w_err = worst_rel(w_int, w_rec_int)
    sum_err = max(row_sum_rel(w_int, w), 0.0 if w_rec is None else row_sum_rel(w_rec_int, w_rec))
    b_err = rel(b_int, b)
    th_err = 0.0 if not theta else abs(vth / scale - theta) / theta
    if w_err > rtol:
        raise NirError(
            where,
            "weight",
            f"the weights do not fit 8 bits next to the threshold {theta:g}: at the "
            f"largest scale the threshold allows ({scale:g}) the largest weight "
            f"{np.abs(every_w).max():g} becomes {np.abs(every_w).max() * scale:.3g} "
            f"integer units (relative error {w_err:.2g} > rtol = {rtol:g})",
        )
    if th_err > rtol:
        raise NirError(
            where,
            "v_threshold",
            f"the threshold {theta:g} is outside the range the weights leave: "
            f"at scale {scale:g} (set by the largest weight) it becomes vThMant = "
            f"{vth} (relative error {th_err:.2g} > rtol = {rtol:g})",
        )
    _, bits, exp, _ = optimize_weight_bits(w_int.astype(np.int64))
    report = LayerQuantization(
        layer=layer,
        nodes=tuple(nodes),
        record=record,
        scale=scale,
        exact=exact,
        weight_error=w_err,
        bias_error=b_err,
        threshold_error=th_err,
        tau_syn_error=tau_syn_err,
        tau_mem_error=tau_mem_err,
        num_weight_bits=int(bits),
        weight_exp=int(exp),
        row_sum_error=sum_err,
    )
    return Quantized(
        weight=w_int,
        weight_rec=w_rec_int,
        bias=None if not np.any(b_int) else b_int,
        v_th_mant=vth,
        i_decay=_scalar_or_array(du),
        v_decay=_scalar_or_array(dv),
        report=report,
    )


# ------------------------------------------------------------------------------------------ export


def _tau(decay: np.ndarray, dt: float) -> np.ndarray:
    decay = np.asarray(decay, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(decay > 0, DECAY_UNITY * dt / np.maximum(decay, 1e-300), np.inf)


def _per_neuron(value, shape: tuple[int, ...], where: str, field: str) -> np.ndarray:
    """A record's scalar, per-neuron or per-channel value broadcast to the neuron shape (float)."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0 or arr.size == 1:
        return np.full(shape, float(arr.reshape(-1)[0]))
    if len(shape) == 3 and arr.size == shape[0]:
        return np.broadcast_to(arr.reshape(-1, 1, 1), shape).copy()
    if arr.size == int(np.prod(shape)):
        return arr.reshape(shape).copy()
    raise NirError(where, field, f"{arr.size} values do not fit neurons of shape {shape}")


def _neuron_nodes(
    name: str,
    where: str,
    fields: dict,
    shape: tuple[int, ...],
    gain: float,
    bias: np.ndarray | None,
    dt: float,
    readout: bool,
):
    """NIR neuron node(s) of a CUBA neuron group: ``([(node name, node)], bias for the synapse)``."""
    nir = _nir()
    du = _per_neuron(fields["iDecay"], shape, where, "neuron/iDecay")
    dv = _per_neuron(fields["vDecay"], shape, where, "neuron/vDecay")
    th = _per_neuron(fields["vThMant"], shape, where, "neuron/vThMant") / WEIGHT_SCALE
    b = np.zeros(shape) if bias is None else bias
    ts, tm = _tau(du, dt), _tau(dv, dt)
    syn_full, syn_none = bool(np.all(du == DECAY_UNITY)), bool(np.all(du == 0))
    syn_leaky = bool(np.all((du > 0) & (du < DECAY_UNITY)))
    mem_leaky, mem_none = bool(np.all(dv > 0)), bool(np.all(dv == 0))
    if not (syn_full or syn_none or syn_leaky) or not (mem_leaky or mem_none):
        raise NirError(
            where,
            "neuron/iDecay",
            "neurons of one layer mix decays of 0, 4096 and in between, which need different NIR nodes",
        )
    ones, zeros = np.ones(shape), np.zeros(shape)
    v_leak = b * tm / dt if mem_leaky else zeros
    if readout:
        if syn_leaky and mem_leaky:
            return [
                (
                    f"{name}_cubali",
                    nir.CubaLI(tau_syn=ts, tau_mem=tm, r=tm / dt, v_leak=v_leak, w_in=ts / dt * gain),
                )
            ], None
        if syn_full and mem_leaky:
            return [(f"{name}_li", nir.LI(tau=tm, r=tm / dt * gain, v_leak=v_leak))], None
        raise NirError(
            where,
            "neuron/vDecay",
            "an Affine(dynamics=True) readout needs vDecay > 0 and iDecay > 0 to map onto CubaLI or LI",
        )
    if syn_leaky and mem_leaky:
        return [
            (
                f"{name}_cubalif",
                nir.CubaLIF(
                    tau_syn=ts,
                    tau_mem=tm,
                    r=tm / dt,
                    v_leak=v_leak,
                    v_threshold=th,
                    v_reset=zeros.copy(),
                    w_in=ts / dt * gain,
                ),
            )
        ], None
    if syn_full and mem_leaky:
        return [
            (
                f"{name}_lif",
                nir.LIF(tau=tm, r=tm / dt * gain, v_leak=v_leak, v_threshold=th, v_reset=zeros.copy()),
            )
        ], None
    if syn_full and mem_none:
        return [(f"{name}_if", nir.IF(r=ones * gain / dt, v_threshold=th, v_reset=zeros.copy()))], b
    # composite: a current stage (I or LI) then a voltage stage (LIF or IF)
    if syn_none:
        first = (f"{name}_i", nir.I(r=ones * gain / dt))
    else:
        first = (f"{name}_li", nir.LI(tau=ts, r=ts / dt * gain, v_leak=zeros.copy()))
    if mem_leaky:
        second = (
            f"{name}_lif",
            nir.LIF(tau=tm, r=tm / dt, v_leak=v_leak, v_threshold=th, v_reset=zeros.copy()),
        )
    else:
        if np.any(b):
            raise NirError(
                where,
                "bias",
                "a bias on a neuron with vDecay = 0 and iDecay < 4096 has no NIR form (IF has no v_leak)",
            )
        second = (f"{name}_if", nir.IF(r=ones / dt, v_threshold=th, v_reset=zeros.copy()))
    return [first, second], None


def _read_neuron(rec: records.LayerRecord, where: str) -> dict | None:
    if "neuron" not in rec:
        return None
    group = rec.group["neuron"]
    ntype = rec.string("type", group, "neuron/")
    if ntype not in ("CUBA", "LOIHI"):
        missing = _FAMILY_NODES.get(ntype, f"neuron type {ntype!r}")
        raise NirError(where, "neuron/type", f"{missing}: only CUBA neurons map onto NIR")
    fields = {}
    for key in ("iDecay", "vDecay", "vThMant"):
        fields[key] = np.asarray(rec.raw(key, group, "neuron/"))
    if "gradedSpike" in group and bool(np.asarray(group["gradedSpike"][()]).any()):
        raise NirError(where, "neuron/gradedSpike", "graded spikes have no NIR node (NIR spikes are binary)")
    return fields


def _conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _net_to_nir(path: str | os.PathLike, dt: float, input_shape, names: ty.Sequence[str] | None = None):
    nir = _nir()
    nodes: dict[str, ty.Any] = {}
    edges: list[tuple[str, str]] = []
    shape: tuple[int, ...] | None = None if input_shape is None else tuple(int(v) for v in input_shape)
    first_shape = shape
    prev = "input"
    with h5py.File(path, "r") as f:
        if "layer" not in f:
            raise NirError(str(path), "layer", "the file has no 'layer' group")
        count = len(f["layer"])
        for i in range(count):
            where = names[i] if names is not None else f"layer {i}"
            rec = records.LayerRecord(f["layer"][str(i)], i)
            kind = rec.string("type")
            name = f"layer{i}"
            if kind == "input":
                if "neuron" in rec:
                    raise NirError(where, "neuron", "input neurons are not supported by the NIR export yet")
                shape = rec.shape()
                first_shape = first_shape or shape
                continue
            if kind == "flatten":
                if shape is None:
                    raise NirError(
                        where, "shape", "a flatten record first needs the input shape (input_shape=)"
                    )
                nodes[f"{name}_flatten"] = nir.Flatten(
                    input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1
                )
                edges.append((prev, f"{name}_flatten"))
                prev, shape = f"{name}_flatten", (int(np.prod(shape)),)
                continue
            if kind == "concat":
                raise NirError(
                    where,
                    "type",
                    "a concat record has no exact NIR form: it joins outputs of different depths at "
                    "the same slayer step, so in NIR's instantaneous edges the shallower input would "
                    "have to come from a later step",
                )
            if kind not in ("dense", "dense_rec", "conv", "pool"):
                raise NirError(
                    where,
                    "type",
                    f"a {kind!r} record has no NIR node (supported: input, flatten, "
                    "dense, dense_rec, conv, pool)",
                )
            if "weight/real" in rec.group or "weight" not in rec.group:
                raise NirError(where, "weight", "complex (resonator) synapses have no NIR node")
            fields = _read_neuron(rec, where)
            weight = rec.ints("weight").astype(np.float64)
            bias = rec.ints("bias").astype(np.float64) if "bias" in rec else None
            gain = 1.0
            if kind in ("dense", "dense_rec"):
                n_out, n_in = weight.shape
                if shape is None:
                    shape = first_shape = (n_in,)
                if len(shape) != 1 or shape[0] != n_in:
                    raise NirError(
                        where,
                        "weight",
                        f"a dense record of {n_in} inputs after an output of shape "
                        f"{shape} (a multi-dimensional output needs a flatten record)",
                    )
                out_shape = (n_out,)
                syn = (f"{name}_linear", nir.Linear(weight=weight / WEIGHT_SCALE))
            else:
                kh, kw = rec.pair("kernelSize")
                sh, sw = rec.pair("stride", (1, 1))
                ph, pw = rec.pair("padding", (0, 0))
                dh, dw = rec.pair("dilation", (1, 1))
                if kind == "conv":
                    c_in = rec.integer("inChannels") if "inChannels" in rec else weight.shape[1]
                    groups = rec.integer("groups", 1)
                else:
                    c_in, groups = (shape[0] if shape else None), 1
                if shape is None:
                    out = rec.shape()
                    shape = first_shape = (
                        c_in,
                        (out[1] - 1) * sh - 2 * ph + dh * (kh - 1) + 1,
                        (out[2] - 1) * sw - 2 * pw + dw * (kw - 1) + 1,
                    )
                if len(shape) != 3:
                    raise NirError(where, "type", f"a {kind} record after an output of shape {shape}")
                out_shape = (
                    weight.shape[0] if kind == "conv" else shape[0],
                    _conv_out(shape[1], kh, sh, ph, dh),
                    _conv_out(shape[2], kw, sw, pw, dw),
                )
                if kind == "conv":
                    syn = (
                        f"{name}_conv",
                        nir.Conv2d(
                            input_shape=(shape[1], shape[2]),
                            weight=weight / WEIGHT_SCALE,
                            stride=(sh, sw),
                            padding=(ph, pw),
                            dilation=(dh, dw),
                            groups=groups,
                            bias=np.zeros(weight.shape[0]),
                        ),
                    )
                else:
                    if (dh, dw) != (1, 1):
                        raise NirError(where, "dilation", "SumPool2d has no dilation")
                    if not np.all(weight == weight.reshape(-1)[0]):
                        raise NirError(
                            where,
                            "weight",
                            "a pool kernel with different taps has no NIR node "
                            "(SumPool2d sums with equal weights)",
                        )
                    gain = float(weight.reshape(-1)[0]) / WEIGHT_SCALE
                    syn = (
                        f"{name}_sumpool",
                        nir.SumPool2d(
                            kernel_size=np.array([kh, kw]),
                            stride=np.array([sh, sw]),
                            padding=np.array([ph, pw]),
                        ),
                    )
            b = None if bias is None else _per_neuron(bias, out_shape, where, "bias") / WEIGHT_SCALE
            nodes[syn[0]] = syn[1]
            edges.append((prev, syn[0]))
            if fields is None:
                if kind != "dense" or i != count - 1:
                    raise NirError(
                        where,
                        "neuron",
                        "only the last record may be a dense record without neuron (Affine(dynamics=False))",
                    )
                if b is not None:
                    nodes[syn[0]] = nir.Affine(weight=weight / WEIGHT_SCALE, bias=b)
                prev, shape = syn[0], out_shape
                continue
            readout = bool(np.all(np.asarray(fields["vThMant"]) == READOUT_V_TH_MANT))
            chain, syn_bias = _neuron_nodes(name, where, fields, out_shape, gain, b, dt, readout)
            if syn_bias is not None and np.any(syn_bias):
                if kind == "pool":
                    raise NirError(where, "bias", "a pool record with a bias has no NIR form")
                if kind == "conv":
                    per_channel = syn_bias.reshape(out_shape[0], -1)
                    syn[1].bias = per_channel[:, 0].copy()
                else:
                    nodes[syn[0]] = nir.Affine(weight=weight / WEIGHT_SCALE, bias=syn_bias)
            for k, (node_name, node) in enumerate(chain):
                nodes[node_name] = node
                edges.append((syn[0] if k == 0 else chain[k - 1][0], node_name))
            out_name = chain[-1][0]
            if kind == "dense_rec":
                if "bias_rec" in rec:
                    raise NirError(
                        where, "bias_rec", "KWTA's recurrent bias is not supported by the NIR export yet"
                    )
                w_rec = rec.ints("weight_rec").astype(np.float64)
                nodes[f"{name}_rec"] = nir.Linear(weight=w_rec / WEIGHT_SCALE)
                edges += [(out_name, f"{name}_rec"), (f"{name}_rec", chain[0][0])]
            if "delay" in rec:
                delay = _per_neuron(rec.numbers("delay"), out_shape, where, "delay")
                nodes[f"{name}_delay"] = nir.Delay(delay=delay * dt)
                edges.append((out_name, f"{name}_delay"))
                out_name = f"{name}_delay"
            prev, shape = out_name, out_shape
    if first_shape is None:
        raise NirError(str(path), "layer", "the file holds no layer")
    nodes["input"] = nir.Input(input_type={"input": np.array(first_shape)})
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": float(dt), "producer": "lava_dl"})


def _block_list(source) -> list:
    blocks = getattr(source, "blocks", source)
    try:
        return list(blocks)
    except TypeError as err:
        raise TypeError(
            f"expected a .net path or slayer blocks (torch.nn.Sequential, ModuleList, a list, a "
            f"network with .blocks), got {type(source).__name__}"
        ) from err


def to_nir(source, *, dt: float = 1.0, input_shape: ty.Sequence[int] | None = None):
    """A lava_dl network as a ``nir.NIRGraph`` (parameters in NIR's units, see the module docstring).

    Parameters
    ----------
    source : str, path-like or slayer blocks
        A ``.net`` file, or slayer blocks (``torch.nn.Sequential``/``ModuleList``/list of blocks,
        or a network with ``.blocks`` such as ``SequentialNetwork``) that have run one forward.
        Blocks are written to a temporary ``.net`` with their own ``export_hdf5`` and converted
        from there (one mapping).
    dt : float
        The step in NIR's time unit (stored as ``metadata['dt']``).
    input_shape : sequence of int, optional
        Torch-order shape of the input when the file does not fix it (a first conv or pool:
        default the smallest input that gives its output).

    Returns
    -------
    nir.NIRGraph

    Raises
    ------
    NirError
        A layer (or block) NIR cannot express, naming it and the missing node or field.
    """
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number, got {dt!r}")
    if isinstance(source, (str, os.PathLike)):
        return _net_to_nir(source, float(dt), input_shape)
    blocks = _block_list(source)
    names = [f"block {i} ({type(b).__module__}.{type(b).__name__})" for i, b in enumerate(blocks)]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "blocks.net")
        with h5py.File(path, "w") as f:
            layer = f.create_group("layer")
            for i, block in enumerate(blocks):
                neuron = getattr(block, "neuron", None)
                family = type(block).__module__.rsplit(".", 1)[-1]
                if neuron is not None and family != "cuba":
                    raise NirError(
                        names[i], "neuron", f"{_family_text(family)}: only CUBA blocks map onto NIR"
                    )
                block.export_hdf5(layer.create_group(str(i)))
        return _net_to_nir(path, float(dt), input_shape, names)


def _family_text(family: str) -> str:
    key = {
        "sigma_delta": "SDNN",
        "alif": "ALIF",
        "rf": "RF_PHASE",
        "rf_iz": "RF_IZHIKEVICH",
        "adrf": "ADRF_PHASE",
        "adrf_iz": "ADRF_IZHIKEVICH",
    }.get(family)
    return _FAMILY_NODES.get(key, f"the {family} family has no NIR node")


def write(path: str | os.PathLike, source, *, dt: float = 1.0, input_shape: ty.Sequence[int] | None = None):
    """:func:`to_nir` then ``nir.write(path, graph)``; returns the graph."""
    graph = to_nir(source, dt=dt, input_shape=input_shape)
    _nir().write(path, graph)
    return graph


# ------------------------------------------------------------------------------------------ import


@dataclasses.dataclass
class NirImport:
    """Result of :func:`from_nir`: the ``.net`` written and the per-layer quantization report."""

    path: str
    report: list[LayerQuantization]
    dt: float

    def table(self) -> str:
        """The report as a text table (one row per weighted layer)."""
        head = (
            f"{'layer':>5}  {'record':<9} {'nodes':<34} {'scale':>10}  {'exact':<5} {'weight':>8} "
            f"{'row_sum':>8} {'thresh':>8} {'bias':>8} {'tau_syn':>8} {'tau_mem':>8} {'bits':>4} {'exp':>4}"
        )
        return "\n".join([head] + [r.row() for r in self.report])


_WEIGHTED = ("Affine", "Linear", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d")
_NEURONS = ("CubaLIF", "LIF", "IF", "CubaLI", "LI", "I", "Threshold")


def _tname(node) -> str:
    return type(node).__name__


def _arr(node, attr: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    value = getattr(node, attr)
    if value is None:
        return np.zeros(shape)
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape and arr.size == int(np.prod(shape)) and arr.ndim > 1:
        return arr.reshape(shape).copy()  # e.g. a Conv1d layer's (C, N) as (C, N, 1)
    try:
        return np.broadcast_to(arr, shape).copy()
    except ValueError as err:
        raise NirError(where, attr, f"shape {arr.shape} does not fit the layer's neurons {shape}") from err


def _rows(arr: np.ndarray, shape: tuple[int, ...], where: str, name: str, scalar: bool = False) -> np.ndarray:
    """Per-neuron values of a dense layer, per-channel of a conv layer (equal over H, W), or one value."""
    if len(shape) == 3:
        per = arr.reshape(shape[0], -1)
        if not np.all((per == per[:, :1]) | (np.isnan(per) & np.isnan(per[:, :1]))):
            raise NirError(where, name, "differs within a channel; conv layers take one value per channel")
        arr = per[:, 0]
    if scalar:
        flat = arr.reshape(-1)
        if not np.all(flat == flat[0]):
            raise NirError(where, name, "differs between neurons; a pool layer takes one value")
        return flat[:1]
    return arr.reshape(-1)


class _Graph:
    def __init__(self, graph, where_prefix: str = "node") -> None:
        self.g = graph
        self.succ: dict[str, list[str]] = {k: [] for k in graph.nodes}
        self.pred: dict[str, list[str]] = {k: [] for k in graph.nodes}
        for a, b in graph.edges:
            if a not in graph.nodes or b not in graph.nodes:
                raise NirError(f"edge ({a!r}, {b!r})", None, "names a node the graph does not have")
            self.succ[a].append(b)
            self.pred[b].append(a)

    def node(self, name: str):
        return self.g.nodes[name]


def _inline(graph):
    """The graph with every nested ``NIRGraph`` node replaced by its nodes (named ``outer.inner``).

    An edge into the subgraph goes to the successors of its ``Input`` node, an edge out of it
    leaves from the predecessors of its ``Output`` node (one of each; nirtorch already writes
    snnTorch's recurrent layers flat, other producers may nest them).
    """
    nir = _nir()
    if not any(isinstance(n, nir.NIRGraph) for n in graph.nodes.values()):
        return graph
    nodes: dict = {}
    entry: dict[str, list[str]] = {}
    exit_: dict[str, list[str]] = {}
    inner_edges: list[tuple[str, str]] = []
    for name, node in graph.nodes.items():
        if not isinstance(node, nir.NIRGraph):
            nodes[name] = node
            entry[name] = exit_[name] = [name]
            continue
        sub = _inline(node)
        ins = [k for k, n in sub.nodes.items() if isinstance(n, nir.Input)]
        outs = [k for k, n in sub.nodes.items() if isinstance(n, nir.Output)]
        if len(ins) != 1 or len(outs) != 1:
            raise NirError(
                f"node {name!r}",
                None,
                f"a subgraph with {len(ins)} Input and {len(outs)} Output nodes (one each is supported)",
            )
        for k, n in sub.nodes.items():
            if k not in (ins[0], outs[0]):
                nodes[f"{name}.{k}"] = n
        entry[name] = [f"{name}.{b}" for a, b in sub.edges if a == ins[0]]
        exit_[name] = [f"{name}.{a}" for a, b in sub.edges if b == outs[0]]
        inner_edges += [(f"{name}.{a}", f"{name}.{b}") for a, b in sub.edges if a != ins[0] and b != outs[0]]
    edges = []
    for a, b in graph.edges:
        if a not in entry or b not in entry:
            raise NirError(f"edge ({a!r}, {b!r})", None, "names a node the graph does not have")
        edges += [(x, y) for x in exit_[a] for y in entry[b]]
    return nir.NIRGraph(
        nodes=nodes,
        edges=edges + inner_edges,
        metadata=dict(getattr(graph, "metadata", None) or {}),
        type_check=False,
    )


def _unit_gain_dt(graph) -> float | None:
    """The step at which every neuron node passes its input with gain 1, if there is one.

    snnTorch writes ``r = tau / dt`` (``LIF``) and also ``w_in = tau_syn / dt`` (``CubaLIF``) with
    its ``dt = 1e-4``, and no ``dt`` in the metadata. The ratios are taken from ``CubaLIF``/
    ``CubaLI`` nodes (two each, which must agree) and from ``LIF``/``LI`` nodes with ``r != 1``
    (``r = 1`` says nothing about the step). None when there is no such node or the ratios differ
    (relative spread above 1e-5: float32 parameters).
    """
    ratios = []
    for node in graph.nodes.values():
        kind = _tname(node)
        if kind in ("CubaLIF", "CubaLI"):
            ratios += [
                np.asarray(node.tau_mem, np.float64) / np.asarray(node.r, np.float64),
                np.asarray(node.tau_syn, np.float64) / np.asarray(node.w_in, np.float64),
            ]
        elif kind in ("LIF", "LI") and not np.all(np.asarray(node.r, np.float64) == 1):
            ratios.append(np.asarray(node.tau, np.float64) / np.asarray(node.r, np.float64))
    if not ratios:
        return None
    values = np.concatenate([r.reshape(-1) for r in ratios])
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        return None
    mid = float(np.median(values))
    if np.max(np.abs(values - mid)) > 1e-5 * mid:
        return None
    return float(f"{mid:.6g}")


def fix_norse(graph, dt: float = 1e-3):
    """A graph written by Norse's ``to_nir`` (1.1.0) with the time constants NIR means.

    Norse's export writes ``tau = dt / tau_inv`` (``dt`` times the time constant; norse issue
    #411) and, for ``LIFCell``, ``w_in = 1`` although its current jumps by the whole weighted
    input each step (``i += x``), which NIR's forward-Euler reading (``i += dt / tau_syn * w_in
    * x``) writes ``w_in = tau_syn / dt``. This returns a copy with ``tau`` (``tau_syn``,
    ``tau_mem``) divided by ``dt`` where they are below ``dt`` (the bug's signature: a time
    constant below the step), ``w_in = tau_syn / dt`` where Norse left ``w_in = 1`` and
    ``r = 1``, and ``metadata['dt'] = dt``. The result imports with Norse's own dynamics.

    Parameters
    ----------
    graph : nir.NIRGraph or str or path-like
        Norse's export (or a ``.nir`` file of it).
    dt : float
        The ``dt`` given to ``norse.torch.to_nir`` (Norse's default 1e-3).

    Returns
    -------
    nir.NIRGraph
    """
    nir = _nir()
    if isinstance(graph, (str, os.PathLike)):
        graph = nir.read(graph)
    graph = _inline(graph)

    def f64(x):
        return np.asarray(x, np.float64)

    def fixed(tau):
        tau = f64(tau)
        return tau / dt if np.all(tau < dt) else tau

    fields = {
        "LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
        "LI": ("tau", "r", "v_leak"),
        "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
        "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
    }
    nodes = {}
    for name, node in graph.nodes.items():
        kind = _tname(node)
        if kind in fields:
            # Norse mixes per-neuron and scalar parameters; nir wants one shape
            values = {k: f64(getattr(node, k)) for k in fields[kind] if getattr(node, k, None) is not None}
            shape = np.broadcast_shapes(*(v.shape for v in values.values()))
            values = {k: np.broadcast_to(v, shape).copy() for k, v in values.items()}
            if kind in ("LIF", "LI"):
                values["tau"] = fixed(values["tau"])
            else:
                values["tau_syn"], values["tau_mem"] = fixed(values["tau_syn"]), fixed(values["tau_mem"])
                if np.all(values["w_in"] == 1) and np.all(values["r"] == 1):
                    values["w_in"] = values["tau_syn"] / dt
            node = dataclasses.replace(node, **values)
        nodes[name] = node
    meta = dict(getattr(graph, "metadata", None) or {})
    meta["dt"] = float(dt)
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=meta, type_check=False)


def _parse(graph, dt: float):
    """The records of a NIR graph in file order, and the input shape (torch order).

    Each item is a dict with ``kind``: ``'flatten'``; a weighted layer (``'dense'``, ``'conv'``,
    ``'pool'``; ``neuron`` None for a neuron-less readout); ``'concat'`` (``sources``: positions
    of earlier items, joined channel-wise); ``'relay'`` (an identity layer that delays one
    part of the preceding concat or record by ``1 + delay`` steps, see :func:`_plan_merge`).
    """
    nir = _nir()
    graph = _inline(graph)
    for name, node in graph.nodes.items():
        if not isinstance(node, (nir.Input, nir.Output)) and _tname(node) not in _WEIGHTED + _NEURONS + (
            "Flatten",
            "Delay",
            "Scale",
        ):
            raise NirError(
                f"node {name!r}",
                None,
                f"{_tname(node)} nodes are not supported (supported: "
                f"{', '.join(_WEIGHTED + _NEURONS)}, Flatten, Delay, Scale)",
            )
    g = _Graph(graph)
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NirError(
            "graph", None, f"{len(inputs)} Input and {len(outputs)} Output nodes; one each is supported yet"
        )
    in_name, out_name = inputs[0], outputs[0]
    units = _units(g, out_name)
    in_shape = tuple(int(v) for v in np.asarray(graph.nodes[in_name].input_type["input"]).reshape(-1))
    into_conv1d = any(
        e["source"] == in_name and _tname(g.node(e["node"])) == "Conv1d"
        for u in units.values()
        for e in u["edges"]
    )
    if into_conv1d and len(in_shape) == 2:
        in_shape = (*in_shape, 1)  # (C, N) as (C, N, 1): Conv1d runs as a (K, 1) Conv2d
    elif len(in_shape) in (2, 4) and in_shape[0] == 1:  # a batch axis (Norse's export writes (1, ...))
        in_shape = in_shape[1:]
    if len(g.pred[out_name]) != 1:
        raise NirError(f"node {out_name!r}", None, f"has {len(g.pred[out_name])} inputs; one is supported")
    for unit in units.values():
        for edge in unit["edges"]:
            if edge["source"] != in_name and edge["source"] not in units:
                source = edge["source"]
                raise NirError(
                    f"node {source!r}",
                    None,
                    f"a {_tname(g.node(source))} node before {edge['node']!r} where a layer's output "
                    "(a neuron node, or its Delay) or the Input was expected",
                )
    used = {in_name, out_name}
    for unit in units.values():
        used.update(unit["members"])
        for edge in unit["edges"]:
            used.update(edge["path"])
    unused = [k for k in graph.nodes if k not in used]
    if unused:
        raise NirError(
            f"node {unused[0]!r}",
            None,
            f"a {_tname(graph.nodes[unused[0]])} node that is part of no layer: a layer is weighted "
            "node(s) into a neuron node; Flatten, Delay and Scale are read on the way from a layer's "
            "output into a weighted node, Scale also between a weighted node and its neuron",
        )

    # order the layers: a layer whose one input is the layer just placed comes next (no concat)
    done: dict[str, int] = {}  # unit output node -> position of its record
    depth: dict[str, int] = {in_name: 0}  # steps a layer's output lags NIR time on Lava (slayer index)
    shapes: dict[str, tuple[int, ...]] = {in_name: in_shape}
    plan: list[dict] = []
    pending = list(units)
    last = in_name
    while pending:
        ready = [u for u in pending if all(e["source"] in depth for e in units[u]["edges"])]
        if not ready:
            raise NirError(
                f"node {pending[0]!r}",
                None,
                "is on a cycle that is not a neuron's own recurrent Linear (Lava cannot order it)",
            )
        chained = [u for u in ready if [e["source"] for e in units[u]["edges"]] == [last]]
        key = (chained or ready)[0]
        pending.remove(key)
        unit = units[key]
        edges = unit["edges"]
        for edge in edges:
            edge["shape"] = _edge_shape(g, edge, shapes[edge["source"]], dt)
        nodes = [n for e in edges for n in (e["node"], *e["path"])] + unit["members"]
        layer = dict(nodes=tuple(dict.fromkeys(nodes)), neuron=None)
        reference = max(depth[e["source"]] for e in edges)
        for edge in edges:
            edge["lag"] = reference - depth[edge["source"]] + edge["delay"]
        plain = len(edges) == 1 and edges[0]["lag"] == 0 and edges[0]["source"] == last
        if plain:
            if edges[0]["flatten"]:
                plan.append(dict(kind="flatten", nodes=(edges[0]["flatten"],), shape=shapes[last]))
            layer.update(_edge_weighted(g, edges[0]))
        else:
            layer.update(_plan_merge(g, unit, plan, done, last, in_name))
        _finish_layer(g, unit, layer, dt)
        plan.append(layer)
        out = unit["output"]
        done[out] = len(plan) - 1
        shapes[out] = layer["out_shape"]
        depth[out] = reference + (0 if layer["neuron"] is None else 1)
        last = out
    if g.pred[out_name][0] != last:
        raise NirError(f"node {out_name!r}", None, f"its input {g.pred[out_name][0]!r} is not the last layer")
    return plan, in_shape


def _units(g: _Graph, out_name: str) -> dict[str, dict]:
    """The layers of a graph keyed by their output node: weighted input edges, neuron stages,
    recurrent node, delay. A ``Scale`` between a weighted node and its neuron (or the Output)
    is kept on the edge (``row_scale``) and folded into the weights."""
    units: dict[str, dict] = {}
    firsts: list[str] = []
    feeds: dict[str, list[tuple[str, str | None]]] = {}  # first stage -> (weighted node, Scale node)
    for name in g.g.nodes:
        if _tname(g.node(name)) not in _WEIGHTED:
            continue
        nxt, row_scale = g.succ[name], None
        if len(nxt) == 1 and _tname(g.node(nxt[0])) == "Scale":
            row_scale, nxt = nxt[0], g.succ[nxt[0]]
        if len(nxt) != 1:
            raise NirError(
                f"node {row_scale or name!r}",
                None,
                f"has {len(nxt)} successors {nxt}; a weighted node feeds one neuron",
            )
        if nxt[0] == out_name:
            units[name] = dict(
                where=f"node {name!r}",
                stages=[],
                rec=None,
                delay=None,
                output=name,
                members=[name] + ([row_scale] if row_scale else []),
                feeds=[(name, row_scale)],
                readout=True,
            )
            continue
        target = g.node(nxt[0])
        if _tname(target) not in _NEURONS:
            raise NirError(
                f"node {nxt[0]!r}",
                None,
                f"a {_tname(target)} node after the weighted node {name!r}; a neuron node was expected",
            )
        if nxt[0] not in firsts:
            firsts.append(nxt[0])
        feeds.setdefault(nxt[0], []).append((name, row_scale))
    for first in firsts:
        stages = [first]
        kind = _tname(g.node(first))
        if kind in ("I", "LI"):
            after = list(g.succ[first])
            if len(after) == 1 and _tname(g.node(after[0])) in ("LIF", "IF", "Threshold"):
                stages.append(after[0])
            elif kind == "I":
                raise NirError(
                    f"node {first!r}",
                    None,
                    "an I node is supported only as the current stage before LIF, IF or Threshold",
                )
        if len(stages) == 2 and len(g.pred[stages[1]]) != 1:
            raise NirError(
                f"node {stages[1]!r}", None, "the voltage stage must have one input (its current stage)"
            )
        last_stage = stages[-1]
        rec_name, inputs = None, []
        for weighted, row_scale in feeds[first]:
            recurrent = g.pred[weighted] == [last_stage] and _tname(g.node(weighted)) in ("Affine", "Linear")
            if recurrent and rec_name is None and row_scale is None:
                rec_name = weighted
            else:
                inputs.append((weighted, row_scale))
        known = {w for w, _ in feeds[first]} | {s for _, s in feeds[first] if s}
        for p in g.pred[first]:
            if p in known:
                continue
            if p in stages:
                raise NirError(
                    f"node {first!r}",
                    None,
                    "a cycle that does not pass through a weighted node (Lava cannot order it)",
                )
            raise NirError(
                f"node {first!r}",
                None,
                f"input from the {_tname(g.node(p))} node {p!r}; a neuron takes its inputs from "
                "weighted nodes",
            )
        after = [s for s in g.succ[last_stage] if s != rec_name]
        delay = after[0] if len(after) == 1 and _tname(g.node(after[0])) == "Delay" else None
        output = delay or last_stage
        if not inputs:
            raise NirError(f"node {first!r}", None, "has no input besides its own recurrent node")
        members = [*stages] + [n for n in (rec_name, delay) if n]
        units[output] = dict(
            where=f"node {inputs[0][0]!r}" if inputs else f"node {first!r}",
            stages=stages,
            rec=rec_name,
            delay=delay,
            output=output,
            readout=False,
            members=members + [n for pair in inputs for n in pair if n],
            feeds=inputs,
        )
    for unit in units.values():
        unit["edges"] = [_edge(g, w, s, units) for w, s in unit["feeds"]]
    return units


def _edge(g: _Graph, weighted: str, row_scale: str | None, units: dict[str, dict]) -> dict:
    """The path into a weighted node, back through at most one each of Flatten, Delay (on this
    branch only) and Scale, to a layer's output or the Input."""
    path: list[str] = []
    found: dict[str, str | None] = {"Flatten": None, "Delay": None, "Scale": None}
    cur = weighted
    while True:
        preds = g.pred[cur]
        if len(preds) != 1:
            raise NirError(
                f"node {cur!r}",
                None,
                f"has {len(preds)} inputs {preds}; inputs are summed only into neuron nodes",
            )
        p = preds[0]
        kind = _tname(g.node(p))
        if p in units or kind not in found or found[kind] is not None or len(g.succ[p]) != 1:
            return dict(
                node=weighted,
                source=p,
                flatten=found["Flatten"],
                delay_node=found["Delay"],
                col_scale=found["Scale"],
                row_scale=row_scale,
                path=path,
                delay=0,
            )
        found[kind] = p
        path.append(p)
        cur = p


def _edge_shape(g: _Graph, edge: dict, shape: tuple[int, ...], dt: float) -> tuple[int, ...]:
    """The shape a weighted node sees on ``edge``; checks its Flatten and reads its Delay (steps)."""
    if edge["delay_node"] is not None:
        name = edge["delay_node"]
        steps = _whole_steps(_arr(g.node(name), "delay", shape, f"node {name!r}") / dt, name)
        if not np.all(steps == steps.reshape(-1)[0]):
            raise NirError(
                f"node {name!r}", "delay", "a delay on one branch must be one value for all neurons"
            )
        edge["delay"] = int(steps.reshape(-1)[0])
    if edge["flatten"] is None:
        return shape
    name = edge["flatten"]
    node = g.node(name)
    if len(shape) > 1 and not (int(node.start_dim) == 0 and int(node.end_dim) in (-1, len(shape) - 1)):
        out = (
            np.asarray(node.output_type["output"]).reshape(-1)
            if node.output_type.get("output") is not None
            else None
        )
        if out is None or out.size != 1:
            raise NirError(
                f"node {name!r}", "start_dim", f"only a flatten of the whole {shape} input is supported"
            )
    return (int(np.prod(shape)),)


def _whole_steps(delay_steps: np.ndarray, name: str) -> np.ndarray:
    rounded = np.rint(delay_steps)
    if not _is_integral(delay_steps) or rounded.min() < 0 or rounded.max() > MAX_BLOCK_DELAY:
        raise NirError(
            f"node {name!r}",
            "delay",
            f"delays must be whole steps (multiples of dt) in [0, {MAX_BLOCK_DELAY}], "
            f"got {delay_steps.min():g}..{delay_steps.max():g}",
        )
    return rounded


def _finish_layer(g: _Graph, unit: dict, layer: dict, dt: float) -> None:
    """Neuron parameters, recurrent weights and the layer's own delay."""
    if unit["readout"]:
        if layer["kind"] != "dense":
            raise NirError(unit["where"], None, "a layer without neuron must be Affine or Linear")
        if np.any(layer["syn_bias"]):
            raise NirError(unit["where"], "bias", "an Affine readout without neuron takes no bias")
        return
    layer["neuron"] = _neuron(g, unit["stages"], layer["out_shape"], dt)
    rec_name = unit["rec"]
    if rec_name is not None:
        rn = g.node(rec_name)
        if layer["kind"] != "dense":
            raise NirError(
                f"node {rec_name!r}", None, "recurrent connections are supported on dense layers only"
            )
        w_rec = np.asarray(rn.weight, dtype=np.float64)
        n = layer["out_shape"][0]
        if w_rec.shape != (n, n):
            raise NirError(
                f"node {rec_name!r}", "weight", f"recurrent weights of shape {w_rec.shape}, expected {(n, n)}"
            )
        if _tname(rn) == "Affine" and np.any(np.asarray(rn.bias)):
            # a constant input each step, like the feed-forward synapse bias
            layer["syn_bias"] = layer["syn_bias"] + np.broadcast_to(np.asarray(rn.bias, np.float64), (n,))
        layer["weight_rec"] = w_rec
    if unit["delay"] is not None:
        name = unit["delay"]
        steps = _arr(g.node(name), "delay", layer["out_shape"], f"node {name!r}") / dt
        layer["delay"] = _rows(_whole_steps(steps, name), layer["out_shape"], f"node {name!r}", "delay")


#: A relay neuron passes a binary spike on unchanged, one step later: weight 64 (1.0) into a
#: CUBA neuron that keeps neither current nor voltage, threshold 32 (0.5).
RELAY_NEURON = {
    "type": "CUBA",
    "iDecay": DECAY_UNITY,
    "vDecay": DECAY_UNITY,
    "vThMant": WEIGHT_SCALE // 2,
    "refDelay": 1,
    "gradedSpike": False,
}


def _joined_shape(shapes: list[tuple[int, ...]], where: str) -> tuple[int, ...]:
    if all(len(s) == 1 for s in shapes):
        return (sum(s[0] for s in shapes),)
    if all(len(s) == 3 for s in shapes) and len({s[1:] for s in shapes}) == 1:
        return (sum(s[0] for s in shapes), *shapes[0][1:])
    raise NirError(
        where, None, f"joins outputs of shapes {shapes}; netx's concat needs equal (H, W) or 1-D outputs"
    )


def _plan_merge(
    g: _Graph, unit: dict, plan: list[dict], done: dict[str, int], last: str, in_name: str
) -> dict:
    """Records that feed a neuron the sum of several weighted inputs (NIR sums a node's inputs).

    The sum ``sum_k W_k x_k`` is one weighted layer over the concatenation of the ``x_k``
    (a ``concat`` record; weights side by side). On Lava (and in slayer's time index) every
    layer adds one step, so an input from a shallower layer arrives early: a ``relay`` record
    (identity weights into :data:`RELAY_NEURON`, plus an axonal ``delay``) holds it back until
    it meets the deepest input, as NIR's instantaneous edges mean. netx's concat always joins
    the record just before it, which takes zero weights when it is not an input.
    """
    where = unit["where"]
    parts: dict[tuple[str, int], dict] = {}
    for edge in unit["edges"]:
        name = edge["node"]
        if edge["source"] == in_name:
            raise NirError(
                f"node {name!r}",
                None,
                "a skip connection or branch delay from the graph Input: the input is no layer "
                "netx can join or delay",
            )
        if edge["flatten"]:
            raise NirError(
                f"node {edge['flatten']!r}", None, "a Flatten on a joined or delayed input is not supported"
            )
        w = _edge_weighted(g, edge)
        key = (edge["source"], edge["lag"])
        if key in parts:
            w["weight"] = parts[key]["weight"] + w["weight"]
            w["syn_bias"] = parts[key]["syn_bias"] + w["syn_bias"]
        parts[key] = w
    first = next(iter(parts.values()))
    kinds = {p["kind"] for p in parts.values()}
    if kinds != {"dense"} and kinds != {"conv"}:
        raise NirError(
            where,
            None,
            f"a neuron summing {sorted(kinds)} inputs; joins of Linear/Affine or Conv2d nodes only",
        )
    if first["kind"] == "conv":
        geometry = ("stride", "padding", "dilation", "out_shape")
        for p in parts.values():
            if (
                p["groups"] != 1
                or p["weight"].shape[2:] != first["weight"].shape[2:]
                or any(p[k] != first[k] for k in geometry)
            ):
                raise NirError(
                    where,
                    None,
                    "joined Conv2d nodes need groups = 1 and equal kernel size, stride, padding, dilation",
                )
    prev = done[last]
    columns: dict[int, dict] = {}
    for (source, lag), part in parts.items():
        pos = done[source]
        if lag == 0:
            columns[pos] = part
            continue
        if lag - 1 > MAX_BLOCK_DELAY:
            raise NirError(
                where, "delay", f"an input {lag} steps early; a relay delays at most {MAX_BLOCK_DELAY + 1}"
            )
        sources = [pos] if pos == prev else [prev, pos]
        shapes = [plan[s]["out_shape"] for s in sources]
        joined = _joined_shape(shapes, where)
        if len(sources) == 2:
            plan.append(dict(kind="concat", sources=sources, out_shape=joined, nodes=()))
        plan.append(
            dict(
                kind="relay",
                in_shape=joined,
                offset=joined[0] - shapes[-1][0],
                out_shape=shapes[-1],
                delay=lag - 1,
                nodes=(source,),
            )
        )
        prev = len(plan) - 1
        columns[prev] = part
    order = list(columns) if prev in columns else [prev, *columns]
    shapes = [plan[s]["out_shape"] for s in order]
    joined = _joined_shape(shapes, where)
    if len(order) > 1:
        plan.append(dict(kind="concat", sources=order, out_shape=joined, nodes=()))
    blocks = []
    for pos, shape in zip(order, shapes):
        if pos in columns:
            blocks.append(columns[pos]["weight"])
        else:
            out = first["weight"].shape[0]
            blocks.append(np.zeros((out, shape[0], *first["weight"].shape[2:])))
    merged = dict(first)
    merged["weight"] = np.concatenate(blocks, axis=1)
    merged["syn_bias"] = sum(p["syn_bias"] for p in parts.values())
    if merged["kind"] == "conv":
        merged["in_channels"] = joined[0]
    return merged


def _edge_weighted(g: _Graph, edge: dict) -> dict:
    """The weighted layer of one edge, with the edge's ``Scale`` nodes folded into the weights:
    ``W diag(s)`` for a Scale on its input, ``diag(s) W`` (and the bias) for one on its output.
    Exact in floats; a scale that a layer cannot hold (varying within a conv channel or a pool)
    raises."""
    name = edge["node"]
    layer = _weighted(g.node(name), name, edge["shape"], f"node {name!r}")
    w = layer["weight"]
    if edge["row_scale"] is not None:
        where = f"node {edge['row_scale']!r}"
        out = layer["out_shape"]
        s = _rows(_arr(g.node(edge["row_scale"]), "scale", out, where), out, where, "scale")
        if layer["kind"] == "pool":
            s = _rows(s, (s.size,), where, "scale", scalar=True)
            w = w * s[0]
        else:
            w = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
            layer["syn_bias"] = layer["syn_bias"] * s
    if edge["col_scale"] is not None:
        where = f"node {edge['col_scale']!r}"
        node = g.node(edge["col_scale"])
        before = tuple(int(v) for v in np.asarray(node.scale).shape) or (1,)
        if layer["kind"] == "dense":
            s = np.broadcast_to(np.asarray(node.scale, np.float64), before).reshape(-1)
            if s.size not in (1, w.shape[1]):
                raise NirError(where, "scale", f"{s.size} values before a layer of {w.shape[1]} inputs")
            w = w * s[None, :]
        elif layer["kind"] == "conv":
            if layer["groups"] != 1:
                raise NirError(where, "scale", "a Scale before a grouped convolution is not supported")
            s = _rows(_arr(node, "scale", edge["shape"], where), edge["shape"], where, "scale")
            w = w * s[None, :, None, None]
        else:
            flat = np.asarray(node.scale, np.float64).reshape(-1)
            if not np.all(flat == flat[0]):
                raise NirError(where, "scale", "differs between inputs; a pool layer takes one value")
            w = w * flat[0]
    layer["weight"] = w
    return layer


def _conv1d(node, shape: tuple[int, ...], where: str) -> dict:
    """A ``Conv1d`` as a conv record of kernel ``(K, 1)`` on ``(C, N, 1)`` (netx convolves 2-D)."""
    if len(shape) == 2 or (len(shape) == 3 and shape[2] == 1):
        shape = (shape[0], shape[1], 1)
    else:
        raise NirError(where, None, f"a Conv1d node after an output of shape {shape}; (C, N) expected")
    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim != 3:
        raise NirError(where, "weight", f"expected (C_out, C_in/groups, K), got shape {w.shape}")
    padding = node.padding
    if not isinstance(padding, str):
        padding = (int(np.asarray(padding).reshape(-1)[0]), 0)
    as_2d = _nir().Conv2d(
        input_shape=None,
        weight=w[..., None],
        stride=(int(np.asarray(node.stride).reshape(-1)[0]), 1),
        padding=padding,
        dilation=(int(np.asarray(node.dilation).reshape(-1)[0]), 1),
        groups=int(node.groups),
        bias=node.bias,
    )
    return _weighted(as_2d, "", shape, where)


def _weighted(node, name: str, shape: tuple[int, ...], where: str) -> dict:
    kind = _tname(node)
    if kind in ("Affine", "Linear"):
        w = np.asarray(node.weight, dtype=np.float64)
        if w.ndim != 2:
            raise NirError(where, "weight", f"expected a 2-D matrix, got shape {w.shape}")
        if len(shape) != 1 or w.shape[1] != shape[0]:
            raise NirError(
                where,
                "weight",
                f"{w.shape[1]} inputs after an output of shape {shape} (a "
                "multi-dimensional output needs a Flatten node)",
            )
        bias = (
            np.zeros(w.shape[0])
            if kind == "Linear"
            else np.broadcast_to(np.asarray(node.bias, np.float64), (w.shape[0],)).copy()
        )
        return dict(kind="dense", weight=w, syn_bias=bias, out_shape=(w.shape[0],))
    if kind == "Conv1d":
        return _conv1d(node, shape, where)
    if len(shape) != 3:
        raise NirError(where, None, f"a {kind} node after an output of shape {shape}; (C, H, W) expected")
    c, h, wd = shape

    def pair(value, field):
        arr = np.asarray(value).reshape(-1)
        if arr.dtype.kind in "US":
            raise NirError(where, field, f"{arr[0]!r} is not supported here")
        arr = np.repeat(arr, 2) if arr.size == 1 else arr
        if arr.size != 2 or not _is_integral(arr.astype(np.float64)) or arr.min() < 0:
            raise NirError(where, field, f"expected one or two non-negative integers, got {value!r}")
        return int(arr[0]), int(arr[1])

    if kind == "Conv2d":
        w = np.asarray(node.weight, dtype=np.float64)
        if w.ndim != 4:
            raise NirError(where, "weight", f"expected (C_out, C_in/groups, kH, kW), got shape {w.shape}")
        groups = int(node.groups)
        if w.shape[1] * groups != c:
            raise NirError(
                where, "weight", f"{w.shape[1]} x {groups} groups input channels after {c} channels"
            )
        kh, kw = w.shape[2:]
        stride, dil = pair(node.stride, "stride"), pair(node.dilation, "dilation")
        if isinstance(node.padding, str):
            if node.padding == "valid":
                pad = (0, 0)
            else:
                if stride != (1, 1) or (dil[0] * (kh - 1)) % 2 or (dil[1] * (kw - 1)) % 2:
                    raise NirError(
                        where, "padding", "'same' padding is supported for stride 1 and odd kernels"
                    )
                pad = (dil[0] * (kh - 1) // 2, dil[1] * (kw - 1) // 2)
        else:
            pad = pair(node.padding, "padding")
        out = (
            w.shape[0],
            _conv_out(h, kh, stride[0], pad[0], dil[0]),
            _conv_out(wd, kw, stride[1], pad[1], dil[1]),
        )
        bias = (
            np.zeros(w.shape[0])
            if node.bias is None
            else np.broadcast_to(np.asarray(node.bias, np.float64), (w.shape[0],)).copy()
        )
        return dict(
            kind="conv",
            weight=w,
            syn_bias=bias,
            out_shape=out,
            stride=stride,
            padding=pad,
            dilation=dil,
            groups=groups,
            in_channels=c,
        )
    kh, kw = pair(node.kernel_size, "kernel_size")
    stride, pad = pair(node.stride, "stride"), pair(node.padding, "padding")
    tap = 1.0 if kind == "SumPool2d" else 1.0 / (kh * kw)
    out = (c, _conv_out(h, kh, stride[0], pad[0], 1), _conv_out(wd, kw, stride[1], pad[1], 1))
    return dict(
        kind="pool",
        weight=np.full((1, 1, kh, kw), tap),
        syn_bias=np.zeros(1),
        out_shape=out,
        stride=stride,
        padding=pad,
        dilation=(1, 1),
    )


def _neuron(g: _Graph, stages: list[str], shape: tuple[int, ...], dt: float) -> dict:
    """Per-neuron gain, bias, threshold and time constants of one (or two, composite) neuron nodes."""
    first, last = g.node(stages[0]), g.node(stages[-1])
    w1, w2 = f"node {stages[0]!r}", f"node {stages[-1]!r}"
    kind1, kind2 = _tname(first), _tname(last)

    def a(node, attr, where):
        return _arr(node, attr, shape, where)

    for node, where in ((first, w1), (last, w2)):
        if not hasattr(node, "v_reset") or not np.any(a(node, "v_reset", where)):
            continue
        tau = getattr(node, "tau_mem", getattr(node, "tau", None))
        if tau is not None and _all_close(
            a(node, "tau_mem" if hasattr(node, "tau_mem") else "tau", where), dt
        ):
            continue  # tau = dt: the voltage is rewritten each step, the reset value never shows
        raise NirError(
            where,
            "v_reset",
            "Loihi resets the voltage to 0; a nonzero v_reset is not exact (shifting the voltage "
            "by v_reset would start it at -v_reset, Loihi starts at 0) unless tau_mem = dt",
        )
    if kind2 == "Threshold":
        threshold = a(last, "threshold", w2)
    else:
        threshold = a(last, "v_threshold", w2) if kind2 in ("CubaLIF", "LIF", "IF") else None
    if kind1 in ("CubaLIF", "CubaLI"):
        ts, tm = a(first, "tau_syn", w1), a(first, "tau_mem", w1)
        gain = (dt / tm) * a(first, "r", w1) * (dt / ts) * a(first, "w_in", w1)
        bias = (dt / tm) * a(first, "v_leak", w1)
        return dict(gain=gain, bias=bias, threshold=threshold, tau_syn=ts, tau_mem=tm, where=w1)
    if len(stages) == 1:
        if kind1 == "LIF" or kind1 == "LI":
            tm = a(first, "tau", w1)
            return dict(
                gain=(dt / tm) * a(first, "r", w1),
                bias=(dt / tm) * a(first, "v_leak", w1),
                threshold=threshold,
                tau_syn=np.full(shape, dt),
                tau_mem=tm,
                where=w1,
            )
        if kind1 == "Threshold":  # stateless: a CUBA neuron that keeps neither current nor voltage
            return dict(
                gain=np.ones(shape),
                bias=np.zeros(shape),
                threshold=threshold,
                tau_syn=np.full(shape, dt),
                tau_mem=np.full(shape, dt),
                where=w1,
            )
        if kind1 == "IF":
            return dict(
                gain=dt * a(first, "r", w1),
                bias=np.zeros(shape),
                threshold=threshold,
                tau_syn=np.full(shape, dt),
                tau_mem=np.full(shape, np.inf),
                where=w1,
            )
        raise NirError(w1, None, f"a {kind1} node is not supported on its own")
    if kind1 == "I":
        ts, g1 = np.full(shape, np.inf), dt * a(first, "r", w1)
    else:
        ts = a(first, "tau", w1)
        g1 = (dt / ts) * a(first, "r", w1)
        if np.any(a(first, "v_leak", w1)):
            raise NirError(w1, "v_leak", "a leak voltage on the current stage is not supported")
    if kind2 == "LIF":
        tm = a(last, "tau", w2)
        g2, bias = (dt / tm) * a(last, "r", w2), (dt / tm) * a(last, "v_leak", w2)
    elif kind2 == "Threshold":
        tm, g2, bias = np.full(shape, dt), np.ones(shape), np.zeros(shape)
    else:
        tm, g2, bias = np.full(shape, np.inf), dt * a(last, "r", w2), np.zeros(shape)
    return dict(gain=g1 * g2, bias=bias, threshold=threshold, tau_syn=ts, tau_mem=tm, where=w1)


def _all_close(arr: np.ndarray, value: float) -> bool:
    return bool(np.all(np.isclose(arr, value, rtol=1e-9, atol=0)))


def from_nir(
    graph, path: str | os.PathLike, *, dt: float | None = None, scale: float | None = None, rtol: float = 0.05
) -> NirImport:
    """Write a NIR graph as a lava_dl ``.net`` file (CUBA records, Loihi integers).

    Each layer (a weighted node, its neuron node(s), an optional recurrent ``Linear`` and
    ``Delay``) becomes one record; its gains (``r``, ``w_in``, ``dt / tau``) are folded into
    the weights and :func:`quantize` maps it onto integers. The file carries lava_dl's producer
    stamp, so :class:`lava_dl.netx.hdf5.Network` deploys it with slayer's semantics and
    :class:`lava_dl.slayer.auto.SequentialNetwork` loads it.

    Parameters
    ----------
    graph : nir.NIRGraph or str or path-like
        The graph, or a ``.nir`` file.
    path : str or path-like
        The ``.net`` file to write.
    dt : float, optional
        The step (default: ``graph.metadata['dt']``, else 1).
    scale : float, optional
        Force every layer's integer scale (see :func:`quantize`).
    rtol : float
        See :func:`quantize`.

    Returns
    -------
    NirImport
        The path, the per-layer :class:`LayerQuantization` report and ``dt``.

    Raises
    ------
    NirError
        Unsupported nodes or structure, or parameters outside Loihi's ranges, naming the node
        and the parameter.
    """
    nir = _nir()
    if isinstance(graph, (str, os.PathLike)):
        graph = nir.read(graph)
    if dt is None:
        meta = getattr(graph, "metadata", None) or {}
        if "dt" in meta:
            dt = float(np.asarray(meta["dt"]))
        else:
            dt = _unit_gain_dt(_inline(graph)) or 1.0
    dt = float(dt)
    if not (math.isfinite(dt) and dt > 0):
        raise NirError("graph", "dt", f"must be a positive number, got {dt}")
    layers, in_shape = _parse(graph, dt)
    report: list[LayerQuantization] = []
    path = os.fspath(path)
    with h5py.File(path, "w") as f:
        group = f.create_group("layer")
        index = 0
        first_weighted = next((lay for lay in layers if lay["kind"] != "flatten"), None)
        if (
            first_weighted is not None
            and first_weighted["kind"] != "dense"
            or (layers and layers[0]["kind"] == "flatten")
        ):
            records.write_input(group.create_group(str(index)), shape=in_shape)
            index += 1
        record_of: dict[int, int] = {}  # position in layers -> record index
        for pos, lay in enumerate(layers):
            record_of[pos] = index
            if lay["kind"] == "flatten":
                records.write_flatten(
                    group.create_group(str(index)), shape=(int(np.prod(lay["shape"])), 1, 1)
                )
            elif lay["kind"] == "concat":
                records.write_concat(
                    group.create_group(str(index)),
                    shape=lay["out_shape"],
                    layers=[record_of[s] for s in lay["sources"]],
                )
            elif lay["kind"] == "relay":
                _write_relay(group.create_group(str(index)), lay)
            else:
                _write_layer(group.create_group(str(index)), lay, index, dt, scale, rtol, report)
            index += 1
    return NirImport(path=path, report=report, dt=dt)


def _write_relay(group: h5py.Group, lay: dict) -> None:
    """An identity layer: part ``offset:offset + C`` of its input, one step (plus ``delay``) later."""
    size, n_in = lay["out_shape"][0], lay["in_shape"][0]
    weight = np.zeros((size, n_in), np.int64)
    weight[np.arange(size), lay["offset"] + np.arange(size)] = WEIGHT_SCALE
    delay = np.full(size, lay["delay"]) if lay["delay"] else None
    if len(lay["out_shape"]) == 1:
        records.write_dense(group, shape=lay["out_shape"], weight=weight, neuron=RELAY_NEURON, delay=delay)
        return
    records.write_conv(
        group,
        shape=lay["out_shape"],
        weight=weight[:, :, None, None],
        in_channels=n_in,
        out_channels=size,
        kernel_size=(1, 1),
        neuron=RELAY_NEURON,
        delay=delay,
    )


def _write_layer(
    group: h5py.Group, lay: dict, index: int, dt: float, scale, rtol: float, report: list[LayerQuantization]
) -> None:
    shape, kind, neuron = lay["out_shape"], lay["kind"], lay["neuron"]
    where = f"node {lay['nodes'][0]!r}"
    if neuron is None:
        q = quantize(
            lay["weight"],
            None,
            dt=dt,
            scale=scale,
            rtol=rtol,
            where=where,
            layer=index,
            nodes=lay["nodes"],
            record="dense",
        )
        q.report.tau_syn_error = q.report.tau_mem_error = 0.0
        report.append(q.report)
        records.write_dense(group, shape=shape, weight=q.weight)
        return
    nwhere = neuron["where"]
    pool = kind == "pool"
    gain = _rows(neuron["gain"], shape, nwhere, "gain (r, w_in, dt / tau)", scalar=pool)
    th = (
        None
        if neuron["threshold"] is None
        else _rows(neuron["threshold"], shape, nwhere, "v_threshold", pool)
    )
    ts = _rows(neuron["tau_syn"], shape, nwhere, "tau_syn", pool)
    tm = _rows(neuron["tau_mem"], shape, nwhere, "tau_mem", pool)
    bias = _rows(neuron["bias"], shape, nwhere, "v_leak", pool)
    if not np.all(np.isfinite(gain)) or np.any(gain <= 0):
        raise NirError(
            nwhere,
            "r",
            "the input gain (dt / tau_mem * r * dt / tau_syn * w_in, or dt * r) must be "
            f"finite and positive, got values in [{np.nanmin(gain):g}, {np.nanmax(gain):g}] "
            "(an infinite time constant leaves no input)",
        )
    syn_bias = lay["syn_bias"]
    if np.any(syn_bias):
        if not _all_close(ts, dt):
            raise NirError(
                where,
                "bias",
                "a synapse bias into a neuron whose current decays slower than one step "
                "(tau_syn > dt) has no exact CUBA form: through the current it ramps up from 0 "
                "with tau_syn, Loihi's bias enters the voltage in full from the first step",
            )
        bias = bias + gain * syn_bias
    w = lay["weight"] * gain.reshape((-1,) + (1,) * (lay["weight"].ndim - 1))
    w_rec = None if "weight_rec" not in lay else lay["weight_rec"] * gain[:, None]
    q = quantize(
        w,
        th,
        bias=bias,
        weight_rec=w_rec,
        tau_syn=ts,
        tau_mem=tm,
        dt=dt,
        scale=scale,
        rtol=rtol,
        where=where + " (layer of " + ", ".join(repr(n) for n in lay["nodes"]) + ")",
        layer=index,
        nodes=lay["nodes"],
        record="dense_rec" if w_rec is not None else kind,
    )
    report.append(q.report)
    fields = {
        "type": "CUBA",
        "iDecay": q.i_decay,
        "vDecay": q.v_decay,
        "vThMant": q.v_th_mant,
        "refDelay": 1,
        "gradedSpike": False,
    }
    delay = lay.get("delay")
    if kind == "dense":
        records.write_dense(
            group,
            shape=shape,
            weight=q.weight,
            bias=q.bias,
            neuron=fields,
            delay=delay,
            weight_rec=q.weight_rec,
        )
    elif kind == "conv":
        records.write_conv(
            group,
            shape=shape,
            weight=q.weight,
            in_channels=lay["in_channels"],
            out_channels=shape[0],
            kernel_size=q.weight.shape[2:],
            stride=lay["stride"],
            padding=lay["padding"],
            dilation=lay["dilation"],
            groups=lay["groups"],
            bias=q.bias,
            neuron=fields,
            delay=delay,
        )
    else:
        if q.bias is not None:
            raise NirError(where, "v_leak", "a pool layer takes no bias")
        records.write_pool(
            group,
            shape=shape,
            weight=q.weight,
            kernel_size=q.weight.shape[2:],
            stride=lay["stride"],
            padding=lay["padding"],
            neuron=fields,
            delay=delay,
        )


def to_lava(graph, path: str | os.PathLike | None = None, **network_kwargs):
    """Import a NIR graph onto Lava: :func:`from_nir` then :class:`lava_dl.netx.hdf5.Network`.

    Returns ``(network, NirImport)``. ``path`` defaults to a temporary ``.net`` (kept: the
    network reads it at construction only). ``dt``, ``scale`` and ``rtol`` go to
    :func:`from_nir`; other keyword arguments to ``Network`` (e.g. ``reset_interval``).
    """
    opts = {k: network_kwargs.pop(k) for k in ("dt", "scale", "rtol") if k in network_kwargs}
    result = from_nir(graph, _temp_path(path), **opts)
    from lava_dl.netx.hdf5 import Network

    return Network(net_config=result.path, **network_kwargs), result


def to_slayer(graph, path: str | os.PathLike | None = None, **kwargs):
    """Import a NIR graph into slayer blocks for fine-tuning: :func:`from_nir` then
    :class:`lava_dl.slayer.auto.SequentialNetwork` (same integers as :func:`to_lava`).

    Graphs with skip connections or branches load too: their ``concat`` records become
    :class:`lava_dl.slayer.block.concat.Concat` blocks and their relay records ordinary CUBA
    blocks (trainable like the rest), and the forward equals the Lava run of the file.

    Parameters
    ----------
    graph : nir.NIRGraph, str or os.PathLike
        The graph, or a NIR file.
    path : str or os.PathLike, optional
        Where the ``.net`` file is written (default: a new temporary file).
    **kwargs
        ``dt``, ``scale``, ``rtol`` go to :func:`from_nir`, the others to ``SequentialNetwork``.

    Returns
    -------
    tuple of (SequentialNetwork, NirImport)
        The network and the import's report (``NirImport.path`` is the file).
    """
    opts = {k: kwargs.pop(k) for k in ("dt", "scale", "rtol") if k in kwargs}
    result = from_nir(graph, _temp_path(path), **opts)
    from lava_dl.slayer.auto import SequentialNetwork

    return SequentialNetwork(result.path, **kwargs), result


def _temp_path(path) -> str:
    if path is not None:
        return os.fspath(path)
    handle, name = tempfile.mkstemp(suffix=".net", prefix="lava_dl_nir_")
    os.close(handle)
    return name
