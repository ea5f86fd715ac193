"""Write netx blocks and networks back to hdf5 (lava-dl's ``netx.hdf5`` format).

:func:`export_block` writes the layer record of one netx block (``Input``, ``Dense``,
``RecurrentDense``, ``Conv``, ``ConvT``, ``Pool``, ``Unpool``, ``ComplexInput``,
``ComplexDense``, ``Average``) and :func:`export_network` the whole file of a
:class:`~lava_dl.proc.netx_blocks.Network` (``block.export_hdf5(handle)`` and
``net.export_hdf5(path)`` call them). The values come from the blocks' *current* Lava Vars:
a Var changed after loading (its ``init`` before a run, or its value in a paused run) is
what gets written, so a network loaded with netx, modified and saved loads back as the
network that runs.

What is written, and how it relates to the running blocks:

* records go through the writers of :mod:`lava_dl.core.records` (``write_input``,
  ``write_dense``, ``write_conv``, ...), so the file is the one lava_dl's training side writes;
* neuron fields come from the family's spec (:mod:`lava_dl.core.spec`): every parameter with
  an ``hdf5_key``, the enumerated fields (``spec.extra['hdf5_enums']``, e.g. sigma-delta's
  ``activation``), the constants (``hdf5_constants``, e.g. ``refDelay``) and the role marker
  (``hdf5_marker``, e.g. ``sigma_output``); ``spec.bias_param`` becomes the record's ``bias``
  (one value per channel). A parameter equal for every neuron is written as one value, one
  that varies per channel as one value per channel; a value varying inside a channel of a
  conv-like layer has no hdf5 form and raises. Optional fields (``required=False``, such as
  ``cumError``) are written only when they differ from their default, except ``gradedSpike``,
  which lava-dl writes for every spiking neuron;
* weights are the *effective* synaptic weights in hdf5 units: a dense synapse's Loihi weight
  handling (sign mode clipping, ``num_weight_bits`` truncation) applied to its ``weights`` Var,
  times ``2**(weight_exp - input_message_exp)``, and the inverse of netx's layout change for
  conv-like synapses (Lava's ``(out, kx, ky, in)`` true convolution back to torch's
  ``(out, in, kH, kW)`` cross-correlation); a weight that is not an integer or lies outside
  the 8-bit synaptic range in hdf5 units raises;
* delays: an axonal delay line (``block.axon``) is the record's ``delay`` per output
  neuron/channel; per-synapse delays (``DelayDense``, lava-dl's placement of a legacy file's
  dense ``delay``) are written per output neuron, per input neuron or as the full matrix,
  whichever holds them (entries behind zero weights do not matter);
* a dense block whose neurons are lava-dl's default integrator (CUBA ``iDecay = 0``,
  ``vDecay = 4096``, ``vThMant = 2^17``, no bias, binary spikes: a ``dense`` record without
  ``neuron`` group) is written without ``neuron`` group again, so it reloads as the same
  ``Affine`` readout;
* the input record's scalar ``weight``/``bias`` transform (``Input.transform``, never applied
  by netx) is written as lava_dl's writers do; an input block's neuron bias Var is the
  network's input drive, not a network parameter, and is not written.

File level (:func:`export_network`): the records ``layer/0 … n-1`` of the built blocks in
order, with the records netx needs between them: an ``input`` record without neuron group
(the input shape) when the first block is not an input block, a ``flatten`` record in front
of a dense block that follows a conv-like one, ``average`` and ``concat`` records (a concat
lists the record indices of the layers it joins, found through the connections of its
ports). The root attribute ``producer`` (:data:`lava_dl.core.records.PRODUCER`), which makes
netx apply slayer's reset and delay semantics, is kept as the loaded network ran: set when
its blocks have axonal delay lines or (without delays) it runs ``reset_mode='slayer'``,
removed when they have per-synapse delays or run ``reset_mode='lava-dl'``. A lava-dl
``simulation`` group of the loaded file (``Ts``, ``tSample``) is copied when that file is
still readable.

Not in the file (pass them to ``Network`` again): the Network's options ``reset_interval``,
``reset_offset``, ``spike_exp``, ``sparse_fc_layer``, ``input_message_bits`` (graded input
into a first block without input record), ``input_shape``; records skipped with
``skip_layers`` or cut by ``num_layers`` are not written (the file starts at the first built
block). lava-dl's legacy neuron fields (``theta``, ``wgtExp``, ``scaleRho``, ``tauRho``) and a
legacy type name (``LOIHI``) are written as the family's own (``CUBA``); sibling fields netx
only checks (a Delta input's ``activation``, a Sigma output's ``vThMant``) are not written.
"""

