"""Bootstrap training (lava-dl's ``lava.lib.dl.bootstrap``): train an SNN through an ANN whose
activations are fitted to the SNN's own rates.

An SNN block's spike rate is a function of its mean synaptic input. Bootstrap training samples
that relation from the network running as an SNN (``Mode.SAMPLE``), fits a piecewise-linear
activation per block (``Mode.FIT``, :class:`ann_sampler.AnnSampler`), trains the much cheaper ANN
with it (``Mode.ANN``, one time step) and evaluates the SNN (``Mode.SNN``);
:class:`routine.Scheduler` switches between the modes. The blocks (:mod:`block.cuba`) are the
slayer CUBA blocks with a ``mode`` argument: same parameters, same export, same deployment.

Modules: :mod:`block` (blocks), :mod:`ann_sampler` (the fitted activation), :mod:`routine`
(modes and scheduler).
"""

from lava_dl.bootstrap import ann_sampler, block, routine
from lava_dl.bootstrap.routine import Mode

__all__ = ["block", "ann_sampler", "routine", "Mode"]
