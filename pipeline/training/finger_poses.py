"""Finger-pose copies: training crops drawn again from their landmarks, the fingers held closer or wider.

One person spreads the fingers of a five, another holds them together; either way it is a five. A
crop drawn from the landmarks alone (``fill="depth"`` or ``"mask"``, see
:class:`~pipeline.preprocess.crops.CropSettings`) can be drawn again with the fingers turned at their
bases, which a crop of the photo's pixels cannot. :func:`spread_fingers` scales the angle to the palm's
axis (wrist to middle-finger base) of every raised finger by one factor, below 1 closer together, and
adds a small turn of its own to every finger. A finger counts as raised when it points less than 90
degrees off the axis and is nearly straight (:func:`raised_fingers`); a folded finger and the thumb are
only turned a little, since scaling their angles would lift them out of the palm. So a raised finger
stays raised, a folded one folded, and the label holds.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.data.load import Dataset, affines_of, landmarks_of
from pipeline.preprocess.crops import crop_points, fill_crop
from pipeline.preprocess.hands import MIDDLE_MCP, WRIST
from pipeline.training.augment import AugmentConfig

#: Each finger's base and the landmarks that turn about it: thumb (from its CMC joint), index, middle, ring, little.
FINGERS = ((1, (2, 3, 4)), (5, (6, 7, 8)), (9, (10, 11, 12)), (13, (14, 15, 16)), (17, (18, 19, 20)))
#: Fills drawn from the landmarks alone, which copies can be drawn in.
DRAWN_FILLS = ("depth", "mask")


#: A raised finger's tip is at least this share of the finger's length (its bones end to end) from its base.
STRAIGHT = 0.8


def finger_angles(landmarks: np.ndarray) -> np.ndarray:
    """(5,) each finger's angle (base to tip, :data:`FINGERS`' order) to the palm's axis, in radians, signed."""
    xy = np.asarray(landmarks, np.float64)[:, :2]
    axis = xy[MIDDLE_MCP] - xy[WRIST]
    reach = np.array([xy[chain[-1]] - xy[base] for base, chain in FINGERS])
    return np.arctan2(axis[0] * reach[:, 1] - axis[1] * reach[:, 0], reach @ axis)


def raised_fingers(landmarks: np.ndarray) -> np.ndarray:
    """(5,) bool: the fingers (never the thumb) within 90 degrees of the palm's axis whose tip is at least
    :data:`STRAIGHT` of the finger's length from its base."""
    xy = np.asarray(landmarks, np.float64)[:, :2]
    straight = np.array([np.linalg.norm(xy[chain[-1]] - xy[base])
                         / max(np.linalg.norm(np.diff(xy[[base, *chain]], axis=0), axis=1).sum(), 1e-9)
                         for base, chain in FINGERS])
    raised = (np.abs(finger_angles(xy)) < np.pi / 2) & (straight >= STRAIGHT)
    raised[0] = False
    return raised


def spread_fingers(landmarks: np.ndarray, factor: float, turns_deg: np.ndarray) -> np.ndarray:
    """(21, 3) landmarks with each finger turned in the image plane about its base by ``turns_deg[k]`` for
    finger k (:data:`FINGERS`' order), and each raised finger (:func:`raised_fingers`) also by ``factor - 1``
    times its angle to the palm's axis, so that the angle becomes ``factor`` times as wide. Depth is kept."""
    out = np.array(landmarks, np.float64, copy=True)
    xy = out[:, :2]
    angles, raised = finger_angles(xy), raised_fingers(xy)
    for (base, chain), angle, up, turn in zip(FINGERS, angles, raised, np.deg2rad(turns_deg)):
        by = ((factor - 1) * angle if up else 0.0) + turn
        c, s = np.cos(by), np.sin(by)
        xy[list(chain)] = (xy[list(chain)] - xy[base]) @ np.array([[c, s], [-s, c]]) + xy[base]
    return out


def pose_copies(data: Dataset, indices: np.ndarray, config: AugmentConfig, seed: int) -> torch.Tensor | None:
    """``config.pose_copies`` copies of the crops ``indices``, drawn from landmarks moved by :func:`spread_fingers`
    (one seeded factor and five turns per copy): (copies * len(indices), 1, S, S) uint8, copy by copy; None when
    copies are off or the crops show the photo (they cannot be redrawn)."""
    settings = data.settings
    if not config.pose_copies or settings is None or settings.fill not in DRAWN_FILLS or not len(indices):
        return None
    rows = data.index.iloc[np.asarray(indices)]
    affines = affines_of(rows) * settings.render_scale  # onto the large render, where the mask is drawn
    marks = landmarks_of(rows)
    rng = np.random.default_rng(seed)
    out = np.empty((config.pose_copies, len(rows), 1, settings.size, settings.size), np.uint8)
    for copy in range(config.pose_copies):
        factors = rng.uniform(config.pose_low, config.pose_high, len(rows))
        turns = rng.normal(0.0, config.pose_jitter_deg, (len(rows), len(FINGERS)))
        for n in range(len(rows)):
            moved = spread_fingers(marks[n], factors[n], turns[n])
            out[copy, n, 0] = fill_crop(None, crop_points(affines[n], moved), settings)[0]
    return torch.from_numpy(out.reshape(-1, 1, settings.size, settings.size))


__all__ = ["DRAWN_FILLS", "FINGERS", "STRAIGHT", "finger_angles", "pose_copies", "raised_fingers", "spread_fingers"]
