"""A Lava runtime that reads fast, reports worker errors, and never hangs or leaks.

lava-nc 0.10's multiprocessing runtime is patched from here (Lava's files are not edited).
:func:`install` is called once by :mod:`lava_dl.lava_glue` (so by every ``lava_dl.proc`` /
``lava_dl.netx`` import) and is idempotent. The patches apply to every Lava process graph run
while ``lava_dl`` is imported, lava-nc's own processes included, and change no result.

Fast readout
------------
``Var.get()`` is fast: :meth:`Runtime.get_var` asks the ProcessModel to write the whole Var
into one shared-memory segment (created and unlinked by the host for this one read) instead of
sending it one element per message (about 16 µs per element). The result is what Lava's ``get``
returns: the same values, as ``float64``, in the Var's shape (Fortran order for synapse Var
models, as Lava), following ``Var.aliased_var``. :func:`read` and :func:`read_many` are the
documented entry points; :func:`lava_get` is Lava's original element-by-element ``get`` (kept for
comparison). A csr-matrix Var sends its stored values the same way (``Var.get`` places them at
the positions of the Var's ``init``, as Lava's does). String Vars, and models that override
``_get_var`` without opting in (class attribute ``lava_dl_fast_get = True``, which a model sets when
its override ends in ``PyLoihiProcessModel._get_var(self)``; lava_dl's own models qualify), take
Lava's path.

Errors and shutdown
-------------------
- A worker that raises (in ``run_spk`` or any phase) or dies makes ``run()`` / ``wait()`` raise
  :class:`ProcessError` within about 0.1 s (Lava deadlocks when the failing process is upstream of
  others, and otherwise raises ``RuntimeError("1 Exception(s) occurred. See output above")``
  with the error's text lost). The error names the exception type and text, the failing
  process (name, class, model and, inside a netx Network, the layer path such as
  ``layers[2].neuron``) and carries the worker's traceback. All workers are then ended, the
  shared memory released, and ``stop()`` returns at once.
- ``stop()`` never blocks: it waits at most :data:`STOP_TIMEOUT` seconds for the workers, then
  ends them. It also works for a runtime that was initialized but never run (Lava's hangs).
- ``with process:`` returns the process and stops its runtime on exit, exceptions included
  (``with netx.hdf5.Network(...) as net:``). Every Lava ``AbstractProcess`` gets this.
- At interpreter exit every runtime still running is stopped (before ``multiprocessing`` joins
  its children), so a script that forgets ``stop()`` exits cleanly; :func:`stop_all` does the
  same on demand.
- Ctrl-C (SIGINT) during ``run()`` ends the workers and re-raises ``KeyboardInterrupt``;
  workers ignore SIGINT themselves (the host ends them) and die with the host if it is killed
  (Linux ``PR_SET_PDEATHSIG``, for runtimes created in the main thread). The host starts the
  multiprocessing resource tracker before forking, so shared memory left by killed processes is
  reclaimed when they are gone.
- Lava's global ``ProcessServer`` / ``VarServer`` registries (which otherwise keep every
  process and Var ever built) hold weak references, so a stopped network is freed once the user
  drops it, and Lava's per-process console log handler is added to the root logger once instead
  of once per process.

Input checks
------------
A Var whose initial value the ProcessModel's declared dtype would mangle (NaN or infinity; for an
integer type, fractional values or values outside the type), such as a ``RingBuffer`` holding NaN
whose fixed-point model casts it to ``-2**31``, raises :class:`InputError` when the runtime is
initialized (before any worker starts); ``Var.set()`` checks the same, and refuses a sparse matrix
whose stored positions differ from the Var's (Lava's own check fails there with a numpy broadcast
error, or not at all where only the positions differ). An InPort of a lava_dl
ProcessModel (module ``process_models.*`` or ``lava_dl.*``) that receives
a message Lava would silently mangle raises :class:`InputError` (a ``ValueError``) in the
worker, so ``run()`` raises :class:`ProcessError` naming the port: NaN or infinity, and, for an
integer (fixed-point) port receiving floats or wider integers, non-integral values or values
outside the port's integer type (which Lava's casts would truncate or wrap). Messages already of
the port's dtype (every lava_dl-to-lava_dl connection) are not inspected, so the check costs
nothing there.

:func:`set_input_checks` turns these checks off (for the process, or in a ``with`` block around
the ``run()`` that starts the runtime and the ``set()`` calls), for code written against Lava's
silent casts: lava-dl 0.6's own ``test_recurrent_netx_save_and_load``, for instance, plays
``0.2 * 1024`` through a fixed-point ``RingBuffer`` and relies on its truncation to 204.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
import time
import traceback
import typing as ty
import weakref
from queue import Empty

import numpy as np

from lava_dl.core.switch import Restore, Switch

__all__ = ["ProcessError", "InputError", "set_input_checks", "input_checks_enabled", "check_cast", "read",
           "read_many", "lava_get", "stop_all", "live_runtimes", "install", "warm_up_models",
           "STOP_TIMEOUT"]

STOP_TIMEOUT = 10.0
"""Seconds ``stop()`` waits for the workers to acknowledge before ending them."""

POLL_INTERVAL = 0.1
"""Seconds between liveness checks of the workers while the host waits for them."""

ERROR_GRACE = 5.0
"""Seconds the host waits for a failing worker to deliver its traceback."""


class ProcessError(RuntimeError):
    """A Lava worker (ProcessModel or runtime service) failed.

    Attributes
    ----------
    exc_type : str
        Qualified name of the original exception's type (``"ValueError"``), or ``""``.
    exc_text : str
        ``str()`` of the original exception.
    process : str
        The failing process: name, class and model (``"'Process_7' (Dense, model PyDenseModelFixed)"``).
    layer : str
        Where the process sits in its parents (``"Network 'net' > layers[2].neuron"``), or ``""``.
    worker_traceback : str
        The traceback text from the worker.
    original : BaseException or None
        The original exception object when it could be transferred (also ``__cause__``).
    """

    def __init__(self, message: str, *, exc_type: str = "", exc_text: str = "", process: str = "",
                 layer: str = "", worker_traceback: str = "", original: BaseException | None = None):
        super().__init__(message)
        self.exc_type = exc_type
        self.exc_text = exc_text
        self.process = process
        self.layer = layer
        self.worker_traceback = worker_traceback
        self.original = original


class InputError(ValueError):
    """A lava_dl ProcessModel received a message that Lava would silently mangle."""


class _RemoteError(Exception):
    """Stand-in for a worker exception that cannot be pickled (carries its type name and text)."""

    def __init__(self, type_name: str, text: str):
        super().__init__(type_name, text)
        self.type_name = type_name
        self.text = text

    def __str__(self) -> str:
        return self.text


# --------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------

_INSTALLED = False
_LIVE: set = set()  # runtimes initialized and not yet torn down (strong refs: their workers live)
_LOCK = threading.RLock()
_LOCAL = threading.local()  # .slow: use Lava's own get_var
_DEATHSIG = False  # set in the host right before forking; read in the forked worker
_ORIG: dict[str, ty.Any] = {}
_TOKEN = [int.from_bytes(os.urandom(2), "little")]

_FAST_MAGIC = 7.0e15 + 4321.0  # first item of a fast-get reply (exact in float64)
_FAST_OK, _FAST_UNSUPPORTED, _FAST_FAILED = 0.0, 1.0, 2.0
_ID_BITS = 2.0 ** 32
_TOKEN_LIMIT = 1 << 20


def _encode(var_id: int, token: int) -> float:
    """Fast-get request id: negative (Lava's ids are >= 0), exact in float64."""
    return -(1.0 + var_id + token * _ID_BITS)


def _decode(raw: float) -> tuple[int, int]:
    x = int(-raw) - 1
    return x % int(_ID_BITS), x // int(_ID_BITS)


def _shm_name(token: int) -> str:
    """Name of the host's segment for one fast read (the worker derives it from its parent's pid)."""
    return f"ldlrd_{os.getpid()}_{token}"


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------

def read(var) -> ty.Any:
    """Value of a Lava ``Var`` after (or between) runs, fast.

    Equal to Lava's ``var.get()`` (same values, ``float64``, shape and aliasing), but the data
    crosses from the worker in one shared-memory copy instead of one message per element.

    Parameters
    ----------
    var : lava.magma.core.process.variable.Var
        The Var (an aliasing Var is followed to the Var it aliases, as Lava's ``get`` does).

    Returns
    -------
    numpy.ndarray
        As ``var.get()``; the Var's ``init`` when no runtime exists.
    """
    return var.get()


def read_many(variables: ty.Iterable) -> list:
    """:func:`read` of several Vars, in order (one shared-memory copy each)."""
    return [read(v) for v in variables]


def lava_get(var, idx=None) -> ty.Any:
    """Lava's original ``Var.get`` (one message per element), for comparison with :func:`read`."""
    previous = getattr(_LOCAL, "slow", False)
    _LOCAL.slow = True
    try:
        return var.get(idx)
    finally:
        _LOCAL.slow = previous


def live_runtimes() -> list:
    """Runtimes whose workers are running (initialized and not yet stopped)."""
    with _LOCK:
        return list(_LIVE)


def stop_all(timeout: float | None = None) -> int:
    """Stop every live runtime (never blocks longer than ``timeout`` per runtime).

    Returns the number of runtimes stopped. Registered to run at interpreter exit.
    """
    count = 0
    for runtime in live_runtimes():
        try:
            _stop(runtime, STOP_TIMEOUT if timeout is None else timeout)
        except BaseException:  # noqa: BLE001 - exit path: end the workers whatever happened
            _teardown(runtime, graceful=False)
        count += 1
    return count


# --------------------------------------------------------------------------
# Describing processes
# --------------------------------------------------------------------------

def _role_in_parent(proc, parent) -> str:
    layers = getattr(parent, "layers", None)
    if isinstance(layers, (list, tuple)):
        for i, layer in enumerate(layers):
            if layer is proc:
                return f"layers[{i}]"
    for key, value in vars(parent).items():
        if value is proc and not key.startswith("_"):
            return key
        if isinstance(value, dict) and not key.startswith("_"):
            for k, v in value.items():
                if v is proc:
                    return f"{key}[{k!r}]"
    return f"{type(proc).__name__} '{proc.name}'"


def _owner(proc):
    """A process holding ``proc`` as a public attribute, in a list or in a dict (netx blocks do
    not register their neurons and synapses, nor a Network its blocks, as sub-processes), or None."""
    from lava.magma.core.process.process import ProcessServer

    for candidate in ProcessServer().processes:
        if candidate is proc:
            continue
        for key, value in vars(candidate).items():
            if key.startswith("_") or key == "parent_proc":
                continue
            if value is proc:
                return candidate
            if isinstance(value, (list, tuple)) and any(v is proc for v in value):
                return candidate
            if isinstance(value, dict) and any(v is proc for v in value.values()):
                return candidate
    return None


def _layer_path(proc) -> str:
    """``"Network 'net' > layers[2].neuron"`` for a leaf inside hierarchical processes, else ``""``."""
    parts = []
    node = proc
    parent = getattr(node, "parent_proc", None) or _owner(node)
    if parent is None:
        return ""
    seen = {id(proc)}
    while parent is not None and id(parent) not in seen and len(parts) < 32:
        seen.add(id(parent))
        parts.append(_role_in_parent(node, parent))
        node, parent = parent, getattr(parent, "parent_proc", None) or _owner(parent)
    return f"{type(node).__name__} '{node.name}' > " + ".".join(reversed(parts))


def _describe(runtime, index: int) -> tuple[str, str]:
    procs = getattr(runtime, "_lava_dl_actor_procs", [])
    if index < len(procs):
        proc, model = procs[index]
        return (f"'{proc.name}' ({type(proc).__name__}, model {getattr(model, '__name__', model)})",
                _layer_path(proc))
    return f"runtime service #{index - len(procs)}", ""


# --------------------------------------------------------------------------
# Waiting on the workers
# --------------------------------------------------------------------------

def _actors(runtime) -> list:
    infra = getattr(runtime, "_messaging_infrastructure", None)
    return list(getattr(infra, "actors", []) or [])


def _exitcode(actor) -> int | None:
    try:
        return actor.exitcode
    except ValueError:  # closed: Lava joined it
        return 0


def _failure(runtime) -> tuple[int, ty.Any] | None:
    """The first actor that reported an exception, else the first that died with a nonzero exit
    code: ``(index, (exc, tb))`` or ``(index, exitcode)``; None if none failed."""
    died = None
    for i, actor in enumerate(_actors(runtime)):
        try:
            report = actor.exception
        except (OSError, EOFError, ValueError):
            report = None
        if report is not None:
            return i, report
        code = _exitcode(actor)
        if code and died is None:
            died = (i, code)
    return died


def _collect(runtime, wait: float) -> tuple[int, ty.Any] | None:
    """The failure report, waiting up to ``wait`` s for a worker to deliver its exception."""
    deadline = time.monotonic() + wait
    while True:
        found = _failure(runtime)
        if (found is not None and isinstance(found[1], tuple)) or time.monotonic() >= deadline:
            return found
        time.sleep(0.02)


def _raise_failure(runtime, found, context: str) -> ty.NoReturn:
    """Tear the runtime down and raise :class:`ProcessError` for ``found``."""
    _teardown(runtime, graceful=False)
    if found is None:
        raise ProcessError(f"Lava runtime failed during {context}; no worker reported an error")
    index, report = found
    process, layer = _describe(runtime, index)
    where = f"{process}" + (f", layer {layer}" if layer else "")
    original = None
    if isinstance(report, tuple):
        exc, tb = report
        if isinstance(exc, _RemoteError):
            exc_type, text = exc.type_name, exc.text
        else:
            exc_type, text, original = type(exc).__qualname__, str(exc), exc
        message = f"{exc_type}: {text}\n  raised in {where} during {context}\n\nWorker traceback:\n{tb}"
        error = ProcessError(message, exc_type=exc_type, exc_text=text, process=process, layer=layer,
                             worker_traceback=tb, original=original)
    else:
        how = f"was killed by signal {-report}" if report < 0 else f"exited with code {report}"
        message = f"Lava worker {where} {how} during {context} (no exception was reported)"
        error = ProcessError(message, process=process, layer=layer)
    runtime._lava_dl_error = error
    if original is not None:
        raise error from original
    raise error


def _recv(runtime, port, context: str, timeout: float | None = None):
    """``port.recv()`` that notices dead workers (and gives up after ``timeout`` s)."""
    from lava.magma.compiler.channels.pypychannel import CspRecvPort

    if not isinstance(port, CspRecvPort) or getattr(port, "_queue", None) is None:
        return port.recv()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            port._queue.get(timeout=POLL_INTERVAL, peek=True)
            return port.recv()
        except Empty:
            pass
        found = _failure(runtime)
        if found is not None:
            _raise_failure(runtime, _collect(runtime, ERROR_GRACE), context)
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"Lava runtime did not answer within {timeout} s during {context}")


