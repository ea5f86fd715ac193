"""Build a Lava network from an hdf5 file (lava-dl's ``netx.hdf5`` format).

:class:`Network` (defined in :mod:`lava_dl.proc.netx_blocks` so Lava finds its
model) calls :func:`build_layers`, which reads the records ``layer/0 … n-1``
in order and creates one block per ``input`` (with neuron), ``dense``,
``dense_rec``, ``conv``, ``convT``, ``pool``, ``unpool``, ``average`` and ``concat`` record
(skip connections: the previous layer plus the ``layers`` listed, joined channel-wise);
``flatten`` makes the next dense block read the previous ``(x, y, c)`` output in
torch's ``(C, H, W)`` flattening order.

Messages between families: every synapse adds to its weight exponent the sender's
message exponent (graded spikes of the spiking families: -12; sigma-delta:
``-(6 + spike_exp)``; binary spikes: 0) and the receiver's input exponent
(sigma-delta neurons: ``6 + spike_exp``; spiking families: 0), so each family's
messages reach every family's neurons in their own units (e.g. sigma-delta
messages into resonator synapses: exponent -12, the floor of slayer's input grid).
Graded network input (``input_message_bits > 0`` without an input block) is taken
in the first block's own units (``x * 2^(6 + spike_exp)`` for sigma-delta, as
lava-dl); binary network input is spikes.

Axonal delays (a record's ``delay``): in a file written by lava_dl (root
attribute ``producer = 'lava_dl'``) the delay belongs to the record's outputs, as
slayer trains it, and the block ends in an ``AxonDelay`` delay line
(``delay_mode='axonal'``); in a file without that stamp (lava-dl 0.6's) a dense
record's delays act on its own input synapses per output neuron, as lava-dl's
netx ran them (``delay_mode='lava-dl'``, ``DelayDense`` synapses; lava-dl ignored
conv delays: a warning says so). ``Network(delay_mode=...)`` chooses explicitly.
Delays outside [0, 62] raise (lava-dl clipped them with a warning).

Per-sample resets (``reset_interval``) follow the same stamp: a file written by lava_dl
is reset as slayer evaluates each sample (``reset_mode='slayer'``: exact, bias included);
a file without the stamp gets lava-dl 0.6's staggered resets (``reset_mode='lava-dl'``:
block ``k`` zeroed before step ``reset_offset + 1 + k``), so that lava-dl's own files and
scripts (``Network(net_config, reset_interval=T)``) give lava-dl's states.
``Network(reset_mode=...)`` chooses explicitly. :func:`default_modes` resolves both.

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
import warnings

import h5py
import numpy as np

from lava_dl.core import records
from lava_dl.core.delay import MAX_BLOCK_DELAY as MAX_DELAY
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
from lava_dl.proc.netx_blocks import (
    Average,
    Concat,
    Conv,
    ConvT,
    Dense,
    Input,
    Network,
    Pool,
    RecurrentDense,
    Unpool,
    broadcast_bias,
)

__all__ = ["Network", "Hdf5FormatError", "build_layers", "default_modes", "neuron_params",
           "read_layer_records", "INTEGRATOR_NEURON", "NOT_IMPLEMENTED_TYPES"]

#: hdf5 neuron fields lava-dl uses for a dense record without neuron group.
INTEGRATOR_NEURON: dict = {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17}

#: Layer types that exist in the format but are not supported yet.
NOT_IMPLEMENTED_TYPES = ("dense_comp",)
#: ``neuron/vThMant`` of an ``Affine(dynamics=True)`` readout (lava-dl writes it in place of the threshold).
AFFINE_V_TH_MANT = (1 << 18) - 1


class _Record(records.LayerRecord):
    """A ``layer/<i>`` group read by netx; geometry comes back in Lava's ``(x, y)`` order."""

    def xy(self, key: str) -> np.ndarray:
        """Kernel geometry (torch ``(H, W)`` in the file) reversed to Lava ``(x, y)``."""
        return np.array(self.pair(key)[::-1], dtype=np.int64)


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
                  synapses_in_front: int | None = None, delay_shift: bool | None = None) -> dict:
    """Neuron process and its keyword arguments from an hdf5 ``neuron`` group (or dict).

    ``role`` picks the process where one hdf5 type has several (``input``/``hidden``/
    ``output``); ``block_index``, ``layer_type`` and ``synapses_in_front`` (Lava synapses
    between the network input and this block; default: ``block_index``) place the block
    for per-sample resets, as does ``delay_shift`` (whether slayer delays the block's output
    by one step; default: its family's rule); ``options`` are the Network's
    ``reset_interval``, ``reset_offset``, ``reset_mode`` and ``spike_exp``.
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
                                    block_index if synapses_in_front is None else synapses_in_front,
                                    delay_shift)
        params["reset_interval"] = int(options["reset_interval"])
        params["reset_offset"] = offset
        params["reset_hold"] = hold
    params["bias_key"] = spec.bias_param
    params["num_message_bits"] = int(spec.extra.get("wire_message_bits", spec.out_message_bits))
    if graded.any():
        params["num_message_bits"] = GRADED_MESSAGE_BITS
        params["message_exp"] = GRADED_MESSAGE_EXP
    offset = spec.extra.get("message_exp_offset")
    if offset is not None:  # sigma-delta messages: 2^(offset + spike_exp) units per real unit
        params["message_exp"] = -(int(offset) + int(options.get("spike_exp", 6)))
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


#: Conv-like record types: (transposed?, shared kernel?)
_CONV_KINDS = {"conv": (False, False), "convT": (True, False), "pool": (False, True), "unpool": (True, True)}


def _conv_geometry(rec: _Record, layer_type: str, input_shape: tuple[int, ...], shape_xyc: tuple[int, ...],
                   key: str = "weight") -> dict:
    """Validated geometry and Lava-layout weight of a ``conv``, ``convT``, ``pool`` or ``unpool`` record."""
    transposed, shared = _CONV_KINDS[layer_type]
    weight = rec.ints(key)
    if weight.ndim == 5 and weight.shape[-1] == 1:
        weight = weight[..., 0]
    if shared and weight.ndim == 2:
        weight = weight.reshape(1, 1, *weight.shape)
    if weight.ndim != 4 or shared and weight.shape[:2] != (1, 1):
        layout = "(1, 1, kH, kW)" if shared else ("(C_in, C_out/groups, kH, kW)" if transposed
                                                 else "(C_out, C_in/groups, kH, kW)")
        raise rec.error(key, f"expected a {layout} weight, got shape {weight.shape}")
    if len(input_shape) != 3:
        raise rec.error(key, f"{layer_type} needs an (x, y, c) input, got input shape {input_shape}")
    stride = rec.xy("stride") if "stride" in rec or not shared else None
    padding, dilation = rec.xy("padding"), rec.xy("dilation")
    _, _, k_h, k_w = weight.shape
    kernel_xy = np.array([k_w, k_h])
    if stride is None:
        stride = kernel_xy.copy()
    c_in = input_shape[2]
    if shared:
        groups, c_out = c_in, c_in
    else:
        groups = int(rec.ints("groups").reshape(-1)[0])
        c_per_group = weight.shape[0] if transposed else weight.shape[1]
        c_out = weight.shape[1] * groups if transposed else weight.shape[0]
        if groups < 1 or c_in % groups or c_out % groups:
            raise rec.error("groups", f"{groups} groups do not divide {c_in} input / {c_out} output channels")
        if (c_per_group if transposed else c_per_group * groups) != c_in:
            raise rec.error(key, f"weight shape {weight.shape} does not match the {c_in} input channels "
                                 f"with {groups} groups")
    if "kernelSize" in rec:
        ks = rec.xy("kernelSize")[::-1]
        if tuple(ks) != (k_h, k_w):
            raise rec.error("kernelSize", f"{tuple(ks)} does not match weight shape {weight.shape}")
    for field, expected in (("inChannels", c_in), ("outChannels", c_out)):
        if field in rec and int(rec.ints(field).reshape(-1)[0]) != expected:
            raise rec.error(field, f"expected {expected}")
    if np.any(stride < 1) or np.any(dilation < 1) or np.any(padding < 0):
        raise rec.error("stride", f"invalid geometry stride={stride}, padding={padding}, "
                                  f"dilation={dilation} (x, y)")
    span = dilation * (kernel_xy - 1) + 1
    size = np.array(input_shape[:2])
    if transposed:
        out_xy = (size - 1) * stride - 2 * padding + span
    else:
        if np.any(size + 2 * padding < span):
            raise rec.error("kernelSize", f"the {layer_type} window (dilated size {tuple(span)} in x, y) "
                                          f"does not fit the input {input_shape} with padding "
                                          f"{tuple(padding)}")
        out_xy = (size + 2 * padding - span) // stride + 1
    expected = (int(out_xy[0]), int(out_xy[1]), int(c_out))
    if min(expected) < 1:
        raise rec.error("shape", f"{layer_type} of input {input_shape} has no output ({expected})")
    if expected != shape_xyc:
        raise rec.error("shape", f"record shape (x, y, c) {shape_xyc} differs from the {layer_type} output "
                                 f"{expected} for input {input_shape}")
    # Lava convolves (torch correlates): flip both spatial axes, then (.., kx, ky, ..) order
    flipped = weight[:, :, ::-1, ::-1]
    lava_weight = np.ascontiguousarray(flipped[0, 0].T if shared else flipped.transpose(0, 3, 2, 1))
    geometry = dict(weight=lava_weight, stride=stride, padding=padding, dilation=dilation, kernel=kernel_xy)
    if not shared:
        geometry["groups"] = groups
    return geometry


#: Weighted record types and the netx block class each builds.
_WEIGHTED = {"dense": Dense, "dense_rec": RecurrentDense, "conv": Conv, "convT": ConvT, "pool": Pool,
             "unpool": Unpool}
_ROW_NAMES = {"dense": "Dense", "dense_rec": "Recurrent", "conv": "Conv", "convT": "ConvT", "pool": "Pool",
              "unpool": "Unpool"}

DELAY_MODES = ("axonal", "lava-dl")


class _Builder:
    """Reads the records one by one and creates and connects their blocks.

    Timing bookkeeping: a layer's ``emit`` is how many steps after the sample's first step
    (``reset_offset + 1``) its slayer output index 0 leaves it in Lava. A block computes the
    sample's index 0 at ``lag = emit_in + 1`` (its synapse adds a step; an input block has
    ``lag = 0``), and emits at ``lag - 1`` when its family delays its output by one step in
    slayer (``delay_shift``: the spiking families), else at ``lag``. Average passes its
    input's ``emit`` on; a concat delays its earlier inputs to its latest one. Axonal delays
    do not change it: slayer keeps the sample length and drops what is delayed beyond it,
    and the delay lines are cleared at each sample's reset.
    """

    def __init__(self, path: str, options: dict, input_message_bits: int, input_shape, skip_layers: int,
                 sparse_fc_layer: bool, delay_mode: str) -> None:
        self.path = path
        self.options = options
        self.skip_layers = skip_layers
        self.sparse = sparse_fc_layer
        self.delay_mode = delay_mode
        self.layers: list = []
        self.rows = [table_header()]
        self.by_record: dict[int, ty.Any] = {}
        self.message_bits = int(input_message_bits)
        self.message_exp = 0  # log2 of the real value of one unit of the incoming messages
        self.flatten_next = False
        self.cur_shape = tuple(int(s) for s in input_shape) if input_shape else None
        self.emit = 0
        self.emits: dict[int, int] = {}  # record index -> emit of its layer
        self.terminal: int | None = None  # record index of a layer nothing may follow (average)

    # ---- per record ------------------------------------------------------------------------
    def add(self, rec: _Record) -> None:
        layer_type = rec.string("type")
        if self.terminal is not None and layer_type != "flatten":
            raise rec.error("type", f"a '{layer_type}' layer cannot follow the 'average' layer "
                                    f"{self.terminal} (its group counts end the network)")
        if layer_type in NOT_IMPLEMENTED_TYPES:
            raise NotImplementedError(f"layer {rec.index}: layer type '{layer_type}' is not implemented")
        if layer_type == "flatten":
            self.flatten_next = True
        elif layer_type == "input":
            self._input(rec)
        elif layer_type == "average":
            self._average(rec)
        elif layer_type == "concat":
            self._concat(rec)
        elif layer_type in _WEIGHTED:
            self._weighted(rec, layer_type)
        else:
            raise rec.error("type", f"unknown layer type {layer_type!r}; expected one of "
                                    f"{sorted(('input', 'flatten', 'average', 'concat', *_WEIGHTED))}")

    def _next_lag(self, has_synapse: bool) -> int:
        return self.emit + int(has_synapse) if self.layers else int(has_synapse)

    def _place(self, layer_type: str, has_synapse: bool) -> dict:
        """Reset phase arguments of the next block (see :func:`_reset_phase`)."""
        return dict(block_index=len(self.layers), layer_type=layer_type, options=self.options,
                    synapses_in_front=self._next_lag(has_synapse))

    def _advance(self, block, rec: _Record, row: str, has_synapse: bool, delay_shift: bool) -> None:
        """Connect ``block`` behind the previous one and update the running state."""
        lag = self._next_lag(has_synapse)
        if self.layers:
            prev = self.layers[-1]
            if self.flatten_next and len(prev.shape) == 3 and len(block.inp.shape) == 1:
                prev.out.transpose([2, 1, 0]).flatten().connect(block.inp)
            else:
                if tuple(prev.out.shape) != tuple(block.inp.shape):
                    raise Hdf5FormatError(f"layer {rec.index}: its input shape {tuple(block.inp.shape)} does "
                                          f"not match the previous layer's output {tuple(prev.out.shape)}")
                prev.out.connect(block.inp)
        if len(block.inp.shape) == 1:
            self.flatten_next = False
        self._append(block, rec, row, lag - int(delay_shift))

    def _append(self, block, rec: _Record, row: str, emit: int) -> None:
        self.emit = emit
        self.emits[rec.index] = emit
        self.message_bits = block.output_message_bits
        self.message_exp = block.output_message_exp
        self.layers.append(block)
        self.by_record[rec.index] = block
        self.rows.append(row)

    def _concat(self, rec: _Record) -> None:
        """Join the previous layer and the layers of ``layers`` (in the listed order) channel-wise."""
        if not self.layers:
            raise rec.error("type", "a 'concat' layer needs layers in front of it")
        ids = [int(v) for v in rec.ints("layers").reshape(-1)]
        prev_id = max(self.by_record)
        if prev_id not in ids:  # lava-dl's format: the previous layer plus the listed ones
            ids = [prev_id, *ids]
        for i in ids:
            if i not in self.by_record:
                where = "a later or the same layer" if i >= rec.index else "not a built layer"
                raise rec.error("layers", f"layer {i} is {where} (built: {sorted(self.by_record)})")
        blocks = [self.by_record[i] for i in ids]
        shapes = [tuple(b.shape) for b in blocks]
        bits = {(b.output_message_bits, b.output_message_exp) for b in blocks}
        if len(bits) != 1:
            raise rec.error("layers", f"the joined layers {ids} send messages of different widths/exponents "
                                      f"{sorted(bits)}")
        if len({s[:-1] for s in shapes}) != 1 or len({len(s) for s in shapes}) != 1:
            raise rec.error("layers", f"the joined layers {ids} have shapes {shapes} (x, y, c) that differ "
                                      f"other than in channels")
        joined = (*shapes[0][:-1], sum(s[-1] for s in shapes))
        shape = rec.shape()
        if tuple(shape[::-1]) != joined and not (len(joined) == 1 and int(np.prod(shape)) == joined[0]):
            raise rec.error("shape", f"record shape {list(shape)} (torch order) differs from the joined "
                                     f"shape {list(joined[::-1])}")
        emits = [self.emits[i] for i in ids]
        align = [max(emits) - e for e in emits]
        block = Concat(sources=[b.out for b in blocks], shapes=shapes, align=align,
                       output_message_bits=blocks[0].output_message_bits,
                       output_message_exp=blocks[0].output_message_exp)
        dims = joined if len(joined) == 3 else (1, 1, joined[0])
        self._append(block, rec, table_row("Concat", *dims), max(emits))

    def _input(self, rec: _Record) -> None:
        shape_xyc = rec.shape()[::-1]
        if "neuron" not in rec:
            self.cur_shape = shape_xyc
            return
        params = neuron_params(rec, rec.group["neuron"], role="input", **self._place("input", False))
        if rec.index < self.skip_layers:
            self.cur_shape = shape_xyc
            return
        block = _input_block(rec, shape_xyc, params, self.message_bits)
        dims = shape_xyc if len(shape_xyc) == 3 else (1, 1, int(np.prod(shape_xyc)))
        self._advance(block, rec, table_row("Input", *dims), has_synapse=False, delay_shift=False)

    def _average(self, rec: _Record) -> None:
        shape = rec.shape()
        num_outputs = int(shape[0])
        if int(np.prod(shape)) != num_outputs:
            raise rec.error("shape", f"expected [num_outputs, 1, 1], got {list(shape)}")
        if not self.layers:
            raise rec.error("type", "an 'average' layer needs a layer in front of it")
        num_inputs = int(np.prod(self.layers[-1].shape))
        if num_inputs % num_outputs:
            raise rec.error("shape", f"{num_inputs} neurons of the previous layer do not split into "
                                     f"{num_outputs} equal groups")
        self.flatten_next = True
        block = Average(num_inputs=num_inputs, num_outputs=num_outputs, input_message_bits=self.message_bits)
        self._advance(block, rec, table_row("Average", 1, 1, num_outputs), has_synapse=False,
                      delay_shift=False)
        self.terminal = rec.index

    def _weighted(self, rec: _Record, layer_type: str) -> None:
        skipped = rec.index < self.skip_layers
        shape = rec.shape()
        dense = layer_type in ("dense", "dense_rec")
        if dense:
            shape_out: tuple[int, ...] = (int(np.prod(shape)),)
        else:
            shape_out = shape[::-1]
            if len(shape_out) != 3:
                raise rec.error("shape", f"{layer_type} shape must be (C, H, W), got {list(shape)}")
        if "neuron" in rec:
            group = _neuron_group(rec)
            neuron = group
            role = _role(group)
        elif dense:
            neuron, role = INTEGRATOR_NEURON, "hidden"
        else:
            raise rec.error("neuron", "required group is missing")
        place = self._place(layer_type, True)
        delay_shift = False if dense and _is_affine_readout(rec, neuron) else None  # None: the family's
        params = neuron_params(rec, neuron, role=role, delay_shift=delay_shift, **place)
        in_shape = self._input_shape(rec, layer_type, skipped)
        weights, geometry = {}, {}
        for port, key in _weight_keys(params).items():
            if dense:
                n_in = None if in_shape is None else int(np.prod(in_shape))
                weight = _dense_weight(rec, shape_out[0], n_in, key)
                weights[port] = _optimized(rec, key, weight)
            else:
                geometry = _conv_geometry(rec, layer_type, in_shape, shape_out, key)
                weights[port] = geometry.pop("weight")
        bias = _bias(rec, params, shape_out)
        n_in = int(np.asarray(next(iter(weights.values()))[0]).shape[1]) if dense else None
        extra = self._delays(rec, layer_type, shape_out, n_in)
        if layer_type == "dense_rec":
            extra.update(self._recurrent(rec, params, shape_out[0]))
        if skipped:
            self.cur_shape = shape_out
            return
        message_exp = _receiver_exp(params, self.options) + self.message_exp
        if not self.layers and self.message_bits:
            message_exp = 0  # graded network input comes in the first block's own input units
        common = dict(shape=shape_out, neuron_params=params, weights=weights, bias=bias,
                      input_message_bits=self.message_bits, input_message_exp=message_exp, **extra)
        kernel = geometry.pop("kernel", None)
        if dense:
            block = _WEIGHTED[layer_type](sparse_synapse=self.sparse, **common)
            row = table_row(_ROW_NAMES[layer_type], 1, 1, shape_out[0], delay="delay" in rec)
        else:
            block = _WEIGHTED[layer_type](input_shape=in_shape, **geometry, **common)
            row = table_row(_ROW_NAMES[layer_type], *shape_out, kernel=kernel, stride=geometry["stride"],
                            padding=geometry["padding"], dilation=geometry["dilation"],
                            groups=geometry.get("groups"), delay="delay" in rec)
        spec = params["neuron_proc"].spec
        self._advance(block, rec, row, has_synapse=True,
                      delay_shift=bool(spec.extra.get("slayer_delay_shift", True)) and delay_shift is None)

    def _input_shape(self, rec: _Record, layer_type: str, skipped: bool) -> tuple[int, ...] | None:
        """``(x, y, c)`` (conv-like) or the previous shape (dense) entering the record's synapse."""
        if layer_type in ("dense", "dense_rec"):
            if not self.layers or skipped:
                return None
            prev = self.layers[-1].shape
            if not self.flatten_next and len(prev) != 1:
                raise Hdf5FormatError(f"layer {rec.index}: dense layer after a block of shape {prev} needs a "
                                      f"'flatten' record in between")
            return tuple(prev)
        if self.layers:
            self.cur_shape = tuple(self.layers[-1].shape)
        if self.cur_shape is None:
            raise Hdf5FormatError(f"layer {rec.index}: input shape could not be inferred; pass "
                                  f"input_shape=(x, y, c) to Network")
        return self.cur_shape

    def _delays(self, rec: _Record, layer_type: str, shape_out, n_in: int | None) -> dict:
        """Block arguments for the record's ``delay`` field."""
        if "delay" not in rec:
            return {}
        delay = rec.ints("delay")
        if delay.size and (delay.min() < 0 or delay.max() > MAX_DELAY):
            raise rec.error("delay", f"delays must lie in [0, {MAX_DELAY}] steps, got values in "
                                     f"[{delay.min()}, {delay.max()}] (lava-dl clipped them with a warning; "
                                     f"a clipped delay would deploy a different network)")
        dense = layer_type in ("dense", "dense_rec")
        if self.delay_mode == "axonal":
            channels = shape_out[-1]
            if delay.ndim > 1 or delay.size not in (1, channels):
                raise rec.error("delay", f"expected one delay per output {'neuron' if dense else 'channel'} "
                                         f"({channels}), got shape {delay.shape}")
            return {"axon_delays": np.broadcast_to(delay.reshape(-1), shape_out).copy()}
        # lava-dl 0.6: the delays act on the record's own input synapses (dense only)
        if not dense:
            warnings.warn(f"layer {rec.index}: lava-dl ignores the 'delay' of a {layer_type} record, and so "
                          f"does delay_mode='lava-dl'; pass delay_mode='axonal' to deploy it as slayer "
                          f"trained it", UserWarning, stacklevel=4)
            return {}
        if layer_type == "dense_rec":
            raise rec.error("delay", "lava-dl cannot deploy a recurrent layer with delays; pass "
                                     "delay_mode='axonal'")
        n_out = shape_out[0]
        flat = delay.reshape(-1)
        if delay.ndim == 0 or flat.size == 1:
            matrix = np.full((n_out, n_in), int(flat[0]))
        elif delay.ndim == 1 and flat.size == n_out:
            matrix = np.repeat(flat[:, None], n_in, axis=1)
        elif delay.ndim == 1 and flat.size == n_in:
            matrix = np.repeat(flat[None, :], n_out, axis=0)
        elif delay.ndim == 2 and delay.shape == (n_out, n_in):
            matrix = delay
        else:
            raise rec.error("delay", f"invalid delay of shape {delay.shape} for a ({n_out}, {n_in}) weight")
        return {"synapse_delays": matrix}

    def _recurrent(self, rec: _Record, params: dict, n: int) -> dict:
        """``weights_rec``, ``bias_rec`` and the recurrent message exponent of a ``dense_rec`` record."""
        weights = {}
        for port, key in _weight_keys(params).items():
            key = key.replace("weight", "weight_rec", 1)
            weight = rec.ints(key)
            if weight.ndim != 2 or weight.shape != (n, n):
                raise rec.error(key, f"the recurrent weight must be square ({n}, {n}), got shape "
                                     f"{weight.shape}")
            weights[port] = _optimized(rec, key, weight)
        out = {"weights_rec": weights}
        if "bias_rec" in rec:
            bias = rec.ints("bias_rec").reshape(-1)
            if bias.size not in (1, n):
                raise rec.error("bias_rec", f"expected {n} values, got {bias.size}")
            out["bias_rec"] = np.broadcast_to(bias, (n,)).copy()
        graded_exp = int(params.get("message_exp", 0))
        out["recurrent_message_exp"] = _receiver_exp(params, self.options) + graded_exp
        return out


