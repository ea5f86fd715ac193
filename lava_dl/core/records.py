"""Write hdf5 layer records exactly as lava-dl 0.6 ``export_hdf5`` writes them.

Only h5py and numpy are used here (no Lava, no torch), so the training side
(``lava_dl.slayer``) writes network files that :class:`lava_dl.netx.hdf5.Network`
reads back, without importing Lava.

Layout and dtypes (reference-hdf5.md §3):

* ``type``: ``(1,)`` fixed-length ``S10`` bytes;
* ``shape``: int64, torch order (``(C, H, W)`` or ``(N,)``);
* ``weight``, ``bias``, ``delay``: float32 holding integers (a complex synapse
  writes ``weight/real`` and ``weight/imag`` instead of ``weight``);
* kernel geometry (``kernelSize``, ``stride``, ``padding``, ``dilation``):
  int64 ``(2,)`` in torch ``(H, W)`` order; channel counts int64 scalars;
* ``neuron/type``: scalar variable-length string; other neuron fields int64
  (bool for booleans, int64 arrays for per-channel values).

Fields lava-dl 0.6 does not have (its readers ignore them; a file without them keeps
lava-dl's meaning):

* ``neuron/cumError`` (bool, sigma-delta ``SDNN`` input and hidden neurons): the delta
  encoder fires on its accumulated error (slayer ``cum_error=True``, Lava ``cum_error = 1``).
  Written only when set; absent means False, which is what lava-dl deploys.

A ``neuron`` argument is a dict ``{hdf5 key: value}`` that includes ``'type'``,
e.g. ``{'type': 'CUBA', 'iDecay': 4096, 'vDecay': 415, 'vThMant': 6,
'refDelay': 1, 'gradedSpike': False}``.

Typical use::

    with h5py.File(path, 'w') as f:
        layer = f.create_group('layer')
        write_input(layer.create_group('0'), shape=(784,), neuron=...)
        write_dense(layer.create_group('1'), shape=(10,), weight=w, neuron=...)
"""

from __future__ import annotations

import typing as ty

import h5py
import numpy as np

__all__ = [
    "NetxFormatError",
    "NetxUnsupportedError",
    "NetxTypeError",
    "NetxFileNotFoundError",
    "Hdf5FormatError",
    "LayerRecord",
    "decode_str",
    "PRODUCER",
    "write_type",
    "write_neuron",
    "write_input",
    "write_dense",
    "write_conv",
    "write_pool",
    "write_conv_transpose",
    "write_unpool",
    "write_average",
    "write_flatten",
    "write_concat",
]

class NetxFormatError(ValueError):
    """An hdf5 network file does not describe a valid network.

    The message names the file (once the reader knows it), the layer index and the
    offending field: ``"<path>: layer <i>, field '<field>': <reason>"``. Raised by both
    readers, :mod:`lava_dl.netx` (Lava) and :mod:`lava_dl.slayer.auto` (training);
    ``Hdf5FormatError`` is the same class.

    Parameters
    ----------
    reason : str
        What is wrong.
    path : str, optional
        The file.
    layer : int, optional
        Index of the record (``layer/<i>``).
    field : str, optional
        hdf5 field inside the record (e.g. ``'weight'``, ``'neuron/vThMant'``).

    Attributes
    ----------
    reason, path, layer, field
        As given; :meth:`locate` sets ``path`` later.
    """

    def __init__(self, reason: str, *, path: str | None = None, layer: int | None = None,
                 field: str | None = None) -> None:
        self.reason, self.path, self.layer, self.field = str(reason), path, layer, field
        super().__init__(self._text())

    def _text(self) -> str:
        where = ", ".join(part for part in (
            None if self.layer is None else f"layer {self.layer}",
            None if self.field is None else f"field '{self.field}'") if part)
        text = f"{where}: {self.reason}" if where else self.reason
        return text if self.path is None else f"{self.path}: {text}"

    def locate(self, path: str) -> NetxFormatError:
        """Name the file ``path`` in this error (kept if one is named already); return the error."""
        if self.path is None:
            self.path = str(path)
            self.args = (self._text(),)
        return self

    def __reduce__(self):
        return _rebuild_error, (type(self), self.reason, self.path, self.layer, self.field)


