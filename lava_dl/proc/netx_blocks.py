"""Hierarchical Lava Processes built by :mod:`lava_dl.netx`: blocks and the Network.

A block is a neuron population with (optionally) the synapse that feeds it:

* :class:`Input`: neuron only; ``inp`` drives the neurons' ``a_in`` and the
  input can also be injected through the neurons' bias Var;
* :class:`Dense`: dense (or sparse, or per-synapse delayed) synapse -> neuron;
* :class:`RecurrentDense`: as Dense, plus a recurrent dense synapse from the
  neurons' own spikes back to their input;
* :class:`Conv`, :class:`ConvT`, :class:`Pool`, :class:`Unpool`: the 2-D
  convolution-like synapses of :mod:`lava_dl.proc.conv` -> neuron;
* :class:`Average`: group spike counts (no neuron, no synapse, no latency);
* :class:`Concat`: joins several earlier layers' outputs channel-wise (skip
  connections), with delay lines that align the earlier ones to the latest.

A weighted block with ``axon_delays`` ends in an :class:`lava_dl.proc.delay.AxonDelay`
(child ``axon``) between its neurons and ``out``: the axonal delay of the block's
outputs (a recurrent block's neurons still feed each other undelayed).

Each block exposes ``inp``, ``out`` and its children ``neuron`` (and
``synapse``). Their SubProcessModels (tag ``fixed_pt``) live in
``process_models/netx_models.py``, found by Lava's compiler through this
package. The children are created here, at construction, so their Vars
(``neuron.bias_mant``, ``neuron.u`` ...) can be set and probed like any other.

``neuron_params`` of every block is a dict with the key ``neuron_proc`` (the
neuron Process class, e.g. :class:`lava_dl.proc.cuba.CubaLIF`, or a lava-nc neuron such as
``lava.proc.lif.process.LIF``) and the keyword arguments of that class. Two optional keys
are removed before construction: ``num_message_bits`` (width of the block's output
messages, default from the neuron spec) and ``bias_key`` (the Var receiving ``bias``; default the spec's
``bias_param``).

:class:`Network` reads an hdf5 file; its logic lives in :mod:`lava_dl.netx.hdf5`.
lava-dl's block arguments are accepted too (``lava_dl.netx.blocks.process`` is this module):
``Dense(weight=, delay=, num_weight_bits=, weight_exponent=, sparse_synapse=)``,
``Conv(weight=)``, ``RecurrentDense(weight=, weight_rec=)``, and the complex blocks
:class:`ComplexDense` (``weight_real=``, ``weight_imag=``) and :class:`ComplexInput`.

This module stays import-safe (Lava's compiler executes it on every compile).
"""

from __future__ import annotations

import typing as ty

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess

__all__ = ["AbstractBlock", "Input", "ComplexInput", "Dense", "ComplexDense", "RecurrentDense", "Conv",
           "ConvT", "Pool", "Unpool", "Average", "Concat", "Network", "dense_synapse_class",
           "conv_synapse_class", "sparse_synapse_class", "neuron_in_ports"]


# --------------------------------------------------------------------------
# Synapse processes: the one place that chooses which Lava processes are used.
# --------------------------------------------------------------------------

def dense_synapse_class() -> type:
    """Dense synapse Process: ``Dense(weights=, num_weight_bits=, weight_exp=, num_message_bits=)``."""
    from lava_dl.proc.dense import Dense as DenseSynapse

    return DenseSynapse


def conv_synapse_class() -> type:
    """Conv synapse Process: ``Conv(weight=, input_shape=, padding, stride, dilation, groups, ...)``."""
    from lava_dl.proc.conv import Conv as ConvSynapse

    return ConvSynapse


def sparse_synapse_class() -> type:
    """Sparse (CSR) synapse Process: ``Sparse(weights=csr_matrix, num_weight_bits=, weight_exp=, ...)``
    (lava-nc's ``Sparse`` with lava_dl's kernels)."""
    from lava_dl.proc.sparse import Sparse

    return Sparse


def delay_sparse_synapse_class() -> type:
    """Sparse (CSR) synapse with per-synapse delays: ``DelaySparse(weights=, delays=, max_delay=, ...)``
    (lava-nc's ``DelaySparse`` with lava_dl's kernels)."""
    from lava_dl.proc.sparse import DelaySparse

    return DelaySparse


def delay_dense_synapse_class() -> type:
    """Dense synapse with per-synapse delays: ``DelayDense(weights=, delays=, max_delay=, ...)``."""
    from lava_dl.proc.delay import DelayDense

    return DelayDense


def axon_delay_class() -> type:
    """Delay line on a block's output: ``AxonDelay(shape=, delays=, max_delay=, num_message_bits=, ...)``."""
    from lava_dl.proc.delay import AxonDelay

    return AxonDelay


# --------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------