def _optimized(rec: _Record, key: str, weight: np.ndarray):
    try:
        return optimize_weight_bits(weight)
    except ValueError as err:
        raise rec.error(key, str(err)) from err


def _receiver_exp(params: dict, options: dict) -> int:
    """log2 of the receiving neurons' input units per weight unit (0: Loihi's ``a_in`` grid of
    the spiking families; sigma-delta neurons integrate in ``2^(6 + spike_exp)`` finer units).

    A synapse adds this and the sender's message exponent to its weight exponent, so any
    family's messages reach any family's neurons in their own units.
    """
    offset = params["neuron_proc"].spec.extra.get("input_exp_offset")
    return 0 if offset is None else int(offset) + int(options.get("spike_exp", 6))


def build_layers(
    path: str,
    *,
    num_layers: int | None = None,
    skip_layers: int = 0,
    input_message_bits: int = 0,
    input_shape: ty.Sequence[int] | None = None,
    reset_interval: int | None = None,
    reset_offset: int = 0,
    reset_mode: str | None = None,
    spike_exp: int = 6,
    sparse_fc_layer: bool = False,
    delay_mode: str | None = None,
) -> tuple[list, str]:
    """Create and connect the blocks described by an hdf5 file.

    Parameters are those of :class:`Network`. Returns the blocks and the summary table.

    Raises
    ------
    Hdf5FormatError
        Malformed record (message names layer and field).
    NotImplementedError
        Record types not supported (concat, dense_comp) or options that cannot be deployed.
    """
    if reset_interval is not None and int(reset_interval) < 1:
        raise ValueError(f"reset_interval must be >= 1 or None, got {reset_interval}")
    _check_modes(reset_mode, delay_mode)

    with h5py.File(path, "r") as f:
        reset_mode, delay_mode = default_modes(f, reset_mode, delay_mode)
        options = dict(reset_interval=reset_interval, reset_offset=reset_offset, reset_mode=reset_mode,
                       spike_exp=spike_exp)
        builder = _Builder(path, options, input_message_bits, input_shape, skip_layers, sparse_fc_layer,
                           delay_mode)
        records = read_layer_records(f)
        count = len(records) if num_layers is None else min(len(records), int(num_layers))
        for i in range(count):
            builder.add(_Record(records[i], i))

    if not builder.layers:
        raise Hdf5FormatError(f"{path}: no block was built (num_layers={num_layers}, "
                              f"skip_layers={skip_layers})")
    return builder.layers, "\n".join(builder.rows)


