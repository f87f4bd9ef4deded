"""Finger-pose copies: training crops drawn again from their landmarks, the fingers held closer or wider.

One person spreads the fingers of a five, another holds them together; either way it is a five. A
crop drawn from the landmarks alone (``fill="depth"``, ``"outlined"`` or ``"mask"``, see
:class:`~pipeline.preprocess.crops.CropSettings`) can be drawn again with the fingers turned at their
bases, which a crop of the photo's pixels cannot. :func:`spread_fingers` scales the angle to the palm's
axis (wrist to middle-finger base) of every raised finger by one factor, below 1 closer together, and
adds a small turn of its own to every finger. A finger counts as raised when it points less than 90
degrees off the axis and is nearly straight (:func:`raised_fingers`); a folded finger and the thumb are
only turned a little, since scaling their angles would lift them out of the palm. So a raised finger
stays raised, a folded one folded, and the label holds. :func:`tilt_hand` turns a copy in 3D as well,
as the same hand held at another angle to the camera.

A five's copy held closer can also have its thumb laid in beside the index (:func:`lay_thumb_in`), as a flat
hand's is: the data's fives hold the thumb out wide, but for one source's (rps_green), and a flat hand read as a four.
A copy can also be drawn as the same pose seen from its other side (:func:`other_side`): crops are mirrored by
chirality, so a palm and a back of the same pose differ only in depth, the fingers folded before a palm lying behind
a back.

Hands that make none of the six counts (a call sign, rock, a raised thumb or little finger) are what
a count model answers wrongly most confidently, and the data holds only a few kinds of them.
:func:`none_poses` draws such hands for the ``none`` label: a real training hand's palm, each finger
raised or folded as a real finger of another training hand is (its joints relative to its base, in
palm lengths), in a combination that is no count in any style (:data:`NONE_FINGERS`); some of them can
close a circle of thumb and index instead (the OK sign, :data:`CIRCLES`), which no finger set draws: the
two fingers bent by :func:`reach` until their tips meet. :func:`style_poses` draws counts the same way, in the
styles that put the thumb in place of a finger (:data:`STYLE_FINGERS`), labelled with their count.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np
import torch

from pipeline.data.load import Dataset, affines_of, landmarks_of
from pipeline.labels import NONE_LABEL
from pipeline.preprocess.crops import INDEX_MCP, LANDMARK_FILLS, PINKY_MCP, crop_points, fill_crop, hand_affine, looks_left, mirrors, seen_from_back
from pipeline.preprocess.hands import FINGERS, MIDDLE_MCP, WRIST, Hand
from pipeline.training.augment import AugmentConfig

#: The thumb's tip landmark.
THUMB_TIP = FINGERS[0][1][-1]


#: A raised finger's tip is at least this share of the finger's length (its bones end to end) from its base.
STRAIGHT = 0.8


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """(N - 1,) the lengths of the bones between (N, 2 or 3) joints of a chain, base first."""
    return np.linalg.norm(np.diff(np.asarray(joints, np.float64), axis=0), axis=1)


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
                         / max(bone_lengths(xy[[base, *chain]]).sum(), 1e-9)
                         for base, chain in FINGERS])
    raised = (np.abs(finger_angles(xy)) < np.pi / 2) & (straight >= STRAIGHT)
    raised[0] = False
    return raised


def _turned(xy: np.ndarray, base: int, chain: tuple[int, ...], by: float) -> np.ndarray:
    """(len(chain), 2) the joints ``chain`` of (21, 2) ``xy`` turned in the image plane about joint ``base`` by ``by`` radians."""
    c, s = np.cos(by), np.sin(by)
    return (xy[list(chain)] - xy[base]) @ np.array([[c, s], [-s, c]]) + xy[base]


def spread_fingers(landmarks: np.ndarray, factor: float, turns_deg: np.ndarray) -> np.ndarray:
    """(21, 3) landmarks with each finger turned in the image plane about its base by ``turns_deg[k]`` for
    finger k (:data:`FINGERS`' order), and each raised finger (:func:`raised_fingers`) also by ``factor - 1``
    times its angle to the palm's axis, so that the angle becomes ``factor`` times as wide. Depth is kept."""
    out = np.array(landmarks, np.float64, copy=True)
    xy = out[:, :2]
    angles, raised = finger_angles(xy), raised_fingers(xy)
    for (base, chain), angle, up, turn in zip(FINGERS, angles, raised, np.deg2rad(turns_deg)):
        xy[list(chain)] = _turned(xy, base, chain, ((factor - 1) * angle if up else 0.0) + turn)
    return out


#: The labels whose finger-pose copies lay the thumb in (:func:`lay_thumb_in`, ``AugmentConfig.thumb_in``): a five
#: with its fingers together, its thumb beside the index, is a flat hand, and still a five.
THUMB_IN_LABELS = ("five",)
#: A thumb laid in keeps its tip at least this many palm lengths beyond the index finger's base, across the palm:
#: a four's thumb lies across the palm (below -0.05 for 90 % of the committed face-on fours), a flat hand's beside
#: the index (rps_green's fives, held together: +0.13 to +0.64, p10 to p90).
THUMB_IN = 0.1


def lay_thumb_in(landmarks: np.ndarray, factor: float) -> np.ndarray:
    """(21, 3) landmarks with the thumb turned in the image plane about its base (the CMC joint) toward the palm's
    axis, its angle to the axis ``factor`` (below 1) times as wide, but its tip kept :data:`THUMB_IN` palm lengths
    beyond the index finger's base; the turn is halved until it is (up to five times), and not made when the thumb
    is nearer than that already. Depth is kept; ``factor >= 1`` changes nothing."""
    out = np.array(landmarks, np.float64, copy=True)
    if factor >= 1 or palm_axes(out) is None:
        return out
    xy, start = out[:, :2], out[:, :2].copy()
    base, chain = FINGERS[0]
    for by in (factor - 1) * finger_angles(start)[0] * 0.5 ** np.arange(6):
        xy[list(chain)] = _turned(start, base, chain, by)
        if thumb_reach(xy) >= THUMB_IN:
            return out
    xy[:] = start
    return out


def palm_axes(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """The palm's frame in the image: unit ``across`` and ``up`` (wrist -> middle-finger base) vectors and the
    palm's length in the landmarks' units, from (21, 2 or 3) landmarks; None when the palm has no length.
    ``across`` is ``up`` turned a quarter counter-clockwise on screen (y down): toward the index finger of an
    upright left palm, or of a right hand's back."""
    xy = np.asarray(landmarks, np.float64)[:, :2]
    up = xy[MIDDLE_MCP] - xy[WRIST]
    length = float(np.linalg.norm(up))
    if length < 1e-9:
        return None
    up = up / length
    return np.array([up[1], -up[0]]), up, length


def palm_coordinates(landmarks: np.ndarray) -> np.ndarray:
    """(21, 2) landmarks in palm units: the wrist at 0, the middle-finger base at (0, 1), and x toward the index
    finger whichever way the hand turns (mirrored where :func:`palm_axes`' ``across`` points the other way: a
    right palm, a left hand's back); zeros when the palm has no length."""
    xy = np.asarray(landmarks, np.float64)[:, :2]
    frame = palm_axes(xy)
    if frame is None:
        return np.zeros_like(xy)
    across, up, length = frame
    out = (xy - xy[WRIST]) @ np.stack([across, up], 1) / length
    return out if out[INDEX_MCP, 0] >= out[PINKY_MCP, 0] else out * [-1, 1]


def tilt_hand(landmarks: np.ndarray, pitch_deg: float, yaw_deg: float) -> np.ndarray:
    """(21, 3) landmarks turned in 3D about the wrist, as the same hand held at another angle to the camera.

    ``pitch_deg`` turns it about the palm's across axis (perpendicular, in the image, to wrist -> middle-finger
    base): the fingers lean toward or away from the camera and look shorter. ``yaw_deg`` turns it about the
    palm's length axis: the palm turns toward edge-on. x, y and z share units (MediaPipe's z is scaled as x),
    so every bone keeps its 3D length; the camera is taken as far away (a parallel projection).
    """
    points = np.asarray(landmarks, np.float64)
    frame = palm_axes(points)
    if frame is None:  # no palm axis to turn about
        return points.copy()
    across, up, _ = frame
    axes = np.array([[*across, 0.0], [*up, 0.0], [0.0, 0.0, 1.0]])  # rows: across, up, depth
    p, y = np.deg2rad(pitch_deg), np.deg2rad(yaw_deg)
    pitch = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    yaw = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    local = (points - points[WRIST]) @ axes.T
    return local @ (yaw @ pitch).T @ axes + points[WRIST]


def other_side(landmarks: np.ndarray) -> np.ndarray:
    """(21, 3) the same pose seen from its other side, as MediaPipe draws it and a crop mirrored by chirality shows it:
    the 2D landmarks kept, and each folded finger's depth (the thumb's aside, :func:`raised_fingers`) reversed about
    its base, so that a palm's folded fingers, before it, lie behind a back, and a back's before a palm. Raised
    fingers and the palm keep theirs: on the committed datasets' face-on hands MediaPipe puts a raised finger's tip
    nearer than its base seen from either side (median 0.26 palm lengths on palms, 0.17 on backs), but a folded
    one's 0.20 nearer on palms and 0.09 farther on backs. Reversing every depth, as a hand turned about in front of
    the camera would be, made leave one source out worse (models/MODEL_CARD.md, "Tried on 2026-12-07"). The thumb is
    kept too: :func:`raised_fingers` cannot tell a folded thumb from a raised one by its shape. Applied twice it gives
    the hand."""
    out = np.array(landmarks, np.float64, copy=True)
    for (base, chain), up in zip(FINGERS[1:], raised_fingers(out)[1:]):
        if not up:
            out[list(chain), 2] = 2 * out[base, 2] - out[list(chain), 2]
    return out


#: The fingers (thumb 0, index 1, ... little 4) each count raises, as the training photos make them.
COUNT_FINGERS = {"fist": (), "one": (1,), "two": (1, 2), "three": (1, 2, 3), "four": (1, 2, 3, 4),
                 "five": (0, 1, 2, 3, 4)}
#: Counts made with the thumb in place of a finger, which :func:`style_hands` draws with their label: a two of thumb
#: and index, the thumb-out three. Leave one source out answers them wrongly where no other source shows them
#: (models/heldout_errors.csv: 14 thumb-index twos, 21 thumb-out threes).
STYLE_FINGERS = {(0, 1): "two", (0, 1, 2): "three"}
#: Finger sets that are a count in someone's style: the counts, :data:`STYLE_FINGERS`, and a four of thumb, index,
#: middle and ring (not drawn as a four: drawn, held-out fives were answered four 26 times against 3, models/MODEL_CARD.md,
#: "Tried on 2026-12-07"). None of them is drawn as ``none``.
COUNT_STYLES = frozenset(COUNT_FINGERS.values()) | frozenset(STYLE_FINGERS) | {(0, 1, 2, 3)}
#: The finger sets :func:`none_poses` draws: every other one (23), call (0, 4) and rock (1, 4) among them.
NONE_FINGERS = tuple(c for n in range(6) for c in itertools.combinations(range(5), n) if c not in COUNT_STYLES)
#: A palm is taken as seen face-on (a receiver or donor) when its width, index to little-finger base, is at
#: least this share of its length: an edge-on palm's length says nothing of its fingers' scale.
FACE_ON = 0.5


def face_on(landmarks: np.ndarray) -> np.ndarray:
    """(N,) bool: which of (N, 21, 2 or 3) hands show the camera their palm or back, not its edge (:data:`FACE_ON`)."""
    xy = np.asarray(landmarks, np.float64)[..., :2]
    width = np.linalg.norm(xy[:, INDEX_MCP] - xy[:, PINKY_MCP], axis=1)
    return width >= FACE_ON * np.linalg.norm(xy[:, MIDDLE_MCP] - xy[:, WRIST], axis=1)


#: Raised fingers are taken as held together (:func:`held_together`) when no two neighbours are more than this many
#: degrees apart: rps_green's fives (paper) have a median of 3.8, asl_letters' fours (fingers together) 3.8, and the
#: spread fives of data/fingers 13.1 and of homes 18.5.
TOGETHER_DEG = 6.0
#: The thumb is taken as held out (:func:`thumb_out`) when its tip lies at least this many palm lengths beyond the
#: index finger's base, across the palm: 97 % of the committed datasets' face-on fives, 2 % of their fours.
THUMB_OUT = 0.15


def held_together(landmarks: np.ndarray) -> bool:
    """Whether a hand raises at least two fingers (the thumb aside, :func:`raised_fingers`) and holds them
    together: each within :data:`TOGETHER_DEG` of its raised neighbour, in angle to the palm's axis."""
    if palm_axes(landmarks) is None:  # no palm axis: no angles to compare
        return False
    raised = np.flatnonzero(raised_fingers(landmarks))
    if len(raised) < 2:
        return False
    angles = np.rad2deg(finger_angles(landmarks))[raised]
    return bool(np.abs(np.diff(angles)).max() <= TOGETHER_DEG)


def thumb_reach(landmarks: np.ndarray) -> float:
    """How many palm lengths the thumb's tip lies beyond the index finger's base, across the palm
    (:func:`palm_coordinates`): above 0 beside or outside the index, below 0 across the palm."""
    palm = palm_coordinates(landmarks)
    return float(palm[THUMB_TIP, 0] - palm[INDEX_MCP, 0])


def thumb_out(landmarks: np.ndarray) -> bool:
    """Whether the thumb's tip lies :data:`THUMB_OUT` palm lengths or more beyond the index finger's base
    (:func:`thumb_reach`): a thumb held out, as a five's or a thumb-out three's is."""
    return thumb_reach(landmarks) >= THUMB_OUT


#: A donor finger reaches at most this many palm lengths from its base; longer ones are landmark errors.
LONGEST_FINGER = 1.3
#: Circles that no count makes, which :func:`none_hands` draws with ``circles``: the OK sign (the thumb and
#: index tips touching, the other three raised). Each gives the fingers that close the circle with the thumb.
#: An O (every fingertip at the thumb's) drawn on a face-on palm looks like a fist, so it is not drawn.
CIRCLES = {"ok": (1,)}
#: Where a circle's tips meet: from the thumb's middle joint, this share of its last two bones' length, in the
#: direction of these weights of the palm's up, the camera and the index finger's base (:func:`_close_circle`).
MEET_REACH, MEET_WEIGHTS = 0.85, (0.8, 0.5, 0.3)


def reach(base: np.ndarray, lengths: np.ndarray, up: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(len(lengths), 3) the joints after ``base`` of a finger whose tip comes as near ``target`` as it can.

    The bones (``lengths``, base first) bend in the plane of ``up`` (the straight finger's direction) and the
    target: the first by an angle to ``up`` in [-30, 100] degrees, each further one by one more equal bend in
    [0, 120] degrees, as a curling finger does; the pair that brings the tip nearest is taken (a grid search).
    """
    d = np.asarray(target, np.float64) - base
    up = np.asarray(up, np.float64)
    if np.linalg.norm(up) < 1e-9:  # no straight direction (a donor's joints at one point): start toward the target
        up = d if np.linalg.norm(d) >= 1e-9 else np.array([0.0, -1.0, 0.0])
    up = up / np.linalg.norm(up)
    w = d - (d @ up) * up
    if np.linalg.norm(w) < 1e-9:  # the target straight ahead: bend toward any side
        w = np.cross(up, [0.0, 0.0, 1.0]) if abs(up[2]) < 0.9 else np.cross(up, [1.0, 0.0, 0.0])
    w = w / np.linalg.norm(w)
    first = np.deg2rad(np.linspace(-30, 100, 66))[:, None, None]
    bend = np.deg2rad(np.linspace(0, 120, 61))[None, :, None]
    angles = first + bend * np.arange(len(lengths))  # (first, bend, bone)
    along, across = (np.cos(angles) * lengths).cumsum(-1), (np.sin(angles) * lengths).cumsum(-1)
    miss = (along[..., -1] - d @ up) ** 2 + (across[..., -1] - d @ w) ** 2
    a, b = np.unravel_index(np.argmin(miss), miss.shape)
    return base + along[a, b][:, None] * up + across[a, b][:, None] * w


def _close_circle(hand: np.ndarray, kind: str, thumb: np.ndarray, fingers: list[np.ndarray], jitter: np.ndarray) -> None:
    """Bend ``hand``'s (21, 3, palm-facing, in palm lengths) closing fingers and thumb into the circle ``kind``, in
    place. ``thumb`` and ``fingers`` (one per closing finger) are raised donor fingers, their joints relative to
    their bases: they give the bones' lengths, and the thumb's first bone its place."""
    closing = CIRCLES[kind]
    unit = lambda v: v / max(np.linalg.norm(v), 1e-12)  # noqa: E731
    up = unit(hand[MIDDLE_MCP] - hand[WRIST])
    camera = np.array([0.0, 0.0, -1.0])  # MediaPipe's z grows away from the camera
    base, chain = FINGERS[0]
    hand[chain[0]] = hand[base] + thumb[0]
    lengths = bone_lengths(thumb)
    # A point the thumb reaches, up and before the palm, leaning toward the index finger: where the tips meet.
    a, b, c = MEET_WEIGHTS
    toward = unit(a * up + b * camera + c * unit(hand[INDEX_MCP] - hand[chain[0]]))
    meet = hand[chain[0]] + MEET_REACH * lengths.sum() * toward + jitter
    for k, donor in zip(closing, fingers):
        finger_base, finger_chain = FINGERS[k]
        bones = bone_lengths(np.vstack([np.zeros(3), donor]))
        hand[list(finger_chain)] = reach(hand[finger_base], bones, up, meet)
    hand[list(chain[1:])] = reach(hand[chain[0]], lengths, thumb[1] - thumb[0], hand[FINGERS[closing[0]][1][-1]])


@dataclass
class DrawnHands:
    """Hands drawn from other training hands' fingers (:func:`none_hands`, :func:`style_hands`): landmarks in the
    large render's pixels."""

    points: np.ndarray  # (N, 21, 3), as crop_points gives them: ready for fill_crop
    fingers: list[tuple[int, ...]]  # each hand's raised fingers, one of the finger sets asked for
    palms: np.ndarray  # (N,) the position in ``indices`` of the crop whose palm each hand has
    circles: list[str]  # each hand's circle (a key of CIRCLES), or "" for none


def none_hands(data: Dataset, indices: np.ndarray, count: int, seed: int, circles: float = 0.0,
               tilt_deg: float = 0.0) -> DrawnHands | None:
    """``count`` hands that make no count, built from the training crops ``indices``.

    Each is one crop's palm (seen face-on, :data:`FACE_ON`) with each finger raised or folded, by a
    finger set of :data:`NONE_FINGERS`, taken whole from a crop whose label says that finger is so
    (:data:`COUNT_FINGERS`) and whose shape agrees (:func:`raised_fingers`; the thumb by its label alone).
    Depth is turned so that every palm faces the camera while fingers move, and back, so a folded finger
    lies before a palm and behind a back. The square is fitted again around the new hand. Only the finger
    sets whose every finger has a donor are drawn. A share ``circles`` of the hands closes a circle instead
    (:data:`CIRCLES`, each kind alike): its other fingers raised, the closing fingers and the thumb bent by
    :func:`reach` until their tips meet, with the bones of raised donors (one whose fingers do not read as the
    kind says, the index still raised or an open finger not, is drawn as a finger set instead). With ``tilt_deg``
    each hand is also turned in 3D by :func:`tilt_hand`, U(-tilt_deg, tilt_deg) on both axes, as the pose copies
    are (:func:`pose_copies`), and its square fitted again as a live crop's would be: turned upright (the two
    turns together lean the palm's axis) and mirrored again should the turn flip its chirality. The angles come
    from a generator of their own, so the hands drawn are the same ones, turned. None when
    there is nothing to draw: no count, no ``none`` label, a label that is no count (a dataset of one's own
    gestures), crops of the photo, or crops not turned upright and mirrored by chirality.
    """
    if NONE_LABEL not in data.label_names:
        return None
    return drawn_hands(data, indices, count, seed, NONE_FINGERS, circles, tilt_deg)


def style_hands(data: Dataset, indices: np.ndarray, count: int, seed: int | tuple[int, ...],
                tilt_deg: float = 0.0) -> DrawnHands | None:
    """``count`` counts made in the styles of :data:`STYLE_FINGERS` (the thumb in place of a finger), drawn as
    :func:`none_hands` draws its hands: a training crop's palm with each finger taken from another training hand.
    Only the styles whose label the dataset has (a ``none`` label is not needed); None with none of them, or where
    there is nothing to draw for the other reasons :func:`none_hands` gives."""
    sets = tuple(f for f, label in STYLE_FINGERS.items() if label in data.label_names)
    return drawn_hands(data, indices, count, seed, sets, 0.0, tilt_deg) if sets else None


def drawn_hands(data: Dataset, indices: np.ndarray, count: int, seed: int | tuple[int, ...],
                finger_sets: tuple[tuple[int, ...], ...], circles: float = 0.0, tilt_deg: float = 0.0) -> DrawnHands | None:
    """``count`` hands, each raising one of ``finger_sets`` (those whose every finger has a donor), drawn from the
    training crops ``indices`` as :func:`none_hands` says; None when there is nothing to draw."""
    settings = data.settings
    names = data.label_names
    # Fingers move between crops as offsets in the crop's axes: only upright crops with the thumb on one side
    # (mirrored by chirality) share those axes.
    if (count <= 0 or settings is None or settings.fill not in LANDMARK_FILLS or not finger_sets
            or not settings.rotate or settings.mirror != "chirality"
            or not set(names) - {NONE_LABEL} <= set(COUNT_FINGERS) or not len(indices)):
        return None
    indices = np.asarray(indices)
    rows = data.index.iloc[indices]
    marks = landmarks_of(rows)
    points = np.stack([crop_points(a, m) for a, m in zip(affines_of(rows) * settings.render_scale, marks)])
    palm = np.linalg.norm(points[:, MIDDLE_MCP, :2] - points[:, WRIST, :2], axis=1)[:, None, None] + 1e-9
    flat = (points - points[:, WRIST:WRIST + 1]) / palm  # in palm lengths from the wrist
    back = np.array([seen_from_back(m, h) for m, h in zip(marks, rows["handedness"])], bool)
    flat[back, :, 2] *= -1  # every palm toward the camera
    facing = face_on(points)
    donors: dict[tuple[int, bool], list[np.ndarray]] = {(k, up): [] for k in range(len(FINGERS)) for up in (True, False)}
    for n, label in zip(np.flatnonzero(facing), data.labels.numpy()[indices][facing]):
        raised = COUNT_FINGERS.get(names[label])
        seen = raised_fingers(points[n])  # a finger whose label and shape disagree gives nothing
        for k, (base, chain) in enumerate(FINGERS if raised is not None else ()):
            finger = flat[n, list(chain)] - flat[n, base]
            if (k == 0 or seen[k] == (k in raised)) and np.linalg.norm(finger[:, :2], axis=1).max() <= LONGEST_FINGER:
                donors[(k, k in raised)].append(finger)
    # Only the sets whose every finger has a donor: without fists, no folded index finger.
    drawable = [f for f in finger_sets if all(donors[(k, k in f)] for k in range(len(FINGERS)))]
    if not drawable:
        return None
    # A circle's open fingers and its bones come from raised donors: only where every finger has one.
    kinds = [kind for kind in CIRCLES if all(donors[(k, True)] for k in range(len(FINGERS)))]
    rng = np.random.default_rng(seed)
    square = replace(settings, rotate=False)  # an untilted hand is upright already: only its box is fitted again
    palms = rng.choice(np.flatnonzero(facing), count)
    out, sets, rings = np.empty((count, 21, 3)), [], []
    # Their own generator: turning the hands leaves which hands are drawn as it was.
    tilts = np.random.default_rng([*np.atleast_1d(seed), 1]).uniform(-tilt_deg, tilt_deg, (count, 2)) if tilt_deg else None
    raised = lambda k: donors[(k, True)][rng.integers(len(donors[(k, True)]))]  # noqa: E731
    for i, n in enumerate(palms):
        # No draw without circles: the hands are then the ones drawn before circles existed.
        ring = kinds[rng.integers(len(kinds))] if circles > 0 and kinds and rng.random() < circles else ""
        if ring:
            closing = CIRCLES[ring]
            fingers = tuple(k for k in range(1, len(FINGERS)) if k not in closing)
            hand = flat[n].copy()
            for k in fingers:
                base, chain = FINGERS[k]
                hand[list(chain)] = hand[base] + raised(k)
            _close_circle(hand, ring, raised(0), [raised(k) for k in closing], rng.normal(0.0, 0.03, 3))
            if tuple(np.flatnonzero(raised_fingers(hand))) != fingers:  # not the kind's raised fingers
                ring = ""
        if not ring:
            fingers = drawable[rng.integers(len(drawable))]
            hand = flat[n].copy()
            for k, (base, chain) in enumerate(FINGERS):
                pool = donors[(k, k in fingers)]
                hand[list(chain)] = hand[base] + pool[rng.integers(len(pool))]
        sets.append(fingers)
        rings.append(ring)
        if back[n]:
            hand[:, 2] *= -1
        hand = hand * palm[n] + points[n, WRIST]
        if tilts is None:  # no turn at all without a tilt: the hands stay the ones drawn before tilts
            out[i] = crop_points(hand_affine(hand, False, square, settings.render_size), hand)
        else:  # a turn about both axes leans the palm's axis and may flip it: fitted as a live crop would be
            hand = tilt_hand(hand, *tilts[i])
            out[i] = crop_points(hand_affine(hand, looks_left(hand), settings, settings.render_size), hand)
    return DrawnHands(out, sets, palms, rings)


def drawn_crops(hands: DrawnHands, data: Dataset) -> torch.Tensor:
    """The crops of drawn ``hands``, drawn by ``data``'s settings: (N, 1, S, S) uint8."""
    return torch.from_numpy(np.stack([fill_crop(None, p, data.settings)[0] for p in hands.points])[:, None])


def none_poses(data: Dataset, indices: np.ndarray, count: int, seed: int, circles: float = 0.0,
               tilt_deg: float = 0.0) -> torch.Tensor | None:
    """The crops of :func:`none_hands`, drawn by the dataset's settings: (count, 1, S, S) uint8, or None."""
    hands = none_hands(data, indices, count, seed, circles, tilt_deg)
    return None if hands is None else drawn_crops(hands, data)


def style_poses(data: Dataset, indices: np.ndarray, count: int, seed: int,
                tilt_deg: float = 0.0) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The crops of :func:`style_hands` and their labels (``data``'s label indices): ((count, 1, S, S) uint8,
    (count,) int64), or None. Their hands come from a generator of their own, not :func:`none_poses`' one."""
    hands = style_hands(data, indices, count, (seed, 2), tilt_deg)
    if hands is None:
        return None
    labels = torch.tensor([data.label_names.index(STYLE_FINGERS[f]) for f in hands.fingers], dtype=torch.int64)
    return drawn_crops(hands, data), labels


def pose_copies(data: Dataset, indices: np.ndarray, config: AugmentConfig, seed: int) -> torch.Tensor | None:
    """``config.pose_copies`` copies of the crops ``indices``, drawn from landmarks moved by :func:`spread_fingers`
    and, with ``config.pose_tilt_deg``, :func:`tilt_hand` (one seeded factor, five turns and two tilt angles per
    copy; a tilted copy's square fitted again); a five's copy whose factor is below ``config.thumb_in`` also has its
    thumb laid in (:func:`lay_thumb_in`), and a share ``config.pose_flip`` of the copies is seen from the other side
    (:func:`other_side`, drawn from a generator of its own): (copies * len(indices), 1, S, S) uint8, copy by copy; None when
    copies are off or the crops show the photo (they cannot be redrawn)."""
    settings = data.settings
    if not config.pose_copies or settings is None or settings.fill not in LANDMARK_FILLS or not len(indices):
        return None
    rows = data.index.iloc[np.asarray(indices)]
    affines = affines_of(rows) * settings.render_scale  # onto the large render, where the mask is drawn
    marks = landmarks_of(rows)
    rng = np.random.default_rng(seed)
    tilt = config.pose_tilt_deg
    handedness = rows["handedness"].to_numpy(str)
    names = np.asarray(data.label_names)[data.labels.numpy()[np.asarray(indices)]]
    thumbs_in = np.isin(names, THUMB_IN_LABELS)
    out = np.empty((config.pose_copies, len(rows), 1, settings.size, settings.size), np.uint8)
    # Their own generator: copies without flips are the ones drawn before flips existed.
    flips = np.random.default_rng([seed, 3]).random((config.pose_copies, len(rows))) < config.pose_flip
    for copy in range(config.pose_copies):
        factors = rng.uniform(config.pose_low, config.pose_high, len(rows))
        turns = rng.normal(0.0, config.pose_jitter_deg, (len(rows), len(FINGERS)))
        tilts = rng.uniform(-tilt, tilt, (len(rows), 2)) if tilt else None  # no draw: copies without tilt stay as they were
        for n in range(len(rows)):
            moved = spread_fingers(marks[n], factors[n], turns[n])
            if thumbs_in[n] and factors[n] < config.thumb_in:
                moved = lay_thumb_in(moved, factors[n])
            if flips[copy, n]:
                moved = other_side(moved)
            affine = affines[n]
            if tilt:  # its square fitted again as the live crop's would be (by chirality, the turn may flip it)
                moved = tilt_hand(moved, *tilts[n])
                mirror = mirrors(Hand(moved, moved, handedness[n], 1.0), settings)
                affine = hand_affine(moved, mirror, settings, settings.render_size)
            out[copy, n, 0] = fill_crop(None, crop_points(affine, moved), settings)[0]
    return torch.from_numpy(out.reshape(-1, 1, settings.size, settings.size))


__all__ = ["CIRCLES", "COUNT_FINGERS", "COUNT_STYLES", "DrawnHands", "FACE_ON",
           "LONGEST_FINGER", "NONE_FINGERS", "STRAIGHT", "STYLE_FINGERS", "THUMB_IN", "THUMB_IN_LABELS", "THUMB_OUT",
           "THUMB_TIP", "TOGETHER_DEG", "bone_lengths", "drawn_crops", "drawn_hands", "face_on", "finger_angles",
           "held_together", "lay_thumb_in", "none_hands", "none_poses", "other_side", "palm_axes",
           "palm_coordinates", "pose_copies", "raised_fingers", "reach", "spread_fingers", "style_hands",
           "style_poses", "thumb_out", "thumb_reach", "tilt_hand"]
