"""ProcessModels of :class:`lava_dl.proc.dense.Dense`, :class:`lava_dl.proc.sparse.Sparse` and of the
:mod:`lava_dl.proc.conv` Processes.

Each step first sends the activation computed in the previous step, then receives
the input and computes the next one (one step of synaptic latency, as lava-nc).
The arithmetic is the numba kernels of :mod:`lava_dl.core.synapse`; Conv, ConvT, Pool
and Unpool all run the one scatter kernel with their own tap tables and kernel layout.
"""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from scipy.sparse import csr_matrix

from lava_dl.core import synapse as syn
from lava_dl.core.fixed_point import any_nonzero
from lava_dl.lava_glue import (
    WARM_UP_ENTRIES,
    CsrWeightsModel,
    SendFirstModel,
    first_spike,
    model_with_vars,
    one_entry,
    plain_array,
    sample_rows,
    stored_entries,
)
from lava_dl.proc.conv import Conv, ConvT, Pool, Unpool
from lava_dl.proc.dense import Dense
from lava_dl.proc.sparse import Sparse


def _input(port, binary: bool, dtype, native=None) -> np.ndarray:
    """Received input for the kernels.

    Returned as received when it is a contiguous array of dtype ``native`` (the port's
    own dtype: the kernels count every nonzero input as 1 for binary input, and do
    their arithmetic in 64 bits). Otherwise converted to a contiguous array of
    ``dtype`` (binary: nonzero -> 1).
    """
    s = port.recv()
    if native is not None and s.dtype == native and s.flags.c_contiguous:
        return s
    s = np.asarray(s)
    if binary:
        return np.ascontiguousarray(s != 0, dtype=dtype)
    return np.ascontiguousarray(s, dtype=dtype)


def _send_activation(model) -> None:
    """Send a Dense model's buffered sum plus its constant ``a_bias`` (the sum itself, handed over
    without a copy where the port can take it, when the bias is zero: ``receive_phase`` rewrites
    the whole ``a_buff``)."""
    if _has_bias(model):
        model.a_out.send(model.a_buff + model.a_bias)
    else:
        model.send_var(model.a_out, "a_buff")


def _has_bias(model) -> bool:
    """A Dense model's ``a_bias`` has a nonzero element (then its messages are not its ``a_buff``)."""
    return model.derived("bias", lambda: any_nonzero(model.a_bias.reshape(-1), 0, model.a_bias.size))


def _weight_exp(model) -> int:
    """The Dense exponent: the ``weight_exp`` Var plus any change of lava-nc's
    ``proc_params['weight_exp']`` made after construction (see :class:`lava_dl.proc.dense.Dense`;
    the parameters are fixed once the model exists, so the change is read once)."""
    change = model.__dict__.get("_weight_exp_change")
    if change is None:
        params = model.proc_params
        change = int(params.get("weight_exp", 0)) - int(params.get("weight_exp_built", 0))
        model.__dict__["_weight_exp_change"] = change
    return int(model.weight_exp[0]) + change