def is_lava_dl_file(f: h5py.File) -> bool:
    """Whether the file was written by lava_dl (root attribute ``producer``), not by lava-dl 0.6."""
    key, value = records.PRODUCER
    stamp = f.attrs.get(key)
    if isinstance(stamp, bytes):
        stamp = stamp.decode("ascii", "replace")
    return stamp == value


RESET_MODES = ("slayer", "lava-dl")


def _check_modes(reset_mode: str | None, delay_mode: str | None) -> None:
    if reset_mode is not None and reset_mode not in RESET_MODES:
        raise ValueError(f"reset_mode must be None or one of {RESET_MODES}, got {reset_mode!r}")
    if delay_mode is not None and delay_mode not in DELAY_MODES:
        raise ValueError(f"delay_mode must be None or one of {DELAY_MODES}, got {delay_mode!r}")


def default_modes(f: h5py.File | str, reset_mode: str | None = None,
                  delay_mode: str | None = None) -> tuple[str, str]:
    """``(reset_mode, delay_mode)`` for a file: the explicit values, else those of its producer.

    A file written by lava_dl (:func:`is_lava_dl_file`) defaults to slayer's semantics
    (``'slayer'``, ``'axonal'``), any other file to lava-dl 0.6's netx (``'lava-dl'``,
    ``'lava-dl'``).

    Parameters
    ----------
    f : h5py.File or str
        The open file, or its path.
    reset_mode, delay_mode : str, optional
        Explicit choices; each wins over the default.

    Returns
    -------
    tuple of str
        The resolved ``(reset_mode, delay_mode)``.

    Raises
    ------
    ValueError
        If a given mode is not one of :data:`RESET_MODES` / :data:`DELAY_MODES`.
    """
    _check_modes(reset_mode, delay_mode)
    if reset_mode is not None and delay_mode is not None:
        return reset_mode, delay_mode
    if isinstance(f, h5py.File):
        stamped = is_lava_dl_file(f)
    else:
        with h5py.File(f, "r") as handle:
            stamped = is_lava_dl_file(handle)
    if reset_mode is None:
        reset_mode = "slayer" if stamped else "lava-dl"
    if delay_mode is None:
        delay_mode = "axonal" if stamped else "lava-dl"
    return reset_mode, delay_mode


