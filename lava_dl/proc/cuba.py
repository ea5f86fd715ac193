"""CUBA-LIF Lava Process (generated from :data:`lava_dl.core.cuba.SPEC`)."""

from lava_dl.core import cuba as _cuba
from lava_dl.lava_glue import make_neuron_process

CubaLIF = make_neuron_process(_cuba.SPEC, "CubaLIF", __name__)
