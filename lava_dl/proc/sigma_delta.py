"""Sigma-delta Lava Processes (generated from :mod:`lava_dl.core.sigma_delta`).

``Delta`` encodes a network input, ``SigmaDelta`` is a hidden neuron (sigma,
activation, delta encoder), ``Sigma`` integrates a network output. Messages are graded.
"""

from lava_dl.core import sigma_delta as _sd
from lava_dl.lava_glue import make_neuron_process

Delta = make_neuron_process(_sd.DELTA, "Delta", __name__)
SigmaDelta = make_neuron_process(_sd.SIGMA_DELTA, "SigmaDelta", __name__)
Sigma = make_neuron_process(_sd.SIGMA, "Sigma", __name__)
