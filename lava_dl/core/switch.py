"""Process-wide on/off settings that can also be changed for a block of code.

Used for the input checks of the training layers (:func:`lava_dl.slayer.set_input_checks`) and of
the Lava runtime (:func:`lava_dl.runtime.set_input_checks`). Setting one, as a call, changes it for
the process (forked Lava workers inherit the value at the fork); the object returned is also a
context manager that restores the previous value, as ``torch.set_grad_enabled`` does.
"""

from __future__ import annotations


class Switch:
    """One on/off setting; ``switch.enabled`` reads it.

    Parameters
    ----------
    enabled : bool
        Initial value.
    """

    __slots__ = ("enabled",)

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = bool(enabled)

    def set(self, enabled: bool) -> Restore:
        """Set the switch; the returned object restores the previous value when used in a ``with``."""
        previous, self.enabled = self.enabled, bool(enabled)
        return Restore(self, previous)


class Restore:
    """Context manager returned by :meth:`Switch.set`: restores the previous value on exit."""

    __slots__ = ("switch", "previous")

    def __init__(self, switch: Switch, previous: bool) -> None:
        self.switch, self.previous = switch, previous

    def __enter__(self) -> Restore:
        return self

    def __exit__(self, *exc) -> bool:
        self.switch.enabled = self.previous
        return False
