"""ProcessModels of the resonate-and-fire processes in :mod:`lava_dl.proc.resonator`."""

from lava_dl.lava_glue import make_neuron_models
from lava_dl.proc.resonator import ADRF, ADRF_IZ, RF, RF_IZ

PyRFModelFixed, PyRFModelFloat = make_neuron_models(RF, __name__)
PyRF_IZModelFixed, PyRF_IZModelFloat = make_neuron_models(RF_IZ, __name__)
PyADRFModelFixed, PyADRFModelFloat = make_neuron_models(ADRF, __name__)
PyADRF_IZModelFixed, PyADRF_IZModelFloat = make_neuron_models(ADRF_IZ, __name__)