def output_message_width(neuron_params: dict) -> tuple[int, int]:
    """``(bits, exp)`` of the messages a block with ``neuron_params`` sends: ``num_message_bits``
    (default: the family's) and ``message_exp`` (default 0)."""
    spec = getattr(neuron_params["neuron_proc"], "spec", None)
    default_bits = spec.out_message_bits if spec is not None else 0
    return int(neuron_params.get("num_message_bits", default_bits)), int(neuron_params.get("message_exp", 0))


class _MessageWidths:
    """``has_graded_input``/``has_graded_output`` from ``input_message_bits``/``output_message_bits``."""

    @property
    def has_graded_input(self) -> bool:
        """True if graded messages (not binary spikes) come in."""
        return self.input_message_bits > 0

    @property
    def has_graded_output(self) -> bool:
        """True if graded messages (not binary spikes) go out."""
        return self.output_message_bits > 0

    @property
    def block(self) -> str:
        """The block's kind: its class name (``'Dense'``, ``'Conv'`` ...), as lava-dl's."""
        return type(self).__name__


class AbstractBlock(_MessageWidths, AbstractProcess):
    """Common part of the netx blocks: builds the neuron population.

    Parameters
    ----------
    shape : tuple of int
        Neuron shape (``(x, y, c)`` or ``(n,)``).
    neuron_params : dict
        ``{'neuron_proc': cls, **kwargs}`` (see the module docstring).
    bias : array_like, optional
        Integer bias, broadcast to ``shape`` (per neuron, or per channel = last axis).
    input_message_bits : int, default 0
        Width of the messages entering the block (0: binary spikes).
    input_message_exp : int, default 0
        Exponent the block's synapses add to their weights for the incoming messages
        (:data:`lava_dl.core.fixed_point.GRADED_MESSAGE_EXP` behind graded spikes of a
        spiking family; see :attr:`output_message_exp`).
    name : str, optional
        Process name.

    Attributes
    ----------
    output_message_bits, output_message_exp : int
        Width of the block's output messages, and the exponent a following synapse
        adds for them (from ``neuron_params['num_message_bits']`` and ``['message_exp']``).
    """

    def __init__(self, *, shape: ty.Sequence[int], neuron_params: dict, bias=None,
                 input_message_bits: int = 0, input_message_exp: int = 0, axon_delays=None,
                 name: str | None = None, **kwargs) -> None:
        shape = tuple(int(s) for s in shape)
        super().__init__(shape=shape, input_message_bits=input_message_bits,
                         input_message_exp=input_message_exp, name=name, **kwargs)
        self.shape = shape
        self.input_message_bits = int(input_message_bits)
        self.input_message_exp = int(input_message_exp)
        params = dict(neuron_params)
        self.output_message_bits, self.output_message_exp = output_message_width(params)
        self.neuron_proc = params.pop("neuron_proc")
        spec = getattr(self.neuron_proc, "spec", None)
        params.pop("num_message_bits", None)
        params.pop("message_exp", None)
        bias_key = params.pop("bias_key", getattr(spec, "bias_param", None) or "bias")
        if bias is not None:
            params[bias_key] = broadcast_bias(bias, shape)
        self.neuron_params = params
        self.neuron = self.neuron_proc(shape=shape, **params)
        self.axon = None
        if axon_delays is not None:
            self.axon = axon_delay_class()(
                shape=shape, delays=np.broadcast_to(np.asarray(axon_delays), shape).astype(np.int64),
                num_message_bits=self.output_message_bits,
                reset_interval=int(params.get("reset_interval", 0)),
                reset_offset=int(params.get("reset_offset", 0)))

    def export_hdf5(self, handle) -> None:
        """Write the block's hdf5 layer record (lava-dl's format) into ``handle``, an empty h5py group
        (``layer/<i>``), from the current values of its Vars; see :func:`lava_dl.netx.export.export_block`.

        Parameters
        ----------
        handle : h5py.Group
            The group to write into.

        Raises
        ------
        lava_dl.netx.export.NetxExportError
            A value without hdf5 form; ``NetxExportUnsupportedError`` (also a ``NotImplementedError``)
            for a neuron process without hdf5 type (e.g. lava-nc's ``LIF``).
        """
        from lava_dl.netx.export import export_block

        export_block(self, handle)

    def _wire(self, synapses: dict) -> None:
        """Connect ``inp`` to every synapse, each synapse to its neuron port and the neurons to
        ``out`` (through the axonal delay line, if any)."""
        self.synapses = synapses
        self.synapse = next(iter(synapses.values()))
        first = self.synapse.s_in.shape
        self.inp = InPort(shape=first)
        self.out = OutPort(shape=self.neuron.s_out.shape)
        for port, synapse in synapses.items():
            self.inp.connect(synapse.s_in)
            synapse.a_out.connect(getattr(self.neuron, port))
        if self.axon is None:
            self.neuron.s_out.connect(self.out)
        else:
            self.neuron.s_out.connect(self.axon.s_in)
            self.axon.s_out.connect(self.out)



