"""ADRF-IZ (adaptive RF spiking on ``im``) training layer; kernel :data:`lava_dl.core.resonator.ADRF_IZ`."""

from __future__ import annotations

from lava_dl.core import resonator as _res
from lava_dl.slayer.neuron._resonator import AdaptiveResonatorNeuron, rotation_neuron_params


class Neuron(AdaptiveResonatorNeuron):
    """Adaptive resonate-and-fire neuron spiking on ``im`` (lava-dl's ``slayer.neuron.adrf_iz.Neuron``).

    Per step: RF rotation (no reset of re/im), spike when ``im >= θ + r``; a spike
    raises θ by ``threshold_step`` and r by ``2θ``. Input: a ``(real, imag)`` pair (or
    a complex tensor). Graded spikes carry ``im``. Surrogate: real spike on ``im``
    (tau 100, scale 0.1). Parameters: see
    :class:`lava_dl.slayer.neuron._resonator.AdaptiveResonatorNeuron`.
    """

    spec = _res.ADRF_IZ


neuron_params = rotation_neuron_params(Neuron)
