"""Load an hdf5 network (``.net``) back into slayer blocks (lava-dl's ``slayer.auto``).

:class:`SequentialNetwork` reads the records ``layer/0 … n-1`` of a file written by
``export_hdf5`` (this package's or lava-dl 0.6's) and builds one slayer block per record,
with the weights, biases, neurons and axonal delays of the file, so a deployed network can
be evaluated or fine-tuned in PyTorch and exported again: export → load → export gives the
same datasets (same keys, dtypes, shapes and bytes) for every record type this package writes.

Records and the blocks they give (``<family>`` is the block module of the record's
``neuron/type``, see :func:`get_classes`):

========================================  ==========================================================
record                                    block
========================================  ==========================================================
``input``                                 ``<family>.Input`` (``cuba.Input`` without neuron)
``flatten``, ``average``                  ``cuba.Flatten``, ``cuba.Average``
``dense``                                 ``<family>.Dense``
``dense`` without ``neuron``              ``cuba.Affine(dynamics=False)``
``dense`` with ``vThMant = 2^18 - 1``     ``<family>.Affine(dynamics=True)``
``dense`` with ``neuron/sigma_output``    ``sigma_delta.Output``
``dense_rec``                             ``<family>.Recurrent``; ``<family>.KWTA`` with ``bias_rec``
``conv``, ``convT``                       ``<family>.Conv``, ``<family>.ConvT``
``pool``, ``unpool``                      ``<family>.Pool``, ``<family>.Unpool``
``concat``                                :class:`~lava_dl.slayer.block.concat.Concat`
========================================  ==========================================================

Values: integer weights ``w`` become real weights ``w / 64``, which the blocks' 8-bit
quantizer maps back to ``w`` (so they must be even integers in [-256, 254], as that
quantizer writes them); complex weights (``weight/real``, ``weight/imag``,
``weight_rec/...``) fill the two synapses of a resonator block; a ``bias`` becomes a
:class:`~lava_dl.slayer.neuron.norm.MeanOnlyBatchNorm` whose running mean is ``-bias / 64``
(evaluate in ``eval()`` mode to use it; training mode subtracts the batch mean, as any
norm does); a ``delay`` becomes ``delay=True`` with the stored whole steps. Neurons take
their family's ``neuron_params(fields)`` (e.g. :func:`lava_dl.slayer.neuron.cuba.neuron_params`)
and then the exact stored integers: per-channel decays and sigma-delta thresholds, and the
resonators' ``sinDecay``/``cosDecay``, which ``period``/``decay`` reproduce only up to
rounding.

Skip connections: a ``concat`` record joins the outputs of the earlier records its ``layers``
field names, channel-wise (axis 1), and feeds the next record; like netx, the record just
before it is joined first when the list omits it (lava-dl's form). The forward keeps each
output a later concat needs until that concat and joins the outputs at the same time index:
that is the timing of the Lava deployment, where netx delays every path that reaches a concat
earlier until the latest one arrives (:class:`lava_dl.netx.hdf5.Network`; sigma-delta blocks,
which add no step in slayer, are the case where this matters), so the output stays equal to
Lava's at the chain's offset. A concat may join input records with neuron, dense, dense_rec,
conv, convT, pool, unpool and concat records; the outputs must all be ``(C,)`` or all
``(C, H, W)`` with the same ``(H, W)``, and the record ``shape`` their join (a dense join may be
stored as ``[C, 1, 1]``). netx also refuses to join layers that send messages of different
widths (e.g. sigma-delta with binary spikes); this loader does not check that. A network without
concat records runs exactly as a chain.

Decisions:

* **KWTA** -- a ``dense_rec`` record is a ``KWTA`` block exactly when it has a
  ``bias_rec`` (only KWTA writes one). Its recurrent matrix must then have KWTA's form
  (``d`` on the diagonal, ``-64`` elsewhere): the self-excitation is ``d / 64`` and the
  number of winners the smallest ``K`` whose bias equals ``bias_rec`` (every such ``K``
  gives the same network: the bias is all that ``K`` changes). A matrix of KWTA's form
  without ``bias_rec`` (lava-dl's KWTA export wrote none) loads as a ``Recurrent`` block:
  the same forward and export, with the whole matrix trainable.
* **Affine** -- a ``dense`` record without neuron is ``Affine(dynamics=False)`` (its output
  is the synaptic input; no bias, no delay); one whose threshold mantissa is lava-dl's
  integrator marker ``(1 << 18) - 1`` is ``Affine(dynamics=True)`` of its family (output:
  the voltage). A real dense layer with that threshold would never spike anyway.
* **reduction** -- lava-dl reshaped the output to 11 groups (its gesture network's
  classes). Here ``'sum'``/``'mean'`` reduce each output channel (axis 1) over the
  remaining axes (space and time): ``N, C, ..., T -> N, C``, the same as lava-dl for 11
  output neurons. End the network with an ``average`` record for population groups.

Not stored in a file, so taken at their defaults: ``delay_shift`` (True for the spiking
families, False for inputs and sigma-delta), surrogate-gradient settings (``tau_grad``,
``scale_grad``), ``requires_grad`` of the neuron parameters (False; Recurrent/KWTA
weights True), dropout, a Dense ``mask`` and sigma-delta ``spike_exp`` (6). A network trained
with other values computes differently after loading. Sigma-delta ``cum_error`` is loaded from
``neuron/cumError`` (this package's field; False without it, as lava-dl deploys it).

Every block is checked when it is built: it is exported to memory and each field of the
record must come back with the same values, so nothing is dropped silently. A field the
block cannot reproduce raises ``NotImplementedError`` and a malformed record
:class:`Hdf5FormatError`; both messages name the layer and the field. Fields the block
adds to the file's (e.g. ``gradedSpike`` or ``inFeatures`` missing from an older file)
are defaults, and a scalar decay beside per-channel ones is exported per channel (all
equal). Only the ``layer`` group is read (lava-dl's ``simulation`` group is ignored), and
the file is read completely and closed during construction.
"""

