"""Heatmaps on pictures: colours, blends, and maps back on the frame at the hand."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.data.load import affines_of
from pipeline.draw.heatmaps import blend, colorize, map_affine, map_corners, map_to_frame, overlay_on_frame
from pipeline.explainers import GradCAM
from pipeline.lenet.model import build_model
from pipeline.preprocess.crops import CropSettings, crop_hand, invert_affine, transform_points

DEFAULT = CropSettings()


@pytest.mark.parametrize("cells", [7, 28])
def test_a_map_over_the_whole_crop_goes_back_onto_its_box(open_palm, cells):
    (hand,) = open_palm.hands
    crop = crop_hand(open_palm.image, hand, DEFAULT)
    width, height = open_palm.size
    step = DEFAULT.size / cells  # cells that tile the crop: cell i centred on pixel step * i + (step - 1) / 2
    back = map_to_frame(np.ones((cells, cells), np.float32), crop.affine, (width, height), (step, (step - 1) / 2))
    assert back.shape == (height, width)
    box = crop.box()
    side = np.linalg.norm(box[1] - box[0])
    assert back.sum() == pytest.approx(side * side, rel=0.03)
    # Inside: points of the crop's inner 80 % mapped to frame pixels.
    s = DEFAULT.size
    inner = np.stack(np.meshgrid(np.linspace(0.1 * s, 0.9 * s, 9), np.linspace(0.1 * s, 0.9 * s, 9)), -1).reshape(-1, 2)
    frame_pts = transform_points(invert_affine(crop.affine), inner)
    cols, rows = np.floor(frame_pts).astype(int).T
    ok = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    assert ok.sum() > 60
    assert back[rows[ok], cols[ok]] == pytest.approx(1.0, abs=1e-6)
    # Far outside: more than one side away from the box's centre.
    yy, xx = np.mgrid[0:height, 0:width]
    centre = box.mean(0)
    far = np.hypot(xx + 0.5 - centre[0], yy + 0.5 - centre[1]) > side
    assert far.sum() > 1000 and back[far].max() == 0.0


def test_a_one_hot_map_lands_on_its_cell(open_palm):
    (hand,) = open_palm.hands
    crop = crop_hand(open_palm.image, hand, DEFAULT)
    heat = np.zeros((7, 7), np.float32)
    heat[1, 5] = 1.0  # row 1, column 5 of cells 4 px wide: crop pixels x in [20, 24), y in [4, 8)
    back = map_to_frame(heat, crop.affine, open_palm.size, (4.0, 1.5))
    rows, cols = np.nonzero(back > 0.5)
    peak = transform_points(crop.affine, np.stack([cols + 0.5, rows + 0.5], 1)).mean(0)
    assert peak == pytest.approx([22.0, 6.0], abs=0.75)


def test_lenet_conv2_cells_cover_the_crop_centre_only(open_palm):
    """LeNet-5's conv2 cells are centred on crop pixels 6.5, 8.5 .. 20.5: its 8x8 map spans x, y in [6, 22)."""
    (hand,) = open_palm.hands
    crop = crop_hand(open_palm.image, hand, DEFAULT)
    grid = GradCAM(build_model("lenet5", 6), "conv2").grid
    assert grid == (2.0, 6.5)
    corners = transform_points(crop.affine, map_corners(map_affine(crop.affine, grid), 8))
    np.testing.assert_allclose(corners, [[6, 6], [22, 6], [22, 22], [6, 22]], atol=1e-9)


def test_weighted_overlay_blends_each_pixel_by_its_heat(open_palm):
    """Weighted: a frame pixel becomes (1 - a h) frame + a h colour(h), h the map warped onto that pixel."""
    (hand,) = open_palm.hands
    crop = crop_hand(open_palm.image, hand, DEFAULT)
    frame = open_palm.image.copy()
    heat = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(28, 28)
    alpha = 0.6
    overlay_on_frame(frame, heat, crop.affine, alpha=alpha, weighted=True)
    on_frame = map_to_frame((heat * 255 + 0.5).astype(np.uint8), crop.affine, open_palm.size)  # the levels, per pixel
    weight = alpha * on_frame.astype(np.float64) / 255
    expected = (1 - weight[..., None]) * open_palm.image + weight[..., None] * colorize(on_frame)
    changed = on_frame > 0
    assert changed.sum() > 5000
    assert np.abs(frame.astype(float) - expected).max() <= 1.0  # rounding of uint8 only
    assert np.array_equal(frame[~changed], open_palm.image[~changed])  # outside the map: untouched


REPO = Path(__file__).resolve().parents[2]


FINGERS = REPO / "data" / "fingers"




def test_colorize_and_blend_shapes_and_types(fingers) -> None:
    crop = fingers.images[0, 0].numpy()
    heat = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    color = colorize(heat)
    assert color.shape == (8, 8, 3) and color.dtype == np.uint8
    assert np.array_equal(colorize((heat * 255 + 0.5).astype(np.uint8)), color)
    assert np.array_equal(color[0, 0], cv2.applyColorMap(np.zeros((1, 1), np.uint8), cv2.COLORMAP_JET)[0, 0])
    mixed = blend(crop, heat, alpha=0.4)
    assert mixed.shape == (28, 28, 3) and mixed.dtype == np.uint8
    assert np.array_equal(blend(crop, heat, alpha=0.0), cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR))
    assert blend(cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR), heat).shape == (28, 28, 3)
    heat28 = cv2.resize(heat, (28, 28), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(blend(crop, (heat28 * 255 + 0.5).astype(np.uint8)), blend(crop, heat28))


def test_overlay_lands_inside_the_crop_box(fingers) -> None:
    """A real crop's affine (rotated, mirrored: a left hand) from data/fingers' index."""
    row = int(np.flatnonzero(fingers.index["mirrored"].to_numpy() == 1)[0])
    affine = affines_of(fingers.index)[row]
    size = (int(fingers.index["width"][row]), int(fingers.index["height"][row]))
    frame = np.full((size[1], size[0], 3), 100, np.uint8)
    heat = np.zeros((28, 28), np.float32)
    heat[4, 20] = 1.0  # one hot pixel
    assert overlay_on_frame(frame, heat, affine, alpha=1.0) is frame
    changed = np.argwhere((frame != 100).any(-1))  # (y, x)
    assert len(changed) > 100
    # Every changed frame pixel (its centre) maps into the crop's square.
    in_crop = (changed[:, ::-1] + 0.5) @ affine[:, :2].T + affine[:, 2]
    assert in_crop.min() >= -0.5 and in_crop.max() <= 28.5
    corners = map_corners(affine, 28)
    (x0, y0), (x1, y1) = np.floor(corners.min(0)), np.ceil(corners.max(0))
    assert changed[:, 1].min() >= x0 and changed[:, 1].max() < x1 and changed[:, 0].min() >= y0 and changed[:, 0].max() < y1
    # The hot spot lands on the crop pixel (4, 20): the reddest frame pixel maps back near its centre.
    red = frame[..., 2].astype(int) - frame[..., 0].astype(int)
    y, x = np.unravel_index(red.argmax(), red.shape)
    cx, cy = np.array([x + 0.5, y + 0.5]) @ affine[:, :2].T + affine[:, 2]
    assert abs(cx - 20.5) < 1.5 and abs(cy - 4.5) < 1.5
    # A crop outside the frame draws nothing.
    outside = affine.copy()
    outside[:, 2] += 1000
    untouched = np.full_like(frame, 100)
    overlay_on_frame(untouched, heat, outside)
    assert (untouched == 100).all()
