"""Sigma-delta blocks (lava-dl's ``slayer.block.sigma_delta``), bit-exact with netx + Lava.

The generic blocks of :mod:`lava_dl.slayer.block.base` bound to the sigma-delta
layers of :mod:`lava_dl.slayer.neuron.sigma_delta`:

============  ==============================================  ======================================
block         forward                                         hdf5 record / Lava process
============  ==============================================  ======================================
``Input``     ``z = q8(x)·q8(weight) + q8(bias)``, delta      ``input`` + SDNN neuron → ``Delta``
``Dense``     dense synapse → σ → (norm) → act → delta        ``dense`` → ``SigmaDelta``
``Conv``      conv synapse → σ → (norm) → act → delta         ``conv`` → ``SigmaDelta``
``Flatten``   ``N, C, H, W, T`` → ``N, C·H·W, T``             ``flatten``
``Output``    dense synapse → σ                               ``dense`` + ``sigma_output`` → ``Sigma``
============  ==============================================  ======================================

``neuron_params`` are lava-dl's sigma-delta neuron arguments: ``threshold``,
``activation`` (ReLU or identity), ``tau_grad``, ``scale_grad``, ``scale`` (must be
64), ``cum_error``, ``norm`` (``MeanOnlyBatchNorm``: exported as the ``bias``),
``dropout``, ``shared_param``, ``persistent_state``, ``requires_grad``, plus this
repository's ``spike_exp`` (graded-message fractional bits, netx's ``spike_exp``,
default 6) and ``check_precision``. ``Input`` uses only the delta-encoder arguments
(``norm``/``dropout`` are ignored, as in lava-dl) and ``Output`` only
``persistent_state``, ``spike_exp`` and ``check_precision`` (its record still carries
``activation`` and ``vThMant`` like lava-dl's).

Exactness
---------
The synapses of ``Dense``, ``Conv`` and ``Output`` are float64 (their input is cast
to the synapse's dtype), so the synaptic sum of every step reaches the neuron
exactly for any deployable network (see the neuron module's ``check_precision``);
their outputs are float64 too. ``Conv`` wraps its synaptic sums to signed 24 bits
(in units ``2^-(12+spike_exp)``) exactly as Lava's fixed-point ``Conv`` does
(:func:`wrap24`). Calling ``.float()`` on a block makes it float32 again; the neurons
then raise ``ValueError`` wherever a float32 sum may be inexact.

Timing (Lava alignment)
-----------------------
Sigma-delta blocks default to ``delay_shift=False``, while every Lava synapse adds
one step. A block with ``n`` synapses in front of it (``Input``: 0; the ``k``-th
weighted block: ``k``, plus one if the network has no ``Input`` block) computes at
Lava ``time_step`` ``t + 1 + n`` what slayer computes at index ``t``: the network
output at slayer index ``t`` is sink column ``t + N`` with ``N`` synapses in all.
netx's per-sample resets (``reset_interval``) follow the same stagger.

Example
-------
>>> import torch.nn.functional as F
>>> from lava_dl.slayer.block import sigma_delta as sd
>>> params = dict(threshold=0.1, activation=F.relu)
>>> net = torch.nn.Sequential(sd.Input(params), sd.Dense(params, 20, 16), sd.Output(params, 16, 4))
>>> y = net(x)                                   # x: N, 20, T on the 1/64 grid
>>> with h5py.File("net.net", "w") as f:
...     layer = f.create_group("layer")
...     for i, block in enumerate(net):
...         block.export_hdf5(layer.create_group(str(i)))
>>> lava_net = netx.hdf5.Network(net_config="net.net")   # Delta, SigmaDelta, Sigma

Feed Lava's ``Delta`` input with ``trunc(64·z)`` (netx does not apply the input
transform, as in lava-dl); without an ``Input`` block feed graded messages
``x·2^(6+spike_exp)`` and pass ``input_message_bits=16`` to the Network.
"""

from __future__ import annotations

import typing as ty

