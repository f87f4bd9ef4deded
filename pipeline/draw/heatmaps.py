"""Heatmaps on pictures: colour-map, blend onto a crop, and put a map back on the video frame.

Plain functions on numpy arrays (uint8 BGR images, float maps in [0, 1]), like
:mod:`pipeline.draw.annotations`: :func:`overlay_on_frame` draws **in place**.

All the geometry of a map lives here, in :func:`map_affine`. A map has ``n x n`` cells laid on the
crop grid by ``grid = (step, offset)``: cell ``i`` is centred on crop pixel ``step * i + offset``
(a saliency map: ``(1, 0)``, one cell per pixel; LeNet-5's conv2 Grad-CAM: ``(2, 6.5)``, see
:func:`pipeline.explainers.layer_grid`). With the crop's frame->crop affine, that is one affine from
frame pixels to map cells, so a map goes back onto the hand with one inverse warp; only the map's
bounding rectangle is warped and blended, which keeps it fast per hand per frame.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from pipeline.preprocess.crops import invert_affine, transform_points, warp

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


#: A map at the crop's own resolution: one cell per crop pixel.
CROP_GRID = (1.0, 0.0)


def map_affine(crop_affine: np.ndarray, grid: tuple[float, float] = CROP_GRID, scale: float = 1.0) -> np.ndarray:
    """The (2, 3) affine from frame pixels to the pixels of a map (continuous coordinates).

    ``crop_affine`` is the crop's frame->crop affine (:attr:`pipeline.preprocess.crops.Crop.affine`);
    ``grid`` lays the map's cells on the crop (see the module docstring); ``scale`` is the map's
    pixels per cell (a map resized ``k`` times: ``k``). Cell ``i`` spans crop pixels
    ``step * i + offset + 0.5 +- step / 2``: the map covers its cells' span, not the whole crop.
    """
    step, offset = grid
    out = np.asarray(crop_affine, np.float64).copy()
    out[:, 2] -= offset + 0.5 - step / 2  # the first cell's edge, in continuous crop coordinates
    return out * (scale / step)


def map_corners(affine: np.ndarray, side: int) -> np.ndarray:
    """The (4, 2) frame corners of a ``side`` x ``side`` map under its frame->map ``affine``."""
    s = float(side)
    return transform_points(invert_affine(affine), np.array([[0, 0], [s, 0], [s, s], [0, s]]))


def map_to_frame(values: np.ndarray, crop_affine: np.ndarray, frame_size: tuple[int, int],
                 grid: tuple[float, float] = CROP_GRID) -> np.ndarray:
    """A map of cells laid by ``grid`` warped onto a whole ``(width, height)`` frame (bilinear; 0 outside it)."""
    return warp(values, invert_affine(map_affine(crop_affine, grid)), frame_size)


def _rect(corners: np.ndarray, frame_size: tuple[int, int]) -> tuple[int, int, int, int]:
    w, h = frame_size
    x0, y0 = np.clip(np.floor(corners.min(0)).astype(int), 0, [w, h])
    x1, y1 = np.clip(np.ceil(corners.max(0)).astype(int), 0, [w, h])
    return int(x0), int(y0), int(x1), int(y1)


def overlay_on_frame(frame: np.ndarray, heat: np.ndarray, crop_affine: np.ndarray, grid: tuple[float, float] = CROP_GRID,
                     alpha: float = 0.5, colormap: int = DEFAULT_COLORMAP, weighted: bool = False,
                     smooth: int = 4) -> np.ndarray:
    """Blend a map onto a BGR uint8 ``frame``, in place, only inside the map's square.

    ``heat`` is (n, n) in [0, 1], its cells laid on the crop by ``grid``. A map of fewer than 28
    cells is first resized ``smooth`` times (bilinear), so the colours blend from cell to cell
    instead of showing the cells. With ``weighted``, each pixel's colour weighs ``alpha * heat``
    instead of ``alpha``: where the map is cold the frame shows through, so the colours sit on the
    evidence, not on the whole square (the live demo's look). Returns ``frame``.
    """
    heat = np.asarray(heat, np.float32)
    cells = heat.shape[0]
    scale = smooth if smooth > 1 and cells < 28 else 1
    if scale > 1:
        heat = cv2.resize(heat, (cells * scale, cells * scale), interpolation=cv2.INTER_LINEAR)
    affine = map_affine(crop_affine, grid, scale)
    corners = map_corners(affine, heat.shape[0])
    # Bilinear warping fades the map out over half a map pixel past its square: keep that fringe.
    fringe = 0.5 * float(np.linalg.norm(invert_affine(affine)[:, 0])) + 1
    x0, y0, x1, y1 = _rect(np.concatenate([corners - fringe, corners + fringe]), (frame.shape[1], frame.shape[0]))
    if x1 <= x0 or y1 <= y0:
        return frame  # the map lies outside the frame
    # Warp into the rectangle only: move the frame origin to (x0, y0).
    shifted = affine.copy()
    shifted[:, 2] += affine[:, :2] @ np.array([x0, y0], np.float64)
    to_roi = invert_affine(shifted)
    size = (x1 - x0, y1 - y0)
    roi = frame[y0:y1, x0:x1]
    if weighted:  # one warp of the map's levels, 0 outside the square
        on_frame = warp(levels(heat), to_roi, size)
        weight = np.multiply(on_frame, np.float32(alpha / 255.0), dtype=np.float32)
        roi[:] = cv2.blendLinear(roi, colorize(on_frame, colormap), 1.0 - weight, weight)
        return frame
    # Colour on the map's grid, then warp the colours: the cost does not grow with the hand's size on screen.
    color = warp(colorize(heat, colormap), to_roi, size)
    # The square itself as the mask: pixels whose centre lies in it (OpenCV draws at pixel centres).
    inside = np.zeros((size[1], size[0]), np.uint8)
    polygon = np.round((corners - [x0 + 0.5, y0 + 0.5]) * (1 << _SHIFT)).astype(np.int32)
    cv2.fillConvexPoly(inside, polygon, 255, cv2.LINE_8, _SHIFT)
    cv2.copyTo(cv2.addWeighted(roi, 1.0 - alpha, color, alpha, 0.0), inside, roi)  # in place
    return frame


__all__ = ["CROP_GRID", "DEFAULT_COLORMAP", "blend", "colorize", "levels", "map_affine", "map_corners", "map_to_frame",
           "overlay_on_frame"]
