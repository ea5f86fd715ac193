"""Build Lava Processes and ProcessModels from the neuron specs in ``lava_dl.core``.

This module is the only place that turns a :class:`~lava_dl.core.spec.NeuronSpec`
into Lava types, so every neuron family gets the same Process interface
(parameters as Vars of the neuron shape, one InPort per ``spec.in_ports``
(``a_in``, or ``a_real_in``/``a_imag_in`` for resonators), ``s_out``, per-sample
reset) and the same ProcessModel behaviour (one compiled kernel call per step).
"""

from __future__ import annotations

import numpy as np

from lava_dl import _lava_compat

_lava_compat.install()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402

from lava_dl.core.spec import SETTLED_BUSY, SETTLED_IDLE, NeuronSpec  # noqa: E402

#: Packages whose Process classes' models :func:`_cache_model_discovery` looks up once per class.
_CACHED_PACKAGES = ("lava_dl.", "lava.")
#: Lava's own model discovery (``ProcGroupDiGraphs._find_proc_models``), which the cache calls.
_LAVA_FIND = None


def _cache_model_discovery() -> None:
    """Remember which ProcessModels implement each lava_dl and lava-nc Process class.

    Lava's compiler re-executes every module of a Process's package to find its
    models, for every process instance on every compile (about 20 ms per instance
    here; a RingBuffer source or sink about 30 ms: lava.proc.io holds many modules). For the
    Process classes of lava_dl and of lava-nc (installed packages) the answer never changes
    within an interpreter, so it is computed once per class. Other processes (a user's, whose
    models may be edited and reloaded in a notebook session) are looked up as Lava does. A
    process with a ``lava_dl_process_models`` method (a fused Network) supplies its own models.
    """
    from lava.magma.compiler.compiler_graphs import ProcGroupDiGraphs

    global _LAVA_FIND
    original = ProcGroupDiGraphs.__dict__["_find_proc_models"]
    if getattr(original, "_lava_dl_cached", False):
        return
    _LAVA_FIND = original.__func__
    cache: dict[type, list] = {}

    def find_proc_models(proc):
        own = getattr(proc, "lava_dl_process_models", None)
        if own is not None:  # a process whose models are made for the instance (fused Network)
            return own()
        cls = type(proc)
        if not cls.__module__.startswith(_CACHED_PACKAGES):
            return _LAVA_FIND(proc)
        if cls not in cache:
            cache[cls] = _LAVA_FIND(proc)
        return list(cache[cls])

    find_proc_models._lava_dl_cached = True
    ProcGroupDiGraphs._find_proc_models = staticmethod(find_proc_models)


_cache_model_discovery()

from lava_dl import runtime as _runtime  # noqa: E402

_runtime.install()  # fast Var.get, worker errors, no hangs or leaks (see lava_dl.runtime)


def sample_rows(batch: int, *arrays):
    """The per-sample rows of ``arrays`` for a model stepping ``batch`` samples at once
    (``lava_dl_batch``, set by :class:`lava_dl.netx.fused.LocalGraph`), else ``arrays`` once."""
    return zip(*arrays) if batch else (arrays,)


