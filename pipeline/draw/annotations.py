"""The drawing stage: plain functions that draw on BGR uint8 frames (numpy arrays).

Every function draws **in place** (OpenCV's way, and no copy per frame in a live loop) and
returns what a caller needs to lay out the next item, so collect and demo can share them.
Nothing here opens a window or knows about keys.

Landmarks are in continuous pixel coordinates (a W x H frame spans [0, W] x [0, H], see
:mod:`pipeline.preprocess.crops`); OpenCV draws at pixel centres, so points are moved by half a pixel here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping, Sequence

import cv2
import numpy as np

from pipeline.preprocess.hands import HAND_CONNECTIONS, Hand

Color = tuple[int, int, int]  # BGR

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE: Color = (255, 255, 255)
BLACK: Color = (0, 0, 0)
DARK: Color = (32, 32, 32)
GREEN: Color = (80, 220, 80)
RED: Color = (40, 40, 230)
AMBER: Color = (0, 190, 255)
GRAY: Color = (160, 160, 160)
MUTED: Color = (96, 96, 96)  # a gray that white text reads on, and that shows on DARK
HIGHLIGHT: Color = (150, 90, 20)  # background of the current label: a dark blue that white text reads on
#: One colour per tracked hand (``PALETTE[id % len]``), dark enough for white text on it.
PALETTE: tuple[Color, ...] = ((150, 90, 20), (40, 120, 40), (120, 40, 140), (20, 100, 170), (130, 110, 30))

_SHIFT = 4  # sub-pixel drawing: coordinates carry 4 fractional bits (1/16 px)


def font_scale_for(image: np.ndarray) -> float:
    """A text scale that reads alike on a 360p preview and a 1080p webcam frame."""
    return float(np.clip(image.shape[0] / 720 * 0.9, 0.4, 1.2))


def _fixed(points: np.ndarray) -> np.ndarray:
    """Continuous pixel coordinates -> OpenCV fixed-point pixel-centre coordinates."""
    return np.round((np.asarray(points, np.float64) - 0.5) * (1 << _SHIFT)).astype(np.int32)


_BONES = np.array(HAND_CONNECTIONS)


def draw_hand(image: np.ndarray, hand: Hand, color: Color = GREEN, joint_color: Color = WHITE,
              thickness: int | None = None) -> np.ndarray:
    """Draw a hand's skeleton (:data:`~pipeline.preprocess.hands.HAND_CONNECTIONS`) and its 21 landmarks.

    ``thickness`` defaults to a width that scales with the frame height.
    Returns ``image``.
    """
    width = thickness or max(1, round(image.shape[0] / 360))
    pts = _fixed(hand.landmarks[:, :2])
    # One call for all 21 bones: the demo draws every hand on every frame.
    cv2.polylines(image, list(pts[_BONES]), False, color, width, cv2.LINE_AA, _SHIFT)
    radius = (width + 2) << _SHIFT
    for p in pts:
        cv2.circle(image, tuple(p), radius, joint_color, -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(image, tuple(p), radius, color, 1, cv2.LINE_AA, _SHIFT)
    return image


@lru_cache(maxsize=4096)
def _text_size(text: str, scale: float, thickness: int) -> tuple[tuple[int, int], int]:
    """``cv2.getTextSize``, remembered: a live overlay measures the same labels and legend every frame."""
    return cv2.getTextSize(text, FONT, scale, thickness)


def put_text(image: np.ndarray, text: str, org: tuple[int, int], color: Color = WHITE,
             background: Color | None = DARK, scale: float | None = None, thickness: int = 1,
             pad: int = 4) -> tuple[int, int, int, int]:
    """Write one line of text with its top-left corner at ``org``, on a filled box so it reads on any frame.

    ``background=None`` draws no box. ``scale`` defaults to :func:`font_scale_for`.
    Returns the box ``(x0, y0, x1, y1)``, so the next line can go at ``(x0, y1)``.
    """
    scale = scale or font_scale_for(image)
    (w, h), baseline = _text_size(text, scale, thickness)
    x0, y0 = org
    x1, y1 = x0 + w + 2 * pad, y0 + h + baseline + 2 * pad
    if background is not None:
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), background, -1)
    cv2.putText(image, text, (x0 + pad, y0 + pad + h), FONT, scale, color, thickness, cv2.LINE_AA)
    return x0, y0, x1, y1


def text_box_size(image: np.ndarray, text: str, scale: float | None = None, thickness: int = 1,
                  pad: int = 4) -> tuple[int, int]:
    """``(width, height)`` of the box :func:`put_text` draws for ``text`` (to place it from the right or bottom)."""
    scale = scale or font_scale_for(image)
    (w, h), baseline = _text_size(text, scale, thickness)
    return w + 2 * pad, h + baseline + 2 * pad


def text_height(image: np.ndarray, scale: float | None = None, thickness: int = 1, pad: int = 4) -> int:
    """Height of the box :func:`put_text` draws for one line (for laying out from the bottom)."""
    return text_box_size(image, "Ag", scale, thickness, pad)[1]


def paste_inset(image: np.ndarray, inset: np.ndarray, corner: str = "top-right", zoom: int = 4,
                margin: int = 8, offset: int = 0, border: Color | None = WHITE) -> tuple[int, int, int, int]:
    """Paste a small image (e.g. a 28x28 crop) at a corner of ``image``, enlarged ``zoom`` times.

    Enlarging uses nearest neighbour so the pixels the CNN sees stay visible as pixels. A gray
    inset is shown in gray. ``offset`` moves it along the frame's side (away from the corner),
    to stack several insets. The inset is clipped to the frame. Returns its box ``(x0, y0, x1, y1)``.
    """
    big = cv2.resize(inset, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    if big.ndim == 2:
        big = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)
    h, w = big.shape[:2]
    frame_h, frame_w = image.shape[:2]
    vertical, horizontal = corner.split("-")
    x0 = margin if horizontal == "left" else frame_w - margin - w
    y0 = margin + offset if vertical == "top" else frame_h - margin - h - offset
    # Clip to the frame (a tiny frame or many stacked insets must not raise).
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + w, frame_w), min(y0 + h, frame_h)
    if cx1 <= cx0 or cy1 <= cy0:
        return cx0, cy0, cx0, cy0
    image[cy0:cy1, cx0:cx1] = big[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    if border is not None:
        cv2.rectangle(image, (cx0, cy0), (cx1 - 1, cy1 - 1), border, 1)
    return cx0, cy0, cx1, cy1


def inset_zoom(frame_height: int, crop_size: int, fraction: float = 1 / 3) -> int:
    """Zoom for a crop inset about ``fraction`` of the frame's height, in whole pixels (at least 1)."""
    return max(1, round(frame_height * fraction / crop_size))