# --------------------------------------------------------------------------
# Teardown
# --------------------------------------------------------------------------

def _end_actors(actors: list, timeout: float) -> None:
    import multiprocessing as mp

    deadline = time.monotonic() + timeout
    for actor in actors:
        try:
            mp.Process.join(actor, max(0.0, deadline - time.monotonic()))
        except (ValueError, AssertionError):
            continue
    for actor in actors:
        try:
            if actor.is_alive():
                actor.terminate()
        except (ValueError, AssertionError):
            continue
    for actor in actors:
        try:
            mp.Process.join(actor, 2.0)
            if actor.is_alive():
                actor.kill()
                mp.Process.join(actor, 2.0)
        except (ValueError, AssertionError):
            continue
    for actor in actors:
        for conn in (getattr(actor, "_pconn", None), getattr(actor, "_cconn", None)):
            try:
                if conn is not None:
                    conn.close()
            except OSError:
                pass
        try:
            actor._is_done = True
            actor.close()
        except (ValueError, AttributeError):
            pass


def _teardown(runtime, graceful: bool, timeout: float = 0.0) -> None:
    """End the workers (waiting ``timeout`` s for them when ``graceful``) and free everything."""
    with _LOCK:
        if getattr(runtime, "_lava_dl_closed", False):
            return
        runtime._lava_dl_closed = True
        _LIVE.discard(runtime)
    _end_actors(_actors(runtime), timeout if graceful else 0.0)
    try:
        for port in list(getattr(runtime, "_open_ports", [])):
            try:
                port.join()
            except Exception:  # noqa: BLE001 - best effort: the peers are gone
                pass
        runtime._open_ports.clear()
    except AttributeError:
        pass
    infra = getattr(runtime, "_messaging_infrastructure", None)
    smm = getattr(infra, "smm", None)
    if smm is not None:
        try:
            smm.shutdown()
        except Exception:  # noqa: BLE001
            pass
    watchdog = getattr(runtime, "_watchdog_manager", None)
    if watchdog is not None:
        try:
            watchdog.stop()
        except Exception:  # noqa: BLE001
            pass
    runtime._is_running = False
    runtime._is_started = False
    runtime._is_initialized = False


