"""Build a Lava network from an hdf5 file (lava-dl's ``netx.hdf5`` format).

:class:`Network` (defined in :mod:`lava_dl.proc.netx_blocks` so Lava finds its
model) calls :func:`build_layers`, which reads the records ``layer/0 … n-1``
in order and creates one block per ``input`` (with neuron), ``dense`` and
``conv`` record; ``flatten`` makes the next dense block read the previous
``(x, y, c)`` output in torch's ``(C, H, W)`` flattening order.

Neuron groups are read generically: the family comes from
:func:`lava_dl.core.registry.spec_for_hdf5_type`, every spec parameter with an
``hdf5_key`` is read from the group, the layer ``bias`` goes to
``spec.bias_param`` and ``spec.deploy_constants`` are added. No family's field
names are written here.

Deviations from lava-dl 0.6 (all deliberate):

* malformed files raise :class:`~lava_dl.netx.utils.Hdf5FormatError` naming the
  layer and field (lava-dl: KeyError/AttributeError, or silently skipped records);
* the Input block's ``inp`` port is connected to its neurons' ``a_in``;
* the file is read completely and closed during construction.

A ``dense`` record without ``neuron`` group (slayer ``Affine`` with
``dynamics=False``) gets lava-dl's default "integrator": a CUBA neuron with
``iDecay = 0``, ``vDecay = 4096`` and ``vThMant = 1 << 17`` (lava-dl's
``1 << 18 - 1``). It never spikes and its ``u`` is the running sum of the
synaptic input (slayer's Affine output is the per-step sum instead); read its
``v``/``u`` to use it as a readout.
"""

from __future__ import annotations

import typing as ty

import h5py
import numpy as np

from lava_dl.core.fixed_point import GRADED_MESSAGE_BITS, GRADED_MESSAGE_EXP
from lava_dl.core.registry import spec_for_hdf5_type
from lava_dl.netx.utils import (
    Hdf5FormatError,
    decode_str,
    neuron_process_for,
    optimize_weight_bits,
    table_header,
    table_row,
)
from lava_dl.proc.netx_blocks import AbstractBlock, Conv, Dense, Input, Network, broadcast_bias

__all__ = ["Network", "Hdf5FormatError", "build_layers", "neuron_params", "read_layer_records",
           "INTEGRATOR_NEURON", "NOT_IMPLEMENTED_TYPES"]

#: hdf5 neuron fields lava-dl uses for a dense record without neuron group.
INTEGRATOR_NEURON: dict = {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17}

#: Layer types that exist in the format but are not supported yet.
NOT_IMPLEMENTED_TYPES = ("pool", "convT", "unpool", "average", "concat", "dense_rec", "dense_comp")

_SUPPORTED_TYPES = ("input", "dense", "conv", "flatten")


class _Record:
    """Read access to one ``layer/<i>`` group with errors naming the layer and field."""

    def __init__(self, group: h5py.Group, index: int) -> None:
        self.group = group
        self.index = index

    def error(self, field: str, message: str) -> Hdf5FormatError:
        return Hdf5FormatError(f"layer {self.index}, field '{field}': {message}")

    def __contains__(self, key: str) -> bool:
        return key in self.group

    def raw(self, key: str, group: h5py.Group | None = None, prefix: str = "") -> ty.Any:
        group = self.group if group is None else group
        if key not in group:
            raise self.error(prefix + key, "required field is missing")
        obj = group[key]
        if not isinstance(obj, h5py.Dataset):
            raise self.error(prefix + key, "expected a dataset, found a group")
        return obj[()]

    def string(self, key: str, group: h5py.Group | None = None, prefix: str = "") -> str:
        try:
            return decode_str(self.raw(key, group, prefix))
        except (ValueError, UnicodeDecodeError) as err:
            raise self.error(prefix + key, f"cannot decode a string: {err}") from err

    def ints(self, key: str, ndim: int | None = None) -> np.ndarray:
        """Integer array (lava-dl stores integers as float32; fractional values are an error)."""
        value = np.asarray(self.raw(key))
        if value.dtype.kind not in "iufb":
            raise self.error(key, f"expected numbers, got dtype {value.dtype}")
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise self.error(key, "contains non-finite values")
        if value.dtype.kind == "f" and not np.all(np.mod(value, 1) == 0):
            raise self.error(key, "holds non-integer values (Loihi weights, biases and geometry are "
                                  "integers)")
        value = value.astype(np.int64)
        if ndim is not None and value.ndim != ndim:
            raise self.error(key, f"expected a {ndim}-D array, got shape {value.shape}")
        return value

    def pair(self, key: str) -> np.ndarray:
        """Kernel geometry in torch (H, W) order, returned reversed to Lava (x, y)."""
        value = self.ints(key).reshape(-1)
        if value.size == 1:
            value = np.repeat(value, 2)
        if value.size != 2:
            raise self.error(key, f"expected a scalar or an (H, W) pair, got {value.size} values")
        return value[::-1].copy()

    def shape(self) -> tuple[int, ...]:
        value = self.ints("shape").reshape(-1)
        if value.size == 0 or np.any(value <= 0):
            raise self.error("shape", f"expected positive sizes, got {value.tolist()}")
        return tuple(int(v) for v in value)