def scale_to_fit(image: np.ndarray, text: str, width: int, scale: float | None = None, pad: int = 4) -> float:
    """The largest text scale up to ``scale`` (default :func:`font_scale_for`) at which ``text`` fits ``width`` pixels."""
    scale = scale or font_scale_for(image)
    needed = text_box_size(image, text, scale, pad=pad)[0]
    return scale if needed <= width else max(0.25, scale * (width - 2 * pad) / max(1, needed - 2 * pad))


def draw_prediction(image: np.ndarray, anchor: Sequence[float], title: str, names: Sequence[str], probs: np.ndarray,
                    color: Color = HIGHLIGHT, top: int = 3, scale: float | None = None,
                    bounds: Sequence[int] | None = None,
                    avoid: Sequence[Sequence[int]] = ()) -> tuple[int, int, int, int]:
    """A hand's label panel: ``title`` (e.g. ``five 0.97``) on ``color``, then its ``top`` classes as bars.

    The panel goes above ``anchor`` (the hand's box ``x0, y0, x1, y1`` in pixels) where there is
    room inside ``bounds`` (``x0, y0, x1, y1``; default: the frame) clear of the boxes in
    ``avoid`` (other hands' panels), else below it, else to its right or left, else under one of
    the avoided boxes; with no such room it takes the first of those places inside the bounds,
    else it is pushed inside them. The first bar is in ``color``, the others gray. Returns the
    panel's box.
    """
    scale = scale or font_scale_for(image)
    small = scale * 0.7
    order = [int(i) for i in np.argsort(-np.asarray(probs))[:top]]
    title_w, title_h = text_box_size(image, title, scale)
    name_w = max(text_box_size(image, names[i], small, pad=2)[0] for i in order)
    row_h = text_box_size(image, "Ag", small, pad=2)[1]
    bar_max = 4 * row_h
    width, height = max(title_w, name_w + bar_max + 4), title_h + row_h * len(order)
    bx0, by0, bx1, by1 = bounds if bounds is not None else (0, 0, image.shape[1], image.shape[0])
    ax0, ay0, ax1, ay1 = (int(round(v)) for v in anchor)
    x = int(np.clip(ax0, bx0, max(bx0, bx1 - width)))
    y = int(np.clip(ay0, by0, max(by0, by1 - height)))
    places = [(x, ay0 - height - 4), (x, ay1 + 4), (ax1 + 4, y), (ax0 - width - 4, y)]
    places += [(b[0], b[3] + 2) for b in avoid]  # under another panel: a list of panels
    fits = [(px, py) for px, py in places if bx0 <= px and px + width <= bx1 and by0 <= py and py + height <= by1]
    clear = [(px, py) for px, py in fits
             if all(px >= b[2] or px + width <= b[0] or py >= b[3] or py + height <= b[1] for b in avoid)]
    x, y = (clear or fits or [(x, int(np.clip(places[0][1], by0, max(by0, by1 - height))))])[0]
    put_text(image, title, (x, y), background=color, scale=scale)
    top_y = y + title_h
    cv2.rectangle(image, (x, top_y), (x + width - 1, top_y + row_h * len(order) - 1), DARK, -1)
    for row, i in enumerate(order):
        ry = top_y + row * row_h
        put_text(image, names[i], (x, ry), background=None, scale=small, pad=2)
        length = int(round(float(probs[i]) * bar_max))
        if length > 0:
            cv2.rectangle(image, (x + name_w, ry + 3), (x + name_w + length - 1, ry + row_h - 4),
                          color if row == 0 else GRAY, -1)
    return x, y, x + width, y + height


