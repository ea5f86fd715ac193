"""A whole netx network in one process: inside Lava (``Network(..., fused=True)``) or outside it.

:class:`LocalGraph` runs the leaf Processes of a network in the calling process, each with
the very ProcessModel Lava's compiler selects for it (``fixed_pt`` or ``floating_pt``): it
instantiates the models, gives them their Vars as Lava's builder does, and replaces their
ports by in-memory ones that copy, cast, transform (virtual ports) and sum messages as
Lava's channels and ports do. One step runs every model's ``run_spk`` once, so results are
those of the per-layer Lava graph, bit for bit, without one OS process per layer.

Copies that no model could tell from Lava's are skipped: lava_dl's own models receive the
sender's buffer itself (they declare ``lava_dl_recv_view``: they only read it, within the
step), and its neuron models compute their message in their out port's buffer.

Work on nothing is skipped too. A sender that knows its message is zeros says so
(:meth:`_OutPort.send_quiet`: the buffer is zeroed once, then left alone while the zeros last),
and a receiver may ask (:meth:`_InPort.quiet`): lava_dl's synapses then skip their sums
(:meth:`lava_dl.lava_glue.SendFirstModel.receive_quiet`) and send quiet zeros in turn, and a
settled sigma-delta or Delta model whose last step was idle (``NeuronSpec.settled_step``) skips
its step. Models that do not ask read the zeros as usual.

Where every model can list the kernel calls its step amounts to (``lava_dl_plan``), the graph
runs a static schedule of those calls on fixed arrays instead (see :meth:`LocalGraph.step`),
with the same results and Vars; where a step's work is large enough, the calls that share no
array run in parallel lanes (:class:`_Lanes`).

Order within a step: models derived from :class:`lava_dl.lava_glue.SendFirstModel` (the
synapses, which send what they computed in the previous step) first send, everywhere;
then every model runs, each after the models it receives from (topological order), the
synapses only receiving. A cycle (a recurrent synapse) is therefore fine as long as it
contains a synapse; a cycle of same-step models is an error. Processes whose models are
not split this way (lava-nc's own synapse Processes, such as its ``Sparse``, placed in a network by
hand) run their whole ``run_spk`` in topological order, which is exact outside cycles.

Two users:

* :func:`fuse_network` turns a :class:`~lava_dl.proc.netx_blocks.Network` built with
  ``fused=True`` into one leaf Lava Process: its ``inp``/``out`` ports are the network's,
  every Var of every layer becomes a Var of the Network (``net.fused_vars``) and the layer's
  own Var is aliased to it, so ``net.layers[i].neuron.u.get()`` and ``.set()`` work as in
  the per-layer graph.
* :func:`simulate` runs a network file outside Lava on a whole input array (or a batch of
  them, samples spread over the cores) and returns what a ``RingBuffer`` sink on ``net.out``
  would record.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import time
import types
import typing as ty
import weakref

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort, create_port_id
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from lava_dl import runtime
from lava_dl.core.fixed_point import jit

__all__ = ["LocalGraph", "fuse_network", "leaf_models", "simulate", "FUSED_TAGS", "GROUP_STATE_BYTES"]

#: The run-config tags a fused Network has models for (the leaf models are chosen with the same tag).
FUSED_TAGS = ("fixed_pt", "floating_pt")


# --------------------------------------------------------------------------
# In-memory ports
# --------------------------------------------------------------------------

class _OutPort:
    """Stands in for a ``PyOutPortVectorDense``: ``send`` copies into a buffer of the port's
    dtype (as Lava's channel does, with numpy's assignment casting).

    A model that is not a :class:`~lava_dl.lava_glue.SendFirstModel` may compute its
    message in the port's buffer itself (``lava_dl_buffer``) and send that buffer, which is
    then not copied: every receiver of such a model runs after it in the same step, before
    the model's next step writes the buffer again.
    """

    __slots__ = ("name", "shape", "dtype", "buf", "stamp", "graph", "quiet", "lava_dl_buffer",
                 "lava_dl_exchange")

    def __init__(self, name: str, shape: tuple[int, ...], dtype, graph: LocalGraph,
                 offer_buffer: bool = False) -> None:
        self.name, self.shape, self.dtype, self.graph = name, shape, dtype, graph
        self.buf = np.zeros(shape, dtype)
        self.lava_dl_buffer = self.buf if offer_buffer else None
        # a SendFirstModel sends what it computed in the previous step: it may hand the array over
        self.lava_dl_exchange = None if offer_buffer else self.exchange
        self.stamp = -1
        #: the buffer holds zeros, and its sender said so (see :meth:`send_quiet`)
        self.quiet = False

    def exchange(self, data: np.ndarray) -> np.ndarray:
        """Send ``data`` without a copy: the port keeps the array itself as its buffer and returns
        its previous buffer, which the sender owns from now on (receivers read a buffer only within
        the step it was sent in). An array of another shape, dtype or layout is copied, as
        :meth:`send` does, and returned."""
        if (data is self.buf or not isinstance(data, np.ndarray) or data.shape != self.shape
                or data.dtype != self.dtype or not data.flags.c_contiguous):
            self.send(data)
            return data
        previous, self.buf = self.buf, data
        self.stamp = self.graph.time_step
        self.quiet = False
        return previous

    def send(self, data) -> None:
        if data is not self.buf:
            if np.shape(data) != self.shape:
                raise AssertionError(f"{self.name}: sent shape {np.shape(data)}, port shape {self.shape}")
            self.buf[...] = data
        self.stamp = self.graph.time_step
        self.quiet = False

    def send_quiet(self, zeros: np.ndarray | None = None) -> None:
        """Send a message of zeros and say so: receivers that ask (:meth:`_InPort.quiet`) may skip
        reading it. ``zeros``: an all-zero message the sender computed (sent as :meth:`send` does);
        None: the port's buffer is zeroed, unless it already holds the last quiet message."""
        if zeros is not None:
            self.send(zeros)
        elif not self.quiet:
            self.buf[...] = 0
        self.stamp = self.graph.time_step
        self.quiet = True

    def flush(self) -> None:
        pass


class _InPort:
    """Stands in for a ``PyInPortVectorDense``: ``recv`` returns the sum, over the connected
    sources, of their message passed through the virtual ports' transforms, added to zeros of
    the port's dtype (numpy promotion, as Lava's ``recv``).

    Lava hands every ``recv`` a fresh array. A model that declares ``lava_dl_recv_view``
    (it neither modifies what it receives nor keeps it past its step) gets, from a single
    source of its own dtype, the source's buffer itself (or the transforms' view of it)
    instead of a copy: the sender writes that buffer only in its next send, i.e. in a later
    step.
    """

    __slots__ = ("name", "shape", "dtype", "sources", "graph", "view", "_float", "_batched")

    def __init__(self, name: str, shape: tuple[int, ...], dtype, graph: LocalGraph,
                 view: bool = False) -> None:
        self.name, self.shape, self.dtype, self.graph = name, shape, dtype, graph
        self.sources: list[tuple[ty.Any, _Transform | None]] = []
        self.view = view
        self._float = np.dtype(dtype).kind == "f"
        self._batched = graph.batch > 0

    def recv(self) -> np.ndarray:
        sources = self.sources
        if len(sources) == 1 and not self._float:
            value = self._message(*sources[0])
            if value.dtype == self.dtype and value.shape == self.shape:
                return value if self.view else value.copy()
        acc = np.zeros(self.shape, self.dtype)
        for source, transform in sources:
            acc = acc + self._message(source, transform)
        return acc

    peek = recv

    def probe(self) -> bool:
        return True

    def quiet(self) -> bool:
        """Whether every source said its message of this step is zeros (:meth:`_OutPort.send_quiet`):
        then :meth:`recv` would return zeros (the transforms only move elements)."""
        for source, transform in self.sources:
            if not getattr(source, "quiet", False) or (transform is not None and not transform.moves_only):
                return False
            if source.stamp != self.graph.time_step:
                raise RuntimeError(f"{self.name}: nothing was sent to it in step {self.graph.time_step} "
                                   f"(internal scheduling error)")
        return bool(self.sources)

    def _message(self, source, transform: _Transform | None) -> np.ndarray:
        if source.stamp != self.graph.time_step:
            raise RuntimeError(f"{self.name}: nothing was sent to it in step {self.graph.time_step} "
                               f"(internal scheduling error)")
        data = source.buf
        return data if transform is None else transform(data)


