"""Behaviour shared by every slayer neuron: scales, threshold grid, quantizer, states, export."""

from __future__ import annotations

import math
import typing as ty

import numpy as np
import torch
from torch import nn

from lava_dl.core.fixed_point import DECAY_UNITY, STATE_EXP
from lava_dl.core.spec import NeuronSpec
from lava_dl.slayer import _lava_dl_state
from lava_dl.slayer import checks as _checks
from lava_dl.slayer.neuron import dynamics as _dynamics
from lava_dl.slayer.utils import delay_shift

#: The neuron constructor argument of each spec parameter that hdf5 stores, and how the stored
#: integer maps to it: ``'decay'`` (``value / p_scale``, the fraction lost per step),
#: ``'mantissa'`` (``value / scale``, real units), ``'flag'`` (a bool) or ``'integer'`` (kept as
#: is: the resonator rotations, which their module turns into ``period`` and ``decay``). The
#: ``'decay'`` and ``'integer'`` arguments are also the neuron attributes that store the integers.
DEVICE_ARGUMENTS: dict[str, tuple[str, str]] = {
    "du": ("current_decay", "decay"),
    "dv": ("voltage_decay", "decay"),
    "dth": ("threshold_decay", "decay"),
    "dref": ("refractory_decay", "decay"),
    "vth": ("threshold", "mantissa"),
    "vth_step": ("threshold_step", "mantissa"),
    "graded": ("graded_spike", "flag"),
    "cum_error": ("cum_error", "flag"),
    "sin_decay": ("sin_decay", "integer"),
    "cos_decay": ("cos_decay", "integer"),
}


def field_value(value: ty.Any) -> ty.Any:
    """An hdf5 field value as read (``dataset[()]``) as numpy, strings (bytes, ``S``/object arrays of
    one element) decoded to ``str``."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("ascii")
    arr = np.asarray(value)
    if arr.dtype.kind in "OSU" and arr.size == 1:
        item = arr.reshape(-1)[0]
        return bytes(item).decode("ascii") if isinstance(item, (bytes, np.bytes_)) else str(item)
    return arr


_UNITS = {"decay": "/ p_scale", "mantissa": "/ scale", "flag": "as a bool", "integer": "as stored"}


class DeviceParams(dict):
    """A neuron's hdf5 ``neuron`` fields ``{key: value}``: a dict, as lava-dl's ``device_params``
    property returned, that can also be called as lava_dl's method.

    ``neuron.device_params`` is this dict (lava-dl code reads ``neuron.device_params.items()`` or
    changes a copy of it); ``neuron.device_params()`` returns it too, and
    ``neuron.device_params(v_th_mant=...)`` computes the fields with another threshold mantissa.
    Each attribute access computes the fields afresh (and checks them, see
    :meth:`Neuron.deployed_values`), so changing the dict changes nothing in the neuron.
    Pickled or copied, it is a plain dict.
    """

    def __init__(self, fields: ty.Mapping[str, ty.Any], compute: ty.Callable[..., dict]) -> None:
        super().__init__(fields)
        self._compute = compute

    def __call__(self, *args, **kwargs) -> dict:
        """The fields (this dict without arguments; computed again with them, e.g. ``v_th_mant=``)."""
        if not args and not kwargs:
            return self
        return DeviceParams(self._compute(*args, **kwargs), self._compute)

    def __reduce__(self):
        return dict, (dict(self),)

    def copy(self) -> dict:
        return dict(self)


class device_params_property:  # noqa: N801 (used as a decorator, like property)
    """Turn ``def device_params(self, ...) -> dict`` into an attribute that is both lava-dl's property
    and lava_dl's method (a :class:`DeviceParams`)."""

    def __init__(self, fields: ty.Callable[..., dict]) -> None:
        self.fields = fields
        self.__doc__ = fields.__doc__

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        compute = self.fields.__get__(obj, owner)
        try:
            return DeviceParams(compute(), compute)
        except ValueError as err:
            # the default fields cannot be written (e.g. no threshold); a call with other arguments
            # (``v_th_mant=``) still can, anything else raises the error
            return _UnwritableDeviceParams(compute, err)


class _UnwritableDeviceParams:
    """``device_params`` of a neuron whose default fields raise ``error``: called with arguments it
    computes them; read as the dict or called without arguments it raises ``error``."""

    def __init__(self, compute: ty.Callable[..., dict], error: ValueError) -> None:
        self._compute, self._error = compute, error

    def __call__(self, *args, **kwargs) -> dict:
        if not args and not kwargs:
            raise self._error
        return DeviceParams(self._compute(*args, **kwargs), self._compute)

    def _raise(self, *args, **kwargs):
        raise self._error

    __getitem__ = __iter__ = __len__ = __contains__ = items = keys = values = get = copy = _raise