from __future__ import annotations

import importlib
import io
import os
import types
import typing as ty

import h5py
import numpy as np
import torch
from torch import nn

from lava_dl.core.delay import MAX_BLOCK_DELAY
from lava_dl.core.records import Hdf5FormatError
from lava_dl.core.records import LayerRecord as _Record
from lava_dl.slayer._eager import eager
from lava_dl.slayer.block.base import is_complex
from lava_dl.slayer.block.concat import Concat
from lava_dl.slayer.neuron.base import DEVICE_ARGUMENTS, field_value
from lava_dl.slayer.neuron.norm import MeanOnlyBatchNorm

__all__ = ["SequentialNetwork", "get_classes", "get_neuron_params", "Hdf5FormatError", "FAMILIES",
           "REDUCTIONS", "AFFINE_THRESHOLD"]

#: Neuron families, by the name of their ``slayer.neuron`` and ``slayer.block`` modules.
FAMILIES = ("cuba", "alif", "rf", "rf_iz", "adrf", "adrf_iz", "sigma_delta")
#: Output reductions of :class:`SequentialNetwork`.
REDUCTIONS = (None, "sum", "mean")
#: Threshold mantissa that marks an ``Affine(dynamics=True)`` readout (lava-dl's integrator).
AFFINE_THRESHOLD = (1 << 18) - 1
#: Weight scale of the loaded blocks (the neurons' default; files do not store it).
_SCALE = 1 << 6
#: Largest and smallest integer weight of the 8-bit quantizer (even values only).
_WEIGHT_RANGE = (-256, 254)
#: Record types whose output a ``concat`` record may join (an ``input`` only with a neuron: netx builds
#: no layer for one without).
_JOINABLE = ("input", "dense", "dense_rec", "conv", "convT", "pool", "unpool", "concat")
#: Placeholder resonator arguments when the stored rotation has no (period, decay) the
#: constructor accepts; the stored integers replace them.
_PERIOD, _DECAY = 8.0, 0.5


def get_classes(neuron_type: str | bytes | None = None) -> tuple[types.ModuleType, types.ModuleType]:
    """The slayer neuron module and block module of an hdf5 neuron type.

    Parameters
    ----------
    neuron_type : str or bytes, optional
        hdf5 ``neuron/type``: ``CUBA`` (or legacy ``LOIHI``), ``ALIF``, ``RF_PHASE``,
        ``RF_IZHIKEVICH``, ``ADRF_PHASE``, ``ADRF_IZHIKEVICH`` or ``SDNN``. None means CUBA.

    Returns
    -------
    tuple of module
        ``(lava_dl.slayer.neuron.<family>, lava_dl.slayer.block.<family>)``.

    Raises
    ------
    NotImplementedError
        For any other type (the message lists the known ones).
    """
    if neuron_type is None:
        neuron_type = "CUBA"
    neuron_type = field_value(neuron_type)
    known = []
    for family in FAMILIES:
        module = importlib.import_module(f"lava_dl.slayer.neuron.{family}")
        spec = module.Neuron.spec
        names = (spec.hdf5_type, *spec.hdf5_aliases)
        if neuron_type in names:
            return module, importlib.import_module(f"lava_dl.slayer.block.{family}")
        known.extend(names)
    raise NotImplementedError(f"neuron type {neuron_type!r} is not implemented; known types: {sorted(known)}")


def _read_fields(group: h5py.Group | ty.Mapping[str, ty.Any], where: str = "neuron/") -> dict:
    """``{key: value}`` of the datasets of an hdf5 group (strings decoded)."""
    if not isinstance(group, h5py.Group):
        return {key: field_value(value) for key, value in group.items()}
    fields = {}
    for key, obj in group.items():
        if not isinstance(obj, h5py.Dataset):
            raise Hdf5FormatError(f"field '{where}{key}': expected a dataset, found a group")
        fields[key] = field_value(obj[()])
    return fields


def get_neuron_params(neuron_handle: h5py.Group | ty.Mapping[str, ty.Any],
                      neuron_class: types.ModuleType) -> dict:
    """Neuron arguments from an hdf5 ``neuron`` group (lava-dl's ``get_neuron_params``).

    Parameters
    ----------
    neuron_handle : h5py.Group or mapping
        The record's ``neuron`` group (or a dict of its fields).
    neuron_class : module
        The family's neuron module (first item of :func:`get_classes`); lava-dl's name for
        this argument, kept so that keyword calls work.

    Returns
    -------
    dict
        ``neuron_class.neuron_params(fields)``: arguments for the family's blocks.
    """
    return neuron_class.neuron_params(_read_fields(neuron_handle))


class _Neuron(ty.NamedTuple):
    """The neuron of a record: family modules, hdf5 fields and block arguments."""

    module: types.ModuleType
    blocks: types.ModuleType
    fields: dict
    params: dict
    output: bool  # sigma-delta output (neuron/sigma_output)
    affine: bool  # Affine(dynamics=True) marker


def _layer_groups(handle: h5py.File | h5py.Group) -> list[h5py.Group]:
    """The ``layer/<i>`` groups in order; raise if the names are not ``0 … n-1``."""
    if "layer" not in handle or not isinstance(handle["layer"], h5py.Group):
        raise Hdf5FormatError("the file has no 'layer' group")
    layer = handle["layer"]
    names = list(layer.keys())
    if not names:
        raise Hdf5FormatError("the 'layer' group holds no records")
    if not all(name.isdigit() for name in names) or sorted(int(n) for n in names) != list(range(len(names))):
        raise Hdf5FormatError(f"layer group names must be 0..{len(names) - 1}, got {sorted(names)}")
    return [layer[str(i)] for i in range(len(names))]