def _reset_phase(mode: str, reset_offset: int, block_index: int, layer_type: str, spec,
                 synapses_in_front: int, delay_shift: bool | None = None) -> tuple[int, bool]:
    """Reset phase and hold flag of the next block for ``reset_interval`` runs.

    ``"slayer"`` reproduces slayer's per-sample evaluation exactly. A sample's first
    input leaves the source (or the input block's neuron) at step ``reset_offset + 1``,
    and the block computes the sample's slayer index 0 at step ``reset_offset + 1 + lag``
    where ``lag`` (``synapses_in_front``) counts the synapses up to and including the
    block's own, less one for every block in front of it whose family delays its output
    by one step in slayer (``delay_shift``; ``spec.extra['slayer_delay_shift']``, False
    for sigma-delta). In a network of spiking blocks every block behind a synapse thus
    has ``lag = 1``; in a sigma-delta network ``lag`` is the number of synapses in front.

    A block of a ``delay_shift`` family spends the step before (``reset_offset + lag``,
    the sample's last step for it, whose output slayer's shift drops) held in reset: its
    states stay zero, its input is ignored and it sends nothing, which is also what slayer
    sends at index 0. Other blocks, and input blocks, are zeroed before step
    ``reset_offset + 1 + lag``.

    ``"lava-dl"`` is lava-dl 0.6 netx: block ``k`` zeroed before step
    ``reset_offset + 1 + k``. Exact only for networks without bias whose blocks never
    fire on the previous sample's last step (legacy files such as ``tiny.net`` assume it).

    ``delay_shift`` overrides the family's rule (an Affine readout has no step delay in slayer,
    so its last index of a sample must not be held in reset).
    """
    if mode == "lava-dl":
        return reset_offset + 1 + block_index, False
    if delay_shift is None:
        delay_shift = bool(spec.extra.get("slayer_delay_shift", True))
    if not delay_shift or layer_type == "input":
        return reset_offset + 1 + synapses_in_front, False
    return reset_offset + synapses_in_front, True


def _is_affine_readout(rec: _Record, neuron: h5py.Group | dict) -> bool:
    """Whether a dense record is an ``Affine`` readout: no neuron group (lava-dl's integrator) or
    lava-dl's marker threshold ``vThMant = 2^18 - 1``. slayer delays neither by a step."""
    if neuron is INTEGRATOR_NEURON:
        return True
    if "vThMant" not in neuron:
        return False
    value = np.asarray(rec.raw("vThMant", neuron, "neuron/")).reshape(-1)
    return value.size > 0 and bool(np.all(value == AFFINE_V_TH_MANT))


def _neuron_group(rec: _Record) -> h5py.Group:
    if "neuron" not in rec:
        raise rec.error("neuron", "required group is missing")
    group = rec.group["neuron"]
    if not isinstance(group, h5py.Group):
        raise rec.error("neuron", "expected a group")
    return group