def read_layer_records(f: h5py.File) -> list[h5py.Group]:
    """The ``layer/<i>`` groups in order; raise if the names are not ``0 … n-1``."""
    if "layer" not in f or not isinstance(f["layer"], h5py.Group):
        raise Hdf5FormatError("the file has no 'layer' group")
    layer = f["layer"]
    names = list(layer.keys())
    indices = []
    for name in names:
        if not name.isdigit():
            raise Hdf5FormatError(f"layer group name {name!r} is not a layer index")
        indices.append(int(name))
    if sorted(indices) != list(range(len(indices))):
        raise Hdf5FormatError(f"layer group names must be contiguous 0..{len(indices) - 1}, "
                              f"got {sorted(indices)}")
    return [layer[str(i)] for i in range(len(indices))]


def neuron_params(rec: _Record, neuron: h5py.Group | dict, *, role: str = "hidden", block_index: int = 0,
                  layer_type: str = "dense", options: dict | None = None,
                  synapses_in_front: int | None = None) -> dict:
    """Neuron process and its keyword arguments from an hdf5 ``neuron`` group (or dict).

    ``role`` picks the process where one hdf5 type has several (``input``/``hidden``/
    ``output``); ``block_index``, ``layer_type`` and ``synapses_in_front`` (Lava synapses
    between the network input and this block; default: ``block_index``) place the block
    for per-sample resets; ``options`` are the Network's ``reset_interval``,
    ``reset_offset``, ``reset_mode`` and ``spike_exp``.
    """
    options = options or {}
    if isinstance(neuron, dict):
        fields = dict(neuron)
    else:
        fields = {key: None for key in neuron.keys()}
    if "type" not in fields:
        raise rec.error("neuron/type", "required field is missing")
    if isinstance(neuron, dict):
        type_name = str(fields["type"])
    else:
        type_name = rec.string("type", neuron, "neuron/")
    try:
        spec = spec_for_hdf5_type(type_name, role)
    except (NotImplementedError, KeyError) as err:
        raise rec.error("neuron/type", str(err)) from err

    def field(key):
        return fields[key] if isinstance(neuron, dict) else rec.raw(key, neuron, "neuron/")

    params: dict = {"neuron_proc": neuron_process_for(spec)}
    for p in spec.params:
        if p.hdf5_key is None:
            continue
        key = f"neuron/{p.hdf5_key}"
        if p.hdf5_key not in fields:
            if not p.required:
                continue
            raise rec.error(key, "required field is missing")
        value = field(p.hdf5_key)
        try:
            params[p.name] = p.check(value)
        except (TypeError, ValueError) as err:
            raise rec.error(key, str(err)) from err
    for key, (param, choices) in spec.extra.get("hdf5_enums", {}).items():
        if key in fields:
            value = decode_str(field(key))
            if value not in choices:
                raise NotImplementedError(f"layer {rec.index}, field 'neuron/{key}': {value!r} cannot be "
                                          f"deployed; supported: {sorted(choices)}")
            params[param] = choices[value]
    for key, expected in spec.extra.get("hdf5_constants", {}).items():
        if key in fields:
            value = field(key)
            if np.any(np.asarray(value) != expected):
                raise NotImplementedError(f"layer {rec.index}, field 'neuron/{key}': {spec.name} neurons "
                                          f"deploy only with {key} = {expected}, got {value}")
    # spiking families: a 'graded' parameter; sigma-delta neurons are graded by nature
    graded = np.asarray(params.get("graded", 0))
    if "graded" not in spec.param_names and "gradedSpike" in fields and np.any(field("gradedSpike")) \
            and not spec.extra.get("graded_spike", False):
        raise NotImplementedError(f"layer {rec.index}, field 'neuron/gradedSpike': {spec.name} neurons "
                                  f"have no graded-spike mode")
    if graded.any() and not graded.all():
        raise rec.error("neuron/gradedSpike", "graded and binary spikes mixed in one layer")
    params.update(spec.deploy_constants)
    if "spike_exp" in spec.param_names:
        params["spike_exp"] = int(options.get("spike_exp", 6))
    if options.get("reset_interval") is not None:
        offset, hold = _reset_phase(options.get("reset_mode", "slayer"), int(options.get("reset_offset", 0)),
                                    block_index, layer_type, spec,
                                    block_index if synapses_in_front is None else synapses_in_front)
        params["reset_interval"] = int(options["reset_interval"])
        params["reset_offset"] = offset
        params["reset_hold"] = hold
    params["bias_key"] = spec.bias_param
    params["num_message_bits"] = int(spec.extra.get("wire_message_bits", spec.out_message_bits))
    if graded.any():
        params["num_message_bits"] = GRADED_MESSAGE_BITS
        params["message_exp"] = GRADED_MESSAGE_EXP
    return params


