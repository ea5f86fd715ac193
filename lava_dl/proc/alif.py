"""ALIF Lava Process (generated from :data:`lava_dl.core.alif.SPEC`)."""

from lava_dl.core import alif as _alif
from lava_dl.lava_glue import make_neuron_process

ALIF = make_neuron_process(_alif.SPEC, "ALIF", __name__)