def broadcast_bias(bias, shape: tuple[int, ...]) -> np.ndarray:
    """Broadcast an integer bias to ``shape`` (per neuron, or one value per channel).

    Raises
    ------
    ValueError
        If the bias matches neither the neuron shape nor its last (channel) axis.
    """
    bias = np.asarray(bias)
    if bias.dtype.kind == "f":
        if not np.all(np.mod(bias, 1) == 0):
            raise ValueError("bias must hold integers (hdf5 stores them as float32), got fractional values")
        bias = bias.astype(np.int64)
    if bias.ndim == 0:
        return np.full(shape, int(bias), dtype=np.int64)
    if bias.shape == shape or bias.size == int(np.prod(shape)) and len(shape) == 1:
        return bias.reshape(shape).astype(np.int64)
    flat = bias.reshape(-1)
    if flat.size == shape[-1]:
        return np.broadcast_to(flat, shape).astype(np.int64)
    raise ValueError(f"bias of shape {bias.shape} could not be broadcast to the neuron shape {shape}")


def neuron_in_ports(neuron: AbstractProcess) -> tuple[str, ...]:
    """Names of a neuron process's input ports: its spec's (``a_in``; ``a_real_in``, ``a_imag_in``
    for resonators), or, for a neuron without spec (lava-nc's ``LIF``, ``RF`` ...), its InPorts."""
    spec = getattr(type(neuron), "spec", None)
    if spec is not None:
        return tuple(spec.in_ports)
    return tuple(port.name for port in neuron.in_ports)


def _lava_dl_weights(neuron: AbstractProcess, weights: dict | None, weight, num_weight_bits: int,
                     weight_exponent: int, block: str) -> dict:
    """``weights`` (``{port: (weight, bits, exp, sign_mode)}``), or lava-dl's single ``weight``
    for the neuron's one input port (sign mode chosen by the synapse, as lava-nc's)."""
    if (weights is None) == (weight is None):
        raise ValueError(f"{block}: give either weights={{port: ...}} or lava-dl's weight=, not "
                         f"{'both' if weight is not None else 'neither'}")
    if weights is not None:
        return weights
    ports = neuron_in_ports(neuron)
    if len(ports) != 1:
        raise ValueError(f"{block}: weight= feeds one input port, but {type(neuron).__name__} has "
                         f"{list(ports)}; use ComplexDense(weight_real=, weight_imag=) or weights=")
    return {ports[0]: (np.asarray(weight), int(num_weight_bits), int(weight_exponent), None)}


class Input(AbstractBlock):
    """Input block: a neuron population without synapse.

    Drive it by writing the neurons' bias Var (``neuron.bias_mant`` for CUBA,
    as lava-dl's tutorials do) or by sending messages into ``inp``, which is
    connected to every input port of the neurons (lava-dl leaves it dangling).

    Parameters
    ----------
    shape : tuple of int
        Neuron shape.
    neuron_params : dict
        Neuron process and parameters.
    transform : dict or callable, optional
        The hdf5 input transform ``{'weight': int, 'bias': int}`` (or lava-dl's callable),
        kept as an attribute only (lava-dl never applies it either).
    """

    def __init__(self, *, shape: ty.Sequence[int], neuron_params: dict,
                 transform: dict | None = None, **kwargs) -> None:
        super().__init__(shape=shape, neuron_params=neuron_params, **kwargs)
        self.transform = transform
        ports = neuron_in_ports(self.neuron)
        self.inp = InPort(shape=getattr(self.neuron, ports[0]).shape)
        self.out = OutPort(shape=self.neuron.s_out.shape)
        for port in ports:  # a resonator input takes the same drive on both parts
            self.inp.connect(getattr(self.neuron, port))
        self.neuron.s_out.connect(self.out)


class ComplexInput(Input):
    """lava-dl's complex input block: a resonator population whose ``inp`` drives both the real and
    the imaginary input (what :class:`Input` does for any two-port neuron)."""