import numpy as np
import torch

from lava_dl.slayer._eager import eager
from lava_dl.slayer.block import abstract as _abstract
from lava_dl.slayer.block import base as _base
from lava_dl.slayer.neuron import sigma_delta as _neuron

__all__ = ["Input", "Flatten", "Average", "Dense", "Conv", "ConvT", "Pool", "Unpool", "Output", "wrap24",
           "AbstractSDRelu"]

#: Neuron arguments the ``Input`` block's delta encoder takes.
_DELTA_KEYS = ("threshold", "tau_grad", "scale_grad", "scale", "cum_error", "shared_param",
               "persistent_state", "requires_grad", "spike_exp")
#: Neuron arguments the ``Output`` block's sigma integrator takes.
_SIGMA_KEYS = ("persistent_state", "spike_exp", "check_precision")


def _check_params(neuron_params: dict | None, where: str) -> dict | None:
    if neuron_params is None:
        return None
    if not isinstance(neuron_params, dict):
        raise TypeError(f"{where}: neuron_params must be a dict of neuron arguments, "
                        f"got {type(neuron_params)}")
    return dict(neuron_params)


def _lava_dl_fields(params: dict) -> dict:
    """``type``, ``activation`` and ``vThMant`` as lava-dl's sigma-delta neuron exports them."""
    if params.get("threshold") is None:
        raise TypeError("neuron_params needs a 'threshold'")
    _, name = _neuron.activation_mode(params.get("activation"))
    scale = int(params.get("scale", 1 << 6))
    return {"type": _neuron.Neuron.spec.hdf5_type, "activation": name,
            "vThMant": int(float(params["threshold"]) * scale)}


class _Float64Synapse:
    """Mixin: run the synapse in float64 and feed it inputs in its own dtype; ``delay_shift``
    defaults to False (the other arguments are the generic block's)."""

    synapse: torch.nn.Module

    def __init__(self, *args, delay_shift: bool = False, **kwargs) -> None:
        super().__init__(*args, delay_shift=delay_shift, **kwargs)
        self.synapse.double()

    def _synapse_dtype(self) -> torch.dtype:
        return next(self.synapse.parameters()).dtype

    @eager
    def forward(self, x: torch.Tensor):
        """Block output for ``x`` (``N, C, (H, W,) T``), computed in the synapse's dtype."""
        return super().forward(x.to(self._synapse_dtype()))


#: lava-dl's family mixin for blocks built on :mod:`lava_dl.slayer.block.abstract` (``delay_shift``
#: defaults to False, as lava-dl's). The blocks of this module run their synapses in float64 for
#: exact sums; a block built on the mixin keeps the synapse it builds, and the neuron raises where
#: a float32 sum may be inexact (its ``check_precision``).
AbstractSDRelu = _abstract.abstract_family(_neuron.Neuron, "AbstractSDRelu", __name__, delay_shift=False)


(_BaseInput, Flatten, Average, _BaseDense, _BaseConv, _BaseConvT, _BasePool,
 _BaseUnpool) = _base.family(_neuron.Neuron, __name__,
                             ("Input", "Flatten", "Average", "Dense", "Conv", "ConvT", "Pool", "Unpool"))