class _WeakList:
    """A list of weak references that reads like the list of the referents still alive.

    Replaces the lists of Lava's ``ProcessServer`` / ``VarServer`` singletons, which otherwise
    keep every Process and Var ever created (ids keep coming from their counters).
    """

    def __init__(self, items: ty.Iterable = ()):
        self._refs = [weakref.ref(x) for x in items]

    def append(self, item) -> None:
        if len(self._refs) > 64 and len(self._refs) & (len(self._refs) - 1) == 0:
            self._prune()
        self._refs.append(weakref.ref(item))

    def _prune(self) -> None:
        self._refs = [r for r in self._refs if r() is not None]

    def _live(self) -> list:
        return [x for x in (r() for r in self._refs) if x is not None]

    def __iter__(self):
        return iter(self._live())

    def __len__(self) -> int:
        return len(self._live())

    def __getitem__(self, index):
        return self._live()[index]

    def __contains__(self, item) -> bool:
        return any(r() is item for r in self._refs)


def _weak_register(kind: str):
    """``ProcessServer.register`` / ``VarServer.register`` keeping weak references only."""

    def register(self, obj) -> int:
        attr = "processes" if kind == "process" else "vars"
        original = _ORIG[f"{kind}_register"]
        registry = getattr(self, attr)
        if not isinstance(registry, _WeakList):
            registry = _WeakList(registry)
        setattr(self, attr, [])
        try:
            return original(self, obj)  # Lava's checks and id
        finally:
            setattr(self, attr, registry)
            registry.append(obj)

    return register