class _Transform:
    """The virtual ports' transforms between a source and an InPort, for one sample or a batch.

    Lava's transforms act on one sample. For a batch (a leading axis on every message) they
    are applied to each sample, unless they only move elements (reshape, transpose, ...):
    then the gather of element indices they amount to, found once by passing the indices of
    a sample through them, is applied to the whole batch at once.

    Parameters
    ----------
    funcs : list of callable
        The transforms, in order (``port.get_incoming_transform_funcs()``).
    batched : bool
        Messages carry a leading batch axis.
    sample_shape : tuple of int
        Shape of one sample of the source's message.
    """

    __slots__ = ("funcs", "batched", "gather", "reshape_only", "moves_only")

    def __init__(self, funcs: list, batched: bool, sample_shape: tuple[int, ...]) -> None:
        self.funcs, self.batched = list(funcs), batched
        gather = _element_gather(self.funcs, sample_shape)
        #: the transforms only move elements (zeros stay zeros)
        self.moves_only = gather is not None
        self.gather = gather
        # a gather that keeps the elements in order is a reshape: a view of the message
        self.reshape_only = gather is not None and bool(
            np.array_equal(gather.reshape(-1), np.arange(gather.size)))

    def __call__(self, data: np.ndarray) -> np.ndarray:
        if not self.batched:
            return _transformed(data, self.funcs)
        if self.gather is not None:
            rows = data.reshape(len(data), -1)
            if self.reshape_only:
                return rows.reshape(len(data), *self.gather.shape)
            out = np.empty((len(data), self.gather.size), data.dtype)
            _gather_rows(np.ascontiguousarray(rows), self.gather.reshape(-1), out)
            return out.reshape(len(data), *self.gather.shape)
        return np.stack([_transformed(row, self.funcs) for row in data])


@jit
def _gather_rows(rows, index, out):
    """``out[b] = rows[b][index]`` for every row ``b`` (numpy's fancy indexing along the second axis
    of a 2-d array is several times slower)."""
    for b in range(rows.shape[0]):
        row, dst = rows[b], out[b]
        for i in range(index.shape[0]):
            dst[i] = row[index[i]]


def warm_up_gathers(models: dict) -> None:
    """Compile :func:`_gather_rows` for the message dtype of every leaf in-port of ``models`` that a
    virtual port's transform feeds (a static schedule, and a batch, move those messages' elements with
    it): before a fork, as :func:`lava_dl.runtime.warm_up_models` does for the models' kernels."""
    for proc, cls in models.items():
        for port in proc.in_ports:
            if not port.get_incoming_transform_funcs():
                continue
            dtype = np.dtype(LocalGraph._port_type(cls, port).d_type)
            _gather_rows(np.zeros((1, 1), dtype), np.zeros(1, np.int64), np.zeros((1, 1), dtype))


def _transformed(data: np.ndarray, transforms: list) -> np.ndarray:
    for f in transforms:
        data = f(data)
    return data


def _element_gather(funcs: list, sample_shape: tuple[int, ...]) -> np.ndarray | None:
    """Indices ``g`` (shaped as the transformed sample) with ``funcs(x) == x.reshape(-1)[g]`` for
    every ``x`` of ``sample_shape``, or None when the transforms do more than move elements
    (checked on the indices themselves and on a random sample of another dtype)."""
    size = int(np.prod(sample_shape, dtype=np.int64))
    index = np.arange(size, dtype=np.int64).reshape(sample_shape)
    probe = np.random.default_rng(0).integers(-(1 << 20), 1 << 20, size, dtype=np.int32).reshape(sample_shape)
    try:
        gather = np.asarray(_transformed(index, funcs))
        moved = np.asarray(_transformed(probe, funcs))
    except Exception:  # a transform that only handles other input: apply it sample by sample
        return None
    if (gather.dtype != index.dtype or moved.dtype != probe.dtype or gather.shape != moved.shape
            or gather.size and (gather.min() < 0 or gather.max() >= size)
            or not np.array_equal(probe.reshape(-1)[gather], moved)):
        return None
    return np.ascontiguousarray(gather)


class _External:
    """The network's input: what arrives at the first block's ``inp`` in this step."""

    __slots__ = ("buf", "stamp")

    def __init__(self) -> None:
        self.buf = None
        self.stamp = -1


# --------------------------------------------------------------------------
# The executor
# --------------------------------------------------------------------------

def leaf_models(layers: ty.Sequence[AbstractProcess], select_tag: str) -> dict:
    """``{leaf Process: ProcessModel class}`` of the blocks, as Lava's compiler chooses them for
    ``Loihi1SimCfg(select_tag=select_tag)`` (hierarchical blocks expanded)."""
    from lava.magma.compiler.compiler_graphs import ProcGroupDiGraphs
    from lava.magma.core.run_configs import Loihi1SimCfg

    return dict(ProcGroupDiGraphs._map_proc_to_model(list(layers), Loihi1SimCfg(select_tag=select_tag), []))


