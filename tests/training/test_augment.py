"""The augmentation config as runs record it."""

from __future__ import annotations

from dataclasses import replace

from pipeline.training.augment import NO_AUGMENT, AugmentConfig


def test_a_recorded_config_is_read_back_as_it_was_and_fields_added_since_are_off() -> None:
    today = replace(AugmentConfig(), none_tilt_deg=12.5, rotate_deg=7.0)
    assert AugmentConfig.from_record(today.to_dict()) == today
    # A run recorded before the 3D tilts, circles, non-gesture tilts, laid-in thumbs, flips and count styles existed: they take their
    # off values, not today's defaults (pose_tilt_deg 30, none_circles 0.2, thumb_in 0.7), and the recorded fields
    # keep theirs.
    added = {"pose_tilt_deg", "none_circles", "none_tilt_deg", "thumb_in", "pose_flip", "style_poses"}
    old = {k: v for k, v in AugmentConfig().to_dict().items() if k not in added}
    again = AugmentConfig.from_record(old)
    assert (again.pose_tilt_deg, again.none_circles, again.none_tilt_deg, again.thumb_in) == (0, 0, 0, 0)
    assert (AugmentConfig().pose_tilt_deg, AugmentConfig().none_circles, AugmentConfig().thumb_in) == (30, 0.2, 0.7)
    # The copies from the other side and the drawn count styles are off in a run recorded before them, whatever
    # today's default.
    assert (again.pose_flip, again.style_poses) == (NO_AUGMENT.pose_flip, NO_AUGMENT.style_poses) == (0, 0)
    assert AugmentConfig.from_record(replace(today, pose_flip=0.5, style_poses=0.07).to_dict()).pose_flip == 0.5
    assert again.rotate_deg == AugmentConfig().rotate_deg == 15.0 and again.none_poses == 0.25 != NO_AUGMENT.none_poses
