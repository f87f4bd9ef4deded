"""Loading a dataset folder: crops, labels, groups, caches, re-rendering."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import REPO, add_sample, fill_dataset
from pipeline.data.load import affines_of, load_dataset
from pipeline.data.store import DatasetWriter
from pipeline.errors import UserError
from pipeline.preprocess.crops import CropSettings, crop_hand

SETTINGS = CropSettings()










def test_load_dataset_gives_uint8_crops_labels_groups_and_is_cached(tmp_path, samples):
    root = tmp_path / "ds"
    fill_dataset(root, samples).close()
    data = load_dataset(root)
    assert data.images.dtype.is_floating_point is False and str(data.images.dtype) == "torch.uint8"
    assert tuple(data.images.shape) == (12, 1, 28, 28)
    assert data.label_names == ["five", "palm"]
    assert data.labels.tolist() == [k % 2 for k in range(12)]
    assert data.groups.tolist() == [f"s{k % 3}" for k in range(12)]
    assert data.settings == SETTINGS and len(data) == 12
    for k in range(12):
        assert np.array_equal(data.images[k, 0].numpy(), samples[k % 4][3].image)
    # Cached: the second load is the same object and reads no image (none is left to read).
    os.rename(root / "crops", root / "crops-away")
    assert load_dataset(root) is data
    os.rename(root / "crops-away", root / "crops")
    # One more row changes the index: the next load sees it.
    with DatasetWriter(root, SETTINGS) as writer:
        add_sample(writer, samples[0], label="fist", source="new.jpg")
    more = load_dataset(root)
    assert more is not data and len(more) == 13 and more.label_names == ["five", "palm", "fist"]
    sub = more.subset([12, 0])
    assert sub.labels.tolist() == [2, 0] and sub.index["source"].tolist() == ["new.jpg", "f0.jpg"]


def test_disk_cache_is_found_by_another_process(tmp_path, samples):
    root = tmp_path / "ds"
    fill_dataset(root, samples).close()
    data = load_dataset(root)
    assert len(list((root / ".cache").glob("*.npy"))) == 1
    # Without the crop images only the disk cache can serve the load. Another process has another
    # str hash seed, so the cache's name must not depend on hash().
    os.rename(root / "crops", root / "crops-away")
    code = ("import sys; from pipeline.data.load import load_dataset; "
            "print(int(load_dataset(sys.argv[1]).images.sum()))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    proc = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.split()[-1]) == int(data.images.sum())


def test_load_with_another_mask_renders_from_the_large_crops(tmp_path, samples):
    root = tmp_path / "ds"
    fill_dataset(root, samples).close()
    stored = load_dataset(root)
    for other in (dataclasses.replace(SETTINGS, mask="hull"), dataclasses.replace(SETTINGS, mask="none"),
                  dataclasses.replace(SETTINGS, size=14)):
        data = load_dataset(root, other)
        assert tuple(data.images.shape) == (12, 1, other.size, other.size) and data.settings == other
        assert data.labels.tolist() == stored.labels.tolist()
        for k in range(4):
            photo, _, hand, _ = samples[k]
            direct = crop_hand(photo.image, hand, dataclasses.replace(other, render_scale=112 // other.size))
            assert np.abs(data.images[k, 0].numpy().astype(int) - direct.image).max() <= 1
        if other.size == SETTINGS.size:
            assert (data.images != stored.images).sum() > 12 * 20
    with pytest.raises(UserError, match="rotate=True.*import the photos again"):
        load_dataset(root, dataclasses.replace(SETTINGS, rotate=False))


def test_load_refuses_missing_images_and_non_datasets(tmp_path, samples):
    root = tmp_path / "ds"
    fill_dataset(root, samples).close()
    (root / "crops" / "palm" / "000003.png").unlink()
    with pytest.raises(UserError, match="000003.png"):
        load_dataset(root)
    with pytest.raises(UserError, match="not a dataset"):
        load_dataset(tmp_path)
    empty = tmp_path / "empty"
    DatasetWriter(empty, SETTINGS).close()
    with pytest.raises(UserError, match="empty"):
        load_dataset(empty)


def test_a_dataset_of_the_old_mirror_rule_is_re_rendered_to_the_new_one(tmp_path, open_palm, two_palms, left_palm):
    """Made mirrored by handedness (crop version 1's rule), loaded with chirality: the crops and affines equal
    cropping the photos with chirality, also for hands seen from the back, where the two rules disagree."""
    from pipeline.data.store import Origin
    from pipeline.preprocess.hands import Hand

    old = dataclasses.replace(SETTINGS, mirror="handedness")
    hands = []
    for photo in (open_palm, two_palms, left_palm):
        for hand in photo.hands:
            hands.append((photo.image, hand))
            back = photo.image[:, ::-1].copy()  # the same hand's back: a mirror image, handedness unchanged
            marks = hand.landmarks.copy()
            marks[:, 0] = photo.image.shape[1] - marks[:, 0]
            hands.append((back, Hand(marks, hand.world, hand.handedness, hand.score)))
    root = tmp_path / "old"
    with DatasetWriter(root, old) as writer:
        for k, (image, hand) in enumerate(hands):
            writer.add(crop_hand(image, hand, old), hand, "five", f"g{k % 3}", Origin(f"p{k}.jpg"))
    data = load_dataset(root, SETTINGS)
    assert data.settings == SETTINGS
    flipped = 0
    for k, (image, hand) in enumerate(hands):
        direct = crop_hand(image, hand, SETTINGS)
        assert np.abs(data.images[k, 0].numpy().astype(int) - direct.image).max() <= 1
        np.testing.assert_allclose(affines_of(data.index)[k], direct.affine, atol=1e-6)
        assert data.index["mirrored"][k] == int(direct.mirrored)
        flipped += crop_hand(image, hand, old).mirrored != direct.mirrored
    assert flipped == len(hands) // 2  # every back, and no palm, changed sides


def test_crops_are_packed_by_shards_and_an_append_repacks_only_the_last(tmp_path, samples, monkeypatch):
    import cv2

    import pipeline.data.load as load

    monkeypatch.setattr(load, "SHARD_ROWS", 5)
    root = tmp_path / "ds"
    fill_dataset(root, samples).close()
    first = load_dataset(root)
    packed = {p.name: p.stat().st_mtime_ns for p in (root / ".cache").glob("images-*.npy")}
    assert sorted(name.split("-")[2] for name in packed) == ["00000", "00001", "00002"]  # 5 + 5 + 2 rows
    with DatasetWriter(root, SETTINGS) as writer:
        add_sample(writer, samples[1], label="fist", source="new.jpg")
    reads = []
    real_imread = cv2.imread
    monkeypatch.setattr(cv2, "imread", lambda path, *a: reads.append(path) or real_imread(path, *a))
    more = load_dataset(root)
    assert len(reads) == 3  # the last shard's two rows and the new one, not the twelve
    after = {p.name: p.stat().st_mtime_ns for p in (root / ".cache").glob("images-*.npy")}
    kept = {name: t for name, t in packed.items() if name.split("-")[2] != "00002"}
    assert {name: after[name] for name in kept} == kept and len(after) == 3  # the old last shard was replaced
    assert np.array_equal(more.images[:12].numpy(), first.images.numpy())
    assert np.array_equal(more.images[12, 0].numpy(), samples[1][3].image)


def test_a_shard_whose_rows_changed_is_not_used(tmp_path, samples, monkeypatch):
    import pipeline.data.load as load

    monkeypatch.setattr(load, "SHARD_ROWS", 5)
    root = tmp_path / "ds"
    fill_dataset(root, samples).close()
    load_dataset(root)
    lines = (root / "index.csv").read_text().splitlines(keepends=True)
    lines[1], lines[2] = lines[2], lines[1]  # the first two rows swapped: the first shard's content changed
    (root / "index.csv").write_text("".join(lines))
    data = load_dataset(root)
    assert data.index["source"].tolist()[:2] == ["f1.jpg", "f0.jpg"]
    for k, sample in ((0, samples[1]), (1, samples[0]), (2, samples[2])):
        assert np.array_equal(data.images[k, 0].numpy(), sample[3].image)  # each row's own PNG, not the stale shard
    assert len(list((root / ".cache").glob("images-*-00000-*.npy"))) == 1


def test_qualified_groups_name_a_dataset_loaded_alone_as_a_concatenation_does() -> None:
    """A checkpoint trained on several datasets records NAME/GROUP; the same rows loaded alone match it."""
    from pipeline.data.load import load_datasets, qualified_groups

    fingers = REPO / "data" / "fingers"
    if not (fingers / "index.csv").is_file():
        pytest.skip(f"{fingers} is missing")
    alone = load_datasets([fingers])
    groups = qualified_groups(alone)
    assert all(g == f"fingers/{raw}" for g, raw in zip(groups, alone.groups))
    assert qualified_groups(alone.subset(np.arange(5))).tolist() == groups[:5].tolist()
