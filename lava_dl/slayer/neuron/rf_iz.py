"""RF-IZ (resonate-and-fire, Izhikevich reset) training layer; kernel :data:`lava_dl.core.resonator.RF_IZ`."""

from __future__ import annotations

from lava_dl.core import resonator as _res
from lava_dl.slayer.neuron._resonator import ResonatorNeuron, rotation_neuron_params


class Neuron(ResonatorNeuron):
    """Resonate-and-fire neuron spiking on its imaginary part (lava-dl's ``slayer.neuron.rf_iz.Neuron``).

    Per step (integers, 24-bit saturated): RF rotation, spike when ``im >= θ``, then
    ``re = 0`` and ``im = θ - 1/S`` for the next step. Input: a ``(real, imag)`` pair
    (or a complex tensor). Graded spikes carry ``im`` (real units). Surrogate: real
    spike on ``im`` (tau 100, scale 0.1). Parameters: see
    :class:`lava_dl.slayer.neuron._resonator.ResonatorNeuron`.
    """

    spec = _res.RF_IZ


neuron_params = rotation_neuron_params(Neuron)
