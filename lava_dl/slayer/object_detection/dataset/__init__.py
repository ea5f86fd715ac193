"""Dataset helpers for object detection (lava-dl's ``slayer.object_detection.dataset``).

``utils``: image and event-frame flips and resizes. lava-dl's readers of the BDD100K and
Prophesee automotive datasets (``BDD``, ``PropheseeAutomotive``) are not implemented yet: the
classes exist under lava-dl's names and raise ``NotImplementedError`` saying so.
"""

from lava_dl.slayer.object_detection.dataset import utils

__all__ = ["BDD", "PropheseeAutomotive", "utils"]


class _NotImplementedDataset:
    """A dataset reader of lava-dl that lava_dl does not provide yet."""

    def __init__(self, *args, **kwargs) -> None:
        raise NotImplementedError(f"lava_dl.slayer.object_detection.dataset.{type(self).__name__}: lava-dl's "
                                  "reader of this dataset is not implemented in lava_dl yet; read the data "
                                  "with your own torch Dataset (boundingbox.utils.tensor_from_annotation "
                                  "builds the targets)")


class BDD(_NotImplementedDataset):
    """lava-dl's BDD100K reader (not implemented yet: raises ``NotImplementedError``)."""


class PropheseeAutomotive(_NotImplementedDataset):
    """lava-dl's Prophesee automotive reader (not implemented yet: raises ``NotImplementedError``)."""
