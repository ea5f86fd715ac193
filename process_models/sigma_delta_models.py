"""ProcessModels of the sigma-delta processes in :mod:`lava_dl.proc.sigma_delta`."""

from lava_dl.lava_glue import make_neuron_models
from lava_dl.proc.sigma_delta import Delta, Sigma, SigmaDelta

PyDeltaModelFixed, PyDeltaModelFloat = make_neuron_models(Delta, __name__)
PySigmaDeltaModelFixed, PySigmaDeltaModelFloat = make_neuron_models(SigmaDelta, __name__)
PySigmaModelFixed, PySigmaModelFloat = make_neuron_models(Sigma, __name__)