def neuron_params_function(neuron_cls: type, convert: ty.Callable | None = None,
                           note: str = "") -> ty.Callable[..., dict]:
    """lava-dl's module-level ``neuron_params(device_params, scale, p_scale)`` of a neuron family.

    ``convert(spec, device_params, scale, p_scale)`` does the work (default
    :func:`device_arguments`); the docstring lists the family's fields from its spec.
    """
    convert = device_arguments if convert is None else convert
    spec = neuron_cls.spec

    def neuron_params(device_params: ty.Mapping[str, ty.Any], scale: int = 1 << 6,
                      p_scale: int = DECAY_UNITY) -> dict:
        return convert(spec, device_params, scale, p_scale)

    fields = "\n".join(f"    - ``{p.hdf5_key}`` -> ``{DEVICE_ARGUMENTS[p.name][0]}`` "
                       f"({_UNITS[DEVICE_ARGUMENTS[p.name][1]]})"
                       for p in spec.params if p.hdf5_key is not None and p.name in DEVICE_ARGUMENTS)
    neuron_params.__doc__ = (
        f"{spec.name} neuron arguments from hdf5 ``neuron`` fields (lava-dl's ``neuron_params``).\n\n"
        f"The inverse of :meth:`{neuron_cls.__module__}.Neuron.device_params`:\n\n{fields}\n\n"
        f"{note}"
        "``type`` and the constant fields (``refDelay``) are checked, not returned. Per-channel fields give "
        "arrays and ``shared_param=False`` (the constructor takes a scalar or a range: build with one and "
        "set the stored parameters, as :class:`lava_dl.slayer.auto.SequentialNetwork` does).\n\n"
        "Parameters\n----------\ndevice_params : mapping\n    hdf5 neuron fields ``{key: value}``.\n"
        "scale : int\n    Weight scale (default 64).\np_scale : int\n    Decay scale (default 4096).\n\n"
        "Returns\n-------\ndict\n    Constructor arguments of ``Neuron``.\n\nRaises\n------\n"
        "ValueError\n    Naming the field: unknown, missing, non-integer or out-of-range values.\n")
    neuron_params.__module__ = neuron_cls.__module__
    neuron_params.__qualname__ = "neuron_params"
    return neuron_params


def device_arguments(spec: NeuronSpec, device_params: ty.Mapping[str, ty.Any], scale: int = 1 << 6,
                     p_scale: int = DECAY_UNITY, handled: ty.Collection[str] = ()) -> dict:
    """Neuron constructor arguments from hdf5 ``neuron`` fields: the inverse of :meth:`Neuron.device_params`.

    Driven by the spec's parameter table (:data:`DEVICE_ARGUMENTS` says which argument each
    stored parameter gives), so every family shares it.

    Parameters
    ----------
    spec : NeuronSpec
        The family.
    device_params : mapping
        hdf5 fields ``{key: value}`` (e.g. ``{'type': 'CUBA', 'iDecay': 1024, 'vDecay': 128,
        'vThMant': 80, 'refDelay': 1, 'gradedSpike': False}``); strings may be bytes.
    scale : int
        Weight scale of the neuron (thresholds are ``vThMant / scale``).
    p_scale : int
        Decay scale (decays are ``value / p_scale``).
    handled : collection of str
        Further keys the caller converts itself (not reported as unknown).

    Returns
    -------
    dict
        One argument per stored parameter present: floats (decays, thresholds), a bool
        (``graded_spike``) or ints (``'integer'`` parameters). A per-channel field (more
        than one value) gives a float64 (int64 for ``'integer'``) array and adds
        ``shared_param=False``. A ``vThMant`` of -1 (what earlier versions wrote for a
        neuron without threshold) gives ``threshold=None`` (no spikes).

    Raises
    ------
    ValueError
        Naming the field (``'neuron/<key>'``): a field that is no parameter of the family,
        a missing required field, a non-integer or out-of-range value, a constant (e.g.
        ``refDelay``) other than the one every deployment uses, mixed graded and binary
        spikes, or a ``type`` of another family.
    """
    fields = {key: field_value(value) for key, value in device_params.items()}
    known = {p.hdf5_key: p for p in spec.params if p.hdf5_key is not None}
    constants = spec.extra.get("hdf5_constants", {})
    if "type" in fields:
        type_name = fields["type"]
        if not isinstance(type_name, str) or type_name not in (spec.hdf5_type, *spec.hdf5_aliases):
            raise ValueError(f"field 'neuron/type': {type_name!r} is not a {spec.name} neuron type "
                             f"({', '.join((spec.hdf5_type, *spec.hdf5_aliases))})")
    for key in fields:
        if key not in known and key not in constants and key != "type" and key not in handled:
            allowed = sorted({*known, *constants, *handled, "type"})
            raise ValueError(f"field 'neuron/{key}' is not a {spec.name} neuron field (known: {allowed})")
    for key, expected in constants.items():
        if key in fields and np.any(np.asarray(fields[key]) != expected):
            raise ValueError(f"field 'neuron/{key}': {spec.name} neurons support only {key} = {expected}, "
                             f"got {fields[key]}")
    args: dict = {}
    for key, param in known.items():
        if key not in fields:
            if param.required:
                raise ValueError(f"field 'neuron/{key}' ({param.doc}) is missing")
            continue
        if param.name not in DEVICE_ARGUMENTS:
            raise ValueError(f"field 'neuron/{key}': no slayer neuron argument takes {spec.name}'s "
                             f"{param.name}")
        name, kind = DEVICE_ARGUMENTS[param.name]
        value = fields[key]
        if isinstance(value, str):
            raise ValueError(f"field 'neuron/{key}' ({param.doc}) must be a number, got {value!r}")
        raw = np.asarray(value)
        if kind == "mantissa" and param.name == "vth" and raw.size == 1 and raw.reshape(-1)[0] == -1:
            args[name] = None
            continue
        try:
            ints = param.check(raw, "")
        except (TypeError, ValueError) as err:
            raise ValueError(f"field 'neuron/{key}': {err}") from err
        if ints.ndim > 1:
            raise ValueError(f"field 'neuron/{key}': expected a scalar or one value per channel, got "
                             f"shape {ints.shape}")
        if kind == "flag":
            if ints.size and ints.min() != ints.max():
                raise ValueError(f"field 'neuron/{key}': mixed values {ints.tolist()} in one layer")
            args[name] = bool(ints.reshape(-1)[0]) if ints.size else False
            continue
        per_channel = ints.size > 1
        if kind == "integer":
            values = ints.reshape(-1) if per_channel else int(ints.reshape(-1)[0])
        else:
            unit = p_scale if kind == "decay" else scale
            values = ints.reshape(-1).astype(np.float64) / unit
            values = values if per_channel else float(values[0])
        args[name] = values
        if per_channel:
            args["shared_param"] = False
    return args