def _stop(runtime, timeout: float = STOP_TIMEOUT) -> None:
    """Stop ``runtime``: Lava's STOP handshake with a time limit, then end whatever is left."""
    from lava.magma.runtime.mgmt_token_enums import MGMT_COMMAND, MGMT_RESPONSE, enum_equal

    if getattr(runtime, "_lava_dl_closed", False):
        return
    if runtime not in _LIVE:  # never initialized by us (or initialization failed)
        _teardown(runtime, graceful=False)
        return
    try:
        deadline = time.monotonic() + timeout
        for port in runtime.runtime_to_service:
            port.send(MGMT_COMMAND.STOP)
        for port in runtime.service_to_runtime:
            data = _recv(runtime, port, "stop()", max(0.1, deadline - time.monotonic()))
            if not enum_equal(data, MGMT_RESPONSE.TERMINATED):
                # a response to an earlier request (e.g. REQ_PAUSE) may come first
                data = _recv(runtime, port, "stop()", max(0.1, deadline - time.monotonic()))
                if not enum_equal(data, MGMT_RESPONSE.TERMINATED):
                    raise RuntimeError(f"Runtime Received {data}")
    except ProcessError:
        raise
    except BaseException:
        _teardown(runtime, graceful=False)
        raise
    _teardown(runtime, graceful=True, timeout=max(0.5, deadline - time.monotonic()))


# --------------------------------------------------------------------------
# Patched Runtime methods
# --------------------------------------------------------------------------

def _initialize(self, node_cfg_idx: int = 0):
    global _DEATHSIG
    from multiprocessing import resource_tracker

    from lava.magma.compiler.builders.py_builder import PyProcessBuilder

    resource_tracker.ensure_running()  # forked workers share it: it reclaims shm of killed processes
    _DEATHSIG = threading.current_thread() is threading.main_thread() and sys.platform.startswith("linux")
    _HOST_PID_AT_FORK[0] = os.getpid()
    builders = getattr(self._executable, "proc_builders", {}) or {}
    self._lava_dl_actor_procs = [(proc, getattr(b, "proc_model", None)) for proc, b in builders.items()
                                 if isinstance(b, PyProcessBuilder)]
    self._lava_dl_models = {proc.id: getattr(b, "proc_model", None) for proc, b in builders.items()}
    self._lava_dl_builders = {proc.id: b for proc, b in builders.items() if isinstance(b, PyProcessBuilder)}
    try:
        if _INPUT_CHECKS.enabled:
            _check_var_inits(self)  # before forking: Lava would cast silently in the workers
    except InputError as error:
        self._lava_dl_closed = True
        self._lava_dl_error = error
        raise
    self._lava_dl_closed = False
    self._lava_dl_error = None
    warm_up_models(self._lava_dl_actor_procs)
    with _LOCK:
        _LIVE.add(self)
    try:
        _ORIG["initialize"](self, node_cfg_idx)
    except BaseException:
        _teardown(self, graceful=False)
        raise


def warm_up_models(pairs: ty.Iterable[tuple[ty.Any, type | None]]) -> None:
    """Compile (or load from Numba's cache), in this process, the kernels the models will call.

    ``pairs`` are ``(Process, ProcessModel class)``; a model class takes part by defining the
    classmethod ``lava_dl_warm_up(proc)``, which calls its kernels with the argument types its steps
    will use. Called for a Lava graph in the host just before Lava forks its workers, which then
    inherit the compiled code instead of each compiling (or loading) it at its first step; only the
    kernels of the models in the graph are compiled, for the run config's tag.
    """
    for proc, model in pairs:
        hook = getattr(model, "lava_dl_warm_up", None)
        if hook is None:
            continue
        try:
            hook(proc)
        except Exception as error:  # noqa: BLE001  (the model meets the same error at its first step,
            # where the runtime reports it with the layer's name; compiling ahead only saves time)
            logging.getLogger(__name__).debug("warm-up of %s for %s skipped: %r", model.__name__,
                                              getattr(proc, "name", proc), error)


