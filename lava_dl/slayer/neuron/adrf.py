"""ADRF (adaptive RF, phase spiking) training layer; kernel :data:`lava_dl.core.resonator.ADRF`."""

from __future__ import annotations

from lava_dl.core import resonator as _res
from lava_dl.slayer.neuron._resonator import AdaptiveResonatorNeuron, rotation_neuron_params


class Neuron(AdaptiveResonatorNeuron):
    """Adaptive resonate-and-fire neuron, phase spiking (lava-dl's ``slayer.neuron.adrf.Neuron``).

    Per step: RF rotation, then a spike when ``re >= θ + r`` while ``im`` crosses
    from negative to non-negative; a spike raises θ by ``threshold_step`` and r by
    ``2θ``. Input: a ``(real, imag)`` pair (or a complex tensor). Graded spikes carry
    ``re``. Surrogate: complex spike (tau 100, scale 0.1). Parameters: see
    :class:`lava_dl.slayer.neuron._resonator.AdaptiveResonatorNeuron`.
    """

    spec = _res.ADRF


neuron_params = rotation_neuron_params(Neuron)
