"""The crop stage on real hands: squares, rotation, mirroring, masks, settings, re-rendering."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest

from helpers import REPO
from pipeline.errors import UserError
from pipeline.preprocess.crops import (
    CROP_VERSION,
    CropSettings,
    crop_hand,
    crop_points,
    invert_affine,
    looks_left,
    rerender,
    transform_points,
    upright_turn,
)
from pipeline.preprocess.hands import MIDDLE_MCP, WRIST, Hand

DEFAULT = CropSettings()


SETTINGS = [
    DEFAULT,
    dataclasses.replace(DEFAULT, rotate=False),
    dataclasses.replace(DEFAULT, margin=0.0, mask="none"),
    dataclasses.replace(DEFAULT, size=64, margin=0.4, mask="hull", render_scale=2),
    dataclasses.replace(DEFAULT, fill="depth"),
]


def _hands(open_palm, two_palms, left_palm):
    return [(d, h) for d in (open_palm, two_palms, left_palm) for h in d.hands]


@pytest.fixture(scope="module")
def all_hands(open_palm, two_palms, left_palm):
    hands = _hands(open_palm, two_palms, left_palm)
    assert sorted(h.handedness for _, h in hands) == ["Left", "Left", "Right", "Right"]
    return hands


def _expected_square(hand: Hand, settings: CropSettings, mirror: bool) -> np.ndarray:
    """The crop's corners in frame pixels, computed from the landmarks without the crop code.

    The crop's "down" is the direction from the middle-finger base to the wrist (or the frame's
    down without rotation); its "right" is that turned a quarter (or flipped, when mirrored).
    """
    xy = hand.landmarks[:, :2].astype(np.float64)
    if settings.rotate:
        up = xy[MIDDLE_MCP] - xy[WRIST]
        down = -up / np.linalg.norm(up)
    else:
        down = np.array([0.0, 1.0])
    right = np.array([down[1], -down[0]])  # (0, 1) -> (1, 0) in image coordinates
    if mirror:
        right = -right
    along_x, along_y = xy @ right, xy @ down
    centre = (along_x.min() + along_x.max()) / 2 * right + (along_y.min() + along_y.max()) / 2 * down
    side = max(np.ptp(along_x), np.ptp(along_y)) * (1 + 2 * settings.margin)
    h = side / 2
    return np.array([centre + sx * h * right + sy * h * down for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"size{s.size}-m{s.margin}-rot{int(s.rotate)}-{s.mask}")
def test_crop_square_and_landmarks_follow_the_settings(all_hands, settings):
    for photo, hand in all_hands:
        crop = crop_hand(photo.image, hand, settings)
        s = settings.size
        assert crop.image.shape == (s, s) and crop.image.dtype == np.uint8
        assert crop.large.shape == (settings.render_size,) * 2
        # Palms to the camera: the landmarks' turn and MediaPipe's handedness agree on which to mirror.
        assert crop.mirrored == looks_left(hand.landmarks) == (hand.handedness == "Left")
        # The inverse affine takes the crop's corners onto the square computed from the landmarks.
        expected = _expected_square(hand, settings, crop.mirrored)
        scale = np.linalg.norm(expected[1] - expected[0])
        assert np.abs(crop.box() - expected).max() < 1e-6 * scale
        corners = np.array([[0, 0], [s, 0], [s, s], [0, s]], float)
        assert np.abs(transform_points(invert_affine(crop.affine), corners) - expected).max() < 1e-6 * scale
        # Every landmark lands inside the crop, and the margin is kept on the longer side.
        pts = transform_points(crop.affine, hand.landmarks[:, :2])
        inner = s / (1 + 2 * settings.margin)
        edge = settings.margin * inner
        assert pts.min() >= edge - 1e-6 and pts.max() <= s - edge + 1e-6
        assert np.ptp(pts, axis=0).max() == pytest.approx(inner, abs=1e-6)
        assert (pts.min(0) + pts.max(0)) / 2 == pytest.approx([s / 2, s / 2], abs=1e-6)
        # The large render uses the same geometry, scaled: its mask covers every landmark.
        if crop.mask is not None:
            big = np.floor(pts * settings.render_scale).astype(int)
            assert (crop.mask[big[:, 1], big[:, 0]] == 255).all()


def test_without_rotation_the_square_is_axis_aligned_on_the_landmark_box(open_palm):
    settings = dataclasses.replace(DEFAULT, rotate=False, margin=0.25)
    (hand,) = open_palm.hands
    x0, y0, x1, y1 = hand.box()
    side = max(x1 - x0, y1 - y0) * 1.5
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    box = crop_hand(open_palm.image, hand, settings).box()
    expected = [[cx - side / 2, cy - side / 2], [cx + side / 2, cy - side / 2],
                [cx + side / 2, cy + side / 2], [cx - side / 2, cy + side / 2]]
    assert box == pytest.approx(np.array(expected), abs=1e-6)


def test_rotation_points_wrist_to_middle_base_straight_up(all_hands):
    for photo, hand in all_hands:
        crop = crop_hand(photo.image, hand, DEFAULT)
        wrist, base = transform_points(crop.affine, hand.landmarks[[WRIST, MIDDLE_MCP], :2])
        v = base - wrist
        assert v[1] < 0  # up on screen
        assert abs(np.arctan2(v[0], -v[1])) < 1e-6
        # The fingertips are above the wrist in an upright open palm.
        tips = transform_points(crop.affine, hand.landmarks[[8, 12, 16, 20], :2])
        assert (tips[:, 1] < wrist[1] - DEFAULT.size / 3).all()


def test_upright_turn_is_the_rotation_the_crop_makes(all_hands):
    for photo, hand in all_hands:
        turn = upright_turn(hand.landmarks)
        np.testing.assert_allclose(turn @ turn.T, np.eye(2), atol=1e-12)
        assert np.linalg.det(turn) == pytest.approx(1.0)  # a turn, never a flip
        up = (hand.landmarks[MIDDLE_MCP, :2] - hand.landmarks[WRIST, :2]) @ turn.T
        assert abs(up[0]) < 1e-9 and up[1] < 0
        # The crop's affine is that turn, scaled (the mirror, when any, comes after it).
        crop = crop_hand(photo.image, hand, dataclasses.replace(DEFAULT, mirror="none"))
        linear = crop.affine[:, :2]
        np.testing.assert_allclose(linear / np.sqrt(abs(np.linalg.det(linear))), turn, atol=1e-9)
    # A palm of no length gets the half turn rather than a NaN.
    flat = np.zeros((21, 3))
    np.testing.assert_allclose(upright_turn(flat), -np.eye(2), atol=1e-12)


def _rotate_photo(image: np.ndarray, hand: Hand, quarters: int) -> tuple[np.ndarray, Hand]:
    """``np.rot90`` (counter-clockwise) of the frame and the same rotation of the landmarks, exactly."""
    marks = hand.landmarks.astype(np.float64)
    for _ in range(quarters):
        width = image.shape[1]
        image = np.rot90(image)
        marks = np.stack([marks[:, 1], width - marks[:, 0], marks[:, 2]], axis=1)
    return np.ascontiguousarray(image), Hand(marks.astype(np.float32), hand.world, hand.handedness, hand.score)


@pytest.mark.parametrize("quarters", [1, 2, 3])
def test_rotated_photo_gives_the_same_upright_crop(all_hands, quarters):
    for photo, hand in all_hands:
        crop = crop_hand(photo.image, hand, DEFAULT)
        image, turned = _rotate_photo(photo.image, hand, quarters)
        assert image.shape[:2] == (photo.image.shape[:2] if quarters == 2 else photo.image.shape[1::-1])
        other = crop_hand(image, turned, DEFAULT)
        diff = np.abs(other.image.astype(int) - crop.image)
        assert diff.mean() < 2, f"{photo.path.name} rot{quarters * 90}: mean diff {diff.mean():.2f}"
        assert diff.max() <= 8


@pytest.mark.parametrize("quarters", [1, 2])
def test_without_rotation_a_rotated_photo_gives_a_rotated_crop(open_palm, quarters):
    settings = dataclasses.replace(DEFAULT, rotate=False)
    (hand,) = open_palm.hands
    crop = crop_hand(open_palm.image, hand, settings)
    image, turned = _rotate_photo(open_palm.image, hand, quarters)
    other = crop_hand(image, turned, settings)
    # Without rotate the crops differ: upright vs turned.
    assert np.abs(other.image.astype(int) - crop.image).mean() > 10
    assert np.abs(other.image.astype(int) - np.rot90(crop.image, quarters)).mean() < 2


def _mirror_photo(image: np.ndarray, hand: Hand) -> tuple[np.ndarray, Hand]:
    width = image.shape[1]
    marks = hand.landmarks.copy()
    marks[:, 0] = width - marks[:, 0]
    other = {"Left": "Right", "Right": "Left"}[hand.handedness]
    return np.ascontiguousarray(image[:, ::-1]), Hand(marks, hand.world, other, hand.score)


def _back_of(image: np.ndarray, hand: Hand) -> tuple[np.ndarray, Hand]:
    """The same hand turned to show its back: the photo's mirror image, MediaPipe's handedness unchanged
    (handedness is anatomical: a right hand stays right whichever side faces the camera)."""
    width = image.shape[1]
    marks = hand.landmarks.copy()
    marks[:, 0] = width - marks[:, 0]
    return np.ascontiguousarray(image[:, ::-1]), Hand(marks, hand.world, hand.handedness, hand.score)


def _assert_same_crop_of_mirrored_frame(crop, other, width: int) -> None:
    """``other``, cropped from the mirror image of ``crop``'s frame, is the same crop: the other mirror decision,
    the same pixels (both renders), and an affine that takes a point's mirror image to the same crop point."""
    assert crop.mirrored != other.mirrored
    assert np.abs(crop.image.astype(int) - other.image).max() <= 1
    assert np.abs(crop.large.astype(int) - other.large).max() <= 1
    flip = np.array([[-1.0, 0.0, width], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert np.abs(other.affine @ flip - crop.affine).max() < 1e-6 * np.abs(crop.affine).max()  # float32 landmarks


@pytest.mark.parametrize("settings", [DEFAULT, dataclasses.replace(DEFAULT, mirror="handedness"),
                                      dataclasses.replace(DEFAULT, rotate=False, mask="hull"),
                                      dataclasses.replace(DEFAULT, fill="depth")],
                         ids=["chirality", "handedness", "upright-hull", "depth"])
def test_mirroring_the_whole_frame_leaves_the_crop_unchanged(all_hands, settings):
    """A mirrored frame (a selfie view): every hand looks the other way and MediaPipe names it the other hand."""
    for photo, hand in all_hands:
        crop = crop_hand(photo.image, hand, settings)
        image, other_hand = _mirror_photo(photo.image, hand)
        _assert_same_crop_of_mirrored_frame(crop, crop_hand(image, other_hand, settings), photo.image.shape[1])


def test_a_back_of_hand_crop_equals_the_palm_crop_of_the_same_hand(all_hands):
    """Chirality: the back of a hand is cropped as its palm is, thumb on the same side. Handedness mirrors
    the back of a hand into the mirror image of its palm crop: the thumb changes sides."""
    by_handedness = dataclasses.replace(DEFAULT, mirror="handedness")
    for photo, hand in all_hands:
        palm = crop_hand(photo.image, hand, DEFAULT)
        image, back_hand = _back_of(photo.image, hand)
        _assert_same_crop_of_mirrored_frame(palm, crop_hand(image, back_hand, DEFAULT), photo.image.shape[1])
        palm_h, back_h = crop_hand(photo.image, hand, by_handedness), crop_hand(image, back_hand, by_handedness)
        assert np.abs(back_h.image.astype(int) - palm_h.image[:, ::-1]).max() <= 1
        assert np.abs(back_h.image.astype(int) - palm_h.image).mean() > 10


def test_the_landmarks_turn_agrees_with_handedness_on_palms_and_not_on_backs(fingers):
    """On the finger photos (palms to the camera) the two rules agree; on the green-screen photos, hands
    seen from the back, they disagree: there handedness would mirror the wrong hands."""
    from pipeline.data.load import landmarks_of, load_dataset

    def agreement(data) -> float:
        marks = landmarks_of(data.index)
        turn = np.array([looks_left(m) for m in marks])
        return float((turn == (data.index["handedness"].to_numpy() == "Left")).mean())

    assert agreement(fingers) >= 0.97
    assert agreement(load_dataset(REPO / "data" / "rps_green")) <= 0.2


def test_without_mirror_a_left_hand_crop_is_the_mirror_image(left_palm):
    (hand,) = left_palm.hands
    mirrored = crop_hand(left_palm.image, hand, DEFAULT)
    plain = crop_hand(left_palm.image, hand, dataclasses.replace(DEFAULT, mirror="none"))
    assert mirrored.mirrored and not plain.mirrored
    assert np.abs(plain.image.astype(int) - mirrored.image).mean() > 10
    assert np.abs(plain.image[:, ::-1].astype(int) - mirrored.image).max() <= 1


def test_hull_mask_fills_the_gap_that_bones_keep_and_both_clear_background(open_palm, two_palms):
    import cv2

    corners = (slice(None, None, DEFAULT.size - 1),) * 2
    for photo in (open_palm, two_palms):
        for hand in photo.hands:
            bones = crop_hand(photo.image, hand, DEFAULT)
            hull = crop_hand(photo.image, hand, dataclasses.replace(DEFAULT, mask="hull"))
            none = crop_hand(photo.image, hand, dataclasses.replace(DEFAULT, mask="none"))
            assert none.mask is None
            in_bones, in_hull = bones.mask > 0, hull.mask > 0
            # Bones lie inside the hull (up to anti-aliased edge pixels); the hull covers more.
            assert (in_bones & ~in_hull).sum() <= 0.002 * in_bones.sum()
            assert in_hull.sum() > 1.08 * in_bones.sum()
            # Between the spread thumb and index finger: the quad thumb IP, tip, index tip, PIP.
            pts = transform_points(bones.affine * DEFAULT.render_scale, hand.landmarks[:, :2])
            gap = np.zeros_like(bones.mask)
            cv2.fillPoly(gap, [np.round(pts[[3, 4, 8, 6]] - 0.5).astype(np.int32)], 1)
            gap = gap > 0
            assert gap.sum() > 300
            assert in_hull[gap].mean() > 0.99
            assert in_bones[gap].mean() < 0.75
            # Both masks zero the background: the corners of the crop, and everything off the mask.
            assert (bones.image[corners] == 0).all() and (hull.image[corners] == 0).all()
            assert (bones.large[~in_bones] > 0).mean() > 0.5  # there was something to clear
            assert (bones.image > 0).sum() < (hull.image > 0).sum() < DEFAULT.size ** 2
    # The light wall behind the open palm: unmasked corners are not black.
    (hand,) = open_palm.hands
    none = crop_hand(open_palm.image, hand, dataclasses.replace(DEFAULT, mask="none"))
    assert none.image[corners].mean() > 40


def test_settings_json_round_trip_and_refusals():
    for settings in SETTINGS:
        text = settings.to_json()
        assert json.loads(text)["version"] == CROP_VERSION
        assert CropSettings.from_json(text) == settings
        assert CropSettings.from_dict(settings.to_dict()) == settings
    values = DEFAULT.to_dict()
    with pytest.raises(UserError, match="blur") as info:
        CropSettings.from_dict({**values, "blur": 2}, "data/x/dataset.json")
    assert "data/x/dataset.json" in str(info.value)
    with pytest.raises(UserError, match="'sketch'"):
        CropSettings.from_dict({**values, "mask": "sketch"})
    with pytest.raises(UserError, match="newer"):
        CropSettings.from_json(json.dumps({**values, "version": CROP_VERSION + 1}))
    with pytest.raises(UserError, match="size"):
        CropSettings(size=4)
    with pytest.raises(UserError, match="margin"):
        CropSettings(margin=-0.1)
    with pytest.raises(UserError):
        CropSettings.from_dict({**values, "size": "28"})  # wrong type from a hand-edited file
    with pytest.raises(UserError, match="'sideways'"):
        CropSettings(mirror="sideways")
    # Version 1 (datasets and checkpoints before the mirror rule): mirror_left meant "by handedness".
    old = {k: v for k, v in values.items() if k != "mirror"} | {"version": 1}
    assert CropSettings.from_dict({**old, "mirror_left": True}) == dataclasses.replace(DEFAULT, mirror="handedness")
    assert CropSettings.from_dict({**old, "mirror_left": False}) == dataclasses.replace(DEFAULT, mirror="none")
    # Version 2 (before the fill): the crops showed the image.
    two = {k: v for k, v in values.items() if k != "fill"} | {"version": 2}
    assert CropSettings.from_dict(two) == dataclasses.replace(DEFAULT, fill="image")
    with pytest.raises(UserError, match="'paint'"):
        CropSettings(fill="paint")
    with pytest.raises(UserError, match="needs a mask"):
        CropSettings(fill="mask", mask="none")
    with pytest.raises(UserError, match=r"needs the bones mask \(--mask bones, collect's default\), not hull"):
        CropSettings(fill="depth", mask="hull")


def test_rerender_from_the_large_crop(all_hands):
    for photo, hand in all_hands:
        crop = crop_hand(photo.image, hand, DEFAULT)
        in_large = crop_points(crop.affine * DEFAULT.render_scale, hand.landmarks)
        again = rerender(crop.large, in_large, DEFAULT)
        assert np.abs(again.astype(int) - crop.image).max() <= 1
        # Another mask, or another size from the same 112 px render, equals cropping the photo that way.
        for other in (dataclasses.replace(DEFAULT, mask="hull"), dataclasses.replace(DEFAULT, mask="none"),
                      dataclasses.replace(DEFAULT, size=14, render_scale=8), dataclasses.replace(DEFAULT, fill="mask"),
                      dataclasses.replace(DEFAULT, fill="depth")):
            direct = crop_hand(photo.image, hand, other)
            assert np.abs(rerender(crop.large, in_large, other).astype(int) - direct.image).max() <= 1
        hull = rerender(crop.large, in_large, dataclasses.replace(DEFAULT, mask="hull"))
        assert np.abs(hull.astype(int) - crop.image).sum() > 500  # a different mask does change the crop


def test_a_mask_filled_crop_is_the_silhouette_whatever_the_light(all_hands):
    """fill="mask": the crop is the bone mask reduced to 28 px, the same for the photo at half its brightness,
    where the image-filled crop halves; inside the hand the silhouette is white, outside black."""
    silhouette = dataclasses.replace(DEFAULT, fill="mask")
    for photo, hand in all_hands:
        crop = crop_hand(photo.image, hand, silhouette)
        assert np.array_equal(crop.image, cv2.resize(crop.mask, (28, 28), interpolation=cv2.INTER_AREA))
        dim = (photo.image // 2).astype(np.uint8)
        assert np.array_equal(crop_hand(dim, hand, silhouette).image, crop.image)
        shown = crop_hand(photo.image, hand, DEFAULT).image.astype(float)
        halved = crop_hand(dim, hand, DEFAULT).image.astype(float)
        assert abs(halved.sum() / shown.sum() - 0.5) < 0.02
        inside = crop.mask[::4, ::4] == 255
        assert (crop.image[inside] >= 250).mean() > 0.8 and (crop.image[crop.mask[::4, ::4] == 0] == 0).mean() > 0.9


def test_a_depth_crop_is_drawn_from_the_landmarks_alone_nearer_brighter(all_hands):
    """fill="depth": the same crop from a black frame as from the photo; the palm at the wrist's depth is
    DEPTH_GRAY; the index finger moved a palm length toward the camera is DEPTH_GAIN brighter, and drawn
    over the palm, moved away it is darker."""
    from pipeline.preprocess.crops import DEPTH_GAIN, DEPTH_GRAY, DEPTH_RANGE

    depth = dataclasses.replace(DEFAULT, fill="depth", size=112, render_scale=1)  # no reduction: exact grays
    for photo, hand in all_hands:
        crop = crop_hand(photo.image, hand, depth)
        assert np.array_equal(crop_hand(np.zeros_like(photo.image), hand, depth).image, crop.image)
        assert ((crop.image > 0) == (crop.mask > 0)).mean() > 0.995  # lit where the bone mask is, nowhere else
        marks = hand.landmarks.astype(np.float64)
        flat = marks.copy()
        flat[:, 2] = marks[WRIST, 2]  # every landmark at the wrist's depth
        image = crop_hand(photo.image, dataclasses.replace(hand, landmarks=flat.astype(np.float32)), depth).image
        assert np.median(image[image > 0]) == DEPTH_GRAY
        palm_len = np.linalg.norm(marks[MIDDLE_MCP, :2] - marks[WRIST, :2])
        tip = crop_points(crop.affine, marks)[7, :2].astype(int)  # between the index finger's last two joints
        for step, sign in ((-palm_len, 1), (palm_len, -1)):
            moved = flat.copy()
            moved[[6, 7, 8], 2] += step  # MediaPipe's z falls toward the camera
            shaded = crop_hand(photo.image, dataclasses.replace(hand, landmarks=moved.astype(np.float32)), depth).image
            assert int(shaded[tip[1], tip[0]]) == int(np.clip(DEPTH_GRAY + sign * DEPTH_GAIN, *DEPTH_RANGE))


def _lit_runs(row: np.ndarray) -> int:
    """How many separate stretches of a pixel row are at least half its lit pixels' median gray."""
    lit = np.concatenate([[False], row >= 0.5 * np.median(row[row > 0]), [False]])
    return int(np.count_nonzero(lit[1:] & ~lit[:-1]))


def _dips(row: np.ndarray, depth: float = 0.1) -> int:
    """How many pixels of a row's lit stretch are a local minimum at least ``depth`` darker than the lower of the
    brightest pixels on either side of it (a gap between two fingers, however faint)."""
    lit = np.flatnonzero(row)
    r = row[lit[0]:lit[-1] + 1].astype(float)
    return sum(r[k] < r[k - 1] and r[k] <= r[k + 1] and r[k] <= (1 - depth) * min(r[:k].max(), r[k + 1:].max())
               for k in range(1, len(r) - 1))


def test_an_outlined_crop_shows_fingers_held_together_as_fingers():
    """fill="outlined" on real flat hands, fingers held together (rps_green's "paper", backs of hands), across the
    four fingers at their last joints. In the 112 px drawing a crop is reduced from, the depth fill is one lit
    stretch (a mitten) on 72 of 80 hands, the outlined fill four or more (each finger apart) on 71. In the 28 px
    crop the network sees, the outlines are faint but there: the depth crop has no gap a tenth darker than the fingers
    on 71 of 80 hands, the outlined crop two or three (of three) on all 80. The outlined fill lights only the depth
    fill's pixels, and most of them in the depth fill's grays."""
    from pipeline.data.load import landmarks_of, load_dataset
    from pipeline.preprocess.crops import OUTLINE, depth_render, fill_crop, hand_affine
    from pipeline.training.finger_poses import held_together

    data = load_dataset(REPO / "data" / "rps_green")
    marks = landmarks_of(data.index)
    fives = [i for i in range(len(data)) if data.label_names[int(data.labels[i])] == "five" and held_together(marks[i])]
    assert len(fives) >= 50
    exact = dataclasses.replace(DEFAULT, fill="depth", size=112, render_scale=1)  # no reduction: exact grays
    small = {fill: dataclasses.replace(DEFAULT, fill=fill) for fill in ("depth", "outlined")}  # 28 px from 112 px
    mitten = apart = gapless = gaps = 0
    for i in fives:
        mirrored = bool(data.index.iloc[i]["mirrored"])
        points = crop_points(hand_affine(marks[i], mirrored, exact, exact.size), marks[i])
        depth = depth_render(points, exact.size, exact.bone_width)
        outlined = depth_render(points, exact.size, exact.bone_width, rim=OUTLINE)
        assert np.array_equal(fill_crop(None, points, dataclasses.replace(exact, fill="outlined"))[0], outlined)
        # The four fingers' last joints, on one pixel row (the crop is upright).
        y = int(points[[7, 11, 15, 19], 1].mean())
        mitten += _lit_runs(depth[y]) == 1
        apart += _lit_runs(outlined[y]) >= 4
        crops = {fill: fill_crop(None, points, settings)[0] for fill, settings in small.items()}
        gapless += _dips(crops["depth"][y // DEFAULT.render_scale]) == 0
        gaps += _dips(crops["outlined"][y // DEFAULT.render_scale]) >= 2
        assert not (outlined > 0)[depth == 0].any()
        same = (outlined > 0) & (outlined == depth)
        assert same.sum() > 0.5 * (outlined > 0).sum()
    n = len(fives)
    assert mitten / n > 0.85 and apart / n > 0.8 and gapless / n > 0.8 and gaps / n > 0.95, (mitten, apart, gapless, gaps, n)
    # The crop setting: version 4, drawn as depth_render draws it with OUTLINE; older settings load as they were.
    assert CropSettings(fill="outlined").version == CROP_VERSION == 4
    three = {**DEFAULT.to_dict(), "fill": "depth", "version": 3}
    assert CropSettings.from_dict(three) == dataclasses.replace(DEFAULT, fill="depth")
    with pytest.raises(UserError, match="needs the bones mask"):
        CropSettings(fill="outlined", mask="hull")
