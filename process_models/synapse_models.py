"""ProcessModels of :class:`lava_dl.proc.dense.Dense` and :class:`lava_dl.proc.conv.Conv`.

Each step first sends the activation computed in the previous step, then receives
the input and computes the next one (one step of synaptic latency, as lava-nc).
The arithmetic is the numba kernels of :mod:`lava_dl.core.synapse`.
"""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lava_dl.core import synapse as syn
from lava_dl.proc.conv import Conv
from lava_dl.proc.dense import Dense


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


@implements(proc=Dense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PyDenseModelFixed(PyLoihiProcessModel):
    """Bit-accurate Dense (equal to lava-nc's ``PyDenseModelBitAcc``)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    weights: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)
    weight_exp: np.ndarray = LavaPyType(np.ndarray, np.int32)
    num_weight_bits: np.ndarray = LavaPyType(np.ndarray, np.int32)
    num_message_bits: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._wt = None

    def run_spk(self):
        if self._wt is None:
            self.weights = syn.loihi_dense_weights(self.weights, int(self.num_weight_bits[0]),
                                                   self.proc_params.get("sign_mode"))
            self._wt = np.ascontiguousarray(self.weights.T, dtype=np.int32)
            self._out = np.zeros(self._wt.shape[1], dtype=np.int64)
        self.a_out.send(self.a_buff)
        binary = int(self.num_message_bits[0]) == 0
        s = _input(self.s_in, binary, np.int64, native=np.int32)
        syn.dense_fixed(self._wt, s, binary, int(self.weight_exp[0]), self._out)
        self.a_buff[...] = self._out


@implements(proc=Dense, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyDenseModelFloat(PyLoihiProcessModel):
    """Floating-point Dense: ``W @ s * 2**weight_exp`` without clipping or truncation.

    (lava-nc's float model ignores ``weight_exp``; this one applies it so that float and
    fixed models agree whenever no clipping, truncation or rounding occurs.)
    """

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    a_buff: np.ndarray = LavaPyType(np.ndarray, float)
    weights: np.ndarray = LavaPyType(np.ndarray, float)
    weight_exp: np.ndarray = LavaPyType(np.ndarray, np.int32)
    num_weight_bits: np.ndarray = LavaPyType(np.ndarray, np.int32)
    num_message_bits: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._wt = None

    def run_spk(self):
        if self._wt is None:
            self._wt = np.ascontiguousarray(self.weights.T, dtype=np.float64)
            self._out = np.zeros(self._wt.shape[1], dtype=np.float64)
        self.a_out.send(self.a_buff)
        binary = int(self.num_message_bits[0]) == 0
        s = _input(self.s_in, binary, np.float64, native=np.float64)
        syn.dense_accumulate(self._wt, s, binary, self._out)
        self.a_buff[...] = self._out * 2.0 ** int(self.weight_exp[0])


class _AbstractConvModel(PyLoihiProcessModel):
    kernel_size: np.ndarray = LavaPyType(np.ndarray, np.int32)
    padding: np.ndarray = LavaPyType(np.ndarray, np.int32)
    stride: np.ndarray = LavaPyType(np.ndarray, np.int32)
    dilation: np.ndarray = LavaPyType(np.ndarray, np.int32)
    groups: np.ndarray = LavaPyType(np.ndarray, np.int32)
    num_message_bits: np.ndarray = LavaPyType(np.ndarray, np.int32)
    weight_exp: np.ndarray = LavaPyType(np.ndarray, np.int32)

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

    def _make_plan(self, in_shape):
        """Kernel layout, tap tables and scratch buffer, computed once (at the first step)."""
        wt = syn.conv_kernel_layout(self.weight, self.weight.dtype)
        out_shape = tuple(self.a_buf.shape)
        taps = (syn.conv_taps(in_shape[0], out_shape[0], wt.shape[1], int(self.stride[0]),
                              int(self.padding[0]), int(self.dilation[0]))
                + syn.conv_taps(in_shape[1], out_shape[1], wt.shape[2], int(self.stride[1]),
                                int(self.padding[1]), int(self.dilation[1])))
        # binary input: |sum| <= bound, so the 24-bit wrap is the identity when bound < 2**23
        binary_needs_wrap = self._fixed and syn.conv_sum_bound(wt) >= 1 << 23
        self._plan = (wt, *taps, int(self.groups[0]))
        self._binary_needs_wrap = binary_needs_wrap
        self._exp = int(self.weight_exp[0])
        # shifted sums of graded payloads need 64 bits before the shift
        self._out = np.zeros(out_shape, dtype=self._wide if self._exp else self._dtype)

    def run_spk(self):
        self.a_out.send(self.a_buf)
        binary = int(self.num_message_bits[0]) == 0
        s = _input(self.s_in, binary, self._wide, native=self._in_dtype)
        if self._plan is None:
            self._make_plan(s.shape)
        buf = self.a_buf
        direct = buf.dtype == self._out.dtype and buf.flags.c_contiguous
        out = buf if direct else self._out
        syn.conv_scatter(s, *self._plan, binary, out)
        if self._exp:
            if self._fixed:
                syn.shift_inplace(out, self._exp)
            else:
                out *= 2.0**self._exp
        if self._fixed and (not binary or self._binary_needs_wrap):
            syn.wrap24_inplace(out)
        if not direct:
            buf[...] = out


@implements(proc=Conv, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PyConvModelFixed(_AbstractConvModel):
    """Bit-accurate Conv (equal to lava-nc's ``PyConvModelFixed``; output wrapped to 24 bits)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buf: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    weight: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)


@implements(proc=Conv, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyConvModelFloat(_AbstractConvModel):
    """Floating-point Conv (same convolution, no 24-bit wrap)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    a_buf: np.ndarray = LavaPyType(np.ndarray, float)
    weight: np.ndarray = LavaPyType(np.ndarray, float)

    _dtype = np.float64
    _in_dtype = np.float64
    _wide = np.float64
    _fixed = False
