"""ProcessModels of :class:`lava_dl.proc.delay.AxonDelay`, :class:`lava_dl.proc.delay.DelayDense` and
:class:`lava_dl.proc.sparse.DelaySparse`.

AxonDelay receives, then sends in the same step (no latency of its own). DelayDense and DelaySparse
first send column 0 of their buffer, then receive and add the input (one step of synaptic latency
plus the synapse's delay, as lava-nc). The arithmetic is the numba kernels of
:mod:`lava_dl.core.delay`.
"""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from scipy.sparse import csr_matrix

from lava_dl.core import delay as dly
from lava_dl.core import synapse as syn
from lava_dl.lava_glue import (
    WARM_UP_ENTRIES,
    CsrWeightsModel,
    SendFirstModel,
    first_spike,
    is_var_attribute,
    model_with_vars,
    note_var_change,
    one_entry,
    periodic_reset,
    plain_array,
    sample_rows,
    stored_entries,
)
from lava_dl.proc.delay import AxonDelay, DelayDense
from lava_dl.proc.sparse import DelaySparse


def _contiguous(model, name: str) -> np.ndarray:
    """The Var array ``name``, made C-contiguous in place if Lava handed over another layout."""
    arr = getattr(model, name)
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
        setattr(model, name, arr)
    return arr


def _check_delays(delays: np.ndarray, max_delay: int, proc: str) -> None:
    if delays.size and (delays.min() < 0 or delays.max() > max_delay):
        raise ValueError(f"{proc}: delays must lie in [0, {max_delay}] (max_delay), got values in "
                         f"[{delays.min()}, {delays.max()}]")