class _FixedSumsModel(SendFirstModel):
    """A bit-accurate Dense-like synapse: the weight rule and the kernels' layout once (:meth:`_lay_out`),
    then per step one kernel call over the input rows and the constant ``a_bias``."""

    lava_dl_batch_vars = ("a_buff",)
    lava_dl_sent_var = "a_buff"
    lava_dl_setup = {"_wt": ("weights", "num_weight_bits")}
    lava_dl_zero_on_quiet = True

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    weight_exp: np.ndarray = LavaPyType(np.ndarray, np.int32)
    num_weight_bits: np.ndarray = LavaPyType(np.ndarray, np.int32)
    num_message_bits: np.ndarray = LavaPyType(np.ndarray, np.int32)
    a_bias: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._wt = None

    def _lay_out(self) -> tuple:
        """Replace ``weights`` by the matrix the weight rule makes of it; return ``(kernel, its weight
        arguments, the largest sum of binary input)``, the kernel taking ``(*weight arguments, input rows,
        binary, weight_exp, accumulator, output rows)``."""
        raise NotImplementedError

    def _prepare(self) -> None:
        """Lay out the weights and make the scratch sums (first step, and after a Var changed)."""
        kernel, layout, bound = self._lay_out()
        self._wt = (kernel, layout)
        # binary input: every sum lies within the bound, so it is exact in the narrowest dtype that
        # holds that (int16 adds twice the lanes of int32); graded: int64
        n_out = self.a_buff.shape[-1]
        self._acc_binary = np.zeros(n_out, syn.sum_dtype(bound))
        self._acc_graded = np.zeros(n_out, np.int64)

    @classmethod
    def lava_dl_warm_up(cls, proc) -> None:
        """Compile the kernel for ``proc``'s weights, sums and input (see
        :func:`lava_dl.runtime.warm_up_models`); for a matrix of more than ``WARM_UP_ENTRIES`` entries,
        for both sum dtypes binary input may take."""
        if stored_entries(proc.weights) <= WARM_UP_ENTRIES:
            model = model_with_vars(cls, proc)
            model._prepare()
            s = first_spike((1, model.weights.shape[1]), np.int32)
            kernel, args = model._sums(s, np.zeros((1, model.a_buff.shape[-1]), model.a_buff.dtype))
            kernel(*args)
        else:
            model = model_with_vars(cls, proc, {"weights": one_entry(cls.weights.cls, np.int32)})
            model._prepare()
            kernel, layout = model._wt
            binary = int(model.num_message_bits[0]) == 0
            one_row = np.ones((1, 1), np.int32)
            for acc in (np.int16, np.int32) if binary else (np.int64,):
                kernel(*layout, one_row, binary, 0, np.zeros(1, acc), np.zeros((1, 1), np.int32))
        _has_bias(model)

    def send_phase(self):
        """Send the activation computed in the previous step (first half of a step)."""
        if self._wt is None:
            self._prepare()
        _send_activation(self)

    def _sums(self, s: np.ndarray, out: np.ndarray) -> tuple:
        """The kernel call that writes the activation of input ``s`` into ``out`` (contiguous)."""
        binary, exp = self.derived("step", lambda: (int(self.num_message_bits[0]) == 0, _weight_exp(self)))
        acc = self._acc_binary if binary else self._acc_graded
        kernel, layout = self._wt
        rows = s.reshape(-1, self.weights.shape[1])  # one row, or one per sample of a batch
        return kernel, (*layout, rows, binary, exp, acc, out.reshape(len(rows), -1))

    def receive_phase(self):
        """Receive this step's input and compute the activation sent next step."""
        if self.receive_quiet(self.s_in, "a_buff"):
            return
        binary = self.derived("step", lambda: (int(self.num_message_bits[0]) == 0, _weight_exp(self)))[0]
        s = _input(self.s_in, binary, np.int64, native=np.int32)
        buff = self.a_buff
        out = buff if buff.flags.c_contiguous else np.empty(buff.shape, buff.dtype)
        kernel, args = self._sums(s, out)
        kernel(*args)
        if out is not buff:
            buff[...] = out

    def lava_dl_plan(self, inputs: dict, outputs: dict) -> list | None:
        s, out = inputs["s_in"], outputs["a_out"]
        if (self._wt is None or _has_bias(self) or not plain_array(s, (np.int32,))
                or not plain_array(out, (self.a_buff.dtype,), shape=self.a_buff.shape)):
            return None
        return [self._sums(s, out)]


def _narrow_weights(values: np.ndarray):
    """int16 storage where the weights fit (they do after the sign mode: 9 bits): half the memory the
    event-driven sums read; int32 otherwise."""
    return np.int16 if values.size and np.abs(values).max() < 1 << 15 else np.int32


@implements(proc=Dense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PyDenseModelFixed(_FixedSumsModel):
    """Bit-accurate Dense (equal to lava-nc's ``PyDenseModelBitAcc``)."""

    weights: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)

    def _lay_out(self) -> tuple:
        self.weights = syn.loihi_dense_weights(self.weights, int(self.num_weight_bits[0]),
                                               self.proc_params.get("sign_mode"))
        wt = np.ascontiguousarray(self.weights.T, dtype=_narrow_weights(self.weights))
        bound = int(np.abs(wt.astype(np.int64)).sum(axis=0).max(initial=0))
        return syn.dense_fixed_rows, (wt,), bound


