"""Batched, seeded augmentation on crop tensors: one call per batch, no per-sample Python.

Each transform imitates a way another person's hand, camera or room differs from the training
photos: hand angle and size (affine), lighting and skin tone (brightness, contrast, gamma),
camera resolution (blur by down- and up-sampling), occlusion (erasing), and viewpoint: fingers that
point toward the camera look shorter (squash along the hand's upright axis) and a hand seen from
the side leans (shear). How another person holds the fingers (together or spread), and at what angle
to the camera the hand is held (``pose_tilt_deg``), is drawn into copies of the crops before training
(:mod:`pipeline.training.finger_poses`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from pipeline.errors import UserError


@dataclass(frozen=True)
class AugmentConfig:
    """Strength of each augmentation (0 turns one off)."""

    rotate_deg: float = 15.0
    scale: float = 0.12  # zoom in [1 - scale, 1 + scale]
    shift: float = 0.08  # as a fraction of the side
    brightness: float = 0.25
    contrast: float = 0.35
    gamma: float = 0.35  # log-uniform in [exp(-g), exp(g)]
    blur_prob: float = 0.3
    erase_prob: float = 0.25
    squash: float = 0.0  # the upright axis scaled by [1 - squash, 1]: foreshortened fingers
    shear: float = 0.0  # horizontal shear in [-shear, shear]
    # Finger-pose copies (pipeline.training.finger_poses): each training crop drawn again this many times
    # from its landmarks, the raised fingers' angles to the palm's axis scaled by [pose_low, pose_high]
    # (held together to spread) and every finger turned by N(0, pose_jitter_deg). Only for crops drawn
    # from the landmarks.
    pose_copies: int = 2
    pose_low: float = 0.4
    pose_high: float = 1.2
    pose_jitter_deg: float = 5.0
    # A five's copy drawn with its fingers held closer than this factor also has its thumb laid in toward the index by
    # the same factor, as a flat hand's is (finger_poses.lay_thumb_in); 0 turns it off. 0.7 lays it in for the
    # copies with the fingers together: leave one source out measured it better than 0, 0.55, 0.85 and 1 on all
    # held-out crops, backs of hands and fingers held together (models/MODEL_CARD.md).
    thumb_in: float = 0.7
    # Each copy also turned in 3D about the wrist by up to this many degrees, about the palm's across axis
    # (fingers toward or away from the camera) and about its length axis (the palm toward edge-on), and its
    # square fitted again (finger_poses.tilt_hand).
    pose_tilt_deg: float = 30.0
    # This share of the copies is drawn as the pose seen from its other side (finger_poses.other_side): each folded
    # finger's depth reversed about its base, as MediaPipe draws a back of the hand.
    pose_flip: float = 0.0
    # Drawn non-gestures (finger_poses.none_poses), as a share of the training crops (copies included),
    # labelled none. Only for the count labels with none, on crops drawn from the landmarks.
    none_poses: float = 0.25
    # The share of those that close a circle of thumb and index, the other fingers raised: the OK sign
    # (finger_poses.CIRCLES).
    none_circles: float = 0.2
    # Each drawn non-gesture (and drawn count style, below) also turned in 3D by up to this many degrees, as the pose
    # copies are by pose_tilt_deg (finger_poses.none_hands).
    none_tilt_deg: float = 0.0
    # Drawn counts in other styles (finger_poses.style_poses: a two of thumb and index, a thumb-out three), as a share
    # of the training crops (copies included), labelled with their count. The shipped model is trained with 0.07
    # (models/MODEL_CARD.md); off by default, since only the count labels have these styles.
    style_poses: float = 0.0

    def __post_init__(self) -> None:
        if self.pose_copies < 0 or not 0 < self.pose_low <= self.pose_high:
            raise UserError(f"finger-pose copies need pose_copies >= 0 and 0 < pose_low <= pose_high, got "
                            f"{self.pose_copies}, {self.pose_low}, {self.pose_high}")
        if not 0 <= self.thumb_in <= 1:
            raise UserError(f"laying the thumb in needs 0 <= thumb_in <= 1 (a spread factor), got {self.thumb_in}")
        if not 0 <= self.pose_tilt_deg < 90:
            raise UserError(f"finger-pose tilts need 0 <= pose_tilt_deg < 90, got {self.pose_tilt_deg}")
        if self.none_poses < 0:
            raise UserError(f"drawn non-gestures need none_poses >= 0, got {self.none_poses}")
        if not 0 <= self.none_circles <= 1:
            raise UserError(f"drawn circles need 0 <= none_circles <= 1, got {self.none_circles}")
        if not 0 <= self.pose_flip <= 1:
            raise UserError(f"copies seen from the other side need 0 <= pose_flip <= 1, got {self.pose_flip}")
        if self.style_poses < 0:
            raise UserError(f"drawn count styles need style_poses >= 0, got {self.style_poses}")
        if not 0 <= self.none_tilt_deg < 90:
            raise UserError(f"drawn non-gesture tilts need 0 <= none_tilt_deg < 90, got {self.none_tilt_deg}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict) -> AugmentConfig:
        """The config a run recorded (:meth:`to_dict`). A field the record lacks was added after that run and takes
        its off value (:data:`NO_AUGMENT`'s), so that the run is made again as it was, not with today's defaults."""
        return cls(**{**asdict(NO_AUGMENT), **record})


NO_AUGMENT = AugmentConfig(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, pose_copies=0, thumb_in=0, pose_tilt_deg=0, none_poses=0, none_circles=0,
                          none_tilt_deg=0, style_poses=0, pose_flip=0)


def augment_setting(item: str) -> tuple[str, float]:
    """One ``KEY=VALUE`` setting of an :class:`AugmentConfig` field (``pose_tilt_deg=0``, ``style_poses=0.07``): the
    field and its value, a number of the field's type. A ValueError says what is wrong, naming the fields."""
    key, _, text = item.partition("=")
    defaults = asdict(AugmentConfig())
    if key not in defaults or not text:
        raise ValueError(f"{item!r} is not KEY=VALUE with KEY one of {', '.join(defaults)}")
    kind = type(defaults[key])
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{key} takes {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    if not math.isfinite(value):  # as the other number options: nan or inf means nothing for a setting
        raise ValueError(f"{key} takes a finite number, got {text!r}")
    return key, value


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) * (high - low) + low


def augment(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Augment a (B, 1, S, S) float batch in [0, 1]; the black background stays black."""
    b, _, s, _ = x.shape
    if b == 0:
        return x
    hand = (x > 0).to(x.dtype)
    if cfg.rotate_deg or cfg.scale or cfg.shift or cfg.squash or cfg.shear:
        angle = _uniform(b, -cfg.rotate_deg, cfg.rotate_deg, gen) * math.pi / 180
        zoom = _uniform(b, 1 - cfg.scale, 1 + cfg.scale, gen)
        tx, ty = (_uniform(b, -2 * cfg.shift, 2 * cfg.shift, gen) for _ in range(2))
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
        if cfg.squash or cfg.shear:
            # Output -> input sampling grid: an image squashed by q is sampled 1/q apart along y.
            squash = 1 / _uniform(b, 1 - cfg.squash, 1, gen) if cfg.squash else torch.ones(b)
            shear = _uniform(b, -cfg.shear, cfg.shear, gen) if cfg.shear else torch.zeros(b)
            view = torch.stack([torch.stack([torch.ones(b), shear], 1), torch.stack([torch.zeros(b), squash], 1)], 1)
            theta = torch.cat([theta[:, :, :2] @ view, theta[:, :, 2:]], 2)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(torch.cat([x, hand], 1), grid, align_corners=False, padding_mode="zeros")
        x, hand = x[:, :1], (x[:, 1:] > 0.5).to(x.dtype)
    if cfg.gamma:
        g = torch.exp(_uniform(b, -cfg.gamma, cfg.gamma, gen)).view(b, 1, 1, 1)
        x = x.clamp_min(1e-6) ** g
    if cfg.contrast or cfg.brightness:
        c = _uniform(b, 1 - cfg.contrast, 1 + cfg.contrast, gen).view(b, 1, 1, 1)
        br = _uniform(b, -cfg.brightness, cfg.brightness, gen).view(b, 1, 1, 1)
        # Contrast about each hand's own mean, so a dark hand does not simply turn black.
        mean = (x * hand).sum((2, 3), keepdim=True) / hand.sum((2, 3), keepdim=True).clamp_min(1)
        x = (x - mean) * c + mean + br
    if cfg.blur_prob:
        pick = torch.rand(b, generator=gen) < cfg.blur_prob
        if pick.any():
            small = F.interpolate(x[pick], scale_factor=0.5, mode="area")
            x = x.clone()
            x[pick] = F.interpolate(small, size=(s, s), mode="bilinear", align_corners=False)
    if cfg.erase_prob:
        pick = (torch.rand(b, generator=gen) < cfg.erase_prob).view(b, 1, 1, 1)
        side = torch.randint(s // 6, s // 3 + 1, (b,), generator=gen).view(b, 1, 1, 1)
        cy, cx = (torch.randint(0, s, (b,), generator=gen).view(b, 1, 1, 1) for _ in range(2))
        ys = torch.arange(s).view(1, 1, s, 1)
        xs = torch.arange(s).view(1, 1, 1, s)
        box = ((ys - cy).abs() * 2 < side) & ((xs - cx).abs() * 2 < side) & pick
        x = x.masked_fill(box, 0.0)
    return (x * hand).clamp(0, 1)
