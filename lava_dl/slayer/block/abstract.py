"""lava-dl's abstract blocks, for blocks and neuron families written on lava-dl's extension API.

lava-dl builds every block from two halves: an abstract block of :mod:`slayer.block.base`
(``AbstractDense``, ``AbstractConv`` ...) that keeps the constructor arguments (``neuron_params``,
``synapse_params``) and supplies ``forward``, ``shape`` and ``export_hdf5``, and a family mixin
(``AbstractCuba``, ``AbstractSDRelu`` ...) that builds ``self.neuron`` from ``neuron_params``.
The concrete class then builds ``self.synapse`` from ``synapse_params``::

    class Dense(MyFamily, base.AbstractDense):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.synapse = synapse.Dense(**self.synapse_params)
            self.synapse.pre_hook_fx = self.neuron.quantize_8bit
            del self.synapse_params

Code written that way runs here unchanged: each abstract block below is the lava_dl block of
:mod:`lava_dl.slayer.block.base` with lava-dl's constructor, so ``forward`` and ``export_hdf5``
are that block's own (no second implementation), with its checks and its fixes of lava-dl's
behaviour (documented on each block). :func:`abstract_family` makes the family mixins of
lava_dl's neurons (``slayer.block.cuba.AbstractCuba`` ...); a mixin written for lava-dl works
too, with a lava_dl neuron or with a neuron of its own on lava-dl's base-class contract (see
:class:`lava_dl.slayer.neuron.base.Neuron`).

Differences from lava-dl, each also a difference of the concrete blocks:

* ``AbstractInput`` defaults to ``delay_shift=False`` (see :class:`~lava_dl.slayer.block.base.Input`).
* ``AbstractRecurrent`` and ``AbstractKWTA`` do not force ``persistent_state`` on their neuron
  (lava-dl did, so states leaked from one call into the next); they step only lava_dl neuron
  families (a neuron of another family raises ``NotImplementedError`` at the first call).
* A ``mask`` is applied to the weights at every forward and at export (lava-dl: at every
  forward only), so an exported masked block never holds masked-out weights.
"""

from __future__ import annotations

import typing as ty

import torch
from torch import nn

from lava_dl.slayer._eager import eager
from lava_dl.slayer.block import base as _base

__all__ = ["AbstractInput", "AbstractFlatten", "AbstractAverage", "AbstractAffine", "AbstractTimeDecimation",
           "AbstractDense", "AbstractConv", "AbstractPool", "AbstractConvT", "AbstractUnpool", "AbstractKWTA",
           "AbstractRecurrent", "AbstractResidual", "abstract_family"]


class _Abstract:
    """What lava-dl's abstract blocks promise their subclasses: the arguments kept as
    ``neuron_params``/``synapse_params``, and ``neuron``, ``synapse``, ``delay`` left for the
    subclass to build."""

    #: What the subclass must have built before the first forward.
    _built_by_subclass: ty.ClassVar[tuple[str, ...]] = ("synapse",)

    def _start(self, neuron_params, delay_shift: bool, count_log: bool, delay: bool = False,
               **params) -> None:
        _base._Block.__init__(self, delay_shift, count_log)
        self.register_forward_pre_hook(_check_subclass_built)
        self.neuron_params = None if neuron_params is None else dict(neuron_params)
        #: whether the block was asked for an axonal delay (the family mixin creates it)
        self.delay_requested = bool(delay)
        for name, value in params.items():
            setattr(self, name, value)
        self.neuron = None

    @property
    def neuron_class(self) -> type | None:
        """The class of the neuron the subclass built (a family mixin names its own)."""
        return None if self.neuron is None else type(self.neuron)


class _Masked:
    """lava-dl's ``mask`` argument: a buffer ``(out, in, 1, 1, 1)`` multiplied into the weights."""

    def _register_mask(self, mask: torch.Tensor | None) -> None:
        if mask is None:
            self.mask = None
        else:
            mask = torch.as_tensor(mask)
            self.register_buffer("mask", mask.reshape(mask.shape[0], mask.shape[1], 1, 1, 1).clone())

    def _apply_mask(self) -> None:
        if self.mask is None:
            return
        synapse = self.synapse
        parts = (synapse.real, synapse.imag) if getattr(synapse, "complex", False) else (synapse,)
        with torch.no_grad():
            for part in parts:
                if self.mask.numel() != part.weight.numel():
                    mask, weight = tuple(self.mask.shape[:2]), tuple(part.weight.shape[:2])
                    raise ValueError(f"{type(self).__name__}: the mask of shape {mask} does not fit the "
                                     f"synapse weight of shape {weight}")
                part.weight.mul_(self.mask.reshape(part.weight.shape).to(part.weight.dtype))

    @eager
    def forward(self, x: torch.Tensor):
        self._apply_mask()
        return super().forward(x)

    def export_hdf5(self, handle, *args, **kwargs) -> None:
        """Write the block's hdf5 record (the weights masked first)."""
        self._apply_mask()
        return super().export_hdf5(handle, *args, **kwargs)


