"""All neuron families, by hdf5 ``neuron/type`` string."""

from __future__ import annotations

from lava_dl.core import alif, cuba
from lava_dl.core.spec import NeuronSpec

SPECS: tuple[NeuronSpec, ...] = (cuba.SPEC, alif.SPEC)


def spec_for_hdf5_type(type_name: str) -> NeuronSpec:
    """Return the spec whose hdf5 type (or alias) is ``type_name``; raise a clear error otherwise."""
    for spec in SPECS:
        if type_name == spec.hdf5_type or type_name in spec.hdf5_aliases:
            return spec
    known = sorted({t for s in SPECS for t in (s.hdf5_type, *s.hdf5_aliases)})
    raise NotImplementedError(f"neuron type {type_name!r} is not supported; known types: {known}")