from __future__ import annotations

import os
import typing as ty
import warnings

import h5py
import numpy as np

from lava_dl.core import records
from lava_dl.core.synapse import WEIGHT_MAX, WEIGHT_MIN, kernel_from_lava, loihi_dense_weights

if ty.TYPE_CHECKING:  # pragma: no cover
    from lava.magma.core.process.ports.ports import AbstractPort
    from lava.magma.core.process.process import AbstractProcess
    from lava.magma.core.process.variable import Var

    from lava_dl.core.spec import NeuronSpec
    from lava_dl.proc.netx_blocks import AbstractBlock, Concat, Network

__all__ = ["NetxExportError", "NetxExportUnsupportedError", "export_block", "export_network", "neuron_fields",
           "var_value"]


#: The format's graded-spike flag: lava-dl and lava_dl's writers always write it for the families that
#: have it (other optional fields only when they differ from their default).
GRADED_SPIKE_KEY = "gradedSpike"


class NetxExportError(ValueError):
    """A netx block or network cannot be written as an hdf5 record; the message names the block."""


class NetxExportUnsupportedError(NetxExportError, NotImplementedError):
    """A block kind or neuron process that has no hdf5 form (also a ``NotImplementedError``)."""


# --------------------------------------------------------------------------
# Current values of Vars
# --------------------------------------------------------------------------

#: ``{id(block): record index}`` while :func:`export_network` writes (names the layer in errors).
_LAYER_OF: dict[int, int] = {}


def _describe(block: AbstractProcess) -> str:
    """``"Dense block 'Process_12'"`` (with ``layer i`` while a network is written)."""
    layer = _LAYER_OF.get(id(block))
    where = f"layer {layer}: " if layer is not None else ""
    return f"{where}{type(block).__name__} block {getattr(block, 'name', '?')!r}"


def var_value(var: Var) -> np.ndarray:
    """The current value of a Lava Var: from the runtime while the process is compiled and started
    (``var.get()``, following an alias such as a fused network's), else its ``init``.

    Parameters
    ----------
    var : lava.magma.core.process.variable.Var
        The Var.

    Returns
    -------
    numpy.ndarray
        The value (a sparse ``init`` as a dense array).
    """
    target = var
    while getattr(target, "aliased_var", None) is not None:
        target = target.aliased_var
    proc = getattr(target, "process", None)
    runtime = getattr(proc, "runtime", None) if proc is not None else None
    if runtime is not None and getattr(runtime, "_is_started", False):
        value = var.get()
        if value is None:  # Lava answers None while a non-blocking run is going on
            raise NetxExportError(f"Var {var.name!r} cannot be read while the network runs; pause or "
                                  f"wait for the run first")
    else:
        value = target.init
    if hasattr(value, "toarray"):
        value = value.toarray()
    return np.asarray(value)


