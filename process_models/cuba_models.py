"""ProcessModels of :class:`lava_dl.proc.cuba.CubaLIF` (fixed_pt and floating_pt)."""

from lava_dl.lava_glue import make_neuron_models
from lava_dl.proc.cuba import CubaLIF

PyCubaLIFModelFixed, PyCubaLIFModelFloat = make_neuron_models(CubaLIF, __name__)
