"""Blocks (synapse + neuron + one-step delay) written once for every neuron family.

A family module binds these classes to its neuron with :func:`bind`, e.g.
``Dense = bind(Dense, cuba.Neuron)``; ``block.cuba.Dense`` and a later
``block.alif.Dense`` are the same code with a different ``neuron_class``.
Each block knows its neuron shape at construction when the arguments fix it
and writes its hdf5 record with :meth:`export_hdf5`.

A neuron whose spec has two input ports (the resonators: ``a_real_in``,
``a_imag_in``) is complex: its Dense/Conv blocks use the complex synapses of
:mod:`lava_dl.slayer.complex_synapse` (a ``(real, imag)`` pair, exported as
``weight/real`` and ``weight/imag``) and its Input block drives both parts
with the same input, as netx's Input block does.
"""

from __future__ import annotations

import typing as ty

import numpy as np
import torch
from torch import nn

from lava_dl.core import records
from lava_dl.slayer import complex_synapse as _complex_synapse
from lava_dl.slayer import synapse as _synapse
from lava_dl.slayer.utils import delay_shift


def family(neuron_cls: type, module: str) -> tuple[type, ...]:
    """``(Input, Flatten, Dense, Affine, Conv)`` bound to ``neuron_cls``, defined in ``module``."""
    return tuple(bind(cls, neuron_cls, module) for cls in (Input, Flatten, Dense, Affine, Conv))


def bind(block_cls: type, neuron_cls: type, module: str) -> type:
    """Return ``block_cls`` bound to ``neuron_cls``, defined in ``module``."""
    family = neuron_cls.__module__.rsplit(".", 1)[-1]
    return type(block_cls.__name__, (block_cls,), {
        "neuron_class": neuron_cls,
        "__module__": module,
        "__doc__": f"{block_cls.__doc__}\n\n    Neuron: :class:`{neuron_cls.__module__}.Neuron` ({family}).",
    })


def is_complex(neuron_cls: type) -> bool:
    """Whether ``neuron_cls`` takes a complex input: two input ports (real, imaginary) in its spec."""
    return len(neuron_cls.spec.in_ports) == 2


def _synapse_module(neuron_cls: type):
    """Synapse module for ``neuron_cls``: complex synapses for a two-port neuron, real ones otherwise."""
    return _complex_synapse if is_complex(neuron_cls) else _synapse


