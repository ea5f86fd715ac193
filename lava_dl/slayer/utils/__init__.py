"""Training utilities (lava-dl's ``slayer.utils``).

Public API as lava-dl 0.6: :class:`Assistant`, :class:`LearningStats` / :class:`LearningStat`,
:func:`quantize` / :func:`quantize_hook_fx` / ``QUANTIZE_MODE``, :func:`diagonal_mask`,
:func:`event_rate`, :class:`dotdict`, :class:`staticproperty` and the submodules
:mod:`~lava_dl.slayer.utils.time` (``shift``, ``replicate``), :mod:`~lava_dl.slayer.utils.filter`
(``conv``, ``corr``, ``FIR``, ``FIRBank``), :mod:`~lava_dl.slayer.utils.int_utils` and
:mod:`~lava_dl.slayer.utils.recurrent` (the last two imported on first access).

The time-major helpers used inside slayer (``delay_shift``, ``_DelayShift``,
``_empty_time_major``) are importable from here too.
"""

import importlib

from lava_dl.slayer.utils import filter, time
from lava_dl.slayer.utils._time_major import _DelayShift, _empty_time_major, delay_shift
from lava_dl.slayer.utils.assistant import Assistant
from lava_dl.slayer.utils.quantize import MODE as QUANTIZE_MODE
from lava_dl.slayer.utils.quantize import quantize, quantize_hook_fx
from lava_dl.slayer.utils.stats import LearningStat, LearningStats
from lava_dl.slayer.utils.utils import diagonal_mask, dotdict, event_rate, staticproperty

_LAZY_SUBMODULES = ("int_utils", "recurrent")

__all__ = [
    "QUANTIZE_MODE", "Assistant", "LearningStat", "LearningStats", "diagonal_mask", "dotdict",
    "event_rate", "filter", "quantize", "quantize_hook_fx", "staticproperty", "time",
    "_DelayShift", "_empty_time_major", "delay_shift",
]


def __getattr__(name):
    if name in _LAZY_SUBMODULES:  # recurrent imports slayer.block, which imports this package
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