class Dense(AbstractBlock):
    """Dense block: one dense (or CSR sparse) synapse per neuron input port, then the neurons.

    Parameters
    ----------
    shape : tuple of int
        ``(n_out,)``.
    neuron_params : dict
        Neuron process and parameters.
    weights : dict
        ``{port: (weight, num_weight_bits, weight_exp, sign_mode)}`` per input port of
        the neuron (``a_in``; ``a_real_in`` and ``a_imag_in`` for resonators), as
        returned by :func:`lava_dl.core.synapse.optimize_weight_bits`.
    sparse_synapse : bool, default False
        Use CSR synapses (:class:`lava_dl.proc.sparse.Sparse`; ``DelaySparse`` with delays).
    synapse_delays : numpy.ndarray, optional
        Per-synapse delays ``(n_out, n_in)`` (``DelayDense`` synapses: lava-dl's placement of
        a legacy file's ``delay``; ``DelaySparse`` with ``sparse_synapse``).
    weight, delay, num_weight_bits, weight_exponent
        lava-dl's arguments, instead of ``weights`` (and ``synapse_delays``): the integer
        weight of the neuron's single input port, its bits (default 8) and exponent (0).
    bias, input_message_bits, input_message_exp, axon_delays
        See :class:`AbstractBlock`.

    Attributes
    ----------
    synapse : AbstractProcess
        The synapse of the first port; ``synapses`` maps every port to its synapse.
    """

    def __init__(self, *, shape: ty.Sequence[int], neuron_params: dict, weights: dict | None = None,
                 sparse_synapse: bool = False, synapse_delays=None, weight=None, delay=None,
                 num_weight_bits: int = 8, weight_exponent: int = 0, **kwargs) -> None:
        super().__init__(shape=shape, neuron_params=neuron_params, **kwargs)
        weights = _lava_dl_weights(self.neuron, weights, weight, num_weight_bits, weight_exponent,
                                   type(self).__name__)
        self._wire(self._dense_synapses(weights, self.input_message_bits, self.input_message_exp,
                                        sparse_synapse, synapse_delays if delay is None else delay))

    def _dense_synapses(self, weights: dict, message_bits: int, message_exp: int, sparse: bool = False,
                        delays=None, a_bias=None) -> dict:
        """One dense synapse per input port of the neurons, from ``{port: optimize_weight_bits(...)}``."""
        synapses = {}
        for port, (weight, num_bits, weight_exp, sign_mode) in _ports(self.neuron, weights).items():
            weight = np.asarray(weight)
            if weight.ndim != 2 or weight.shape[0] != int(np.prod(self.shape)):
                raise ValueError(f"expected a weight of shape ({int(np.prod(self.shape))}, n_in), "
                                 f"got {weight.shape}")
            common = dict(num_weight_bits=int(num_bits), weight_exp=int(weight_exp) + message_exp,
                          num_message_bits=message_bits)
            if delays is not None and sparse:
                from scipy.sparse import csr_matrix

                delays = np.where(weight == 0, 0, np.asarray(delays)).astype(np.int64)
                synapses[port] = delay_sparse_synapse_class()(
                    weights=csr_matrix(weight), delays=csr_matrix(delays), max_delay=int(np.max(delays)),
                    sign_mode=sign_mode, **common)
            elif delays is not None:
                synapses[port] = delay_dense_synapse_class()(
                    weights=weight, delays=np.asarray(delays), max_delay=int(np.max(delays)),
                    sign_mode=sign_mode, **common)
            elif sparse:
                from scipy.sparse import csr_matrix

                synapses[port] = sparse_synapse_class()(weights=csr_matrix(weight), sign_mode=sign_mode,
                                                        **common)
            else:
                extra = {} if a_bias is None else {"a_bias": a_bias}
                synapses[port] = dense_synapse_class()(weights=weight, sign_mode=sign_mode, **common, **extra)
        return synapses


class ComplexDense(Dense):
    """lava-dl's complex dense block: a dense (or sparse) synapse into each of a resonator's inputs.

    Parameters
    ----------
    weight_real, weight_imag : numpy.ndarray
        Integer weights ``(n_out, n_in)`` of the real and imaginary input.
    num_weight_bits_real, num_weight_bits_imag : int, default 8
        Their weight bits.
    weight_exponent_real, weight_exponent_imag : int, default 0
        Their exponents.
    shape, neuron_params, sparse_synapse, bias, input_message_bits, ...
        As :class:`Dense` (``weights={'a_real_in': ..., 'a_imag_in': ...}`` may be given instead).

    Attributes
    ----------
    real_synapse, imag_synapse : AbstractProcess
        The two synapses (lava-dl's names).
    """

    def __init__(self, *, weight_real=None, weight_imag=None, num_weight_bits_real: int = 8,
                 num_weight_bits_imag: int = 8, weight_exponent_real: int = 0, weight_exponent_imag: int = 0,
                 weights: dict | None = None, **kwargs) -> None:
        if weights is None:
            weights = {"a_real_in": (np.asarray(weight_real), int(num_weight_bits_real),
                                     int(weight_exponent_real), None),
                       "a_imag_in": (np.asarray(weight_imag), int(num_weight_bits_imag),
                                     int(weight_exponent_imag), None)}
        super().__init__(weights=weights, **kwargs)
        self.real_synapse = self.synapses["a_real_in"]
        self.imag_synapse = self.synapses["a_imag_in"]


class RecurrentDense(Dense):
    """Dense block whose neurons also receive their own spikes through a recurrent dense synapse.

    Parameters
    ----------
    weights_rec : dict
        ``{port: optimize_weight_bits(W_rec)}`` per input port, ``W_rec`` square ``(n, n)``
        (row = target neuron).
    bias_rec : array_like, optional
        ``(n,)`` integers the recurrent synapse adds to its output every step (KWTA).
    shape, neuron_params, weights, sparse_synapse, synapse_delays, bias, input_message_bits,
    input_message_exp, axon_delays
        As :class:`Dense`.

    Notes
    -----
    The recurrent synapse takes the neurons' messages (``output_message_bits``, exponent
    ``output_message_exp``) and, like every Lava synapse, delivers them one step later:
    the neurons at step ``t`` receive ``W_rec s[t-1]`` (plus ``bias_rec``). It is fed
    straight from the neurons, before the axonal delay line.
    """

    def __init__(self, *, weights_rec: dict | None = None, bias_rec=None, recurrent_message_exp: int = 0,
                 weight_rec=None, **kwargs) -> None:
        super().__init__(**kwargs)
        weights_rec = _lava_dl_weights(self.neuron, weights_rec, weight_rec, kwargs.get("num_weight_bits", 8),
                                       kwargs.get("weight_exponent", 0), type(self).__name__)
        self.synapses_rec = self._dense_synapses(weights_rec, self.output_message_bits,
                                                 recurrent_message_exp, a_bias=bias_rec)
        self.synapse_rec = next(iter(self.synapses_rec.values()))
        for port, synapse in self.synapses_rec.items():
            self.neuron.s_out.connect(synapse.s_in)
            synapse.a_out.connect(getattr(self.neuron, port))


