"""All neuron families, by hdf5 ``neuron/type`` string (and layer role where one type has several)."""

from __future__ import annotations

from lava_dl.core import alif, cuba, resonator, sigma_delta
from lava_dl.core.spec import NeuronSpec

SPECS: tuple[NeuronSpec, ...] = (
    cuba.SPEC,
    alif.SPEC,
    *resonator.SPECS,
    sigma_delta.DELTA,
    sigma_delta.SIGMA_DELTA,
    sigma_delta.SIGMA,
)

#: Layer roles: an ``input`` record, a record marked as network output
#: (``neuron/sigma_output``), or any other (hidden) record.
ROLES = ("input", "hidden", "output")


def spec_for_hdf5_type(type_name: str, role: str = "hidden") -> NeuronSpec:
    """The spec for hdf5 neuron type ``type_name`` in a layer of the given ``role``.

    Families that use one type for several processes (sigma-delta: ``Delta`` on the
    input, ``Sigma`` on the output, ``SigmaDelta`` elsewhere) say which role each spec
    plays in ``spec.extra['hdf5_role']``; other specs serve every role.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    candidates = [s for s in SPECS if type_name == s.hdf5_type or type_name in s.hdf5_aliases]
    if not candidates:
        known = sorted({t for s in SPECS for t in (s.hdf5_type, *s.hdf5_aliases)})
        raise NotImplementedError(f"neuron type {type_name!r} is not supported; known types: {known}")
    for spec in candidates:
        if spec.extra.get("hdf5_role", role) == role:
            return spec
    raise NotImplementedError(f"neuron type {type_name!r} has no process for a layer of role {role!r}")