def _check_usable(self, what: str) -> None:
    error = getattr(self, "_lava_dl_error", None)
    if isinstance(error, ProcessError):
        raise ProcessError(f"cannot {what}: this Lava runtime was stopped after a worker error:\n{error}")
    if error is not None:
        raise RuntimeError(f"cannot {what}: this Lava runtime failed to start: {error}")
    if getattr(self, "_lava_dl_closed", False):
        raise RuntimeError(f"cannot {what}: this Lava runtime has been stopped")


def _start(self, run_condition):
    _check_usable(self, "run")
    try:
        return _ORIG["start"](self, run_condition)
    except KeyboardInterrupt:
        _teardown(self, graceful=False)
        raise


def _get_resp_for_run(self):
    from lava.magma.runtime.mgmt_token_enums import MGMT_RESPONSE, enum_equal

    if not self._is_running:
        return
    try:
        for port in self.service_to_runtime:
            data = _recv(self, port, "run()")
            if enum_equal(data, MGMT_RESPONSE.REQ_PAUSE):
                self.pause()
                return
            if enum_equal(data, MGMT_RESPONSE.REQ_STOP):
                self.stop()
                return
            if enum_equal(data, MGMT_RESPONSE.ERROR):
                _raise_failure(self, _collect(self, ERROR_GRACE), "run()")
            if not enum_equal(data, MGMT_RESPONSE.DONE):
                raise RuntimeError(f"Runtime Received {data}")
        self._is_running = False
    except KeyboardInterrupt:
        _teardown(self, graceful=False)
        raise


def _wait(self):
    _check_usable(self, "wait")
    return _get_resp_for_run(self)


def _runtime_stop(self):
    """Lava's ``Runtime.stop`` that never blocks (see :func:`_stop`); a no-op once stopped."""
    if getattr(self, "_lava_dl_closed", True):  # stopped, or never initialized
        return
    _stop(self, STOP_TIMEOUT)


def _runtime_del(self):
    try:
        if not getattr(self, "_lava_dl_closed", True):
            _stop(self, STOP_TIMEOUT)
    except BaseException:  # noqa: BLE001 - never raise from a finalizer
        pass


def _get_var(self, var_id: int, idx=None):
    """Lava's ``Runtime.get_var`` with the whole array copied through shared memory."""
    from multiprocessing.shared_memory import SharedMemory

    from lava.magma.compiler.var_model import LoihiSynapseVarModel
    from lava.magma.core.process.variable import VarServer
    from lava.magma.runtime.mgmt_token_enums import MGMT_COMMAND, enum_to_np
    from scipy.sparse import csr_matrix

    original = _ORIG["get_var"]
    if getattr(_LOCAL, "slow", False) or self._is_running or not self._is_started:
        return original(self, var_id, idx)
    _check_usable(self, "get a Var")
    ev = self._executable.node_configs[0].var_models.get(var_id)
    if ev is None or ev.dtype is str or not hasattr(ev, "shape"):
        return original(self, var_id, idx)
    model = getattr(self, "_lava_dl_models", {}).get(ev.proc_id)
    if not _fast_get_supported(model):
        return original(self, var_id, idx)
    sparse = ev.dtype is csr_matrix
    if sparse:  # the stored values, in Lava's order (find); Var.get puts them at the init's positions
        var = next((v for v in VarServer().vars if v.id == var_id), None)
        if var is None or not isinstance(var.init, csr_matrix):
            return original(self, var_id, idx)
        capacity = int(var.init.nnz)
    else:
        capacity = int(np.prod(ev.shape))
    with _LOCK:
        _TOKEN[0] = (_TOKEN[0] + 1) % _TOKEN_LIMIT
        token = _TOKEN[0]
    try:
        shm = SharedMemory(name=_shm_name(token), create=True, size=max(8, 8 * capacity))
    except OSError:
        return original(self, var_id, idx)
    try:
        rs = ev.runtime_srv_id
        req = self.runtime_to_service[rs]
        req.send(MGMT_COMMAND.GET_DATA)
        req.send(enum_to_np(ev.proc_id))
        req.send(enum_to_np(_encode(var_id, token)))
        rsp = self.service_to_runtime[rs]
        n = int(_recv(self, rsp, "Var.get()")[0])
        items = [float(_recv(self, rsp, "Var.get()")[0]) for _ in range(n)]
        if n < 3 or items[0] != _FAST_MAGIC:
            raise RuntimeError(f"unexpected reply to a fast Var.get: {items}")
        status, count = items[1], int(items[2])
        if status != _FAST_OK or count > capacity:
            buffer = None
        else:
            view = np.frombuffer(shm.buf, dtype=np.float64, count=count if sparse else capacity)
            buffer = view.copy()
            del view
    finally:
        shm.close()
        shm.unlink()
    if buffer is None:
        return original(self, var_id, idx)
    if sparse:  # as Lava's get_var returns a sparse Var's values
        return buffer[idx] if idx else buffer
    order = "F" if isinstance(ev, LoihiSynapseVarModel) else "C"
    buffer = buffer.reshape(ev.shape, order=order)
    if idx:
        return buffer[idx]
    return buffer