class SendFirstModel(PyLoihiProcessModel):
    """A ProcessModel whose step sends what it computed in the previous step, then receives.

    Synapses work this way (one step of latency): ``run_spk`` is :meth:`send_phase`
    followed by :meth:`receive_phase`. Keeping the halves separate lets an in-process
    executor (:mod:`lava_dl.netx.fused`) run the same model inside a cycle (a recurrent
    synapse feeds the neurons it reads from) by sending first everywhere, then receiving.
    """

    #: Samples stepped at once (0: one, as Lava runs it); see :class:`lava_dl.netx.fused.LocalGraph`.
    lava_dl_batch: int = 0
    #: Vars holding one value per sample (given a leading batch axis when batched); None: cannot batch.
    lava_dl_batch_vars: tuple[str, ...] | None = None
    #: The model neither modifies a received array nor keeps it past its step, so an in-process
    #: executor may hand it the sender's buffer instead of a copy (see :mod:`lava_dl.netx.fused`).
    #: Subclasses that do either must set it to False.
    lava_dl_recv_view: bool = True
    #: The Var that :meth:`send_phase` hands to the out port with :meth:`send_var` (the model then has
    #: one out port), which lets an in-process executor alternate two arrays between Var and port in a
    #: static schedule (see :meth:`lava_dl_plan`); None: the model does not take part in one.
    lava_dl_sent_var: str | None = None
    #: A step whose input is quiet leaves zeros in the sent Var (its ``receive_phase`` starts with
    #: :meth:`receive_quiet`): a static schedule may then skip its :meth:`lava_dl_plan` calls likewise.
    lava_dl_zero_on_quiet: bool = False

    def lava_dl_plan(self, inputs: dict, outputs: dict) -> list | None:
        """The calls ``[(function, args), ...]`` that compute this step's result (sent in the next
        step) from ``inputs`` (in port name -> the array received in this step) into ``outputs``
        (out port name -> the array to write), for a static schedule of an in-process executor
        (:class:`lava_dl.netx.fused.LocalGraph`): they must do what :meth:`receive_phase` would do,
        given that no input is quiet. The arrays stay the same for every step the schedule is used,
        and it is made again whenever a Var is replaced or set. None: this step needs
        :meth:`receive_phase` (the default). A model that answers None is asked again only after a
        Var changed: what its own step would derive from its Vars, it derives here instead. A call
        may touch only the arrays among its arguments (in nested tuples and lists too) and, if it is
        a method of the model, the model's own state: calls that share neither may run at the same
        time (see ``lava_dl.netx.fused._Lanes``)."""
        return None

    def lava_dl_send_plan(self, outputs: dict) -> list | None:
        """For a model without ``lava_dl_sent_var`` (its :meth:`send_phase` sends a copy): the calls
        ``[(function, args), ...]`` that write what it sends in this step into ``outputs`` (out port
        name -> array), which a static schedule runs at the start of every step, before any model's
        :meth:`lava_dl_plan` calls (as :meth:`send_phase` runs before any receive); None: the model does
        not take part in one (the default)."""
        return None

    def send_phase(self) -> None:
        """Send the result of the previous step (must not receive)."""
        raise NotImplementedError

    def send_var(self, port, name: str) -> None:
        """Send the array of Var ``name`` on ``port``, without a copy where an in-process port can
        take it over (``lava_dl_exchange``): the Var then gets the port's previous buffer, so only a
        model whose next :meth:`receive_phase` overwrites the whole Var may call this. A Var that
        :meth:`receive_quiet` zeroed is sent as a quiet message where the port takes one."""
        value = getattr(self, name)
        if value is self.__dict__.get("_lava_dl_zero") and hasattr(port, "send_quiet"):
            port.send_quiet()
            return
        exchange = getattr(port, "lava_dl_exchange", None)
        if exchange is None:
            port.send(value)
        else:  # the model's own swap of arrays, not a change of the Var: no __setattr__
            self.__dict__[name] = exchange(value)

    def derived(self, key: str, compute):
        """``compute()``, a value that depends only on the model's Vars, kept until a Var may have
        changed (replaced, set by the runtime; never kept with a RefPort, which may write at any
        step)."""
        cache = self.__dict__.get("_lava_dl_derived")
        if cache is None:
            cache = self.__dict__["_lava_dl_derived"] = {}
        elif key in cache:
            return cache[key]
        value = compute()
        if not self.var_ports:
            cache[key] = value
        return value

    def receive_quiet(self, port, name: str) -> bool:
        """If ``port`` says that no input arrives in this step (an in-process port's ``quiet``, see
        :mod:`lava_dl.netx.fused`; Lava's ports never do), make Var ``name`` zeros, the result of a
        synapse step without input, and return True. Otherwise return False: the caller computes the
        Var from the input."""
        quiet = getattr(port, "quiet", None)
        if quiet is not None and not self.var_ports and quiet():
            value = getattr(self, name)
            if value is not self.__dict__.get("_lava_dl_zero"):  # zeroed once while no input arrives
                value[...] = 0
                self.__dict__["_lava_dl_zero"] = value
            return True
        self.__dict__["_lava_dl_zero"] = None
        return False

    #: Attributes a model computes from some of its Vars when they are None (at its first step: weights
    #: laid out for the kernels, tap tables), with the names of those Vars: reset to None when one of them
    #: is replaced, or any Var is set by the runtime, so that a Var set between runs (``weights.set(...)``)
    #: takes effect as in lava-nc's models, which read their Vars every step.
    lava_dl_setup: dict[str, tuple[str, ...]] = {}

    def __setattr__(self, key, value) -> None:
        super().__setattr__(key, value)
        if is_var_attribute(key):
            self._forget_derived(key)

    def _set_var(self) -> None:
        self._forget_derived()  # the runtime writes a Var (which one is read inside Lava's method)
        super()._set_var()

    def _forget_derived(self, var: str | None = None) -> None:
        """Drop what was derived from the Vars after Var ``var`` changed (None: any Var may have)."""
        attributes = self.__dict__
        attributes["_lava_dl_zero"] = attributes["_lava_dl_derived"] = None
        for name, sources in self.lava_dl_setup.items():
            if var is None or var in sources:
                attributes[name] = None
        note_var_change(self)

    def receive_phase(self) -> None:
        """Receive this step's input and compute the result sent in the next step."""
        raise NotImplementedError

    def run_spk(self) -> None:
        self.send_phase()
        self.receive_phase()

