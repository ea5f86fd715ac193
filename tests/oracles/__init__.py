"""Independent integer reference models (oracles) of every neuron family and of the Dense synapse.

Each model is written from ``../shared/docs/reference-neurons.md`` as straight-line
Python on plain ints, one neuron and one time step at a time, with its own tiny
helpers (:mod:`tests.oracles.fixed`). Nothing here imports ``lava_dl``: a rule that is
wrong in ``lava_dl.core`` (and therefore in both the slayer layers and the Lava
models built from it) shows up as a difference from these references.

Where ``lava_dl`` deliberately follows Loihi instead of a lava-dl / lava-nc quirk
(see the [BUG]/[DIVERGENCE]/[QUIRK] marks of the reference), the oracle follows
Loihi too: two's-complement 24-bit wrap of the CUBA current (lava-nc's Python
model maps ``+2^23`` the other way), integer decays used as stored (no hidden ``+1``
on ``du``), ADRF keeps its adaptation and ADRF-IZ has no Izhikevich reset.
"""

from tests.oracles.alif import Alif
from tests.oracles.base import OracleNeuron, Trace, simulate
from tests.oracles.cuba import CubaLIF
from tests.oracles.resonator import Adrf, AdrfIz, Rf, RfIz
from tests.oracles.sigma_delta import Delta, Sigma, SigmaDelta

__all__ = ["Adrf", "AdrfIz", "Alif", "CubaLIF", "Delta", "OracleNeuron", "Rf", "RfIz", "Sigma", "SigmaDelta",
           "Trace", "simulate"]