class StateAttribute:
    """One of lava-dl's neuron state attributes (``current_state``, ``threshold_state`` ...), in real units.

    Reads and writes the integer state ``key`` that the neuron carries between calls with
    ``persistent_state`` (what lava-dl's state buffers hold): a tensor shaped like the last
    input's ``(N, *S)``, or one value before the first call. ``relative=True`` marks a state
    stored above the base threshold (the adaptation), which lava-dl exposes as the whole
    threshold ``θ0 + adaptation``. A written value is rounded onto the grid of ``1 / unit``
    (the owner's attribute ``unit``, default ``s_scale``) and broadcast to every neuron if it
    holds one value.
    """

    def __init__(self, key: str, relative: bool = False, unit: str = "s_scale"):
        self.key = key
        self.relative = relative
        self.unit = unit

    def __set_name__(self, owner, name):
        self.name = name

    def _offset(self, neuron) -> int:
        return max(neuron.v_th_mant, 0) << STATE_EXP if self.relative else 0

    def __get__(self, neuron, owner=None):
        if neuron is None:
            return self
        saved = neuron._states.get(self.key)
        offset = self._offset(neuron)
        unit = getattr(neuron, self.unit)
        if saved is None:
            return torch.full((1,), offset / unit)
        value = (saved.to(torch.float64) + offset) / unit
        shape = getattr(neuron, "_batch_shape", None)
        if shape is not None and value.numel() == int(np.prod(shape)):
            value = value.reshape(shape)
        return value.to(torch.float32)

    def __set__(self, neuron, value):
        value = torch.as_tensor(value, dtype=torch.float64).detach().cpu()
        ints = torch.round(value * getattr(neuron, self.unit)).to(torch.int64).reshape(-1)
        neuron._states[self.key] = ints - self._offset(neuron)


class DeployedDecay:
    """lava-dl's ``cx_*`` property of a stored decay parameter: the integer deployed to the chip
    (an int, or an array when per channel)."""

    def __init__(self, attribute: str):
        self.attribute = attribute

    def __get__(self, neuron, owner=None):
        if neuron is None:
            return self
        return neuron.rounded(getattr(neuron, self.attribute))


#: Magnitude below which a float's rounded value converts to int64 exactly (torch's ``.to(int64)``
#: and Python's ``int`` agree): :meth:`Neuron.rounded` takes its one-value fast path there only.
_EXACT_ROUND = 2.0**62


def replace_data(param: nn.Parameter, value: torch.Tensor) -> None:
    """Give ``param`` the values (and shape) of ``value``, keeping the Parameter object (and its device)."""
    param.data = value.to(device=param.device, dtype=param.dtype)