class _ConvLike(AbstractBlock):
    """A block whose synapses are one convolution-like Process per neuron input port."""

    def _wire_synapses(self, make: ty.Callable[[np.ndarray], AbstractProcess], weights: dict) -> None:
        synapses = {}
        for port, weight in _ports(self.neuron, weights).items():
            synapses[port] = make(np.asarray(weight))
            out_shape = tuple(int(s) for s in synapses[port].output_shape)
            if out_shape != self.shape:
                raise ValueError(f"expected synapse output shape {self.shape}, got {out_shape}")
        self._wire(synapses)


class Conv(_ConvLike):
    """Convolution block: one Lava ``Conv`` synapse per neuron input port, then the neurons.

    Parameters
    ----------
    shape : tuple of int
        Output ``(x, y, c)``.
    input_shape : tuple of int
        Input ``(x, y, c)``.
    neuron_params : dict
        Neuron process and parameters.
    weights : dict
        ``{port: weight}`` in Lava layout ``(out, kx, ky, in/groups)`` (a true
        convolution kernel), per input port of the neuron; or lava-dl's ``weight=`` for a
        neuron with one input port.
    stride, padding, dilation : int or (x, y) pair
        Geometry in Lava ``(x, y)`` order.
    groups : int
        Number of groups.
    bias, input_message_bits
        See :class:`AbstractBlock`.
    """

    _synapse = "Conv"

    def __init__(self, *, shape: ty.Sequence[int], input_shape: ty.Sequence[int], neuron_params: dict,
                 weights: dict | None = None, stride=1, padding=0, dilation=1, groups: int = 1, weight=None,
                 **kwargs) -> None:
        super().__init__(shape=shape, neuron_params=neuron_params, **kwargs)
        if weight is not None or weights is None:
            weights = {port: w for port, (w, *_) in
                       _lava_dl_weights(self.neuron, weights, weight, 8, 0, type(self).__name__).items()}
        cls = getattr(_conv_module(), self._synapse)
        self._wire_synapses(lambda w: cls(
            weight=w, input_shape=tuple(int(s) for s in input_shape), padding=_pair(padding),
            stride=_pair(stride), dilation=_pair(dilation), groups=int(groups),
            num_message_bits=self.input_message_bits, weight_exp=self.input_message_exp), weights)


class ConvT(Conv):
    """Transposed-convolution block: one :class:`lava_dl.proc.conv.ConvT` per neuron input port.

    Arguments as :class:`Conv`; ``weights`` are in the Lava ``ConvT`` layout
    ``(in, kx, ky, out/groups)``.
    """

    _synapse = "ConvT"


class Pool(_ConvLike):
    """Pooling block: one :class:`lava_dl.proc.conv.Pool` per neuron input port, then the neurons.

    Parameters
    ----------
    shape, input_shape : tuple of int
        Output and input ``(x, y, c)``.
    neuron_params : dict
        Neuron process and parameters.
    weights : dict
        ``{port: kernel}``, the shared Lava kernel ``(kx, ky)`` per input port.
    stride, padding, dilation : (x, y) pairs
        Geometry.
    bias, input_message_bits, input_message_exp, axon_delays
        See :class:`AbstractBlock`.
    """

    _synapse = "Pool"

    def __init__(self, *, shape: ty.Sequence[int], input_shape: ty.Sequence[int], neuron_params: dict,
                 weights: dict, stride=1, padding=0, dilation=1, **kwargs) -> None:
        super().__init__(shape=shape, neuron_params=neuron_params, **kwargs)
        cls = getattr(_conv_module(), self._synapse)
        self._wire_synapses(lambda k: cls(
            input_shape=tuple(int(s) for s in input_shape), kernel=k, stride=_pair(stride),
            padding=_pair(padding), dilation=_pair(dilation), num_message_bits=self.input_message_bits,
            weight_exp=self.input_message_exp), weights)


class Unpool(Pool):
    """Unpooling block: one :class:`lava_dl.proc.conv.Unpool` per neuron input port (arguments as
    :class:`Pool`)."""

    _synapse = "Unpool"


def _conv_module():
    from lava_dl.proc import conv

    return conv