class AbstractInput(_Abstract, _base.Input):
    """lava-dl's abstract input block: ``neuron_params=None, weight=None, bias=None,
    delay_shift=False, count_log=False``; the subclass builds ``neuron`` (and usually sets
    ``pre_hook_fx = neuron.quantize_8bit``). Forward and export are :class:`~lava_dl.slayer.block.
    base.Input`'s."""

    _built_by_subclass = ()

    def __init__(self, neuron_params=None, weight=None, bias=None, delay_shift=False, count_log=False):
        self._start(neuron_params, delay_shift, count_log, synapse_params=None)
        self.shape = None
        self.pre_hook_fx = None
        for name, value in (("weight", weight), ("bias", bias)):
            parameter = None if value is None else nn.Parameter(torch.tensor([float(value)]))
            self.register_parameter(name, parameter)


class AbstractFlatten(_base.Flatten):
    """lava-dl's ``AbstractFlatten`` (no neuron): :class:`~lava_dl.slayer.block.base.Flatten`."""


class AbstractAverage(_base.Average):
    """lava-dl's ``AbstractAverage`` (no neuron): :class:`~lava_dl.slayer.block.base.Average`."""


class AbstractTimeDecimation(_base.TimeDecimation):
    """lava-dl's ``AbstractTimeDecimation`` (no neuron):
    :class:`~lava_dl.slayer.block.base.TimeDecimation`."""


class AbstractDense(_Masked, _Abstract, _base.Dense):
    """lava-dl's abstract dense block: ``neuron_params, in_neurons, out_neurons, weight_scale=1,
    weight_norm=False, pre_hook_fx=None, delay=False, delay_shift=True, mask=None,
    count_log=False``; ``synapse_params`` holds the arguments of ``synapse.Dense``. Forward and
    export are :class:`~lava_dl.slayer.block.base.Dense`'s."""

    def __init__(self, neuron_params, in_neurons, out_neurons, weight_scale=1, weight_norm=False,
                 pre_hook_fx=None, delay=False, delay_shift=True, mask=None, count_log=False):
        self._start(neuron_params, delay_shift, count_log, delay, synapse_params=dict(
            in_neurons=in_neurons, out_neurons=out_neurons, weight_scale=weight_scale,
            weight_norm=weight_norm, pre_hook_fx=pre_hook_fx))
        self.synapse = None
        self._register_mask(mask)


class AbstractAffine(_Masked, _Abstract, _base.Affine):
    """lava-dl's abstract affine block: as :class:`AbstractDense` with ``dynamics=True`` in place of
    the delays. With ``dynamics`` the output is the neuron's second recorded state (its
    ``dynamics(z)[1]``, the voltage), else the synaptic input; the neuron never spikes (lava-dl's
    subclasses set its threshold to None or -1). Export is :class:`~lava_dl.slayer.block.base.Affine`'s."""

    def __init__(self, neuron_params, in_neurons, out_neurons, weight_scale=1, weight_norm=False,
                 pre_hook_fx=None, dynamics=True, mask=None, count_log=False):
        self._start(neuron_params, False, count_log, synapse_params=dict(
            in_neurons=in_neurons, out_neurons=out_neurons, weight_scale=weight_scale,
            weight_norm=weight_norm, pre_hook_fx=pre_hook_fx))
        self.synapse = None
        self.dynamics = bool(dynamics)
        self._register_mask(mask)

    @eager
    def forward(self, x: torch.Tensor):
        self._apply_mask()
        z = self.synapse(x)
        if self.dynamics:
            z = self.neuron.dynamics(z)[1]
        return self._finish(z)