def _real_number(value, name: str, where: str) -> float:
    """``value`` as a finite float, or ``TypeError``/``ValueError`` naming ``name``."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: {name} must be a real number, got {value!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: {name} must be finite, got {value}")
    return value


def _as_shape(shape) -> tuple[int, ...] | None:
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    shape = tuple(int(s) for s in shape)
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"neuron shape must be non-empty with positive sizes, got {shape}")
    return shape


class Neuron(nn.Module):
    """Base class of slayer neurons.

    Parameters
    ----------
    threshold : float
        Spike threshold in real units; stored on the ``1/scale`` grid
        (``trunc(threshold * scale) / scale``), i.e. mantissa ``vThMant``.
        ``None`` or a negative value disables spiking.
    tau_grad, scale_grad : float
        Width and height multipliers of the surrogate gradient.
    scale : int
        Weight scale ``W`` (default 64). States use ``S = W << 6``; the integer
        model does not depend on it.
    norm : callable, optional
        Normalisation factory, e.g. ``MeanOnlyBatchNorm``; called as
        ``norm(num_features=C)`` when the shape is known, else ``norm()``.
    dropout : nn.Module, optional
        Applied to the output spikes.
    shared_param : bool
        One decay per layer (True) or one per channel (False, needs ``shape``).
    persistent_state : bool
        Carry states across calls to ``forward``.
    requires_grad : bool
        Learn the decays.
    graded_spike : bool
        A spike carries a payload instead of 1: the real value of the state that
        crossed the threshold, before any reset (CUBA, ALIF: the voltage; RF, ADRF:
        the real part; RF-IZ, ADRF-IZ: the imaginary part). Deployed, the message is
        that 24-bit state register and the next synapse takes it with
        ``num_message_bits = 24`` and its weight exponent lowered by 12, i.e. the
        weighted sum is floored onto the 1/64 grid of the receiving neurons' input,
        as the forward pass here does (the synapse then runs in float64, exact).
        Needs ``scale = 64``.
    shape : tuple of int, optional
        Neuron shape ``(C,)`` or ``(C, H, W)`` without batch and time. Given by
        blocks; checked against every input.
    num_channels : int, optional
        Channel count when the full shape is not known yet (conv blocks built
        without ``input_shape``).
    decay_gradient : {"exact", "lava-dl"}
        Gradient of learnable decays (``requires_grad``). ``"exact"``: the derivative of the
        integer forward with respect to the stored decay. ``"lava-dl"``: what lava-dl 0.6
        computes for the decays of its leaky integrator (CUBA's current and voltage decays,
        ALIF's too): per step ``t >= 1`` the adjoint times the state recorded at ``t - 1``
        *before* its reset, summed; that is the derivative with respect to the retention
        factor ``1 - decay / 4096`` (``-4096`` times the exact one, with the sign that moves
        the decay the wrong way) taken as if the reset did not happen, and without the
        step-0 term of a persistent state. Only for following a lava-dl training run (as
        far as float rounding allows); the other families do not take the argument.

    Notes
    -----
    Shapes: the blocks pass ``shape`` (or ``num_channels``), so their neurons know it at
    construction. A neuron built as lava-dl builds it, without either, takes its shape from
    its first input (lava-dl's rule); per-channel parameters (``shared_param=False``) are
    then drawn at that first call, as lava-dl draws them (before it they hold one value).

    lava-dl's interface: ``dynamics(x)`` returns the family's recorded states as lava-dl
    does (e.g. ``(current, voltage)`` for CUBA), ``spike(*states)`` turns them into spikes
    (:mod:`lava_dl.slayer.spike`), the states carried between calls are the attributes
    ``current_state``, ``voltage_state`` ... and the deployed decays ``cx_*``. ``run(x)``
    returns the states and the spikes of one kernel pass, ``forward(x)`` the spikes alone.

    Neuron families defined outside lava_dl: a subclass without :attr:`spec` is built on
    lava-dl's base-class contract instead, as lava-dl code that defines its own neuron expects:
    ``Neuron(threshold, tau_grad=1, scale_grad=1, p_scale=1, w_scale=1, s_scale=1, norm=None,
    dropout=None, persistent_state=False, shared_param=True, requires_grad=True,
    complex=False)`` sets lava-dl's attributes (``threshold`` on the ``1/w_scale`` grid,
    ``tau_rho``, ``scale_rho``, ``norm`` built as ``norm()`` with the 8-bit quantizer as its
    ``pre_hook_fx``, or ``real_norm``/``imag_norm`` when ``complex``, ``drop``, ``shape =
    None`` ...), and :meth:`quantize_8bit`, :attr:`weight_exponent` and :attr:`v_th_mant`
    work as in lava-dl. The subclass supplies ``forward`` and ``device_params`` (a property
    or a method returning the hdf5 ``neuron`` fields). Such neurons train in the blocks of
    :mod:`lava_dl.slayer.block.base` (its ``Abstract*`` classes) and export their fields;
    netx deploys them only if the fields name a family it knows.
    """

    #: The family definition (set by subclasses).
    spec: ty.ClassVar[NeuronSpec]
    #: Store the output in the logical order ``N, T, C, H, W`` even when the input is
    #: channels-last (conv synapses), so that a Flatten block reads it as a view. A Flatten
    #: block that receives this neuron's output sets it; the families whose kernel can permute
    #: its rows in cache (CUBA) honour it, the others ignore it. Only the memory layout changes.
    logical_output = False

    def __init__(self, *args, **kwargs):
        if getattr(type(self), "spec", None) is None:
            self._init_lava_dl_contract(*args, **kwargs)
        else:
            self._init_family(*args, **kwargs)

    def _init_lava_dl_contract(self, threshold, tau_grad=1, scale_grad=1, p_scale=1, w_scale=1, s_scale=1,
                               norm=None, dropout=None, persistent_state=False, shared_param=True,
                               requires_grad=True, complex=False):
        """lava-dl's base-class constructor, for a neuron family defined outside lava_dl (see Notes)."""
        super().__init__()
        self.lava_dl_decay_gradient = False
        self._skip_param_checks = False
        self.num_neurons = None
        self.shape = None
        self.num_channels = None
        self._deferred = {}
        self._states = {}
        self.graded_spike = False
        self.p_scale = p_scale
        self.w_scale = int(w_scale)
        self.s_scale = int(s_scale)
        if self.w_scale <= 0:
            raise ValueError(f"{self._where}: w_scale must be a positive integer, got {w_scale}")
        if self.s_scale < self.w_scale:
            raise ValueError(f"{self._where}: the state scale s_scale ({self.s_scale}) must be at least the "
                             f"weight scale w_scale ({self.w_scale})")
        self.threshold = threshold
        self.tau_grad = tau_grad
        self.scale_grad = scale_grad
        self.tau_rho = tau_grad * self._threshold
        self.scale_rho = scale_grad
        self.shared_param = shared_param
        self.persistent_state = persistent_state
        self.requires_grad = requires_grad
        self.debug = False
        self.complex = complex
        parts = ("real_norm", "imag_norm") if complex else ("norm",)
        if not complex:
            self.norm = None
        for part in parts:
            setattr(self, part, None if norm is None else norm())
            made = getattr(self, part)
            if made is not None and hasattr(made, "pre_hook_fx"):
                made.pre_hook_fx = self.quantize_8bit
        self.drop = dropout

    def _init_family(self, threshold, tau_grad=1, scale_grad=1, scale=1 << 6, norm=None, dropout=None,
                     shared_param=True, persistent_state=False, requires_grad=False, graded_spike=False,
                     shape=None, num_channels=None, decay_gradient="exact"):
        super().__init__()
        self._register_load_state_dict_pre_hook(_lava_dl_state.neuron_pre_hook, with_module=True)
        if decay_gradient not in ("exact", "lava-dl"):
            raise ValueError(f"decay_gradient must be 'exact' or 'lava-dl', got {decay_gradient!r}")
        #: Whether the decays get lava-dl's gradient (``decay_gradient="lava-dl"``).
        self.lava_dl_decay_gradient = decay_gradient == "lava-dl"
        self.w_scale = int(scale)
        self.s_scale = int(scale * (1 << STATE_EXP))
        self.p_scale = DECAY_UNITY
        if self.w_scale <= 0:
            raise ValueError(f"scale must be a positive integer, got {scale}")
        #: Skip the checks of the neuron's own parameters at each call (set while a recurrent
        #: block steps the neuron, after checking them once).
        self._skip_param_checks = False
        self.threshold = threshold
        self.tau_grad = tau_grad
        self.scale_grad = scale_grad
        self.shared_param = bool(shared_param)
        self.persistent_state = bool(persistent_state)
        self.requires_grad = bool(requires_grad)
        self.graded_spike = bool(graded_spike)
        self.shape = _as_shape(shape)
        self.num_channels = self.shape[0] if self.shape is not None else num_channels
        #: Per-channel parameters waiting for the channel count (the shape comes from the first input):
        #: ``{attribute: (kind, *arguments)}``, resolved by :meth:`_deferred_values`.
        self._deferred: dict[str, tuple] = {}
        if norm is not None:
            self.norm = norm(num_features=self.num_channels) if self.num_channels else norm()
            if hasattr(self.norm, "pre_hook_fx"):
                self.norm.pre_hook_fx = self.quantize_8bit
        else:
            self.norm = None
        self.drop = dropout
        self._states: dict[str, torch.Tensor] = {}

    # ---- validated scalar arguments ----------------------------------------------
    @property
    def _where(self) -> str:
        spec = getattr(self, "spec", None)
        return type(self).__name__ if spec is None else f"{spec.name} {type(self).__name__}"

    @property
    def threshold(self) -> float:
        """Spike threshold in real units on the ``1/scale`` grid; ``-1.0`` when spiking is disabled
        (built with ``threshold=None``).

        Setting it checks the value: ``None`` disables spiking; a number must be finite,
        ``>= 0`` and give a mantissa ``trunc(threshold * scale)`` within the family's
        ``vThMant`` range, else ``ValueError``.
        """
        return -1.0 if self._threshold is None else self._threshold  # None: lava-dl's Affine blocks

    @threshold.setter
    def threshold(self, value) -> None:
        if value is None:
            self._threshold = -1.0
            return
        value = _real_number(value, "threshold", self._where)
        if getattr(self, "spec", None) is None:  # lava-dl's contract: the 1/w_scale grid, any sign
            self._threshold = int(value * self.w_scale) / self.w_scale
            return
        if not value >= 0:
            raise ValueError(f"{self._where}: threshold must be >= 0 (a negative threshold never lets the "
                             f"deployed neuron spike and has no vThMant), got {value}; pass threshold=None "
                             "for a neuron that never spikes")
        mantissa = self.spec.param_for_hdf5_key("vThMant")
        if int(value * self.w_scale) > mantissa.hi:
            raise ValueError(
                f"{self._where}: threshold {value} gives the mantissa vThMant = {int(value * self.w_scale)} "
                f"at scale {self.w_scale}, beyond the largest deployable value {mantissa.hi}")
        self._threshold = int(value * self.w_scale) / self.w_scale

    @property
    def tau_grad(self) -> float:
        """Width multiplier of the surrogate gradient; setting it checks that it is finite and > 0."""
        return self._tau_grad

    @tau_grad.setter
    def tau_grad(self, value) -> None:
        value = _real_number(value, "tau_grad", self._where)
        if not value > 0:
            raise ValueError(f"{self._where}: tau_grad (surrogate-gradient width) must be finite and > 0, "
                             f"got {value}")
        self._tau_grad = value

    @property
    def scale_grad(self) -> float:
        """Height multiplier of the surrogate gradient; setting it checks that it is finite and > 0."""
        return self._scale_grad

    @scale_grad.setter
    def scale_grad(self, value) -> None:
        value = _real_number(value, "scale_grad", self._where)
        if not value > 0:
            raise ValueError(f"{self._where}: scale_grad (surrogate-gradient height) must be finite and > 0, "
                             f"got {value}")
        self._scale_grad = value

    # ---- fixed-point conventions ------------------------------------------------
    @property
    def scale(self) -> int:
        return self.w_scale

    @property
    def weight_exponent(self) -> int:
        """``log2(s_scale / w_scale) - 6``: 0 for every lava_dl family (``s_scale = 64 w_scale``)."""
        return int(np.log2(self.s_scale // self.w_scale) - 6)

    @property
    def v_th_mant(self) -> int:
        """Threshold mantissa (``vThMant``); ``-1`` when spiking is disabled."""
        return int(self.threshold * self.w_scale) if self.threshold >= 0 else -1

    @property
    def ref_delay(self) -> int:
        """Refractory delay in steps (hdf5 ``refDelay``) of the families that write one (CUBA,
        ALIF: always 1, as the deployment assumes); other families have no such attribute."""
        constants = getattr(self, "spec", None) and self.spec.extra.get("hdf5_constants", {})
        if not constants or "refDelay" not in constants:
            raise AttributeError(f"{type(self).__name__} has no refractory delay (ref_delay)")
        return constants["refDelay"]

    @property
    def surrogate(self) -> tuple[float, float, float]:
        """``(theta, tau_rho, scale_rho)`` of the spike's surrogate derivative (spec multipliers)."""
        theta = max(self.threshold, 0.0)
        tau = max(self.spec.tau_rho_mult * self.tau_grad * theta, 1.0 / self.s_scale)
        return theta, tau, self.spec.scale_rho_mult * self.scale_grad

    def quantize_8bit(self, weight: torch.Tensor, descale: bool = False) -> torch.Tensor:
        """Loihi 8-bit weight quantizer (even integers in [-256, 254] after descale)."""
        from lava_dl.slayer.quantize import quantize_8bit

        return quantize_8bit(weight, scale=self.w_scale, descale=descale)

    # ---- parameters ----------------------------------------------------------------
    def _decay_parameter(self, value, name: str, jitter: float = 0.01) -> nn.Parameter:
        """Store a decay fraction as ``4096 * value`` (float; rounded half-even when used).

        Per channel without a known channel count, the parameter holds ``low`` until the first
        input gives the count (``name`` must be the attribute the parameter is stored in).
        """
        def check(v):
            if not 0 <= v <= 1:
                raise ValueError(f"{self._where}: {name} must lie in [0, 1] (a fraction lost per step), "
                                 f"got {v}")
        if self.shared_param:
            if isinstance(value, (tuple, list)):
                raise ValueError(f"{name}: a (min, max) range needs shared_param=False")
            check(value)
            return nn.Parameter(torch.tensor([self.p_scale * value], dtype=torch.float32),
                                requires_grad=self.requires_grad)
        low, high = value if isinstance(value, (tuple, list)) else (value * (1 - jitter),
                                                                   min(value * (1 + jitter), 1.0))
        check(low)
        check(high)

        if self.num_channels is not None:
            return nn.Parameter(self._draw_range(low, high, self.num_channels),
                                requires_grad=self.requires_grad)
        self._deferred[name] = ("range", low, high)
        return nn.Parameter(torch.tensor([self.p_scale * low], dtype=torch.float32),
                            requires_grad=self.requires_grad)

    def _draw_range(self, low: float, high: float, channels: int) -> torch.Tensor:
        """Per-channel decays uniform in ``[low, high]``, stored as ``4096 * value``."""
        return self.p_scale * (low + (high - low) * torch.rand(channels))

    def _deferred_values(self, channels: int) -> dict[str, torch.Tensor]:
        """The values of the deferred per-channel parameters for ``channels`` channels."""
        values = {}
        for name, (kind, *args) in self._deferred.items():
            if kind == "range":
                values[name] = self._draw_range(*args, channels)
            elif kind == "repeat":
                values[name] = getattr(self, name).detach().expand(channels).clone()
        return values

    def clamp(self) -> None:
        """Keep learnable decays inside [0, 4096]."""
        for p in self._decay_parameters():
            p.data.clamp_(0, self.p_scale)

    def _decay_parameters(self) -> list[nn.Parameter]:
        return []

    # ---- shapes ----------------------------------------------------------------------
    @property
    def input_unit(self) -> float:
        """Integer input units per real input unit: the kernel takes ``a_in = floor(x * input_unit)``
        (the weight scale for the spiking families)."""
        return float(self.w_scale)

    def _check_input(self, x: torch.Tensor, *more: torch.Tensor) -> None:
        """Check an input at the neuron boundary (every family calls this first), fix the shape at
        the first call and check the neuron's parameters.

        ``x`` (and the further parts ``more`` of a complex input, shaped like ``x``) must be
        float32/float64 tensors ``N, C, (H, W,) T`` with ``T >= 1`` matching the neuron's shape;
        with the value checks on (:func:`lava_dl.slayer.set_input_checks`) they must hold no
        NaN/inf and fit the integer input (:mod:`lava_dl.slayer.checks`). Then
        :meth:`_check_parameters`.
        """
        where = self._where
        for part in (x, *more):
            _checks.check_tensor(part, where)
        if self.shape is None and self.num_channels in (None, x.shape[1]):
            self.shape = tuple(x.shape[1:-1])
            self.num_channels = self.shape[0]
            if self._deferred:
                for name, value in self._deferred_values(self.num_channels).items():
                    replace_data(getattr(self, name), value)
                self._deferred.clear()
                self.clamp()
        if self.shape is not None and tuple(x.shape[1:-1]) != self.shape:
            raise ValueError(f"{type(self).__name__} has shape {self.shape}, got input of shape "
                             f"{tuple(x.shape)} (expected N, {', '.join(map(str, self.shape))}, T)")
        self.__dict__["_batch_shape"] = tuple(x.shape[:-1])  # a plain attribute (no Module.__setattr__)
        for part in (x, *more):
            _checks.check_values(part, where, self.input_unit)
        self._check_parameters()

    def _check_parameters(self) -> None:
        """Raise if a parameter of the neuron holds NaN/inf or (unless learnable: ``requires_grad``
        neurons clamp theirs before use) a deployed integer outside the family's range.

        Called at every forward, so that parameters changed after construction (e.g.
        ``neuron.current_decay.data.fill_(6144)``) are checked where they are used.
        """
        if self._skip_param_checks:
            return
        _checks.check_finite_parameters(self, self._where)
        if not self.requires_grad:
            values = self.spec_values()
            if self.threshold < 0:  # threshold=None: runs (never spikes), not deployable
                values.pop("vth", None)
            self._check_spec_values(values)

    def _check_spec_values(self, values: dict) -> None:
        """Raise ``ValueError`` unless every deployed integer lies in its range of :attr:`spec`."""
        for name, value in values.items():
            param = self.spec.param(name)
            if type(value) is int and param.lo <= value <= param.hi and not (name == "vth" and value == -1):
                continue  # a Python int in range: what param.check accepts (the usual scalar case)
            attribute = DEVICE_ARGUMENTS.get(name, (name, ""))[0]
            if name == "vth" and np.ndim(value) == 0 and value == -1 and self.threshold < 0:
                raise ValueError(f"{self._where}: the neuron has no threshold (threshold=None: it never "
                                 f"spikes), which has no deployed value {param.hdf5_key}; give a threshold "
                                 f">= 0 to export it")
            param.check(value, f"{self._where}.{attribute}: ")

    def per_row(self, param: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Broadcast a shared or per-channel parameter to one value per (batch, neuron) row
        (:func:`lava_dl.slayer.neuron.dynamics.per_row`)."""
        return _dynamics.per_row(param, x)

    def state(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Initial integer state per row: zeros unless persistent and kept for the same batch
        shape (or set to one value for all, through a lava-dl state attribute)."""
        rows = _dynamics._rows(x)
        saved = self._states.get(name)
        if self.persistent_state and saved is not None:
            if saved.numel() == rows:
                return saved
            if saved.numel() == 1:
                return saved.expand(rows).clone()
        return torch.zeros(rows, dtype=torch.int64)

    # ---- lava-dl's interface ---------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Device of the neuron's parameters (CPU when it has none)."""
        return next(self.parameters(), torch.empty(0)).device

    def _spike_args(self) -> tuple[float, float, bool]:
        """``(tau_rho, scale_rho, graded_spike)`` of :mod:`lava_dl.slayer.spike` for this neuron."""
        _, tau, scale_rho = self.surrogate
        return tau, scale_rho, self.graded_spike

    def _apply(self, fn, recurse=True):
        """Move the carried integer states with the parameters (``.to(device/dtype)``, ``.cuda()``,
        ``.double()``): ``fn`` converts floating-point tensors only, so the states stay int64."""
        super()._apply(fn, recurse)
        self._states = {name: fn(value) for name, value in getattr(self, "_states", {}).items()}
        return self

    def keep_state(self, name: str, value: torch.Tensor) -> None:
        if self.persistent_state:
            self._states[name] = value.detach().to(torch.int64).clone()

    # ---- export ------------------------------------------------------------------------
    def spec_values(self) -> dict:
        """Deployed integer value of each parameter of :attr:`spec` that hdf5 stores."""
        raise NotImplementedError

    def deployed_values(self, v_th_mant: int | None = None) -> dict:
        """:meth:`spec_values`, checked for export.

        Learnable parameters are clamped first (as the next forward would clamp them); then
        every parameter must be finite and every deployed integer in its range of
        :attr:`spec` (e.g. ``iDecay`` in ``[0, 4096]``).

        Parameters
        ----------
        v_th_mant : int, optional
            Threshold mantissa to deploy instead of the neuron's (checked too).

        Returns
        -------
        dict
            ``{spec parameter name: int or int array}``.

        Raises
        ------
        ValueError
            Naming the attribute and the range, e.g. ``CUBA Neuron.current_decay: du (current
            decay, ...) must lie in [0, 4096], got values in [6144, 6144]``; or the parameter
            holding NaN/inf; or a neuron without threshold (``threshold=None``).
        """
        if self.requires_grad:
            self.clamp()
        _checks.check_finite_parameters(self, self._where)
        values = self.spec_values()
        if v_th_mant is not None:
            values["vth"] = v_th_mant
        self._check_spec_values(values)
        return values

    @device_params_property
    def device_params(self, v_th_mant: int | None = None) -> dict:
        """hdf5 ``neuron`` fields ({key: value}) as lava-dl writes them, from the spec's table.

        A :class:`DeviceParams`: read it as lava-dl's property (``neuron.device_params``, a dict)
        or call it (``neuron.device_params()``, ``neuron.device_params(v_th_mant=...)``).

        The values are checked first (:meth:`deployed_values`): a NaN or out-of-range
        parameter, or a neuron without threshold, raises ``ValueError`` instead of writing a
        record that netx rejects.

        Parameters
        ----------
        v_th_mant : int, optional
            Threshold mantissa to write instead of the neuron's (Affine blocks write the largest,
            which the 24-bit voltage never exceeds).
        """
        fields: dict = {"type": self.spec.hdf5_type}
        for name, value in self.deployed_values(v_th_mant).items():
            key = self.spec.param(name).hdf5_key
            value = np.asarray(value, dtype=np.int64)
            fields[key] = value if value.size > 1 else value.reshape(()).item()
        fields.update(self.spec.extra.get("hdf5_constants", {}))
        if self.graded_spike and "graded" in self.spec.param_names and self.w_scale != 1 << STATE_EXP:
            raise ValueError(f"{type(self).__name__}: graded spikes deploy only with scale = 64 (their "
                             f"24-bit payload meets the next synapse's 1/64 weights), "
                             f"got scale={self.w_scale}")
        fields["gradedSpike"] = self.graded_spike
        return fields

    @staticmethod
    def rounded(param: torch.Tensor):
        """Integer decay as deployed: ``rne`` of the stored float (scalar or per channel)."""
        if param.dim() == 1 and param.numel() == 1 and param.dtype.is_floating_point:
            # one value: Python's round is round-half-even too, exact on the float's double value
            value = param.item()
            if math.isfinite(value) and abs(value) < _EXACT_ROUND:
                return round(value)
        values = torch.round(param.detach()).to(torch.int64).cpu().numpy()
        return values if values.size > 1 else int(values[0])

    def delayed(self, x, first: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The output for input ``x`` delayed by one step (a block's synaptic latency).

        Returns ``([first, out[..., :-1]], out[..., -1:])``: the delayed output, whose
        step 0 is ``first`` (default zeros), and the output's last step (carried to the
        next call by blocks with persistent state). Families whose kernel can write the
        messages one step late override this to save a pass over memory.
        """
        out = self(x)
        return delay_shift(out, first), out[..., -1:]

    def _apply_dropout(self, spikes: torch.Tensor) -> torch.Tensor:
        return self.drop(spikes) if self.drop is not None else spikes
