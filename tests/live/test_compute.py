"""The live path on real frames: batches, one forward, tracks, mirroring, where the heatmap lands."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("GLOG_minloglevel", "2")  # before MediaPipe is first imported
from pipeline.draw.heatmaps import map_to_frame  # noqa: E402
from pipeline.lenet.checkpoint import load_model  # noqa: E402
from pipeline.live.compute import Explain, LivePipeline, mirror_hands, mirror_result  # noqa: E402
from pipeline.preprocess.crops import crop_hand  # noqa: E402
from pipeline.preprocess.sources import Frame, VideoSource  # noqa: E402

#: The real videos (see ../shared/data/README.md): frames, (width, height), least share of frames with a hand.
VIDEOS = {
    "open_palm.mp4": (202, (640, 360), 0.95),
    "fist_then_thumbs_up.mp4": (195, (1280, 720), 0.8),  # the hand enters after about 1 s
    "typing.mp4": (96, (1920, 1080), 0.9),
}


@pytest.fixture(scope="module")
def shipped():
    return load_model()


CAM = Explain("conv2")
BOTH = Explain("conv2", saliency=True)


def video_path(videos_dir: Path, name: str) -> Path:
    path = videos_dir / name
    if not path.is_file():
        pytest.skip(f"real data missing: {path}")
    return path


def every_nth_frame(path: Path, step: int) -> list[Frame]:
    with VideoSource(path) as source:
        return [f for f in source if f.index % step == 0]


def test_a_frame_of_two_hands_equals_each_hand_alone(shipped, two_palms) -> None:
    both = LivePipeline(shipped)(two_palms.image, two_palms.hands, BOTH)
    assert len(both.hands) == 2 and set(both.ms) == {"crop", "classify", "explain"}
    for k, hand in enumerate(two_palms.hands):
        alone = LivePipeline(shipped)(two_palms.image, [hand], BOTH).hands[0]
        assert np.array_equal(alone.crop.image, both.hands[k].crop.image)
        np.testing.assert_allclose(alone.probs, both.hands[k].probs, atol=1e-6)
        np.testing.assert_allclose(alone.cam, both.hands[k].cam, atol=1e-5)
        np.testing.assert_allclose(alone.saliency, both.hands[k].saliency, atol=1e-5)
        assert alone.cam.shape == (8, 8) and 0 <= alone.cam.min() and alone.cam.max() == pytest.approx(1.0)


def test_one_forward_classifies_and_explains_as_two_would(shipped, two_palms) -> None:
    """With Grad-CAM on, the Grad-CAM's forward classifies: same probabilities and maps as apart."""
    fused = LivePipeline(shipped)(two_palms.image, two_palms.hands, CAM)
    apart_live = LivePipeline(shipped)
    plain = apart_live(two_palms.image, two_palms.hands, Explain())
    assert all(h.cam is None for h in plain.hands) and set(fused.ms) == set(plain.ms)
    apart = apart_live.explain(plain, CAM)  # the held-frame path: its own forward
    assert all(h.cam is None for h in plain.hands), "explain() returns a new result, the old one stays"
    assert len(apart_live.tracker.tracks) == 2 and all(t.missed == 0 for t in apart_live.tracker.tracks)
    for a, b in zip(fused.hands, apart.hands):
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-6)
        assert a.label == b.label
        np.testing.assert_allclose(a.cam, b.cam, atol=1e-6)


def test_two_hands_keep_their_tracks_when_the_detector_swaps_them(shipped, two_palms) -> None:
    live = LivePipeline(shipped)
    first = [h.track_id for h in live(two_palms.image, two_palms.hands, CAM).hands]
    swapped = [h.track_id for h in live(two_palms.image, two_palms.hands[::-1], CAM).hands]
    assert swapped == first[::-1] and len(set(first)) == 2