@implements(proc=Sparse, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PySparseModelFixed(CsrWeightsModel, _FixedSumsModel):
    """Bit-accurate Sparse (equal to lava-nc's ``PySparseModelBitAcc``, and to Dense on the same matrix)."""

    weights: csr_matrix = LavaPyType(csr_matrix, np.int32, precision=8)

    def _lay_out(self) -> tuple:
        self.weights = syn.loihi_sparse_weights(self.weights, int(self.num_weight_bits[0]),
                                                self.proc_params.get("sign_mode"))
        layout = syn.sparse_columns(self.weights, _narrow_weights(self.weights.data))
        return syn.sparse_fixed_rows, layout, syn.sparse_row_bound(self.weights)


class _FloatSumsModel(SendFirstModel):
    """A floating-point Dense-like synapse: ``W @ s * 2**weight_exp`` without clipping or truncation.

    (lava-nc's float models ignore ``weight_exp``; these apply it so that float and fixed models agree
    whenever no clipping, truncation or rounding occurs.)
    """

    lava_dl_batch_vars = ("a_buff",)
    lava_dl_sent_var = "a_buff"
    lava_dl_setup = {"_wt": ("weights", "num_weight_bits")}

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    a_buff: np.ndarray = LavaPyType(np.ndarray, float)
    weight_exp: np.ndarray = LavaPyType(np.ndarray, np.int32)
    num_weight_bits: np.ndarray = LavaPyType(np.ndarray, np.int32)
    num_message_bits: np.ndarray = LavaPyType(np.ndarray, np.int32)
    a_bias: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._wt = None

    def _lay_out(self) -> tuple:
        """``(accumulate, its weight arguments)``, ``accumulate`` taking ``(*weight arguments, input,
        binary, output)`` (float64 arrays)."""
        raise NotImplementedError

    @classmethod
    def lava_dl_warm_up(cls, proc) -> None:
        """Compile the kernel (see :func:`lava_dl.runtime.warm_up_models`): its types do not depend on the
        matrix, which a one-entry one stands for."""
        model = model_with_vars(cls, proc, {"weights": one_entry(cls.weights.cls, np.float64)})
        accumulate, layout = model._lay_out()
        accumulate(*layout, np.ones(1), int(model.num_message_bits[0]) == 0, np.zeros(1))
        _has_bias(model)

    def send_phase(self):
        """Send the activation computed in the previous step (first half of a step)."""
        if self._wt is None:
            self._wt = self._lay_out()
            self._out = np.zeros(self.a_buff.shape, dtype=np.float64)
        _send_activation(self)

    def receive_phase(self):
        """Receive this step's input and compute the activation sent next step."""
        binary = int(self.num_message_bits[0]) == 0
        s = _input(self.s_in, binary, np.float64, native=np.float64)
        accumulate, layout = self._wt
        for s_row, out_row in sample_rows(self.lava_dl_batch, s, self._out):
            accumulate(*layout, s_row, binary, out_row)
        self.a_buff[...] = self._out * 2.0 ** _weight_exp(self)


@implements(proc=Dense, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyDenseModelFloat(_FloatSumsModel):
    """Floating-point Dense (see :class:`_FloatSumsModel`)."""

    weights: np.ndarray = LavaPyType(np.ndarray, float)

    def _lay_out(self) -> tuple:
        return syn.dense_accumulate, (np.ascontiguousarray(self.weights.T, dtype=np.float64),)


@implements(proc=Sparse, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySparseModelFloat(CsrWeightsModel, _FloatSumsModel):
    """Floating-point Sparse (see :class:`_FloatSumsModel`): the sums of :class:`PyDenseModelFloat` on
    the same matrix."""

    weights: csr_matrix = LavaPyType(csr_matrix, float)

    def _lay_out(self) -> tuple:
        return syn.sparse_accumulate, syn.sparse_columns(self.weights, np.float64)


class _AbstractConvModel(SendFirstModel):
    """Convolution-like synapse: one :func:`~lava_dl.core.synapse.conv_scatter` per step.

    The kinds differ only in their plan: the tap tables (:meth:`_taps`) and the kernel
    re-laid into the scatter layout (:meth:`_kernel`). Port/Var dtypes come from the
    :class:`_FixedTypes` / :class:`_FloatTypes` mixins.
    """

    kernel_size: np.ndarray = LavaPyType(np.ndarray, np.int32)
    padding: np.ndarray = LavaPyType(np.ndarray, np.int32)
    stride: np.ndarray = LavaPyType(np.ndarray, np.int32)
    dilation: np.ndarray = LavaPyType(np.ndarray, np.int32)
    groups: np.ndarray = LavaPyType(np.ndarray, np.int32)
    num_message_bits: np.ndarray = LavaPyType(np.ndarray, np.int32)
    weight_exp: np.ndarray = LavaPyType(np.ndarray, np.int32)

    lava_dl_batch_vars = ("a_buf",)
    lava_dl_sent_var = "a_buf"
    lava_dl_zero_on_quiet = True
    lava_dl_setup = {
        "_plan": ("weight", "kernel_size", "padding", "stride", "dilation", "groups", "weight_exp")}
    #: dtype of the kernel's sums (``a_buf`` is written in place when it has this dtype).
    _dtype = np.int32
    #: input dtype passed to the kernel as it is received (the port's dtype) ...
    _in_dtype = np.int32
    #: ... and the dtype input of any other dtype is converted to (as the original model did).
    _wide = np.int64
    _fixed = True

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._plan = None

    def _kernel(self) -> np.ndarray:
        """The weight in the ``(in/groups, kx, ky, out)`` layout of the scatter kernel."""
        return syn.conv_kernel_layout(self.weight, self.weight.dtype)

    @staticmethod
    def _taps(in_size, out_size, kernel, stride, pad, dil):
        return syn.conv_taps(in_size, out_size, kernel, stride, pad, dil)

    def _make_plan(self, in_shape):
        """Kernel layout, tap tables and scratch buffer, computed once (at the first step)."""
        wt = self._kernel()
        out_shape = tuple(self.a_buf.shape)[-3:]
        taps = (self._taps(in_shape[0], out_shape[0], wt.shape[1], int(self.stride[0]), int(self.padding[0]),
                           int(self.dilation[0]))
                + self._taps(in_shape[1], out_shape[1], wt.shape[2], int(self.stride[1]),
                             int(self.padding[1]), int(self.dilation[1])))
        self._plan = (wt, *taps, int(self.groups[0]))
        self._exp = int(self.weight_exp[0])
        # binary input: |sum| <= bound (<< weight_exp), so the 24-bit wrap is the identity below 2**23
        bound = syn.conv_sum_bound(wt)
        self._binary_needs_wrap = self._fixed and bound << max(self._exp, 0) >= 1 << 23
        # ... and every partial sum lies within the bound too: where it fits 16 bits, binary input is
        # summed in int16 (twice the lanes per vector), then widened
        self._narrow = None
        if self._fixed and syn.sum_dtype(bound) == np.int16:
            self._narrow = (wt.astype(np.int16), np.zeros(self.a_buf.shape, np.int16))
        # shifted sums of graded payloads need 64 bits before the shift
        self._out = np.zeros(self.a_buf.shape, dtype=self._wide if self._exp else self._dtype)

    @classmethod
    def lava_dl_warm_up(cls, proc) -> None:
        """Compile the kernels for ``proc``'s weights, sums and input (see
        :func:`lava_dl.runtime.warm_up_models`)."""
        model = model_with_vars(cls, proc)
        model._compute(first_spike(proc.s_in.shape, model._in_dtype), model.a_buf)

    def send_phase(self):
        """Send the activation computed in the previous step (first half of a step); ``receive_phase``
        rewrites the whole ``a_buf``, so an in-process port may take the array over."""
        self.send_var(self.a_out, "a_buf")

    def receive_phase(self):
        """Receive this step's input and compute the activation sent next step."""
        if self.receive_quiet(self.s_in, "a_buf"):
            return
        binary = int(self.num_message_bits[0]) == 0
        self._compute(_input(self.s_in, binary, self._wide, native=self._in_dtype), self.a_buf)

    def lava_dl_plan(self, inputs: dict, outputs: dict) -> list | None:
        s, out = inputs["s_in"], outputs["a_out"]
        if (not plain_array(s, (self._in_dtype,))
                or not plain_array(out, (self.a_buf.dtype,), shape=self.a_buf.shape)):
            return None
        if self._plan is None:  # (after a change of its Vars) laid out here: no step of its own needed
            self._make_plan(s.shape[-3:])
        return [(self._compute, (s, out))]

    def _compute(self, s: np.ndarray, buf: np.ndarray) -> None:
        """Write the activation of the received input ``s`` into ``buf`` (``a_buf`` or an array like it)."""
        binary = int(self.num_message_bits[0]) == 0
        if self._plan is None:
            self._make_plan(s.shape[-3:])
        direct = buf.dtype == self._out.dtype and buf.flags.c_contiguous
        out = buf if direct else self._out
        lead = (-1,) if self.lava_dl_batch else (1,)  # one sample, or each of a batch
        rows = s.reshape(*lead, *s.shape[-3:])
        if binary and self._narrow is not None:
            wt16, sums = self._narrow
            sum_rows = sums.reshape(*lead, *sums.shape[-3:])
            if not syn.conv_scatter_rows(rows, wt16, *self._plan[1:], True, sum_rows):
                buf[...] = 0
                return
            syn.widen_shift(sums, self._exp, self._binary_needs_wrap, out)
            if not direct:
                buf[...] = out
            return
        active = syn.conv_scatter_rows(rows, *self._plan, binary, out.reshape(*lead, *out.shape[-3:]))
        if not active:  # zero sums: shifting and wrapping them changes nothing
            if not direct:
                buf[...] = 0
            return
        wrap = not binary or self._binary_needs_wrap
        if self._fixed:
            if self._exp or wrap:
                syn.widen_shift(out, self._exp, wrap, out)
        elif self._exp:
            out *= 2.0**self._exp
        if not direct:
            buf[...] = out


class _AbstractConvTModel(_AbstractConvModel):
    """Transposed convolution: ConvT weight ``(in, kx, ky, out/groups)``, transposed taps."""

    def _kernel(self) -> np.ndarray:
        return syn.conv_transpose_kernel_layout(self.weight, int(self.groups[0]), self.weight.dtype)

    @staticmethod
    def _taps(in_size, out_size, kernel, stride, pad, dil):
        return syn.conv_transpose_taps(in_size, out_size, kernel, stride, pad, dil)


class _AbstractPoolModel(_AbstractConvModel):
    """Pooling: the shared ``(kx, ky)`` kernel laid out depthwise (``groups`` = channels)."""

    def _kernel(self) -> np.ndarray:
        return syn.depthwise_kernel_layout(self.weight, int(self.groups[0]), False, self.weight.dtype)


class _AbstractUnpoolModel(_AbstractConvTModel):
    """Unpooling: the shared ``(kx, ky)`` kernel laid out depthwise, transposed taps."""

    def _kernel(self) -> np.ndarray:
        return syn.depthwise_kernel_layout(self.weight, int(self.groups[0]), True, self.weight.dtype)


class _FixedTypes:
    """Port and Var types of the bit-accurate models (int32, 24-bit messages, 8-bit weights)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buf: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    weight: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)


class _FloatTypes:
    """Port and Var types of the floating-point models (same arithmetic, no 24-bit wrap)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    a_buf: np.ndarray = LavaPyType(np.ndarray, float)
    weight: np.ndarray = LavaPyType(np.ndarray, float)

    _dtype = np.float64
    _in_dtype = np.float64
    _wide = np.float64
    _fixed = False


def _conv_models(proc: type, base: type) -> tuple[type, type]:
    """The ``fixed_pt`` (shift by ``weight_exp``, wrap to signed 24 bits) and ``floating_pt`` (no wrap)
    models of a convolution-like synapse Process, both running ``base``'s scatter plan."""
    name = proc.__name__
    fixed = type(f"Py{name}ModelFixed", (_FixedTypes, base), {
        "__module__": __name__,
        "__doc__": f"Bit-accurate {name} (shift by ``weight_exp``, wrap to 24 bits, as lava-nc's Conv)."})
    flt = type(f"Py{name}ModelFloat", (_FloatTypes, base), {
        "__module__": __name__, "__doc__": f"Floating-point {name} (same sums, no 24-bit wrap)."})
    register = implements(proc=proc, protocol=LoihiProtocol)
    fixed = tag("fixed_pt", "bit_accurate_loihi")(requires(CPU)(register(fixed)))
    flt = tag("floating_pt")(requires(CPU)(register(flt)))
    return fixed, flt


#: Conv's fixed model equals lava-nc's ``PyConvModelFixed``; Pool's equals it with the depthwise kernel.
PyConvModelFixed, PyConvModelFloat = _conv_models(Conv, _AbstractConvModel)
PyConvTModelFixed, PyConvTModelFloat = _conv_models(ConvT, _AbstractConvTModel)
PyPoolModelFixed, PyPoolModelFloat = _conv_models(Pool, _AbstractPoolModel)
PyUnpoolModelFixed, PyUnpoolModelFloat = _conv_models(Unpool, _AbstractUnpoolModel)