class Average(_MessageWidths, AbstractProcess):
    """Group spike counts of the previous block (hdf5 ``average``): no neuron, no synapse, no latency.

    Parameters
    ----------
    num_inputs : int
        Neurons entering ``inp`` (flattened in torch order).
    num_outputs : int
        Number of groups.
    input_message_bits : int
        Width of the incoming messages.

    Attributes
    ----------
    counter : lava_dl.proc.average.Average
        The child process; ``shape`` is ``(num_outputs,)``, ``output_message_bits`` the count width.
    """

    def __init__(self, *, num_inputs: int, num_outputs: int, input_message_bits: int = 0,
                 name: str | None = None) -> None:
        super().__init__(num_inputs=num_inputs, num_outputs=num_outputs, name=name)
        from lava_dl.proc.average import COUNT_MESSAGE_BITS
        from lava_dl.proc.average import Average as Counter

        self.counter = Counter(num_inputs=num_inputs, num_outputs=num_outputs)
        self.shape = (int(num_outputs),)
        self.input_message_bits = int(input_message_bits)
        self.input_message_exp = 0
        self.output_message_bits = COUNT_MESSAGE_BITS
        self.output_message_exp = 0
        self.inp = InPort(shape=(int(num_inputs),))
        self.out = OutPort(shape=self.shape)
        self.inp.connect(self.counter.s_in)
        self.counter.a_out.connect(self.out)

    def export_hdf5(self, handle) -> None:
        """Write the ``average`` record into ``handle`` (an empty h5py group); see
        :func:`lava_dl.netx.export.export_block`."""
        from lava_dl.netx.export import export_block

        export_block(self, handle)


def _ports(neuron, weights: dict) -> dict:
    """``weights`` checked against the neuron's input ports (same names, same order)."""
    ports = neuron_in_ports(neuron)
    if set(weights) != set(ports):
        raise ValueError(f"{type(neuron).__name__} takes inputs {list(ports)}; got weights for "
                         f"{sorted(weights)}")
    return {port: weights[port] for port in ports}


def _pair(value) -> tuple[int, int]:
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        return int(arr[0]), int(arr[0])
    return int(arr[0]), int(arr[1])


class Concat(_MessageWidths, AbstractProcess):
    """Join the outputs of earlier layers along their last axis (hdf5 ``concat``): skip connections.

    No synapse and no latency. Inputs whose slayer output leaves Lava earlier than the
    latest one's pass through a delay line of the difference (``align``) first, so that the
    joined message at each step holds the same slayer time index of every input.

    Parameters
    ----------
    sources : sequence of OutPort
        The joined layers' ``out`` ports, in order.
    shapes : sequence of tuple of int
        Their shapes (``(x, y, c)`` or ``(n,)``), equal but for the last axis.
    align : sequence of int
        Steps to delay each source by (0: none).
    output_message_bits, output_message_exp : int
        Width and exponent of the (common) messages.

    Attributes
    ----------
    join : lava_dl.proc.concat.Concat
        The joining process; ``aligners`` the delay lines (None where no delay is needed).
    shape : tuple of int
        Joined shape of ``out``.
    """

    def __init__(self, *, sources: ty.Sequence, shapes: ty.Sequence[ty.Sequence[int]],
                 align: ty.Sequence[int], output_message_bits: int = 0, output_message_exp: int = 0,
                 name: str | None = None) -> None:
        super().__init__(shapes=[tuple(s) for s in shapes], align=list(align), name=name)
        from lava_dl.proc.concat import Concat as Join

        self.join = Join(shapes=shapes, axis=-1)
        self.shape = self.join.shape
        self.input_message_bits = self.output_message_bits = int(output_message_bits)
        self.input_message_exp = 0
        self.output_message_exp = int(output_message_exp)
        self.aligners = []
        for source, shape, steps, port in zip(sources, shapes, align, self.join.inputs):
            aligner = None
            if steps:  # no reset: a pure time shift of a stream that already restarts per sample
                aligner = axon_delay_class()(shape=tuple(shape), delays=int(steps), max_delay=int(steps),
                                             num_message_bits=self.output_message_bits)
                source.connect(aligner.s_in)
                aligner.s_out.connect(port)
            else:
                source.connect(port)
            self.aligners.append(aligner)
        self.out = OutPort(shape=self.shape)
        self.join.out.connect(self.out)

    def export_hdf5(self, handle) -> None:
        """A concat record needs the record indices of the joined layers: raises
        ``NetxExportUnsupportedError``; :meth:`Network.export_hdf5` writes it."""
        from lava_dl.netx.export import export_block

        export_block(self, handle)


# --------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------

