"""The one definition of every neuron family and synapse.

Everything here depends on numpy and numba only: the same compiled kernels are
called by the Lava ProcessModels (``process_models/``), by the PyTorch layers
(``lava_dl.slayer``) and by the hdf5 exchange (``lava_dl.netx``).
"""
