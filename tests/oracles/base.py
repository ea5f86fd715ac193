"""Common shape of the oracle neurons and a driver that runs many of them over time."""

from __future__ import annotations

import typing as ty
from dataclasses import dataclass

import numpy as np


class OracleNeuron:
    """One neuron of a family, stepped one time step at a time on Python ints.

    Subclasses set :attr:`ports` (input ports, in the order :meth:`step` takes them),
    :attr:`carried` (state registers carried to the next step, named as the Lava Vars)
    and :attr:`recorded` (per-step values :meth:`step` reports besides the message ``s``).
    """

    ports: ty.ClassVar[tuple[str, ...]] = ("a_in",)
    carried: ty.ClassVar[tuple[str, ...]] = ()
    recorded: ty.ClassVar[tuple[str, ...]] = ()

    def step(self, *inputs: int) -> dict[str, int]:
        """Advance one step; return ``{'s': message, **recorded values}``."""
        raise NotImplementedError

    def state(self) -> dict[str, int]:
        """The carried states (after the last step), ``{name: value}`` for :attr:`carried`."""
        return {name: getattr(self, name) for name in self.carried}


@dataclass
class Trace:
    """What :func:`simulate` returns.

    Attributes
    ----------
    records : dict of str to ndarray
        ``'s'`` (the messages) and every recorded value, int64 ``(n, T)``.
    states : dict of str to ndarray
        Every carried state after each step, int64 ``(n, T)``.
    """

    records: dict[str, np.ndarray]
    states: dict[str, np.ndarray]


def simulate(neurons: ty.Sequence[OracleNeuron], inputs: ty.Sequence[np.ndarray] | np.ndarray) -> Trace:
    """Step every neuron through its own input sequence.

    Parameters
    ----------
    neurons : sequence of OracleNeuron
        ``n`` neurons of one family (they are advanced in place).
    inputs : ndarray ``(n, T)`` or sequence of them
        Integer input of each port (one array per port of the family, in port order).

    Returns
    -------
    Trace
        Per-step messages, recorded values and carried states.
    """
    ports = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
    kind = type(neurons[0])
    if len(ports) != len(kind.ports):
        raise ValueError(f"{kind.__name__} takes {len(kind.ports)} input port(s), got {len(ports)}")
    values = [np.asarray(p).astype(np.int64).tolist() for p in ports]
    n, steps = len(neurons), len(values[0][0])
    records = {name: np.zeros((n, steps), np.int64) for name in ("s", *kind.recorded)}
    states = {name: np.zeros((n, steps), np.int64) for name in kind.carried}
    for i, neuron in enumerate(neurons):
        rows = [port[i] for port in values]
        for t in range(steps):
            out = neuron.step(*(row[t] for row in rows))
            for name, value in out.items():
                records[name][i, t] = value
            for name, value in neuron.state().items():
                states[name][i, t] = value
    return Trace(records, states)