def _record_creator(layer_type: str, what: str) -> staticmethod:
    """lava-dl's ``Network.create_<type>`` static method for the record type ``layer_type``."""

    def create(layer_config, input_shape: ty.Sequence[int] | None = None, input_message_bits: int = 0,
               reset_interval: int | None = None, reset_offset: int = 0,
               spike_exp: int = 6) -> tuple[AbstractProcess, str]:
        from lava_dl.netx.hdf5 import create_block

        return create_block(layer_config, layer_type, input_shape=input_shape,
                            input_message_bits=input_message_bits, reset_interval=reset_interval,
                            reset_offset=reset_offset, spike_exp=spike_exp)

    create.__name__ = create.__qualname__ = f"create_{layer_type}"
    if layer_type in ("average", "concat"):
        create.__doc__ = (f"Raises for {what}: not a block of its own (build the file with "
                          f":class:`Network`); ``NetxUnsupportedError`` is a ``NotImplementedError``, as "
                          f"lava-dl raised.")
    else:
        create.__doc__ = (f"The block of {what} behind an input of shape ``input_shape`` (x, y, c), and its "
                          f"table row; see :func:`lava_dl.netx.hdf5.create_block`.")
    return staticmethod(create)


class Network(_MessageWidths, AbstractProcess):
    """Lava network described by an hdf5 file written by lava-dl / lava_dl.slayer.

    Parameters
    ----------
    net_config : str or path-like
        The hdf5 file.
    num_layers : int, optional
        Visit only the first ``num_layers`` hdf5 records (flatten counts).
    skip_layers : int, default 0
        Records with index ``< skip_layers`` are not built into the network; a skipped
        record still sets the next input shape and, as lava-dl, the width of the messages
        the first built block expects (the skipped layer's output width, which replaces
        ``input_message_bits``): a source in its place sends what it would have sent.
    input_message_bits : int, default 0
        Width of the messages entering the first block (0: binary spikes).
    input_shape : tuple of int, optional
        ``(x, y, c)`` of the input when the first block is a conv without input record.
    reset_interval : int, optional
        Sample length in steps: the neuron states are reset for every new sample
        (samples presented back to back from step ``reset_offset + 1``).
    reset_offset : int, default 0
        Phase of the resets.
    spike_exp : int, default 6
        Graded-spike fractional bits (sigma-delta families; unused by CUBA).
    sparse_fc_layer : bool, default False
        Dense synapses become CSR ``Sparse`` synapses.
    reset_mode : {None, "slayer", "lava-dl"}
        ``"slayer"``: the Lava output equals slayer's per-sample (non-persistent)
        output exactly, bias included — every block behind a synapse is held in
        reset during step ``reset_offset + 1`` of each sample, an input block is
        zeroed before it. ``"lava-dl"``: lava-dl 0.6's staggered resets (block
        ``k`` zeroed before step ``reset_offset + 1 + k``), which lava-dl's files
        and scripts expect. None: ``"slayer"`` for files written by lava_dl,
        ``"lava-dl"`` for other files (:func:`lava_dl.netx.hdf5.default_modes`).
    delay_mode : {None, "axonal", "lava-dl"}
        Where a record's ``delay`` acts: ``"axonal"`` on the record's outputs (as slayer
        trains it; exact), ``"lava-dl"`` on its input synapses (lava-dl 0.6's netx). None:
        ``"axonal"`` for files written by lava_dl, ``"lava-dl"`` for other files.
    fused : bool, default False
        Run the whole network as one Lava process (one ProcessModel stepping every layer with
        the same models, see :mod:`lava_dl.netx.fused`) instead of one process per synapse,
        neuron and delay line. Same ports, timing and results; the layers' Vars stay readable
        and writable (``net.layers[i].neuron.u.get()``: each is aliased to a Var of the
        Network, listed in ``net.fused_vars``). Only ``inp`` and ``out`` can be connected: a
        connection to a layer's own ports is not part of the fused process.

    Attributes
    ----------
    layers : list of AbstractBlock
        The blocks, in order.
    in_layer, out_layer : AbstractBlock
        First and last block.
    inp, out : InPort, OutPort
        Ports of the first / last block.
    input_shape : tuple of int
        Shape of ``inp`` (lava-dl's attribute: there the ``input_shape`` argument or the shape of
        a skipped input layer, and None when neither was given; here always the shape that
        ``inp`` takes).
    input_message_bits, output_message_bits : int
        Widths of the messages ``inp`` takes and ``out`` sends (lava-dl's attributes: there the
        ``input_message_bits`` argument as given, even where a skipped layer changes it).
    net_str : str
        Summary table, also returned by ``str(net)``.
    reset_mode, delay_mode : str
        The modes in use (resolved from the file when not given).
    net_config : lava_dl.netx.utils.NetDict
        lava-dl's dictionary view of the file (opened at its first use, closed by
        ``net_config.close()``).

    Notes
    -----
    The arguments up to ``sparse_fc_layer`` may be given by position, in lava-dl's order.
    """

    def __init__(self, net_config, num_layers: int | None = None, skip_layers: int = 0,
                 input_message_bits: int = 0, input_shape: ty.Sequence[int] | None = None,
                 reset_interval: int | None = None, reset_offset: int = 0, spike_exp: int = 6,
                 sparse_fc_layer: bool = False, *, reset_mode: str | None = None,
                 delay_mode: str | None = None, fused: bool = False, name: str | None = None,
                 log_config=None) -> None:
        super().__init__(net_config=str(net_config), num_layers=num_layers,
                         input_message_bits=input_message_bits, name=name, log_config=log_config)
        from lava_dl.netx.hdf5 import build_layers, default_modes

        self.filename = str(net_config)
        self.num_layers = num_layers
        self.skip_layers = int(skip_layers)
        self.reset_interval = reset_interval
        self.reset_offset = int(reset_offset)
        self.reset_mode, self.delay_mode = default_modes(self.filename, reset_mode, delay_mode)
        self.spike_exp = int(spike_exp)
        self.sparse_fc_layer = bool(sparse_fc_layer)
        from lava_dl.netx.utils import NetDict

        self.net_config = NetDict(self.filename)
        self.layers, self.net_str = build_layers(
            self.filename, num_layers=num_layers, skip_layers=self.skip_layers,
            input_message_bits=int(input_message_bits), input_shape=input_shape,
            reset_interval=reset_interval, reset_offset=self.reset_offset, reset_mode=self.reset_mode,
            spike_exp=self.spike_exp,
            sparse_fc_layer=self.sparse_fc_layer, delay_mode=self.delay_mode)
        self.in_layer = self.layers[0]
        self.out_layer = self.layers[-1]
        self.input_message_bits = self.in_layer.input_message_bits
        self.output_message_bits = self.out_layer.output_message_bits
        self.inp = InPort(shape=self.in_layer.inp.shape)
        self.out = OutPort(shape=self.out_layer.out.shape)
        self.input_shape = tuple(int(n) for n in self.inp.shape)
        self.fused = bool(fused)
        if self.fused:
            from lava_dl.netx.fused import fuse_network

            fuse_network(self)
        else:
            self.inp.connect(self.in_layer.inp)
            self.out_layer.out.connect(self.out)

    def export_hdf5(self, filename_or_handle) -> None:
        """Write the network as an hdf5 file (lava-dl's format) from the current values of its Vars.

        Every built block's record in order, with the ``input``/``flatten``/``average``/``concat``
        records netx needs, and the ``producer`` stamp that makes the file reload with the reset and
        delay semantics this network runs; see :func:`lava_dl.netx.export.export_network`.

        Parameters
        ----------
        filename_or_handle : str, path-like or h5py.Group
            The file to create (not the one the network was loaded from), or an open h5py
            file/group.
        """
        from lava_dl.netx.export import export_network

        export_network(self, filename_or_handle)

    def __str__(self) -> str:
        return self.net_str

    def __len__(self) -> int:
        return len(self.layers)

    # ---- lava-dl's record-by-record construction API (see lava_dl.netx.hdf5.create_block) ----------
    @staticmethod
    def get_neuron_params(neuron_config, input: bool = False, reset_interval: int | None = None,
                          reset_offset: int = 0, spike_exp: int = 6) -> dict:
        """Neuron process and arguments of a record's ``neuron`` group; see
        :func:`lava_dl.netx.hdf5.get_neuron_params`."""
        from lava_dl.netx.hdf5 import get_neuron_params

        return get_neuron_params(neuron_config, input=input, reset_interval=reset_interval,
                                 reset_offset=reset_offset, spike_exp=spike_exp)

    @staticmethod
    def create_input(layer_config, reset_interval: int | None = None, reset_offset: int = 0,
                     spike_exp: int = 6) -> tuple[AbstractProcess, str]:
        """The block of an ``input`` record and its table row; see :func:`lava_dl.netx.hdf5.create_block`."""
        from lava_dl.netx.hdf5 import create_block

        return create_block(layer_config, "input", reset_interval=reset_interval, reset_offset=reset_offset,
                            spike_exp=spike_exp)

    @staticmethod
    def create_dense(layer_config, input_message_bits: int = 0, reset_interval: int | None = None,
                     reset_offset: int = 0, spike_exp: int = 6, sparse_synapse: bool = False,
                     rec: bool = False) -> tuple[AbstractProcess, str]:
        """The block of a ``dense`` record (``rec=True``: a ``dense_rec`` record) and its table row; see
        :func:`lava_dl.netx.hdf5.create_block`."""
        from lava_dl.netx.hdf5 import create_block

        return create_block(layer_config, "dense_rec" if rec else "dense",
                            input_message_bits=input_message_bits, reset_interval=reset_interval,
                            reset_offset=reset_offset, spike_exp=spike_exp, sparse_synapse=sparse_synapse)

    create_conv = _record_creator("conv", "a ``conv`` record")
    create_pool = _record_creator("pool", "a ``pool`` record (lava-dl raised ``NotImplementedError``)")
    create_convT = _record_creator("convT", "a ``convT`` record (lava-dl raised ``NotImplementedError``)")
    create_unpool = _record_creator("unpool", "an ``unpool`` record (lava-dl raised ``NotImplementedError``)")
    create_average = _record_creator("average", "an ``average`` record, which averages the layer in front of "
                                                "it")
    create_concat = _record_creator("concat", "a ``concat`` record, which joins earlier layers")