def _rebuild_error(cls: type, reason: str, path, layer, field) -> NetxFormatError:
    return cls(reason, path=path, layer=layer, field=field)


#: Former name of :class:`NetxFormatError` (the same class).
Hdf5FormatError = NetxFormatError


class NetxUnsupportedError(NetxFormatError, NotImplementedError):
    """A well-formed field that cannot be deployed (also a ``NotImplementedError``)."""


class NetxTypeError(NetxFormatError, TypeError):
    """``net_config`` is not a file's path (``None``, an open ``h5py.File`` ...); also a ``TypeError``."""


class NetxFileNotFoundError(NetxFormatError, FileNotFoundError):
    """The network file does not exist (also a ``FileNotFoundError``)."""


def decode_str(value: ty.Any) -> str:
    """Decode an hdf5 string value in any form lava-dl writes.

    Accepts a scalar variable-length string (bytes or str), a fixed-length ``S10``
    array of shape ``(1,)`` (first element) or numpy bytes.
    """
    arr = np.asarray(value)
    if arr.shape:
        if arr.size == 0:
            raise ValueError("empty string dataset")
        value = arr.reshape(-1)[0]
    elif arr.dtype.kind in "OSU":
        value = arr[()]
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("ascii")
    return str(value)


class LayerRecord:
    """Read access to one ``layer/<i>`` group; every error names the layer and the field.

    Shared by the two readers of the format (:mod:`lava_dl.netx`, :mod:`lava_dl.slayer.auto`).
    """

    def __init__(self, group: h5py.Group, index: int) -> None:
        self.group = group
        self.index = index

    def error(self, field: str, message: str) -> NetxFormatError:
        """A format error naming this layer and ``field``."""
        return NetxFormatError(message, layer=self.index, field=field)

    def unsupported(self, field: str, message: str) -> NotImplementedError:
        """A well-formed field that cannot be honoured, naming this layer and ``field``."""
        return NotImplementedError(f"layer {self.index}, field '{field}': {message}")

    def __contains__(self, key: str) -> bool:
        return key in self.group

    def raw(self, key: str, group: h5py.Group | None = None, prefix: str = "") -> ty.Any:
        """``dataset[()]`` of ``key`` in this record (or in ``group``, named ``prefix + key``)."""
        group = self.group if group is None else group
        if key not in group:
            raise self.error(prefix + key, "required field is missing")
        obj = group[key]
        if not isinstance(obj, h5py.Dataset):
            raise self.error(prefix + key, "expected a dataset, found a group")
        try:
            return obj[()]
        except (OSError, RuntimeError, ValueError, TypeError) as err:  # h5py on a damaged file
            raise self.error(prefix + key, f"cannot read the dataset: {err}") from err

    def string(self, key: str, group: h5py.Group | None = None, prefix: str = "") -> str:
        """A string field (any form lava-dl writes)."""
        try:
            return decode_str(self.raw(key, group, prefix))
        except (ValueError, UnicodeDecodeError) as err:
            raise self.error(prefix + key, f"cannot decode a string: {err}") from err

    def numbers(self, key: str) -> np.ndarray:
        """Integer-valued numbers as float64 (lava-dl stores integers as float32; a weight's ``-0.0``
        stays as written); fractional or non-finite values are an error."""
        value = np.asarray(self.raw(key))
        if value.dtype.kind not in "iufb":
            raise self.error(key, f"expected numbers, got dtype {value.dtype}")
        value = value.astype(np.float64)
        if not np.all(np.isfinite(value)):
            raise self.error(key, "contains non-finite values")
        if value.size and np.max(np.abs(value)) >= 2.0 ** 53:
            raise self.error(key, f"holds values beyond any integer field (|value| up to "
                                  f"{np.max(np.abs(value)):g})")
        if not np.all(np.mod(value, 1) == 0):
            raise self.error(key, "holds non-integer values (Loihi weights, biases, delays and geometry are "
                                  "integers)")
        return value

    def ints(self, key: str, ndim: int | None = None) -> np.ndarray:
        """:meth:`numbers` as int64, optionally of ``ndim`` dimensions."""
        value = self.numbers(key).astype(np.int64)
        if ndim is not None and value.ndim != ndim:
            raise self.error(key, f"expected a {ndim}-D array, got shape {value.shape}")
        return value

    def integer(self, key: str, default: int | None = None) -> int:
        """One integer (``default`` when the field is absent and a default is given)."""
        if default is not None and key not in self:
            return default
        value = self.ints(key).reshape(-1)
        if value.size != 1:
            raise self.error(key, f"expected one value, got {value.size}")
        return int(value[0])

    def pair(self, key: str, default: tuple[int, int] | None = None) -> tuple[int, int]:
        """Kernel geometry in torch ``(H, W)`` order (a scalar counts for both)."""
        if default is not None and key not in self:
            return default
        value = self.ints(key).reshape(-1)
        if value.size == 1:
            value = np.repeat(value, 2)
        if value.size != 2:
            raise self.error(key, f"expected a scalar or an (H, W) pair, got {value.size} values")
        return int(value[0]), int(value[1])

    def shape(self) -> tuple[int, ...]:
        """The record's ``shape`` (torch order), positive sizes."""
        value = self.ints("shape").reshape(-1)
        if value.size == 0 or np.any(value <= 0):
            raise self.error("shape", f"expected positive sizes, got {value.tolist()}")
        return tuple(int(v) for v in value)


