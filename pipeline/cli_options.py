"""Argparse options shared by several commands (crop settings, hand model), so each is defined once."""

from __future__ import annotations

import argparse

from .crops import MASKS, CropSettings
from .hands import HAND_MODEL_ENV


def add_hand_options(parser: argparse.ArgumentParser) -> None:
    """``--hand-model`` and ``--num-hands``."""
    parser.add_argument("--hand-model", metavar="PATH",
                        help=f"MediaPipe hand_landmarker.task (default: ${HAND_MODEL_ENV}, else models/hand_landmarker.task)")
    parser.add_argument("--num-hands", type=int, default=2, metavar="N", help="most hands per frame (default: 2)")


def add_crop_options(parser: argparse.ArgumentParser) -> None:
    """The crop settings, defaulting to :class:`CropSettings`' defaults."""
    d = CropSettings()
    g = parser.add_argument_group("crop settings (recorded in the dataset; every crop of a dataset uses the same)")
    g.add_argument("--crop-size", type=int, default=d.size, metavar="PX", help=f"crop side in pixels (default: {d.size})")
    g.add_argument("--margin", type=float, default=d.margin, help=f"room around the hand, fraction of its size per side (default: {d.margin})")
    g.add_argument("--no-rotate", action="store_true", help="do not turn hands upright (wrist -> middle finger up)")
    g.add_argument("--no-mirror", action="store_true", help="do not mirror left hands onto right hands")
    g.add_argument("--mask", choices=MASKS, default=d.mask,
                   help=f"background mask: none, hull (convex hull) or bones (finger bones + palm; default: {d.mask})")


def crop_settings_from(args: argparse.Namespace) -> CropSettings:
    """Build :class:`CropSettings` from the options of :func:`add_crop_options`."""
    return CropSettings(size=args.crop_size, margin=args.margin, rotate=not args.no_rotate,
                        mirror_left=not args.no_mirror, mask=args.mask)
