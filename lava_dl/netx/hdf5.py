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

* malformed files raise :class:`~lava_dl.netx.utils.NetxFormatError` (alias
  ``Hdf5FormatError``, a ``ValueError``) naming the file, the layer and the field
  (lava-dl: KeyError/AttributeError/IndexError, raw h5py errors, or silently skipped
  records and fields); see "Validation" below;
* the Input block's ``inp`` port is connected to its neurons' ``a_in``;
* the file is read completely and closed during construction.

A ``dense`` record without ``neuron`` group (slayer ``Affine`` with
``dynamics=False``) gets lava-dl's default "integrator": a CUBA neuron with
``iDecay = 0``, ``vDecay = 4096`` and ``vThMant = 1 << 17`` (lava-dl's
``1 << 18 - 1``). It never spikes and its ``u`` is the running sum of the
synaptic input (slayer's Affine output is the per-step sum instead); read its
``v``/``u`` to use it as a readout.

Validation. Every file is checked before and while it is built; whatever is wrong raises
:class:`~lava_dl.netx.utils.NetxFormatError` (attributes ``path``, ``layer``, ``field``):

* ``net_config`` must be the path of a file: ``None`` and an open ``h5py.File`` (which
  ``Network`` receives as strings) raise ``NetxTypeError`` (also a ``TypeError``); pass
  ``f.filename`` instead. A missing file raises ``NetxFileNotFoundError`` (also a
  ``FileNotFoundError``); a directory, an empty, truncated, damaged or non-hdf5 file a
  ``NetxFormatError``;
* sizes are checked before anything is read or allocated: :data:`MAX_DATASET_ELEMENTS`
  per dataset, :data:`MAX_FILE_ELEMENTS` for the file, :data:`MAX_LAYER_NEURONS` per layer
  (module attributes: raise them for larger networks);
* a record holds only the fields :data:`RECORD_FIELDS` lists for its type, and each is read or
  checked: numbers must be finite integers (non-empty, of the right rank); weights lie in the
  8-bit synaptic range of :mod:`lava_dl.core.synapse`, biases and neuron parameters in the
  ranges (bit widths) of their family's spec; per-neuron parameters broadcast to the layer;
  ``inFeatures``/``outFeatures``, ``inChannels``/``outChannels``, ``kernelSize``, ``groups``
  and ``shape`` agree with the weights and the previous layer's output; a ``flatten`` record's
  ``shape`` holds the flattened previous output; the input record's scalar ``weight``/``bias``
  lie in the weight and the neuron's bias range;
* a neuron group holds only its family's fields: a field of another role of the same type is
  range-checked although unused (a sigma output's ``vThMant``, an input encoder's
  ``activation``); ``activation`` must be a deployable one; lava-dl's legacy fields
  (:data:`LEGACY_NEURON_FIELDS`) are checked and ignored, as lava-dl ignores them.

Records that are well formed but cannot be deployed raise ``NetxUnsupportedError``, a
``NetxFormatError`` that is also a ``NotImplementedError``.
"""

from __future__ import annotations

import math
import os
import re
import typing as ty
import warnings

import h5py
import numpy as np

from lava_dl.core import records
from lava_dl.core.delay import MAX_BLOCK_DELAY as MAX_DELAY
from lava_dl.core.fixed_point import GRADED_MESSAGE_BITS, GRADED_MESSAGE_EXP, STATE_BITS, STATE_MAX, STATE_MIN
from lava_dl.core.registry import SPECS, spec_for_hdf5_type
from lava_dl.core.synapse import WEIGHT_MAX, WEIGHT_MIN, kernel_to_lava
from lava_dl.netx.utils import (
    Hdf5FormatError,
    NetxFileNotFoundError,
    NetxFormatError,
    NetxTypeError,
    NetxUnsupportedError,
    decode_str,
    neuron_process_for,
    optimize_weight_bits,
    table_header,
    table_row,
)
from lava_dl.proc.netx_blocks import (
    Average,
    ComplexDense,
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
    output_message_width,
)

__all__ = ["Network", "NetxFormatError", "Hdf5FormatError", "build_layers", "default_modes", "neuron_params",
           "read_layer_records", "create_block", "get_neuron_params", "SINGLE_BLOCK_TYPES",
           "INTEGRATOR_NEURON", "NOT_IMPLEMENTED_TYPES", "RECORD_FIELDS", "MAX_DATASET_ELEMENTS",
           "MAX_FILE_ELEMENTS", "MAX_LAYER_NEURONS"]

#: hdf5 neuron fields lava-dl uses for a dense record without neuron group.
INTEGRATOR_NEURON: dict = {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17}

#: Layer types that exist in the format but are not supported yet.
NOT_IMPLEMENTED_TYPES = ("dense_comp",)
#: ``neuron/vThMant`` of an ``Affine(dynamics=True)`` readout (lava-dl writes it in place of the threshold).
AFFINE_V_TH_MANT = (1 << 18) - 1

#: Size limits, checked before anything is read or allocated (a damaged file can declare terabytes
#: in a few bytes): elements of one dataset, of all datasets together, and neurons of one layer.
MAX_DATASET_ELEMENTS = 1 << 25
MAX_FILE_ELEMENTS = 1 << 27
MAX_LAYER_NEURONS = 1 << 22

_GEOMETRY = ("kernelSize", "stride", "padding", "dilation")
#: Fields each record type may hold (``weight``/``weight_rec`` may instead be a group of ``real`` and
#: ``imag``; ``neuron`` is a group). Any other field is an error: every field of a record is read or
#: checked.
RECORD_FIELDS: dict[str, tuple[str, ...]] = {
    "input": ("type", "shape", "weight", "bias", "neuron"),
    "dense": ("type", "shape", "inFeatures", "outFeatures", "weight", "bias", "delay", "neuron"),
    "dense_rec": ("type", "shape", "inFeatures", "outFeatures", "weight", "bias", "delay", "neuron",
                  "weight_rec", "bias_rec"),
    "conv": ("type", "shape", "inChannels", "outChannels", "groups", *_GEOMETRY, "weight", "bias", "delay",
             "neuron"),
    "convT": ("type", "shape", "inChannels", "outChannels", "groups", *_GEOMETRY, "weight", "bias", "delay",
              "neuron"),
    "pool": ("type", "shape", *_GEOMETRY, "weight", "delay", "neuron"),
    "unpool": ("type", "shape", *_GEOMETRY, "weight", "delay", "neuron"),
    "flatten": ("type", "shape"),
    "average": ("type", "shape"),
    "concat": ("type", "shape", "layers"),
}
#: Neuron fields of lava-dl's legacy and training-only exports, checked and otherwise ignored (as lava-dl
#: does): ``theta`` (must equal ``vThMant << 6``), the weight exponents ``wgtExp``/``weight_exp`` (integers),
#: the surrogate-gradient constants ``scaleRho``/``tauRho`` (positive reals).
LEGACY_NEURON_FIELDS = ("theta", "wgtExp", "weight_exp", "scaleRho", "tauRho")
_H5PY_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError)


def _config_path(net_config: ty.Any) -> str:
    """The path of ``net_config``, or a :class:`NetxFormatError` for anything that is not a file's path.

    Lava's ``Network`` passes ``str(net_config)``, so ``None`` and an ``h5py.File`` arrive as their
    string forms (``'None'``, ``'<HDF5 file "x.net" (mode r)>'``) and are recognised as such.
    """
    if isinstance(net_config, (h5py.File, h5py.Group)):
        name = net_config.file.filename if net_config.id.valid else repr(net_config)
        raise NetxTypeError("net_config is an open h5py object; pass the file's path (f.filename) instead",
                            path=name)
    if net_config is None:
        raise NetxTypeError("net_config is None; pass the path of an hdf5 network file", path="None")
    if not isinstance(net_config, (str, os.PathLike)):
        raise NetxTypeError(f"net_config must be the path of an hdf5 network file, got "
                            f"{type(net_config).__name__}", path=repr(net_config))
    path = os.fspath(net_config)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if re.match(r"<(Closed )?HDF5 (file|group)", path):
        raise NetxTypeError("net_config is an h5py object (Network receives it as this string); pass the "
                            "file's path (f.filename) instead", path=path)
    if not os.path.exists(path):
        if path == "None":
            raise NetxTypeError("net_config is None (or names a file 'None' that does not exist); pass the "
                                "path of an hdf5 network file", path=path)
        raise NetxFileNotFoundError("no such file", path=path)
    if os.path.isdir(path):
        raise NetxFormatError("is a directory, not an hdf5 network file", path=path)
    return path


def _open(path: str) -> h5py.File:
    """Open ``path`` read-only; a file that is not readable hdf5 raises :class:`NetxFormatError`."""
    try:
        return h5py.File(path, "r")
    except _H5PY_ERRORS as err:
        raise NetxFormatError(f"not a readable hdf5 file ({type(err).__name__}: {err})", path=path) from err


def _location(name: str) -> tuple[int | None, str | None]:
    """``(layer, field)`` of an object name such as ``layer/3/neuron/vDecay``."""
    parts = name.split("/")
    if len(parts) >= 2 and parts[0] == "layer" and parts[1].isdigit():
        return int(parts[1]), "/".join(parts[2:]) or None
    return None, name


def _scan(f: h5py.File, path: str) -> None:
    """Visit every object of the file before anything is built: damaged structure (h5py errors)
    and datasets larger than the size limits raise :class:`NetxFormatError` naming the object."""
    total = 0
    current = ""

    def visit(name: str, obj) -> None:
        nonlocal total, current
        current = name
        if isinstance(obj, h5py.Dataset):
            size = math.prod(int(n) for n in obj.shape) if obj.shape is not None else 0
            layer, field = _location(name)
            if size > MAX_DATASET_ELEMENTS:
                raise NetxFormatError(f"declares {size} elements (shape {obj.shape}); more than "
                                      f"MAX_DATASET_ELEMENTS = {MAX_DATASET_ELEMENTS}", path=path,
                                      layer=layer, field=field)
            total += size
            if total > MAX_FILE_ELEMENTS:
                raise NetxFormatError(f"the datasets up to here declare {total} elements; more than "
                                      f"MAX_FILE_ELEMENTS = {MAX_FILE_ELEMENTS}", path=path, layer=layer,
                                      field=field)
            _ = obj.dtype

    try:
        f.visititems(visit)
    except NetxFormatError:
        raise
    except _H5PY_ERRORS as err:
        raise NetxFormatError(f"damaged file: cannot read the objects after {current or 'the root'!r} "
                              f"({type(err).__name__}: {err})", path=path) from err


class _Record(records.LayerRecord):
    """A ``layer/<i>`` group read by netx; geometry comes back in Lava's ``(x, y)`` order."""

    def unsupported(self, field: str, message: str) -> NetxUnsupportedError:
        """A well-formed field that cannot be deployed (a NetxFormatError and a NotImplementedError)."""
        return NetxUnsupportedError(message, layer=self.index, field=field)

    def xy(self, key: str) -> np.ndarray:
        """Kernel geometry (torch ``(H, W)`` in the file) reversed to Lava ``(x, y)``."""
        return np.array(self.pair(key)[::-1], dtype=np.int64)

    def shape(self) -> tuple[int, ...]:
        """The record's ``shape`` (torch order): positive sizes, at most :data:`MAX_LAYER_NEURONS` neurons."""
        shape = super().shape()
        if math.prod(shape) > MAX_LAYER_NEURONS:
            raise self.error("shape", f"{list(shape)} declares {math.prod(shape)} neurons; more than "
                                      f"MAX_LAYER_NEURONS = {MAX_LAYER_NEURONS}")
        return shape

    def size(self, key: str) -> int:
        """A positive integer size (``inFeatures``, ``groups`` ...)."""
        value = self.integer(key)
        if value < 1:
            raise self.error(key, f"expected a positive size, got {value}")
        return value

    def check_fields(self, layer_type: str) -> None:
        """Every field of the record is one :data:`RECORD_FIELDS` allows for ``layer_type``, of its kind."""
        allowed = RECORD_FIELDS[layer_type]
        for key in self.group:
            obj = self.group.get(key)
            if key not in allowed:
                raise self.error(key, f"unknown field for a '{layer_type}' record (fields: {list(allowed)})")
            if key == "neuron":
                if not isinstance(obj, h5py.Group):
                    raise self.error("neuron", "expected a group")
            elif isinstance(obj, h5py.Group):
                if key not in ("weight", "weight_rec") or set(obj.keys()) != {"real", "imag"}:
                    raise self.error(key, "expected a dataset, found a group" + (
                        f" (a complex weight holds exactly 'real' and 'imag', got {sorted(obj.keys())})"
                        if key in ("weight", "weight_rec") else ""))
            elif not isinstance(obj, h5py.Dataset):
                raise self.error(key, "expected a dataset")


def read_layer_records(f: h5py.File) -> list[h5py.Group]:
    """The ``layer/<i>`` groups in order; raise if the names are not ``0 … n-1``."""
    if "layer" not in f or not isinstance(f["layer"], h5py.Group):
        raise NetxFormatError("the file has no 'layer' group", field="layer")
    layer = f["layer"]
    names = list(layer.keys())
    indices = []
    for name in names:
        if not name.isdigit():
            raise NetxFormatError(f"layer group name {name!r} is not a layer index", field=f"layer/{name}")
        indices.append(int(name))
    if sorted(indices) != list(range(len(indices))):
        raise NetxFormatError(f"layer group names must be contiguous 0..{len(indices) - 1}, "
                              f"got {sorted(indices)}", field="layer")
    for i in range(len(indices)):
        if not isinstance(layer[str(i)], h5py.Group):
            raise NetxFormatError("expected a group (a layer record)", layer=i)
    return [layer[str(i)] for i in range(len(indices))]


def neuron_params(rec: _Record, neuron: h5py.Group | dict, *, role: str = "hidden", block_index: int = 0,
                  layer_type: str = "dense", options: dict | None = None,
                  synapses_in_front: int | None = None, delay_shift: bool | None = None,
                  shape: tuple[int, ...] | None = None) -> dict:
    """Neuron process and its keyword arguments from an hdf5 ``neuron`` group (or dict).

    ``role`` picks the process where one hdf5 type has several (``input``/``hidden``/
    ``output``); ``block_index``, ``layer_type`` and ``synapses_in_front`` (Lava synapses
    between the network input and this block; default: ``block_index``) place the block
    for per-sample resets, as does ``delay_shift`` (whether slayer delays the block's output
    by one step; default: its family's rule); ``options`` are the Network's
    ``reset_interval``, ``reset_offset``, ``reset_mode`` and ``spike_exp``. With ``shape``
    (the layer's neuron shape), per-neuron parameters must broadcast to it.

    Every field of the group is read or checked (:func:`_check_other_neuron_fields`): one the
    family does not know raises :class:`NetxFormatError`.
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
        params[p.name] = _checked_param(rec, p, field(p.hdf5_key), key, shape)
    for key, (param, choices) in spec.extra.get("hdf5_enums", {}).items():
        if key in fields:
            params[param] = choices[_enum_value(rec, key, field(key), choices)]
    for key, expected in spec.extra.get("hdf5_constants", {}).items():
        if key in fields:
            value = _integers(rec, f"neuron/{key}", field(key))
            if np.any(value != expected):
                raise rec.unsupported(f"neuron/{key}", f"{spec.name} neurons deploy only with {key} = "
                                                       f"{expected}, got {value.tolist()}")
    if not isinstance(neuron, dict):
        _check_other_neuron_fields(rec, spec, role, fields, field)
    # spiking families: a 'graded' parameter; sigma-delta neurons are graded by nature
    graded = np.asarray(params.get("graded", 0))
    if "graded" not in spec.param_names and "gradedSpike" in fields and np.any(field("gradedSpike")) \
            and not spec.extra.get("graded_spike", False):
        raise rec.unsupported("neuron/gradedSpike", f"{spec.name} neurons have no graded-spike mode")
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


def _integers(rec: _Record, key: str, value) -> np.ndarray:
    """``value`` of field ``key`` as a non-empty int64 array of finite integers."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iufb":
        raise rec.error(key, f"expected integers, got dtype {arr.dtype}")
    if arr.size == 0:
        raise rec.error(key, "is empty")
    if arr.dtype.kind == "f" and not (np.all(np.isfinite(arr)) and np.all(np.mod(arr, 1) == 0)):
        raise rec.error(key, f"expected finite integers, got {arr.reshape(-1)[:4].tolist()}")
    return arr.astype(np.int64)


def _checked_param(rec: _Record, param, value, key: str, shape: tuple[int, ...] | None) -> np.ndarray:
    """A spec parameter read from ``key``: non-empty integers in the parameter's range (its bit width),
    broadcastable to the neuron ``shape`` when given."""
    if np.asarray(value).size == 0:
        raise rec.error(key, "is empty")
    try:
        arr = param.check(value)
    except (TypeError, ValueError) as err:
        raise rec.error(key, str(err)) from err
    if shape is not None:
        try:
            np.broadcast_shapes(arr.shape, tuple(shape))
        except ValueError:
            raise rec.error(key, f"{arr.size} values (shape {arr.shape}) do not match the layer's neurons "
                                 f"{tuple(shape)} (one value, or one per neuron or channel)") from None
    return arr


def _enum_value(rec: _Record, key: str, value, choices) -> str:
    """The string of an enumerated neuron field (``activation``) that must be one of ``choices``."""
    try:
        text = decode_str(value)
    except (ValueError, UnicodeDecodeError) as err:
        raise rec.error(f"neuron/{key}", f"cannot decode a string: {err}") from err
    if np.asarray(value).dtype.kind not in "OSU":
        raise rec.error(f"neuron/{key}", f"expected a string, got {value!r}")
    if text not in choices:
        raise rec.unsupported(f"neuron/{key}", f"{text!r} cannot be deployed; supported: {sorted(choices)}")
    return text


def _check_other_neuron_fields(rec: _Record, spec, role: str, fields: dict, field: ty.Callable) -> None:
    """Check the neuron fields ``spec`` does not read: those of another role of the same hdf5 type (a
    sigma output's ``vThMant``, an input encoder's ``activation``), the role markers, the graded-spike
    flag and lava-dl's legacy fields. Any other field is unknown and raises."""
    own = {p.hdf5_key for p in spec.params if p.hdf5_key} | set(spec.extra.get("hdf5_enums", {})) \
        | set(spec.extra.get("hdf5_constants", {})) | {"type"}
    siblings = [s for s in SPECS if s.hdf5_type == spec.hdf5_type and s is not spec]
    for key in fields:
        if key in own:
            continue
        name = f"neuron/{key}"
        sibling_params = [p for s in siblings for p in s.params if p.hdf5_key == key]
        sibling_enums = [s.extra["hdf5_enums"][key][1] for s in siblings
                         if key in s.extra.get("hdf5_enums", {})]
        if sibling_params:  # e.g. the sigma output's vThMant: not used, but must be a valid value
            _checked_param(rec, sibling_params[0], field(key), name, None)
        elif sibling_enums:  # e.g. the input encoder's activation
            _enum_value(rec, key, field(key), sibling_enums[0])
        elif key == "sigma_output":
            marked = any(s.extra.get("hdf5_marker") == key for s in (spec, *siblings))
            if not marked:
                raise rec.unsupported(name, f"{spec.name} neurons have no sigma output")
            if role != "output":
                raise rec.unsupported(name, f"a '{role}' layer cannot be the sigma output")
            value = _integers(rec, name, field(key))
            if value.size != 1 or int(value.reshape(-1)[0]) != 1:
                raise rec.error(name, f"the marker must be True, got {value.tolist()}")
        elif key == "gradedSpike":
            value = _integers(rec, name, field(key))
            if value.min() < 0 or value.max() > 1:
                raise rec.error(name, f"expected booleans, got values in [{value.min()}, {value.max()}]")
        elif key in LEGACY_NEURON_FIELDS:
            _check_legacy_field(rec, key, field(key), fields, field)
        else:
            raise rec.error(name, f"unknown field for a {spec.hdf5_type} neuron (fields: "
                                  f"{sorted(own | {'gradedSpike', *LEGACY_NEURON_FIELDS})})")


def _check_legacy_field(rec: _Record, key: str, value, fields: dict, field: ty.Callable) -> None:
    """lava-dl's fields that do not change the deployment (:data:`LEGACY_NEURON_FIELDS`)."""
    name = f"neuron/{key}"
    if key in ("scaleRho", "tauRho"):
        arr = np.asarray(value)
        if arr.dtype.kind not in "iuf" or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise rec.error(name, f"expected a positive real number (a surrogate-gradient constant), "
                                  f"got {value!r}")
        return
    arr = _integers(rec, name, value)
    if key == "theta":  # the legacy effective threshold, vThMant << 6
        if "vThMant" in fields:
            expected = np.asarray(field("vThMant")).astype(np.int64) << 6
            if arr.shape != expected.shape or np.any(arr != expected):
                raise rec.error(name, f"{arr.tolist()} disagrees with vThMant << 6 = {expected.tolist()}")
    elif arr.size != 1 or abs(int(arr.reshape(-1)[0])) > STATE_BITS:
        raise rec.error(name, f"expected one weight exponent in [-{STATE_BITS}, {STATE_BITS}], "
                              f"got {arr.tolist()}")


def _bias(rec: _Record, params: dict, shape: tuple[int, ...]) -> np.ndarray | None:
    if "bias" not in rec:
        return None
    if params.get("bias_key") is None:
        raise rec.error("bias", "the neuron family takes no bias")
    bias = rec.ints("bias")
    if bias.size == 0:
        raise rec.error("bias", "is empty")
    try:
        bias = broadcast_bias(bias, shape)
    except ValueError as err:
        raise rec.error("bias", str(err)) from err
    spec = params["neuron_proc"].spec
    param = spec.param(params["bias_key"])
    if bias.min() < param.lo or bias.max() > param.hi:
        raise rec.error("bias", f"{spec.name} biases ({param.name}) must lie in [{param.lo}, {param.hi}], "
                                f"got values in [{bias.min()}, {bias.max()}]")
    return bias


def _input_transform(rec: _Record, params: dict | None) -> dict:
    """The input record's scalar ``weight``/``bias`` (kept as ``Input.transform``, not applied, as lava-dl):
    one integer each, the weight in the synaptic weight range, the bias in the neuron's bias range (24-bit
    states for a family without bias)."""
    transform = {"weight": 64, "bias": 0}
    for key in ("weight", "bias"):
        if key not in rec:
            continue
        if params is None:
            raise rec.unsupported(key, "an input record without neuron group takes no input transform "
                                       "(lava-dl writes one only with a neuron)")
        value = rec.ints(key).reshape(-1)
        if value.size != 1:
            raise rec.error(key, f"expected one value (a scalar transform), got {value.size}")
        lo, hi = WEIGHT_MIN, WEIGHT_MAX
        if key == "bias":
            spec = params["neuron_proc"].spec
            lo, hi = (spec.param(spec.bias_param).lo, spec.param(spec.bias_param).hi) if spec.bias_param \
                else (STATE_MIN, STATE_MAX)
        if not lo <= int(value[0]) <= hi:
            raise rec.error(key, f"{int(value[0])} is outside [{lo}, {hi}]")
        transform[key] = int(value[0])
    return transform


def _input_block(rec: _Record, shape_xyc: tuple[int, ...], params: dict, message_bits: int) -> Input:
    transform = _input_transform(rec, params)
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
    if weight.ndim == 0 or weight.size == 0:
        raise rec.error(key, f"expected a 2-D (N_out, N_in) weight, got shape {weight.shape}")
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
    if weight.size and (weight.min() < WEIGHT_MIN or weight.max() > WEIGHT_MAX):
        raise rec.error(key, f"weights must lie in [{WEIGHT_MIN}, {WEIGHT_MAX}] (8-bit magnitude and sign), "
                             f"got values in [{weight.min()}, {weight.max()}]")
    if weight.ndim == 5 and weight.shape[-1] == 1:
        weight = weight[..., 0]
    if shared and weight.ndim == 2:
        weight = weight.reshape(1, 1, *weight.shape)
    if weight.ndim != 4 or weight.size == 0 or shared and weight.shape[:2] != (1, 1):
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
        groups = rec.size("groups")
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
        if field in rec and rec.integer(field) != expected:
            raise rec.error(field, f"{rec.integer(field)} disagrees with the weight and the input: expected "
                                   f"{expected}")
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
    lava_weight = kernel_to_lava(weight[0, 0] if shared else weight)
    geometry = dict(weight=lava_weight, stride=stride, padding=padding, dilation=dilation, kernel=kernel_xy)
    if not shared:
        geometry["groups"] = groups
    return geometry


#: Weighted record types and the netx block class each builds.
_WEIGHTED = {"dense": Dense, "dense_rec": RecurrentDense, "conv": Conv, "convT": ConvT, "pool": Pool,
             "unpool": Unpool}
_ROW_NAMES = {"dense": "Dense", "dense_rec": "Dense", "conv": "Conv", "convT": "ConvT", "pool": "Pool",
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
            raise rec.unsupported("type", f"layer type '{layer_type}' is not implemented")
        if layer_type not in RECORD_FIELDS:
            raise rec.error("type", f"unknown layer type {layer_type!r}; expected one of "
                                    f"{sorted(RECORD_FIELDS)}")
        rec.check_fields(layer_type)
        if layer_type == "flatten":
            self._flatten(rec)
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

    def _flatten(self, rec: _Record) -> None:
        """A ``flatten`` record: the next dense layer reads the previous output in torch's flattening
        order. Its ``shape`` (``[C*H*W, 1, 1]``, or a legacy ``[1, 1, n]``) must hold as many neurons as
        that output."""
        self.flatten_next = True
        if "shape" not in rec:
            return
        shape = rec.shape()
        prev = self.layers[-1].shape if self.layers else self.cur_shape
        if prev is not None and math.prod(shape) != math.prod(prev):
            raise rec.error("shape", f"{list(shape)} holds {math.prod(shape)} neurons, the flattened "
                                     f"previous output {tuple(prev)} (x, y, c) {math.prod(prev)}")
        if sum(1 for n in shape if n != 1) > 1:
            raise rec.error("shape", f"expected a flat shape such as [{math.prod(shape)}, 1, 1], "
                                     f"got {list(shape)}")

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
                if math.prod(prev.out.shape) != math.prod(block.inp.shape):
                    raise rec.error("shape", f"its input size {math.prod(block.inp.shape)} does not match "
                                             f"the previous layer's flattened output {tuple(prev.out.shape)}")
                prev.out.transpose([2, 1, 0]).flatten().connect(block.inp)
            else:
                if tuple(prev.out.shape) != tuple(block.inp.shape):
                    raise rec.error("shape", f"its input shape {tuple(block.inp.shape)} does not match the "
                                             f"previous layer's output {tuple(prev.out.shape)}")
                prev.out.connect(block.inp)
        if len(block.inp.shape) == 1:
            self.flatten_next = False
        self._append(block, rec, row, lag - int(delay_shift))

    def _skip(self, shape: tuple[int, ...], params: dict) -> None:
        """A skipped record: the next block takes its shape and, as lava-dl, its messages' width."""
        self.cur_shape = shape
        self.message_bits, self.message_exp = output_message_width(params)

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
            _input_transform(rec, None)
            self.cur_shape = shape_xyc
            return
        params = neuron_params(rec, rec.group["neuron"], role="input", shape=shape_xyc,
                               **self._place("input", False))
        if rec.index < self.skip_layers:
            self._skip(shape_xyc, params)
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
        params = neuron_params(rec, neuron, role=role, delay_shift=delay_shift, shape=shape_out, **place)
        in_shape = self._input_shape(rec, layer_type, skipped)
        weights, geometry = {}, {}
        for port, key in _weight_keys(params).items():
            if dense:
                n_in = None if in_shape is None else int(np.prod(in_shape))
                weight = _dense_weight(rec, shape_out[0], n_in, key)
                _check_features(rec, weight, key)
                weights[port] = _optimized(rec, key, weight)
            else:
                geometry = _conv_geometry(rec, layer_type, in_shape, shape_out, key)
                weights[port] = geometry.pop("weight")
        if dense and len({np.shape(w[0]) for w in weights.values()}) > 1:
            shapes = [np.shape(w[0]) for w in weights.values()]
            raise rec.error(list(_weight_keys(params).values())[-1],
                            f"the weight parts have different shapes {shapes}")
        bias = _bias(rec, params, shape_out)
        n_in = int(np.asarray(next(iter(weights.values()))[0]).shape[1]) if dense else None
        extra = self._delays(rec, layer_type, shape_out, n_in)
        if layer_type == "dense_rec":
            extra.update(self._recurrent(rec, params, shape_out[0]))
        if skipped:
            self._skip(shape_out, params)
            return
        message_exp = _receiver_exp(params, self.options) + self.message_exp
        if not self.layers and self.message_bits:
            message_exp = 0  # graded network input comes in the first block's own input units
        common = dict(shape=shape_out, neuron_params=params, weights=weights, bias=bias,
                      input_message_bits=self.message_bits, input_message_exp=message_exp, **extra)
        kernel = geometry.pop("kernel", None)
        if dense:
            # a complex (two-port) dense record is lava-dl's ComplexDense block
            block_cls = ComplexDense if layer_type == "dense" and len(weights) == 2 else _WEIGHTED[layer_type]
            block = block_cls(sparse_synapse=self.sparse, **common)
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
                raise rec.error("type", f"a dense layer after a block of shape {prev} needs a 'flatten' "
                                        f"record in between")
            return tuple(prev)
        if self.layers:
            self.cur_shape = tuple(self.layers[-1].shape)
        if self.cur_shape is None:
            raise rec.error("type", "the input shape of this first layer could not be inferred; pass "
                                    "input_shape=(x, y, c) to Network")
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


def _check_features(rec: _Record, weight: np.ndarray, key: str) -> None:
    """A dense record's ``inFeatures``/``outFeatures`` (when present) equal its weight's columns/rows."""
    for field, axis in (("inFeatures", 1), ("outFeatures", 0)):
        if field in rec:
            declared = rec.size(field)
            if declared != weight.shape[axis]:
                raise rec.error(field, f"{declared} disagrees with the {('rows', 'columns')[axis]} of "
                                       f"'{key}' (shape {weight.shape})")


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
    NetxFormatError
        The file is not a valid network: not a readable hdf5 file (damaged, truncated, a directory),
        beyond the size limits, or a malformed record. The message names the file, and for a record
        the layer and the field (also attributes ``path``, ``layer``, ``field``).
    NetxUnsupportedError
        A well-formed record that cannot be deployed (e.g. ``dense_comp``); a subclass of both
        :class:`NetxFormatError` and ``NotImplementedError``.
    NetxTypeError
        ``path`` is not a path (``None``, an open ``h5py.File``); also a ``TypeError``.
    NetxFileNotFoundError
        No such file; also a ``FileNotFoundError``.
    """
    _check_reset_interval(reset_interval)
    _check_modes(reset_mode, delay_mode)
    path = _config_path(path)
    try:
        with _open(path) as f:
            _scan(f, path)
            reset_mode, delay_mode = default_modes(f, reset_mode, delay_mode)
            options = dict(reset_interval=reset_interval, reset_offset=reset_offset, reset_mode=reset_mode,
                           spike_exp=spike_exp)
            builder = _Builder(path, options, input_message_bits, input_shape, skip_layers, sparse_fc_layer,
                               delay_mode)
            records = read_layer_records(f)
            count = len(records) if num_layers is None else min(len(records), int(num_layers))
            for i in range(count):
                builder.add(_Record(records[i], i))
    except NetxFormatError as err:
        err.locate(path)
        raise
    if not builder.layers:
        raise NetxFormatError(f"no block was built (num_layers={num_layers}, skip_layers={skip_layers})",
                              path=path)
    return builder.layers, "\n".join(builder.rows)


#: The record types :func:`create_block` builds on their own (the others need the layers in front).
SINGLE_BLOCK_TYPES = ("input", "dense", "dense_rec", "conv", "convT", "pool", "unpool")


def _single_block_options(reset_interval: int | None, reset_offset: int, spike_exp: int) -> dict:
    """Network options that give a lone block the reset phase ``reset_offset`` (lava-dl's per-block
    phase): with ``reset_mode="lava-dl"`` the first block's phase is the options' offset + 1."""
    _check_reset_interval(reset_interval)
    return dict(reset_interval=reset_interval, reset_offset=int(reset_offset) - 1, reset_mode="lava-dl",
                spike_exp=spike_exp)


def _group_of(group: ty.Any, what: str) -> h5py.Group:
    """An open hdf5 group, given as such or as lava-dl's ``NetDict`` view of it (``net.net_config``)."""
    from lava_dl.netx.utils import NetDict

    if isinstance(group, NetDict):
        group = group.f
    if not isinstance(group, h5py.Group):
        raise NetxTypeError(f"{what} takes an open hdf5 group (such as f['layer']['1'] or "
                            f"net.net_config['layer'][1]), got {type(group).__name__}")
    return group


def _record_of(group: h5py.Group) -> _Record:
    """The ``layer/<i>`` record ``group`` (its index from its name, for the error messages)."""
    index, _ = _location(group.name.strip("/"))
    return _Record(group, 0 if index is None else index)


def create_block(layer_config: h5py.Group, layer_type: str | None = None, *,
                 input_shape: ty.Sequence[int] | None = None, input_message_bits: int = 0,
                 reset_interval: int | None = None, reset_offset: int = 0, spike_exp: int = 6,
                 sparse_synapse: bool = False) -> tuple[ty.Any, str]:
    """One block from one ``layer/<i>`` record, unconnected, and its summary-table row.

    The engine of lava-dl's ``Network.create_input`` / ``create_dense`` / ``create_conv`` (and of
    ``create_convT`` / ``create_pool`` / ``create_unpool``, which lava-dl did not implement), for
    code that builds a network record by record. :class:`Network` builds whole files and places
    each block itself; here the caller connects the blocks (``prev.out.connect(block.inp)``,
    through ``transpose([2, 1, 0]).flatten()`` after a ``flatten`` record, as lava-dl does).

    Parameters
    ----------
    layer_config : h5py.Group or NetDict
        The record, e.g. ``f['layer']['2']`` of an open file, or ``net.net_config['layer'][2]``.
    layer_type : str, optional
        The record type the caller expects (default: the record's own ``type``); a record of
        another type raises.
    input_shape : tuple of int, optional
        ``(x, y, c)`` entering a conv-like record's synapse (required for those); ignored by
        ``input`` and dense records, whose weights give it.
    input_message_bits : int, default 0
        Width of the messages the block receives (0: binary spikes).
    reset_interval : int, optional
        Per-sample reset interval (None: no reset).
    reset_offset : int, default 0
        The block's own reset phase, as lava-dl passes it: its states are zeroed before the steps
        ``reset_offset + k * reset_interval`` (lava-dl's ``Network`` gives block ``k`` the phase
        ``Network.reset_offset + 1 + k``, which is ``reset_mode="lava-dl"``).
    spike_exp : int, default 6
        Graded-spike fractional bits (sigma-delta families).
    sparse_synapse : bool, default False
        A dense record's synapse becomes a CSR ``Sparse`` synapse.

    Returns
    -------
    tuple
        The block process and its row of the network's summary table.

    Raises
    ------
    NetxFormatError
        A malformed record, an ``input`` record without neuron (it builds no block), a record of
        another type than ``layer_type``, or a conv-like record without ``input_shape``.
    NetxUnsupportedError
        ``flatten``, ``average`` and ``concat`` records (they act on the layers in front of them:
        build the file with :class:`Network`), and ``dense_comp``.
    """
    layer_config = _group_of(layer_config, "create_block")
    options = _single_block_options(reset_interval, reset_offset, spike_exp)
    rec = _record_of(layer_config)
    path = layer_config.file.filename
    try:
        found = rec.string("type")
        if layer_type is not None and found != layer_type:
            raise rec.error("type", f"is a '{found}' record; expected '{layer_type}'")
        if found not in SINGLE_BLOCK_TYPES:
            if found in RECORD_FIELDS or found in NOT_IMPLEMENTED_TYPES:
                raise rec.unsupported("type", f"a '{found}' record is not a block of its own (it acts on the "
                                              f"layers in front of it); build the file with Network")
            raise rec.error("type", f"unknown layer type {found!r}; expected one of "
                                    f"{list(SINGLE_BLOCK_TYPES)}")
        rec.check_fields(found)
        if found == "input" and "neuron" not in rec:
            raise rec.error("neuron", "an input record without neuron builds no block (the network's input "
                                      "then enters the next record's synapse)")
        if found in ("conv", "convT", "pool", "unpool") and input_shape is None:
            raise rec.error("type", f"a '{found}' record needs input_shape=(x, y, c) of its input")
        _, delay_mode = default_modes(layer_config.file)
        builder = _Builder(path, options, input_message_bits, input_shape, 0, sparse_synapse, delay_mode)
        if found == "input":
            builder._input(rec)
        else:
            builder._weighted(rec, found)
    except NetxFormatError as err:
        err.locate(path)
        raise
    return builder.layers[-1], builder.rows[-1]


def get_neuron_params(neuron_config: h5py.Group, input: bool = False, reset_interval: int | None = None,
                      reset_offset: int = 0, spike_exp: int = 6) -> dict:
    """Neuron process and arguments of a record's ``neuron`` group (lava-dl's
    ``Network.get_neuron_params``).

    Parameters
    ----------
    neuron_config : h5py.Group or NetDict
        The ``neuron`` group of a record.
    input : bool, default False
        Whether the record is the network's input layer (sigma-delta: the ``Delta`` process).
    reset_interval, reset_offset, spike_exp
        As for :func:`create_block`.

    Returns
    -------
    dict
        ``neuron_proc`` (this package's neuron Process for the family), ``bias_key``,
        ``num_message_bits`` and the Process's arguments, in this package's units (lava-dl's
        dict held lava-nc's processes and units, e.g. ``du = iDecay - 1``; here the integer
        fields as the file holds them). Block constructors take it as ``neuron_params``.
    """
    neuron_config = _group_of(neuron_config, "get_neuron_params")
    options = _single_block_options(reset_interval, reset_offset, spike_exp)
    rec = _record_of(neuron_config.parent)
    try:
        return neuron_params(rec, neuron_config, role="input" if input else _role(neuron_config),
                             layer_type="input" if input else "dense", options=options)
    except NetxFormatError as err:
        err.locate(neuron_config.file.filename)
        raise


def is_lava_dl_file(f: h5py.File) -> bool:
    """Whether the file was written by lava_dl (root attribute ``producer``), not by lava-dl 0.6."""
    key, value = records.PRODUCER
    try:
        stamp = f.attrs.get(key)
    except _H5PY_ERRORS as err:
        raise NetxFormatError(f"damaged file: cannot read the root attributes ({type(err).__name__}: {err})",
                              path=f.filename) from err
    if isinstance(stamp, bytes):
        stamp = stamp.decode("ascii", "replace")
    return stamp == value


RESET_MODES = ("slayer", "lava-dl")


def _check_reset_interval(reset_interval: int | None) -> None:
    if reset_interval is not None and int(reset_interval) < 1:
        raise ValueError(f"reset_interval must be >= 1 or None, got {reset_interval}")


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
    NetxFormatError
        If ``f`` is a path that does not lead to a readable hdf5 file (see :func:`build_layers`).
    """
    _check_modes(reset_mode, delay_mode)
    if reset_mode is not None and delay_mode is not None:
        return reset_mode, delay_mode
    if isinstance(f, h5py.File):
        stamped = is_lava_dl_file(f)
    else:
        path = _config_path(f)
        with _open(path) as handle:
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


def __getattr__(name: str):
    """lava-dl's ``netx.hdf5.PyNetworkModel``: the ProcessModel of :class:`Network` (imported when asked
    for, so that reading files does not load the ProcessModels)."""
    if name == "PyNetworkModel":
        from lava_dl.process_models.netx_models import SubNetworkModel

        return SubNetworkModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
