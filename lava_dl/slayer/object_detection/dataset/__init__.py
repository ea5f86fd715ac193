"""Dataset readers and helpers for object detection (lava-dl's
``slayer.object_detection.dataset``).

- ``BDD``: Berkeley Deep Drive BDD100K multi-object-tracking videos (``bdd100k``).
- ``PropheseeAutomotive``: Prophesee automotive event-camera recordings
  (``prophesee_automotive``).
- ``utils``: image and event-frame flips and resizes.
"""

from lava_dl.slayer.object_detection.dataset import utils
from lava_dl.slayer.object_detection.dataset.bdd100k import BDD
from lava_dl.slayer.object_detection.dataset.prophesee_automotive import PropheseeAutomotive

__all__ = ["BDD", "PropheseeAutomotive", "utils"]