def _bias(rec: _Record, params: dict, shape: tuple[int, ...]) -> np.ndarray | None:
    if "bias" not in rec:
        return None
    if params.get("bias_key") is None:
        raise rec.error("bias", "the neuron family takes no bias")
    bias = rec.ints("bias")
    try:
        return broadcast_bias(bias, shape)
    except ValueError as err:
        raise rec.error("bias", str(err)) from err


def _check_graded_receiver(rec: _Record, params: dict, message_exp: int) -> None:
    """Graded spikes of a spiking family feed neurons with Loihi's ``a_in << 6`` input only."""
    spec = params["neuron_proc"].spec
    if message_exp and "hdf5_role" in spec.extra:
        raise NotImplementedError(f"layer {rec.index}: graded spikes of the previous layer cannot feed "
                                  f"{spec.name} neurons (their input has no graded-payload scaling)")


def _input_block(rec: _Record, shape_xyc: tuple[int, ...], params: dict, message_bits: int) -> Input:
    transform = {"weight": 64, "bias": 0}
    for key in ("weight", "bias"):
        if key in rec:
            transform[key] = int(rec.ints(key).reshape(-1)[0])
    return Input(shape=shape_xyc, neuron_params=params, transform=transform,
                 input_message_bits=message_bits)


def _role(group: h5py.Group) -> str:
    """Layer role of a (non-input) record: ``output`` when marked ``sigma_output``."""
    return "output" if "sigma_output" in group else "hidden"


def _weight_keys(params: dict) -> dict[str, str]:
    """hdf5 weight dataset feeding each input port of the neuron (``{'a_in': 'weight'}`` usually)."""
    spec = params["neuron_proc"].spec
    return dict(spec.extra.get("hdf5_weights", {"a_in": "weight"}))


