"""Heatmaps on pictures: colour-map, blend onto a crop, and put a crop-grid map back on the video frame.

Plain functions on numpy arrays (uint8 BGR images, float maps in [0, 1]), like :mod:`pipeline.draw`:
:func:`overlay_on_frame` draws **in place**. A map made on the crop grid goes back onto the frame
through the crop's own affine (:func:`pipeline.crops.warp_to_frame`), so no geometry is recomputed;
only the crop's bounding rectangle is warped and blended, which keeps it fast per hand per frame.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .crops import invert_affine, transform_points, warp_to_frame

DEFAULT_COLORMAP = cv2.COLORMAP_JET
_SHIFT = 4  # sub-pixel polygon filling: 4 fractional bits


@lru_cache(maxsize=None)
def _lut(colormap: int) -> np.ndarray:
    # cv2.applyColorMap rebuilds a named map's table on every call (~0.1 ms); given a cached (256, 1, 3)
    # table it is a plain lookup, 20 times faster than numpy's fancy indexing on a hand-sized region.
    return cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], colormap)


def levels(heat: np.ndarray) -> np.ndarray:
    """A map in [0, 1] (float) as 0..255 (uint8, rounded); a uint8 map is returned as it is."""
    if heat.dtype == np.uint8:
        return heat
    return (np.clip(heat, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def colorize(heat: np.ndarray, colormap: int = DEFAULT_COLORMAP) -> np.ndarray:
    """(H, W) map in [0, 1] (float) or 0..255 (uint8) -> (H, W, 3) uint8 BGR with an OpenCV colormap."""
    return cv2.applyColorMap(levels(heat), _lut(colormap))


def blend(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5, colormap: int = DEFAULT_COLORMAP) -> np.ndarray:
    """A new BGR uint8 image: ``image`` (grayscale or BGR uint8) with ``heat`` colour-mapped on top.

    ``heat`` is in [0, 1] (float) or 0..255 (uint8), at any resolution (an 8x8 Grad-CAM); it is resized bilinearly to the image.
    """
    base = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image
    h, w = base.shape[:2]
    heat = np.asarray(heat)
    heat = heat if heat.dtype == np.uint8 else heat.astype(np.float32, copy=False)
    if heat.shape != (h, w):
        heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.addWeighted(base, 1.0 - alpha, colorize(heat, colormap), alpha, 0.0)


def crop_corners(affine: np.ndarray, crop_size: int) -> np.ndarray:
    """The crop's square in frame pixels (continuous coordinates): (4, 2) corners."""
    s = float(crop_size)
    return transform_points(invert_affine(affine), np.array([[0, 0], [s, 0], [s, s], [0, s]]))


def crop_rect(affine: np.ndarray, crop_size: int, frame_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: the integer rectangle of the frame that holds the crop's square, clipped."""
    return _rect(crop_corners(affine, crop_size), frame_size)


def _rect(corners: np.ndarray, frame_size: tuple[int, int]) -> tuple[int, int, int, int]:
    w, h = frame_size
    x0, y0 = np.clip(np.floor(corners.min(0)).astype(int), 0, [w, h])
    x1, y1 = np.clip(np.ceil(corners.max(0)).astype(int), 0, [w, h])
    return int(x0), int(y0), int(x1), int(y1)


def overlay_on_frame(frame: np.ndarray, heat: np.ndarray, affine: np.ndarray, crop_size: int, alpha: float = 0.5,
                     colormap: int = DEFAULT_COLORMAP, weighted: bool = False) -> np.ndarray:
    """Blend a crop-grid map onto a BGR uint8 ``frame``, in place, only inside the crop's square.

    ``heat`` is (h, w) in [0, 1] at any square resolution, covering the crop made with the
    frame->crop ``affine`` (:attr:`pipeline.crops.Crop.affine`) at ``crop_size``. With
    ``weighted``, each pixel's colour weighs ``alpha * heat`` instead of ``alpha``: where the map is
    cold the frame shows through, so the colours sit on the evidence, not on the whole square
    (the live demo's look). Returns ``frame``.
    """
    corners = crop_corners(affine, crop_size)
    x0, y0, x1, y1 = _rect(corners, (frame.shape[1], frame.shape[0]))
    if x1 <= x0 or y1 <= y0:
        return frame  # the crop lies outside the frame
    # Warp into the rectangle only: move the frame origin to (x0, y0), i.e. crop = A (p + o).
    a = np.asarray(affine, np.float64)
    shifted = np.hstack([a[:, :2], (a[:, 2] + a[:, :2] @ np.array([x0, y0], np.float64))[:, None]])
    heat = np.asarray(heat, np.float32)
    if heat.shape[0] < crop_size:
        heat = cv2.resize(heat, (crop_size, crop_size), interpolation=cv2.INTER_LINEAR)
    size = (x1 - x0, y1 - y0)
    roi = frame[y0:y1, x0:x1]
    if weighted:  # one warp of the map's levels (made on the small grid), 0 outside the square
        on_frame = warp_to_frame(levels(heat), shifted, crop_size, size)
        weight = np.multiply(on_frame, np.float32(alpha / 255.0), dtype=np.float32)
        roi[:] = cv2.blendLinear(roi, colorize(on_frame, colormap), 1.0 - weight, weight)
        return frame
    # Colour on the crop grid, then warp the colours: the cost does not grow with the hand's size on screen.
    color = warp_to_frame(colorize(heat, colormap), shifted, crop_size, size)
    # The square itself as the mask: pixels whose centre lies in it (OpenCV draws at pixel centres).
    inside = np.zeros((size[1], size[0]), np.uint8)
    polygon = np.round((corners - [x0 + 0.5, y0 + 0.5]) * (1 << _SHIFT)).astype(np.int32)
    cv2.fillConvexPoly(inside, polygon, 255, cv2.LINE_8, _SHIFT)
    cv2.copyTo(cv2.addWeighted(roi, 1.0 - alpha, color, alpha, 0.0), inside, roi)  # in place
    return frame


__all__ = ["DEFAULT_COLORMAP", "blend", "colorize", "crop_corners", "crop_rect", "levels", "overlay_on_frame"]