class _AxonDelayModel(PyLoihiProcessModel):
    lava_dl_batch = 0
    lava_dl_batch_vars = ("history",)
    #: the received messages are only read, within the step (see :class:`lava_dl.lava_glue.SendFirstModel`)
    lava_dl_recv_view = True
    #: a static schedule writes ``time_step`` before this model's call (the delay line's head)
    lava_dl_plan_clocked = True
    delays: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=6)
    num_message_bits: np.ndarray = LavaPyType(np.ndarray, np.int32)
    reset_interval: np.ndarray = LavaPyType(np.ndarray, np.int32)
    reset_offset: np.ndarray = LavaPyType(np.ndarray, np.int32)

    #: dtype of the messages and of ``history`` ...
    _dtype = np.int32
    #: ... and of the received messages handed to the kernel.
    _wide = np.int64

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._x = None

    def __setattr__(self, key, value) -> None:
        super().__setattr__(key, value)
        if key == "delays":  # replaced: checked again at the next step
            self.__dict__["_x"] = None
        if is_var_attribute(key):
            note_var_change(self)

    def _set_var(self) -> None:
        super()._set_var()
        self.__dict__["_x"] = None  # a Var set by the runtime: the delays are checked again
        note_var_change(self)

    def lava_dl_plan(self, inputs: dict, outputs: dict) -> list | None:
        """The call of one step (see :meth:`lava_dl.lava_glue.SendFirstModel.lava_dl_plan`): the delay
        line of every sample, from the received array into the sent one, at the head of ``time_step``
        (``lava_dl_plan_clocked``); the steps that reset the history run ``run_spk``
        (:meth:`lava_dl_general_steps`). The received array is passed as it is (``run_spk`` widens it
        to ``_wide`` first, which changes no value)."""
        received, sent, history = inputs["s_in"], outputs["s_out"], self.history
        if not history.flags.c_contiguous:
            return None
        batch = self.lava_dl_batch
        depth = history.shape[1 if batch else 0]
        if self._x is None:
            self._prepare(depth)
        if (not plain_array(received, (self._dtype,), self._x.size)
                or not plain_array(sent, (self._dtype,), self._out.size)):
            return None
        rows = sample_rows(batch, history, received.reshape(self._x.shape), sent.reshape(self._out.shape))
        lines = [(history_row.reshape(depth, -1), x_row, out_row) for history_row, x_row, out_row in rows]
        delays = np.ascontiguousarray(self.delays, dtype=np.int32).reshape(-1)
        return [(self._planned_step, (lines, depth, delays, int(self.num_message_bits[0]) == 0))]

    def _planned_step(self, lines: list, depth: int, delays: np.ndarray, binary: bool) -> None:
        for history, received, sent in lines:
            dly.delay_line_step(history, self.time_step % depth, received, delays, binary, sent)

    def lava_dl_general_steps(self) -> tuple[int, int] | None:
        """``(interval, phase)``: the steps that zero the history (``reset_interval``), which
        :meth:`lava_dl_plan`'s call does not do; None: no such step."""
        return periodic_reset(self)

    @classmethod
    def lava_dl_warm_up(cls, proc) -> None:
        """Compile the kernel for the received messages of Lava's steps (widened) and of a static
        schedule's (as received); see :func:`lava_dl.runtime.warm_up_models`."""
        model = model_with_vars(cls, proc)
        depth = model.history.shape[0]
        model._prepare(depth)
        delays = np.ascontiguousarray(model.delays, dtype=np.int32).reshape(-1)
        binary = int(model.num_message_bits[0]) == 0
        history = model.history.reshape(depth, -1)
        for dtype in (model._wide, model._dtype):
            dly.delay_line_step(history, 0, first_spike(model._x.shape, dtype), delays, binary, model._out)

    def _prepare(self, depth: int) -> None:
        """Check the delays and make the scratch arrays (first step, and after the delays changed)."""
        _check_delays(self.delays, depth - 1, "AxonDelay")
        lead = (self.lava_dl_batch,) if self.lava_dl_batch else ()
        self._x = np.empty((*lead, self.delays.size), self._wide)
        self._out = np.empty((*lead, self.delays.size), self._dtype)

    def run_spk(self):
        received = self.s_in.recv()
        history = _contiguous(self, "history")
        batch = self.lava_dl_batch
        depth = history.shape[1 if batch else 0]
        if self._x is None:
            self._prepare(depth)
        reset = periodic_reset(self)
        if reset is not None and self.time_step % reset[0] == reset[1]:
            history.fill(0)
        np.copyto(self._x, np.reshape(received, self._x.shape), casting="unsafe")
        delays = np.ascontiguousarray(self.delays, dtype=np.int32).reshape(-1)
        binary = int(self.num_message_bits[0]) == 0
        for history_row, x_row, out_row in sample_rows(batch, history, self._x, self._out):
            dly.delay_line_step(history_row.reshape(depth, -1), self.time_step % depth, x_row, delays, binary,
                                out_row)
        self.s_out.send(self._out.reshape(self.s_out.shape))