def test_a_mirrored_view_gives_the_same_crops(shipped, two_palms) -> None:
    width = two_palms.image.shape[1]
    flipped = mirror_hands(two_palms.hands, width)
    assert [h.handedness for h in flipped] == [("Right" if h.is_left else "Left") for h in two_palms.hands]
    image = cv2.flip(two_palms.image, 1)
    settings = shipped.crop_settings
    for hand, mirrored in zip(two_palms.hands, flipped):
        a, b = crop_hand(two_palms.image, hand, settings), crop_hand(image, mirrored, settings)
        assert np.abs(a.image.astype(int) - b.image.astype(int)).max() <= 1
    # What the screen draws for a mirrored view: the result mirrored, computed once on the frame as it came.
    result = LivePipeline(shipped)(two_palms.image, two_palms.hands, CAM)
    shown = mirror_result(result, width)
    for item, seen in zip(result.hands, shown.hands):
        assert np.array_equal(item.crop.image, seen.crop.image) and np.array_equal(item.cam, seen.cam)
        np.testing.assert_allclose(seen.hand.landmarks[:, 0], width - item.hand.landmarks[:, 0])
        # A frame point p lands on the same crop pixel as its mirror image in the mirrored frame.
        p = item.hand.landmarks[:, :2].astype(np.float64)
        q = np.stack([width - p[:, 0], p[:, 1]], 1)
        np.testing.assert_allclose(q @ seen.crop.affine[:, :2].T + seen.crop.affine[:, 2],
                                   p @ item.crop.affine[:, :2].T + item.crop.affine[:, 2], atol=1e-9)


def test_the_heatmap_lies_on_the_hand(shipped, videos_dir, detector) -> None:
    """Frames of each real video: the Grad-CAM, warped back to the frame, has its mass in the hand's box.

    conv2's cells see 14 of the crop's 28 pixels, so a map can lean off a hand the model reads wrongly
    (a thumbs-up taken for a one): most maps, not all, must sit on the hand (finer maps: issue 13).
    """
    inside = []
    for name in VIDEOS:
        live = LivePipeline(shipped)
        # Every 5th frame: the hands the model answers none (a thumbs-up, typing, most of the relaxed open palm)
        # get no map to check.
        for frame in every_nth_frame(video_path(videos_dir, name), 5):
            result = live(frame.image, detector.detect(frame.image), CAM)
            height, width = frame.image.shape[:2]
            for item in result.hands:
                if item.label is None or item.cam.max() == 0:
                    continue  # no gesture, or no evidence for it: no heatmap is drawn
                heat = map_to_frame(item.cam, item.crop.affine, (width, height), item.cam_grid)
                x0, y0, x1, y1 = item.hand.box()
                pad = 0.1 * max(x1 - x0, y1 - y0)  # landmarks sit inside the fingers' outline
                x0, y0 = int(max(0, x0 - pad)), int(max(0, y0 - pad))
                x1, y1 = int(np.ceil(x1 + pad)), int(np.ceil(y1 + pad))
                inside.append(heat[y0:y1, x0:x1].sum() / heat.sum())
    inside = np.array(inside)
    assert len(inside) >= 20
    assert np.median(inside) >= 0.85 and (inside >= 0.7).mean() >= 0.8, np.round(np.sort(inside), 2)


def test_the_default_map_is_zero_off_the_hand_where_plain_gradcam_is_not(shipped, two_palms) -> None:
    """The demo's default (HiResCAM relative to black, at the input: gradient x input) leaves every black crop
    pixel at exactly 0, so no square of colour is drawn around the hand; plain Grad-CAM at conv1 does not."""
    live = LivePipeline(shipped)
    assert (live.method, live.default_layer) == ("hirescam-rel", "input")
    result = live(two_palms.image, two_palms.hands, Explain(live.default_layer))
    for item in result.hands:
        assert item.cam.shape == item.crop.image.shape and item.cam_grid == (1.0, 0.0) and item.cam.max() > 0
        assert (item.cam[item.crop.image == 0] == 0).all()
    plain = LivePipeline(shipped, method="gradcam")(two_palms.image, two_palms.hands, Explain("conv1"))
    for item in plain.hands:
        black = item.crop.image[2:-2, 2:-2] == 0  # conv1's 24x24 cells sit on crop pixels 2..25
        assert item.cam[black].sum() / item.cam.sum() > 0.3


def test_each_method_starts_at_a_layer_it_can_explain(shipped, two_palms) -> None:
    """Only the per-cell method explains the input; a channel-weighted CAM starts at the last conv layer, and the
    n key never takes it to the input, where its map would be a multiple of the crop."""
    for method in ("gradcam", "gradcam-rel", "gradcam++"):
        live = LivePipeline(shipped, method=method)
        assert live.default_layer == "conv2" and "input" not in live.key_layers and "input" not in live.layers
        result = live(two_palms.image, two_palms.hands, Explain(live.default_layer))
        assert all(item.cam.shape == (8, 8) for item in result.hands)
        # A channel-weighted CAM can be 0 everywhere for one hand (its ReLU drops evidence that is all negative,
        # as gradcam-rel does for one of these hands with the shipped model), not for both.
        assert any(item.cam.max() > 0 for item in result.hands)
    assert LivePipeline(shipped).key_layers[0] == "input"
