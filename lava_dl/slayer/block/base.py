"""Blocks (synapse + neuron + one-step delay) written once for every neuron family.

A family module binds these classes to its neuron with :func:`bind`, e.g.
``Dense = bind(Dense, cuba.Neuron)``; ``block.cuba.Dense`` and a later
``block.alif.Dense`` are the same code with a different ``neuron_class``.
Each block knows its neuron shape at construction when the arguments fix it
and writes its hdf5 record with :meth:`export_hdf5`.

A neuron whose spec has two input ports (the resonators: ``a_real_in``,
``a_imag_in``) is complex: its Dense/Conv blocks use the complex synapses of
:mod:`lava_dl.slayer.synapse.complex` (a ``(real, imag)`` pair, exported as
``weight/real`` and ``weight/imag``) and its Input block drives both parts
with the same input, as netx's Input block does.

Every block family has the same set (lava-dl 0.6's): ``Input``, ``Flatten``,
``Average``, ``Affine``, ``TimeDecimation``, ``Dense``, ``Conv``, ``Pool``,
``ConvT``, ``Unpool``, ``KWTA`` and ``Recurrent``. The weighted blocks take
``delay=True`` for a learnable axonal delay per output channel
(:class:`lava_dl.slayer.axon.Delay`, at most :data:`MAX_DELAY` steps), applied to
the block output after the one-step ``delay_shift``; it is exported as the
record's ``delay`` field and deployed by netx as a delay line on the block's
output.

Recurrent blocks (``Recurrent``, ``KWTA``) feed each step's spikes back through a
recurrent synapse into the next step's input, exactly as their Lava deployment
(a ``dense_rec`` record) does: every synapse, the recurrent one included, adds one
step. Their states start from zero at every call unless the neuron has
``persistent_state`` (lava-dl forced persistence, leaking state between calls).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import typing as ty
import weakref

import numpy as np
import torch
from torch import nn

from lava_dl.core import records
from lava_dl.core.delay import MAX_BLOCK_DELAY as MAX_DELAY
from lava_dl.core.synapse import WEIGHT_MAX, WEIGHT_MIN
from lava_dl.slayer import _lava_dl_state
from lava_dl.slayer import checks as _checks
from lava_dl.slayer import quantize as _quantize
from lava_dl.slayer._eager import eager
from lava_dl.slayer.neuron.base import device_params_property
from lava_dl.slayer.synapse import complex as _complex_synapse
from lava_dl.slayer.synapse import layer as _synapse
from lava_dl.slayer.utils import delay_shift

#: Block names of every family, in the order :func:`family` returns them.
BLOCK_NAMES = ("Input", "Flatten", "Average", "Affine", "TimeDecimation", "Dense", "Conv", "Pool", "ConvT",
               "Unpool", "KWTA", "Recurrent")


def family(neuron_cls: type, module: str, names: ty.Sequence[str] = BLOCK_NAMES) -> tuple[type, ...]:
    """The blocks ``names`` (in that order) bound to ``neuron_cls``, defined in ``module``."""
    return tuple(bind(globals()[name], neuron_cls, module) for name in names)


def bind(block_cls: type, neuron_cls: type, module: str) -> type:
    """Return ``block_cls`` bound to ``neuron_cls``, defined in ``module``."""
    family = neuron_cls.__module__.rsplit(".", 1)[-1]
    return type(block_cls.__name__, (block_cls,), {
        "neuron_class": neuron_cls,
        "__module__": module,
        "__doc__": f"{block_cls.__doc__}\n\n    Neuron: :class:`{neuron_cls.__module__}.Neuron` ({family}).",
    })


def is_complex(neuron_cls: type) -> bool:
    """Whether ``neuron_cls`` takes a complex input: two input ports (real, imaginary) in its spec
    (False for a neuron class without spec, defined outside lava_dl)."""
    spec = getattr(neuron_cls, "spec", None)
    return spec is not None and len(spec.in_ports) == 2


def neuron_fields(neuron: nn.Module, v_th_mant: int | None = None) -> dict:
    """The hdf5 ``neuron`` fields of ``neuron``: its ``device_params`` as lava_dl's neurons give it
    (callable, optionally with another threshold mantissa ``v_th_mant``) or as a neuron written for
    lava-dl does (a property holding the dict; ``v_th_mant`` then replaces its ``vThMant``)."""
    own = inspect.getattr_static(neuron, "device_params", None)
    if isinstance(own, device_params_property):  # a lava_dl neuron: computed once, with the mantissa
        return own.fields(neuron) if v_th_mant is None else own.fields(neuron, v_th_mant=v_th_mant)
    fields = neuron.device_params
    fields = dict(fields() if callable(fields) else fields)
    if v_th_mant is not None:
        fields["vThMant"] = v_th_mant
    return fields


def _synapse_module(neuron_cls: type):
    """Synapse module for ``neuron_cls``: complex synapses for a two-port neuron, real ones otherwise."""
    return _complex_synapse if is_complex(neuron_cls) else _synapse


class ExportError(ValueError):
    """A block cannot be exported as it is (NaN or out-of-range weights or neuron parameters, ...).

    The message names the block class and the hdf5 group it was being written to.
    """


def _check_block_input(block: nn.Module, args: tuple) -> None:
    """Forward pre-hook of every block: the input must be float32/float64 ``N, C, (H, W,) T`` with
    ``T >= 1``; with the value checks on (:func:`lava_dl.slayer.set_input_checks`) the block's
    parameters must be finite, and the input of a block without neuron too (a neuron checks
    its own input)."""
    if not args:
        return
    where = f"{type(block).__module__.rsplit('.', 1)[-1]}.{type(block).__name__}"
    parts = args[0] if isinstance(args[0], (tuple, list)) else (args[0],)
    for part in parts:
        _checks.check_tensor(part, where)
    if _checks.input_checks_enabled():
        _checks.check_finite_parameters(block, where)
        if getattr(block, "neuron", None) is None:
            for part in parts:
                _checks.check_values(part, where)


_EXPORT_NOTE = """

        Every block's export checks what it writes and raises :class:`ExportError` (a
        ``ValueError``) naming the block and the hdf5 group: NaN/inf weights or neuron
        parameters, neuron parameters outside the family's ranges (decays in [0, 4096] ...),
        a neuron without threshold, and weights that the 8-bit quantizer would clamp.

        Parameters
        ----------
        handle : h5py.Group
            Empty group ``layer/<i>``.
        clip_weights : bool, default False
            Write weights (and biases) beyond the quantizer's range clamped to it, as the
            training forward uses them, instead of raising.
        """


def _located(export: ty.Callable) -> ty.Callable:
    """Wrap a block's ``export_hdf5``: a ``clip_weights`` argument, and a ``ValueError`` that names the
    block and the hdf5 group (:class:`ExportError`)."""
    @functools.wraps(export)
    def export_hdf5(self, handle, *args, clip_weights: bool = False, **kwargs):
        clipping = _quantize.allow_clipping() if clip_weights else contextlib.nullcontext()
        try:
            with clipping:
                return export(self, handle, *args, **kwargs)
        except ExportError:
            raise
        except ValueError as err:
            name = getattr(handle, "name", handle)
            raise ExportError(f"{type(self).__module__}.{type(self).__name__} export to hdf5 group {name!r}: "
                              f"{err}") from err

    export_hdf5._located = True
    export_hdf5.__doc__ = (export.__doc__ or "Write this block's hdf5 record into ``handle``.") + _EXPORT_NOTE
    return export_hdf5


class _Block(nn.Module):
    """Base of every block: input checks at the boundary (:func:`_check_block_input`), the one-step
    latency, the axonal delay, and export errors that name the block (:class:`ExportError`)."""

    neuron_class: ty.ClassVar[type]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        export = cls.__dict__.get("export_hdf5")
        if export is not None and not getattr(export, "_located", False):
            cls.export_hdf5 = _located(export)

    def __init__(self, delay_shift: bool, count_log: bool):
        super().__init__()
        self.delay_shift = bool(delay_shift)
        self.count_log = bool(count_log)
        self.delay: nn.Module | None = None
        self._last_output: torch.Tensor | None = None
        self.register_forward_pre_hook(_check_block_input)
        self._register_load_state_dict_pre_hook(_lava_dl_state.block_pre_hook, with_module=True)

    def _apply(self, fn, recurse=True):
        """Move the state carried between calls (the last output, a recurrent block's last spikes)
        with the parameters (``.to(device/dtype)``, ``.cuda()``, ``.double()``)."""
        super()._apply(fn, recurse)
        for name in ("_last_output", "_spike_state"):
            value = getattr(self, name, None)
            if isinstance(value, torch.Tensor):
                setattr(self, name, fn(value))
        return self

    def _make_neuron(self, neuron_params: dict | None, **shape_kwargs):
        if neuron_params is None:
            return None
        if not isinstance(neuron_params, dict):
            raise TypeError(f"neuron_params must be a dict of neuron arguments, got {type(neuron_params)}")
        return self.neuron_class(**neuron_params, **shape_kwargs)

    def _first_step(self, x: torch.Tensor) -> torch.Tensor | None:
        """Step 0 of the delayed output ``x``: the last output of the previous call (persistent
        state, same shape), else ``None`` (zeros)."""
        neuron = getattr(self, "neuron", None)
        last = self._last_output
        if neuron is not None and neuron.persistent_state and last is not None \
                and last.shape[:-1] == x.shape[:-1]:
            return last
        return None

    def _keep_last(self, last: torch.Tensor) -> None:
        neuron = getattr(self, "neuron", None)
        if neuron is not None and neuron.persistent_state:
            self._last_output = last.detach()

    def _finish(self, x: torch.Tensor):
        """Apply the one-step synaptic latency, the axonal delay and the optional event-rate log."""
        if self.delay_shift:
            first = self._first_step(x)
            self._keep_last(x[..., -1:])
            x = delay_shift(x, first)
        return self._log(x)

    def _log(self, x: torch.Tensor):
        if self.delay is not None:
            x = self.delay(x)
        if self.count_log:
            return x, (x.detach() != 0).float().mean().item() if x.numel() else 0.0
        return x

    def _make_delay(self, delay: bool, channels: int | None) -> None:
        """A learnable axonal delay per output channel (``delay=True``), at most :data:`MAX_DELAY`."""
        if delay:
            from lava_dl.slayer.axon import Delay

            self.delay = Delay(max_delay=MAX_DELAY, num_channels=channels)

    def _delay_field(self) -> np.ndarray | None:
        """Exported ``delay``: the whole steps of each channel's delay (``floor`` of the clamped value)."""
        if self.delay is None:
            return None
        if self.delay.shape is None:
            raise RuntimeError(f"{type(self).__name__}: the axonal delay is not initialised yet; run one "
                               "forward before export")
        self.delay.clamp()
        return torch.floor(self.delay.delay.detach()).reshape(-1).cpu().numpy().astype(np.float32)

    def _neuron_fields(self) -> dict | None:
        return None if self.neuron is None else neuron_fields(self.neuron)

    def _bias(self) -> np.ndarray | None:
        norm = getattr(self.neuron, "norm", None) if self.neuron is not None else None
        if norm is None or not hasattr(norm, "bias"):
            return None
        if hasattr(norm, "std"):  # a scaling norm (WgtScaleBatchNorm): only a scale of 1 deploys
            factor = float(norm.std(norm.running_var))
            if factor != 1.0:
                raise ValueError(f"the neuron's {type(norm).__name__} divides its input by {factor:g}, which "
                                 "the hdf5 format cannot deploy (lava-dl wrote neuron/weight_exp, which its "
                                 "netx ignored); train with MeanOnlyBatchNorm or fold the scale into the "
                                 "weights")
        with _quantize.no_clipping("norm bias"):
            return norm.bias.detach().cpu().numpy()

    def _quantized_weight(self, reshape: ty.Callable[[np.ndarray], np.ndarray] | None = None,
                          synapse: nn.Module | None = None, what: str = "synapse weight") -> records.Weight:
        """Deployed weight(s) of ``synapse`` (default: the block's) through ``reshape``: an array, or
        ``{'real', 'imag'}`` for a complex synapse.

        Raises ``ValueError`` if the quantizer would clamp a weight (:func:`lava_dl.slayer.quantize.
        no_clipping`), or if a deployed weight is not an integer in Loihi's range
        ``[WEIGHT_MIN, WEIGHT_MAX]`` (e.g. a custom ``pre_hook_fx``, or none).
        """
        def quantized(synapse, label: str) -> np.ndarray:
            weight = synapse.weight
            if synapse.pre_hook_fx is not None:
                with _quantize.no_clipping(label):
                    weight = synapse.pre_hook_fx(weight, descale=True)
            weight = weight.detach().cpu().numpy().astype(np.float64)
            _check_weight_values(weight, label)
            weight = weight.astype(np.float32)
            return weight if reshape is None else reshape(weight)

        synapse = self.synapse if synapse is None else synapse
        if getattr(synapse, "complex", False):
            return {"real": quantized(synapse.real, f"{what} (real)"),
                    "imag": quantized(synapse.imag, f"{what} (imaginary)")}
        return quantized(synapse, what)

    def _check_deployable(self) -> None:
        """Raise if the block's neuron has a normalisation that cannot be deployed (complex neurons)."""
        if self.neuron is None or not is_complex(type(self.neuron)):
            return
        norms = [n for n in ("norm", "real_norm", "imag_norm") if getattr(self.neuron, n, None) is not None]
        if norms:
            raise NotImplementedError(
                f"{type(self).__module__}.{type(self).__name__}: the {self.neuron.spec.name} neuron has a "
                f"normalisation ({', '.join(norms)}) on its complex input, which cannot be deployed (no "
                "hdf5/netx counterpart); build the block without norm to export it")


class Input(_Block):
    """Input block: optional scalar transform ``weight * x + bias`` then the neuron.

    Parameters
    ----------
    neuron_params : dict, optional
        Neuron arguments; without them the block passes the input through.
    weight, bias : float, optional
        Scalar input transform, trained (quantized with the neuron's 8-bit quantizer); ``None``
        (default): no such parameter, as lava-dl's.
    delay_shift : bool
        Add one step of latency (default False for an input).
    count_log : bool
        Also return the mean event rate.
    shape : tuple of int, optional
        Input neuron shape ``(C,)`` or ``(C, H, W)``; inferred at the first call if omitted.

    Notes
    -----
    Differences from lava-dl, for exact deployment: ``delay_shift`` defaults to False (lava-dl's
    True put the slayer output one step behind the Lava network, where the input neurons receive
    the source in the same step), and the input itself is not passed through the 8-bit weight
    quantizer (lava-dl's rounded it to even multiples of ``1/scale`` and clamped it to ``±4``;
    the sigma-delta ``Input`` keeps that rule, which its Lava encoder shares).
    """

    def __init__(self, neuron_params=None, weight=None, bias=None, delay_shift=False, count_log=False,
                 shape=None):
        super().__init__(delay_shift, count_log)
        self.neuron = self._make_neuron(neuron_params, shape=shape)
        self.shape = tuple(shape) if shape is not None else None
        self.pre_hook_fx = None if self.neuron is None else self.neuron.quantize_8bit
        for name, value in (("weight", weight), ("bias", bias)):  # trained, as lava-dl's
            parameter = None if value is None else nn.Parameter(torch.tensor([float(value)]))
            self.register_parameter(name, parameter)

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """lava-dl's name for :attr:`shape` (settable, as lava-dl code sets it)."""
        return self.shape

    @input_shape.setter
    def input_shape(self, value) -> None:
        self.shape = None if value is None else tuple(int(v) for v in value)

    @eager
    def forward(self, x: torch.Tensor):
        self.shape = tuple(x.shape[1:-1])
        if self.neuron is not None:
            drive = self._drive(x)
            # a complex neuron gets the same drive on both parts (netx Input feeds both ports)
            x = self.neuron((drive, drive) if is_complex(self.neuron_class) else drive)
        return self._finish(x)

    def _quantized_transform(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        q = self.pre_hook_fx if self.pre_hook_fx is not None else (lambda value: value)
        return tuple(None if value is None else q(value) for value in (self.weight, self.bias))

    def _drive(self, x: torch.Tensor) -> torch.Tensor:
        """The neuron's input for the block input ``x``: ``weight * x + bias`` (quantized scalars; a
        missing one is the identity)."""
        weight, bias = self._quantized_transform()
        if weight is not None:
            x = weight * x
        return x if bias is None else x + bias

    def export_hdf5(self, handle) -> None:
        """Write this block as an hdf5 ``input`` record into the group ``handle``."""
        if self.shape is None:
            raise RuntimeError("Input block shape unknown: pass shape= or run one forward before export")
        self._check_deployable()
        fields = {}
        if self.neuron is not None:
            for name in ("weight", "bias"):
                value = getattr(self, name)
                if value is not None:
                    with _quantize.no_clipping(f"input {name}"):
                        fields[name] = float(self.pre_hook_fx(value.detach(), descale=True))
        records.write_input(handle, shape=self.shape, neuron=self._neuron_fields(), **fields)


class Flatten(_Block):
    """Flatten ``N, C, H, W, T`` to ``N, C*H*W, T`` (row-major over C, H, W)."""

    def __init__(self, count_log=False):
        super().__init__(delay_shift=False, count_log=count_log)
        self.shape: tuple[int, ...] | None = None

    @eager
    def forward(self, x: torch.Tensor):
        n, steps = x.shape[0], x.shape[-1]
        if x.is_contiguous():  # time-last: a view
            out = x.reshape(n, -1, steps)
        else:  # time-major (a view) or channels-last (one copy into C, H, W order), kept time-major
            if not x.movedim(-1, 1).is_contiguous():
                _prefer_logical_output(x)
            out = x.movedim(-1, 1).reshape(n, steps, -1).transpose(1, 2)
        bound = _checks.marked_bound(x)
        if bound is not None:
            _checks.mark_bound(out, bound, _checks.marked_binary(x))
        self.shape = (out.shape[1], 1, 1)
        return self._finish(out)

    def export_hdf5(self, handle) -> None:
        if self.shape is None:
            raise RuntimeError("Flatten block shape unknown: run one forward before export")
        records.write_flatten(handle, shape=self.shape)


class _Weighted(_Block):
    """Common code of blocks made of one synapse and one neuron."""

    def _setup(self, synapse: nn.Module, pre_hook_fx, delay: bool, channels: int | None,
               attr: str = "synapse"):
        """Set the synapse's pre-hook (both parts of a complex synapse), keep it as ``self.<attr>``
        and create the axonal delay of ``channels`` output channels."""
        if pre_hook_fx is None and self.neuron is not None:
            pre_hook_fx = self.neuron.quantize_8bit
        synapse.pre_hook_fx = pre_hook_fx
        setattr(self, attr, synapse)
        self._make_delay(delay, channels)

    @property
    def shape(self) -> tuple[int, ...] | None:
        """The block's neuron shape (``(C,)`` or ``(C, H, W)``; ``None`` until known), as lava-dl's."""
        return None if self.neuron is None else self.neuron.shape

    def _neuron_input(self, z):
        """What the neuron receives for synaptic output ``z`` (families may model Lava's wrap here)."""
        return z

    @eager
    def forward(self, x: torch.Tensor):
        synapse = self.synapse
        _synapse.forget_forward_weight(synapse)  # what take_forward_weight hands over is this call's
        z = synapse(x)
        if (not getattr(synapse, "complex", False) and hasattr(synapse, "effective_weight")
                and getattr(synapse, "bias", None) is None):
            # a bound on z from x's (saves the neuron's scan of z; see lava_dl.slayer.checks), with the
            # weight the synapse has just used (not quantized again)
            _checks.bound_linear_output(z, x, _synapse.take_forward_weight(synapse))
        z = self._neuron_input(z)
        if self.neuron is None:
            return self._finish(z)
        if not self.delay_shift or not hasattr(self.neuron, "delayed"):
            return self._finish(_produced_by(self.neuron(z), self.neuron))
        # the neuron writes its output one step late itself (no extra pass over memory)
        reference = z[0] if isinstance(z, tuple) else z  # complex synapses give (real, imag)
        out, last = self.neuron.delayed(z, self._first_step(reference))
        self._keep_last(last)
        return self._log(_produced_by(out, self.neuron))

    def _prepare_export(self):
        self._check_deployable()
        for name in ("synapse", "recurrent_synapse"):
            synapse = getattr(self, name, None)
            parts = (synapse.real, synapse.imag) if getattr(synapse, "complex", False) else (synapse,)
            for part in parts:
                bias = getattr(part, "bias", None)
                if bias is not None and bool(torch.any(bias != 0)):
                    raise ValueError(f"the {name.replace('_', ' ')} has a bias, which no hdf5 field holds "
                                     "(lava-dl's export dropped it); deploy a bias through the neuron's "
                                     "norm, or fold it into the next layer")
        if hasattr(self.synapse, "disable_weight_norm"):
            self.synapse.disable_weight_norm()

    def _synapse_shape(self, input_shape, channels: int) -> tuple[int, ...] | None:
        """Neuron shape ``(C, H', W')`` for an input ``(H, W)`` (None when not known yet)."""
        if input_shape is None:
            return None
        return (int(channels), *self.synapse.output_size(_pair(input_shape)))

    def _geometry(self) -> dict:
        syn = self.synapse
        return dict(kernel_size=_pair(syn.kernel_size), stride=_pair(syn.stride), padding=_pair(syn.padding),
                    dilation=_pair(syn.dilation))

    def _require_shape(self) -> tuple[int, ...]:
        if self.neuron.shape is None:
            raise RuntimeError(f"{type(self).__name__} block shape unknown: pass input_shape= or run one "
                               "forward before export")
        return self.neuron.shape

class Dense(_Weighted):
    """Dense block: fully connected synapse, neuron, one-step delay.

    For a complex (two-port) neuron the synapse is a
    :class:`lava_dl.slayer.synapse.complex.Dense` (``weight/real``, ``weight/imag``).

    Parameters
    ----------
    neuron_params : dict
        Neuron arguments (threshold, decays, ...).
    in_neurons, out_neurons : int
        Input and output sizes.
    weight_scale : float
        Initial weight scale.
    weight_norm : bool
        Train with weight normalisation (removed at export).
    pre_hook_fx : callable, optional
        Weight quantizer; default: the neuron's 8-bit quantizer.
    delay : bool
        Learnable axonal delay per output neuron (:class:`lava_dl.slayer.axon.Delay`).
    delay_shift : bool
        One step of latency, as a Lava synapse adds (default True).
    mask : torch.Tensor, optional
        Fixed 0/1 connectivity mask multiplied into the weight.
    count_log : bool
        Also return the mean event rate.
    """

    def __init__(self, neuron_params, in_neurons, out_neurons, weight_scale=1, weight_norm=False,
                 pre_hook_fx=None, delay=False, delay_shift=True, mask=None, count_log=False):
        super().__init__(delay_shift, count_log)
        self.neuron = self._make_neuron(neuron_params, shape=(int(out_neurons),))
        synapse = _synapse_module(self.neuron_class).Dense(in_neurons, out_neurons, weight_scale=weight_scale,
                                                           weight_norm=weight_norm)
        self._setup(synapse, pre_hook_fx, delay, int(out_neurons))
        self.mask = None if mask is None else mask.detach().clone()
        if self.mask is not None:
            self.synapse.pre_hook_fx = _masked(self.synapse.pre_hook_fx, self.mask)

    def export_hdf5(self, handle) -> None:
        """Write this block as an hdf5 ``dense`` record into the group ``handle``."""
        self._prepare_export()

        weight = self._quantized_weight(_dense_2d)
        records.write_dense(handle, shape=(self.synapse.out_channels,), weight=weight, bias=self._bias(),
                            neuron=self._neuron_fields(), delay=self._delay_field())


class Affine(Dense):
    """Dense synapse whose output is the neuron voltage (``dynamics=True``) or the raw synaptic input.

    Parameters are those of :class:`Dense` plus ``dynamics`` (bool, default True as lava-dl);
    the neuron never spikes.
    Not available for complex (two-port) neurons.
    """

    def __init__(self, neuron_params, in_neurons, out_neurons, weight_scale=1, weight_norm=False,
                 pre_hook_fx=None, dynamics=True, mask=None, count_log=False):
        if is_complex(self.neuron_class):
            raise NotImplementedError(f"{type(self).__module__}.Affine: an affine readout of a complex "
                                      f"({self.neuron_class.spec.name}) neuron is not supported")
        params = dict(neuron_params)
        params["threshold"] = None  # never spikes
        super().__init__(params, in_neurons, out_neurons, weight_scale=weight_scale, weight_norm=weight_norm,
                         pre_hook_fx=pre_hook_fx, delay=False, delay_shift=False, mask=mask,
                         count_log=count_log)
        self.dynamics = bool(dynamics)

    @eager
    def forward(self, x: torch.Tensor):
        z = self.synapse(x)
        if self.dynamics:
            z = self.neuron.run(z)[1]
        return self._finish(z)

    def _neuron_fields(self) -> dict | None:
        if not self.dynamics:
            return None
        # the largest threshold, which the 24-bit voltage never exceeds
        return neuron_fields(self.neuron, v_th_mant=(1 << 18) - 1)


class Conv(_Weighted):
    """Convolution block: conv synapse, neuron, one-step delay.

    For a complex (two-port) neuron the synapse is a
    :class:`lava_dl.slayer.synapse.complex.Conv` (``weight/real``, ``weight/imag``).

    Parameters
    ----------
    neuron_params : dict
        Neuron arguments.
    in_features, out_features : int
        Input and output channels.
    kernel_size, stride, padding, dilation : int or (int, int)
        Geometry in (H, W) order.
    groups : int
        Channel groups.
    weight_scale, weight_norm, pre_hook_fx, delay, delay_shift, count_log
        As for :class:`Dense` (the delay is per output channel).
    input_shape : (int, int), optional
        Input ``(H, W)``; fixes the neuron shape at construction (else at the first call).
    """

    _synapse_kind = "Conv"
    _record = staticmethod(records.write_conv)

    def __init__(self, neuron_params, in_features, out_features, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, weight_scale=1, weight_norm=False, pre_hook_fx=None, delay=False, delay_shift=True,
                 count_log=False, input_shape=None):
        super().__init__(delay_shift, count_log)
        synapse = getattr(_synapse_module(self.neuron_class), self._synapse_kind)(
            in_features, out_features, kernel_size, stride=stride, padding=padding, dilation=dilation,
            groups=groups, weight_scale=weight_scale, weight_norm=weight_norm)
        self.synapse = synapse
        self.neuron = self._make_neuron(neuron_params, shape=self._synapse_shape(input_shape, out_features),
                                        num_channels=int(out_features))
        self._setup(synapse, pre_hook_fx, delay, int(out_features))

    def export_hdf5(self, handle) -> None:
        """Write this block as an hdf5 record (``conv``; ``convT`` for :class:`ConvT`) into ``handle``."""
        self._prepare_export()
        syn = self.synapse
        weight = self._quantized_weight(lambda w: w.reshape(w.shape[:4]))
        self._record(handle, shape=self._require_shape(), weight=weight, in_channels=syn.in_channels,
                     out_channels=syn.out_channels, groups=syn.groups, bias=self._bias(),
                     neuron=self._neuron_fields(), delay=self._delay_field(), **self._geometry())


class ConvT(Conv):
    """Transposed-convolution block: convT synapse, neuron, one-step delay.

    Parameters are those of :class:`Conv`; the synapse is
    :class:`lava_dl.slayer.synapse.ConvTranspose` (weight ``(in, out/groups, kH, kW, 1)``),
    output size ``(H - 1) stride - 2 padding + dilation (kernel - 1) + 1``. Exported as a
    ``convT`` record, deployed as :class:`lava_dl.proc.conv.ConvT`.
    """

    _synapse_kind = "ConvTranspose"
    _record = staticmethod(records.write_conv_transpose)


class Pool(_Weighted):
    """Pooling block: sum pooling of each channel with one shared kernel, neuron, one-step delay.

    Parameters
    ----------
    neuron_params : dict
        Neuron arguments; a ``norm`` is dropped (as in lava-dl).
    kernel_size : int or (int, int)
        Window ``(kH, kW)``.
    stride : int or (int, int), optional
        Default: the kernel size.
    padding, dilation : int or (int, int)
        Geometry in (H, W) order.
    weight_scale : float
        Value of every kernel entry (quantized by ``pre_hook_fx``; not learnable).
    weight_norm, pre_hook_fx, delay, delay_shift, count_log
        As for :class:`Dense`.
    in_channels : int, optional
        Channel count; fixes per-channel parameters and delays at construction.
    input_shape : (int, int), optional
        Input ``(H, W)``; with ``in_channels`` fixes the neuron shape at construction.

    Notes
    -----
    The output size is torch's floor mode, ``(H + 2 padding - dilation (kernel - 1) - 1) //
    stride + 1``: no implicit padding (lava-dl padded odd sizes and folded channels into the
    height, giving wrong shapes; lava-dl issues 293 and 101). Deployed as
    :class:`lava_dl.proc.conv.Pool`.
    """

    _synapse_kind = "Pool"
    _record = staticmethod(records.write_pool)

    def __init__(self, neuron_params, kernel_size, stride=None, padding=0, dilation=1, weight_scale=1,
                 weight_norm=False, pre_hook_fx=None, delay=False, delay_shift=True, count_log=False,
                 in_channels=None, input_shape=None):
        super().__init__(delay_shift, count_log)
        if neuron_params is not None and neuron_params.get("norm") is not None:
            neuron_params = {**neuron_params, "norm": None}
        synapse = getattr(_synapse_module(self.neuron_class), self._synapse_kind)(
            kernel_size, stride=stride, padding=padding, dilation=dilation, weight_scale=weight_scale,
            weight_norm=weight_norm)
        self.synapse = synapse
        shape = None if in_channels is None else self._synapse_shape(input_shape, in_channels)
        self.neuron = self._make_neuron(neuron_params, shape=shape,
                                        num_channels=None if in_channels is None else int(in_channels))
        self._setup(synapse, pre_hook_fx, delay, None if in_channels is None else int(in_channels))

    def export_hdf5(self, handle) -> None:
        """Write this block as an hdf5 record (``pool``; ``unpool`` for :class:`Unpool`) into ``handle``."""
        self._prepare_export()
        weight = self._quantized_weight(lambda w: w.reshape(w.shape[:4]))
        self._record(handle, shape=self._require_shape(), weight=weight, neuron=self._neuron_fields(),
                     delay=self._delay_field(), **self._geometry())


class Unpool(Pool):
    """Unpooling block: transposed sum pooling of each channel with one shared kernel.

    Parameters are those of :class:`Pool`; the output size is
    ``(H - 1) stride - 2 padding + dilation (kernel - 1) + 1``. Exported as an ``unpool``
    record, deployed as :class:`lava_dl.proc.conv.Unpool`.
    """

    _synapse_kind = "Unpool"
    _record = staticmethod(records.write_unpool)


class Average(_Block):
    """Population average: ``N, C, ..., T`` -> ``N, num_outputs, T``, the mean of consecutive groups.

    The neurons are taken in torch's flattening order and split into ``num_outputs``
    groups of equal size (lava-dl's ``Average``).

    Parameters
    ----------
    num_outputs : int
        Number of groups.
    count_log : bool
        Also return the mean event rate.

    Notes
    -----
    Deployed (hdf5 ``average``) it is a Lava process without synapse and without
    latency whose output is the **spike count** of each group, i.e. slayer's mean times the
    group size; it ends a network (no weighted layer may follow it).
    """

    def __init__(self, num_outputs: int, count_log: bool = False):
        super().__init__(delay_shift=False, count_log=count_log)
        if isinstance(num_outputs, bool) or not isinstance(num_outputs, (int, np.integer)) or num_outputs < 1:
            raise ValueError(f"Average: num_outputs must be a positive int, got {num_outputs!r}")
        self.num_outputs = int(num_outputs)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.num_outputs, 1, 1)

    @eager
    def forward(self, x: torch.Tensor):
        size = int(np.prod(x.shape[1:-1]))
        if size % self.num_outputs:
            raise ValueError(f"Average: {size} neurons per sample do not split into {self.num_outputs} "
                             f"equal groups (input shape {tuple(x.shape)})")
        out = torch.mean(x.reshape(x.shape[0], self.num_outputs, -1, x.shape[-1]), dim=2)
        return self._log(out)

    def export_hdf5(self, handle) -> None:
        """Write an hdf5 ``average`` record."""
        records.write_average(handle, self.num_outputs)


class TimeDecimation(_Block):
    """Average ``factor`` consecutive time steps into one (lava-dl's ``TimeDecimation``).

    Parameters
    ----------
    factor : int
        A power of two; the sequence is zero-padded to a multiple of it.
    count_log : bool
        Also return the mean event rate.

    Notes
    -----
    It changes the time base, which a Lava network (one step per time step) cannot
    represent: export raises ``NotImplementedError`` (lava-dl's export raised an
    ``AttributeError`` and meant to write an ``average`` record, which would deploy as
    something else).
    """

    def __init__(self, factor: int, count_log: bool = False):
        super().__init__(delay_shift=False, count_log=count_log)
        if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1 \
                or factor & (factor - 1):
            raise ValueError(f"TimeDecimation: factor must be a positive power of 2, got {factor!r}")
        self.factor = int(factor)

    @eager
    def forward(self, x: torch.Tensor):
        steps = x.shape[-1]
        pad = -steps % self.factor
        if pad:
            x = torch.nn.functional.pad(x, (0, pad))
        out = x.reshape(*x.shape[:-1], -1, self.factor).mean(dim=-1)
        return self._log(out)

    def export_hdf5(self, handle) -> None:
        raise NotImplementedError("TimeDecimation changes the time base; a Lava network runs one step per "
                                  "time step and has no deployment for it (no hdf5 record is written)")


class Recurrent(_Weighted):
    """Recurrent block: input dense synapse plus a recurrent dense synapse from the block's own spikes.

    ``s[t] = neuron(W x[t] + R s[t-1])`` (lava-dl's ``Recurrent``), exported as a
    ``dense_rec`` record and deployed with the recurrent synapse feeding the neurons'
    input (one step of latency, which is the ``t - 1`` above).

    Parameters
    ----------
    neuron_params : dict
        Neuron arguments.
    in_neurons, out_neurons : int
        Input and output sizes.
    weight_scale, weight_norm, pre_hook_fx
        As for :class:`Dense`, for both synapses.
    requires_grad : bool
        Whether the recurrent weights are learned (default True).
    delay : bool
        Learnable axonal delay of the block's outputs; the neurons feed each other
        undelayed (the delay acts on the outputs only, as here in slayer).
    delay_shift, count_log
        As for :class:`Dense`.

    Notes
    -----
    The neuron runs one step at a time. Gradients flow through the recurrent synapse and
    the spikes' surrogate gradients, not through the neuron states from one step to the
    next (as in lava-dl). States restart from zero at every call unless the neuron
    has ``persistent_state`` (then the last spikes are carried too).
    """

    def __init__(self, neuron_params, in_neurons, out_neurons, weight_scale=1, weight_norm=False,
                 pre_hook_fx=None, requires_grad=True, delay=False, delay_shift=True, count_log=False):
        super().__init__(delay_shift, count_log)
        self.num_neurons = int(out_neurons)
        self.requires_grad = bool(requires_grad)
        self.neuron = self._make_neuron(neuron_params, shape=(self.num_neurons,))
        module = _synapse_module(self.neuron_class)
        synapse = module.Dense(in_neurons, out_neurons, weight_scale=weight_scale, weight_norm=weight_norm)
        self._setup(synapse, pre_hook_fx, delay, self.num_neurons, attr="input_synapse")
        self.recurrent_synapse = self._make_recurrent_synapse(module, weight_scale, weight_norm)
        self._spike_state: torch.Tensor | None = None

    def _make_recurrent_synapse(self, module, weight_scale, weight_norm):
        synapse = module.Dense(self.num_neurons, self.num_neurons, weight_scale=weight_scale,
                               weight_norm=weight_norm)
        synapse.pre_hook_fx = self.input_synapse.pre_hook_fx
        for p in synapse.parameters():
            p.requires_grad_(self.requires_grad)
        return synapse

    def recurrent_weight(self):
        """Effective recurrent matrix ``R`` (``(out, out)``; a ``(real, imag)`` pair for complex neurons)."""
        def matrix(synapse):
            return synapse.effective_weight().reshape(self.num_neurons, self.num_neurons)

        syn = self.recurrent_synapse
        return (matrix(syn.real), matrix(syn.imag)) if getattr(syn, "complex", False) else matrix(syn)

    def recurrent_bias(self) -> torch.Tensor | None:
        """Constant the recurrent path adds to every input: a bias assigned to the recurrent synapse
        (as lava-dl's recurrent synapse added it; not exportable), else None."""
        return getattr(self.recurrent_synapse, "bias", None)

    @eager
    def forward(self, x: torch.Tensor):
        z = self.input_synapse(x)
        return self._finish(self._recur(z, self.recurrent_weight(), self.recurrent_bias()))

    def _recur(self, z, weight, bias) -> torch.Tensor:
        """Run the neuron step by step on ``z[t] + R s[t-1] (+ bias)``."""
        neuron = self.neuron
        reference = z[0] if isinstance(z, tuple) else z
        batch, steps = reference.shape[0], reference.shape[-1]
        spikes = torch.zeros(batch, self.num_neurons, dtype=reference.dtype, device=reference.device)
        saved = self._spike_state
        if neuron.persistent_state and saved is not None and saved.shape == spikes.shape:
            spikes = saved
        parts = z if isinstance(z, tuple) else (z,)  # a complex neuron takes (real, imag)
        weights = weight if isinstance(weight, tuple) else (weight,)
        outputs = []
        with _stepping(neuron):
            for t in range(steps):
                drive = tuple((part[..., t] + _matvec(spikes, w, bias)).unsqueeze(-1)
                              for part, w in zip(parts, weights))
                out = neuron(drive if isinstance(z, tuple) else drive[0])
                outputs.append(out)
                spikes = out[..., 0]
        if neuron.persistent_state:
            self._spike_state = spikes.detach()
        return torch.cat(outputs, dim=-1)

    @property
    def synapse(self) -> nn.Module:
        """The input synapse (lava-dl's ``input_synapse``)."""
        return self.input_synapse

    def export_hdf5(self, handle) -> None:
        """Write this block as an hdf5 ``dense_rec`` record into ``handle``."""
        self._prepare_export()
        if hasattr(self.recurrent_synapse, "disable_weight_norm"):
            self.recurrent_synapse.disable_weight_norm()
        weight = self._quantized_weight(_dense_2d)
        weight_rec = self._quantized_weight(_dense_2d, self.recurrent_synapse, "recurrent weight")
        bias_rec = self.recurrent_bias()
        if bias_rec is not None:
            with _quantize.no_clipping("recurrent bias"):
                bias_rec = self.neuron.quantize_8bit(bias_rec, descale=True).detach().cpu().numpy()
                bias_rec = np.broadcast_to(bias_rec, (self.num_neurons,))
        records.write_dense(handle, shape=(self.num_neurons,), weight=weight, bias=self._bias(),
                            neuron=self._neuron_fields(), delay=self._delay_field(), weight_rec=weight_rec,
                            bias_rec=bias_rec)


class KWTA(Recurrent):
    """k-winners-take-all block: a recurrent block with a fixed inhibitory recurrence (lava-dl's ``KWTA``).

    ``s[t] = neuron(W x[t] + R s[t-1] + b)`` with ``R = (1 + a) I - 1`` (self-excitation
    ``a`` on the diagonal, -1 elsewhere) and ``b = threshold (N - 2K) / N / scale``, both
    8-bit quantized by the neuron's quantizer, as lava-dl computes them.

    Parameters
    ----------
    neuron_params : dict
        Neuron arguments.
    in_neurons, out_neurons : int
        Input size and number of competing neurons ``N``.
    num_winners : int
        ``K``.
    self_excitation : float
        ``a``, clamped to [0, 1] (learnable when ``requires_grad``).
    weight_scale, weight_norm, pre_hook_fx, delay_shift, requires_grad, count_log
        As for :class:`Recurrent`.

    Notes
    -----
    Exported as a ``dense_rec`` record whose ``weight_rec`` is ``R`` and whose ``bias_rec``
    is ``b`` (lava-dl's KWTA export wrote nothing); netx adds ``b`` to the recurrent
    synapse's output every step. A complex (resonator) neuron gets the same recurrent drive
    on both parts.
    """

    def __init__(self, neuron_params, in_neurons, out_neurons, num_winners, self_excitation=0.5,
                 weight_scale=1, weight_norm=False, pre_hook_fx=None, delay_shift=True, requires_grad=True,
                 count_log=False):
        super().__init__(neuron_params, in_neurons, out_neurons, weight_scale=weight_scale,
                         weight_norm=weight_norm, pre_hook_fx=pre_hook_fx, requires_grad=requires_grad,
                         delay=False, delay_shift=delay_shift, count_log=count_log)
        self.num_winners = int(num_winners)
        if not 0 < self.num_winners <= self.num_neurons:
            raise ValueError(f"KWTA: num_winners must lie in [1, {self.num_neurons}], got {num_winners}")
        self.self_excitation = nn.Parameter(torch.tensor([float(self_excitation)]),
                                            requires_grad=requires_grad)

    def _make_recurrent_synapse(self, module, weight_scale, weight_norm):
        return None

    def clamp(self) -> None:
        """Keep the self-excitation in [0, 1]."""
        self.self_excitation.data.clamp_(0, 1)

    def recurrent_weight(self):
        self.clamp()
        eye = torch.eye(self.num_neurons, device=self.self_excitation.device)
        weight = (1 + self.self_excitation) * eye - 1
        weight = self.neuron.quantize_8bit(weight)
        return (weight, weight) if is_complex(self.neuron_class) else weight

    def recurrent_bias(self) -> torch.Tensor:
        neuron = self.neuron
        bias = torch.tensor([neuron.threshold * (self.num_neurons - 2 * self.num_winners) / self.num_neurons
                             / neuron.w_scale], device=self.self_excitation.device)
        return neuron.quantize_8bit(bias)

    def export_hdf5(self, handle) -> None:
        """Write this block as an hdf5 ``dense_rec`` record (``weight_rec`` = R, ``bias_rec`` = b)."""
        self._prepare_export()
        weight = self._quantized_weight(_dense_2d)
        rec = self.neuron.quantize_8bit(self.recurrent_weight()[0] if is_complex(self.neuron_class)
                                        else self.recurrent_weight(), descale=True)
        rec = rec.detach().cpu().numpy().astype(np.float32)
        weight_rec = {"real": rec, "imag": rec} if is_complex(self.neuron_class) else rec
        with _quantize.no_clipping("KWTA recurrent bias"):
            bias_rec = np.full(self.num_neurons, float(self.neuron.quantize_8bit(self.recurrent_bias(),
                                                                                 descale=True)), np.float32)
        records.write_dense(handle, shape=(self.num_neurons,), weight=weight, bias=self._bias(),
                            neuron=self._neuron_fields(), weight_rec=weight_rec, bias_rec=bias_rec)


class _Stepping:
    """Context: run a neuron one step per call, its states carried from call to call.

    States start from zero unless the neuron has ``persistent_state`` (then they continue
    from the previous call, as the neuron itself would).
    """

    def __init__(self, neuron):
        self.neuron = neuron

    def __enter__(self):
        if getattr(type(self.neuron), "spec", None) is None:
            raise NotImplementedError(
                f"a recurrent block steps its neuron one time step per call, which needs a lava_dl neuron "
                f"family (whose states it restarts at each block call); {type(self.neuron).__name__} is "
                "defined outside lava_dl")
        self.persistent = self.neuron.persistent_state
        if not self.persistent:
            self.neuron._states.clear()
        self.neuron.persistent_state = True
        # the neuron's parameters are checked once for all steps (they do not change meanwhile)
        self.neuron._check_parameters()
        self.skip = self.neuron._skip_param_checks
        self.neuron._skip_param_checks = True
        return self.neuron

    def __exit__(self, *exc):
        self.neuron._skip_param_checks = self.skip
        self.neuron.persistent_state = self.persistent
        if not self.persistent:
            self.neuron._states.clear()
        return False


_stepping = _Stepping


def _matvec(spikes: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``spikes @ weight.T (+ bias)`` in the dtype of float64 (graded) spikes."""
    if spikes.dtype == torch.float64:
        weight = weight.to(torch.float64)
    out = spikes @ weight.T
    return out if bias is None else out + bias.to(out.dtype)


#: ``{id(tensor): weak reference to the neuron that produced it}`` (see :func:`_produced_by`); kept
#: outside the tensor, whose attributes ``torch.save`` would pickle, and dropped with the tensor.
_PRODUCERS: dict[int, weakref.ref] = {}


def _produced_by(out, neuron: nn.Module):
    """Tag the neuron output ``out`` with its neuron, so that a consumer can ask the neuron for
    another memory layout of its next outputs (:func:`_prefer_logical_output`)."""
    if isinstance(out, torch.Tensor) and id(out) not in _PRODUCERS:
        _PRODUCERS[id(out)] = weakref.ref(neuron)
        weakref.finalize(out, _PRODUCERS.pop, id(out), None)
    return out


def _prefer_logical_output(x: torch.Tensor) -> None:
    """Ask the neuron that produced ``x`` (if tagged) to store its next outputs in the logical
    order ``N, T, C, H, W`` (its ``logical_output``), which a Flatten block reads as a view
    instead of copying a channels-last tensor. Values never change, only the layout."""
    ref = _PRODUCERS.get(id(x))
    neuron = ref() if ref is not None else None
    if neuron is not None:
        neuron.logical_output = True


def _check_weight_values(weight: np.ndarray, what: str) -> None:
    """Raise unless the deployed ``weight`` holds integers in ``[WEIGHT_MIN, WEIGHT_MAX]`` (what netx
    deploys on Loihi's 8-bit synapses)."""
    finite = np.isfinite(weight)
    if not finite.all():
        raise ValueError(f"{what}: {int((~finite).sum())} of {weight.size} values are NaN or inf")
    if weight.size and (weight.min() < WEIGHT_MIN or weight.max() > WEIGHT_MAX):
        beyond = int(((weight < WEIGHT_MIN) | (weight > WEIGHT_MAX)).sum())
        raise ValueError(f"{what}: {beyond} of {weight.size} deployed values lie outside Loihi's weight "
                         f"range [{WEIGHT_MIN}, {WEIGHT_MAX}] (values from {weight.min():g} to "
                         f"{weight.max():g}); use a pre_hook_fx that quantizes into it (the neuron's 8-bit "
                         "quantizer does)")
    if not np.array_equal(weight, np.round(weight)):
        example = weight[weight != np.round(weight)].reshape(-1)[0]
        raise ValueError(f"{what}: deployed weights must be integers (got e.g. {example:g}); give the "
                         "synapse an integer quantizer as pre_hook_fx (by default the neuron's "
                         "quantize_8bit)")


def _dense_2d(weight: np.ndarray) -> np.ndarray:
    if weight.ndim > 2 and np.prod(weight.shape[2:]) != 1:
        raise ValueError("a Dense block over a spatial input cannot be exported; insert a Flatten block")
    return weight.reshape(weight.shape[0], -1)


def _pair(value) -> tuple[int, int]:
    value = tuple(int(v) for v in (value if isinstance(value, (tuple, list)) else (value, value)))
    return value[-2:] if len(value) > 2 else value


def _masked(hook, mask):
    def apply(weight, descale=False):
        w = weight * mask.reshape(weight.shape) if mask is not None else weight
        if hook is None:
            return w
        return hook(w, descale=True) if descale else hook(w)

    return apply


def step_delay(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """lava-dl's helper for custom blocks: ``x`` delayed by one step (Loihi's synaptic latency).

    With a persistent neuron (``module.neuron.persistent_state``) step 0 is the last step of the
    previous call (kept, detached, in ``module.delay_buffer``; forgotten when the batch size
    changes), else zeros. The blocks here do the same through ``delay_shift``.
    """
    neuron = getattr(module, "neuron", None)
    persistent = bool(getattr(neuron, "persistent_state", False))
    buffer = getattr(module, "delay_buffer", None)
    if buffer is not None and buffer.shape != x.shape[:-1]:
        buffer = None
    first = buffer[..., None] if persistent and buffer is not None else None
    module.delay_buffer = x[..., -1].detach() if persistent else None
    return delay_shift(x, first)


_ABSTRACT_NAMES = ("AbstractInput", "AbstractFlatten", "AbstractAverage", "AbstractAffine",
                   "AbstractTimeDecimation", "AbstractDense", "AbstractConv", "AbstractPool", "AbstractConvT",
                   "AbstractUnpool", "AbstractKWTA", "AbstractRecurrent", "AbstractResidual")


def __getattr__(name: str):
    """lava-dl's abstract blocks (``base.AbstractDense`` ...), defined on the blocks above in
    :mod:`lava_dl.slayer.block.abstract` (imported on first use: that module imports this one)."""
    if name in _ABSTRACT_NAMES:
        from lava_dl.slayer.block import abstract

        return getattr(abstract, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["family", "bind", "is_complex", "neuron_fields", "step_delay", "MAX_DELAY", "BLOCK_NAMES",
           "ExportError", *BLOCK_NAMES, *_ABSTRACT_NAMES]