class CsrWeightsModel:
    """Mixin of a model whose ``weights`` Var is a ``csr_matrix`` that keeps the stored positions of the
    Process's, though the weight rule may store zeros there (so that ``get`` returns as many values as
    the Var's positions). Lava's ``_set_var`` finds the positions with ``find``, which skips stored
    zeros: it is shown a copy whose every stored value is nonzero."""

    def _set_var(self) -> None:
        from scipy.sparse import csr_matrix

        weights = self.weights
        shown = None
        if weights.nnz and not np.all(weights.data):
            shown = csr_matrix((np.ones(weights.nnz, weights.dtype), weights.indices, weights.indptr),
                               shape=weights.shape)
            self.__dict__["weights"] = shown
        try:
            super()._set_var()
        finally:
            if shown is not None and self.__dict__["weights"] is shown:  # another Var was set
                self.__dict__["weights"] = weights


#: The Vars of a neuron model that set its periodic reset.
_RESET_VARS = frozenset({"reset_interval", "reset_offset", "reset_hold"})
#: Attributes Lava's runtime sets on a model at every step (not Vars).
_RUNTIME_ATTRIBUTES = frozenset({"time_step", "phase"})


def is_var_attribute(key: str) -> bool:
    """Whether setting attribute ``key`` of a ProcessModel may replace a Var's array (a fused network's
    ``set``), as opposed to its private state or the runtime's step counters."""
    return not key.startswith("_") and key not in _RUNTIME_ATTRIBUTES


def periodic_reset(model) -> tuple[int, int] | None:
    """``(interval, phase)`` of a model's periodic reset (its Vars ``reset_interval``, ``reset_offset``):
    the steps ``t`` with ``t % interval == phase`` reset it; None: it never resets."""
    interval = int(model.reset_interval[0])
    return (interval, int(model.reset_offset[0]) % interval) if interval > 0 else None


def note_var_change(model) -> None:
    """Count a change of ``model``'s Vars (an array replaced, or set by the runtime) for the
    in-process executor that runs it (``_lava_dl_changes``, a one-element list shared by the
    models of one :class:`lava_dl.netx.fused.LocalGraph`): its static schedule is then made again."""
    changes = model.__dict__.get("_lava_dl_changes")
    if changes is not None:
        changes[0] += 1


Shape = tuple[int, ...]