def _conv_params(in_features, out_features, kernel_size, stride, padding, dilation, groups, weight_scale,
                 weight_norm, pre_hook_fx) -> dict:
    return dict(in_features=in_features, out_features=out_features, kernel_size=kernel_size,
                           stride=stride, padding=padding, dilation=dilation, groups=groups,
                           weight_scale=weight_scale, weight_norm=weight_norm, pre_hook_fx=pre_hook_fx)


class AbstractConv(_Abstract, _base.Conv):
    """lava-dl's abstract convolution block: ``neuron_params, in_features, out_features,
    kernel_size, stride=1, padding=0, dilation=1, groups=1, weight_scale=1, weight_norm=False,
    pre_hook_fx=None, delay=False, delay_shift=True, count_log=False``; ``synapse_params``
    holds the arguments of ``synapse.Conv``. Forward and export are
    :class:`~lava_dl.slayer.block.base.Conv`'s (the neuron shape comes from the first input)."""

    def __init__(self, neuron_params, in_features, out_features, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, weight_scale=1, weight_norm=False, pre_hook_fx=None, delay=False, delay_shift=True,
                 count_log=False):
        self._start(neuron_params, delay_shift, count_log, delay, synapse_params=_conv_params(
            in_features, out_features, kernel_size, stride, padding, dilation, groups, weight_scale,
            weight_norm, pre_hook_fx))
        self.synapse = None


class AbstractConvT(AbstractConv, _base.ConvT):
    """lava-dl's abstract transposed-convolution block: :class:`AbstractConv`'s arguments (for
    ``synapse.ConvTranspose``); export writes a ``convT`` record."""


class AbstractPool(_Abstract, _base.Pool):
    """lava-dl's abstract pooling block: ``neuron_params, kernel_size, stride=None, padding=0,
    dilation=1, weight_scale=1, weight_norm=False, pre_hook_fx=None, delay=False,
    delay_shift=True, count_log=False``; a ``norm`` in ``neuron_params`` is dropped (as lava-dl,
    which changed the caller's dict; a copy is changed here)."""

    def __init__(self, neuron_params, kernel_size, stride=None, padding=0, dilation=1, weight_scale=1,
                 weight_norm=False, pre_hook_fx=None, delay=False, delay_shift=True, count_log=False):
        self._start(neuron_params, delay_shift, count_log, delay, synapse_params=dict(
            kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
            weight_scale=weight_scale, weight_norm=weight_norm, pre_hook_fx=pre_hook_fx))
        if self.neuron_params is not None and "norm" in self.neuron_params:
            self.neuron_params["norm"] = None
        self.synapse = None


class AbstractUnpool(AbstractPool, _base.Unpool):
    """lava-dl's abstract unpooling block: :class:`AbstractPool`'s arguments (for ``synapse.Unpool``);
    export writes an ``unpool`` record."""


def _module_or_none(*names: str) -> property:
    """A read-only attribute: the first submodule of ``names`` the subclass registered (lava-dl's
    recurrent subclasses name the input synapse ``input_synapse`` or ``synapse``)."""
    def get(self):
        for name in names:
            module = self._modules.get(name)
            if module is not None:
                return module
        return None

    return property(get)


class _AbstractRecurrentBase(_Abstract):
    input_synapse = _module_or_none("input_synapse", "synapse")
    synapse = _module_or_none("input_synapse", "synapse")

    def _start_recurrent(self, neuron_params, in_neurons, out_neurons, weight_scale, weight_norm,
                         pre_hook_fx, requires_grad, delay_shift, count_log, delay=False) -> None:
        self._start(neuron_params, delay_shift, count_log, delay, synapse_params=dict(
            in_neurons=in_neurons, out_neurons=out_neurons, weight_scale=weight_scale,
            weight_norm=weight_norm, pre_hook_fx=pre_hook_fx))
        self.num_neurons = int(out_neurons)
        self.requires_grad = bool(requires_grad)
        self._spike_state = None


