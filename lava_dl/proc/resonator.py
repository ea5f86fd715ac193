"""Resonate-and-fire Lava Processes (generated from :mod:`lava_dl.core.resonator`).

Each has two input ports, ``a_real_in`` and ``a_imag_in``, fed by the real and
imaginary synapses of a complex layer; sin/cos decays are the hdf5 integers.
"""

from lava_dl.core import resonator as _res
from lava_dl.lava_glue import make_neuron_process

RF = make_neuron_process(_res.RF, "RF", __name__)
RF_IZ = make_neuron_process(_res.RF_IZ, "RF_IZ", __name__)
ADRF = make_neuron_process(_res.ADRF, "ADRF", __name__)
ADRF_IZ = make_neuron_process(_res.ADRF_IZ, "ADRF_IZ", __name__)