class Input(_BaseInput):
    """Sigma-delta input block: ``z = q8(x)·q8(weight) + q8(bias)``, then the delta encoder only.

    Parameters
    ----------
    neuron_params : dict, optional
        lava-dl sigma-delta neuron arguments (module docstring); the delta encoder uses
        ``threshold``, ``tau_grad``, ``scale_grad``, ``scale``, ``cum_error``,
        ``shared_param``, ``persistent_state``, ``requires_grad`` and ``spike_exp``.
        Without them the block passes its input through.
    weight, bias : float, optional
        Scalar input transform (8-bit quantized; exported, not applied by netx); ``None``
        (default): no such parameter, as lava-dl's.
    delay_shift : bool
        One step of latency (default False).
    count_log : bool
        Also return the mean event rate.
    shape : tuple of int, optional
        Input shape ``(C,)`` or ``(C, H, W)``; inferred at the first call if omitted.

    Notes
    -----
    ``q8`` is the neuron's 8-bit quantizer, applied to the input as well (lava-dl). The
    deployed Lava ``Delta`` process takes ``trunc(64·z)`` as its integer input.
    """

    def __init__(self, neuron_params: dict | None = None, weight: float | None = None,
                 bias: float | None = None,
                 delay_shift: bool = False, count_log: bool = False,
                 shape: ty.Sequence[int] | None = None) -> None:
        params = _check_params(neuron_params, "Input")
        self._lava_dl_fields = None if params is None else _lava_dl_fields(params)
        super().__init__(params, weight=weight, bias=bias, delay_shift=delay_shift, count_log=count_log,
                         shape=shape)

    def _make_neuron(self, neuron_params: dict | None, **shape_kwargs):
        if neuron_params is None:
            return None
        delta_params = {k: v for k, v in neuron_params.items() if k in _DELTA_KEYS}
        return _neuron.Delta(**delta_params, **shape_kwargs)

    def neuron_input(self, x: torch.Tensor) -> torch.Tensor:
        """The delta encoder's input ``q8(x)·q8(weight) + q8(bias)`` (``x`` without neuron; a missing
        weight or bias is the identity)."""
        if self.neuron is None:
            return x
        weight, bias = self._quantized_transform()
        z = self.pre_hook_fx(x)
        if weight is not None:
            z = z * weight
        return z if bias is None else z + bias

    @eager
    def forward(self, x: torch.Tensor):
        """Graded delta messages of the quantized, transformed input."""
        self.shape = tuple(x.shape[1:-1])
        if self.neuron is not None:
            x = self.neuron(self.neuron_input(x))
        return self._finish(x)

    def _neuron_fields(self) -> dict | None:
        if self.neuron is None:
            return None
        fields = dict(self._lava_dl_fields)
        fields.update(_neuron._encoder_fields(self.neuron))
        return fields


class Dense(_Float64Synapse, _BaseDense):
    """Sigma-delta dense block: float64 dense synapse → σ → (norm) → activation → delta.

    Parameters
    ----------
    neuron_params : dict
        lava-dl sigma-delta neuron arguments (module docstring).
    in_neurons, out_neurons : int
        Input and output sizes.
    weight_scale : float
        Initial weight scale.
    weight_norm : bool
        Train with weight normalisation (removed at export).
    pre_hook_fx : callable, optional
        Weight quantizer; default: the neuron's 8-bit quantizer.
    delay : bool
        Learnable axonal delay per output neuron.
    delay_shift : bool
        One step of latency (default False for sigma-delta).
    mask : torch.Tensor, optional
        Fixed 0/1 connectivity mask.
    count_log : bool
        Also return the mean event rate.
    """


class _Wrap24:
    """Mixin of the convolution-like blocks: synaptic sums wrap to 24 bits as Lava's fixed-point
    ``Conv``, ``ConvT``, ``Pool`` and ``Unpool`` wrap them."""

    def _neuron_input(self, z: torch.Tensor) -> torch.Tensor:
        return z if self.neuron is None else wrap24(z, self.neuron.state_unit)


class Conv(_Wrap24, _Float64Synapse, _BaseConv):
    """Sigma-delta convolution block: float64 conv synapse → σ → (norm) → activation → delta.

    Parameters
    ----------
    neuron_params : dict
        lava-dl sigma-delta neuron arguments (module docstring).
    in_features, out_features : int
        Input and output channels.
    kernel_size, stride, padding, dilation : int or (int, int)
        Geometry in (H, W) order.
    groups : int
        Channel groups.
    weight_scale, weight_norm, pre_hook_fx, delay, count_log
        As for :class:`Dense`.
    delay_shift : bool
        One step of latency (default False for sigma-delta).
    input_shape : (int, int), optional
        Input ``(H, W)``; fixes the neuron shape at construction (else at the first call).

    Notes
    -----
    The conv sums wrap to 24 bits as in Lava (:func:`wrap24`).
    """


