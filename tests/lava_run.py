"""Run a Lava graph for a number of steps and always release its workers."""

from __future__ import annotations

import typing as ty

from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi1SimCfg


def run_and_read(proc, steps: int, reads: ty.Sequence, run_cfg=None) -> list:
    """Run ``proc``'s graph for ``steps`` steps, return ``[var.get() for var in reads]``.

    ``stop()`` is always called, except after a worker error (it would block forever).
    """
    run_cfg = run_cfg or Loihi1SimCfg(select_tag="fixed_pt")
    failed = False
    try:
        proc.run(condition=RunSteps(num_steps=steps), run_cfg=run_cfg)
        return [var.get() for var in reads]
    except Exception:
        failed = True
        raise
    finally:
        if not failed:
            proc.stop()
