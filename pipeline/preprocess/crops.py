"""The crop stage: a hand becomes a small grayscale image, by one function that every command shares.

Coordinates are continuous pixels throughout: a W x H frame spans [0, W] x [0, H] and pixel
``(i, j)`` covers ``[j, j+1) x [i, i+1)``. In these coordinates mirroring a frame is exactly
``x -> W - x``, which makes "a mirrored left hand equals the right hand" hold to the pixel.
:func:`warp` converts to OpenCV's pixel-centre convention in one place.

A :class:`Crop` keeps the 2x3 affine from frame to crop, so a heatmap on the crop grid goes back
onto the frame with one inverse warp (see :mod:`pipeline.draw.heatmaps`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

from pipeline.errors import UserError
from pipeline.preprocess.hands import FINGERS, HAND_CONNECTIONS, MIDDLE_MCP, PALM, WRIST, Hand

MASKS = ("none", "hull", "bones")
#: How a hand is mirrored before it is cropped (see :func:`mirrors`).
MIRRORS = ("chirality", "handedness", "none")
#: What a masked crop shows of the hand: the photo's gray levels, the mask alone, the mask shaded by the
#: landmarks' depth, or that with each finger outlined (see :class:`CropSettings`).
FILLS = ("image", "mask", "depth", "outlined")
#: The fills drawn from the landmarks alone (no pixel of the photo), which training can draw anew; those shaded by depth.
LANDMARK_FILLS, DEPTH_FILLS = ("mask", "depth", "outlined"), ("depth", "outlined")
#: ``fill="depth"``: the gray level of a bone at the wrist's depth, its change per palm length nearer the camera,
#: and the range it is clipped to (the background stays 0).
DEPTH_GRAY, DEPTH_GAIN, DEPTH_RANGE = 150.0, 120.0, (40.0, 255.0)
#: ``fill="outlined"``: the black outline of each finger and the palm, as a share of the bone width on each side.
OUTLINE = 0.1
#: 2: ``mirror`` (a rule) replaced ``mirror_left`` (handedness or nothing). 3: ``fill``. 4: ``fill="outlined"``.
#: Older settings still load.
CROP_VERSION = 4
INDEX_MCP, PINKY_MCP = 5, 17
#: The bone mask's parts (:func:`hand_mask`, :func:`depth_render`): the palm polygon's edges, the finger bones, and those bones
#: finger by finger (base to tip).
_PALM_EDGES = tuple((a, b) for a, b in HAND_CONNECTIONS if a in PALM and b in PALM)
_FINGER_BONES = tuple((a, b) for a, b in HAND_CONNECTIONS if not (a in PALM and b in PALM))
_EACH_FINGER = tuple(tuple(zip((base, *chain[:-1]), chain)) for base, chain in FINGERS)


@dataclass(frozen=True)
class CropSettings:
    """How a hand is turned into a crop. Saved with every dataset and every checkpoint.

    Attributes:
        size: side of the crop in pixels (LeNet-5 takes 28).
        margin: extra room around the landmark box, as a fraction of its longer side on each side.
        rotate: turn the hand so that wrist -> middle-finger base points up.
        mirror: which hands are mirrored, so that every crop shows the thumb on the same side:
            ``"chirality"`` mirrors a hand whose 2D landmarks turn like a left palm's (see
            :func:`looks_left`): a left palm and a right hand's back both, since one is the other's
            mirror image; ``"handedness"`` mirrors the hands MediaPipe names left (a right hand seen
            from the back is then the mirror image of one seen from the palm); ``"none"``.
        mask: ``"none"``; ``"hull"`` (convex hull of the landmarks, which fills the gaps between
            spread fingers); or ``"bones"`` (thick finger segments plus the palm, which keeps the
            gaps from the fingertips down to where the fingers meet).
        bone_width: bone thickness for ``mask="bones"``, as a fraction of the palm length
            (wrist to middle-finger base).
        fill: what the crop shows inside the mask: ``"image"``, the photo's gray levels; ``"mask"``,
            the mask alone (a silhouette drawn from the landmarks), which carries the hand's shape and
            nothing of its skin, light or camera; or ``"depth"`` (``mask="bones"`` only), the palm and
            each finger bone drawn from the 21 landmarks, brighter the nearer MediaPipe puts it to the
            camera, nearer ones over farther ones (see :func:`depth_render`), so a finger bent toward
            the camera is told from one held up; or ``"outlined"``, that with each finger and the palm
            outlined in black (:data:`OUTLINE`), so fingers held together show as fingers, not one mitten.
        render_scale: the crop is warped at ``size * render_scale`` pixels, masked, then reduced
            with area interpolation; the large render is what datasets keep for re-rendering.
        version: the crop code's version; a checkpoint from a newer one is refused.
    """

    size: int = 28
    margin: float = 0.15
    rotate: bool = True
    mirror: str = "chirality"
    mask: str = "bones"
    bone_width: float = 0.25
    render_scale: int = 4
    fill: str = "image"
    version: int = CROP_VERSION

    def __post_init__(self) -> None:
        if self.mirror not in MIRRORS:
            raise UserError(f"unknown mirror rule {self.mirror!r}; choose one of {', '.join(MIRRORS)}")
        if self.mask not in MASKS:
            raise UserError(f"unknown crop mask {self.mask!r}; choose one of {', '.join(MASKS)}")
        if self.fill not in FILLS:
            raise UserError(f"unknown crop fill {self.fill!r}; choose one of {', '.join(FILLS)}")
        if self.fill == "mask" and self.mask == "none":
            raise UserError("a crop filled with its mask needs a mask; choose --mask bones or hull")
        if self.fill in DEPTH_FILLS and self.mask != "bones":
            raise UserError(f"a depth-shaded crop is drawn bone by bone; it needs the bones mask (--mask bones, collect's "
                            f"default), not {self.mask}")
        if not 8 <= self.size <= 512:
            raise UserError(f"crop size {self.size} is out of range; use 8 to 512 pixels")
        if not 0 <= self.margin <= 2:
            raise UserError(f"crop margin {self.margin} is out of range; use 0 to 2")
        if self.render_scale < 1:
            raise UserError(f"crop render_scale must be at least 1, got {self.render_scale}")
        if self.version > CROP_VERSION:
            raise UserError(
                f"crop settings of version {self.version} come from a newer release (this one knows "
                f"{CROP_VERSION}); upgrade the package"
            )

    @property
    def render_size(self) -> int:
        return self.size * self.render_scale

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, values: dict, where: str = "crop settings") -> "CropSettings":
        """Build settings from a saved dict; an unknown key means data from another version: refuse it."""
        values = dict(values)
        if "mirror_left" in values and "mirror" not in values:  # version 1: mirrored by handedness, or not at all
            values["mirror"] = "handedness" if values.pop("mirror_left") else "none"
            values["version"] = CROP_VERSION  # the same crops, described by this version's fields
        if values.get("version", CROP_VERSION) < CROP_VERSION:
            # Versions 2 and 3 made the crops their fields still describe (2 had no fill: the image, the default).
            values["version"] = CROP_VERSION
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(
                f"{where}: unknown crop setting(s) {', '.join(unknown)}; they come from another version "
                "of this package: upgrade it, or re-make the data with this version"
            )
        try:
            return cls(**values)
        except TypeError as e:
            raise UserError(f"{where}: bad crop settings ({e})") from None

    @classmethod
    def from_json(cls, text: str, where: str = "crop settings") -> "CropSettings":
        return cls.from_dict(json.loads(text), where)


@dataclass
class Crop:
    """A hand crop and how it was made.

    Attributes:
        image: (size, size) uint8 grayscale, what the CNN sees.
        affine: (2, 3) float64 map from frame pixels to crop pixels (continuous coordinates).
        large: (size*render_scale)^2 uint8 grayscale render *before* masking, kept by datasets so
            that a set can be re-rendered at another size or mask without the source photos.
        mask: the mask at the large render's resolution (uint8 0/255), or None for ``mask="none"``.
        settings: the settings that made it.
        mirrored: True when the hand was mirrored (see :func:`mirrors`).
    """

    image: np.ndarray
    affine: np.ndarray
    large: np.ndarray
    mask: np.ndarray | None
    settings: CropSettings
    mirrored: bool = False

    def box(self) -> np.ndarray:
        """The crop's square in frame pixels: 4 corners (x, y), clockwise from the crop's top-left."""
        s = self.settings.size
        return transform_points(invert_affine(self.affine), np.array([[0, 0], [s, 0], [s, s], [0, s]], float))


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine."""
    return cv2.invertAffineTransform(np.asarray(affine, np.float64))


