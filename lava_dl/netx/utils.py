"""Helpers of :mod:`lava_dl.netx`: errors (:class:`NetxFormatError`, alias ``Hdf5FormatError``), hdf5
value decoding, weight bits, summary table."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing as ty

import h5py
import numpy as np

from lava_dl.core.records import (
    Hdf5FormatError,
    NetxFileNotFoundError,
    NetxFormatError,
    NetxTypeError,
    NetxUnsupportedError,
    decode_str,
)
from lava_dl.core.spec import NeuronSpec
from lava_dl.core.synapse import SignMode

__all__ = [
    "NetxFormatError",
    "NetxUnsupportedError",
    "NetxTypeError",
    "NetxFileNotFoundError",
    "Hdf5FormatError",
    "NetDict",
    "decode_str",
    "optimize_weight_bits",
    "SYNAPSE_SIGN_MODE",
    "num_delay_bits",
    "neuron_process_for",
    "table_header",
    "table_row",
]


class NetDict:
    """Read-only dictionary view of an hdf5 network file (lava-dl's ``netx.utils.NetDict``).

    ``net['layer'][0]['neuron']['vThMant']``: groups are ``NetDict`` views (an int key
    selects the group named by the number), string datasets (``type``) are decoded to
    ``str``, weights and biases come back as integer arrays and other datasets as their
    numpy values.

    Parameters
    ----------
    filename : str or path-like, optional
        File to open (when ``f`` is None). It is opened at the first access and stays open
        until :meth:`close`.
    mode : str
        ``h5py.File`` mode (default ``'r'``).
    f : h5py.File or h5py.Group, optional
        An open file or group to view instead.
    """

    #: Datasets returned as integer arrays (lava-dl stores them as floats).
    INTEGER_KEYS = ("weight", "weight_rec", "bias", "weight/real", "weight/imag")

    def __init__(self, filename=None, mode: str = "r", f: h5py.File | h5py.Group | None = None) -> None:
        if f is None and filename is None:
            raise ValueError("NetDict needs a filename or an open h5py file or group")
        self._filename, self._mode, self._f = filename, mode, f

    @property
    def f(self) -> h5py.File | h5py.Group:
        """The viewed hdf5 file or group (the file is opened here, at the first access)."""
        if self._f is None:
            self._f = h5py.File(self._filename, self._mode)
        return self._f

    def keys(self):
        """Names of the group's members."""
        return self.f.keys()

    def __len__(self) -> int:
        return len(self.f)

    def __iter__(self):
        return iter(self.f)

    def __contains__(self, key) -> bool:
        return str(key) in self.f

    def __getitem__(self, key):
        item = self.f[str(key)]
        if isinstance(item, h5py.Group):
            return NetDict(f=item)
        if item.dtype.kind in "OSU":
            return decode_str(item[()])
        value = item[()]
        if key in self.INTEGER_KEYS:
            return np.asarray(value).astype(np.int64)
        return value

    def close(self) -> None:
        """Close the file (when this view opened it); a later access opens it again."""
        if self._filename is not None and self._f is not None:
            self._f.close()
            self._f = None

    def __repr__(self) -> str:
        if self._f is None:
            return f"NetDict({str(self._filename)!r})"
        return f"NetDict({self._f.file.filename!r}, {self._f.name!r})"


def _fallback_optimize_weight_bits(weight: np.ndarray) -> tuple[np.ndarray, int, int, str]:
    """lava-dl netx's weight-bit optimisation, used until ``lava_dl.core.synapse`` exists.

    Lossless for mixed-sign and excitatory matrices in [-256, 254]; all-zero
    matrices are returned unchanged.
    """
    weight = np.asarray(weight).astype(np.int64)
    if weight.size == 0 or not weight.any():
        return weight, 8, 0, "EXCITATORY"
    w_max, w_min = int(weight.max()), int(weight.min())
    if w_max < 0:
        mode, scale = "INHIBITORY", -256 / w_min
    elif w_min >= 0:
        mode, scale = "EXCITATORY", 255 / w_max
    else:
        mode, scale = "MIXED", min(127 / w_max, -128 / w_min)
    mixed = int(mode == "MIXED")
    sb = int(np.floor(np.log2(scale))) + mixed
    n = 0
    for k in range(8, 0, -1):
        if np.all(weight % (1 << k) == 0):
            n = k
            break
    n -= mixed
    return weight << sb, 8 - sb - n, -sb, mode


def optimize_weight_bits(weight: np.ndarray) -> tuple[np.ndarray, int, int, ty.Any]:
    """Loihi weight representation ``(weight_int, num_weight_bits, weight_exp, sign_mode)``.

    Delegates to :func:`lava_dl.core.synapse.optimize_weight_bits` (lossless for
    every matrix) when available, else to lava-dl's netx rule.
    """
    try:
        from lava_dl.core.synapse import optimize_weight_bits as _opt
    except ImportError:
        return _fallback_optimize_weight_bits(weight)
    return _opt(np.asarray(weight))


#: lava-dl's name for the synapse sign modes (``MIXED = 1``, ``EXCITATORY = 2``, ``INHIBITORY = 3``):
#: the modes :func:`optimize_weight_bits` returns.
SYNAPSE_SIGN_MODE = SignMode


def num_delay_bits(delays: np.ndarray) -> int:
    """Bits that hold the largest of the axonal ``delays`` (non-negative integers up to 62).

    Differences from lava-dl: the count is ``max(delays).bit_length()``; lava-dl's
    ``ceil(log2(max))`` was one short for powers of two (2 bits for a delay of 4) and undefined
    for an all-zero vector.

    Raises
    ------
    ValueError
        For an empty, negative, non-integer or too large (> 62) delay.
    """
    values = np.asarray(delays, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("num_delay_bits: no delays given")
    if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
        bad = values[~np.isfinite(values) | (values != np.round(values))]
        raise ValueError(f"num_delay_bits: delays must be integers, got {bad[:3]}")
    if values.min() < 0:
        raise ValueError(f"num_delay_bits: negative delay {values.min():g}")
    if values.max() > 62:
        raise ValueError(f"num_delay_bits: delay {values.max():g} exceeds Loihi's limit of 62")
    return int(values.max()).bit_length()


_PROCESS_CACHE: dict[str, type] = {}


def neuron_process_for(spec: NeuronSpec) -> type:
    """Return the Lava Process class generated from ``spec``.

    The class is found generically: a class with ``.spec is spec`` in
    ``lava_dl.proc.<spec.name.lower()>``, else in any module of ``lava_dl/proc``.
    Adding a neuron family therefore needs no change in netx.
    """
    if spec.name in _PROCESS_CACHE:
        return _PROCESS_CACHE[spec.name]
    import lava_dl.proc as proc_pkg

    names = [f"lava_dl.proc.{spec.name.lower()}"]
    names += [f"lava_dl.proc.{m.name}" for m in pkgutil.iter_modules(proc_pkg.__path__[:1])]
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for obj in vars(module).values():
            if inspect.isclass(obj) and getattr(obj, "spec", None) is spec:
                _PROCESS_CACHE[spec.name] = obj
                return obj
    raise LookupError(f"no Lava process in lava_dl.proc is generated from the {spec.name} spec")


def table_header() -> str:
    """Header of the network summary table (lava-dl's format)."""
    return "|   Type   |  W  |  H  |  C  | ker | str | pad | dil | grp |delay|"


def table_row(
    type_str: str,
    width: int,
    height: int,
    channel: int,
    kernel: ty.Sequence[int] | None = None,
    stride: ty.Sequence[int] | None = None,
    padding: ty.Sequence[int] | None = None,
    dilation: ty.Sequence[int] | None = None,
    groups: int | None = None,
    delay: bool = False,
) -> str:
    """One row of the network summary table (lava-dl's format)."""

    def entry(data) -> str:
        if data is None:
            return f'{"":5s}|'
        arr = np.asarray(data).reshape(-1)
        if arr.size == 2:
            return f"{int(arr[0]):-2d},{int(arr[1]):-2d}|"
        return f"{int(arr[0]):-5d}|"

    row = "|" + f"{type_str:10s}|" + f"{int(width):-5d}|" + f"{int(height):-5d}|" + f"{int(channel):-5d}|"
    row += entry(kernel) + entry(stride) + entry(padding) + entry(dilation) + entry(groups)
    row += f"{str(bool(delay)):5s}|"
    return row