def check_shape(shape, where: str) -> Shape:
    """Return ``shape`` as a tuple of positive ints or raise naming ``where``."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError as err:
        raise TypeError(f"{where}: shape must be an int or a tuple of ints, got {shape!r}") from err
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"{where}: shape must be non-empty with positive sizes, got {shape}")
    return shape


def make_neuron_process(spec: NeuronSpec, name: str, module: str) -> type:
    """Create the Lava Process class of a neuron family.

    Parameters
    ----------
    spec : NeuronSpec
        The family definition.
    name : str
        Class name.
    module : str
        ``__name__`` of the defining module (Lava's compiler locates models from it).
    """

    def __init__(self, *, shape, reset_interval: int = 0, reset_offset: int = 0, reset_hold: bool = False,
                 name: str | None = None, log_config=None, **params):
        where = f"{type(self).__name__}"
        self._runtime = None  # lets AbstractProcess.__del__ run if validation below raises
        shape = check_shape(shape, where)
        unknown = set(params) - set(spec.param_names)
        if unknown:
            raise TypeError(f"{where}: unknown parameter(s) {sorted(unknown)}; "
                            f"expected {list(spec.param_names)}")
        values = {}
        for p in spec.params:
            raw = params.get(p.name, p.default)
            arr = p.check(raw, where=f"{where}: ")
            try:
                values[p.name] = np.broadcast_to(arr, shape).astype(np.int32)
            except ValueError as err:
                raise ValueError(f"{where}: {p.name} of shape {arr.shape} does not broadcast "
                                 f"to the neuron shape {shape}") from err
        if int(reset_interval) < 0:
            raise ValueError(f"{where}: reset_interval must be >= 0 (0 = never), got {reset_interval}")
        super(cls, self).__init__(shape=shape, name=name, log_config=log_config,
                                  reset_interval=int(reset_interval), reset_offset=int(reset_offset),
                                  reset_hold=bool(reset_hold),
                                  **{k: v for k, v in values.items()})
        for port in spec.in_ports:
            setattr(self, port, InPort(shape=shape))
        self.s_out = OutPort(shape=shape)
        for s in spec.states:
            setattr(self, s.name, Var(shape=shape, init=s.initial))
        for k, v in values.items():
            setattr(self, k, Var(shape=shape, init=v))
        self.reset_interval = Var(shape=(1,), init=int(reset_interval))
        self.reset_offset = Var(shape=(1,), init=int(reset_offset))
        self.reset_hold = Var(shape=(1,), init=int(bool(reset_hold)))

    params_doc = "\n".join(f"    {p.name} : int or array, default {p.default}\n        {p.doc} "
                           f"(range [{p.lo}, {p.hi}], hdf5 ``{p.hdf5_key}``)." for p in spec.params)
    doc = (f"{spec.doc}\n\nParameters\n----------\nshape : tuple of int\n    Neuron shape.\n"
           f"{params_doc}\nreset_interval : int, default 0\n    If > 0, all states are zeroed "
           f"before the dynamics of every step with ``time_step % reset_interval == "
           f"reset_offset % reset_interval`` (``time_step`` starts at 1).\nreset_offset : int\n"
           f"    Phase of the reset.\nreset_hold : bool, default False\n    If True, a reset step "
           f"is spent in reset: states stay zero, the input of that step is ignored and nothing is "
           f"sent (how a slayer block with ``delay_shift`` drops the last step of every sample).\n")
    namespace = {"__init__": __init__, "__doc__": doc, "__module__": module, "spec": spec}
    aliases = spec.extra.get("var_aliases", {})
    for alias, var_name in aliases.items():
        namespace[alias] = property(lambda self, _name=var_name: getattr(self, _name),
                                    doc=f"The Var ``{var_name}`` under lava-nc's name (read-only).")
    if aliases:
        def __dir__(self):
            # Lava names a process's Vars by scanning dir(): each Var keeps its own name only
            return [n for n in AbstractProcess.__dir__(self) if n not in aliases]

        namespace["__dir__"] = __dir__
    cls = type(name, (AbstractProcess,), namespace)
    return cls


_WARM: set = set()


def warm_up(spec: NeuronSpec, fixed: bool | None = None) -> None:
    """Compile (or load from Numba's cache) the kernels with the exact dtypes the models use.

    Parameters
    ----------
    spec : NeuronSpec
        The family.
    fixed : bool, optional
        Only the bit-accurate model's kernels (True) or only the float model's (False); None: both.

    Called for the models of a Lava graph in the host before Lava forks its workers (see
    :func:`lava_dl.runtime.warm_up_models`), so workers inherit compiled code instead of each
    compiling lazily at their first step.
    """
    steps = ((True, spec.fixed_step), (True, spec.settled_step), (False, spec.float_step))
    for is_fixed, step in steps:
        if step is None or (fixed is not None and is_fixed != fixed) or (spec.name, is_fixed) in _WARM:
            continue
        dtype = np.int32 if is_fixed else np.float64
        states = [np.zeros(1, dtype) for _ in spec.states]
        params = [np.zeros(1, np.int32) for _ in spec.params]
        for in_dtype in ((np.int64, np.int32) if is_fixed else (np.float64,)):  # kernel's and port's dtype
            inputs = [np.zeros(1, in_dtype) for _ in spec.in_ports]
            step(*states, *inputs, *params, np.zeros(1, dtype))
    for is_fixed in (True, False) if fixed is None else (fixed,):
        _WARM.add((spec.name, is_fixed))


def var_value(lava_type: LavaPyType, var: Var):
    """A Var's initial value in its model's type, as Lava's ``PyProcessBuilder`` makes it."""
    if issubclass(lava_type.cls, np.ndarray):
        arr = np.ndarray(var.shape, lava_type.d_type)
        arr[:] = var.init
        return arr
    if issubclass(lava_type.cls, (int, float, str)):
        return var.init
    from scipy.sparse import csr_matrix

    if issubclass(lava_type.cls, csr_matrix):
        if isinstance(var.init, int):
            arr = csr_matrix(var.shape, dtype=lava_type.d_type)
            arr[:] = var.init
            return arr
        return var.init
    raise NotImplementedError(f"Var {var.name}: cannot build a value of type {lava_type.cls}")


def model_with_vars(cls: type, proc: AbstractProcess, values: dict | None = None) -> PyLoihiProcessModel:
    """An instance of ProcessModel ``cls`` holding ``proc``'s Vars as Lava's builder gives them, without
    ports: enough for a model to lay out its kernels' arguments outside a run (see ``lava_dl_warm_up``).
    ``values`` (Var name -> value in the model's type) replaces some of them."""
    values = values or {}
    model = cls(proc.proc_params)
    for var in proc.vars:
        lava_type = getattr(cls, var.name)
        setattr(model, var.name, values[var.name] if var.name in values else var_value(lava_type, var))
        setattr(model, f"_{var.name}_p", lava_type.precision)
    return model


#: A warm-up lays out weight matrices of up to this many stored entries as the model's first step will
#: (exactly the sums' dtype it will choose). A larger one would cost the host what the worker's own
#: layout costs (seconds for 10^7 entries): the hook then compiles the kernel on a one-entry matrix, for
#: each dtype the model may choose (see :func:`one_entry`).
WARM_UP_ENTRIES = 1 << 20


def stored_entries(var: Var) -> int:
    """Entries a (dense or ``csr_matrix``) weight Var stores."""
    nnz = getattr(var.init, "nnz", None)
    return int(nnz) if nnz is not None else int(np.prod(var.shape, dtype=np.int64))


def one_entry(kind: type, dtype, value=1):
    """A 1x1 matrix holding ``value``, of the class of a weight Var's type (``np.ndarray`` or scipy's
    ``csr_matrix``): what a warm-up lays out in place of a large matrix."""
    arr = np.full((1, 1), value, dtype)
    if issubclass(kind, np.ndarray):
        return arr
    from scipy.sparse import csr_matrix

    return csr_matrix(arr)


def first_spike(shape: tuple[int, ...], dtype) -> np.ndarray:
    """Zeros of ``shape`` but a 1 in the first element: an input that takes a kernel through its work
    (an all-zero input may skip parts, which Numba would then compile only at a later step)."""
    arr = np.zeros(shape, dtype)
    arr.reshape(-1)[:1] = 1
    return arr


def _make_model(proc_cls: type, spec: NeuronSpec, fixed: bool, module: str, name: str) -> type:
    dtype = np.int32 if fixed else float
    step = spec.fixed_step if fixed else spec.float_step
    settled_step = spec.settled_step if fixed else None
    kernel_in = np.int64 if fixed else np.float64
    namespace: dict = {
        "__module__": module,
        "__doc__": f"{'Bit-accurate fixed-point' if fixed else 'Floating-point'} model of "
                   f"{proc_cls.__name__} (kernel ``{step.__module__}.{step.__name__}``).",
        "s_out": LavaPyType(PyOutPort.VEC_DENSE, dtype, precision=max(spec.out_message_bits, 1)),
        "reset_interval": LavaPyType(np.ndarray, np.int32),
        "reset_offset": LavaPyType(np.ndarray, np.int32),
        "reset_hold": LavaPyType(np.ndarray, np.int32),
    }
    for port in spec.in_ports:
        namespace[port] = LavaPyType(PyInPort.VEC_DENSE, dtype, precision=spec.in_message_bits)
    for s in spec.states:
        namespace[s.name] = LavaPyType(np.ndarray, dtype, precision=24)
    for p in spec.params:
        namespace[p.name] = LavaPyType(np.ndarray, np.int32)
    var_names = spec.state_names + spec.param_names
    n_states = len(spec.state_names)
    in_ports = spec.in_ports
    n_inputs = len(in_ports)
    #: input dtypes passed to the kernel as received (the port's and the kernel's own)
    input_dtypes = (np.dtype(dtype), np.dtype(kernel_in))

    var_set = frozenset(var_names)

    def __setattr__(self, key, value):
        PyLoihiProcessModel.__setattr__(self, key, value)
        if key in var_set:  # a Var array replaced (builder, fused network): rebuild the views
            self.__dict__["_lava_dl_buffers"] = None
            self.__dict__["_lava_dl_settled"] = self.__dict__["_lava_dl_idle"] = False
        if key in var_set or key in _RESET_VARS:
            note_var_change(self)

    def _set_var(self):
        # a Var set by the runtime (in place): not settled any more, and its parameters are checked again
        self.__dict__["_lava_dl_settled"] = self.__dict__["_lava_dl_idle"] = False
        self.__dict__["_lava_dl_buffers"] = None
        note_var_change(self)
        PyLoihiProcessModel._set_var(self)

    def _buffers(self):
        """``(arrays, flats, fresh, in_bufs, out, message, args)``, built at the first step and reused.

        ``flats`` are 1-D views of the state and parameter Vars (rebuilt whenever a Var's
        array is replaced, see ``__setattr__``); ``fresh`` lists the (in practice never)
        non-contiguous ones, whose flat copies are refreshed every step and, for states,
        copied back. ``in_bufs`` hold a port's input converted to the kernel's dtype when
        it cannot be passed as received. ``out`` receives the output messages: a flat view of
        the out port's own buffer when the port offers one (``lava_dl_buffer``, an in-process
        port that sends its buffer without a copy), else a buffer of the model; ``message``
        is ``out`` in the port's shape, as sent. ``args`` are the kernel's arguments (None with
        ``fresh``), the inputs being those of the last step (see ``run_spk``).
        """
        cache = self.__dict__.get("_lava_dl_buffers")
        if cache is None:
            arrays = [getattr(self, n) for n in var_names]
            _check_params(self, arrays[n_states:])
            flats = [_flat(a) for a in arrays]
            fresh = tuple(i for i, a in enumerate(arrays) if not np.asarray(a).flags.c_contiguous)
            size = flats[0].shape[0]
            in_bufs = [np.empty(size, kernel_in) for _ in in_ports]
            port_buffer = getattr(self.s_out, "lava_dl_buffer", None)
            if (port_buffer is not None and port_buffer.dtype == dtype and port_buffer.size == size
                    and port_buffer.flags.c_contiguous):
                out, message = port_buffer.reshape(-1), port_buffer
            else:
                out = np.empty(size, dtype)
                message = out.reshape(self.s_out.shape)
            args = None if fresh else [*flats[:n_states], *in_bufs, *flats[n_states:], out]
            cache = (arrays, flats, fresh, in_bufs, out, message, args)
            self._lava_dl_buffers = cache
            # per port, the received array whose flat view is in ``args`` (None: converted into in_bufs)
            self._lava_dl_passed = [None] * n_inputs
        return cache

    def _check_params(self, arrays) -> None:
        """Refuse parameters outside the family's ranges (e.g. a Var's ``init`` written after the
        Process was built), which the kernels would otherwise run on; checked whenever the model
        (re)builds its views of the Vars."""
        for param, array in zip(spec.params, arrays):
            try:
                param.check(array, f"{spec.name} neuron ({type(self).__name__}) Var ")
            except ValueError as err:
                hint = _PARAM_HINTS.get(param.name, "")
                raise ValueError(f"{err}{hint}") from None

    def _kernel_input(buf: np.ndarray, data) -> np.ndarray:
        """The received ``data`` as the kernel's flat input: itself (a view) when it is a contiguous
        array of the port's or the kernel's dtype of the right size (the kernels read their inputs
        into int64 / float64 scalars, so either gives the same result), else converted into ``buf``."""
        if (isinstance(data, np.ndarray) and data.dtype in input_dtypes and data.size == buf.size
                and data.flags.c_contiguous):
            return data.reshape(-1)
        np.copyto(buf, np.reshape(data, -1), casting="unsafe")
        return buf

    def idle(self) -> bool:
        """The last step was settled and idle (see ``NeuronSpec.settled_step``): a step without input
        would change nothing and send zeros."""
        attributes = self.__dict__
        return attributes.get("_lava_dl_settled", False) and attributes.get("_lava_dl_idle", False)

    def idle_without_input(self) -> bool:
        """The last step was :func:`idle` and every in port says no input arrives (an in-process
        port's ``quiet``; Lava's ports never do): this step would change nothing and send zeros."""
        if not idle(self):
            return False
        for port in in_ports:
            quiet = getattr(getattr(self, port), "quiet", None)
            if quiet is None or not quiet():
                return False
        return True

    def run_spk(self):
        reset = periodic_reset(self)
        if reset is not None and self.time_step % reset[0] == reset[1]:
            for s in spec.states:
                getattr(self, s.name)[...] = s.initial
            self.__dict__["_lava_dl_settled"] = self.__dict__["_lava_dl_idle"] = False
            if self.reset_hold[0]:
                for port in in_ports:
                    getattr(self, port).recv()
                self.s_out.send(np.zeros(self.s_out.shape, dtype=dtype))
                return
        elif idle_without_input(self):
            self.s_out.send_quiet()
            return
        received = [getattr(self, port).recv() for port in in_ports]
        arrays, flats, fresh, in_bufs, out, message, args = _buffers(self)
        for i in fresh:
            flats[i] = _flat(arrays[i])
        if args is None:
            inputs = [_kernel_input(buf, data) for buf, data in zip(in_bufs, received)]
            args = [*flats[:n_states], *inputs, *flats[n_states:], out]
        else:
            passed = self._lava_dl_passed
            for k, data in enumerate(received):
                if data is not passed[k]:  # an in-process port hands over the same buffer every step
                    flat = _kernel_input(in_bufs[k], data)
                    args[n_states + k] = flat
                    passed[k] = data if flat is not in_bufs[k] else None
        quiet = kernel_step(self, args)
        for i in fresh:
            if i < n_states:
                arrays[i][...] = flats[i].reshape(np.shape(arrays[i]))
        if quiet and hasattr(self.s_out, "send_quiet"):
            self.s_out.send_quiet(message)  # zeros: an in-process port tells its receivers
        else:
            self.s_out.send(message)

    def kernel_step(self, args) -> bool:
        """Run the kernel on ``args``: the settled kernel where the states are settled (the last step
        was run here and no Var changed since; a RefPort may write one at any step: then never).
        Return whether the message it wrote is zeros its receivers may be told of (a settled step
        that sent nothing)."""
        attributes = self.__dict__
        settled = settled_step is not None and attributes.get("_lava_dl_settled", False)
        result = settled_step(*args) if settled else step(*args)
        attributes["_lava_dl_settled"] = not self.var_ports
        attributes["_lava_dl_idle"] = settled and result == SETTLED_IDLE
        return settled and result != SETTLED_BUSY

    def plan_arguments(self, inputs: dict, outputs: dict) -> tuple | None:
        """The kernel's arguments for a step reading ``inputs`` and writing ``outputs["s_out"]`` (see
        :meth:`lava_dl_plan`); None where the kernel cannot take the arrays as they are (or a RefPort
        may write the Vars)."""
        if self.var_ports:
            return None
        arrays, flats, fresh, in_bufs, out, message, args = _buffers(self)
        target = outputs["s_out"]
        received = [inputs[port] for port in in_ports]
        if (fresh or any(not plain_array(data, input_dtypes, out.size) for data in received)
                or not plain_array(target, (np.dtype(dtype),), out.size)):
            return None
        return (*flats[:n_states], *(data.reshape(-1) for data in received), *flats[n_states:],
                target.reshape(-1))

    def lava_dl_plan(self, inputs: dict, outputs: dict) -> list | None:
        """The kernel call of one step reading ``inputs`` (in port name -> array) and writing the
        messages into ``outputs["s_out"]``, for a static schedule (see
        :meth:`SendFirstModel.lava_dl_plan`), valid except in the steps of
        :meth:`lava_dl_general_steps`; None where a step needs ``run_spk`` or, for a model with settled
        steps, :meth:`lava_dl_settled_plan`'s call: RefPorts, or arrays the kernel cannot take as they
        are."""
        args = None if settled_step is not None else plan_arguments(self, inputs, outputs)
        return None if args is None else [(step, args)]

    def lava_dl_settled_plan(self, inputs: dict, outputs: dict, quiet_inputs: tuple,
                             quiet_outputs: dict) -> list | None:
        """For a model with settled steps (quiet messages), the call of one step in a static schedule
        (as :meth:`lava_dl_plan`'s), given flags (one-element bool arrays) that say whether an input
        array holds zeros its sender said were zeros (``quiet_inputs``, in the order of the in ports),
        and the flag it keeps for its message (``quiet_outputs["s_out"]``): what ``run_spk`` does with an
        in-process executor's quiet ports (only models with settled steps have this method). None:
        :meth:`lava_dl_plan`'s reasons."""
        args = plan_arguments(self, inputs, outputs)
        if args is None:
            return None
        return [(self._lava_dl_planned_step, (tuple(quiet_inputs), quiet_outputs["s_out"], args))]

    def _lava_dl_planned_step(self, quiet_inputs: tuple, quiet_output: np.ndarray, args: tuple) -> None:
        """:meth:`lava_dl_settled_plan`'s call: an idle model without input skips its step (its message
        array holds the zeros of its last step); otherwise the kernel runs and says whether it sent
        quiet zeros."""
        if idle(self) and all(flag[0] for flag in quiet_inputs):
            quiet_output[0] = True
            return
        quiet_output[0] = kernel_step(self, args)

    def lava_dl_general_steps(self) -> tuple[int, int] | None:
        """``(interval, phase)``: the steps ``t`` with ``t % interval == phase`` reset the states, which
        :meth:`lava_dl_plan`'s call does not do (``run_spk`` must run them); None: no such step."""
        return periodic_reset(self)

    namespace["run_spk"] = run_spk
    namespace["lava_dl_plan"] = lava_dl_plan
    if settled_step is not None:  # (a static schedule guards the receivers of models that have it)
        namespace["lava_dl_settled_plan"] = lava_dl_settled_plan
        namespace["_lava_dl_planned_step"] = _lava_dl_planned_step
    namespace["lava_dl_general_steps"] = lava_dl_general_steps
    namespace["lava_dl_warm_up"] = classmethod(lambda cls, proc: warm_up(spec, fixed))
    namespace["__setattr__"] = __setattr__
    namespace["_set_var"] = _set_var
    # the kernel is elementwise over flat arrays: a batch of samples is a longer population
    namespace["lava_dl_batch_vars"] = tuple(var_names)
    # the received messages are only read, by the kernel of the same step
    namespace["lava_dl_recv_view"] = True
    model = type(name, (PyLoihiProcessModel,), namespace)
    model = implements(proc=proc_cls, protocol=LoihiProtocol)(model)
    model = requires(CPU)(model)
    if fixed:
        model = tag("fixed_pt", "bit_accurate_loihi")(model)
    else:
        model = tag("floating_pt")(model)
    return model


#: Appended to the range error of a parameter whose units differ from lava-nc's namesake.
_PARAM_HINTS = {
    name: ("; lava_dl's decays are the hdf5 values (iDecay, vDecay), while lava-nc's LIF adds 1 to its "
           "du and dv: lava-nc's du=-1 (no decay) is du=0 here")
    for name in ("du", "dv")
}


def plain_array(data, dtypes, size: int | None = None, shape: tuple | None = None) -> bool:
    """``data`` is a C-contiguous array of one of ``dtypes`` (with ``size`` elements and of ``shape``,
    where given): an array a kernel of a static schedule can take as it is (see
    :meth:`SendFirstModel.lava_dl_plan`)."""
    return (isinstance(data, np.ndarray) and data.dtype in dtypes and data.flags.c_contiguous
            and (size is None or data.size == size) and (shape is None or data.shape == shape))


def _flat(arr: np.ndarray) -> np.ndarray:
    """1-D view of a Var's array (a copy only if Lava handed us a non-contiguous one)."""
    arr = np.asarray(arr)
    return arr.reshape(-1) if arr.flags.c_contiguous else np.ascontiguousarray(arr).reshape(-1)


def make_neuron_models(proc_cls: type, module: str) -> tuple[type, type | None]:
    """Create the ``fixed_pt`` and (if the spec has a float rule) ``floating_pt`` models."""
    spec: NeuronSpec = proc_cls.spec
    base = proc_cls.__name__
    fixed = _make_model(proc_cls, spec, True, module, f"Py{base}ModelFixed")
    flt = None
    if spec.float_step is not None:
        flt = _make_model(proc_cls, spec, False, module, f"Py{base}ModelFloat")
    return fixed, flt
