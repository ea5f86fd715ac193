"""lava-dl's ``netx.blocks.models``: the SubProcessModels of the netx blocks under lava-dl's names.

They are defined in the repository's ``process_models/netx_models.py`` (importable as
``lava_dl.proc.netx_models``, where Lava's compiler finds them); tags ``fixed_pt`` and
``floating_pt``.
"""

from lava_dl.proc.netx_models import (
    SubComplexDenseModel,
    SubComplexInputModel,
    SubConvModel,
    SubDenseModel,
    SubInputModel,
    SubRecurrentDenseModel,
    _BlockModel,
)

#: lava-dl's names.
AbstractPyBlockModel = _BlockModel
PyInputModel = SubInputModel
PyComplexInputModel = SubComplexInputModel
PyDenseModel = SubDenseModel
PyComplexDenseModel = SubComplexDenseModel
PyRecurrentDenseModel = SubRecurrentDenseModel
PyConvModel = SubConvModel

__all__ = ["AbstractPyBlockModel", "PyInputModel", "PyComplexInputModel", "PyDenseModel",
           "PyComplexDenseModel", "PyRecurrentDenseModel", "PyConvModel"]
