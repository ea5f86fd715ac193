"""RF-IZ (resonate-and-fire, Izhikevich reset) training layer; kernel :data:`lava_dl.core.resonator.RF_IZ`."""

from __future__ import annotations

import typing as ty

from lava_dl.core import resonator as _res
from lava_dl.slayer.neuron._resonator import ResonatorNeuron, rotation_arguments


class Neuron(ResonatorNeuron):
    """Resonate-and-fire neuron spiking on its imaginary part (lava-dl's ``slayer.neuron.rf_iz.Neuron``).

    Per step (integers, 24-bit saturated): RF rotation, spike when ``im >= θ``, then
    ``re = 0`` and ``im = θ - 1/S`` for the next step. Input: a ``(real, imag)`` pair
    (or a complex tensor). Graded spikes carry ``im`` (real units). Surrogate: real
    spike on ``im`` (tau 100, scale 0.1). Parameters: see
    :class:`lava_dl.slayer.neuron._resonator.ResonatorNeuron`.
    """

    spec = _res.RF_IZ


def neuron_params(device_params: ty.Mapping[str, ty.Any], scale: int = 1 << 6,
                  p_scale: int = 1 << 12) -> dict:
    """RF-IZ neuron arguments from hdf5 ``neuron`` fields (lava-dl's ``neuron_params``).

    The inverse of :meth:`Neuron.device_params`: ``period = 2 pi / atan2(sinDecay, cosDecay)``,
    ``decay = 1 - |(sinDecay, cosDecay)| / p_scale``, ``threshold = vThMant / scale``,
    ``graded_spike = gradedSpike``.

    Parameters
    ----------
    device_params : mapping
        hdf5 neuron fields ``{key: value}`` (``sinDecay``, ``cosDecay``, ``vThMant``, ``gradedSpike``);
        ``type`` and the constants (``refDelay``) are checked, not returned.
    scale : int
        Weight scale (default 64).
    p_scale : int
        Decay scale (default 4096).

    Returns
    -------
    dict
        Constructor arguments of :class:`Neuron` (``period`` and ``decay`` reproduce the integer
        rotation only up to rounding and inside the constructor's clamp; set ``sin_decay``/``cos_decay``
        to the integers for an exact copy). Per-channel fields give arrays and ``shared_param=False``
        (the constructor takes a scalar or a range: build with one and set the stored parameters, as
        :class:`lava_dl.slayer.auto.SequentialNetwork` does).

    Raises
    ------
    ValueError
        Naming the field: unknown, missing, non-integer or out-of-range values.
    """
    return rotation_arguments(Neuron.spec, device_params, scale, p_scale)