def _dense_weight(rec: _Record, n_out: int, n_in: int | None, key: str = "weight") -> np.ndarray:
    if key in rec and isinstance(rec.group[key], h5py.Group):
        raise rec.error(key, "expected a dataset; complex weights are 'weight/real' and 'weight/imag' and "
                             "need a resonator neuron")
    weight = rec.ints(key)
    if weight.ndim == 1:  # legacy files
        if weight.size % n_out:
            raise rec.error(key, f"1-D weight of size {weight.size} cannot be reshaped to "
                                      f"({n_out}, -1)")
        weight = weight.reshape(n_out, -1)
    elif weight.ndim > 2:  # conv-style (out, in, 1, 1, 1)
        if int(np.prod(weight.shape[2:])) != 1:
            raise rec.error(key, f"expected a 2-D (N_out, N_in) weight, got shape {weight.shape}")
        weight = weight.reshape(weight.shape[0], weight.shape[1])
    if weight.shape[0] != n_out:
        raise rec.error(key, f"expected {n_out} rows (shape {n_out}), got shape {weight.shape}")
    if n_in is not None and weight.shape[1] != n_in:
        raise rec.error(key, f"expected {n_in} columns (input size {n_in}), got shape {weight.shape}")
    return weight


def _conv_geometry(rec: _Record, input_shape: tuple[int, ...], shape_xyc: tuple[int, ...],
                   key: str = "weight") -> dict:
    weight = rec.ints(key)
    if weight.ndim == 5 and weight.shape[-1] == 1:
        weight = weight[..., 0]
    if weight.ndim != 4:
        raise rec.error(key, f"expected (C_out, C_in/groups, kH, kW), got shape {weight.shape}")
    stride, padding, dilation = rec.pair("stride"), rec.pair("padding"), rec.pair("dilation")
    groups = int(rec.ints("groups").reshape(-1)[0])
    c_out, c_in_g, k_h, k_w = weight.shape
    if len(input_shape) != 3:
        raise rec.error(key, f"conv needs an (x, y, c) input, got input shape {input_shape}")
    if groups < 1 or input_shape[2] % groups or c_out % groups:
        raise rec.error("groups", f"{groups} groups do not divide {input_shape[2]} input / "
                                  f"{c_out} output channels")
    if c_in_g * groups != input_shape[2]:
        raise rec.error(key, f"weight shape {weight.shape} expects {c_in_g * groups} input "
                                  f"channels, the input has {input_shape[2]}")
    if "kernelSize" in rec:
        ks = rec.pair("kernelSize")[::-1]
        if tuple(ks) != (k_h, k_w):
            raise rec.error("kernelSize", f"{tuple(ks)} does not match weight shape {weight.shape}")
    for key in ("inChannels", "outChannels"):
        if key in rec:
            expected = input_shape[2] if key == "inChannels" else c_out
            if int(rec.ints(key).reshape(-1)[0]) != expected:
                raise rec.error(key, f"expected {expected}")
    if np.any(stride < 1) or np.any(dilation < 1) or np.any(padding < 0):
        raise rec.error("stride", f"invalid geometry stride={stride}, padding={padding}, "
                                  f"dilation={dilation} (x, y)")
    kernel_xy = np.array([k_w, k_h])
    out_xy = (np.array(input_shape[:2]) + 2 * padding - dilation * (kernel_xy - 1) - 1) // stride + 1
    expected = (int(out_xy[0]), int(out_xy[1]), c_out)
    if expected != shape_xyc:
        raise rec.error("shape", f"record shape (x, y, c) {shape_xyc} differs from the conv output "
                                 f"{expected} for input {input_shape}")
    lava_weight = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))
    return dict(weight=lava_weight, stride=stride, padding=padding, dilation=dilation, groups=groups,
                kernel=kernel_xy)