class LocalGraph:
    """Runs the leaf Processes of a Lava graph in this process, step by step.

    Parameters
    ----------
    models : dict
        ``{leaf Process: ProcessModel class}`` (see :func:`leaf_models`).
    entry : InPort
        The hierarchical port the input arrives at (the first block's ``inp``); it must have
        no incoming connection.
    exit : OutPort
        The port whose messages :meth:`step` returns (the last block's ``out``).
    arrays : dict, optional
        ``{(process, var name): value}`` to use as the models' Vars (shared, not copied);
        other Vars are built from their ``init``.
    batch : int, default 0
        Step this many samples at once (0: one sample, as Lava does). Every model must
        declare ``lava_dl_batch_vars`` (the Vars that get a leading batch axis; its code
        then handles that axis when its ``lava_dl_batch`` is set); port messages get the
        leading batch axis too, and virtual-port transforms act on each sample.
    static : bool, default True
        Use a static schedule where the models allow one (see :meth:`step`); False: always the
        general one (the results are the same).
    threads : int, optional
        Threads a static schedule may run its independent calls on (default :data:`THREADS`, or
        the cores this process may use); see :class:`_Lanes`.

    Attributes
    ----------
    time_step : int
        The last step run (0 before the first).
    instances : dict
        ``{leaf Process: ProcessModel instance}``.
    """

    def __init__(self, models: dict, entry: InPort, exit: OutPort, arrays: dict | None = None,
                 batch: int = 0, static: bool = True, threads: int | None = None) -> None:
        from lava_dl.lava_glue import model_with_vars, var_value

        arrays = arrays or {}
        self.time_step = 0
        self.threads = max(1, int(threads if threads is not None else THREADS or _cores()))
        #: the helper threads of parallel static schedules (made when first needed)
        self._helpers: list[_Helper] = []
        self.batch = int(batch)
        lead = (self.batch,) if self.batch else ()
        self.instances: dict = {}
        self._external = _External()
        #: changes of the models' Vars, counted by the models (lava_glue.note_var_change)
        self._changes = [0]
        #: the static schedule (None: none made yet) and the count of Var changes at which the models
        #: last refused one
        self._static = bool(static)
        self._plan: _Plan | None = None
        self._refused = -1
        self._ports: dict = {}  # model -> ({in port name: _InPort}, {out port name: _OutPort})
        out_ports: dict[str, _OutPort] = {}
        in_ports: list[tuple[ty.Any, InPort, _InPort]] = []
        for proc, cls in models.items():
            _refuse_ref_ports(proc)
            batch_vars = getattr(cls, "lava_dl_batch_vars", None)
            if self.batch and batch_vars is None:
                raise NotImplementedError(f"{cls.__name__} ({proc.name}) cannot step a batch of samples")
            values = {}
            for var in proc.vars:
                value = arrays.get((proc, var.name))
                if self.batch and var.name in batch_vars:
                    value = var_value(getattr(cls, var.name), var) if value is None else value
                    # a C-ordered copy per sample (np.ascontiguousarray would keep a read-only
                    # broadcast view for a batch of one; np.array's default order would put the
                    # batch axis last in memory)
                    value = np.array(np.broadcast_to(value, (self.batch, *np.shape(value))), order="C")
                if value is not None:
                    values[var.name] = value
            model = model_with_vars(cls, proc, values)
            if self.batch:
                model.lava_dl_batch = self.batch
            model.__dict__["_lava_dl_changes"] = self._changes
            self._ports[model] = ({}, {})
            for port in proc.out_ports:
                shim = _OutPort(f"{proc.name}.{port.name}", (*lead, *port.shape),
                                self._port_type(cls, port).d_type, self,
                                offer_buffer=not issubclass(cls, _send_first()))
                setattr(model, port.name, shim)
                out_ports[create_port_id(proc.id, port.name)] = shim
                self._ports[model][1][port.name] = shim
            for port in proc.in_ports:
                shim = _InPort(f"{proc.name}.{port.name}", (*lead, *port.shape),
                               self._port_type(cls, port).d_type, self,
                               view=bool(getattr(cls, "lava_dl_recv_view", False)))
                setattr(model, port.name, shim)
                in_ports.append((model, port, shim))
                self._ports[model][0][port.name] = shim
            self.instances[proc] = model

        entry_id = create_port_id(entry.process.id, entry.name)
        feeds: dict[ty.Any, set] = {m: set() for m in self.instances.values()}
        owner = {id(shim): model for model in self.instances.values() for shim in _out_shims(model)}
        self.entry_ports: list[_InPort] = []
        for model, port, shim in in_ports:
            transforms = port.get_incoming_transform_funcs()
            for src in port.get_src_ports():
                src_id = create_port_id(src.process.id, src.name)
                if src_id == entry_id:
                    source = self._external
                    self.entry_ports.append(shim)
                elif src_id in out_ports:
                    source = out_ports[src_id]
                    if not isinstance(owner[id(source)], _send_first()):
                        feeds[model].add(owner[id(source)])
                else:
                    raise NotImplementedError(f"{shim.name} receives from {src.process.name}.{src.name}, "
                                              f"which is outside the fused network")
                funcs = transforms.get(src_id, [])
                transform = _Transform(funcs, self.batch > 0, tuple(src.shape)) if funcs else None
                shim.sources.append((source, transform))

        exits = exit.get_src_ports()
        if len(exits) != 1 or create_port_id(exits[0].process.id, exits[0].name) not in out_ports:
            raise NotImplementedError(f"the network output {exit.process.name}.{exit.name} must come from "
                                      f"exactly one port of the network")
        self.exit = out_ports[create_port_id(exits[0].process.id, exits[0].name)]
        self.order = _topological(list(self.instances.values()), feeds)
        self.send_first = [m for m in self.order if isinstance(m, _send_first())]
        # time_step written straight into the models' dicts (Lava's __setattr__ checks for ports)
        self._dicts = [vars(m) for m in self.instances.values()]
        self._runs = [m.receive_phase if isinstance(m, _send_first()) else m.run_spk for m in self.order]

    @staticmethod
    def _port_type(cls: type, port):
        lava_type = getattr(cls, port.name, None)
        if lava_type is None or lava_type.cls not in _dense_port_classes():
            raise NotImplementedError(f"{cls.__name__}.{port.name}: only dense vector ports can be fused")
        return lava_type

    def step(self, message=None) -> np.ndarray:
        """Run one time step with ``message`` arriving at the entry port; return the exit
        port's message (a buffer reused by the next step: copy it to keep it).

        The general schedule runs every model's phases through its ports, as described in the
        module's docstring. Where every model can say which kernel calls its step amounts to when
        the arrays it reads and writes stay the same (``lava_dl_plan``; lava_dl's Dense, Sparse,
        Conv-like, delay and neuron models, integer messages, ports fed directly, through element moves
        or summed), the graph runs those calls instead, the synapses' two activation arrays alternating
        between their Var and their port: the same kernels on the same arrays, without the per-model
        work of the ports (quiet messages have flags there, see :class:`_Plan`). That static schedule is
        made after the first step (models finish setting up there) and again after any change of a Var;
        steps in which a model
        resets its states (``lava_dl_general_steps``) or whose input has another dtype or shape run
        the general schedule, after which the static one goes on.
        """
        self.time_step += 1
        plan = self._plan
        if plan is not None and plan.changes != self._changes[0]:
            plan.leave()
            plan = self._plan = None
        if plan is None and self._static and self.time_step > 1 and self._refused != self._changes[0]:
            plan = self._plan = _Plan.make(self)
            if plan is None:
                self._refused = self._changes[0]
        if plan is None:
            return self._general_step(message)
        if plan.takes(message) and not plan.general[self.time_step % len(plan.general)]:
            return plan.step(message)
        plan.leave()
        out = self._general_step(message)
        if not plan.follow():
            self._plan = None
        return out

    def close(self) -> None:
        """End the helper threads of parallel static schedules now (they also end when the graph is
        freed); a later parallel step starts new ones."""
        for helper in self._helpers:
            helper.close()
        self._helpers = []
        if self._plan is not None and self._plan.lanes is not None:
            self._plan.leave()
            self._plan = None

    def _lane_helpers(self, count: int) -> list[_Helper]:
        """``count`` helper threads for the lanes of a static schedule (:class:`_Lanes`), made in this
        process (a forked child makes its own: a parent's threads do not survive the fork)."""
        pid = os.getpid()
        if any(helper.pid != pid for helper in self._helpers):
            self._helpers = []
        while len(self._helpers) < count:
            helper = _Helper()
            weakref.finalize(self, helper.close)
            self._helpers.append(helper)
        return self._helpers[:count]

    def _general_step(self, message) -> np.ndarray:
        t = self.time_step
        external = self._external
        external.buf = message
        external.stamp = t if message is not None else -1
        for attributes in self._dicts:
            attributes["time_step"] = t
        for model in self.send_first:
            model.send_phase()
        for run in self._runs:
            run()
        return self.exit.buf


#: Threads a static schedule may use (see :class:`_Lanes`); None: the cores this process may run on.
THREADS: int | None = None
#: Steps a new static schedule times its calls before deciding whether to run them in lanes.
CALIBRATION_STEPS = 8
#: Work per step (seconds) from which a static schedule runs its independent calls in parallel lanes:
#: a handoff to a helper thread costs some 30 µs.
PARALLEL_MIN_SECONDS = 150e-6
#: A schedule runs in lanes only where its longest lane takes at most this fraction of the step's work.
PARALLEL_MAX_SHARE = 0.8


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _arrays_in(values) -> list:
    """The numpy arrays among ``values``, in nested tuples and lists too."""
    found = []
    for value in values:
        if isinstance(value, np.ndarray):
            found.append(value)
        elif isinstance(value, (tuple, list)):
            found.extend(_arrays_in(value))
    return found