class ConvT(_Wrap24, _Float64Synapse, _BaseConvT):
    """Sigma-delta transposed-convolution block (arguments as :class:`Conv`; ``delay_shift`` default
    False)."""


class Pool(_Wrap24, _Float64Synapse, _BasePool):
    """Sigma-delta pooling block (arguments as :class:`lava_dl.slayer.block.base.Pool`,
    ``delay_shift`` default False)."""


class Unpool(_Wrap24, _Float64Synapse, _BaseUnpool):
    """Sigma-delta unpooling block (arguments as :class:`Pool`)."""


def wrap24(z: torch.Tensor, unit: float) -> torch.Tensor:
    """Wrap the exact synaptic sums ``z`` (multiples of ``1/unit``) to signed 24 bits of ``1/unit``.

    Lava's fixed-point ``Conv`` wraps every synaptic sum into ``[-2^23, 2^23)`` (its
    ``Dense`` does not); with ``unit = 2^(12+spike_exp)`` sums of magnitude
    ``2^(11-spike_exp)`` and more (32 for spike_exp 6) come out wrapped. The gradient is
    the identity (straight-through).

    Parameters
    ----------
    z : torch.Tensor
        Synaptic sums in real units (float64 for exactness).
    unit : float
        Integer units per real unit.

    Returns
    -------
    torch.Tensor
        ``z`` with its integer value wrapped, same dtype.
    """
    k = torch.trunc(z.detach() * unit)
    wrapped = torch.remainder(k + 2.0**23, 2.0**24) - 2.0**23
    if torch.equal(wrapped, k):
        return z
    return z + ((wrapped - k) / unit).to(z.dtype)


class Output(Dense):
    """Sigma-delta output block: float64 dense synapse → σ (lava-dl's ``Output``; Lava ``Sigma``).

    Parameters
    ----------
    neuron_params : dict
        lava-dl sigma-delta neuron arguments; the integrator uses ``persistent_state``,
        ``spike_exp`` and ``check_precision``; ``threshold``, ``activation`` and ``scale``
        only fill the exported record (as lava-dl writes it).
    in_neurons, out_neurons : int
        Input and output sizes.
    weight_scale, weight_norm, count_log
        As for :class:`Dense`, in lava-dl's positional order (no bias is exported: Lava's ``Sigma``
        has none).
    pre_hook_fx, delay, delay_shift, mask
        As for :class:`Dense`, by keyword only (lava-dl's ``Output`` had none of them).

    Notes
    -----
    The output is ``σ / 2^(12+spike_exp)``, the value Lava's ``Sigma`` sends divided by
    ``2^(12+spike_exp)``.
    """

    def __init__(self, neuron_params: dict, in_neurons, out_neurons: int, weight_scale: float = 1,
                 weight_norm: bool = False, count_log: bool = False, *, pre_hook_fx=None, delay: bool = False,
                 delay_shift: bool = False, mask: torch.Tensor | None = None) -> None:
        params = _check_params(neuron_params, "Output")
        if params is None:
            raise TypeError("Output: neuron_params is required")
        self._lava_dl_fields = _lava_dl_fields(params)
        super().__init__(params, in_neurons, out_neurons, weight_scale=weight_scale, weight_norm=weight_norm,
                         pre_hook_fx=pre_hook_fx, delay=delay, delay_shift=delay_shift, mask=mask,
                         count_log=count_log)

    def _make_neuron(self, neuron_params: dict | None, **shape_kwargs):
        sigma_params = {k: v for k, v in neuron_params.items() if k in _SIGMA_KEYS}
        return _neuron.Sigma(**sigma_params, **shape_kwargs)

    def _bias(self) -> np.ndarray | None:
        return None

    def _neuron_fields(self) -> dict | None:
        return {**self._lava_dl_fields, "sigma_output": True}