def _fast_get_supported(model) -> bool:
    if model is None:
        return False
    if getattr(model, "lava_dl_fast_get", False):
        return True
    try:
        from lava.magma.core.model.py.model import AbstractPyProcessModel
    except ImportError:
        return False
    if not isinstance(model, type) or not issubclass(model, AbstractPyProcessModel):
        return False
    if getattr(model, "_get_var", None) is _model_get_var:
        return True
    # lava_dl's own models (the fused Network) override _get_var and end in the base one
    module = getattr(model, "__module__", "") or ""
    return module.startswith(("lava_dl.", "process_models."))


# --------------------------------------------------------------------------
# Patched ProcessModel / worker side
# --------------------------------------------------------------------------

def _model_get_var(self):
    """``_get_var`` of every Python ProcessModel: Lava's, or a fast reply to a fast request."""
    port = self.service_to_process
    try:
        head = float(port.peek()[0])
    except Exception:  # noqa: BLE001 - not a Csp port: Lava's path
        head = 0.0
    if head >= 0:
        return _ORIG["model_get_var"](self)
    from lava.magma.runtime.mgmt_token_enums import enum_to_np

    var_id, token = _decode(float(port.recv()[0]))
    status, count = _FAST_OK, 0
    try:
        var = getattr(self, self.var_id_to_var_map[var_id])
        if isinstance(var, (int, np.int32)):
            values = np.array([var], dtype=np.float64)
        elif isinstance(var, np.ndarray):
            values = var
        elif type(var).__name__ == "csr_matrix":  # the values Lava's _get_var sends, in its order
            from lava.utils.sparse import find

            values = find(var, explicit_zeros=True)[2]
        else:
            values = None
            status = _FAST_UNSUPPORTED
        if values is not None:
            count = int(values.size)
            _write_shm(_shm_name_for_host(token), values)
    except Exception:  # noqa: BLE001 - the host falls back to Lava's path
        status = _FAST_FAILED
    out = self.process_to_service
    out.send(enum_to_np(3))
    out.send(enum_to_np(_FAST_MAGIC))
    out.send(enum_to_np(status))
    out.send(enum_to_np(count))


def _shm_name_for_host(token: int) -> str:
    return f"ldlrd_{os.getppid()}_{token}"


