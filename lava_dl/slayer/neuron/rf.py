"""RF (resonate-and-fire, phase spiking) training layer; the kernel is :data:`lava_dl.core.resonator.RF`."""

from __future__ import annotations

from lava_dl.core import resonator as _res
from lava_dl.slayer.neuron._resonator import ResonatorNeuron, rotation_neuron_params


class Neuron(ResonatorNeuron):
    """Resonate-and-fire neuron spiking at the phase crossing (lava-dl's ``slayer.neuron.rf.Neuron``).

    Per step (integers, 24-bit saturated): the complex state rotates by the
    ``sinDecay``/``cosDecay`` integers and adds the input; a spike is emitted when
    ``re >= θ`` while ``im`` crosses from negative to non-negative. No reset.
    Input: a ``(real, imag)`` pair of ``N, C, (H, W,) T`` tensors (or a complex
    tensor). Graded spikes carry ``re`` (real units). Surrogate multipliers
    ``tau 0.5``, ``scale 10``. Parameters: see
    :class:`lava_dl.slayer.neuron._resonator.ResonatorNeuron`.
    """

    spec = _res.RF


neuron_params = rotation_neuron_params(Neuron)
