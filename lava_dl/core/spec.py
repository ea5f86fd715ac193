"""Declarative description of a neuron family.

A :class:`NeuronSpec` holds, in one place, what every face of a neuron needs:
parameters (Lava Var name, hdf5 key, bit width, range), states (bit width and
overflow rule), the message width of its output, and the compiled integer step.
The Lava Process and ProcessModels, the PyTorch layer and the hdf5 record are
all built from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Param:
    """One integer neuron parameter.

    Parameters
    ----------
    name : str
        Lava Var name and kernel argument name.
    hdf5_key : str or None
        Field name in the hdf5 ``neuron`` group (None: not stored there).
    lo, hi : int
        Inclusive range of valid values (checked at construction of a process).
    default : int
        Value used when the argument is not given.
    doc : str
        One-line meaning, used in generated docstrings and error messages.
    required : bool, default True
        Whether an hdf5 record must carry the field (else ``default`` stands in).
    """

    name: str
    hdf5_key: str | None
    lo: int
    hi: int
    default: int
    doc: str
    required: bool = True

    def check(self, values, where: str = "") -> np.ndarray:
        """Return ``values`` as an int64 array or raise naming the parameter."""
        arr = np.asarray(values)
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or not np.all(np.mod(arr, 1) == 0):
                raise ValueError(f"{where}{self.name} ({self.doc}) must be an integer, got {values!r}")
        elif arr.dtype.kind not in "iub":
            raise TypeError(f"{where}{self.name} ({self.doc}) must be integer, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < self.lo or arr.max() > self.hi):
            raise ValueError(
                f"{where}{self.name} ({self.doc}) must lie in [{self.lo}, {self.hi}], "
                f"got values in [{arr.min()}, {arr.max()}]"
            )
        return arr


@dataclass(frozen=True)
class State:
    """One neuron state register (int32 storage, 24-bit semantics)."""

    name: str
    doc: str
    overflow: str  # "wrap" (two's complement) or "saturate"
    initial: int = 0


#: Results of a ``NeuronSpec.settled_step`` (see there).
SETTLED_IDLE, SETTLED_QUIET, SETTLED_BUSY = 0, 1, 2


@dataclass(frozen=True)
class NeuronSpec:
    """Everything that defines one neuron family.

    ``fixed_step`` advances all neurons by one time step, in place::

        fixed_step(*states, a_in, *params, s_out)

    where every array is 1-D (flattened neurons), states/params are int32/int64,
    ``a_in`` is the int64 synaptic input of this step and ``s_out`` receives the
    output messages (1/0 for binary spikes, the payload for graded ones): every
    element is written (0 where nothing is sent), since the models reuse the buffer.
    ``float_step`` has the same signature on float64 arrays.

    ``settled_step`` (optional) is ``fixed_step`` for *settled* neurons: states as a step of
    ``fixed_step`` (or of ``settled_step``) left them, with the parameters unchanged since. The
    Lava models call it only then (never after a reset, a Var set or a replaced Var array, nor
    with a Var written through a RefPort); it may skip neurons whose step it can tell changes
    nothing from that promise, and must otherwise give ``fixed_step``'s results exactly. It returns
    :data:`SETTLED_IDLE` only if the step changed no state, sent zeros, and a settled step with
    all-zero input from the states it left would do the same; :data:`SETTLED_QUIET` only if it sent
    zeros; else :data:`SETTLED_BUSY` (an in-process executor tells the receivers of zeros so, and
    skips idle steps while no input arrives, see :mod:`lava_dl.netx.fused`).
    """

    name: str
    hdf5_type: str
    doc: str
    params: tuple[Param, ...]
    states: tuple[State, ...]
    fixed_step: Callable
    float_step: Callable | None = None
    settled_step: Callable | None = None
    in_ports: tuple[str, ...] = ("a_in",)
    out_port: str = "s_out"
    #: Lava message precision of ``a_in`` (bits) and ``s_out`` (0: binary spikes).
    in_message_bits: int = 24
    out_message_bits: int = 0
    #: Surrogate-gradient width and height multipliers (lava-dl's TAU_RHO_MULT, SCALE_RHO_MULT).
    tau_rho_mult: float = 100.0
    scale_rho_mult: float = 0.1
    #: Other hdf5 ``neuron/type`` strings read as this family (e.g. legacy ``LOIHI``).
    hdf5_aliases: tuple[str, ...] = ()
    #: Process parameter that receives an hdf5 layer ``bias`` (None: no bias).
    bias_param: str | None = None
    #: Parameters not stored in hdf5, with the value every deployment uses.
    deploy_constants: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    def param_for_hdf5_key(self, key: str) -> Param:
        """The parameter stored under hdf5 ``neuron/<key>``."""
        for p in self.params:
            if p.hdf5_key == key:
                return p
        raise KeyError(f"{self.name} stores no hdf5 field {key!r}")

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"{self.name} has no parameter {name!r}")