def _independent_groups(calls: list) -> list[list[int]]:
    """The calls ``[(function, args), ...]`` of a step in groups that share nothing, each in order.

    Two calls belong together when any array of one may share memory with an array of the other, or
    when both are methods of the same object (a model's call may use its own state besides its
    arguments: see :meth:`lava_dl.lava_glue.SendFirstModel.lava_dl_plan`). Calls of different groups
    read and write nothing in common, so groups may run at the same time: within a step the synapses
    only read what their receivers sent in it and only write what is sent in the next one, so every
    synapse and the neuron it reads from form a group of their own."""
    parent = list(range(len(calls)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    arrays = [_arrays_in(args) for _, args in calls]
    owners = [_owners(function, args) for function, args in calls]
    for i in range(len(calls)):
        for j in range(i):
            if root(i) == root(j):
                continue
            same_owner = any(owner is other for owner in owners[i] for other in owners[j])
            if same_owner or any(np.may_share_memory(a, b) for a in arrays[i] for b in arrays[j]):
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(calls)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _owners(function, args) -> list:
    """The objects whose methods a call runs: ``function``'s, and those of the calls nested in its
    arguments (a :func:`_quiet_guard`'s); builtins' (their module or type) do not count."""
    found = []
    for candidate in (function, *_callables_in(args)):
        owner = getattr(candidate, "__self__", None)
        if owner is not None and not isinstance(owner, (type, types.ModuleType)):
            found.append(owner)
    return found


def _callables_in(values) -> list:
    """The callables among ``values``, in nested tuples and lists too."""
    found = []
    for value in values:
        if callable(value) and not isinstance(value, np.ndarray):
            found.append(value)
        elif isinstance(value, (tuple, list)):
            found.extend(_callables_in(value))
    return found


def _quiet_guard(quiet_inputs: tuple, outputs: tuple, calls: list) -> None:
    """A static schedule's calls that compute ``outputs`` from inputs that may be quiet (see
    :meth:`_Plan.make`): where every flag of ``quiet_inputs`` says its input holds zeros its sender said
    were zeros, the results are zeros, so ``calls`` are skipped and each array of ``outputs`` (``((array,
    flag), ...)``) is zeroed unless its flag says it holds such zeros already; otherwise ``calls`` run
    and the flags are cleared. The in-process port's ``quiet`` and a synapse's ``receive_quiet`` in the
    static schedule."""
    for flag in quiet_inputs:
        if not flag[0]:
            for function, args in calls:
                function(*args)
            for _, flag_out in outputs:
                flag_out[0] = False
            return
    for array, flag_out in outputs:
        if not flag_out[0]:
            array[...] = 0
            flag_out[0] = True


class _Helper:
    """A daemon thread that runs lists of calls handed to it (numba kernels release the GIL)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.todo: queue.SimpleQueue = queue.SimpleQueue()
        self.done: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=_serve, args=(self.todo, self.done), daemon=True,
                         name="lava_dl-fused-lane").start()

    def close(self) -> None:
        self.todo.put(None)


def _serve(todo: queue.SimpleQueue, done: queue.SimpleQueue) -> None:
    while True:
        calls = todo.get()
        if calls is None:
            return
        try:
            for function, args in calls:
                function(*args)
        except BaseException as error:  # noqa: BLE001 - handed to the step that waits for it
            done.put(error)
        else:
            done.put(None)
        # no reference kept while waiting: the calls' models (and through their ports the graph) must
        # be free to go once their graph is dropped
        calls = function = args = None


class _Lanes:
    """A static schedule's calls in lanes that run at the same time: the first in the stepping
    thread, the others in helper threads of the graph.

    Lanes are made of :func:`_independent_groups` (each group's calls in their order), balanced by the
    calls' measured times (the longest group first into the least loaded lane), so every array is
    read and written by one lane only and the results are those of the calls in order, bit for bit.
    A schedule is split only where its work per step reaches :data:`PARALLEL_MIN_SECONDS` and its
    longest lane takes at most :data:`PARALLEL_MAX_SHARE` of it (on PilotNet-shaped CUBA networks
    about 1.4-1.6x faster per step on two cores; small networks stay on one thread).
    """

    __slots__ = ("lanes", "helpers", "graph")

    @classmethod
    def make(cls, calls: tuple[list, list], costs: np.ndarray, graph: LocalGraph) -> _Lanes | None:
        """Lanes for the two parities' call lists (the same calls on alternating arrays), or None where
        running them in parallel would not pay."""
        total = float(costs.sum())
        if total < PARALLEL_MIN_SECONDS:
            return None
        groups = sorted({tuple(g) for parity in (0, 1) for g in _independent_groups(calls[parity])},
                        key=lambda g: -float(costs[list(g)].sum()))
        # a call in two groups of different parities joins them (the lanes must hold for both parities)
        merged: list[set] = []
        for group in groups:
            overlapping = [m for m in merged if m & set(group)]
            joined = set(group).union(*overlapping)
            merged = [m for m in merged if not m & set(group)] + [joined]
        count = min(graph.threads, len(merged))
        if count < 2:
            return None
        loads, members = [0.0] * count, [[] for _ in range(count)]
        for group in sorted(merged, key=lambda g: -float(costs[list(g)].sum())):
            lane = int(np.argmin(loads))
            loads[lane] += float(costs[list(group)].sum())
            members[lane].extend(group)
        if max(loads) > PARALLEL_MAX_SHARE * total:
            return None
        lanes = cls()
        order = np.argsort(loads)[::-1]  # the stepping thread takes the longest lane (it starts first)
        lanes.lanes = tuple([[calls[parity][i] for i in sorted(members[lane])] for lane in order]
                            for parity in (0, 1))
        lanes.helpers = graph._lane_helpers(count - 1)
        lanes.graph = weakref.ref(graph)
        return lanes

    def run(self, parity: int) -> None:
        """Run one step's calls: the other lanes handed to the helpers first, then the first lane here;
        an error in a helper's lane is raised here once every lane has finished."""
        own, *others = self.lanes[parity]
        if self.helpers[0].pid != os.getpid():  # a forked child: the parent's threads are not here
            self.helpers = self.graph()._lane_helpers(len(self.helpers))
        for helper, calls in zip(self.helpers, others):
            helper.todo.put(calls)
        error = None
        try:
            for function, args in own:
                function(*args)
        finally:
            for helper in self.helpers[:len(others)]:
                result = helper.done.get()
                error = error or result
        if error is not None:
            raise error


class _Plan:
    """A static schedule of a :class:`LocalGraph`: the models' kernel calls on fixed arrays.

    A synapse (a :class:`~lava_dl.lava_glue.SendFirstModel`) sends in step ``t`` what it computed in
    step ``t - 1``; the general schedule hands its Var's array to its port and takes the port's
    previous buffer back for the next sums (``send_var``). Here the two arrays alternate in the same
    way: two lists of calls, for the steps of even and odd parity since the schedule was made, and
    after each step the Var and the port point at the arrays they would hold after a general step,
    so that reading a Var, or leaving the schedule, finds everything as the general schedule would.
    A synapse that sends a copy instead (a delay line's first column: ``lava_dl_send_plan``) has its
    copy calls run first in every step, before any model's calls, as its ``send_phase`` runs first in
    the general schedule. Models that read the time step (``lava_dl_plan_clocked``) get it written, as
    the general schedule does.

    Quiet messages (see :meth:`_InPort.quiet`) have flags here: a one-element bool array per array a
    port hands over, True while the array holds zeros its writer said were zeros. Models with settled
    steps (``lava_dl_settled_plan``) keep the flag of their message and skip idle steps without input; a
    synapse whose step makes zeros of quiet input (``lava_dl_zero_on_quiet``) and the element moves and
    sums between ports run inside a :func:`_quiet_guard`. Only flags such calls keep can ever be True.
    """

    __slots__ = ("changes", "calls", "swaps", "exits", "entries", "parity", "general", "sends", "copied",
                 "clocked", "graph", "timing", "lanes", "flags", "kept_flags", "may_quiet", "never")

    @classmethod
    def make(cls, graph: LocalGraph) -> _Plan | None:
        """The schedule of ``graph`` as it is now, or None where a model or port does not allow one."""
        plan = cls()
        plan.parity = 0
        plan.entries = {}
        plan.graph = graph
        plan.lanes = None
        plan.timing = None
        plan.sends, plan.copied = [], []
        plan.flags, plan.kept_flags = {}, set()
        plan.never = np.zeros(1, bool)  # the flag of arrays no call keeps (the network input's)
        plan.clocked = [vars(model) for model in graph.order if getattr(model, "lava_dl_plan_clocked", False)]
        # the arrays each out port's receivers read in a step of parity 0 / 1, and the arrays written
        read, written = {}, {}
        plan.swaps = ([], [])
        for model in graph.order:
            outs = graph._ports[model][1]
            if isinstance(model, _send_first()) and model.lava_dl_sent_var is None:
                sends = model.lava_dl_send_plan({name: port.buf for name, port in outs.items()})
                if sends is None:
                    return None
                plan.sends.extend(sends)
                for port in outs.values():  # the copy lands in the port's own buffer, every step
                    read[id(port)] = written[id(port)] = (port.buf, port.buf)
                    plan.copied.append((port, port.buf))
            elif isinstance(model, _send_first()):
                var = model.lava_dl_sent_var
                if len(outs) != 1:
                    return None
                (port,) = outs.values()
                kept, sent = getattr(model, var), port.buf
                if (kept is sent or not isinstance(kept, np.ndarray) or kept.shape != port.shape
                        or kept.dtype != port.dtype or not kept.flags.c_contiguous):
                    return None
                read[id(port)], written[id(port)] = (kept, sent), (sent, kept)
                for parity in (0, 1):  # after the step: the Var holds the sums, the port what it sent
                    plan.swaps[parity].append((vars(model), var, written[id(port)][parity], port,
                                               read[id(port)][parity]))
            else:
                for port in outs.values():
                    if port.lava_dl_buffer is not port.buf:
                        return None
                    read[id(port)] = written[id(port)] = (port.buf, port.buf)
        # the flags their writers may keep (an input with such a flag may be quiet: its receiver is guarded)
        keeps = [model for model in graph.order if getattr(model, "lava_dl_settled_plan", None) is not None
                 or getattr(model, "lava_dl_zero_on_quiet", False)]
        plan.may_quiet = {id(plan._flag(array)) for model in keeps for port in graph._ports[model][1].values()
                          for array in written[id(port)]}
        plan.calls = ([], [])
        for model in graph.order:
            ins, outs = graph._ports[model]
            for parity in (0, 1):
                received = {name: plan._received(graph, shim, read, parity) for name, shim in ins.items()}
                if any(value is None for value in received.values()):
                    return None
                inputs = {name: array for name, (array, _) in received.items()}
                quiet_inputs = tuple(flag for _, flag in received.values())
                outputs = {name: written[id(port)][parity] for name, port in outs.items()}
                calls = plan._model_calls(model, inputs, outputs, quiet_inputs)
                if calls is None:
                    return None
                plan.calls[parity].extend(calls)
        plan.exits = read[id(graph.exit)]
        plan.general = _general_steps(graph.order)
        if plan.general is None:
            return None
        for model in graph.order:
            if isinstance(model, _send_first()):
                model.__dict__["_lava_dl_zero"] = None  # its Var is not known to be zeros any more
        plan.changes = graph._changes[0]  # the models may have replaced arrays while answering
        plan._sync_flags()
        if graph.threads > 1 and len(plan.calls[0]) > 1:
            plan.timing = []  # its first steps time the calls, to decide whether to run them in lanes
        return plan

    def _flag(self, array: np.ndarray) -> np.ndarray:
        """The quiet flag of an array a port hands over (made at its first use)."""
        flag = self.flags.get(id(array))
        if flag is None:
            flag = self.flags[id(array)] = np.zeros(1, bool)
        return flag

    def _model_calls(self, model, inputs: dict, outputs: dict, quiet_inputs: tuple) -> list | None:
        """``model``'s calls for a step reading ``inputs`` and writing ``outputs``, keeping the quiet
        flags of its outputs where the model can (see the class docstring)."""
        quiet_outputs = {name: self._flag(array) for name, array in outputs.items()}
        settled_plan = getattr(model, "lava_dl_settled_plan", None)
        if settled_plan is not None:
            calls = settled_plan(inputs, outputs, quiet_inputs, quiet_outputs)
            if calls is not None:
                self.kept_flags.update(id(flag) for flag in quiet_outputs.values())
                return calls
        calls = model.lava_dl_plan(inputs, outputs)
        if calls and getattr(model, "lava_dl_zero_on_quiet", False):
            return self._guarded(quiet_inputs, [(outputs[name], quiet_outputs[name]) for name in outputs],
                                 calls)
        return calls

    def _guarded(self, quiet_inputs: tuple, outputs: list, calls: list) -> list:
        """``calls`` inside a :func:`_quiet_guard` where an input may be quiet (a flag some call keeps);
        as they are otherwise (their outputs' flags then stay False)."""
        if not any(id(flag) in self.may_quiet for flag in quiet_inputs):
            return calls
        for _, flag in outputs:
            self.kept_flags.add(id(flag))
            self.may_quiet.add(id(flag))
        return [(_quiet_guard, (tuple(quiet_inputs), tuple(outputs), list(calls)))]

    def _sync_flags(self) -> None:
        """Set the flags as the ports say (after the schedule is made, and after a general step): True
        for the array a quiet port holds where its writer keeps the flag, False everywhere else."""
        for flag in self.flags.values():
            flag[0] = False
        for model in self.graph.order:
            for port in self.graph._ports[model][1].values():
                flag = self.flags.get(id(port.buf))
                if port.quiet and flag is not None and id(flag) in self.kept_flags:
                    flag[0] = True
            if isinstance(model, _send_first()) and model.lava_dl_sent_var is not None:
                array = getattr(model, model.lava_dl_sent_var)  # zeros a general step made of quiet input
                flag = self.flags.get(id(array))
                zeroed = model.__dict__.get("_lava_dl_zero") is array
                if zeroed and flag is not None and id(flag) in self.kept_flags:
                    flag[0] = True

    def leave(self) -> None:
        """Before the general schedule runs a step: the static steps wrote the arrays without telling the
        ports or the synapses, so a port says quiet, and a synapse knows its Var to hold zeros
        (``_lava_dl_zero``, see :meth:`~lava_dl.lava_glue.SendFirstModel.receive_quiet`), only where the
        flag of the array says so."""
        for model in self.graph.order:
            for port in self.graph._ports[model][1].values():
                port.quiet = self._says_quiet(port.buf)
            if isinstance(model, _send_first()) and model.lava_dl_sent_var is not None:
                array = getattr(model, model.lava_dl_sent_var)
                model.__dict__["_lava_dl_zero"] = array if self._says_quiet(array) else None

    def _says_quiet(self, array) -> bool:
        flag = self.flags.get(id(array))
        return bool(flag is not None and id(flag) in self.kept_flags and flag[0])

    def _timed_calls(self, parity: int) -> None:
        """The calls of a step, each timed; after :data:`CALIBRATION_STEPS` such steps the schedule
        runs its independent calls in parallel lanes (:class:`_Lanes`) where that pays."""
        clock = time.perf_counter
        seconds = []
        for function, args in self.calls[parity]:
            start = clock()
            function(*args)
            seconds.append(clock() - start)
        self.timing.append(seconds)
        if len(self.timing) >= CALIBRATION_STEPS:
            costs = np.min(np.array(self.timing), axis=0)  # the least noisy estimate of each call
            self.timing = None
            self.lanes = _Lanes.make(self.calls, costs, self.graph)

    def follow(self) -> bool:
        """After a step of the general schedule: continue with the parity that reads what the synapses
        now send next (their Vars), or return False where a synapse's arrays are not the pair the
        schedule alternates (it sent a copy): the schedule must be made again."""
        if any(port.buf is not buf for port, buf in self.copied):
            return False
        parities = set()
        for attributes, name, kept, port, sent in self.swaps[0]:
            # after a step of parity 0 the Var holds ``kept`` and the port ``sent``; parity 1 reads ``kept``
            current = attributes[name]
            if current is kept and port.buf is sent:
                parities.add(1)
            elif current is sent and port.buf is kept:
                parities.add(0)
            else:
                return False
        if len(parities) > 1:
            return False
        if parities:
            self.parity = parities.pop()
        self._sync_flags()
        return True

    def _received(self, graph: LocalGraph, shim: _InPort, read: dict, parity: int) -> tuple | None:
        """``(array, flag)``: the array ``shim``'s model reads in a step of ``parity`` (see
        :meth:`_InPort.recv`), adding the calls that compute it where it is not a source's array itself,
        and its quiet flag; None where it cannot be made so."""
        if not shim.sources or not shim.view or np.dtype(shim.dtype).kind not in "iu":
            return None
        arrays, flags = [], []
        rows = max(graph.batch, 1)
        for source, transform in shim.sources:
            if source is graph._external:
                array, flag = self._entry(shim), self.never
            else:
                array = read[id(source)][parity]
                flag = self._flag(array)
            if array.dtype != shim.dtype:
                return None
            if transform is not None and transform.reshape_only:
                array = array.reshape(shim.shape)
            elif transform is not None and transform.gather is not None:  # elements moved
                moved, moved_flag = np.empty(shim.shape, array.dtype), np.zeros(1, bool)
                gather = (_gather_rows, (array.reshape(rows, -1), transform.gather.reshape(-1),
                                         moved.reshape(rows, -1)))
                self.calls[parity].extend(self._guarded((flag,), [(moved, moved_flag)], [gather]))
                array, flag = moved, moved_flag
            elif transform is not None:
                return None
            if array.shape != shim.shape:
                return None
            arrays.append(array)
            flags.append(flag)
        if len(arrays) == 1:
            return arrays[0], flags[0]
        total, total_flag = np.empty(shim.shape, shim.dtype), np.zeros(1, bool)  # summed in the port's dtype
        sums = [(np.add, (arrays[0], arrays[1], total))]
        sums += [(np.add, (total, array, total)) for array in arrays[2:]]
        self.calls[parity].extend(self._guarded(tuple(flags), [(total, total_flag)], sums))
        return total, total_flag

    def _entry(self, shim: _InPort) -> np.ndarray:
        """The array the network input is copied into for ``shim`` (an entry port)."""
        if id(shim) not in self.entries:
            self.entries[id(shim)] = np.zeros(shim.shape, shim.dtype)
        return self.entries[id(shim)]

    def takes(self, message) -> bool:
        """``message`` reaches the entry ports unchanged (the dtype and shape of their arrays)."""
        return all(isinstance(message, np.ndarray) and message.dtype == array.dtype
                   and message.shape == array.shape for array in self.entries.values())

    def step(self, message: np.ndarray) -> np.ndarray:
        parity = self.parity
        self.parity = parity ^ 1
        for attributes in self.clocked:
            attributes["time_step"] = self.graph.time_step
        for array in self.entries.values():
            array[...] = message
        for function, args in self.sends:
            function(*args)
        if self.lanes is not None:
            self.lanes.run(parity)
        elif self.timing is not None:
            self._timed_calls(parity)
        else:
            for function, args in self.calls[parity]:
                function(*args)
        for attributes, name, kept, port, sent in self.swaps[parity]:
            attributes[name] = kept
            port.buf = sent
        return self.exits[parity]


def _general_steps(models) -> list | None:
    """``mask[t % len(mask)]``: step ``t`` needs the general schedule (a model resets its states,
    see ``lava_dl_general_steps``); None where the pattern repeats only after more than 2**16 steps."""
    rules = set()
    for model in models:
        rule = getattr(model, "lava_dl_general_steps", None)
        rule = rule() if rule is not None else None
        if rule is not None:
            rules.add(rule)
    period = int(np.lcm.reduce([interval for interval, _ in rules])) if rules else 1
    if period > 1 << 16:
        return None
    mask = np.zeros(period, bool)
    for interval, phase in rules:
        mask[phase::interval] = True
    return mask.tolist()


def _out_shims(model) -> list:
    return [v for v in vars(model).values() if isinstance(v, _OutPort)]


def _send_first() -> type:
    from lava_dl.lava_glue import SendFirstModel

    return SendFirstModel


def _dense_port_classes() -> tuple:
    from lava.magma.core.model.py.ports import PyInPort, PyOutPort

    return (PyInPort.VEC_DENSE, PyOutPort.VEC_DENSE)


def _topological(models: list, feeds: dict) -> list:
    """``models`` ordered so that each comes after the models in ``feeds[model]`` (stable)."""
    order, done = [], set()
    pending = list(models)
    while pending:
        ready = [m for m in pending if feeds[m] <= done]
        if not ready:
            names = sorted(type(m).__name__ for m in pending)
            raise NotImplementedError(f"these processes feed each other within one step without a synapse "
                                      f"in between (a cycle): {names}")
        for m in ready:
            order.append(m)
            done.add(m)
        pending = [m for m in pending if m not in done]
    return order


# --------------------------------------------------------------------------
# Fused Network inside Lava
# --------------------------------------------------------------------------

def fuse_network(net) -> None:
    """Make ``net`` (a :class:`~lava_dl.proc.netx_blocks.Network` whose ``inp``/``out`` are not
    connected to its layers) a single leaf Process.

    Creates one Var of ``net`` per Var of every leaf process of its layers (aliased by the
    leaf's Var, so that ``get``/``set`` on the layer Vars reach it) and makes
    ``net.lava_dl_process_models()`` return its ProcessModels, one per tag of
    :data:`FUSED_TAGS` for which every leaf has a model. Must be called from the Network's
    ``__init__`` (Lava collects Vars at the end of it).
    """
    leaves = list(leaf_models(net.layers, FUSED_TAGS[0]))
    net.fused_vars = {}
    net._fused_leaves = leaves
    for i, proc in enumerate(leaves):
        for var in proc.vars:
            name = f"fused_{i:03d}_{var.name}"
            outer = Var(shape=var.shape, init=var.init, shareable=var.shareable, name=name)
            setattr(net, name, outer)
            var.aliased_var = outer
            net.fused_vars[(proc, var.name)] = outer
    net._fused_model_classes = None
    net.lava_dl_process_models = lambda: _fused_model_classes(net)


def _fused_model_classes(net) -> list[type]:
    if net._fused_model_classes is None:
        classes = []
        for select_tag in FUSED_TAGS:
            try:
                models = leaf_models(net.layers, select_tag)
            except Exception as error:  # a leaf without a model for this tag: no fused model for it
                if select_tag == FUSED_TAGS[0]:
                    raise
                net._fused_float_error = error
                continue
            classes.append(_make_fused_model(net, models, select_tag))
        net._fused_model_classes = classes
    return list(net._fused_model_classes)


def _make_fused_model(net, models: dict, select_tag: str) -> type:
    from lava.magma.core.decorator import implements, requires, tag
    from lava.magma.core.model.py.model import PyLoihiProcessModel
    from lava.magma.core.model.py.ports import PyInPort, PyOutPort
    from lava.magma.core.model.py.type import LavaPyType
    from lava.magma.core.resources import CPU
    from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

    leaves = net._fused_leaves
    if list(models) != leaves:
        raise RuntimeError("the fused network's leaf processes changed between model selections")
    _check_closed(leaves, net.layers)
    names = {(proc, var.name): f"fused_{i:03d}_{var.name}"
             for i, proc in enumerate(leaves) for var in proc.vars}
    entry_type = _entry_type(models, net.in_layer.inp)
    exit_src = net.out_layer.out.get_src_ports()[0]
    exit_type = getattr(models[exit_src.process], exit_src.name)
    namespace: dict = {
        "__module__": __name__,
        "__doc__": f"All layers of one netx Network stepped in one process ({select_tag} leaf models).",
        "inp": LavaPyType(PyInPort.VEC_DENSE, entry_type.d_type, precision=entry_type.precision),
        "out": LavaPyType(PyOutPort.VEC_DENSE, exit_type.d_type, precision=exit_type.precision),
    }
    for (proc, var_name), name in names.items():
        namespace[name] = getattr(models[proc], var_name)

    def graph(self) -> LocalGraph:
        if self._graph is None:
            arrays = {key: getattr(self, name) for key, name in names.items()}
            self._graph = LocalGraph(models, net.in_layer.inp, net.out_layer.out, arrays)
        return self._graph

    def __init__(self, proc_params):
        PyLoihiProcessModel.__init__(self, proc_params)
        self._graph = None

    def run_spk(self):
        message = self.inp.recv()
        lg = graph(self)
        lg.time_step = self.time_step - 1
        self.out.send(lg.step(message))

    def sync_from_layers(self):
        """Point the Network's Vars at the arrays the layer models use now (a model may replace
        a Var's array, e.g. Dense converting its weights at the first step)."""
        if self._graph is not None:
            for (proc, var_name), name in names.items():
                setattr(self, name, getattr(self._graph.instances[proc], var_name))

    def sync_to_layers(self):
        if self._graph is not None:
            for (proc, var_name), name in names.items():
                setattr(self._graph.instances[proc], var_name, getattr(self, name))

    def _get_var(self):
        sync_from_layers(self)
        PyLoihiProcessModel._get_var(self)

    def _set_var(self):
        sync_from_layers(self)
        PyLoihiProcessModel._set_var(self)
        sync_to_layers(self)

    def lava_dl_warm_up(cls, proc) -> None:
        runtime.warm_up_models(models.items())  # the layers' kernels, compiled before Lava forks
        warm_up_gathers(models)

    namespace.update(__init__=__init__, run_spk=run_spk, _get_var=_get_var, _set_var=_set_var,
                     lava_dl_fast_get=True, lava_dl_warm_up=classmethod(lava_dl_warm_up))
    suffix = "Fixed" if select_tag == "fixed_pt" else "Float"
    model = type(f"PyFusedNetworkModel{suffix}", (PyLoihiProcessModel,), namespace)
    model = implements(proc=type(net), protocol=LoihiProtocol)(model)
    return tag(select_tag)(requires(CPU)(model))


def _check_closed(leaves: list, layers: list) -> None:
    """Raise if a leaf port is connected to a process outside the fused network (that connection
    would not exist in the one fused process: a sink on a layer's ``out`` would record nothing).
    The layers' own unconnected ports (``inp`` of the first, ``out`` of the last) are the
    boundary."""
    inside = set(map(id, leaves)) | set(map(id, layers))
    for proc in leaves:
        _refuse_ref_ports(proc)
        for port in proc.out_ports:
            for dst in port.get_dst_ports():
                if id(dst.process) not in inside:
                    raise NotImplementedError(
                        f"{proc.name}.{port.name} is connected to {dst.process.name}.{dst.name} outside the "
                        f"fused network: a fused Network can only be connected through net.inp and net.out "
                        f"(build it with fused=False to probe its layers)")
        for port in proc.in_ports:
            for src in port.get_src_ports():
                if id(src.process) not in inside:
                    raise NotImplementedError(
                        f"{proc.name}.{port.name} receives from {src.process.name}.{src.name} outside the "
                        f"fused network: a fused Network can only be connected through net.inp and net.out")


def _refuse_ref_ports(proc) -> None:
    """Raise if a RefPort (a Monitor's probe, say) reads or writes Vars of the leaf ``proc``: the
    fused network steps it without Lava's ports, so there would be no one to answer."""
    for kind in ("ref_ports", "var_ports"):
        if len(getattr(proc, kind).members):
            raise NotImplementedError(
                f"{proc.name} ({type(proc).__name__}) has {kind} (a RefPort, such as a Monitor's probe, "
                f"reading or writing its Vars), which a fused network does not support: build the network "
                f"with fused=False to probe its layers, or read their Vars with get() between runs")


def _entry_type(models: dict, entry: InPort):
    """LavaPyType of the first leaf port the network input reaches."""
    dst = entry.get_dst_ports()
    if not dst:
        raise NotImplementedError(f"the network input {entry.process.name}.{entry.name} reaches no process")
    return getattr(models[dst[0].process], dst[0].name)


# --------------------------------------------------------------------------
# Simulation outside Lava
# --------------------------------------------------------------------------

def simulate(net_config, inputs, *, num_steps: int | None = None, select_tag: str = "fixed_pt",
             num_workers: int | None = None, group_size: int | None = None, **network_kwargs) -> np.ndarray:
    """Run a network file outside Lava and return what a ``RingBuffer`` sink on ``net.out`` records.

    The input is played as a ``lava.proc.io.source.RingBuffer(data=inputs)`` connected to
    ``net.inp`` plays it (step ``t`` sends ``inputs[..., (t - 1) % steps]``, cast to the
    source model's dtype: int32 for ``fixed_pt``), and the result equals, element for
    element and with the same timing, the ``data`` of a ``RingBuffer`` sink of ``num_steps``
    steps on ``net.out`` after ``net.run(RunSteps(num_steps), Loihi1SimCfg(select_tag=...))``:
    the same ProcessModels run here (see :class:`LocalGraph`). Each sample starts from the
    network's initial state, like a fresh Lava run.

    Parameters
    ----------
    net_config : str, path-like or lava_dl.netx.hdf5.Network
        The hdf5 file, or a Network built from one (then ``network_kwargs`` must be empty). Reading
        and checking a file takes most of a short call (about 35 of 43 ms for mnist.net and one
        16-step sample): a loop of calls on one network can build it once and pass it. A Network is
        not changed: it runs from its Vars' initial values (``init``). The input port its first layer
        reads must not be connected to another process (``net.inp``; a fused Network's own ports may
        be, as its layers are stepped here).
    inputs : array_like
        ``(*in_shape, steps)`` for one sample, or ``(batch, *in_shape, steps)``, with
        ``in_shape`` the shape of ``net.inp`` (Lava's ``(x, y, c)`` order).
    num_steps : int, optional
        Steps to run (default: ``steps``, the input's last axis; the input repeats beyond it).
    select_tag : {"fixed_pt", "floating_pt"}
        Which ProcessModels to run.
    num_workers : int, optional
        Processes that simulate the samples of a batch in parallel (default: the number of
        cores, at most the batch size; 1 runs them in this process). Each steps its share of
        the batch together (every model processes all its samples in one call; a model
        that cannot, such as lava-nc's own Processes, makes it run them one by one), in groups
        of ``group_size`` samples.
    group_size : int, optional
        Samples a worker steps together. Default: its whole share, unless one sample's state
        (Vars and messages) exceeds :data:`GROUP_STATE_BYTES`: then one at a time, since
        stepping several such samples together only adds cache misses (a pilotnet-sized LIF
        network runs about 2x faster so).
    **network_kwargs
        Arguments of :class:`lava_dl.netx.hdf5.Network` (``reset_interval``, ``input_shape``, ...).

    Returns
    -------
    numpy.ndarray
        ``(*out_shape, num_steps)`` or ``(batch, *out_shape, num_steps)``, in the sink
        model's dtype (int32 for ``fixed_pt``, float64 for ``floating_pt``; Lava's
        ``sink.data.get()`` returns the same values as float64).

    Raises
    ------
    ValueError
        If the input shape does not match the network, or ``num_steps < 1``.
    lava_dl.runtime.InputError
        (a ``ValueError``) If the input holds values that the Lava run would refuse (its input
        checks, :func:`lava_dl.runtime.set_input_checks`): NaN or infinity, and for ``fixed_pt``
        fractional values or values beyond int32. With the checks off they are cast as Lava's
        ``RingBuffer`` casts them.
    """
    from lava_dl.netx.hdf5 import Network

    if select_tag not in FUSED_TAGS:
        raise ValueError(f"select_tag must be one of {FUSED_TAGS}, got {select_tag!r}")
    if isinstance(net_config, Network):
        if network_kwargs:
            raise ValueError(f"simulate: the network arguments {sorted(network_kwargs)} apply to a file; "
                             f"net_config is a built Network (build it with them instead)")
        net = net_config
    else:
        net = Network(net_config, **network_kwargs)
    in_shape = tuple(net.inp.shape)
    data = np.asarray(inputs)
    if data.ndim == len(in_shape) + 1:
        batch, single = data[None], True
    elif data.ndim == len(in_shape) + 2:
        batch, single = data, False
    else:
        raise ValueError(f"inputs of shape {data.shape}: expected (*{in_shape}, steps) or "
                         f"(batch, *{in_shape}, steps)")
    if tuple(batch.shape[1:-1]) != in_shape:
        raise ValueError(f"inputs of shape {data.shape}: the sample shape {tuple(batch.shape[1:-1])} differs "
                         f"from the network input {in_shape}")
    source_dtype, sink_dtype = (np.int32, np.int32) if select_tag == "fixed_pt" else (np.float64, np.float64)
    # what the Lava run would refuse (the RingBuffer's Var, or the network's input port)
    runtime.check_cast(batch, source_dtype, "simulate: inputs")
    steps = batch.shape[-1] if num_steps is None else int(num_steps)
    if steps < 1 or batch.shape[-1] < 1:
        raise ValueError(f"num_steps and the input's time axis must be >= 1, got {steps} and "
                         f"{batch.shape[-1]}")
    source = np.empty(batch.shape, source_dtype)
    source[...] = batch
    if group_size is not None and int(group_size) < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    models = leaf_models(net.layers, select_tag)
    # a fused Network's own ports are not connected to its layers (its model steps them from the first
    # layer's input to the last layer's output, which it forwards)
    fused = hasattr(net, "_fused_leaves")
    entry, exit = (net.in_layer.inp, net.out_layer.out) if fused else (net.inp, net.out)
    sources = [f"{src.process.name}.{src.name}" for src in entry.get_src_ports()]
    if sources:
        raise ValueError(f"simulate: the network's input port receives from {', '.join(sources)}; simulate "
                         f"plays the inputs itself: pass a Network whose inp is not connected")
    job = _Job(models, entry, exit, steps, sink_dtype, group_size)
    if single:
        return job(source[0])
    workers = min(len(source), num_workers or os.cpu_count() or 1)
    if workers > 1:
        job.threads = 1  # the workers have the cores: no parallel lanes within them
    bounds = np.linspace(0, len(source), workers + 1).astype(int)
    if workers <= 1:
        return job.batch(source)
    # compiled once here and inherited by the forked workers, which would each load them from Numba's
    # cache at every call (about 0.25 s a call)
    runtime.warm_up_models(models.items())
    warm_up_gathers(models)
    global _JOB, _SOURCE
    _JOB, _SOURCE = job, source  # the forked workers read them from memory (no pickled copies)
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return np.concatenate(pool.map(_run_job, list(zip(bounds[:-1], bounds[1:]))))
    finally:
        _JOB = _SOURCE = None


#: Bytes of input frames :func:`simulate` makes contiguous at a time (a block of time steps).
FRAME_BLOCK_BYTES = 1 << 26


@jit
def _frames_of(rows, start, frames):
    """``frames[k] = rows[:, start + k]``: a block of time steps of a time-last input ``(R, T)``
    made time-major, 64 rows at a time (their runs of steps stay in cache while each frame's
    piece is written contiguously)."""
    count, width = frames.shape
    for r0 in range(0, width, 64):
        r1 = min(r0 + 64, width)
        for k in range(count):
            frame = frames[k]
            for r in range(r0, r1):
                frame[r] = rows[r, start + k]

#: Per-sample state (bytes of Vars and messages) above which a worker of :func:`simulate` steps its
#: samples one at a time by default (about the size of a core's L2 cache, and a bit more).
GROUP_STATE_BYTES = 3 << 20


class _Job:
    """Simulates one sample, or a batch of samples stepped together (fresh graphs each time)."""

    def __init__(self, models: dict, entry: InPort, exit: OutPort, steps: int, sink_dtype,
                 group_size: int | None = None) -> None:
        self.models, self.entry, self.exit = models, entry, exit
        self.steps, self.sink_dtype = steps, sink_dtype
        if group_size is None:
            group_size = 1 if _sample_state_bytes(models) > GROUP_STATE_BYTES else None
        self.group_size = group_size
        #: threads of each graph's static schedule (None: the default of LocalGraph)
        self.threads: int | None = None

    def __call__(self, source: np.ndarray, batch: int = 0) -> np.ndarray:
        """``source``: ``(*in_shape, T)``, or ``(batch, *in_shape, T)`` with ``batch > 0``."""
        graph = LocalGraph(self.models, self.entry, self.exit, batch=batch, threads=self.threads)
        lead = (batch,) if batch else ()
        zeros = np.zeros((*lead, *self.exit.shape), self.sink_dtype)
        records = np.empty((self.steps, *zeros.shape), self.sink_dtype)  # time-major: contiguous writes
        # The input is time-last: the frames of a block of steps (FRAME_BLOCK_BYTES, at least 16) are
        # made contiguous at once, reading runs of each input row (one frame at a time would read
        # one element per cache line).
        in_steps = source.shape[-1]
        rows = np.ascontiguousarray(source).reshape(-1, in_steps)
        block = max(16, FRAME_BLOCK_BYTES // max(1, rows.shape[0] * rows.itemsize))
        frames = np.empty((min(block, in_steps), rows.shape[0]), source.dtype)
        start, count = 0, 0
        try:
            for t in range(self.steps):
                k = t % in_steps
                if not start <= k < start + count:
                    start, count = k, min(len(frames), in_steps - k)
                    _frames_of(rows, start, frames[:count])
                message = frames[k - start].reshape(source.shape[:-1])
                np.add(zeros, graph.step(message), out=records[t], casting="unsafe")
        finally:
            graph.close()
        return np.ascontiguousarray(np.moveaxis(records, 0, -1))

    def batch(self, source: np.ndarray) -> np.ndarray:
        """A batch stepped in groups of :attr:`group_size` samples, or sample by sample if a model
        cannot step a batch."""
        group = len(source) if self.group_size is None else min(self.group_size, len(source))
        if group == 1:
            return np.stack([self(sample) for sample in source])
        try:
            return np.concatenate([self(source[i:i + group], batch=len(source[i:i + group]))
                                   for i in range(0, len(source), group)])
        except NotImplementedError as error:
            if "cannot step a batch" not in str(error):
                raise
            return np.stack([self(sample) for sample in source])


def _sample_state_bytes(models: dict) -> int:
    """Bytes one sample's state takes in a batch: its per-sample Vars and its messages (out port
    buffers), in the dtypes of the models."""
    def nbytes(cls, member) -> int:
        lava_type = getattr(cls, member.name, None)
        itemsize = np.dtype(getattr(lava_type, "d_type", np.int32)).itemsize
        return int(np.prod(member.shape, dtype=np.int64)) * itemsize

    total = 0
    for proc, cls in models.items():
        names = getattr(cls, "lava_dl_batch_vars", None) or ()
        total += sum(nbytes(cls, var) for var in proc.vars if var.name in names)
        total += sum(nbytes(cls, port) for port in proc.out_ports)
    return total


_JOB: _Job | None = None
_SOURCE: np.ndarray | None = None


def _run_job(bounds: tuple[int, int]) -> np.ndarray:
    return _JOB.batch(_SOURCE[bounds[0]:bounds[1]])