def _ints(value: ty.Any, what: str) -> np.ndarray:
    """``value`` as int64; non-integer or non-finite values raise naming ``what``."""
    arr = np.asarray(value)
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iuf":
        raise NetxExportError(f"{what}: expected integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not (np.all(np.isfinite(arr)) and np.all(np.mod(arr, 1) == 0)):
        raise NetxExportError(f"{what}: holds non-integer or non-finite values")
    return arr.astype(np.int64)


def _scalar(var: Var, what: str) -> int:
    value = _ints(var_value(var), what).reshape(-1)
    if value.size != 1:
        raise NetxExportError(f"{what}: expected one value, got {value.size}")
    return int(value[0])


def _per_channel(values: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Per-neuron ``values`` of a layer of neuron ``shape`` as one value per channel (last axis)."""
    values = np.broadcast_to(np.asarray(values), shape)
    if len(shape) == 1:
        return np.array(values)
    flat = values.reshape(-1, shape[-1])
    if np.any(flat != flat[:1]):
        raise NetxExportError(f"{what}: the values vary inside a channel; the hdf5 format holds one value "
                              f"per layer or per channel")
    return np.array(flat[0])


def _compact(values: np.ndarray, shape: tuple[int, ...], what: str) -> int | np.ndarray:
    """One value (an ``int``) when all are equal, else one per channel."""
    values = np.broadcast_to(np.asarray(values), shape)
    if values.size and np.all(values == values.reshape(-1)[0]):
        return int(values.reshape(-1)[0])
    return _per_channel(values, shape, what)


# --------------------------------------------------------------------------
# Neurons
# --------------------------------------------------------------------------

def _spec_of(block: AbstractBlock, role: str) -> NeuronSpec:
    """The registered spec of ``block.neuron`` that netx reads back for a record of ``role``."""
    from lava_dl.core.registry import SPECS, spec_for_hdf5_type

    cls = type(block.neuron)
    spec = getattr(cls, "spec", None)
    if spec is None or spec not in SPECS:
        raise NetxExportUnsupportedError(
            f"{_describe(block)}: its neuron process {cls.__module__}.{cls.__qualname__} has no hdf5 "
            f"neuron type (only lava_dl's neuron processes, generated from a spec of "
            f"lava_dl.core.registry.SPECS, map to hdf5 neuron fields)")
    try:
        read_back = spec_for_hdf5_type(spec.hdf5_type, role)
    except NotImplementedError as err:
        raise NetxExportUnsupportedError(f"{_describe(block)}: {err}") from None
    if read_back is not spec:
        raise NetxExportUnsupportedError(
            f"{_describe(block)}: a {spec.name} neuron cannot be written in a record of role {role!r}: netx "
            f"reads hdf5 type {spec.hdf5_type!r} there as {read_back.name}")
    return spec


def _role(block: AbstractBlock, spec: NeuronSpec | None = None) -> str:
    from lava_dl.proc.netx_blocks import Input

    if isinstance(block, Input):
        return "input"
    spec = spec if spec is not None else getattr(type(block.neuron), "spec", None)
    return "output" if spec is not None and spec.extra.get("hdf5_marker") else "hidden"


def neuron_fields(block: AbstractBlock) -> dict[str, ty.Any]:
    """The hdf5 ``neuron`` fields ``{key: value}`` of a block's neurons, from their current Vars.

    The names come from the family's spec (see the module docstring); ``'type'`` is the spec's
    ``hdf5_type``.

    Parameters
    ----------
    block : lava_dl.proc.netx_blocks.AbstractBlock
        A block with neurons.

    Returns
    -------
    dict
        Fields for :func:`lava_dl.core.records.write_neuron`.

    Raises
    ------
    NetxExportUnsupportedError
        The neuron process has no hdf5 type (e.g. lava-nc's ``LIF``), or its family is read back as
        another process in this block's role.
    NetxExportError
        A parameter has no hdf5 form: it varies inside a channel, a deployment constant or an
        enumerated parameter holds a value the format cannot express.
    """
    role = _role(block)
    spec = _spec_of(block, role)
    neuron, shape = block.neuron, tuple(block.shape)
    where = _describe(block)
    fields: dict[str, ty.Any] = {"type": spec.hdf5_type}
    marker = spec.extra.get("hdf5_marker")
    if marker:
        fields[marker] = True
    enums = {param: (key, choices) for key, (param, choices) in spec.extra.get("hdf5_enums", {}).items()}
    for p in spec.params:
        what = f"{where}, neuron parameter {p.name}"
        values = _ints(var_value(getattr(neuron, p.name)), what)
        if p.hdf5_key is not None:
            if not p.required and p.hdf5_key != GRADED_SPIKE_KEY and np.all(values == p.default):
                continue  # e.g. cumError: lava_dl writes it only when set
            value = _compact(values, shape, what)
            if p.lo == 0 and p.hi == 1:  # flags (gradedSpike, cumError) are booleans in the format
                value = bool(value) if isinstance(value, int) else value.astype(bool)
            fields[p.hdf5_key] = value
        elif p.name == spec.bias_param:
            continue  # the record's 'bias'
        elif p.name in enums:
            key, choices = enums[p.name]
            value = _compact(values, shape, what)
            if not isinstance(value, int):
                raise NetxExportError(f"{what}: {key} differs between neurons; the hdf5 field holds one "
                                      f"value per layer")
            names = [name for name, code in choices.items() if code == value]
            if not names:
                raise NetxExportError(f"{what}: value {value} has no hdf5 {key} (known: {choices})")
            fields[key] = names[0]
        elif p.name in spec.deploy_constants:
            expected = int(spec.deploy_constants[p.name])
            if np.any(values != expected):
                raise NetxExportError(f"{what}: netx deploys {spec.name} neurons with {p.name} = {expected}; "
                                      f"values {np.unique(values)[:4].tolist()} cannot be written to hdf5")
        elif p.name == "spike_exp":
            continue  # a Network option (Network(spike_exp=...)), not a field of the file
        else:
            raise NetxExportError(f"{what}: {spec.name} stores no hdf5 field for it")
    fields.update(spec.extra.get("hdf5_constants", {}))
    return fields


def _bias(block: AbstractBlock, spec: NeuronSpec) -> np.ndarray | None:
    """The record's ``bias`` (one value per channel) from the neurons' bias Var: written when the block
    was given one or it is nonzero."""
    if spec.bias_param is None:
        return None
    values = _ints(var_value(getattr(block.neuron, spec.bias_param)),
                   f"{_describe(block)}, neuron parameter {spec.bias_param}")
    given = spec.bias_param in getattr(block, "neuron_params", {})
    if not given and not np.any(values):
        return None
    return _per_channel(values, tuple(block.shape), f"{_describe(block)}, bias ({spec.bias_param})")


def _is_integrator(fields: dict, bias: np.ndarray | None) -> bool:
    """Whether dense-record neuron ``fields`` are lava-dl's default integrator (a record without neuron)."""
    from lava_dl.netx.hdf5 import INTEGRATOR_NEURON

    if bias is not None or fields.get("type") != INTEGRATOR_NEURON["type"]:
        return False
    if any(not isinstance(fields.get(k), (int, bool)) or fields.get(k) != v
           for k, v in INTEGRATOR_NEURON.items() if k != "type"):
        return False
    from lava_dl.core.registry import spec_for_hdf5_type

    spec = spec_for_hdf5_type(INTEGRATOR_NEURON["type"])
    known = {"type", *INTEGRATOR_NEURON, *spec.extra.get("hdf5_constants", {})}
    return all(k in known or v is False or v == 0 for k, v in fields.items())


# --------------------------------------------------------------------------
# Synapses
# --------------------------------------------------------------------------

def _hdf5_units(weight: np.ndarray, shift: int, what: str) -> np.ndarray:
    """Integer ``weight * 2**shift`` in the 8-bit synaptic range (hdf5 units), or raise."""
    scaled = np.asarray(weight, dtype=np.float64) * 2.0 ** int(shift)
    if not np.all(np.mod(scaled, 1) == 0):
        raise NetxExportError(f"{what}: the weights times 2^{shift} (the synapse's exponent relative to the "
                              f"block's input units) are not integers; no hdf5 weight gives this synapse")
    if scaled.size and (scaled.min() < WEIGHT_MIN or scaled.max() > WEIGHT_MAX):
        raise NetxExportError(f"{what}: the weights in hdf5 units lie in [{scaled.min():g}, "
                              f"{scaled.max():g}], outside the synaptic range [{WEIGHT_MIN}, {WEIGHT_MAX}]")
    return scaled


def _param(synapse: AbstractProcess, name: str, default: int) -> int:
    """A synapse's integer setting: its Var when it has one, else its ``proc_params`` (lava-nc's Sparse)."""
    var = getattr(synapse, name, None)
    if var is not None and hasattr(var, "init"):
        return _scalar(var, f"{type(synapse).__name__}.{name}")
    return int(synapse.proc_params.get(name, default))


def _dense_weight(synapse: AbstractProcess, input_exp: int, what: str) -> np.ndarray:
    """The effective hdf5 weight ``(n_out, n_in)`` of a dense-like synapse (Dense, DelayDense, Sparse)."""
    params = synapse.proc_params
    weights = _ints(var_value(synapse.weights), what)
    bits = _param(synapse, "num_weight_bits", 8)
    exp = _param(synapse, "weight_exp", 0)
    built = params.get("weight_exp_built")
    if built is not None:  # lava-nc style change of proc_params['weight_exp'] (lava_dl's Dense)
        exp += int(params.get("weight_exp", 0)) - int(built)
    effective = loihi_dense_weights(weights, bits, params.get("sign_mode"))
    return _hdf5_units(effective, exp - int(input_exp), what)


def _weight_arg(block: AbstractBlock, spec: NeuronSpec, per_port: dict[str, np.ndarray],
                what: str) -> np.ndarray | dict[str, np.ndarray]:
    """``write_*``'s ``weight`` argument: one array, or ``{'real', 'imag'}`` for the complex datasets."""
    keys = dict(spec.extra.get("hdf5_weights", {"a_in": "weight"}))
    if set(keys) != set(per_port):
        raise NetxExportError(f"{what}: synapses feed {sorted(per_port)}, the {spec.name} record has weights "
                              f"for {sorted(keys)}")
    datasets = {keys[port]: arr for port, arr in per_port.items()}
    if list(datasets) == ["weight"]:
        return datasets["weight"]
    parts = {key.split("/", 1)[1]: arr for key, arr in datasets.items() if key.startswith("weight/")}
    if len(parts) != len(datasets):
        raise NetxExportError(f"{what}: weight datasets {sorted(datasets)} have no hdf5 writer")
    return parts


def _receiver_exp(block: AbstractBlock, spec: NeuronSpec) -> int:
    """log2 of the neurons' input units per weight unit (as netx builds it: 0, or ``offset + spike_exp``)."""
    offset = spec.extra.get("input_exp_offset")
    if offset is None:
        return 0
    spike_exp = _scalar(block.neuron.spike_exp, f"{_describe(block)}, spike_exp") \
        if "spike_exp" in spec.param_names else 6
    return int(offset) + spike_exp


def _delays_of_matrix(delays: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Per-synapse delays ``(n_out, n_in)`` in their shortest hdf5 form (a zero weight's delay is free)."""
    used = np.asarray(weight) != 0
    n_out, n_in = delays.shape
    rows = []
    for i in range(n_out):
        values = np.unique(delays[i][used[i]])
        rows.append(values[0] if values.size == 1 else (0 if values.size == 0 else None))
    if all(r is not None for r in rows):
        return np.asarray(rows, dtype=np.int64)
    cols = []
    for j in range(n_in):
        values = np.unique(delays[:, j][used[:, j]])
        cols.append(values[0] if values.size == 1 else (0 if values.size == 0 else None))
    if all(c is not None for c in cols) and n_in != n_out:
        return np.asarray(cols, dtype=np.int64)
    return np.where(used, delays, 0).astype(np.int64)


def _axon_delays(block: AbstractBlock) -> np.ndarray | None:
    if getattr(block, "axon", None) is None:
        return None
    values = _ints(var_value(block.axon.delays), f"{_describe(block)}, axonal delays")
    return _per_channel(values, tuple(block.shape), f"{_describe(block)}, axonal delays")


def _torch_pair(var: Var, what: str) -> tuple[int, int]:
    """A Lava ``(x, y)`` geometry Var as torch ``(H, W)``."""
    value = _ints(var_value(var), what).reshape(-1)
    return int(value[1]), int(value[0])


# --------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------

def _needs_lava_dl_semantics(block: AbstractProcess) -> bool:
    """Whether the block's delays sit on its input synapses (lava-dl's placement: an unstamped file's)."""
    return any(hasattr(s, "delays") for s in getattr(block, "synapses", {}).values())


def export_block(block: AbstractProcess, handle: h5py.Group) -> None:
    """Write the hdf5 layer record of a netx block into ``handle`` (an empty ``layer/<i>`` group).

    Parameters
    ----------
    block : lava_dl.proc.netx_blocks.AbstractBlock or lava_dl.proc.netx_blocks.Average
        The block (``Input``, ``ComplexInput``, ``Dense``, ``ComplexDense``, ``RecurrentDense``,
        ``Conv``, ``ConvT``, ``Pool``, ``Unpool``, ``Average``).
    handle : h5py.Group
        The empty group to write into.

    Notes
    -----
    The writers of :mod:`lava_dl.core.records` stamp the file as lava_dl's (root attribute
    ``producer``: netx applies slayer's axonal delays and resets). A block whose delays act on its
    input synapses (lava-dl's placement, ``DelayDense``) removes the stamp again so that its record
    reloads as it runs; :func:`export_network` settles the stamp for the whole file.

    Raises
    ------
    NetxExportUnsupportedError
        A block kind without a record of its own (``Concat``: use :func:`export_network`), or a
        neuron process without hdf5 type (e.g. lava-nc's ``LIF``).
    NetxExportError
        A value without hdf5 form (non-integer or out-of-range weights in hdf5 units, parameters
        varying inside a channel, ...).
    """
    from lava_dl.proc import netx_blocks as nb

    if not isinstance(handle, h5py.Group):
        raise TypeError(f"export_hdf5 writes into an h5py group (a 'layer/<i>' group), got "
                        f"{type(handle).__name__}")
    if isinstance(block, nb.Average):
        records.write_average(handle, int(block.shape[0]))
        return
    if isinstance(block, nb.Concat):
        raise NetxExportUnsupportedError(f"{_describe(block)}: a concat record lists the indices of the "
                                         f"layers it joins, which only the network knows; use "
                                         f"Network.export_hdf5")
    if not isinstance(block, nb.AbstractBlock):
        raise NetxExportUnsupportedError(f"{type(block).__name__} is not a netx block; no hdf5 record is "
                                         f"written for it")
    if isinstance(block, nb.Input):
        _write_input(block, handle)
    elif isinstance(block, nb.Dense):
        _write_dense(block, handle)
    elif isinstance(block, (nb.Conv, nb.Pool)):
        _write_conv_like(block, handle)
    else:
        raise NetxExportUnsupportedError(f"{_describe(block)}: no hdf5 record type is known for this block "
                                         f"kind")
    if _needs_lava_dl_semantics(block):
        handle.file.attrs.pop(records.PRODUCER[0], None)


def _write_input(block: AbstractBlock, group: h5py.Group) -> None:
    fields = neuron_fields(block)
    transform = block.transform if isinstance(block.transform, dict) else None
    weight = bias = None
    if transform is not None:
        weight, bias = int(transform.get("weight", 64)), int(transform.get("bias", 0))
    records.write_input(group, shape=tuple(block.shape)[::-1], neuron=fields, weight=weight, bias=bias)


def _write_dense(block: AbstractBlock, group: h5py.Group) -> None:
    from lava_dl.proc.netx_blocks import RecurrentDense

    where = _describe(block)
    fields = neuron_fields(block)
    spec = type(block.neuron).spec
    bias = _bias(block, spec)
    weights, delays = {}, None
    for port, synapse in block.synapses.items():
        weights[port] = _dense_weight(synapse, block.input_message_exp, f"{where}, synapse of {port}")
        if hasattr(synapse, "delays"):
            matrix = _ints(var_value(synapse.delays), f"{where}, synapse delays of {port}")
            form = _delays_of_matrix(matrix, weights[port])
            if delays is not None and not np.array_equal(form, delays):
                raise NetxExportError(f"{where}: the synapses of the neuron's ports have different delays; "
                                      f"the record holds one delay")
            delays = form
    axonal = _axon_delays(block)
    if axonal is not None and delays is not None:
        raise NetxExportError(f"{where}: both axonal and per-synapse delays; the record holds one delay")
    weight = _weight_arg(block, spec, weights, where)
    rec = {}
    if isinstance(block, RecurrentDense):
        exp = _receiver_exp(block, spec) + int(block.output_message_exp)
        rec_weights = {port: _dense_weight(s, exp, f"{where}, recurrent synapse of {port}")
                       for port, s in block.synapses_rec.items()}
        rec["weight_rec"] = _weight_arg(block, spec, rec_weights, where)
        bias_rec = _ints(var_value(block.synapse_rec.a_bias), f"{where}, recurrent bias")
        if np.any(bias_rec):
            rec["bias_rec"] = bias_rec.reshape(-1)
    elif _is_integrator(fields, bias):
        fields = None
    delay = axonal
    matrix_delay = None
    if delays is not None:
        if delays.ndim == 2:
            matrix_delay = delays
        else:
            delay = delays
    records.write_dense(group, shape=(int(np.prod(block.shape)),), weight=weight, bias=bias, neuron=fields,
                        delay=delay, **rec)
    if matrix_delay is not None:  # write_dense flattens a delay; the full matrix keeps its two axes
        records._float32(group, "delay", matrix_delay)


def _write_conv_like(block: AbstractBlock, group: h5py.Group) -> None:
    from lava_dl.proc.netx_blocks import ConvT, Pool, Unpool

    where = _describe(block)
    fields = neuron_fields(block)
    spec = type(block.neuron).spec
    shape = tuple(block.shape)[::-1]
    delay = _axon_delays(block)
    synapse = block.synapse
    geometry = dict(stride=_torch_pair(synapse.stride, f"{where}, stride"),
                    padding=_torch_pair(synapse.padding, f"{where}, padding"),
                    dilation=_torch_pair(synapse.dilation, f"{where}, dilation"))
    weights = {}
    for port, syn in block.synapses.items():
        what = f"{where}, synapse of {port}"
        lava = _hdf5_units(_ints(var_value(syn.weight), what),
                           _scalar(syn.weight_exp, f"{what}: weight_exp") - block.input_message_exp, what)
        torch_kernel = kernel_from_lava(lava)
        weights[port] = torch_kernel[None, None] if isinstance(block, Pool) else torch_kernel
        for key, value in (("stride", syn.stride), ("padding", syn.padding), ("dilation", syn.dilation)):
            if _torch_pair(value, f"{what}, {key}") != geometry[key]:
                raise NetxExportError(f"{what}: its {key} differs from the other port's; the record holds "
                                      f"one geometry")
    weight = _weight_arg(block, spec, weights, where)
    first = next(iter(weights.values()))
    kernel = tuple(int(k) for k in first.shape[2:])
    if isinstance(block, Pool):
        if _bias(block, spec) is not None:
            raise NetxExportError(f"{where}: a {type(block).__name__.lower()} record has no bias, but the "
                                  f"neurons' {spec.bias_param} is nonzero")
        write = records.write_unpool if isinstance(block, Unpool) else records.write_pool
        write(group, shape=shape, weight=weight, kernel_size=kernel, neuron=fields, delay=delay, **geometry)
        return
    write = records.write_conv_transpose if isinstance(block, ConvT) else records.write_conv
    write(group, shape=shape, weight=weight, in_channels=int(synapse.input_shape[-1]),
          out_channels=int(block.shape[-1]), kernel_size=kernel,
          groups=_scalar(synapse.groups, f"{where}, groups"), bias=_bias(block, spec), neuron=fields,
          delay=delay, **geometry)


# --------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------

def _source_block(port: AbstractPort, blocks: dict[int, int]) -> AbstractProcess | None:
    """The block whose ``out`` feeds ``port`` (through a Concat's aligning delay line, if any)."""
    seen = 0
    while seen < 8:
        seen += 1
        sources = list(port.in_connections)
        if len(sources) != 1:
            return None
        src = sources[0]
        proc = src.process
        if id(proc) in blocks:
            return proc
        if hasattr(proc, "s_in") and hasattr(proc, "delays"):  # an aligner: AxonDelay s_in -> s_out
            port = proc.s_in
            continue
        return None
    return None


def _write_concat(block: Concat, group: h5py.Group, index_of: dict[int, int]) -> None:
    ids = []
    for port in block.join.inputs:
        source = _source_block(port, index_of)
        if source is None:
            raise NetxExportError(f"{_describe(block)}: an input is not fed by a layer of this network")
        ids.append(index_of[id(source)])
    previous = max(index_of.values())
    if previous not in ids:
        raise NetxExportUnsupportedError(f"{_describe(block)}: it does not join the layer in front of it "
                                         f"(record {previous}); an hdf5 concat always joins that layer")
    records.write_concat(group, shape=tuple(block.shape)[::-1], layers=ids)


def _stamp(net: Network, layers: ty.Sequence[AbstractProcess]) -> bool:
    """Whether the written file must carry lava_dl's ``producer`` stamp to reload as ``net`` runs."""
    axonal = [i for i, b in enumerate(layers) if getattr(b, "axon", None) is not None]
    synaptic = [i for i, b in enumerate(layers) if _needs_lava_dl_semantics(b)]
    if axonal and synaptic:
        raise NetxExportError(f"layers {axonal} have axonal delays and layers {synaptic} per-synapse "
                              f"(lava-dl) delays; one file holds delays of one kind")
    reset_mode = getattr(net, "reset_mode", "slayer")
    if axonal or synaptic:
        stamp = bool(axonal)
        if stamp != (reset_mode == "slayer"):
            kind = "axonal" if stamp else "lava-dl"
            warnings.warn(f"the network runs reset_mode={reset_mode!r}, but its {kind} delays need a file "
                          f"that defaults to the other reset mode; pass reset_mode={reset_mode!r} when "
                          f"loading the written file", UserWarning, stacklevel=4)
        return stamp
    return reset_mode == "slayer"


def export_network(net: Network, filename_or_handle: str | os.PathLike | h5py.Group) -> None:
    """Write a netx network (:class:`lava_dl.proc.netx_blocks.Network`) as an hdf5 file.

    Parameters
    ----------
    net : lava_dl.proc.netx_blocks.Network
        The network (its blocks' current Var values are written, see the module docstring).
    filename_or_handle : str, path-like or h5py.Group
        The file to create (overwritten), or an open h5py file/group to write the ``layer``
        group into (the stamp goes to its file's root attributes).

    Raises
    ------
    NetxExportError, NetxExportUnsupportedError
        As :func:`export_block`, naming the layer; also for a network whose delays need both
        lava_dl's and lava-dl's semantics, or a concat that does not join the layer in front of it.
    """
    if isinstance(filename_or_handle, (h5py.File, h5py.Group)):
        _write_network(net, filename_or_handle)
        return
    path = os.fspath(filename_or_handle)
    if os.path.abspath(path) == os.path.abspath(str(getattr(net, "filename", ""))):
        raise NetxExportError(f"{path}: the network was loaded from this file; write to another path")
    with h5py.File(path, "w") as f:
        _write_network(net, f)


def _write_network(net: Network, root: h5py.Group) -> None:
    from lava_dl.proc import netx_blocks as nb

    if "layer" in root:
        raise NetxExportError(f"{root.name}: already holds a 'layer' group")
    layers = list(net.layers)
    if int(getattr(net, "skip_layers", 0) or 0) > 0:
        warnings.warn(f"the network skipped its first {net.skip_layers} records: the file starts at the "
                      f"first built block; load it with input_message_bits={net.in_layer.input_message_bits}",
                      UserWarning, stacklevel=3)
    stamp = _stamp(net, layers)
    spike_exp = int(getattr(net, "spike_exp", 6))
    specs = [getattr(type(getattr(b, "neuron", None)), "spec", None) for b in layers]
    if spike_exp != 6 and any(spec is not None and "spike_exp" in spec.param_names for spec in specs):
        warnings.warn(f"the network was loaded with spike_exp={spike_exp}, a Network option the file "
                      f"does not hold; load the written file with spike_exp={spike_exp}", UserWarning,
                      stacklevel=3)
    group = root.create_group("layer")
    index_of: dict[int, int] = {}
    count = 0

    def new() -> h5py.Group:
        nonlocal count
        count += 1
        return group.create_group(str(count - 1))

    first = layers[0]
    if not isinstance(first, nb.Input):
        records.write_input(new(), shape=tuple(first.inp.shape)[::-1])
    previous = None
    for block in layers:
        if isinstance(block, nb.Dense) and previous is not None and len(previous.shape) == 3:
            records.write_flatten(new(), (int(np.prod(previous.shape)), 1, 1))
        target = new()
        _LAYER_OF[id(block)] = count - 1
        try:
            if isinstance(block, nb.Concat):
                _write_concat(block, target, index_of)
            else:
                export_block(block, target)
        finally:
            _LAYER_OF.pop(id(block), None)
        index_of[id(block)] = count - 1
        previous = block
    key, value = records.PRODUCER
    if stamp:
        root.file.attrs[key] = value
    else:
        root.file.attrs.pop(key, None)
    _copy_simulation(net, root)


def _copy_simulation(net: Network, root: h5py.Group) -> None:
    """Copy lava-dl's ``simulation`` group (``Ts``, ``tSample``) of the loaded file, when it is readable."""
    path = str(getattr(net, "filename", ""))
    if "simulation" in root or not path or not os.path.isfile(path):
        return
    try:
        with h5py.File(path, "r") as f:
            if isinstance(f.get("simulation"), h5py.Group):
                f.copy(f["simulation"], root, "simulation")
    except (OSError, RuntimeError, KeyError, ValueError, TypeError):
        return