@implements(proc=AxonDelay, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PyAxonDelayModelFixed(_AxonDelayModel):
    """Bit-accurate AxonDelay (int32 messages: binary 0/1 or graded payloads)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    history: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)


@implements(proc=AxonDelay, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyAxonDelayModelFloat(_AxonDelayModel):
    """Floating-point AxonDelay (float messages, same delay line)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    history: np.ndarray = LavaPyType(np.ndarray, float)

    _dtype = np.float64
    _wide = np.float64


class _DelaySynapseModel(SendFirstModel):
    """A synapse with a delay per synapse (DelayDense, DelaySparse): first it sends column 0 of its buffer,
    then it advances the buffer and adds the step's sums, through :attr:`_kernel` on the weight arguments
    :meth:`_lay_out` makes (after the weight rule, once)."""

    lava_dl_setup = {"_wt": ("weights", "num_weight_bits", "delays")}
    lava_dl_batch_vars = ("a_buff",)
    weight_exp: np.ndarray = LavaPyType(np.ndarray, np.int32)
    num_weight_bits: np.ndarray = LavaPyType(np.ndarray, np.int32)
    num_message_bits: np.ndarray = LavaPyType(np.ndarray, np.int32)

    #: the step kernel, taking ``(*weight arguments, input, binary, exponent or scale, a_buff[, acc])``
    _kernel = None
    _fixed = True

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._wt = None

    def _lay_out(self, dtype) -> tuple:
        """The kernel's weight and delay arguments, the weights in ``dtype``, the delays checked."""
        raise NotImplementedError

    def _weight_rule(self) -> None:
        """Replace ``weights`` by the matrix Loihi's weight rule makes of it (fixed models)."""
        raise NotImplementedError

    def _prepare(self) -> None:
        """The weight rule, the kernel's layout and the scratch arrays (first step, after a Var changed)."""
        if self._fixed:
            self._weight_rule()
        a_buff = _contiguous(self, "a_buff")
        self._wt = self._lay_out(np.int32 if self._fixed else np.float64)
        self._s = np.empty((*a_buff.shape[:-2], self.weights.shape[1]), self._wide)
        self._acc = (np.zeros(a_buff.shape, np.int64),) if self._fixed else ()

    @classmethod
    def lava_dl_warm_up(cls, proc) -> None:
        """Compile the kernel for the input of Lava's steps (widened) and of a static schedule's
        (int32, as received); see :func:`lava_dl.runtime.warm_up_models`. Its types do not depend on
        the matrices: a large one (``WARM_UP_ENTRIES``) is not laid out, a one-entry one stands for it."""
        values = {}
        if stored_entries(proc.weights) > WARM_UP_ENTRIES:
            values = {"weights": one_entry(cls.weights.cls, cls.weights.d_type),
                      "delays": one_entry(cls.delays.cls, np.int32, 0),
                      "a_buff": np.zeros((1, proc.a_buff.shape[-1]), cls.a_buff.d_type)}
        model = model_with_vars(cls, proc, values)
        model._prepare()
        for dtype in (model._wide, np.int32) if model._fixed else (model._wide,):
            for args in model._step_arguments(first_spike(model._s.shape, dtype)):
                model._kernel(*args)

    def send_phase(self):
        if self._wt is None:
            self._prepare()
        self.a_out.send(_contiguous(self, "a_buff")[..., 0])

    def _step_arguments(self, s: np.ndarray) -> list:
        """The kernel's arguments for each sample of input ``s`` (shaped as ``_s``)."""
        binary = int(self.num_message_bits[0]) == 0
        exp = int(self.weight_exp[0])
        factor = exp if self._fixed else 2.0 ** exp
        rows = sample_rows(self.lava_dl_batch, s, _contiguous(self, "a_buff"), *self._acc)
        return [(*self._wt, s_row, binary, factor, *state) for s_row, *state in rows]

    def receive_phase(self):
        np.copyto(self._s, self.s_in.recv(), casting="unsafe")
        for args in self._step_arguments(self._s):
            self._kernel(*args)

    def lava_dl_send_plan(self, outputs: dict) -> list | None:
        """The copy of the delay line's first column (what :meth:`send_phase` sends) into the port's
        array, for a static schedule."""
        a_buff, sent = self.a_buff, outputs["a_out"]
        if (not self._fixed or self._wt is None or not a_buff.flags.c_contiguous
                or not plain_array(sent, (a_buff.dtype,), shape=a_buff.shape[:-1])):
            return None
        return [(np.copyto, (sent, a_buff[..., 0]))]

    def lava_dl_plan(self, inputs: dict, outputs: dict) -> list | None:
        """The kernel calls of :meth:`receive_phase` on the received array (int32, passed as it is:
        the kernel widens each value as the copy into ``_s`` does)."""
        received, a_buff = inputs["s_in"], self.a_buff
        if (not self._fixed or self._wt is None or not a_buff.flags.c_contiguous
                or not plain_array(received, (np.int32,), self._s.size)):
            return None
        return [(self._kernel, args) for args in self._step_arguments(received.reshape(self._s.shape))]


class _FixedDelayTypes:
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    _wide = np.int64
    _fixed = True


class _FloatDelayTypes:
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    a_buff: np.ndarray = LavaPyType(np.ndarray, float)
    _wide = np.float64
    _fixed = False


class _DenseDelays(_DelaySynapseModel):
    """DelayDense's matrices: dense weights and delays, transposed for the kernels."""

    weights_type = np.ndarray  # the class of the weights Var (its LavaPyType is the model's)
    delays: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=6)

    def _weight_rule(self) -> None:
        self.weights = syn.loihi_dense_weights(self.weights, int(self.num_weight_bits[0]),
                                               self.proc_params.get("sign_mode"))

    def _lay_out(self, dtype) -> tuple:
        _check_delays(self.delays, self.a_buff.shape[-1] - 1, "DelayDense")
        return (np.ascontiguousarray(self.weights.T, dtype=dtype),
                np.ascontiguousarray(self.delays.T, dtype=np.int32))