class _Block(nn.Module):
    neuron_class: ty.ClassVar[type]

    def __init__(self, delay_shift: bool, count_log: bool):
        super().__init__()
        self.delay_shift = bool(delay_shift)
        self.count_log = bool(count_log)
        self._last_output: torch.Tensor | None = None

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
        """Apply the one-step synaptic latency and the optional event-rate log."""
        if self.delay_shift:
            first = self._first_step(x)
            self._keep_last(x[..., -1:])
            x = delay_shift(x, first)
        return self._log(x)

    def _log(self, x: torch.Tensor):
        if self.count_log:
            return x, torch.mean(x.detach() != 0).item() if x.numel() else 0.0
        return x

    def _neuron_fields(self) -> dict | None:
        return None if self.neuron is None else self.neuron.device_params()

    def _bias(self) -> np.ndarray | None:
        norm = getattr(self.neuron, "norm", None) if self.neuron is not None else None
        if norm is None or not hasattr(norm, "bias"):
            return None
        return norm.bias.detach().cpu().numpy()

    def _quantized_weight(self, reshape: ty.Callable[[np.ndarray], np.ndarray] | None = None
                          ) -> records.Weight:
        """Deployed weight(s) through ``reshape``: an array, or ``{'real', 'imag'}`` for a complex synapse."""
        def quantized(synapse) -> np.ndarray:
            weight = synapse.weight
            if synapse.pre_hook_fx is not None:
                weight = synapse.pre_hook_fx(weight, descale=True)
            weight = weight.detach().cpu().numpy().astype(np.float32)
            return weight if reshape is None else reshape(weight)

        if getattr(self.synapse, "complex", False):
            return {"real": quantized(self.synapse.real), "imag": quantized(self.synapse.imag)}
        return quantized(self.synapse)

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
    weight, bias : float
        Scalar input transform (quantized with the neuron's 8-bit quantizer).
    delay_shift : bool
        Add one step of latency (default False for an input).
    count_log : bool
        Also return the mean event rate.
    shape : tuple of int, optional
        Input neuron shape ``(C,)`` or ``(C, H, W)``; inferred at the first call if omitted.
    """

    def __init__(self, neuron_params=None, weight=1, bias=0, delay_shift=False, count_log=False, shape=None):
        super().__init__(delay_shift, count_log)
        self.neuron = self._make_neuron(neuron_params, shape=shape)
        self.shape = tuple(shape) if shape is not None else None
        self.pre_hook_fx = None if self.neuron is None else self.neuron.quantize_8bit
        self.weight = nn.Parameter(torch.tensor([float(weight)]), requires_grad=False)
        self.bias = nn.Parameter(torch.tensor([float(bias)]), requires_grad=False)

    def forward(self, x: torch.Tensor):
        self.shape = tuple(x.shape[1:-1])
        if self.neuron is not None:
            weight, bias = self.weight, self.bias
            if self.pre_hook_fx is not None:
                weight, bias = self.pre_hook_fx(weight), self.pre_hook_fx(bias)
            drive = weight * x + bias
            # a complex neuron gets the same drive on both parts (netx Input feeds both ports)
            x = self.neuron((drive, drive) if is_complex(self.neuron_class) else drive)
        return self._finish(x)

    def export_hdf5(self, handle) -> None:
        """Write this block as an hdf5 ``input`` record into the group ``handle``."""
        if self.shape is None:
            raise RuntimeError("Input block shape unknown: pass shape= or run one forward before export")
        self._check_deployable()
        weight = bias = None
        if self.neuron is not None:
            weight = float(self.pre_hook_fx(self.weight, descale=True))
            bias = float(self.pre_hook_fx(self.bias, descale=True))
        records.write_input(handle, shape=self.shape, neuron=self._neuron_fields(), weight=weight,
                                   bias=bias)


class Flatten(_Block):
    """Flatten ``N, C, H, W, T`` to ``N, C*H*W, T`` (row-major over C, H, W)."""

    def __init__(self, count_log=False):
        super().__init__(delay_shift=False, count_log=count_log)
        self.neuron = None
        self.shape: tuple[int, ...] | None = None

    def forward(self, x: torch.Tensor):
        out = x.reshape(x.shape[0], -1, x.shape[-1])
        self.shape = (out.shape[1], 1, 1)
        return self._finish(out)

    def export_hdf5(self, handle) -> None:
        if self.shape is None:
            raise RuntimeError("Flatten block shape unknown: run one forward before export")
        records.write_flatten(handle, shape=self.shape)


class _Weighted(_Block):
    """Common code of blocks made of one synapse and one neuron."""

    def _setup(self, synapse: nn.Module, weight_scale, pre_hook_fx, delay):
        """Set the synapse's pre-hook (both parts of a complex synapse) and keep it as ``self.synapse``."""
        if delay:
            raise NotImplementedError("learnable axonal delay (delay=True) is not supported yet")
        if pre_hook_fx is None and self.neuron is not None:
            pre_hook_fx = self.neuron.quantize_8bit
        synapse.pre_hook_fx = pre_hook_fx
        self.synapse = synapse

    def forward(self, x: torch.Tensor):
        z = self.synapse(x)
        if self.neuron is None:
            return self._finish(z)
        if not self.delay_shift or not hasattr(self.neuron, "delayed"):
            return self._finish(self.neuron(z))
        # the neuron writes its output one step late itself (no extra pass over memory)
        reference = z[0] if isinstance(z, tuple) else z  # complex synapses give (real, imag)
        out, last = self.neuron.delayed(z, self._first_step(reference))
        self._keep_last(last)
        return self._log(out)

    def _prepare_export(self):
        self._check_deployable()
        if hasattr(self.synapse, "disable_weight_norm"):
            self.synapse.disable_weight_norm()


class Dense(_Weighted):
    """Dense block: fully connected synapse, neuron, one-step delay.

    For a complex (two-port) neuron the synapse is a
    :class:`lava_dl.slayer.complex_synapse.Dense` (``weight/real``, ``weight/imag``).

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
        Learnable axonal delay (not supported yet: raises).
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
        self._setup(synapse, weight_scale, pre_hook_fx, delay)
        self.mask = None if mask is None else mask.detach().clone()
        if self.mask is not None:
            self.synapse.pre_hook_fx = _masked(self.synapse.pre_hook_fx, self.mask)

    def export_hdf5(self, handle) -> None:
        """Write this block as an hdf5 ``dense`` record into the group ``handle``."""
        self._prepare_export()

        def to_2d(weight: np.ndarray) -> np.ndarray:
            if weight.ndim > 2 and np.prod(weight.shape[2:]) != 1:
                raise ValueError("a Dense block over a spatial input cannot be exported; "
                                 "insert a Flatten block")
            return weight.reshape(weight.shape[0], -1)

        weight = self._quantized_weight(to_2d)
        records.write_dense(handle, shape=(self.synapse.out_channels,), weight=weight, bias=self._bias(),
                                   neuron=self._neuron_fields())


class Affine(Dense):
    """Dense synapse whose output is the neuron voltage (``dynamics=True``) or the raw synaptic input.

    Parameters are those of :class:`Dense` plus ``dynamics`` (bool); the neuron never spikes.
    Not available for complex (two-port) neurons.
    """

    def __init__(self, neuron_params, in_neurons, out_neurons, weight_scale=1, weight_norm=False,
                 pre_hook_fx=None, dynamics=False, mask=None, count_log=False):
        if is_complex(self.neuron_class):
            raise NotImplementedError(f"{type(self).__module__}.Affine: an affine readout of a complex "
                                      f"({self.neuron_class.spec.name}) neuron is not supported")
        params = dict(neuron_params)
        params["threshold"] = -1
        super().__init__(params, in_neurons, out_neurons, weight_scale=weight_scale, weight_norm=weight_norm,
                         pre_hook_fx=pre_hook_fx, delay=False, delay_shift=False, mask=mask,
                         count_log=count_log)
        self.dynamics = bool(dynamics)

    def forward(self, x: torch.Tensor):
        z = self.synapse(x)
        if self.dynamics:
            _, z, _ = self.neuron.dynamics(z)
        return self._finish(z)

    def _neuron_fields(self) -> dict | None:
        if not self.dynamics:
            return None
        fields = self.neuron.device_params()
        fields["vThMant"] = (1 << 18) - 1
        return fields


class Conv(_Weighted):
    """Convolution block: conv synapse, neuron, one-step delay.

    For a complex (two-port) neuron the synapse is a
    :class:`lava_dl.slayer.complex_synapse.Conv` (``weight/real``, ``weight/imag``).

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
        As for :class:`Dense`.
    input_shape : (int, int), optional
        Input ``(H, W)``; fixes the neuron shape at construction (else at the first call).
    """

    def __init__(self, neuron_params, in_features, out_features, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, weight_scale=1, weight_norm=False, pre_hook_fx=None, delay=False, delay_shift=True,
                 count_log=False, input_shape=None):
        super().__init__(delay_shift, count_log)
        synapse = _synapse_module(self.neuron_class).Conv(
            in_features, out_features, kernel_size, stride=stride, padding=padding, dilation=dilation,
            groups=groups, weight_scale=weight_scale, weight_norm=weight_norm)
        shape = None
        if input_shape is not None:
            shape = (int(out_features), *conv_output_size(input_shape, synapse))
        self.neuron = self._make_neuron(neuron_params, shape=shape, num_channels=int(out_features))
        self._setup(synapse, weight_scale, pre_hook_fx, delay)

    def export_hdf5(self, handle) -> None:
        """Write this block as an hdf5 ``conv`` record into the group ``handle``."""
        self._prepare_export()
        if self.neuron.shape is None:
            raise RuntimeError("Conv block shape unknown: pass input_shape= or run one forward before export")
        syn = self.synapse
        weight = self._quantized_weight(lambda w: w.reshape(w.shape[:4]))
        records.write_conv(handle, shape=self.neuron.shape, weight=weight, in_channels=syn.in_channels,
                                  out_channels=syn.out_channels, kernel_size=_pair(syn.kernel_size),
                                  stride=_pair(syn.stride), padding=_pair(syn.padding),
                                  dilation=_pair(syn.dilation), groups=syn.groups, bias=self._bias(),
                                  neuron=self._neuron_fields())


def _pair(value) -> tuple[int, int]:
    value = tuple(int(v) for v in (value if isinstance(value, (tuple, list)) else (value, value)))
    return value[-2:] if len(value) > 2 else value


def conv_output_size(input_shape, synapse) -> tuple[int, int]:
    """Output ``(H, W)`` of a conv synapse for input ``(H, W)``."""
    size = []
    for i, n in enumerate(_pair(input_shape)):
        k, s, p, d = (_pair(getattr(synapse, a))[i] for a in ("kernel_size", "stride", "padding", "dilation"))
        size.append((n + 2 * p - d * (k - 1) - 1) // s + 1)
    return tuple(size)


def _masked(hook, mask):
    def apply(weight, descale=False):
        w = weight * mask.reshape(weight.shape) if mask is not None else weight
        if hook is None:
            return w
        return hook(w, descale=True) if descale else hook(w)

    return apply


__all__ = ["family", "bind", "is_complex", "Input", "Flatten", "Dense", "Affine", "Conv"]