def build_layers(
    path: str,
    *,
    num_layers: int | None = None,
    skip_layers: int = 0,
    input_message_bits: int = 0,
    input_shape: ty.Sequence[int] | None = None,
    reset_interval: int | None = None,
    reset_offset: int = 0,
    reset_mode: str = "slayer",
    spike_exp: int = 6,
    sparse_fc_layer: bool = False,
) -> tuple[list[AbstractBlock], str]:
    """Create and connect the blocks described by an hdf5 file.

    Parameters are those of :class:`Network`. Returns the blocks and the summary table.

    Raises
    ------
    Hdf5FormatError
        Malformed record (message names layer and field).
    NotImplementedError
        Record types not supported yet (pool, convT, unpool, average, concat, dense_rec).
    """
    options = dict(reset_interval=reset_interval, reset_offset=reset_offset, reset_mode=reset_mode,
                   spike_exp=spike_exp)
    if reset_interval is not None and int(reset_interval) < 1:
        raise ValueError(f"reset_interval must be >= 1 or None, got {reset_interval}")
    if reset_mode not in RESET_MODES:
        raise ValueError(f"reset_mode must be one of {RESET_MODES}, got {reset_mode!r}")
    layers: list[AbstractBlock] = []
    rows = [table_header()]
    message_bits = int(input_message_bits)
    message_exp = 0  # weight exponent the next synapse adds for the incoming messages
    flatten_next = False
    cur_shape: tuple[int, ...] | None = tuple(int(s) for s in input_shape) if input_shape else None

    with h5py.File(path, "r") as f:
        records = read_layer_records(f)
        count = len(records) if num_layers is None else min(len(records), int(num_layers))
        for i in range(count):
            rec = _Record(records[i], i)
            layer_type = rec.string("type")
            skipped = i < skip_layers
            # Lava synapses between the network input and this block (an input block has none).
            in_front = len(layers) + (0 if layer_type == "input" or (layers and isinstance(layers[0], Input))
                                      else 1)
            place = dict(block_index=len(layers), layer_type=layer_type, options=options,
                         synapses_in_front=in_front)
            if layer_type in NOT_IMPLEMENTED_TYPES:
                raise NotImplementedError(f"layer {i}: layer type '{layer_type}' is not implemented yet")
            if layer_type not in _SUPPORTED_TYPES:
                raise rec.error("type", f"unknown layer type {layer_type!r}; expected one of "
                                        f"{list(_SUPPORTED_TYPES + NOT_IMPLEMENTED_TYPES)}")
            if layer_type == "flatten":
                flatten_next = True
                continue
            shape = rec.shape()
            if layer_type == "input":
                shape_xyc = shape[::-1]
                if "neuron" not in rec:
                    cur_shape = shape_xyc
                    continue
                params = neuron_params(rec, rec.group["neuron"], role="input", **place)
                if skipped:
                    cur_shape = shape_xyc
                    continue
                block = _input_block(rec, shape_xyc, params, message_bits)
                dims = shape_xyc if len(shape_xyc) == 3 else (1, 1, int(np.prod(shape_xyc)))
                row = table_row("Input", *dims)
            elif layer_type == "conv":
                if layers:
                    cur_shape = layers[-1].shape
                if cur_shape is None:
                    raise Hdf5FormatError(f"layer {i}: input shape could not be inferred; pass "
                                          f"input_shape=(x, y, c) to Network")
                shape_xyc = shape[::-1]
                if len(shape_xyc) != 3:
                    raise rec.error("shape", f"conv shape must be (C, H, W), got {shape}")
                group = _neuron_group(rec)
                params = neuron_params(rec, group, role=_role(group), **place)
                weights = {}
                for port, key in _weight_keys(params).items():
                    geometry = _conv_geometry(rec, cur_shape, shape_xyc, key)
                    weights[port] = geometry.pop("weight")
                bias = _bias(rec, params, shape_xyc)
                if skipped:
                    cur_shape = shape_xyc
                    continue
                kernel = geometry.pop("kernel")
                _check_graded_receiver(rec, params, message_exp)
                block = Conv(shape=shape_xyc, input_shape=cur_shape, neuron_params=params, bias=bias,
                             input_message_bits=message_bits, input_message_exp=message_exp, weights=weights,
                             **geometry)
                row = table_row("Conv", *shape_xyc, kernel=kernel, stride=geometry["stride"],
                                padding=geometry["padding"], dilation=geometry["dilation"],
                                groups=geometry["groups"], delay="delay" in rec)
            else:  # dense
                n_out = int(np.prod(shape))
                n_in = None
                if layers and not skipped:
                    n_in = int(np.prod(layers[-1].shape))
                    if not flatten_next and len(layers[-1].shape) != 1:
                        raise Hdf5FormatError(
                            f"layer {i}: dense layer after a block of shape {layers[-1].shape} needs a "
                            f"'flatten' record in between")
                if "delay" in rec:
                    raise NotImplementedError(f"layer {i}: dense axonal 'delay' is not supported yet")
                if "neuron" in rec:
                    group = _neuron_group(rec)
                    params = neuron_params(rec, group, role=_role(group), **place)
                else:
                    params = neuron_params(rec, INTEGRATOR_NEURON, **place)
                weights = {}
                for port, key in _weight_keys(params).items():
                    weight = _dense_weight(rec, n_out, n_in, key)
                    try:
                        weights[port] = optimize_weight_bits(weight)
                    except ValueError as err:
                        raise rec.error(key, str(err)) from err
                bias = _bias(rec, params, (n_out,))
                if skipped:
                    continue
                _check_graded_receiver(rec, params, message_exp)
                block = Dense(shape=(n_out,), neuron_params=params, weights=weights, bias=bias,
                              input_message_bits=message_bits, input_message_exp=message_exp,
                              sparse_synapse=sparse_fc_layer)
                row = table_row("Dense", 1, 1, n_out, delay="delay" in rec)

            message_bits = block.output_message_bits
            message_exp = block.output_message_exp
            if layers:
                prev = layers[-1]
                if flatten_next and isinstance(block, Dense) and len(prev.shape) == 3:
                    prev.out.transpose([2, 1, 0]).flatten().connect(block.inp)
                else:
                    prev.out.connect(block.inp)
            if isinstance(block, Dense):
                flatten_next = False
            layers.append(block)
            rows.append(row)

    if not layers:
        raise Hdf5FormatError(f"{path}: no block was built (num_layers={num_layers}, "
                              f"skip_layers={skip_layers})")
    return layers, "\n".join(rows)