class _SparseDelays(CsrWeightsModel, _DelaySynapseModel):
    """DelaySparse's matrices: the weights' stored entries input by input, with their delays."""

    weights_type = csr_matrix
    delays: csr_matrix = LavaPyType(csr_matrix, np.int32, precision=6)

    def _weight_rule(self) -> None:
        self.weights = syn.loihi_sparse_weights(self.weights, int(self.num_weight_bits[0]),
                                                self.proc_params.get("sign_mode"))

    def _lay_out(self, dtype) -> tuple:
        rows, cols = _stored_positions(self.weights)
        delays = np.asarray(self.delays[rows, cols], dtype=np.int32).reshape(-1)
        _check_delays(delays, self.a_buff.shape[-1] - 1, "DelaySparse")
        return syn.sparse_columns(self.weights, dtype, entries=(delays,))


def _stored_positions(matrix) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of every stored entry of a ``csr_matrix``, in its order (stored zeros included)."""
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    return rows, matrix.indices


def _delay_models(proc: type, matrices: type, fixed_kernel, float_kernel) -> tuple[type, type]:
    """The ``fixed_pt`` and ``floating_pt`` models of a delayed synapse Process."""
    name = proc.__name__
    fixed = type(f"Py{name}ModelFixed", (_FixedDelayTypes, matrices), {
        "__module__": __name__, "_kernel": staticmethod(fixed_kernel),
        "weights": LavaPyType(matrices.weights_type, np.int32, precision=8),
        "__doc__": f"Bit-accurate {name} (equal to lava-nc's ``Py{name}ModelBitAcc``)."})
    flt = type(f"Py{name}ModelFloat", (_FloatDelayTypes, matrices), {
        "__module__": __name__, "_kernel": staticmethod(float_kernel),
        "weights": LavaPyType(matrices.weights_type, float),
        "__doc__": f"Floating-point {name}: ``w * s * 2**weight_exp`` without clipping or truncation "
                   f"(lava-nc's float model ignores ``weight_exp``; equal to it for ``weight_exp = 0`` up "
                   f"to the order of float additions)."})
    register = implements(proc=proc, protocol=LoihiProtocol)
    fixed = tag("fixed_pt", "bit_accurate_loihi")(requires(CPU)(register(fixed)))
    flt = tag("floating_pt")(requires(CPU)(register(flt)))
    return fixed, flt


PyDelayDenseModelFixed, PyDelayDenseModelFloat = _delay_models(
    DelayDense, _DenseDelays, dly.delay_dense_fixed, dly.delay_dense_float)
PyDelaySparseModelFixed, PyDelaySparseModelFloat = _delay_models(
    DelaySparse, _SparseDelays, dly.delay_sparse_fixed, dly.delay_sparse_float)