#: Root attribute that marks a file written by lava_dl (lava-dl 0.6 writes no attributes). netx
#: reads it to apply this package's exact semantics (e.g. where axonal delays act) instead of
#: lava-dl's behaviour for its own files.
PRODUCER = ("producer", "lava_dl")

Pair = int | ty.Sequence[int]
#: A real weight array, or a complex one as ``{'real': array, 'imag': array}`` (resonator synapses).
Weight = np.ndarray | ty.Mapping[str, np.ndarray]


def write_type(group: h5py.Group, type_name: str) -> None:
    """Write the ``type`` dataset (shape ``(1,)``, dtype ``S10``) and stamp the file as lava_dl's."""
    group.create_dataset("type", (1,), "S10", [type_name.encode("ascii", "ignore")])
    group.file.attrs[PRODUCER[0]] = PRODUCER[1]


def _write_shape(group: h5py.Group, shape: ty.Sequence[int]) -> None:
    group.create_dataset("shape", data=np.asarray(shape, dtype=np.int64).reshape(-1))


def _float32(group: h5py.Group, key: str, value, shape: tuple | None = None) -> None:
    """Write ``value`` as the float32 dataset ``key``; ``ValueError`` (naming the dataset) if it
    holds NaN/inf or a value beyond float32 (a weight, bias or delay is a number)."""
    arr = np.asarray(value, dtype=np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        raise ValueError(f"{group.name}/{key}: {int((~finite).sum())} of {arr.size} values are NaN or inf; "
                         "the record would not describe a network")
    if arr.size and np.abs(arr).max() > np.finfo(np.float32).max:
        raise ValueError(f"{group.name}/{key}: values up to {np.abs(arr).max():g} do not fit float32")
    arr = arr.astype(np.float32)
    if shape is not None:
        arr = arr.reshape(shape)
    group.create_dataset(key, data=arr)


def _weights(weight: Weight, ndim: int | None, what: str) -> dict[str, np.ndarray]:
    """Datasets ``{key: array}``: ``weight``, or ``weight/real`` and ``weight/imag`` for a complex weight."""
    if isinstance(weight, ty.Mapping):
        if set(weight) != {"real", "imag"}:
            raise ValueError(f"a complex {what} weight is a mapping with exactly the keys 'real' and 'imag', "
                             f"got {sorted(weight)}")
        parts = {f"weight/{k}": np.asarray(weight[k]) for k in ("real", "imag")}
        if parts["weight/real"].shape != parts["weight/imag"].shape:
            raise ValueError(f"complex {what} weight: real part of shape {parts['weight/real'].shape} and "
                             f"imaginary part of shape {parts['weight/imag'].shape} differ")
    else:
        parts = {"weight": np.asarray(weight)}
    for key, arr in parts.items():
        if ndim is not None and arr.ndim != ndim:
            raise ValueError(f"{what} {key} must be 2-D (N_out, N_in), got shape {arr.shape}")
    return parts


def _pair(value: Pair) -> np.ndarray:
    arr = np.asarray(value, dtype=np.int64).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2:
        raise ValueError(f"expected an int or an (H, W) pair, got {value!r}")
    return arr


def write_neuron(group: h5py.Group, neuron: ty.Mapping[str, ty.Any]) -> None:
    """Write a ``neuron`` sub-group from a dict of hdf5 keys (must include ``'type'``).

    Strings become variable-length string scalars, booleans numpy bools,
    integers int64 scalars or arrays, other numbers float64.
    """
    if "type" not in neuron:
        raise ValueError("the neuron dict must contain the hdf5 'type' (e.g. 'CUBA')")
    sub = group.create_group("neuron")
    for key, value in neuron.items():
        if isinstance(value, str):
            sub.create_dataset(key, data=value, dtype=h5py.string_dtype())
            continue
        arr = np.asarray(value)
        if arr.dtype.kind == "b":
            data = arr.astype(np.bool_)
        elif arr.dtype.kind in "iu":
            data = arr.astype(np.int64)
        else:
            data = arr.astype(np.float64)
        sub.create_dataset(key, data=data)


def write_input(
    group: h5py.Group,
    shape: ty.Sequence[int],
    neuron: ty.Mapping[str, ty.Any] | None = None,
    weight: float | None = None,
    bias: float | None = None,
) -> None:
    """Write an ``input`` record.

    Parameters
    ----------
    group : h5py.Group
        Empty group ``layer/<i>``.
    shape : sequence of int
        Torch-order shape of the input neurons (``(C, H, W)`` or ``(N,)``).
    neuron : dict, optional
        Neuron fields; without it the record only fixes the input shape.
    weight, bias : float, optional
        Scalar input transform (stored as float32 ``(1,)``, ignored by netx).
    """
    write_type(group, "input")
    _write_shape(group, shape)
    if weight is not None:
        _float32(group, "weight", weight, (1,))
    if bias is not None:
        _float32(group, "bias", bias, (1,))
    if neuron is not None:
        write_neuron(group, neuron)


def _write_synapse_and_neuron(group: h5py.Group, weights: dict, bias, delay, neuron) -> None:
    """The parts a ``dense`` and a ``conv`` record share: weight datasets, bias, delay, neuron."""
    for key, arr in weights.items():
        _float32(group, key, arr)
    if bias is not None:
        _float32(group, "bias", np.asarray(bias).reshape(-1))
    if delay is not None:
        _float32(group, "delay", np.asarray(delay).reshape(-1))
    if neuron is not None:
        write_neuron(group, neuron)


def write_dense(
    group: h5py.Group,
    shape: ty.Sequence[int],
    weight: Weight,
    bias: np.ndarray | None = None,
    neuron: ty.Mapping[str, ty.Any] | None = None,
    delay: np.ndarray | None = None,
    weight_rec: Weight | None = None,
    bias_rec: np.ndarray | None = None,
) -> None:
    """Write a ``dense`` record (``dense_rec`` with a recurrent weight).

    Parameters
    ----------
    group : h5py.Group
        Empty group ``layer/<i>``.
    shape : sequence of int
        ``(N_out,)``.
    weight : numpy.ndarray or mapping
        Integer weights ``(N_out, N_in)``; row = output neuron. A complex (resonator)
        weight is ``{'real': array, 'imag': array}``, written as the float32 datasets
        ``weight/real`` and ``weight/imag`` instead of ``weight``.
    bias : numpy.ndarray, optional
        ``(N_out,)`` integer bias (lava-dl writes it only with a norm).
    neuron : dict, optional
        Neuron fields; omitted for ``Affine(dynamics=False)`` blocks.
    delay : numpy.ndarray, optional
        Axonal delay of each output neuron ``(N_out,)``, in steps.
    weight_rec : numpy.ndarray or mapping, optional
        Recurrent weights ``(N_out, N_out)`` (row = target neuron); the record type becomes
        ``dense_rec``. Complex: ``{'real', 'imag'}`` as ``weight_rec/real``, ``weight_rec/imag``.
    bias_rec : numpy.ndarray, optional
        ``(N_out,)`` constant the recurrent synapse adds to every neuron input each step
        (KWTA's inhibition offset), in weight units (an integer like a weight).
    """
    parts = _weights(weight, 2, "dense")
    first = next(iter(parts.values()))
    write_type(group, "dense" if weight_rec is None else "dense_rec")
    _write_shape(group, shape)
    group.create_dataset("inFeatures", data=np.int64(first.shape[1]))
    group.create_dataset("outFeatures", data=np.int64(first.shape[0]))
    if weight_rec is not None:
        rec = _weights(weight_rec, 2, "recurrent")
        for key, arr in rec.items():
            if arr.shape != (first.shape[0], first.shape[0]):
                raise ValueError(f"recurrent weight {key} must be square ({first.shape[0]}, "
                                 f"{first.shape[0]}), got shape {arr.shape}")
            _float32(group, key.replace("weight", "weight_rec", 1), arr)
    if bias_rec is not None:
        _float32(group, "bias_rec", np.asarray(bias_rec).reshape(-1))
    _write_synapse_and_neuron(group, parts, bias, delay, neuron)


def write_conv(
    group: h5py.Group,
    shape: ty.Sequence[int],
    weight: Weight,
    in_channels: int,
    out_channels: int,
    kernel_size: Pair,
    stride: Pair = 1,
    padding: Pair = 0,
    dilation: Pair = 1,
    groups: int = 1,
    bias: np.ndarray | None = None,
    neuron: ty.Mapping[str, ty.Any] | None = None,
    delay: np.ndarray | None = None,
) -> None:
    """Write a ``conv`` record.

    Parameters
    ----------
    group : h5py.Group
        Empty group ``layer/<i>``.
    shape : sequence of int
        Output shape ``(C_out, H_out, W_out)``.
    weight : numpy.ndarray or mapping
        Torch cross-correlation layout ``(C_out, C_in/groups, kH, kW)``
        (a trailing unit axis, as in legacy files, is kept as given). A complex
        (resonator) weight is ``{'real': array, 'imag': array}``, written as
        ``weight/real`` and ``weight/imag``.
    in_channels, out_channels, groups : int
        Channel counts and group count.
    kernel_size, stride, padding, dilation : int or (H, W) pair
        Geometry in torch ``(H, W)`` order.
    bias : numpy.ndarray, optional
        ``(C_out,)`` integer bias.
    neuron : dict, optional
        Neuron fields.
    delay : numpy.ndarray, optional
        Axonal delay per output channel ``(C_out,)``, in steps.
    """
    write_type(group, "conv")
    _write_shape(group, shape)
    group.create_dataset("inChannels", data=np.int64(in_channels))
    group.create_dataset("outChannels", data=np.int64(out_channels))
    _write_geometry(group, kernel_size, stride, padding, dilation)
    group.create_dataset("groups", data=np.int64(groups))
    _write_synapse_and_neuron(group, _weights(weight, None, "conv"), bias, delay, neuron)


def _write_geometry(group: h5py.Group, kernel_size: Pair, stride: Pair, padding: Pair,
                    dilation: Pair) -> None:
    group.create_dataset("kernelSize", data=_pair(kernel_size))
    group.create_dataset("stride", data=_pair(stride))
    group.create_dataset("padding", data=_pair(padding))
    group.create_dataset("dilation", data=_pair(dilation))


def write_pool(
    group: h5py.Group,
    shape: ty.Sequence[int],
    weight: Weight,
    kernel_size: Pair,
    stride: Pair,
    padding: Pair = 0,
    dilation: Pair = 1,
    neuron: ty.Mapping[str, ty.Any] | None = None,
    delay: np.ndarray | None = None,
    type_name: str = "pool",
) -> None:
    """Write a ``pool`` record (sum pooling of every channel with one shared kernel).

    Parameters
    ----------
    group : h5py.Group
        Empty group ``layer/<i>``.
    shape : sequence of int
        Output shape ``(C, H_out, W_out)``.
    weight : numpy.ndarray or mapping
        Shared integer kernel ``(1, 1, kH, kW)`` (complex: ``{'real', 'imag'}``).
    kernel_size, stride, padding, dilation : int or (H, W) pair
        Geometry in torch ``(H, W)`` order.
    neuron : dict, optional
        Neuron fields.
    delay : numpy.ndarray, optional
        Axonal delay per output channel ``(C,)``.
    type_name : str
        ``'pool'`` (or ``'unpool'``, see :func:`write_unpool`).
    """
    write_type(group, type_name)
    _write_shape(group, shape)
    _write_geometry(group, kernel_size, stride, padding, dilation)
    _write_synapse_and_neuron(group, _weights(weight, None, type_name), None, delay, neuron)


def write_unpool(group: h5py.Group, shape: ty.Sequence[int], weight: Weight, kernel_size: Pair, stride: Pair,
                 padding: Pair = 0, dilation: Pair = 1, neuron: ty.Mapping[str, ty.Any] | None = None,
                 delay: np.ndarray | None = None) -> None:
    """Write an ``unpool`` record: as :func:`write_pool`, for the transposed (upsampling) operation."""
    write_pool(group, shape, weight, kernel_size, stride, padding, dilation, neuron, delay, "unpool")


def write_conv_transpose(
    group: h5py.Group,
    shape: ty.Sequence[int],
    weight: Weight,
    in_channels: int,
    out_channels: int,
    kernel_size: Pair,
    stride: Pair = 1,
    padding: Pair = 0,
    dilation: Pair = 1,
    groups: int = 1,
    bias: np.ndarray | None = None,
    neuron: ty.Mapping[str, ty.Any] | None = None,
    delay: np.ndarray | None = None,
) -> None:
    """Write a ``convT`` record (transposed convolution).

    Parameters are those of :func:`write_conv`, except ``weight``: torch's transposed
    layout ``(C_in, C_out/groups, kH, kW)``.
    """
    write_type(group, "convT")
    _write_shape(group, shape)
    group.create_dataset("inChannels", data=np.int64(in_channels))
    group.create_dataset("outChannels", data=np.int64(out_channels))
    _write_geometry(group, kernel_size, stride, padding, dilation)
    group.create_dataset("groups", data=np.int64(groups))
    _write_synapse_and_neuron(group, _weights(weight, None, "convT"), bias, delay, neuron)


def write_average(group: h5py.Group, num_outputs: int) -> None:
    """Write an ``average`` record: the previous layer's neurons (torch flattening order) in
    ``num_outputs`` consecutive groups; ``shape`` is ``[num_outputs, 1, 1]`` as lava-dl meant it."""
    write_type(group, "average")
    _write_shape(group, (int(num_outputs), 1, 1))


def write_concat(group: h5py.Group, shape: ty.Sequence[int], layers: ty.Sequence[int]) -> None:
    """Write a ``concat`` record joining the outputs of ``layers`` along the channel axis.

    Parameters
    ----------
    group : h5py.Group
        Empty group ``layer/<i>``.
    shape : sequence of int
        Joined shape in torch order (``(C, H, W)`` or ``(N,)``).
    layers : sequence of int
        Indices of earlier records whose outputs are joined, in order.
    """
    write_type(group, "concat")
    _write_shape(group, shape)
    group.create_dataset("layers", data=np.asarray(layers, dtype=np.int64).reshape(-1))


def write_flatten(group: h5py.Group, shape: ty.Sequence[int]) -> None:
    """Write a ``flatten`` record (``shape`` is ``[C*H*W, 1, 1]`` in lava-dl; never read)."""
    write_type(group, "flatten")
    _write_shape(group, shape)