RESET_MODES = ("slayer", "lava-dl")


def _reset_phase(mode: str, reset_offset: int, block_index: int, layer_type: str, spec,
                 synapses_in_front: int) -> tuple[int, bool]:
    """Reset phase and hold flag of the next block for ``reset_interval`` runs.

    ``"slayer"`` reproduces slayer's per-sample evaluation exactly: a sample's first
    input leaves the source (or the input block's neuron) at step ``reset_offset + 1``;
    every block behind a synapse sees its slayer index 0 one step later, whatever its
    depth, because slayer's ``delay_shift`` and Lava's synaptic latency line up. So all
    such blocks spend step ``reset_offset + 1`` of each sample held in reset (that step
    carries the previous sample's last output, which slayer's delay shift drops), and
    an input block (no synapse in front) is zeroed before step ``reset_offset + 1``.

    Families whose slayer blocks have no ``delay_shift`` (sigma-delta:
    ``spec.extra['slayer_delay_shift']`` is False) see a sample one step later per
    synapse, so a block with ``n`` synapses in front of it is zeroed before step
    ``reset_offset + 1 + n`` and nothing spills over from the previous sample (``n`` is
    the block index ``k`` behind an input block, ``k + 1`` when the network input
    enters through the first block's synapse).

    ``"lava-dl"`` is lava-dl 0.6 netx: block ``k`` zeroed before step
    ``reset_offset + 1 + k``. Exact only for networks without bias whose blocks never
    fire on the previous sample's last step (legacy files such as ``tiny.net`` assume it).
    """
    if mode == "lava-dl":
        return reset_offset + 1 + block_index, False
    if not spec.extra.get("slayer_delay_shift", True):
        return reset_offset + 1 + synapses_in_front, False
    return reset_offset + 1, layer_type != "input"


def _neuron_group(rec: _Record) -> h5py.Group:
    if "neuron" not in rec:
        raise rec.error("neuron", "required group is missing")
    group = rec.group["neuron"]
    if not isinstance(group, h5py.Group):
        raise rec.error("neuron", "expected a group")
    return group