def transform_points(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to (N, 2) points."""
    points = np.asarray(points, np.float64)
    return points @ affine[:, :2].T + affine[:, 2]


def upright_turn(landmarks: np.ndarray) -> np.ndarray:
    """The 2x2 rotation that turns the hand upright: wrist -> middle-finger base points to -y (up on screen).

    It maps frame directions to upright ones (``xy @ R.T``); the crop's ``rotate`` setting uses it. A palm of
    no length (wrist and middle-finger base on one pixel) gets the half turn.
    """
    xy = np.asarray(landmarks, np.float64)[:, :2]
    up = xy[MIDDLE_MCP] - xy[WRIST]
    angle = np.arctan2(up[0], -up[1])
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, s], [-s, c]])


def hand_affine(landmarks: np.ndarray, mirror: bool, settings: CropSettings, out_size: float) -> np.ndarray:
    """The 2x3 affine from frame pixels onto an ``out_size`` square around the hand.

    The square is centred on the landmark box (taken in the rotated frame when ``rotate``) and its
    side is the box's longer side times ``1 + 2 * margin``; ``mirror`` flips it left-right.
    """
    xy = np.asarray(landmarks, np.float64)[:, :2]
    rot = upright_turn(xy) if settings.rotate else np.eye(2)
    turned = xy @ rot.T
    lo, hi = turned.min(0), turned.max(0)
    centre = (lo + hi) / 2
    side = max(float((hi - lo).max()) * (1 + 2 * settings.margin), 1e-3)
    scale = out_size / side
    linear = scale * rot
    if mirror:
        linear = np.diag([-1.0, 1.0]) @ linear
    # Send the box centre to the crop centre.
    shift = np.array([out_size / 2, out_size / 2]) - linear @ (rot.T @ centre)
    return np.hstack([linear, shift[:, None]])


def warp(image: np.ndarray, affine: np.ndarray, size: tuple[int, int], flags: int = cv2.INTER_LINEAR,
         border_value: float | tuple = 0) -> np.ndarray:
    """``cv2.warpAffine`` with an affine given in continuous coordinates (see module docstring)."""
    a = np.asarray(affine, np.float64)
    # p_cv = p - 0.5 on both sides: t_cv = t + L @ [0.5, 0.5] - 0.5
    cv_affine = a.copy()
    cv_affine[:, 2] = a[:, 2] + a[:, :2] @ np.array([0.5, 0.5]) - 0.5
    return cv2.warpAffine(image, cv_affine, size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)


def hand_mask(points: np.ndarray, kind: str, size: int, bone_width: float) -> np.ndarray | None:
    """A uint8 (size, size) mask, 255 on the hand, from landmarks already in crop pixels.

    ``kind``: ``bones`` (palm and finger bones, the crop mask), ``hull`` (their convex hull),
    ``fingers`` (the finger bones beyond the knuckles only: where a count is shown), or ``none``.
    """
    if kind == "none":
        return None
    mask = np.zeros((size, size), np.uint8)
    shift = 4  # draw with 1/16 px precision
    pts = np.round((points[:, :2] - 0.5) * (1 << shift)).astype(np.int32)
    palm_len = float(np.linalg.norm(points[MIDDLE_MCP, :2] - points[WRIST, :2]))
    width = max(1, int(round(bone_width * palm_len)))
    if kind == "hull":
        # Landmarks sit on the bones' centre lines: widen the hull by half a finger, as the bones are.
        hull = cv2.convexHull(pts)
        cv2.fillConvexPoly(mask, hull, 255, cv2.LINE_AA, shift)
        cv2.polylines(mask, [hull], True, 255, width, cv2.LINE_AA, shift)
        return mask
    fingers = kind == "fingers"
    if not fingers:
        cv2.fillPoly(mask, [pts[list(PALM)]], 255, cv2.LINE_AA, shift)
    bones = _FINGER_BONES if fingers else HAND_CONNECTIONS
    for a, b in bones:
        cv2.line(mask, tuple(pts[a]), tuple(pts[b]), 255, width, cv2.LINE_AA, shift)
    # Round joints and fingertips; the tip landmark sits a little inside the finger's end.
    for i in sorted({i for bone in bones for i in bone}):
        cv2.circle(mask, tuple(pts[i]), width // 2, 255, -1, cv2.LINE_AA, shift)
    return mask


def crop_points(affine: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(21, 3) landmarks in the pixels of the crop an ``affine`` makes: x, y mapped, z scaled as x and y are."""
    landmarks = np.asarray(landmarks, np.float64)
    scale = np.sqrt(abs(np.linalg.det(np.asarray(affine, np.float64)[:, :2])))
    return np.column_stack([transform_points(affine, landmarks[:, :2]), landmarks[:, 2] * scale])


def depth_render(points: np.ndarray, size: int, bone_width: float, rim: float = 0.0) -> np.ndarray:
    """The ``fill="depth"`` (or, with ``rim``, ``"outlined"``) image (uint8, ``size`` square) from (21, 3) landmarks
    already in its pixels.

    The palm (its polygon, edges and joints) and each finger bone are drawn as the bone mask draws them, so the
    lit pixels are the mask's, each part in one gray level: :data:`DEPTH_GRAY` at the wrist's depth,
    :data:`DEPTH_GAIN` brighter per palm length nearer the camera (MediaPipe's z), clipped to
    :data:`DEPTH_RANGE`; farther parts are drawn first, so nearer ones cover them.

    ``rim`` > 0 outlines the palm and each finger in black: a band ``rim`` of the bone width wide (in whole pixels:
    one at the usual 112-pixel render, so a fraction of a pixel in a 28-pixel crop) just inside the bone mask's
    edge, so nothing outside the mask is lit. A finger is then drawn whole, all its bones after the farther
    fingers': fingers held together show as fingers, not as one mitten.
    """
    image = np.zeros((size, size), np.uint8)
    shift = 4  # draw with 1/16 px precision
    pts = np.round((points[:, :2] - 0.5) * (1 << shift)).astype(np.int32)
    palm_len = float(np.linalg.norm(points[MIDDLE_MCP, :2] - points[WRIST, :2])) + 1e-6
    width = max(1, int(round(bone_width * palm_len)))
    inner = max(1, width - 2 * int(round(rim * width))) if rim > 0 else width
    near = -(points[:, 2] - points[WRIST, 2]) / palm_len  # MediaPipe's z falls toward the camera

    def gray(nearness: float) -> int:
        return int(np.clip(DEPTH_GRAY + DEPTH_GAIN * nearness, *DEPTH_RANGE))

    def line(a: int, b: int, level: int, w: int) -> None:
        cv2.line(image, tuple(pts[a]), tuple(pts[b]), level, w, cv2.LINE_AA, shift)

    def dot(i: int, level: int, w: int) -> None:
        cv2.circle(image, tuple(pts[i]), w // 2, level, -1, cv2.LINE_AA, shift)

    palm_near = float(near[list(PALM)].mean())

    def draw_palm(w: int) -> None:  # polygon, its edges as thick as the bones, round joints, in one gray
        level = gray(palm_near)
        cv2.fillPoly(image, [pts[list(PALM)]], level, cv2.LINE_AA, shift)
        for a, b in _PALM_EDGES:
            line(a, b, level, w)
        for i in PALM:
            dot(i, level, w)

    if rim <= 0:
        parts = [(palm_near, None)] + [(float(near[a] + near[b]) / 2, (a, b)) for a, b in _FINGER_BONES]
        for nearness, bone in sorted(parts, key=lambda part: part[0]):  # farthest first
            if bone is None:
                draw_palm(width)
            else:
                line(*bone, gray(nearness), width)
                dot(bone[1], gray(near[bone[1]]), width)  # a round joint, tip
        return image
    parts = [(palm_near, ())] + [(float(np.mean([near[a] + near[b] for a, b in f])) / 2, f) for f in _EACH_FINGER]
    for _, finger in sorted(parts, key=lambda part: part[0]):  # farthest first
        if not finger:
            for a, b in _PALM_EDGES:
                line(a, b, 0, width)
            for i in PALM:
                dot(i, 0, width)
            draw_palm(inner)
            continue
        for a, b in finger:  # the black outline of the whole finger, then its bones within it
            line(a, b, 0, width)
            dot(b, 0, width)
        for a, b in sorted(finger, key=lambda bone: near[bone[0]] + near[bone[1]]):
            line(a, b, gray((near[a] + near[b]) / 2), inner)
            dot(b, gray(near[b]), inner)
    return image


def fill_crop(large: np.ndarray | None, points: np.ndarray, settings: CropSettings) -> tuple[np.ndarray, np.ndarray | None]:
    """The crop of a large render and the mask it used, from (21, 3) landmarks in the render's pixels
    (:func:`crop_points`), by ``settings``' mask and fill; ``large`` may be None for the fills drawn from the
    landmarks alone (``mask``, ``depth``)."""
    if large is None and settings.fill == "image":
        raise ValueError("an image-filled crop needs the large render")
    big = settings.render_size if large is None else large.shape[0]
    mask = hand_mask(points, settings.mask, big, settings.bone_width)
    if settings.fill in DEPTH_FILLS:
        rim = OUTLINE if settings.fill == "outlined" else 0.0
        return finish_crop(depth_render(points, big, settings.bone_width, rim), None, settings.size), mask
    return finish_crop(mask if large is None else large, mask, settings.size, settings.fill), mask


def finish_crop(large: np.ndarray, mask: np.ndarray | None, size: int, fill: str = "image") -> np.ndarray:
    """Mask a large render (or, for ``fill="mask"``, take the mask itself) and reduce it to ``size`` with area
    interpolation."""
    if fill == "mask" and mask is not None:
        large = mask
    elif mask is not None:
        large = ((large.astype(np.uint16) * mask + 127) // 255).astype(np.uint8)
    if large.shape[0] == size:
        return large
    return cv2.resize(large, (size, size), interpolation=cv2.INTER_AREA)


def looks_left(landmarks: np.ndarray) -> bool:
    """True if the hand's 2D landmarks turn as a left palm's do (as a right hand's back does).

    The sign of cross(wrist -> index MCP, wrist -> little-finger MCP) in image coordinates (y down):
    positive for a left hand with its palm to the camera. A turn in the image plane keeps the sign,
    so it does not matter whether the hand is upright; mirroring the image flips it.
    """
    xy = np.asarray(landmarks, np.float64)[:, :2]
    a, b = xy[INDEX_MCP] - xy[WRIST], xy[PINKY_MCP] - xy[WRIST]
    return bool(a[0] * b[1] - a[1] * b[0] > 0)


def seen_from_back(landmarks: np.ndarray, handedness: str) -> bool:
    """Whether a hand shows the camera its back: its apparent turn (:func:`looks_left`) contradicts
    MediaPipe's handedness, which is anatomical (``"Left"`` or ``"Right"``)."""
    return looks_left(landmarks) != (handedness == "Left")


def mirrors(hand: Hand, settings: CropSettings) -> bool:
    """Whether ``settings.mirror`` mirrors this hand's crop."""
    if settings.mirror == "chirality":
        return looks_left(hand.landmarks)
    return settings.mirror == "handedness" and hand.is_left


def crop_hand(frame_bgr: np.ndarray, hand: Hand, settings: CropSettings = CropSettings()) -> Crop:
    """Cut one hand out of a BGR (or grayscale) frame as a ``settings.size`` grayscale crop.

    The hand is squared with a margin (the frame is padded with black past its borders),
    optionally turned upright and mirrored (:func:`mirrors`), rendered at ``render_scale`` times the size,
    masked, and reduced with area interpolation.
    """
    mirror = mirrors(hand, settings)
    big = settings.render_size
    affine_big = hand_affine(hand.landmarks, mirror, settings, big)
    patch = warp(frame_bgr, affine_big, (big, big))
    large = patch if patch.ndim == 2 else cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
    image, mask = fill_crop(large, crop_points(affine_big, hand.landmarks), settings)
    affine = affine_big.copy()
    affine /= settings.render_scale
    return Crop(image, affine, large, mask, settings, mirror)


def rerender(large: np.ndarray, landmarks_in_large: np.ndarray, settings: CropSettings) -> np.ndarray:
    """Re-make a crop from a stored large render with another size, mask or fill (same rotation/mirror), from
    (21, 3) landmarks in the render's pixels (:func:`crop_points`; (21, 2) do for fills not shaded by depth)."""
    points = np.asarray(landmarks_in_large, np.float64)
    if points.shape[1] == 2:
        if settings.fill in DEPTH_FILLS:
            raise ValueError("a depth-shaded crop needs the landmarks' z")
        points = np.column_stack([points, np.zeros(len(points))])
    return fill_crop(large, points, settings)[0]


__all__ = [
    "Crop", "CropSettings", "DEPTH_FILLS", "FILLS", "LANDMARK_FILLS", "MASKS", "MIRRORS", "OUTLINE", "crop_hand",
    "crop_points", "depth_render", "fill_crop", "finish_crop", "hand_affine", "hand_mask", "invert_affine",
    "looks_left", "mirrors", "rerender", "seen_from_back", "transform_points", "warp",
]