class AbstractRecurrent(_AbstractRecurrentBase, _base.Recurrent):
    """lava-dl's abstract recurrent block: ``neuron_params, in_neurons, out_neurons, weight_scale=1,
    weight_norm=False, pre_hook_fx=None, requires_grad=True, delay=False, delay_shift=True,
    count_log=False``; the subclass builds ``input_synapse`` from ``synapse_params`` and
    ``recurrent_synapse`` from ``recurrent_params``. Forward and export are
    :class:`~lava_dl.slayer.block.base.Recurrent`'s."""

    recurrent_synapse = _module_or_none("recurrent_synapse")
    _built_by_subclass = ("input_synapse", "recurrent_synapse")

    def __init__(self, neuron_params, in_neurons, out_neurons, weight_scale=1, weight_norm=False,
                 pre_hook_fx=None, requires_grad=True, delay=False, delay_shift=True, count_log=False):
        self._start_recurrent(neuron_params, in_neurons, out_neurons, weight_scale, weight_norm, pre_hook_fx,
                              requires_grad, delay_shift, count_log, delay)
        self.recurrent_params = dict(in_neurons=out_neurons, out_neurons=out_neurons,
                                                weight_scale=weight_scale, weight_norm=weight_norm,
                                                pre_hook_fx=pre_hook_fx)

    @eager
    def forward(self, x: torch.Tensor):
        if self.recurrent_synapse is not None and not self.requires_grad:
            for parameter in self.recurrent_synapse.parameters():
                parameter.requires_grad_(False)
        return super().forward(x)


class AbstractKWTA(_AbstractRecurrentBase, _base.KWTA):
    """lava-dl's abstract k-winners-take-all block: ``neuron_params, in_neurons, out_neurons,
    num_winners, self_excitation=0.5, weight_scale=1, weight_norm=False, pre_hook_fx=None,
    delay_shift=True, requires_grad=True, count_log=False``; the subclass builds ``synapse``
    from ``synapse_params``. Forward and export are :class:`~lava_dl.slayer.block.base.KWTA`'s."""

    def __init__(self, neuron_params, in_neurons, out_neurons, num_winners, self_excitation=0.5,
                 weight_scale=1, weight_norm=False, pre_hook_fx=None, delay_shift=True, requires_grad=True,
                 count_log=False):
        self._start_recurrent(neuron_params, in_neurons, out_neurons, weight_scale, weight_norm, pre_hook_fx,
                              requires_grad, delay_shift, count_log)
        self.num_winners = int(num_winners)
        if not 0 < self.num_winners <= self.num_neurons:
            raise ValueError(f"KWTA: num_winners must lie in [1, {self.num_neurons}], got {num_winners}")
        self.self_excitation = nn.Parameter(torch.tensor([float(self_excitation)]),
                                            requires_grad=bool(requires_grad))


class AbstractResidual(nn.Module):
    """lava-dl's ``AbstractResidual`` (an empty placeholder there too)."""


def abstract_family(neuron_cls: type, name: str, module: str, delay_shift: bool | None = None) -> type:
    """lava-dl's family mixin for ``neuron_cls`` (e.g. ``AbstractCuba``): combined with an abstract
    block (``class Dense(AbstractCuba, base.AbstractDense)``), it builds ``self.neuron =
    neuron_cls(**neuron_params)`` and the axonal delay the block was asked for, then deletes
    ``neuron_params``.

    Parameters
    ----------
    neuron_cls : type
        The family's neuron.
    name, module : str
        The mixin's class name and module.
    delay_shift : bool, optional
        The family's own default for the block's ``delay_shift`` (sigma-delta: False), used
        unless the block is given one.
    """
    def __init__(self, *args, **kwargs):
        super(mixin, self).__init__(*args, **kwargs)
        if self.neuron_params is not None:
            self.neuron = neuron_cls(**self.neuron_params)
        if getattr(self, "delay_requested", False):
            self._make_delay(True, None)
        if delay_shift is not None and "delay_shift" not in kwargs:
            self.delay_shift = delay_shift
        del self.neuron_params

    mixin = type(name, (nn.Module,), {
        "__init__": __init__,
        "neuron_class": neuron_cls,
        "__module__": module,
        "__doc__": f"lava-dl's abstract block mixin of the {neuron_cls.__module__}.Neuron family: combined "
                   f"with an abstract block of :mod:`lava_dl.slayer.block.base`, it builds the block's "
                   f"neuron from ``neuron_params``.",
    })
    return mixin


def _check_subclass_built(block: nn.Module, args: tuple) -> None:
    """Forward pre-hook: the parts an abstract block leaves to its subclass must exist."""
    missing = [name for name in block._built_by_subclass if getattr(block, name, None) is None]
    if missing:
        raise RuntimeError(f"{type(block).__name__}: {', '.join(missing)} not built; an abstract block's "
                           f"subclass builds them in its __init__ (lava-dl's abstract blocks are never used "
                           f"on their own)")
