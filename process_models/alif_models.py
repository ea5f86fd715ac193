"""ProcessModels of :class:`lava_dl.proc.alif.ALIF` (fixed_pt and floating_pt)."""

from lava_dl.lava_glue import make_neuron_models
from lava_dl.proc.alif import ALIF

PyALIFModelFixed, PyALIFModelFloat = make_neuron_models(ALIF, __name__)
