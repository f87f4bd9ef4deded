"""Files the package ships and needs at run time, found with :mod:`importlib.resources` (never a checkout's paths).

- ``hand_landmarker.task``: Google's MediaPipe hand landmarker bundle (Apache-2.0, see its NOTICE).
- ``fingers.pt``: the shipped gesture model (see ``models/MODEL_CARD.md``).
- ``digits.pt``: a LeNet-5 trained on MNIST, for ``explain --dataset mnist`` (see its NOTICE).
- ``open_palm.mp4``: a short real clip, so the demo and the recorder run on a machine without a camera.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

HAND_LANDMARKER = "hand_landmarker.task"
GESTURE_MODEL = "fingers.pt"
DIGIT_MODEL = "digits.pt"
SAMPLE_CLIP = "open_palm.mp4"
#: What ``--source sample`` means: the shipped clip.
SAMPLE_SOURCE = "sample"


def asset(name: str) -> Path:
    """The path of a shipped file (the package is installed as files, from a wheel or a checkout)."""
    return Path(str(files("pipeline") / "assets" / name))