def _write_shm(name: str, values: np.ndarray) -> None:
    """Copy ``values`` (C order, as float64) into the host's segment ``name`` (no tracking)."""
    import _posixshmem
    import mmap

    fd = _posixshmem.shm_open("/" + name, os.O_RDWR, mode=0o600)
    try:
        size = os.fstat(fd).st_size
        mm = mmap.mmap(fd, size)
    finally:
        os.close(fd)
    try:
        dst = np.frombuffer(mm, dtype=np.float64, count=min(size // 8, values.size))
        flat = np.ravel(values, order="C")
        dst[...] = flat[: dst.size]
        del dst
    finally:
        mm.close()


def _system_process_run(self):
    """Lava's ``SystemProcess.run`` that always reports a picklable (exception, traceback)."""
    import multiprocessing as mp
    import pickle

    try:
        mp.Process.run(self)
        self._cconn.send(None)
    except BaseException as exc:  # noqa: BLE001 - report everything to the host
        tb = traceback.format_exc()
        try:
            pickle.loads(pickle.dumps(exc))
            report = (exc, tb)
        except Exception:  # noqa: BLE001
            report = (_RemoteError(type(exc).__qualname__, str(exc)), tb)
        try:
            self._cconn.send(report)
        except Exception:  # noqa: BLE001
            self._cconn.send((_RemoteError(type(exc).__qualname__, str(exc)), tb))
        if not isinstance(exc, Exception):
            raise


def _target_fn(*args, **kwargs):
    """Lava's worker entry, after making the worker ignore SIGINT and die with the host."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _DEATHSIG:
        _set_deathsig(_HOST_PID_AT_FORK[0])
    return _ORIG["target_fn"](*args, **kwargs)


_HOST_PID_AT_FORK = [os.getpid()]


def _set_deathsig(parent: int) -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    except Exception:  # noqa: BLE001 - not Linux / no libc: nothing to do
        return
    if os.getppid() != parent:  # the host died before prctl
        os._exit(1)


def _smm_start(self) -> None:
    """Lava's SharedMemoryManager.start, with the manager process dying with the host."""
    if _DEATHSIG:
        self._manager.start(initializer=_manager_init, initargs=(os.getpid(),))
    else:
        self._manager.start()


def _manager_init(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)
    except Exception:  # noqa: BLE001
        return
    if os.getppid() != parent:
        os._exit(1)


# --------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------

_INPUT_CHECKS = Switch()


def set_input_checks(enabled: bool) -> Restore:
    """Turn the runtime's checks of values Lava would silently mangle (Var values when the runtime
    starts, ``Var.set()``, messages reaching lava_dl's models) on or off.

    Called as a function it sets the switch for the process; used in a ``with`` statement it
    restores the previous setting on exit. Workers take the setting in force when the runtime
    starts them.

    Parameters
    ----------
    enabled : bool
        ``False``: Lava's own behaviour (casts that truncate, wrap or turn NaN into garbage).

    Returns
    -------
    lava_dl.core.switch.Restore
        Restores the previous setting when used as a context manager.
    """
    return _INPUT_CHECKS.set(enabled)


def input_checks_enabled() -> bool:
    """Whether the runtime's input checks are on (see :func:`set_input_checks`)."""
    return _INPUT_CHECKS.enabled


def check_cast(data, dtype, what: str) -> None:
    """Raise :class:`InputError` if casting ``data`` to ``dtype``, as Lava does silently, would change
    it (NaN or infinity; for an integer type, fractional values or values outside the type), unless the
    input checks are off (:func:`set_input_checks`).

    Parameters
    ----------
    data : array_like
        Values about to be cast.
    dtype : numpy dtype
        The type Lava would cast them to.
    what : str
        What ``data`` is, for the message (e.g. ``"simulate: inputs"``).
    """
    data, dtype = np.asarray(data), np.dtype(dtype)
    if _INPUT_CHECKS.enabled and not (data.dtype == dtype and dtype.kind in "iub"):
        reason = _mangled(data, dtype)
        if reason is not None:
            raise InputError(f"{what} hold {reason}")


def _checked_recv(self):
    """First ``recv`` of an InPort: binds the port's own ``recv`` (Lava's, or Lava's followed by
    the check for a lava_dl model's port) so later calls skip this dispatch."""
    check = _port_check(self)
    original = _ORIG["recv"]
    if check is False:
        bound = original.__get__(self)
    else:
        def bound(_recv=original, _port=self, _check=check):
            data = _recv(_port)
            if (data.dtype != _check or _check.kind == "f") and not _intact(data, _check):
                _refuse(_port, data, _check)
            return data
    try:
        self.recv = bound
    except AttributeError:
        pass
    return bound()


def _refuse(port, data: np.ndarray, declared: np.dtype) -> None:
    reason = _mangled(data, declared)
    if reason is not None:
        model = port._process_model
        name = next((k for k, v in vars(model).items() if v is port), "?")
        raise InputError(f"input port '{name}' of {type(model).__name__} received {reason}")


def _port_check(port):
    """The port's declared dtype if its model is lava_dl's and the checks are on (the check applies),
    else False."""
    if not _INPUT_CHECKS.enabled:
        return False
    model = getattr(port, "_process_model", None)
    module = getattr(type(model), "__module__", "") or ""
    if not module.startswith(("lava_dl.", "process_models.")):
        return False
    try:
        return np.dtype(port._d_type)
    except TypeError:
        return False


def _intact(data: np.ndarray, declared: np.dtype) -> bool:
    """Quick test that casting ``data`` to ``declared`` changes nothing (False: look closer)."""
    kind = data.dtype.kind
    if kind not in "fiu" or declared.kind not in "fiu":
        return kind not in "c"
    if declared.kind == "f":
        return kind != "f" or bool(np.isfinite(np.add.reduce(data, axis=None)))
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.array_equal(data.astype(declared), data))


def _mangled(data, declared: np.dtype) -> str | None:
    """Why casting ``data`` to ``declared`` (as Lava does silently) would change it, or None.

    Checks NaN / infinity (for float and integer targets), and for integer targets fractional
    values and values outside the integer type. Booleans and non-numeric data are not checked.
    """
    data = np.asarray(data)
    if data.dtype.kind not in "fciu" or declared.kind not in "fiu" or data.size == 0:
        return None
    if data.dtype.kind in "fc":
        finite = np.isfinite(data)
        if not finite.all():
            bad = data[~finite].ravel()[0]
            count = np.count_nonzero(~finite)
            return f"{bad} ({count} non-finite value(s)), which Lava would turn into garbage"
        if declared.kind in "iu":
            frac = np.mod(data, 1) != 0
            if frac.any():
                return (f"the fractional value {data[frac].ravel()[0]} for an integer ({declared}) "
                        "type, which Lava would silently truncate")
    if declared.kind in "iu":
        info = np.iinfo(declared)
        lo, hi = data.min(), data.max()
        if lo < info.min or hi > info.max:
            bad = lo if lo < info.min else hi
            return (f"{bad}, beyond its message width ({declared}: [{info.min}, {info.max}]), "
                    "which Lava would silently wrap")
    return None


def _lava_type_dtype(builder, name: str):
    """The numpy dtype a ProcessModel declares for the ndarray Var ``name``, or None."""
    try:
        lt = builder._get_lava_type(name)
        if isinstance(lt.cls, type) and issubclass(lt.cls, np.ndarray):
            return np.dtype(lt.d_type)
    except Exception:  # noqa: BLE001 - not a typed ndarray Var: Lava handles it
        return None
    return None


def _check_var_inits(runtime) -> None:
    """Raise :class:`InputError` for a Var whose initial value the model's dtype would mangle."""
    from lava.magma.compiler.builders.py_builder import PyProcessBuilder

    for proc, builder in (getattr(runtime._executable, "proc_builders", {}) or {}).items():
        if not isinstance(builder, PyProcessBuilder):
            continue
        for name, init in builder.vars.items():
            declared = _lava_type_dtype(builder, name)
            if declared is None:
                continue
            reason = _mangled(init.value, declared)
            if reason is not None:
                layer = _layer_path(proc)
                raise InputError(f"Var '{name}' of process '{proc.name}' ({type(proc).__name__}, model "
                                 f"{builder.proc_model.__name__}{', layer ' + layer if layer else ''}) "
                                 f"holds {reason}")


def _var_set(self, value, idx=None):
    """Lava's ``Var.set``, refusing a sparse matrix whose stored positions are not the Var's (a sparse
    Var's messages carry the stored values only)."""
    from scipy import sparse

    var = self
    while var.aliased_var is not None:
        var = var.aliased_var
    if sparse.issparse(value) and sparse.issparse(var.init):
        new, old = sparse.csr_matrix(value), sparse.csr_matrix(var.init)
        new.sort_indices()
        old.sort_indices()
        where = f"Var.set of '{var.name}' ({type(var.process).__name__})"
        if new.shape != old.shape:
            raise ValueError(f"{where}: a sparse value must have the Var's shape {old.shape}, "
                             f"got {new.shape}")
        if not (np.array_equal(new.indptr, old.indptr) and np.array_equal(new.indices, old.indices)):
            differs = "at other places" if new.nnz == old.nnz else "a different count"
            raise ValueError(f"{where}: a sparse value must store exactly the Var's {old.nnz} positions "
                             f"(it stores {new.nnz}, {differs}); store explicit zeros where a weight is 0")
    return _ORIG["var_set"](self, value, idx)


def _set_var(self, var_id: int, value, idx=None):
    """Lava's ``Runtime.set_var``, refusing values the model's dtype would mangle."""
    ev = None
    try:
        ev = self._executable.node_configs[0].var_models.get(var_id)
    except (AttributeError, IndexError):
        pass
    builder = getattr(self, "_lava_dl_builders", {}).get(getattr(ev, "proc_id", None))
    if _INPUT_CHECKS.enabled and builder is not None and isinstance(value, np.ndarray):
        declared = _lava_type_dtype(builder, ev.name)
        if declared is not None:
            reason = _mangled(value if not idx else value[idx], declared)
            if reason is not None:
                raise InputError(f"Var.set of '{ev.name}' ({builder.proc_model.__name__}): {reason}")
    return _ORIG["set_var"](self, var_id, value, idx)


# --------------------------------------------------------------------------
# Processes: context manager, log handlers
# --------------------------------------------------------------------------

def _runtimes_of(proc) -> list:
    found, stack, seen = [], [proc], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        rt = getattr(node, "_runtime", None)
        if rt is not None and all(rt is not r for r in found):
            found.append(rt)
        procs = getattr(node, "procs", None)
        if procs is not None:
            try:
                stack.extend(list(procs))
            except TypeError:
                pass
    return found


def _proc_enter(self):
    return self


def _proc_exit(self, exc_type, exc_val, exc_tb):
    for runtime in _runtimes_of(self):
        try:
            _stop(runtime, STOP_TIMEOUT)
        except BaseException:  # noqa: BLE001
            _teardown(runtime, graceful=False)
            if exc_type is None:
                raise
    return False


def _proc_del(self):
    try:
        runtime = getattr(self, "_runtime", None)
        if runtime is not None and not getattr(runtime, "_lava_dl_closed", True):
            _stop(runtime, STOP_TIMEOUT)
    except BaseException:  # noqa: BLE001 - never raise from a finalizer
        pass


def _proc_init(self, **proc_params):
    root = logging.getLogger()
    before = list(root.handlers)
    _ORIG["proc_init"](self, **proc_params)
    added = [h for h in root.handlers if all(h is not b for b in before)]
    for handler in added:
        key = (type(handler), handler.level, getattr(handler.formatter, "_fmt", None),
               getattr(handler.formatter, "datefmt", None), getattr(handler, "stream", None))
        twin = any(getattr(h, "_lava_dl_key", None) == key for h in before)
        if twin:
            root.removeHandler(handler)
        else:
            handler._lava_dl_key = key


# --------------------------------------------------------------------------
# Installation
# --------------------------------------------------------------------------

def _at_exit() -> None:
    try:
        stop_all(timeout=5.0)
    except BaseException:  # noqa: BLE001
        pass


def install() -> None:
    """Apply the patches (idempotent). Called by :mod:`lava_dl.lava_glue` at import."""
    global _INSTALLED
    if _INSTALLED:
        return
    import multiprocessing.util as mp_util

    import lava.magma.runtime.message_infrastructure.multiprocessing as lava_mp
    import lava.magma.runtime.message_infrastructure.shared_memory_manager as lava_smm
    import lava.magma.runtime.runtime as lava_runtime
    from lava.magma.core.model.py.model import AbstractPyProcessModel
    from lava.magma.core.model.py.ports import PyInPortVectorDense
    from lava.magma.core.process.process import AbstractProcess, ProcessServer
    from lava.magma.core.process.variable import Var, VarServer

    runtime_cls = lava_runtime.Runtime
    _ORIG.update(initialize=runtime_cls.initialize, start=runtime_cls.start, get_var=runtime_cls.get_var,
                 stop=runtime_cls.stop, set_var=runtime_cls.set_var,
                 model_get_var=AbstractPyProcessModel._get_var,
                 target_fn=lava_runtime.target_fn, recv=PyInPortVectorDense.recv,
                 proc_init=AbstractProcess.__init__, smm_start=lava_smm.SharedMemoryManager.start,
                 system_run=lava_mp.SystemProcess.run, process_register=ProcessServer.register,
                 var_register=VarServer.register, var_set=Var.set)
    ProcessServer.register = _weak_register("process")
    VarServer.register = _weak_register("var")
    runtime_cls.initialize = _initialize
    runtime_cls.start = _start
    runtime_cls._get_resp_for_run = _get_resp_for_run
    runtime_cls.wait = _wait
    runtime_cls.stop = _runtime_stop
    runtime_cls.__del__ = _runtime_del
    runtime_cls.get_var = _get_var
    runtime_cls.set_var = _set_var
    Var.set = _var_set
    lava_runtime.target_fn = _target_fn
    lava_mp.SystemProcess.run = _system_process_run
    lava_smm.SharedMemoryManager.start = _smm_start
    AbstractPyProcessModel._get_var = _model_get_var
    PyInPortVectorDense.recv = _checked_recv
    AbstractProcess.__init__ = _proc_init
    AbstractProcess.__enter__ = _proc_enter
    AbstractProcess.__exit__ = _proc_exit
    AbstractProcess.__del__ = _proc_del
    atexit.register(_at_exit)
    # runs before multiprocessing joins its (non-daemon) children, whatever the atexit order
    mp_util.Finalize(None, _at_exit, exitpriority=100)
    _INSTALLED = True