class SequentialNetwork(nn.Module):
    """A sequential slayer network built from an hdf5 network description (lava-dl's ``SequentialNetwork``).

    Parameters
    ----------
    network_config : str, os.PathLike or h5py.File
        The ``.net`` file (an open file or group is read and left open).
    persistent_state : bool
        Neurons carry their states from one call to the next.
    reduction : {None, 'sum', 'mean'}
        Reduce the output ``N, C, ..., T`` of every output channel over its other axes
        (space and time) to ``N, C`` (module docstring).
    weight_norm : bool
        Train the weighted blocks with weight normalisation (enabled after the weights are
        loaded; ``export_hdf5`` removes it). Pool/Unpool kernels are fixed and not normalised.
    count_log : bool
        ``forward`` also returns the event rate of every block's output (the share of
        non-zero values): ``(output, counts)`` with ``counts`` of shape ``(1, number of
        blocks)``. The blocks themselves are built without ``count_log``.

    Attributes
    ----------
    blocks : torch.nn.ModuleList
        One block per record (see the module docstring); ``blocks[i]`` is record ``layer/<i>``.
        lava-dl's :meth:`input_block`, :meth:`flatten_block`, :meth:`average_block` and
        :meth:`dense_block` return the block of one record, built the same way, without adding it.

    Raises
    ------
    Hdf5FormatError
        Malformed records (the message names the layer and the field).
    NotImplementedError
        Record types, neuron types or fields that slayer cannot represent exactly.

    Examples
    --------
    >>> net = SequentialNetwork("trained.net").eval()
    >>> y = net(x)                          # the deployed network, in PyTorch
    >>> net.train(); ...                    # fine-tune
    >>> net.export_hdf5("fine_tuned.net")
    """

    def __init__(self, network_config: str | os.PathLike | h5py.Group, persistent_state: bool = False,
                 reduction: str | None = None, weight_norm: bool = False, count_log: bool = False) -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.persistent_state = bool(persistent_state)
        self.reduction = reduction
        self.weight_norm = bool(weight_norm)
        self.count_log = bool(count_log)
        self.blocks = nn.ModuleList([])
        self._shape: tuple[int, ...] | None = None  # output shape of the last block read
        self._types: list[str] = []  # record type of every block
        self._joinable: dict[int, tuple[int, ...]] = {}  # index -> output shape, of blocks a concat may join
        self._joins: dict[int, tuple[int, ...]] = {}  # concat block index -> indices of the joined blocks
        self._last_use: dict[int, int] = {}  # joined block index -> index of the last concat reading it
        if isinstance(network_config, h5py.Group):
            self._read(network_config)
        else:
            with h5py.File(network_config, "r") as handle:
                self._read(handle)

    def _read(self, handle: h5py.Group) -> None:
        for index, group in enumerate(_layer_groups(handle)):
            self.blocks.append(self._block(_Record(group, index)))

    def read_block(self, layer_handle: h5py.Group) -> None:
        """Build the block of one more record (appended to :attr:`blocks`, fed by the last one; a
        ``concat`` record by the earlier blocks it names)."""
        self.blocks.append(self._block(_Record(layer_handle, len(self.blocks))))

    # ---- one record's block (lava-dl's ``*_block`` methods) -----------------------------------
    def input_block(self, layer_handle: h5py.Group) -> nn.Module:
        """The block of an ``input`` record (lava-dl's ``input_block``), not added to :attr:`blocks`.

        Parameters
        ----------
        layer_handle : h5py.Group
            The record's group (``layer/<i>`` of an open file).

        Returns
        -------
        torch.nn.Module
            ``<family>.Input`` with the record's neuron, ``weight`` and ``bias`` (``cuba.Input``
            without neuron), exactly as the network builds it for that record.

        Raises
        ------
        Hdf5FormatError
            The record is not an ``input`` record, or is malformed.
        NotImplementedError
            A field the block cannot reproduce.
        """
        return self._standalone_block(layer_handle, ("input",))

    def flatten_block(self, layer_handle: h5py.Group) -> nn.Module:
        """The block of a ``flatten`` record (lava-dl's ``flatten_block``), not added to :attr:`blocks`.

        Parameters
        ----------
        layer_handle : h5py.Group
            The record's group.

        Returns
        -------
        torch.nn.Module
            ``cuba.Flatten`` whose ``shape`` is the record's.

        Raises
        ------
        Hdf5FormatError
            The record is not a ``flatten`` record, or is malformed.
        """
        return self._standalone_block(layer_handle, ("flatten",))

    def average_block(self, layer_handle: h5py.Group) -> nn.Module:
        """The block of an ``average`` record (lava-dl's ``average_block``), not added to :attr:`blocks`.

        Parameters
        ----------
        layer_handle : h5py.Group
            The record's group.

        Returns
        -------
        torch.nn.Module
            ``cuba.Average`` with ``num_outputs`` the record's first shape entry.

        Raises
        ------
        Hdf5FormatError
            The record is not an ``average`` record, or its shape is not ``[num_outputs, 1, 1]``.
        """
        return self._standalone_block(layer_handle, ("average",))

    def dense_block(self, layer_handle: h5py.Group) -> nn.Module:
        """The block of a ``dense`` record (lava-dl's ``dense_block``), not added to :attr:`blocks`.

        Parameters
        ----------
        layer_handle : h5py.Group
            The record's group; a ``dense_rec`` record is accepted too.

        Returns
        -------
        torch.nn.Module
            ``<family>.Dense`` with the record's weights, bias and delays (or the ``Affine``,
            sigma-delta ``Output``, ``Recurrent`` or ``KWTA`` block the module docstring lists),
            weight-normalised when the network is.

        Raises
        ------
        Hdf5FormatError
            The record is not a ``dense``/``dense_rec`` record, or is malformed.
        NotImplementedError
            A field the block cannot reproduce.
        """
        return self._standalone_block(layer_handle, ("dense", "dense_rec"))

    def _standalone_block(self, layer_handle: h5py.Group, types: tuple[str, ...]) -> nn.Module:
        """The block of one record of a type in ``types``, read on its own.

        It is built by the path the network's construction takes (:meth:`_build_block`), but
        without the previous layer: the checks that the record fits the layer before it are
        skipped and the network's state (its blocks and the shape that the next record must
        take) is left as it was.
        """
        if not isinstance(layer_handle, h5py.Group):
            raise TypeError(f"expected an h5py.Group (a 'layer/<i>' record), got "
                            f"{type(layer_handle).__name__}")
        name = layer_handle.name.rsplit("/", 1)[-1] if layer_handle.name else ""
        rec = _Record(layer_handle, int(name) if name.isdigit() else len(self.blocks))
        layer_type = rec.string("type")
        if layer_type not in types:
            expected = " or ".join(repr(t) for t in types)
            raise rec.error("type", f"expected a {expected} record, got {layer_type!r}")
        previous = self._shape
        self._shape = None  # no previous layer to check against
        try:
            return self._build_block(rec, layer_type)
        finally:
            self._shape = previous

    # ---- records ---------------------------------------------------------------------------
    def _block(self, rec: _Record) -> nn.Module:
        """The block of the next record of the network, checked against the previous one and recorded
        (its type, and its output shape for the concat records)."""
        layer_type = rec.string("type")
        block = self._build_block(rec, layer_type)
        self._types.append(layer_type)
        if layer_type in _JOINABLE and (layer_type != "input" or "neuron" in rec):
            self._joinable[rec.index] = self._shape
        return block

    def _build_block(self, rec: _Record, layer_type: str) -> nn.Module:
        """Build, verify (:func:`_verify`) and weight-normalise the block of one record: the one path
        from a record to a block, shared by the construction and the ``*_block`` methods."""
        builders = {"input": self._input, "flatten": self._flatten, "average": self._average,
                    "dense": self._dense, "dense_rec": self._dense, "conv": self._conv, "convT": self._conv,
                    "pool": self._conv, "unpool": self._conv, "concat": self._concat}
        if layer_type not in builders:
            raise rec.unsupported("type", f"layer type {layer_type!r} is not implemented; supported: "
                                          f"{sorted(builders)}")
        block = builders[layer_type](rec, layer_type)
        _verify(rec, block)
        if self.weight_norm:
            for name in ("synapse", "recurrent_synapse"):
                synapse = getattr(block, name, None)
                if synapse is not None and layer_type not in ("pool", "unpool") \
                        and hasattr(synapse, "enable_weight_norm"):
                    synapse.enable_weight_norm()
        return block

    def _neuron(self, rec: _Record, affine_allowed: bool = False) -> _Neuron:
        group = rec.group["neuron"]
        if not isinstance(group, h5py.Group):
            raise rec.error("neuron", "expected a group")
        try:
            fields = _read_fields(group)
        except Hdf5FormatError as err:
            raise Hdf5FormatError(f"layer {rec.index}, {err}") from None
        if "type" not in fields:
            raise rec.error("neuron/type", "required field is missing")
        try:
            module, blocks = get_classes(fields["type"])
        except NotImplementedError as err:
            raise rec.unsupported("neuron/type", str(err)) from None
        threshold = np.asarray(fields.get("vThMant", -1))
        affine = (affine_allowed and hasattr(blocks, "Affine") and not is_complex(module.Neuron)
                  and threshold.size == 1 and threshold.dtype.kind in "iuf"
                  and threshold.reshape(-1)[0] == AFFINE_THRESHOLD)
        try:
            # Affine(dynamics=True) overrides the threshold (the marker may exceed the family's range)
            params = module.neuron_params({**fields, "vThMant": 0} if affine else fields)
        except ValueError as err:
            raise Hdf5FormatError(f"layer {rec.index}, {err}") from None
        params["persistent_state"] = self.persistent_state
        return _Neuron(module, blocks, fields, params, "sigma_output" in fields, affine)

    def _input(self, rec: _Record, layer_type: str) -> nn.Module:
        shape = rec.shape()
        if "neuron" not in rec:
            block = get_classes()[1].Input(None, shape=shape)
        else:
            neuron = self._neuron(rec)
            if neuron.output:
                raise rec.unsupported("neuron/sigma_output", "an input record cannot be the network output")
            # an absent transform stays absent (no parameter), as the block that wrote the record
            weight = _scalar(rec, "weight", float(_SCALE)) / _SCALE if "weight" in rec else None
            bias = _scalar(rec, "bias", 0.0) / _SCALE if "bias" in rec else None
            block = _build(rec, neuron.blocks.Input, _constructible(neuron.params), weight=weight, bias=bias,
                           shape=shape)
            _load_exact(rec, block.neuron, neuron.fields)
        self._shape = shape
        return block

    def _flatten(self, rec: _Record, layer_type: str) -> nn.Module:
        shape = rec.shape()
        size = int(np.prod(shape))
        if self._shape is not None and int(np.prod(self._shape)) != size:
            raise rec.error("shape", f"{list(shape)} does not hold the {int(np.prod(self._shape))} "
                                     f"neurons of the previous layer {self._shape}")
        block = get_classes()[1].Flatten()
        block.shape = shape
        self._shape = (size,)
        return block

    def _average(self, rec: _Record, layer_type: str) -> nn.Module:
        shape = rec.shape()
        if int(np.prod(shape)) != shape[0]:
            raise rec.error("shape", f"expected [num_outputs, 1, 1], got {list(shape)}")
        if self._shape is not None and int(np.prod(self._shape)) % shape[0]:
            raise rec.error("shape", f"the {int(np.prod(self._shape))} neurons of the previous layer do not "
                                     f"split into {shape[0]} equal groups")
        self._shape = (shape[0],)
        return get_classes()[1].Average(num_outputs=shape[0])

    def _concat(self, rec: _Record, layer_type: str) -> nn.Module:
        """A ``concat`` record: the joined blocks as netx picks them (module docstring), checked."""
        listed = [int(i) for i in rec.ints("layers").reshape(-1)]
        previous = rec.index - 1
        if previous < 0:
            raise rec.error("type", "a 'concat' record needs layers in front of it")
        if previous not in self._joinable:
            raise rec.error("type", f"a 'concat' record cannot follow the {self._what(previous)}: netx joins "
                                    "the record before it, which must be a layer with neurons or a concat")
        sources = listed if previous in listed else [previous, *listed]
        for i in sources:
            if not 0 <= i < rec.index:
                raise rec.error("layers", f"layer {i} is {'a later or the same' if i >= 0 else 'no'} record; "
                                          f"a concat joins earlier records (0..{previous})")
            if i not in self._joinable:
                raise rec.error("layers", f"layer {i} is the {self._what(i)}, whose output netx does not "
                                          "join")
        shapes = [self._joinable[i] for i in sources]
        if all(len(s) == 1 for s in shapes):
            joined: tuple[int, ...] = (sum(s[0] for s in shapes),)
        elif all(len(s) == 3 for s in shapes) and len({s[1:] for s in shapes}) == 1:
            joined = (sum(s[0] for s in shapes), *shapes[0][1:])
        else:
            raise rec.error("layers", f"the joined layers {sources} have shapes {shapes} (torch order) that "
                                      "differ other than in channels")
        shape = rec.shape()
        if shape != joined and not (len(joined) == 1 and int(np.prod(shape)) == joined[0]):
            raise rec.error("shape", f"{list(shape)} differs from the joined shape {list(joined)} of layers "
                                     f"{sources}")
        self._joins[rec.index] = tuple(sources)
        for i in sources:
            self._last_use[i] = rec.index
        self._shape = joined
        return Concat(listed, shape)

    def _what(self, index: int) -> str:
        """``"'<type>' record <index>"`` for error messages."""
        return f"'{self._types[index]}' record {index}"

    def _dense(self, rec: _Record, layer_type: str) -> nn.Module:
        recurrent = layer_type == "dense_rec"
        n_out = int(np.prod(rec.shape()))
        if "neuron" in rec:
            neuron = self._neuron(rec, affine_allowed=not recurrent)
        elif recurrent:
            raise rec.error("neuron", "required group is missing")
        else:
            neuron = None
        complex_ = neuron is not None and is_complex(neuron.module.Neuron)
        weights = _weights(rec, "weight", complex_)
        first = next(iter(weights.values()))
        if "inFeatures" in rec:
            n_in = rec.integer("inFeatures")
        else:  # legacy files: from the weight
            n_in = first.shape[1] if first.ndim == 2 else None
        if n_in is None or n_in < 1:
            raise rec.error("inFeatures", f"required field is missing (weight of shape {first.shape})")
        if "outFeatures" in rec and rec.integer("outFeatures") != n_out:
            raise rec.error("outFeatures", f"{rec.integer('outFeatures')} differs from the shape's {n_out}")
        self._check_dense_input(rec, n_in)
        kind = _dense_kind(rec, neuron, recurrent)
        if kind in ("Affine", "KWTA"):
            _no_field(rec, "delay", f"a {kind} block has no axonal delay")
        if kind == "Affine" and neuron is None:
            _no_field(rec, "bias", "an Affine readout without neuron applies no bias")
        if kind == "Output":
            _no_field(rec, "bias", "the sigma-delta Output block has no bias (Lava's Sigma has none)")
        params = self._block_params(rec, neuron)
        common = dict(in_neurons=n_in, out_neurons=n_out)
        if kind == "Affine":
            blocks = get_classes()[1] if neuron is None else neuron.blocks
            block = _build(rec, blocks.Affine, params, dynamics=neuron is not None, **common)
        elif kind == "KWTA":
            block = _kwta(rec, neuron, params, common)
        else:  # Dense, Recurrent, sigma-delta Output
            block = _build(rec, getattr(neuron.blocks, kind), params, delay="delay" in rec, **common)
        if neuron is not None:
            _load_exact(rec, block.neuron, neuron.fields)
        _set_weights(rec, block.synapse, weights, _SCALE)
        if kind == "Recurrent":
            _set_weights(rec, block.recurrent_synapse, _weights(rec, "weight_rec", complex_), _SCALE)
        _set_bias(rec, block)
        _set_delay(rec, block)
        self._shape = (n_out,)
        return block

    def _check_dense_input(self, rec: _Record, n_in: int) -> None:
        prev = self._shape
        if prev is None:
            return
        if len(prev) == 3 and prev[1] * prev[2] > 1:
            raise rec.error("inFeatures", f"a dense layer after a layer of shape {prev} needs a 'flatten' "
                                          "record in between")
        if int(np.prod(prev)) != n_in:
            raise rec.error("inFeatures", f"{n_in} differs from the {int(np.prod(prev))} outputs of the "
                                          f"previous layer {prev}")

    def _block_params(self, rec: _Record, neuron: _Neuron | None) -> dict:
        """Block arguments: the neuron's (placeholder integrator for an Affine without neuron),
        with a norm when the record has a bias."""
        if neuron is None:
            return {"threshold": None, "current_decay": 0, "voltage_decay": 1}
        params = _constructible(neuron.params)
        if "bias" in rec:
            spec = neuron.module.Neuron.spec
            if spec.bias_param is None:
                raise rec.unsupported("bias", f"the {spec.name} neuron takes no bias")
            params["norm"] = MeanOnlyBatchNorm
        return params

    def _conv(self, rec: _Record, layer_type: str) -> nn.Module:
        shape = rec.shape()
        if len(shape) != 3:
            raise rec.error("shape", f"a {layer_type} record's shape is (C, H, W), got {list(shape)}")
        if "neuron" not in rec:
            raise rec.error("neuron", "required group is missing")
        neuron = self._neuron(rec)
        if neuron.output:
            raise rec.unsupported("neuron/sigma_output", f"slayer's sigma-delta Output block is dense, not "
                                                         f"{layer_type}")
        transposed, shared = layer_type in ("convT", "unpool"), layer_type in ("pool", "unpool")
        weights = _weights(rec, "weight", is_complex(neuron.module.Neuron))
        first = next(iter(weights.values()))
        if first.ndim == 5 and first.shape[-1] == 1:
            first = first[..., 0]
        if first.ndim != 4 or (shared and first.shape[:2] != (1, 1)):
            layout = "(1, 1, kH, kW)" if shared else ("(C_in, C_out/groups, kH, kW)" if transposed
                                                     else "(C_out, C_in/groups, kH, kW)")
            raise rec.error("weight", f"expected a {layout} weight, got shape {first.shape}")
        kernel = (int(first.shape[2]), int(first.shape[3]))
        if rec.pair("kernelSize", kernel) != kernel:
            raise rec.error("kernelSize", f"{rec.pair('kernelSize')} does not match the weight's {kernel}")
        geometry = dict(kernel_size=kernel, stride=rec.pair("stride", kernel if shared else None),
                        padding=rec.pair("padding"), dilation=rec.pair("dilation"))
        if shared:
            in_c = out_c = shape[0]
            _no_field(rec, "bias", f"{layer_type} blocks have no bias (their norm is dropped, as in lava-dl)")
        else:
            groups = rec.integer("groups")
            if groups < 1:
                raise rec.error("groups", f"expected a positive count, got {groups}")
            in_c = first.shape[0] if transposed else first.shape[1] * groups
            out_c = first.shape[1] * groups if transposed else first.shape[0]
            for key, expected in (("inChannels", in_c), ("outChannels", out_c)):
                if key in rec and rec.integer(key) != expected:
                    raise rec.error(key, f"{rec.integer(key)} does not match the weight of shape "
                                         f"{first.shape} with {groups} groups ({expected})")
            if out_c != shape[0]:
                raise rec.error("shape", f"{shape[0]} channels, the weight gives {out_c}")
            geometry["groups"] = groups
        prev = self._shape
        if prev is not None and (len(prev) != 3 or prev[0] != in_c):
            raise rec.error("inChannels" if not shared else "shape",
                            f"the {layer_type} takes ({in_c}, H, W), the previous layer gives {prev}")
        input_shape = None if prev is None else prev[1:]
        params = self._block_params(rec, neuron) if not shared else _constructible(neuron.params)
        kind = {"conv": "Conv", "convT": "ConvT", "pool": "Pool", "unpool": "Unpool"}[layer_type]
        channels = dict(in_channels=in_c) if shared else dict(in_features=in_c, out_features=out_c)
        block = _build(rec, getattr(neuron.blocks, kind), params, **channels, **geometry,
                       delay="delay" in rec, input_shape=input_shape)
        if block.neuron.shape is None:
            block.neuron.shape = shape
        elif tuple(block.neuron.shape) != shape:
            raise rec.error("shape", f"{list(shape)} differs from the {layer_type} output "
                                     f"{list(block.neuron.shape)} for the input {prev}")
        _load_exact(rec, block.neuron, neuron.fields)
        _set_weights(rec, block.synapse, weights, _SCALE)
        _set_bias(rec, block)
        _set_delay(rec, block)
        self._shape = shape
        return block

    # ---- running and writing ----------------------------------------------------------------
    @eager
    def forward(self, spike: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Run the blocks in order on ``spike`` (``N, C, (H, W,) T``); a concat block joins the outputs
        of the blocks its record names (module docstring), every other block takes the previous output.

        Returns
        -------
        torch.Tensor or (torch.Tensor, torch.Tensor)
            The last block's output (reduced to ``N, C`` with ``reduction``); with
            ``count_log`` also the event rate of every block, shape ``(1, number of blocks)``.
        """
        counts = []
        if self._joins:
            spike = self._forward_joined(spike, counts)
        else:
            for block in self.blocks:
                spike = block(spike)
                if self.count_log:
                    counts.append(_event_rate(spike))
        if self.reduction is not None:
            flat = spike.reshape(spike.shape[0], spike.shape[1], -1)
            spike = flat.sum(dim=2) if self.reduction == "sum" else flat.mean(dim=2)
        if self.count_log:
            return spike, torch.tensor([counts], dtype=torch.float32)
        return spike

    def _forward_joined(self, spike: torch.Tensor, counts: list[float]) -> torch.Tensor:
        """The blocks in order, each concat fed the kept outputs of the blocks it joins."""
        kept: dict[int, torch.Tensor] = {}
        for index, block in enumerate(self.blocks):
            sources = self._joins.get(index)
            if sources is None:
                spike = block(spike)
            else:
                spike = block([kept[i] for i in sources])
                for i in set(sources):
                    if self._last_use[i] == index:
                        del kept[i]
            if index in self._last_use:
                kept[index] = spike
            if self.count_log:
                counts.append(_event_rate(spike))
        return spike

    def export_hdf5(self, filename: str | os.PathLike | h5py.Group, clip_weights: bool = False) -> None:
        """Write every block as ``layer/<i>`` of an hdf5 file (a path, or an open file or group).

        ``clip_weights=True`` writes weights beyond the 8-bit quantizer's range clamped (as the
        forward uses them) instead of raising (see the blocks' ``export_hdf5``).
        """
        if isinstance(filename, h5py.Group):
            layer = filename.create_group("layer")
            for i, block in enumerate(self.blocks):
                block.export_hdf5(layer.create_group(str(i)), clip_weights=clip_weights)
            return
        with h5py.File(filename, "w") as handle:
            self.export_hdf5(handle, clip_weights=clip_weights)


# ---- helpers -----------------------------------------------------------------------------------

def _event_rate(spike: torch.Tensor) -> float:
    """The share of non-zero values of a block output."""
    events = (spike.detach() != 0).to(torch.float32)
    return events.mean().item() if events.numel() else 0.0


def _dense_kind(rec: _Record, neuron: _Neuron | None, recurrent: bool) -> str:
    """Block class name of a ``dense``/``dense_rec`` record (module docstring)."""
    if neuron is None or neuron.affine:
        return "Affine"
    if neuron.output:
        if not hasattr(neuron.blocks, "Output"):
            raise rec.unsupported("neuron/sigma_output",
                                  f"the {neuron.module.Neuron.spec.name} family has no Output block")
        if recurrent:
            raise rec.unsupported("neuron/sigma_output",
                                  "a recurrent record cannot be the sigma-delta output")
        return "Output"
    kind = ("KWTA" if "bias_rec" in rec else "Recurrent") if recurrent else "Dense"
    if not hasattr(neuron.blocks, kind):
        raise rec.unsupported("type", f"the {neuron.module.Neuron.spec.name} family has no {kind} block")
    return kind


def _build(rec: _Record, cls: type, params: dict, **kwargs) -> nn.Module:
    """``cls(params, **kwargs)``; a construction error names the layer."""
    try:
        return cls(params, **kwargs)
    except (ValueError, TypeError) as err:
        raise Hdf5FormatError(f"layer {rec.index}: cannot build {cls.__module__}.{cls.__name__}: {err}") \
            from err


def _constructible(params: dict) -> dict:
    """Neuron arguments the constructors accept: per-channel arrays and rotations without a valid
    (period, decay) are replaced by placeholders, which :func:`_load_exact` then overwrites."""
    out = dict(params)
    for key, value in params.items():
        if key == "period" and not (np.ndim(value) == 0 and np.isfinite(value) and value >= 4):
            out[key] = _PERIOD
        elif key == "decay" and not (np.ndim(value) == 0 and 0 <= value <= 1):
            out[key] = _DECAY
        elif isinstance(value, np.ndarray):
            out[key] = float(np.max(value)) if key in ("threshold", "threshold_step") \
                else float(np.clip(np.mean(value), 0, 1))
    return out


def _load_exact(rec: _Record, neuron: nn.Module, fields: dict) -> None:
    """Set the neuron's stored parameters to the file's integers (decays, rotations, per-channel
    sigma-delta thresholds): the values the constructor arguments carry only approximately."""
    spec = type(neuron).spec
    for param in spec.params:
        key = param.hdf5_key
        if key is None or key not in fields or param.name not in DEVICE_ARGUMENTS:
            continue
        name, kind = DEVICE_ARGUMENTS[param.name]
        values = np.asarray(fields[key], dtype=np.float64).reshape(-1)
        if kind in ("decay", "integer"):
            target = getattr(neuron, name)
        elif param.name == "vth" and hasattr(neuron, "delta_threshold"):
            target, values = neuron.delta_threshold, values / neuron.w_scale
        else:
            continue
        _assign(rec, f"neuron/{key}", target, values)


def _assign(rec: _Record, field: str, target: torch.Tensor, values: np.ndarray) -> None:
    """``target.data = values`` (one value, or one per element of ``target``), in its dtype."""
    if values.size not in (1, target.numel()):
        raise rec.error(field, f"expected 1 or {target.numel()} values, got {values.size}")
    data = torch.as_tensor(np.broadcast_to(values, (target.numel(),)).copy(), dtype=target.dtype)
    target.data = data.reshape(target.shape)


def _scalar(rec: _Record, key: str, default: float) -> float:
    """The scalar input transform ``weight``/``bias`` (an even integer, as the quantizer writes it)."""
    if key not in rec:
        return default
    value = rec.numbers(key).reshape(-1)
    if value.size != 1:
        raise rec.error(key, f"expected one value, got {value.size}")
    _check_quantized(rec, key, value)
    return float(value[0])


def _check_quantized(rec: _Record, key: str, values: np.ndarray) -> None:
    lo, hi = _WEIGHT_RANGE
    bad = (np.mod(values, 2) != 0) | (values < lo) | (values > hi)
    if np.any(bad):
        raise rec.unsupported(key, f"slayer's 8-bit quantizer gives even integers in [{lo}, {hi}]; the file "
                                   f"holds {values[bad].reshape(-1)[:5].tolist()} (cannot be loaded exactly)")


def _weights(rec: _Record, key: str, complex_: bool) -> dict[str, np.ndarray]:
    """``{dataset: integer array}``: ``key``, or ``key/real`` and ``key/imag`` for a complex neuron."""
    is_group = key in rec and isinstance(rec.group[key], h5py.Group)
    if complex_:
        if key in rec and not is_group:
            raise rec.unsupported(key, f"a resonator neuron takes complex weights ('{key}/real', "
                                       f"'{key}/imag')")
        parts = {f"{key}/{part}": rec.numbers(f"{key}/{part}") for part in ("real", "imag")}
        if parts[f"{key}/real"].shape != parts[f"{key}/imag"].shape:
            raise rec.error(f"{key}/imag", f"shape {parts[f'{key}/imag'].shape} differs from the real part's "
                                           f"{parts[f'{key}/real'].shape}")
    else:
        if is_group:
            raise rec.unsupported(key, "complex weights need a resonator neuron (RF, RF_IZ, ADRF, ADRF_IZ)")
        parts = {key: rec.numbers(key)}
    for field, values in parts.items():
        _check_quantized(rec, field, values)
    return parts


def _set_weights(rec: _Record, synapse: nn.Module, weights: dict[str, np.ndarray], scale: int) -> None:
    """Load integer weights as ``w / scale`` into a synapse (both parts of a complex one)."""
    for field, values in weights.items():
        target = getattr(synapse, field.rsplit("/", 1)[1]) if "/" in field else synapse
        param = target.weight
        if values.size != param.numel():
            raise rec.error(field, f"expected {param.numel()} values (synapse weight {tuple(param.shape)}), "
                                   f"got shape {values.shape}")
        _assign(rec, field, param, values.reshape(-1) / scale)


def _set_bias(rec: _Record, block: nn.Module) -> None:
    """A record ``bias`` as the running mean ``-bias / scale`` of the neuron's norm."""
    if "bias" not in rec:
        return
    norm = getattr(block.neuron, "norm", None)
    if norm is None:
        raise rec.unsupported("bias", f"{type(block).__module__}.{type(block).__name__} has no bias")
    values = rec.numbers("bias").reshape(-1)
    _check_quantized(rec, "bias", -values)
    _assign(rec, "bias", norm.running_mean, -values / block.neuron.w_scale)


def _set_delay(rec: _Record, block: nn.Module) -> None:
    """A record ``delay`` (whole steps per output channel) as the block's axonal delays."""
    if "delay" not in rec:
        return
    values = rec.numbers("delay").reshape(-1)
    if values.size and (values.min() < 0 or values.max() > MAX_BLOCK_DELAY):
        raise rec.error("delay", f"delays must lie in [0, {MAX_BLOCK_DELAY}] steps, got values in "
                                 f"[{values.min():g}, {values.max():g}]")
    delay = block.delay
    if delay is None or delay.shape is None or values.size != delay.delay.numel():
        expected = None if delay is None or delay.shape is None else delay.delay.numel()
        raise rec.error("delay", f"expected one delay per output channel ({expected}), got {values.size}")
    _assign(rec, "delay", delay.delay, values)


def _no_field(rec: _Record, key: str, reason: str) -> None:
    if key in rec:
        raise rec.unsupported(key, reason)


def _kwta(rec: _Record, neuron: _Neuron, params: dict, common: dict) -> nn.Module:
    """A KWTA block reproducing ``weight_rec`` (KWTA's form) and ``bias_rec`` (module docstring)."""
    complex_ = is_complex(neuron.module.Neuron)
    n = common["out_neurons"]
    rec_weights = _weights(rec, "weight_rec", complex_)
    matrices = [w.reshape(n, n) if w.size == n * n else None for w in rec_weights.values()]
    if any(m is None for m in matrices):
        raise rec.error(next(iter(rec_weights)), f"the recurrent weight must be square ({n}, {n})")
    matrix = matrices[0]
    diagonal = np.diag(matrix)
    off = matrix[~np.eye(n, dtype=bool)]
    form = (all(np.array_equal(m, matrix) for m in matrices) and np.all(diagonal == diagonal[0])
            and np.all(off == -64) and 0 <= diagonal[0] <= 64)
    if not form:
        raise rec.unsupported("weight_rec", "a dense_rec record with 'bias_rec' loads as a KWTA block, whose "
                                            "recurrent weight is d on the diagonal (0 <= d <= 64) and -64 "
                                            "elsewhere; this one is not")
    bias_rec = rec.numbers("bias_rec").reshape(-1).astype(np.float32)
    if bias_rec.size != n or np.unique(bias_rec.view(np.int32)).size != 1:
        raise rec.unsupported("bias_rec", f"a KWTA block adds one constant to all {n} neurons; got "
                                          f"{bias_rec[:5].tolist()}")
    block = _build(rec, neuron.blocks.KWTA, params, num_winners=1, self_excitation=float(diagonal[0]) / 64,
                   **common)
    target = bias_rec[:1].tobytes()
    for k in range(1, n + 1):
        block.num_winners = k
        value = block.neuron.quantize_8bit(block.recurrent_bias(), descale=True)
        if np.float32(float(value)).tobytes() == target:
            return block
    raise rec.unsupported("bias_rec", f"no number of winners in [1, {n}] gives the KWTA bias {bias_rec[0]:g} "
                                      f"for the threshold {block.neuron.threshold:g}")


def _datasets(group: h5py.Group) -> dict[str, ty.Any]:
    """``{path: value}`` of every dataset under ``group``."""
    out: dict[str, ty.Any] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = field_value(obj[()])

    group.visititems(visit)
    return out


def _same(key: str, a: ty.Any, b: ty.Any) -> bool:
    if key == "neuron/type":
        try:
            return get_classes(a)[0] is get_classes(b)[0]
        except NotImplementedError:
            return False
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    a, b = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
    if a.size != b.size and 1 in (a.size, b.size):  # one value, or the same value per channel
        return bool(a.size and b.size and np.all(a == b[0]) and np.all(b == a[0]))
    return a.size == b.size and np.array_equal(a, b)


def _excerpt(value: ty.Any) -> str:
    if isinstance(value, str):
        return repr(value)
    flat = np.asarray(value).reshape(-1)
    text = ", ".join(f"{v:g}" if isinstance(v, (float, np.floating)) else str(v) for v in flat[:6].tolist())
    return f"[{text}{', ...' if flat.size > 6 else ''}] (shape {np.asarray(value).shape})"


def _omitted_default(block: nn.Module, key: str, value: ty.Any) -> bool:
    """Whether ``key`` is an optional neuron field holding its default, which exports leave out
    (e.g. ``neuron/cumError = False``)."""
    neuron = getattr(block, "neuron", None)
    if neuron is None or not key.startswith("neuron/"):
        return False
    try:
        param = type(neuron).spec.param_for_hdf5_key(key[len("neuron/"):])
    except KeyError:
        return False
    return not param.required and bool(np.all(np.asarray(value) == param.default))


def _verify(rec: _Record, block: nn.Module) -> None:
    """Export ``block`` to memory; every field of the record must come back with its values."""
    with h5py.File(io.BytesIO(), "w") as scratch:
        group = scratch.create_group("layer").create_group("0")
        try:
            block.export_hdf5(group)
        except (RuntimeError, ValueError, NotImplementedError) as err:
            raise NotImplementedError(f"layer {rec.index}: the loaded {type(block).__name__} block cannot be "
                                      f"exported: {err}") from err
        exported = _datasets(group)
    what = f"{type(block).__module__}.{type(block).__name__}"
    for key, value in _datasets(rec.group).items():
        if key not in exported and not _omitted_default(block, key, value):
            raise rec.unsupported(key, f"{what} does not store this field (loading would drop it)")
        if key not in exported:
            continue
        if not _same(key, value, exported[key]):
            raise rec.unsupported(key, f"{what} cannot reproduce it: the file holds {_excerpt(value)}, the "
                                       f"loaded block exports {_excerpt(exported[key])}")