def draw_labels(image: np.ndarray, labels: Sequence[str], counts: Mapping[str, int], current: int,
                org: tuple[int, int] = (8, 8), max_lines: int | None = None) -> tuple[int, int, int, int]:
    """List labels as ``key name count``, one per line, with the current one highlighted.

    Keys are shown for the first ten labels (``1``..``9``, ``0``); the rest are reached with
    ``[`` and ``]``. With more labels than fit (``max_lines``, default: what fits in the frame),
    a window of labels around the current one is shown. Returns the box around all lines.
    """
    line = text_height(image)
    fit = max(1, (image.shape[0] - org[1]) // line - 3)  # leave room for the lines at the bottom
    shown = max(1, min(max_lines or fit, fit))
    start = min(max(0, current - shown // 2), max(0, len(labels) - shown))
    x, y = org
    x1 = x
    for i in range(start, min(len(labels), start + shown)):
        key = str((i + 1) % 10) if i < 10 else " "
        text = f"{key} {labels[i]}  {counts.get(labels[i], 0)}"
        is_current = i == current
        box = put_text(image, ("> " if is_current else "  ") + text, (x, y),
                       background=HIGHLIGHT if is_current else DARK)
        x1 = max(x1, box[2])
        y = box[3]
    return org[0], org[1], x1, y


def draw_recording(image: np.ndarray, recording: bool, seconds_left: float = 0.0,
                   org: tuple[int, int] = (8, 8)) -> tuple[int, int, int, int]:
    """The recording indicator: ``REC`` with a red dot, ``REC in 2.4 s`` while counting down, or ``paused``.

    Returns the box it covers.
    """
    if not recording:
        return put_text(image, "paused (space: record)", org, color=GRAY)
    if seconds_left > 0:
        return put_text(image, f"REC in {seconds_left:.1f} s", org, color=AMBER)
    # A red box holding a white dot, then the word: the dot gets its own room so it never covers the text.
    height = text_height(image)
    dot = height  # a square for the dot, as wide as the line is high
    box = put_text(image, "REC", (org[0] + dot, org[1]), color=WHITE, background=RED)
    cv2.rectangle(image, (org[0], box[1]), (box[0], box[3] - 1), RED, -1)
    cv2.circle(image, (org[0] + dot // 2 + 2, box[1] + height // 2), max(3, height // 4), WHITE, -1, cv2.LINE_AA)
    return org[0], box[1], box[2], box[3]


def draw_footer(image: np.ndarray, lines: Sequence[str], margin: int = 8, scale: float | None = None) -> None:
    """Write lines at the bottom-left of the frame, the last one lowest (e.g. a message, then the key legend)."""
    line = text_height(image, scale)
    y = image.shape[0] - margin - line * len(lines)
    for text in lines:
        if text:
            put_text(image, text, (margin, y), scale=scale)
        y += line


__all__ = [
    "PALETTE", "draw_footer", "draw_hand", "draw_labels", "draw_prediction", "draw_recording", "font_scale_for",
    "inset_zoom", "paste_inset", "put_text", "scale_to_fit", "text_box_size", "text_height",
]
